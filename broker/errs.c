/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errs.h"

void errs_add(struct errs *e, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	char *line;
	int len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		char **l = realloc(e->lines, cap * sizeof(*l));

		if (!l) {
			e->oom = 1;
			return;
		}
		e->lines = l;
		e->cap = cap;
	}
	if (path && *path)
		len = asprintf(&line, "%s: %s", path, msg);
	else
		len = asprintf(&line, "%s", msg);
	if (len < 0) {
		e->oom = 1;
		return;
	}
	e->lines[e->n++] = line;
}

void errs_reset(struct errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->lines[i]);
	free(e->lines);
	memset(e, 0, sizeof(*e));
}

char *errs_join(const struct errs *e, const char *sep)
{
	size_t total = 1, seplen = strlen(sep);
	char *out, *p;

	for (size_t i = 0; i < e->n; i++)
		total += strlen(e->lines[i]) + seplen;
	out = malloc(total);
	if (!out)
		return NULL;
	p = out;
	*p = '\0';
	for (size_t i = 0; i < e->n; i++) {
		size_t l = strlen(e->lines[i]);

		if (i) {
			memcpy(p, sep, seplen);
			p += seplen;
		}
		memcpy(p, e->lines[i], l);
		p += l;
	}
	*p = '\0';
	return out;
}

static void path_fmt(char *out, size_t outlen, int n)
{
	/* A cut path still has to say where it was cut. */
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen >= 4)
			strcpy(out + outlen - 4, "...");
	}
}

void errs_path_key(char *out, size_t outlen, const char *base, const char *key)
{
	int n;

	if (base && *base)
		n = snprintf(out, outlen, "%s.%s", base, key);
	else
		n = snprintf(out, outlen, "%s", key);
	path_fmt(out, outlen, n);
}

void errs_path_idx(char *out, size_t outlen, const char *base, size_t idx)
{
	int n = snprintf(out, outlen, "%s[%zu]", base ? base : "", idx);

	path_fmt(out, outlen, n);
}
