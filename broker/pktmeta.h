/* SPDX-License-Identifier: MIT */
/*
 * What the verdict step knows of one packet: filled from the nfqb_packet
 * and its network-layer bytes with no allocation and no string work.
 */
#ifndef BROKER_PKTMETA_H
#define BROKER_PKTMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pktmeta {
	uint8_t family;          /* 4, 6, or 0 when the bytes are not IP */
	uint8_t proto;           /* L4 protocol (after IPv6 extension headers); 0 unknown */
	uint8_t hook;            /* NFQB_HOOK_* */
	bool has_ports;          /* tcp/udp/udplite/sctp first fragment with ports present */
	uint16_t sport, dport;   /* host order */
	uint8_t tcp_flags;       /* TCP: the flags byte (FIN 0x01 .. CWR 0x80); 0 otherwise */
	uint8_t src[16], dst[16];/* IPv4 in the first 4 bytes */
	int32_t indev_id;        /* interned interface name id (policy_ifname_id), -1 none */
	int32_t outdev_id;
	uint32_t mark;
	bool has_uid, has_gid;
	uint32_t uid, gid;
	uint32_t len;            /* original packet length (cap_len) */
	bool has_ct;             /* the kernel sent NFQA_CT with a CTA_MARK */
	uint32_t ctmark;         /* its conntrack mark */
};

/*
 * pktmeta_parse_l3 - fill family, proto, src, dst, ports, has_ports and tcp_flags from
 * network-layer bytes @l3 of @len bytes (truncated captures allowed: what
 * is missing stays unset). IPv6 extension headers are walked to the
 * transport header; fragments other than the first carry no ports.
 * Returns 0, or -EBADMSG when the bytes are not a valid IP header (family
 * then stays 0 and the packet matches only rules that ask nothing of it).
 * Family, addresses and proto need the whole base header (20/40 bytes);
 * proto is 0 when an IPv6 extension chain is cut short or longer than 8.
 * Leaves hook, mark, uid/gid, len and the device ids alone.
 */
int pktmeta_parse_l3(struct pktmeta *m, const uint8_t *l3, size_t len);

/*
 * pktmeta_parse_ct - the conntrack mark (CTA_MARK) from the nested NFQA_CT
 * attributes @ct of @len bytes (nfqb_packet_ct()) into ctmark, has_ct
 * set: the packet has a conntrack entry. Without CTA_MARK the mark is 0
 * (ctnetlink may leave a zero mark out). Returns 0; -ENOENT when there
 * are no attributes, -EBADMSG when they are malformed (has_ct false).
 */
int pktmeta_parse_ct(struct pktmeta *m, const void *ct, size_t len);

/*
 * pktmeta_proto_name - the protocol's name (tcp, udp, icmp, icmpv6, sctp,
 * udplite, gre, esp, ah), or the number written into @buf (log lines and
 * watch events).
 */
const char *pktmeta_proto_name(uint8_t proto, char *buf, size_t len);

/* pktmeta_proto_by_name - the number of a name above, or -1 (policy parsing). */
int pktmeta_proto_by_name(const char *name);

#endif
