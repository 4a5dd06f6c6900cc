/* SPDX-License-Identifier: MIT */
/*
 * bench-kernel: real packets through a real NFQUEUE, end to end.
 *
 * The process moves into a private network namespace of its own
 * (unshare(CLONE_NEWNET): nothing named, nothing left behind), brings lo up,
 * and sends UDP datagrams to 127.0.0.1 that an iptables OUTPUT rule puts on
 * queue 7. A consumer thread accepts each one; the main thread receives
 * them. The sender keeps at most WINDOW datagrams in flight so no queue
 * overflows and every run moves the same packets. Three runs in one
 * process, so the ratios compare like with like:
 *
 *   no-queue   the rule absent: the kernel path alone
 *   reference  libnetfilter_queue's classic loop (nfq_open, recv,
 *              nfq_handle_packet, nfq_set_verdict per packet)
 *   libnfqb    poll + nfqb_queue_run(q, false) (the broker's loop shape),
 *              accepting in the callback
 *
 * Usage: bench-kernel [datagrams] [payload bytes]   (root; needs iptables)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnfnetlink/libnfnetlink.h>
#include <nfqb/queue.h>

#include "bench-util.h"

#define QNUM 7
#define PORT 5757
#define WINDOW 64

static volatile int consumer_stop;

static int rule(const char *op)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "iptables -w %s OUTPUT -p udp --dport %d -j NFQUEUE --queue-num %d",
		 op, PORT, QNUM);
	return system(cmd) == 0 ? 0 : -1;
}

/* Send n datagrams, receive them all; returns seconds or < 0 on loss. */
static double pump(long n, size_t size)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 2 };
	int tx = socket(AF_INET, SOCK_DGRAM, 0), rx = socket(AF_INET, SOCK_DGRAM, 0);
	char *buf = calloc(1, size);
	long sent = 0, got = 0;
	double t0 = -1;

	if (tx < 0 || rx < 0 || !buf || bind(rx, (void *)&a, sizeof(a)) < 0)
		goto out;
	setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Room for the whole window, so only a queue can lose datagrams. */
	setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ 16 << 20 }, sizeof(int));
	t0 = now_s();
	while (got < n) {
		while (sent < n && sent - got < WINDOW) {
			if (sendto(tx, buf, size, 0, (void *)&a, sizeof(a)) < 0)
				goto lost;
			sent++;
		}
		if (recv(rx, buf, size, 0) < 0)
			goto lost;
		got++;
	}
	t0 = now_s() - t0;
	goto out;
lost:
	fprintf(stderr, "bench-kernel: lost traffic after %ld/%ld: %s\n", got, n, strerror(errno));
	t0 = -1;
out:
	free(buf);
	if (tx >= 0)
		close(tx);
	if (rx >= 0)
		close(rx);
	return t0;
}

static int ref_cb(struct nfq_q_handle *qh, struct nfgenmsg *m, struct nfq_data *d, void *u)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(d);

	return nfq_set_verdict(qh, ntohl(ph->packet_id), NF_ACCEPT, 0, NULL);
}

static void *ref_consumer(void *arg)
{
	struct nfq_handle *h = arg;
	char buf[65536 + 4096];
	int fd = nfq_fd(h);
	struct timeval tv = { .tv_usec = 100000 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!consumer_stop) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			nfq_handle_packet(h, buf, (int)n);
	}
	return NULL;
}

static void nfqb_cb(struct nfqb_packet *p, void *user)
{
	nfqb_packet_accept(p);
}

/* The broker's shape: poll, then a non-blocking run. */
static void *nfqb_consumer(void *arg)
{
	struct pollfd pfd = { .fd = nfqb_queue_fd(arg), .events = POLLIN };

	while (!consumer_stop)
		if (poll(&pfd, 1, 100) > 0)
			nfqb_queue_run(arg, false);
	return NULL;
}

static double run_reference(long n, size_t size)
{
	struct nfq_handle *h = nfq_open();
	struct nfq_q_handle *qh = h ? nfq_create_queue(h, QNUM, ref_cb, NULL) : NULL;
	pthread_t t;
	double s;

	if (!qh || nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0)
		return -1;
	/* The same receive buffer libnfqb uses by default: compare loops,
	 * not buffer sizes. */
	nfnl_rcvbufsiz(nfq_nfnlh(h), NFQB_DEFAULT_SOCK_LEN);
	consumer_stop = 0;
	pthread_create(&t, NULL, ref_consumer, h);
	s = pump(n, size);
	consumer_stop = 1;
	pthread_join(t, NULL);
	nfq_destroy_queue(qh);
	nfq_close(h);
	return s;
}

static double run_nfqb(long n, size_t size)
{
	struct nfqb_queue *q = nfqb_queue_open();
	pthread_t t;
	double s;

	if (!q || nfqb_queue_bind(q, QNUM, nfqb_cb, NULL, NULL) < 0)
		return -1;
	consumer_stop = 0;
	pthread_create(&t, NULL, nfqb_consumer, q);
	s = pump(n, size);
	consumer_stop = 1;
	pthread_join(t, NULL);
	nfqb_queue_close(q);
	return s;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	size_t size = argc > 2 ? (size_t)atol(argv[2]) : 512;
	double none, ref, ours;

	if (n <= 0 || size == 0 || size > 60000) {
		fprintf(stderr, "usage: bench-kernel [datagrams] [payload bytes <= 60000]\n");
		return 2;
	}
	if (unshare(CLONE_NEWNET) < 0 || lo_up() < 0) {
		perror("bench-kernel: private network namespace (root needed)");
		return 1;
	}
	none = pump(n, size);
	if (rule("-A") < 0)
		return 1;
	ref = run_reference(n, size);
	ours = run_nfqb(n, size);
	fprintf(stderr, "bench-kernel: seconds no-queue=%.3f reference=%.3f libnfqb=%.3f\n",
		none, ref, ours);
	if (none <= 0 || ref <= 0 || ours <= 0)
		return 1;
	printf("datagrams=%ld payload=%zu window=%d\n", n, size, WINDOW);
	printf("no-queue:  %8.0f pkt/s  %6.2f us/pkt\n", n / none, none * 1e6 / n);
	printf("reference: %8.0f pkt/s  %6.2f us/pkt (1.00)\n", n / ref, ref * 1e6 / n);
	printf("libnfqb:   %8.0f pkt/s  %6.2f us/pkt (%.2f of reference time)\n",
	       n / ours, ours * 1e6 / n, ours / ref);
	return 0;
}
