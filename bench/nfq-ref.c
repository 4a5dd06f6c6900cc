/* SPDX-License-Identifier: MIT */
/*
 * nfq-ref - the reference consumer of scripts/bench: the least work one
 * NFQUEUE can be served with, written on libmnl alone. One recv() into a
 * large buffer, walk its messages, remember the highest packet id, and
 * accept everything up to it with one NFQNL_MSG_VERDICT_BATCH every 64
 * packets and before blocking again. No per-packet verdict, no callback
 * table, no allocation: the practical limit of one queue, against which
 * libnfqb, the broker and the Python module are measured.
 *
 *   nfq-ref [--max-len N] [--sock-len BYTES] [--batch N] [--recv one|mmsg]
 *           [--idle-threads N] QUEUE
 *
 * --recv mmsg receives the way libnfqb does instead (recvmmsg() into
 * NFQB_RX_SLOTS slots, MSG_WAITFORONE, the source address read; a short
 * batch means the socket ran dry; after a wake of one record, receives of
 * one): the latency section runs both, so that
 * what the receive pattern alone costs a round trip shows in the same run
 * (bench/README.md, "What limits the latency").
 *
 * --idle-threads N starts N more threads that only sleep: what a process
 * of several threads pays per system call (the kernel takes a reference
 * on the socket's file at each one, which it skips for a process of one
 * thread), measured apart from any other work (bench/README.md, "The
 * verdict's system call").
 *
 * Binds QUEUE in the network namespace it runs in (use `ip netns exec`),
 * copy mode packet (whole payload, as the other consumers), writes
 * "ready queue=Q" to stderr once bound and runs until SIGTERM/SIGINT.
 * Exit: 0 signal, 1 runtime error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#define BATCH 64          /* default --batch */
#define BUF_LEN (1u << 20)
#define MM_SLOTS 8        /* libnfqb's NFQB_RX_SLOTS */
#define MM_SLOT_LEN (BUF_LEN / MM_SLOTS)
#define LOOK_EVERY 8      /* libnfqb's NFQB_RX_LOOK_EVERY */

struct ref {
	struct mnl_socket *nl;
	uint16_t queue;
	uint32_t last_id;      /* highest id seen, not yet accepted */
	unsigned pending;      /* packets up to last_id without a verdict */
	unsigned batch;        /* flush after this many */
	bool mmsg;             /* --recv mmsg */
	char *buf;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static struct nlmsghdr *put_hdr(char *buf, int type, uint16_t queue)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(queue);
	return nlh;
}

/* Config messages are acked so that a refused bind is seen at once. */
static int config(struct ref *r, struct nlmsghdr *nlh)
{
	char ack[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	n = mnl_socket_recvfrom(r->nl, ack, sizeof(ack));
	if (n < 0)
		return -1;
	return mnl_cb_run(ack, (size_t)n, 1, 0, NULL, NULL) < 0 ? -1 : 0;
}

static int bind_queue(struct ref *r, uint32_t max_len)
{
	char b[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = put_hdr(b, NFQNL_MSG_CONFIG, r->queue);
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	struct nfqnl_msg_config_params p = { .copy_range = htonl(0xffff),
					     .copy_mode = NFQNL_COPY_PACKET };

	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
	if (config(r, nlh) < 0)
		return -1;
	nlh = put_hdr(b, NFQNL_MSG_CONFIG, r->queue);
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(p), &p);
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(max_len));
	return config(r, nlh);
}

/* Accept every packet up to last_id in one message. */
static int flush(struct ref *r)
{
	char b[128];
	struct nlmsghdr *nlh;
	struct nfqnl_msg_verdict_hdr v = { .verdict = htonl(NF_ACCEPT),
					   .id = htonl(r->last_id) };

	if (!r->pending)
		return 0;
	nlh = put_hdr(b, NFQNL_MSG_VERDICT_BATCH, r->queue);
	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(v), &v);
	r->pending = 0;
	return mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

/* Walk one datagram of queued packets: ids only, nothing else is read. */
static int handle(struct ref *r, const char *buf, size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int left = (int)len;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		const struct nlattr *a;

		if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET)
			continue;
		mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
			const struct nfqnl_msg_packet_hdr *ph;

			if (mnl_attr_get_type(a) != NFQA_PACKET_HDR ||
			    mnl_attr_get_payload_len(a) < sizeof(*ph))
				continue;
			ph = mnl_attr_get_payload(a);
			r->last_id = ntohl(ph->packet_id);
			if (++r->pending >= r->batch && flush(r) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

/* One record into mm[0] with recvfrom(), the source address read. */
static int recv_one(int fd, struct mmsghdr *mm, int flags)
{
	socklen_t alen = sizeof(struct sockaddr_nl);
	ssize_t n = recvfrom(fd, mm->msg_hdr.msg_iov[0].iov_base, mm->msg_hdr.msg_iov[0].iov_len,
			     flags, (struct sockaddr *)mm->msg_hdr.msg_name, &alen);

	if (n < 0)
		return -1;
	mm->msg_len = (unsigned)n;
	return 1;
}

/* The socket ran dry: whether the wake that ends here brought one record
 * (one that brought none tells nothing), as lib/queue.c rx_ran_dry(). */
static void ran_dry(bool *lonely, unsigned *woke)
{
	if (*woke)
		*lonely = *woke == 1;
	*woke = 0;
}

/* --recv mmsg: receive as libnfqb does (lib/queue.c, rx_fill()): block in
 * recvmmsg() for the first record; after a full batch look again without
 * blocking, after a short one (the socket ran dry) flush and block. After
 * a wake that brought a single record, sleep in a receive of one and give
 * its verdict before anything looks for a second; every LOOK_EVERY-th
 * such sleep is a batch again, and any receive of several ends that. */
static int serve_mmsg(struct ref *r)
{
	int fd = mnl_socket_get_fd(r->nl);
	struct mmsghdr mm[MM_SLOTS];
	struct iovec iov[MM_SLOTS];
	struct sockaddr_nl sa[MM_SLOTS];
	bool dry = true, lonely = false;
	unsigned woke = 0, lone = 0;

	for (unsigned i = 0; i < MM_SLOTS; i++) {
		iov[i] = (struct iovec){ r->buf + i * MM_SLOT_LEN, MM_SLOT_LEN };
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sa[i], .msg_iov = &iov[i],
						      .msg_iovlen = 1 } };
	}
	while (!stop) {
		bool one = lonely && dry && lone < LOOK_EVERY - 1;
		unsigned want = one ? 1 : MM_SLOTS;
		int n;

		for (unsigned i = 0; i < want; i++)
			mm[i].msg_hdr.msg_namelen = sizeof(sa[i]);
		if (one)
			n = recv_one(fd, &mm[0], MSG_TRUNC);
		else
			n = recvmmsg(fd, mm, MM_SLOTS,
				     (dry ? MSG_WAITFORONE : MSG_DONTWAIT) | MSG_TRUNC, NULL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ran_dry(&lonely, &woke);
			dry = true;
			if (flush(r) < 0)
				return -1;
			continue;
		}
		if (n < 0) {
			if (errno != EINTR && errno != ENOBUFS)
				return -1;
			continue;
		}
		if (one) {
			lone++;
		} else {
			if (dry)
				lone = 0;
			if (n > 1)
				lonely = false;
			woke = woke + (unsigned)n > 2 ? 2 : woke + (unsigned)n;
		}
		for (int i = 0; i < n; i++) {
			/* MSG_TRUNC reports a cut record's whole length */
			size_t len = mm[i].msg_len < MM_SLOT_LEN ? mm[i].msg_len : MM_SLOT_LEN;

			if (handle(r, iov[i].iov_base, len) < 0)
				return -1;
		}
		dry = one || (unsigned)n < want;
		if (dry) {
			if (!one)
				ran_dry(&lonely, &woke);
			if (flush(r) < 0)
				return -1;
		}
	}
	return 0;
}

static int serve(struct ref *r)
{
	int fd = mnl_socket_get_fd(r->nl);

	if (r->mmsg)
		return serve_mmsg(r);
	while (!stop) {
		ssize_t n = recv(fd, r->buf, BUF_LEN, r->pending ? MSG_DONTWAIT : 0);

		if (n > 0) {
			if (handle(r, r->buf, (size_t)n) < 0)
				return -1;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (flush(r) < 0)
				return -1;
			continue;
		}
		if (n < 0 && errno != EINTR && errno != ENOBUFS)
			return -1;
	}
	return 0;
}

static void *idle_main(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* @n threads that never wake; every signal stays the main thread's. */
static int idle_threads(unsigned long n)
{
	sigset_t all, old;
	pthread_t t;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned long i = 0; i < n && !err; i++)
		err = pthread_create(&t, NULL, idle_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nfq-ref [--max-len N] [--sock-len BYTES] [--batch N] [--recv one|mmsg]\n"
		   "       [--idle-threads N] QUEUE\n"
		   "Accept every packet of NFQUEUE QUEUE with batched verdicts (every N\n"
		   "packets and before blocking), until SIGTERM. Defaults: max-len 65536,\n"
		   "sock-len 268435456 (SO_RCVBUFFORCE), batch %d, recv one (recv() per\n"
		   "datagram; mmsg: recvmmsg() of %d slots as libnfqb receives), idle-threads 0\n"
		   "(more threads that only sleep).\n", BATCH, MM_SLOTS);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "max-len", required_argument, NULL, 'm' },
		{ "sock-len", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "recv", required_argument, NULL, 'r' },
		{ "idle-threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct ref r = { .batch = BATCH };
	unsigned long max_len = 65536, sock_len = 256ul << 20, q, idle = 0;
	int c, one = 1, rc = 1, v;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': max_len = strtoul(optarg, NULL, 10); break;
		case 's': sock_len = strtoul(optarg, NULL, 10); break;
		case 'b': r.batch = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': idle = strtoul(optarg, NULL, 10); break;
		case 'r':
			if (strcmp(optarg, "mmsg") != 0 && strcmp(optarg, "one") != 0) {
				usage(stderr);
				return 2;
			}
			r.mmsg = optarg[0] == 'm';
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 1 || (q = strtoul(argv[optind], NULL, 10)) > 65535 ||
	    !max_len || max_len > UINT32_MAX || sock_len > (1ul << 30) ||
	    r.batch < 1 || r.batch > 65536 || idle > 64) {
		usage(stderr);
		return 2;
	}
	r.queue = (uint16_t)q;
	r.buf = malloc(BUF_LEN);
	r.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!r.buf || !r.nl || mnl_socket_bind(r.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nfq-ref: netlink socket");
		goto out;
	}
	v = (int)sock_len;
	if (setsockopt(mnl_socket_get_fd(r.nl), SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(mnl_socket_get_fd(r.nl), SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	/* an overrun is counted by the kernel (dropped_netlink), not fatal */
	mnl_socket_setsockopt(r.nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	if (bind_queue(&r, (uint32_t)max_len) < 0) {
		fprintf(stderr, "nfq-ref: bind queue %u: %s\n", r.queue, strerror(errno));
		goto out;
	}
	if (idle_threads(idle) < 0) {
		fprintf(stderr, "nfq-ref: idle threads: cannot start\n");
		goto out;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "ready queue=%u\n", r.queue);
	if (serve(&r) < 0) {
		fprintf(stderr, "nfq-ref: %s\n", strerror(errno));
		goto out;
	}
	flush(&r);
	rc = 0;
out:
	if (r.nl)
		mnl_socket_close(r.nl);
	free(r.buf);
	return rc;
}
