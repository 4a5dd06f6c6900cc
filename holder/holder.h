/* SPDX-License-Identifier: MIT */
/*
 * nfq-holder internals (docs/holder.md), shared by its files:
 *   req.c        the request/reply messages on the holder socket; also
 *                linked into nfq-cni, the client
 *   supervise.c  the held namespaces: start, adopt, watch, restart and
 *                stop their nfq-agent, record them in the state dir
 *   serve.c      HOLD, RELEASE, CHECK, GC and the answers that wait on an agent
 *   main.c       options, the socket, the event loop
 *
 * The held namespaces reuse nfq-cni's state layout (cni/state.c):
 * <state_dir>/<container id>.json, .log, .status and logs/.
 */
#ifndef NFQB_HOLDER_H
#define NFQB_HOLDER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cni.h"

#define HOLDER_DEFAULT_SOCK "/run/nfq-holder/holder.sock"
#define HOLDER_DEFAULT_STATE "/run/nfq-holder/state"
#define HOLDER_MSG_MAX (64u << 10)
#define HOLDER_VALID_MAX 1024      /* GC: valid attachments in one request */
#define HOLDER_BROKER_MAX 108      /* sun_path */
#define HOLDER_BACKOFF_MIN_MS 100
#define HOLDER_BACKOFF_MAX_MS 5000
#define HOLDER_STABLE_MS 10000     /* an agent up this long restarts from the minimum backoff */
#define HOLDER_LOG_MAX (1u << 20)  /* a live agent's log is cut when a restart finds it bigger */

enum holder_verb { HOLDER_HOLD, HOLDER_RELEASE, HOLDER_CHECK, HOLDER_GC };

/* One (container id, interface) GC keeps. */
struct holder_valid {
	char cid[CID_MAX + 1];
	char ifname[IF_MAX];
};

/*
 * One request. HOLD: cid, net, ifname, name, netns, broker, timeout_ms.
 * RELEASE: cid, net, ifname ("" = every interface of net). CHECK: cid,
 * net, ifname, netns. GC: net and the valid list.
 */
struct holder_req {
	enum holder_verb verb;
	char cid[CID_MAX + 1];
	char net[NET_MAX];
	char ifname[IF_MAX];
	char name[WIRE_NAME_MAX];
	char netns[PATH_MAX];
	char broker[HOLDER_BROKER_MAX];
	int timeout_ms;
	struct holder_valid *valid;   /* GC, owned: holder_req_clear() */
	size_t n_valid;
};

/* ---- req.c */

/* holder_req_parse - parse one request message (@buf, @len bytes: a verb
 * line, then key=value lines) into @r; -EINVAL with the reason in @why. */
int holder_req_parse(const char *buf, size_t len, struct holder_req *r, char *why, size_t whylen);
/* holder_req_format - the message for @r into @buf; its length, or -ENOSPC. */
ssize_t holder_req_format(const struct holder_req *r, char *buf, size_t len);
/* holder_req_clear - free what @r owns (the GC list); @r stays usable. */
void holder_req_clear(struct holder_req *r);
/* holder_reply_format - "ok" (@e NULL or code 0) or the error @e, into @buf. */
ssize_t holder_reply_format(const struct cni_err *e, char *buf, size_t len);
/* holder_reply_parse - 0 for "ok", 1 with the error in @e, -EINVAL when
 * the message is neither. */
int holder_reply_parse(const char *buf, size_t len, struct cni_err *e);
/* holder_verb_name - "HOLD", "RELEASE", ... */
const char *holder_verb_name(enum holder_verb v);
/* holder_cid_ok - a container id as the CNI spec allows it (alphanumeric first,
 * then alphanumerics and "_.-"), which also keeps it a safe file name: the
 * one check for nfq-cni and the holder. */
bool holder_cid_ok(const char *cid);

/* ---- supervise.c */

struct held {
	char cid[CID_MAX + 1];
	struct state s;            /* pid, start, name, netns, broker, attachments */
	struct paths p;
	int pidfd;                 /* -1: no agent running */
	bool child;                /* ours to reap (not adopted) */
	bool stopping;             /* SIGTERM sent: the last attachment went */
	bool fresh;                /* started by a HOLD that is still waiting */
	int64_t started_ms;
	int64_t restart_at;        /* 0: none planned */
	int64_t kill_at;           /* stopping: SIGKILL then */
	int backoff_ms;
	unsigned long restarts;
	int exit_status;           /* of the last exit, -1 unknown (adopted) */
};

struct holder {
	const char *state_dir;
	const char *agent;         /* the nfq-agent program */
	struct held **held;
	size_t n_held, cap_held;
};

/* held_find - the namespace held for container @cid, or NULL. */
struct held *held_find(struct holder *hd, const char *cid);
/* held_new - a new entry for @cid (not started, not recorded). */
struct held *held_new(struct holder *hd, const char *cid);
/* held_free - drop @h from @hd and free it (its pidfd closed). */
void held_free(struct holder *hd, struct held *h);
/* held_spawn - start @h's agent and record it; -errno when it could not start. */
int held_spawn(struct holder *hd, struct held *h, int64_t now);
/* held_record - write @h's state file; -errno. */
int held_record(const struct held *h);
/* held_exited - @h's pidfd became readable: reap, log, close it. */
void held_exited(struct holder *hd, struct held *h, int64_t now);
/* held_schedule - plan a restart of @h after the backoff. */
void held_schedule(struct held *h, int64_t now);
/* held_stop - SIGTERM @h's agent (SIGKILL at kill_at); true when none runs. */
bool held_stop(struct held *h, int64_t now);
/* held_forget - remove @h's state (its log kept under logs/) and free it. */
void held_forget(struct holder *hd, struct held *h);
/* held_adopt_all - read the state dir: adopt living agents, plan the
 * restart of missing ones. Returns how many entries it found. */
size_t held_adopt_all(struct holder *hd, int64_t now);
/* held_timers - restarts and SIGKILLs due at @now; the next deadline (0: none). */
int64_t held_timers(struct holder *hd, int64_t now);
/* held_status - the agent's status file: attached, refused, ... */
int held_status(const struct held *h, struct agent_status *st);

/* ---- serve.c */

struct waiter;

struct server {
	struct holder hd;
	struct waiter *w;          /* answers waiting on an agent */
	size_t n_w, cap_w;
};

/* serve_request - act on @r from client @fd: answer now (closing @fd) or
 * keep @fd until the agent decides. */
void serve_request(struct server *sv, int fd, struct holder_req *r, int64_t now);
/* serve_tick - answer the waiters that are decided or timed out; whether
 * any still waits. */
bool serve_tick(struct server *sv, int64_t now);
/* serve_agent_exited - @h's agent exited: fail a fresh HOLD, finish a
 * stop, or plan the restart. */
void serve_agent_exited(struct server *sv, struct held *h, int64_t now);
/* serve_shutdown - answer every waiter "try later" (the holder stops). */
void serve_shutdown(struct server *sv);
/* serve_reply - send the answer (@e NULL: ok) on @fd and close it. */
void serve_reply(int fd, const struct cni_err *e);

#endif
