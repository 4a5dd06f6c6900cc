/* SPDX-License-Identifier: MIT */
/*
 * own_loop - libnfqb inside your own event loop: poll() on the queue's fd
 * (python-netfilterqueue's get_fd()) next to other fds, and let
 * nfqb_queue_run(q, false) handle whatever is ready (run(block=False)).
 * Here the other fd is a signalfd, so SIGINT/SIGTERM end the loop cleanly.
 *
 * Try it (as root):
 *   iptables -I OUTPUT -p udp --dport 9999 -j NFQUEUE --queue-num 2
 *   ./own_loop --count 5 2
 *
 * Prints one line per packet:
 *   packet id=1 queue=2 hook=output proto=17 len=33 mark=0
 * and when it ends:
 *   done packets=5 verdicts=5 batches=1
 * Exit: 0 done (signal, --count reached, or --timeout without --count),
 * 1 runtime error (or --timeout before --count packets), 2 usage error.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <nfqb/queue.h>

#include "example-args.h"

struct state {
	struct nfqb_queue *q;
	unsigned long count;      /* 0: no limit */
	unsigned long seen;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: own_loop [--count N] [--timeout SECONDS] QUEUE\n"
		"Bind NFQUEUE queue QUEUE (0-65535) and serve it from a poll() loop:\n"
		"print every packet, accept it.\n"
		"  --count N          stop after N packets\n"
		"  --timeout SECONDS  stop after SECONDS (with --count: a failure)\n"
		"  --help             this text\n"
		"Exit status: 0 done, 1 runtime error or timeout, 2 usage error.\n");
}

static const char *hook_name(uint8_t hook)
{
	static const char *const names[] = {
		"prerouting", "input", "forward", "output", "postrouting",
	};

	return hook < 5 ? names[hook] : "unknown";
}

static unsigned ip_proto(const struct nfqb_packet *p)
{
	size_t len = 0;
	const unsigned char *d = nfqb_packet_payload(p, &len);

	if (d && len >= 20 && d[0] >> 4 == 4)
		return d[9];
	if (d && len >= 40 && d[0] >> 4 == 6)
		return d[6];
	return 0;
}

static void on_packet(struct nfqb_packet *p, void *user)
{
	struct state *st = user;

	printf("packet id=%u queue=%u hook=%s proto=%u len=%d mark=%u\n",
	       nfqb_packet_id(p), nfqb_packet_queue(p), hook_name(nfqb_packet_hook(p)),
	       ip_proto(p), nfqb_packet_payload_len(p), nfqb_packet_mark(p));
	nfqb_packet_accept(p);
	/* Ends this nfqb_queue_run() early: nothing past --count is touched. */
	if (++st->seen == st->count)
		nfqb_queue_stop(st->q);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The event loop: returns 0 when done, -ETIMEDOUT, or another error. */
static int serve(struct nfqb_queue *q, int sigfd, struct state *st, unsigned long timeout)
{
	long deadline = timeout ? now_ms() + (long)timeout * 1000 : 0, left = -1;
	struct pollfd pfd[2] = {
		{ .fd = nfqb_queue_fd(q), .events = POLLIN },
		{ .fd = sigfd, .events = POLLIN },
	};
	int n;

	while (!st->count || st->seen < st->count) {
		if (deadline && (left = deadline - now_ms()) <= 0)
			return -ETIMEDOUT;
		n = poll(pfd, 2, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && pfd[1].revents)
			return 0;       /* SIGINT or SIGTERM: clean stop */
		if (n > 0 && pfd[0].revents) {
			/* Handles at most NFQB_RUN_BUDGET messages, so other fds
			 * get their turn; the fd stays readable if more wait. */
			n = nfqb_queue_run(q, false);
			if (n < 0)
				return n;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct state st = { 0 };
	struct example_args args;
	struct nfqb_queue_stats stats;
	struct nfqb_queue *q = NULL;
	sigset_t mask;
	int sigfd = -1, err, rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* [--count N] [--timeout SECONDS] QUEUE: example-args.c */
	if (example_parse_args(argc, argv, "own_loop", 0, NULL, usage, &args) < 0)
		return 2;
	st.count = args.count;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sigfd < 0) {
		fprintf(stderr, "own_loop: signalfd: %s\n", strerror(errno));
		goto out;
	}
	q = st.q = nfqb_queue_open();
	if (!q) {
		fprintf(stderr, "own_loop: cannot open a netfilter socket: %s\n", strerror(errno));
		goto out;
	}
	err = nfqb_queue_bind(q, (uint16_t)args.queue, on_packet, &st, NULL);
	if (err < 0) {
		fprintf(stderr, "own_loop: bind: %s (%s)\n", nfqb_queue_errmsg(q), strerror(-err));
		goto out;
	}
	err = serve(q, sigfd, &st, args.timeout);
	if (err == -ETIMEDOUT && !st.count)
		err = 0;
	if (err == -ETIMEDOUT)
		fprintf(stderr, "own_loop: timeout after %lu of %lu packets\n", st.seen, st.count);
	else if (err < 0)
		fprintf(stderr, "own_loop: %s\n", strerror(-err));
	nfqb_queue_get_stats(q, &stats);
	printf("done packets=%lu verdicts=%llu batches=%llu\n", st.seen,
	       (unsigned long long)stats.verdicts, (unsigned long long)stats.batches);
	rc = err < 0 ? 1 : 0;
out:
	nfqb_queue_close(q);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
}
