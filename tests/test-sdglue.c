/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/sdglue.c, playing systemd: sockets passed as
 * LISTEN_FDS at fds 3.. (adopted, refused, closed on failure, never
 * unlinked) and the notify socket's messages, byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "config.h"
#include "fake-session.h"
#include "loop.h"
#include "sdglue.h"
#include "session.h"
#include "unixsock.h"

struct fx {
	char dir[64];
	char agent[96], control[96];
	struct cfg *cfg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct errs e = { 0 };
	char text[1024];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-sdglue-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->agent, sizeof(f->agent), "%s/agent.sock", f->dir);
	snprintf(f->control, sizeof(f->control), "%s/control.sock", f->dir);
	snprintf(text, sizeof(text),
		 "{ \"broker\": { \"listen\": \"%s\", \"control\": \"%s\" },"
		 "  \"namespaces\": [ { \"name\": \"a\", \"queues\": [1], \"policy\": \"p\" } ],"
		 "  \"policies\": { \"p\": { \"default\": \"accept\", \"rules\": [] } } }",
		 f->agent, f->control);
	f->cfg = cfg_parse_string(text, &e);
	if (!f->cfg)
		return -1;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("NOTIFY_SOCKET");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	unixsock_inherit_close();
	cfg_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* A unix socket of @type bound at @path, listening unless @nolisten. */
static int sock_at(const char *path, int type, bool nolisten)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (!nolisten)
		assert_int_equal(listen(fd, 8), 0);
	return fd;
}

/* As systemd does: @n sockets at fds 3.., the variables for this pid. */
static void pass(const int *fds, int n, const char *names)
{
	int high[4];
	char v[32];

	assert_true(n <= 4);
	for (int i = 0; i < n; i++) {
		high[i] = fcntl(fds[i], F_DUPFD, 100);
		assert_true(high[i] >= 100);
		close(fds[i]);
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(dup2(high[i], 3 + i), 3 + i);
		close(high[i]);
	}
	snprintf(v, sizeof(v), "%d", n);
	setenv("LISTEN_FDS", v, 1);
	snprintf(v, sizeof(v), "%d", (int)getpid());
	setenv("LISTEN_PID", v, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static ino_t path_ino(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_ino : 0;
}

/* ------------------------------------------------------------ sockets */

static void test_nothing_passed(void **state)
{
	struct fx *f = *state;
	char why[256] = "";

	assert_int_equal(sdglue_sockets(f->cfg, why, sizeof(why)), 0);
	assert_string_equal(why, "");
}

/* Without libsystemd, LISTEN_FDS means nothing: the broker binds as before. */
static void test_not_built(void **state)
{
	struct fx *f = *state;
	int fds[1] = { sock_at(f->agent, SOCK_SEQPACKET, false) };
	char why[256] = "";

	if (sdglue_built())
		skip();
	pass(fds, 1, "agent");
	assert_int_equal(sdglue_sockets(f->cfg, why, sizeof(why)), 0);
	assert_true(fd_open(3));
	close(3);
}

static void check_adopted(struct fx *f, const char *path, int type, int want_fd)
{
	char why[256] = "";
	bool stale = true;
	dev_t dev = 1;
	ino_t ino = 1, file = path_ino(path);
	int fd;

	fd = unixsock_bind_path(path, type, 0600, 8, &dev, &ino, &stale, why, sizeof(why));
	assert_int_equal(fd, want_fd);
	assert_false(stale);
	assert_int_equal(dev, 0);
	assert_int_equal(ino, 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Not ours: the end of the broker leaves the file where it was. */
	unixsock_unlink_ours(path, dev, ino);
	close(fd);
	assert_int_equal(path_ino(path), file);
	(void)f;
}

static void test_adopt_named(void **state)
{
	struct fx *f = *state;
	int fds[2] = { sock_at(f->agent, SOCK_SEQPACKET, false),
		       sock_at(f->control, SOCK_STREAM, false) };
	char why[256] = "";

	if (!sdglue_built())
		skip();
	pass(fds, 2, "agent:control");
	assert_int_equal(sdglue_sockets(f->cfg, why, sizeof(why)), 2);
	/* Unset, so nothing the broker starts takes them for its own. */
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_PID"));
	check_adopted(f, f->agent, SOCK_SEQPACKET, 3);
	check_adopted(f, f->control, SOCK_STREAM, 4);
	assert_int_equal(unixsock_inherit_close(), 0);
}

/* No names (the default is the unit's name): the type tells, in any order. */
static void test_adopt_by_type(void **state)
{
	struct fx *f = *state;
	int fds[2] = { sock_at(f->control, SOCK_STREAM, false),
		       sock_at(f->agent, SOCK_SEQPACKET, false) };
	char why[256] = "";

	if (!sdglue_built())
		skip();
	pass(fds, 2, "nfq-broker.socket:nfq-broker.socket");
	assert_int_equal(sdglue_sockets(f->cfg, why, sizeof(why)), 2);
	check_adopted(f, f->agent, SOCK_SEQPACKET, 4);
	check_adopted(f, f->control, SOCK_STREAM, 3);
}

/* A refusal: the message, and every passed fd closed (none left to leak
 * or to be taken for a later bind). */
static void expect_refusal(struct fx *f, int n, int err, const char *msg)
{
	char why[256] = "";

	int rc = sdglue_sockets(f->cfg, why, sizeof(why));

	assert_string_equal(why, msg);
	assert_int_equal(rc, err);
	for (int i = 0; i < n; i++)
		assert_false(fd_open(3 + i));
	assert_int_equal(unixsock_inherit_close(), 0);
}

static void test_wrong_path(void **state)
{
	struct fx *f = *state;
	char other[96], msg[512];
	int fds[1];

	if (!sdglue_built())
		skip();
	snprintf(other, sizeof(other), "%s/other.sock", f->dir);
	fds[0] = sock_at(other, SOCK_SEQPACKET, false);
	pass(fds, 1, "agent");
	snprintf(msg, sizeof(msg), "socket activation: the agent socket is bound at %s but "
		 "broker.listen is %s", other, f->agent);
	expect_refusal(f, 1, -EADDRNOTAVAIL, msg);
	assert_true(path_ino(other) != 0);
}

static void test_wrong_type(void **state)
{
	struct fx *f = *state;
	int fds[1] = { sock_at(f->agent, SOCK_STREAM, false) };

	if (!sdglue_built())
		skip();
	pass(fds, 1, "agent");
	expect_refusal(f, 1, -EPROTOTYPE, "socket activation: fd 3 (agent) is not a listening "
		       "SOCK_SEQPACKET unix socket");
}

static void test_not_listening(void **state)
{
	struct fx *f = *state;
	int fds[1] = { sock_at(f->control, SOCK_STREAM, true) };

	if (!sdglue_built())
		skip();
	pass(fds, 1, "control");
	expect_refusal(f, 1, -EPROTOTYPE, "socket activation: fd 3 (control) is not a listening "
		       "SOCK_STREAM unix socket");
}

static void test_neither(void **state)
{
	struct fx *f = *state;
	char path[96];
	int fds[1];

	if (!sdglue_built())
		skip();
	snprintf(path, sizeof(path), "%s/dgram.sock", f->dir);
	fds[0] = sock_at(path, SOCK_DGRAM, true);
	pass(fds, 1, NULL);
	expect_refusal(f, 1, -EPROTOTYPE, "socket activation: fd 3 (unknown) is neither the "
		       "agent (SOCK_SEQPACKET) nor the control (SOCK_STREAM) unix socket");
}

/* The first adopted, the second refused: both closed, and the next bind of
 * the first path binds a socket of its own. */
static void test_failure_closes_adopted(void **state)
{
	struct fx *f = *state;
	int fds[2] = { sock_at(f->control, SOCK_STREAM, false),
		       sock_at(f->agent, SOCK_STREAM, false) };
	char why[256] = "";
	bool stale = false;
	dev_t dev;
	ino_t ino;
	int fd;

	if (!sdglue_built())
		skip();
	pass(fds, 2, "control:agent");
	expect_refusal(f, 2, -EPROTOTYPE, "socket activation: fd 4 (agent) is not a listening "
		       "SOCK_SEQPACKET unix socket");
	fd = unixsock_bind_path(f->control, SOCK_STREAM, 0600, 8, &dev, &ino, &stale, why,
				sizeof(why));
	assert_true(fd >= 0);
	assert_true(stale);
	assert_int_equal(ino, path_ino(f->control));
	close(fd);
	unixsock_unlink_ours(f->control, dev, ino);
}

static void test_twice(void **state)
{
	struct fx *f = *state;
	char other[96];
	int fds[2];

	if (!sdglue_built())
		skip();
	snprintf(other, sizeof(other), "%s/c2.sock", f->dir);
	fds[0] = sock_at(f->control, SOCK_STREAM, false);
	fds[1] = sock_at(other, SOCK_STREAM, false);
	pass(fds, 2, NULL);
	expect_refusal(f, 2, -EEXIST, "socket activation: two control sockets passed");
}

/* ------------------------------------------------------------ notify */

struct nfx {
	struct fx *f;
	struct loop *loop;
	struct session_mgr *m;
	int notify;
};

static int recv_msg(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	(void)t;
	(void)data;
	loop_stop(l);
}

/* Run the loop for @ms: the STATUS ticks happen meanwhile. */
static void run_for(struct loop *l, unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	assert_int_equal(loop_timer_arm(l, &t, loop_now_ms() + ms), 0);
	assert_int_equal(loop_run(l), 0);
}

static void test_notify(void **state)
{
	struct fx *f = *state;
	struct errs e = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const uint16_t q1[] = { 1 };
	struct session_mgr *m;
	struct sdglue *g;
	struct loop *l;
	struct timespec ts;
	char buf[256], want[256], path[96];
	unsigned long long usec, now;
	int fd;

	if (!sdglue_built())
		skip();
	snprintf(path, sizeof(path), "%s/notify", f->dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	l = loop_new();
	assert_non_null(l);
	snprintf(buf, sizeof(buf), "{ \"namespaces\": [ { \"name\": \"a\", \"queues\": [1], "
		 "\"policy\": \"p\" } ], \"policies\": { \"p\": { \"default\": \"accept\", "
		 "\"rules\": [] } } }");
	m = session_mgr_new(l, cfg_parse_string(buf, &e));
	assert_non_null(m);
	g = sdglue_new(m);
	assert_non_null(g);

	sdglue_ready(g);
	assert_true(recv_msg(fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "READY=1\nSTATUS=namespaces=0 agents=0 refusals=0");

	sdglue_reloading(g);
	assert_true(recv_msg(fd, buf, sizeof(buf)) > 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
	assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
	snprintf(want, sizeof(want), "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
	assert_string_equal(buf, want);
	assert_true(usec <= now && now - usec < 1000000);
	sdglue_ready(g);
	assert_true(recv_msg(fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "READY=1\nSTATUS=namespaces=0 agents=0 refusals=0");

	/* A session appears: one STATUS= at the next tick, then silence. */
	fake_session_queues(m, "a", "p", 77, q1, 1);
	run_for(l, SDGLUE_STATUS_MS + 200);
	assert_true(recv_msg(fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "STATUS=namespaces=1 agents=1 refusals=0");
	run_for(l, SDGLUE_STATUS_MS + 100);
	assert_int_equal(recv_msg(fd, buf, sizeof(buf)), -EAGAIN);

	sdglue_stopping(g);
	assert_true(recv_msg(fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "STOPPING=1");
	sdglue_free(g);
	sdglue_free(NULL);
	session_mgr_free(m);
	loop_free(l);
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

/* No NOTIFY_SOCKET: nothing is sent and no tick is armed. */
static void test_no_notify_socket(void **state)
{
	struct fx *f = *state;
	struct errs e = { 0 };
	struct loop *l = loop_new();
	struct session_mgr *m;
	struct sdglue *g;
	size_t fds;

	(void)f;
	assert_non_null(l);
	m = session_mgr_new(l, cfg_parse_string("{ \"namespaces\": [], \"policies\": {} }", &e));
	assert_non_null(m);
	g = sdglue_new(m);
	assert_non_null(g);
	fds = loop_fd_count(l);
	sdglue_ready(g);
	sdglue_reloading(g);
	sdglue_ready(g);
	sdglue_stopping(g);
	assert_int_equal(loop_fd_count(l), fds);
	sdglue_free(g);
	session_mgr_free(m);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_passed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_built, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_by_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_listening, setup, teardown),
		cmocka_unit_test_setup_teardown(test_neither, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_closes_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_notify_socket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
