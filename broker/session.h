/* SPDX-License-Identifier: MIT */
/*
 * Sessions: one per attached network namespace. A session owns that
 * namespace's sockets (the NETLINK_NETFILTER socket wrapped in an
 * nfqb_queue, the NETLINK_ROUTE socket and its links table) and the agent's
 * lease connection, binds the configured queues, and decides every packet
 * in session_verdict() — the one place the rule engine plugs into.
 *
 * Lifetimes (INTERFACE.md §4): the lease connection closing starts a grace
 * period of broker.grace_ms; a new agent for the same namespace (same nsfs
 * inode) takes the session over; when the grace period ends the queues are
 * unbound, every fd of the namespace closed and the session forgotten.
 * Broker shutdown detaches without unbinding, so the kernel keeps queueing
 * into the agents' copies of the sockets until a broker is back.
 *
 * The manager (struct session_mgr) is the broker's state: the current
 * config, the loop and the list of sessions. The control socket reads it.
 */
#ifndef BROKER_SESSION_H
#define BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <nfqb/queue.h>

#include "config.h"
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

struct session_mgr;

#define SESSION_KSTATS_MAX 64

/* The kernel's statistics of a session's queues as last read (metrics.c). */
struct session_kstats {
	struct nfqb_kstat k[SESSION_KSTATS_MAX];
	int n;                        /* entries, or -errno of that read */
	uint64_t at_ms;               /* loop_now_ms() of that read; 0: not read yet */
};

struct session {
	struct session_mgr *mgr;
	struct session *prev, *next;
	char name[WIRE_NAME_MAX];     /* the agent's --name */
	uint64_t netns_dev, netns_ino;/* nsfs identity of the namespace */
	pid_t agent_pid;              /* SO_PEERCRED of the lease holder */
	uid_t agent_uid;
	int lease_fd;                 /* -1 during the grace period */
	struct nfqb_queue *q;         /* owns the NETLINK_NETFILTER socket */
	int rtnl_fd;                  /* -1 when the agent sent none */
	struct links *links;
	uint16_t *queues;             /* queue numbers bound on q */
	size_t nqueues;
	/* binding (SESSION_BINDING): the entry's queues, bound one after
	 * another through the loop; the answer to the request in flight */
	uint16_t *want;
	size_t nwant;
	struct nfqb_queue_opts qopts;
	size_t entry_index;           /* namespaces[] index at the hello */
	bool bind_answered;
	int bind_err;
	struct loop_timer bind_timer;
	/* verdict sends failing (socket misbehaving): since when, last log */
	uint64_t send_errors_seen;
	uint64_t failing_since_ms;    /* 0: not failing */
	uint64_t last_fail_ms;
	uint64_t fail_logged_ms;
	struct loop_timer check_timer;    /* SESSION_CHECK_MS health check */
	size_t nadopted;              /* of those, found bound already (broker restart) */
	const struct policy *policy;  /* in mgr->cfg's policy set */
	struct session_counters c;
	enum session_state state;
	struct loop_timer grace;
	time_t attached_at;           /* wall clock of the first attach */
	unsigned takeovers;           /* agents that took the session over */
	struct session_kstats ks;     /* refreshed on the control tick, never per request */
	uint64_t enobufs_logged;      /* overruns already logged by the control tick */
};

/*
 * Called for every decided packet when set (the control socket's "watch");
 * @rule is the policy_eval() result, @rc the verdict's return code.
 */
typedef void (*session_watch_fn)(const struct session *s, const struct nfqb_packet *p,
				 const struct pktmeta *m, int rule,
				 const struct policy_action *act, int rc, void *data);

struct session_mgr {
	struct loop *loop;
	struct cfg *cfg;              /* current config, owned */
	struct session *head;
	size_t count;
	struct session_counters total;/* every packet since start, forgotten sessions included */
	uint64_t attaches, refusals;  /* maintained by the listener */
	time_t started;
	session_watch_fn watch;
	void *watch_data;
	int home_netns_fd;            /* the broker's own netns, to return from setns */
	uint64_t kstats_refreshes;    /* session_kstats() reads by the control tick */
	uint32_t bind_ms;             /* SESSION_BIND_MS (unit tests shorten it) */
	uint32_t send_fail_ms;        /* SESSION_SEND_FAIL_MS (likewise) */
};

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

/* session_kstats_strerror - the reason for a session_kstats() error. */
const char *session_kstats_strerror(int err);

/* session_state_name - "attached", "grace" or "binding". */
const char *session_state_name(enum session_state st);

#endif
