/* SPDX-License-Identifier: MIT */
/*
 * The broker's worker threads (docs/design.md, "Threads"): a pool of N
 * threads, each running its own event loop (broker/loop.h) that only it
 * touches. Attached sessions are spread across them; a worker reads its
 * sessions' queue sockets, decides and sends the verdicts in batches, and
 * never takes a lock for that.
 *
 * The main thread changes a worker's state in one way only: worker_call()
 * runs a function on the worker thread, between two dispatch rounds, and
 * waits for it. Registering a session's fds, the policy swap of a reload
 * and a session's removal all go through it, so the packet path needs no
 * lock and no reference count: once every worker's call returned, no
 * worker holds a pointer into what was swapped out.
 *
 * What the main thread reads while a worker runs (per-worker totals, the
 * session counters, histograms) is written with relaxed atomic stores and
 * read with relaxed atomic loads (hist.h, session.c).
 */
#ifndef BROKER_WORKER_H
#define BROKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "hist.h"
#include "loop.h"
#include "session.h"

/* The most worker threads (config broker.workers, --workers). */
#define WORKER_MAX 64

struct worker;
struct worker_pool;

/* What a worker counted: every packet it decided (sessions since freed included). */
struct worker_totals {
	struct session_counters c;
	struct hist latency;          /* receive to verdict sent, per dispatch round */
};

/*
 * worker_pool_new - start @n (1..WORKER_MAX) worker threads, every signal
 * blocked in them (the main thread's signalfd gets them). NULL with errno
 * on failure (nothing left running).
 */
struct worker_pool *worker_pool_new(unsigned n);

/*
 * worker_pool_free - stop every worker (a call in progress, from any
 * thread, finishes first) and join it. The fds still registered in the
 * workers' loops are not closed: their owners do that. NULL is a no-op.
 */
void worker_pool_free(struct worker_pool *p);

/* worker_pool_size - the number of workers. */
unsigned worker_pool_size(const struct worker_pool *p);

/* worker_pool_at - worker @i (0-based), NULL past the end. */
struct worker *worker_pool_at(struct worker_pool *p, unsigned i);

/*
 * worker_pool_least_loaded - the worker with the fewest sessions
 * (worker_load_add), the lowest index among equals.
 */
struct worker *worker_pool_least_loaded(struct worker_pool *p);

/*
 * worker_call - run @fn(@w, worker_loop(@w), @arg) on @w's thread and
 * wait for it; returns what @fn returned. Callers are served one at a
 * time. Must not be called from a worker thread. A worker that cannot be
 * woken (its eventfd gone) aborts the broker: the caller would go on to
 * free what that worker still reads.
 */
int worker_call(struct worker *w, int (*fn)(struct worker *w, struct loop *l, void *arg),
		void *arg);

/*
 * A worker whose loop sleeps somewhere else than in epoll_wait()
 * (loop_set_idle(): one session's receive) must be woken for what its
 * loop's fds would have said. worker_set_kick - @fn(@arg) wakes that sleep
 * (NULL: none; main thread only). worker_kick - flag @w and call it (main
 * thread; worker_call() kicks too). worker_kick_take - on @w's thread:
 * whether it was kicked since the last take, clearing the flag; the
 * sleeper takes before it sleeps, so a kick after the take ends the sleep.
 * A kick while the flag is still set sends nothing.
 */
void worker_set_kick(struct worker *w, void (*fn)(void *arg), void *arg);
void worker_kick(struct worker *w);
bool worker_kick_take(struct worker *w);
/* worker_sleeping - on @w's thread, around its idle receive: only then
 * does a call that its kick did not reach send the thread SIGURG. */
void worker_sleeping(struct worker *w, bool on);

/* worker_index - @w's number, 0-based (the metrics' worker label). */
unsigned worker_index(const struct worker *w);

/*
 * worker_load_add - @delta sessions more (or fewer) on @w; kept by the
 * main thread, which alone assigns sessions.
 */
void worker_load_add(struct worker *w, int delta);

/* worker_load - the sessions on @w. */
size_t worker_load(const struct worker *w);

/*
 * worker_totals_mut - @w's totals, for its own thread to count into
 * (relaxed atomic stores: see session.c count()).
 */
struct worker_totals *worker_totals_mut(struct worker *w);

/* worker_totals_read - a snapshot of @w's totals (relaxed atomic loads). */
void worker_totals_read(const struct worker *w, struct worker_totals *out);

/* worker_on_thread - whether the caller is @w's thread. */
bool worker_on_thread(const struct worker *w);

#endif
