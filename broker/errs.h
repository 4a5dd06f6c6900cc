/* SPDX-License-Identifier: MIT */
/*
 * Collected configuration errors: each one "<json path>: <message>", kept in
 * the order found so `nfq-broker --check` can print all of them.
 */
#ifndef BROKER_ERRS_H
#define BROKER_ERRS_H

#include <stddef.h>

#define ERRS_PATH_MAX 256

struct errs {
	char **lines;
	size_t n, cap;
	int oom;                 /* an allocation failed; lines may be missing */
};

/* errs_add - record "<path>: <printf message>". path may be "" for the root. */
__attribute__((format(printf, 3, 4)))
void errs_add(struct errs *e, const char *path, const char *fmt, ...);
/* errs_reset - free every line; the struct can be reused. */
void errs_reset(struct errs *e);
/* errs_join - all lines joined by @sep into a new string (caller frees). */
char *errs_join(const struct errs *e, const char *sep);

/* Path building into a caller's fixed buffer: "a" + ".b", "a" + "[3]".
 * A path that would overflow ends in "..." rather than failing. */
void errs_path_key(char *out, size_t outlen, const char *base, const char *key);
void errs_path_idx(char *out, size_t outlen, const char *base, size_t idx);

#endif
