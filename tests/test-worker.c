/* SPDX-License-Identifier: MIT */
/*
 * The worker pool (broker/worker.c): calls run on the worker's own thread
 * and hand back their result, fds added in a call are dispatched there,
 * least-loaded assignment, and a pool freed while a call from another
 * thread is under way waits for it and leaves nothing behind.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker.h"

static int on_thread_call(struct worker *w, struct loop *l, void *arg)
{
	pthread_t *self = arg;

	*self = pthread_self();
	return worker_on_thread(w) && l ? 42 : -1;
}

static int fail_call(struct worker *w, struct loop *l, void *arg)
{
	return -ENOTSUP;
}

static void test_call_runs_on_worker(void **state)
{
	struct worker_pool *p = worker_pool_new(2);
	pthread_t seen;

	assert_non_null(p);
	assert_int_equal(worker_pool_size(p), 2);
	for (unsigned i = 0; i < 2; i++) {
		struct worker *w = worker_pool_at(p, i);

		assert_non_null(w);
		assert_int_equal(worker_index(w), i);
		assert_false(worker_on_thread(w));
		assert_int_equal(worker_call(w, on_thread_call, &seen), 42);
		assert_false(pthread_equal(seen, pthread_self()));
		assert_int_equal(worker_call(w, fail_call, NULL), -ENOTSUP);
	}
	assert_null(worker_pool_at(p, 2));
	worker_pool_free(p);
	worker_pool_free(NULL);
}

static void test_bad_sizes(void **state)
{
	errno = 0;
	assert_null(worker_pool_new(0));
	assert_int_equal(errno, EINVAL);
	assert_null(worker_pool_new(WORKER_MAX + 1));
	assert_int_equal(errno, EINVAL);
}

/* An fd added in a call is the worker's: its events are dispatched there. */
struct pipe_watch {
	int fds[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool fired, on_worker;
	struct worker *w;
};

static void pipe_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct pipe_watch *pw = data;
	char b;

	if (read(fd, &b, 1) < 0)
		return;
	pthread_mutex_lock(&pw->mu);
	pw->fired = true;
	pw->on_worker = worker_on_thread(pw->w);
	pthread_cond_signal(&pw->cv);
	pthread_mutex_unlock(&pw->mu);
}

static int add_call(struct worker *w, struct loop *l, void *arg)
{
	struct pipe_watch *pw = arg;

	return loop_add(l, pw->fds[0], EPOLLIN, pipe_event, pw);
}

static int del_call(struct worker *w, struct loop *l, void *arg)
{
	struct pipe_watch *pw = arg;

	return loop_del(l, pw->fds[0]);
}

static void test_fd_dispatched_on_worker(void **state)
{
	struct worker_pool *p = worker_pool_new(1);
	struct pipe_watch pw = { .mu = PTHREAD_MUTEX_INITIALIZER,
				 .cv = PTHREAD_COND_INITIALIZER };
	struct timespec until;

	assert_non_null(p);
	pw.w = worker_pool_at(p, 0);
	assert_int_equal(pipe(pw.fds), 0);
	assert_int_equal(worker_call(pw.w, add_call, &pw), 0);
	assert_int_equal(write(pw.fds[1], "x", 1), 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&pw.mu);
	while (!pw.fired)
		if (pthread_cond_timedwait(&pw.cv, &pw.mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&pw.mu);
	assert_true(pw.fired);
	assert_true(pw.on_worker);
	assert_int_equal(worker_call(pw.w, del_call, &pw), 0);
	/* Gone from the worker's loop: a second removal finds nothing. */
	assert_int_equal(worker_call(pw.w, del_call, &pw), -ENOENT);
	worker_pool_free(p);
	close(pw.fds[0]);
	close(pw.fds[1]);
}

static void test_least_loaded(void **state)
{
	struct worker_pool *p = worker_pool_new(3);
	struct worker *w0, *w1, *w2;

	assert_non_null(p);
	w0 = worker_pool_at(p, 0);
	w1 = worker_pool_at(p, 1);
	w2 = worker_pool_at(p, 2);
	/* Sessions go round: each time to the emptiest, the lowest index first. */
	for (unsigned i = 0; i < 7; i++) {
		struct worker *w = worker_pool_least_loaded(p);

		assert_ptr_equal(w, worker_pool_at(p, i % 3));
		worker_load_add(w, 1);
	}
	assert_int_equal(worker_load(w0), 3);
	assert_int_equal(worker_load(w1), 2);
	assert_int_equal(worker_load(w2), 2);
	/* Sessions released from worker 0: it is the emptiest now. */
	worker_load_add(w0, -2);
	assert_ptr_equal(worker_pool_least_loaded(p), w0);
	worker_load_add(w0, -5);
	assert_int_equal(worker_load(w0), 0);
	assert_null(worker_pool_least_loaded(NULL));
	worker_pool_free(p);
}

/* Counted on the worker (as session.c counts), read on this thread. */
static int count_call(struct worker *w, struct loop *l, void *arg)
{
	struct worker_totals *t = worker_totals_mut(w);

	__atomic_store_n(&t->c.packets, t->c.packets + 5, __ATOMIC_RELAXED);
	__atomic_store_n(&t->c.drop, t->c.drop + 2, __ATOMIC_RELAXED);
	hist_add(&t->latency, &hist_latency_bounds, 20000, 5);
	return 0;
}

static void test_totals(void **state)
{
	struct worker_pool *p = worker_pool_new(2);
	struct worker_totals t;

	assert_non_null(p);
	assert_int_equal(worker_call(worker_pool_at(p, 1), count_call, NULL), 0);
	assert_int_equal(worker_call(worker_pool_at(p, 1), count_call, NULL), 0);
	worker_totals_read(worker_pool_at(p, 1), &t);
	assert_int_equal(t.c.packets, 10);
	assert_int_equal(t.c.drop, 4);
	assert_int_equal(t.latency.count, 10);
	worker_totals_read(worker_pool_at(p, 0), &t);
	assert_int_equal(t.c.packets, 0);
	worker_pool_free(p);
}

/* A slow call from another thread is in progress when the pool is freed. */
struct slow {
	struct worker *w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, finished;
	int rc;
};

/*
 * A worker whose loop sleeps elsewhere (loop_set_idle()) is reached by
 * its kick: every call returns, also when the sleep begins just before
 * the call's doorbell. A kick that came before the doorbell would let
 * the idle sleep again with the call unseen; the alarm fails the test.
 */
struct sleeper {
	struct worker *w;
	int wake;                /* the sleep's fd: the kick writes it */
	int sleeps, kicks;
};

static void sleeper_idle(struct loop *l, void *data)
{
	struct sleeper *sl = data;
	struct pollfd p = { .fd = sl->wake, .events = POLLIN };
	uint64_t v;

	while (!worker_kick_take(sl->w)) {
		sl->sleeps++;
		if (poll(&p, 1, -1) == 1 && read(sl->wake, &v, sizeof(v)) < 0) {
			/* EAGAIN: another round took it */
		}
	}
}

static void sleeper_kick(void *arg)
{
	struct sleeper *sl = arg;
	uint64_t one = 1;

	sl->kicks++;
	assert_int_equal(write(sl->wake, &one, sizeof(one)), sizeof(one));
}

static int idle_call(struct worker *w, struct loop *l, void *arg)
{
	loop_set_idle(l, arg ? sleeper_idle : NULL, arg);
	return 0;
}

static int nop_call(struct worker *w, struct loop *l, void *arg)
{
	return 7;
}

static void test_kick_reaches_idle(void **state)
{
	struct worker_pool *p = worker_pool_new(1);
	struct sleeper sl = { .wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	int i;

	assert_non_null(p);
	assert_true(sl.wake >= 0);
	sl.w = worker_pool_at(p, 0);
	worker_kick(sl.w);                     /* no kick set: nothing */
	worker_set_kick(sl.w, sleeper_kick, &sl);
	assert_int_equal(worker_call(sl.w, idle_call, &sl), 0);
	alarm(20);
	for (i = 0; i < 2000; i++) {
		assert_int_equal(worker_call(sl.w, nop_call, NULL), 7);
		if (i % 7 == 0)
			usleep(100);    /* let it fall asleep in between */
	}
	/* a kick while the flag is still set sends nothing */
	assert_true(sl.kicks >= 1 && sl.kicks <= 2001);
	assert_true(sl.sleeps >= 1);
	/* back to epoll_wait: calls work without a kick */
	assert_int_equal(worker_call(sl.w, idle_call, NULL), 0);
	worker_set_kick(sl.w, NULL, NULL);
	assert_int_equal(worker_call(sl.w, nop_call, NULL), 7);
	alarm(0);
	worker_pool_free(p);
	close(sl.wake);
}

/*
 * A kick that never arrives (a tenant made the kernel's answer
 * undeliverable): the idle sleeps, marked with worker_sleeping(), on an fd
 * nothing writes; the call's SIGURG ends that sleep and the call returns.
 */
static void lost_kick(void *arg)
{
	int *kicks = arg;

	(*kicks)++;
}

struct deaf {
	struct worker *w;
	int fd;                  /* never readable */
	int interrupted;
};

static void deaf_idle(struct loop *l, void *data)
{
	struct deaf *d = data;
	struct pollfd p = { .fd = d->fd, .events = POLLIN };

	while (!worker_kick_take(d->w)) {
		worker_sleeping(d->w, true);
		if (poll(&p, 1, 5000) < 0 && errno == EINTR)
			d->interrupted++;
		worker_sleeping(d->w, false);
	}
}

static int deaf_call(struct worker *w, struct loop *l, void *arg)
{
	loop_set_idle(l, arg ? deaf_idle : NULL, arg);
	return 0;
}

static void test_nudge_when_kick_lost(void **state)
{
	struct worker_pool *p = worker_pool_new(1);
	struct deaf d = { .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	struct timespec t0, t1;
	sigset_t cur;
	int kicks = 0;

	assert_non_null(p);
	assert_true(d.fd >= 0);
	/* the caller keeps SIGURG blocked: it is the workers' */
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	assert_true(sigismember(&cur, SIGURG));
	d.w = worker_pool_at(p, 0);
	worker_set_kick(d.w, lost_kick, &kicks);
	assert_int_equal(worker_call(d.w, deaf_call, &d), 0);
	alarm(20);
	for (int i = 0; i < 5; i++) {
		usleep(20 * 1000);      /* asleep in poll() by now */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(worker_call(d.w, nop_call, NULL), 7);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		/* well under the 5 s poll: the signal ended it */
		assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	}
	assert_true(d.interrupted >= 5);
	assert_true(kicks >= 1);
	assert_int_equal(worker_call(d.w, deaf_call, NULL), 0);
	worker_set_kick(d.w, NULL, NULL);
	alarm(0);
	worker_pool_free(p);
	close(d.fd);
}

static int slow_call(struct worker *w, struct loop *l, void *arg)
{
	struct slow *sl = arg;
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	pthread_mutex_lock(&sl->mu);
	sl->started = true;
	pthread_cond_signal(&sl->cv);
	pthread_mutex_unlock(&sl->mu);
	nanosleep(&ts, NULL);
	sl->finished = true;
	return 7;
}

static void *caller(void *arg)
{
	struct slow *sl = arg;

	sl->rc = worker_call(sl->w, slow_call, sl);
	return NULL;
}

static void test_free_with_call_pending(void **state)
{
	struct worker_pool *p = worker_pool_new(2);
	struct slow sl = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	pthread_t th;

	assert_non_null(p);
	sl.w = worker_pool_at(p, 1);
	assert_int_equal(pthread_create(&th, NULL, caller, &sl), 0);
	pthread_mutex_lock(&sl.mu);
	while (!sl.started)
		pthread_cond_wait(&sl.cv, &sl.mu);
	pthread_mutex_unlock(&sl.mu);
	/* The stop waits its turn behind the slow call, which completes. */
	worker_pool_free(p);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(sl.finished);
	assert_int_equal(sl.rc, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_runs_on_worker),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_fd_dispatched_on_worker),
		cmocka_unit_test(test_least_loaded),
		cmocka_unit_test(test_totals),
		cmocka_unit_test(test_free_with_call_pending),
		cmocka_unit_test(test_kick_reaches_idle),
		cmocka_unit_test(test_nudge_when_kick_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
