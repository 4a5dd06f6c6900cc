/* SPDX-License-Identifier: MIT */
/*
 * ct-verdict QUEUE MARK COUNT TIMEOUT_MS - what this kernel does with
 * conntrack in NFQUEUE, for tests/netns/connmark.sh: binds QUEUE, asks
 * for the queue flag conntrack (prints conntrack_flag=ok or refused),
 * then answers up to COUNT packets with ACCEPT plus an NFQA_CT attribute
 * holding CTA_MARK = MARK — the verdict that sets the conntrack mark
 * where the kernel has CONFIG_NETFILTER_NETLINK_GLUE_CT — printing
 * "packet ct=yes|no" (whether the packet came with NFQA_CT) for each and
 * "verdict_error=..." when the kernel refused one. Written with libmnl
 * and libnetfilter_queue's message helpers, not libnfqb: the library has
 * no call that sends NFQA_CT. Prints "ready" on stderr once bound.
 * Exit status: 0 done (COUNT packets or the timeout), 1 error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

struct ctx {
	struct mnl_socket *nl;
	unsigned queue;
	uint32_t mark;
	int packets;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Send @nlh with an ACK requested; the answer is read by the main loop. */
static int send_acked(struct ctx *c, struct nlmsghdr *nlh)
{
	nlh->nlmsg_flags |= NLM_F_ACK;
	return mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

/* The answer to the request just sent: 0 or -errno. */
static int read_ack(struct ctx *c)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n = mnl_socket_recvfrom(c->nl, buf, sizeof(buf));

	if (n < 0)
		return -errno;
	return mnl_cb_run(buf, (size_t)n, 0, mnl_socket_get_portid(c->nl), NULL, NULL) < 0 ?
	       -errno : 0;
}

static int verdict_ct(struct ctx *c, uint32_t id)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, (int)c->queue);
	struct nlattr *nest;

	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	nest = mnl_attr_nest_start(nlh, NFQA_CT);
	mnl_attr_put_u32(nlh, CTA_MARK, htonl(c->mark));
	mnl_attr_nest_end(nlh, nest);
	return send_acked(c, nlh);
}

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	struct ctx *c = data;
	int rc;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return MNL_CB_OK;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	printf("packet ct=%s\n", attr[NFQA_CT] ? "yes" : "no");
	rc = verdict_ct(c, ntohl(ph->packet_id));
	if (rc < 0)
		printf("verdict_error=%s\n", strerror(-rc));
	fflush(stdout);
	c->packets++;
	return MNL_CB_OK;
}

static int bind_queue(struct ctx *c)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int rc;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, (int)c->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if ((rc = send_acked(c, nlh)) < 0 || (rc = read_ack(c)) < 0)
		return rc;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, (int)c->queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	if ((rc = send_acked(c, nlh)) < 0 || (rc = read_ack(c)) < 0)
		return rc;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, (int)c->queue);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_CONNTRACK));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_CONNTRACK));
	if ((rc = send_acked(c, nlh)) < 0)
		return rc;
	rc = read_ack(c);
	printf("conntrack_flag=%s\n", rc == 0 ? "ok" : rc == -EOPNOTSUPP ? "refused" : "error");
	fflush(stdout);
	return rc == 0 || rc == -EOPNOTSUPP ? 0 : rc;
}

int main(int argc, char **argv)
{
	char buf[0xffff + MNL_SOCKET_BUFFER_SIZE];
	struct ctx c = { 0 };
	uint64_t deadline;
	int count, rc;

	if (argc != 5) {
		fprintf(stderr, "usage: ct-verdict QUEUE MARK COUNT TIMEOUT_MS\n");
		return 2;
	}
	c.queue = (unsigned)strtoul(argv[1], NULL, 0);
	c.mark = (uint32_t)strtoul(argv[2], NULL, 0);
	count = atoi(argv[3]);
	deadline = now_ms() + strtoull(argv[4], NULL, 0);
	c.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!c.nl || mnl_socket_bind(c.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("netlink socket");
		return 1;
	}
	rc = bind_queue(&c);
	if (rc < 0) {
		fprintf(stderr, "bind queue %u: %s\n", c.queue, strerror(-rc));
		mnl_socket_close(c.nl);
		return 1;
	}
	fprintf(stderr, "ready\n");
	while (c.packets < count && now_ms() < deadline) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(c.nl), .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		n = mnl_socket_recvfrom(c.nl, buf, sizeof(buf));
		if (n < 0)
			break;
		/* packets and the verdicts' ACKs (errors among them) */
		if (mnl_cb_run(buf, (size_t)n, 0, mnl_socket_get_portid(c.nl), packet_cb, &c) < 0) {
			printf("verdict_error=%s\n", strerror(errno));
			fflush(stdout);
		}
	}
	mnl_socket_close(c.nl);
	return 0;
}
