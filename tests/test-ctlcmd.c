/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/ctlcmd.c, the control commands' table, and the docs
 * against it: docs/control.md's command table lists exactly the table's
 * commands, "(admin)" exactly on the admin ones, and its nfq-ctl synopsis
 * names them all in the table's order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcmd.h"

#define DOC TEST_SRCDIR "/../docs/control.md"

static void test_lookup(void **state)
{
	const struct ctlcmd *w = ctlcmd_find("watch");
	char buf[CTLCMD_NAMES_MAX];

	assert_non_null(w);
	assert_int_equal(w->access, CTLCMD_ADMIN);
	assert_true(ctlcmd_accepts(w, "cmd"));
	assert_true(ctlcmd_accepts(w, "ns"));
	assert_false(ctlcmd_accepts(w, "nss"));
	assert_false(ctlcmd_accepts(ctlcmd_find("status"), "ns"));
	assert_true(ctlcmd_accepts(ctlcmd_find("status"), "cmd"));
	assert_null(ctlcmd_find("Status"));
	assert_null(ctlcmd_find(""));
	/* The table's names joined by ", ", the ones every broker had first. */
	assert_int_equal(strncmp(ctlcmd_names(buf, sizeof(buf)),
				 "status, agents, rules, reload, watch, metrics", 45), 0);
	for (size_t i = 0, off = 0; i < ctlcmd_count(); i++) {
		size_t n = strlen(ctlcmd_at(i)->name);

		assert_memory_equal(buf + off, ctlcmd_at(i)->name, n);
		off += n;
		if (i + 1 == ctlcmd_count()) {
			assert_int_equal(buf[off], '\0');
		} else {
			assert_memory_equal(buf + off, ", ", 2);
			off += 2;
		}
	}
	/* Cut short, still terminated. */
	assert_string_equal(ctlcmd_names(buf, 9), "status, ");
	assert_true(strlen(ctlcmd_names(buf, sizeof(buf))) < CTLCMD_NAMES_MAX - 1);
}

/* Every row: a name, help text, keys within bounds, names unique. */
static void test_rows_complete(void **state)
{
	for (size_t i = 0; i < ctlcmd_count(); i++) {
		const struct ctlcmd *c = ctlcmd_at(i);

		assert_true(c->name && c->name[0]);
		assert_true(c->help && c->help[0]);
		assert_non_null(c->args);
		assert_null(c->keys[CTLCMD_KEYS_MAX]);
		assert_ptr_equal(ctlcmd_find(c->name), c);
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/*
 * The rows of the markdown table whose header starts "| command |": each
 * first cell is `name` or `name` (admin). Marks seen[i] per command.
 */
static void test_doc_command_table(void **state)
{
	char *doc = slurp(DOC), *p = strstr(doc, "\n| command |");
	bool seen[64] = { false };
	size_t rows = 0;

	assert_non_null(p);
	assert_true(ctlcmd_count() < 64);
	p = strchr(p + 1, '\n');          /* the header line */
	assert_non_null(p);
	p = strchr(p + 1, '\n');          /* the |---| line */
	assert_non_null(p);
	while (p && p[1] == '|') {
		char name[64] = "", rest[64] = "";
		const struct ctlcmd *c;

		if (sscanf(p + 1, "| `%63[^`]`%63[^|]", name, rest) < 1)
			fail_msg("malformed row in %s: %.60s", DOC, p + 1);
		c = ctlcmd_find(name);
		if (!c)
			fail_msg("%s lists \"%s\", which proto/ctlcmd.c does not have", DOC, name);
		if (seen[c - ctlcmd_at(0)])
			fail_msg("%s lists \"%s\" twice", DOC, name);
		seen[c - ctlcmd_at(0)] = true;
		if ((strstr(rest, "(admin)") != NULL) != (c->access == CTLCMD_ADMIN))
			fail_msg("%s: \"%s\" is %s in proto/ctlcmd.c: mark it so", DOC, name,
				 c->access == CTLCMD_ADMIN ? "admin (add \"(admin)\")" :
				 "read-only (no \"(admin)\")");
		rows++;
		p = strchr(p + 1, '\n');
	}
	for (size_t i = 0; i < ctlcmd_count(); i++)
		if (!seen[i])
			fail_msg("%s's command table lacks \"%s\"", DOC, ctlcmd_at(i)->name);
	assert_int_equal(rows, ctlcmd_count());
	free(doc);
}

/* The synopsis "nfq-ctl [--control SOCKET] status|agents|...". */
static void test_doc_synopsis(void **state)
{
	char *doc = slurp(DOC), want[512];
	size_t off = 0;

	off += (size_t)snprintf(want, sizeof(want), "\nnfq-ctl [--control SOCKET] ");
	for (size_t i = 0; i < ctlcmd_count(); i++) {
		const struct ctlcmd *c = ctlcmd_at(i);

		off += (size_t)snprintf(want + off, sizeof(want) - off, "%s%s%s%s", i ? "|" : "",
					c->name, c->args[0] ? " " : "", c->args);
	}
	snprintf(want + off, sizeof(want) - off, "\n");
	if (!strstr(doc, want))
		fail_msg("%s lacks the synopsis line%s", DOC, want);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_rows_complete),
		cmocka_unit_test(test_doc_command_table),
		cmocka_unit_test(test_doc_synopsis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
