/* SPDX-License-Identifier: MIT */
/*
 * What the benchmarks that make their own network namespace share: clocks
 * in seconds and bringing that namespace's lo up.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline double timespec_s(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

/* clock_s - @clock (CLOCK_MONOTONIC, CLOCK_REALTIME...) in seconds. */
static inline double clock_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return timespec_s(&ts);
}

static inline double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* lo_up - set lo up in the caller's network namespace; 0 or -1. */
static inline int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = -1;

	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		err = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
	return err;
}

#endif
