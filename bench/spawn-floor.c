/* SPDX-License-Identifier: MIT */
/*
 * spawn-floor --status-file F - the attach's reference: the cheapest
 * program that says it is attached. It writes "state=attached" into F with
 * nfq-agent's own writer (fs_write_replace(): a temporary file renamed over
 * F), then waits for SIGTERM. scripts/bench starts it exactly as it starts
 * the agents and with the same link (-Dstatic_agent), so attach - floor
 * is the agent's and the broker's work and the floor is what starting a
 * process costs on this machine (bench/README.md, "What limits the
 * attach").
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"

int main(int argc, char **argv)
{
	static char state[] = "state=attached\n";
	struct iovec iov = { .iov_base = state, .iov_len = sizeof(state) - 1 };
	sigset_t term;
	int rc, sig;

	if (argc != 3 || strcmp(argv[1], "--status-file") != 0) {
		fprintf(stderr, "usage: spawn-floor --status-file FILE\n");
		return 2;
	}
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigprocmask(SIG_BLOCK, &term, NULL);
	rc = fs_write_replace(argv[2], &iov, 1, 0644);
	if (rc < 0) {
		fprintf(stderr, "spawn-floor: %s: %s\n", argv[2], strerror(-rc));
		return 1;
	}
	sigwait(&term, &sig);
	return 0;
}
