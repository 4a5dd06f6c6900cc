/* SPDX-License-Identifier: MIT */
/*
 * Running the broker's event loop from a fuzz target: an eventfd that is
 * always readable is reported once every round of the loop, and the pump
 * stops at its second round, so the first round dispatched everything that
 * was ready when the pump started (a timer cannot do this: re-armed for
 * "now" it fires twice in one round). Include after fuzz.h and loop.h.
 */
#ifndef TESTS_FUZZ_LOOP_H
#define TESTS_FUZZ_LOOP_H

#include <sys/epoll.h>
#include <sys/eventfd.h>

static int fuzz_kick_rounds;

static void fuzz_kick_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	if (++fuzz_kick_rounds >= 2)
		loop_stop(l);
}

/* fuzz_pump_init - register the kick on @loop (once, at initialisation). */
static inline void fuzz_pump_init(struct loop *loop)
{
	int fd = eventfd(1, EFD_CLOEXEC);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(loop_add(loop, fd, EPOLLIN, fuzz_kick_cb, NULL) == 0);
}

/* fuzz_pump - one round of everything ready on @loop. */
static inline void fuzz_pump(struct loop *loop)
{
	fuzz_kick_rounds = 0;
	FUZZ_CHECK(loop_run(loop) == 0);
}

#endif
