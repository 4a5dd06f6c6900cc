/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer entry points shared by the targets in tests/fuzz/. A target
 * is linked either with libFuzzer (-Dfuzz=true, clang) or with replay.c,
 * whose main() runs every file of a corpus directory once (the unit
 * suite's fuzz-<name>-corpus tests).
 */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

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

/* Whether @fd is open and not a pipe: libFuzzer's leak detection (LSan)
 * holds pipes open while it re-runs an input, and nothing under test
 * opens a pipe. */
static inline bool fuzz_fd_counts(int fd)
{
	char link[64], target[16];
	ssize_t n;

	if (fcntl(fd, F_GETFD) < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target));
	return !(n >= 5 && memcmp(target, "pipe:", 5) == 0);
}

/* Open descriptors below 512 (leak checks between inputs; the targets
 * never hold more than a few dozen). */
static inline int fuzz_count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 512; fd++)
		if (fuzz_fd_counts(fd))
			n++;
	return n;
}

/* The fd count is @want again, or the open fds are listed and we abort. */
static inline void fuzz_check_fds(int want)
{
	char link[64], target[256];
	ssize_t n;

	if (fuzz_count_fds() == want)
		return;
	fprintf(stderr, "fd leak: %d open, %d expected\n", fuzz_count_fds(), want);
	for (int fd = 0; fd < 512; fd++) {
		if (fcntl(fd, F_GETFD) < 0)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "  fd %d -> %s\n", fd, target);
	}
	abort();
}

#endif
