/* SPDX-License-Identifier: MIT */
/* Time as the programs measure it: CLOCK_MONOTONIC, in milliseconds. */
#ifndef NFQB_COMMON_CLOCK_H
#define NFQB_COMMON_CLOCK_H

#include <stdint.h>

/* clock_now_ms - CLOCK_MONOTONIC in milliseconds (never goes back). */
int64_t clock_now_ms(void);

/* clock_sleep_ms - sleep @ms milliseconds, resumed across signals. */
void clock_sleep_ms(int ms);

#endif
