/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static bool verbose;

void log_set_verbose(bool on)
{
	verbose = on;
}

bool log_verbose(void)
{
	return verbose;
}

static const char *level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOGL_DEBUG: return "debug";
	case LOGL_INFO:  return "info";
	case LOGL_WARN:  return "warn";
	case LOGL_ERROR: return "error";
	}
	return "info";
}

static size_t put_ts(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n < len ? n : len - 1;
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
	char line[4096];
	size_t n, room;
	int saved = errno;
	va_list ap;

	if (lvl == LOGL_DEBUG && !verbose)
		return;
	n = put_ts(line, sizeof(line));
	n += (size_t)snprintf(line + n, sizeof(line) - n, " level=%s event=%s",
			      level_name(lvl), event);
	if (n >= sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Fields only when a byte of them fits besides ' ' and the newline. */
	if (fmt && *fmt && n < sizeof(line) - 3) {
		line[n++] = ' ';
		room = sizeof(line) - n - 1;   /* >= 2: a byte and vsnprintf's NUL */
		va_start(ap, fmt);
		int w = vsnprintf(line + n, room, fmt, ap);
		va_end(ap);
		if (w > 0)
			n += (size_t)w < room ? (size_t)w : room - 1;
	}
	line[n++] = '\n';
	/* stderr is unbuffered; one write keeps the line whole. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

static bool plain_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			return false;
	}
	return true;
}

const char *log_value(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	if (!s)
		s = "";
	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	if (plain_token(s)) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	buf[n++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[5];
		size_t el;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			el = 2;
		} else if (c < ' ' || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			el = 4;
		} else {
			esc[0] = (char)c;
			el = 1;
		}
		/* keep room for the closing quote and NUL */
		if (n + el + 2 > len)
			break;
		memcpy(buf + n, esc, el);
		n += el;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}
