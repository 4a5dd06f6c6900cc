/* SPDX-License-Identifier: MIT */
/*
 * nfqb-accept - the libnfqb consumer of scripts/bench: examples/
 * print_and_accept.c without the print (a write per packet would measure
 * stdout, not the library), and with the queue options a drain needs.
 * The loop is the example's: nfqb_queue_run(q, true), accepting in the
 * callback; the library batches the verdicts.
 *
 *   nfqb-accept [--max-len N] [--sock-len BYTES] QUEUE
 *
 * Binds QUEUE in the namespace it runs in, writes "ready queue=Q" to stderr
 * once bound, runs until SIGTERM/SIGINT.
 * Exit: 0 signal, 1 runtime error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nfqb/queue.h>

static struct nfqb_queue *volatile running;
static volatile sig_atomic_t got_signal;

static void accept_cb(struct nfqb_packet *p, void *user)
{
	(void)user;
	nfqb_packet_accept(p);
}

static void on_signal(int sig)
{
	got_signal = sig;
	if (running)
		nfqb_queue_stop(running);
	alarm(1);      /* repeated until the loop has seen it */
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nfqb-accept [--max-len N] [--sock-len BYTES] QUEUE\n"
		   "Accept every packet of NFQUEUE QUEUE with libnfqb until SIGTERM.\n"
		   "Defaults: max-len 65536, sock-len 268435456.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "max-len", required_argument, NULL, 'm' },
		{ "sock-len", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct nfqb_queue_opts o = NFQB_QUEUE_OPTS_DEFAULT;
	unsigned long max_len = 65536, sock_len = 256ul << 20, q;
	struct nfqb_queue *nq;
	int c, err, rc = 1;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': max_len = strtoul(optarg, NULL, 10); break;
		case 's': sock_len = strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 1 || (q = strtoul(argv[optind], NULL, 10)) > 65535 ||
	    !max_len || max_len > UINT32_MAX || sock_len > NFQB_MAX_SOCK_LEN) {
		usage(stderr);
		return 2;
	}
	o.max_len = (uint32_t)max_len;
	o.sock_len = (uint32_t)sock_len;
	nq = nfqb_queue_open();
	if (!nq) {
		fprintf(stderr, "nfqb-accept: netlink socket: %s\n", strerror(errno));
		return 1;
	}
	err = nfqb_queue_bind(nq, (uint16_t)q, accept_cb, NULL, &o);
	if (err < 0) {
		fprintf(stderr, "nfqb-accept: bind: %s (%s)\n", nfqb_queue_errmsg(nq), strerror(-err));
		goto out;
	}
	running = nq;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	fprintf(stderr, "ready queue=%lu\n", q);
	while (!got_signal) {
		err = nfqb_queue_run(nq, true);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "nfqb-accept: run: %s\n", strerror(-err));
			goto out;
		}
	}
	rc = 0;
out:
	running = NULL;
	nfqb_queue_close(nq);
	return rc;
}
