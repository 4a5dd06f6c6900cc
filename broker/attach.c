/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "attach.h"
#include "unixsock.h"
#include "log.h"

/* A connection between accept() and its hello. */
struct conn {
	struct attach *a;
	LIST_ENTRY(conn) link;
	int fd;
	uid_t uid;               /* SO_PEERCRED at accept() */
	struct loop_timer timeout;
};

/*
 * Refusal log lines per class and second: a flood of refused peers costs
 * a few lines, then one event=refuse_suppressed line with the count.
 */
enum rl_class { RL_UID, RL_PENDING, RL_FDS, RL_HELLO, RL_N };

static const char *const rl_names[RL_N] = { "uid", "pending", "fds", "hello" };

struct ratelimit {
	uint64_t second;         /* loop clock, in seconds */
	unsigned lines;          /* logged in that second */
	uint64_t suppressed;     /* not logged since the last summary */
};

struct attach {
	struct session_mgr *m;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;               /* identity of the socket file we created */
	ino_t ino;
	LIST_HEAD(, conn) pending;
	size_t npending;
	int reserve_fd;          /* given up on EMFILE to accept and refuse */
	struct loop_timer resume;/* listener paused: out of fds, no reserve */
	struct ratelimit rl[RL_N];
	struct loop_timer rl_flush;
};

/* Accepts per readiness event: a flood cannot starve the other fds. */
#define ATTACH_ACCEPT_BUDGET 64
/* How long the listener rests when out of fds without a reserve. */
#define ATTACH_PAUSE_MS 100

/* ------------------------------------------------------------ log limits */

static void rl_summary(struct attach *a, enum rl_class k)
{
	if (!a->rl[k].suppressed)
		return;
	log_event(LOGL_WARN, "refuse_suppressed", "class=%s suppressed=%" PRIu64,
		  rl_names[k], a->rl[k].suppressed);
	a->rl[k].suppressed = 0;
}

static void rl_flush(struct loop *l, struct loop_timer *t, void *data)
{
	struct attach *a = data;

	/* Only the summary: the budget of lines stays with rl_allow()'s
	 * second, or a timer firing early would give one second two. */
	for (int k = 0; k < RL_N; k++)
		rl_summary(a, (enum rl_class)k);
}

/* Whether a refusal of class @k may be logged now; counted when not. */
static bool rl_allow(struct attach *a, enum rl_class k)
{
	struct ratelimit *r = &a->rl[k];
	uint64_t now = loop_now_ms();

	if (now / 1000 != r->second) {
		rl_summary(a, k);
		r->second = now / 1000;
		r->lines = 0;
	}
	if (r->lines < ATTACH_LOG_PER_SEC) {
		r->lines++;
		return true;
	}
	r->suppressed++;
	/* The summary comes when the second is over, even if the flood is. */
	if (!loop_timer_armed(&a->rl_flush))
		(void)loop_timer_arm(session_mgr_loop(a->m), &a->rl_flush, (r->second + 1) * 1000);
	return false;
}

/* The reasons a refusal may pass by itself: the agent should try again. */
static bool passing(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -ENOBUFS;
}

/* ------------------------------------------------------------ connections */

static void conn_free(struct conn *c)
{
	struct attach *a = c->a;

	loop_timer_cancel(session_mgr_loop(a->m), &c->timeout);
	if (c->fd >= 0) {
		loop_del(session_mgr_loop(a->m), c->fd);
		close(c->fd);
	}
	LIST_REMOVE(c, link);
	a->npending--;
	free(c);
}

static void close_fds(int fds[WIRE_MAX_FDS])
{
	for (size_t i = 0; i < WIRE_MAX_FDS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * Tell the agent why (one line), log it, close every fd it sent and the
 * connection. Nothing else is touched: other agents never notice.
 */
/*
 * Answer @fd with a refusal (never blocking: a peer that does not read
 * loses the answer, not our time), log it within the class's rate, count
 * it. @name may be NULL, @cred too (then read from the socket).
 */
static void refuse_fd(struct attach *a, int fd, enum rl_class k, enum session_refusal why,
		      const char *name, const struct ucred *cred, bool retry, const char *reason)
{
	char nb[LOG_VALUE_MAX], rb[LOG_VALUE_MAX];
	struct wire_refuse r;
	struct ucred own;
	socklen_t cl = sizeof(own);

	wire_refuse_init_flags(&r, reason, retry ? WIRE_REFUSE_F_RETRY : 0);
	(void)wire_send(fd, &r, sizeof(r), NULL, 0);
	session_mgr_count_refusal(a->m, why);
	if (!rl_allow(a, k))
		return;
	/* Even a peer refused before its credentials were checked is logged by pid. */
	if (!cred && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &own, &cl) == 0)
		cred = &own;
	log_event(LOGL_WARN, "refuse", "name=%s agent_pid=%d uid=%d reason=%s%s",
		  log_value(nb, sizeof(nb), name ? name : "-"), cred ? (int)cred->pid : -1,
		  cred ? (int)cred->uid : -1, log_value(rb, sizeof(rb), reason),
		  retry ? " retry=true" : "");
}

/*
 * Tell the agent why (one line), log it, close every fd it sent and the
 * connection. Nothing else is touched: other agents never notice. @retry
 * marks a reason that may pass (the agent tries again later).
 */
static void refuse_as(struct conn *c, enum rl_class k, enum session_refusal why,
		      const char *name, const struct ucred *cred, int fds[WIRE_MAX_FDS],
		      bool retry, const char *reason)
{
	refuse_fd(c->a, c->fd, k, why, name, cred, retry, reason);
	if (fds)
		close_fds(fds);
	conn_free(c);
}

static void refuse(struct conn *c, enum session_refusal why, const char *name,
		   const struct ucred *cred, int fds[WIRE_MAX_FDS], const char *reason)
{
	refuse_as(c, RL_HELLO, why, name, cred, fds, false, reason);
}

/* Sessions of agents of @uid, against broker.max_sessions_per_uid. */
/* fds[0] NETLINK_NETFILTER, fds[1] NETLINK_ROUTE, all in one namespace. */
static int check_fds(const int fds[WIRE_MAX_FDS], size_t nfds, uint64_t *dev,
		     uint64_t *ino, char *why, size_t whylen)
{
	static const int protos[WIRE_MAX_FDS] = { NETLINK_NETFILTER, NETLINK_ROUTE };
	char r[WIRE_REASON_MAX - 32];
	uint64_t d, i;
	int rc;

	for (size_t k = 0; k < nfds; k++) {
		rc = wire_fd_check(fds[k], protos[k], r, sizeof(r));
		if (rc < 0) {
			snprintf(why, whylen, "fd %zu: %s", k, r);
			return rc;
		}
		rc = wire_fd_netns(fds[k], &d, &i);
		if (rc < 0) {
			snprintf(why, whylen, "fd %zu: cannot tell its network namespace: %s",
				 k, strerror(-rc));
			return rc;
		}
		if (k == 0) {
			*dev = d;
			*ino = i;
		} else if (d != *dev || i != *ino) {
			snprintf(why, whylen, "the sockets live in different network "
				 "namespaces (inodes %" PRIu64 " and %" PRIu64 ")", *ino, i);
			return -EXDEV;
		}
	}
	return 0;
}

static void handle_hello(struct conn *c, const struct wire_hello *hello, size_t len,
			 int fds[WIRE_MAX_FDS], size_t nfds)
{
	struct session_mgr *m = c->a->m;
	struct session_hello h = { 0 };
	char why[WIRE_REASON_MAX];
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct session *held;
	const char *name;
	bool hello_ok;
	int rc;

	hello_ok = wire_hello_check(hello, len, nfds, why, sizeof(why)) == 0;
	/* Only a checked hello has a name fit for the log. */
	name = hello_ok ? hello->name : NULL;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		snprintf(why, sizeof(why), "cannot read peer credentials: %s", strerror(errno));
		refuse(c, REFUSAL_AGENT_HELLO, name, NULL, fds, why);
		return;
	}
	if (!cfg_uid_allowed(session_mgr_cfg(m), cred.uid)) {
		snprintf(why, sizeof(why), "uid %u is not in broker.allow_uids",
			 (unsigned)cred.uid);
		refuse(c, REFUSAL_AGENT_UID, name, &cred, fds, why);
		return;
	}
	if (!hello_ok) {
		refuse(c, REFUSAL_AGENT_HELLO, NULL, &cred, fds, why);
		return;
	}
	h.name = name;
	h.pid = cred.pid;
	h.uid = cred.uid;
	rc = check_fds(fds, nfds, &h.netns_dev, &h.netns_ino, why, sizeof(why));
	if (rc < 0) {
		refuse_as(c, RL_HELLO, REFUSAL_AGENT_HELLO, name, &cred, fds, passing(rc), why);
		return;
	}
	h.entry = cfg_match(session_mgr_cfg(m), name);
	if (!h.entry) {
		snprintf(why, sizeof(why), "no namespaces entry matches name \"%.160s\"", name);
		refuse(c, REFUSAL_AGENT_NO_MATCH, name, &cred, fds, why);
		return;
	}
	if (cfg_ns_pin_check(h.entry, h.netns_dev, h.netns_ino, why, sizeof(why)) < 0) {
		refuse(c, REFUSAL_AGENT_PIN, name, &cred, fds, why);
		return;
	}
	/* Taking over or replacing a session this uid holds adds none; one of
	 * another uid (in its grace period) would move it to this uid. */
	held = session_find(m, h.netns_dev, h.netns_ino);
	if (session_mgr_cfg(m)->max_sessions_per_uid &&
	    !(held && session_agent_uid(held) == cred.uid) &&
	    session_mgr_uid_sessions(m, cred.uid) >= session_mgr_cfg(m)->max_sessions_per_uid) {
		snprintf(why, sizeof(why), "uid %u holds %u sessions already "
			 "(broker.max_sessions_per_uid)", (unsigned)cred.uid,
			 session_mgr_cfg(m)->max_sessions_per_uid);
		refuse(c, REFUSAL_AGENT_SESSION_CAP, name, &cred, fds, why);
		return;
	}
	/* From here the session watches the connection as its lease. */
	loop_del(session_mgr_loop(m), c->fd);
	rc = session_attach(m, &h, &c->fd, fds, why, sizeof(why));
	if (rc < 0) {
		refuse_as(c, RL_HELLO, REFUSAL_AGENT_ATTACH, name, &cred, fds, passing(rc), why);
		return;
	}
	/* The session answers (and counts the attach) once its queues are bound. */
	close_fds(fds);     /* duplicates the session did not keep */
	conn_free(c);
}

static void conn_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_hello hello;
	} u;
	int fds[WIRE_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;

	n = wire_recv(fd, u.buf, sizeof(u.buf), fds, &nfds);
	if (n == -EAGAIN)
		return;
	if (n == -EMFILE) {
		refuse_as(c, RL_FDS, REFUSAL_AGENT_FDS, NULL, NULL, NULL, true, ATTACH_NO_FDS);
		return;
	}
	if (n == -EBADMSG) {
		/* wire_recv closed whatever fds arrived */
		refuse(c, REFUSAL_AGENT_HELLO, NULL, NULL, NULL,
		       "message or its fds truncated, or more than 2 fds");
		return;
	}
	if (n <= 0) {
		log_event(LOGL_DEBUG, "conn_closed", "reason=\"%s\"",
			  n == 0 ? "closed before its hello" : strerror((int)-n));
		close_fds(fds);
		conn_free(c);
		return;
	}
	handle_hello(c, &u.hello, (size_t)n, fds, nfds);
}

static void conn_timeout(struct loop *l, struct loop_timer *t, void *data)
{
	refuse(data, REFUSAL_AGENT_HELLO, NULL, NULL, NULL, "no hello within 5 s");
}

/* Connections of @uid waiting for their hello. */
static size_t uid_pending(const struct attach *a, uid_t uid)
{
	const struct conn *c;
	size_t n = 0;

	LIST_FOREACH(c, &a->pending, link)
		n += c->uid == uid;
	return n;
}

/*
 * What can be judged before any hello: the peer's uid (a uid that may
 * not attach never takes a pending slot) and the room left for it. A
 * refused peer gets its one-line answer and is closed at once.
 */
static bool admit(struct attach *a, int fd, const struct ucred *cred)
{
	const struct cfg *cfg = session_mgr_cfg(a->m);
	char why[WIRE_REASON_MAX];
	size_t mine;

	if (!cfg_uid_allowed(cfg, cred->uid)) {
		snprintf(why, sizeof(why), "uid %u is not in broker.allow_uids",
			 (unsigned)cred->uid);
		refuse_fd(a, fd, RL_UID, REFUSAL_AGENT_UID, NULL, cred, false, why);
		return false;
	}
	if (a->npending >= ATTACH_MAX_PENDING) {
		snprintf(why, sizeof(why), "%zu connections already wait for their hello",
			 a->npending);
		refuse_fd(a, fd, RL_PENDING, REFUSAL_AGENT_PENDING, NULL, cred, true, why);
		return false;
	}
	mine = uid_pending(a, cred->uid);
	if (mine >= cfg->max_pending_per_uid) {
		snprintf(why, sizeof(why), "uid %u has %zu connections waiting for their hello "
			 "(broker.max_pending_per_uid)", (unsigned)cred->uid, mine);
		refuse_fd(a, fd, RL_PENDING, REFUSAL_AGENT_PENDING, NULL, cred, true, why);
		return false;
	}
	return true;
}

/*
 * Read what a peer refused at accept() sent already (its hello, with any
 * fds, closed at once): a socket closed with unread data resets the
 * connection, and the peer would lose our answer.
 */
static void drain(int fd)
{
	char buf[WIRE_MSG_MAX];
	int fds[WIRE_MAX_FDS];
	size_t nfds;

	for (int i = 0; i < 4; i++) {
		ssize_t n = wire_recv(fd, buf, sizeof(buf), fds, &nfds);

		close_fds(fds);
		if (n <= 0 && n != -EBADMSG && n != -EMFILE)
			return;
	}
}

static void accept_one(struct attach *a, int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct conn *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		if (rl_allow(a, RL_UID))
			log_event(LOGL_WARN, "conn_dropped", "reason=\"cannot read peer "
				  "credentials: %s\"", strerror(errno));
		close(fd);
		return;
	}
	if (!admit(a, fd, &cred)) {
		drain(fd);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->a = a;
	c->fd = fd;
	c->uid = cred.uid;
	loop_timer_init(&c->timeout, conn_timeout, c);
	LIST_INSERT_HEAD(&a->pending, c, link);
	a->npending++;
	if (loop_add(session_mgr_loop(a->m), fd, EPOLLIN, conn_event, c) < 0 ||
	    loop_timer_arm(session_mgr_loop(a->m), &c->timeout,
			   loop_now_ms() + ATTACH_HELLO_TIMEOUT_MS) < 0) {
		conn_free(c);
		return;
	}
	log_event(LOGL_DEBUG, "conn", "fd=%d uid=%u pending=%zu", fd, (unsigned)cred.uid,
		  a->npending);
	/* An agent sends its hello right after connect(): most are judged
	 * now and never hold a pending slot (c may be gone after this). */
	conn_event(session_mgr_loop(a->m), fd, EPOLLIN, c);
}

/*
 * Out of fds: the reserve fd makes room to accept one peer and tell it
 * to come back, so the backlog drains instead of spinning the loop on a
 * listener that stays readable. Returns false when nothing could be done.
 */
static bool shed_one(struct attach *a, int lfd)
{
	int cfd;

	if (a->reserve_fd < 0)
		return false;
	close(a->reserve_fd);
	a->reserve_fd = -1;
	cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd >= 0) {
		refuse_fd(a, cfd, RL_FDS, REFUSAL_AGENT_FDS, NULL, NULL, true, ATTACH_NO_FDS);
		drain(cfd);
		close(cfd);
	}
	a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return cfd >= 0;
}

static void resume_listener(struct loop *l, struct loop_timer *t, void *data)
{
	struct attach *a = data;

	if (a->reserve_fd < 0)
		a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	(void)loop_mod(l, a->fd, EPOLLIN);
}

/*
 * Out of fds with no reserve to shed peers with: the listener stays
 * readable, so stop watching it for a while rather than spin on it.
 */
static void pause_listener(struct attach *a, int err)
{
	if (rl_allow(a, RL_FDS))
		log_event(LOGL_WARN, "accept", "error=\"%s\" paused_ms=%d", strerror(err),
			  ATTACH_PAUSE_MS);
	if (loop_mod(session_mgr_loop(a->m), a->fd, 0) == 0 &&
	    loop_timer_arm(session_mgr_loop(a->m), &a->resume, loop_now_ms() + ATTACH_PAUSE_MS) < 0)
		(void)loop_mod(session_mgr_loop(a->m), a->fd, EPOLLIN);
}

static void listener_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct attach *a = data;

	for (int i = 0; i < ATTACH_ACCEPT_BUDGET; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			accept_one(a, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if ((errno == EMFILE || errno == ENFILE) && shed_one(a, fd))
			continue;
		if (errno == EMFILE || errno == ENFILE)
			pause_listener(a, errno);
		return;
	}
}

/* ------------------------------------------------------------ listener */

int attach_prepare_path(const char *path, char *why, size_t whylen)
{
	int rc = unixsock_prepare_path(path, why, whylen);

	if (rc > 0)
		log_event(LOGL_INFO, "stale_socket", "path=%s removed=true", path);
	return rc < 0 ? rc : 0;
}

struct attach *attach_listen(struct session_mgr *m, const char *path, mode_t mode,
			     char *why, size_t whylen)
{
	struct attach *a = calloc(1, sizeof(*a));
	bool stale = false;
	int rc;

	if (!a) {
		snprintf(why, whylen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	a->m = m;
	a->fd = -1;
	LIST_INIT(&a->pending);
	loop_timer_init(&a->rl_flush, rl_flush, a);
	loop_timer_init(&a->resume, resume_listener, a);
	/* Opened first: the last fd we can count on when the table is full. */
	a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a->reserve_fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot open /dev/null: %s", strerror(-rc));
		goto fail;
	}
	if (strlen(path) >= sizeof(a->path)) {
		snprintf(why, whylen, "socket path too long: %s", path);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->fd = unixsock_bind_path(path, SOCK_SEQPACKET, mode, SOMAXCONN, &a->dev, &a->ino,
				   &stale, why, whylen);
	if (stale)
		log_event(LOGL_INFO, "stale_socket", "path=%s removed=true", path);
	if (a->fd < 0) {
		rc = a->fd;
		goto fail;
	}
	rc = loop_add(session_mgr_loop(m), a->fd, EPOLLIN, listener_event, a);
	if (rc < 0) {
		snprintf(why, whylen, "cannot watch the listener: %s", strerror(-rc));
		goto fail;
	}
	return a;
fail:
	attach_free(a);
	errno = -rc;
	return NULL;
}

void attach_free(struct attach *a)
{
	if (!a)
		return;
	while (!LIST_EMPTY(&a->pending))
		conn_free(LIST_FIRST(&a->pending));
	loop_timer_cancel(session_mgr_loop(a->m), &a->rl_flush);
	loop_timer_cancel(session_mgr_loop(a->m), &a->resume);
	if (a->reserve_fd >= 0)
		close(a->reserve_fd);
	if (a->fd >= 0) {
		loop_del(session_mgr_loop(a->m), a->fd);
		close(a->fd);
	}
	unixsock_unlink_ours(a->path, a->dev, a->ino);
	free(a);
}

size_t attach_pending(const struct attach *a)
{
	return a->npending;
}
