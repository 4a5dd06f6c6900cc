/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "escape.h"

/* The escape of one byte into @esc (room for 6); returns its length. */
static size_t escape_byte(unsigned char c, enum escape_style style, char esc[6])
{
	static const char hex[] = "0123456789abcdef";

	esc[0] = '\\';
	if (c == '"' || c == '\\') {
		esc[1] = (char)c;
		return 2;
	}
	if (c >= ' ' && c != 0x7f) {
		esc[0] = (char)c;
		return 1;
	}
	if (style == ESCAPE_LOG) {
		esc[1] = 'x';
		esc[2] = hex[c >> 4];
		esc[3] = hex[c & 15];
		return 4;
	}
	switch (c) {
	case '\n': esc[1] = 'n'; return 2;
	case '\r': esc[1] = 'r'; return 2;
	case '\t': esc[1] = 't'; return 2;
	}
	memcpy(esc + 1, "u00", 3);
	esc[4] = hex[c >> 4];
	esc[5] = hex[c & 15];
	return 6;
}

size_t escape_quote(char *buf, size_t len, const char *s, enum escape_style style,
		    bool *cut)
{
	bool dummy;
	size_t n = 0;

	if (!cut)
		cut = &dummy;
	*cut = true;
	if (!s && style == ESCAPE_JSON) {
		if (len < 5) {
			if (len)
				buf[0] = '\0';
			return 0;
		}
		memcpy(buf, "null", 5);
		*cut = false;
		return 4;
	}
	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	if (!s)
		s = "";
	buf[n++] = '"';
	for (; *s; s++) {
		char esc[6];
		size_t el = escape_byte((unsigned char)*s, style, esc);

		/* Keep room for the closing quote and the NUL. */
		if (n + el + 2 > len)
			break;
		memcpy(buf + n, esc, el);
		n += el;
	}
	*cut = *s != '\0';
	buf[n++] = '"';
	buf[n] = '\0';
	return n;
}

bool escape_plain_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			return false;
	}
	return true;
}
