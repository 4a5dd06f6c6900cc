/* SPDX-License-Identifier: MIT */
/*
 * The broker's single event loop: one epoll instance dispatching readiness
 * of any fd to a callback, plus timers (one timerfd driving a min-heap of
 * deadlines) so hundreds of grace periods and handshake timeouts cost one
 * fd. Modules (agent listener, sessions, control socket) register their
 * fds here; nothing else in the broker blocks.
 */
#ifndef BROKER_LOOP_H
#define BROKER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* Called with the epoll events of @fd (EPOLLIN, EPOLLHUP, ...). */
typedef void (*loop_fd_cb)(struct loop *l, int fd, uint32_t events, void *data);

/*
 * A timer is embedded in its owner's struct (no allocation per arm);
 * loop_timer_init() it once, then arm and cancel any number of times.
 */
struct loop_timer;
typedef void (*loop_timer_cb)(struct loop *l, struct loop_timer *t, void *data);

struct loop_timer {
	uint64_t deadline;       /* CLOCK_MONOTONIC, milliseconds */
	size_t heap_idx;         /* position in the heap; SIZE_MAX when not armed */
	loop_timer_cb cb;
	void *data;
};

/* loop_new - a new loop; NULL with errno on failure. */
struct loop *loop_new(void);
/* loop_free - free the loop; registered fds are not closed. NULL is a no-op. */
void loop_free(struct loop *l);

/*
 * loop_add - watch @fd for @events (EPOLLIN etc.) and call @cb(l, fd,
 * revents, @data). -EEXIST when @fd is registered already.
 */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *data);
/* loop_mod - change the events watched on a registered fd. */
int loop_mod(struct loop *l, int fd, uint32_t events);
/*
 * loop_del - stop watching @fd (call before closing it). Events already
 * collected for it in the current round are discarded, so a callback may
 * remove and close other fds safely. -ENOENT when not registered.
 */
int loop_del(struct loop *l, int fd);

/*
 * loop_again - call @fd's callback again in the next round, after the
 * fds that became ready, without waiting for @fd: for an fd watched
 * edge-triggered (EPOLLET) whose callback left work the fd will not
 * announce again. The call gets EPOLLIN plus any events reported for @fd
 * meanwhile (it stands for their call too). Never fails for a registered
 * fd (no allocation); -ENOENT otherwise. Removing the fd cancels it.
 */
int loop_again(struct loop *l, int fd);

typedef void (*loop_idle_cb)(struct loop *l, void *data);

/*
 * loop_set_idle - when a round finds no fd ready and nothing queued, call
 * @cb instead of sleeping in epoll_wait(); NULL goes back to sleeping
 * there. @cb sleeps where it likes (a worker that serves one socket sleeps
 * in its receive) and returns when any of the loop's fds or timers may
 * need attention: the owner of @cb must arrange to wake it for those,
 * since the loop no longer waits on them itself. Each return starts a
 * round that looks at them without waiting.
 */
void loop_set_idle(struct loop *l, loop_idle_cb cb, void *data);

/* loop_timer_init - prepare an embedded timer that calls @cb(l, t, @data). */
void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data);
/* loop_timer_arm - (re)arm @t to fire once at @deadline_ms (loop_now_ms() clock). */
int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t deadline_ms);
/* loop_timer_cancel - disarm @t; a timer that is not armed is left alone. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_idx != SIZE_MAX;
}

/* loop_now_ms - CLOCK_MONOTONIC in milliseconds. */
uint64_t loop_now_ms(void);

/*
 * LOOP_TICK_MS - the grid that periodic work which need not be exact
 * rounds its deadlines up to. A timer per session at its own phase woke
 * the main thread once per session per period (1,000 times a second at
 * 1,000 namespaces, each wakeup reprogramming the timerfd); on the grid
 * they share one wakeup per tick with the broker's own tickers.
 */
#define LOOP_TICK_MS 100u

/* loop_tick_round - the first multiple of LOOP_TICK_MS at or after @ms. */
static inline uint64_t loop_tick_round(uint64_t ms)
{
	return (ms + LOOP_TICK_MS - 1) / LOOP_TICK_MS * LOOP_TICK_MS;
}

/* loop_tick_after - the first tick at least @period_ms from now. */
static inline uint64_t loop_tick_after(uint64_t period_ms)
{
	return loop_tick_round(loop_now_ms() + period_ms);
}

/*
 * loop_tick_next - the next deadline of periodic work last due at @prev_ms:
 * @period_ms after it, on the grid. Counted from the deadline, not from
 * the callback's "now", so a callback that runs late (behind the other
 * checks of its tick) keeps its period; after a stall longer than the
 * period, the first tick from now, without a burst of catch-up ticks.
 */
static inline uint64_t loop_tick_next(uint64_t prev_ms, uint64_t period_ms)
{
	uint64_t next = loop_tick_round(prev_ms + period_ms), now = loop_now_ms();

	return next > now ? next : loop_tick_round(now + 1);
}

/*
 * loop_run - dispatch events until loop_stop(). Returns 0, or a negative
 * errno when epoll itself failed.
 */
int loop_run(struct loop *l);
/* loop_stop - make loop_run() return after the current callback. */
void loop_stop(struct loop *l);

/* loop_fd_count - number of registered fds (the loop's own excluded). */
size_t loop_fd_count(const struct loop *l);

#endif
