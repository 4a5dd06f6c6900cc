/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/escape.c: both styles byte by byte, NULL, small
 * buffers, and that a cut string is closed at a whole escape (the JSON
 * style is checked by json-c parsing it back).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <json-c/json.h>

#include "escape.h"

static void test_log_style(void **state)
{
	char b[64];
	bool cut = true;

	assert_int_equal(escape_quote(b, sizeof(b), "a \"b\"\\", ESCAPE_LOG, &cut), 11);
	assert_string_equal(b, "\"a \\\"b\\\"\\\\\"");
	assert_false(cut);
	escape_quote(b, sizeof(b), "\n\t\x01\x7f" "\xc3\xa9", ESCAPE_LOG, NULL);
	assert_string_equal(b, "\"\\x0a\\x09\\x01\\x7f\xc3\xa9\"");
	/* NULL is the empty string in a log line */
	escape_quote(b, sizeof(b), NULL, ESCAPE_LOG, &cut);
	assert_string_equal(b, "\"\"");
	assert_false(cut);
}

static void test_json_style(void **state)
{
	const char *in = "a\"b\\c\nd\re\tf\x01g\x7f" "\xc3\xa4";
	json_object *o;
	char b[128];

	escape_quote(b, sizeof(b), in, ESCAPE_JSON, NULL);
	assert_string_equal(b, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007f\xc3\xa4\"");
	o = json_tokener_parse(b);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(o), in);
	json_object_put(o);
	assert_int_equal(escape_quote(b, sizeof(b), NULL, ESCAPE_JSON, NULL), 4);
	assert_string_equal(b, "null");
}

static void test_small_buffers(void **state)
{
	char b[8];
	bool cut = false;

	memset(b, 'X', sizeof(b));
	assert_int_equal(escape_quote(b, 2, "x", ESCAPE_LOG, &cut), 0);
	assert_string_equal(b, "");
	assert_true(cut);
	assert_int_equal(escape_quote(b, 0, "x", ESCAPE_LOG, NULL), 0);
	assert_int_equal(b[0], '\0');   /* untouched by len 0, NUL from before */
	assert_int_equal(escape_quote(b, 4, NULL, ESCAPE_JSON, &cut), 0);
	assert_string_equal(b, "");
	assert_int_equal(escape_quote(b, 3, "abc", ESCAPE_LOG, &cut), 2);
	assert_string_equal(b, "\"\"");
	assert_true(cut);
}

/* Every buffer size: a closed, parseable prefix, never half an escape. */
static void test_cut_property(void **state)
{
	const char *in = "ab\"\x01\\\ncd";
	char b[64];

	for (size_t len = 3; len < 40; len++) {
		json_object *o;
		bool cut;
		size_t n;

		memset(b, 'X', sizeof(b));
		n = escape_quote(b, len, in, ESCAPE_JSON, &cut);
		assert_true(n < len);
		assert_int_equal(b[n], '\0');
		assert_int_equal(b[n - 1], '"');
		o = json_tokener_parse(b);
		assert_non_null(o);
		assert_memory_equal(json_object_get_string(o), in,
				    strlen(json_object_get_string(o)));
		assert_int_equal(cut, strlen(json_object_get_string(o)) < strlen(in));
		json_object_put(o);
	}
}

static void test_plain_token(void **state)
{
	assert_true(escape_plain_token("pod-a/x_1:80"));
	assert_false(escape_plain_token(""));
	assert_false(escape_plain_token(NULL));
	assert_false(escape_plain_token("a b"));
	assert_false(escape_plain_token("k=v"));
	assert_false(escape_plain_token("q\""));
	assert_false(escape_plain_token("b\\"));
	assert_false(escape_plain_token("\x7f"));
	assert_false(escape_plain_token("caf\xc3\xa9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_style),
		cmocka_unit_test(test_json_style),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_cut_property),
		cmocka_unit_test(test_plain_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
