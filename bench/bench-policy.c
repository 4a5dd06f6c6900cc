/* SPDX-License-Identifier: MIT */
/*
 * policy_eval() cost per packet against a 50-rule policy, next to a
 * reference loop that walks the same packets doing one trivial compare, so
 * the ratio says what matching adds over touching the packet at all.
 * Usage: bench-policy [packets]   (default 4000000). Never run by tests.
 *
 * A second line prices the verdict-latency histogram (issue 15) on top of
 * the same evaluation: as the broker keeps it (two clock reads and two
 * bucket increments per dispatch round of ROUND packets), and as a
 * per-packet design would (one clock read and increment per packet).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errs.h"
#include "hist.h"
#include "pktmeta.h"
#include "policy.h"

#define NRULES 50
#define NPKT 4096                  /* fits in cache: measures matching, not memory */
#define ROUND 32                   /* packets per dispatch round (a loaded socket) */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rules shaped like real ones; most packets fall through many of them. */
static char *make_config(void)
{
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	len += (size_t)snprintf(buf + len, cap - len,
				"{\"bench\":{\"default\":\"drop\",\"rules\":[");
	for (int i = 0; i < NRULES; i++) {
		char m[256];

		switch (i % 5) {
		case 0:
			snprintf(m, sizeof(m), "{\"proto\":\"tcp\",\"dport\":%d}", 1000 + i);
			break;
		case 1:
			snprintf(m, sizeof(m), "{\"proto\":[\"udp\",\"tcp\"],\"src\":"
				 "[\"10.%d.0.0/16\",\"fd00:%x::/32\"],\"dport\":\"%d-%d\"}",
				 i, i, 2000 + i * 10, 2005 + i * 10);
			break;
		case 2:
			snprintf(m, sizeof(m), "{\"family\":\"ipv6\",\"dst\":\"2001:db8:%x::/48\"}", i);
			break;
		case 3:
			snprintf(m, sizeof(m), "{\"mark\":\"0x%x/0xff\",\"hook\":\"forward\"}", i);
			break;
		default:
			snprintf(m, sizeof(m), "{\"indev\":\"veth%d\",\"uid\":[%d,%d]}",
				 i, i, i + 1000);
			break;
		}
		len += (size_t)snprintf(buf + len, cap - len,
					"%s{\"name\":\"r%d\",\"match\":%s,\"verdict\":\"accept\"}",
					i ? "," : "", i, m);
	}
	snprintf(buf + len, cap - len, "]}}");
	return buf;
}

static void make_packets(struct pktmeta *p, size_t n)
{
	unsigned seed = 12345;

	for (size_t i = 0; i < n; i++) {
		struct pktmeta *m = &p[i];

		memset(m, 0, sizeof(*m));
		seed = seed * 1103515245u + 12345u;
		m->family = (seed >> 16) & 1 ? 6 : 4;
		m->proto = (seed >> 17) & 1 ? 6 : 17;
		m->has_ports = true;
		m->sport = (uint16_t)(seed >> 8);
		m->dport = (uint16_t)(900 + (seed >> 20) % 1600);
		m->src[0] = m->family == 4 ? 10 : 0xfd;
		m->src[1] = (uint8_t)(seed >> 24);
		m->dst[0] = 0x20;
		m->hook = (uint8_t)((seed >> 4) % 5);
		m->mark = seed & 0x3f;
		m->indev_id = -1;
		m->outdev_id = -1;
		m->len = 60 + (seed >> 5) % 1400;
	}
}

/*
 * policy_eval + policy_count for @n packets; every @round packets the
 * latency bookkeeping of session.c's queue_event (@round 0: none; 1: per
 * packet). Returns seconds.
 */
static double eval_loop(const struct policy *p, const struct pktmeta *pkts, long n, long round,
			long *hits)
{
	struct hist sess = { 0 }, total = { 0 };
	uint64_t t_round = hist_now_ns();
	double t0 = now();

	for (long i = 0; i < n; i++) {
		const struct pktmeta *m = &pkts[i & (NPKT - 1)];
		const struct policy_action *act;
		int idx = policy_eval(p, m, &act);

		policy_count(p, idx, m->len);
		*hits += idx >= 0;
		if (round && (i + 1) % round == 0) {
			uint64_t t = hist_now_ns();

			hist_add(&sess, &hist_latency_bounds, t - t_round, (uint64_t)round);
			hist_add(&total, &hist_latency_bounds, t - t_round, (uint64_t)round);
			t_round = round > 1 ? hist_now_ns() : t;
		}
	}
	if (round && total.count != (uint64_t)(n - n % round))
		fprintf(stderr, "event=error what=hist count=%" PRIu64 "\n", total.count);
	return now() - t0;
}

/* Seconds for @rounds of session.c's per-round bookkeeping alone. */
static double bookkeeping(long rounds)
{
	struct hist sess = { 0 }, total = { 0 };
	double t0 = now();

	for (long i = 0; i < rounds; i++) {
		uint64_t t_round = hist_now_ns(), t = hist_now_ns();

		hist_add(&sess, &hist_latency_bounds, t - t_round, ROUND);
		hist_add(&total, &hist_latency_bounds, t - t_round, ROUND);
	}
	if (total.count != (uint64_t)rounds * ROUND)
		fprintf(stderr, "event=error what=hist count=%" PRIu64 "\n", total.count);
	return now() - t0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 4000000;
	struct pktmeta *pkts = calloc(NPKT, sizeof(*pkts));
	char *cfg = make_config();
	struct errs e = { 0 };
	struct policy_set *s = NULL;
	const struct policy *p;
	const struct policy_action *act;
	json_object *o;
	volatile long sink = 0;
	long hits = 0, ref = 0;
	double t0, t_eval, t_ref;

	if (!pkts || !cfg || n <= 0) {
		fprintf(stderr, "event=error what=setup\n");
		return 1;
	}
	o = json_tokener_parse(cfg);
	s = o ? policy_set_parse(o, &e) : NULL;
	json_object_put(o);
	if (!s) {
		for (size_t i = 0; i < e.n; i++)
			fprintf(stderr, "event=error what=config line=\"%s\"\n", e.lines[i]);
		return 1;
	}
	p = policy_set_find(s, "bench");
	make_packets(pkts, NPKT);
	/* Some packets arrive on interfaces the indev rules name. */
	for (size_t i = 0; i < NPKT; i += 7) {
		char name[16];

		snprintf(name, sizeof(name), "veth%zu", 4 + (i % 10) * 5);
		pkts[i].indev_id = policy_ifname_id(s, name);
	}

	t0 = now();
	/* Evaluate and count, as session_verdict() does. */
	for (long i = 0; i < n; i++) {
		const struct pktmeta *m = &pkts[i & (NPKT - 1)];
		int idx = policy_eval(p, m, &act);

		policy_count(p, idx, m->len);
		hits += idx >= 0;
	}
	t_eval = now() - t0;

	t0 = now();
	for (long i = 0; i < n; i++) {
		ref += pkts[i & (NPKT - 1)].dport == 53;
		sink = ref;
	}
	t_ref = now() - t0;
	(void)sink;

	printf("bench=policy rules=%d packets=%ld matched=%ld eval_ns=%.2f "
	       "reference_ns=%.2f ratio=%.1f\n", NRULES, n, hits,
	       t_eval * 1e9 / (double)n, t_ref * 1e9 / (double)n,
	       t_ref > 0 ? t_eval / t_ref : 0.0);
	{
		long h = 0;
		double base = eval_loop(p, pkts, n, 0, &h);
		double per_round = eval_loop(p, pkts, n, ROUND, &h);
		double per_packet = eval_loop(p, pkts, n, 1, &h);

		double book = bookkeeping(n / ROUND) * 1e9 / (double)(n / ROUND);
		double eval_ns = base * 1e9 / (double)n;

		printf("bench=policy-latency-hist packets=%ld eval_ns=%.2f round%d_ns=%.2f "
		       "per_packet_ns=%.2f round_ratio=%.3f per_packet_ratio=%.3f\n", n,
		       eval_ns, ROUND, per_round * 1e9 / (double)n,
		       per_packet * 1e9 / (double)n, base > 0 ? per_round / base : 0.0,
		       base > 0 ? per_packet / base : 0.0);
		/* The same cost alone, free of the evaluation's noise. */
		printf("bench=latency-bookkeeping round_ns=%.2f per_packet_at_round%d_ns=%.3f "
		       "ratio_to_eval=%.4f\n", book, ROUND, book / ROUND,
		       eval_ns > 0 ? (eval_ns + book / ROUND) / eval_ns : 0.0);
	}
	policy_set_free(s);
	errs_reset(&e);
	free(cfg);
	free(pkts);
	return 0;
}
