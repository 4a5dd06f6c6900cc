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

enum {
	T_FAMILY = 1u << 0, T_PROTO = 1u << 1, T_SRC = 1u << 2, T_DST = 1u << 3,
	T_SPORT = 1u << 4, T_DPORT = 1u << 5, T_HOOK = 1u << 6,
	T_INDEV = 1u << 7, T_OUTDEV = 1u << 8, T_MARK = 1u << 9,
	T_UID = 1u << 10, T_GID = 1u << 11, T_LENGTH = 1u << 12,
	/* Tests that need the packet's IP header. */
	T_NEEDS_IP = T_FAMILY | T_PROTO | T_SRC | T_DST | T_SPORT | T_DPORT,
	T_PORTS = T_SPORT | T_DPORT,
	/* Tests that scan a list; the others are folded into scalar fields. */
	T_LISTS = T_SRC | T_DST | T_SPORT | T_DPORT | T_INDEV | T_OUTDEV |
		  T_UID | T_GID,
};

/* What a packet has, computed once per evaluation; a rule needs a subset. */
enum {
	PK_IP = 1u << 0, PK_V4 = 1u << 1, PK_V6 = 1u << 2, PK_PORTS = 1u << 3,
	PK_UID = 1u << 4, PK_GID = 1u << 5,
};

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
	uint32_t tests;            /* T_* bits of the keys present */
	uint8_t family;
	uint64_t protos[4];        /* bitmap of 256 protocol numbers */
	struct cidr *src, *dst;
	uint32_t n_src, n_dst;
	struct range16 *sport, *dport;
	uint32_t n_sport, n_dport;
	int32_t *indev, *outdev;
	uint32_t n_indev, n_outdev;
	uint32_t *uid, *gid;
	uint32_t n_uid, n_gid;
	struct policy_action act;
	char *name;
};

/* Counters of one policy: c[0] the default, c[i + 1] rule i. */
struct policy_counters {
	size_t n;
	struct policy_counter c[];
};

struct policy {
	char *name;
	struct rule *rules;
	size_t n_rules;
	struct policy_action def;
	/* The one mutable part, kept in its own block: evaluation only reads
	 * the policy, policy_count() writes here. */
	struct policy_counters *ctr;
};

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

/* policy_parse_num - strict decimal (or 0x hex when @hex): digits only, no
 * sign, no spaces. 0 ok, -EINVAL bad syntax. Values are capped far above
 * any field range. */
int policy_parse_num(const char *s, size_t len, bool hex, uint64_t *out);

/* policy_keys_parse_match - the "match" object @o of rule @r: each key
 * through its parser, an unknown key reported. */
void policy_keys_parse_match(json_object *o, const char *path, struct compile *c,
			     struct rule *r);

/* policy_keys_finish - fold the keys present into r->need and the scalar
 * fields; absent keys get values that always pass. */
void policy_keys_finish(struct rule *r);

#endif
