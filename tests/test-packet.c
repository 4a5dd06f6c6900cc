/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/packet.c: the NFQA_* parser, every accessor, malformed
 * messages, and retain/release.
 *
 * The packet messages are synthetic, built with libmnl and fed through
 * nfqb_queue_handle(): this kernel cannot produce some attributes at all
 * (conntrack attributes without nf_conntrack_netlink, VLAN tags, security
 * contexts without an LSM), and crafting them is the only way to check every
 * accessor against known values. The queue wraps one end of an AF_UNIX
 * socketpair (queue_new_unchecked), so nothing reaches the kernel except in
 * the tests that bind a real queue on purpose.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "nfq-msg.h"

#define QNUM 7

/* ---- message builder ---------------------------------------------- */

struct mbuf {
	_Alignas(8) uint8_t b[16384];
	size_t len;
};

/* Start a packet message at the end of @m with a PACKET_HDR for @id. */
static struct nlmsghdr *pkt_begin(struct mbuf *m, uint16_t queue, uint32_t id)
{
	assert_true(m->len + 1024 < sizeof(m->b));
	/* id UINT32_MAX: no PACKET_HDR, for the malformed-message tests */
	if (id == UINT32_MAX)
		return tmsg_packet_header(m->b + m->len, queue);
	return tmsg_packet_begin(m->b + m->len, queue, id, 0x0800, NF_INET_LOCAL_IN);
}

static void pkt_end(struct mbuf *m, struct nlmsghdr *nlh)
{
	m->len += MNL_ALIGN(nlh->nlmsg_len);
}

/* A minimal valid packet: header and a small payload. */
static void pkt_simple(struct mbuf *m, uint16_t queue, uint32_t id)
{
	static const uint8_t pl[8] = { 0x45, 0, 0, 8, 1, 2, 3, 4 };
	struct nlmsghdr *nlh = pkt_begin(m, queue, id);

	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pl), pl);
	pkt_end(m, nlh);
}

static const uint8_t full_payload[20] = {
	0x45, 0x00, 0x00, 0x14, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x11,
	0x00, 0x00, 10, 0, 0, 1, 10, 0, 0, 2,
};
static const uint8_t full_hw[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
static const uint8_t full_l2[14] = {
	0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x00,
};
static const char full_secctx[] = "system_u:object_r:nfqb_test_t:s0";

/* Every attribute a reader may see, with distinct values. */
static void pkt_full(struct mbuf *m, uint16_t queue, uint32_t id)
{
	struct nfqnl_msg_packet_hdr h = {
		.packet_id = htonl(id), .hw_protocol = htons(0x86dd), .hook = NF_INET_FORWARD,
	};
	struct nfqnl_msg_packet_timestamp ts = {
		.sec = htobe64(1700000000), .usec = htobe64(123456),
	};
	struct nfqnl_msg_packet_hw hw = { .hw_addrlen = htons(6) };
	struct nlmsghdr *nlh = pkt_begin(m, queue, UINT32_MAX);
	struct nlattr *nest;

	memcpy(hw.hw_addr, full_hw, sizeof(full_hw));
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(h), &h);
	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(0xdeadbeef));
	mnl_attr_put(nlh, NFQA_TIMESTAMP, sizeof(ts), &ts);
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_INDEV, htonl(11));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_OUTDEV, htonl(12));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_PHYSINDEV, htonl(13));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_PHYSOUTDEV, htonl(14));
	mnl_attr_put(nlh, NFQA_HWADDR, sizeof(hw), &hw);
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(full_payload), full_payload);
	nest = mnl_attr_nest_start(nlh, NFQA_CT);
	mnl_attr_put_u32(nlh, 8 /* CTA_MARK */, htonl(0x77));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_put_u32(nlh, NFQA_CT_INFO, htonl(2));
	mnl_attr_put_u32(nlh, NFQA_CAP_LEN, htonl(1500));
	mnl_attr_put_u32(nlh, NFQA_SKB_INFO, htonl(NFQA_SKB_CSUMNOTREADY | NFQA_SKB_GSO));
	mnl_attr_put_u32(nlh, NFQA_UID, htonl(1000));
	mnl_attr_put_u32(nlh, NFQA_GID, htonl(100));
	mnl_attr_put_strz(nlh, NFQA_SECCTX, full_secctx);
	nest = mnl_attr_nest_start(nlh, NFQA_VLAN);
	mnl_attr_put_u16(nlh, NFQA_VLAN_PROTO, htons(0x8100));
	mnl_attr_put_u16(nlh, NFQA_VLAN_TCI, htons(0x2005));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_put(nlh, NFQA_L2HDR, sizeof(full_l2), full_l2);
	mnl_attr_put_u32(nlh, NFQA_PRIORITY, htonl(6));
	pkt_end(m, nlh);
}

/* ---- fixture: a queue on a socketpair with QNUM "bound" --------------- */

struct seen {
	int calls;
	uint32_t ids[16];
	struct nfqb_packet *last;
	struct nfqb_packet *copy;
	void (*check)(struct nfqb_packet *p, struct seen *s);
	bool accept;
};

struct fx {
	struct nfqb_queue *q;
	int peer;
	struct seen s;
	struct mbuf m;
};

static void on_packet(struct nfqb_packet *p, void *user)
{
	struct seen *s = user;

	if (s->calls < 16)
		s->ids[s->calls] = nfqb_packet_id(p);
	s->calls++;
	s->last = p;
	if (s->check)
		s->check(p, s);
	if (s->accept)
		assert_int_equal(nfqb_packet_accept(p), 0);
}

/* A binding without asking the kernel (bind's last step). */
static void test_bind(struct nfqb_queue *q, uint16_t num, nfqb_callback cb, void *user)
{
	assert_int_equal(binding_add(q, num, cb, user, false), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->q = tmsg_queue_pair(&f->peer, 0);
	if (!f->q)
		return -1;
	f->s.accept = true;
	test_bind(f->q, QNUM, on_packet, &f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	/* detach: the bindings are fake, an unbind would wait for an ack. */
	nfqb_queue_detach(f->q);
	close(f->peer);
	free(f);
	return 0;
}

static struct nfqb_queue_stats stats(struct nfqb_queue *q)
{
	struct nfqb_queue_stats st;

	nfqb_queue_get_stats(q, &st);
	return st;
}

/* ---- accessors ------------------------------------------------------ */

static void check_full(struct nfqb_packet *p, struct seen *s)
{
	struct timespec ts;
	const uint8_t *hw;
	const void *v;
	const char *str;
	size_t len;
	uint32_t u, info;
	uint16_t proto, tci;

	assert_int_equal(nfqb_packet_id(p), 0x01020304);
	assert_int_equal(nfqb_packet_queue(p), QNUM);
	assert_int_equal(nfqb_packet_hw_protocol(p), 0x86dd);
	assert_int_equal(nfqb_packet_hook(p), NFQB_HOOK_FORWARD);
	assert_int_equal(nfqb_packet_mark(p), 0xdeadbeef);
	assert_int_equal(nfqb_packet_get_mark(p), 0xdeadbeef);

	assert_int_equal(nfqb_packet_timestamp(p, &ts), 0);
	assert_int_equal(ts.tv_sec, 1700000000);
	assert_int_equal(ts.tv_nsec, 123456000);

	assert_int_equal(nfqb_packet_indev(p), 11);
	assert_int_equal(nfqb_packet_outdev(p), 12);
	assert_int_equal(nfqb_packet_physindev(p), 13);
	assert_int_equal(nfqb_packet_physoutdev(p), 14);
	assert_int_equal(nfqb_packet_ifindex(p, NFQB_DEV_IN), 11);
	assert_int_equal(nfqb_packet_ifindex(p, NFQB_DEV_OUT), 12);
	assert_int_equal(nfqb_packet_ifindex(p, NFQB_DEV_PHYSIN), 13);
	assert_int_equal(nfqb_packet_ifindex(p, NFQB_DEV_PHYSOUT), 14);
	assert_int_equal(nfqb_packet_ifindex(p, (enum nfqb_dev)4), 0);

	hw = nfqb_packet_hw(p, &len);
	assert_non_null(hw);
	assert_int_equal(len, 6);
	assert_memory_equal(hw, full_hw, 6);

	v = nfqb_packet_payload(p, &len);
	assert_non_null(v);
	assert_int_equal(len, sizeof(full_payload));
	assert_memory_equal(v, full_payload, sizeof(full_payload));
	assert_int_equal(nfqb_packet_payload_len(p), sizeof(full_payload));
	assert_int_equal(nfqb_packet_cap_len(p), 1500);

	v = nfqb_packet_ct(p, &len, &info);
	assert_non_null(v);
	assert_int_equal(len, 8);
	assert_int_equal(info, 2);
	assert_int_equal(mnl_attr_get_type(v), 8);
	assert_int_equal(ntohl(mnl_attr_get_u32(v)), 0x77);

	assert_int_equal(nfqb_packet_skbinfo(p, &u), 0);
	assert_int_equal(u, NFQA_SKB_CSUMNOTREADY | NFQA_SKB_GSO);
	assert_int_equal(nfqb_packet_uid(p, &u), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(nfqb_packet_gid(p, &u), 0);
	assert_int_equal(u, 100);
	assert_int_equal(nfqb_packet_priority(p, &u), 0);
	assert_int_equal(u, 6);

	str = nfqb_packet_secctx(p, &len);
	assert_non_null(str);
	assert_int_equal(len, strlen(full_secctx));
	assert_memory_equal(str, full_secctx, len);

	assert_int_equal(nfqb_packet_vlan(p, &proto, &tci), 0);
	assert_int_equal(proto, 0x8100);
	assert_int_equal(tci, 0x2005);
	assert_int_equal(nfqb_packet_vlan(p, NULL, NULL), 0);

	v = nfqb_packet_l2hdr(p, &len);
	assert_non_null(v);
	assert_int_equal(len, sizeof(full_l2));
	assert_memory_equal(v, full_l2, sizeof(full_l2));

	assert_false(nfqb_packet_decided(p));
	(void)s;
}

static void test_all_accessors(void **state)
{
	struct fx *f = *state;

	f->s.check = check_full;
	pkt_full(&f->m, QNUM, 0x01020304);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(stats(f->q).packets, 1);
	assert_int_equal(stats(f->q).malformed, 0);
	assert_true(nfqb_packet_decided(f->s.last));
	/* Over, decided or not: stale comes first. */
	errno = 0;
	assert_null(nfqb_packet_retain(f->s.last));
	assert_int_equal(errno, ESTALE);
	assert_int_equal(nfqb_packet_accept(f->s.last), -ESTALE);
}

static void check_absent(struct nfqb_packet *p, struct seen *s)
{
	struct timespec ts = { 5, 5 };
	size_t len = 99;
	uint32_t u = 42, info = 0;
	uint16_t proto = 1, tci = 1;

	assert_int_equal(nfqb_packet_id(p), 5);
	assert_int_equal(nfqb_packet_mark(p), 0);
	assert_int_equal(nfqb_packet_get_mark(p), 0);
	assert_int_equal(nfqb_packet_timestamp(p, &ts), -ENODATA);
	assert_null(nfqb_packet_hw(p, &len));
	assert_int_equal(len, 0);
	for (int d = NFQB_DEV_IN; d <= NFQB_DEV_PHYSOUT; d++)
		assert_int_equal(nfqb_packet_ifindex(p, (enum nfqb_dev)d), 0);
	assert_int_equal(nfqb_packet_indev(p) | nfqb_packet_outdev(p) |
			 nfqb_packet_physindev(p) | nfqb_packet_physoutdev(p), 0);
	len = 99;
	assert_null(nfqb_packet_payload(p, &len));
	assert_int_equal(len, 0);
	assert_int_equal(nfqb_packet_payload_len(p), 0);
	assert_int_equal(nfqb_packet_cap_len(p), 0);
	assert_int_equal(nfqb_packet_uid(p, &u), -ENODATA);
	assert_int_equal(nfqb_packet_gid(p, &u), -ENODATA);
	assert_int_equal(nfqb_packet_skbinfo(p, &u), -ENODATA);
	assert_int_equal(nfqb_packet_priority(p, &u), -ENODATA);
	assert_int_equal(u, 42);
	assert_int_equal(nfqb_packet_vlan(p, &proto, &tci), -ENODATA);
	len = 99;
	assert_null(nfqb_packet_l2hdr(p, &len));
	assert_int_equal(len, 0);
	len = 99;
	assert_null(nfqb_packet_secctx(p, &len));
	assert_int_equal(len, 0);
	len = 99;
	assert_null(nfqb_packet_ct(p, &len, &info));
	assert_int_equal(len, 0);
	assert_int_equal(info, UINT32_MAX);
	(void)s;
}

static void test_absent_attributes(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 5);

	pkt_end(&f->m, nlh);
	f->s.check = check_absent;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
}

static void check_caplen(struct nfqb_packet *p, struct seen *s)
{
	assert_int_equal(nfqb_packet_payload_len(p), 8);
	assert_int_equal(nfqb_packet_cap_len(p), 8);
	(void)s;
}

static void test_cap_len_defaults_to_payload(void **state)
{
	struct fx *f = *state;

	pkt_simple(&f->m, QNUM, 1);
	f->s.check = check_caplen;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(stats(f->q).bytes, 8);
}

static void check_hw_long(struct nfqb_packet *p, struct seen *s)
{
	size_t len;
	const uint8_t *hw = nfqb_packet_hw(p, &len);

	/* A 20-byte address (InfiniBand) does not fit the attribute's 8. */
	assert_non_null(hw);
	assert_int_equal(len, 8);
	assert_int_equal(hw[7], 0x88);
	(void)s;
}

static void test_hw_len_clamped(void **state)
{
	struct fx *f = *state;
	struct nfqnl_msg_packet_hw hw = { .hw_addrlen = htons(20) };
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 3);

	for (int i = 0; i < 8; i++)
		hw.hw_addr[i] = (uint8_t)(0x11 * (i + 1));
	mnl_attr_put(nlh, NFQA_HWADDR, sizeof(hw), &hw);
	pkt_end(&f->m, nlh);
	f->s.check = check_hw_long;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
}

static void check_set_mark(struct nfqb_packet *p, struct seen *s)
{
	assert_int_equal(nfqb_packet_set_mark(p, 0x1234), 0);
	assert_int_equal(nfqb_packet_get_mark(p), 0x1234);
	assert_int_equal(nfqb_packet_mark(p), 0xdeadbeef);
	(void)s;
}

static void test_set_mark_get_mark(void **state)
{
	struct fx *f = *state;

	pkt_full(&f->m, QNUM, 9);
	f->s.check = check_set_mark;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
}

static void check_set_payload(struct nfqb_packet *p, struct seen *s)
{
	static const uint8_t repl[5] = { 9, 8, 7, 6, 5 };
	const void *v;
	size_t len;

	assert_int_equal(nfqb_packet_set_payload(p, repl, sizeof(repl)), 0);
	v = nfqb_packet_payload(p, &len);
	assert_int_equal(len, sizeof(repl));
	assert_memory_equal(v, repl, sizeof(repl));
	assert_int_equal(nfqb_packet_payload_len(p), sizeof(repl));
	assert_int_equal(nfqb_packet_set_payload(p, NULL, 3), -EINVAL);
	assert_int_equal(nfqb_packet_payload_len(p), sizeof(repl));
	/* The arrival length stays what the kernel said. */
	assert_int_equal(nfqb_packet_cap_len(p), 1500);
	(void)s;
}

static void test_set_payload_visible(void **state)
{
	struct fx *f = *state;

	pkt_full(&f->m, QNUM, 9);
	f->s.check = check_set_payload;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
}

/* ---- interface names ----------------------------------------------- */

static void check_ifname(struct nfqb_packet *p, struct seen *s)
{
	char name[IF_NAMESIZE];

	memset(name, 'x', sizeof(name));
	assert_int_equal(nfqb_packet_ifname(p, NFQB_DEV_IN, name), 0);
	assert_string_equal(name, "lo");
	assert_int_equal(nfqb_packet_ifname(p, NFQB_DEV_OUT, name), -ENODATA);
	assert_int_equal(nfqb_packet_ifname(p, NFQB_DEV_PHYSIN, name), -ENODEV);
	assert_int_equal(nfqb_packet_ifname(p, NFQB_DEV_PHYSOUT, name), -ENODATA);
	(void)s;
}

static void put_ifname_pkt(struct mbuf *m)
{
	struct nlmsghdr *nlh = pkt_begin(m, QNUM, 1);

	mnl_attr_put_u32(nlh, NFQA_IFINDEX_INDEV, htonl(1));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_PHYSINDEV, htonl(0x7ffffff0));
	pkt_end(m, nlh);
}

static void test_ifname(void **state)
{
	struct fx *f = *state;

	/* Index 1 is lo in every namespace, including the one tests run in. */
	put_ifname_pkt(&f->m);
	f->s.check = check_ifname;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
}

static void test_ifname_rtnl(void **state)
{
	struct fx *f = *state;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	assert_true(fd >= 0);
	assert_int_equal(nfqb_queue_set_rtnl(f->q, fd), 0);
	put_ifname_pkt(&f->m);
	f->s.check = check_ifname;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(nfqb_queue_set_rtnl(f->q, -1), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1);   /* the queue owned and closed it */
	assert_int_equal(errno, EBADF);
}

/* A process in the namespace may unicast to the route socket's port id, or
 * (sharing the socket) connect() it: a forged answer is skipped, and the
 * request still goes to the kernel, never to the connected peer. */
static int rtnl_peer(uint32_t *portid)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*portid = sa.nl_pid;
	return fd;
}

static void check_ifname_unanswered(struct nfqb_packet *p, struct seen *s)
{
	char name[IF_NAMESIZE];

	assert_int_equal(nfqb_packet_ifname(p, NFQB_DEV_IN, name), -ETIMEDOUT);
	(void)s;
}

static void test_ifname_rtnl_hostile(void **state)
{
	struct fx *f = *state;
	_Alignas(4) char forged[256] = { 0 }, junk[256];
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(forged);
	struct ifinfomsg *ifi;
	uint32_t peer_id;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int peer = rtnl_peer(&peer_id);
	socklen_t len = sizeof(to);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&to, &len), 0);
	assert_int_equal(nfqb_queue_set_rtnl(f->q, fd), 0);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_seq = 1;                    /* what the request for index 1 uses */
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = 1;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "evil0");
	if (sendto(peer, nlh, nlh->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		close(peer);
		skip();                            /* needs CAP_NET_ADMIN */
	}
	put_ifname_pkt(&f->m);
	f->s.check = check_ifname;             /* "lo", not "evil0" */
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);

	to.nl_pid = peer_id;
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	f->m.len = 0;
	put_ifname_pkt(&f->m);
	f->s.check = check_ifname_unanswered;  /* the kernel's answer is refused */
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 2);
	assert_true(recv(peer, junk, sizeof(junk), MSG_DONTWAIT) < 0 && errno == EAGAIN);
	close(peer);
}

/* ---- malformed messages --------------------------------------------- */

/* @bad was put in f->m before: it must be skipped and counted, and the
 * valid packet after it still dispatched. */
static void expect_skipped_then_valid(struct fx *f)
{
	pkt_simple(&f->m, QNUM, 99);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(f->s.ids[0], 99);
	assert_int_equal(stats(f->q).malformed, 1);
	assert_int_equal(stats(f->q).packets, 1);
	assert_int_equal(stats(f->q).unsettled, 0);
}

static void test_malformed_no_packet_hdr(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, UINT32_MAX);

	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(1));
	mnl_attr_put(nlh, NFQA_PAYLOAD, 4, "abcd");
	pkt_end(&f->m, nlh);
	expect_skipped_then_valid(f);
}

static void test_malformed_short_packet_hdr(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, UINT32_MAX);
	uint32_t id = htonl(1);

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(id), &id);
	pkt_end(&f->m, nlh);
	expect_skipped_then_valid(f);
}

static void test_malformed_short_u32(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 1);

	mnl_attr_put_u16(nlh, NFQA_MARK, 7);
	pkt_end(&f->m, nlh);
	expect_skipped_then_valid(f);
}

static void test_malformed_each_short_u32(void **state)
{
	static const int types[] = {
		NFQA_MARK, NFQA_IFINDEX_INDEV, NFQA_IFINDEX_OUTDEV, NFQA_IFINDEX_PHYSINDEV,
		NFQA_IFINDEX_PHYSOUTDEV, NFQA_CT_INFO, NFQA_CAP_LEN, NFQA_SKB_INFO,
		NFQA_UID, NFQA_GID, NFQA_PRIORITY,
	};
	struct fx *f = *state;
	size_t n = sizeof(types) / sizeof(types[0]);

	for (size_t i = 0; i < n; i++) {
		struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, (uint32_t)i);

		mnl_attr_put_u16(nlh, (uint16_t)types[i], 7);
		pkt_end(&f->m, nlh);
	}
	pkt_simple(&f->m, QNUM, 99);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(f->s.ids[0], 99);
	assert_int_equal(stats(f->q).malformed, n);
}

static void test_malformed_short_struct_attrs(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 1);

	mnl_attr_put(nlh, NFQA_HWADDR, 4, "\0\6ab");
	pkt_end(&f->m, nlh);
	nlh = pkt_begin(&f->m, QNUM, 2);
	mnl_attr_put(nlh, NFQA_TIMESTAMP, 8, "\0\0\0\0\0\0\0\1");
	pkt_end(&f->m, nlh);
	pkt_simple(&f->m, QNUM, 99);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(f->s.ids[0], 99);
	assert_int_equal(stats(f->q).malformed, 2);
}

static void test_malformed_bad_vlan(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 1);
	struct nlattr *nest = mnl_attr_nest_start(nlh, NFQA_VLAN);

	mnl_attr_put(nlh, NFQA_VLAN_PROTO, 1, "\x81");
	mnl_attr_nest_end(nlh, nest);
	pkt_end(&f->m, nlh);
	expect_skipped_then_valid(f);
}

static void test_malformed_no_nfgenmsg(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(f->m.b);

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
	nlh->nlmsg_len += 2;
	pkt_end(&f->m, nlh);
	expect_skipped_then_valid(f);
}

static void test_malformed_unknown_msg_type(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 1);

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG;
	pkt_end(&f->m, nlh);
	expect_skipped_then_valid(f);
}

static void test_malformed_len_beyond_buffer(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh;

	pkt_simple(&f->m, QNUM, 1);
	nlh = pkt_begin(&f->m, QNUM, 2);
	pkt_end(&f->m, nlh);
	nlh->nlmsg_len += 64;    /* claims bytes the buffer does not have */
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(f->s.ids[0], 1);
	assert_int_equal(stats(f->q).malformed, 1);
}

static void test_malformed_trailing_garbage(void **state)
{
	struct fx *f = *state;

	pkt_simple(&f->m, QNUM, 1);
	memset(f->m.b + f->m.len, 0xff, 5);
	f->m.len += 5;
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(f->s.ids[0], 1);
	assert_int_equal(stats(f->q).malformed, 1);
}

static void test_unknown_attribute_ignored(void **state)
{
	struct fx *f = *state;
	struct nlmsghdr *nlh = pkt_begin(&f->m, QNUM, 1);

	mnl_attr_put_u32(nlh, 200, htonl(5));
	mnl_attr_put_u32(nlh, NFQA_EXP, htonl(5));
	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(3));
	pkt_end(&f->m, nlh);
	pkt_simple(&f->m, QNUM, 2);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 2);
	assert_int_equal(f->s.calls, 2);
	assert_int_equal(f->s.ids[0], 1);
	assert_int_equal(f->s.ids[1], 2);
	assert_int_equal(stats(f->q).malformed, 0);
}

static void test_unbound_queue_not_dispatched(void **state)
{
	struct fx *f = *state;

	pkt_simple(&f->m, QNUM + 1, 1);
	pkt_simple(&f->m, QNUM, 2);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_int_equal(f->s.ids[0], 2);
	assert_int_equal(stats(f->q).malformed, 0);
	assert_int_equal(stats(f->q).unsettled, 1);
}

static void test_handle_bad_args(void **state)
{
	struct fx *f = *state;

	assert_int_equal(nfqb_queue_handle(f->q, NULL, 5), -EINVAL);
	assert_int_equal(nfqb_queue_handle(f->q, NULL, 0), 0);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, 0), 0);
	assert_int_equal(stats(f->q).malformed, 0);
}

/* ---- stale packets, retain / release --------------------------------- */

static void test_stale_after_callback(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet *p;
	size_t len = 7;

	f->s.accept = false;
	pkt_full(&f->m, QNUM, 4);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	p = f->s.last;
	assert_non_null(p);
	errno = 0;
	assert_null(nfqb_packet_payload(p, &len));
	assert_int_equal(errno, ESTALE);
	assert_int_equal(len, 0);
	assert_int_equal(nfqb_packet_payload_len(p), -ESTALE);
	errno = 0;
	assert_null(nfqb_packet_retain(p));
	assert_int_equal(errno, ESTALE);
	assert_int_equal(nfqb_packet_accept(p), -ESTALE);
	assert_int_equal(nfqb_packet_set_mark(p, 1), -ESTALE);
	assert_int_equal(nfqb_packet_set_payload(p, "x", 1), -ESTALE);
	assert_int_equal(stats(f->q).unsettled, 1);
	assert_int_equal(stats(f->q).verdicts, 0);
}

static void retain_it(struct nfqb_packet *p, struct seen *s)
{
	struct nfqb_packet *c = nfqb_packet_retain(p);

	assert_non_null(c);
	assert_true(c != p);
	errno = 0;
	assert_null(nfqb_packet_retain(p));
	assert_int_equal(errno, EALREADY);
	errno = 0;
	assert_null(nfqb_packet_retain(c));
	assert_int_equal(errno, EALREADY);
	nfqb_packet_release(p);   /* not a copy: ignored */
	s->copy = c;
}

static void check_copy_full(struct nfqb_packet *c)
{
	const void *v;
	const char *str;
	size_t len;
	uint32_t info;
	uint16_t proto, tci;

	assert_int_equal(nfqb_packet_id(c), 0x01020304);
	assert_int_equal(nfqb_packet_queue(c), QNUM);
	assert_int_equal(nfqb_packet_mark(c), 0xdeadbeef);
	v = nfqb_packet_payload(c, &len);
	assert_non_null(v);
	assert_int_equal(len, sizeof(full_payload));
	assert_memory_equal(v, full_payload, sizeof(full_payload));
	v = nfqb_packet_hw(c, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(v, full_hw, 6);
	v = nfqb_packet_l2hdr(c, &len);
	assert_int_equal(len, sizeof(full_l2));
	assert_memory_equal(v, full_l2, sizeof(full_l2));
	str = nfqb_packet_secctx(c, &len);
	assert_int_equal(len, strlen(full_secctx));
	assert_memory_equal(str, full_secctx, len);
	v = nfqb_packet_ct(c, &len, &info);
	assert_int_equal(len, 8);
	assert_int_equal(info, 2);
	assert_int_equal(ntohl(mnl_attr_get_u32(v)), 0x77);
	assert_int_equal(nfqb_packet_vlan(c, &proto, &tci), 0);
	assert_int_equal(tci, 0x2005);
}

static void test_retain_copy_outlives_callback(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet *c;

	f->s.accept = false;
	f->s.check = retain_it;
	pkt_full(&f->m, QNUM, 0x01020304);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	c = f->s.copy;
	assert_non_null(c);
	/* The copy must not point into the bytes the caller handed in. */
	memset(f->m.b, 0xaa, sizeof(f->m.b));
	check_copy_full(c);
	assert_false(nfqb_packet_decided(c));
	assert_int_equal(stats(f->q).unsettled, 0);
	assert_int_equal(nfqb_packet_accept(c), 0);
	assert_true(nfqb_packet_decided(c));
	assert_int_equal(nfqb_packet_accept(c), -EALREADY);
	nfqb_packet_release(c);
	nfqb_packet_release(NULL);
	assert_int_equal(stats(f->q).unsettled, 0);
	assert_int_equal(stats(f->q).verdicts, 1);
}

static void test_release_undecided_counts_unsettled(void **state)
{
	struct fx *f = *state;

	f->s.accept = false;
	f->s.check = retain_it;
	pkt_simple(&f->m, QNUM, 3);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_non_null(f->s.copy);
	assert_int_equal(stats(f->q).unsettled, 0);
	nfqb_packet_release(f->s.copy);
	assert_int_equal(stats(f->q).unsettled, 1);
	assert_null(f->q->copies);
}

static void retain_then_decide(struct nfqb_packet *p, struct seen *s)
{
	s->copy = nfqb_packet_retain(p);
	assert_non_null(s->copy);
	assert_int_equal(nfqb_packet_drop(p), 0);
	/* One verdict settles original and copy alike. */
	assert_true(nfqb_packet_decided(p));
	assert_true(nfqb_packet_decided(s->copy));
	assert_int_equal(nfqb_packet_accept(s->copy), -EALREADY);
}

static void test_verdict_on_original_settles_copy(void **state)
{
	struct fx *f = *state;

	f->s.accept = false;
	f->s.check = retain_then_decide;
	pkt_simple(&f->m, QNUM, 3);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(nfqb_packet_accept(f->s.copy), -EALREADY);
	assert_int_equal(nfqb_packet_payload_len(f->s.copy), 8);
	nfqb_packet_release(f->s.copy);
	assert_int_equal(stats(f->q).verdicts, 1);
	assert_int_equal(stats(f->q).unsettled, 0);
}

static void retain_after_verdict(struct nfqb_packet *p, struct seen *s)
{
	assert_int_equal(nfqb_packet_accept(p), 0);
	errno = 0;
	assert_null(nfqb_packet_retain(p));
	assert_int_equal(errno, EALREADY);
	(void)s;
}

static void test_retain_after_verdict(void **state)
{
	struct fx *f = *state;

	f->s.accept = false;
	f->s.check = retain_after_verdict;
	pkt_simple(&f->m, QNUM, 3);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	assert_int_equal(f->s.calls, 1);
	assert_null(f->q->copies);
}

/* Queue numbers of the real-socket tests: high, and per process. */
static uint16_t real_qnum(void)
{
	return (uint16_t)(45000 + getpid() % 1000);
}

static void retain_only(struct nfqb_packet *p, struct seen *s)
{
	s->copy = nfqb_packet_retain(p);
	assert_non_null(s->copy);
}

static void test_retain_survives_close(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = real_qnum();
	struct seen s = { .check = retain_only };
	struct mbuf *m = calloc(1, sizeof(*m));
	const void *v;
	size_t len;

	assert_non_null(q);
	assert_non_null(m);
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, &s, NULL), 0);
	pkt_full(m, num, 77);
	assert_int_equal(nfqb_queue_handle(q, m->b, m->len), 1);
	assert_non_null(s.copy);
	nfqb_queue_close(q);
	memset(m->b, 0, sizeof(m->b));
	/* Still valid memory, but nobody left to tell the verdict to. */
	v = nfqb_packet_payload(s.copy, &len);
	assert_non_null(v);
	assert_int_equal(len, sizeof(full_payload));
	assert_memory_equal(v, full_payload, len);
	assert_int_equal(nfqb_packet_id(s.copy), 77);
	assert_int_equal(nfqb_packet_accept(s.copy), -ENOTCONN);
	assert_int_equal(nfqb_packet_set_payload(s.copy, "ab", 2), -ENOTCONN);
	assert_false(nfqb_packet_decided(s.copy));
	nfqb_packet_release(s.copy);
	free(m);
	(void)state;
}

/* ---- found by fuzzing (tests/fuzz, packet target) -------------------- */

static void requeue_high(struct nfqb_packet *p, struct seen *s)
{
	assert_int_equal(nfqb_packet_requeue(p, 40000), 0);
}

/* Queue numbers of 32768 and up: num << 16 overflowed a promoted int (UB)
 * before; the verdict on the wire must carry the number unchanged. */
static void test_requeue_high_queue_number(void **state)
{
	struct fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *nlh = (const void *)buf;
	const struct nlattr *a;
	struct nfqnl_msg_verdict_hdr vh = { 0 };
	bool found = false;
	ssize_t n;

	f->s.accept = false;
	f->s.check = requeue_high;
	pkt_simple(&f->m, QNUM, 9);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 1);
	n = recv(f->peer, buf, sizeof(buf), MSG_DONTWAIT);
	assert_true(n >= (ssize_t)NLMSG_HDRLEN);
	assert_true(mnl_nlmsg_ok(nlh, (int)n));
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == NFQA_VERDICT_HDR) {
			memcpy(&vh, mnl_attr_get_payload(a), sizeof(vh));
			found = true;
		}
	}
	assert_true(found);
	assert_int_equal(ntohl(vh.id), 9);
	assert_int_equal(ntohl(vh.verdict), (40000u << 16) | NF_QUEUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_accessors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_len_defaults_to_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hw_len_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_mark_get_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_payload_visible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ifname, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ifname_rtnl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ifname_rtnl_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_no_packet_hdr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_short_packet_hdr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_short_u32, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_each_short_u32, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_short_struct_attrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_bad_vlan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_no_nfgenmsg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_unknown_msg_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_len_beyond_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_trailing_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_attribute_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbound_queue_not_dispatched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handle_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_after_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain_copy_outlives_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_undecided_counts_unsettled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdict_on_original_settles_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain_after_verdict, setup, teardown),
		cmocka_unit_test(test_retain_survives_close),
		cmocka_unit_test_setup_teardown(test_requeue_high_queue_number, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
