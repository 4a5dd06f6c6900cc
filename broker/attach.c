/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "attach.h"
#include "log.h"

/* A connection between accept() and its hello. */
struct conn {
	struct attach *a;
	struct conn *prev, *next;
	int fd;
	struct loop_timer timeout;
};

struct attach {
	struct session_mgr *m;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;               /* identity of the socket file we created */
	ino_t ino;
	struct conn *pending;
	size_t npending;
};

/* Accepts per readiness event: a flood cannot starve the other fds. */
#define ATTACH_ACCEPT_BUDGET 64

/* ------------------------------------------------------------ connections */

static void conn_free(struct conn *c)
{
	struct attach *a = c->a;

	loop_timer_cancel(a->m->loop, &c->timeout);
	if (c->fd >= 0) {
		loop_del(a->m->loop, c->fd);
		close(c->fd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		a->pending = c->next;
	if (c->next)
		c->next->prev = c->prev;
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
static void refuse(struct conn *c, const char *name, const struct ucred *cred,
		   int fds[WIRE_MAX_FDS], const char *reason)
{
	char nb[LOG_VALUE_MAX], rb[LOG_VALUE_MAX];
	struct wire_refuse r;
	struct ucred own;
	socklen_t cl = sizeof(own);

	/* Even a peer refused before its credentials were checked is logged by pid. */
	if (!cred && getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &own, &cl) == 0)
		cred = &own;
	wire_refuse_init(&r, reason);
	(void)wire_send(c->fd, &r, sizeof(r), NULL, 0);
	log_event(LOGL_WARN, "refuse", "name=%s agent_pid=%d uid=%d reason=%s",
		  log_value(nb, sizeof(nb), name ? name : "-"), cred ? (int)cred->pid : -1,
		  cred ? (int)cred->uid : -1, log_value(rb, sizeof(rb), reason));
	c->a->m->refusals++;
	if (fds)
		close_fds(fds);
	conn_free(c);
}

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

/* The namespaces[] entry's netns pin, if any, must be the sockets' namespace. */
static int check_pin(const struct cfg_ns *entry, uint64_t dev, uint64_t ino, char *why,
		     size_t whylen)
{
	struct stat st;

	if (!entry->netns)
		return 0;
	if (stat(entry->netns, &st) < 0) {
		int err = errno;

		snprintf(why, whylen, "namespaces[%zu].netns %s: %s", entry->index,
			 entry->netns, strerror(err));
		return -err;
	}
	if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) {
		snprintf(why, whylen, "the sockets live in network namespace inode %" PRIu64
			 ", not in %s (inode %" PRIu64 ") that namespaces[%zu] pins",
			 ino, entry->netns, (uint64_t)st.st_ino, entry->index);
		return -EXDEV;
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
	const char *name;
	bool hello_ok;

	hello_ok = wire_hello_check(hello, len, nfds, why, sizeof(why)) == 0;
	/* Only a checked hello has a name fit for the log. */
	name = hello_ok ? hello->name : NULL;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		snprintf(why, sizeof(why), "cannot read peer credentials: %s", strerror(errno));
		refuse(c, name, NULL, fds, why);
		return;
	}
	if (!cfg_uid_allowed(m->cfg, cred.uid)) {
		snprintf(why, sizeof(why), "uid %u is not in broker.allow_uids",
			 (unsigned)cred.uid);
		refuse(c, name, &cred, fds, why);
		return;
	}
	if (!hello_ok) {
		refuse(c, NULL, &cred, fds, why);
		return;
	}
	h.name = name;
	h.pid = cred.pid;
	h.uid = cred.uid;
	if (check_fds(fds, nfds, &h.netns_dev, &h.netns_ino, why, sizeof(why)) < 0) {
		refuse(c, name, &cred, fds, why);
		return;
	}
	h.entry = cfg_match(m->cfg, name);
	if (!h.entry) {
		snprintf(why, sizeof(why), "no namespaces entry matches name \"%.160s\"", name);
		refuse(c, name, &cred, fds, why);
		return;
	}
	if (check_pin(h.entry, h.netns_dev, h.netns_ino, why, sizeof(why)) < 0) {
		refuse(c, name, &cred, fds, why);
		return;
	}
	/* From here the session watches the connection as its lease. */
	loop_del(m->loop, c->fd);
	if (session_attach(m, &h, &c->fd, fds, why, sizeof(why)) < 0) {
		refuse(c, name, &cred, fds, why);
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
	if (n == -EBADMSG) {
		/* wire_recv closed whatever fds arrived */
		refuse(c, NULL, NULL, NULL, "message or its fds truncated, or more than 2 fds");
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
	refuse(data, NULL, NULL, NULL, "no hello within 5 s");
}

static void accept_one(struct attach *a, int fd)
{
	struct conn *c;

	if (a->npending >= ATTACH_MAX_PENDING) {
		log_event(LOGL_WARN, "conn_dropped", "reason=\"%zu connections already wait "
			  "for their hello\"", a->npending);
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
	loop_timer_init(&c->timeout, conn_timeout, c);
	c->next = a->pending;
	if (a->pending)
		a->pending->prev = c;
	a->pending = c;
	a->npending++;
	if (loop_add(a->m->loop, fd, EPOLLIN, conn_event, c) < 0 ||
	    loop_timer_arm(a->m->loop, &c->timeout,
			   loop_now_ms() + ATTACH_HELLO_TIMEOUT_MS) < 0) {
		conn_free(c);
		return;
	}
	log_event(LOGL_DEBUG, "conn", "fd=%d pending=%zu", fd, a->npending);
}

static void listener_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct attach *a = data;

	for (int i = 0; i < ATTACH_ACCEPT_BUDGET; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_event(LOGL_WARN, "accept", "error=\"%s\"", strerror(errno));
			return;
		}
		accept_one(a, cfd);
	}
}

/* ------------------------------------------------------------ listener */

static int mkdir_parents(const char *path, char *why, size_t whylen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		int rc;

		*p = '\0';
		rc = mkdir(dir, 0755);
		/* Agents of other uids must reach the socket whatever our umask. */
		if (rc == 0)
			rc = chmod(dir, 0755);
		if (rc < 0 && errno != EEXIST) {
			int err = errno;

			snprintf(why, whylen, "cannot create directory %s: %s", dir, strerror(err));
			return -err;
		}
		*p = saved;
		if (!saved)
			break;
	}
	return 0;
}

/* Whether a server answers at @path: 1 yes, 0 stale, negative errno. */
static int socket_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS || errno == EPROTOTYPE)
		rc = 1;   /* a full backlog or another socket type is alive too */
	else
		rc = errno == ECONNREFUSED ? 0 : -errno;
	close(fd);
	return rc;
}

int attach_prepare_path(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int rc;

	rc = mkdir_parents(path, why, whylen);
	if (rc < 0)
		return rc;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(why, whylen, "cannot use %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	rc = socket_live(path);
	if (rc > 0) {
		snprintf(why, whylen, "another process (a running broker?) listens on %s", path);
		return -EADDRINUSE;
	}
	if (rc < 0) {
		snprintf(why, whylen, "cannot probe %s: %s", path, strerror(-rc));
		return rc;
	}
	/* Left behind by a broker that died: nobody will ever answer there. */
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(why, whylen, "cannot remove stale socket %s: %s", path, strerror(-rc));
		return rc;
	}
	log_event(LOGL_INFO, "stale_socket", "path=%s removed=true", path);
	return 0;
}

int attach_bind_path(const char *path, int type, mode_t mode, int backlog,
		     dev_t *dev, ino_t *ino, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, rc;

	if (!path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	rc = attach_prepare_path(path, why, whylen);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "socket: %s", strerror(-rc));
		return rc;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* Never reachable with wider permissions than asked, not even briefly. */
	old = umask(0777 & ~mode);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot bind %s: %s", path, strerror(-rc));
		goto fail;
	}
	if (chmod(path, mode) < 0 || stat(path, &st) < 0 || listen(fd, backlog) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot set up %s: %s", path, strerror(-rc));
		unlink(path);
		goto fail;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
fail:
	close(fd);
	return rc;
}

void attach_unlink_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (ino && stat(path, &st) == 0 && st.st_ino == ino && st.st_dev == dev)
		unlink(path);
}

struct attach *attach_listen(struct session_mgr *m, const char *path, mode_t mode,
			     char *why, size_t whylen)
{
	struct attach *a = calloc(1, sizeof(*a));
	int rc;

	if (!a) {
		snprintf(why, whylen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	a->m = m;
	a->fd = -1;
	if (strlen(path) >= sizeof(a->path)) {
		snprintf(why, whylen, "socket path too long: %s", path);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->fd = attach_bind_path(path, SOCK_SEQPACKET, mode, SOMAXCONN, &a->dev, &a->ino,
				 why, whylen);
	if (a->fd < 0) {
		rc = a->fd;
		goto fail;
	}
	rc = loop_add(m->loop, a->fd, EPOLLIN, listener_event, a);
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
	while (a->pending)
		conn_free(a->pending);
	if (a->fd >= 0) {
		loop_del(a->m->loop, a->fd);
		close(a->fd);
	}
	attach_unlink_ours(a->path, a->dev, a->ino);
	free(a);
}

size_t attach_pending(const struct attach *a)
{
	return a->npending;
}
