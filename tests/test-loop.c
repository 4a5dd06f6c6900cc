/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/loop.c: fd registration and dispatch (pipes,
 * eventfds), stale events after a removal in the same round, timers in
 * deadline order under random arm/re-arm/cancel, timers armed from
 * callbacks or in the past, loop_stop and the bookkeeping helpers, and
 * loop_again() for edge-triggered fds: rerun without a new edge, fair to
 * other fds and timers, cancelled by removal, never more entries than fit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "helpers/rng.h"
#include "loop.h"

/* ------------------------------------------------------------ helpers */

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	int *fired = data;

	if (fired)
		(*fired)++;
	loop_stop(l);
}

/* Run @l until about @ms milliseconds have passed (or someone stops it). */
static void run_for(struct loop *l, unsigned ms)
{
	struct loop_timer stop;

	loop_timer_init(&stop, stop_cb, NULL);
	assert_int_equal(loop_timer_arm(l, &stop, loop_now_ms() + ms), 0);
	assert_int_equal(loop_run(l), 0);
	loop_timer_cancel(l, &stop);
}

static int efd_new(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* What a callback saw. */
struct rec {
	int calls;
	int fd;                  /* the fd it was called for */
	uint32_t events;         /* the last events */
	void *data;              /* the data it got */
	bool drain;              /* read the eventfd/pipe so it is not ready again */
	bool stop;               /* loop_stop() from inside */
	int victim;              /* fd to loop_del + close from inside, -1 none */
	int *victim_slot;        /* where the victim's owner keeps it (set to -1) */
	struct rec *replacement; /* register a fresh eventfd under this record */
	int new_fd;              /* that fresh eventfd */
};

static void drain(int fd)
{
	char b[64];

	while (read(fd, b, sizeof(b)) > 0) {
	}
}

static void rec_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	struct rec *r = data;

	r->calls++;
	r->fd = fd;
	r->events = events;
	r->data = data;
	if (r->drain)
		drain(fd);
	if (r->victim >= 0) {
		assert_int_equal(loop_del(l, r->victim), 0);
		close(r->victim);
		if (r->victim_slot)
			*r->victim_slot = -1;
		/* the lowest free number: most likely the victim's, now reused */
		if (r->replacement) {
			r->new_fd = efd_new();
			assert_int_equal(loop_add(l, r->new_fd, EPOLLIN, rec_cb, r->replacement), 0);
		}
		r->victim = -1;
	}
	if (r->stop)
		loop_stop(l);
}

#define REC_INIT { .fd = -1, .victim = -1, .new_fd = -1 }

/* ------------------------------------------------------------ fds */

static void test_new_free(void **state)
{
	struct loop *l = loop_new();

	assert_non_null(l);
	assert_int_equal(loop_fd_count(l), 0);
	loop_free(l);
	loop_free(NULL);
}

static void test_add_dispatch(void **state)
{
	struct loop *l = loop_new();
	struct rec ra = REC_INIT, rb = REC_INIT;
	int p[2], e;

	assert_non_null(l);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	e = efd_new();
	ra.drain = rb.drain = true;
	assert_int_equal(loop_add(l, p[0], EPOLLIN, rec_cb, &ra), 0);
	assert_int_equal(loop_add(l, e, EPOLLIN, rec_cb, &rb), 0);
	assert_int_equal(loop_fd_count(l), 2);

	/* nothing ready: no callback */
	run_for(l, 20);
	assert_int_equal(ra.calls, 0);
	assert_int_equal(rb.calls, 0);

	/* only the eventfd: only its callback, with its fd, data and events */
	efd_signal(e);
	run_for(l, 20);
	assert_int_equal(ra.calls, 0);
	assert_int_equal(rb.calls, 1);
	assert_int_equal(rb.fd, e);
	assert_ptr_equal(rb.data, &rb);
	assert_int_equal(rb.events, EPOLLIN);

	/* only the pipe */
	assert_int_equal(write(p[1], "x", 1), 1);
	run_for(l, 20);
	assert_int_equal(ra.calls, 1);
	assert_int_equal(ra.fd, p[0]);
	assert_int_equal(ra.events, EPOLLIN);
	assert_int_equal(rb.calls, 1);

	/* level-triggered: left unread, called again every round */
	ra.drain = false;
	assert_int_equal(write(p[1], "y", 1), 1);
	ra.stop = true;
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(ra.calls, 3);
	ra.stop = false;
	drain(p[0]);

	/* writer gone: the hangup is reported even though only EPOLLIN was asked */
	close(p[1]);
	ra.drain = true;
	ra.stop = true;
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(ra.calls, 4);
	assert_true(ra.events & EPOLLHUP);

	assert_int_equal(loop_del(l, p[0]), 0);
	assert_int_equal(loop_del(l, e), 0);
	assert_int_equal(loop_fd_count(l), 0);
	close(p[0]);
	close(e);
	loop_free(l);
}

static void test_mod(void **state)
{
	struct loop *l = loop_new();
	struct rec r = REC_INIT;
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	/* the write end: always writable, never readable */
	assert_int_equal(loop_add(l, p[1], EPOLLIN, rec_cb, &r), 0);
	run_for(l, 20);
	assert_int_equal(r.calls, 0);

	assert_int_equal(loop_mod(l, p[1], EPOLLOUT), 0);
	r.stop = true;
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.fd, p[1]);
	assert_int_equal(r.events, EPOLLOUT);

	/* no events at all: quiet again, still registered */
	r.stop = false;
	assert_int_equal(loop_mod(l, p[1], 0), 0);
	run_for(l, 20);
	assert_int_equal(r.calls, 1);
	assert_int_equal(loop_fd_count(l), 1);

	/* mod keeps the callback and data of the registration */
	assert_int_equal(loop_mod(l, p[1], EPOLLOUT), 0);
	r.stop = true;
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.calls, 2);
	assert_ptr_equal(r.data, &r);

	assert_int_equal(loop_del(l, p[1]), 0);
	assert_int_equal(loop_mod(l, p[1], EPOLLOUT), -ENOENT);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}

static void test_errors(void **state)
{
	struct loop *l = loop_new();
	struct rec r = REC_INIT;
	char path[] = "/tmp/test-loop-XXXXXX";
	int e = efd_new(), e2 = efd_new(), file;

	assert_int_equal(loop_add(l, e, EPOLLIN, rec_cb, &r), 0);
	assert_int_equal(loop_add(l, e, EPOLLIN, rec_cb, &r), -EEXIST);
	assert_int_equal(loop_add(l, e, EPOLLOUT, rec_cb, NULL), -EEXIST);
	assert_int_equal(loop_fd_count(l), 1);
	assert_int_equal(loop_add(l, -1, EPOLLIN, rec_cb, &r), -EINVAL);
	assert_int_equal(loop_add(l, e2, EPOLLIN, NULL, &r), -EINVAL);

	assert_int_equal(loop_del(l, e2), -ENOENT);         /* never added */
	assert_int_equal(loop_del(l, -1), -ENOENT);
	assert_int_equal(loop_del(l, 100000), -ENOENT);     /* past every slot */
	assert_int_equal(loop_mod(l, e2, EPOLLIN), -ENOENT);
	assert_int_equal(loop_mod(l, -5, EPOLLIN), -ENOENT);
	assert_int_equal(loop_mod(l, 100000, EPOLLIN), -ENOENT);

	/* epoll refuses a regular file: the error is passed on, nothing registered */
	file = mkstemp(path);
	assert_true(file >= 0);
	unlink(path);
	assert_int_equal(loop_add(l, file, EPOLLIN, rec_cb, &r), -EPERM);
	assert_int_equal(loop_fd_count(l), 1);
	assert_int_equal(loop_del(l, file), -ENOENT);
	/* an fd that is not open at all */
	assert_int_equal(loop_add(l, 999, EPOLLIN, rec_cb, &r), -EBADF);
	assert_int_equal(loop_fd_count(l), 1);

	/* deleted twice */
	assert_int_equal(loop_del(l, e), 0);
	assert_int_equal(loop_del(l, e), -ENOENT);
	assert_int_equal(loop_fd_count(l), 0);

	/* added again after removal: the new registration works */
	assert_int_equal(loop_add(l, e, EPOLLIN, rec_cb, &r), 0);
	efd_signal(e);
	r.drain = r.stop = true;
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(loop_del(l, e), 0);

	/* the owner closed it first: forgotten anyway */
	assert_int_equal(loop_add(l, e2, EPOLLIN, rec_cb, &r), 0);
	close(e2);
	assert_int_equal(loop_del(l, e2), 0);
	assert_int_equal(loop_fd_count(l), 0);
	close(file);
	close(e);
	loop_free(l);
}

/*
 * Two fds ready in one round, each callback removes and closes the other
 * and registers a fresh eventfd (which gets the closed number). The event
 * already collected for the closed fd must not reach anyone: not the old
 * callback, not the new registration under the reused number.
 */
static void test_del_other_in_callback(void **state)
{
	struct loop *l = loop_new();
	struct rec ra = REC_INIT, rb = REC_INIT, fresh = REC_INIT;
	int a = efd_new(), b = efd_new();
	const int orig_a = a, orig_b = b;

	ra.victim = b;
	ra.victim_slot = &b;
	rb.victim = a;
	rb.victim_slot = &a;
	ra.replacement = rb.replacement = &fresh;
	ra.drain = rb.drain = true;
	assert_int_equal(loop_add(l, a, EPOLLIN, rec_cb, &ra), 0);
	assert_int_equal(loop_add(l, b, EPOLLIN, rec_cb, &rb), 0);
	efd_signal(a);
	efd_signal(b);
	run_for(l, 30);
	assert_int_equal(ra.calls + rb.calls, 1);
	assert_int_equal(fresh.calls, 0);
	assert_int_equal(loop_fd_count(l), 2);

	/* the survivor and the new eventfd work normally afterwards */
	int survivor = a >= 0 ? a : b;
	struct rec *rs = a >= 0 ? &ra : &rb;
	int nfd = ra.new_fd >= 0 ? ra.new_fd : rb.new_fd;

	assert_true(survivor >= 0);
	/* the fresh eventfd really reuses the closed number */
	assert_int_equal(nfd, a >= 0 ? orig_b : orig_a);
	fresh.drain = true;
	efd_signal(nfd);
	efd_signal(survivor);
	run_for(l, 30);
	assert_int_equal(fresh.calls, 1);
	assert_int_equal(fresh.fd, nfd);
	assert_int_equal(rs->calls, 2);
	assert_int_equal(loop_del(l, nfd), 0);
	assert_int_equal(loop_del(l, survivor), 0);
	close(nfd);
	close(survivor);
	loop_free(l);
}

/* A callback removing (and closing) its own fd. */
static void self_del_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	int *calls = data;

	(*calls)++;
	assert_int_equal(loop_del(l, fd), 0);
	close(fd);
}

static void test_del_self(void **state)
{
	struct loop *l = loop_new();
	int calls = 0, e = efd_new();

	assert_int_equal(loop_add(l, e, EPOLLIN, self_del_cb, &calls), 0);
	efd_signal(e);
	run_for(l, 30);
	assert_int_equal(calls, 1);
	assert_int_equal(loop_fd_count(l), 0);
	loop_free(l);
}

/*
 * More fds than the first slot array and than one epoll_wait batch: each
 * gets exactly its own callback once.
 */
struct many {
	int calls;
	int fd;
};

static void many_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	struct many *m = data;

	m->calls++;
	assert_int_equal(fd, m->fd);
	drain(fd);
}

static void test_many_fds(void **state)
{
	enum { N = 300 };
	struct loop *l = loop_new();
	struct many *m = calloc(N, sizeof(*m));

	assert_non_null(m);
	for (int i = 0; i < N; i++) {
		m[i].fd = efd_new();
		assert_int_equal(loop_add(l, m[i].fd, EPOLLIN, many_cb, &m[i]), 0);
	}
	assert_true(m[N - 1].fd > 256);
	assert_int_equal(loop_fd_count(l), N);
	for (int i = 0; i < N; i += 2)
		efd_signal(m[i].fd);
	run_for(l, 50);
	for (int i = 0; i < N; i++)
		assert_int_equal(m[i].calls, i % 2 ? 0 : 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(loop_del(l, m[i].fd), 0);
		close(m[i].fd);
	}
	assert_int_equal(loop_fd_count(l), 0);
	free(m);
	loop_free(l);
}

/* loop_stop from an fd callback: the rest of the round waits for the next run. */
static void test_stop_in_fd_callback(void **state)
{
	struct loop *l = loop_new();
	struct rec ra = REC_INIT, rb = REC_INIT;
	int a = efd_new(), b = efd_new();

	ra.drain = rb.drain = true;
	ra.stop = rb.stop = true;
	assert_int_equal(loop_add(l, a, EPOLLIN, rec_cb, &ra), 0);
	assert_int_equal(loop_add(l, b, EPOLLIN, rec_cb, &rb), 0);
	efd_signal(a);
	efd_signal(b);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(ra.calls + rb.calls, 1);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(ra.calls, 1);
	assert_int_equal(rb.calls, 1);
	assert_int_equal(loop_del(l, a), 0);
	assert_int_equal(loop_del(l, b), 0);
	close(a);
	close(b);
	loop_free(l);
}

/* ------------------------------------------------------------ loop_again */

/* A callback of an edge-triggered fd that reads nothing and asks to run
 * again while @left > 0: what a queue run that stopped at its budget does. */
struct again {
	int calls;
	int left;                /* loop_again() from this many more calls */
	int also;                /* another fd to loop_again() once, -1 none */
	int del;                 /* an fd to loop_del() once, -1 none */
};

static void again_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	struct again *a = data;

	a->calls++;
	assert_true(events & EPOLLIN);
	if (a->left > 0) {
		a->left--;
		assert_int_equal(loop_again(l, fd), 0);
		/* twice in a row still runs it once */
		assert_int_equal(loop_again(l, fd), 0);
	}
	if (a->also >= 0) {
		assert_int_equal(loop_again(l, a->also), 0);
		a->also = -1;
	}
	if (a->del >= 0) {
		assert_int_equal(loop_del(l, a->del), 0);
		a->del = -1;
	}
}

#define AGAIN_INIT { .also = -1, .del = -1 }

/* Stop watching @fd and close it. */
static void unwatch(struct loop *l, int fd)
{
	assert_int_equal(loop_del(l, fd), 0);
	close(fd);
}

static void test_again_reruns_without_edge(void **state)
{
	struct loop *l = loop_new();
	struct again a = AGAIN_INIT;
	int e = efd_new();

	assert_int_equal(loop_add(l, e, EPOLLIN | EPOLLET, again_cb, &a), 0);
	/* one edge, never read: called once for it, then once per loop_again() */
	a.left = 3;
	efd_signal(e);
	run_for(l, 30);
	assert_int_equal(a.calls, 4);
	/* nothing asked, no new edge: edge-triggered, not called again */
	run_for(l, 30);
	assert_int_equal(a.calls, 4);
	/* a new edge still wakes it */
	efd_signal(e);
	run_for(l, 30);
	assert_int_equal(a.calls, 5);
	unwatch(l, e);
	loop_free(l);
}

/* An fd that asks to run again forever starves neither other fds nor timers. */
static void test_again_fair(void **state)
{
	struct loop *l = loop_new();
	struct again busy = AGAIN_INIT;
	struct rec other = REC_INIT;
	int b = efd_new(), o = efd_new();

	busy.left = 1 << 30;
	other.drain = true;
	assert_int_equal(loop_add(l, b, EPOLLIN | EPOLLET, again_cb, &busy), 0);
	assert_int_equal(loop_add(l, o, EPOLLIN, rec_cb, &other), 0);
	efd_signal(b);
	efd_signal(o);
	run_for(l, 30);          /* returns: the stop timer fired */
	assert_int_equal(other.calls, 1);
	assert_true(busy.calls > 1);
	/* the other fd is served while the busy one keeps asking */
	efd_signal(o);
	run_for(l, 30);
	assert_int_equal(other.calls, 2);
	unwatch(l, b);
	unwatch(l, o);
	loop_free(l);
}

/* Removing an fd cancels its pending run, also when its number is reused. */
static void test_again_cancelled_by_del(void **state)
{
	struct loop *l = loop_new();
	struct again a = AGAIN_INIT, killer = AGAIN_INIT, fresh = AGAIN_INIT;
	int e = efd_new(), k = efd_new(), n;

	assert_int_equal(loop_again(l, e), -ENOENT);
	assert_int_equal(loop_again(l, -1), -ENOENT);
	assert_int_equal(loop_again(l, 100000), -ENOENT);
	assert_int_equal(loop_add(l, e, EPOLLIN | EPOLLET, again_cb, &a), 0);
	assert_int_equal(loop_add(l, k, EPOLLIN | EPOLLET, again_cb, &killer), 0);
	/* @e asks to run again; @k, later in the same round, removes it
	 * (epoll reports ready fds in the order they became ready) */
	a.left = 1;
	killer.del = e;
	efd_signal(e);
	efd_signal(k);
	run_for(l, 30);
	assert_int_equal(killer.calls, 1);
	assert_int_equal(a.calls, 1);
	/* removed before its turn: not called */
	a.calls = 0;
	a.left = 0;
	assert_int_equal(loop_add(l, e, EPOLLIN | EPOLLET, again_cb, &a), 0);
	assert_int_equal(loop_again(l, e), 0);
	unwatch(l, e);
	/* the number comes back with a new registration that did not ask */
	n = efd_new();
	assert_int_equal(n, e);
	assert_int_equal(loop_add(l, n, EPOLLIN | EPOLLET, again_cb, &fresh), 0);
	run_for(l, 30);
	assert_int_equal(a.calls, 0);
	assert_int_equal(fresh.calls, 0);
	/* ... and when it asks, it is called once, with its own data */
	assert_int_equal(loop_del(l, n), 0);
	assert_int_equal(loop_add(l, n, EPOLLIN | EPOLLET, again_cb, &fresh), 0);
	assert_int_equal(loop_again(l, n), 0);
	run_for(l, 30);
	assert_int_equal(fresh.calls, 1);
	assert_int_equal(a.calls, 0);
	unwatch(l, n);
	unwatch(l, k);
	loop_free(l);
}

/*
 * Order and count: a busy edge-triggered fd that gets a new edge and asks
 * again on every call runs once per round, after the fds that became
 * ready, not twice (once for its edge, once for its request).
 */
static char order[64];
static size_t norder;
static int order_other = -1;

static void order_mark(char c)
{
	if (norder < sizeof(order) - 1)
		order[norder++] = c;
}

static void busy_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	order_mark('B');
	if (order_other >= 0) {
		efd_signal(order_other);         /* ready now: runs before B's rerun */
		order_other = -1;
	}
	efd_signal(fd);                          /* a new edge every call */
	assert_int_equal(loop_again(l, fd), 0);
}

/* Level-triggered and never read: called once per round, so it counts them. */
static void round_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	int *rounds = data;

	order_mark('T');
	if (++*rounds == 6)
		loop_stop(l);
}

static void other_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	order_mark('O');
	drain(fd);
}

static void test_again_once_per_round(void **state)
{
	struct loop *l = loop_new();
	int b = efd_new(), t = efd_new(), o = efd_new(), rounds = 0;

	assert_int_equal(loop_add(l, b, EPOLLIN | EPOLLET, busy_cb, NULL), 0);
	assert_int_equal(loop_add(l, t, EPOLLIN, round_cb, &rounds), 0);
	assert_int_equal(loop_add(l, o, EPOLLIN, other_cb, NULL), 0);
	order_other = o;
	efd_signal(b);
	efd_signal(t);
	assert_int_equal(loop_run(l), 0);
	order[norder] = '\0';
	assert_int_equal(rounds, 6);
	/* one B per round: never two between round marks */
	assert_null(strstr(order, "BB"));
	/* the fd B made ready runs before B's rerun */
	assert_non_null(strchr(order, 'O'));
	assert_non_null(strchr(order + 1, 'B'));
	assert_true(strchr(order, 'O') < strchr(order + 1, 'B'));
	assert_true(strlen(order) >= 11);
	unwatch(l, b);
	unwatch(l, t);
	unwatch(l, o);
	loop_free(l);
}

/*
 * Many fds asking again from their own and from each other's callbacks:
 * every one runs as often as asked (and ASan sees no write past the
 * list; removal and reuse are test_again_cancelled_by_del's).
 */
static void test_again_many(void **state)
{
	enum { N = 300, ROUNDS = 3 };
	struct loop *l = loop_new();
	struct again *a = calloc(N, sizeof(*a));
	int *fd = calloc(N, sizeof(*fd));

	assert_non_null(a);
	assert_non_null(fd);
	for (int i = 0; i < N; i++) {
		a[i] = (struct again)AGAIN_INIT;
		fd[i] = efd_new();
		assert_int_equal(loop_add(l, fd[i], EPOLLIN | EPOLLET, again_cb, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		a[i].left = ROUNDS;
		/* each also asks for its neighbour once: already queued or
		 * already run, it must not be lost nor doubled beyond one */
		a[i].also = fd[(i + 1) % N];
		assert_int_equal(loop_again(l, fd[i]), 0);
	}
	run_for(l, 100);
	for (int i = 0; i < N; i++) {
		/* the first call, ROUNDS asked by itself, at most one by the neighbour */
		assert_true(a[i].calls >= 1 + ROUNDS);
		assert_true(a[i].calls <= 2 + ROUNDS);
	}
	for (int i = 0; i < N; i++) {
		unwatch(l, fd[i]);
	}
	free(fd);
	free(a);
	loop_free(l);
}

/* ------------------------------------------------------------ idle */

/* An idle callback: sleeps in poll() on its own fd, as a solo worker
 * sleeps in its receive, and notes what the loop had done before. */
struct idle {
	int calls;
	int stop_at;             /* loop_stop() instead of sleeping on this call */
	int wake;                /* its sleep's fd */
	int event_fd;            /* an fd of the loop made ready during call 1 */
	int other_calls_at[4];   /* the other fd's calls when each call began */
	int again_calls_at[4];
	struct rec *other;
	struct again *again;
};

static void idle_cb(struct loop *l, void *data)
{
	struct idle *d = data;
	struct pollfd p = { .fd = d->wake, .events = POLLIN };

	if (d->calls < 4) {
		d->other_calls_at[d->calls] = d->other ? d->other->calls : 0;
		d->again_calls_at[d->calls] = d->again ? d->again->calls : 0;
	}
	if (++d->calls >= d->stop_at) {
		loop_stop(l);
		return;
	}
	if (d->calls == 1 && d->event_fd >= 0)
		efd_signal(d->event_fd);     /* arrives while it sleeps */
	efd_signal(d->wake);                 /* its wakeup */
	assert_int_equal(poll(&p, 1, 1000), 1);
	drain(d->wake);
}

/*
 * The idle callback runs only where the loop would sleep: after the ready
 * fds and the queued runs; each return starts a round that sees what
 * became ready meanwhile. NULL sleeps in epoll_wait() again.
 */
static void test_idle(void **state)
{
	struct loop *l = loop_new();
	struct again a = AGAIN_INIT;
	struct rec other = REC_INIT;
	struct idle d = { .stop_at = 3, .event_fd = -1 };
	int e = efd_new(), o = efd_new();

	d.wake = efd_new();
	d.other = &other;
	d.again = &a;
	d.event_fd = o;
	other.drain = true;
	a.left = 2;
	assert_int_equal(loop_add(l, e, EPOLLIN | EPOLLET, again_cb, &a), 0);
	assert_int_equal(loop_add(l, o, EPOLLIN, rec_cb, &other), 0);
	efd_signal(e);
	efd_signal(o);
	loop_set_idle(l, idle_cb, &d);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(d.calls, 3);
	/* first idle: the ready fd served, every queued run done */
	assert_int_equal(d.other_calls_at[0], 1);
	assert_int_equal(d.again_calls_at[0], 3);
	/* the event that came during the sleep was served before the next */
	assert_int_equal(d.other_calls_at[1], 2);
	assert_int_equal(other.calls, 2);
	assert_int_equal(a.calls, 3);

	/* without it the loop sleeps in epoll_wait until its timer */
	loop_set_idle(l, NULL, &d);
	run_for(l, 30);
	assert_int_equal(d.calls, 3);
	efd_signal(o);
	run_for(l, 30);
	assert_int_equal(other.calls, 3);
	assert_int_equal(d.calls, 3);
	unwatch(l, e);
	unwatch(l, o);
	close(d.wake);
	loop_free(l);
}

/* ------------------------------------------------------------ timers */

/* Every timer callback records who fired, its deadline and the time. */
struct fire {
	size_t id;
	uint64_t deadline;
	uint64_t at;
};

static struct fire fires[4096];
static size_t nfires;

struct tm_rec {
	struct loop_timer t;
	size_t id;
	int calls;
};

static void record_cb(struct loop *l, struct loop_timer *t, void *data)
{
	struct tm_rec *r = data;

	assert_ptr_equal(t, &r->t);
	assert_false(loop_timer_armed(t));       /* disarmed before its callback */
	r->calls++;
	assert_true(nfires < sizeof(fires) / sizeof(fires[0]));
	fires[nfires++] = (struct fire){ r->id, t->deadline, loop_now_ms() };
}

static void test_timer_order_simple(void **state)
{
	struct loop *l = loop_new();
	static const unsigned delay[6] = { 40, 10, 30, 20, 25, 15 };
	struct tm_rec r[6];
	uint64_t now = loop_now_ms();

	nfires = 0;
	for (size_t i = 0; i < 6; i++) {
		r[i] = (struct tm_rec){ .id = i };
		loop_timer_init(&r[i].t, record_cb, &r[i]);
		assert_false(loop_timer_armed(&r[i].t));
		assert_int_equal(loop_timer_arm(l, &r[i].t, now + delay[i]), 0);
		assert_true(loop_timer_armed(&r[i].t));
	}
	loop_timer_cancel(l, &r[2].t);                    /* never fires */
	assert_false(loop_timer_armed(&r[2].t));
	loop_timer_cancel(l, &r[2].t);                    /* twice is fine */
	assert_int_equal(loop_timer_arm(l, &r[0].t, now + 5), 0);    /* earlier */
	assert_int_equal(loop_timer_arm(l, &r[1].t, now + 35), 0);   /* later */
	run_for(l, 60);
	assert_int_equal(nfires, 5);
	static const size_t want[5] = { 0, 5, 3, 4, 1 };
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(fires[i].id, want[i]);
		assert_true(fires[i].at >= fires[i].deadline);   /* never early */
	}
	assert_int_equal(r[2].calls, 0);
	loop_free(l);
}

/*
 * 1000 timers with random deadlines, then random re-arms (earlier and later)
 * and cancels: the survivors fire once each, in deadline order, never early,
 * and the cancelled ones never.
 */
static void test_timer_many_random(void **state)
{
	enum { N = 1000 };
	struct loop *l = loop_new();
	struct tm_rec *r = calloc(N, sizeof(*r));
	bool *cancelled = calloc(N, sizeof(*cancelled));
	uint64_t now = loop_now_ms();
	size_t live = N;

	assert_non_null(r);
	assert_non_null(cancelled);
	rng_state = 0x9e3779b97f4a7c15ull ^ now;
	print_message("seed %#llx\n", (unsigned long long)rng_state);
	nfires = 0;
	for (size_t i = 0; i < N; i++) {
		r[i].id = i;
		loop_timer_init(&r[i].t, record_cb, &r[i]);
		assert_int_equal(loop_timer_arm(l, &r[i].t, now + 2 + rng() % 60), 0);
	}
	for (int k = 0; k < 3 * N; k++) {
		size_t i = rng() % N;

		switch (rng() % 3) {
		case 0:
			if (!cancelled[i]) {
				loop_timer_cancel(l, &r[i].t);
				cancelled[i] = true;
				live--;
			}
			break;
		case 1:
			/* re-arm, or arm again after a cancel */
			assert_int_equal(loop_timer_arm(l, &r[i].t, now + 2 + rng() % 60), 0);
			if (cancelled[i]) {
				cancelled[i] = false;
				live++;
			}
			break;
		default:
			loop_timer_cancel(l, &r[i].t);       /* armed or not */
			if (!cancelled[i]) {
				cancelled[i] = true;
				live--;
			}
			break;
		}
	}
	for (size_t i = 0; i < N; i++)
		assert_int_equal(loop_timer_armed(&r[i].t), !cancelled[i]);
	run_for(l, 120);
	assert_int_equal(nfires, live);
	for (size_t i = 0; i < nfires; i++) {
		assert_true(fires[i].at >= fires[i].deadline);
		if (i)
			assert_true(fires[i - 1].deadline <= fires[i].deadline);
	}
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(r[i].calls, cancelled[i] ? 0 : 1);
		assert_false(loop_timer_armed(&r[i].t));
	}
	free(cancelled);
	free(r);
	loop_free(l);
}

/* A timer at a past deadline (or 0) fires on the next round, not never. */
static void test_timer_past_deadline(void **state)
{
	struct loop *l = loop_new();
	struct tm_rec a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 };
	uint64_t start;

	nfires = 0;
	loop_timer_init(&a.t, record_cb, &a);
	loop_timer_init(&b.t, record_cb, &b);
	loop_timer_init(&c.t, record_cb, &c);
	assert_int_equal(loop_timer_arm(l, &a.t, loop_now_ms() - 1000), 0);
	assert_int_equal(loop_timer_arm(l, &b.t, 0), 0);
	assert_int_equal(b.t.deadline, 1);       /* 0 would disarm the timerfd */
	assert_int_equal(loop_timer_arm(l, &c.t, loop_now_ms() + 60000), 0);
	start = loop_now_ms();
	run_for(l, 200);
	/* both fired right away (the 200 ms stop timer fired too, later) */
	assert_int_equal(nfires, 2);
	assert_int_equal(fires[0].id, 2);
	assert_int_equal(fires[1].id, 1);
	assert_true(fires[1].at - start < 190);     /* well before the stop timer */
	assert_int_equal(c.calls, 0);
	assert_true(loop_timer_armed(&c.t));
	/* freeing the loop disarms what is left */
	loop_free(l);
	assert_false(loop_timer_armed(&c.t));
}

/* Arming from inside a callback: itself again, and another timer. */
struct chain {
	struct loop_timer t;
	struct loop_timer *other;
	int calls, max;
	uint64_t step;
};

static void chain_cb(struct loop *l, struct loop_timer *t, void *data)
{
	struct chain *c = data;

	c->calls++;
	if (c->calls < c->max)
		assert_int_equal(loop_timer_arm(l, t, loop_now_ms() + c->step), 0);
	else if (c->other)
		assert_int_equal(loop_timer_arm(l, c->other, loop_now_ms() + c->step), 0);
}

static void test_timer_arm_from_callback(void **state)
{
	struct loop *l = loop_new();
	struct chain c = { .max = 5, .step = 2 };
	int stopped = 0;
	struct loop_timer stop;

	loop_timer_init(&stop, stop_cb, &stopped);
	loop_timer_init(&c.t, chain_cb, &c);
	c.other = &stop;
	assert_int_equal(loop_timer_arm(l, &c.t, loop_now_ms() + 2), 0);
	/* a safety net, in case the chain never ends */
	struct loop_timer net;
	int net_fired = 0;

	loop_timer_init(&net, stop_cb, &net_fired);
	assert_int_equal(loop_timer_arm(l, &net, loop_now_ms() + 1000), 0);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(c.calls, 5);
	assert_int_equal(stopped, 1);
	assert_int_equal(net_fired, 0);
	loop_timer_cancel(l, &net);
	loop_free(l);
}

/*
 * A timer that keeps re-arming itself for "now" must not starve the fds:
 * each round fires it at most once per timer, then epoll gets its turn.
 */
static void test_timer_rearm_now_no_starvation(void **state)
{
	struct loop *l = loop_new();
	struct chain c = { .max = 1000000, .step = 0 };
	struct rec r = REC_INIT;
	int e = efd_new();

	loop_timer_init(&c.t, chain_cb, &c);
	assert_int_equal(loop_timer_arm(l, &c.t, loop_now_ms()), 0);
	r.drain = r.stop = true;
	assert_int_equal(loop_add(l, e, EPOLLIN, rec_cb, &r), 0);
	efd_signal(e);
	assert_int_equal(loop_run(l), 0);     /* returns: the fd was served */
	assert_int_equal(r.calls, 1);
	assert_true(c.calls >= 1);
	assert_true(c.calls < 1000);
	loop_timer_cancel(l, &c.t);
	assert_int_equal(loop_del(l, e), 0);
	close(e);
	loop_free(l);
}

/* One callback cancels another timer due in the same round: it stays quiet. */
struct canceller {
	struct loop_timer t;
	struct loop_timer *victim;
	int calls;
};

static void cancel_cb(struct loop *l, struct loop_timer *t, void *data)
{
	struct canceller *c = data;

	c->calls++;
	loop_timer_cancel(l, c->victim);
}

static void test_timer_cancel_from_callback(void **state)
{
	struct loop *l = loop_new();
	struct canceller a = { 0 }, b = { 0 };
	uint64_t when = loop_now_ms() + 5;

	loop_timer_init(&a.t, cancel_cb, &a);
	loop_timer_init(&b.t, cancel_cb, &b);
	a.victim = &b.t;
	b.victim = &a.t;
	assert_int_equal(loop_timer_arm(l, &a.t, when), 0);
	assert_int_equal(loop_timer_arm(l, &b.t, when), 0);
	run_for(l, 40);
	assert_int_equal(a.calls + b.calls, 1);
	assert_false(loop_timer_armed(&a.t));
	assert_false(loop_timer_armed(&b.t));
	loop_free(l);
}

/* Cancelling the earliest timer re-programs the timerfd for the next one. */
static void test_timer_cancel_earliest(void **state)
{
	struct loop *l = loop_new();
	struct tm_rec a = { .id = 1 }, b = { .id = 2 };
	uint64_t now = loop_now_ms();

	nfires = 0;
	loop_timer_init(&a.t, record_cb, &a);
	loop_timer_init(&b.t, record_cb, &b);
	assert_int_equal(loop_timer_arm(l, &a.t, now + 5), 0);
	assert_int_equal(loop_timer_arm(l, &b.t, now + 15), 0);
	loop_timer_cancel(l, &a.t);
	run_for(l, 40);
	assert_int_equal(nfires, 1);
	assert_int_equal(fires[0].id, 2);
	assert_true(fires[0].at >= now + 15);
	/* all cancelled: the loop sleeps until its stop timer, nothing fires */
	assert_int_equal(loop_timer_arm(l, &a.t, loop_now_ms() + 5), 0);
	loop_timer_cancel(l, &a.t);
	run_for(l, 30);
	assert_int_equal(nfires, 1);
	loop_free(l);
}

/* loop_stop from a timer: the other due timers wait for the next run. */
static void test_stop_in_timer(void **state)
{
	struct loop *l = loop_new();
	struct loop_timer s;
	struct tm_rec a = { .id = 1 };
	int stopped = 0;
	uint64_t now = loop_now_ms();

	nfires = 0;
	loop_timer_init(&s, stop_cb, &stopped);
	loop_timer_init(&a.t, record_cb, &a);
	assert_int_equal(loop_timer_arm(l, &s, now + 5), 0);
	assert_int_equal(loop_timer_arm(l, &a.t, now + 6), 0);
	/* let both become due before the loop looks */
	usleep(20000);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(stopped, 1);
	assert_int_equal(a.calls, 0);
	assert_true(loop_timer_armed(&a.t));
	run_for(l, 30);
	assert_int_equal(a.calls, 1);
	loop_free(l);
}

/* Timers and fds in one loop: both served while the other is busy. */
static void test_timers_and_fds(void **state)
{
	struct loop *l = loop_new();
	struct chain c = { .max = 10, .step = 3 };
	struct many m = { .fd = efd_new() };

	loop_timer_init(&c.t, chain_cb, &c);
	assert_int_equal(loop_timer_arm(l, &c.t, loop_now_ms() + 3), 0);
	assert_int_equal(loop_add(l, m.fd, EPOLLIN, many_cb, &m), 0);
	for (int i = 0; i < 5; i++) {
		efd_signal(m.fd);
		run_for(l, 8);
	}
	run_for(l, 60);
	assert_int_equal(m.calls, 5);
	assert_int_equal(c.calls, 10);
	assert_int_equal(loop_del(l, m.fd), 0);
	close(m.fd);
	loop_free(l);
}

/*
 * Periodic work on the tick grid: deadlines are multiples of LOOP_TICK_MS,
 * never before the period, at most a tick after it; 50 timers armed 1 ms
 * apart share at most two deadlines (without the grid: 50 wakeups).
 */
static void test_timer_tick_grid(void **state)
{
	struct loop *l = loop_new();
	static struct tm_rec r[50];
	uint64_t before, after, d, seen[2] = { 0 };
	size_t nseen = 0;

	assert_int_equal(loop_tick_round(0), 0);
	assert_int_equal(loop_tick_round(1), LOOP_TICK_MS);
	assert_int_equal(loop_tick_round(LOOP_TICK_MS - 1), LOOP_TICK_MS);
	assert_int_equal(loop_tick_round(LOOP_TICK_MS), LOOP_TICK_MS);
	assert_int_equal(loop_tick_round(LOOP_TICK_MS + 1), 2 * LOOP_TICK_MS);
	before = loop_now_ms();
	d = loop_tick_after(1000);
	after = loop_now_ms();
	assert_int_equal(d % LOOP_TICK_MS, 0);
	assert_true(d >= before + 1000 && d < after + 1000 + LOOP_TICK_MS);
	/* the next one counts from the last deadline, not from a late now */
	assert_int_equal(loop_tick_next(d, 1000), d + 1000);
	assert_int_equal(loop_tick_next(d - 1000 + LOOP_TICK_MS, 1000), d + LOOP_TICK_MS);
	/* after a stall past the period: the first tick from now, once */
	before = loop_now_ms();
	d = loop_tick_next(LOOP_TICK_MS, 1000);
	after = loop_now_ms();
	assert_int_equal(d % LOOP_TICK_MS, 0);
	assert_true(d > before && d <= after + LOOP_TICK_MS);

	nfires = 0;
	for (size_t i = 0; i < 50; i++) {
		r[i] = (struct tm_rec){ .id = i };
		loop_timer_init(&r[i].t, record_cb, &r[i]);
		assert_int_equal(loop_timer_arm(l, &r[i].t, loop_tick_after(i)), 0);
	}
	run_for(l, 2 * LOOP_TICK_MS + 60);
	assert_int_equal(nfires, 50);
	for (size_t i = 0; i < nfires; i++) {
		assert_int_equal(fires[i].deadline % LOOP_TICK_MS, 0);
		assert_true(fires[i].at >= fires[i].deadline);
		if (nseen && seen[nseen - 1] == fires[i].deadline)
			continue;
		assert_true(nseen < 2);
		seen[nseen++] = fires[i].deadline;
	}
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_add_dispatch),
		cmocka_unit_test(test_mod),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_del_other_in_callback),
		cmocka_unit_test(test_del_self),
		cmocka_unit_test(test_many_fds),
		cmocka_unit_test(test_stop_in_fd_callback),
		cmocka_unit_test(test_again_reruns_without_edge),
		cmocka_unit_test(test_again_fair),
		cmocka_unit_test(test_again_cancelled_by_del),
		cmocka_unit_test(test_again_once_per_round),
		cmocka_unit_test(test_again_many),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_timer_order_simple),
		cmocka_unit_test(test_timer_many_random),
		cmocka_unit_test(test_timer_past_deadline),
		cmocka_unit_test(test_timer_arm_from_callback),
		cmocka_unit_test(test_timer_rearm_now_no_starvation),
		cmocka_unit_test(test_timer_cancel_from_callback),
		cmocka_unit_test(test_timer_cancel_earliest),
		cmocka_unit_test(test_stop_in_timer),
		cmocka_unit_test(test_timers_and_fds),
		cmocka_unit_test(test_timer_tick_grid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
