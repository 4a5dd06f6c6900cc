/* SPDX-License-Identifier: MIT */
/*
 * The per-field index of a large policy (docs/policy.md "How evaluation
 * scales"): each rule is filed under one of its keys (src, dst, sport,
 * dport, proto: the most selective one it has), in a table of elementary
 * intervals of that key's values; a packet looks up its value in each
 * table and gets, per key, the ascending list of rules that can match it.
 * Merging those lists (and the rules no key could file) in rule order and
 * testing each candidate fully keeps "first match wins" exact while the
 * candidates stay a handful however many rules there are.
 * Built at load time by policy-parse.c, read by policy-eval.c.
 */
#ifndef BROKER_POLICY_INDEX_H
#define BROKER_POLICY_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* Addresses (IPv4 in the low 32 bits, IPv6 by their first 64 bits),
 * ports and protocols as one integer type, so that one interval table
 * serves every key. An IPv6 prefix longer than /64 is filed under its /64:
 * the candidates are a superset, and every candidate is matched in full. */
typedef uint64_t pidx_key;

/* Fewer rules than this: the linear scan is as fast (bench-policy: with
 * rules over CIDRs and ports the index is ahead from 8 rules on, at 20
 * rules 60 ns against 175 ns). */
#define POLICY_INDEX_MIN_RULES 8

/* The tables: one per family for addresses. */
enum { PF_SRC4, PF_SRC6, PF_DST4, PF_DST6, PF_SPORT, PF_DPORT, PF_PROTO, PF_COUNT };

/*
 * Elementary intervals [bound[j], bound[j + 1]) (the last one open-ended)
 * and for each the rules filed here whose values cover it, ascending:
 * ent[off[j]] .. ent[off[j + 1] - 1]. A key below bound[0] has none.
 */
struct pidx_map {
	pidx_key *bound;
	uint32_t *off;             /* n + 1 */
	uint32_t *ent;
	uint32_t n;                /* 0: no rule filed here */
	/* First level, so that the search touches a bucket of a few bounds,
	 * not log2(n) cache lines: bucket b = (key - base) >> shift holds
	 * bound[radix[b]] .. bound[radix[b + 1] - 1]. */
	uint32_t *radix;           /* nb + 1 */
	uint32_t nb, shift;
	pidx_key base;
};

/* At most this many first-level buckets per table (4 bytes each). */
#define PIDX_RADIX_MAX 65536u

struct policy_index {
	struct pidx_map map[PF_COUNT];
	uint32_t *resid;           /* rules filed under no key, ascending */
	uint32_t n_resid;
	size_t bytes;              /* memory held, for bench and docs */
};

struct policy;

/*
 * policy_index_build - build @p's index (replacing none: @p has none yet).
 * Off the packet path: at load/reload. Returns 0 or -ENOMEM (@p is then
 * left without an index and evaluated by the linear scan). A policy none
 * of whose rules could be filed under a key gets no index either: every
 * rule would be a candidate of every packet, the scan with extra steps.
 */
int policy_index_build(struct policy *p);

/* policy_index_free - free @x and its tables; NULL is a no-op. */
void policy_index_free(struct policy_index *x);

/* policy_index_bytes - memory held by @p's index, 0 when it has none. */
size_t policy_index_bytes(const struct policy *p);

/* pidx_lookup - the rules of @m's table whose values cover @k, as a range
 * of ent[] into *@b, *@e (empty when none). No allocation. */
static inline void pidx_lookup(const struct pidx_map *m, pidx_key k,
			       const uint32_t **b, const uint32_t **e)
{
	pidx_key rel = k - m->base;
	uint32_t lo, hi;

	if (!m->n || k < m->base) {
		*b = *e = NULL;
		return;
	}
	rel >>= m->shift;
	if (rel >= m->nb) {
		lo = hi = m->n;
	} else {
		lo = m->radix[(uint32_t)rel];
		hi = m->radix[(uint32_t)rel + 1];
	}
	/* the first bound above @k; the interval before it holds @k */
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (m->bound[mid] <= k)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo) {
		*b = *e = NULL;
		return;
	}
	*b = m->ent + m->off[lo - 1];
	*e = m->ent + m->off[lo];
}

#endif
