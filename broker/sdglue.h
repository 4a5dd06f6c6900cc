/* SPDX-License-Identifier: MIT */
/*
 * The broker under systemd (docs/broker.md, "Running under systemd"):
 * Type=notify readiness, RELOADING/READY around a reload, STOPPING at
 * shutdown, a STATUS= line when the sessions change, and the agent and
 * control sockets of nfq-broker.socket (LISTEN_FDS) used instead of
 * binding. Built without libsystemd (-Dsystemd=disabled) every function
 * does nothing and the broker binds its own sockets as it always did.
 */
#ifndef BROKER_SDGLUE_H
#define BROKER_SDGLUE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "session.h"

/* At most one STATUS= line per this many ms, and only when it changed. */
#define SDGLUE_STATUS_MS 1000u

struct sdglue;

/* sdglue_built - whether this broker was built with libsystemd. */
bool sdglue_built(void);

/*
 * sdglue_sockets - take the sockets systemd passed (LISTEN_FDS, which is
 * then unset) and have unixsock_bind_path() of broker.listen and
 * broker.control return them (unixsock_inherit). Each must be a listening
 * unix socket bound at that path: the agent socket SOCK_SEQPACKET, the
 * control socket SOCK_STREAM, told apart by FileDescriptorName=agent or
 * control, else by type. Returns how many were passed (0: bind as usual)
 * or a negative errno with a one-line reason in @why.
 */
int sdglue_sockets(const struct cfg *cfg, char *why, size_t whylen);

/* sdglue_new - the notifier of @m's broker (NULL with errno: no memory). */
struct sdglue *sdglue_new(struct session_mgr *m);

/* sdglue_free - stop the STATUS ticks. NULL is a no-op. */
void sdglue_free(struct sdglue *g);

/* sdglue_ready - READY=1 with a STATUS=; from now on STATUS= follows the sessions. */
void sdglue_ready(struct sdglue *g);

/* sdglue_reloading - RELOADING=1 and MONOTONIC_USEC=now; sdglue_ready() ends it. */
void sdglue_reloading(struct sdglue *g);

/* sdglue_stopping - STOPPING=1: the shutdown has begun. */
void sdglue_stopping(struct sdglue *g);

#endif
