/* SPDX-License-Identifier: MIT */
/*
 * The one logger of every program (broker, agent, CNI plugin): one line per
 * event on stderr,
 *   ts=2024-05-01T12:00:00.123Z level=info event=attach name=pod-a ...
 * so that operators and tests can grep and parse it as key=value fields.
 * When stderr is the systemd journal (JOURNAL_STREAM names stderr's
 * device:inode) the journal keeps the time itself and wants the priority:
 *   <6>level=info event=attach name=pod-a ...
 */
#ifndef NFQB_COMMON_LOG_H
#define NFQB_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

/*
 * log_utc - @secs since the epoch as a UTC date and time in @tm (the
 * fields gmtime_r() fills but tm_wday, tm_yday and tm_isdst, left 0),
 * without loading the time zone as gmtime_r() does.
 */
void log_utc(int64_t secs, struct tm *tm);

/* log_set_verbose - whether LOGL_DEBUG events are printed (--verbose). */
void log_set_verbose(bool on);
bool log_verbose(void);

/*
 * log_detect - decide again whether stderr is the journal (JOURNAL_STREAM
 * is "DEV:INO" and matches fstat(2) of fd 2). Done once on the first event;
 * call it again after pointing stderr elsewhere. Returns whether it is.
 */
bool log_detect(void);

/*
 * log_event - print "ts=... level=... event=@event" (to the journal:
 * "<N>level=... event=@event", N the syslog priority) followed by the
 * printf-formatted @fmt (more key=value fields, may be NULL), as one
 * write(2) so lines of one process never interleave.
 */
__attribute__((format(printf, 3, 4)))
void log_event(enum log_level lvl, const char *event, const char *fmt, ...);

/*
 * log_value - @s as a field value: unchanged when it is a plain token,
 * otherwise double-quoted with '"' and '\' escaped and control bytes
 * shown as \xNN. Writes into @buf (truncating) and returns it.
 */
const char *log_value(char *buf, size_t len, const char *s);

/* Room for a quoted value of a name or reason. */
#define LOG_VALUE_MAX 704

#endif
