/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the broker's event loop (broker/loop.c), log formatting
 * (broker/log.c) and sessions (broker/session.c). The session tests need
 * root: they run in a private network namespace (unshare) with real
 * netlink sockets, so nothing outside the test is touched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "log.h"
#include "loop.h"
#include "session-private.h"
#include "worker.h"
#include "fake-session.h"

/* ------------------------------------------------------------ loop */

struct fd_ctx {
	struct loop *l;
	int calls;
	int victim;             /* fd to remove from inside the callback */
};

static void read_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	struct fd_ctx *c = data;
	char b[16];

	c->calls++;
	assert_true(read(fd, b, sizeof(b)) > 0);
	if (c->victim >= 0) {
		assert_int_equal(loop_del(l, c->victim), 0);
		c->victim = -1;
	}
}

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	loop_stop(l);
}

/* Run @l for about @ms milliseconds. */
static void run_for(struct loop *l, unsigned ms)
{
	struct loop_timer stop;

	loop_timer_init(&stop, stop_cb, NULL);
	assert_int_equal(loop_timer_arm(l, &stop, loop_now_ms() + ms), 0);
	assert_int_equal(loop_run(l), 0);
	loop_timer_cancel(l, &stop);
}

static void test_loop_fds(void **state)
{
	struct loop *l = loop_new();
	struct fd_ctx a = { .victim = -1 }, b = { .victim = -1 };
	int pa[2], pb[2];

	assert_non_null(l);
	assert_int_equal(pipe(pa), 0);
	assert_int_equal(pipe(pb), 0);
	assert_int_equal(loop_add(l, pa[0], EPOLLIN, read_cb, &a), 0);
	assert_int_equal(loop_add(l, pa[0], EPOLLIN, read_cb, &a), -EEXIST);
	assert_int_equal(loop_add(l, pb[0], EPOLLIN, read_cb, &b), 0);
	assert_int_equal(loop_fd_count(l), 2);

	/* both readable in one round; whichever runs first removes the other */
	a.victim = pb[0];
	b.victim = pa[0];
	assert_int_equal(write(pa[1], "x", 1), 1);
	assert_int_equal(write(pb[1], "y", 1), 1);
	run_for(l, 50);
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(loop_fd_count(l), 1);

	assert_int_equal(loop_del(l, pa[0]) == 0 || loop_del(l, pb[0]) == 0, 1);
	assert_int_equal(loop_del(l, pa[0]), -ENOENT);
	assert_int_equal(loop_del(l, 12345), -ENOENT);
	assert_int_equal(loop_mod(l, pa[0], EPOLLIN), -ENOENT);
	assert_int_equal(loop_add(l, -1, EPOLLIN, read_cb, &a), -EINVAL);
	assert_int_equal(loop_fd_count(l), 0);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
	loop_free(l);
	loop_free(NULL);
}

struct order {
	int seen[8];
	int n;
};

struct tmr {
	struct loop_timer t;
	struct order *o;
	int id;
};

static void order_cb(struct loop *l, struct loop_timer *t, void *data)
{
	struct tmr *m = data;

	m->o->seen[m->o->n++] = m->id;
	assert_false(loop_timer_armed(t));
}

static void test_loop_timers(void **state)
{
	struct loop *l = loop_new();
	struct order o = { 0 };
	struct tmr t[5];
	uint64_t now = loop_now_ms();
	static const unsigned delay[5] = { 40, 10, 30, 20, 25 };

	for (int i = 0; i < 5; i++) {
		t[i] = (struct tmr){ .o = &o, .id = i };
		loop_timer_init(&t[i].t, order_cb, &t[i]);
		assert_false(loop_timer_armed(&t[i].t));
		assert_int_equal(loop_timer_arm(l, &t[i].t, now + delay[i]), 0);
	}
	loop_timer_cancel(l, &t[2].t);             /* never fires */
	loop_timer_cancel(l, &t[2].t);             /* twice is fine */
	assert_int_equal(loop_timer_arm(l, &t[4].t, now + 5), 0);   /* re-armed earlier */
	run_for(l, 100);
	assert_int_equal(o.n, 4);
	assert_int_equal(o.seen[0], 4);
	assert_int_equal(o.seen[1], 1);
	assert_int_equal(o.seen[2], 3);
	assert_int_equal(o.seen[3], 0);
	loop_free(l);
}

/* Many timers (one per namespace in grace) fire in deadline order. */
static uint64_t fired_at[512];
static size_t nfired;

static void deadline_cb(struct loop *l, struct loop_timer *t, void *data)
{
	fired_at[nfired++] = t->deadline;
}

static void test_loop_many_timers(void **state)
{
	enum { N = 300 };
	struct loop *l = loop_new();
	struct loop_timer *t = calloc(N, sizeof(*t));
	uint64_t now = loop_now_ms();

	assert_non_null(t);
	nfired = 0;
	for (int i = 0; i < N; i++) {
		loop_timer_init(&t[i], deadline_cb, NULL);
		/* scattered deadlines: 5..34 ms */
		assert_int_equal(loop_timer_arm(l, &t[i], now + 5 + (uint64_t)(i * 7919) % 30), 0);
	}
	for (int i = 0; i < N; i += 3)
		loop_timer_cancel(l, &t[i]);
	run_for(l, 80);
	assert_int_equal(nfired, N - (N + 2) / 3);
	for (size_t i = 1; i < nfired; i++)
		assert_true(fired_at[i - 1] <= fired_at[i]);
	for (int i = 0; i < N; i++)
		assert_false(loop_timer_armed(&t[i]));
	free(t);
	loop_free(l);
}

/* ------------------------------------------------------------ log */

static void test_log_value(void **state)
{
	char b[64];

	assert_string_equal(log_value(b, sizeof(b), "pod-a"), "pod-a");
	assert_string_equal(log_value(b, sizeof(b), "kube/pod_1.x"), "kube/pod_1.x");
	assert_string_equal(log_value(b, sizeof(b), ""), "\"\"");
	assert_string_equal(log_value(b, sizeof(b), NULL), "\"\"");
	assert_string_equal(log_value(b, sizeof(b), "a b"), "\"a b\"");
	assert_string_equal(log_value(b, sizeof(b), "k=v"), "\"k=v\"");
	assert_string_equal(log_value(b, sizeof(b), "say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
	assert_string_equal(log_value(b, sizeof(b), "line\nbreak"), "\"line\\x0abreak\"");
	/* cut to fit, still quoted */
	assert_string_equal(log_value(b, 8, "a b c d e f"), "\"a b c\"");
	assert_string_equal(log_value(b, 2, "x y"), "");
}

/* ------------------------------------------------------------ sessions */

static const char cfg_text[] =
	"{\"broker\": {\"grace_ms\": 50},"
	" \"namespaces\": [{\"name\": \"pod-a\", \"queues\": [11, 12], \"policy\": \"allow\"},"
	"                {\"name\": \"pod-*\", \"queues\": [13], \"policy\": \"deny\"}],"
	" \"policies\": {\"allow\": {\"default\": \"accept\", \"rules\": []},"
	"              \"deny\": {\"default\": \"drop\", \"rules\": []}}}";

struct fixture {
	struct loop *l;
	struct session_mgr *m;
	int agent;              /* the agent's end of the lease */
	int lease;              /* the broker's end, before the handover */
	int fds[WIRE_MAX_FDS];
	struct session_hello h;
	uint64_t dev, ino;
};

static int setup_ns(void **state)
{
	/* Private network namespace: queue numbers and sockets are ours alone. */
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		return 0;
	*state = (void *)1;
	return 0;
}

static bool have_ns(void **state)
{
	return *state != NULL;
}

static void fixture_sockets(struct fixture *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	f->agent = sv[0];
	f->lease = sv[1];
	f->fds[0] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	f->fds[1] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	assert_true(f->fds[0] >= 0 && f->fds[1] >= 0);
	assert_int_equal(wire_fd_netns(f->fds[0], &f->dev, &f->ino), 0);
}

static void fixture_close(struct fixture *f)
{
	for (int i = 0; i < WIRE_MAX_FDS; i++)
		if (f->fds[i] >= 0)
			close(f->fds[i]);
	if (f->lease >= 0)
		close(f->lease);
	if (f->agent >= 0)
		close(f->agent);
	f->fds[0] = f->fds[1] = f->lease = f->agent = -1;
}

static void fixture_init(struct fixture *f, const char *text)
{
	struct errs e = { 0 };
	struct cfg *c = cfg_parse_string(text, &e);

	assert_non_null(c);
	memset(f, 0, sizeof(*f));
	f->l = loop_new();
	assert_non_null(f->l);
	f->m = session_mgr_new(f->l, c);
	assert_non_null(f->m);
	f->fds[0] = f->fds[1] = f->lease = f->agent = -1;
}

static void fixture_free(struct fixture *f)
{
	fixture_close(f);
	session_mgr_free(f->m);
	loop_free(f->l);
}

static int attach_as(struct fixture *f, const char *name, char *why, size_t whylen)
{
	f->h = (struct session_hello){
		.name = name, .pid = getpid(), .uid = 0, .netns_dev = f->dev,
		.netns_ino = f->ino, .entry = cfg_match(f->m->cfg, name),
	};
	assert_non_null(f->h.entry);
	return session_attach(f->m, &f->h, &f->lease, f->fds, why, whylen);
}

/* The answer the agent got (WIRE_ACCEPT, WIRE_REFUSE or -errno) and the
 * sockets it carried, into @fds (the caller closes them). */
static int agent_answer_fds(struct fixture *f, int fds[WIRE_MAX_FDS], size_t *n)
{
	char buf[WIRE_MSG_MAX];
	ssize_t len = wire_recv(f->agent, buf, sizeof(buf), fds, n);

	return len < 0 ? (int)len : wire_peek_type(buf, (size_t)len);
}

/* The same for answers that must carry no socket. */
static int agent_answer(struct fixture *f)
{
	int fds[WIRE_MAX_FDS];
	size_t n = 0;
	int type = agent_answer_fds(f, fds, &n);

	assert_int_equal(n, 0);
	return type;
}

/* Run the loop until the agent's end is readable (at most @ms). */
static void wait_answer(struct fixture *f, unsigned ms)
{
	struct pollfd p = { .fd = f->agent, .events = POLLIN };

	for (unsigned t = 0; t < ms; t += 5) {
		if (poll(&p, 1, 0) == 1)
			return;
		run_for(f->l, 5);
	}
}

/* The answer of a new session: it binds through the loop first. */
static int loop_answer(struct fixture *f)
{
	wait_answer(f, 2000);
	return agent_answer(f);
}

/* The reason of a REFUSE that arrives through the loop within @ms. */
static void refuse_reason(struct fixture *f, unsigned ms, char *why, size_t whylen)
{
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_refuse r;
	} u;
	int fds[WIRE_MAX_FDS];
	size_t n = 0;
	ssize_t len;

	wait_answer(f, ms);
	len = wire_recv(f->agent, u.buf, sizeof(u.buf), fds, &n);
	assert_true(len > 0);
	assert_int_equal(n, 0);
	assert_int_equal(wire_peek_type(u.buf, (size_t)len), WIRE_REFUSE);
	snprintf(why, whylen, "%s", u.r.reason);
}

static bool same_socket(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The portid queue @num is bound to in this namespace, 0 when unbound. */
static uint32_t queue_portid(uint16_t num)
{
	struct nfqb_kstat ks[32];
	int n = nfqb_kstats_read("/proc/self/net/netfilter/nfnetlink_queue", ks, 32);

	for (int i = 0; i < n && i < 32; i++)
		if (ks[i].queue == num)
			return ks[i].portid;
	return 0;
}

static bool queue_bound_to(uint16_t num, uint32_t portid)
{
	return queue_portid(num) == portid;
}

static void noop_cb(struct nfqb_packet *p, void *user)
{
}

static void test_attach_release(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	struct session *s;
	uint32_t portid;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	/* everything handed over */
	assert_int_equal(f.lease, -1);
	assert_int_equal(f.fds[0], -1);
	assert_int_equal(f.fds[1], -1);
	/* binding: listed, not yet served, no answer before the kernel's */
	s = session_find(f.m, f.dev, f.ino);
	assert_non_null(s);
	assert_int_equal(s->state, SESSION_BINDING);
	assert_string_equal(session_state_name(s->state), "binding");
	assert_int_equal(f.m->attaches, 0);
	assert_int_equal(agent_answer(&f), -EAGAIN);
	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	assert_int_equal(f.m->attaches, 1);
	assert_int_equal(f.m->count, 1);
	s = session_find(f.m, f.dev, f.ino);
	assert_non_null(s);
	assert_string_equal(s->name, "pod-a");
	assert_int_equal(s->state, SESSION_ATTACHED);
	assert_int_equal(s->nqueues, 2);
	assert_int_equal(s->nadopted, 0);
	assert_string_equal(policy_name(s->policy), "allow");
	portid = nfqb_queue_portid(s->q);
	assert_true(queue_bound_to(11, portid));
	assert_true(queue_bound_to(12, portid));

	/* the kernel's view through session_kstats */
	struct nfqb_kstat ks[4];

	assert_int_equal(session_kstats(s, ks, 4), 2);
	/* Unable to enter the namespace, the broker falls back to the agent's
	 * /proc entry — here another namespace, where our queues are not:
	 * that is an error, not an empty list. */
	int home = f.m->home_netns_fd;
	pid_t agent = s->agent_pid;

	f.m->home_netns_fd = -1;
	s->agent_pid = 1;       /* init: /proc/1/net is the host's namespace */
	assert_int_equal(session_kstats(s, ks, 4), -ENODATA);
	assert_non_null(strstr(session_kstats_strerror(-ENODATA), "CAP_SYS_ADMIN"));
	s->agent_pid = agent;   /* the test's own pid lives in that namespace */
	assert_int_equal(session_kstats(s, ks, 4), 2);
	f.m->home_netns_fd = home;

	/* a second agent for the same namespace is refused */
	fixture_close(&f);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-b", why, sizeof(why)), -EBUSY);
	assert_non_null(strstr(why, "namespace pod-a (inode "));
	assert_non_null(strstr(why, ") already served by agent pid "));
	assert_true(f.lease >= 0);            /* left to the caller */
	assert_int_equal(f.m->count, 1);
	fixture_close(&f);

	/* lease EOF: grace (50 ms), then release and unbind */
	run_for(f.l, 10);
	assert_int_equal(s->state, SESSION_GRACE);
	assert_int_equal(s->lease_fd, -1);
	run_for(f.l, 100);
	assert_int_equal(f.m->count, 0);
	assert_null(session_find(f.m, f.dev, f.ino));
	assert_false(queue_bound_to(11, portid));
	assert_false(queue_bound_to(12, portid));
	fixture_free(&f);
}

static void test_takeover(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	struct session *s;
	int first_fd, given[WIRE_MAX_FDS];
	size_t ngiven = 0;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-x", why, sizeof(why)), 0);
	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	s = session_find(f.m, f.dev, f.ino);
	assert_non_null(s);
	assert_string_equal(policy_name(s->policy), "deny");
	first_fd = nfqb_queue_fd(s->q);
	s->c.packets = 7;                    /* counters survive the takeover */

	close(f.agent);
	f.agent = -1;
	run_for(f.l, 10);
	assert_int_equal(s->state, SESSION_GRACE);

	/* a restarted agent: new sockets, same namespace and name */
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-x", why, sizeof(why)), 0);
	/* The new agent brought other sockets: it is given the session's own,
	 * the ones holding the queues, to keep across a broker restart. */
	assert_int_equal(agent_answer_fds(&f, given, &ngiven), WIRE_ACCEPT);
	assert_int_equal(ngiven, 2);
	assert_true(same_socket(given[0], nfqb_queue_fd(s->q)));
	assert_true(same_socket(given[1], s->rtnl_fd));
	close(given[0]);
	close(given[1]);
	assert_ptr_equal(session_find(f.m, f.dev, f.ino), s);
	assert_int_equal(s->state, SESSION_ATTACHED);
	assert_int_equal(s->takeovers, 1);
	assert_int_equal(s->c.packets, 7);
	assert_int_equal(nfqb_queue_fd(s->q), first_fd);   /* the queues stayed put */
	assert_int_equal(f.lease, -1);
	assert_true(f.fds[0] >= 0);         /* duplicates left to the caller */
	/* the grace timer was cancelled: still attached well past it */
	run_for(f.l, 100);
	assert_int_equal(f.m->count, 1);
	assert_int_equal(s->state, SESSION_ATTACHED);

	/* BYE ends it at once */
	struct wire_bye bye;

	wire_bye_init(&bye);
	assert_int_equal(wire_send(f.agent, &bye, sizeof(bye), NULL, 0), 0);
	run_for(f.l, 10);
	assert_int_equal(f.m->count, 0);
	fixture_free(&f);
}

static void test_bind_failure(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	struct nfqb_queue *other;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	/* someone else holds queue 12 */
	other = nfqb_queue_open();
	assert_non_null(other);
	assert_int_equal(nfqb_queue_bind(other, 12, noop_cb, NULL, NULL), 0);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	/* queue 11 binds, 12 fails: the session refuses the agent itself */
	refuse_reason(&f, 2000, why, sizeof(why));
	assert_string_equal(why, "queue 12: already bound by another socket");
	assert_int_equal(f.m->count, 0);
	assert_int_equal(f.m->refusals, 1);
	assert_int_equal(f.m->attaches, 0);
	assert_int_equal(f.fds[0], -1);      /* consumed and closed */
	assert_int_equal(f.lease, -1);       /* the session's, closed with it */
	/* queue 11, bound before the failure, was released again */
	assert_int_equal(queue_portid(11), 0);
	assert_true(queue_bound_to(12, nfqb_queue_portid(other)));
	nfqb_queue_close(other);
	fixture_free(&f);
}

static void test_reload(void **state)
{
	static const char v2[] =
		"{\"broker\": {\"grace_ms\": 50},"
		" \"namespaces\": [{\"name\": \"pod-a\", \"queues\": [11], \"policy\": \"deny\"}],"
		" \"policies\": {\"deny\": {\"default\": \"drop\", \"rules\": []}}}";
	static const char v3[] =
		"{\"namespaces\": [], \"policies\": {\"other\": {\"default\": \"drop\", \"rules\": []}}}";
	char path[] = "/tmp/test-session-XXXXXX";
	struct errs e = { 0 };
	struct fixture f;
	char why[WIRE_REASON_MAX];
	struct session *s;
	int fd;

	if (!have_ns(state))
		skip();
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fixture_init(&f, cfg_text);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	s = session_find(f.m, f.dev, f.ino);

	/* invalid: refused, old config kept */
	assert_int_equal(write(fd, "{", 1), 1);
	assert_int_equal(session_mgr_reload(f.m, path, &e), -EINVAL);
	assert_true(e.n >= 1);
	errs_reset(&e);
	assert_string_equal(policy_name(s->policy), "allow");

	/* valid: the session follows its entry to the new policy, queues kept */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, v2, sizeof(v2) - 1, 0), (ssize_t)sizeof(v2) - 1);
	assert_int_equal(session_mgr_reload(f.m, path, &e), 0);
	assert_ptr_equal(session_find(f.m, f.dev, f.ino), s);
	assert_string_equal(policy_name(s->policy), "deny");
	assert_int_equal(s->nqueues, 2);
	assert_true(queue_bound_to(12, nfqb_queue_portid(s->q)));

	/* no entry and no policy of that name left: the session ends */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, v3, sizeof(v3) - 1, 0), (ssize_t)sizeof(v3) - 1);
	assert_int_equal(session_mgr_reload(f.m, path, &e), 0);
	assert_int_equal(f.m->count, 0);
	assert_int_equal(agent_answer(&f), WIRE_REFUSE);
	close(fd);
	unlink(path);
	fixture_free(&f);
}

/* ------------------------------------------------------------ hostile agents */

/* An agent that reads its copy of the socket steals the kernel's answer:
 * the session gives up after bind_ms, refuses with the reason, unbinds. */
static void test_bind_answer_stolen(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX], junk[8192];
	struct pollfd p;
	int copy, stolen = 0;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	f.m->bind_ms = 300;
	fixture_sockets(&f);
	copy = dup(f.fds[0]);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	/* the kernel answered inside the send: take the answer first */
	p = (struct pollfd){ .fd = copy, .events = POLLIN };
	while (poll(&p, 1, 0) == 1 && recv(copy, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		stolen++;
	assert_true(stolen >= 1);
	assert_int_equal(session_find(f.m, f.dev, f.ino)->state, SESSION_BINDING);
	/* a second agent for the namespace meanwhile: busy */
	int lease = f.lease, agent = f.agent;

	f.lease = f.agent = -1;
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), -EBUSY);
	assert_non_null(strstr(why, ") is being attached by agent pid "));
	fixture_close(&f);
	f.lease = lease;
	f.agent = agent;

	refuse_reason(&f, 2000, why, sizeof(why));
	assert_string_equal(why, "queue 11: no answer from the kernel within 300 ms (is the "
			    "socket shared with a process that reads or redirects it?)");
	assert_int_equal(f.m->count, 0);
	assert_int_equal(f.m->refusals, 1);
	assert_int_equal(f.m->attaches, 0);
	assert_int_equal(queue_portid(11), 0);   /* bound by the kernel, unbound again */
	close(copy);
	fixture_free(&f);
}

/*
 * setsockopt() over glibc's (a plain system call), counting the broker's
 * NETLINK_ADD_MEMBERSHIP: one it need not make walks every route
 * listener of the machine in the kernel.
 */
static volatile unsigned long n_add_membership;

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level == SOL_NETLINK && name == NETLINK_ADD_MEMBERSHIP)
		__atomic_add_fetch(&n_add_membership, 1, __ATOMIC_RELAXED);
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

/* Groups @fd receives, as NETLINK_LIST_MEMBERSHIPS has them (bit g-1). */
static uint32_t rtnl_groups(int fd)
{
	uint32_t g[4] = { 0 };
	socklen_t len = sizeof(g);

	assert_int_equal(getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &len), 0);
	return g[0];
}

/*
 * The route socket receives link events once attached: an agent that did
 * not subscribe it is subscribed by the broker, one that did is left so,
 * without a subscribe (the broker asks first: the kernel's subscribe walks
 * every listener).
 */
static void test_rtnl_subscribed(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	int copy;

	if (!have_ns(state))
		skip();
	for (int pre = 0; pre < 2; pre++) {
		fixture_init(&f, cfg_text);
		fixture_sockets(&f);
		if (pre) {
			struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
						  .nl_groups = RTMGRP_LINK };

			assert_int_equal(bind(f.fds[1], (struct sockaddr *)&sa, sizeof(sa)), 0);
		}
		copy = dup(f.fds[1]);
		assert_true(copy >= 0);
		assert_int_equal(rtnl_groups(copy) & (1u << (RTNLGRP_LINK - 1)),
				 pre ? 1u << (RTNLGRP_LINK - 1) : 0);
		n_add_membership = 0;
		assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
		assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
		assert_int_equal(rtnl_groups(copy), 1u << (RTNLGRP_LINK - 1));
		assert_int_equal(n_add_membership, pre ? 0 : 1);
		close(copy);
		fixture_free(&f);
	}
}

/* @fd connect()ed to a netlink socket of the "agent"'s own (returned). */
static int hijack(int fd)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);
	int t = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

	assert_true(t >= 0);
	assert_int_equal(bind(t, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(t, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return t;
}

static void test_hijacked_before_hello(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	int t;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	fixture_sockets(&f);
	t = hijack(f.fds[0]);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "the netfilter socket was connect()ed to netlink port "));
	assert_non_null(strstr(why, " by a process sharing it: the kernel cannot deliver to it"));
	assert_int_equal(f.m->count, 0);
	assert_true(f.lease >= 0);              /* the caller refuses */
	assert_int_equal(queue_portid(11), 0);  /* nothing was bound */
	close(t);
	fixture_free(&f);
}

static void test_hijacked_when_served(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	int copy, t;
	uint64_t t0;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	fixture_sockets(&f);
	copy = dup(f.fds[0]);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	assert_true(queue_portid(11) != 0);
	t = hijack(copy);
	t0 = loop_now_ms();
	refuse_reason(&f, 2 * SESSION_CHECK_MS, why, sizeof(why));
	/* its check runs on the loop's tick grid: a tick later at most */
	assert_true(loop_now_ms() - t0 <= SESSION_CHECK_MS + LOOP_TICK_MS + 100);
	assert_non_null(strstr(why, "the netfilter socket was connect()ed to netlink port "));
	assert_int_equal(f.m->count, 0);
	/* released: its queues unbound although the agent keeps the socket */
	assert_int_equal(queue_portid(11), 0);
	assert_int_equal(queue_portid(12), 0);
	close(t);
	close(copy);
	fixture_free(&f);
}

static int bump_send_errors(struct worker *w, struct loop *l, void *arg)
{
	struct session *s = arg;

	s->q->st.send_errors++;
	return 0;
}

/*
 * Raise @s's send-error count (by hand: sends to the kernel's address
 * hardly fail) each round, on its worker's thread when it has one, with a
 * forged message from another port making the socket readable, until the
 * agent is refused; the reason and the release are checked.
 */
static void fail_sends_until_refused(struct fixture *f, struct session *s)
{
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	struct nlmsghdr noop = { .nlmsg_len = sizeof(noop), .nlmsg_type = NLMSG_NOOP };
	char why[WIRE_REASON_MAX];
	struct pollfd p;
	int other;

	to.nl_pid = nfqb_queue_portid(s->q);
	other = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	assert_true(other >= 0);
	p = (struct pollfd){ .fd = f->agent, .events = POLLIN };
	for (int i = 0; i < 40 && poll(&p, 1, 0) == 0; i++) {
		if (s->worker)
			assert_int_equal(worker_call(s->worker, bump_send_errors, s), 0);
		else
			bump_send_errors(NULL, NULL, s);
		assert_int_equal(sendto(other, &noop, sizeof(noop), 0,
					(struct sockaddr *)&to, sizeof(to)), (ssize_t)sizeof(noop));
		run_for(f->l, 20);
	}
	refuse_reason(f, 100, why, sizeof(why));
	assert_string_equal(why, "verdicts could not be sent for 200 ms (send errors): the "
			    "namespace's netfilter socket misbehaves");
	assert_int_equal(f->m->count, 0);
	assert_int_equal(queue_portid(11), 0);
	close(other);
}

/* Verdict sends that keep failing end the session with the reason once
 * the streak lasts send_fail_ms. */
static void test_send_failures_release(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	f.m->send_fail_ms = 200;
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	fail_sends_until_refused(&f, session_find(f.m, f.dev, f.ino));
	fixture_free(&f);
}

/* The same on a worker thread: the worker never ends a session, it flags
 * it and wakes the main loop, which refuses the agent and releases it. */
static void test_send_failures_release_on_worker(void **state)
{
	struct fixture f;
	char why[WIRE_REASON_MAX];
	struct session_worker_view wv[4];
	struct session_view v;
	struct session *s;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	f.m->send_fail_ms = 200;
	assert_int_equal(session_mgr_start_workers(f.m, 2), 0);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	s = session_find(f.m, f.dev, f.ino);
	session_view(s, &v);
	assert_int_equal(v.worker, 0);
	assert_true(v.solo);            /* alone on its worker */
	assert_int_equal(session_mgr_workers(f.m, wv, 4), 2);
	assert_int_equal(wv[0].sessions, 1);
	assert_true(wv[0].solo);
	assert_int_equal(wv[1].sessions, 0);
	assert_false(wv[1].solo);
	fail_sends_until_refused(&f, s);
	assert_int_equal(session_mgr_workers(f.m, wv, 4), 2);
	assert_int_equal(wv[0].sessions, 0);
	assert_false(wv[0].solo);
	fixture_free(&f);
}

/* Hold @arg's fd in a worker's loop, so the session's hand-over to that
 * worker fails there (loop_add(): -EEXIST), as an epoll_ctl() out of
 * memory or max_user_watches would. */
static void never_cb(struct loop *l, int fd, uint32_t events, void *data)
{
}

static int squat_call(struct worker *w, struct loop *l, void *arg)
{
	return loop_add(l, *(int *)arg, EPOLLIN, never_cb, NULL);
}

static int unsquat_call(struct worker *w, struct loop *l, void *arg)
{
	loop_del(l, *(int *)arg);
	return 0;
}

/*
 * The accept goes out before the hand-over to a worker (bind_complete());
 * when the hand-over then fails, the agent is refused with the retry
 * flag, the refusal counted, the session released and its queues unbound.
 */
static void test_assign_fails_after_accept(void **state)
{
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_refuse r;
	} u;
	struct fixture f;
	char why[WIRE_REASON_MAX];
	int fds[WIRE_MAX_FDS], qfd;
	size_t n = 0;
	ssize_t len;
	uint64_t refused;
	uint32_t portid;
	struct session *s;

	if (!have_ns(state))
		skip();
	fixture_init(&f, cfg_text);
	assert_int_equal(session_mgr_start_workers(f.m, 2), 0);
	fixture_sockets(&f);
	assert_int_equal(attach_as(&f, "pod-a", why, sizeof(why)), 0);
	s = session_find(f.m, f.dev, f.ino);
	assert_non_null(s);
	qfd = nfqb_queue_fd(s->q);
	portid = nfqb_queue_portid(s->q);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(worker_call(worker_pool_at(f.m->pool, i), squat_call, &qfd), 0);
	refused = f.m->refusals;

	assert_int_equal(loop_answer(&f), WIRE_ACCEPT);
	len = wire_recv(f.agent, u.buf, sizeof(u.buf), fds, &n);
	assert_true(len > 0);
	assert_int_equal(n, 0);
	assert_int_equal(wire_peek_type(u.buf, (size_t)len), WIRE_REFUSE);
	assert_int_equal(wire_refuse_flags(&u.r), WIRE_REFUSE_F_RETRY);
	assert_non_null(strstr(u.r.reason, "no worker thread could take the namespace: "));
	assert_int_equal(f.m->refusals, refused + 1);
	assert_int_equal(f.m->attaches, 0);
	assert_int_equal(f.m->count, 0);
	assert_null(session_find(f.m, f.dev, f.ino));
	assert_false(queue_bound_to(11, portid));
	assert_false(queue_bound_to(12, portid));
	/* the lease is closed: nothing more comes */
	len = wire_recv(f.agent, u.buf, sizeof(u.buf), fds, &n);
	assert_int_equal(len, 0);

	for (unsigned i = 0; i < 2; i++)
		(void)worker_call(worker_pool_at(f.m->pool, i), unsquat_call, &qfd);
	fixture_free(&f);
}

/* ------------------------------------------------------------ reading API */

static int observed;

static void observer(const struct session *s, const struct nfqb_packet *p,
		     const struct pktmeta *m, int rule, const struct policy_action *act,
		     int rc, void *data)
{
	observed += *(int *)data;
}

static void count_one(struct session *s, void *data)
{
	(*(size_t *)data)++;
}

/* What other modules may see: views, totals, iteration, observers. */
static void test_reading_api(void **state)
{
	static const char cfgtext[] =
		"{\"broker\": {\"listen\": \"/nonexistent/a.sock\"},"
		" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"p\"}],"
		" \"policies\": {\"p\": {\"default\": \"accept\", \"rules\": []}}}";
	static const uint16_t q[] = { 3, 4 };
	struct errs e = { 0 };
	struct loop *l = loop_new();
	struct cfg *cfg = cfg_parse_string(cfgtext, &e);
	struct session_mgr *m;
	struct session *s;
	struct session_view v;
	struct session_totals t;
	int one = 1, ten = 10, h1, h2, hs[SESSION_OBSERVERS_MAX];
	size_t n = 0;

	assert_non_null(l);
	assert_non_null(cfg);
	m = session_mgr_new(l, cfg);
	assert_non_null(m);
	s = fake_session_queues(m, "pod-a", "p", 77, q, 2);
	s->agent_uid = 1000;
	s->c.packets = 5;
	s->c.drop = 2;
	m->total.packets = 9;
	m->attaches = 3;
	session_mgr_count_refusal(m, REFUSAL_AGENT_PIN);
	session_mgr_count_refusal(m, REFUSAL_CONTROL_UID);
	session_mgr_count_refusal(m, REFUSAL_N);

	session_view(s, &v);
	assert_string_equal(v.name, "pod-a");
	assert_string_equal(v.policy, "p");
	assert_int_equal(v.netns_ino, 77);
	assert_int_equal(v.nqueues, 2);
	assert_int_equal(v.queues[1], 4);
	assert_int_equal(v.c.packets, 5);
	assert_ptr_equal(v.ks, &s->ks);
	assert_int_equal(v.state, SESSION_ATTACHED);
	session_mgr_totals(m, &t);
	assert_int_equal(t.c.packets, 9);
	assert_int_equal(t.namespaces, 1);
	assert_int_equal(t.attaches, 3);
	/* control refusals are not the agents' */
	assert_int_equal(t.refusals, 1);
	assert_int_equal(t.refused[REFUSAL_AGENT_PIN], 1);
	assert_int_equal(t.refused[REFUSAL_CONTROL_UID], 1);
	assert_int_equal(t.refused[REFUSAL_HTTP_LIMIT], 0);
	assert_string_equal(session_refusal_listener(REFUSAL_CONTROL_UID), "control");
	assert_string_equal(session_refusal_reason(REFUSAL_AGENT_SESSION_CAP), "session_cap");
	/* the start's load counts as the last successful one, not as a reload */
	assert_true(t.last_reload_ok);
	assert_int_equal(t.last_reload_ok_at, m->started);
	assert_int_equal(t.reloads_ok + t.reloads_failed, 0);
	assert_false(t.ready);
	session_mgr_set_ready(m, true);
	assert_true(session_mgr_ready(m));
	session_mgr_foreach(m, count_one, &n);
	assert_int_equal(n, 1);
	assert_int_equal(session_mgr_count(m), 1);
	assert_int_equal(session_mgr_uid_sessions(m, 1000), 1);
	assert_int_equal(session_mgr_uid_sessions(m, 1001), 0);
	assert_ptr_equal(session_mgr_cfg(m), cfg);
	assert_ptr_equal(session_mgr_loop(m), l);

	/* The verdict counter table: every counter, the error one logged as "errors". */
	assert_int_equal(session_verdict_ncounters, 6);
	assert_string_equal(session_verdict_counters[1].name, "drop");
	assert_int_equal(session_counter_get(&s->c, &session_verdict_counters[1]), 2);
	assert_string_equal(session_verdict_counters[4].log_name, "errors");
	assert_string_equal(session_verdict_counters[5].name, "would_drop");

	/* Observers: slots reused, the count shrinks when the last one goes. */
	h1 = session_mgr_observe(m, observer, &one);
	h2 = session_mgr_observe(m, observer, &ten);
	assert_true(h1 >= 0 && h2 >= 0 && h1 != h2);
	assert_int_equal(m->nobs, 2);
	observed = 0;
	for (size_t i = 0; i < m->nobs; i++)
		if (m->obs[i].fn)
			m->obs[i].fn(s, NULL, NULL, -1, NULL, 0, m->obs[i].data);
	assert_int_equal(observed, 11);
	session_mgr_unobserve(m, h1);
	assert_int_equal(m->nobs, 2);      /* h2 still behind the hole */
	assert_int_equal(session_mgr_observe(m, observer, &one), h1);
	session_mgr_unobserve(m, h1);
	session_mgr_unobserve(m, h2);
	assert_int_equal(m->nobs, 0);
	session_mgr_unobserve(m, -1);
	session_mgr_unobserve(m, SESSION_OBSERVERS_MAX);
	for (int i = 0; i < SESSION_OBSERVERS_MAX; i++)
		assert_true((hs[i] = session_mgr_observe(m, observer, &one)) >= 0);
	assert_int_equal(session_mgr_observe(m, observer, &one), -ENOSPC);
	for (int i = 0; i < SESSION_OBSERVERS_MAX; i++)
		session_mgr_unobserve(m, hs[i]);
	assert_int_equal(m->nobs, 0);

	session_mgr_free(m);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_fds),
		cmocka_unit_test(test_loop_timers),
		cmocka_unit_test(test_loop_many_timers),
		cmocka_unit_test(test_log_value),
		cmocka_unit_test(test_reading_api),
		cmocka_unit_test(test_attach_release),
		cmocka_unit_test(test_takeover),
		cmocka_unit_test(test_bind_failure),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_bind_answer_stolen),
		cmocka_unit_test(test_rtnl_subscribed),
		cmocka_unit_test(test_hijacked_before_hello),
		cmocka_unit_test(test_hijacked_when_served),
		cmocka_unit_test(test_send_failures_release),
		cmocka_unit_test(test_send_failures_release_on_worker),
		cmocka_unit_test(test_assign_fails_after_accept),
	};

	return cmocka_run_group_tests(tests, setup_ns, NULL);
}
