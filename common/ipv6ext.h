/* SPDX-License-Identifier: MIT */
/*
 * The IPv6 extension-header walk, once: the broker's verdict step
 * (broker/pktmeta.c) and the Python module (python/netfilterqueue.c) both
 * need the upper-layer protocol of a packet. Header-only and inline: it
 * runs on the hot path, allocates nothing, and every read is bounds-checked
 * against the captured length.
 */
#ifndef NFQB_COMMON_IPV6EXT_H
#define NFQB_COMMON_IPV6EXT_H

#include <stddef.h>
#include <stdint.h>

#define IPV6EXT_BASE_LEN 40

enum ipv6ext_result {
	IPV6EXT_UPPER,          /* reached the upper layer: proto, off */
	IPV6EXT_FRAGMENT,       /* a fragment other than the first: proto, no transport header */
	IPV6EXT_TRUNCATED,      /* the chain is cut short or longer than the bound */
};

struct ipv6ext {
	uint8_t proto;          /* UPPER/FRAGMENT: the protocol; TRUNCATED: the last next-header read */
	size_t off;             /* UPPER: offset of the transport header in the packet */
};

/*
 * ipv6ext_walk - walk the extension headers of the IPv6 packet @l3 (@len
 * captured bytes, at least IPV6EXT_BASE_LEN) from the base header's next
 * header, over at most @max extension headers (hop-by-hop, routing,
 * destination options, fragment, AH). ESP and no-next-header end the walk
 * as upper layers: what follows them is opaque.
 */
static inline enum ipv6ext_result ipv6ext_walk(const uint8_t *l3, size_t len, int max,
					       struct ipv6ext *r)
{
	size_t off = IPV6EXT_BASE_LEN, hlen;
	uint8_t nh = l3[6];

	for (int i = 0;; i++) {
		r->proto = nh;
		switch (nh) {
		case 0:         /* hop-by-hop options */
		case 43:        /* routing */
		case 60:        /* destination options */
			if (i == max || len - off < 2)
				return IPV6EXT_TRUNCATED;
			hlen = ((size_t)l3[off + 1] + 1) * 8;
			break;
		case 51:        /* authentication header: 4-byte units */
			if (i == max || len - off < 2)
				return IPV6EXT_TRUNCATED;
			hlen = ((size_t)l3[off + 1] + 2) * 4;
			break;
		case 44:        /* fragment */
			if (i == max || len - off < 8)
				return IPV6EXT_TRUNCATED;
			if (((l3[off + 2] << 8 | l3[off + 3]) & 0xfff8) != 0) {
				r->proto = l3[off];
				return IPV6EXT_FRAGMENT;
			}
			hlen = 8;
			break;
		default:
			r->off = off;
			return IPV6EXT_UPPER;
		}
		nh = l3[off];
		if (hlen > len - off) {
			r->proto = nh;
			return IPV6EXT_TRUNCATED;
		}
		off += hlen;
	}
}

#endif
