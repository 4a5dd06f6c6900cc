/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/agent.c: sockets opened in (another) namespace,
 * capability drop, and attach against an in-test fake broker (a forked
 * child serving one connection on a temporary path socket).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/capability.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <nfqb/agent.h>
#include "agent-lookup.h"
#include "wire.h"
#include "nfq-msg.h"

#define NAME "test/pod-a"

static int count_fds(void)
{
	int n = tmsg_count_fds();

	assert_true(n >= 0);
	return n;
}

static uint64_t self_netns(void)
{
	struct stat st;

	assert_int_equal(stat("/proc/thread-self/ns/net", &st), 0);
	return st.st_ino;
}

static void close_socks(int fds[2])
{
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* ---- open_sockets ---- */

static void check_netlink(int fd, int proto, uint32_t groups)
{
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);
	char why[WIRE_REASON_MAX];

	assert_int_equal(wire_fd_check(fd, proto, why, sizeof(why)), 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	assert_int_not_equal(sa.nl_pid, 0);   /* bound: the port id is fixed */
	assert_int_equal(sa.nl_groups, groups);
}

static void test_open_current(void **state)
{
	int fds[2] = { 77, 77 }, before = count_fds();
	uint64_t ino;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	check_netlink(fds[0], NETLINK_NETFILTER, 0);
	check_netlink(fds[1], NETLINK_ROUTE, RTMGRP_LINK);
	if (wire_fd_netns(fds[0], NULL, &ino) == 0)
		assert_true(ino == self_netns());
	close_socks(fds);

	assert_int_equal(nfqb_agent_open_sockets(NULL, false, fds), 1);
	check_netlink(fds[0], NETLINK_NETFILTER, 0);
	assert_int_equal(fds[1], -1);
	close_socks(fds);
	assert_int_equal(count_fds(), before);
}

static void test_open_bad(void **state)
{
	int fds[2] = { 77, 77 }, before = count_fds();
	uint64_t home = self_netns();

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets("/nonexistent/netns", true, fds), -ENOENT);
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	assert_int_equal(nfqb_agent_open_sockets("", true, fds), -EINVAL);
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, NULL), -EINVAL);
	if (geteuid() == 0) {
		/* Not a network namespace: setns refuses, we stay home. */
		fds[0] = fds[1] = 77;
		assert_int_equal(nfqb_agent_open_sockets("/proc/self/ns/uts", true, fds), -EINVAL);
		assert_int_equal(fds[0], -1);
		assert_int_equal(fds[1], -1);
		assert_int_equal(nfqb_agent_open_sockets("/proc/self/stat", false, fds), -EINVAL);
	}
	assert_true(self_netns() == home);
	assert_int_equal(count_fds(), before);
}

struct netns {
	char name[64];
	char path[128];
};

static int netns_setup(void **state)
{
	static struct netns ns;
	char cmd[256];

	if (geteuid() != 0)
		return 0;
	snprintf(ns.name, sizeof(ns.name), "nfqbt-agent-%d", (int)getpid());
	snprintf(ns.path, sizeof(ns.path), "/run/netns/%s", ns.name);
	snprintf(cmd, sizeof(cmd), "ip netns add %s 2>/dev/null", ns.name);
	if (system(cmd) == 0)
		*state = &ns;
	return 0;
}

static int netns_teardown(void **state)
{
	struct netns *ns = *state;
	char cmd[256];

	if (ns) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns->name);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static void test_open_other_netns(void **state)
{
	struct netns *ns = *state;
	int fds[2] = { -1, -1 }, before;
	uint64_t home, ino;
	struct stat st;

	if (!ns)
		skip();   /* needs root and `ip netns` */
	before = count_fds();
	home = self_netns();
	assert_int_equal(stat(ns->path, &st), 0);
	assert_true(st.st_ino != home);

	assert_int_equal(nfqb_agent_open_sockets(ns->path, true, fds), 2);
	assert_true(self_netns() == home);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(wire_fd_netns(fds[i], NULL, &ino), 0);
		assert_true(ino == st.st_ino);
	}
	check_netlink(fds[0], NETLINK_NETFILTER, 0);
	check_netlink(fds[1], NETLINK_ROUTE, RTMGRP_LINK);
	close_socks(fds);

	/* A socket opened afterwards is back in our own namespace. */
	fds[0] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	assert_true(fds[0] >= 0);
	assert_int_equal(wire_fd_netns(fds[0], NULL, &ino), 0);
	assert_true(ino == home);
	close(fds[0]);
	assert_int_equal(count_fds(), before);
}

/* ---- drop_caps (in a child: it cannot be undone) ---- */

static int status_field_is(const char *key, const char *want)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	int ok = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		size_t kl = strlen(key);

		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *v = line + kl + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			ok = strcmp(v, want) == 0;
		}
	}
	fclose(f);
	return ok;
}

static void test_drop_caps(void **state)
{
	static const char *const zero[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int code = 0, s;

		if (nfqb_agent_drop_caps() != 0)
			_exit(10);
		for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
			if (!status_field_is(zero[i], "0000000000000000"))
				code |= 1 << i;
		if (!status_field_is("NoNewPrivs", "1"))
			code |= 32;
		/* A privileged operation now fails, even as uid 0. */
		s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 1);
		if (s >= 0 || errno != EPERM)
			code |= 64;
		/* Dropping again (nothing left) succeeds. */
		if (nfqb_agent_drop_caps() != 0)
			code |= 128;
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Without CAP_SETPCAP (a container granting NET_ADMIN alone) the bounding
 * set cannot be emptied: everything else still goes, and 1 says so. */
static void test_drop_caps_without_setpcap(void **state)
{
	static const char *const zero[] = { "CapInh", "CapPrm", "CapEff", "CapAmb" };
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cap_value_t keep = CAP_NET_ADMIN;
		cap_t only = cap_init();
		int code = 0;

		cap_set_flag(only, CAP_EFFECTIVE, 1, &keep, CAP_SET);
		cap_set_flag(only, CAP_PERMITTED, 1, &keep, CAP_SET);
		if (cap_set_proc(only) < 0)
			_exit(20);
		if (nfqb_agent_drop_caps() != 1)
			_exit(10);
		for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
			if (!status_field_is(zero[i], "0000000000000000"))
				code |= 1 << i;
		if (status_field_is("CapBnd", "0000000000000000"))
			code |= 16;   /* it could not have been dropped */
		if (!status_field_is("NoNewPrivs", "1"))
			code |= 32;
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- attach against a fake broker ---- */

enum fake_mode {
	FAKE_ACCEPT,       /* accept, then report BYE (0) or EOF (3) */
	FAKE_REFUSE,       /* refuse with the reason */
	FAKE_CLOSE,        /* close without an answer */
	FAKE_GARBAGE,      /* a short junk record */
	FAKE_ACCEPT_FD,    /* an accept with an fd attached */
	FAKE_SILENT,       /* never accept: the connection stays in the backlog */
	FAKE_GIVE,         /* accept handing back sockets of its own (takeover) */
	FAKE_GIVE_WRONG,   /* the same, but a pipe where a socket belongs */
	FAKE_REFUSE_RETRY, /* refuse with the reason, retryable */
	FAKE_REFUSE_EARLY, /* the same at accept(), without reading the hello */
};

/* A bound netlink socket of @proto, as a broker would hand back. */
static int nl_socket(int proto)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint32_t portid_of(int fd)
{
	struct sockaddr_nl sa = { 0 };
	socklen_t len = sizeof(sa);

	return getsockname(fd, (struct sockaddr *)&sa, &len) == 0 ? sa.nl_pid : 0;
}

static int fake_give(int c, bool wrong)
{
	int give[2] = { nl_socket(NETLINK_NETFILTER), nl_socket(NETLINK_ROUTE) }, p[2];
	struct wire_accept acc;

	if (wrong && pipe(p) == 0)
		give[1] = p[0];
	wire_accept_init(&acc, 1, 1);
	acc.flags = WIRE_ACCEPT_F_SOCKETS;
	return give[0] < 0 || give[1] < 0 || wire_send(c, &acc, sizeof(acc), give, 2) ? 25 : 0;
}

struct fake {
	char dir[64];
	char path[128];
	int lfd;
	pid_t pid;
};

/* Child side: exit 0 when everything it saw was right (and, for accept,
 * the lease ended with BYE), 3 for a lease ended by EOF, else a failure. */
static int fake_serve(int lfd, enum fake_mode mode, const char *reason, size_t want_nfds)
{
	char buf[WIRE_MSG_MAX], why[WIRE_REASON_MAX];
	struct pollfd p = { .events = POLLIN };
	struct wire_accept acc;
	struct wire_refuse ref;
	int fds[WIRE_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;
	int c;

	c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return 20;
	if (mode == FAKE_REFUSE_EARLY) {
		wire_refuse_init_flags(&ref, reason, WIRE_REFUSE_F_RETRY);
		return wire_send(c, &ref, sizeof(ref), NULL, 0) ? 25 : 0;
	}
	/* wire_recv() never blocks and accept() returns at the agent's
	 * connect(), before its hello is sent: wait for the hello. */
	p.fd = c;
	if (poll(&p, 1, 10000) != 1)
		return 28;
	n = wire_recv(c, buf, sizeof(buf), fds, &nfds);
	if (n <= 0 || wire_hello_check(buf, (size_t)n, nfds, why, sizeof(why)) != 0)
		return 21;
	if (nfds != want_nfds || strcmp(((struct wire_hello *)buf)->name, NAME) != 0)
		return 22;
	if (wire_fd_check(fds[0], NETLINK_NETFILTER, why, sizeof(why)) != 0)
		return 23;
	if (nfds == 2 && wire_fd_check(fds[1], NETLINK_ROUTE, why, sizeof(why)) != 0)
		return 24;
	switch (mode) {
	case FAKE_REFUSE:
	case FAKE_REFUSE_RETRY:
		wire_refuse_init_flags(&ref, reason,
				       mode == FAKE_REFUSE_RETRY ? WIRE_REFUSE_F_RETRY : 0);
		return wire_send(c, &ref, sizeof(ref), NULL, 0) ? 25 : 0;
	case FAKE_CLOSE:
		return 0;
	case FAKE_GARBAGE:
		return send(c, "xyz", 3, 0) == 3 ? 0 : 25;
	case FAKE_ACCEPT_FD:
		wire_accept_init(&acc, 1, 1);
		return wire_send(c, &acc, sizeof(acc), fds, 1) ? 25 : 0;
	case FAKE_GIVE:
	case FAKE_GIVE_WRONG:
		return fake_give(c, mode == FAKE_GIVE_WRONG);
	default:
		break;
	}
	wire_accept_init(&acc, 1, 1);
	if (wire_send(c, &acc, sizeof(acc), NULL, 0) != 0)
		return 25;
	p.fd = c;
	if (poll(&p, 1, 10000) != 1)
		return 26;
	n = wire_recv(c, buf, sizeof(buf), fds, &nfds);
	if (n == 0)
		return 3;
	return wire_peek_type(buf, (size_t)(n > 0 ? n : 0)) == WIRE_BYE ? 0 : 27;
}

/* The fake broker of the running test, so that teardown can remove it
 * when an assertion ended the test early (hence tests keep theirs static:
 * a failed assertion leaves the test's stack frame). */
static struct fake *live_fake;

static void fake_bind(struct fake *f, bool listening)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	live_fake = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/nfqbt-agent-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/agent.sock", f->dir);
	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	strcpy(sa.sun_path, f->path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listening)
		assert_int_equal(listen(f->lfd, 4), 0);
	f->pid = -1;
}

static void fake_start(struct fake *f, enum fake_mode mode, const char *reason,
		       size_t want_nfds)
{
	fake_bind(f, true);
	if (mode == FAKE_SILENT)
		return;
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0)
		_exit(fake_serve(f->lfd, mode, reason, want_nfds));
}

/* Nobody connected to the fake broker (a rejected call touched nothing). */
static void fake_untouched(struct fake *f)
{
	struct pollfd p = { .fd = f->lfd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 0), 0);
}

/* Returns the child's exit code (or -1 without a child). */
static int fake_finish(struct fake *f)
{
	int status = 0, code = -1;

	if (f->pid > 0) {
		assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
		assert_true(WIFEXITED(status));
		code = WEXITSTATUS(status);
	}
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	live_fake = NULL;
	return code;
}

static int fake_teardown(void **state)
{
	struct fake *f = live_fake;

	(void)state;
	if (!f)
		return 0;
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	live_fake = NULL;
	return 0;
}

static void test_attach_accept_bye(void **state)
{
	char why[WIRE_REASON_MAX] = "stale";
	int fds[2], before, lease;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	fake_start(&f, FAKE_ACCEPT, NULL, 2);
	before = count_fds();
	lease = nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why));
	assert_true(lease >= 0);
	assert_string_equal(why, "");
	assert_true(fcntl(lease, F_GETFD) & FD_CLOEXEC);
	/* The caller keeps its sockets. */
	check_netlink(fds[0], NETLINK_NETFILTER, 0);
	nfqb_agent_detach(lease);
	assert_int_equal(fake_finish(&f), 0);
	assert_int_equal(count_fds(), before - 1);   /* minus the listener */
	nfqb_agent_detach(-1);
	close_socks(fds);
}

static void test_attach_accept_eof(void **state)
{
	int fds[2], lease;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, false, fds), 1);
	fake_start(&f, FAKE_ACCEPT, NULL, 1);
	lease = nfqb_agent_attach(f.path, NAME, fds, 1, NULL, 0);
	assert_true(lease >= 0);
	close(lease);
	assert_int_equal(fake_finish(&f), 3);
	close_socks(fds);
}

static void test_attach_refused(void **state)
{
	char why[WIRE_REASON_MAX];
	int fds[2], before;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	fake_start(&f, FAKE_REFUSE, "namespace test/pod-a: no entry matches", 2);
	before = count_fds();
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why)),
			 -ECONNREFUSED);
	assert_string_equal(why, "namespace test/pod-a: no entry matches");
	assert_int_equal(fake_finish(&f), 0);
	assert_int_equal(count_fds(), before - 1);

	/* A reason longer than the caller's buffer is cut, not overflowed. */
	fake_start(&f, FAKE_REFUSE, "0123456789abcdef", 2);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, 8), -ECONNREFUSED);
	assert_string_equal(why, "0123456");
	assert_int_equal(fake_finish(&f), 0);
	close_socks(fds);
}

/* A passing refusal (broker out of fds, too many pending) is -EAGAIN. */
static void test_attach_refused_retry(void **state)
{
	char why[WIRE_REASON_MAX];
	int fds[2], before;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	before = count_fds();
	fake_start(&f, FAKE_REFUSE_RETRY, "broker out of fds, try again", 2);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why)), -EAGAIN);
	assert_string_equal(why, "broker out of fds, try again");
	assert_int_equal(fake_finish(&f), 0);
	/* Refused at accept(), before the broker read anything. */
	fake_start(&f, FAKE_REFUSE_EARLY, "uid 0 has 8 connections waiting", 2);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why)), -EAGAIN);
	assert_string_equal(why, "uid 0 has 8 connections waiting");
	assert_int_equal(fake_finish(&f), 0);
	assert_int_equal(count_fds(), before);
	close_socks(fds);
}

static void test_attach_broken_broker(void **state)
{
	char why[WIRE_REASON_MAX];
	int fds[2], before;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	before = count_fds();

	fake_start(&f, FAKE_CLOSE, NULL, 2);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why)),
			 -ECONNRESET);
	assert_string_equal(why, "broker closed the connection without an answer");
	assert_int_equal(fake_finish(&f), 0);

	fake_start(&f, FAKE_GARBAGE, NULL, 2);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "malformed answer from the broker (3 bytes)");
	assert_int_equal(fake_finish(&f), 0);

	fake_start(&f, FAKE_ACCEPT_FD, NULL, 2);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "malformed answer from the broker");
	assert_int_equal(fake_finish(&f), 0);

	assert_int_equal(count_fds(), before);
	close_socks(fds);
}

/* A takeover: the broker hands back the sockets that hold the queues. */
static void test_attach_swap(void **state)
{
	char why[WIRE_REASON_MAX];
	int fds[2], lease, before;
	uint32_t own[2];
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	own[0] = portid_of(fds[0]);
	own[1] = portid_of(fds[1]);
	before = count_fds();

	/* The plain call keeps the caller's sockets and closes what came. */
	fake_start(&f, FAKE_GIVE, NULL, 2);
	lease = nfqb_agent_attach(f.path, NAME, fds, 2, why, sizeof(why));
	assert_true(lease >= 0);
	close(lease);
	assert_int_equal(fake_finish(&f), 0);
	assert_int_equal(count_fds(), before);
	assert_int_equal(portid_of(fds[0]), own[0]);

	/* _swap puts them in place of the caller's, which it closes. */
	fake_start(&f, FAKE_GIVE, NULL, 2);
	lease = nfqb_agent_attach_swap(f.path, NAME, fds, 2, why, sizeof(why));
	assert_true(lease >= 0);
	close(lease);
	assert_int_equal(fake_finish(&f), 0);
	assert_int_equal(count_fds(), before);
	assert_int_not_equal(portid_of(fds[0]), own[0]);
	assert_int_not_equal(portid_of(fds[1]), own[1]);
	assert_int_equal(wire_fd_check(fds[0], NETLINK_NETFILTER, why, sizeof(why)), 0);
	assert_int_equal(wire_fd_check(fds[1], NETLINK_ROUTE, why, sizeof(why)), 0);
	own[0] = portid_of(fds[0]);

	/* Something else than sockets: refused, the caller's fds untouched. */
	fake_start(&f, FAKE_GIVE_WRONG, NULL, 2);
	assert_int_equal(nfqb_agent_attach_swap(f.path, NAME, fds, 2, why, sizeof(why)),
			 -EPROTO);
	assert_string_equal(why, "broker sent back a socket of the wrong kind");
	assert_int_equal(fake_finish(&f), 0);
	assert_int_equal(count_fds(), before);
	assert_int_equal(portid_of(fds[0]), own[0]);
	close_socks(fds);
}

static void test_attach_no_broker(void **state)
{
	char why[WIRE_REASON_MAX], want[WIRE_REASON_MAX + 64];
	int fds[2], before;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, false, fds), 1);
	before = count_fds();
	assert_int_equal(nfqb_agent_attach("/nonexistent/agent.sock", NAME, fds, 1,
					   why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "no broker socket at /nonexistent/agent.sock");
	assert_int_equal(count_fds(), before);

	/* The socket file is there but nothing listens (a crashed broker). */
	fake_bind(&f, false);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 1, why, sizeof(why)), -EHOSTDOWN);
	snprintf(want, sizeof(want), "no broker listening at %s", f.path);
	assert_string_equal(why, want);
	fake_finish(&f);

	/* A regular file where the socket should be. */
	fake_bind(&f, false);
	close(f.lfd);
	f.lfd = -1;
	unlink(f.path);
	close(open(f.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 1, why, sizeof(why)), -EHOSTDOWN);
	fake_finish(&f);
	assert_int_equal(count_fds(), before);
	close_socks(fds);
}

static void test_attach_bad_args(void **state)
{
	char why[WIRE_REASON_MAX], longname[WIRE_NAME_MAX + 1], longpath[200];
	int fds[2], p[2], bad[2], before;
	static struct fake f;

	(void)state;
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, fds), 2);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fake_start(&f, FAKE_SILENT, NULL, 0);
	before = count_fds();

	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 0, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "0 fds given, expected 1 or 2");
	assert_int_equal(nfqb_agent_attach(f.path, NAME, fds, 3, why, sizeof(why)), -EINVAL);
	assert_int_equal(nfqb_agent_attach(f.path, NAME, NULL, 1, why, sizeof(why)), -EINVAL);
	assert_int_equal(nfqb_agent_attach(NULL, NAME, fds, 1, why, sizeof(why)), -EINVAL);
	assert_int_equal(nfqb_agent_attach("", NAME, fds, 1, why, sizeof(why)), -EINVAL);
	assert_int_equal(nfqb_agent_attach(f.path, NULL, fds, 1, why, sizeof(why)), -EINVAL);

	bad[0] = -1;
	bad[1] = fds[1];
	assert_int_equal(nfqb_agent_attach(f.path, NAME, bad, 2, why, sizeof(why)), -EBADF);
	assert_string_equal(why, "fds[0] is -1");
	bad[0] = fds[0];
	bad[1] = -5;
	assert_int_equal(nfqb_agent_attach(f.path, NAME, bad, 2, why, sizeof(why)), -EBADF);
	bad[0] = p[0];
	assert_int_equal(nfqb_agent_attach(f.path, NAME, bad, 1, why, sizeof(why)), -ENOTSOCK);
	assert_string_equal(why, "fds[0]: not a socket");
	bad[0] = fds[1];   /* NETLINK_ROUTE where NETLINK_NETFILTER belongs */
	assert_int_equal(nfqb_agent_attach(f.path, NAME, bad, 1, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	assert_string_equal(why, "fds[0]: netlink protocol 0 is not NETLINK_NETFILTER (12)");
	bad[0] = fds[0];
	bad[1] = fds[0];
	assert_int_equal(nfqb_agent_attach(f.path, NAME, bad, 2, why, sizeof(why)),
			 -EPROTONOSUPPORT);

	assert_int_equal(nfqb_agent_attach(f.path, "", fds, 1, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "name is empty");
	assert_int_equal(nfqb_agent_attach(f.path, "pod a", fds, 1, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "name has invalid character 0x20 at offset 3");
	assert_int_equal(nfqb_agent_attach(f.path, "a=b", fds, 1, NULL, 0), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(nfqb_agent_attach(f.path, longname, fds, 1, why, sizeof(why)),
			 -ENAMETOOLONG);
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(nfqb_agent_attach(longpath, NAME, fds, 1, why, sizeof(why)),
			 -ENAMETOOLONG);

	/* None of that reached the broker or leaked an fd; the sockets are fine. */
	fake_untouched(&f);
	assert_int_equal(count_fds(), before);
	check_netlink(fds[0], NETLINK_NETFILTER, 0);
	check_netlink(fds[1], NETLINK_ROUTE, RTMGRP_LINK);
	fake_finish(&f);
	close(p[0]);
	close(p[1]);
	close_socks(fds);
}

/* ---- lease_wait ---- */

/* A lease without a broker: the test writes the broker's end. */
static void lease_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_lease_wait_nothing(void **state)
{
	struct nfqb_lease_event ev;
	int sv[2], before = count_fds();
	struct timespec t0, t1;

	(void)state;
	lease_pair(sv);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 0, NULL, 0, &ev), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 50, NULL, 0, &ev), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 40);
	assert_int_equal(nfqb_agent_lease_wait(-1, 0, NULL, 0, &ev), -EINVAL);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 0, NULL, 0, NULL), -EINVAL);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 0, NULL, 1, &ev), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(count_fds(), before);
}

static void test_lease_wait_refused(void **state)
{
	struct nfqb_lease_event ev;
	struct wire_refuse r;
	int sv[2];

	(void)state;
	lease_pair(sv);
	wire_refuse_init_flags(&r, "out of fds", WIRE_REFUSE_F_RETRY);
	assert_int_equal(wire_send(sv[1], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, NULL, 0, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_REFUSED);
	assert_true(ev.retry);
	assert_string_equal(ev.reason, "out of fds");

	/* A final refusal; a control character never reaches the caller. */
	wire_refuse_init(&r, "policy removed");
	r.reason[6] = '\x7f';
	assert_int_equal(wire_send(sv[1], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, NULL, 0, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_REFUSED);
	assert_false(ev.retry);
	assert_string_equal(ev.reason, "policy?removed");
	close(sv[0]);
	close(sv[1]);
}

static void test_lease_wait_closed(void **state)
{
	struct nfqb_lease_event ev;
	int sv[2];

	(void)state;
	lease_pair(sv);
	close(sv[1]);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, NULL, 0, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_CLOSED);
	assert_int_equal(ev.err, 0);
	close(sv[0]);
}

static void test_lease_wait_other(void **state)
{
	struct nfqb_lease_event ev;
	struct wire_bye bye;
	char junk[7] = "garbage";
	int sv[2], pipefd[2], before = count_fds();

	(void)state;
	lease_pair(sv);
	wire_bye_init(&bye);
	assert_int_equal(wire_send(sv[1], &bye, sizeof(bye), NULL, 0), 0);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, NULL, 0, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_OTHER);
	assert_int_equal(ev.msg_type, WIRE_BYE);
	assert_int_equal(ev.msg_len, sizeof(bye));

	/* Garbage with an fd attached: reported, the fd not leaked. */
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(wire_send(sv[1], junk, sizeof(junk), &pipefd[0], 1), 0);
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, NULL, 0, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_OTHER);
	assert_int_equal(ev.msg_type, -1);
	assert_int_equal(ev.msg_len, sizeof(junk));
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(count_fds(), before);
}

static void test_lease_wait_sockets(void **state)
{
	struct nfqb_lease_event ev;
	struct wire_accept acc;
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);
	int sv[2], mine[2], theirs[2], bad[2], before = count_fds();
	uint32_t their_port;

	(void)state;
	lease_pair(sv);
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, mine), 2);
	assert_int_equal(nfqb_agent_open_sockets(NULL, true, theirs), 2);
	assert_int_equal(getsockname(theirs[0], (struct sockaddr *)&sa, &len), 0);
	their_port = sa.nl_pid;
	wire_accept_init(&acc, 0, 1);
	acc.flags = WIRE_ACCEPT_F_SOCKETS;

	/* Sockets of the wrong kind are closed, the caller's stay. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, bad), 0);
	assert_int_equal(wire_send(sv[1], &acc, sizeof(acc), bad, 2), 0);
	close(bad[0]);
	close(bad[1]);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, mine, 2, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_OTHER);
	assert_int_equal(ev.msg_type, WIRE_ACCEPT);
	check_netlink(mine[0], NETLINK_NETFILTER, 0);

	assert_int_equal(wire_send(sv[1], &acc, sizeof(acc), theirs, 2), 0);
	close_socks(theirs);
	assert_int_equal(nfqb_agent_lease_wait(sv[0], 1000, mine, 2, &ev), 1);
	assert_int_equal(ev.kind, NFQB_LEASE_SOCKETS);
	check_netlink(mine[0], NETLINK_NETFILTER, 0);
	check_netlink(mine[1], NETLINK_ROUTE, RTMGRP_LINK);
	len = sizeof(sa);
	assert_int_equal(getsockname(mine[0], (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(sa.nl_pid, their_port);
	close_socks(mine);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------ lookups */

#define WHY_LEN 256

struct lookup {
	int rc;
	uid_t uid;
	gid_t gid;
	char why[WHY_LEN];
};

/* @spec resolved from the files @passwd and @group (NULL, NULL: NSS). */
static void lookup_in(const char *passwd, const char *group, const char *spec,
		      struct lookup *r)
{
	r->uid = (uid_t)-1;
	r->gid = (gid_t)-1;
	agent_lookup_files(passwd, group);
	r->rc = nfqb_agent_lookup_user(spec, &r->uid, &r->gid, r->why, sizeof(r->why));
	agent_lookup_files(NULL, NULL);
}

/* The system's files and NSS agree on @spec. */
static void expect_same(const char *spec)
{
	struct lookup nss, files;

	lookup_in(NULL, NULL, spec, &nss);
	lookup_in("/etc/passwd", "/etc/group", spec, &files);
	if (nss.rc != files.rc || nss.uid != files.uid || nss.gid != files.gid)
		fail_msg("%s: NSS %d %u:%u, files %d %u:%u (%s)", spec, nss.rc,
			 (unsigned)nss.uid, (unsigned)nss.gid, files.rc, (unsigned)files.uid,
			 (unsigned)files.gid, files.why);
	assert_int_equal(files.rc, 0);
}

/*
 * The static agent's lookups (lib/agent-lookup.h) find every user and
 * group of the system's files, by name and by id, as NSS does (Debian's
 * nsswitch.conf reads the files first). The entries come from the files
 * themselves, not getpwent(): NSS may list users the files do not have.
 */
static void test_lookup_files_system(void **state)
{
	char spec[300];
	struct passwd *pw;
	struct group *gr;
	int users = 0, groups = 0;
	FILE *f = fopen("/etc/passwd", "re");

	assert_non_null(f);
	while ((pw = fgetpwent(f))) {
		if (strlen(pw->pw_name) > 200 || pw->pw_name[0] == '+' || pw->pw_name[0] == '-')
			continue;
		expect_same(pw->pw_name);
		snprintf(spec, sizeof(spec), "%u", (unsigned)pw->pw_uid);
		expect_same(spec);
		users++;
	}
	fclose(f);
	f = fopen("/etc/group", "re");
	assert_non_null(f);
	while ((gr = fgetgrent(f))) {
		if (strlen(gr->gr_name) > 200 || gr->gr_name[0] == '+' || gr->gr_name[0] == '-')
			continue;
		snprintf(spec, sizeof(spec), "0:%s", gr->gr_name);
		expect_same(spec);
		groups++;
	}
	fclose(f);
	/* root and nobody at least: the loops above read the files */
	assert_true(users >= 2);
	assert_true(groups >= 2);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/*
 * The files are read, not NSS: users and groups only a fixture has, a
 * group line longer than the first buffer (the ERANGE retry), a comment
 * and a malformed line passed over, NIS compat entries that are no one,
 * the errors for what is not there, and no files at all.
 */
static void test_lookup_files_fixture(void **state)
{
	char dir[] = "/tmp/nfqb-lookup-XXXXXX", pw[64], gr[64], big[4096];
	struct lookup r;
	size_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(pw, sizeof(pw), "%s/passwd", dir);
	snprintf(gr, sizeof(gr), "%s/group", dir);
	write_file(pw, "# a comment\n"
		       "this line is not an entry\n"
		       "+nfqb-compat:x:0:0:::\n"
		       "+::::::\n"
		       "nfqb-only-here:x:4101:4102::/nonexistent:/usr/sbin/nologin\n");
	n = (size_t)snprintf(big, sizeof(big), "nfqb-big:x:4104:");
	while (n < 3000)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "member%zu,", n);
	snprintf(big + n - 1, sizeof(big) - n + 1, "\n+nfqb-compat-g:x:0:\n");
	write_file(gr, big);

	/* NSS does not know the fixture's user: the answer is the files' */
	lookup_in(NULL, NULL, "nfqb-only-here", &r);
	assert_int_equal(r.rc, -ENOENT);
	lookup_in(pw, gr, "nfqb-only-here", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.uid, 4101);
	assert_int_equal(r.gid, 4102);
	lookup_in(pw, gr, "4101", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.gid, 4102);
	lookup_in(pw, gr, "nfqb-only-here:nfqb-big", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.gid, 4104);
	/* compat lines name no one, and never uid 0 */
	lookup_in(pw, gr, "+nfqb-compat", &r);
	assert_int_equal(r.rc, -ENOENT);
	assert_string_equal(r.why, "unknown user \"+nfqb-compat\"");
	lookup_in(pw, gr, "+", &r);
	assert_int_equal(r.rc, -ENOENT);
	lookup_in(pw, gr, "4101:+nfqb-compat-g", &r);
	assert_int_equal(r.rc, -ENOENT);
	assert_string_equal(r.why, "unknown group \"+nfqb-compat-g\"");
	lookup_in(pw, gr, "root", &r);
	assert_int_equal(r.rc, -ENOENT);
	assert_string_equal(r.why, "unknown user \"root\"");
	lookup_in(pw, gr, "4000000000", &r);
	assert_int_equal(r.rc, -ENOENT);
	assert_string_equal(r.why, "uid 4000000000 has no passwd entry: give its group "
				   "too (4000000000:GID)");
	lookup_in(pw, gr, "4000000000:7", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.uid, 4000000000u);
	assert_int_equal(r.gid, 7);

	assert_int_equal(unlink(pw), 0);
	assert_int_equal(unlink(gr), 0);
	/* no files: no one, as NSS answers for a missing database */
	lookup_in(pw, gr, "nfqb-only-here", &r);
	assert_int_equal(r.rc, -ENOENT);
	lookup_in(pw, gr, "0:nfqb-big", &r);
	assert_int_equal(r.rc, -ENOENT);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_current),
		cmocka_unit_test(test_open_bad),
		cmocka_unit_test_setup_teardown(test_open_other_netns, netns_setup, netns_teardown),
		cmocka_unit_test(test_drop_caps),
		cmocka_unit_test(test_drop_caps_without_setpcap),
		cmocka_unit_test(test_attach_swap),
		cmocka_unit_test_teardown(test_attach_accept_bye, fake_teardown),
		cmocka_unit_test_teardown(test_attach_accept_eof, fake_teardown),
		cmocka_unit_test_teardown(test_attach_refused, fake_teardown),
		cmocka_unit_test_teardown(test_attach_refused_retry, fake_teardown),
		cmocka_unit_test_teardown(test_attach_broken_broker, fake_teardown),
		cmocka_unit_test_teardown(test_attach_no_broker, fake_teardown),
		cmocka_unit_test_teardown(test_attach_bad_args, fake_teardown),
		cmocka_unit_test(test_lease_wait_nothing),
		cmocka_unit_test(test_lease_wait_refused),
		cmocka_unit_test(test_lease_wait_closed),
		cmocka_unit_test(test_lease_wait_other),
		cmocka_unit_test(test_lease_wait_sockets),
		cmocka_unit_test(test_lookup_files_system),
		cmocka_unit_test(test_lookup_files_fixture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
