/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "escape.h"
#include "log.h"

static bool verbose;
/* -1: not decided yet; 0: a file, pipe or terminal; 1: the journal. */
static int to_journal = -1;

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

/* The syslog priority the journal files the line under (sd-daemon.h). */
static int level_prio(enum log_level lvl)
{
	switch (lvl) {
	case LOGL_DEBUG: return 7;
	case LOGL_INFO:  return 6;
	case LOGL_WARN:  return 4;
	case LOGL_ERROR: return 3;
	}
	return 6;
}

bool log_detect(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;
	int end = 0;

	/* systemd sets it for the service's stderr; a child whose stderr was
	 * redirected (the CNI plugin's agents log to a file) inherits the
	 * variable, but not the match. */
	to_journal = js && sscanf(js, "%ju:%ju%n", &dev, &ino, &end) == 2 && js[end] == '\0' &&
		     fstat(STDERR_FILENO, &st) == 0 && (uintmax_t)st.st_dev == dev &&
		     (uintmax_t)st.st_ino == ino;
	return to_journal;
}

static size_t put_ts(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%03ldZ ", ts.tv_nsec / 1000000);
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
	if (to_journal < 0)
		log_detect();
	/* The journal stamps lines itself and files them by priority. */
	if (to_journal)
		n = (size_t)snprintf(line, sizeof(line), "<%d>", level_prio(lvl));
	else
		n = put_ts(line, sizeof(line));
	n += (size_t)snprintf(line + n, sizeof(line) - n, "level=%s event=%s",
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
