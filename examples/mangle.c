/* SPDX-License-Identifier: MIT */
/*
 * mangle - rewrite a string in UDP payloads (IPv4 and IPv6) and let the
 * packets go on: nfqb_packet_set_payload() with libnetfilter_queue's packet
 * buffer helpers, which fix the IP and UDP lengths and checksums.
 *
 * Try it (as root):
 *   iptables -I OUTPUT -p udp --dport 9999 -j NFQUEUE --queue-num 3
 *   ./mangle 3 hello HOWDY
 *   echo hello > /dev/udp/127.0.0.1/9999      # the receiver gets "HOWDY"
 *
 * NEW may be longer or shorter than OLD. Every occurrence is replaced.
 * Prints one line per packet:
 *   mangled id=4 replaced=1 len=33       (or: unchanged id=5 len=40)
 * Exit: 0 done (signal, --count reached, or --timeout without --count),
 * 1 runtime error (or --timeout before --count packets), 2 usage error.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue_ipv4.h>
#include <libnetfilter_queue/libnetfilter_queue_ipv6.h>
#include <libnetfilter_queue/libnetfilter_queue_udp.h>
#include <libnetfilter_queue/pktbuff.h>

#include <nfqb/queue.h>

#include "example-args.h"

struct state {
	struct nfqb_queue *q;
	const char *old, *new;
	size_t old_len, new_len;
	unsigned long count;      /* 0: no limit */
	unsigned long seen;
	int err;                  /* first verdict failure */
};

static volatile sig_atomic_t got_signal;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mangle QUEUE OLD NEW [--count N] [--timeout SECONDS]\n"
		"Bind NFQUEUE queue QUEUE (0-65535), replace every OLD by NEW in the\n"
		"payload of UDP packets (IPv4 and IPv6, lengths and checksums fixed),\n"
		"accept all packets.\n"
		"  --count N          stop after N packets\n"
		"  --timeout SECONDS  stop after SECONDS (with --count: a failure)\n"
		"  --help             this text\n"
		"Exit status: 0 done, 1 runtime error or timeout, 2 usage error.\n");
}

/* The UDP header of @pb, or NULL when it is no unfragmented UDP packet. */
static struct udphdr *udp_header(struct pkt_buff *pb, int family)
{
	if (family == AF_INET) {
		struct iphdr *ip = nfq_ip_get_hdr(pb);

		if (!ip || ip->protocol != IPPROTO_UDP || nfq_ip_set_transport_header(pb, ip) < 0)
			return NULL;
	} else {
		struct ip6_hdr *ip6 = nfq_ip6_get_hdr(pb);

		if (!ip6 || nfq_ip6_set_transport_header(pb, ip6, IPPROTO_UDP) != 1)
			return NULL;
	}
	return nfq_udp_get_hdr(pb);
}

static size_t count_matches(const char *data, size_t len, const char *old, size_t ol)
{
	size_t n = 0;
	const char *at;

	while (len >= ol && (at = memmem(data, len, old, ol))) {
		n++;
		len -= (size_t)(at - data) + ol;
		data = at + ol;
	}
	return n;
}

/* Replace every match inside @pb; returns how many, or -1 on failure. */
static int replace_all(struct state *st, struct pkt_buff *pb, int family, struct udphdr *udp)
{
	unsigned off = 0;
	int n = 0, ok;

	for (;;) {
		char *data = nfq_udp_get_payload(udp, pb);
		unsigned len = nfq_udp_get_payload_len(udp, pb);
		char *at;

		if (!data || off >= len)
			break;
		at = memmem(data + off, len - off, st->old, st->old_len);
		if (!at)
			break;
		off = (unsigned)(at - data);
		if (family == AF_INET)
			ok = nfq_udp_mangle_ipv4(pb, off, (unsigned)st->old_len, st->new, (unsigned)st->new_len);
		else
			ok = nfq_udp_mangle_ipv6(pb, off, (unsigned)st->old_len, st->new, (unsigned)st->new_len);
		if (!ok)
			return -1;
		off += (unsigned)st->new_len;
		n++;
	}
	return n;
}

/* Returns the verdict's error, 0 when the packet was accepted. */
static int mangle_packet(struct state *st, struct nfqb_packet *p)
{
	size_t len = 0, n, extra = 0;
	const void *data = nfqb_packet_payload(p, &len);
	int family = nfqb_packet_hw_protocol(p) == 0x86dd ? AF_INET6 : AF_INET;
	struct pkt_buff *pb = NULL;
	struct udphdr *udp;
	int replaced = 0, err;

	if (!data)
		goto unchanged;
	n = count_matches(data, len, st->old, st->old_len);
	if (n == 0)
		goto unchanged;
	if (st->new_len > st->old_len)
		extra = n * (st->new_len - st->old_len);
	if (len + extra > NFQB_MAX_SET_PAYLOAD)
		goto unchanged;   /* would not fit in an IP packet */
	/* pktb_alloc copies: the library's buffer stays untouched. */
	pb = pktb_alloc(family, (void *)data, len, extra);
	if (!pb)
		goto unchanged;
	udp = udp_header(pb, family);
	if (udp)
		replaced = replace_all(st, pb, family, udp);
	if (replaced <= 0)
		goto unchanged;
	err = nfqb_packet_set_payload(p, pktb_data(pb), pktb_len(pb));
	if (err < 0)
		goto unchanged;
	printf("mangled id=%u replaced=%d len=%u\n", nfqb_packet_id(p), replaced, pktb_len(pb));
	pktb_free(pb);
	return nfqb_packet_accept(p);
unchanged:
	if (pb)
		pktb_free(pb);
	printf("unchanged id=%u len=%zu\n", nfqb_packet_id(p), len);
	return nfqb_packet_accept(p);
}

static void on_packet(struct nfqb_packet *p, void *user)
{
	struct state *st = user;
	int err = mangle_packet(st, p);

	if (err < 0 && !st->err)
		st->err = err;
	if (st->count && ++st->seen >= st->count)
		nfqb_queue_stop(st->q);
}

static void on_signal(int sig)
{
	got_signal = sig;
}

/* [--count N] [--timeout SECONDS] QUEUE (example-args.c), then OLD NEW. */
static int parse_args(int argc, char **argv, struct state *st, struct example_args *a)
{
	if (example_parse_args(argc, argv, "mangle", 2, "OLD NEW", usage, a) < 0)
		return -1;
	st->count = a->count;
	st->old = a->rest[0];
	st->new = a->rest[1];
	st->old_len = strlen(st->old);
	st->new_len = strlen(st->new);
	if (st->old_len == 0 || st->old_len > 1024 || st->new_len > 1024) {
		fprintf(stderr, "mangle: OLD must be 1-1024 bytes and NEW 0-1024 bytes\n");
		return -1;
	}
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns 0 when done, -ETIMEDOUT, or another error. */
static int serve(struct state *st, unsigned long timeout)
{
	long deadline = timeout ? now_ms() + (long)timeout * 1000 : 0, left = -1;
	struct pollfd pfd = { .fd = nfqb_queue_fd(st->q), .events = POLLIN };
	int n;

	while (!got_signal && (!st->count || st->seen < st->count)) {
		if (deadline && (left = deadline - now_ms()) <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0) {
			n = nfqb_queue_run(st->q, false);
			if (n < 0)
				return n;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct state st = { 0 };
	struct example_args args;
	int err, rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &st, &args) < 0)
		return 2;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	st.q = nfqb_queue_open();
	if (!st.q) {
		fprintf(stderr, "mangle: cannot open a netfilter socket: %s\n", strerror(errno));
		return 1;
	}
	err = nfqb_queue_bind(st.q, (uint16_t)args.queue, on_packet, &st, NULL);
	if (err < 0) {
		fprintf(stderr, "mangle: bind: %s (%s)\n", nfqb_queue_errmsg(st.q), strerror(-err));
		goto out;
	}
	err = serve(&st, args.timeout);
	if (err == -ETIMEDOUT && !st.count)
		err = 0;
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "mangle: timeout after %lu of %lu packets\n", st.seen, st.count);
		goto out;
	}
	if (err < 0) {
		fprintf(stderr, "mangle: %s\n", strerror(-err));
		goto out;
	}
	if (st.err < 0) {
		fprintf(stderr, "mangle: a verdict failed: %s\n", strerror(-st.err));
		goto out;
	}
	rc = 0;
out:
	nfqb_queue_close(st.q);
	return rc;
}
