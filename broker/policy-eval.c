/* SPDX-License-Identifier: MIT */
/*
 * Evaluation: integer compares over the flat per-rule arrays policy-parse.c
 * compiled, for every rule in order or, with an index (policy-index.h), for
 * the candidates its lookups give, in the same order; no allocation, no
 * strings, no json-c at packet time. Also the read-only accessors the
 * control socket and metrics use.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <nfqb/queue.h>

#include "names.h"
#include "policy-index.h"
#include "policy-int.h"

/* ------------------------------------------------------------------ */
/* Evaluation                                                         */
/* ------------------------------------------------------------------ */

static inline bool cidr_in(const struct cidr *c, uint32_t n, uint8_t family,
			   const uint8_t addr[16])
{
	uint64_t a[2];

	memcpy(a, addr, sizeof(a));
	for (uint32_t i = 0; i < n; i++)
		if (c[i].family == family &&
		    (a[0] & c[i].mask[0]) == c[i].net[0] &&
		    (a[1] & c[i].mask[1]) == c[i].net[1])
			return true;
	return false;
}

static inline bool port_in(const struct range16 *r, uint32_t n, uint16_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (v >= r[i].lo && v <= r[i].hi)
			return true;
	return false;
}

static inline bool u32_in(const uint32_t *v, uint32_t n, uint32_t x)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static inline bool id_in(const int32_t *v, uint32_t n, int32_t x)
{
	if (x < 0)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static inline uint32_t packet_key(const struct pktmeta *m)
{
	return (m->family ? PK_IP : 0) | (m->family == 4 ? PK_V4 : 0) |
	       (m->family == 6 ? PK_V6 : 0) | (m->has_ports ? PK_PORTS : 0) |
	       (m->has_uid ? PK_UID : 0) | (m->has_gid ? PK_GID : 0) |
	       (m->has_ct ? PK_CT : 0);
}

/* Scalar tests in one expression, list scans after. */
static inline bool rule_match(const struct rule *r, const struct pktmeta *m,
			      uint32_t pk, uint32_t hook)
{
	uint32_t t;
	bool ok;

	ok = ((pk & r->need) == r->need) &
	     ((r->hooks >> hook) & 1) &
	     ((r->protos[m->proto >> 6] >> (m->proto & 63)) & 1) &
	     ((m->mark & r->mark_mask) == r->mark_val) &
	     (m->len >= r->len_lo) & (m->len <= r->len_hi);
	if (!ok)
		return false;
	t = r->tests & KEYS_LIST;
	if (!t)
		return true;
	if ((t & KEY_BIT(connmark)) && (m->ctmark & r->ctmark_mask) != r->ctmark_val)
		return false;
	if ((t & KEY_BIT(uid)) && !u32_in(r->uid, r->n_uid, m->uid))
		return false;
	if ((t & KEY_BIT(gid)) && !u32_in(r->gid, r->n_gid, m->gid))
		return false;
	if ((t & KEY_BIT(indev)) && !id_in(r->indev, r->n_indev, m->indev_id))
		return false;
	if ((t & KEY_BIT(outdev)) && !id_in(r->outdev, r->n_outdev, m->outdev_id))
		return false;
	if ((t & KEY_BIT(sport)) && !port_in(r->sport, r->n_sport, m->sport))
		return false;
	if ((t & KEY_BIT(dport)) && !port_in(r->dport, r->n_dport, m->dport))
		return false;
	if ((t & KEY_BIT(src)) && !cidr_in(r->src, r->n_src, m->family, m->src))
		return false;
	if ((t & KEY_BIT(dst)) && !cidr_in(r->dst, r->n_dst, m->family, m->dst))
		return false;
	return true;
}

/* policy_eval_linear - see policy-int.h: every rule in order. */
int policy_eval_linear(const struct policy *p, const struct pktmeta *m,
		       const struct policy_action **act)
{
	/* Hook 31 is set only in the all-hooks mask of rules without "hook". */
	uint32_t hook = m->hook < 31 ? m->hook : 31;
	uint32_t pk = packet_key(m);

	for (size_t i = 0; i < p->n_rules; i++) {
		if (!rule_match(&p->rules[i], m, pk, hook))
			continue;
		*act = &p->acts[i];
		return (int)i;
	}
	*act = &p->def;
	return -1;
}

static inline pidx_key addr_key(uint8_t family, const uint8_t a[16])
{
	uint64_t w;
	uint32_t v4;

	if (family == 4) {
		memcpy(&v4, a, sizeof(v4));
		return ntohl(v4);
	}
	memcpy(&w, a, sizeof(w));
	return be64toh(w);
}

/* One candidate list per table the packet has a value for, plus the
 * rules filed under no key. */
#define CAND_LISTS 6

/* policy_eval_indexed - see policy-int.h: the candidate lists merged in
 * rule order, each candidate tested fully, so the first match is the one
 * the linear scan finds. */
int policy_eval_indexed(const struct policy *p, const struct pktmeta *m,
			const struct policy_action **act)
{
	const struct policy_index *x = p->idx;
	uint32_t hook = m->hook < 31 ? m->hook : 31;
	uint32_t pk = packet_key(m);
	const uint32_t *b[CAND_LISTS], *e[CAND_LISTS];
	int n = 0;

	b[n] = x->resid;
	e[n++] = x->resid + x->n_resid;
	if (m->family == 4 || m->family == 6) {
		int v6 = m->family == 6;

		pidx_lookup(&x->map[PF_SRC4 + v6], addr_key(m->family, m->src), &b[n], &e[n]);
		n += b[n] != e[n];
		pidx_lookup(&x->map[PF_DST4 + v6], addr_key(m->family, m->dst), &b[n], &e[n]);
		n += b[n] != e[n];
		pidx_lookup(&x->map[PF_PROTO], m->proto, &b[n], &e[n]);
		n += b[n] != e[n];
		if (m->has_ports) {
			pidx_lookup(&x->map[PF_SPORT], m->sport, &b[n], &e[n]);
			n += b[n] != e[n];
			pidx_lookup(&x->map[PF_DPORT], m->dport, &b[n], &e[n]);
			n += b[n] != e[n];
		}
	}
	for (;;) {
		uint32_t best = UINT32_MAX;
		int k = -1;

		for (int i = 0; i < n; i++)
			if (b[i] != e[i] && *b[i] < best) {
				best = *b[i];
				k = i;
			}
		if (k < 0)
			break;
		b[k]++;
		if (rule_match(&p->rules[best], m, pk, hook)) {
			*act = &p->acts[best];
			return (int)best;
		}
	}
	*act = &p->def;
	return -1;
}

/* policy_eval - see policy.h. */
int policy_eval(const struct policy *p, const struct pktmeta *m,
		const struct policy_action **act)
{
	if (p->idx)
		return policy_eval_indexed(p, m, act);
	return policy_eval_linear(p, m, act);
}

/* The worker this thread is (policy_thread_worker), -1 for the main thread. */
static _Thread_local int tls_worker = -1;

void policy_thread_worker(int i)
{
	tls_worker = i >= 0 && i < POLICY_WORKERS_MAX ? i : -1;
}

/* This thread's own block of @p, or NULL (then the shared one, atomically). */
static struct policy_counter *own_block(const struct policy *p)
{
	return tls_worker >= 0 ? p->ctr->w[tls_worker] : NULL;
}

#define BUMP(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)

/* policy_count - see policy.h. */
void policy_count(const struct policy *p, int idx, uint32_t len)
{
	struct policy_counter *c, *own;

	if (idx < -1 || (size_t)(idx + 1) >= p->ctr->n)
		return;
	own = own_block(p);
	if (own) {
		/* One writer: a plain increment, stored whole for the readers. */
		c = &own[idx + 1];
		BUMP(c->packets, 1);
		BUMP(c->bytes, len);
		return;
	}
	c = &p->ctr->s[idx + 1].c;
	/* Sessions of several threads may share this block: no count lost. */
	__atomic_fetch_add(&c->packets, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->bytes, len, __ATOMIC_RELAXED);
}

/* policy_count_would_drop - see policy.h. */
void policy_count_would_drop(const struct policy *p, int idx)
{
	struct policy_counter *own;

	if (idx < -1 || (size_t)(idx + 1) >= p->ctr->n)
		return;
	own = own_block(p);
	if (own)
		BUMP(own[idx + 1].would_drop, 1);
	else
		__atomic_fetch_add(&p->ctr->s[idx + 1].c.would_drop, 1, __ATOMIC_RELAXED);
}

/*
 * A rule's bucket is two values updated together: a spin flag, taken only
 * for the packets of a rule that logs (never on the plain verdict path)
 * and held for a few instructions. Yields after a while: the holder may
 * have been preempted.
 */
static void bucket_lock(struct log_bucket *b)
{
	unsigned spins = 0;

	while (__atomic_test_and_set(&b->busy, __ATOMIC_ACQUIRE))
		if (++spins % 64 == 0)
			sched_yield();
}

static void bucket_unlock(struct log_bucket *b)
{
	__atomic_clear(&b->busy, __ATOMIC_RELEASE);
}

static bool bucket_take(const struct policy_action *a, struct policy_slot *sl,
			uint64_t now_ns, uint64_t *suppressed)
{
	uint64_t cap;

	if (a->limit.cost_ns) {
		cap = a->limit.cost_ns * a->limit.burst;
		if (!sl->b.last_ns || now_ns - sl->b.last_ns >= cap ||
		    now_ns < sl->b.last_ns)
			sl->b.credit_ns = cap;
		else if (sl->b.credit_ns + (now_ns - sl->b.last_ns) < cap)
			sl->b.credit_ns += now_ns - sl->b.last_ns;
		else
			sl->b.credit_ns = cap;
		sl->b.last_ns = now_ns;
		if (sl->b.credit_ns < a->limit.cost_ns) {
			sl->b.held++;
			__atomic_fetch_add(&sl->c.log_suppressed, 1, __ATOMIC_RELAXED);
			return false;
		}
		sl->b.credit_ns -= a->limit.cost_ns;
	}
	*suppressed = sl->b.held;
	sl->b.held = 0;
	return true;
}

/* policy_log_take - see policy.h. Integer credit, as xt_limit keeps it. */
bool policy_log_take(const struct policy *p, int idx, uint64_t now_ns, uint64_t *suppressed)
{
	const struct policy_action *a = policy_action_at(p, idx);
	struct policy_slot *sl;
	bool ok;

	*suppressed = 0;
	if (!a)
		return false;
	sl = &p->ctr->s[idx + 1];
	bucket_lock(&sl->b);
	ok = bucket_take(a, sl, now_ns, suppressed);
	bucket_unlock(&sl->b);
	return ok;
}

/* policy_action_at - see policy.h. */
const struct policy_action *policy_action_at(const struct policy *p, int idx)
{
	if (idx == -1)
		return &p->def;
	if (idx < 0 || (size_t)idx >= p->n_rules)
		return NULL;
	return &p->acts[idx];
}

/* policy_audit - see policy.h. */
bool policy_audit(const struct policy *p)
{
	return p->audit;
}

/* policy_uses_connmark - see policy.h. */
bool policy_uses_connmark(const struct policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].tests & KEY_BIT(connmark))
			return true;
	return false;
}

/* policy_sets_connmark - see policy.h. */
bool policy_sets_connmark(const struct policy *p)
{
	if (p->def.connmark)
		return true;
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->acts[i].connmark)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                          */
/* ------------------------------------------------------------------ */

/* policy_set_find - see policy.h. */
const struct policy *policy_set_find(const struct policy_set *s, const char *name)
{
	if (!s || !name)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->pols[i]->name, name) == 0)
			return s->pols[i];
	return NULL;
}

/* policy_name - the policy's name as written under "policies". */
const char *policy_name(const struct policy *p)
{
	return p->name;
}

/* policy_rule_name - see policy.h; NULL for an index out of range. */
const char *policy_rule_name(const struct policy *p, int idx)
{
	if (idx == -1)
		return "(default)";
	if (idx < 0 || (size_t)idx >= p->n_rules)
		return NULL;
	return p->rules[idx].name;
}

/* policy_rule_count - number of rules, the default not included. */
size_t policy_rule_count(const struct policy *p)
{
	return p->n_rules;
}

/* policy_counter - see policy.h; NULL for an index out of range. */
const struct policy_counter *policy_counter(const struct policy *p, int idx)
{
	if (idx < -1 || (idx >= 0 && (size_t)idx >= p->n_rules))
		return NULL;
	return &p->ctr->s[idx + 1].c;
}

/* policy_counter_load - see policy.h. */
bool policy_counter_load(const struct policy *p, int idx, struct policy_counter *out)
{
	const struct policy_counter *c = policy_counter(p, idx);

	*out = (struct policy_counter){ 0 };
	if (!c)
		return false;
	policy_counter_add_load(out, c);
	for (size_t i = 0; i < POLICY_WORKERS_MAX; i++)
		if (p->ctr->w[i])
			policy_counter_add_load(out, &p->ctr->w[i][idx + 1]);
	return true;
}

/* policy_set_count - number of policies in @s (0 for NULL). */
size_t policy_set_count(const struct policy_set *s)
{
	return s ? s->n : 0;
}

/* policy_set_at - policy @i in configuration order, NULL past the end. */
const struct policy *policy_set_at(const struct policy_set *s, size_t i)
{
	return s && i < s->n ? s->pols[i] : NULL;
}

/* policy_ifname_id - see policy.h. */
int32_t policy_ifname_id(const struct policy_set *s, const char *ifname)
{
	if (!s || !ifname)
		return -1;
	for (size_t i = 0; i < s->n_ifnames; i++)
		if (strncmp(s->ifnames[i], ifname, IFNAME_SIZE) == 0)
			return (int32_t)i;
	return -1;
}

/* policy_verdict_name - see policy.h. */
const char *policy_verdict_name(uint32_t verdict, char *buf, size_t len)
{
	const char *name = names_verdict(verdict & 0xffff);

	if (!name)
		snprintf(buf, len, "verdict:%" PRIu32, verdict);
	else if ((verdict & 0xffff) == NFQB_QUEUE)
		snprintf(buf, len, "%s:%" PRIu32, name, verdict >> 16);
	else
		snprintf(buf, len, "%s", name);
	return buf;
}
