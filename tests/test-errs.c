/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/errs.c: the collected "<path>: <message>" lines of
 * `nfq-broker --check` and the fixed-buffer JSON path builders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errs.h"

static void test_add_formats(void **state)
{
	struct errs e = { 0 };

	errs_add(&e, "policies.web.rules[1]", "unknown key \"%s\"", "colour");
	errs_add(&e, "", "not a JSON object");
	errs_add(&e, NULL, "%d errors", 3);
	errs_add(&e, "broker", "%s", "");
	assert_int_equal(e.n, 4);
	assert_int_equal(e.oom, 0);
	assert_string_equal(e.lines[0], "policies.web.rules[1]: unknown key \"colour\"");
	assert_string_equal(e.lines[1], "not a JSON object");
	assert_string_equal(e.lines[2], "3 errors");
	assert_string_equal(e.lines[3], "broker: ");
	errs_reset(&e);
}

/* A message longer than the formatting buffer is cut, not overrun. */
static void test_add_long_message(void **state)
{
	struct errs e = { 0 };
	char big[2000];

	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	errs_add(&e, "p", "%s", big);
	assert_int_equal(e.n, 1);
	assert_int_equal(strncmp(e.lines[0], "p: mmm", 6), 0);
	/* 511 message bytes survive: the 512-byte buffer minus its NUL */
	assert_int_equal(strlen(e.lines[0]), 3 + 511);
	assert_int_equal(strspn(e.lines[0] + 3, "m"), 511);
	errs_reset(&e);
}

/* Far more lines than the first allocation; order and content kept. */
static void test_many_lines(void **state)
{
	enum { N = 1000 };
	struct errs e = { 0 };
	char want[64];

	for (int i = 0; i < N; i++)
		errs_add(&e, i % 2 ? "a.b" : "", "line %d", i);
	assert_int_equal(e.n, N);
	assert_true(e.cap >= N);
	assert_int_equal(e.oom, 0);
	for (int i = 0; i < N; i++) {
		snprintf(want, sizeof(want), "%sline %d", i % 2 ? "a.b: " : "", i);
		assert_string_equal(e.lines[i], want);
	}
	errs_reset(&e);
	assert_int_equal(e.n, 0);
	assert_int_equal(e.cap, 0);
	assert_null(e.lines);
}

static void test_join(void **state)
{
	struct errs e = { 0 };
	char *s;

	/* no lines: an empty string, not NULL */
	s = errs_join(&e, "\n");
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);

	errs_add(&e, "a", "one");
	s = errs_join(&e, "\n");
	assert_string_equal(s, "a: one");            /* no separator for one line */
	free(s);

	errs_add(&e, "b[2]", "two");
	errs_add(&e, "", "three");
	s = errs_join(&e, "; ");
	assert_string_equal(s, "a: one; b[2]: two; three");
	free(s);
	s = errs_join(&e, "");
	assert_string_equal(s, "a: oneb[2]: twothree");
	free(s);
	s = errs_join(&e, "\n--\n");
	assert_string_equal(s, "a: one\n--\nb[2]: two\n--\nthree");
	free(s);
	errs_reset(&e);
}

/* A joined text of many lines has every line and exactly n-1 separators. */
static void test_join_many(void **state)
{
	enum { N = 300 };
	struct errs e = { 0 };
	size_t seps = 0, want_len = 0;
	char *s, *p;

	for (int i = 0; i < N; i++) {
		errs_add(&e, "k", "%d", i);
		want_len += strlen(e.lines[i]);
	}
	s = errs_join(&e, "\n");
	assert_non_null(s);
	assert_int_equal(strlen(s), want_len + N - 1);
	for (p = s; (p = strchr(p, '\n')); p++)
		seps++;
	assert_int_equal(seps, N - 1);
	assert_non_null(strstr(s, "\nk: 299"));
	assert_int_equal(strncmp(s, "k: 0\nk: 1\n", 10), 0);
	free(s);
	errs_reset(&e);
}

static void test_reset_reuse(void **state)
{
	struct errs e = { 0 };
	char *s;

	for (int i = 0; i < 20; i++)
		errs_add(&e, "x", "first %d", i);
	errs_reset(&e);
	errs_reset(&e);                /* twice is fine */
	assert_int_equal(e.n, 0);
	errs_add(&e, "y", "second");
	assert_int_equal(e.n, 1);
	s = errs_join(&e, ",");
	assert_string_equal(s, "y: second");
	free(s);
	errs_reset(&e);
}

static void test_path_key_idx(void **state)
{
	char p[ERRS_PATH_MAX], q[ERRS_PATH_MAX], r[ERRS_PATH_MAX];

	errs_path_key(p, sizeof(p), "", "policies");
	assert_string_equal(p, "policies");
	errs_path_key(p, sizeof(p), NULL, "broker");
	assert_string_equal(p, "broker");
	errs_path_key(q, sizeof(q), "policies", "web");
	assert_string_equal(q, "policies.web");
	errs_path_key(r, sizeof(r), q, "rules");
	assert_string_equal(r, "policies.web.rules");
	errs_path_idx(p, sizeof(p), r, 1);
	assert_string_equal(p, "policies.web.rules[1]");
	errs_path_key(q, sizeof(q), p, "match");
	errs_path_key(r, sizeof(r), q, "dport");
	errs_path_idx(p, sizeof(p), r, 2);
	assert_string_equal(p, "policies.web.rules[1].match.dport[2]");
	/* an index at the root and nested indices */
	errs_path_idx(q, sizeof(q), "", 0);
	assert_string_equal(q, "[0]");
	errs_path_idx(q, sizeof(q), NULL, 7);
	assert_string_equal(q, "[7]");
	errs_path_idx(r, sizeof(r), "namespaces[3]", 18446744073709551615ull);
	assert_string_equal(r, "namespaces[3][18446744073709551615]");
}

static void test_path_truncation(void **state)
{
	char base[400], out[ERRS_PATH_MAX], small[16];

	memset(base, 'a', sizeof(base) - 1);
	base[sizeof(base) - 1] = '\0';
	errs_path_key(out, sizeof(out), base, "key");
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + sizeof(out) - 4, "...");
	assert_int_equal(strspn(out, "a"), sizeof(out) - 4);

	errs_path_idx(out, sizeof(out), base, 5);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + sizeof(out) - 4, "...");

	/* cut within the key or index, still marked */
	errs_path_key(small, sizeof(small), "policies", "verylongkey");
	assert_string_equal(small, "policies.ver...");
	errs_path_idx(small, sizeof(small), "namespaces", 123456);
	assert_string_equal(small, "namespaces[1...");
	errs_path_key(small, sizeof(small), "", "0123456789abcdefg");
	assert_string_equal(small, "0123456789ab...");

	/* exactly fitting is not cut: 15 characters in 16 bytes */
	errs_path_key(small, sizeof(small), "abcdefgh", "ijklmn");
	assert_string_equal(small, "abcdefgh.ijklmn");
	errs_path_idx(small, sizeof(small), "abcdefghijkl", 1);
	assert_string_equal(small, "abcdefghijkl[1]");
	/* one more is */
	errs_path_key(small, sizeof(small), "abcdefgh", "ijklmno");
	assert_string_equal(small, "abcdefgh.ijk...");

	/* a buffer too small for the marker is still NUL-terminated and unharmed */
	memset(small, 'X', sizeof(small));
	errs_path_key(small, 3, "abc", "def");
	assert_string_equal(small, "ab");
	assert_int_equal(small[3], 'X');
	errs_path_key(small, 4, "abc", "def");
	assert_string_equal(small, "...");
	assert_int_equal(small[4], 'X');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_formats),
		cmocka_unit_test(test_add_long_message),
		cmocka_unit_test(test_many_lines),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_join_many),
		cmocka_unit_test(test_reset_reuse),
		cmocka_unit_test(test_path_key_idx),
		cmocka_unit_test(test_path_truncation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
