/* SPDX-License-Identifier: MIT */
/*
 * Sessions: one per attached network namespace. A session owns that
 * namespace's sockets (the NETLINK_NETFILTER socket wrapped in an
 * nfqb_queue, the NETLINK_ROUTE socket and its links table) and the agent's
 * lease connection, binds the configured queues, and decides every packet
 * in session_verdict() — the one place the rule engine plugs into.
 *
 * Lifetimes (docs/interface.md §4): the lease connection closing starts a grace
 * period of broker.grace_ms; a new agent for the same namespace (same nsfs
 * inode) takes the session over; when the grace period ends the queues are
 * unbound, every fd of the namespace closed and the session forgotten.
 * Broker shutdown detaches without unbinding, so the kernel keeps queueing
 * into the agents' copies of the sockets until a broker is back.
 *
 * The manager (struct session_mgr) is the broker's state: the current
 * config, the loop and the list of sessions. It is opaque to the other
 * modules (its fields are session-private.h): they read a session through
 * session_view(), the totals through session_mgr_totals(), walk the
 * sessions with session_mgr_foreach(), and see decided packets by
 * registering an observer (session_mgr_observe()).
 */
#ifndef BROKER_SESSION_H
#define BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <nfqb/queue.h>

#include "config.h"
#include "hist.h"
#include "links.h"
#include "loop.h"
#include "pktmeta.h"
#include "policy.h"
#include "wire.h"

/* Packet counters of a namespace (and, summed, of the broker). */
struct session_counters {
	uint64_t packets, bytes;
	uint64_t accept, drop, repeat, queue;
	uint64_t errors;          /* verdicts the library could not send */
	uint64_t would_drop;      /* audit mode: drops sent as accept (counted in accept too) */
};

enum session_state {
	SESSION_ATTACHED,         /* an agent holds the lease */
	SESSION_GRACE,            /* lease lost; released at grace.deadline */
	SESSION_BINDING,          /* queues being bound; no ACCEPT sent yet */
};

/* How long a new session may take to bind all its queues. */
#define SESSION_BIND_MS 5000u
/* Verdict sends failing for this long (no success between) end a session. */
#define SESSION_SEND_FAIL_MS 3000u
/* At most one send-error log line per session per this many ms. */
#define SESSION_SEND_LOG_MS 1000u
/* How often a session checks that nobody connect()ed its sockets. */
#define SESSION_CHECK_MS 1000u

struct session;
struct session_mgr;

#define SESSION_KSTATS_MAX 64

/* The kernel's statistics of a session's queues as last read (metrics.c). */
struct session_kstats {
	struct nfqb_kstat k[SESSION_KSTATS_MAX];
	int n;                        /* entries, or -errno of that read */
	uint64_t at_ms;               /* loop_now_ms() of that read; 0: not read yet */
};

/*
 * One row per packet counter of struct session_counters: its name (JSON
 * key in "verdicts", the metrics' verdict label, and in the stats log line
 * @log_name) and where it is. control, metrics and the stats log derive
 * their output from this table: a new counter is the field, the place it
 * is counted (count() in session.c) and one row here.
 */
struct session_counter_def {
	const char *name;
	const char *log_name;
	size_t off;
};

/* The verdict counters (accept, drop, repeat, queue, error), in output order. */
extern const struct session_counter_def session_verdict_counters[];
extern const size_t session_verdict_ncounters;

/*
 * session_counters_load - a copy of @src, which a worker thread may be
 * counting into (relaxed atomic loads, each field whole).
 */
static inline void session_counters_load(struct session_counters *dst,
					 const struct session_counters *src)
{
	dst->packets = __atomic_load_n(&src->packets, __ATOMIC_RELAXED);
	dst->bytes = __atomic_load_n(&src->bytes, __ATOMIC_RELAXED);
	dst->accept = __atomic_load_n(&src->accept, __ATOMIC_RELAXED);
	dst->drop = __atomic_load_n(&src->drop, __ATOMIC_RELAXED);
	dst->repeat = __atomic_load_n(&src->repeat, __ATOMIC_RELAXED);
	dst->queue = __atomic_load_n(&src->queue, __ATOMIC_RELAXED);
	dst->errors = __atomic_load_n(&src->errors, __ATOMIC_RELAXED);
	dst->would_drop = __atomic_load_n(&src->would_drop, __ATOMIC_RELAXED);
}

/* session_counters_add - @dst += @src, field by field (both the caller's). */
static inline void session_counters_add(struct session_counters *dst,
					const struct session_counters *src)
{
	dst->packets += src->packets;
	dst->bytes += src->bytes;
	dst->accept += src->accept;
	dst->drop += src->drop;
	dst->repeat += src->repeat;
	dst->queue += src->queue;
	dst->errors += src->errors;
	dst->would_drop += src->would_drop;
}

/* session_counter_get - the value of counter @d in @c. */
static inline uint64_t session_counter_get(const struct session_counters *c,
					   const struct session_counter_def *d)
{
	return *(const uint64_t *)((const char *)c + d->off);
}

/* What the other modules see of a session: filled by session_view(). */
struct session_view {
	const char *name;             /* the agent's --name */
	enum session_state state;
	uint64_t netns_dev, netns_ino;
	pid_t agent_pid;
	uid_t agent_uid;
	const char *policy;           /* its policy's name */
	bool audit;                   /* audit mode: its entry's or its policy's */
	const uint16_t *queues;       /* bound queue numbers */
	size_t nqueues;
	struct session_counters c;
	const struct session_kstats *ks; /* last kernel-stat snapshot (the metrics tick's) */
	uint64_t overruns;            /* ENOBUFS of its netlink socket */
	time_t attached_at;           /* wall clock of the first attach */
	unsigned takeovers;
	const struct session *session;/* for steering_view()/steering_counters() */
	struct hist latency;          /* receive to verdict sent (hist_latency_bounds) */
	int worker;                   /* the worker thread serving it, -1: the main loop */
	bool solo;                    /* that worker serves it alone and sleeps in its
				       * receive (docs/design.md, "Threads") */
};

/* session_view - fill @v from @s (pointers valid until the loop runs again). */
void session_view(const struct session *s, struct session_view *v);

/*
 * Why a connection was refused, by listener: the agent socket (attach.c,
 * and a session whose queues could not be bound), the control socket and
 * the HTTP endpoint. The metrics' nfqb_refusals_total{listener,reason}.
 */
enum session_refusal {
	REFUSAL_AGENT_UID,            /* uid not in broker.allow_uids */
	REFUSAL_AGENT_PENDING,        /* too many connections waiting for their hello */
	REFUSAL_AGENT_FDS,            /* the broker is out of file descriptors */
	REFUSAL_AGENT_HELLO,          /* no, a bad or a late hello; bad fds */
	REFUSAL_AGENT_NO_MATCH,       /* no namespaces entry matches the name */
	REFUSAL_AGENT_PIN,            /* the entry is pinned to another namespace */
	REFUSAL_AGENT_SESSION_CAP,    /* broker.max_sessions_per_uid */
	REFUSAL_AGENT_ATTACH,         /* the session could not start or bind its queues */
	REFUSAL_CONTROL_UID,          /* not in broker.control_allow_uids */
	REFUSAL_CONTROL_LIMIT,        /* the control socket's client limits */
	REFUSAL_HTTP_LIMIT,           /* the HTTP endpoint's connection limit */
	REFUSAL_N
};

/* The listener ("agent", "control", "http") and reason label of @r. */
const char *session_refusal_listener(enum session_refusal r);
const char *session_refusal_reason(enum session_refusal r);

/* The broker-wide figures: filled by session_mgr_totals(). */
struct session_totals {
	struct session_counters c;    /* every packet since start, forgotten sessions included */
	size_t namespaces;            /* sessions now */
	uint64_t attaches, refusals;  /* refusals: of agents, all reasons */
	uint64_t refused[REFUSAL_N];  /* by listener and reason */
	uint64_t kstats_refreshes;
	time_t started;
	struct hist latency;          /* every verdict's, forgotten sessions included */
	struct hist loop_lag;         /* session_mgr_loop_lag() */
	uint64_t reloads_ok, reloads_failed;
	bool last_reload_ok;          /* the start's load counts as a success */
	time_t last_reload_ok_at;     /* wall clock of the last successful load */
	bool ready;                   /* session_mgr_set_ready() */
};

/* session_mgr_totals - fill @t from @m. */
void session_mgr_totals(const struct session_mgr *m, struct session_totals *t);

/* One worker thread's share, for the metrics and nfq-ctl status. */
struct session_worker_view {
	unsigned index;
	size_t sessions;              /* attached sessions it serves */
	bool solo;                    /* it sleeps in its one session's receive */
	struct session_counters c;    /* every packet it decided */
};

/*
 * session_mgr_workers - fill @out[0..@max) with the worker threads' views;
 * returns the number of workers (0 for a manager without them).
 */
unsigned session_mgr_workers(const struct session_mgr *m, struct session_worker_view *out,
			     unsigned max);

/*
 * session_mgr_start_workers - serve attached sessions on @n worker threads
 * (1..WORKER_MAX) from now on; before the first attach. Without it every
 * session is served on the manager's loop (unit tests). 0 or -errno.
 */
int session_mgr_start_workers(struct session_mgr *m, unsigned n);

/* session_mgr_count - the number of sessions. */
size_t session_mgr_count(const struct session_mgr *m);

/* session_mgr_foreach - call @fn for each session (none may be freed meanwhile). */
void session_mgr_foreach(struct session_mgr *m,
			 void (*fn)(struct session *s, void *data), void *data);

/* session_mgr_cfg / session_mgr_loop - the config in force, the event loop. */
const struct cfg *session_mgr_cfg(const struct session_mgr *m);
struct loop *session_mgr_loop(const struct session_mgr *m);

/*
 * session_mgr_count_refusal - one more connection refused for @why (agent
 * reasons also count in the totals' refusals).
 */
void session_mgr_count_refusal(struct session_mgr *m, enum session_refusal why);

/*
 * session_mgr_loop_lag - record that a timer due at @due_ms fired at
 * @now_ns (hist_now_ns()): how late the loop got to it.
 */
void session_mgr_loop_lag(struct session_mgr *m, uint64_t due_ms, uint64_t now_ns);

/*
 * session_mgr_set_ready - whether the broker serves (config loaded, every
 * socket listening, the loop running): /readyz. False until set.
 */
void session_mgr_set_ready(struct session_mgr *m, bool ready);

/*
 * session_mgr_on_reload - call @fn(@data, false) when a reload starts and
 * @fn(@data, true) when it is over (applied or rejected), whoever asked
 * for it (SIGHUP or nfq-ctl reload). One hook; NULL removes it.
 */
void session_mgr_on_reload(struct session_mgr *m, void (*fn)(void *data, bool done),
			   void *data);

/* session_mgr_ready - what session_mgr_set_ready() said last. */
bool session_mgr_ready(const struct session_mgr *m);

/* session_mgr_uid_sessions - the sessions whose lease holder is @uid. */
size_t session_mgr_uid_sessions(const struct session_mgr *m, uid_t uid);

/* session_name / session_policy / session_links - for the per-packet observers. */
const char *session_name(const struct session *s);
const struct policy *session_policy(const struct session *s);
const struct links *session_links(const struct session *s);

/* session_agent_uid - the uid of the agent holding (or last holding) @s. */
uid_t session_agent_uid(const struct session *s);

/*
 * Called for every decided packet by each registered observer (the
 * control socket's "watch", the per-packet log); @rule is the
 * policy_eval() result, @rc the verdict's return code. Runs in the
 * verdict step: must not allocate or block.
 */
typedef void (*session_observer_fn)(const struct session *s, const struct nfqb_packet *p,
				    const struct pktmeta *m, int rule,
				    const struct policy_action *act, int rc, void *data);

#define SESSION_OBSERVERS_MAX 4

/*
 * session_mgr_observe - call @fn(..., @data) for every decided packet from
 * now on. Returns a handle for session_mgr_unobserve(), or -ENOSPC.
 */
int session_mgr_observe(struct session_mgr *m, session_observer_fn fn, void *data);

/* session_mgr_unobserve - forget observer @handle (negative: no-op). */
void session_mgr_unobserve(struct session_mgr *m, int handle);

/* What the listener verified about an agent before handing it over. */
struct session_hello {
	const char *name;
	pid_t pid;
	uid_t uid;
	uint64_t netns_dev, netns_ino;
	const struct cfg_ns *entry;   /* the namespaces[] entry the name matched */
};

/* session_mgr_new - the broker state for @cfg (ownership taken on success). */
struct session_mgr *session_mgr_new(struct loop *loop, struct cfg *cfg);

/*
 * session_mgr_free - end every session WITHOUT unbinding its queues
 * (broker shutdown: agents keep the sockets, the kernel keeps the queues),
 * then free the config. NULL is a no-op.
 */
void session_mgr_free(struct session_mgr *m);

/*
 * session_mgr_reload - load @path; when valid, swap it in: rule counters
 * carried over, every session re-resolves its policy by name (queues stay
 * bound), links re-mapped. Errors go to @e and the log; the old config
 * stays in force. Returns 0 or -EINVAL.
 */
int session_mgr_reload(struct session_mgr *m, const char *path, struct errs *e);

/* session_mgr_log_stats - one event=stats line per session (SIGUSR1). */
void session_mgr_log_stats(struct session_mgr *m);

/*
 * session_mgr_log_overruns - one event=enobufs line per namespace whose
 * socket overran its receive buffer since the last call (a tick's work,
 * never per packet).
 */
void session_mgr_log_overruns(struct session_mgr *m);

/* session_find - the session of namespace (@dev, @ino), or NULL. */
struct session *session_find(struct session_mgr *m, uint64_t dev, uint64_t ino);

/*
 * session_attach - serve the namespace of @h: a new session binding
 * h->entry's queues on @fds[0] (NETLINK_NETFILTER; @fds[1] NETLINK_ROUTE
 * or -1), or the takeover of a session in its grace period. Every fd the
 * session keeps (or has closed already) is set to -1: on success that
 * includes *@lease_fd. On failure returns a negative errno with a
 * one-line reason in @why; the caller refuses the agent on *@lease_fd and
 * closes what is left.
 *
 * A takeover answers ACCEPT at once. A new session starts in
 * SESSION_BINDING: its queues are bound one after another as the kernel's
 * answers arrive through the loop (never waited for), and the session
 * itself sends the ACCEPT when all are bound, or the REFUSE (with the
 * reason, logged as event=refuse, every fd closed) when one fails or
 * SESSION_BIND_MS pass without an answer. m->attaches counts ACCEPTs.
 */
int session_attach(struct session_mgr *m, const struct session_hello *h, int *lease_fd,
		   int fds[WIRE_MAX_FDS], char *why, size_t whylen);

/*
 * session_kstats - the kernel's statistics of @s's queues (from that
 * namespace's /proc/net/netfilter/nfnetlink_queue, entries of other sockets
 * left out). Returns the number of entries written (<= @max) or -errno;
 * -ENODATA when the namespace's file could not be read, only another's.
 */
int session_kstats(const struct session *s, struct nfqb_kstat *out, size_t max);

/*
 * session_mgr_kstats_refresh - read the kernel statistics of up to @budget
 * sessions into their snapshots: never-read ones first, then those older
 * than @refresh_ms (a failed read: than a second). Returns how many.
 */
unsigned session_mgr_kstats_refresh(struct session_mgr *m, uint64_t now_ms, unsigned budget,
				    uint32_t refresh_ms);

/* session_kstats_strerror - the reason for a session_kstats() error. */
const char *session_kstats_strerror(int err);

/* session_state_name - "attached", "grace" or "binding". */
const char *session_state_name(enum session_state st);

#endif
