/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

/* @n scaled by @base with suffixes @sfx[]: one decimal below 10, rounded down. */
static const char *scaled(char *buf, size_t len, uint64_t n, unsigned base,
			  const char *const *sfx, const char *unit)
{
	uint64_t div = 1;
	size_t i = 0;

	while (sfx[i + 1] && n / div >= base) {
		div *= base;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 "%s%s", n, unit, sfx[0]);
	else if (n / div < 10)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "%s%s", n / div,
			 (n % div) * 10 / div, unit, sfx[i]);
	else
		snprintf(buf, len, "%" PRIu64 "%s%s", n / div, unit, sfx[i]);
	return buf;
}

const char *fmt_count(char *buf, size_t len, uint64_t n)
{
	static const char *const sfx[] = { "", "k", "M", "G", "T", "P", "E", NULL };

	return scaled(buf, len, n, 1000, sfx, "");
}

const char *fmt_bytes(char *buf, size_t len, uint64_t n)
{
	static const char *const sfx[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", NULL };

	return scaled(buf, len, n, 1024, sfx, " ");
}

const char *fmt_rate(char *buf, size_t len, double r)
{
	if (!(r >= 0))
		r = 0;
	if (r < 10) {
		/* Rounded down to a tenth: 9.99 is "9.9", never "10.0". */
		unsigned tenths = (unsigned)(r * 10);

		snprintf(buf, len, "%u.%u", tenths / 10, tenths % 10);
		return buf;
	}
	return fmt_count(buf, len, r >= 1.8e19 ? UINT64_MAX : (uint64_t)r);
}

const char *fmt_age(char *buf, size_t len, long long s)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
	return buf;
}

static int grow(struct fmt_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 16;
	char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

	if (!c)
		return -ENOMEM;
	t->cells = c;
	t->cap = cap;
	return 0;
}

int fmt_table_init(struct fmt_table *t, size_t ncols, const char *const *hdr)
{
	*t = (struct fmt_table){ .ncols = ncols };
	t->right = calloc(ncols ? ncols : 1, sizeof(*t->right));
	if (!t->right)
		return -ENOMEM;
	for (size_t i = 0; i < ncols; i++)
		t->right[i] = hdr[i][0] == '>';
	{
		const char *h[64];

		for (size_t i = 0; i < ncols && i < 64; i++)
			h[i] = hdr[i] + (hdr[i][0] == '>');
		fmt_table_row(t, h);
	}
	return t->oom ? -ENOMEM : 0;
}

void fmt_table_row(struct fmt_table *t, const char *const *cells)
{
	char **row;

	if (t->oom)
		return;
	if (t->nrows == t->cap && grow(t) < 0) {
		t->oom = true;
		return;
	}
	row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = strdup(cells[i] ? cells[i] : "-");
		if (row[i])
			fmt_sanitize(row[i]);
		if (!row[i]) {
			while (i--)
				free(row[i]);
			t->oom = true;
			return;
		}
	}
	t->nrows++;
}

int fmt_table_print(const struct fmt_table *t, FILE *f, size_t maxrows)
{
	size_t *w, rows = t->nrows;

	if (t->oom)
		return -ENOMEM;
	if (maxrows && rows > maxrows + 1)
		rows = maxrows + 1;
	w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			if (n > w[c])
				w[c] = n;
		}
	for (size_t r = 0; r < rows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int pad = (int)(w[c] - strlen(s));
			bool last = c + 1 == t->ncols;

			if (c)
				fputs("  ", f);
			if (t->right[c])
				fprintf(f, "%*s%s", pad, "", s);
			else
				fprintf(f, "%s%*s", s, last ? 0 : pad, "");
		}
		fputc('\n', f);
	}
	free(w);
	return 0;
}

void fmt_table_free(struct fmt_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	*t = (struct fmt_table){ 0 };
}

char *fmt_sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}
