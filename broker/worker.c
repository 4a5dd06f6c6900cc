/* SPDX-License-Identifier: MIT */
/*
 * Worker threads: each runs loop_run() on its own loop. A call is one slot
 * per worker (callers serialised by call_mu): the caller fills it, wakes
 * the worker's eventfd, and waits on the condition variable until the
 * worker ran it between two dispatch rounds. The eventfd is an ordinary fd
 * of the worker's loop, so a call waits at most one dispatch round.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "worker.h"

/* call_wait() */
#define CALL_NUDGE_MS 10
#define WORKER_SIG SIGURG

struct worker {
	struct worker_pool *pool;
	unsigned index;
	pthread_t th;
	bool started;
	struct loop *loop;            /* touched by this worker's thread only */
	int efd;                      /* call doorbell, in loop */
	pthread_mutex_t call_mu;      /* one caller at a time */
	pthread_mutex_t mu;           /* the slot below */
	pthread_cond_t cv;
	int (*fn)(struct worker *w, struct loop *l, void *arg);
	void *arg;
	int result;
	bool pending;                 /* a call waits to be run */
	size_t load;                  /* sessions: main thread only */
	/* worker_set_kick(): main thread only. kicked is the Dekker flag
	 * between the kicker (set, then wake) and the sleeper (take, then
	 * sleep): a wakeup sent after the take finds the sleeper. */
	void (*kick)(void *arg);
	void *kick_arg;
	bool kicked;
	bool sleeping;                /* worker_sleeping(): in its idle receive */
	/* written by this worker only, on every packet: a cache line of its
	 * own, not shared with the call slot or the next worker */
	struct worker_totals totals __attribute__((aligned(64)));
};

struct worker_pool {
	unsigned n;
	struct worker *w;
};

/* The doorbell: run the call in the slot, if any, and hand back its result. */
static void call_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct worker *w = data;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: the call was already run on an earlier ring */
	}
	pthread_mutex_lock(&w->mu);
	if (w->pending) {
		w->result = w->fn(w, w->loop, w->arg);
		w->pending = false;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *data)
{
	struct worker *w = data;

	sigset_t nudge;

	/* Rule counters: this worker's own block of each policy. */
	policy_thread_worker((int)w->index);
	sigemptyset(&nudge);
	sigaddset(&nudge, WORKER_SIG);
	pthread_sigmask(SIG_UNBLOCK, &nudge, NULL);
	(void)loop_run(w->loop);
	return NULL;
}

/*
 * The kick of a solo worker is an acknowledgement the kernel queues on
 * the session's socket; a tenant can make its copy of that socket refuse
 * the kernel (connect() it elsewhere) until the health check notices. A
 * call that a kicked worker did not take within CALL_NUDGE_MS is
 * followed by WORKER_SIG, again every CALL_NUDGE_MS: the signal ends a
 * receive that sleeps (its handler has no SA_RESTART), and the next look
 * at the kick flag finds it. Never needed while the kick works.
 */

static void call_wait(struct worker *w)
{
	struct timespec ts;

	if (!w->kick) {
		pthread_cond_wait(&w->cv, &w->mu);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += CALL_NUDGE_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	/* only a sleeping receive: a signal elsewhere could cut a log
	 * line's write short; the next round catches a sleep begun since */
	if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT && w->pending &&
	    __atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST))
		pthread_kill(w->th, WORKER_SIG);
}

static void nudge_handler(int sig)
{
	/* only to interrupt: the kick flag says why */
}

int worker_call(struct worker *w, int (*fn)(struct worker *w, struct loop *l, void *arg),
		void *arg)
{
	uint64_t one = 1;
	int rc;

	pthread_mutex_lock(&w->call_mu);
	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->pending = true;
	pthread_mutex_unlock(&w->mu);
	while (write(w->efd, &one, sizeof(one)) < 0) {
		if (errno == EINTR)
			continue;
		/* With one call at a time the counter cannot overflow: the fd
		 * is gone. The caller would free what the worker still uses. */
		log_event(LOGL_ERROR, "worker", "error=\"cannot wake worker %u: %s\" "
			  "action=abort", w->index, strerror(errno));
		abort();
	}
	/* after the doorbell: the round a kick starts must find it */
	worker_kick(w);
	pthread_mutex_lock(&w->mu);
	while (w->pending)
		call_wait(w);
	rc = w->result;
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_unlock(&w->call_mu);
	return rc;
}

void worker_set_kick(struct worker *w, void (*fn)(void *arg), void *arg)
{
	w->kick = fn;
	w->kick_arg = fn ? arg : NULL;
}

void worker_kick(struct worker *w)
{
	/* Flagged already: that kick's wakeup, or the take before the next
	 * sleep, covers this one too. A tenant flapping its links costs one
	 * wakeup per sleep, not one per message batch. */
	if (!w->kick || __atomic_exchange_n(&w->kicked, true, __ATOMIC_SEQ_CST))
		return;
	w->kick(w->kick_arg);
}

void worker_sleeping(struct worker *w, bool on)
{
	__atomic_store_n(&w->sleeping, on, __ATOMIC_SEQ_CST);
}

bool worker_kick_take(struct worker *w)
{
	return __atomic_exchange_n(&w->kicked, false, __ATOMIC_SEQ_CST);
}

static int stop_call(struct worker *w, struct loop *l, void *arg)
{
	loop_stop(l);
	return 0;
}

static void worker_fini(struct worker *w)
{
	if (w->started) {
		(void)worker_call(w, stop_call, NULL);
		pthread_join(w->th, NULL);
	}
	if (w->efd >= 0) {
		if (w->loop)
			loop_del(w->loop, w->efd);
		close(w->efd);
	}
	loop_free(w->loop);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->call_mu);
}

static int worker_init(struct worker_pool *p, unsigned i)
{
	struct worker *w = &p->w[i];
	char name[16];
	int rc;

	w->pool = p;
	w->index = i;
	w->efd = -1;
	pthread_mutex_init(&w->call_mu, NULL);
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->loop = loop_new();
	if (!w->loop)
		return -errno;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0)
		return -errno;
	rc = loop_add(w->loop, w->efd, EPOLLIN, call_event, w);
	if (rc < 0)
		return rc;
	rc = pthread_create(&w->th, NULL, worker_main, w);
	if (rc != 0)
		return -rc;
	w->started = true;
	/* Seen in ps -L, top -H and perf. */
	snprintf(name, sizeof(name), "nfqb-worker%u", i);
	pthread_setname_np(w->th, name);
	return 0;
}

struct worker_pool *worker_pool_new(unsigned n)
{
	struct worker_pool *p;
	sigset_t all, old;
	int rc = 0;

	if (n == 0 || n > WORKER_MAX) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->w = aligned_alloc(64, n * sizeof(*p->w));
	if (!p->w) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	memset(p->w, 0, n * sizeof(*p->w));
	p->n = n;
	/* Signals are the main thread's (its signalfd): the threads
	 * inherit a mask that blocks them all, but WORKER_SIG, which only
	 * interrupts (call_wait()). The calling thread, and so the threads
	 * it starts later, keep WORKER_SIG blocked: a SIGURG sent to the
	 * process lands on a worker, whose loop takes EINTR in its stride.
	 * The handler stays installed (a no-op) after the pool is freed. */
	struct sigaction sa = { .sa_handler = nudge_handler };

	sigemptyset(&sa.sa_mask);
	if (sigaction(WORKER_SIG, &sa, NULL) < 0) {
		free(p->w);
		free(p);
		return NULL;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = worker_init(p, i);
	sigaddset(&old, WORKER_SIG);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		worker_pool_free(p);
		errno = -rc;
		return NULL;
	}
	return p;
}

void worker_pool_free(struct worker_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		worker_fini(&p->w[i]);
	free(p->w);
	free(p);
}

unsigned worker_pool_size(const struct worker_pool *p)
{
	return p ? p->n : 0;
}

struct worker *worker_pool_at(struct worker_pool *p, unsigned i)
{
	return p && i < p->n ? &p->w[i] : NULL;
}

struct worker *worker_pool_least_loaded(struct worker_pool *p)
{
	struct worker *best = NULL;

	for (unsigned i = 0; p && i < p->n; i++)
		if (!best || p->w[i].load < best->load)
			best = &p->w[i];
	return best;
}

unsigned worker_index(const struct worker *w)
{
	return w->index;
}

void worker_load_add(struct worker *w, int delta)
{
	if (delta < 0 && w->load < (size_t)-delta)
		w->load = 0;
	else
		w->load += (size_t)(ssize_t)delta;
}

size_t worker_load(const struct worker *w)
{
	return w->load;
}

struct worker_totals *worker_totals_mut(struct worker *w)
{
	return &w->totals;
}

void worker_totals_read(const struct worker *w, struct worker_totals *out)
{
	session_counters_load(&out->c, &w->totals.c);
	hist_load(&out->latency, &w->totals.latency);
}

bool worker_on_thread(const struct worker *w)
{
	return w->started && pthread_equal(pthread_self(), w->th);
}
