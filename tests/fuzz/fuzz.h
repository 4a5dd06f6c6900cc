/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer entry points shared by the targets in tests/fuzz/. A target
 * is linked either with libFuzzer (-Dfuzz=true, clang) or with replay.c,
 * whose main() runs every file of a corpus directory once (the unit
 * suite's fuzz-<name>-corpus tests).
 */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant the code under test broke: a finding, so crash loudly. */
#define FUZZ_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,  \
				__LINE__, #cond);                               \
			abort();                                                \
		}                                                               \
	} while (0)

/* Open descriptors below 512 (leak checks between inputs; the targets
 * never hold more than a few dozen). */
static inline int fuzz_count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 512; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

#endif
