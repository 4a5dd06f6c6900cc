/* SPDX-License-Identifier: MIT */
/*
 * bench-verdict: cost of receive-side dispatch and verdicts per packet.
 *
 * Both loops see the same synthetic NFQNL_MSG_PACKET records (a 1400-byte
 * IPv4/UDP payload plus the usual attributes) and send their verdicts into
 * one end of an AF_UNIX datagram socketpair that is drained as it goes:
 *
 *   reference  libnetfilter_queue's documented path: nfq_nlmsg_parse() into
 *              an attribute table, then one nfq_nlmsg_verdict_put() message
 *              and one send() per packet.
 *   libnfqb    nfqb_queue_handle() with a callback that accepts, batching on
 *              (the default) and off.
 *
 * Records are handed over in bursts of BURST, as a loaded socket delivers
 * them between two polls. Prints ns/packet for each and the ratio to the
 * reference measured in the same run. Usage: bench-verdict [packets]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "internal.h"

#define BURST 32
#define PAYLOAD 1400

static char msgs[BURST][2048];

static size_t build_packet(char *buf, uint32_t id)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(id),
					   .hw_protocol = htons(0x0800), .hook = 3 };
	uint8_t payload[PAYLOAD] = { 0x45 };

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->res_id = htons(1);
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(7));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_OUTDEV, htonl(1));
	mnl_attr_put_u32(nlh, NFQA_UID, htonl(1000));
	mnl_attr_put_u32(nlh, NFQA_GID, htonl(1000));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(payload), payload);
	return nlh->nlmsg_len;
}

static size_t lens[BURST];

static void drain(int fd)
{
	char sink[65536];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double run_reference(int tx, int rx, long n)
{
	struct nlattr *attr[NFQA_MAX + 1];
	char out[MNL_SOCKET_BUFFER_SIZE];
	volatile uint32_t sink = 0;
	double t0 = now_ns();

	for (long i = 0; i < n; i += BURST) {
		for (int k = 0; k < BURST; k++) {
			const struct nlmsghdr *nlh = (const void *)msgs[k];
			struct nfqnl_msg_packet_hdr *ph;
			struct nlmsghdr *v;

			memset(attr, 0, sizeof(attr));
			if (nfq_nlmsg_parse(nlh, attr) < 0)
				abort();
			ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
			sink += mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
			v = nfq_nlmsg_put(out, NFQNL_MSG_VERDICT, 1);
			nfq_nlmsg_verdict_put(v, (int)ntohl(ph->packet_id), NF_ACCEPT);
			if (send(tx, v, v->nlmsg_len, 0) < 0)
				abort();
		}
		drain(rx);
	}
	(void)sink;
	return (now_ns() - t0) / (double)n;
}

static void accept_cb(struct nfqb_packet *p, void *user)
{
	size_t len;

	*(uint32_t *)user += nfqb_packet_payload(p, &len) ? (uint32_t)len : 0;
	nfqb_packet_accept(p);
}

static double run_nfqb(struct nfqb_queue *q, int rx, long n)
{
	double t0 = now_ns();

	for (long i = 0; i < n; i += BURST) {
		for (int k = 0; k < BURST; k++)
			queue_dispatch(q, msgs[k], lens[k]);
		nfqb_queue_flush(q);   /* what run() does once the socket is empty */
		drain(rx);
	}
	return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	uint32_t bytes = 0;
	struct nfqb_queue *q;
	int sv[2];
	double ref, batched, single;

	if (n < BURST || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fprintf(stderr, "usage: bench-verdict [packets >= %d]\n", BURST);
		return 2;
	}
	for (int k = 0; k < BURST; k++)
		lens[k] = build_packet(msgs[k], (uint32_t)k + 1);
	q = queue_new_unchecked(sv[0]);
	if (!q || binding_add(q, 1, accept_cb, &bytes, false) < 0)
		return 1;

	ref = run_reference(sv[0], sv[1], n / 4);   /* warm-up */
	ref = run_reference(sv[0], sv[1], n);
	batched = run_nfqb(q, sv[1], n);
	nfqb_queue_set_batching(q, false);
	single = run_nfqb(q, sv[1], n);

	printf("packets=%ld burst=%d payload=%d\n", n, BURST, PAYLOAD);
	printf("reference (libnetfilter_queue parse + 1 verdict/packet): %.1f ns/packet (1.00)\n", ref);
	printf("libnfqb batched accepts:                                 %.1f ns/packet (%.2f)\n",
	       batched, batched / ref);
	printf("libnfqb one verdict per packet:                          %.1f ns/packet (%.2f)\n",
	       single, single / ref);
	nfqb_queue_close(q);
	close(sv[1]);
	return 0;
}
