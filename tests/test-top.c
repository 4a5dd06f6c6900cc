/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nfq-ctl top's data (ctl/top.c): samples from agents and
 * rules replies, rates between two samples (a new row and a counter that
 * went back have none), the sort keys, and the frame's tables within a
 * row budget.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top.h"

static void sample(struct top_sample *s, long long at_ms, const char *agents,
		   const char *rules)
{
	json_object *a = json_tokener_parse(agents), *r = json_tokener_parse(rules);

	assert_non_null(a);
	assert_non_null(r);
	*s = (struct top_sample){ 0 };
	assert_int_equal(top_sample_parse(s, a, r), 0);
	s->at_ms = at_ms;
	json_object_put(a);
	json_object_put(r);
}

#define AG(name, pk, by, drop, kfull, queued) \
	"{\"name\":\"" name "\",\"packets\":" #pk ",\"bytes\":" #by ",\"verdicts\":" \
	"{\"drop\":" #drop ",\"error\":0},\"kernel\":[{\"queued\":" #queued \
	",\"dropped_full\":" #kfull ",\"dropped_netlink\":0}]}"

static void test_rates_and_sort(void **state)
{
	struct top_sample p, c;

	sample(&p, 1000, "{\"agents\":[" AG("a", 100, 10000, 0, 0, 0) "," AG("b", 50, 500000, 0, 0, 0)
	       "," AG("c", 9, 90, 9, 1, 0) "]}",
	       "{\"rules\":[{\"policy\":\"web\",\"rule\":\"dns\",\"packets\":10,\"bytes\":100}]}");
	sample(&c, 3000, "{\"agents\":[" AG("a", 300, 20000, 0, 0, 4) "," AG("b", 60, 900000, 0, 0, 0)
	       "," AG("c", 5, 100, 29, 3, 0) "," AG("new", 1000, 1000, 0, 0, 0) "]}",
	       "{\"rules\":[{\"policy\":\"web\",\"rule\":\"dns\",\"packets\":30,\"bytes\":300}]}");
	top_rates(&c, &p);
	assert_true(c.ns[0].has_rate);
	assert_true(c.ns[0].rate[TOP_PACKETS] == 100.0);     /* 200 in 2 s */
	assert_true(c.ns[1].rate[TOP_BYTES] == 200000.0);
	assert_true(c.ns[2].rate[TOP_PACKETS] == 0.0);        /* went back: no rate */
	assert_true(c.ns[2].rate[TOP_DROPS] == 10.0);
	assert_true(c.ns[2].rate[TOP_KDROPS] == 1.0);
	assert_false(c.ns[3].has_rate);                       /* new: no rate yet */
	assert_int_equal(c.ns[0].v[TOP_QUEUED], 4);
	assert_string_equal(c.rules[0].name, "web/dns");
	assert_true(c.rules[0].rate[TOP_PACKETS] == 10.0);

	top_sort(&c, TOP_SORT_PACKETS);
	assert_string_equal(c.ns[0].name, "a");
	assert_string_equal(c.ns[1].name, "b");
	top_sort(&c, TOP_SORT_BYTES);
	assert_string_equal(c.ns[0].name, "b");
	top_sort(&c, TOP_SORT_DROPS);
	assert_string_equal(c.ns[0].name, "c");
	top_sort(&c, TOP_SORT_NAME);
	assert_string_equal(c.ns[0].name, "a");
	assert_string_equal(c.ns[3].name, "new");
	assert_string_equal(top_sort_name(TOP_SORT_DROPS), "drops/s");

	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		top_sort(&c, TOP_SORT_PACKETS);
		assert_int_equal(top_render(f, &c, 0), 0);
		fclose(f);
		assert_string_equal(buf,
			"NAMESPACE  PKT/S    BYTES/S  DROP/S  ERR/S  QUEUED  KDROP/S  PACKETS  DROPS\n"
			"a            100  4.8 KiB/s     0.0    0.0       4      0.0      300      0\n"
			"b            5.0  195 KiB/s     0.0    0.0       0      0.0       60      0\n"
			"c            0.0      5 B/s      10    0.0       0      1.0        5     29\n"
			"new            -          -       -      -       0        -     1.0k      0\n"
			"\n"
			"POLICY/RULE  PKT/S  BYTES/S  PACKETS  BYTES\n"
			"web/dns         10  100 B/s       30  300 B\n");
		free(buf);
		/* A small screen: fewer rows, both tables still there. */
		buf = NULL;
		f = open_memstream(&buf, &len);
		assert_int_equal(top_render(f, &c, 9), 0);
		fclose(f);
		assert_null(strstr(buf, "\nnew "));
		assert_non_null(strstr(buf, "\nweb/dns "));
		free(buf);
	}
	top_sample_free(&p);
	top_sample_free(&c);
	top_sample_free(&c);
}

/* Replies without the arrays (a refusal): an empty sample. */
static void test_empty(void **state)
{
	struct top_sample s;

	sample(&s, 0, "{\"ok\":false}", "{\"rules\":5}");
	assert_int_equal(s.nns, 0);
	assert_int_equal(s.nrules, 0);
	top_sample_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rates_and_sort),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
