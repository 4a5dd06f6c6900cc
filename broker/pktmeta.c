/* SPDX-License-Identifier: MIT */
/*
 * Network-layer parsing for the verdict step. Every read is bounds-checked
 * against the captured length: with COPY_META or a short copy range the
 * bytes simply end early, and whatever lies beyond them stays unset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include "ipv6ext.h"
#include "pktmeta.h"

#define IPV4_HDR_MIN 20
#define IPV6_HDR_LEN IPV6EXT_BASE_LEN
/* Longer chains than this are not seen in honest traffic; the bound keeps
 * a crafted packet from making the walk expensive. */
#define IPV6_EXT_MAX 8

enum {
	P_TCP = 6, P_UDP = 17, P_SCTP = 132, P_UDPLITE = 136,
};

static bool proto_has_ports(uint8_t proto)
{
	return proto == P_TCP || proto == P_UDP || proto == P_UDPLITE ||
	       proto == P_SCTP;
}

/* All four port-carrying protocols start with sport, dport (16 bits each). */
static void read_ports(struct pktmeta *m, const uint8_t *l3, size_t len,
		       size_t off)
{
	if (!proto_has_ports(m->proto) || off > len || len - off < 4)
		return;
	m->sport = (uint16_t)(l3[off] << 8 | l3[off + 1]);
	m->dport = (uint16_t)(l3[off + 2] << 8 | l3[off + 3]);
	m->has_ports = true;
	if (m->proto == P_TCP && len - off >= 14)
		m->tcp_flags = l3[off + 13];
}

static int parse_v4(struct pktmeta *m, const uint8_t *l3, size_t len)
{
	size_t ihl = (size_t)(l3[0] & 0x0f) * 4;
	uint16_t frag_off;

	if (len < IPV4_HDR_MIN || ihl < IPV4_HDR_MIN)
		return -EBADMSG;
	m->family = 4;
	m->proto = l3[9];
	memcpy(m->src, l3 + 12, 4);
	memcpy(m->dst, l3 + 16, 4);
	/* Only the first fragment carries the transport header; later ones
	 * would show payload bytes where the ports should be. */
	frag_off = (uint16_t)((l3[6] & 0x1f) << 8 | l3[7]);
	if (frag_off == 0)
		read_ports(m, l3, len, ihl);
	return 0;
}

/*
 * A chain cut short by the capture leaves proto 0 ("unknown"): naming the
 * last extension header instead would let a rule for that number match.
 */
static int parse_v6(struct pktmeta *m, const uint8_t *l3, size_t len)
{
	struct ipv6ext x;

	if (len < IPV6_HDR_LEN)
		return -EBADMSG;
	m->family = 6;
	memcpy(m->src, l3 + 8, 16);
	memcpy(m->dst, l3 + 24, 16);
	switch (ipv6ext_walk(l3, len, IPV6_EXT_MAX, &x)) {
	case IPV6EXT_UPPER:
		/* Upper layer, ESP (opaque) or no-next-header. */
		m->proto = x.proto;
		read_ports(m, l3, len, x.off);
		break;
	case IPV6EXT_FRAGMENT:
		m->proto = x.proto;
		break;
	case IPV6EXT_TRUNCATED:
		break;
	}
	return 0;
}

/* pktmeta_parse_l3 - see pktmeta.h. */
int pktmeta_parse_l3(struct pktmeta *m, const uint8_t *l3, size_t len)
{
	m->family = 0;
	m->proto = 0;
	m->has_ports = false;
	m->sport = 0;
	m->dport = 0;
	m->tcp_flags = 0;
	memset(m->src, 0, sizeof(m->src));
	memset(m->dst, 0, sizeof(m->dst));
	if (!l3 || len < 1)
		return -EBADMSG;
	switch (l3[0] >> 4) {
	case 4:
		return parse_v4(m, l3, len);
	case 6:
		return parse_v6(m, l3, len);
	default:
		return -EBADMSG;
	}
}

/* One table for the policy language and for what the broker prints. */
/* pktmeta_parse_ct - see pktmeta.h. A plain walk: the attributes are
 * the kernel's, but a short or lying length must still not overrun. */
int pktmeta_parse_ct(struct pktmeta *m, const void *ct, size_t len)
{
	const uint8_t *b = ct;
	uint32_t mark = 0;
	size_t off = 0;

	m->has_ct = false;
	if (!b || len < NLA_HDRLEN)
		return -ENOENT;
	while (len - off >= NLA_HDRLEN) {
		struct nlattr a;

		memcpy(&a, b + off, sizeof(a));
		if (a.nla_len < NLA_HDRLEN || a.nla_len > len - off)
			return -EBADMSG;
		if ((a.nla_type & NLA_TYPE_MASK) == CTA_MARK) {
			if (a.nla_len < (size_t)NLA_HDRLEN + sizeof(mark))
				return -EBADMSG;
			memcpy(&mark, b + off + NLA_HDRLEN, sizeof(mark));
			mark = ntohl(mark);
		}
		if ((size_t)NLA_ALIGN(a.nla_len) >= len - off)
			break;
		off += (size_t)NLA_ALIGN(a.nla_len);
	}
	m->ctmark = mark;
	m->has_ct = true;
	return 0;
}

static const struct {
	const char *name;
	uint8_t num;
} proto_names[] = {
	{ "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 },
	{ "sctp", 132 }, { "udplite", 136 }, { "gre", 47 }, { "esp", 50 },
	{ "ah", 51 },
};

const char *pktmeta_proto_name(uint8_t proto, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (proto_names[i].num == proto)
			return proto_names[i].name;
	snprintf(buf, len, "%u", proto);
	return buf;
}

int pktmeta_proto_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (strcmp(name, proto_names[i].name) == 0)
			return proto_names[i].num;
	return -1;
}
