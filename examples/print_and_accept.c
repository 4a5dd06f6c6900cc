/* SPDX-License-Identifier: MIT */
/*
 * print_and_accept - the first example of python-netfilterqueue's README,
 * in C with libnfqb:
 *
 *   from netfilterqueue import NetfilterQueue
 *
 *   def print_and_accept(pkt):
 *       print(pkt)
 *       pkt.accept()
 *
 *   nfqueue = NetfilterQueue()
 *   nfqueue.bind(1, print_and_accept)
 *   try:
 *       nfqueue.run()
 *   except KeyboardInterrupt:
 *       print('')
 *
 *   nfqueue.unbind()
 *
 * Try it (as root):
 *   iptables -I INPUT -p udp --dport 9999 -j NFQUEUE --queue-num 1
 *   ./print_and_accept 1
 *
 * Prints "UDP packet, 33 bytes" per packet, like the Python version.
 * Exit: 0 done (interrupted, --count reached or --timeout without --count),
 * 1 runtime error (or --timeout before --count packets), 2 usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nfqb/queue.h>

#include "example-args.h"

struct state {
	struct nfqb_queue *q;
	unsigned long count;      /* 0: no limit */
	unsigned long seen;
};

static struct nfqb_queue *volatile running;
static volatile sig_atomic_t got_signal;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: print_and_accept [--count N] [--timeout SECONDS] QUEUE\n"
		"Bind NFQUEUE queue QUEUE (0-65535), print every packet, accept it.\n"
		"  --count N          stop after N packets\n"
		"  --timeout SECONDS  stop after SECONDS (with --count: a failure)\n"
		"  --help             this text\n"
		"Exit status: 0 done, 1 runtime error or timeout, 2 usage error.\n");
}

/* The IP protocol as Python's str(pkt) names it (IANA keywords). */
static const char *proto_name(const struct nfqb_packet *p)
{
	size_t len = 0;
	const unsigned char *d = nfqb_packet_payload(p, &len);
	unsigned proto;

	if (!d || len < 1)
		return "Unknown protocol";
	if (d[0] >> 4 == 4 && len >= 20)
		proto = d[9];
	else if (d[0] >> 4 == 6 && len >= 40)
		proto = d[6];
	else
		return "Unknown protocol";
	switch (proto) {
	case 1: return "ICMP";
	case 6: return "TCP";
	case 17: return "UDP";
	case 58: return "IPv6-ICMP";
	}
	return "Unknown protocol";
}

static void print_and_accept(struct nfqb_packet *p, void *user)
{
	struct state *st = user;

	printf("%s packet, %d bytes\n", proto_name(p), nfqb_packet_payload_len(p));
	nfqb_packet_accept(p);
	if (st->count && ++st->seen >= st->count)
		nfqb_queue_stop(st->q);
}

static void on_signal(int sig)
{
	got_signal = sig;
	/* Ends a blocking run; re-armed so that a signal landing just before
	 * the run goes to sleep is repeated until it is seen. */
	if (running)
		nfqb_queue_stop(running);
	alarm(1);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct state st = { 0 };
	struct example_args args;
	int err, rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* [--count N] [--timeout SECONDS] QUEUE: example-args.c */
	if (example_parse_args(argc, argv, "print_and_accept", 0, NULL, usage, &args) < 0)
		return 2;
	st.count = args.count;
	st.q = nfqb_queue_open();
	if (!st.q) {
		fprintf(stderr, "print_and_accept: cannot open a netfilter socket: %s\n", strerror(errno));
		return 1;
	}
	err = nfqb_queue_bind(st.q, (uint16_t)args.queue, print_and_accept, &st, NULL);
	if (err < 0) {
		fprintf(stderr, "print_and_accept: bind: %s (%s)\n", nfqb_queue_errmsg(st.q), strerror(-err));
		goto out;
	}
	running = st.q;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	if (args.timeout)
		alarm((unsigned)args.timeout);
	while (!got_signal && (!st.count || st.seen < st.count)) {
		err = nfqb_queue_run(st.q, true);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "print_and_accept: run: %s\n", strerror(-err));
			goto out;
		}
	}
	if (got_signal == SIGALRM && st.count && st.seen < st.count) {
		fprintf(stderr, "print_and_accept: timeout after %lu of %lu packets\n", st.seen, st.count);
		goto out;
	}
	if (got_signal == SIGINT)
		printf("\n");
	rc = 0;
out:
	running = NULL;
	nfqb_queue_close(st.q);   /* unbinds, like nfqueue.unbind() */
	return rc;
}
