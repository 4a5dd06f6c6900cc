/* SPDX-License-Identifier: MIT */
/*
 * The one string escaper: a value quoted for a key=value log line or for a
 * JSON document, into a caller's fixed buffer (the verdict step formats
 * watch events with it, so it never allocates).
 */
#ifndef NFQB_COMMON_ESCAPE_H
#define NFQB_COMMON_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

enum escape_style {
	/* '"' and '\' backslashed, other control bytes and DEL as \xNN. */
	ESCAPE_LOG,
	/* JSON: \" \\ \n \r \t, other control bytes and DEL as \u00NN;
	 * a NULL string is the literal null. */
	ESCAPE_JSON,
};

/*
 * escape_quote - write @s double-quoted in @style into @buf (@len bytes,
 * NUL-terminated). A string that does not fit is cut at a whole escape and
 * still closed by its quote; @cut (may be NULL) tells whether that happened.
 * Returns the length written; 0 (an empty @buf) when @len < 3, or < 5 for
 * a JSON null.
 */
size_t escape_quote(char *buf, size_t len, const char *s, enum escape_style style,
		    bool *cut);

/*
 * escape_plain_token - whether @s can stand unquoted as a log value: not
 * empty, and no space, control byte, DEL, non-ASCII byte, '"', '\' or '='.
 */
bool escape_plain_token(const char *s);

#endif
