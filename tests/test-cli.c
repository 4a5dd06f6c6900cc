/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/cli.c: the exact usage-error text on stderr (read
 * back through a pipe), getopt's two failures, --version, and numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int saved = -1, rd = -1;
static char got[1024];

/* Nothing may assert between grab and release: cmocka reports on stdout. */
static void grab(int fd)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	fflush(fd == STDOUT_FILENO ? stdout : stderr);
	saved = dup(fd);
	dup2(p[1], fd);
	close(p[1]);
	rd = p[0];
}

static const char *release(int fd)
{
	ssize_t n;

	fflush(fd == STDOUT_FILENO ? stdout : stderr);
	dup2(saved, fd);
	close(saved);
	n = read(rd, got, sizeof(got) - 1);
	close(rd);
	got[n > 0 ? n : 0] = '\0';
	return got;
}

static void test_usage_error(void **state)
{
	int rc;

	cli_set_program("nfq-test");
	assert_string_equal(cli_program(), "nfq-test");
	grab(STDERR_FILENO);
	rc = cli_usage_error("--name: longer than %d bytes", 63);
	release(STDERR_FILENO);
	assert_int_equal(rc, CLI_EXIT_USAGE);
	assert_string_equal(got, "nfq-test: --name: longer than 63 bytes\n"
			    "Try 'nfq-test --help'.\n");
}

/* The stream variant writes there and nowhere else. */
static void test_usage_error_to(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	assert_non_null(f);
	cli_set_program("nfq-test");
	grab(STDERR_FILENO);
	rc = cli_usage_error_to(f, "unknown command '%s'", "frob");
	release(STDERR_FILENO);
	fclose(f);
	assert_int_equal(rc, CLI_EXIT_USAGE);
	assert_string_equal(buf, "nfq-test: unknown command 'frob'\nTry 'nfq-test --help'.\n");
	assert_string_equal(got, "");
	free(buf);
}

static void test_bad_option(void **state)
{
	char *argv[] = { "nfq-test", "--broker", NULL };
	char *argv2[] = { "nfq-test", "--bogus", NULL };
	static const struct option lo[] = {
		{ "broker", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	cli_set_program("nfq-test");
	opterr = 0;
	optind = 0;
	c = getopt_long(2, argv, ":b:", lo, NULL);
	assert_int_equal(c, ':');
	grab(STDERR_FILENO);
	rc = cli_bad_option(c, argv);
	release(STDERR_FILENO);
	assert_int_equal(rc, CLI_EXIT_USAGE);
	assert_string_equal(got, "nfq-test: option '--broker' needs an argument\n"
			    "Try 'nfq-test --help'.\n");
	optind = 0;
	c = getopt_long(2, argv2, ":b:", lo, NULL);
	assert_int_equal(c, '?');
	grab(STDERR_FILENO);
	cli_bad_option(c, argv2);
	release(STDERR_FILENO);
	assert_string_equal(got, "nfq-test: unknown option '--bogus'\nTry 'nfq-test --help'.\n");
}

static void test_version(void **state)
{
	char want[64];

	cli_set_program("nfq-test");
	snprintf(want, sizeof(want), "nfq-test %s\n", NFQB_VERSION_STRING);
	grab(STDOUT_FILENO);
	cli_print_version();
	release(STDOUT_FILENO);
	assert_string_equal(got, want);
}

static void test_parse_uint(void **state)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1x", "0x10", "11",
					   "99999999999999999999999" };
	unsigned long long v = 7;

	assert_int_equal(cli_parse_uint("--n", "10", 1, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(cli_parse_uint("--n", "0010", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];
		int rc;

		v = 7;
		cli_set_program("nfq-test");
		grab(STDERR_FILENO);
		rc = cli_parse_uint("--n", bad[i], 1, 10, &v);
		release(STDERR_FILENO);
		assert_int_equal(rc, CLI_EXIT_USAGE);
		assert_int_equal(v, 7);
		snprintf(want, sizeof(want), "nfq-test: --n: '%s' is not a number from 1 to 10\n"
			 "Try 'nfq-test --help'.\n", bad[i]);
		assert_string_equal(got, want);
	}
	assert_int_equal(cli_parse_uint("--n", "0", 1, 10, &v), CLI_EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_error),
		cmocka_unit_test(test_usage_error_to),
		cmocka_unit_test(test_bad_option),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_parse_uint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
