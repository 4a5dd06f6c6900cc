/* SPDX-License-Identifier: MIT */
/*
 * The compiled form of a policy set, shared by the parser/compiler
 * (policy-parse.c, policy-keys.c) and the evaluator (policy-eval.c).
 * Not for other modules: they use policy.h.
 */
#ifndef BROKER_POLICY_INT_H
#define BROKER_POLICY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "jsonv.h"
#include "policy.h"


#define NAME_MAX_LEN 64
#define IFNAME_SIZE 16             /* IFNAMSIZ */
#define LENGTH_MAX 262144u         /* GSO super-packets exceed 64 KiB */
#define VALBUF JSONV_TEXT_MAX     /* rendered JSON value in a message */

/* What a packet has, computed once per evaluation; a rule needs a subset. */
enum {
	PK_IP = 1u << 0, PK_V4 = 1u << 1, PK_V6 = 1u << 2, PK_PORTS = 1u << 3,
	PK_UID = 1u << 4, PK_GID = 1u << 5, PK_CT = 1u << 6,
};

/*
 * The match keys, one row each: X(name, needs, list, absent, doc).
 *   name    the key in a rule's "match" object; parsed by m_<name>() in
 *           policy-keys.c into fields of struct rule, which rule_match()
 *           in policy-eval.c tests
 *   needs   PK_* bits a packet must have for the key to match: PK_IP the
 *           IP header, PK_PORTS the transport header, PK_UID/PK_GID the
 *           socket owner metadata (0: always known)
 *   list    1: a list scanned after the scalar checks, skipped when absent
 *           (also a rare scalar, connmark, kept out of the common path);
 *           0: a scalar folded into rule_match()'s one expression
 *   absent  for a scalar key, what makes a rule without it always pass it
 *           (NULL when the zeroed rule already does)
 *   doc     one line, as docs/policy.md's match-key table names the key
 * Everything else (the key's bit, which keys need what, the list mask,
 * the parser lookup) is derived from this table.
 */
#define POLICY_MATCH_KEYS(X) \
	X(family, PK_IP,            0, NULL,          "IPv4 or IPv6 (\"ipv4\", \"ipv6\")") \
	X(proto,  PK_IP,            0, absent_proto,  "transport protocol, by name or number") \
	X(src,    PK_IP,            1, NULL,          "source address in one of the CIDRs") \
	X(dst,    PK_IP,            1, NULL,          "destination address in one of the CIDRs") \
	X(sport,  PK_IP | PK_PORTS, 1, NULL,          "source port in one of the ranges") \
	X(dport,  PK_IP | PK_PORTS, 1, NULL,          "destination port in one of the ranges") \
	X(hook,   0,                0, absent_hook,   "netfilter hook the packet was queued from") \
	X(indev,  0,                1, NULL,          "input interface name") \
	X(outdev, 0,                1, NULL,          "output interface name") \
	X(mark,   0,                0, NULL,          "packet mark, exact or value/mask") \
	X(uid,    PK_UID,           1, NULL,          "uid of the packet's socket owner") \
	X(gid,    PK_GID,           1, NULL,          "gid of the packet's socket owner") \
	X(length, 0,                0, absent_length, "original packet length, exact or range") \
	X(connmark, PK_CT,          1, NULL,          "conntrack mark, exact or value/mask (needs queue flag conntrack)")

#define POLICY_KEY_INDEX(n, needs, list, absent, doc) K_##n,
enum { POLICY_MATCH_KEYS(POLICY_KEY_INDEX) K_COUNT };
#undef POLICY_KEY_INDEX

/* The bit of key @n in struct rule's tests. */
#define KEY_BIT(n) (1u << K_##n)

#define POLICY_KEY_LIST_BIT(n, needs, list, absent, doc) | ((list) ? KEY_BIT(n) : 0u)
/* Keys that scan a list; the others are folded into scalar fields. */
enum { KEYS_LIST = 0u POLICY_MATCH_KEYS(POLICY_KEY_LIST_BIT) };
#undef POLICY_KEY_LIST_BIT

/* Address and mask as two words in memory order: a masked compare of the
 * packet's 16 bytes needs no byte swapping. IPv4 uses the first 4 bytes. */
struct cidr {
	uint64_t net[2], mask[2];
	uint8_t family;
};

struct range16 {
	uint16_t lo, hi;
};

/*
 * Scalar tests are stored so that an absent key always passes (hooks and
 * protos all ones, mark mask 0, length 0-max): they are checked together
 * with no branch per key, which random traffic would mispredict.
 */
struct rule {
	uint32_t need;             /* PK_* bits the packet must have */
	uint32_t hooks;            /* 1 << NFQB_HOOK_* */
	uint32_t mark_val, mark_mask;
	uint32_t len_lo, len_hi;
	uint32_t tests;            /* KEY_BIT()s of the keys present */
	uint64_t protos[4];        /* bitmap of 256 protocol numbers */
	struct cidr *src, *dst;
	uint32_t n_src, n_dst;
	struct range16 *sport, *dport;
	uint32_t n_sport, n_dport;
	int32_t *indev, *outdev;
	uint32_t n_indev, n_outdev;
	uint32_t *uid, *gid;
	uint32_t n_uid, n_gid;
	uint32_t ctmark_val, ctmark_mask;
	char *name;
};

/* The log rate limit's state of one rule. */
struct log_bucket {
	bool busy;                 /* taken by one thread at a time (policy_log_take) */
	uint64_t credit_ns;        /* saved-up time, at most burst * cost_ns */
	uint64_t last_ns;          /* 0: not used yet (starts full) */
	uint64_t held;             /* lines held back since the last one */
};

struct policy_slot {
	struct policy_counter c;   /* carried over a reload */
	struct log_bucket b;       /* starts afresh with each load */
};

/* The most worker threads that get counter blocks of their own (WORKER_MAX). */
#define POLICY_WORKERS_MAX 64

/*
 * Counters of one policy: s[0] the default, s[i + 1] rule i. A worker
 * thread counts into its own block w[i] (one writer, no atomic read-modify-
 * write shared between cores; policy_set_workers()); without one, into s[].
 * Readers add them up (policy_counter_load()).
 */
struct policy_counters {
	size_t n;
	struct policy_counter *w[POLICY_WORKERS_MAX];  /* n entries each, or NULL */
	struct policy_slot s[];
};

struct policy {
	char *name;
	struct rule *rules;
	/* acts[i] is rules[i]'s action: apart, so that the rules the match
	 * loop walks stay small (a fatter struct rule cost 10-25 %) */
	struct policy_action *acts;
	size_t n_rules;
	struct policy_action def;
	bool audit;                /* "mode": "audit" */
	/* NULL for a small policy: the linear scan is as fast (policy-index.h) */
	struct policy_index *idx;
	/* The one mutable part, kept in its own block: evaluation only reads
	 * the policy, policy_count() writes here. */
	struct policy_counters *ctr;
};

/* @dst += @src, @src read with relaxed atomic loads (a worker may count there). */
static inline void policy_counter_add_load(struct policy_counter *dst,
					   const struct policy_counter *src)
{
	dst->packets += __atomic_load_n(&src->packets, __ATOMIC_RELAXED);
	dst->bytes += __atomic_load_n(&src->bytes, __ATOMIC_RELAXED);
	dst->would_drop += __atomic_load_n(&src->would_drop, __ATOMIC_RELAXED);
	dst->log_suppressed += __atomic_load_n(&src->log_suppressed, __ATOMIC_RELAXED);
}

struct policy_set {
	struct policy **pols;
	size_t n;
	char (*ifnames)[IFNAME_SIZE];
	size_t n_ifnames, cap_ifnames;
};

/*
 * Rule name -> index of one policy's rules: open addressing, linear
 * probing, at most half full. Built per policy at parse time (duplicate
 * names) and per reload (counter carry-over), so that both cost O(rules)
 * rather than O(rules^2): 20,000 rules used to block the loop ~1 s.
 */
struct name_index {
	uint32_t *slot;            /* rule index + 1; 0 is an empty slot */
	size_t mask;
};

/* The state of one policy_set_parse() call. */
struct compile {
	struct policy_set *set;
	struct errs *e;
	struct name_index names;   /* of the policy being parsed */
};

/* policy_keys_parse_match - the "match" object @o of rule @r: each key
 * through its parser, an unknown key reported. */
void policy_keys_parse_match(json_object *o, const char *path, struct compile *c,
			     struct rule *r);

/* policy_keys_finish - fold the keys present into r->need and the scalar
 * fields; absent keys get values that always pass. */
void policy_keys_finish(struct rule *r);

/* policy_eval_linear, policy_eval_indexed - policy_eval() by one method
 * (the second needs p->idx): the property test compares them. */
int policy_eval_linear(const struct policy *p, const struct pktmeta *m,
		       const struct policy_action **act);
int policy_eval_indexed(const struct policy *p, const struct pktmeta *m,
			const struct policy_action **act);

#endif
