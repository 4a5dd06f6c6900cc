/* SPDX-License-Identifier: MIT */
/*
 * systemd's side of the broker. Nothing here is needed to serve: every
 * notification is best effort (a full or missing notify socket costs a
 * status line, never a verdict), and without NOTIFY_SOCKET or LISTEN_FDS
 * this module does nothing at all.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifdef NFQB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "loop.h"
#include "sdglue.h"
#include "unixsock.h"

struct sdglue {
	struct session_mgr *m;
	struct loop_timer status_tick;
	bool notify;                  /* NOTIFY_SOCKET was set */
	char status[128];             /* the last STATUS= sent */
};

bool sdglue_built(void)
{
#ifdef NFQB_HAVE_SYSTEMD
	return true;
#else
	return false;
#endif
}

#ifdef NFQB_HAVE_SYSTEMD

enum role { ROLE_AGENT, ROLE_CONTROL };

/* FileDescriptorName= when it says, else the type (the default name is the
 * socket unit's, which says nothing). -1: neither kind of socket. */
static int fd_role(int fd, const char *name)
{
	if (name && strcmp(name, "agent") == 0)
		return ROLE_AGENT;
	if (name && strcmp(name, "control") == 0)
		return ROLE_CONTROL;
	if (sd_is_socket_unix(fd, SOCK_SEQPACKET, -1, NULL, 0) > 0)
		return ROLE_AGENT;
	if (sd_is_socket_unix(fd, SOCK_STREAM, -1, NULL, 0) > 0)
		return ROLE_CONTROL;
	return -1;
}

/* The path @fd is bound at, "" when none (abstract or unbound). */
static void fd_path(int fd, char *buf, size_t len)
{
	struct sockaddr_un sa = { 0 };
	socklen_t sl = sizeof(sa);

	buf[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sa.sun_family == AF_UNIX &&
	    sl > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0])
		snprintf(buf, len, "%.*s", (int)(sl - offsetof(struct sockaddr_un, sun_path)),
			 sa.sun_path);
}

static int adopt(const struct cfg *cfg, int fd, const char *name, unsigned *seen,
		 char *why, size_t whylen)
{
	static const char *const key[] = { "broker.listen", "broker.control" };
	static const char *const kind[] = { "a listening SOCK_SEQPACKET", "a listening SOCK_STREAM" };
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1], vb[LOG_VALUE_MAX];
	int role = fd_role(fd, name), rc;
	const char *want;

	if (role < 0) {
		snprintf(why, whylen, "socket activation: fd %d (%s) is neither the agent "
			 "(SOCK_SEQPACKET) nor the control (SOCK_STREAM) unix socket", fd, name);
		return -EPROTOTYPE;
	}
	if (*seen & (1u << role)) {
		snprintf(why, whylen, "socket activation: two %s sockets passed",
			 role == ROLE_AGENT ? "agent" : "control");
		return -EEXIST;
	}
	*seen |= 1u << role;
	want = role == ROLE_AGENT ? cfg->listen : cfg->control;
	if (sd_is_socket_unix(fd, role == ROLE_AGENT ? SOCK_SEQPACKET : SOCK_STREAM, 1,
			      NULL, 0) <= 0) {
		snprintf(why, whylen, "socket activation: fd %d (%s) is not %s unix socket", fd,
			 name, kind[role]);
		return -EPROTOTYPE;
	}
	fd_path(fd, path, sizeof(path));
	/* The units and the configuration must agree, or agents knock at a door
	 * nobody answers. */
	if (strcmp(path, want) != 0) {
		snprintf(why, whylen, "socket activation: the %s socket is bound at %s but %s is %s",
			 role == ROLE_AGENT ? "agent" : "control", path[0] ? path : "(no path)",
			 key[role], want);
		return -EADDRNOTAVAIL;
	}
	rc = unixsock_inherit(want, fd);
	if (rc < 0) {
		snprintf(why, whylen, "socket activation: %s: %s", want, strerror(-rc));
		return rc;
	}
	log_event(LOGL_INFO, "socket_activation", "name=%s fd=%d path=%s",
		  role == ROLE_AGENT ? "agent" : "control", fd, log_value(vb, sizeof(vb), want));
	return 0;
}

int sdglue_sockets(const struct cfg *cfg, char *why, size_t whylen)
{
	char **names = NULL;
	unsigned seen = 0;
	int n, i, rc = 0;

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		snprintf(why, whylen, "socket activation: LISTEN_FDS: %s", strerror(-n));
		return n;
	}
	for (i = 0; i < n; i++) {
		rc = adopt(cfg, SD_LISTEN_FDS_START + i, names ? names[i] : "unknown", &seen,
			   why, whylen);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		/* Those adopted, then the rest: ours to close, nobody else's. */
		unixsock_inherit_close();
		for (; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
	}
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	return rc < 0 ? rc : n;
}

static void notify(const char *msg)
{
	/* Best effort: with no one listening there is no one to tell. */
	(void)sd_notify(0, msg);
}

#else /* !NFQB_HAVE_SYSTEMD */

int sdglue_sockets(const struct cfg *cfg, char *why, size_t whylen)
{
	(void)cfg;
	(void)why;
	(void)whylen;
	return 0;
}

static void notify(const char *msg)
{
	(void)msg;
}

#endif

/* "namespaces=N agents=M refusals=R": what an operator sees in systemctl status. */
static void count_agents(struct session *s, void *data)
{
	struct session_view v;

	session_view(s, &v);
	if (v.state == SESSION_ATTACHED)
		++*(size_t *)data;
}

static void status_text(struct sdglue *g, char *buf, size_t len)
{
	struct session_totals t;
	size_t agents = 0;

	session_mgr_totals(g->m, &t);
	session_mgr_foreach(g->m, count_agents, &agents);
	snprintf(buf, len, "STATUS=namespaces=%zu agents=%zu refusals=%" PRIu64, t.namespaces,
		 agents, t.refusals);
}

static void send_status(struct sdglue *g, bool force)
{
	char now[sizeof(g->status)];

	status_text(g, now, sizeof(now));
	if (!force && strcmp(now, g->status) == 0)
		return;
	memcpy(g->status, now, sizeof(now));
	notify(now);
}

/* Polled, not pushed: a burst of attaches costs one line, and the
 * sessions need no hook for a manager that may not even be there. */
static void status_tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct sdglue *g = data;

	send_status(g, false);
	loop_timer_arm(l, t, loop_now_ms() + SDGLUE_STATUS_MS);
}

/* Every reload, SIGHUP or nfq-ctl's: RELOADING=1 before, READY=1 after
 * (a rejected file leaves the old one in force: ready either way). */
static void reload_hook(void *data, bool done)
{
	if (done)
		sdglue_ready(data);
	else
		sdglue_reloading(data);
}

struct sdglue *sdglue_new(struct session_mgr *m)
{
	struct sdglue *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->m = m;
	session_mgr_on_reload(m, reload_hook, g);
	loop_timer_init(&g->status_tick, status_tick, g);
	g->notify = sdglue_built() && getenv("NOTIFY_SOCKET");
	return g;
}

void sdglue_free(struct sdglue *g)
{
	if (!g)
		return;
	loop_timer_cancel(session_mgr_loop(g->m), &g->status_tick);
	session_mgr_on_reload(g->m, NULL, NULL);
	free(g);
}

void sdglue_ready(struct sdglue *g)
{
	char msg[sizeof(g->status) + 16];

	if (!g || !g->notify)
		return;
	status_text(g, g->status, sizeof(g->status));
	snprintf(msg, sizeof(msg), "READY=1\n%s", g->status);
	notify(msg);
	if (!loop_timer_armed(&g->status_tick))
		loop_timer_arm(session_mgr_loop(g->m), &g->status_tick,
			       loop_now_ms() + SDGLUE_STATUS_MS);
}

void sdglue_reloading(struct sdglue *g)
{
	struct timespec ts;
	char msg[64];

	if (!g || !g->notify)
		return;
	/* systemd >= 253 wants the time to tell this reload from an older one. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		 (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	notify(msg);
}

void sdglue_stopping(struct sdglue *g)
{
	if (!g || !g->notify)
		return;
	loop_timer_cancel(session_mgr_loop(g->m), &g->status_tick);
	notify("STOPPING=1");
}
