/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
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

const char *log_value(char *buf, size_t len, const char *s)
{
	if (!s)
		s = "";
	if (len >= 3 && escape_plain_token(s)) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	escape_quote(buf, len, s, ESCAPE_LOG, NULL);
	return buf;
}
