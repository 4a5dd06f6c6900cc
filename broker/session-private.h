/* SPDX-License-Identifier: MIT */
/*
 * The session manager's own state. Only session.c (and the unit tests
 * that build sessions by hand, tests/fake-session.h) include this; every
 * other module goes through session.h's functions: session_view(),
 * session_mgr_totals(), session_mgr_foreach(), session_mgr_observe().
 */
#ifndef BROKER_SESSION_PRIVATE_H
#define BROKER_SESSION_PRIVATE_H

#include "nsmap.h"
#include "session.h"
#include "steer.h"
#include "worker.h"

struct session_observer {
	session_observer_fn fn;
	void *data;
};

/* A session's steering (steering.c): what its namespace's kernel holds. */
struct steering {
	int fd;                       /* socket in the namespace for counter reads, -1 */
	const struct steer_list *list;/* configured, in mgr->cfg (NULL: none) */
	unsigned jobs;                /* changes with the steering thread */
	bool installed;               /* the kernel holds the configured rules */
	bool tables;                  /* the broker's tables exist there (maybe empty) */
	bool stale;                   /* they are an earlier config's: a replace failed */
	int err;                      /* the last change's error, 0 */
	char why[WIRE_REASON_MAX];    /* its reason */
	enum steer_backend backend;
	uint64_t changes, failures;
};

struct session {
	struct session_mgr *mgr;
	struct session *prev, *next;
	char name[WIRE_NAME_MAX];     /* the agent's --name */
	uint64_t netns_dev, netns_ino;/* nsfs identity of the namespace */
	struct nsmap_node by_ns;      /* in mgr->by_ns while linked */
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
	bool audit;                   /* its entry's "audit": every verdict sent as accept */
	struct session_counters c;
	enum session_state state;
	struct loop_timer grace;
	time_t attached_at;           /* wall clock of the first attach */
	unsigned takeovers;           /* agents that took the session over */
	struct session_kstats ks;     /* refreshed on the metrics tick, never per request */
	uint64_t enobufs_logged;      /* overruns already logged (session_mgr_log_overruns) */
	struct steering steer;
	struct hist latency;          /* receive to verdict sent, per dispatch round */
	/*
	 * Threads (docs/design.md): an attached session is served by
	 * @worker; the main thread changes what that worker reads (policy,
	 * audit, links, pset) only inside a worker_call(). NULL: served on
	 * mgr->loop (binding, or a manager without workers).
	 */
	struct worker *worker;
	struct session_counters *tot_c;  /* totals counted into (NULL: mgr->total) */
	struct hist *tot_h;              /* likewise (NULL: mgr->latency) */
	const struct policy_set *pset;   /* the config whose interface names links maps */
	/* staged by the main thread, applied in a call on the session's thread */
	const struct policy *next_policy;
	bool next_audit;
	struct links *next_links;
	const struct policy_set *next_pset;  /* NULL: unchanged */
	bool rtnl_off;                /* rtnl_fd failed: no longer watched (closed at the end) */
	/* set by the worker (release ordering) when check_sends() gave up: the
	 * main thread, woken through mgr->wake_fd, releases the session */
	bool send_failed;
	char fail_why[WIRE_REASON_MAX];
	uint64_t enobufs;             /* the socket's overruns, published by its thread */
};

struct steering_worker;

struct session_mgr {
	struct steering_worker *steer_worker; /* steering.c's thread, made on first use */
	void (*reload_hook)(void *data, bool done); /* session_mgr_on_reload() */
	void *reload_data;
	struct loop *loop;
	struct cfg *cfg;              /* current config, owned */
	struct session *head;
	size_t count;
	struct nsmap by_ns;           /* the linked sessions by namespace */
	struct session_counters total;/* every packet since start, forgotten sessions included */
	uint64_t attaches, refusals;  /* maintained by the listener */
	uint64_t refused[REFUSAL_N];  /* session_mgr_count_refusal() */
	struct hist latency;          /* every session's, forgotten ones included */
	struct hist loop_lag;         /* session_mgr_loop_lag() */
	uint64_t reloads_ok, reloads_failed;
	bool last_reload_ok;
	time_t last_reload_ok_at;
	bool ready;
	time_t started;
	struct session_observer obs[SESSION_OBSERVERS_MAX];
	size_t nobs;                  /* slots in use at the front (hot path: a count test) */
	int home_netns_fd;            /* the broker's own netns, to return from setns */
	uint64_t kstats_refreshes;    /* session_kstats() reads by the metrics tick */
	uint32_t bind_ms;             /* SESSION_BIND_MS (unit tests shorten it) */
	uint32_t send_fail_ms;        /* SESSION_SEND_FAIL_MS (likewise) */
	struct worker_pool *pool;     /* session_mgr_start_workers(); NULL: all on loop */
	int wake_fd;                  /* eventfd: a worker flagged a session (send_failed) */
	/* each worker's solo session (the only one it serves, which it
	 * sleeps in the receive of: session.c, "Solo"), or NULL */
	struct session *solo[WORKER_MAX];
	bool closing;                 /* session_mgr_free() under way */
};

/* session_verdict - the nfqb callback of every session's queues (@user
 * the session): exported for the allocation-count test only. */
void session_verdict(struct nfqb_packet *p, void *user);

/*
 * session_mgr_return_home - setns() back into the broker's own network
 * namespace after work in an agent's; aborts when that fails (every later
 * socket would be made in the wrong namespace).
 */
void session_mgr_return_home(struct session_mgr *m);

#endif
