/* SPDX-License-Identifier: MIT */
/*
 * Verdict policies (docs/interface.md §2 "policies"): parsed from json-c and
 * validated up front, compiled into flat arrays that match a struct pktmeta
 * with no allocation. The runtime structures hold no json-c objects.
 */
#ifndef BROKER_POLICY_H
#define BROKER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "errs.h"
#include "pktmeta.h"

struct policy_set;          /* every policy of one configuration */
struct policy;              /* one named policy */

/*
 * A "log" rate limit as a token bucket in nanoseconds of credit, like
 * iptables -m limit: a packet costs @cost_ns, at most @burst packets'
 * worth is saved up. cost_ns 0: unlimited.
 */
struct policy_log_limit {
	uint64_t cost_ns;
	uint32_t burst;
};

/* Default limit of "log": true and of audit mode's would-drop lines. */
#define POLICY_LOG_RATE_DEFAULT "10/second"
#define POLICY_LOG_BURST_DEFAULT 10u
/* "comment" on a rule or a default: at most this many bytes. */
#define POLICY_COMMENT_MAX 256

/* The action of a rule or of a policy's default. */
struct policy_action {
	uint32_t verdict;        /* NFQB_ACCEPT/DROP/REPEAT, or NFQB_QUEUE | num << 16 */
	bool set_mark;
	uint32_t mark;
	uint32_t connmark;       /* set_connmark: bits OR'd into the packet mark; 0 none */
	bool log;
	struct policy_log_limit limit;  /* of "log" (and of audit lines) */
	const char *comment;     /* NULL when none; owned by the policy */
	/* Set only on the session's copy of an action an audit turned into
	 * accept: what the policy decided. */
	bool audited;
	uint32_t would_verdict;
};

/* Counters of one rule (index -1 is the policy's "(default)"). */
struct policy_counter {
	uint64_t packets, bytes;
	uint64_t would_drop;     /* audit mode: packets that were accepted instead */
	uint64_t log_suppressed; /* log lines the rate limit held back */
};

/*
 * policy_set_parse - parse the "policies" object @obj (path "policies").
 * Every error is added to @e with its JSON path; returns NULL when there
 * was any error (or on ENOMEM). @obj NULL (the key is absent) is reported
 * as "policies: required key missing".
 */
struct policy_set *policy_set_parse(json_object *obj, struct errs *e);
void policy_set_free(struct policy_set *s);

/* policy_set_find - the policy named @name, or NULL. */
const struct policy *policy_set_find(const struct policy_set *s, const char *name);
const char *policy_name(const struct policy *p);

/*
 * policy_eval - first rule of @p matching @m; returns its index (>= 0) or -1
 * for the default, and points @act at the action to apply. Reads the
 * policy only: counting is the caller's, through policy_count(). No
 * allocation, no string work.
 */
int policy_eval(const struct policy *p, const struct pktmeta *m,
		const struct policy_action **act);

/*
 * policy_count - count one packet of @len bytes on rule @idx of @p (-1 =
 * the default), as returned by policy_eval(). The counters are a block of
 * their own (struct policy_counters), the one part of a policy that
 * changes after loading; the compiled rules stay read-only. Read them with
 * policy_counter(). An index out of range is ignored.
 */
void policy_count(const struct policy *p, int idx, uint32_t len);

/* policy_count_would_drop - count an audited drop on rule @idx (-1 default). */
void policy_count_would_drop(const struct policy *p, int idx);

/*
 * policy_log_take - the rate limit of rule @idx (-1 default) at monotonic
 * time @now_ns: true when a log line may be written, with the number of
 * lines held back since the last one into *@suppressed; false (and one
 * more held back) otherwise. No allocation: the bucket lives with the
 * counters.
 */
bool policy_log_take(const struct policy *p, int idx, uint64_t now_ns, uint64_t *suppressed);

/* policy_audit - true for a policy with "mode": "audit". */
bool policy_audit(const struct policy *p);

/* policy_uses_connmark - true when a rule matches "connmark" (needs the
 * queue flag conntrack); policy_sets_connmark - when an action has
 * "set_connmark" (needs the CONNMARK rules of docs/policy.md). */
bool policy_uses_connmark(const struct policy *p);
bool policy_sets_connmark(const struct policy *p);

/* policy_action_at - the action of rule @idx (-1 = default), NULL out of range. */
const struct policy_action *policy_action_at(const struct policy *p, int idx);

/*
 * policy_match_key - name of match key @i (0, 1, ... in table order) and its
 * one-line description into *@doc (when @doc is not NULL); NULL past the
 * last key. For docs checks and help text.
 */
const char *policy_match_key(size_t i, const char **doc);

/* What a policy's name may be; also the names under "steering" (config.c). */
#define POLICY_NAME_RULES "(1-64 letters, digits, '_', '-', '.', ':', '/')"

/* policy_name_valid - whether @s is a valid name by POLICY_NAME_RULES. */
bool policy_name_valid(const char *s);

/* policy_rule_name - name of rule @idx of @p ("(default)" for -1). */
const char *policy_rule_name(const struct policy *p, int idx);
size_t policy_rule_count(const struct policy *p);
/*
 * policy_counter - counters of rule @idx (-1 = default). Worker threads
 * add to them while the broker runs: read them with policy_counter_load().
 */
const struct policy_counter *policy_counter(const struct policy *p, int idx);

/*
 * policy_counter_load - rule @idx's counters, every worker's block added
 * (relaxed atomic loads); false, @out zeroed, for an index out of range.
 */
bool policy_counter_load(const struct policy *p, int idx, struct policy_counter *out);

/*
 * policy_set_workers - give every policy of @s a counter block for each of
 * @n worker threads (at most 64), so that workers never count into the same
 * cache line. Before any worker decides with @s. -ENOMEM leaves the
 * policies without (they count into the shared block, atomically).
 */
int policy_set_workers(struct policy_set *s, unsigned n);

/*
 * policy_thread_worker - the calling thread is worker @i (-1: none): its
 * policy_count() goes to block @i of each policy that has one.
 */
void policy_thread_worker(int i);

/* Iteration over a set for the control socket: index 0..count-1. */
size_t policy_set_count(const struct policy_set *s);
const struct policy *policy_set_at(const struct policy_set *s, size_t i);

/*
 * policy_set_carry_counters - add to @to the counters of every rule whose
 * (policy name, rule name) also exists in @from (reload keeps history).
 * O(rules): names are looked up in a hash table built per policy. Returns
 * 0, or -ENOMEM when a policy's counters could not be carried (they start
 * from 0; every other policy's are carried).
 */
int policy_set_carry_counters(struct policy_set *to, const struct policy_set *from);

/*
 * Interface names used by indev/outdev matches are interned per set: the
 * broker maps each namespace's ifindex to these ids when links change, so a
 * packet is matched by comparing integers. -1 = a name no rule mentions.
 */
int32_t policy_ifname_id(const struct policy_set *s, const char *ifname);

/*
 * policy_verdict_name - @verdict as the config spells it ("accept", "drop",
 * "repeat", "queue:N") into @buf (POLICY_VERDICT_NAME_MAX bytes suffice);
 * returns @buf. For log lines and the control socket.
 */
#define POLICY_VERDICT_NAME_MAX 24
const char *policy_verdict_name(uint32_t verdict, char *buf, size_t len);

#endif
