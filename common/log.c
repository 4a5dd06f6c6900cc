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

/*
 * Seconds since the epoch to a UTC date and time, the days by H. Hinnant's
 * civil_from_days:
 * gmtime_r() and strftime() both load the time zone (/etc/localtime) on
 * first use, a file read that a UTC stamp never needs, on every agent's
 * start, on the attach path.
 */
void log_utc(int64_t secs, struct tm *tm)
{
	int64_t days = secs / 86400, rem = secs % 86400;
	int64_t era, doe, yoe, doy, mp, y;

	if (rem < 0) {
		rem += 86400;
		days--;
	}
	days += 719468;                          /* from 0000-03-01 */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;               /* [0, 146096] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;                /* March = 0 */
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_year = (int)(y + (tm->tm_mon < 2) - 1900);
	tm->tm_hour = (int)(rem / 3600);
	tm->tm_min = (int)(rem / 60 % 60);
	tm->tm_sec = (int)(rem % 60);
}

static size_t put_ts(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	log_utc(ts.tv_sec, &tm);
	n = (size_t)snprintf(buf, len, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
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
