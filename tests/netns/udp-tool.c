/* SPDX-License-Identifier: MIT */
/*
 * udp-tool - UDP sender/receiver for the netns integration tests.
 *
 *   udp-tool send ADDR PORT [--count N] [--size S] [--text T] [--interval-ms MS]
 *   udp-tool recv ADDR PORT [--count N] [--timeout-ms MS] [--ready-file F]
 *
 * Every datagram is "seq=NNNNNNNN;" + TEXT + ";" + filler, the filler byte
 * at filler position i being 'a' + i % 26, so the receiver can tell which
 * datagram arrived, in what order, with what text and whether the rest
 * arrived intact, even when a mangler changed the text's length.
 *
 * The receiver prints one line per datagram
 *   recv n=ORDINAL idx=INDEX len=BYTES text=TEXT intact=1|0
 * and finally
 *   summary received=K order=I,J,... bad=B
 * It stops after --count datagrams or at the timeout, whichever is first.
 * The sender prints "sent=N errors=E" (a netfilter drop on OUTPUT makes
 * sendto() fail with EPERM: counted, not fatal).
 *
 * Exit: 0 done, 1 runtime error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define HDR_LEN 13              /* "seq=NNNNNNNN;" */
#define MAX_DGRAM 65507
#define MAX_TEXT 1024

struct opts {
	bool send;
	const char *addr, *port;
	unsigned long count;
	unsigned long size;
	const char *text;
	unsigned long interval_ms;
	unsigned long timeout_ms;
	const char *ready_file;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: udp-tool send ADDR PORT [--count N] [--size BYTES] [--text T] [--interval-ms MS]\n"
		"       udp-tool recv ADDR PORT [--count N] [--timeout-ms MS] [--ready-file FILE]\n"
		"Datagrams carry \"seq=NNNNNNNN;TEXT;\" and a checkable filler up to BYTES.\n"
		"send: N datagrams (default 1) to ADDR:PORT (IPv4 or IPv6).\n"
		"recv: bind ADDR:PORT, print each datagram, stop after N (default 1)\n"
		"      or after MS milliseconds (default 5000).\n"
		"Exit status: 0 done, 1 runtime error, 2 usage error.\n");
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int opt_value(int c, const char *arg, struct opts *o)
{
	switch (c) {
	case 'c': return parse_ulong(arg, 1000000, &o->count);
	case 's': return parse_ulong(arg, MAX_DGRAM, &o->size);
	case 'i': return parse_ulong(arg, 60000, &o->interval_ms);
	case 'T': return parse_ulong(arg, 600000, &o->timeout_ms);
	case 't':
		if (strlen(arg) > MAX_TEXT || strchr(arg, ';'))
			return -EINVAL;
		o->text = arg;
		return 0;
	case 'r':
		o->ready_file = arg;
		return 0;
	}
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "text", required_argument, NULL, 't' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	*o = (struct opts){ .count = 1, .text = "", .timeout_ms = 5000 };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?')
			goto bad_usage;
		if (opt_value(c, optarg, o) < 0) {
			fprintf(stderr, "udp-tool: bad option value '%s'\n", optarg);
			return -EINVAL;
		}
	}
	if (argc - optind != 3)
		goto bad_usage;
	if (!strcmp(argv[optind], "send"))
		o->send = true;
	else if (strcmp(argv[optind], "recv"))
		goto bad_usage;
	o->addr = argv[optind + 1];
	o->port = argv[optind + 2];
	return 0;
bad_usage:
	usage(stderr);
	return -EINVAL;
}

static int resolve(const struct opts *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *ai;
	int err = getaddrinfo(o->addr, o->port, &hints, &ai);

	if (err) {
		fprintf(stderr, "udp-tool: bad address %s port %s: %s\n", o->addr, o->port,
			gai_strerror(err));
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void fill(char *buf, size_t size, unsigned long idx, const char *text)
{
	size_t pos = (size_t)snprintf(buf, size + 1, "seq=%08lu;%s;", idx, text);

	for (size_t i = 0; pos < size; i++, pos++)
		buf[pos] = (char)('a' + i % 26);
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int do_send(const struct opts *o, int fd, const struct sockaddr_storage *ss,
		   socklen_t sslen)
{
	size_t min = HDR_LEN + strlen(o->text) + 1;
	size_t size = o->size ? o->size : min;
	unsigned long sent = 0, errors = 0;
	char *buf;

	if (size < min) {
		fprintf(stderr, "udp-tool: --size %zu is below the %zu bytes of header and text\n",
			size, min);
		return 2;
	}
	buf = malloc(size + 1);
	if (!buf) {
		perror("udp-tool: malloc");
		return 1;
	}
	for (unsigned long i = 0; i < o->count; i++) {
		if (i && o->interval_ms)
			sleep_ms(o->interval_ms);
		fill(buf, size, i, o->text);
		if (sendto(fd, buf, size, 0, (const struct sockaddr *)ss, sslen) < 0) {
			fprintf(stderr, "udp-tool: sendto #%lu: %s\n", i, strerror(errno));
			errors++;
		} else {
			sent++;
		}
	}
	free(buf);
	printf("sent=%lu errors=%lu\n", sent, errors);
	return 0;
}

/* Prints one datagram; returns whether it is intact. */
static bool report(unsigned long n, const char *buf, size_t len, long *idx)
{
	unsigned long v;
	const char *text, *end;
	bool ok = false;
	char num[9];

	*idx = -1;
	if (len >= HDR_LEN && !memcmp(buf, "seq=", 4) && buf[12] == ';') {
		memcpy(num, buf + 4, 8);
		num[8] = 0;
		if (parse_ulong(num, 99999999, &v) == 0)
			*idx = (long)v;
	}
	text = len > HDR_LEN ? buf + HDR_LEN : NULL;
	end = text ? memchr(text, ';', len - HDR_LEN) : NULL;
	if (*idx >= 0 && end) {
		ok = true;
		for (size_t i = 0, pos = (size_t)(end - buf) + 1; pos < len; i++, pos++)
			if (buf[pos] != (char)('a' + i % 26))
				ok = false;
	}
	printf("recv n=%lu idx=%ld len=%zu text=%.*s intact=%d\n", n, *idx, len,
	       end ? (int)(end - text) : 0, end ? text : "", ok);
	return ok;
}

static int ready(const char *path)
{
	FILE *f;

	if (!path)
		return 0;
	f = fopen(path, "w");
	if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "udp-tool: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int do_recv(const struct opts *o, int fd, const struct sockaddr_storage *ss,
		   socklen_t sslen)
{
	long deadline = clock_now_ms() + (long)o->timeout_ms, left, idx;
	unsigned long n = 0, bad = 0;
	int rcvbuf = 4 << 20;
	char *buf = malloc(MAX_DGRAM + 1);
	char *order = calloc(1, 16 * (o->count + 1) + 1);
	size_t olen = 0;
	ssize_t r;
	int rc = 1;

	if (!buf || !order) {
		perror("udp-tool: malloc");
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (const struct sockaddr *)ss, sslen) < 0) {
		fprintf(stderr, "udp-tool: bind %s port %s: %s\n", o->addr, o->port,
			strerror(errno));
		goto out;
	}
	if (ready(o->ready_file) < 0)
		goto out;
	while (n < o->count && (left = deadline - clock_now_ms()) > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		r = recv(fd, buf, MAX_DGRAM + 1, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
				continue;
			fprintf(stderr, "udp-tool: recv: %s\n", strerror(errno));
			goto out;
		}
		if (!report(n, buf, (size_t)r, &idx))
			bad++;
		olen += (size_t)sprintf(order + olen, "%s%ld", n ? "," : "", idx);
		n++;
	}
	printf("summary received=%lu order=%s bad=%lu\n", n, n ? order : "-", bad);
	rc = 0;
out:
	free(buf);
	free(order);
	return rc;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct opts o;
	int fd, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &o) < 0 || resolve(&o, &ss, &sslen) < 0)
		return 2;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "udp-tool: socket: %s\n", strerror(errno));
		return 1;
	}
	rc = o.send ? do_send(&o, fd, &ss, sslen) : do_recv(&o, fd, &ss, sslen);
	close(fd);
	return rc;
}
