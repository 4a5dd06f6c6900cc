/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/log.c: the one-line key=value events on stderr and
 * the quoting of field values. stderr is swapped for a SOCK_SEQPACKET
 * socket while an event is logged, so every write(2) arrives as one
 * record: that checks the exact bytes and that a line is one write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "log.h"

/* ------------------------------------------------------------ capture */

#define CAP_MAX 8
#define CAP_LEN 16384

/* The records (writes) that reached stderr between cap_begin and cap_end. */
struct cap {
	size_t n;
	size_t len[CAP_MAX];
	char rec[CAP_MAX][CAP_LEN + 1];
};

static struct cap cap;
static int cap_rd = -1, cap_saved = -1;

/* Nothing may assert between cap_begin and cap_end: cmocka reports on stderr. */
static void cap_begin(void)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_int_equal(dup2(sv[1], STDERR_FILENO), STDERR_FILENO);
	close(sv[1]);
	cap_rd = sv[0];
}

static void cap_end(void)
{
	int rc = dup2(cap_saved, STDERR_FILENO);

	close(cap_saved);
	cap_saved = -1;
	assert_int_equal(rc, STDERR_FILENO);
	memset(&cap, 0, sizeof(cap));
	for (;;) {
		ssize_t n = recv(cap_rd, cap.rec[cap.n], CAP_LEN, MSG_DONTWAIT);

		if (n <= 0) {
			/* the writer is closed: EOF once the records are read */
			assert_int_equal(n, 0);
			break;
		}
		assert_true(cap.n < CAP_MAX);
		cap.rec[cap.n][n] = '\0';
		cap.len[cap.n++] = (size_t)n;
	}
	close(cap_rd);
	cap_rd = -1;
}

#define TS_RE "^ts=([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\\.[0-9]{3}Z "

/* Record @i is one line: a current UTC timestamp, then exactly @rest. */
static void check_line(size_t i, const char *rest)
{
	regex_t re;
	regmatch_t mt[7];
	const char *r = cap.rec[i];
	struct tm tm = { 0 };
	struct timespec ts;
	time_t t, now;

	/* The line's clock, not time(2): glibc answers time() from the coarse
	 * clock, which can be a tick behind, so a line stamped just after a
	 * second began would look like it came from the future. */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec;

	assert_true(i < cap.n);
	assert_int_equal(strlen(r), cap.len[i]);         /* no NUL inside */
	assert_int_equal(regcomp(&re, TS_RE, REG_EXTENDED), 0);
	if (regexec(&re, r, 7, mt, 0) != 0)
		fail_msg("no timestamp at the start of \"%s\"", r);
	regfree(&re);
	tm.tm_year = atoi(r + mt[1].rm_so) - 1900;
	tm.tm_mon = atoi(r + mt[2].rm_so) - 1;
	tm.tm_mday = atoi(r + mt[3].rm_so);
	tm.tm_hour = atoi(r + mt[4].rm_so);
	tm.tm_min = atoi(r + mt[5].rm_so);
	tm.tm_sec = atoi(r + mt[6].rm_so);
	t = timegm(&tm);
	/* UTC, whatever TZ says, and now */
	assert_true(t <= now && now - t <= 5);
	assert_string_equal(r + mt[0].rm_eo, rest);
}

static int setup(void **state)
{
	/* A local zone far from UTC, so a localtime() timestamp would show. */
	setenv("TZ", "XYZ-7", 1);
	tzset();
	log_set_verbose(false);
	/* Under a systemd unit the runner's stderr may be the journal. */
	unsetenv("JOURNAL_STREAM");
	log_detect();
	return 0;
}

/* ------------------------------------------------------------ log_event */

static void test_levels(void **state)
{
	assert_false(log_verbose());
	cap_begin();
	log_event(LOGL_INFO, "attach", "name=%s queues=%d", "pod-a", 2);
	log_event(LOGL_WARN, "refuse", "reason=x");
	log_event(LOGL_ERROR, "fatal", "error=%s", "boom");
	log_event(LOGL_DEBUG, "hidden", "k=v");
	log_event((enum log_level)42, "odd", NULL);
	cap_end();
	assert_int_equal(cap.n, 4);
	check_line(0, "level=info event=attach name=pod-a queues=2\n");
	check_line(1, "level=warn event=refuse reason=x\n");
	check_line(2, "level=error event=fatal error=boom\n");
	check_line(3, "level=info event=odd\n");

	log_set_verbose(true);
	assert_true(log_verbose());
	cap_begin();
	log_event(LOGL_DEBUG, "conn", "fd=%d", 7);
	cap_end();
	log_set_verbose(false);
	assert_false(log_verbose());
	assert_int_equal(cap.n, 1);
	check_line(0, "level=debug event=conn fd=7\n");

	cap_begin();
	log_event(LOGL_DEBUG, "conn", "fd=%d", 8);
	cap_end();
	assert_int_equal(cap.n, 0);
}

static void test_no_fields(void **state)
{
	cap_begin();
	log_event(LOGL_INFO, "start", NULL);
	/* not a literal: the compiler refuses "" as a format (an argument keeps
	 * -Wformat-security quiet) */
	const char *empty = "";
	log_event(LOGL_INFO, "stop", empty, 0);
	log_event(LOGL_INFO, "x", "%s", "");
	cap_end();
	assert_int_equal(cap.n, 3);
	/* no trailing blank when there are no fields */
	check_line(0, "level=info event=start\n");
	check_line(1, "level=info event=stop\n");
	/* a format printing nothing still gets its separating blank */
	check_line(2, "level=info event=x \n");
}

static void test_errno_kept(void **state)
{
	errno = EXDEV;
	cap_begin();
	log_event(LOGL_WARN, "e", "a=1");
	cap_end();
	assert_int_equal(cap.n, 1);
	errno = EXDEV;
	log_set_verbose(false);
	log_event(LOGL_DEBUG, "hidden", "a=1");
	assert_int_equal(errno, EXDEV);
	errno = ENOSPC;
	cap_begin();
	log_event(LOGL_INFO, "e", "a=%d", 2);
	int saved = errno;
	cap_end();
	assert_int_equal(saved, ENOSPC);

	/* stderr gone: the failing write(2) must not leak its EBADF either */
	int keep = dup(STDERR_FILENO);

	assert_true(keep >= 0);
	close(STDERR_FILENO);
	errno = EXDEV;
	log_event(LOGL_ERROR, "e", "a=%d", 3);
	saved = errno;
	assert_int_equal(dup2(keep, STDERR_FILENO), STDERR_FILENO);
	close(keep);
	assert_int_equal(saved, EXDEV);
}

/* Fields longer than the line buffer: one line, cut, still ending in '\n'. */
static void test_truncation(void **state)
{
	char *big = malloc(10001);
	const char *r, *body;

	assert_non_null(big);
	memset(big, 'v', 10000);
	big[10000] = '\0';
	cap_begin();
	log_event(LOGL_INFO, "big", "k=%s", big);
	log_event(LOGL_INFO, big, "k=%s", "v");
	log_event(LOGL_INFO, big, NULL);
	log_event(LOGL_INFO, "after", "ok=1");
	cap_end();
	assert_int_equal(cap.n, 4);
	for (size_t i = 0; i < 3; i++) {
		r = cap.rec[i];
		assert_int_equal(strlen(r), cap.len[i]);
		assert_true(cap.len[i] <= 4096);
		assert_true(cap.len[i] >= 4000);
		assert_int_equal(r[cap.len[i] - 1], '\n');
		assert_ptr_equal(strchr(r, '\n'), r + cap.len[i] - 1);
		assert_int_equal(strncmp(r, "ts=", 3), 0);
	}
	/* the long value fills the line up to the newline */
	body = strstr(cap.rec[0], " level=info event=big k=vvv");
	assert_non_null(body);
	body += strlen(" level=info event=big k=");
	assert_int_equal(strspn(body, "v"), cap.len[0] - 1 - (size_t)(body - cap.rec[0]));
	/* a long event name is cut the same way */
	assert_non_null(strstr(cap.rec[1], " level=info event=vvvv"));
	assert_int_equal(strspn(strstr(cap.rec[1], "event=") + 6, "v"),
			 cap.len[1] - 1 - (size_t)(strstr(cap.rec[1], "event=") + 6 - cap.rec[1]));
	/* and the next event is whole again */
	check_line(3, "level=info event=after ok=1\n");
	free(big);
}

/* Lengths around the end of the buffer: never more than 4096 bytes, always a line. */
static void test_truncation_edges(void **state)
{
	char *v = malloc(4200);
	size_t fixed;

	assert_non_null(v);
	cap_begin();
	log_event(LOGL_INFO, "e", "k=");
	cap_end();
	fixed = cap.len[0];          /* "ts=... level=info event=e k=\n" */
	for (size_t extra = 4096 - fixed - 4; extra < 4096 - fixed + 4; extra++) {
		memset(v, 'a', extra);
		v[extra] = '\0';
		cap_begin();
		log_event(LOGL_INFO, "e", "k=%s", v);
		cap_end();
		assert_int_equal(cap.n, 1);
		/* whole when it fits in 4095 bytes, cut to 4095 otherwise */
		if (fixed + extra <= 4095)
			assert_int_equal(cap.len[0], fixed + extra);
		else
			assert_int_equal(cap.len[0], 4095);
		assert_int_equal(cap.rec[0][cap.len[0] - 1], '\n');
		assert_int_equal(strlen(cap.rec[0]), cap.len[0]);
	}
	free(v);
}

/* A value made safe by log_value stays one field of one line. */
static void test_event_with_values(void **state)
{
	char nb[LOG_VALUE_MAX], rb[LOG_VALUE_MAX];

	cap_begin();
	log_event(LOGL_WARN, "refuse", "name=%s reason=%s",
		  log_value(nb, sizeof(nb), "pod-a"),
		  log_value(rb, sizeof(rb), "uid 5 is \"bad\"\nreally"));
	cap_end();
	assert_int_equal(cap.n, 1);
	check_line(0, "level=warn event=refuse name=pod-a "
		   "reason=\"uid 5 is \\\"bad\\\"\\x0areally\"\n");
}

/* ------------------------------------------------------------ log_value */

static void test_value_plain_and_quoted(void **state)
{
	char b[128];

	/* plain tokens pass unchanged */
	assert_string_equal(log_value(b, sizeof(b), "pod-a"), "pod-a");
	assert_string_equal(log_value(b, sizeof(b), "kube/pod_1.x:80"), "kube/pod_1.x:80");
	assert_string_equal(log_value(b, sizeof(b), "~!@#$%^&*()"), "~!@#$%^&*()");
	/* anything else is quoted */
	assert_string_equal(log_value(b, sizeof(b), ""), "\"\"");
	assert_string_equal(log_value(b, sizeof(b), NULL), "\"\"");
	assert_string_equal(log_value(b, sizeof(b), "a b"), "\"a b\"");
	assert_string_equal(log_value(b, sizeof(b), " "), "\" \"");
	assert_string_equal(log_value(b, sizeof(b), "k=v"), "\"k=v\"");
	assert_string_equal(log_value(b, sizeof(b), "\""), "\"\\\"\"");
	assert_string_equal(log_value(b, sizeof(b), "\\"), "\"\\\\\"");
	assert_string_equal(log_value(b, sizeof(b), "say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
	/* control bytes and DEL as \xNN */
	assert_string_equal(log_value(b, sizeof(b), "a\nb"), "\"a\\x0ab\"");
	assert_string_equal(log_value(b, sizeof(b), "\t\r\x01\x1f\x7f"),
			    "\"\\x09\\x0d\\x01\\x1f\\x7f\"");
	assert_string_equal(log_value(b, sizeof(b), "\x1b[31m"), "\"\\x1b[31m\"");
	/* bytes >= 0x80 (UTF-8) are quoted but kept as they are */
	assert_string_equal(log_value(b, sizeof(b), "caf\xc3\xa9"), "\"caf\xc3\xa9\"");
	/* the result is @buf */
	assert_ptr_equal(log_value(b, sizeof(b), "x"), b);
	assert_ptr_equal(log_value(b, sizeof(b), "x y"), b);
}

static void test_value_small_buffers(void **state)
{
	char b[16];

	/* too small for even "" */
	memset(b, 'X', sizeof(b));
	assert_string_equal(log_value(b, 2, "x y"), "");
	assert_int_equal(b[1], 'X');
	assert_string_equal(log_value(b, 1, "x"), "");
	memset(b, 'X', sizeof(b));
	log_value(b, 0, "x");
	assert_int_equal(b[0], 'X');                 /* nothing written */
	/* room for the quotes only */
	assert_string_equal(log_value(b, 3, "a b"), "\"\"");
	/* plain token cut to fit */
	assert_string_equal(log_value(b, 4, "abcdef"), "abc");
	assert_string_equal(log_value(b, 3, "ab"), "ab");
	/* quoted, exactly fitting: 5 chars + NUL */
	assert_string_equal(log_value(b, 6, "a b"), "\"a b\"");
	assert_string_equal(log_value(b, 5, "a b"), "\"a \"");
	/* an escape is never cut in half */
	assert_string_equal(log_value(b, 6, "a\nb"), "\"a\"");
	assert_string_equal(log_value(b, 7, "a\nb"), "\"a\"");
	assert_string_equal(log_value(b, 8, "a\nb"), "\"a\\x0a\"");
	assert_string_equal(log_value(b, 4, "\"x"), "\"\"");
	assert_string_equal(log_value(b, 5, "\"x"), "\"\\\"\"");
}

/* Undo log_value's quoting (test side), for the truncation property. */
static size_t unquote(const char *q, char *out)
{
	size_t n = 0;

	assert_int_equal(q[0], '"');
	for (q++; *q && !(q[0] == '"' && q[1] == '\0'); ) {
		if (q[0] == '\\' && q[1] == 'x') {
			char hex[3] = { q[2], q[3], 0 };

			out[n++] = (char)strtol(hex, NULL, 16);
			q += 4;
		} else if (q[0] == '\\') {
			assert_true(q[1] == '"' || q[1] == '\\');
			out[n++] = q[1];
			q += 2;
		} else {
			assert_true(q[0] != '"');
			out[n++] = *q++;
		}
	}
	assert_string_equal(q, "\"");
	out[n] = '\0';
	return n;
}

static size_t esc_len(unsigned char c)
{
	if (c == '"' || c == '\\')
		return 2;
	if (c < ' ' || c == 0x7f)
		return 4;
	return 1;
}

/*
 * For every buffer size: a well-formed quoted value, as long as fits,
 * decoding to a prefix of the input, and the next character would not
 * have fit.
 */
static void test_value_truncation_property(void **state)
{
	static const char in[] = "a \"b\"\\c\n\x01\x7f d=e \xc3\xa9 end";
	char full[256], b[256], dec[256];
	size_t fl;

	log_value(full, sizeof(full), in);
	fl = strlen(full);
	assert_int_equal(unquote(full, dec), strlen(in));
	assert_string_equal(dec, in);
	for (size_t len = 3; len <= fl + 3; len++) {
		size_t k, used;

		memset(b, 'X', sizeof(b));
		log_value(b, len, in);
		used = strlen(b);
		assert_true(used < len);
		assert_int_equal(b[used + 1], 'X');      /* nothing past the NUL */
		k = unquote(b, dec);
		assert_memory_equal(dec, in, k);
		if (len > fl)
			assert_string_equal(b, full);
		else
			assert_true(used + esc_len((unsigned char)in[k]) + 1 > len - 1);
	}
}

/* ------------------------------------------------------------ journal */

/* JOURNAL_STREAM as systemd sets it: the device:inode of @fd. */
static void set_journal_stream(int fd)
{
	struct stat st;
	char v[64];

	assert_int_equal(fstat(fd, &st), 0);
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
}

static void test_journal_prefix(void **state)
{
	bool detected, after;

	log_set_verbose(true);
	cap_begin();
	set_journal_stream(STDERR_FILENO);
	detected = log_detect();
	log_event(LOGL_DEBUG, "conn", "fd=%d", 7);
	log_event(LOGL_INFO, "attach", "name=%s", "pod-a");
	log_event(LOGL_WARN, "refuse", "reason=x");
	log_event(LOGL_ERROR, "fatal", NULL);
	cap_end();
	log_set_verbose(false);
	assert_true(detected);
	assert_int_equal(cap.n, 4);
	/* No timestamp: the journal keeps its own. */
	assert_string_equal(cap.rec[0], "<7>level=debug event=conn fd=7\n");
	assert_string_equal(cap.rec[1], "<6>level=info event=attach name=pod-a\n");
	assert_string_equal(cap.rec[2], "<4>level=warn event=refuse reason=x\n");
	assert_string_equal(cap.rec[3], "<3>level=error event=fatal\n");

	/* stderr moved on (cap_end restored it): plain lines again once re-detected. */
	after = log_detect();
	unsetenv("JOURNAL_STREAM");
	assert_false(after);
	cap_begin();
	log_event(LOGL_INFO, "stop", NULL);
	cap_end();
	assert_int_equal(cap.n, 1);
	check_line(0, "level=info event=stop\n");
}

/* A JOURNAL_STREAM inherited by a child whose stderr is elsewhere (the CNI
 * plugin's agents log to a file): timestamps, no prefix. */
static void test_journal_other_stream(void **state)
{
	int p[2];
	bool detected;

	assert_int_equal(pipe(p), 0);
	cap_begin();
	set_journal_stream(p[0]);
	detected = log_detect();
	log_event(LOGL_WARN, "retry", "attempt=%d", 1);
	cap_end();
	close(p[0]);
	close(p[1]);
	unsetenv("JOURNAL_STREAM");
	log_detect();
	assert_false(detected);
	assert_int_equal(cap.n, 1);
	check_line(0, "level=warn event=retry attempt=1\n");
}

static void test_journal_malformed(void **state)
{
	static const char *const bad[] = { "", "12", "12:", ":34", "12:34x", "x:y", "12:34:56" };
	struct stat st;
	char v[80];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setenv("JOURNAL_STREAM", bad[i], 1), 0);
		assert_false(log_detect());
	}
	/* The right inode on the wrong device is not a match either. */
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev + 1, (uintmax_t)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
	assert_false(log_detect());
	unsetenv("JOURNAL_STREAM");
	assert_false(log_detect());
}

/* ------------------------------------------------------------ log_utc */

static void expect_utc(int64_t t)
{
	struct tm want, got;
	time_t tt = (time_t)t;

	/* a 32-bit time_t (i386) holds 1901-2038 only: nothing to compare */
	if ((int64_t)tt != t)
		return;
	assert_non_null(gmtime_r(&tt, &want));
	log_utc(t, &got);
	if (got.tm_year != want.tm_year || got.tm_mon != want.tm_mon ||
	    got.tm_mday != want.tm_mday || got.tm_hour != want.tm_hour ||
	    got.tm_min != want.tm_min || got.tm_sec != want.tm_sec)
		fail_msg("%" PRId64 ": %d-%d-%d %d:%d:%d, gmtime_r says %d-%d-%d %d:%d:%d", t,
			 got.tm_year, got.tm_mon, got.tm_mday, got.tm_hour, got.tm_min,
			 got.tm_sec, want.tm_year, want.tm_mon, want.tm_mday, want.tm_hour,
			 want.tm_min, want.tm_sec);
}

/* The stamp's own date arithmetic agrees with the C library's, at the
 * edges (epoch, leap days, centuries that are and are not leap years,
 * before 1970) and every 799,819 s (9 d 6 h 10 min 19 s, so every hour
 * and minute of the day comes round) from 1900 to 2200. */
static void test_utc_matches_gmtime(void **state)
{
	static const int64_t edges[] = {
		0, -1, 59, 60, 86399, 86400, -86400, -86401,
		951782400, 951868799, 951868800,          /* 2000-02-29 */
		4107542399, 4107542400,                   /* 2100-02-28/03-01 */
		1709164800, 1709251199, 1709251200,       /* 2024-02-29 */
		-2208988800, -2203891200,                 /* 1900-01-01, 03-01 */
		2147483647, 2147483648, 7258118399,       /* 2038, 2199-12-31 */
	};
	int64_t t;

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		expect_utc(edges[i]);
	for (t = -2208988800; t < 7258118400; t += 799819)
		expect_utc(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_utc_matches_gmtime),
		cmocka_unit_test(test_no_fields),
		cmocka_unit_test(test_errno_kept),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_truncation_edges),
		cmocka_unit_test(test_event_with_values),
		cmocka_unit_test(test_value_plain_and_quoted),
		cmocka_unit_test(test_value_small_buffers),
		cmocka_unit_test(test_value_truncation_property),
		cmocka_unit_test(test_journal_prefix),
		cmocka_unit_test(test_journal_other_stream),
		cmocka_unit_test(test_journal_malformed),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
