/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/queue.c: opening, option checks, binding against the
 * real kernel (tests run as root), adoption of a socket bound by a previous
 * owner, and the receive loop.
 *
 * Queue numbers are high and derived from the pid so that parallel test
 * runs do not collide; every test unbinds what it bound. The receive loop
 * is driven through an AF_UNIX socketpair with synthetic packet messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include "internal.h"
#include "nfq-msg.h"

/*
 * Which receive the library makes: recvfrom() and recvmmsg() interposed
 * and counted, then made as system calls. Not under ASan, whose
 * interceptors own them: the counts then stay 0 and a test skips them.
 */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
static unsigned n_recvfrom, n_recvmmsg;

#if !defined(__SANITIZE_ADDRESS__) && !__has_feature(address_sanitizer)
#define COUNT_RECVS 1
#include <sys/syscall.h>

#ifdef __USE_GNU
#define SA_PTR(a) ((a).__sockaddr__)
#else
#define SA_PTR(a) (a)
#endif

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG sa,
		 socklen_t *salen)
{
	n_recvfrom++;
	return syscall(SYS_recvfrom, fd, buf, len, flags, SA_PTR(sa), salen);
}

int recvmmsg(int fd, struct mmsghdr *mm, unsigned int vlen, int flags, struct timespec *tmo)
{
	n_recvmmsg++;
	return (int)syscall(SYS_recvmmsg, fd, mm, vlen, flags, tmo);
}
#else
#define COUNT_RECVS 0
#endif

static void recvs_reset(void)
{
	n_recvfrom = n_recvmmsg = 0;
}

/* The receives since recvs_reset(), where they are counted. */
static void recvs_check(unsigned from, unsigned mmsg)
{
	if (!COUNT_RECVS)
		return;
	assert_int_equal(n_recvfrom, from);
	assert_int_equal(n_recvmmsg, mmsg);
}

#define FAKE_QNUM 3

static uint16_t qnum(int k)
{
	return (uint16_t)(40000 + (getpid() % 1000) * 5 + k);
}

static void on_packet(struct nfqb_packet *p, void *user)
{
	int *calls = user;

	if (calls)
		(*calls)++;
	nfqb_packet_accept(p);
}

/* The kernel's view of queue @num: its entry in nfnetlink_queue. */
static bool kstat_find(uint16_t num, struct nfqb_kstat *out)
{
	struct nfqb_kstat k[256];
	int n = nfqb_kstats_read(NULL, k, 256);

	assert_true(n >= 0 && n <= 256);
	for (int i = 0; i < n; i++) {
		if (k[i].queue == num) {
			if (out)
				*out = k[i];
			return true;
		}
	}
	return false;
}

static void expect_bound_to(uint16_t num, const struct nfqb_queue *q)
{
	struct nfqb_kstat k;

	assert_true(kstat_find(num, &k));
	assert_int_equal(k.portid, nfqb_queue_portid(q));
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ---- options ----------------------------------------------------------- */

struct bad_opts {
	struct nfqb_queue_opts o;
	const char *says;
};

static void test_opts_validation(void **state)
{
	const struct bad_opts bad[] = {
		{ { 0, NFQB_COPY_PACKET, 65535, 0, 0 }, "max_len" },
		{ { 16, NFQB_COPY_PACKET, 0, 0, 0 }, "range 0" },
		{ { 16, NFQB_COPY_PACKET, 65536, 0, 0 }, "65535" },
		{ { 16, (enum nfqb_copy_mode)9, 100, 0, 0 }, "mode" },
		{ { 16, NFQB_COPY_PACKET, 100, 0, 1u << 7 }, "flag" },
		{ { 16, NFQB_COPY_PACKET, 100, NFQB_MAX_SOCK_LEN + 1, 0 }, "sock_len" },
	};
	const struct nfqb_queue_opts meta = { 16, NFQB_COPY_META, 0, 0, 0 };
	const struct nfqb_queue_opts small = { 16, NFQB_COPY_PACKET, 100, 0, NFQB_F_GSO };
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = qnum(0);
	char numstr[16];
	struct nfqb_kstat k;

	assert_non_null(q);
	snprintf(numstr, sizeof(numstr), "%u", num);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, &bad[i].o), -EINVAL);
		if (!strstr(nfqb_queue_errmsg(q), bad[i].says) ||
		    !strstr(nfqb_queue_errmsg(q), numstr))
			fail_msg("case %zu: errmsg \"%s\" does not name \"%s\" and queue %s",
				 i, nfqb_queue_errmsg(q), bad[i].says, numstr);
		assert_false(kstat_find(num, NULL));
	}
	/* COPY_META needs no range. */
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, &meta), 0);
	expect_bound_to(num, q);
	assert_true(kstat_find(num, &k));
	assert_int_equal(k.copy_mode, NFQB_COPY_META);
	assert_int_equal(nfqb_queue_unbind(q, num), 0);
	assert_false(kstat_find(num, NULL));

	/* The object is none the worse for the refusals. */
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, NULL), 0);
	expect_bound_to(num, q);
	assert_true(kstat_find(num, &k));
	assert_int_equal(k.copy_mode, NFQB_COPY_PACKET);
	assert_false(nfqb_queue_adopted(q, num));

	/* set_opts: same checks, applied without unbinding. */
	assert_int_equal(nfqb_queue_set_opts(q, num, &bad[0].o), -EINVAL);
	assert_int_equal(nfqb_queue_set_opts(q, num, NULL), -EINVAL);
	assert_int_equal(nfqb_queue_set_opts(q, qnum(1), &small), -ENOENT);
	assert_int_equal(nfqb_queue_set_opts(q, num, &small), 0);
	assert_true(kstat_find(num, &k));
	assert_int_equal(k.copy_mode, NFQB_COPY_PACKET);
	assert_int_equal(k.copy_range, 100);
	assert_int_equal(k.portid, nfqb_queue_portid(q));

	assert_int_equal(nfqb_queue_unbind(q, num), 0);
	assert_false(kstat_find(num, NULL));
	nfqb_queue_close(q);
	(void)state;
}

static void test_bind_bad_args(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();

	assert_non_null(q);
	assert_int_equal(nfqb_queue_bind(NULL, qnum(0), on_packet, NULL, NULL), -EINVAL);
	assert_int_equal(nfqb_queue_bind(q, qnum(0), NULL, NULL, NULL), -EINVAL);
	assert_false(kstat_find(qnum(0), NULL));
	assert_int_equal(nfqb_queue_unbind(NULL, qnum(0)), -EINVAL);
	assert_int_equal(nfqb_queue_unbind(q, qnum(0)), -ENOENT);
	nfqb_queue_close(q);
	(void)state;
}

/* ---- binding conflicts -------------------------------------------------- */

static void test_bind_twice_same_object(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = qnum(0);

	assert_non_null(q);
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, NULL), 0);
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, NULL), -EBUSY);
	assert_non_null(strstr(nfqb_queue_errmsg(q), "already bound"));
	expect_bound_to(num, q);
	assert_int_equal(q->nbind, 1);
	assert_int_equal(nfqb_queue_unbind(q, num), 0);
	assert_int_equal(nfqb_queue_unbind(q, num), -ENOENT);
	assert_false(kstat_find(num, NULL));
	nfqb_queue_close(q);
	(void)state;
}

static void test_bind_taken_by_other_socket(void **state)
{
	struct nfqb_queue *q1 = nfqb_queue_open(), *q2 = nfqb_queue_open();
	uint16_t num = qnum(0);

	assert_non_null(q1);
	assert_non_null(q2);
	assert_int_not_equal(nfqb_queue_portid(q1), nfqb_queue_portid(q2));
	assert_int_equal(nfqb_queue_bind(q1, num, on_packet, NULL, NULL), 0);
	assert_int_equal(nfqb_queue_bind(q2, num, on_packet, NULL, NULL), -EBUSY);
	assert_non_null(strstr(nfqb_queue_errmsg(q2), "already bound by another socket"));
	assert_false(nfqb_queue_adopted(q2, num));
	/* The owner keeps it, the loser stays usable. */
	expect_bound_to(num, q1);
	assert_int_equal(nfqb_queue_bind(q2, qnum(1), on_packet, NULL, NULL), 0);
	expect_bound_to(qnum(1), q2);
	nfqb_queue_close(q2);
	assert_false(kstat_find(qnum(1), NULL));
	expect_bound_to(num, q1);
	nfqb_queue_close(q1);
	assert_false(kstat_find(num, NULL));
	(void)state;
}

static void test_close_unbinds_all(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	int fd;

	assert_non_null(q);
	fd = nfqb_queue_fd(q);
	assert_true(fd >= 0);
	for (int k = 0; k < 3; k++)
		assert_int_equal(nfqb_queue_bind(q, qnum(k), on_packet, NULL, NULL), 0);
	for (int k = 0; k < 3; k++)
		expect_bound_to(qnum(k), q);
	nfqb_queue_close(q);
	for (int k = 0; k < 3; k++)
		assert_false(kstat_find(qnum(k), NULL));
	assert_false(fd_open(fd));
	nfqb_queue_close(NULL);
	nfqb_queue_detach(NULL);
	(void)state;
}

/* ---- open_fd -------------------------------------------------------------- */

static void expect_open_fd_fails(int fd, int err)
{
	errno = 0;
	assert_null(nfqb_queue_open_fd(fd));
	assert_int_equal(errno, err);
	if (fd >= 0)
		assert_false(fd_open(fd));   /* ownership was taken: closed */
}

static void test_open_fd_errors(void **state)
{
	int p[2], fd;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	expect_open_fd_fails(p[0], ENOTSOCK);
	assert_true(fd_open(p[1]));   /* nothing else touched */
	close(p[1]);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	expect_open_fd_fails(fd, EAFNOSUPPORT);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	assert_true(fd >= 0);
	expect_open_fd_fails(fd, EPROTONOSUPPORT);

	expect_open_fd_fails(-1, EBADF);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	close(fd);
	expect_open_fd_fails(fd, EBADF);
	(void)state;
}

static void test_open_fd_ok(void **state)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);
	struct nfqb_queue *q;

	assert_true(fd >= 0);
	q = nfqb_queue_open_fd(fd);
	assert_non_null(q);
	assert_int_equal(nfqb_queue_fd(q), fd);
	assert_int_equal(nfqb_queue_fd(NULL), -EINVAL);
	/* The port id is fixed at open, before any request. */
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	assert_int_not_equal(sa.nl_pid, 0);
	assert_int_equal(nfqb_queue_portid(q), sa.nl_pid);
	assert_int_equal(nfqb_queue_bind(q, qnum(0), on_packet, NULL, NULL), 0);
	expect_bound_to(qnum(0), q);
	nfqb_queue_close(q);
	assert_false(fd_open(fd));
	assert_false(kstat_find(qnum(0), NULL));
	(void)state;
}

/* ---- adoption -------------------------------------------------------------- */

static void test_adoption(void **state)
{
	struct nfqb_queue *q1 = nfqb_queue_open(), *q2;
	uint16_t num = qnum(0);
	uint32_t portid;

	assert_non_null(q1);
	assert_int_equal(nfqb_queue_bind(q1, num, on_packet, NULL, NULL), 0);
	portid = nfqb_queue_portid(q1);
	/* A second owner of the same socket, as an agent would hand it over. */
	q2 = nfqb_queue_open_fd(dup(nfqb_queue_fd(q1)));
	assert_non_null(q2);
	assert_int_equal(nfqb_queue_portid(q2), portid);
	nfqb_queue_detach(q1);
	/* The socket lives on in q2: the kernel keeps the queue. */
	assert_true(kstat_find(num, NULL));
	assert_int_equal(nfqb_queue_bind(q2, num, on_packet, NULL, NULL), 0);
	assert_true(nfqb_queue_adopted(q2, num));
	assert_false(nfqb_queue_adopted(q2, qnum(1)));
	expect_bound_to(num, q2);
	/* A fresh number on the same object is a plain bind. */
	assert_int_equal(nfqb_queue_bind(q2, qnum(1), on_packet, NULL, NULL), 0);
	assert_false(nfqb_queue_adopted(q2, qnum(1)));
	assert_int_equal(nfqb_queue_unbind(q2, num), 0);
	assert_false(nfqb_queue_adopted(q2, num));
	assert_false(kstat_find(num, NULL));
	nfqb_queue_close(q2);
	assert_false(kstat_find(qnum(1), NULL));
	(void)state;
}

/* ---- flags ------------------------------------------------------------------ */

static void test_flag_names(void **state)
{
	assert_string_equal(nfqb_flag_name(NFQB_F_FAIL_OPEN), "fail_open");
	assert_string_equal(nfqb_flag_name(NFQB_F_CONNTRACK), "conntrack");
	assert_string_equal(nfqb_flag_name(NFQB_F_GSO), "gso");
	assert_string_equal(nfqb_flag_name(NFQB_F_UID_GID), "uid_gid");
	assert_string_equal(nfqb_flag_name(NFQB_F_SECCTX), "secctx");
	assert_null(nfqb_flag_name(0));
	assert_null(nfqb_flag_name(1u << 5));
	assert_null(nfqb_flag_name(NFQB_F_GSO | NFQB_F_UID_GID));
	(void)state;
}

static void test_conntrack_flag(void **state)
{
	struct nfqb_queue_opts o = NFQB_QUEUE_OPTS_DEFAULT;
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = qnum(0);
	int err;

	assert_non_null(q);
	o.flags = NFQB_F_GSO | NFQB_F_CONNTRACK;
	err = nfqb_queue_bind(q, num, on_packet, NULL, &o);
	if (err == 0) {
		expect_bound_to(num, q);
		assert_int_equal(nfqb_queue_rejected_flags(q), 0);
		assert_int_equal(nfqb_queue_unbind(q, num), 0);
	} else {
		assert_int_equal(err, -EOPNOTSUPP);
		assert_true(nfqb_queue_rejected_flags(q) & NFQB_F_CONNTRACK);
		assert_false(nfqb_queue_rejected_flags(q) & NFQB_F_GSO);
		assert_non_null(strstr(nfqb_queue_errmsg(q), "conntrack"));
		assert_false(kstat_find(num, NULL));
		print_message("kernel refuses NFQB_F_CONNTRACK: %s\n", nfqb_queue_errmsg(q));
	}
	/* Without the flag the bind works, and the refusal is forgotten. */
	o.flags = NFQB_F_GSO;
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, &o), 0);
	assert_int_equal(nfqb_queue_rejected_flags(q), 0);
	expect_bound_to(num, q);
	nfqb_queue_close(q);
	(void)state;
}

static void test_every_flag_bound_or_named(void **state)
{
	struct nfqb_queue_opts o = NFQB_QUEUE_OPTS_DEFAULT;
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = qnum(0);
	uint32_t rej;
	int err;

	assert_non_null(q);
	o.flags = NFQB_F_ALL;
	err = nfqb_queue_bind(q, num, on_packet, NULL, &o);
	if (err == -EOPNOTSUPP) {
		rej = nfqb_queue_rejected_flags(q);
		assert_int_not_equal(rej, 0);
		assert_int_equal(rej & ~NFQB_F_ALL, 0);
		for (uint32_t f = 1; f & NFQB_F_ALL; f <<= 1)
			if (rej & f)
				assert_non_null(strstr(nfqb_queue_errmsg(q), nfqb_flag_name(f)));
		assert_false(kstat_find(num, NULL));
		o.flags = NFQB_F_ALL & ~rej;
		err = nfqb_queue_bind(q, num, on_packet, NULL, &o);
	}
	assert_int_equal(err, 0);
	expect_bound_to(num, q);
	nfqb_queue_close(q);
	assert_false(kstat_find(num, NULL));
	(void)state;
}

/* ---- the receive loop --------------------------------------------------------- */

static void test_run_idle(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	int calls = 0;

	assert_non_null(q);
	assert_int_equal(nfqb_queue_bind(q, qnum(0), on_packet, &calls, NULL), 0);
	assert_int_equal(nfqb_queue_run(q, false), 0);
	assert_int_equal(calls, 0);
	assert_int_equal(nfqb_queue_run(NULL, false), -EBADF);
	nfqb_queue_close(q);
	(void)state;
}

/* A binding without asking the kernel (bind's last step). */
static void test_bind(struct nfqb_queue *q, uint16_t num, nfqb_callback cb, void *user)
{
	assert_int_equal(binding_add(q, num, cb, user, false), 0);
}

static size_t put_packet(uint8_t *buf, uint16_t queue, uint32_t id)
{
	return tmsg_packet(buf, queue, id, "\x45\0\0\4", 4);
}

struct loop_fx {
	struct nfqb_queue *q;
	int peer;
	int calls;
	uint32_t stop_at;
	uint32_t ids[8];
};

static void on_loop_packet(struct nfqb_packet *p, void *user)
{
	struct loop_fx *f = user;

	if (f->calls < 8)
		f->ids[f->calls] = nfqb_packet_id(p);
	f->calls++;
	assert_int_equal(nfqb_packet_accept(p), 0);
	if (nfqb_packet_id(p) == f->stop_at)
		nfqb_queue_stop(f->q);
}

/* rx_next() drops records whose sender has a non-zero nl_pid (not the kernel). */
static void name_peer(int fd, uint32_t pid)
{
	assert_int_equal(tmsg_name_peer(fd, pid), 0);
}

static int loop_setup(void **state)
{
	struct loop_fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->q = tmsg_queue_pair(&f->peer, 0);
	if (!f->q)
		return -1;
	test_bind(f->q, FAKE_QNUM, on_loop_packet, f);
	*state = f;
	return 0;
}

static int loop_teardown(void **state)
{
	struct loop_fx *f = *state;

	/* detach: the binding is fake, an unbind would wait for an ack. */
	nfqb_queue_detach(f->q);
	close(f->peer);
	free(f);
	return 0;
}

static void send_packet(int fd, uint32_t id)
{
	_Alignas(4) uint8_t buf[256] = { 0 };
	size_t len = put_packet(buf, FAKE_QNUM, id);

	assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
}

/* Verdict messages the queue sent: ids and types, in order. */
static int read_verdicts(int fd, uint32_t *ids, uint8_t *types, int max)
{
	_Alignas(4) uint8_t buf[8192];
	int n = 0;
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int rem = (int)r;

		for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
			const struct nlattr *a;

			assert_true(n < max);
			types[n] = nlh->nlmsg_type & 0xff;
			mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
				struct nfqnl_msg_verdict_hdr h;

				if (mnl_attr_get_type(a) != NFQA_VERDICT_HDR)
					continue;
				memcpy(&h, mnl_attr_get_payload(a), sizeof(h));
				ids[n] = ntohl(h.id);
			}
			n++;
		}
	}
	return n;
}

static void test_stop_from_callback(void **state)
{
	struct loop_fx *f = *state;
	uint32_t ids[8];
	uint8_t types[8];

	name_peer(f->peer, 0);
	for (uint32_t id = 1; id <= 3; id++)
		send_packet(f->peer, id);
	f->stop_at = 2;
	alarm(20);   /* a run that never stops fails the test instead of hanging */
	assert_int_equal(nfqb_queue_run(f->q, true), 2);
	alarm(0);
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->ids[0], 1);
	assert_int_equal(f->ids[1], 2);
	/* 3 came in the same receive: held for the next run, which the
	 * socket's readiness would no longer announce */
	assert_true(nfqb_queue_pending(f->q));
	/* Verdicts are out when run returns: one batch for 1 and 2. */
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	assert_int_equal(types[0], NFQNL_MSG_VERDICT_BATCH);
	assert_int_equal(ids[0], 2);

	/* The stop was consumed: the next run goes on with packet 3. */
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_int_equal(f->calls, 3);
	assert_int_equal(f->ids[2], 3);
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	assert_int_equal(types[0], NFQNL_MSG_VERDICT);
	assert_int_equal(ids[0], 3);
	assert_false(nfqb_queue_pending(f->q));
	assert_false(nfqb_queue_pending(NULL));
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
}

/* A callback that keeps the socket fed: one new packet per packet handled,
 * while f->stop_at (used as a count here) lasts. */
static void on_feeding_packet(struct nfqb_packet *p, void *user)
{
	struct loop_fx *f = user;

	f->calls++;
	assert_int_equal(nfqb_packet_accept(p), 0);
	if (f->stop_at > 0) {
		f->stop_at--;
		send_packet(f->peer, nfqb_packet_id(p) + 1);
	}
}

/*
 * nfqb_queue_drained() tells an edge-triggered loop when it may wait: only
 * after a run that ended at an empty socket. Stopped, out of budget or
 * failed, the run leaves work that no new edge would announce.
 */
static void test_drained(void **state)
{
	struct loop_fx *f = *state;
	uint32_t ids[8];
	uint8_t types[8];
	int n;

	assert_false(nfqb_queue_drained(NULL));
	assert_false(nfqb_queue_drained(f->q));      /* no run yet */
	name_peer(f->peer, 0);
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_true(nfqb_queue_drained(f->q));
	/* fewer records than a receive asks for: it ran dry */
	for (uint32_t id = 1; id <= 3; id++)
		send_packet(f->peer, id);
	assert_int_equal(nfqb_queue_run(f->q, false), 3);
	assert_true(nfqb_queue_drained(f->q));

	/* stopped by a callback with records held */
	for (uint32_t id = 4; id <= 6; id++)
		send_packet(f->peer, id);
	f->stop_at = 4;
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_true(nfqb_queue_pending(f->q));
	assert_false(nfqb_queue_drained(f->q));
	assert_int_equal(nfqb_queue_run(f->q, false), 2);
	assert_true(nfqb_queue_drained(f->q));
	(void)read_verdicts(f->peer, ids, types, 8);

	/* out of budget: every receive is full (a batch's callbacks put as
	 * many packets back), the socket never runs dry during the run. A
	 * record that arrives after a short receive would wake the fd anew:
	 * that run counts as drained. */
	queue_binding(f->q, FAKE_QNUM)->cb = on_feeding_packet;
	f->calls = 0;
	f->stop_at = NFQB_RUN_BUDGET + 100;
	for (uint32_t id = 100; id < 100 + NFQB_RX_BATCH_MAX; id++)
		send_packet(f->peer, id);
	assert_int_equal(nfqb_queue_run(f->q, false), NFQB_RUN_BUDGET);
	assert_false(nfqb_queue_pending(f->q));
	assert_false(nfqb_queue_drained(f->q));
	/* the next run takes the rest and ends dry */
	n = nfqb_queue_run(f->q, false);
	assert_int_equal(n, 100 + NFQB_RX_BATCH_MAX);
	assert_int_equal(f->calls, NFQB_RUN_BUDGET + 100 + NFQB_RX_BATCH_MAX);
	assert_true(nfqb_queue_drained(f->q));
	/* the verdicts: batches every NFQB_FLUSH_EVERY, not looked at here */
	while (recv(f->peer, ids, sizeof(ids), MSG_DONTWAIT) >= 0) {
	}

	/* failed: an empty record (a peer that hung up) ends the run in an error */
	assert_int_equal(send(f->peer, "", 0, 0), 0);
	send_packet(f->peer, 2000);
	n = nfqb_queue_run(f->q, false);
	assert_true(n < 0);
	assert_false(nfqb_queue_drained(f->q));
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_true(nfqb_queue_drained(f->q));

	/* a stop asked for between runs (a signal handler) ends the next run
	 * before its first receive: it saw nothing, so it is not drained */
	for (uint32_t id = 3000; id < 3003; id++)
		send_packet(f->peer, id);
	nfqb_queue_stop(f->q);
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_false(nfqb_queue_drained(f->q));
	assert_int_equal(nfqb_queue_run(f->q, false), 3);
	assert_true(nfqb_queue_drained(f->q));
}

/*
 * nfqb_queue_wait() holds what one receive got; a run after it handles
 * those and, when they were fewer than a receive asks for, trusts that
 * the socket was empty: a record sent in between waits for the next run
 * (an edge-triggered or waiting caller is woken for it anew). After a
 * wake of a single record the wait asks for one (rx_fill()).
 */
static void test_wait_holds(void **state)
{
	struct loop_fx *f = *state;
	uint32_t ids[8];
	uint8_t types[8];

	assert_int_equal(nfqb_queue_wait(NULL), -EBADF);
	name_peer(f->peer, 0);
	for (uint32_t id = 1; id <= 2; id++)
		send_packet(f->peer, id);
	assert_int_equal(nfqb_queue_wait(f->q), 2);
	assert_true(nfqb_queue_pending(f->q));
	/* held records answer a second wait at once */
	assert_int_equal(nfqb_queue_wait(f->q), 2);
	send_packet(f->peer, 3);
	assert_int_equal(nfqb_queue_run(f->q, false), 2);
	assert_true(nfqb_queue_drained(f->q));
	assert_int_equal(f->calls, 2);
	/* one batch verdict up to id 2: packet 3 was not seen */
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	assert_int_equal(ids[0], 2);
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_int_equal(f->ids[2], 3);
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);

	/* that run's wake brought one record before the socket ran dry: the
	 * next waits take one each, however many there are, and the run
	 * after each gives its verdict and ends without looking for more
	 * (so the socket is not known to be drained); the
	 * NFQB_RX_LOOK_EVERY-th wait is a batch, and a full one ends that */
	for (uint32_t id = 10; id < 10 + NFQB_RX_LOOK_EVERY + NFQB_RX_BATCH_MAX; id++)
		send_packet(f->peer, id);
	for (uint32_t id = 10; id < 10 + NFQB_RX_LOOK_EVERY - 1; id++) {
		assert_int_equal(nfqb_queue_wait(f->q), 1);
		assert_false(nfqb_queue_drained(f->q));
		assert_int_equal(nfqb_queue_run(f->q, false), 1);
		assert_false(nfqb_queue_drained(f->q));
		assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
		assert_int_equal(ids[0], id);
	}
	assert_int_equal(nfqb_queue_wait(f->q), NFQB_RX_BATCH_MAX);
	assert_int_equal(nfqb_queue_run(f->q, false), NFQB_RX_BATCH_MAX + 1);
	assert_true(nfqb_queue_drained(f->q));
	/* a wake of many records: the next wait takes a full receive, and
	 * the run goes on receiving */
	for (uint32_t id = 30; id < 30 + NFQB_RX_BATCH_MAX + 2; id++)
		send_packet(f->peer, id);
	assert_int_equal(nfqb_queue_wait(f->q), NFQB_RX_BATCH_MAX);
	assert_int_equal(nfqb_queue_run(f->q, false), NFQB_RX_BATCH_MAX + 2);
	assert_true(nfqb_queue_drained(f->q));
	while (recv(f->peer, ids, sizeof(ids), MSG_DONTWAIT) >= 0) {
	}

	/* a blocking wait on an O_NONBLOCK file sleeps in poll() instead */
	int fl = fcntl(nfqb_queue_fd(f->q), F_GETFL);

	assert_int_equal(fcntl(nfqb_queue_fd(f->q), F_SETFL, fl | O_NONBLOCK), 0);
	send_packet(f->peer, 50);
	assert_int_equal(nfqb_queue_wait(f->q), 1);
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_int_equal(fcntl(nfqb_queue_fd(f->q), F_SETFL, fl), 0);
	/* not on a socketpair: nothing would answer */
	assert_int_equal(nfqb_queue_wake(f->q), -ENOTSOCK);
	assert_int_equal(nfqb_queue_wake(NULL), -EBADF);
}

/*
 * nfqb_queue_wake() on a real netlink socket: the kernel's answer ends a
 * wait that sleeps already (woken by another process sharing the socket,
 * as a thread would) and one that starts after it; a run skips it. An
 * alarm fails the test rather than letting a lost wakeup hang it.
 */
static void test_wake(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	struct nfqb_queue_stats st;
	pid_t pid;
	int status;

	assert_non_null(q);
	alarm(10);
	assert_int_equal(nfqb_queue_wake(q), 0);
	assert_int_equal(nfqb_queue_wait(q), 1);
	assert_int_equal(nfqb_queue_run(q, false), 0);
	assert_true(nfqb_queue_drained(q));
	nfqb_queue_get_stats(q, &st);
	assert_int_equal(st.malformed, 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(100 * 1000);
		_exit(nfqb_queue_wake(q) == 0 ? 0 : 1);
	}
	assert_int_equal(nfqb_queue_wait(q), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(nfqb_queue_run(q, false), 0);
	alarm(0);
	nfqb_queue_close(q);
}

/* A wait and the non-blocking run after it: the records the wait held,
 * the packets the run handled, and the recvfrom()/recvmmsg() calls the two
 * made (recvs_check()). */
static void wait_run(struct loop_fx *f, int held, int handled, unsigned from, unsigned mmsg)
{
	recvs_reset();
	assert_int_equal(nfqb_queue_wait(f->q), held);
	assert_int_equal(nfqb_queue_run(f->q, false), handled);
	recvs_check(from, mmsg);
}

/*
 * Request and answer: after a wake that brought one record, a wait (or a
 * blocking run) sleeps in a recvfrom() of one, and the run gives that
 * record's verdict without looking for a second; every
 * NFQB_RX_LOOK_EVERY-th sleep is a batch, and one that brings several goes
 * back to batches. A run on an empty socket changes nothing.
 */
static void test_lonely_receives(void **state)
{
	struct loop_fx *f = *state;
	uint32_t ids[8], id;
	uint8_t types[8];
	int status;
	pid_t pid;

	name_peer(f->peer, 0);
	send_packet(f->peer, 1);
	wait_run(f, 1, 1, 0, 1);        /* a batch receive, short: dry */
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);

	/* that wake brought one: a receive of one, then the verdict, and
	 * the run ends with no other receive */
	send_packet(f->peer, 2);
	wait_run(f, 1, 1, 1, 0);
	assert_false(nfqb_queue_drained(f->q));
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	assert_int_equal(ids[0], 2);

	/* an empty run: a batch finds nothing, and the sleeps stay lone */
	recvs_reset();
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_true(nfqb_queue_drained(f->q));
	recvs_check(0, 1);
	/* a blocking run looks (a batch: nothing there), then sleeps in a
	 * receive of one until a record arrives from another process, and
	 * sends its verdict before anything looks again: the other process
	 * sends the next record only once it has that verdict, so a look
	 * made first would be one more receive */
	f->stop_at = 4;
	alarm(10);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pollfd pfd = { .fd = f->peer, .events = POLLIN };

		usleep(100 * 1000);
		send_packet(f->peer, 3);
		if (poll(&pfd, 1, 5000) != 1 || read_verdicts(f->peer, ids, types, 8) != 1 ||
		    ids[0] != 3)
			_exit(1);
		send_packet(f->peer, 4);
		_exit(0);
	}
	recvs_reset();
	assert_int_equal(nfqb_queue_run(f->q, true), 2);
	recvs_check(2, 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	alarm(0);
	f->stop_at = 0;
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	assert_int_equal(ids[0], 4);

	/* Records queued together still go one per wait (nobody looks)
	 * until the NFQB_RX_LOOK_EVERY-th sleep since the last batch (the
	 * first wait's): three were lone already. */
	for (id = 5; id < 5 + NFQB_RX_LOOK_EVERY - 3; id++)
		send_packet(f->peer, id);
	for (id = 5; id < 5 + NFQB_RX_LOOK_EVERY - 4; id++) {
		wait_run(f, 1, 1, 1, 0);
	}
	/* the look: a batch, which finds the last one and then nothing */
	wait_run(f, 1, 1, 0, 1);
	assert_true(nfqb_queue_drained(f->q));
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), NFQB_RX_LOOK_EVERY - 3);
	assert_int_equal(ids[NFQB_RX_LOOK_EVERY - 4], 4 + NFQB_RX_LOOK_EVERY - 3);

	/* still one per wake: lone again, up to the next look, which brings
	 * two and so ends it */
	for (id = 0; id < NFQB_RX_LOOK_EVERY - 1; id++) {
		send_packet(f->peer, 100 + id);
		wait_run(f, 1, 1, 1, 0);
	}
	send_packet(f->peer, 200);
	send_packet(f->peer, 201);
	wait_run(f, 2, 2, 0, 1);
	assert_true(nfqb_queue_drained(f->q));
	/* batches from here: a record alone is found by one, short */
	send_packet(f->peer, 202);
	wait_run(f, 1, 1, 0, 1);
	assert_true(nfqb_queue_drained(f->q));
	assert_int_equal(f->calls, 4 + (NFQB_RX_LOOK_EVERY - 3) + (NFQB_RX_LOOK_EVERY - 1) + 3);
}

/* One record per receive: a stopped run leaves nothing behind. */
static void test_rx_batch_one(void **state)
{
	struct loop_fx *f = *state;

	assert_int_equal(nfqb_queue_set_rx_batch(f->q, 0), -EINVAL);
	assert_int_equal(nfqb_queue_set_rx_batch(f->q, NFQB_RX_BATCH_MAX + 1), -EINVAL);
	assert_int_equal(nfqb_queue_set_rx_batch(NULL, 1), -EINVAL);
	assert_int_equal(nfqb_queue_set_rx_batch(f->q, 1), 0);
	name_peer(f->peer, 0);
	for (uint32_t id = 1; id <= 3; id++)
		send_packet(f->peer, id);
	f->stop_at = 2;
	assert_int_equal(nfqb_queue_run(f->q, false), 2);
	assert_false(nfqb_queue_pending(f->q));
	/* 3 is still in the socket, which says so */
	struct pollfd pfd = { .fd = nfqb_queue_fd(f->q), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_int_equal(f->ids[2], 3);
}

/* A synchronous config call takes one record per receive: packets behind
 * its answer stay in the socket, readable for whoever polls it next. */
static void test_cfg_wait_leaves_packets_in_socket(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[128] = { 0 };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct pollfd pfd = { .fd = nfqb_queue_fd(f->q), .events = POLLIN };
	struct nlmsgerr *e;

	test_bind(f->q, FAKE_QNUM + 1, on_loop_packet, f);
	name_peer(f->peer, 0);
	/* the unbind's answer (its sequence number is the next one) with
	 * two packets right behind it */
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = f->q->seq + 1;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = 0;
	assert_int_equal(send(f->peer, buf, nlh->nlmsg_len, 0), (ssize_t)nlh->nlmsg_len);
	send_packet(f->peer, 1);
	send_packet(f->peer, 2);
	assert_int_equal(nfqb_queue_unbind(f->q, FAKE_QNUM + 1), 0);
	assert_false(nfqb_queue_pending(f->q));
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(nfqb_queue_run(f->q, false), 2);
	assert_int_equal(f->calls, 2);
}

/* A run from inside a callback would receive over the record being
 * handled: refused, and no packet goes without its callback. */
static int nested_rc = 1;

static void on_nested(struct nfqb_packet *p, void *user)
{
	struct loop_fx *f = user;

	on_loop_packet(p, user);
	if (nfqb_packet_id(p) == 1)
		nested_rc = nfqb_queue_run(f->q, false);
}

static void test_nested_run_refused(void **state)
{
	struct loop_fx *f = *state;

	queue_binding(f->q, FAKE_QNUM)->cb = on_nested;
	name_peer(f->peer, 0);
	for (uint32_t id = 1; id <= 4; id++)
		send_packet(f->peer, id);
	assert_int_equal(nfqb_queue_run(f->q, false), 4);
	assert_int_equal(nested_rc, -EDEADLK);
	assert_int_equal(f->calls, 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(f->ids[i], i + 1);
}

/* Bytes handed in while a stopped run holds records: the held ones (older
 * ids) are handled first, so no batch verdict settles them unseen. */
static void test_handle_takes_held_first(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512] = { 0 };
	uint32_t ids[8];
	uint8_t types[8];
	size_t len;

	name_peer(f->peer, 0);
	for (uint32_t id = 1; id <= 3; id++)
		send_packet(f->peer, id);
	f->stop_at = 1;
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_true(nfqb_queue_pending(f->q));
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	len = put_packet(buf, FAKE_QNUM, 10);
	len += put_packet(buf + len, FAKE_QNUM, 11);
	assert_int_equal(nfqb_queue_handle(f->q, buf, len), 4);
	assert_false(nfqb_queue_pending(f->q));
	assert_int_equal(f->calls, 5);
	assert_int_equal(f->ids[1], 2);
	assert_int_equal(f->ids[2], 3);
	assert_int_equal(f->ids[3], 10);
	assert_int_equal(f->ids[4], 11);
}

/* Resident pages of [@p, @p + @len). */
static size_t resident(const void *p, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = (len + (size_t)pg - 1) / (size_t)pg, in = 0;
	unsigned char *v = calloc(n, 1);

	assert_non_null(v);
	assert_int_equal(mincore((void *)p, len, v), 0);
	for (size_t i = 0; i < n; i++)
		in += v[i] & 1;
	free(v);
	return in;
}

/* After a burst of large records the slots beyond the first give their
 * pages back once the socket runs dry; slot 0 keeps its own. */
static void test_rx_slots_trimmed_after_burst(void **state)
{
	struct loop_fx *f = *state;
	size_t big = 20000, rest = NFQB_RX_AREA - NFQB_RXBUF_SIZE;
	uint8_t *buf = calloc(1, big);

	assert_non_null(buf);
	name_peer(f->peer, 0);
	for (uint32_t id = 1; id <= NFQB_RX_SLOTS; id++) {
		put_packet(buf, FAKE_QNUM, id);
		assert_int_equal(send(f->peer, buf, big, 0), (ssize_t)big);
	}
	free(buf);
	assert_int_equal(nfqb_queue_run(f->q, false), NFQB_RX_SLOTS);
	assert_int_equal(resident(f->q->rx + NFQB_RXBUF_SIZE, rest), 0);
	assert_true(resident(f->q->rx, NFQB_RXBUF_SIZE) >= big / 4096);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* SIGALRM after @ms with an SA_RESTART handler: the kind of handler that
 * signal() installs and that a plain blocking receive would restart. */
static void restart_alarm_in(long ms)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };

	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	alarms = 0;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A blocking run sleeps in the receive; a signal still ends it, and the
 * caller's receive timeout is back afterwards. */
static void test_blocking_run_signal(void **state)
{
	struct loop_fx *f = *state;
	struct timeval mine = { .tv_sec = 7 }, got = { 0 };
	socklen_t len = sizeof(got);
	int fd = nfqb_queue_fd(f->q);

	name_peer(f->peer, 0);
	send_packet(f->peer, 1);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &mine, sizeof(mine)), 0);
	restart_alarm_in(100);
	assert_int_equal(nfqb_queue_run(f->q, true), -EINTR);
	assert_int_equal(alarms, 1);
	assert_int_equal(f->calls, 1);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &got, &len), 0);
	assert_int_equal(got.tv_sec, 7);
	assert_int_equal(got.tv_usec, 0);
}

/* The socket's file may be non-blocking (a process sharing it set
 * O_NONBLOCK): a blocking run must then wait in poll(), not spin. */
static void test_blocking_run_nonblocking_file(void **state)
{
	struct loop_fx *f = *state;
	int fd = nfqb_queue_fd(f->q);
	double c0;

	name_peer(f->peer, 0);
	send_packet(f->peer, 1);
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	restart_alarm_in(300);
	c0 = cpu_s();
	assert_int_equal(nfqb_queue_run(f->q, true), -EINTR);
	/* Not a speed check: a run that spins on EAGAIN burns the whole
	 * 300 ms, one that sleeps next to none; half is the line between. */
	assert_true(cpu_s() - c0 < 0.15);
	assert_int_equal(f->calls, 1);
}

/* The alarm tests' teardown: no timer or handler outlives a failed one. */
static int alarm_teardown(void **state)
{
	struct itimerval off = { 0 };

	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	return loop_teardown(state);
}

/* Packet 33 looks at what already reached the kernel side: under a load
 * that never lets the socket run dry, run() must not sit on its batch. */
static void on_load_packet(struct nfqb_packet *p, void *user)
{
	struct loop_fx *f = user;
	uint32_t ids[8];
	uint8_t types[8];

	f->calls++;
	if (nfqb_packet_id(p) == NFQB_FLUSH_EVERY + 1) {
		f->ids[0] = (uint32_t)read_verdicts(f->peer, ids, types, 8);
		f->ids[1] = ids[0];
		f->ids[2] = types[0];
	}
	assert_int_equal(nfqb_packet_accept(p), 0);
}

static void test_run_flushes_under_load(void **state)
{
	struct loop_fx *f = *state;
	uint32_t ids[8];
	uint8_t types[8];

	name_peer(f->peer, 0);
	queue_binding(f->q, FAKE_QNUM)->cb = on_load_packet;
	for (uint32_t id = 1; id <= NFQB_FLUSH_EVERY + 8; id++)
		send_packet(f->peer, id);
	assert_int_equal(nfqb_queue_run(f->q, false), NFQB_FLUSH_EVERY + 8);
	/* while packet 33 was handled, 1..32 were out as one batch already */
	assert_int_equal(f->ids[0], 1);
	assert_int_equal(f->ids[1], NFQB_FLUSH_EVERY);
	assert_int_equal(f->ids[2], NFQNL_MSG_VERDICT_BATCH);
	/* and the rest when the socket ran dry */
	assert_int_equal(read_verdicts(f->peer, ids, types, 8), 1);
	assert_int_equal(ids[0], NFQB_FLUSH_EVERY + 8);
}

static void test_run_skips_foreign_sender(void **state)
{
	struct loop_fx *f = *state;
	struct nfqb_queue_stats st;

	name_peer(f->peer, 4242);
	send_packet(f->peer, 1);
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_int_equal(f->calls, 0);
	nfqb_queue_get_stats(f->q, &st);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.packets, 0);
}

static void test_run_skips_oversized_record(void **state)
{
	struct loop_fx *f = *state;
	struct nfqb_queue_stats st;
	size_t big = NFQB_RXBUF_SIZE + 4096;
	uint8_t *buf = calloc(1, big);

	assert_non_null(buf);
	name_peer(f->peer, 0);
	put_packet(buf, FAKE_QNUM, 1);
	assert_int_equal(send(f->peer, buf, big, 0), (ssize_t)big);
	free(buf);
	send_packet(f->peer, 2);
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->ids[0], 2);
	nfqb_queue_get_stats(f->q, &st);
	assert_int_equal(st.malformed, 1);
}

static void reenter(struct nfqb_packet *p, void *user)
{
	struct loop_fx *f = user;
	_Alignas(4) uint8_t buf[256];
	size_t len = put_packet(buf, FAKE_QNUM, 99);

	f->calls++;
	/* q->cur belongs to this callback: nested dispatch and config waits
	 * are refused, and the refused unbind keeps the binding. */
	assert_int_equal(nfqb_queue_handle(f->q, buf, len), -EDEADLK);
	assert_int_equal(nfqb_queue_bind(f->q, FAKE_QNUM + 1, on_loop_packet, f, NULL),
			 -EDEADLK);
	if (nfqb_queue_unbind(f->q, FAKE_QNUM) < 0)
		assert_non_null(queue_binding(f->q, FAKE_QNUM));
	assert_int_equal(nfqb_packet_accept(p), 0);
}

static void test_reentry_refused(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[256];
	size_t len = put_packet(buf, FAKE_QNUM, 1);

	f->q->bind[0].cb = reenter;
	assert_int_equal(nfqb_queue_handle(f->q, buf, len), 1);
	assert_int_equal(f->calls, 1);
	assert_null(queue_binding(f->q, FAKE_QNUM + 1));
}

/* ---- asynchronous configuration ----------------------------------------
 * The state machine on a socketpair: the test reads each request the
 * library sends and answers it with a synthetic acknowledgement. */

struct done_rec {
	int calls;
	int err;
	uint16_t num;
};

static void on_done(struct nfqb_queue *q, uint16_t num, int err, void *user)
{
	struct done_rec *d = user;

	d->calls++;
	d->err = err;
	d->num = num;
}

/* The next request the library sent, into @buf (asserted to exist). */
static const struct nlmsghdr *read_req(int fd, void *buf, size_t len)
{
	ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
	const struct nlmsghdr *nlh = buf;

	assert_true(r >= (ssize_t)sizeof(*nlh));
	assert_true(mnl_nlmsg_ok(nlh, (int)r));
	return nlh;
}

static bool nothing_sent(int fd)
{
	char b[64];

	return recv(fd, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* The NFQA_CFG_CMD command (-1 without one), the flags and mask given. */
static int req_cmd(const struct nlmsghdr *nlh, uint32_t *flags, uint32_t *mask)
{
	const struct nlattr *a;
	int cmd = -1;

	*flags = *mask = 0;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == NFQA_CFG_CMD)
			cmd = ((const struct nfqnl_msg_config_cmd *)mnl_attr_get_payload(a))->command;
		else if (mnl_attr_get_type(a) == NFQA_CFG_FLAGS)
			*flags = ntohl(mnl_attr_get_u32(a));
		else if (mnl_attr_get_type(a) == NFQA_CFG_MASK)
			*mask = ntohl(mnl_attr_get_u32(a));
	}
	return cmd;
}

static void send_ack(int fd, const struct nlmsghdr *req, int err)
{
	_Alignas(4) uint8_t buf[128];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = req->nlmsg_seq;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = err;
	e->msg = *req;
	assert_int_equal(send(fd, buf, nlh->nlmsg_len, 0), (ssize_t)nlh->nlmsg_len);
}

/* Answer the pending request with @err and let the queue act on it. */
static const struct nlmsghdr *answer(struct loop_fx *f, void *buf, size_t len, int err)
{
	const struct nlmsghdr *req = read_req(f->peer, buf, len);

	send_ack(f->peer, req, err);
	assert_true(nfqb_queue_run(f->q, false) >= 0);
	return req;
}

#define ASYNC_Q (FAKE_QNUM + 1)

static void test_async_bind_ok(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };
	uint32_t fl, mask;

	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, NULL,
					       on_done, &d), 0);
	assert_true(nfqb_queue_config_pending(f->q));
	assert_non_null(queue_binding(f->q, ASYNC_Q));   /* ready before the answer */
	req = read_req(f->peer, buf, sizeof(buf));
	assert_int_equal(req->nlmsg_type, (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG);
	assert_true(req->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(req_cmd(req, &fl, &mask), NFQNL_CFG_CMD_BIND);
	assert_int_equal(fl, NFQB_F_GSO);
	assert_int_equal(mask, NFQB_F_ALL);
	/* nothing happens before the answer */
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_int_equal(d.calls, 0);
	send_ack(f->peer, req, 0);
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.num, ASYNC_Q);
	assert_false(nfqb_queue_config_pending(f->q));
	assert_false(nfqb_queue_adopted(f->q, ASYNC_Q));
	assert_true(nothing_sent(f->peer));
}

static void test_async_bind_adopts(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };
	uint32_t fl, mask;

	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, NULL,
					       on_done, &d), 0);
	answer(f, buf, sizeof(buf), -EBUSY);
	assert_int_equal(d.calls, 0);
	/* EBUSY: bound to this socket by a previous owner? CMD_NONE says */
	req = answer(f, buf, sizeof(buf), 0);
	assert_int_equal(req_cmd(req, &fl, &mask), -1);
	assert_int_equal(mask, NFQB_F_ALL);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, 0);
	assert_true(nfqb_queue_adopted(f->q, ASYNC_Q));
}

static void test_async_bind_eperm_probe(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };

	/* EPERM, and the probe is refused too: no capability */
	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, NULL,
					       on_done, &d), 0);
	answer(f, buf, sizeof(buf), -EPERM);
	req = answer(f, buf, sizeof(buf), -EPERM);
	assert_int_equal(req->nlmsg_type, (NFNL_SUBSYS_QUEUE << 8) | 0xff);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, -EPERM);
	assert_non_null(strstr(nfqb_queue_errmsg(f->q), "not permitted"));
	assert_null(queue_binding(f->q, ASYNC_Q));

	/* EPERM, the probe is permitted (EINVAL): another socket's queue */
	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, NULL,
					       on_done, &d), 0);
	answer(f, buf, sizeof(buf), -EPERM);
	answer(f, buf, sizeof(buf), -EINVAL);
	assert_int_equal(d.calls, 2);
	assert_int_equal(d.err, -EBUSY);
	assert_string_equal(nfqb_queue_errmsg(f->q), "queue 4: already bound by another socket");
	assert_null(queue_binding(f->q, ASYNC_Q));
}

static void test_async_flag_probe(void **state)
{
	struct loop_fx *f = *state;
	struct nfqb_queue_opts o = NFQB_QUEUE_OPTS_DEFAULT;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };
	uint32_t fl, mask;

	o.flags = NFQB_F_GSO | NFQB_F_UID_GID;
	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, &o,
					       on_done, &d), 0);
	answer(f, buf, sizeof(buf), -EOPNOTSUPP);
	req = answer(f, buf, sizeof(buf), 0);           /* gso: fine */
	assert_int_equal(req_cmd(req, &fl, &mask), -1);
	assert_int_equal(fl, NFQB_F_GSO);
	assert_int_equal(mask, NFQB_F_GSO);
	req = answer(f, buf, sizeof(buf), -EOPNOTSUPP); /* uid_gid: no */
	req_cmd(req, &fl, &mask);
	assert_int_equal(fl, NFQB_F_UID_GID);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, -EOPNOTSUPP);
	assert_int_equal(nfqb_queue_rejected_flags(f->q), NFQB_F_UID_GID);
	assert_string_equal(nfqb_queue_errmsg(f->q), "queue 4: kernel does not support flag uid_gid");
	assert_null(queue_binding(f->q, ASYNC_Q));
	assert_true(nothing_sent(f->peer));
}

static void test_async_eagain_retried_once(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };
	uint32_t fl, mask;

	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, NULL,
					       on_done, &d), 0);
	answer(f, buf, sizeof(buf), -EAGAIN);
	req = answer(f, buf, sizeof(buf), -EAGAIN);
	assert_int_equal(req_cmd(req, &fl, &mask), NFQNL_CFG_CMD_BIND);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, -EAGAIN);
}

/* The answer never comes (an agent sharing the socket read it): packets go
 * on being dispatched, a late or foreign answer changes nothing, and the
 * caller's timer cancels. */
static void test_async_stolen_answer(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512], late[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };
	struct nfqb_queue_stats st;
	uint32_t fl, mask;
	struct nlmsghdr other;

	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, NULL,
					       on_done, &d), 0);
	req = read_req(f->peer, late, sizeof(late));
	send_packet(f->peer, 7);                 /* queue FAKE_QNUM, bound before */
	assert_int_equal(nfqb_queue_run(f->q, false), 1);
	assert_int_equal(f->calls, 1);
	/* an answer to something else is not ours */
	other = *req;
	other.nlmsg_seq = req->nlmsg_seq + 100;
	send_ack(f->peer, &other, 0);
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_int_equal(d.calls, 0);
	assert_true(nfqb_queue_config_pending(f->q));
	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q + 1, on_loop_packet, f, NULL,
					       on_done, &d), -EALREADY);
	assert_int_equal(nfqb_queue_set_opts(f->q, FAKE_QNUM, &(struct nfqb_queue_opts)
					     NFQB_QUEUE_OPTS_DEFAULT), -EALREADY);
	(void)read_req(f->peer, buf, sizeof(buf));   /* the verdict of packet 7 */

	nfqb_queue_config_cancel(f->q);
	assert_false(nfqb_queue_config_pending(f->q));
	assert_null(queue_binding(f->q, ASYNC_Q));
	assert_string_equal(nfqb_queue_errmsg(f->q), "queue 4: no answer from the kernel");
	/* the kernel may have bound it: an unbind, not waited for */
	req = read_req(f->peer, buf, sizeof(buf));
	assert_int_equal(req_cmd(req, &fl, &mask), NFQNL_CFG_CMD_UNBIND);
	assert_false(req->nlmsg_flags & NLM_F_ACK);
	/* the late answer is ignored, its error counted */
	send_ack(f->peer, (const struct nlmsghdr *)late, -EBUSY);
	assert_int_equal(nfqb_queue_run(f->q, false), 0);
	assert_int_equal(d.calls, 0);
	nfqb_queue_get_stats(f->q, &st);
	assert_int_equal(st.kernel_errors, 1);
	assert_true(nothing_sent(f->peer));
}

static void test_async_unbind(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req;
	struct done_rec d = { 0 };
	uint32_t fl, mask;

	assert_int_equal(nfqb_queue_unbind_async(f->q, FAKE_QNUM + 9, on_done, &d), -ENOENT);
	assert_int_equal(nfqb_queue_unbind_async(f->q, FAKE_QNUM, on_done, &d), 0);
	assert_null(queue_binding(f->q, FAKE_QNUM));   /* gone at once */
	req = answer(f, buf, sizeof(buf), -ENODEV);
	assert_int_equal(req_cmd(req, &fl, &mask), NFQNL_CFG_CMD_UNBIND);
	assert_true(req->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, 0);                     /* ENODEV: not bound anyway */
	test_bind(f->q, FAKE_QNUM, on_loop_packet, f);
}

/* The stack under a call is filled with junk first: what was not written
 * would reach the peer as 0xa5 bytes. */
static __attribute__((noinline)) void dirty_stack(void)
{
	volatile uint8_t junk[32768];

	memset((void *)junk, 0xa5, sizeof(junk));
}

static void test_padding_zeroed(void **state)
{
	struct loop_fx *f = *state;
	struct nfqb_queue_opts o = NFQB_QUEUE_OPTS_DEFAULT;
	char a[NFQB_CFG_MSG_MAX], b[NFQB_CFG_MSG_MAX];
	_Alignas(4) uint8_t buf[512];
	const struct nlmsghdr *req, *x;
	const struct nlattr *at;
	struct done_rec d = { 0 };
	bool params = false;

	/* the builder: the same message from a junk buffer as from zeros */
	memset(a, 0xa5, sizeof(a));
	memset(b, 0, sizeof(b));
	x = cfg_build(a, 9, NFQNL_CFG_CMD_BIND, &o, NFQB_F_ALL);
	cfg_build(b, 9, NFQNL_CFG_CMD_BIND, &o, NFQB_F_ALL);
	assert_int_equal(memcmp(a, b, x->nlmsg_len), 0);

	/* through the socket: NFQA_CFG_PARAMS is 5 bytes, padded to 8 */
	dirty_stack();
	assert_int_equal(nfqb_queue_bind_async(f->q, ASYNC_Q, on_loop_packet, f, &o,
					       on_done, &d), 0);
	req = read_req(f->peer, buf, sizeof(buf));
	assert_int_equal(((const struct nfgenmsg *)mnl_nlmsg_get_payload(req))->version,
			 NFNETLINK_V0);
	mnl_attr_for_each(at, req, sizeof(struct nfgenmsg)) {
		const uint8_t *pl = mnl_attr_get_payload(at);
		size_t len = mnl_attr_get_payload_len(at);

		for (size_t i = len; i < MNL_ALIGN(len); i++)
			assert_int_equal(pl[i], 0);
		if (mnl_attr_get_type(at) == NFQA_CFG_PARAMS)
			params = len == 5;
	}
	assert_true(params);
	nfqb_queue_config_cancel(f->q);
}

/*
 * The defect of issue 9: an agent sharing the socket connect()s it to a
 * socket of its own. Every request and verdict must still reach the
 * kernel and nothing the peer; the peer's own messages to us are skipped.
 * (A connected netlink socket receives from its peer only: the kernel's
 * answers are refused, so the request stays pending until cancelled.)
 * Real sockets; connecting to another port id needs CAP_NET_ADMIN.
 */
static void test_sends_go_to_kernel(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	int peer = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	struct sockaddr_nl pa = { .nl_family = AF_NETLINK }, qa = { .nl_family = AF_NETLINK };
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	socklen_t len = sizeof(pa);
	struct done_rec d = { 0 };
	struct nfqb_queue_stats st;
	char junk[64] = { 0 };
	int fl;

	assert_non_null(q);
	assert_true(peer >= 0);
	assert_int_equal(bind(peer, (struct sockaddr *)&pa, sizeof(pa)), 0);
	assert_int_equal(getsockname(peer, (struct sockaddr *)&pa, &len), 0);
	if (connect(nfqb_queue_fd(q), (struct sockaddr *)&pa, sizeof(pa)) < 0) {
		nfqb_queue_close(q);
		close(peer);
		skip();
	}
	/* what a plain send() does now: the peer gets it (the test can fail) */
	assert_int_equal(send(nfqb_queue_fd(q), junk, 16, MSG_DONTWAIT), 16);
	assert_true(recv(peer, junk, sizeof(junk), MSG_DONTWAIT) > 0);
	/* and blocking mode, which the agent may set on the shared file */
	fl = fcntl(nfqb_queue_fd(q), F_GETFL);
	assert_int_equal(fcntl(nfqb_queue_fd(q), F_SETFL, fl & ~O_NONBLOCK), 0);

	/* the peer forges a failure answer to the request about to be sent:
	 * not from the kernel, skipped (else the bind would fail ENOENT) */
	qa.nl_pid = nfqb_queue_portid(q);
	memset(junk, 0, sizeof(junk));
	((struct nlmsghdr *)junk)->nlmsg_len = 36;
	((struct nlmsghdr *)junk)->nlmsg_type = NLMSG_ERROR;
	((struct nlmsghdr *)junk)->nlmsg_seq = q->seq + 1;
	((struct nlmsgerr *)(junk + 16))->error = -ENOENT;
	assert_int_equal(sendto(peer, junk, 36, 0, (struct sockaddr *)&qa, sizeof(qa)), 36);
	assert_int_equal(nfqb_queue_bind_async(q, qnum(4), on_packet, NULL, NULL, on_done, &d), 0);
	expect_bound_to(qnum(4), q);            /* the kernel got the request */
	for (int i = 0; i < 3; i++)
		assert_true(nfqb_queue_run(q, false) >= 0);
	nfqb_queue_get_stats(q, &st);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(d.calls, 0);
	assert_true(nfqb_queue_config_pending(q));
	assert_int_equal(nfqb_queue_verdict_batch(q, qnum(4), 1, NFQB_ACCEPT), 0);
	assert_true(recv(peer, junk, sizeof(junk), MSG_DONTWAIT) < 0 && errno == EAGAIN);

	/* cancelled: the unbind reaches the kernel as well */
	nfqb_queue_config_cancel(q);
	assert_false(kstat_find(qnum(4), NULL));
	assert_true(recv(peer, junk, sizeof(junk), MSG_DONTWAIT) < 0 && errno == EAGAIN);

	/* unconnected again, the synchronous calls get their answers */
	assert_int_equal(connect(nfqb_queue_fd(q), &unspec, sizeof(unspec)), 0);
	assert_int_equal(nfqb_queue_bind(q, qnum(4), on_packet, NULL, NULL), 0);
	expect_bound_to(qnum(4), q);
	assert_int_equal(nfqb_queue_unbind(q, qnum(4)), 0);
	assert_false(kstat_find(qnum(4), NULL));
	nfqb_queue_close(q);
	close(peer);
	(void)state;
}

/* ---- caller-supplied buffers: the bounded message walk ------------- */

/*
 * nfqb_queue_handle() takes bytes from the caller (Python's run_socket()
 * included), so lengths are hostile: each malformed record is counted once,
 * ends the walk, never loops and never reads past the buffer (the buffers
 * below are malloc'd to their exact size so ASan sees any overread), and
 * the queue handles the next good message as before.
 */

static uint64_t malformed(const struct loop_fx *f)
{
	struct nfqb_queue_stats st;

	nfqb_queue_get_stats(f->q, &st);
	return st.malformed;
}

/* @len bytes of @src in a heap block of exactly that size. */
static uint8_t *exact_copy(const void *src, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	assert_non_null(b);
	memcpy(b, src, len);
	return b;
}

static void set_len(uint8_t *rec, uint32_t len)
{
	memcpy(rec + offsetof(struct nlmsghdr, nlmsg_len), &len, sizeof(len));
}

/* Handle @len bytes of @buf (copied to an exact heap block): packets seen. */
static int handle_exact(struct loop_fx *f, const uint8_t *buf, size_t len)
{
	uint8_t *b = exact_copy(buf, len);
	int n;

	alarm(10);   /* a walk that never ends fails instead of hanging */
	n = nfqb_queue_handle(f->q, b, len);
	alarm(0);
	free(b);
	return n;
}

/* The queue still works: a good packet is dispatched and decided. */
static void expect_good_after(struct loop_fx *f, uint64_t malformed_before)
{
	_Alignas(4) uint8_t buf[256];
	size_t len = put_packet(buf, FAKE_QNUM, 777);
	int calls = f->calls;

	assert_int_equal(handle_exact(f, buf, len), 1);
	assert_int_equal(f->calls, calls + 1);
	assert_int_equal(malformed(f), malformed_before);
}

/* A good packet then one record whose nlmsg_len is patched to @bad. */
static void bad_length_after_good(struct loop_fx *f, uint32_t bad)
{
	_Alignas(4) uint8_t buf[512];
	size_t first = put_packet(buf, FAKE_QNUM, 1);
	size_t second = put_packet(buf + first, FAKE_QNUM, 2);
	uint64_t before = malformed(f);
	int calls = f->calls;

	set_len(buf + first, bad);
	assert_int_equal(handle_exact(f, buf, first + second), 1);
	assert_int_equal(f->calls, calls + 1);
	assert_int_equal(f->ids[calls], 1);
	assert_int_equal(malformed(f), before + 1);
	expect_good_after(f, before + 1);
}

static void test_walk_len_all_ones(void **state)
{
	bad_length_after_good(*state, 0xffffffffu);
}

static void test_walk_len_high_bit(void **state)
{
	struct loop_fx *f = *state;

	bad_length_after_good(f, 0x80000000u);
	bad_length_after_good(f, 0x80000000u + 44);
}

static void test_walk_len_below_header(void **state)
{
	struct loop_fx *f = *state;

	bad_length_after_good(f, 0);
	bad_length_after_good(f, sizeof(struct nlmsghdr) - 1);
}

static void test_walk_len_past_buffer(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[256];
	size_t len = put_packet(buf, FAKE_QNUM, 1);

	/* One byte more than the buffer, and the next aligned length too. */
	bad_length_after_good(f, (uint32_t)len + 1);
	bad_length_after_good(f, (uint32_t)len + 4);
}

/* A record shorter than a header at the end (trailing bytes). */
static void test_walk_short_tail(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[256] = { 0 };
	size_t len = put_packet(buf, FAKE_QNUM, 1);
	uint64_t before = malformed(f);

	assert_int_equal(handle_exact(f, buf, len + 3), 1);
	assert_int_equal(malformed(f), before + 1);
	/* A buffer smaller than one header, and an empty one (not malformed). */
	assert_int_equal(handle_exact(f, buf, sizeof(struct nlmsghdr) - 1), 0);
	assert_int_equal(malformed(f), before + 2);
	assert_int_equal(handle_exact(f, buf, 0), 0);
	assert_int_equal(nfqb_queue_handle(f->q, NULL, 0), 0);
	assert_int_equal(malformed(f), before + 2);
	assert_int_equal(f->calls, 1);
	expect_good_after(f, before + 2);
}

/*
 * An unaligned nlmsg_len that ends exactly at the buffer's end: libmnl's
 * attribute walk ran to the aligned end, 3 bytes past the buffer. The
 * record is framed correctly, so it is a packet (payload of 1 byte).
 */
static void test_walk_unaligned_last(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[256];
	size_t len = put_packet(buf, FAKE_QNUM, 1);
	uint64_t before = malformed(f);
	struct nlattr *pl = (struct nlattr *)(buf + len - NLA_ALIGN(NLA_HDRLEN + 4));

	pl->nla_len = NLA_HDRLEN + 1;
	len = len - 4 + 1;
	set_len(buf, (uint32_t)len);
	assert_int_equal(len % 4, 1);
	assert_int_equal(handle_exact(f, buf, len), 1);
	assert_int_equal(f->calls, 1);
	assert_int_equal(malformed(f), before);
	expect_good_after(f, before);
}

/* An unaligned record in the middle: the next one starts aligned. */
static void test_walk_unaligned_middle(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[512];
	size_t first = put_packet(buf, FAKE_QNUM, 1), second;
	uint64_t before = malformed(f);
	struct nlattr *pl = (struct nlattr *)(buf + first - NLA_ALIGN(NLA_HDRLEN + 4));

	pl->nla_len = NLA_HDRLEN + 2;
	set_len(buf, (uint32_t)(first - 2));
	second = put_packet(buf + first, FAKE_QNUM, 2);
	assert_int_equal(handle_exact(f, buf, first + second), 2);
	assert_int_equal(f->ids[0], 1);
	assert_int_equal(f->ids[1], 2);
	assert_int_equal(malformed(f), before);
	/* Its padding cut short by the buffer's end: still the last record. */
	assert_int_equal(handle_exact(f, buf, first - 1), 1);
	assert_int_equal(malformed(f), before);
	/* Less than a header after the padding: malformed. */
	assert_int_equal(handle_exact(f, buf, first + sizeof(struct nlmsghdr) - 1), 1);
	assert_int_equal(malformed(f), before + 1);
	expect_good_after(f, before + 1);
}

/* Attributes that do not fit their message are malformed, not skipped. */
static void test_walk_truncated_attrs(void **state)
{
	struct loop_fx *f = *state;
	_Alignas(4) uint8_t buf[256];
	size_t len = put_packet(buf, FAKE_QNUM, 1);
	uint64_t before = malformed(f);
	struct nlattr *pl = (struct nlattr *)(buf + len - NLA_ALIGN(NLA_HDRLEN + 4));
	struct nlattr *nest;

	/* payload attribute longer than its message */
	pl->nla_len = NLA_HDRLEN + 5;
	assert_int_equal(handle_exact(f, buf, len), 0);
	assert_int_equal(malformed(f), before + 1);
	/* attribute length below its own header */
	pl->nla_len = NLA_HDRLEN - 1;
	assert_int_equal(handle_exact(f, buf, len), 0);
	assert_int_equal(malformed(f), before + 2);
	/* a message ending 2 bytes into an attribute header */
	len = put_packet(buf, FAKE_QNUM, 1) - NLA_ALIGN(NLA_HDRLEN + 4) + 2;
	set_len(buf, (uint32_t)len);
	assert_int_equal(handle_exact(f, buf, len), 0);
	assert_int_equal(malformed(f), before + 3);
	/* a nested VLAN attribute whose inner attribute overruns it */
	len = put_packet(buf, FAKE_QNUM, 1);
	nest = mnl_attr_nest_start((struct nlmsghdr *)buf, NFQA_VLAN);
	mnl_attr_put_u16((struct nlmsghdr *)buf, NFQA_VLAN_TCI, htons(5));
	mnl_attr_nest_end((struct nlmsghdr *)buf, nest);
	((struct nlattr *)(nest + 1))->nla_len = 12;
	len = ((struct nlmsghdr *)buf)->nlmsg_len;
	assert_int_equal(handle_exact(f, buf, len), 0);
	assert_int_equal(malformed(f), before + 4);
	assert_int_equal(f->calls, 0);
	expect_good_after(f, before + 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_validation),
		cmocka_unit_test(test_bind_bad_args),
		cmocka_unit_test(test_bind_twice_same_object),
		cmocka_unit_test(test_bind_taken_by_other_socket),
		cmocka_unit_test(test_close_unbinds_all),
		cmocka_unit_test(test_open_fd_errors),
		cmocka_unit_test(test_open_fd_ok),
		cmocka_unit_test(test_adoption),
		cmocka_unit_test(test_flag_names),
		cmocka_unit_test(test_conntrack_flag),
		cmocka_unit_test(test_every_flag_bound_or_named),
		cmocka_unit_test(test_run_idle),
		cmocka_unit_test_setup_teardown(test_stop_from_callback, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_run_flushes_under_load, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_drained, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_wait_holds, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_lonely_receives, loop_setup, loop_teardown),
		cmocka_unit_test(test_wake),
		cmocka_unit_test_setup_teardown(test_rx_batch_one, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_cfg_wait_leaves_packets_in_socket, loop_setup,
						loop_teardown),
		cmocka_unit_test_setup_teardown(test_nested_run_refused, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_handle_takes_held_first, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_rx_slots_trimmed_after_burst, loop_setup,
						loop_teardown),
		cmocka_unit_test_setup_teardown(test_blocking_run_signal, loop_setup, alarm_teardown),
		cmocka_unit_test_setup_teardown(test_blocking_run_nonblocking_file, loop_setup,
						alarm_teardown),
		cmocka_unit_test_setup_teardown(test_run_skips_foreign_sender, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_run_skips_oversized_record, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_reentry_refused, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_bind_ok, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_bind_adopts, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_bind_eperm_probe, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_flag_probe, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_eagain_retried_once, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_stolen_answer, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_async_unbind, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_padding_zeroed, loop_setup, loop_teardown),
		cmocka_unit_test(test_sends_go_to_kernel),
		cmocka_unit_test_setup_teardown(test_walk_len_all_ones, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_len_high_bit, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_len_below_header, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_len_past_buffer, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_short_tail, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_unaligned_last, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_unaligned_middle, loop_setup, loop_teardown),
		cmocka_unit_test_setup_teardown(test_walk_truncated_attrs, loop_setup, loop_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
