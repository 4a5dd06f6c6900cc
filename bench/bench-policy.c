/* SPDX-License-Identifier: MIT */
/*
 * policy_eval() cost per packet against a 50-rule policy, next to a
 * reference loop that walks the same packets doing one trivial compare, so
 * the ratio says what matching adds over touching the packet at all.
 * Usage: bench-policy [packets]   (default 4000000). Never run by tests.
 *
 * Then policies at scale (issue 13): a platform team's rules (CIDR lists,
 * port lists and ranges, protocols) at 20, 1,000 and 10,000 rules, each
 * evaluated by the linear scan and by the per-field index (policy-index.h)
 * in the same run, medians of REPS timed runs: ns per packet, the ratio of
 * each size to the 20-rule policy as the broker evaluates it (the index
 * from POLICY_INDEX_MIN_RULES rules on), compile time and memory.
 *   ninja -C build bench/bench-policy && ./build/bench/bench-policy scale
 * ("scale": this part alone; without it, both parts). Each line is the
 * median of REPS runs; for medians over processes run it 5 times.
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

#include "bench-util.h"
#include "errs.h"
#include "hist.h"
#include "pktmeta.h"
#include "policy-index.h"
#include "policy-int.h"
#include "policy.h"

#define NRULES 50
#define NPKT 4096                  /* fits in cache: measures matching, not memory */
#define ROUND 32                   /* packets per dispatch round (a loaded socket) */

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
	double t0 = now_s();

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
	return now_s() - t0;
}

/* Seconds for @rounds of session.c's per-round bookkeeping alone. */
static double bookkeeping(long rounds)
{
	struct hist sess = { 0 }, total = { 0 };
	double t0 = now_s();

	for (long i = 0; i < rounds; i++) {
		uint64_t t_round = hist_now_ns(), t = hist_now_ns();

		hist_add(&sess, &hist_latency_bounds, t - t_round, ROUND);
		hist_add(&total, &hist_latency_bounds, t - t_round, ROUND);
	}
	if (total.count != (uint64_t)rounds * ROUND)
		fprintf(stderr, "event=error what=hist count=%" PRIu64 "\n", total.count);
	return now_s() - t0;
}

/* ------------------------------------------------------------------ */
/* Policies at scale                                                  */
/* ------------------------------------------------------------------ */

#define REPS 5
#define SCALE_CIDRS 4

/* What a generated rule matches, kept to aim packets at it. */
struct gen_rule {
	uint8_t proto;             /* 6, 17, or 0: tcp and udp */
	uint8_t n_dst, n_src;
	uint8_t dst[SCALE_CIDRS][16], src[SCALE_CIDRS][16];
	uint8_t dst6[SCALE_CIDRS];    /* per CIDR: IPv6 /48, else IPv4 /24 */
	uint16_t plo, phi;         /* one of its dports; phi 0: no dport */
};

static uint64_t sc_seed = 0x2545f4914f6cdd1dull;

static uint32_t sc_rnd(uint32_t n)
{
	sc_seed ^= sc_seed << 13;
	sc_seed ^= sc_seed >> 7;
	sc_seed ^= sc_seed << 17;
	return (uint32_t)(sc_seed >> 32) % n;
}

static const uint16_t common_ports[] = { 80, 443, 8080, 8443, 5432, 6379, 9090, 3306, 53, 22 };

static size_t put_prefix(char *b, size_t cap, uint8_t a[16], uint8_t *v6)
{
	memset(a, 0, 16);
	*v6 = sc_rnd(5) == 0;
	if (*v6) {
		a[0] = 0xfd;
		a[2] = (uint8_t)sc_rnd(256);
		a[3] = (uint8_t)sc_rnd(256);
		a[5] = (uint8_t)sc_rnd(256);
		return (size_t)snprintf(b, cap, "\"fd00:%x:%x::/48\"", a[2] << 8 | a[3], a[5]);
	}
	a[0] = 10;
	a[1] = (uint8_t)sc_rnd(256);
	a[2] = (uint8_t)sc_rnd(256);
	return (size_t)snprintf(b, cap, "\"10.%u.%u.0/24\"", a[1], a[2]);
}

static size_t put_list(char *b, size_t cap, const char *key, uint8_t a[][16], uint8_t *v6,
		       uint8_t *n)
{
	size_t len = (size_t)snprintf(b, cap, ",\"%s\":[", key);

	*n = (uint8_t)(1 + sc_rnd(SCALE_CIDRS));
	for (int i = 0; i < *n; i++) {
		len += (size_t)snprintf(b + len, cap - len, "%s", i ? "," : "");
		len += put_prefix(b + len, cap - len, a[i], &v6[i]);
	}
	return len + (size_t)snprintf(b + len, cap - len, "]");
}

/* Rule @i: proto, dst CIDR list, dports (a list or a range), sometimes a
 * src CIDR list. */
static size_t gen_rule(char *b, size_t cap, int i, struct gen_rule *g)
{
	static const char *const pr[] = { "\"tcp\"", "\"udp\"", "[\"tcp\",\"udp\"]" };
	uint32_t k = sc_rnd(10), form = sc_rnd(10);
	uint8_t v6src[SCALE_CIDRS];
	size_t len;

	memset(g, 0, sizeof(*g));
	g->proto = k < 7 ? 6 : k < 9 ? 17 : 0;
	len = (size_t)snprintf(b, cap, "%s{\"name\":\"r%d\",\"match\":{\"proto\":%s", i ? "," : "",
			       i, pr[k < 7 ? 0 : k < 9 ? 1 : 2]);
	len += put_list(b + len, cap - len, "dst", g->dst, g->dst6, &g->n_dst);
	if (sc_rnd(10) < 3)
		len += put_list(b + len, cap - len, "src", g->src, v6src, &g->n_src);
	if (form < 5) {
		uint16_t a = common_ports[sc_rnd(10)], c = (uint16_t)(1024 + sc_rnd(60000));

		len += (size_t)snprintf(b + len, cap - len, ",\"dport\":[%u,%u]", a, c);
		g->plo = g->phi = sc_rnd(2) ? a : c;
	} else if (form < 8) {
		g->plo = (uint16_t)(1024 + sc_rnd(60000));
		g->phi = (uint16_t)(g->plo + sc_rnd(100));
		len += (size_t)snprintf(b + len, cap - len, ",\"dport\":\"%u-%u\"", g->plo, g->phi);
	}
	(void)v6src;
	return len + (size_t)snprintf(b + len, cap - len, "},\"verdict\":\"%s\"}",
				      i % 3 ? "accept" : "drop");
}

static char *scale_config(int n, struct gen_rule *g)
{
	size_t cap = (size_t)n * 512 + 256, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	len += (size_t)snprintf(buf, cap, "{\"bench\":{\"default\":\"drop\",\"rules\":[");
	for (int i = 0; i < n; i++)
		len += gen_rule(buf + len, cap - len, i, &g[i]);
	snprintf(buf + len, cap - len, "]}}");
	return buf;
}

/* Four packets in five aimed at a random rule (its first dst CIDR, its
 * dport), the rest at nothing: the default. */
static void scale_packets(struct pktmeta *p, size_t np, const struct gen_rule *g, int n)
{
	for (size_t i = 0; i < np; i++) {
		struct pktmeta *m = &p[i];
		const struct gen_rule *r = &g[sc_rnd((uint32_t)n)];
		int c = (int)sc_rnd(r->n_dst);

		memset(m, 0, sizeof(*m));
		m->indev_id = m->outdev_id = -1;
		m->hook = 1;
		m->len = 64;
		m->has_ports = true;
		m->sport = (uint16_t)(32768 + sc_rnd(28000));
		m->family = r->dst6[c] ? 6 : 4;
		memcpy(m->dst, r->dst[c], 16);
		m->dst[m->family == 4 ? 3 : 15] = (uint8_t)(1 + sc_rnd(250));
		m->src[0] = m->family == 4 ? 172 : 0xfe;
		m->proto = r->proto ? r->proto : (sc_rnd(2) ? 6 : 17);
		m->dport = r->phi ? (uint16_t)(r->plo + sc_rnd(r->phi - r->plo + 1u)) :
				    (uint16_t)sc_rnd(65536);
		if (sc_rnd(5) == 0)
			m->dst[1] ^= 0x80;
	}
}

/* ns per packet of @eval over the packets, at least ~0.2 s of work. */
static double time_eval(int (*eval)(const struct policy *, const struct pktmeta *,
				    const struct policy_action **),
			const struct policy *p, const struct pktmeta *pkts, long *hits)
{
	const struct policy_action *act;
	long done = 0;
	double t0 = now_s(), t;

	*hits = 0;
	do {
		for (size_t i = 0; i < NPKT; i++)
			*hits += eval(p, &pkts[i], &act) >= 0;
		done += NPKT;
		t = now_s() - t0;
	} while (t < 0.2);
	return t * 1e9 / (double)done;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, REPS, sizeof(*v), dbl_cmp);
	return v[REPS / 2];
}

static size_t rules_bytes(const struct policy *p)
{
	size_t b = p->n_rules * (sizeof(struct rule) + sizeof(struct policy_action));

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];

		b += (r->n_src + r->n_dst) * sizeof(struct cidr) +
		     (r->n_sport + r->n_dport) * sizeof(struct range16) + strlen(r->name) + 1;
	}
	return b;
}

/* One size: returns the median ns per packet as the broker evaluates. */
static double scale_one(int n, const struct pktmeta *pkts_in, double ref20)
{
	struct gen_rule *g = calloc((size_t)n, sizeof(*g));
	struct pktmeta *pkts = calloc(NPKT, sizeof(*pkts));
	char *cfg = g ? scale_config(n, g) : NULL;
	double lin[REPS], idx[REPS], t0, t_parse, t_index = 0, auto_ns;
	struct errs e = { 0 };
	struct policy_set *s = NULL;
	struct policy *p;
	json_object *o;
	long h_lin = 0, h_idx = 0;

	(void)pkts_in;
	if (!cfg || !pkts || !(o = json_tokener_parse(cfg))) {
		fprintf(stderr, "event=error what=scale-setup rules=%d\n", n);
		exit(1);
	}
	t0 = now_s();
	s = policy_set_parse(o, &e);
	t_parse = now_s() - t0;
	json_object_put(o);
	if (!s) {
		fprintf(stderr, "event=error what=scale-config line=\"%s\"\n", e.n ? e.lines[0] : "");
		exit(1);
	}
	p = (struct policy *)policy_set_find(s, "bench");
	if (!p->idx) {
		/* below the threshold: built here only to compare */
		t0 = now_s();
		if (policy_index_build(p) < 0)
			exit(1);
		t_index = now_s() - t0;
	} else {
		/* the parse built it; time a second build alone */
		struct policy_index *keep = p->idx;

		p->idx = NULL;
		t0 = now_s();
		if (policy_index_build(p) < 0)
			exit(1);
		t_index = now_s() - t0;
		policy_index_free(p->idx);
		p->idx = keep;
	}
	scale_packets(pkts, NPKT, g, n);
	for (int r = 0; r < REPS; r++) {
		lin[r] = time_eval(policy_eval_linear, p, pkts, &h_lin);
		idx[r] = time_eval(policy_eval_indexed, p, pkts, &h_idx);
	}
	/* the same decisions, or the figures mean nothing */
	for (size_t i = 0; i < NPKT; i++) {
		const struct policy_action *a;

		if (policy_eval_linear(p, &pkts[i], &a) != policy_eval_indexed(p, &pkts[i], &a)) {
			fprintf(stderr, "event=error what=mismatch rules=%d packet=%zu\n", n, i);
			exit(1);
		}
	}
	auto_ns = n >= POLICY_INDEX_MIN_RULES ? median(idx) : median(lin);
	printf("bench=policy-scale rules=%d linear_ns=%.1f index_ns=%.1f index_vs_linear=%.3f "
	       "eval_ns=%.1f eval_vs_20=%.3f parse_ms=%.1f index_build_ms=%.1f "
	       "rules_kib=%.0f index_kib=%.0f\n", n, median(lin), median(idx),
	       median(idx) / median(lin), auto_ns, ref20 > 0 ? auto_ns / ref20 : 1.0,
	       t_parse * 1e3, t_index * 1e3, (double)rules_bytes(p) / 1024,
	       (double)policy_index_bytes(p) / 1024);
	policy_set_free(s);
	errs_reset(&e);
	free(cfg);
	free(pkts);
	free(g);
	return auto_ns;
}

static void bench_scale(void)
{
	static const int sizes[] = { 20, 1000, 10000 };
	double ref20 = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double ns = scale_one(sizes[i], NULL, ref20);

		if (!i)
			ref20 = ns;
	}
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

	if (argc > 1 && strcmp(argv[1], "scale") == 0) {
		free(pkts);
		free(cfg);
		bench_scale();
		return 0;
	}
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

	t0 = now_s();
	/* Evaluate and count, as session_verdict() does. */
	for (long i = 0; i < n; i++) {
		const struct pktmeta *m = &pkts[i & (NPKT - 1)];
		int idx = policy_eval(p, m, &act);

		policy_count(p, idx, m->len);
		hits += idx >= 0;
	}
	t_eval = now_s() - t0;

	t0 = now_s();
	for (long i = 0; i < n; i++) {
		ref += pkts[i & (NPKT - 1)].dport == 53;
		sink = ref;
	}
	t_ref = now_s() - t0;
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
	bench_scale();
	return 0;
}
