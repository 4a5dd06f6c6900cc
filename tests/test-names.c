/* SPDX-License-Identifier: MIT */
/*
 * names.c: the hook and verdict tables read both ways, and the verdict
 * names policy_verdict_name() builds from them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <nfqb/queue.h>

#include "names.h"
#include "policy.h"

static void test_hooks(void **state)
{
	static const char *const want[] = {
		"prerouting", "input", "forward", "output", "postrouting",
	};
	char buf[80];

	(void)state;
	for (unsigned i = 0; i < 5; i++) {
		assert_string_equal(names_hook(i), want[i]);
		assert_int_equal(names_hook_by_name(want[i]), (int)i);
	}
	assert_int_equal(NFQB_HOOK_POSTROUTING, 4);
	assert_null(names_hook(5));
	assert_null(names_hook(255));
	assert_int_equal(names_hook_by_name("PREROUTING"), -1);
	assert_int_equal(names_hook_by_name(""), -1);
	assert_string_equal(names_hook_list(buf, sizeof(buf)),
			    "prerouting, input, forward, output, postrouting");
	assert_string_equal(names_hook_list(buf, 12), "prerouting,");
}

static void test_verdicts(void **state)
{
	char buf[POLICY_VERDICT_NAME_MAX];

	(void)state;
	assert_int_equal(names_verdict_by_name("accept"), NFQB_ACCEPT);
	assert_int_equal(names_verdict_by_name("drop"), NFQB_DROP);
	assert_int_equal(names_verdict_by_name("repeat"), NFQB_REPEAT);
	assert_int_equal(names_verdict_by_name("queue"), -1);   /* needs ":N" */
	assert_int_equal(names_verdict_by_name("stolen"), -1);
	assert_string_equal(names_verdict(NFQB_QUEUE), "queue");
	assert_null(names_verdict(2));
	assert_null(names_verdict(99));
	assert_string_equal(policy_verdict_name(NFQB_ACCEPT, buf, sizeof(buf)), "accept");
	assert_string_equal(policy_verdict_name(NFQB_DROP, buf, sizeof(buf)), "drop");
	assert_string_equal(policy_verdict_name(NFQB_REPEAT, buf, sizeof(buf)), "repeat");
	assert_string_equal(policy_verdict_name(NFQB_QUEUE | 65535u << 16, buf, sizeof(buf)),
			    "queue:65535");
	assert_string_equal(policy_verdict_name(2, buf, sizeof(buf)), "verdict:2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hooks),
		cmocka_unit_test(test_verdicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
