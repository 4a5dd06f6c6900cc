/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nfq-ctl's formatting helpers (ctl/fmt.c): human units at
 * and around every boundary, rounding down, ages, and the tables' column
 * alignment, truncation and sanitising.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

static void test_count(void **state)
{
	static const struct { uint64_t n; const char *s; } cases[] = {
		{ 0, "0" }, { 7, "7" }, { 999, "999" }, { 1000, "1.0k" }, { 1099, "1.0k" },
		{ 1234, "1.2k" }, { 1999, "1.9k" }, { 9999, "9.9k" }, { 10000, "10k" },
		{ 999999, "999k" }, { 1000000, "1.0M" }, { 3456789, "3.4M" },
		{ 5600000000ull, "5.6G" }, { 7800000000000ull, "7.8T" },
		{ UINT64_MAX, "18E" },
	};
	char b[FMT_NUM_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(fmt_count(b, sizeof(b), cases[i].n), cases[i].s);
}

static void test_bytes(void **state)
{
	static const struct { uint64_t n; const char *s; } cases[] = {
		{ 0, "0 B" }, { 512, "512 B" }, { 1023, "1023 B" }, { 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" }, { 10240, "10 KiB" }, { 158464, "154 KiB" },
		{ 5872026, "5.6 MiB" }, { 5872025, "5.5 MiB" }, { 1048575, "1023 KiB" },
		{ 1ull << 30, "1.0 GiB" },
		{ UINT64_MAX, "15 EiB" },
	};
	char b[FMT_NUM_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(fmt_bytes(b, sizeof(b), cases[i].n), cases[i].s);
}

static void test_rate(void **state)
{
	static const struct { double r; const char *s; } cases[] = {
		{ 0, "0.0" }, { 0.5, "0.5" }, { 3, "3.0" }, { 9.99, "9.9" }, { 10, "10" },
		{ 12.7, "12" }, { 1234.5, "1.2k" }, { -1, "0.0" }, { 1e30, "18E" },
	};
	char b[FMT_NUM_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(fmt_rate(b, sizeof(b), cases[i].r), cases[i].s);
}

static void test_age(void **state)
{
	static const struct { long long s; const char *str; } cases[] = {
		{ -5, "-" }, { 0, "0s" }, { 59, "59s" }, { 60, "1m00s" }, { 192, "3m12s" },
		{ 3599, "59m59s" }, { 3600, "1h00m" }, { 7500, "2h05m" }, { 86399, "23h59m" },
		{ 86400, "1d00h" }, { 273600, "3d04h" },
	};
	char b[FMT_NUM_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(fmt_age(b, sizeof(b), cases[i].s), cases[i].str);
}

/* The table printed into a string. */
static char *print(const struct fmt_table *t, size_t maxrows)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(fmt_table_print(t, f, maxrows), 0);
	fclose(f);
	return buf;
}

static void test_table(void **state)
{
	static const char *const hdr[] = { "NAME", ">PACKETS", "STATE" };
	struct fmt_table t;
	char *s;

	assert_int_equal(fmt_table_init(&t, 3, hdr), 0);
	fmt_table_row(&t, (const char *const[]){ "pod-a", "1.2k", "attached" });
	fmt_table_row(&t, (const char *const[]){ "a-much-longer-name", "5", NULL });
	fmt_table_row(&t, (const char *const[]){ "evil\033[2J\n", "12345678", "x" });
	s = print(&t, 0);
	/* Left columns padded, right columns right-aligned, no trailing blanks. */
	assert_string_equal(s,
		"NAME                 PACKETS  STATE\n"
		"pod-a                   1.2k  attached\n"
		"a-much-longer-name         5  -\n"
		"evil?[2J?           12345678  x\n");
	free(s);
	/* At most 2 rows after the header; widths from the rows shown. */
	s = print(&t, 2);
	assert_string_equal(s,
		"NAME                PACKETS  STATE\n"
		"pod-a                  1.2k  attached\n"
		"a-much-longer-name        5  -\n");
	free(s);
	fmt_table_free(&t);
	fmt_table_free(&t);      /* twice: a no-op */

	/* A header only. */
	assert_int_equal(fmt_table_init(&t, 3, hdr), 0);
	s = print(&t, 0);
	assert_string_equal(s, "NAME  PACKETS  STATE\n");
	free(s);
	fmt_table_free(&t);
}

static void test_table_grows(void **state)
{
	static const char *const hdr[] = { ">N" };
	struct fmt_table t;
	char b[16], *s;

	assert_int_equal(fmt_table_init(&t, 1, hdr), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(b, sizeof(b), "%d", i);
		fmt_table_row(&t, (const char *const[]){ b });
	}
	assert_int_equal(t.nrows, 101);
	s = print(&t, 0);
	assert_non_null(strstr(s, "\n 0\n 1\n"));
	assert_non_null(strstr(s, "\n99\n"));
	free(s);
	fmt_table_free(&t);
}

static void test_sanitize(void **state)
{
	char s[] = "a\tb\x7f" "c\x01\xc3\xa9";

	assert_string_equal(fmt_sanitize(s), "a?b?c?\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_grows),
		cmocka_unit_test(test_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
