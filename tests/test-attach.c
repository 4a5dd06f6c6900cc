/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/attach.c, the agent listener: preparing the socket
 * path (parent directories and their modes, stale sockets replaced, live
 * ones and other files refused with a reason), the listening socket (mode,
 * type, removal only while it is ours), and connections through a real
 * session manager over the real socket: every malformed hello refused with
 * its reason, the fds it carried closed, bystanders untouched; the 5 s hello
 * timeout (driven by shifting the loop's clock, see clock_gettime below);
 * the cap on connections waiting for their hello. As root the tests run in
 * a private network namespace and also attach a valid agent for real.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <linux/netlink.h>

#include "attach.h"
#include "log.h"
#include "loop.h"
#include "scm.h"
#include "session-private.h"

/* ------------------------------------------------------------ clock */

/*
 * The loop reads CLOCK_MONOTONIC through clock_gettime(); this definition
 * takes the place of libc's in the test binary so a test can move the
 * loop's "now" forward by warp_ms and see a 5 s timeout fire without
 * waiting 5 s. The kernel's timerfd keeps the real clock.
 */
static int64_t warp_ms;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	long rc = syscall(SYS_clock_gettime, clk, ts);

	if (rc == 0 && clk == CLOCK_MONOTONIC && warp_ms) {
		int64_t ns = (int64_t)ts->tv_nsec + (warp_ms % 1000) * 1000000;

		ts->tv_sec += (time_t)(warp_ms / 1000) + (time_t)(ns / 1000000000);
		ts->tv_nsec = (long)(ns % 1000000000);
	}
	return (int)rc;
}

/* ------------------------------------------------------------ fixture */

static bool in_private_netns;

static int group_setup(void **state)
{
	/* Root: a private network namespace, so queue numbers are ours alone. */
	if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0)
		in_private_netns = true;
	return 0;
}

struct fx {
	char dir[64];                /* private scratch directory */
	char path[PATH_MAX];         /* the listener's socket path */
	struct loop *l;
	struct session_mgr *m;
	struct attach *a;
	mode_t umask;
};

static const char *cfg_fmt =
	"{\"broker\": {\"allow_uids\": [%u], \"grace_ms\": 50},"
	" \"namespaces\": ["
	"   {\"name\": \"pod-pinned\", \"netns\": \"/proc/self/ns/uts\", \"queues\": [21], \"policy\": \"p\"},"
	"   {\"name\": \"pod-gone\", \"netns\": \"%s/no/such/netns\", \"queues\": [22], \"policy\": \"p\"},"
	"   {\"name\": \"pod-home\", \"netns\": \"/proc/self/ns/net\", \"queues\": [23], \"policy\": \"p\"},"
	"   {\"name\": \"pod-*\", \"queues\": [24], \"policy\": \"p\"}],"
	" \"policies\": {\"p\": {\"default\": \"accept\", \"rules\": []}}}";

static struct fx *fx_new(unsigned allow_uid)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct errs e = { 0 };
	char text[2048];
	struct cfg *c;

	assert_non_null(f);
	f->umask = umask(022);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-attach-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/run/nfq/agent.sock", f->dir);
	snprintf(text, sizeof(text), cfg_fmt, allow_uid, f->dir);
	c = cfg_parse_string(text, &e);
	if (!c) {
		char *j = errs_join(&e, "\n");

		fail_msg("config: %s", j);
	}
	f->l = loop_new();
	assert_non_null(f->l);
	f->m = session_mgr_new(f->l, c);
	assert_non_null(f->m);
	return f;
}

static int setup(void **state)
{
	*state = fx_new((unsigned)getuid());
	return 0;
}

/* rm -rf of our scratch directory (nothing in it but what the tests made). */
static void rm_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char sub[PATH_MAX];

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path))) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_tree(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static int teardown(void **state)
{
	struct fx *f = *state;

	warp_ms = 0;
	attach_free(f->a);
	session_mgr_free(f->m);
	loop_free(f->l);
	rm_tree(f->dir);
	umask(f->umask);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	loop_stop(l);
}

static void noop_cb(struct loop *l, struct loop_timer *t, void *data)
{
}

static void pump(struct loop *l, unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	assert_int_equal(loop_timer_arm(l, &t, loop_now_ms() + ms), 0);
	assert_int_equal(loop_run(l), 0);
	loop_timer_cancel(l, &t);
}

/*
 * One round of the loop with its clock @ms ahead: a timer at the real
 * "now + 1" wakes the loop at once, and a stop timer at the shifted "now"
 * ends the round after every timer due by then has fired.
 */
static void pump_warped(struct loop *l, int64_t ms)
{
	struct loop_timer kick, stop;

	warp_ms = ms;
	loop_timer_init(&kick, noop_cb, NULL);
	loop_timer_init(&stop, stop_cb, NULL);
	assert_int_equal(loop_timer_arm(l, &kick, loop_now_ms() - (uint64_t)ms + 1), 0);
	assert_int_equal(loop_timer_arm(l, &stop, loop_now_ms()), 0);
	assert_int_equal(loop_run(l), 0);
	loop_timer_cancel(l, &kick);
	loop_timer_cancel(l, &stop);
	warp_ms = 0;
}

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* A unix socket of @type bound at @path; listening when @backlog >= 0. */
static int bound_socket(const char *path, int type, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

/* An agent's connection (non-blocking), or -errno. */
static int try_connect(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	err = errno;
	close(fd);
	return -err;
}

static int agent_connect(struct fx *f)
{
	int fd = try_connect(f->path, SOCK_SEQPACKET);

	if (fd < 0)
		fail_msg("connect %s: %s", f->path, strerror(-fd));
	return fd;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* One record with any number of fds (wire_send caps them at 2). */
static void send_raw(int sock, const void *msg, size_t len, const int *fds, size_t nfds)
{
	assert_int_equal(tscm_send(sock, msg, len, fds, nfds), (ssize_t)len);
}

/*
 * What the broker answered on @fd: WIRE_ACCEPT / WIRE_REFUSE (reason into
 * @reason), 0 for EOF, -EAGAIN when nothing came within ~1 s. Fds that
 * came with it go to @fds (the caller closes them).
 */
static int answer_fds(struct fx *f, int fd, char *reason, size_t rlen, int fds[WIRE_MAX_FDS],
		      size_t *nfds)
{
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_refuse refuse;
	} u;
	ssize_t n = -EAGAIN;
	int type;

	if (reason && rlen)
		reason[0] = '\0';
	for (int i = 0; i < 200 && n == -EAGAIN; i++) {
		n = wire_recv(fd, u.buf, sizeof(u.buf), fds, nfds);
		if (n == -EAGAIN)
			pump(f->l, 5);
	}
	if (n <= 0)
		return (int)n;
	type = wire_peek_type(u.buf, (size_t)n);
	if (type == WIRE_REFUSE && reason)
		snprintf(reason, rlen, "%s", u.refuse.reason);
	return type;
}

/* The same, for an answer that must not carry fds. */
static int answer(struct fx *f, int fd, char *reason, size_t rlen)
{
	int fds[WIRE_MAX_FDS];
	size_t nfds = 0;
	int type = answer_fds(f, fd, reason, rlen, fds, &nfds);

	close_all(fds, nfds);
	assert_int_equal(nfds, 0);
	return type;
}

static int nl_socket(int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	assert_true(fd >= 0);
	return fd;
}

static uint64_t netns_ino(int fd)
{
	uint64_t dev, ino;

	assert_int_equal(wire_fd_netns(fd, &dev, &ino), 0);
	return ino;
}

static void listen_ok(struct fx *f, mode_t mode)
{
	char why[256] = "";

	f->a = attach_listen(f->m, f->path, mode, why, sizeof(why));
	if (!f->a)
		fail_msg("attach_listen %s: %s", f->path, why);
}

/* ------------------------------------------------------------ stderr */

static int cap_rd = -1, cap_saved = -1;
static char cap_buf[65536];

/* Collect what the broker logs; nothing may assert until cap_end(). */
static void cap_begin(void)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_int_equal(dup2(sv[1], STDERR_FILENO), STDERR_FILENO);
	close(sv[1]);
	cap_rd = sv[0];
}

static const char *cap_end(void)
{
	size_t len = 0;
	ssize_t n;

	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	while (len < sizeof(cap_buf) - 1 &&
	       (n = recv(cap_rd, cap_buf + len, sizeof(cap_buf) - 1 - len, MSG_DONTWAIT)) > 0)
		len += (size_t)n;
	cap_buf[len] = '\0';
	close(cap_rd);
	/* show it anyway, for whoever reads the test log */
	fputs(cap_buf, stderr);
	return cap_buf;
}

/* ------------------------------------------------------------ path */

static void test_prepare_creates_dirs(void **state)
{
	struct fx *f = *state;
	char why[256] = "", p[PATH_MAX];

	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	snprintf(p, sizeof(p), "%s/run", f->dir);
	assert_true(S_ISDIR(mode_of(p)));
	assert_int_equal(mode_of(p) & 07777, 0755);
	snprintf(p, sizeof(p), "%s/run/nfq", f->dir);
	assert_true(S_ISDIR(mode_of(p)));
	assert_int_equal(mode_of(p) & 07777, 0755);
	assert_false(exists(f->path));                 /* the socket is not made here */
	/* twice: nothing to do, still fine */
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);

	/* agents must reach the socket whatever the broker's umask */
	umask(077);
	snprintf(p, sizeof(p), "%s/u/v/agent.sock", f->dir);
	assert_int_equal(attach_prepare_path(p, why, sizeof(why)), 0);
	snprintf(p, sizeof(p), "%s/u", f->dir);
	assert_int_equal(mode_of(p) & 07777, 0755);
	snprintf(p, sizeof(p), "%s/u/v", f->dir);
	assert_int_equal(mode_of(p) & 07777, 0755);
	umask(022);

	/* an existing directory keeps its own mode */
	snprintf(p, sizeof(p), "%s/private", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/private/sub/agent.sock", f->dir);
	assert_int_equal(attach_prepare_path(p, why, sizeof(why)), 0);
	snprintf(p, sizeof(p), "%s/private", f->dir);
	assert_int_equal(mode_of(p) & 07777, 0700);
	snprintf(p, sizeof(p), "%s/private/sub", f->dir);
	assert_int_equal(mode_of(p) & 07777, 0755);

	/* double slashes and a trailing "/." are no trouble */
	snprintf(p, sizeof(p), "%s//dbl///agent.sock", f->dir);
	assert_int_equal(attach_prepare_path(p, why, sizeof(why)), 0);
	snprintf(p, sizeof(p), "%s/dbl", f->dir);
	assert_true(S_ISDIR(mode_of(p)));
}

static void test_prepare_relative(void **state)
{
	struct fx *f = *state;
	char why[256] = "", cwd[PATH_MAX], p[PATH_MAX];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(attach_prepare_path("rel/sub/agent.sock", why, sizeof(why)), 0);
	assert_int_equal(attach_prepare_path("plain.sock", why, sizeof(why)), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(p, sizeof(p), "%s/rel/sub", f->dir);
	assert_true(S_ISDIR(mode_of(p)));
	snprintf(p, sizeof(p), "%s/plain.sock", f->dir);
	assert_false(exists(p));
}

static void test_prepare_not_a_socket(void **state)
{
	struct fx *f = *state;
	char why[256], p[PATH_MAX], want[PATH_MAX + 64], buf[16] = "";
	int fd;

	/* a regular file with content: refused, left exactly as it was */
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);
	why[0] = '\0';
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), -EEXIST);
	snprintf(want, sizeof(want), "%s exists and is not a socket", f->path);
	assert_string_equal(why, want);
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "precious");
	close(fd);
	assert_int_equal(unlink(f->path), 0);

	/* a directory, a FIFO */
	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), -EEXIST);
	assert_string_equal(why, want);
	assert_true(S_ISDIR(mode_of(f->path)));
	assert_int_equal(rmdir(f->path), 0);
	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), -EEXIST);
	assert_true(S_ISFIFO(mode_of(f->path)));
	assert_int_equal(unlink(f->path), 0);

	/* a symlink, even to a stale socket, is not followed nor removed */
	snprintf(p, sizeof(p), "%s/real.sock", f->dir);
	close(bound_socket(p, SOCK_SEQPACKET, -1));
	assert_int_equal(symlink(p, f->path), 0);
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), -EEXIST);
	assert_true(S_ISLNK(mode_of(f->path)));
	assert_true(S_ISSOCK(mode_of(p)));
	assert_int_equal(unlink(f->path), 0);
}

/* A path through a regular file: an error with a reason, nothing created. */
static void test_prepare_parent_is_file(void **state)
{
	struct fx *f = *state;
	char why[256], file[128], p[PATH_MAX];
	int fd, rc;

	snprintf(file, sizeof(file), "%s/file", f->dir);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);

	snprintf(p, sizeof(p), "%s/agent.sock", file);
	strcpy(why, "untouched");
	rc = attach_prepare_path(p, why, sizeof(why));
	assert_int_equal(rc, -ENOTDIR);
	assert_non_null(strstr(why, p));
	assert_non_null(strstr(why, strerror(ENOTDIR)));

	snprintf(p, sizeof(p), "%s/sub/agent.sock", file);
	strcpy(why, "untouched");
	rc = attach_prepare_path(p, why, sizeof(why));
	assert_int_equal(rc, -ENOTDIR);
	assert_non_null(strstr(why, "cannot create directory"));
	assert_non_null(strstr(why, file));
	assert_true(S_ISREG(mode_of(file)));
}

static void test_prepare_stale_socket(void **state)
{
	struct fx *f = *state;
	char why[256] = "", want[PATH_MAX + 64];
	const char *log;
	int rc;

	/* a broker that died: its socket file is left, nobody listens */
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	close(bound_socket(f->path, SOCK_SEQPACKET, 5));
	assert_true(S_ISSOCK(mode_of(f->path)));
	cap_begin();
	rc = attach_prepare_path(f->path, why, sizeof(why));
	log = cap_end();
	assert_int_equal(rc, 0);
	assert_false(exists(f->path));
	snprintf(want, sizeof(want), " level=info event=stale_socket path=%s removed=true\n",
		 f->path);
	assert_non_null(strstr(log, want));

	/* a stale stream socket (an old control socket) goes the same way */
	close(bound_socket(f->path, SOCK_STREAM, 5));
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	assert_false(exists(f->path));
}

static void test_prepare_live_socket(void **state)
{
	struct fx *f = *state;
	char why[256], want[PATH_MAX + 64];
	int srv, c, probe;

	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	snprintf(want, sizeof(want), "another process (a running broker?) listens on %s",
		 f->path);
	for (int type = 0; type < 2; type++) {
		/* a live broker (SEQPACKET) or another server (STREAM) */
		srv = bound_socket(f->path, type ? SOCK_STREAM : SOCK_SEQPACKET, 16);
		why[0] = '\0';
		assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), -EADDRINUSE);
		assert_string_equal(why, want);
		/* its socket is still there and it still answers */
		assert_true(S_ISSOCK(mode_of(f->path)));
		c = try_connect(f->path, type ? SOCK_STREAM : SOCK_SEQPACKET);
		assert_true(c >= 0);
		close(c);
		close(srv);
		unlink(f->path);
	}

	/* alive but too busy to take the probe: still alive */
	srv = bound_socket(f->path, SOCK_SEQPACKET, 0);
	for (int i = 0; i < 64; i++) {
		probe = try_connect(f->path, SOCK_SEQPACKET);
		if (probe == -EAGAIN)
			break;
		assert_true(probe >= 0);
		/* left connected, filling the backlog */
	}
	assert_int_equal(probe, -EAGAIN);
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), -EADDRINUSE);
	assert_true(S_ISSOCK(mode_of(f->path)));
	close(srv);
}

/* ------------------------------------------------------------ listener */

static void test_listen_modes(void **state)
{
	static const struct { mode_t umask, mode; } cases[] = {
		{ 022, 0600 }, { 077, 0660 }, { 0, 0600 }, { 022, 0666 }, { 0777, 0606 },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mode_t before;

		umask(cases[i].umask);
		listen_ok(f, cases[i].mode);
		before = umask(022);
		assert_int_equal(before, cases[i].umask);   /* put back as it was */
		assert_true(S_ISSOCK(mode_of(f->path)));
		if ((mode_of(f->path) & 07777) != cases[i].mode)
			fail_msg("umask %03o mode %03o: got %03o", cases[i].umask, cases[i].mode,
				 mode_of(f->path) & 07777);
		assert_int_equal(loop_fd_count(f->l), 1);
		assert_int_equal(attach_pending(f->a), 0);
		attach_free(f->a);
		f->a = NULL;
		assert_false(exists(f->path));               /* removed: it was ours */
		assert_int_equal(loop_fd_count(f->l), 0);
	}
}

static void test_listen_type(void **state)
{
	struct fx *f = *state;
	int c;

	listen_ok(f, 0600);
	/* the agent protocol is SOCK_SEQPACKET: stream clients are turned away */
	assert_int_equal(try_connect(f->path, SOCK_STREAM), -EPROTOTYPE);
	assert_int_equal(try_connect(f->path, SOCK_DGRAM), -EPROTOTYPE);
	c = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 1);
	assert_int_equal(loop_fd_count(f->l), 2);
	close(c);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 0);
	assert_int_equal(loop_fd_count(f->l), 1);
	assert_int_equal(f->m->refusals, 0);
}

static void test_listen_errors(void **state)
{
	struct fx *f = *state;
	char why[256], want[PATH_MAX + 64], p[400];
	struct attach *b;
	int c, fd;

	listen_ok(f, 0600);
	/* a second broker on the same path: refused, the first unharmed */
	why[0] = '\0';
	errno = 0;
	assert_null(attach_listen(f->m, f->path, 0600, why, sizeof(why)));
	assert_int_equal(errno, EADDRINUSE);
	snprintf(want, sizeof(want), "another process (a running broker?) listens on %s",
		 f->path);
	assert_string_equal(why, want);
	assert_true(S_ISSOCK(mode_of(f->path)));
	assert_int_equal(loop_fd_count(f->l), 1);
	c = agent_connect(f);
	pump(f->l, 20);
	/* the probe came and went; the agent is waiting for its hello */
	assert_int_equal(attach_pending(f->a), 1);
	close(c);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 0);
	attach_free(f->a);
	f->a = NULL;

	/* too long for sun_path: refused before anything is created */
	snprintf(p, sizeof(p), "%s/long/%0200d/agent.sock", f->dir, 0);
	why[0] = '\0';
	errno = 0;
	assert_null(attach_listen(f->m, p, 0600, why, sizeof(why)));
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(strncmp(why, "socket path too long: ", 22), 0);
	snprintf(p, sizeof(p), "%s/long", f->dir);
	assert_false(exists(p));

	/* a regular file in the way */
	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	errno = 0;
	assert_null(attach_listen(f->m, f->path, 0600, why, sizeof(why)));
	assert_int_equal(errno, EEXIST);
	assert_true(S_ISREG(mode_of(f->path)));
	unlink(f->path);

	/* a path through a file: a reason, not an empty buffer */
	snprintf(p, sizeof(p), "%s/file", f->dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	close(fd);
	snprintf(p, sizeof(p), "%s/file/agent.sock", f->dir);
	why[0] = '\0';
	b = attach_listen(f->m, p, 0600, why, sizeof(why));
	assert_null(b);
	assert_int_equal(errno, ENOTDIR);
	assert_true(why[0] != '\0');
	assert_int_equal(loop_fd_count(f->l), 0);
}

/* A stale socket from a crashed broker is replaced by the new listener. */
static void test_listen_replaces_stale(void **state)
{
	struct fx *f = *state;
	char why[256];
	int c;

	assert_int_equal(attach_prepare_path(f->path, why, sizeof(why)), 0);
	close(bound_socket(f->path, SOCK_SEQPACKET, 5));
	assert_int_equal(try_connect(f->path, SOCK_SEQPACKET), -ECONNREFUSED);
	listen_ok(f, 0600);
	/* answered now: the file is the new listener's */
	c = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 1);
	close(c);
}

/* attach_free removes the socket file only while it is still its own. */
static void test_free_keeps_successor(void **state)
{
	struct fx *f = *state;
	char why[256] = "";
	struct attach *b;
	int c, fd;

	listen_ok(f, 0600);
	/* someone removed our file and a successor listens there now */
	assert_int_equal(unlink(f->path), 0);
	b = attach_listen(f->m, f->path, 0600, why, sizeof(why));
	assert_non_null(b);
	attach_free(f->a);
	f->a = b;
	assert_true(S_ISSOCK(mode_of(f->path)));
	c = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(b), 1);
	close(c);

	/* replaced by a plain file: left alone too */
	assert_int_equal(unlink(f->path), 0);
	fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	attach_free(f->a);
	f->a = NULL;
	assert_true(S_ISREG(mode_of(f->path)));
	assert_int_equal(loop_fd_count(f->l), 0);
	attach_free(NULL);
}

/* attach_free with agents still waiting: they see EOF, nothing stays in the loop. */
static void test_free_with_pending(void **state)
{
	struct fx *f = *state;
	int c[3];

	listen_ok(f, 0600);
	for (int i = 0; i < 3; i++)
		c[i] = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 3);
	assert_int_equal(loop_fd_count(f->l), 4);
	attach_free(f->a);
	f->a = NULL;
	assert_int_equal(loop_fd_count(f->l), 0);
	assert_false(exists(f->path));
	for (int i = 0; i < 3; i++) {
		char b[8];

		assert_int_equal(recv(c[i], b, sizeof(b), MSG_DONTWAIT), 0);
		close(c[i]);
	}
	/* their hello timers went with them: a late round finds nothing to fire */
	pump_warped(f->l, 6000);
	assert_int_equal(f->m->refusals, 0);
}

/* ------------------------------------------------------------ hellos */

/*
 * Send @msg with @fds on a new connection and expect a refusal with
 * exactly @want, then EOF; every fd the broker received is closed again
 * and the connections already waiting are still waiting.
 */
static void expect_refusal(struct fx *f, const void *msg, size_t len, const int *fds,
			   size_t nfds, const char *want)
{
	char reason[WIRE_REASON_MAX];
	size_t fds_before = count_fds(), pending = attach_pending(f->a);
	uint64_t refusals = f->m->refusals;
	int c = agent_connect(f), type;

	send_raw(c, msg, len, fds, nfds);
	type = answer(f, c, reason, sizeof(reason));
	if (type != WIRE_REFUSE)
		fail_msg("expected a refusal \"%s\", got %d", want, type);
	if (strcmp(reason, want) != 0)
		fail_msg("refused with \"%s\", expected \"%s\"", reason, want);
	assert_int_equal(answer(f, c, NULL, 0), 0);           /* then closed */
	assert_int_equal(f->m->refusals, refusals + 1);
	assert_int_equal(attach_pending(f->a), pending);
	assert_int_equal(f->m->count, 0);
	close(c);
	assert_int_equal(count_fds(), fds_before);
}

static void test_malformed_hellos(void **state)
{
	struct fx *f = *state;
	union {
		struct wire_hello h;
		char big[sizeof(struct wire_hello) + 64];
	} u;
	char want[WIRE_REASON_MAX];
	int nf = nl_socket(NETLINK_NETFILTER), rt = nl_socket(NETLINK_ROUTE);
	int fds[3] = { nf, rt, -1 }, p[2], udp, bystander;

	listen_ok(f, 0600);
	/* an agent that connected first and has not said anything yet */
	bystander = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 1);

	expect_refusal(f, "abcd", 4, NULL, 0, "hello too short: 4 bytes");

	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	u.h.hdr.magic = 0xdeadbeef;
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1, "bad magic 0xdeadbeef");

	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	u.h.hdr.version = 2;
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1,
		       "protocol version 2 not supported (broker speaks 1)");

	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	u.h.hdr.type = WIRE_ACCEPT;
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1, "expected hello (type 1), got type 2");

	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	snprintf(want, sizeof(want), "hello is %zu bytes, expected %zu", sizeof(u.h) - 1,
		 sizeof(u.h));
	expect_refusal(f, &u.h, sizeof(u.h) - 1, fds, 1, want);
	/* one byte more still fits the receive buffer: a size error too */
	memset(u.big, 0, sizeof(u.big));
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	snprintf(want, sizeof(want), "hello is %zu bytes, expected %zu", sizeof(u.h) + 1,
		 sizeof(u.h));
	expect_refusal(f, u.big, sizeof(u.h) + 1, fds, 1, want);
	/* more than that is truncated on receipt */
	expect_refusal(f, u.big, sizeof(u.big), fds, 2,
		       "message or its fds truncated, or more than 2 fds");

	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 2);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1, "hello announces 2 fds but 1 arrived");
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 0, "hello announces 1 fds but 0 arrived");
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 3);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 2, "hello announces 3 fds, expected 1 or 2");

	/* three fds: the broker takes none of them */
	fds[2] = nl_socket(NETLINK_ROUTE);
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 2);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 3,
		       "message or its fds truncated, or more than 2 fds");
	close(fds[2]);
	fds[2] = -1;

	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	u.h.flags = 1;
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1, "hello has unknown flags 0x0001");

	wire_hello_init(&u.h, "pod a", (uint32_t)getpid(), 1);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1,
		       "name has invalid character 0x20 at offset 3");
	wire_hello_init(&u.h, "", (uint32_t)getpid(), 1);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1, "name is empty");
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	memset(u.h.name, 'a', sizeof(u.h.name));
	snprintf(want, sizeof(want), "name is not NUL-terminated within %zu bytes",
		 sizeof(u.h.name));
	expect_refusal(f, &u.h, sizeof(u.h), fds, 1, want);

	/* wrong kinds of fds */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	expect_refusal(f, &u.h, sizeof(u.h), &p[0], 1, "fd 0: not a socket");
	close(p[0]);
	close(p[1]);
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 1);
	expect_refusal(f, &u.h, sizeof(u.h), &rt, 1,
		       "fd 0: netlink protocol 0 is not NETLINK_NETFILTER (12)");
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(udp >= 0);
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 2);
	expect_refusal(f, &u.h, sizeof(u.h), (int[]){ nf, udp }, 2,
		       "fd 1: socket family 2 is not AF_NETLINK");
	close(udp);
	wire_hello_init(&u.h, "pod-a", (uint32_t)getpid(), 2);
	expect_refusal(f, &u.h, sizeof(u.h), (int[]){ nf, nf }, 2,
		       "fd 1: netlink protocol 12 is not NETLINK_ROUTE (0)");

	/* well-formed, but the config says no */
	wire_hello_init(&u.h, "other", (uint32_t)getpid(), 2);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 2,
		       "no namespaces entry matches name \"other\"");
	wire_hello_init(&u.h, "pod-gone", (uint32_t)getpid(), 2);
	snprintf(want, sizeof(want), "namespaces[1].netns %s/no/such/netns: %s", f->dir,
		 strerror(ENOENT));
	expect_refusal(f, &u.h, sizeof(u.h), fds, 2, want);
	{
		struct stat st;

		assert_int_equal(stat("/proc/self/ns/uts", &st), 0);
		snprintf(want, sizeof(want), "the sockets live in network namespace inode %"
			 PRIu64 ", not in /proc/self/ns/uts (inode %" PRIu64 ") that "
			 "namespaces[0] pins", netns_ino(nf), (uint64_t)st.st_ino);
	}
	wire_hello_init(&u.h, "pod-pinned", (uint32_t)getpid(), 2);
	expect_refusal(f, &u.h, sizeof(u.h), fds, 2, want);

	/* the bystander waited through all of it and is still served */
	assert_int_equal(attach_pending(f->a), 1);
	wire_hello_init(&u.h, "other", (uint32_t)getpid(), 1);
	assert_int_equal(wire_send(bystander, &u.h, sizeof(u.h), fds, 1), 0);
	assert_int_equal(answer(f, bystander, want, sizeof(want)), WIRE_REFUSE);
	assert_string_equal(want, "no namespaces entry matches name \"other\"");
	assert_int_equal(attach_pending(f->a), 0);
	assert_int_equal(f->m->attaches, 0);
	close(bystander);
	close_all(fds, 2);
}

/* The refusal as logged: who, and why, quoted as one field. */
static void test_refusal_logged(void **state)
{
	struct fx *f = *state;
	struct wire_hello h;
	char want[512];
	const char *log;
	int c, nf = nl_socket(NETLINK_NETFILTER);

	listen_ok(f, 0600);
	c = agent_connect(f);
	wire_hello_init(&h, "nobody-knows", (uint32_t)getpid(), 1);
	assert_int_equal(wire_send(c, &h, sizeof(h), &nf, 1), 0);
	cap_begin();
	pump(f->l, 30);
	log = cap_end();
	snprintf(want, sizeof(want), " level=warn event=refuse name=nobody-knows agent_pid=%d "
		 "uid=%u reason=\"no namespaces entry matches name \\\"nobody-knows\\\"\"\n",
		 (int)getpid(), (unsigned)getuid());
	if (!strstr(log, want))
		fail_msg("no \"%s\" in the log:\n%s", want, log);
	close(c);
	close(nf);
}

/* A peer whose uid is not allowed is refused before its hello is even judged. */
static void test_uid_not_allowed(void **state)
{
	struct fx *f = *state;
	struct wire_hello h;
	char want[128];
	int nf = nl_socket(NETLINK_NETFILTER);

	/* the same config, but only uid 4242 may attach */
	teardown(state);
	f = fx_new(4242);
	*state = f;
	assert_true(getuid() != 4242);
	listen_ok(f, 0600);
	snprintf(want, sizeof(want), "uid %u is not in broker.allow_uids", (unsigned)getuid());
	wire_hello_init(&h, "pod-a", (uint32_t)getpid(), 1);
	expect_refusal(f, &h, sizeof(h), &nf, 1, want);
	expect_refusal(f, "abcd", 4, NULL, 0, want);
	/* both judged at accept, by uid, before any hello */
	assert_int_equal(f->m->refused[REFUSAL_AGENT_UID], 2);
	assert_int_equal(f->m->refused[REFUSAL_AGENT_HELLO], 0);
	close(nf);
}

/* A connection that ends before its hello (or sends an empty record) is just closed. */
static void test_eof_before_hello(void **state)
{
	struct fx *f = *state;
	size_t before;
	int c;

	listen_ok(f, 0600);
	before = count_fds();
	c = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 1);
	close(c);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 0);
	assert_int_equal(count_fds(), before);

	/* a zero-length record reads as EOF on SOCK_SEQPACKET */
	c = agent_connect(f);
	assert_int_equal(send(c, "", 0, MSG_NOSIGNAL), 0);
	assert_int_equal(answer(f, c, NULL, 0), 0);
	assert_int_equal(attach_pending(f->a), 0);
	close(c);
	assert_int_equal(f->m->refusals, 0);
	assert_int_equal(count_fds(), before);
	assert_int_equal(loop_fd_count(f->l), 1);
}

/* ATTACH_HELLO_TIMEOUT_MS, driven by moving the loop's clock. */
static void test_hello_timeout(void **state)
{
	struct fx *f = *state;
	char reason[WIRE_REASON_MAX];
	struct wire_hello h;
	int silent, talker, nf;
	size_t before;

	listen_ok(f, 0600);
	before = count_fds();
	nf = nl_socket(NETLINK_NETFILTER);
	silent = agent_connect(f);
	talker = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 2);
	/* the talker is refused at once: its timer must go with it */
	wire_hello_init(&h, "other", (uint32_t)getpid(), 1);
	assert_int_equal(wire_send(talker, &h, sizeof(h), &nf, 1), 0);
	assert_int_equal(answer(f, talker, NULL, 0), WIRE_REFUSE);
	assert_int_equal(f->m->refusals, 1);
	assert_int_equal(attach_pending(f->a), 1);

	/* well before the deadline: still waiting */
	pump_warped(f->l, ATTACH_HELLO_TIMEOUT_MS - 1000);
	assert_int_equal(attach_pending(f->a), 1);
	assert_int_equal(f->m->refusals, 1);
	assert_int_equal(recv(silent, reason, sizeof(reason), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);

	/* past it: refused with the reason, and closed */
	pump_warped(f->l, ATTACH_HELLO_TIMEOUT_MS + 200);
	assert_int_equal(attach_pending(f->a), 0);
	assert_int_equal(f->m->refusals, 2);
	assert_int_equal(answer(f, silent, reason, sizeof(reason)), WIRE_REFUSE);
	assert_string_equal(reason, "no hello within 5 s");
	assert_int_equal(answer(f, silent, NULL, 0), 0);

	/* nothing fires twice */
	pump_warped(f->l, 3 * ATTACH_HELLO_TIMEOUT_MS);
	assert_int_equal(f->m->refusals, 2);
	/* by reason: the talker's name matched no entry, the silent one timed out */
	assert_int_equal(f->m->refused[REFUSAL_AGENT_NO_MATCH], 1);
	assert_int_equal(f->m->refused[REFUSAL_AGENT_HELLO], 1);
	close(silent);
	close(talker);
	close(nf);
	assert_int_equal(count_fds(), before);
	assert_int_equal(loop_fd_count(f->l), 1);
}

/* At most ATTACH_MAX_PENDING connections wait for their hello. */
static void test_max_pending(void **state)
{
	enum { N = ATTACH_MAX_PENDING + 1 };
	struct fx *f = *state;
	struct rlimit rl;
	int *c = malloc(N * sizeof(*c));
	char b[8];
	const char *log;
	size_t before;

	assert_non_null(c);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * N + 64) {
		rl.rlim_cur = rl.rlim_max < 2 * N + 64 ? rl.rlim_max : 2 * N + 64;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < 2 * N + 64) {
			free(c);
			skip();
		}
	}
	f->m->cfg->max_pending_per_uid = CFG_MAX_PENDING_PER_UID;  /* all are ours */
	listen_ok(f, 0600);
	before = count_fds();
	for (int i = 0; i < N; i++)
		c[i] = agent_connect(f);
	cap_begin();
	/* until the last one was dealt with (closed), for at most a second */
	for (int i = 0; i < 100 && recv(c[N - 1], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) < 0;
	     i++)
		pump(f->l, 10);
	log = cap_end();
	assert_int_equal(attach_pending(f->a), ATTACH_MAX_PENDING);
	assert_non_null(strstr(log, "reason=\"256 connections already wait for their "
			       "hello\" retry=true"));
	/* the last one was refused (retryable) and closed at once, the others wait */
	for (int i = 0; i < N; i++) {
		ssize_t n = recv(c[i], b, sizeof(b), MSG_DONTWAIT);

		if (i < ATTACH_MAX_PENDING) {
			assert_true(n < 0 && errno == EAGAIN);
		} else {
			assert_int_equal(n, sizeof(b));     /* the refusal, cut short */
			assert_int_equal(recv(c[i], b, sizeof(b), MSG_DONTWAIT), 0);
		}
	}
	/* room again once some leave */
	for (int i = 0; i < 10; i++)
		close(c[i]);
	close(c[N - 1]);
	c[N - 1] = agent_connect(f);
	for (int i = 0; i < 100 && attach_pending(f->a) != ATTACH_MAX_PENDING - 10 + 1; i++)
		pump(f->l, 10);
	assert_int_equal(attach_pending(f->a), ATTACH_MAX_PENDING - 10 + 1);
	assert_int_equal(f->m->refusals, 1);
	assert_int_equal(f->m->refused[REFUSAL_AGENT_PENDING], 1);
	for (int i = 10; i < N; i++)
		close(c[i]);
	for (int i = 0; i < 100 && attach_pending(f->a); i++)
		pump(f->l, 10);
	assert_int_equal(attach_pending(f->a), 0);
	assert_int_equal(count_fds(), before);
	free(c);
}

/* A refusal's reason and whether it is flagged retryable. */
static int answer_retry(struct fx *f, int fd, char *reason, size_t rlen, bool *retry)
{
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_refuse refuse;
	} u;
	int fds[WIRE_MAX_FDS];
	size_t nfds = 0;
	ssize_t n = -EAGAIN;

	for (int i = 0; i < 200 && n == -EAGAIN; i++) {
		n = wire_recv(fd, u.buf, sizeof(u.buf), fds, &nfds);
		if (n == -EAGAIN)
			pump(f->l, 5);
	}
	close_all(fds, nfds);
	if (n <= 0 || wire_peek_type(u.buf, (size_t)n) != WIRE_REFUSE)
		return -1;
	snprintf(reason, rlen, "%s", u.refuse.reason);
	*retry = wire_refuse_flags(&u.refuse) & WIRE_REFUSE_F_RETRY;
	return WIRE_REFUSE;
}

/* broker.max_pending_per_uid: one uid cannot take every pending slot. */
static void test_pending_per_uid(void **state)
{
	struct fx *f = *state;
	char reason[WIRE_REASON_MAX], want[WIRE_REASON_MAX];
	int c[CFG_DEFAULT_MAX_PENDING_PER_UID + 1], extra;
	bool retry = false;
	size_t before;

	listen_ok(f, 0600);
	before = count_fds();
	for (size_t i = 0; i < CFG_DEFAULT_MAX_PENDING_PER_UID; i++)
		c[i] = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), CFG_DEFAULT_MAX_PENDING_PER_UID);
	extra = agent_connect(f);
	assert_int_equal(answer_retry(f, extra, reason, sizeof(reason), &retry), WIRE_REFUSE);
	snprintf(want, sizeof(want), "uid %u has %u connections waiting for their hello "
		 "(broker.max_pending_per_uid)", (unsigned)getuid(),
		 CFG_DEFAULT_MAX_PENDING_PER_UID);
	assert_string_equal(reason, want);
	assert_true(retry);
	assert_int_equal(attach_pending(f->a), CFG_DEFAULT_MAX_PENDING_PER_UID);
	close(extra);
	/* One leaves: room for one more of the same uid. */
	close(c[0]);
	pump(f->l, 20);
	c[0] = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), CFG_DEFAULT_MAX_PENDING_PER_UID);
	assert_int_equal(f->m->refusals, 1);
	close_all(c, CFG_DEFAULT_MAX_PENDING_PER_UID);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 0);
	assert_int_equal(count_fds(), before);
}

/*
 * A uid that may not attach is refused at accept(): never a pending slot,
 * a few log lines a second, then one line with how many were left out.
 */
static void test_refusal_flood_rate_limited(void **state)
{
	enum { N = 100 };
	struct fx *f = *state;
	char reason[WIRE_REASON_MAX], want[WIRE_REASON_MAX];
	int c[N];
	bool retry = true;
	const char *log;
	size_t lines = 0, before;

	teardown(state);
	f = fx_new(4242);
	*state = f;
	listen_ok(f, 0600);
	before = count_fds();
	cap_begin();
	for (int i = 0; i < N; i++)
		c[i] = agent_connect(f);
	pump(f->l, 50);
	assert_int_equal(attach_pending(f->a), 0);
	/* the summary comes when the second is over */
	pump_warped(f->l, 1100);
	log = cap_end();
	for (const char *p = log; (p = strstr(p, "event=refuse ")); p++)
		lines++;
	assert_true(lines >= 1 && lines <= ATTACH_LOG_PER_SEC);
	snprintf(want, sizeof(want), "event=refuse_suppressed class=uid suppressed=%zu\n",
		 N - lines);
	if (!strstr(log, want))
		fail_msg("no \"%s\" in the log", want);
	assert_int_equal(f->m->refusals, N);
	/* counted by reason, logged or not */
	assert_int_equal(f->m->refused[REFUSAL_AGENT_UID], N);
	/* every one was told why, and closed */
	snprintf(want, sizeof(want), "uid %u is not in broker.allow_uids", (unsigned)getuid());
	for (int i = 0; i < N; i++) {
		assert_int_equal(answer_retry(f, c[i], reason, sizeof(reason), &retry),
				 WIRE_REFUSE);
		assert_string_equal(reason, want);
		assert_false(retry);
		close(c[i]);
	}
	assert_int_equal(count_fds(), before);
}

/* Hold every free fd (up to @max) open; returns how many. */
static int fill_fds(int *held, int max)
{
	int n = 0;

	while (n < max) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			break;
		held[n++] = fd;
	}
	return n;
}

/*
 * Out of fds: a connection that cannot be accepted is still told to come
 * back (the reserve fd), and a hello whose fds cannot be received too;
 * with fds free again the same agent gets through to the hello checks.
 */
static void test_out_of_fds(void **state)
{
	struct fx *f = *state;
	char reason[WIRE_REASON_MAX];
	struct rlimit old, low;
	struct wire_hello h;
	int held[512], nheld, c, nf;
	bool retry = false;
	size_t before;

	listen_ok(f, 0600);
	nf = nl_socket(NETLINK_NETFILTER);
	before = count_fds();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)before + 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

	/* accept() hits EMFILE */
	c = agent_connect(f);
	nheld = fill_fds(held, 512);
	assert_true(nheld > 0 && nheld < 512);
	pump(f->l, 20);
	assert_int_equal(answer_retry(f, c, reason, sizeof(reason), &retry), WIRE_REFUSE);
	assert_string_equal(reason, ATTACH_NO_FDS);
	assert_true(retry);
	assert_int_equal(attach_pending(f->a), 0);
	close(c);

	/* accepted (one fd for each end: the one just closed and one more),
	 * but the hello's fd cannot be received */
	close(held[--nheld]);
	c = agent_connect(f);
	pump(f->l, 20);
	assert_int_equal(attach_pending(f->a), 1);
	wire_hello_init(&h, "nobody-knows", (uint32_t)getpid(), 1);
	assert_int_equal(wire_send(c, &h, sizeof(h), &nf, 1), 0);
	retry = false;
	assert_int_equal(answer_retry(f, c, reason, sizeof(reason), &retry), WIRE_REFUSE);
	assert_string_equal(reason, ATTACH_NO_FDS);
	assert_true(retry);
	close(c);

	while (nheld > 0)
		close(held[--nheld]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* fds free again: the same hello is judged on its merits */
	c = agent_connect(f);
	assert_int_equal(wire_send(c, &h, sizeof(h), &nf, 1), 0);
	assert_int_equal(answer_retry(f, c, reason, sizeof(reason), &retry), WIRE_REFUSE);
	assert_string_equal(reason, "no namespaces entry matches name \"nobody-knows\"");
	assert_false(retry);
	close(c);
	close(nf);
	assert_int_equal(f->m->refusals, 3);
	assert_int_equal(count_fds(), before - 1);
}

/* ------------------------------------------------------------ as root */

/* The fds of a valid agent, in a namespace the queues can be bound in. */
static void test_attach_ok(void **state)
{
	struct fx *f = *state;
	int fds[2] = { nl_socket(NETLINK_NETFILTER), nl_socket(NETLINK_ROUTE) };
	struct wire_hello h;
	struct session *s;
	uint64_t dev, ino;
	int c, bystander;

	if (!in_private_netns)
		skip();
	listen_ok(f, 0600);
	bystander = agent_connect(f);
	c = agent_connect(f);
	/* pinned to /proc/self/ns/net: the broker's own, where the sockets are */
	wire_hello_init(&h, "pod-home", (uint32_t)getpid(), 2);
	assert_int_equal(wire_send(c, &h, sizeof(h), fds, 2), 0);
	assert_int_equal(answer(f, c, NULL, 0), WIRE_ACCEPT);
	assert_int_equal(f->m->attaches, 1);
	assert_int_equal(f->m->refusals, 0);
	assert_int_equal(f->m->count, 1);
	assert_int_equal(wire_fd_netns(fds[0], &dev, &ino), 0);
	s = session_find(f->m, dev, ino);
	assert_non_null(s);
	assert_string_equal(s->name, "pod-home");
	assert_int_equal(s->agent_pid, getpid());
	assert_int_equal(s->state, SESSION_ATTACHED);
	/* the lease is the session's now, no longer a pending connection */
	assert_int_equal(attach_pending(f->a), 1);
	/* listener, bystander, and the session's lease, queue and rtnl sockets */
	assert_int_equal(loop_fd_count(f->l), 5);

	/* a second agent for the same namespace: refused, the first keeps it */
	int c2 = agent_connect(f);
	char reason[WIRE_REASON_MAX];

	wire_hello_init(&h, "pod-x", (uint32_t)getpid(), 2);
	assert_int_equal(wire_send(c2, &h, sizeof(h), fds, 2), 0);
	assert_int_equal(answer(f, c2, reason, sizeof(reason)), WIRE_REFUSE);
	assert_non_null(strstr(reason, "already served by agent pid"));
	assert_int_equal(f->m->count, 1);
	assert_int_equal(f->m->attaches, 1);
	assert_int_equal(f->m->refusals, 1);
	assert_ptr_equal(session_find(f->m, dev, ino), s);
	assert_int_equal(s->state, SESSION_ATTACHED);
	close(c2);

	/* the agent restarts: lease lost, grace period, a new agent takes over */
	close(c);
	pump(f->l, 10);
	assert_int_equal(s->state, SESSION_GRACE);
	close_all(fds, 2);
	fds[0] = nl_socket(NETLINK_NETFILTER);
	fds[1] = nl_socket(NETLINK_ROUTE);
	c = agent_connect(f);
	size_t before = count_fds();

	int back[WIRE_MAX_FDS];
	size_t nback = 0;
	struct stat st_back, st_q;

	wire_hello_init(&h, "pod-home", (uint32_t)getpid(), 2);
	assert_int_equal(wire_send(c, &h, sizeof(h), fds, 2), 0);
	assert_int_equal(answer_fds(f, c, NULL, 0, back, &nback), WIRE_ACCEPT);
	assert_ptr_equal(session_find(f->m, dev, ino), s);
	assert_int_equal(s->state, SESSION_ATTACHED);
	assert_int_equal(s->takeovers, 1);
	assert_int_equal(f->m->attaches, 2);
	/* the queues stay on the session's socket; the agent gets copies of it */
	assert_true(nback >= 1);
	assert_int_equal(fstat(back[0], &st_back), 0);
	assert_int_equal(fstat(nfqb_queue_fd(s->q), &st_q), 0);
	assert_int_equal(st_back.st_ino, st_q.st_ino);
	close_all(back, nback);
	/* the agent's new sockets were closed again: only the lease stays */
	assert_int_equal(count_fds(), before + 1);
	close(bystander);
	close(c);
	close_all(fds, 2);
}

/* Sockets from two namespaces in one hello. */
static void test_fds_from_two_namespaces(void **state)
{
	struct fx *f = *state;
	struct wire_hello h;
	char want[WIRE_REASON_MAX];
	int sv[2], fds[2] = { nl_socket(NETLINK_NETFILTER), -1 }, got[WIRE_MAX_FDS], st;
	size_t n = 0;
	char b[8];
	pid_t pid;

	if (!in_private_netns)
		skip();
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* a child in yet another namespace hands back a socket of it */
		int fd;

		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		_exit(fd < 0 || wire_send(sv[1], "x", 1, &fd, 1) < 0 ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(wire_recv(sv[0], b, sizeof(b), got, &n), 1);
	assert_int_equal(n, 1);
	fds[1] = got[0];
	close(sv[0]);
	close(sv[1]);
	assert_true(netns_ino(fds[0]) != netns_ino(fds[1]));

	listen_ok(f, 0600);
	snprintf(want, sizeof(want), "the sockets live in different network namespaces "
		 "(inodes %" PRIu64 " and %" PRIu64 ")", netns_ino(fds[0]), netns_ino(fds[1]));
	wire_hello_init(&h, "pod-a", (uint32_t)getpid(), 2);
	expect_refusal(f, &h, sizeof(h), fds, 2, want);
	close_all(fds, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_prepare_creates_dirs),
		T(test_prepare_relative),
		T(test_prepare_not_a_socket),
		T(test_prepare_parent_is_file),
		T(test_prepare_stale_socket),
		T(test_prepare_live_socket),
		T(test_listen_modes),
		T(test_listen_type),
		T(test_listen_errors),
		T(test_listen_replaces_stale),
		T(test_free_keeps_successor),
		T(test_free_with_pending),
		T(test_malformed_hellos),
		T(test_refusal_logged),
		T(test_uid_not_allowed),
		T(test_eof_before_hello),
		T(test_hello_timeout),
		T(test_max_pending),
		T(test_pending_per_uid),
		T(test_refusal_flood_rate_limited),
		T(test_out_of_fds),
		T(test_attach_ok),
		T(test_fds_from_two_namespaces),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
