/* SPDX-License-Identifier: MIT */
/*
 * pktmeta_parse_l3 on crafted IPv4/IPv6 packets, including extension header
 * chains, fragments and every truncation of each packet (the truncated
 * copies live in exact-size heap buffers so ASan sees any overread).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipv6ext.h"
#include "pktmeta.h"

#define MAXPKT 512

struct pkt {
	uint8_t b[MAXPKT];
	size_t len;
};

static void put(struct pkt *p, const void *d, size_t n)
{
	assert_true(p->len + n <= MAXPKT);
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void v4(struct pkt *p, uint8_t proto, unsigned ihl_words, uint16_t frag)
{
	uint8_t h[60] = { 0 };

	h[0] = (uint8_t)(0x40 | ihl_words);
	h[6] = (uint8_t)(frag >> 8);
	h[7] = (uint8_t)frag;
	h[8] = 64;
	h[9] = proto;
	inet_pton(AF_INET, "10.0.0.1", h + 12);
	inet_pton(AF_INET, "192.168.1.2", h + 16);
	put(p, h, ihl_words * 4);
}

static void v6(struct pkt *p, uint8_t nh)
{
	uint8_t h[40] = { 0x60 };

	h[6] = nh;
	h[7] = 64;
	inet_pton(AF_INET6, "2001:db8::1", h + 8);
	inet_pton(AF_INET6, "fd00::2", h + 24);
	put(p, h, sizeof(h));
}

/* Hop-by-hop, routing or destination options: (len8 + 1) * 8 bytes. */
static void ext(struct pkt *p, uint8_t nh, uint8_t len8)
{
	uint8_t h[2048] = { 0 };

	h[0] = nh;
	h[1] = len8;
	put(p, h, ((size_t)len8 + 1) * 8);
}

static void frag6(struct pkt *p, uint8_t nh, uint16_t offset8, bool more)
{
	uint8_t h[8] = { 0 };
	uint16_t v = (uint16_t)(offset8 << 3 | (more ? 1 : 0));

	h[0] = nh;
	h[2] = (uint8_t)(v >> 8);
	h[3] = (uint8_t)v;
	put(p, h, sizeof(h));
}

/* Authentication header: (len4 + 2) * 4 bytes. */
static void ah(struct pkt *p, uint8_t nh, uint8_t len4)
{
	uint8_t h[1024] = { 0 };

	h[0] = nh;
	h[1] = len4;
	put(p, h, ((size_t)len4 + 2) * 4);
}

static void l4ports(struct pkt *p, uint16_t sport, uint16_t dport)
{
	uint8_t h[20] = { 0 };

	h[0] = (uint8_t)(sport >> 8);
	h[1] = (uint8_t)sport;
	h[2] = (uint8_t)(dport >> 8);
	h[3] = (uint8_t)dport;
	put(p, h, sizeof(h));
}

static int parse_exact(struct pktmeta *m, const struct pkt *p, size_t len)
{
	/* An exact-size copy: a read past @len is a heap overflow. */
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, p->b, len);
	ret = pktmeta_parse_l3(m, copy, len);
	free(copy);
	return ret;
}

static void expect_addr(const uint8_t *got, int af, const char *want)
{
	uint8_t a[16] = { 0 };

	assert_int_equal(inet_pton(af, want, a), 1);
	assert_memory_equal(got, a, 16);
}

struct want {
	uint8_t family, proto;
	bool has_ports;
	uint16_t sport, dport;
};

static void check(const struct pkt *p, struct want w)
{
	struct pktmeta m;

	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(parse_exact(&m, p, p->len), 0);
	assert_int_equal(m.family, w.family);
	assert_int_equal(m.proto, w.proto);
	assert_int_equal(m.has_ports, w.has_ports);
	assert_int_equal(m.sport, w.has_ports ? w.sport : 0);
	assert_int_equal(m.dport, w.has_ports ? w.dport : 0);
	if (w.family == 4) {
		expect_addr(m.src, AF_INET, "10.0.0.1");
		expect_addr(m.dst, AF_INET, "192.168.1.2");
	} else {
		expect_addr(m.src, AF_INET6, "2001:db8::1");
		expect_addr(m.dst, AF_INET6, "fd00::2");
	}
}

static void test_v4_tcp(void **state)
{
	struct pkt p = { .len = 0 };

	v4(&p, 6, 5, 0);
	l4ports(&p, 1234, 80);
	check(&p, (struct want){ 4, 6, true, 1234, 80 });
}

/* The TCP flags byte (for watch), 0 when cut short or not TCP. */
static void test_tcp_flags(void **state)
{
	struct pkt p = { .len = 0 };
	struct pktmeta m;

	v4(&p, 6, 5, 0);
	l4ports(&p, 1234, 80);
	p.b[20 + 13] = 0x12;            /* SYN|ACK */
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(parse_exact(&m, &p, p.len), 0);
	assert_int_equal(m.tcp_flags, 0x12);
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(parse_exact(&m, &p, 20 + 13), 0);   /* the flags byte cut off */
	assert_true(m.has_ports);
	assert_int_equal(m.tcp_flags, 0);
	p = (struct pkt){ .len = 0 };
	v4(&p, 17, 5, 0);
	l4ports(&p, 1234, 53);
	p.b[20 + 13] = 0x12;
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(parse_exact(&m, &p, p.len), 0);
	assert_int_equal(m.tcp_flags, 0);
}

static void test_v4_udp_options(void **state)
{
	struct pkt p = { .len = 0 };

	v4(&p, 17, 7, 0);          /* 8 bytes of IP options */
	l4ports(&p, 53000, 53);
	check(&p, (struct want){ 4, 17, true, 53000, 53 });
}

static void test_v4_icmp(void **state)
{
	struct pkt p = { .len = 0 };

	v4(&p, 1, 5, 0);
	l4ports(&p, 0x0800, 0x1234);   /* type/code/checksum are not ports */
	check(&p, (struct want){ 4, 1, false, 0, 0 });
}

static void test_v4_sctp_udplite(void **state)
{
	struct pkt p = { .len = 0 }, q = { .len = 0 }, g = { .len = 0 };

	v4(&p, 132, 5, 0);
	l4ports(&p, 5000, 5001);
	check(&p, (struct want){ 4, 132, true, 5000, 5001 });
	v4(&q, 136, 5, 0);
	l4ports(&q, 7, 9);
	check(&q, (struct want){ 4, 136, true, 7, 9 });
	v4(&g, 47, 5, 0);          /* GRE: no ports */
	l4ports(&g, 7, 9);
	check(&g, (struct want){ 4, 47, false, 0, 0 });
}

static void test_v4_fragments(void **state)
{
	struct pkt first = { .len = 0 }, later = { .len = 0 }, df = { .len = 0 };

	v4(&first, 6, 5, 0x2000);          /* MF, offset 0 */
	l4ports(&first, 1, 2);
	check(&first, (struct want){ 4, 6, true, 1, 2 });
	v4(&later, 6, 5, 0x2000 | 185);    /* MF, offset 1480 */
	l4ports(&later, 1, 2);
	check(&later, (struct want){ 4, 6, false, 0, 0 });
	v4(&df, 17, 5, 0x4000 | 3);        /* DF bit does not hide the offset */
	l4ports(&df, 1, 2);
	check(&df, (struct want){ 4, 17, false, 0, 0 });
}

static void test_v4_bad(void **state)
{
	struct pktmeta m;
	struct pkt p = { .len = 0 };

	v4(&p, 6, 5, 0);
	l4ports(&p, 1, 2);
	p.b[0] = 0x44;             /* IHL 4 < 5 */
	assert_int_equal(parse_exact(&m, &p, p.len), -EBADMSG);
	assert_int_equal(m.family, 0);
	assert_false(m.has_ports);
}

static void test_v6_tcp(void **state)
{
	struct pkt p = { .len = 0 };

	v6(&p, 6);
	l4ports(&p, 40000, 443);
	check(&p, (struct want){ 6, 6, true, 40000, 443 });
}

static void test_v6_ext_chain(void **state)
{
	struct pkt p = { .len = 0 };

	v6(&p, 0);
	ext(&p, 43, 0);            /* hop-by-hop, 8 bytes */
	ext(&p, 44, 2);            /* routing, 24 bytes */
	frag6(&p, 60, 0, true);    /* first fragment */
	ext(&p, 17, 1);            /* destination options, 16 bytes */
	l4ports(&p, 5353, 53);
	check(&p, (struct want){ 6, 17, true, 5353, 53 });
}

static void test_v6_later_fragment(void **state)
{
	struct pkt p = { .len = 0 };

	v6(&p, 0);
	ext(&p, 44, 0);
	frag6(&p, 17, 100, false);
	l4ports(&p, 5353, 53);
	check(&p, (struct want){ 6, 17, false, 0, 0 });
}

static void test_v6_ah(void **state)
{
	struct pkt p = { .len = 0 };

	v6(&p, 51);
	ah(&p, 6, 4);              /* 24 bytes: the AH length unit is 4 bytes */
	l4ports(&p, 22, 2222);
	check(&p, (struct want){ 6, 6, true, 22, 2222 });
}

static void test_v6_esp_none_icmp(void **state)
{
	struct pkt esp = { .len = 0 }, none = { .len = 0 }, icmp = { .len = 0 };

	v6(&esp, 0);
	ext(&esp, 50, 0);
	l4ports(&esp, 1, 2);
	check(&esp, (struct want){ 6, 50, false, 0, 0 });
	v6(&none, 59);
	check(&none, (struct want){ 6, 59, false, 0, 0 });
	v6(&icmp, 58);
	l4ports(&icmp, 0x8000, 0);
	check(&icmp, (struct want){ 6, 58, false, 0, 0 });
}

static void test_v6_chain_bound(void **state)
{
	struct pkt ok = { .len = 0 }, deep = { .len = 0 };

	v6(&ok, 60);
	for (int i = 0; i < 7; i++)
		ext(&ok, 60, 0);
	ext(&ok, 6, 0);            /* the 8th header: still walked */
	l4ports(&ok, 1, 2);
	check(&ok, (struct want){ 6, 6, true, 1, 2 });

	v6(&deep, 60);
	for (int i = 0; i < 8; i++)
		ext(&deep, 60, 0);
	ext(&deep, 6, 0);          /* the 9th: given up, protocol unknown */
	l4ports(&deep, 1, 2);
	check(&deep, (struct want){ 6, 0, false, 0, 0 });
}

static void test_v6_truncated_chain(void **state)
{
	struct pktmeta m;
	struct pkt p = { .len = 0 };

	v6(&p, 0);
	ext(&p, 6, 3);             /* 32 bytes announced */
	l4ports(&p, 1, 2);
	/* Cut inside the hop-by-hop header: the protocol is unknown, not 0's
	 * "hop-by-hop" and not the header's own next-header value. */
	assert_int_equal(parse_exact(&m, &p, 40 + 20), 0);
	assert_int_equal(m.family, 6);
	assert_int_equal(m.proto, 0);
	assert_false(m.has_ports);
	/* Cut inside the TCP ports. */
	assert_int_equal(parse_exact(&m, &p, 40 + 32 + 3), 0);
	assert_int_equal(m.proto, 6);
	assert_false(m.has_ports);
}

/*
 * The shared walk itself (common/ipv6ext.h), as the Python module reads it:
 * each result, the transport offset, and a cut-short chain naming the last
 * next-header it read.
 */
static void test_ipv6ext_walk(void **state)
{
	struct pkt up = { .len = 0 }, fr = { .len = 0 }, cut = { .len = 0 };
	struct ipv6ext x;

	(void)state;
	v6(&up, 0);
	ext(&up, 44, 1);           /* hop-by-hop, 16 bytes */
	frag6(&up, 17, 0, true);   /* first fragment */
	l4ports(&up, 1, 2);
	assert_int_equal(ipv6ext_walk(up.b, up.len, 8, &x), IPV6EXT_UPPER);
	assert_int_equal(x.proto, 17);
	assert_int_equal(x.off, 40 + 16 + 8);
	assert_int_equal(ipv6ext_walk(up.b, up.len, 1, &x), IPV6EXT_TRUNCATED);
	assert_int_equal(x.proto, 44);

	v6(&fr, 44);
	frag6(&fr, 6, 10, false);
	assert_int_equal(ipv6ext_walk(fr.b, fr.len, 8, &x), IPV6EXT_FRAGMENT);
	assert_int_equal(x.proto, 6);

	v6(&cut, 60);
	ext(&cut, 6, 3);           /* 32 bytes announced */
	assert_int_equal(ipv6ext_walk(cut.b, 40 + 20, 16, &x), IPV6EXT_TRUNCATED);
	assert_int_equal(x.proto, 6);
	assert_int_equal(ipv6ext_walk(cut.b, 40 + 1, 16, &x), IPV6EXT_TRUNCATED);
	assert_int_equal(x.proto, 60);
}

static void test_not_ip(void **state)
{
	struct pktmeta m;
	struct pkt p = { .len = 0 };
	static const uint8_t nibbles[] = { 0x00, 0x50, 0x70, 0xf0 };

	v4(&p, 6, 5, 0);
	l4ports(&p, 1, 2);
	for (size_t i = 0; i < sizeof(nibbles); i++) {
		memset(&m, 0xa5, sizeof(m));
		p.b[0] = (uint8_t)(nibbles[i] | 5);
		assert_int_equal(parse_exact(&m, &p, p.len), -EBADMSG);
		assert_int_equal(m.family, 0);
		assert_int_equal(m.proto, 0);
		assert_false(m.has_ports);
		/* What does not come from the bytes is left alone. */
		assert_int_equal(m.mark, 0xa5a5a5a5);
		assert_int_equal(m.hook, 0xa5);
	}
	assert_int_equal(pktmeta_parse_l3(&m, NULL, 0), -EBADMSG);
	assert_int_equal(m.family, 0);
}

/* Every prefix of every sample parses without reading past its end and
 * never claims more than the full packet does. */
static void test_truncated_every_length(void **state)
{
	struct pkt s[6];
	int n = 0;

	memset(s, 0, sizeof(s));
	v4(&s[n], 6, 6, 0);
	l4ports(&s[n++], 1234, 80);
	v4(&s[n], 17, 5, 0x2000);
	l4ports(&s[n++], 53, 53);
	v6(&s[n], 0);
	ext(&s[n], 43, 1);
	ext(&s[n], 44, 0);
	frag6(&s[n], 51, 0, true);
	ah(&s[n], 6, 1);
	l4ports(&s[n++], 9, 10);
	v6(&s[n], 44);
	frag6(&s[n], 17, 3, false);
	l4ports(&s[n++], 1, 1);
	v6(&s[n], 60);
	ext(&s[n], 59, 30);
	n++;
	v6(&s[n], 132);
	l4ports(&s[n++], 3868, 3868);

	for (int i = 0; i < n; i++) {
		struct pktmeta full, m;
		int ret;

		assert_int_equal(parse_exact(&full, &s[i], s[i].len), 0);
		for (size_t len = 0; len < s[i].len; len++) {
			ret = parse_exact(&m, &s[i], len);
			if (len < (full.family == 4 ? 20u : 40u)) {
				assert_int_equal(ret, -EBADMSG);
				assert_int_equal(m.family, 0);
				continue;
			}
			assert_int_equal(ret, 0);
			assert_int_equal(m.family, full.family);
			assert_memory_equal(m.src, full.src, 16);
			if (m.proto)
				assert_int_equal(m.proto, full.proto);
			if (m.has_ports) {
				assert_true(full.has_ports);
				assert_int_equal(m.sport, full.sport);
				assert_int_equal(m.dport, full.dport);
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* Conntrack attributes (synthetic: this kernel never sends NFQA_CT)   */
/* ------------------------------------------------------------------ */

/* One attribute of @type with @len payload bytes at @b + *@off. */
static void put_attr(uint8_t *b, size_t *off, uint16_t type, const void *data, uint16_t len)
{
	uint16_t alen = (uint16_t)(4 + len);

	memcpy(b + *off, &alen, 2);
	memcpy(b + *off + 2, &type, 2);
	memcpy(b + *off + 4, data, len);
	*off += (size_t)((alen + 3) & ~3);
}

static void test_ct_mark(void **state)
{
	uint8_t b[64] = { 0 }, tuple[12] = { 0 };
	uint32_t mark = htonl(0x1234), status = htonl(8);
	struct pktmeta m;
	size_t off = 0;

	/* CTA_TUPLE_ORIG (1, nested), CTA_STATUS (3), CTA_MARK (8) */
	put_attr(b, &off, 1 | 0x8000, tuple, sizeof(tuple));
	put_attr(b, &off, 3, &status, 4);
	put_attr(b, &off, 8, &mark, 4);
	memset(&m, 0, sizeof(m));
	assert_int_equal(pktmeta_parse_ct(&m, b, off), 0);
	assert_true(m.has_ct);
	assert_int_equal(m.ctmark, 0x1234);

	/* attributes without CTA_MARK: a conntrack entry, mark 0 */
	memset(&m, 0, sizeof(m));
	m.ctmark = 77;
	assert_int_equal(pktmeta_parse_ct(&m, b, 24), 0);
	assert_true(m.has_ct);
	assert_int_equal(m.ctmark, 0);
	/* a length past the buffer or a mark cut short: rejected; a cut
	 * between attributes leaves a (mark-less) entry */
	for (size_t cut = 25; cut < off; cut++) {
		memset(&m, 0, sizeof(m));
		if (cut - 24 < 4) {
			assert_int_equal(pktmeta_parse_ct(&m, b, cut), 0);
			assert_int_equal(m.ctmark, 0);
		} else {
			assert_int_equal(pktmeta_parse_ct(&m, b, cut), -EBADMSG);
			assert_false(m.has_ct);
		}
	}
	memset(b, 0, sizeof(b));
	off = 0;
	put_attr(b, &off, 8, &mark, 2);
	assert_int_equal(pktmeta_parse_ct(&m, b, off), -EBADMSG);
	assert_false(m.has_ct);
	memset(b, 0, sizeof(b));
	assert_int_equal(pktmeta_parse_ct(&m, b, 16), -EBADMSG);
	assert_int_equal(pktmeta_parse_ct(&m, NULL, 0), -ENOENT);
	assert_int_equal(pktmeta_parse_ct(&m, b, 3), -ENOENT);
	assert_false(m.has_ct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ct_mark),
		cmocka_unit_test(test_v4_tcp),
		cmocka_unit_test(test_tcp_flags),
		cmocka_unit_test(test_v4_udp_options),
		cmocka_unit_test(test_v4_icmp),
		cmocka_unit_test(test_v4_sctp_udplite),
		cmocka_unit_test(test_v4_fragments),
		cmocka_unit_test(test_v4_bad),
		cmocka_unit_test(test_v6_tcp),
		cmocka_unit_test(test_v6_ext_chain),
		cmocka_unit_test(test_v6_later_fragment),
		cmocka_unit_test(test_v6_ah),
		cmocka_unit_test(test_v6_esp_none_icmp),
		cmocka_unit_test(test_v6_chain_bound),
		cmocka_unit_test(test_v6_truncated_chain),
		cmocka_unit_test(test_ipv6ext_walk),
		cmocka_unit_test(test_not_ip),
		cmocka_unit_test(test_truncated_every_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
