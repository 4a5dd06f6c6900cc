/* SPDX-License-Identifier: MIT */
/*
 * A session's steering (docs/steering.md): the rules its namespaces[] entry
 * asks for, installed by the broker in its own nftables tables inside the
 * namespace and kept in step with the session's life:
 *
 *   attach    once every queue is bound (never queue to nobody), install;
 *             a failure serves the namespace unsteered, with the reason
 *             logged and shown by nfq-ctl agents;
 *   reload    replace in one transaction when the entry's steering changed;
 *             a refused replace keeps the old rules (and says so); base
 *             chains are never deleted here (that would drop the packets
 *             waiting in the namespace's queues): no longer wanted, they
 *             stay empty; "steer": [] flushes the rules;
 *   release   (bye, grace over, refused on reload) delete the tables first,
 *             then the queues are unbound;
 *   shutdown  leave them: the agents' copies keep the queues bound, and a
 *             restarted broker replaces the tables (never a second copy).
 *
 * Changes run on one steering thread, never on the event loop (a commit
 * can wait an RCU grace period for the one before it), each on a
 * NETLINK_NETFILTER socket the loop opened inside the namespace with
 * setns() (CAP_SYS_ADMIN) for that change alone: nobody else reads it, so
 * the kernel's answers are all there when the send returns. The agent
 * hears ACCEPT once the queues are bound, not waiting for the rules;
 * nfq-ctl agents shows "pending" until they are in.
 */
#ifndef BROKER_STEERING_H
#define BROKER_STEERING_H

#include <stdbool.h>
#include <stdint.h>

#include "steer.h"

struct session;
struct session_mgr;
struct cfg;

/* What a session's steering is, for nfq-ctl agents and metrics. */
struct steering_view {
	const struct steer_list *list;  /* configured and installed; NULL: none */
	bool installed;               /* the broker's rules are in the kernel */
	bool stale;                   /* those are an earlier config's (a replace failed) */
	bool pending;                 /* a change is with the steering thread */
	int err;                      /* last change's error (negative errno), 0 */
	const char *why;              /* its reason ("" when none) */
	enum steer_backend backend;
	uint64_t changes, failures;   /* installs/replaces/removals done, and failed */
};

/* steering_attach - install @s's entry's steering (after its queues are bound). */
void steering_attach(struct session *s);

/*
 * steering_reload - @s moves to config @n (the manager still holds the old
 * one): replace the rules when its entry's steering differs from what is
 * installed, or retry after an earlier failure.
 */
void steering_reload(struct session *s, const struct cfg *n);

/*
 * steering_release - the session ends: have its tables removed. When a
 * removal was handed to the steering thread, it took the session's queue
 * (s->q is NULL then), which it unbinds once the rules are gone; returns
 * whether it did.
 */
bool steering_release(struct session *s);

/* steering_close - the session goes: close its socket, orphan its pending
 * changes (they still run, in order), leave the rules in the kernel. */
void steering_close(struct session *s);

/* steering_worker_free - finish every queued change (removals included),
 * stop the steering thread; after the sessions are gone. */
void steering_worker_free(struct session_mgr *m);

/* steering_view - fill @v for @s. */
void steering_view(const struct session *s, struct steering_view *v);

/*
 * steering_counters - the kernel's counters of @s's rules per item of its
 * list into @out[0..n). Rules found, or a negative errno (-ENOENT: none).
 */
int steering_counters(const struct session *s, struct steer_counter *out, size_t n);

#endif
