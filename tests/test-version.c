/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/version.c and <nfqb/version.h>: one version source. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfqb/queue.h>
#include <nfqb/version.h>

/* The runtime string is the header's, which is the parts joined. */
static void test_runtime_matches_header(void **state)
{
	char parts[32];

	(void)state;
	assert_non_null(nfqb_version());
	assert_string_equal(nfqb_version(), NFQB_VERSION_STRING);
	snprintf(parts, sizeof(parts), "%d.%d.%d", NFQB_VERSION_MAJOR, NFQB_VERSION_MINOR,
		 NFQB_VERSION_PATCH);
	assert_string_equal(parts, NFQB_VERSION_STRING);
	assert_string_equal(NFQB_VERSION, NFQB_VERSION_STRING);
	assert_int_equal(NFQB_VERSION_NUM, (NFQB_VERSION_MAJOR << 16) |
			 (NFQB_VERSION_MINOR << 8) | NFQB_VERSION_PATCH);
}

/* The header came from project(version: ...) in meson.build, the one
 * place a release changes: read it back from the source tree. */
static void test_header_matches_meson_build(void **state)
{
	char line[256], want[64];
	FILE *f = fopen(TEST_SRCDIR "/../meson.build", "r");
	bool found = false;

	(void)state;
	assert_non_null(f);
	snprintf(want, sizeof(want), "version: '%s',", NFQB_VERSION_STRING);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "version: '") && strstr(line, want);
	fclose(f);
	assert_true(found);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_matches_header),
		cmocka_unit_test(test_header_matches_meson_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
