/* SPDX-License-Identifier: MIT */
/*
 * The control socket (docs/interface.md §5): a SOCK_STREAM unix socket at
 * broker.control speaking newline-delimited JSON — status, agents, rules,
 * reload, watch, metrics — served from the broker's event loop. Nothing a
 * client does can stall packet work: requests are bounded, output is
 * queued per client and sent when the socket takes it, a client that stops
 * reading is dropped after a while, and a watcher that falls behind loses
 * events (and is told how many) instead of slowing the verdict step.
 *
 * Who may do what is the peer's SO_PEERCRED uid against
 * broker.control_allow_uids (read-only commands) and control_admin_uids
 * (also reload and watch), checked at accept and at every request. Idle
 * clients are dropped after broker.control_idle_ms; clients are capped in
 * total, per uid, and with slots kept for admin uids.
 *
 * This is the server: framing, clients, limits, access. The commands are
 * proto/ctlcmd.c (the table) and broker/commands.c (the handlers).
 */
#ifndef BROKER_CONTROL_H
#define BROKER_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "session.h"
#include "watch.h"

#define CONTROL_REQ_MAX     4096          /* one request line, newline included */
#define CONTROL_MAX_CLIENTS 64
#define CONTROL_MAX_PER_UID 16            /* clients of one uid */
#define CONTROL_ADMIN_RESERVE 8           /* of CONTROL_MAX_CLIENTS, only for admin uids */
#define CONTROL_READ_PAUSE  (64u << 10)   /* pending output that stops reading requests */
#define CONTROL_WATCH_MAX   (256u << 10)  /* pending output above which events are lost */
#define CONTROL_STALL_MS    30000u        /* no output taken for this long: dropped */
#define CONTROL_AUTH_TICK_MS 1000u        /* watchers a reload took admin from stop */

/* cfg_control_access() results: what a uid may do here. */
enum { CONTROL_NONE = 0, CONTROL_READ = 1, CONTROL_ADMIN = 2 };

struct control;
struct control_client;
struct http;

/*
 * control_new - listen on @path with @mode (the directory is created, a
 * stale socket replaced, a live one left alone: -EADDRINUSE) and serve
 * @m. @config_path is what "reload" loads (NULL: reload is refused).
 * Returns the server, or NULL with errno and a one-line reason in @why.
 */
struct control *control_new(struct session_mgr *m, const char *config_path,
			    const char *path, mode_t mode, char *why, size_t whylen);

/*
 * control_free - close every client and the listener, remove the socket
 * file when it is still ours, unhook the watch.
 * NULL is a no-op.
 */
void control_free(struct control *c);

/* control_clients / control_watchers - connected clients, of them watching. */
size_t control_clients(const struct control *c);
size_t control_watchers(const struct control *c);

/* control_set_http - the HTTP endpoint "status" describes (NULL: none; borrowed). */
void control_set_http(struct control *c, const struct http *h);

/* What "status" tells about the control socket itself. */
struct control_info {
	size_t clients, watchers;
	uint64_t refused;             /* connections refused: uid or limit */
	const char *config_path;      /* what "reload" loads, NULL: none */
	const struct http *http;
};

/* control_get_info - fill @out from @c. */
void control_get_info(const struct control *c, struct control_info *out);

/*
 * control_client_watch - @cl streams the events that pass @f (copied)
 * from now on; called again, it changes the filter.
 */
void control_client_watch(struct control_client *cl, const struct watch_filter *f);

/* control_set_stall_ms - change CONTROL_STALL_MS (tests). */
void control_set_stall_ms(struct control *c, uint32_t ms);

#endif
