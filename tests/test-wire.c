/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/wire.c: record transport, fd hygiene, hello checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "wire.h"
#include "nfq-msg.h"
#include "scm.h"

static int count_fds(void)
{
	int n = tmsg_count_fds();

	assert_true(n >= 0);
	return n;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* Raw sendmsg with any number of fds, for what wire_send refuses to send. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	assert_int_equal(tscm_send(sock, buf, len, fds, nfds), (ssize_t)len);
}

static void same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_true(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

static void test_hello_roundtrip(void **state)
{
	struct wire_hello h, got;
	int sv[2], p[2], fds[WIRE_MAX_FDS];
	char why[WIRE_REASON_MAX], buf[WIRE_MSG_MAX];
	size_t nfds = 99;
	ssize_t n;

	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	wire_hello_init(&h, "kube-system/pod-a", 1234, 2);
	assert_int_equal(wire_send(sv[0], &h, sizeof(h), p, 2), 0);

	n = wire_recv(sv[1], buf, sizeof(buf), fds, &nfds);
	assert_int_equal(n, sizeof(got));
	memcpy(&got, buf, sizeof(got));
	assert_int_equal(nfds, 2);
	assert_memory_equal(&h, &got, sizeof(h));
	assert_int_equal(wire_peek_type(&got, (size_t)n), WIRE_HELLO);
	assert_int_equal(wire_hello_check(&got, (size_t)n, nfds, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	/* Copies: the sender keeps its fds, the receiver got new ones. */
	for (int i = 0; i < 2; i++) {
		assert_true(fds[i] >= 0 && fds[i] != p[0] && fds[i] != p[1]);
		same_file(fds[i], p[i]);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		close(fds[i]);
	}
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

static void test_answers_roundtrip(void **state)
{
	struct wire_accept a;
	struct wire_refuse r;
	struct wire_bye b;
	char buf[WIRE_MSG_MAX];
	int sv[2], fds[WIRE_MAX_FDS];
	size_t nfds;
	ssize_t n;

	(void)state;
	pair(sv);
	wire_accept_init(&a, 4026531993ull, 3);
	wire_refuse_init(&r, "no namespace entry matches\nname x");
	wire_bye_init(&b);
	assert_int_equal(wire_send(sv[1], &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(wire_send(sv[1], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(wire_send(sv[1], &b, sizeof(b), NULL, 0), 0);

	n = wire_recv(sv[0], buf, sizeof(buf), fds, &nfds);
	assert_int_equal(n, sizeof(a));
	assert_int_equal(nfds, 0);
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	assert_int_equal(wire_peek_type(buf, (size_t)n), WIRE_ACCEPT);
	assert_memory_equal(buf, &a, sizeof(a));
	assert_true(((struct wire_accept *)buf)->netns_inode == 4026531993ull);

	n = wire_recv(sv[0], buf, sizeof(buf), fds, &nfds);
	assert_int_equal(n, sizeof(r));
	assert_int_equal(wire_peek_type(buf, (size_t)n), WIRE_REFUSE);
	/* One line, whatever the broker passed in. */
	assert_string_equal(((struct wire_refuse *)buf)->reason,
			    "no namespace entry matches name x");

	n = wire_recv(sv[0], buf, sizeof(buf), fds, &nfds);
	assert_int_equal(n, sizeof(b));
	assert_int_equal(wire_peek_type(buf, (size_t)n), WIRE_BYE);

	/* EOF once the peer is gone. */
	close(sv[1]);
	assert_int_equal(wire_recv(sv[0], buf, sizeof(buf), fds, &nfds), 0);
	assert_int_equal(nfds, 0);
	close(sv[0]);
}

static void test_recv_nonblocking_empty(void **state)
{
	char buf[WIRE_MSG_MAX];
	int sv[2], fds[WIRE_MAX_FDS];
	size_t nfds;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(wire_recv(sv[0], buf, sizeof(buf), fds, &nfds), -EAGAIN);
	assert_int_equal(nfds, 0);
	close_pair(sv);
}

static void test_send_bad_args(void **state)
{
	struct wire_bye b;
	int sv[2], p[2], three[3];

	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	three[0] = p[0];
	three[1] = p[1];
	three[2] = p[0];
	wire_bye_init(&b);
	assert_int_equal(wire_send(sv[0], &b, sizeof(b), three, 3), -EINVAL);
	assert_int_equal(wire_send(sv[0], NULL, 8, NULL, 0), -EINVAL);
	assert_int_equal(wire_send(sv[0], &b, 0, NULL, 0), -EINVAL);
	assert_int_equal(wire_send(sv[0], &b, sizeof(b), NULL, 1), -EINVAL);
	assert_int_equal(wire_send(-1, &b, sizeof(b), NULL, 0), -EBADF);
	/* Nothing was sent by the failed calls. */
	assert_int_equal(wire_send(sv[0], &b, sizeof(b), NULL, 0), 0);
	{
		char buf[WIRE_MSG_MAX];
		int fds[WIRE_MAX_FDS];
		size_t nfds;

		assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), sizeof(b));
		assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
		assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), -EAGAIN);
	}
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

/* A record with too many fds: every one that arrived is closed. */
static void too_many_fds(size_t count)
{
	struct wire_hello h;
	char buf[WIRE_MSG_MAX];
	int sv[2], src[64], fds[WIRE_MAX_FDS];
	size_t nfds = 77;
	int before, p[2];

	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	for (size_t i = 0; i < count; i++)
		src[i] = p[i % 2];
	wire_hello_init(&h, "x", 1, 2);
	before = count_fds();
	send_raw(sv[0], &h, sizeof(h), src, count);
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), -EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	assert_int_equal(count_fds(), before);
	/* The connection is still usable: the next record comes through. */
	assert_int_equal(wire_send(sv[0], &h, sizeof(h), p, 1), 0);
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), sizeof(h));
	assert_int_equal(nfds, 1);
	close(fds[0]);
	assert_int_equal(count_fds(), before);
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

static void test_recv_three_fds(void **state)
{
	(void)state;
	too_many_fds(3);
}

static void test_recv_many_fds_ctrunc(void **state)
{
	/* More than the receive control buffer holds: MSG_CTRUNC path. */
	(void)state;
	too_many_fds(40);
}

static void test_recv_trunc(void **state)
{
	char big[WIRE_MSG_MAX + 64], buf[WIRE_MSG_MAX];
	int sv[2], p[2], fds[WIRE_MAX_FDS];
	size_t nfds = 5;
	int before;

	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	memset(big, 'A', sizeof(big));
	before = count_fds();
	send_raw(sv[0], big, sizeof(big), p, 1);
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), -EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(fds[0], -1);
	assert_int_equal(count_fds(), before);
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

static void test_recv_foreign_cmsg(void **state)
{
	struct wire_hello h;
	char buf[WIRE_MSG_MAX];
	int sv[2], p[2], fds[WIRE_MAX_FDS], one = 1;
	size_t nfds = 5;
	int before;

	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* SO_PASSCRED makes the kernel attach SCM_CREDENTIALS to each record. */
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	wire_hello_init(&h, "x", 1, 1);
	before = count_fds();
	send_raw(sv[0], &h, sizeof(h), p, 1);
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), -EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(count_fds(), before);
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

static void test_recv_empty_record_with_fd(void **state)
{
	char buf[WIRE_MSG_MAX], nothing = 0;
	int sv[2], p[2], fds[WIRE_MAX_FDS];
	size_t nfds = 5;
	int before;

	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	before = count_fds();
	send_raw(sv[0], &nothing, 0, p, 2);
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), 0);
	assert_int_equal(nfds, 0);
	assert_int_equal(count_fds(), before);
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

/* ---- hello checks ---- */

static int check(const struct wire_hello *h, size_t len, size_t nfds, char *why)
{
	return wire_hello_check(h, len, nfds, why, WIRE_REASON_MAX);
}

static void test_hello_ok(void **state)
{
	struct wire_hello h;
	char why[WIRE_REASON_MAX], name[WIRE_NAME_MAX];

	(void)state;
	wire_hello_init(&h, "kube-system/coredns-5d78c9869d-abc.1:x_y", 1, 1);
	assert_int_equal(check(&h, sizeof(h), 1, why), 0);
	wire_hello_init(&h, "a", 1, 2);
	assert_int_equal(check(&h, sizeof(h), 2, why), 0);
	/* The longest name that fits. */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	wire_hello_init(&h, name, 1, 1);
	assert_int_equal(check(&h, sizeof(h), 1, why), 0);
	/* wire_hello_init truncates rather than overflowing. */
	{
		char longer[WIRE_NAME_MAX + 20];

		memset(longer, 'm', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		wire_hello_init(&h, longer, 1, 1);
		assert_int_equal(strlen(h.name), WIRE_NAME_MAX - 1);
	}
}

static void test_hello_size(void **state)
{
	struct {
		struct wire_hello h;
		char extra[8];
	} big;
	char why[WIRE_REASON_MAX];

	(void)state;
	wire_hello_init(&big.h, "x", 1, 1);
	memset(big.extra, 0, sizeof(big.extra));
	assert_int_equal(check(&big.h, 0, 1, why), -EPROTO);
	assert_string_equal(why, "hello too short: 0 bytes");
	assert_int_equal(check(&big.h, 4, 1, why), -EPROTO);
	assert_string_equal(why, "hello too short: 4 bytes");
	assert_int_equal(check(&big.h, sizeof(big.h) - 1, 1, why), -EPROTO);
	assert_non_null(strstr(why, "expected 336"));
	assert_int_equal(check(&big.h, sizeof(big.h) + 1, 1, why), -EPROTO);
	assert_string_equal(why, "hello is 337 bytes, expected 336");
	assert_int_equal(wire_hello_check(NULL, 0, 1, why, sizeof(why)), -EPROTO);
	/* NULL reason buffer is fine. */
	assert_int_equal(wire_hello_check(&big.h, 4, 1, NULL, 0), -EPROTO);
}

static void test_hello_header(void **state)
{
	struct wire_hello h;
	char why[WIRE_REASON_MAX];

	(void)state;
	wire_hello_init(&h, "x", 1, 1);
	h.hdr.magic = 0x12345678;
	assert_int_equal(check(&h, sizeof(h), 1, why), -EPROTO);
	assert_string_equal(why, "bad magic 0x12345678");

	wire_hello_init(&h, "x", 1, 1);
	h.hdr.version = 7;
	assert_int_equal(check(&h, sizeof(h), 1, why), -EPROTONOSUPPORT);
	assert_string_equal(why, "protocol version 7 not supported (broker speaks 1)");
	/* A future version may have another size: the version is still named. */
	assert_int_equal(check(&h, 40, 1, why), -EPROTONOSUPPORT);
	assert_string_equal(why, "protocol version 7 not supported (broker speaks 1)");

	wire_hello_init(&h, "x", 1, 1);
	h.hdr.type = WIRE_ACCEPT;
	assert_int_equal(check(&h, sizeof(h), 1, why), -EPROTO);
	assert_string_equal(why, "expected hello (type 1), got type 2");
}

static void test_hello_nfds(void **state)
{
	struct wire_hello h;
	char why[WIRE_REASON_MAX];

	(void)state;
	wire_hello_init(&h, "x", 1, 2);
	assert_int_equal(check(&h, sizeof(h), 1, why), -EPROTO);
	assert_string_equal(why, "hello announces 2 fds but 1 arrived");
	wire_hello_init(&h, "x", 1, 1);
	assert_int_equal(check(&h, sizeof(h), 2, why), -EPROTO);
	assert_string_equal(why, "hello announces 1 fds but 2 arrived");
	wire_hello_init(&h, "x", 1, 0);
	assert_int_equal(check(&h, sizeof(h), 0, why), -EPROTO);
	assert_string_equal(why, "hello announces 0 fds, expected 1 or 2");
	wire_hello_init(&h, "x", 1, 3);
	assert_int_equal(check(&h, sizeof(h), 3, why), -EPROTO);
	assert_string_equal(why, "hello announces 3 fds, expected 1 or 2");

	wire_hello_init(&h, "x", 1, 1);
	h.flags = 0x10;
	assert_int_equal(check(&h, sizeof(h), 1, why), -EPROTO);
	assert_string_equal(why, "hello has unknown flags 0x0010");
}

static void test_hello_name(void **state)
{
	static const char bad[] = { ' ', '"', '\\', '=', '\n', '\t', 0x7f, (char)0x80, (char)0xff };
	struct wire_hello h;
	char why[WIRE_REASON_MAX], expect[WIRE_REASON_MAX];

	(void)state;
	wire_hello_init(&h, "", 1, 1);
	assert_int_equal(check(&h, sizeof(h), 1, why), -EINVAL);
	assert_string_equal(why, "name is empty");

	wire_hello_init(&h, "x", 1, 1);
	memset(h.name, 'a', sizeof(h.name));
	assert_int_equal(check(&h, sizeof(h), 1, why), -EINVAL);
	assert_string_equal(why, "name is not NUL-terminated within 320 bytes");

	for (size_t i = 0; i < sizeof(bad); i++) {
		wire_hello_init(&h, "pod-", 1, 1);
		h.name[4] = bad[i];
		h.name[5] = 'z';
		assert_int_equal(check(&h, sizeof(h), 1, why), -EINVAL);
		snprintf(expect, sizeof(expect),
			 "name has invalid character 0x%02x at offset 4", (unsigned char)bad[i]);
		assert_string_equal(why, expect);
	}
}

static void test_peek_type(void **state)
{
	struct wire_accept a;
	struct wire_bye b;
	char junk[4] = { 0 };

	(void)state;
	wire_accept_init(&a, 1, 1);
	assert_int_equal(wire_peek_type(&a, sizeof(a)), WIRE_ACCEPT);
	assert_int_equal(wire_peek_type(&a, sizeof(a) - 1), -1);
	assert_int_equal(wire_peek_type(&a, sizeof(a) + 1), -1);
	assert_int_equal(wire_peek_type(junk, sizeof(junk)), -1);
	assert_int_equal(wire_peek_type(NULL, 0), -1);
	wire_bye_init(&b);
	b.hdr.type = 9;
	assert_int_equal(wire_peek_type(&b, sizeof(b)), -1);
	wire_bye_init(&b);
	b.hdr.version = 2;
	assert_int_equal(wire_peek_type(&b, sizeof(b)), -1);
	wire_bye_init(&b);
	b.hdr.magic ^= 1;
	assert_int_equal(wire_peek_type(&b, sizeof(b)), -1);
}

static void test_refuse_init_long(void **state)
{
	struct wire_refuse r;
	char longer[WIRE_REASON_MAX * 2];

	(void)state;
	memset(longer, 'r', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	wire_refuse_init(&r, longer);
	assert_int_equal(strlen(r.reason), sizeof(r.reason) - 1);
	assert_int_equal(wire_refuse_flags(&r), 0);
	wire_refuse_init(&r, NULL);
	assert_string_equal(r.reason, "");
}

/* The flags share the old 256-byte reason field: the record keeps its size. */
static void test_refuse_flags(void **state)
{
	struct wire_refuse r;
	char buf[WIRE_MSG_MAX];
	int sv[2], fds[WIRE_MAX_FDS];
	size_t nfds;

	(void)state;
	assert_int_equal(sizeof(r), sizeof(struct wire_hdr) + WIRE_REASON_MAX);
	pair(sv);
	wire_refuse_init_flags(&r, "broker out of fds", WIRE_REFUSE_F_RETRY);
	assert_int_equal(wire_send(sv[1], &r, sizeof(r), NULL, 0), 0);
	assert_int_equal(wire_recv(sv[0], buf, sizeof(buf), fds, &nfds), sizeof(r));
	assert_int_equal(wire_peek_type(buf, sizeof(r)), WIRE_REFUSE);
	memcpy(&r, buf, sizeof(r));
	assert_string_equal(r.reason, "broker out of fds");
	assert_int_equal(wire_refuse_flags(&r), WIRE_REFUSE_F_RETRY);
	/* What an older agent reads: the reason up to its NUL in 256 bytes. */
	assert_int_equal(strnlen((const char *)buf + sizeof(struct wire_hdr), WIRE_REASON_MAX),
			 strlen("broker out of fds"));
	/* An older broker's reason of 255 characters runs into the flags
	 * bytes: they are text then, not flags. */
	memset(r.reason, 'r', sizeof(r.reason));
	memset(&r.flags, 'r', sizeof(r.flags) - 1);
	((char *)&r.flags)[sizeof(r.flags) - 1] = '\0';
	assert_int_equal(wire_refuse_flags(&r), 0);
	close_pair(sv);
}

/* A peer that never reads cannot hold the sender: -EAGAIN, not a wait. */
static void test_send_never_blocks(void **state)
{
	struct wire_refuse r;
	int sv[2], rc = 0;

	(void)state;
	pair(sv);           /* blocking sockets: only the flags keep us going */
	wire_refuse_init(&r, "x");
	for (int i = 0; i < 100000 && rc == 0; i++)
		rc = wire_send(sv[1], &r, sizeof(r), NULL, 0);
	assert_int_equal(rc, -EAGAIN);
	close(sv[0]);
	/* A closed peer is an error, without SIGPIPE killing the test. */
	rc = wire_send(sv[1], &r, sizeof(r), NULL, 0);
	assert_true(rc == -EPIPE || rc == -ECONNRESET);
	close(sv[1]);
}

/* Fill the fd table up to the soft limit; returns how many were opened. */
static int fill_fds(int *held, int max)
{
	int n = 0;

	while (n < max) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			assert_int_equal(errno, EMFILE);
			break;
		}
		held[n++] = fd;
	}
	return n;
}

/* Out of fds on our side is -EMFILE (retryable), not the peer's fault. */
static void test_recv_emfile(void **state)
{
	struct rlimit old, low;
	struct wire_hello h;
	char buf[WIRE_MSG_MAX];
	int sv[2], p[2], fds[WIRE_MAX_FDS], held[256], nheld, fd;
	size_t nfds = 9;

	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	wire_hello_init(&h, "x", 1, 2);
	assert_int_equal(wire_send(sv[0], &h, sizeof(h), p, 2), 0);
	assert_int_equal(wire_send(sv[0], &h, sizeof(h), p, 2), 0);
	assert_int_equal(wire_send(sv[0], &h, sizeof(h), p, 2), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)count_fds() + 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	nheld = fill_fds(held, 256);
	assert_true(nheld > 0 && nheld < 256);
	/* No fd free: the record arrives, its fds do not. */
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), -EMFILE);
	assert_int_equal(nfds, 0);
	/* One free: one of two arrives, and is closed (its slot free again). */
	close(held[--nheld]);
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), -EMFILE);
	assert_int_equal(fds[0], -1);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	while (nheld > 0)
		close(held[--nheld]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* Room again: the same peer's next record comes through whole. */
	assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), fds, &nfds), sizeof(h));
	assert_int_equal(nfds, 2);
	close(fds[0]);
	close(fds[1]);
	close(p[0]);
	close(p[1]);
	close_pair(sv);
}

/* ---- fd checks ---- */

static void test_fd_check(void **state)
{
	char why[WIRE_REASON_MAX];
	int p[2], u[2], rt, nf, before;

	(void)state;
	before = count_fds();
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(wire_fd_check(p[0], NETLINK_NETFILTER, why, sizeof(why)), -ENOTSOCK);
	assert_string_equal(why, "not a socket");

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, u), 0);
	assert_int_equal(wire_fd_check(u[0], NETLINK_NETFILTER, why, sizeof(why)), -EAFNOSUPPORT);
	assert_string_equal(why, "socket family 1 is not AF_NETLINK");

	rt = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	assert_true(rt >= 0);
	assert_int_equal(wire_fd_check(rt, NETLINK_NETFILTER, why, sizeof(why)), -EPROTONOSUPPORT);
	assert_string_equal(why, "netlink protocol 0 is not NETLINK_NETFILTER (12)");
	assert_int_equal(wire_fd_check(rt, NETLINK_ROUTE, why, sizeof(why)), 0);
	assert_string_equal(why, "");

	nf = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	assert_true(nf >= 0);
	assert_int_equal(wire_fd_check(nf, NETLINK_NETFILTER, why, sizeof(why)), 0);
	assert_int_equal(wire_fd_check(nf, NETLINK_ROUTE, why, sizeof(why)), -EPROTONOSUPPORT);
	assert_string_equal(why, "netlink protocol 12 is not NETLINK_ROUTE (0)");
	assert_int_equal(wire_fd_check(nf, NETLINK_NETFILTER, NULL, 0), 0);

	close(nf);
	assert_int_equal(wire_fd_check(nf, NETLINK_NETFILTER, why, sizeof(why)), -EBADF);
	assert_int_equal(wire_fd_check(-1, NETLINK_NETFILTER, NULL, 0), -EBADF);

	close(rt);
	close_pair(u);
	close(p[0]);
	close(p[1]);
	assert_int_equal(count_fds(), before);
}

static void test_fd_netns(void **state)
{
	struct stat st;
	uint64_t dev = 0, ino = 0;
	int nf, p[2], before, ret;

	(void)state;
	before = count_fds();
	nf = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	assert_true(nf >= 0);
	ret = wire_fd_netns(nf, &dev, &ino);
	if (ret == -EPERM) {
		close(nf);
		skip();   /* SIOCGSKNS needs CAP_NET_ADMIN */
	}
	assert_int_equal(ret, 0);
	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	assert_true(ino == st.st_ino);
	assert_true(dev == st.st_dev);
	/* The nsfs fd was closed again. */
	assert_int_equal(wire_fd_netns(nf, NULL, NULL), 0);
	close(nf);
	assert_int_equal(count_fds(), before);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(wire_fd_netns(p[0], &dev, &ino) < 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(wire_fd_netns(-1, &dev, &ino), -EBADF);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_roundtrip),
		cmocka_unit_test(test_answers_roundtrip),
		cmocka_unit_test(test_recv_nonblocking_empty),
		cmocka_unit_test(test_send_bad_args),
		cmocka_unit_test(test_recv_three_fds),
		cmocka_unit_test(test_recv_many_fds_ctrunc),
		cmocka_unit_test(test_recv_trunc),
		cmocka_unit_test(test_recv_foreign_cmsg),
		cmocka_unit_test(test_recv_empty_record_with_fd),
		cmocka_unit_test(test_hello_ok),
		cmocka_unit_test(test_hello_size),
		cmocka_unit_test(test_hello_header),
		cmocka_unit_test(test_hello_nfds),
		cmocka_unit_test(test_hello_name),
		cmocka_unit_test(test_peek_type),
		cmocka_unit_test(test_refuse_init_long),
		cmocka_unit_test(test_refuse_flags),
		cmocka_unit_test(test_send_never_blocks),
		cmocka_unit_test(test_recv_emfile),
		cmocka_unit_test(test_fd_check),
		cmocka_unit_test(test_fd_netns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
