/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "signals.h"

int signals_open(const int *signos, size_t n, int flags)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	for (size_t i = 0; i < n; i++)
		if (sigaddset(&set, signos[i]) < 0)
			return -EINVAL;
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC | flags);
	return fd < 0 ? -errno : fd;
}

int signals_wait(int sigfd, int ms)
{
	struct pollfd p = { .fd = sigfd, .events = POLLIN };
	struct signalfd_siginfo si;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}
