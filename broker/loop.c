/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

/*
 * Registrations are kept in an array indexed by fd. The epoll cookie
 * carries the fd and the slot's generation, so an event collected for an
 * fd that a callback removed (and maybe reused) in the same round is
 * recognised as stale and dropped.
 */
struct loop_slot {
	loop_fd_cb cb;
	void *data;
	uint32_t gen;
	uint32_t again_gen;      /* the registration loop_again() was for */
	uint32_t again_events;   /* epoll events merged into that run */
	bool used;
	bool again;              /* the fd is in loop.again[] */
};

struct loop {
	int epfd;
	int tfd;                 /* timerfd for the earliest deadline */
	struct loop_slot *slots;
	size_t nslots;
	size_t nfds;
	struct loop_timer **heap;
	size_t heap_n, heap_cap;
	uint64_t programmed;     /* deadline the timerfd is set to, 0 = none */
	/* fds whose callback runs again without waiting (loop_again()): one
	 * entry per fd number, plus those already run in the current round,
	 * so 2 * nslots entries always fit and loop_again() cannot fail. */
	int *again;
	size_t again_n;
	loop_idle_cb idle;       /* sleeps in the owner's stead (loop_set_idle) */
	void *idle_data;
	bool stop;
};

#define LOOP_MAX_EVENTS 64

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t cookie(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	if (!l)
		return NULL;
	l->epfd = -1;
	l->tfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto fail;
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->tfd < 0)
		goto fail;
	/* The timerfd is told apart by its cookie: no slot has generation 0xffffffff. */
	ev.data.u64 = cookie(l->tfd, UINT32_MAX);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
		goto fail;
	return l;
fail:
	err = errno;
	loop_free(l);
	errno = err;
	return NULL;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->epfd >= 0)
		close(l->epfd);
	for (size_t i = 0; i < l->heap_n; i++)
		l->heap[i]->heap_idx = SIZE_MAX;
	free(l->heap);
	free(l->slots);
	free(l->again);
	free(l);
}

static int slots_reserve(struct loop *l, int fd)
{
	size_t n = l->nslots ? l->nslots : 64;
	struct loop_slot *s;
	int *again;

	if ((size_t)fd < l->nslots)
		return 0;
	while (n <= (size_t)fd)
		n *= 2;
	/* first: a larger again[] than the slots need is harmless */
	again = realloc(l->again, 2 * n * sizeof(*again));
	if (!again)
		return -ENOMEM;
	l->again = again;
	s = realloc(l->slots, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s + l->nslots, 0, (n - l->nslots) * sizeof(*s));
	l->slots = s;
	l->nslots = n;
	return 0;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *data)
{
	struct epoll_event ev = { .events = events };
	struct loop_slot *s;
	int rc;

	if (fd < 0 || !cb)
		return -EINVAL;
	rc = slots_reserve(l, fd);
	if (rc < 0)
		return rc;
	s = &l->slots[fd];
	if (s->used)
		return -EEXIST;
	s->gen = (s->gen + 1) % UINT32_MAX;
	ev.data.u64 = cookie(fd, s->gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	s->cb = cb;
	s->data = data;
	s->used = true;
	l->nfds++;
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	if (fd < 0 || (size_t)fd >= l->nslots || !l->slots[fd].used)
		return -ENOENT;
	ev.data.u64 = cookie(fd, l->slots[fd].gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int loop_del(struct loop *l, int fd)
{
	struct loop_slot *s;

	if (fd < 0 || (size_t)fd >= l->nslots || !l->slots[fd].used)
		return -ENOENT;
	s = &l->slots[fd];
	/* The fd may already be closed by a careless owner: forget it anyway. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	s->used = false;
	s->cb = NULL;
	s->data = NULL;
	s->gen = (s->gen + 1) % UINT32_MAX;
	l->nfds--;
	return 0;
}

int loop_again(struct loop *l, int fd)
{
	struct loop_slot *s;

	if (fd < 0 || (size_t)fd >= l->nslots || !l->slots[fd].used)
		return -ENOENT;
	s = &l->slots[fd];
	/* An entry left by an earlier registration of this fd number now
	 * stands for this one (without that one's events). */
	if (s->again_gen != s->gen)
		s->again_events = 0;
	s->again_gen = s->gen;
	if (!s->again) {
		s->again = true;
		l->again[l->again_n++] = fd;
	}
	return 0;
}

size_t loop_fd_count(const struct loop *l)
{
	return l->nfds;
}

/* ------------------------------------------------------------ timers */

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (l->heap[parent]->deadline <= t->deadline)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->heap_n)
			break;
		if (c + 1 < l->heap_n && l->heap[c + 1]->deadline < l->heap[c]->deadline)
			c++;
		if (t->deadline <= l->heap[c]->deadline)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

static void heap_remove(struct loop *l, size_t i)
{
	struct loop_timer *last;

	l->heap[i]->heap_idx = SIZE_MAX;
	last = l->heap[--l->heap_n];
	if (i == l->heap_n)
		return;
	heap_set(l, i, last);
	heap_up(l, i);
	heap_down(l, last->heap_idx);
}

/* Point the timerfd at the earliest deadline (or disarm it). */
static void timer_program(struct loop *l)
{
	uint64_t next = l->heap_n ? l->heap[0]->deadline : 0;
	struct itimerspec its = { 0 };

	if (next == l->programmed)
		return;
	if (next) {
		/* 0 means "disarm" to the kernel: deadlines are >= 1 ms. */
		its.it_value.tv_sec = (time_t)(next / 1000u);
		its.it_value.tv_nsec = (long)(next % 1000u) * 1000000L;
	}
	if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		l->programmed = next;
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data)
{
	t->deadline = 0;
	t->heap_idx = SIZE_MAX;
	t->cb = cb;
	t->data = data;
}

int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t deadline_ms)
{
	if (deadline_ms == 0)
		deadline_ms = 1;
	if (loop_timer_armed(t)) {
		t->deadline = deadline_ms;
		heap_up(l, t->heap_idx);
		heap_down(l, t->heap_idx);
	} else {
		if (l->heap_n == l->heap_cap) {
			size_t cap = l->heap_cap ? l->heap_cap * 2 : 32;
			struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));

			if (!h)
				return -ENOMEM;
			l->heap = h;
			l->heap_cap = cap;
		}
		t->deadline = deadline_ms;
		heap_set(l, l->heap_n++, t);
		heap_up(l, t->heap_idx);
	}
	timer_program(l);
	return 0;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (!loop_timer_armed(t))
		return;
	heap_remove(l, t->heap_idx);
	timer_program(l);
}

static void timers_fire(struct loop *l)
{
	uint64_t expirations, now = loop_now_ms();
	/* A callback that re-arms at "now" must not spin this round forever. */
	size_t budget = l->heap_n;

	if (read(l->tfd, &expirations, sizeof(expirations)) < 0) {
		/* EAGAIN: woken for a deadline that was cancelled meanwhile */
	}
	l->programmed = 0;
	while (budget-- && l->heap_n && l->heap[0]->deadline <= now && !l->stop) {
		struct loop_timer *t = l->heap[0];

		heap_remove(l, 0);
		t->cb(l, t, t->data);
	}
	timer_program(l);
}

/* ------------------------------------------------------------ run */

static void dispatch(struct loop *l, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	struct loop_slot *s;

	if (fd == l->tfd && gen == UINT32_MAX) {
		timers_fire(l);
		return;
	}
	if ((size_t)fd >= l->nslots)
		return;
	s = &l->slots[fd];
	if (!s->used || s->gen != gen)
		return;     /* removed by an earlier callback of this round */
	if (s->again && s->again_gen == gen) {
		/* its queued run answers this event too: one call per round
		 * for a busy fd, not two */
		s->again_events |= ev->events;
		return;
	}
	s->cb(l, fd, ev->events, s->data);
}

/*
 * The first @n0 queued callbacks: those loop_again() asked for before this
 * round's epoll_wait(). Those asked for during the round wait for the
 * next, after the fds that become ready meanwhile.
 */
static void again_run(struct loop *l, size_t n0)
{
	size_t i;

	for (i = 0; i < n0 && !l->stop; i++) {
		int fd = l->again[i];
		struct loop_slot *s = &l->slots[fd];
		uint32_t events = EPOLLIN | s->again_events;

		s->again = false;
		s->again_events = 0;
		/* removed since (and maybe its number reused): skip */
		if (s->used && s->again_gen == s->gen)
			s->cb(l, fd, events, s->data);
	}
	l->again_n -= i;
	memmove(l->again, l->again + i, l->again_n * sizeof(*l->again));
}

void loop_set_idle(struct loop *l, loop_idle_cb cb, void *data)
{
	l->idle = cb;
	l->idle_data = cb ? data : NULL;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	l->stop = false;
	while (!l->stop) {
		size_t queued = l->again_n;
		int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, queued || l->idle ? 0 : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* nothing ready and nothing queued: where the loop would sleep */
		if (n == 0 && !queued && l->idle) {
			l->idle(l, l->idle_data);
			continue;
		}
		for (int i = 0; i < n && !l->stop; i++)
			dispatch(l, &evs[i]);
		if (queued)
			again_run(l, queued);
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
