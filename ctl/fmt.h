/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl's formatting helpers: human units (1.2k, 3.4M, 5.6 MiB), ages
 * (3m12s) and tables of aligned columns, as `ip -s -h` and `kubectl get`
 * print them. Pure functions on caller buffers, tested in tests/test-fmt.c.
 */
#ifndef CTL_FMT_H
#define CTL_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Room for any fmt_count/fmt_bytes/fmt_age/fmt_rate result. */
#define FMT_NUM_MAX 24

/*
 * fmt_count - @n with a decimal suffix: "999", "1.2k", "12k", "3.4M", "5.6G",
 * "7.8T" (one decimal below 10, none above, rounded down so a counter
 * never looks larger than it is). Returns @buf.
 */
const char *fmt_count(char *buf, size_t len, uint64_t n);

/*
 * fmt_bytes - @n bytes in binary units: "512 B", "1.5 KiB", "34 MiB",
 * "5.6 GiB" (same rounding as fmt_count). Returns @buf.
 */
const char *fmt_bytes(char *buf, size_t len, uint64_t n);

/*
 * fmt_rate - a per-second rate @r (>= 0) as fmt_count does, with one
 * decimal below 10 ("0.5", "3.0", "12", "1.2k"). Returns @buf.
 */
const char *fmt_rate(char *buf, size_t len, double r);

/*
 * fmt_age - @secs as "45s", "3m12s", "2h05m", "3d04h" (the two largest
 * units); negative gives "-". Returns @buf.
 */
const char *fmt_age(char *buf, size_t len, long long secs);

/* A table of text cells printed with aligned columns (two spaces apart). */
struct fmt_table {
	size_t ncols, nrows, cap;
	char **cells;             /* nrows x ncols, row 0 the header */
	bool *right;              /* per column: right-aligned (numbers) */
	bool oom;
};

/*
 * fmt_table_init - a table with the @ncols headers @hdr; a header starting
 * with '>' is a right-aligned column (the '>' is not printed). Returns 0
 * or -ENOMEM.
 */
int fmt_table_init(struct fmt_table *t, size_t ncols, const char *const *hdr);

/*
 * fmt_table_row - append a row of ncols cells (copied; NULL prints "-").
 * An allocation failure is remembered and reported by fmt_table_print().
 */
void fmt_table_row(struct fmt_table *t, const char *const *cells);

/*
 * fmt_table_print - the table on @f: every column as wide as its widest
 * cell, two spaces between columns, no trailing blanks; at most
 * @maxrows rows after the header (0: all). Returns 0 or -ENOMEM.
 */
int fmt_table_print(const struct fmt_table *t, FILE *f, size_t maxrows);

/*
 * fmt_sanitize - replace control bytes (< 0x20, 0x7f) in @s by '?', in
 * place: names come from agents and must not drive the terminal.
 * Returns @s.
 */
char *fmt_sanitize(char *s);

/* fmt_table_free - release the cells; the table may be initialised again. */
void fmt_table_free(struct fmt_table *t);

#endif
