/* SPDX-License-Identifier: MIT */
/*
 * The per-field policy index (broker/policy-index.c): on random policies of
 * hundreds of rules and thousands of random packets it finds exactly the
 * rule the linear scan finds; hand-written edges (overlapping prefixes, /0,
 * ports 0 and 65535, fragments without ports, IPv6 extension headers,
 * absent fields); small policies stay linear, large ones get the index.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errs.h"
#include "pktmeta.h"
#include "policy-index.h"
#include "policy-int.h"
#include "policy.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* xorshift64*: the same policies and packets on every run */
static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32) % n;
}

struct sbuf {
	char *s;
	size_t len, cap;
};

static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n + 64;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
	}
	b->len += (size_t)n;
}

static struct policy_set *parse_ok(const char *text)
{
	json_object *o = json_tokener_parse(text);
	struct errs e = { 0 };
	struct policy_set *s;

	assert_non_null(o);
	s = policy_set_parse(o, &e);
	json_object_put(o);
	for (size_t i = 0; i < e.n; i++)
		print_error("unexpected: %s\n", e.lines[i]);
	assert_non_null(s);
	errs_reset(&e);
	return s;
}

/* The policy "p" of @s, with an index even when it is small. */
static struct policy *indexed(struct policy_set *s)
{
	struct policy *p = (struct policy *)policy_set_find(s, "p");

	assert_non_null(p);
	if (!p->idx)
		assert_int_equal(policy_index_build(p), 0);
	assert_non_null(p->idx);
	return p;
}

/* Both evaluators agree on @m; returns the rule index. */
static int same(const struct policy *p, const struct pktmeta *m)
{
	const struct policy_action *a1, *a2;
	int lin = policy_eval_linear(p, m, &a1);
	int idx = policy_eval_indexed(p, m, &a2);

	if (lin != idx)
		fail_msg("linear scan: rule %d, index: rule %d (family %u proto %u "
			 "ports %d %u>%u hook %u)", lin, idx, m->family, m->proto,
			 m->has_ports, m->sport, m->dport, m->hook);
	assert_ptr_equal(a1, a2);
	return lin;
}

static const char *const v4_nets[] = { "10.0.0.0", "10.1.0.0", "10.1.2.0", "192.168.0.0",
				       "172.16.5.0", "0.0.0.0", "255.255.255.0" };
static const char *const v6_nets[] = { "fd00::", "fd00:1::", "fd00:1:2::", "2001:db8::",
				       "::", "ffff::" };
static const uint16_t ports[] = { 0, 1, 22, 53, 80, 443, 1024, 8080, 65534, 65535 };
static const char *const protos[] = { "\"tcp\"", "\"udp\"", "\"icmp\"", "\"icmpv6\"", "132", "0" };
static const char *const hooks[] = { "prerouting", "input", "forward", "output", "postrouting" };
static const char *const ifs[] = { "eth0", "eth1", "lo" };

static void rand_addr(uint8_t family, uint8_t a[16]);

/* A CIDR near the pools' networks, host bits cleared (the parser
 * rejects them). */
static void put_cidr(struct sbuf *b, const char *sep)
{
	uint8_t family = rnd(2) ? 4 : 6, a[16];
	unsigned len = family == 4 ? (rnd(8) ? 8 + rnd(25) : rnd(9)) :
				     (rnd(8) ? 16 + rnd(113) : rnd(17));
	char text[INET6_ADDRSTRLEN];

	rand_addr(family, a);
	for (unsigned bit = len; bit < (family == 4 ? 32u : 128u); bit++)
		a[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	inet_ntop(family == 4 ? AF_INET : AF_INET6, a, text, sizeof(text));
	put(b, "%s\"%s/%u\"", sep, text, len);
}

static void put_cidrs(struct sbuf *b)
{
	uint32_t n = 1 + rnd(4);

	put(b, "[");
	for (uint32_t i = 0; i < n; i++)
		put_cidr(b, i ? "," : "");
	put(b, "]");
}

static uint16_t any_port(void)
{
	return rnd(3) ? ports[rnd(10)] : (uint16_t)rnd(65536);
}

static void put_ports(struct sbuf *b)
{
	uint32_t n = 1 + rnd(3);

	put(b, "[");
	for (uint32_t i = 0; i < n; i++) {
		uint16_t lo = any_port(), hi = any_port();

		if (rnd(2))
			put(b, "%s%u", i ? "," : "", lo);
		else
			put(b, "%s\"%u-%u\"", i ? "," : "", lo < hi ? lo : hi, lo < hi ? hi : lo);
	}
	put(b, "]");
}

/* One rule of random keys; each key in about a third of the rules. */
static void put_rule(struct sbuf *b, size_t i)
{
	const char *sep = "";

	put(b, "%s{\"name\":\"r%zu\",\"match\":{", i ? "," : "", i);
#define KEY(name) (put(b, "%s\"" name "\":", sep), sep = ",")
	if (!rnd(6))
		KEY("family"), put(b, "\"%s\"", rnd(2) ? "ipv4" : "ipv6");
	if (!rnd(3))
		KEY("proto"), put(b, "[%s,%s]", protos[rnd(6)], protos[rnd(6)]);
	if (!rnd(3))
		KEY("src"), put_cidrs(b);
	if (!rnd(4))
		KEY("sport"), put_ports(b);
	if (!rnd(3))
		KEY("dport"), put_ports(b);
	/* no rule that almost every packet matches: packets must reach deep */
	if (!*sep || !rnd(2))
		KEY("dst"), put_cidrs(b);
	if (!rnd(8))
		KEY("hook"), put(b, "\"%s\"", hooks[rnd(5)]);
	if (!rnd(8))
		KEY("indev"), put(b, "\"%s\"", ifs[rnd(3)]);
	if (!rnd(10))
		KEY("outdev"), put(b, "[\"%s\",\"%s\"]", ifs[rnd(3)], ifs[rnd(3)]);
	if (!rnd(10))
		KEY("mark"), put(b, "\"%u/%u\"", rnd(4), 3u);
	if (!rnd(12))
		KEY("uid"), put(b, "[%u,%u]", rnd(3), rnd(3));
	if (!rnd(12))
		KEY("length"), put(b, "\"%u-%u\"", rnd(100), 100 + rnd(1500));
#undef KEY
	put(b, "},\"verdict\":\"%s\"}", rnd(2) ? "accept" : "drop");
}

static void rand_addr(uint8_t family, uint8_t a[16])
{
	memset(a, 0, 16);
	if (family == 4) {
		assert_int_equal(inet_pton(AF_INET, v4_nets[rnd(7)], a), 1);
		for (int i = 1 + (int)rnd(4); i < 4; i++)
			a[i] = (uint8_t)(rnd(4) ? rnd(4) : rnd(256));
	} else {
		assert_int_equal(inet_pton(AF_INET6, v6_nets[rnd(6)], a), 1);
		for (int i = 2 + (int)rnd(14); i < 16; i++)
			a[i] = (uint8_t)(rnd(4) ? rnd(4) : rnd(256));
	}
}

static void rand_pkt(const struct policy_set *s, struct pktmeta *m)
{
	static const uint8_t pnum[] = { 6, 17, 1, 58, 132, 0, 47 };

	memset(m, 0, sizeof(*m));
	m->family = (uint8_t)(rnd(10) ? (rnd(2) ? 4 : 6) : 0);
	if (m->family) {
		m->proto = pnum[rnd(7)];
		rand_addr(m->family, m->src);
		rand_addr(m->family, m->dst);
		m->has_ports = rnd(5) != 0;
		if (m->has_ports) {
			m->sport = any_port();
			m->dport = any_port();
		}
	}
	m->hook = (uint8_t)rnd(5);
	m->indev_id = rnd(4) ? policy_ifname_id(s, ifs[rnd(3)]) : -1;
	m->outdev_id = rnd(4) ? policy_ifname_id(s, ifs[rnd(3)]) : -1;
	m->mark = rnd(4);
	m->has_uid = rnd(2);
	m->uid = rnd(3);
	m->len = rnd(2000);
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

/* Random policies and packets: the index finds what the scan finds. */
static void test_random_policies(void **state)
{
	size_t matched = 0, total = 0;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 12; round++) {
		struct sbuf b = { 0 };
		size_t n = 50 + rnd(400);
		struct policy_set *s;
		struct policy *p;
		struct pktmeta m;

		put(&b, "{\"p\":{\"default\":\"accept\",\"rules\":[");
		for (size_t i = 0; i < n; i++)
			put_rule(&b, i);
		put(&b, "]}}");
		s = parse_ok(b.s);
		free(b.s);
		p = indexed(s);
		for (int k = 0; k < 4000; k++) {
			rand_pkt(s, &m);
			matched += same(p, &m) >= 0;
			total++;
		}
		policy_set_free(s);
	}
	print_message("%zu of %zu packets matched a rule\n", matched, total);
	/* packets that hit rules and packets that fall through: both tested */
	assert_true(matched > total / 5);
	assert_true(matched < total);
}

/* The same packet through several rules written to overlap. */
static void test_edges(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"p\":{\"default\":\"drop\",\"rules\":["
		"{\"name\":\"narrow\",\"match\":{\"src\":\"10.1.2.0/24\",\"dport\":65535},\"verdict\":\"accept\"},"
		"{\"name\":\"wide\",\"match\":{\"src\":[\"10.0.0.0/8\",\"10.1.0.0/16\"]},\"verdict\":\"accept\"},"
		"{\"name\":\"port0\",\"match\":{\"sport\":\"0-0\",\"proto\":\"udp\"},\"verdict\":\"accept\"},"
		"{\"name\":\"top\",\"match\":{\"dport\":\"65000-65535\"},\"verdict\":\"accept\"},"
		"{\"name\":\"v6any\",\"match\":{\"dst\":\"::/0\",\"proto\":\"udp\"},\"verdict\":\"accept\"},"
		"{\"name\":\"v4any\",\"match\":{\"dst\":\"0.0.0.0/0\"},\"verdict\":\"accept\"},"
		"{\"name\":\"hooked\",\"match\":{\"hook\":\"output\"},\"verdict\":\"accept\"}]}}");
	struct policy *p = indexed(s);
	struct pktmeta m;

	memset(&m, 0, sizeof(m));
	m.indev_id = m.outdev_id = -1;
	m.hook = 1;
	/* no IP at all: only the rule that asks nothing of the bytes */
	assert_int_equal(same(p, &m), -1);
	m.hook = 3;
	assert_int_equal(same(p, &m), 6);
	m.hook = 1;
	m.family = 4;
	m.proto = 17;
	inet_pton(AF_INET, "10.1.2.3", m.src);
	inet_pton(AF_INET, "10.9.9.9", m.dst);
	m.has_ports = true;
	m.dport = 65535;
	assert_int_equal(same(p, &m), 0);
	m.dport = 65534;
	assert_int_equal(same(p, &m), 1);
	/* a non-first fragment: no ports, so no port rule, prefixes still */
	m.has_ports = false;
	m.dport = 65535;
	assert_int_equal(same(p, &m), 1);
	inet_pton(AF_INET, "11.0.0.1", m.src);
	assert_int_equal(same(p, &m), 5);
	m.has_ports = true;
	m.sport = 0;
	assert_int_equal(same(p, &m), 2);
	m.sport = 1;
	m.dport = 65000;
	assert_int_equal(same(p, &m), 3);
	m.dport = 64999;
	assert_int_equal(same(p, &m), 5);
	policy_set_free(s);
}

/* Real IPv6 bytes with a hop-by-hop and a fragment header. */
static void test_ipv6_extension_headers(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"p\":{\"default\":\"drop\",\"rules\":["
		"{\"name\":\"dns\",\"match\":{\"proto\":\"udp\",\"dport\":53,\"dst\":\"fd00::/16\"},\"verdict\":\"accept\"},"
		"{\"name\":\"udp\",\"match\":{\"proto\":\"udp\"},\"verdict\":\"accept\"}]}}");
	struct policy *p = indexed(s);
	uint8_t pkt[40 + 8 + 8 + 8] = { 0x60 };
	struct pktmeta m;

	(void)state;
	pkt[4] = 0;
	pkt[5] = 24;
	pkt[6] = 0;                     /* hop-by-hop */
	pkt[7] = 64;
	inet_pton(AF_INET6, "fd00::1", pkt + 8);
	inet_pton(AF_INET6, "fd00::2", pkt + 24);
	pkt[40] = 44;                   /* -> fragment header, 8 bytes */
	pkt[48] = 17;                   /* -> udp */
	pkt[56] = 0x30;                 /* sport 12345 */
	pkt[57] = 0x39;
	pkt[59] = 53;
	memset(&m, 0, sizeof(m));
	m.indev_id = m.outdev_id = -1;
	assert_int_equal(pktmeta_parse_l3(&m, pkt, sizeof(pkt)), 0);
	assert_int_equal(m.proto, 17);
	assert_true(m.has_ports);
	assert_int_equal(same(p, &m), 0);
	/* the same as a later fragment: offset != 0, no ports */
	pkt[51] = 8;
	memset(&m, 0, sizeof(m));
	m.indev_id = m.outdev_id = -1;
	assert_int_equal(pktmeta_parse_l3(&m, pkt, sizeof(pkt)), 0);
	assert_false(m.has_ports);
	assert_int_equal(same(p, &m), 1);
	policy_set_free(s);
}

/* Absent fields never match: no uid, no device, no IP. */
static void test_absent_never_matches(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"p\":{\"default\":\"accept\",\"rules\":["
		"{\"name\":\"u\",\"match\":{\"uid\":0},\"verdict\":\"drop\"},"
		"{\"name\":\"i\",\"match\":{\"indev\":\"eth0\"},\"verdict\":\"drop\"},"
		"{\"name\":\"a\",\"match\":{\"src\":\"0.0.0.0/0\"},\"verdict\":\"drop\"},"
		"{\"name\":\"b\",\"match\":{\"src\":\"::/0\"},\"verdict\":\"drop\"},"
		"{\"name\":\"p\",\"match\":{\"sport\":\"0-65535\"},\"verdict\":\"drop\"},"
		"{\"name\":\"f\",\"match\":{\"proto\":0},\"verdict\":\"drop\"}]}}");
	struct policy *p = indexed(s);
	struct pktmeta m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.indev_id = m.outdev_id = -1;
	assert_int_equal(same(p, &m), -1);
	m.family = 6;
	assert_int_equal(same(p, &m), 3);
	m.family = 4;
	assert_int_equal(same(p, &m), 2);
	policy_set_free(s);
}

/* Below the threshold the scan is kept; from it on the index is built. */
static void test_threshold(void **state)
{
	struct sbuf b = { 0 };
	struct policy_set *s;

	(void)state;
	put(&b, "{\"small\":{\"rules\":[");
	for (size_t i = 0; i < POLICY_INDEX_MIN_RULES - 1; i++)
		put(&b, "%s{\"name\":\"r%zu\",\"match\":{\"dport\":%zu},\"verdict\":\"drop\"}",
		    i ? "," : "", i, i);
	put(&b, "]},\"p\":{\"rules\":[");
	for (size_t i = 0; i < POLICY_INDEX_MIN_RULES; i++)
		put(&b, "%s{\"name\":\"r%zu\",\"match\":{\"dport\":%zu},\"verdict\":\"drop\"}",
		    i ? "," : "", i, i);
	put(&b, "]}}");
	s = parse_ok(b.s);
	free(b.s);
	assert_int_equal(policy_index_bytes(policy_set_find(s, "small")), 0);
	assert_true(policy_index_bytes(policy_set_find(s, "p")) > 0);
	policy_set_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_policies),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_ipv6_extension_headers),
		cmocka_unit_test(test_absent_never_matches),
		cmocka_unit_test(test_threshold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
