/* SPDX-License-Identifier: MIT */
/*
 * Building the per-field index of a policy (policy-index.h): at load time,
 * never on the packet path. Each rule is filed under the one key whose
 * intervals the fewest other rules share, so that a packet's candidate
 * lists stay short; a rule whose every indexable value is too wide (a /0,
 * ports 1-65535) is kept in the residual list every packet walks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy-index.h"
#include "policy-int.h"

/* The keys a rule can be filed under; each maps to one or two tables. */
enum { LK_SRC, LK_DST, LK_SPORT, LK_DPORT, LK_PROTO, LK_COUNT, LK_NONE = LK_COUNT };

/* A value covering more intervals than this is not worth filing: it would
 * copy the rule into that many lists. */
#define WIDE 1024u

static const uint32_t lk_bit[LK_COUNT] = {
	KEY_BIT(src), KEY_BIT(dst), KEY_BIT(sport), KEY_BIT(dport), KEY_BIT(proto),
};

static pidx_key be_key(const uint8_t *b, size_t n)
{
	pidx_key k = 0;

	for (size_t i = 0; i < n; i++)
		k = (k << 8) | b[i];
	return k;
}

static void cidr_bounds(const struct cidr *c, pidx_key *lo, pidx_key *hi)
{
	size_t n = c->family == 4 ? 4 : 8;
	pidx_key net = be_key((const uint8_t *)c->net, n);
	pidx_key mask = be_key((const uint8_t *)c->mask, n);
	pidx_key all = n == 4 ? (pidx_key)0xffffffffu : ~(pidx_key)0;

	*lo = net;
	*hi = net | (all & ~mask);
}

static size_t rule_nvals(const struct rule *r, int lk)
{
	if (!(r->tests & lk_bit[lk]))
		return 0;
	switch (lk) {
	case LK_SRC: return r->n_src;
	case LK_DST: return r->n_dst;
	case LK_SPORT: return r->n_sport;
	case LK_DPORT: return r->n_dport;
	default: return 256;
	}
}

/* Value @i of key @lk of @r: its table and bounds; -1 when there is none
 * (a protocol number the rule does not list). */
static int rule_val(const struct rule *r, int lk, size_t i, pidx_key *lo, pidx_key *hi)
{
	const struct cidr *c;
	const struct range16 *p;

	switch (lk) {
	case LK_SRC:
	case LK_DST:
		c = lk == LK_SRC ? &r->src[i] : &r->dst[i];
		cidr_bounds(c, lo, hi);
		return (lk == LK_SRC ? PF_SRC4 : PF_DST4) + (c->family == 6);
	case LK_SPORT:
	case LK_DPORT:
		p = lk == LK_SPORT ? &r->sport[i] : &r->dport[i];
		*lo = p->lo;
		*hi = p->hi;
		return lk == LK_SPORT ? PF_SPORT : PF_DPORT;
	default:
		if (!((r->protos[i >> 6] >> (i & 63)) & 1))
			return -1;
		*lo = *hi = i;
		return PF_PROTO;
	}
}

static int key_cmp(const void *a, const void *b)
{
	pidx_key x = *(const pidx_key *)a, y = *(const pidx_key *)b;

	return x < y ? -1 : x > y;
}

/* One value of one rule's key, flattened once so that the passes below
 * walk an array. */
struct pval {
	pidx_key lo, hi;
	uint32_t rule;
	uint32_t s, e;             /* the intervals it covers, per pass */
	uint8_t f, lk;
};

/* Every indexable value of every rule, rule by rule. */
static struct pval *flatten(const struct policy *p, size_t *n_out)
{
	struct pval *v = NULL;
	size_t n = 0;
	pidx_key lo, hi;
	int f;

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t r = 0; r < p->n_rules; r++)
			for (int lk = 0; lk < LK_COUNT; lk++)
				for (size_t i = 0; i < rule_nvals(&p->rules[r], lk); i++) {
					if ((f = rule_val(&p->rules[r], lk, i, &lo, &hi)) < 0)
						continue;
					if (pass)
						v[n] = (struct pval){ .lo = lo, .hi = hi, .rule = r,
								      .f = (uint8_t)f, .lk = (uint8_t)lk };
					n++;
				}
		if (!pass && !(v = malloc((n + 1) * sizeof(*v))))
			return NULL;
		if (!pass)
			n = 0;
	}
	*n_out = n;
	return v;
}

/* The first bound >= @k (n when none). */
static uint32_t lower_bound(const struct pidx_map *m, pidx_key k)
{
	uint32_t lo = 0, hi = m->n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (m->bound[mid] < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Value starts and ends as bounds, sorted and unique: of all values
 * (@key NULL), or of those of the key each rule is filed under. Sets each
 * value's span. */
static int build_bounds(struct pidx_map *maps, struct pval *v, size_t nv, const uint8_t *key)
{
	size_t cnt[PF_COUNT] = { 0 };
	int f;

	for (size_t i = 0; i < nv; i++)
		cnt[v[i].f] += 2;
	for (f = 0; f < PF_COUNT; f++) {
		free(maps[f].bound);
		maps[f].n = 0;
		if (!(maps[f].bound = malloc((cnt[f] + 1) * sizeof(pidx_key))))
			return -ENOMEM;
	}
	for (size_t i = 0; i < nv; i++) {
		struct pidx_map *m = &maps[v[i].f];

		if (key && key[v[i].rule] != v[i].lk)
			continue;
		m->bound[m->n++] = v[i].lo;
		if (v[i].hi + 1 != 0)
			m->bound[m->n++] = v[i].hi + 1;
	}
	for (f = 0; f < PF_COUNT; f++) {
		struct pidx_map *m = &maps[f];
		uint32_t n = 0;

		qsort(m->bound, m->n, sizeof(pidx_key), key_cmp);
		for (uint32_t j = 0; j < m->n; j++)
			if (!n || m->bound[j] != m->bound[n - 1])
				m->bound[n++] = m->bound[j];
		m->n = n;
	}
	for (size_t i = 0; i < nv; i++) {
		const struct pidx_map *m = &maps[v[i].f];

		if (key && key[v[i].rule] != v[i].lk)
			continue;
		v[i].s = lower_bound(m, v[i].lo);
		v[i].e = v[i].hi + 1 == 0 ? m->n : lower_bound(m, v[i].hi + 1);
	}
	return 0;
}

/* cov[f][j]: how many values cover interval j of table f. */
static int build_cover(const struct pidx_map *maps, const struct pval *v, size_t nv,
		       int64_t **cov)
{
	int f;

	for (f = 0; f < PF_COUNT; f++)
		if (!(cov[f] = calloc(maps[f].n + 1, sizeof(int64_t))))
			return -ENOMEM;
	for (size_t i = 0; i < nv; i++) {
		cov[v[i].f][v[i].s]++;
		cov[v[i].f][v[i].e]--;
	}
	for (f = 0; f < PF_COUNT; f++)
		for (uint32_t j = 1; j <= maps[f].n; j++)
			cov[f][j] += cov[f][j - 1];
	return 0;
}

/* For each rule the key whose values share their intervals with the
 * fewest others (the largest share counts); LK_NONE when none of its keys
 * is narrow enough. @v holds each rule's values together. */
static void choose_keys(const struct policy *p, const struct pval *v, size_t nv,
			int64_t **cov, uint8_t *key)
{
	size_t i = 0;

	for (uint32_t r = 0; r < p->n_rules; r++) {
		int64_t cost[LK_COUNT] = { 0 }, best = INT64_MAX;

		key[r] = LK_NONE;
		for (; i < nv && v[i].rule == r; i++) {
			if (v[i].e - v[i].s > WIDE) {
				cost[v[i].lk] = INT64_MAX;
				continue;
			}
			for (uint32_t j = v[i].s; j < v[i].e && cost[v[i].lk] < INT64_MAX; j++)
				if (cov[v[i].f][j] > cost[v[i].lk])
					cost[v[i].lk] = cov[v[i].f][j];
		}
		for (int lk = 0; lk < LK_COUNT; lk++)
			if ((p->rules[r].tests & lk_bit[lk]) && cost[lk] < best) {
				best = cost[lk];
				key[r] = (uint8_t)lk;
			}
	}
}

/* File each rule under its key: count per interval, then fill. A rule
 * with overlapping values is listed once per interval (last[]). */
static int build_lists(struct pidx_map *maps, const struct pval *v, size_t nv,
		       const uint8_t *key)
{
	uint32_t *last[PF_COUNT] = { 0 };
	int f, rc = -ENOMEM;

	for (f = 0; f < PF_COUNT; f++)
		if (!(last[f] = malloc((maps[f].n + 1) * sizeof(uint32_t))) ||
		    !(maps[f].off = calloc(maps[f].n + 1, sizeof(uint32_t))))
			goto fail;
	for (int pass = 0; pass < 2; pass++) {
		for (f = 0; f < PF_COUNT; f++)
			memset(last[f], 0xff, (maps[f].n + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < nv; i++) {
			struct pidx_map *m = &maps[v[i].f];
			uint32_t r = v[i].rule;

			if (key[r] != v[i].lk)
				continue;
			for (uint32_t j = v[i].s; j < v[i].e; j++) {
				if (last[v[i].f][j] == r)
					continue;
				last[v[i].f][j] = r;
				if (pass)
					m->ent[m->off[j]++] = r;
				else
					m->off[j + 1]++;
			}
		}
		for (f = 0; f < PF_COUNT && !pass; f++) {
			for (uint32_t j = 1; j <= maps[f].n; j++)
				maps[f].off[j] += maps[f].off[j - 1];
			if (!(maps[f].ent = malloc((maps[f].off[maps[f].n] + 1) * sizeof(uint32_t))))
				goto fail;
		}
	}
	/* the fill advanced off[j] to the start of j + 1: shift back */
	for (f = 0; f < PF_COUNT; f++) {
		memmove(maps[f].off + 1, maps[f].off, maps[f].n * sizeof(uint32_t));
		maps[f].off[0] = 0;
	}
	rc = 0;
fail:
	for (f = 0; f < PF_COUNT; f++)
		free(last[f]);
	return rc;
}

/* The first-level table of each map: 2^k buckets of equal width over
 * [bound[0], bound[n - 1]], each the first bound in it. */
static int build_radix(struct pidx_map *maps)
{
	for (int f = 0; f < PF_COUNT; f++) {
		struct pidx_map *m = &maps[f];
		pidx_key span_k;
		uint32_t nb = 1, j = 0;

		if (!m->n || !m->off[m->n]) {
			m->n = 0;          /* nothing filed here: lookups skip it */
			continue;
		}
		while (nb < m->n && nb < PIDX_RADIX_MAX)
			nb *= 2;
		m->base = m->bound[0];
		span_k = m->bound[m->n - 1] - m->base;
		m->shift = 0;
		while (m->shift < 63 && (span_k >> m->shift) >= nb)
			m->shift++;
		m->nb = nb;
		if (!(m->radix = malloc((nb + 1) * sizeof(uint32_t))))
			return -ENOMEM;
		for (uint32_t b = 0; b < nb; b++) {
			while (j < m->n && ((m->bound[j] - m->base) >> m->shift) < b)
				j++;
			m->radix[b] = j;
		}
		m->radix[nb] = m->n;
	}
	return 0;
}

static int build_resid(const struct policy *p, struct policy_index *x, const uint8_t *key)
{
	x->resid = malloc((p->n_rules + 1) * sizeof(uint32_t));
	if (!x->resid)
		return -ENOMEM;
	for (uint32_t r = 0; r < p->n_rules; r++)
		if (key[r] == LK_NONE)
			x->resid[x->n_resid++] = r;
	return 0;
}

static size_t index_bytes(const struct policy_index *x)
{
	size_t b = sizeof(*x) + (x->n_resid + 1) * sizeof(uint32_t);

	for (int f = 0; f < PF_COUNT; f++)
		b += (x->map[f].n + 1) * (sizeof(pidx_key) + sizeof(uint32_t)) +
		     (x->map[f].off[x->map[f].n] + 1) * sizeof(uint32_t) +
		     (x->map[f].radix ? (x->map[f].nb + 1) * sizeof(uint32_t) : 0);
	return b;
}

/* policy_index_build - see policy-index.h. */
int policy_index_build(struct policy *p)
{
	struct policy_index *x = calloc(1, sizeof(*x));
	int64_t *cov[PF_COUNT] = { 0 };
	uint8_t *key = malloc(p->n_rules + 1);
	struct pval *v = NULL;
	size_t nv = 0;
	int rc = -ENOMEM;

	if (!x || !key || !(v = flatten(p, &nv)))
		goto fail;
	if ((rc = build_bounds(x->map, v, nv, NULL)) < 0 ||
	    (rc = build_cover(x->map, v, nv, cov)) < 0)
		goto fail;
	choose_keys(p, v, nv, cov, key);
	/* the tables again, of the values filed there only: fewer bounds,
	 * shorter searches */
	if ((rc = build_bounds(x->map, v, nv, key)) < 0 ||
	    (rc = build_lists(x->map, v, nv, key)) < 0 ||
	    (rc = build_resid(p, x, key)) < 0 || (rc = build_radix(x->map)) < 0)
		goto fail;
	x->bytes = index_bytes(x);
	if (x->n_resid < p->n_rules) {
		p->idx = x;
		x = NULL;
	}
	rc = 0;
fail:
	for (int f = 0; f < PF_COUNT; f++)
		free(cov[f]);
	free(v);
	free(key);
	policy_index_free(x);
	return rc;
}

/* policy_index_free - see policy-index.h. */
void policy_index_free(struct policy_index *x)
{
	if (!x)
		return;
	for (int f = 0; f < PF_COUNT; f++) {
		free(x->map[f].bound);
		free(x->map[f].off);
		free(x->map[f].ent);
		free(x->map[f].radix);
	}
	free(x->resid);
	free(x);
}

/* policy_index_bytes - see policy-index.h. */
size_t policy_index_bytes(const struct policy *p)
{
	return p->idx ? p->idx->bytes : 0;
}
