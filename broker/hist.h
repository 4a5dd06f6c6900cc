/* SPDX-License-Identifier: MIT */
/*
 * Fixed-bucket histograms for the metrics (verdict latency, event-loop
 * lag): counts in a plain array, no allocation, so observing is safe on
 * the hot path. Buckets are stored non-cumulative (one increment per
 * observation); metrics.c adds them up into Prometheus' cumulative `le`
 * buckets when rendering.
 */
#ifndef BROKER_HIST_H
#define BROKER_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_BOUNDS 12

/* Upper bounds of the finite buckets, in nanoseconds, ascending. */
struct hist_bounds {
	uint64_t ns[HIST_BOUNDS];
};

struct hist {
	uint64_t bucket[HIST_BOUNDS + 1];  /* [HIST_BOUNDS]: above the last bound (+Inf) */
	uint64_t count;
	uint64_t sum_ns;
};

/* Receive to verdict sent: 10 µs .. 100 ms. */
extern const struct hist_bounds hist_latency_bounds;
/* How late a timer fires: 0.5 ms .. 2.5 s. */
extern const struct hist_bounds hist_lag_bounds;

/*
 * hist_add - @n observations of @ns each (a dispatch round decides its
 * packets together). A linear scan of 12 bounds: cheaper than a binary
 * search at this size, and branch-predictable when latencies are steady.
 */
static inline void hist_add(struct hist *h, const struct hist_bounds *b, uint64_t ns,
			    uint64_t n)
{
	size_t i = 0;

	while (i < HIST_BOUNDS && ns > b->ns[i])
		i++;
	/* One writer per histogram; the main thread may read it meanwhile
	 * (hist_load): relaxed stores, plain movs on x86, no data race. */
	__atomic_store_n(&h->bucket[i], h->bucket[i] + n, __ATOMIC_RELAXED);
	__atomic_store_n(&h->count, h->count + n, __ATOMIC_RELAXED);
	__atomic_store_n(&h->sum_ns, h->sum_ns + ns * n, __ATOMIC_RELAXED);
}

/*
 * hist_load - a copy of @src, which another thread may be adding to
 * (relaxed loads: each field is whole, the fields may be a round apart).
 */
static inline void hist_load(struct hist *dst, const struct hist *src)
{
	for (size_t i = 0; i <= HIST_BOUNDS; i++)
		dst->bucket[i] = __atomic_load_n(&src->bucket[i], __ATOMIC_RELAXED);
	dst->count = __atomic_load_n(&src->count, __ATOMIC_RELAXED);
	dst->sum_ns = __atomic_load_n(&src->sum_ns, __ATOMIC_RELAXED);
}

/* hist_merge - add @src's observations to @dst (both the caller's). */
static inline void hist_merge(struct hist *dst, const struct hist *src)
{
	for (size_t i = 0; i <= HIST_BOUNDS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
}

/* hist_now_ns - CLOCK_MONOTONIC in nanoseconds (vDSO: no system call). */
uint64_t hist_now_ns(void);

#endif
