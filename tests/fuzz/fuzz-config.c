/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "config": the bytes are a broker config file for
 * broker/config.c (json-c, validation, policy compilation). Inputs with a
 * NUL byte, and every 16th input, go through cfg_load() from a memfd's
 * /proc/self/fd path, exactly as the broker reads its file; the others
 * through cfg_parse_string(), the same parser without the file read
 * (cfg_load's 16 MiB read buffer costs more than the parse under ASan).
 * A config that loads is queried (name matching, uids) and freed; one
 * that does not must say why. Invariants: never a crash or leak
 * (LeakSanitizer checks every input), no fd left open.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "errs.h"
#include "fuzz.h"

static int mfd = -1, baseline_fds;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mfd = memfd_create("fuzz-config", MFD_CLOEXEC);
	FUZZ_CHECK(mfd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "", "pod-a", "default/web-0", "*", "a b" };
	struct errs e = { 0 };
	static unsigned inputs;
	struct cfg *c;
	char *why, *text;

	/* Taken at the first input: libFuzzer opens fds after initialization. */
	if (!baseline_fds)
		baseline_fds = fuzz_count_fds();
	if (size > 1u << 20)
		return -1;
	/* libFuzzer's first input is (NULL, 0): no memchr/memcpy on it. */
	if ((size && memchr(data, 0, size)) || ++inputs % 16 == 0) {
		FUZZ_CHECK(ftruncate(mfd, 0) == 0);
		FUZZ_CHECK(!size || pwrite(mfd, data, size, 0) == (ssize_t)size);
		c = cfg_load(path, &e);
	} else {
		text = malloc(size + 1);
		FUZZ_CHECK(text);
		if (size)
			memcpy(text, data, size);
		text[size] = '\0';
		c = cfg_parse_string(text, &e);
		free(text);
	}
	if (c) {
		FUZZ_CHECK(e.n == 0);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			(void)cfg_match(c, names[i]);
		(void)cfg_uid_allowed(c, 0);
		(void)cfg_uid_allowed(c, 65534);
		cfg_free(c);
	} else {
		/* Refused: with at least one reason, each naming where. */
		FUZZ_CHECK(e.n > 0 || e.oom);
		why = errs_join(&e, "\n");
		FUZZ_CHECK(why);
		free(why);
	}
	errs_reset(&e);
	fuzz_check_fds(baseline_fds);
	return 0;
}
