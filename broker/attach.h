/* SPDX-License-Identifier: MIT */
/*
 * The agent listener (docs/interface.md §3): accepts connections on the
 * broker.listen path socket — the peer's uid and the per-uid room for
 * connections waiting for their hello are judged at accept() — reads each
 * agent's hello with its sockets, checks everything it can check itself —
 * message size and fd count, each fd's family and protocol, one namespace
 * for all fds, the netns pin, the sessions per uid — and hands a verified
 * agent to session_attach(). Every refusal is sent to the agent as one line
 * (never blocking; flagged retryable when it may pass, e.g. out of fds,
 * where a reserve fd still lets the peer be told) and logged, rate-limited;
 * the agent's fds are closed and nothing else is touched.
 */
#ifndef BROKER_ATTACH_H
#define BROKER_ATTACH_H

#include <stdint.h>
#include <sys/types.h>

#include "session.h"

/* A connection that has not sent a valid hello by then is dropped. */
#define ATTACH_HELLO_TIMEOUT_MS 5000
/* Connections waiting for their hello; more are refused at once (as are
 * more than broker.max_pending_per_uid of one uid). */
#define ATTACH_MAX_PENDING 256
/* Refusal log lines per class (uid, pending, fds, hello) and second; the
 * rest are counted into one event=refuse_suppressed line. */
#define ATTACH_LOG_PER_SEC 20
/* The retryable answer when the broker is out of fds. */
#define ATTACH_NO_FDS "broker out of file descriptors, try again later"

struct attach;

/*
 * attach_listen - bind the agent socket at @path with @mode, creating its
 * directory (0755) when missing. A stale socket file left by a dead broker
 * is replaced; a live broker behind it is not (-EADDRINUSE). Returns the
 * listener or NULL with errno and a one-line reason in @why.
 */
struct attach *attach_listen(struct session_mgr *m, const char *path, mode_t mode,
			     char *why, size_t whylen);

/*
 * attach_free - close the listener (removing its socket file when it is
 * still ours) and every pending connection. NULL is a no-op.
 */
void attach_free(struct attach *a);

/* attach_pending - connections still waiting for their hello. */
size_t attach_pending(const struct attach *a);

/*
 * attach_prepare_path - unixsock_prepare_path(), logging event=stale_socket
 * when a dead broker's socket was removed. Returns 0 or a negative errno.
 */
int attach_prepare_path(const char *path, char *why, size_t whylen);

#endif
