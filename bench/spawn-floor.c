/* SPDX-License-Identifier: MIT */
/*
 * spawn-floor --status-file F - the attach's reference: the cheapest
 * program that says it is attached. It writes "state=attached" into F the
 * way nfq-agent does (a temporary file renamed over F), then waits for
 * SIGTERM. scripts/bench starts it exactly as it starts the agents and
 * with the same link (-Dstatic_agent), so attach - floor is the agent's
 * and the broker's work and the floor is what starting a process costs on
 * this machine (bench/README.md, "Scale").
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char state[] = "state=attached\n";
	char tmp[4096];
	sigset_t term;
	int fd, sig;

	if (argc != 3 || strcmp(argv[1], "--status-file") != 0) {
		fprintf(stderr, "usage: spawn-floor --status-file FILE\n");
		return 2;
	}
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigprocmask(SIG_BLOCK, &term, NULL);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]) >= (int)sizeof(tmp))
		return 1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	if (write(fd, state, sizeof(state) - 1) != (ssize_t)(sizeof(state) - 1)) {
		close(fd);
		goto fail;
	}
	if (close(fd) < 0 || rename(tmp, argv[2]) < 0)
		goto fail;
	sigwait(&term, &sig);
	return 0;
fail:
	perror("spawn-floor");
	return 1;
}
