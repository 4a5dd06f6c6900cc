/* SPDX-License-Identifier: MIT */
/*
 * Agent hand-off API: open a namespace's netlink sockets, shed every
 * privilege, and lend the sockets to nfq-broker over its agent socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <nfqb/agent.h>
#include "agent-lookup.h"
#include "wire.h"

/* How long attach waits for the broker's answer (and for connect/send
 * when its backlog or queue is full). */
#define AGENT_ANSWER_MS 10000

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int netlink_open(int proto, unsigned int groups)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = groups };
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -errno;
	/* nl_pid 0 autobinds: the port id is fixed now, before the socket
	 * travels, so every later owner sees the same address. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int open_here(bool rtnl, int fds[2])
{
	fds[0] = netlink_open(NETLINK_NETFILTER, 0);
	if (fds[0] < 0)
		return fds[0];
	if (!rtnl)
		return 1;
	/* RTMGRP_LINK lets the broker follow interface changes in there. */
	fds[1] = netlink_open(NETLINK_ROUTE, RTMGRP_LINK);
	if (fds[1] < 0) {
		int err = fds[1];

		fds[1] = -1;
		close_fd(&fds[0]);
		return err;
	}
	return 2;
}

int nfqb_agent_open_sockets(const char *netns_path, bool rtnl, int fds[2])
{
	int target = -1, home = -1, ret;

	if (!fds)
		return -EINVAL;
	fds[0] = fds[1] = -1;
	if (!netns_path)
		return open_here(rtnl, fds);
	if (!*netns_path)
		return -EINVAL;

	target = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		ret = -errno;
		goto fail;
	}
	/* The thread's own namespace, not the process's: setns() below only
	 * moves this thread. */
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0) {
		ret = -errno;
		goto fail;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = open_here(rtnl, fds);
	if (setns(home, CLONE_NEWNET) < 0) {
		/* Stranded in a foreign namespace: the caller must not go on. */
		int err = -errno;

		close_fd(&fds[0]);
		close_fd(&fds[1]);
		ret = err;
	}
fail:
	close_fd(&target);
	close_fd(&home);
	return ret;
}

/*
 * The capability calls are the kernel's own (prctl, capget, capset), not
 * libcap's: an agent is started for every pod, and loading libcap and its
 * probing of each capability one by one cost more than the drop itself.
 */
static int drop_bounding(void)
{
	for (int c = 0; c < 64; c++) {
		/* Dropped without asking first: one call per capability.
		 * EINVAL: past the last capability this kernel knows. */
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			return 0;
		if (errno != EPERM)
			return -errno;
		/* Without CAP_SETPCAP (a container granting NET_ADMIN alone)
		 * the bounding set stays, unless it is empty already;
		 * no_new_privs and empty permitted/inheritable/ambient sets
		 * still mean no capability can ever come back. */
		for (; c < 64; c++) {
			int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);

			if (in > 0)
				return 1;
			if (in < 0)
				return errno == EINVAL ? 0 : -errno;
		}
		return 0;
	}
	return 0;
}

/* Empty the permitted, effective and inheritable sets and check they are. */
static int clear_sets(int bounding)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return -EPERM;
	return bounding;
}

/* no_new_privs, the bounding set, the ambient set: what needs CAP_SETPCAP
 * goes while the caller still has it. Returns like drop_bounding(). */
static int drop_prelude(void)
{
	int bounding;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	bounding = drop_bounding();
	if (bounding < 0)
		return bounding;
	/* EINVAL: a kernel without ambient capabilities (before 4.3). */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	return bounding;
}

int nfqb_agent_drop_caps(void)
{
	int bounding = drop_prelude();

	return bounding < 0 ? bounding : clear_sets(bounding);
}

/* Whether the caller already is exactly @uid/@gid with no other group. */
static bool ids_are(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[2];
	int n;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return false;
	if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid)
		return false;
	n = getgroups(2, groups);
	return n == 0 || (n == 1 && groups[0] == gid);
}

/* Supplementary groups go too: only @gid is left. */
static int switch_ids(uid_t uid, gid_t gid)
{
	if (ids_are(uid, gid))
		return 0;
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -errno;
	return ids_are(uid, gid) ? 0 : -EPERM;
}

int nfqb_agent_drop_privileges(uid_t uid, gid_t gid)
{
	int bounding, ret;

	if (uid == (uid_t)-1 || gid == (gid_t)-1)
		return -EINVAL;
	bounding = drop_prelude();
	if (bounding < 0)
		return bounding;
	/* Leaving uid 0 empties the permitted and effective sets on its own;
	 * clear_sets() below also covers a caller that was not uid 0. */
	ret = switch_ids(uid, gid);
	return ret < 0 ? ret : clear_sets(bounding);
}

/* getpwnam_r/getgrnam_r and friends want a buffer of unknown size. */
#define LOOKUP_BUF_MAX (1u << 20)

/* agent_lookup_files(): NULL, NULL for NSS */
static const char *files_passwd, *files_group;

void agent_lookup_files(const char *passwd, const char *group)
{
	files_passwd = passwd;
	files_group = group;
}

/* NIS compat lines ("+", "+name", "-name") are no one's name. */
static bool compat_name(const char *name)
{
	return name[0] == '+' || name[0] == '-';
}

/*
 * The passwd file itself, as getpwnam_r()/getpwuid_r() answer: 0 with
 * *@res NULL when no entry matches, or the error as a positive errno, as
 * they return it (ERANGE: a larger buffer).
 */
static int files_getpw(const char *name, uid_t id, bool by_id, struct passwd *pw,
		       char *buf, size_t len, struct passwd **res)
{
	FILE *f = fopen(files_passwd, "re");
	int rc;

	*res = NULL;
	if (!f)
		return errno == ENOENT ? 0 : errno;
	while ((rc = fgetpwent_r(f, pw, buf, len, res)) == 0)
		if (!compat_name((*res)->pw_name) &&
		    (by_id ? (*res)->pw_uid == id : strcmp((*res)->pw_name, name) == 0))
			break;
	fclose(f);
	if (rc == ENOENT) {             /* the end of the file */
		*res = NULL;
		rc = 0;
	}
	return rc;
}

/* The group file itself, as getgrnam_r() answers. */
static int files_getgr(const char *name, struct group *gr, char *buf, size_t len,
		       struct group **res)
{
	FILE *f = fopen(files_group, "re");
	int rc;

	*res = NULL;
	if (!f)
		return errno == ENOENT ? 0 : errno;
	while ((rc = fgetgrent_r(f, gr, buf, len, res)) == 0)
		if (!compat_name((*res)->gr_name) && strcmp((*res)->gr_name, name) == 0)
			break;
	fclose(f);
	if (rc == ENOENT) {
		*res = NULL;
		rc = 0;
	}
	return rc;
}

static int lookup_user(const char *name, uid_t id, bool by_id, struct passwd *pw,
		       char **buf)
{
	struct passwd *res = NULL;
	size_t len = 1024;
	int rc;

	for (;;) {
		char *nb = realloc(*buf, len);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		if (files_passwd)
			rc = files_getpw(name, id, by_id, pw, *buf, len, &res);
		else
			rc = by_id ? getpwuid_r(id, pw, *buf, len, &res)
				   : getpwnam_r(name, pw, *buf, len, &res);
		if (rc != ERANGE || len >= LOOKUP_BUF_MAX)
			break;
		len *= 2;
	}
	if (rc)
		return -rc;
	return res ? 0 : -ENOENT;
}

static int lookup_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char *buf = NULL;
	size_t len = 1024;
	int rc;

	for (;;) {
		char *nb = realloc(buf, len);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		rc = files_group ? files_getgr(name, &gr, buf, len, &res)
				: getgrnam_r(name, &gr, buf, len, &res);
		if (rc != ERANGE || len >= LOOKUP_BUF_MAX)
			break;
		len *= 2;
	}
	if (!rc && res)
		*gid = gr.gr_gid;
	free(buf);
	return rc ? -rc : res ? 0 : -ENOENT;
}

/* A decimal id in 0..4294967294 ((uid_t)-1 means "unchanged" to the kernel). */
static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *out < 0xffffffffUL;
}

static int resolve_group(const char *g, gid_t *gid, char *why, size_t whylen)
{
	unsigned long v;
	int rc;

	if (parse_id(g, &v)) {
		*gid = (gid_t)v;
		return 0;
	}
	if (strspn(g, "0123456789") == strlen(g)) {
		wire_why(why, whylen, "group id %s out of range 0-4294967294", g);
		return -ERANGE;
	}
	rc = lookup_group(g, gid);
	if (rc == -ENOENT)
		wire_why(why, whylen, "unknown group \"%s\"", g);
	else if (rc < 0)
		wire_why(why, whylen, "looking up group \"%s\": %s", g, strerror(-rc));
	return rc;
}

static int resolve_user(const char *u, bool have_group, uid_t *uid, gid_t *gid,
			char *why, size_t whylen)
{
	struct passwd pw;
	char *buf = NULL;
	unsigned long v = 0;
	bool numeric = parse_id(u, &v);
	int rc;

	if (!numeric && strspn(u, "0123456789") == strlen(u)) {
		wire_why(why, whylen, "user id %s out of range 0-4294967294", u);
		return -ERANGE;
	}
	rc = lookup_user(u, (uid_t)v, numeric, &pw, &buf);
	if (rc == 0) {
		*uid = pw.pw_uid;
		*gid = pw.pw_gid;
	} else if (rc == -ENOENT && numeric && have_group) {
		/* A bare uid needs no passwd entry when the group is given. */
		*uid = (uid_t)v;
		rc = 0;
	} else if (rc == -ENOENT && numeric) {
		wire_why(why, whylen, "uid %s has no passwd entry: give its group too (%s:GID)",
			 u, u);
	} else if (rc == -ENOENT) {
		wire_why(why, whylen, "unknown user \"%s\"", u);
	} else {
		wire_why(why, whylen, "looking up user \"%s\": %s", u, strerror(-rc));
	}
	free(buf);
	return rc;
}

int nfqb_agent_lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *why,
			   size_t whylen)
{
	char user[256], *group;
	uid_t u = (uid_t)-1;
	gid_t g = (gid_t)-1;
	int rc;

	if (why && whylen)
		why[0] = '\0';
	if (!spec || !uid || !gid) {
		wire_why(why, whylen, "no user given");
		return -EINVAL;
	}
	if (strlen(spec) >= sizeof(user)) {
		wire_why(why, whylen, "user longer than %zu bytes", sizeof(user) - 1);
		return -ENAMETOOLONG;
	}
	for (const char *p = spec; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p > 0x7e || *p == '"') {
			wire_why(why, whylen, "user has invalid character 0x%02x at offset %zu",
				 (unsigned char)*p, (size_t)(p - spec));
			return -EINVAL;
		}
	snprintf(user, sizeof(user), "%s", spec);
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	if (!*user || (group && !*group)) {
		wire_why(why, whylen, "\"%s\" is not USER or USER:GROUP", spec);
		return -EINVAL;
	}
	rc = resolve_user(user, group != NULL, &u, &g, why, whylen);
	if (rc == 0 && group)
		rc = resolve_group(group, &g, why, whylen);
	if (rc < 0)
		return rc;
	*uid = u;
	*gid = g;
	return 0;
}

static int connect_broker(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = AGENT_ANSWER_MS / 1000 };
	int fd, err;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		wire_why(why, whylen, "socket: %s", strerror(-err));
		return err;
	}
	/* Bounds connect() on a full backlog and send() on a full queue. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memcpy(sa.sun_path, path, strlen(path));
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		err = -errno;
		close(fd);
		switch (err) {
		case -ENOENT:
			wire_why(why, whylen, "no broker socket at %s", path);
			return -ENOENT;
		case -ECONNREFUSED:
			wire_why(why, whylen, "no broker listening at %s", path);
			return -EHOSTDOWN;
		case -EAGAIN:
			wire_why(why, whylen, "broker at %s does not accept connections", path);
			return -ETIMEDOUT;
		default:
			wire_why(why, whylen, "cannot connect to %s: %s", path, strerror(-err));
			return err;
		}
	}
	return fd;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_for(int fd, short events, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		long long left = deadline - now_ms();
		int r = poll(&p, 1, left > 0 ? (int)left : 0);

		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (left <= 0)
			return -ETIMEDOUT;
	}
}

/* Copy the refusal reason as one printable line, whatever the broker sent. */
static void copy_reason(const struct wire_refuse *m, char *why, size_t whylen)
{
	char reason[WIRE_REASON_MAX];
	size_t len = strnlen(m->reason, sizeof(m->reason) - 1);

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)m->reason[i];

		reason[i] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
	}
	reason[len] = '\0';
	wire_why(why, whylen, "%s", len ? reason : "(no reason given)");
}

/* What each hand-off slot holds, both ways. */
static const int sock_protos[WIRE_MAX_FDS] = { NETLINK_NETFILTER, NETLINK_ROUTE };

/* The sockets an ACCEPT carried replace the caller's (or are closed). */
static void swap_fds(int *fds, size_t n, int rfds[WIRE_MAX_FDS], size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		if (fds && i < n) {
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = rfds[i];
		} else if (rfds[i] >= 0) {
			close(rfds[i]);
		}
		rfds[i] = -1;
	}
}

/* Every socket the broker sent back is of the kind its slot holds. */
static int fds_check(const int rfds[WIRE_MAX_FDS], size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (wire_fd_check(rfds[i], sock_protos[i], NULL, 0) < 0)
			return -EPROTO;
	return 0;
}

static int read_answer(int fd, int *fds, size_t n, int answer_ms, char *why,
		       size_t whylen)
{
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_refuse refuse;
		struct wire_accept accept;
	} u;
	int rfds[WIRE_MAX_FDS];
	size_t nr = 0;
	ssize_t len;
	int ret;

	ret = wait_for(fd, POLLIN, answer_ms);
	if (ret < 0) {
		wire_why(why, whylen, "no answer from the broker: %s", strerror(-ret));
		return ret;
	}
	len = wire_recv(fd, u.buf, sizeof(u.buf), rfds, &nr);
	/* A broker that answered and closed before reading our hello resets
	 * the connection; the reset is reported first, the answer after it. */
	if (len == -ECONNRESET)
		len = wire_recv(fd, u.buf, sizeof(u.buf), rfds, &nr);
	if (len > 0 && nr > 0 && !(wire_peek_type(u.buf, (size_t)len) == WIRE_ACCEPT &&
				   (size_t)len == sizeof(u.accept) &&
				   (u.accept.flags & WIRE_ACCEPT_F_SOCKETS))) {
		for (size_t i = 0; i < nr; i++)
			close(rfds[i]);
		wire_why(why, whylen, "malformed answer from the broker");
		return -EPROTO;
	}
	if (len == 0) {
		wire_why(why, whylen, "broker closed the connection without an answer");
		return -ECONNRESET;
	}
	if (len == -EBADMSG) {
		wire_why(why, whylen, "malformed answer from the broker");
		return -EPROTO;
	}
	if (len < 0) {
		wire_why(why, whylen, "receiving the answer: %s", strerror((int)-len));
		return (int)len;
	}
	switch (wire_peek_type(u.buf, (size_t)len)) {
	case WIRE_ACCEPT:
		if (fds_check(rfds, nr) < 0) {
			swap_fds(NULL, 0, rfds, nr);
			wire_why(why, whylen, "broker sent back a socket of the wrong kind");
			return -EPROTO;
		}
		swap_fds(fds, n, rfds, nr);
		return 0;
	case WIRE_REFUSE:
		copy_reason(&u.refuse, why, whylen);
		return wire_refuse_flags(&u.refuse) & WIRE_REFUSE_F_RETRY ? -EAGAIN
									 : -ECONNREFUSED;
	default:
		wire_why(why, whylen, "malformed answer from the broker (%zd bytes)", len);
		return -EPROTO;
	}
}

/* wire_send never blocks: a full broker queue is waited for here, bounded. */
static int send_hello(int fd, const struct wire_hello *hello, const int fds[], size_t n)
{
	long long deadline = now_ms() + AGENT_ANSWER_MS;
	int ret;

	for (;;) {
		ret = wire_send(fd, hello, sizeof(*hello), fds, n);
		if (ret != -EAGAIN || now_ms() >= deadline)
			return ret;
		ret = wait_for(fd, POLLOUT, (int)(deadline - now_ms()));
		if (ret < 0)
			return ret == -ETIMEDOUT ? -EAGAIN : ret;
	}
}

/* Reject locally what the broker would refuse anyway, with a clearer reason. */
static int check_args(const char *path, const char *name, const int fds[], size_t n,
		      struct wire_hello *hello, char *why, size_t whylen)
{
	char r[WIRE_REASON_MAX];
	int ret;

	if (!path || !*path || !name || (n && !fds)) {
		wire_why(why, whylen, "missing broker path, name or fds");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		wire_why(why, whylen, "broker socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	if (n < 1 || n > WIRE_MAX_FDS) {
		wire_why(why, whylen, "%zu fds given, expected 1 or 2", n);
		return -EINVAL;
	}
	if (strlen(name) >= WIRE_NAME_MAX) {
		wire_why(why, whylen, "name longer than %d bytes", WIRE_NAME_MAX - 1);
		return -ENAMETOOLONG;
	}
	for (size_t i = 0; i < n; i++) {
		if (fds[i] < 0) {
			wire_why(why, whylen, "fds[%zu] is %d", i, fds[i]);
			return -EBADF;
		}
		ret = wire_fd_check(fds[i], sock_protos[i], r, sizeof(r));
		if (ret < 0) {
			wire_why(why, whylen, "fds[%zu]: %s", i, r);
			return ret;
		}
	}
	wire_hello_init(hello, name, (uint32_t)getpid(), (uint16_t)n);
	ret = wire_hello_check(hello, sizeof(*hello), n, r, sizeof(r));
	if (ret < 0)
		wire_why(why, whylen, "%s", r);
	return ret < 0 ? -EINVAL : 0;
}

static int attach(const char *broker_path, const char *name, const int fds[],
		  int *swap, size_t n, char *why, size_t whylen)
{
	struct wire_hello hello;
	int fd = -1, ret;

	if (why && whylen)
		why[0] = '\0';
	ret = check_args(broker_path, name, fds, n, &hello, why, whylen);
	if (ret < 0)
		return ret;

	fd = connect_broker(broker_path, why, whylen);
	if (fd < 0)
		return fd;
	ret = send_hello(fd, &hello, fds, n);
	if (ret == -EPIPE || ret == -ECONNRESET) {
		/* A broker refusing at accept() answers and closes before our
		 * hello: its answer is still there to read. */
		ret = read_answer(fd, NULL, 0, 0, why, whylen);
		if (ret == -ECONNREFUSED || ret == -EAGAIN)
			goto fail;
		ret = -ECONNRESET;
	}
	if (ret < 0) {
		if (ret == -EPIPE || ret == -ECONNRESET) {
			wire_why(why, whylen, "broker closed the connection");
			ret = -ECONNRESET;
		} else if (ret == -EAGAIN) {
			wire_why(why, whylen, "broker does not read its socket");
			ret = -ETIMEDOUT;
		} else {
			wire_why(why, whylen, "sending the hello: %s", strerror(-ret));
		}
		goto fail;
	}
	ret = read_answer(fd, swap, n, AGENT_ANSWER_MS, why, whylen);
	if (ret < 0)
		goto fail;
	return fd;
fail:
	close_fd(&fd);
	return ret;
}

int nfqb_agent_attach(const char *broker_path, const char *name,
		      const int fds[], size_t n, char *why, size_t whylen)
{
	return attach(broker_path, name, fds, NULL, n, why, whylen);
}

int nfqb_agent_attach_swap(const char *broker_path, const char *name,
			   int fds[], size_t n, char *why, size_t whylen)
{
	return attach(broker_path, name, fds, fds, n, why, whylen);
}

_Static_assert(NFQB_LEASE_REASON_MAX >= WIRE_REASON_MAX, "a reason fits the event");

/* One record from the lease: what it means for the agent holding it. */
static void lease_event(int *fds, size_t n, const void *buf, ssize_t len,
			int rfds[WIRE_MAX_FDS], size_t nr, struct nfqb_lease_event *ev)
{
	const struct wire_accept *acc = buf;
	int type = len > 0 ? wire_peek_type(buf, (size_t)len) : -1;

	if (len <= 0) {
		ev->kind = NFQB_LEASE_CLOSED;
		ev->err = (int)len;
	} else if (type == WIRE_REFUSE) {
		ev->kind = NFQB_LEASE_REFUSED;
		ev->retry = wire_refuse_flags(buf) & WIRE_REFUSE_F_RETRY;
		copy_reason(buf, ev->reason, sizeof(ev->reason));
	} else if (type == WIRE_ACCEPT && (size_t)len == sizeof(*acc) && nr > 0 &&
		   (acc->flags & WIRE_ACCEPT_F_SOCKETS) && fds_check(rfds, nr) == 0) {
		ev->kind = NFQB_LEASE_SOCKETS;
		swap_fds(fds, n, rfds, nr);
	} else {
		ev->kind = NFQB_LEASE_OTHER;
		ev->msg_type = type;
		ev->msg_len = (size_t)len;
	}
	swap_fds(NULL, 0, rfds, nr);
}

int nfqb_agent_lease_wait(int lease_fd, int timeout_ms, int fds[], size_t n,
			  struct nfqb_lease_event *ev)
{
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_refuse refuse;
		struct wire_accept accept;
	} u;
	int rfds[WIRE_MAX_FDS] = { -1, -1 };
	struct pollfd p = { .fd = lease_fd, .events = POLLIN };
	size_t nr = 0;
	ssize_t len;
	int r;

	if (lease_fd < 0 || !ev || (n && !fds) || n > WIRE_MAX_FDS)
		return -EINVAL;
	memset(ev, 0, sizeof(*ev));
	r = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	len = wire_recv(lease_fd, u.buf, sizeof(u.buf), rfds, &nr);
	if (len == -EAGAIN)
		return 0;
	lease_event(fds, n, u.buf, len, rfds, nr, ev);
	return 1;
}

void nfqb_agent_detach(int lease_fd)
{
	struct wire_bye bye;

	if (lease_fd < 0)
		return;
	wire_bye_init(&bye);
	/* Best effort: a broker too busy to take one small record still sees
	 * the EOF and ends the lease after its grace period. */
	(void)send(lease_fd, &bye, sizeof(bye), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(lease_fd);
}
