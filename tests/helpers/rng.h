/* SPDX-License-Identifier: MIT */
/*
 * A small deterministic PRNG (xorshift64) for unit tests, so that a failure
 * can be replayed from its seed: set rng_state (never 0), then call rng().
 * Include in one file of a test program.
 */
#ifndef TESTS_RNG_H
#define TESTS_RNG_H

#include <stdint.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static inline uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

#endif
