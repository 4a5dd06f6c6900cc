/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl: command-line client of the broker's control socket
 * (docs/interface.md §1, §5). Sends one request line, prints the reply: pretty
 * JSON on a terminal, compact JSON when piped; `metrics` prints the
 * Prometheus text itself; `watch` copies the event lines until a signal or
 * the end of the connection. The logic is ctl.c.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl.h"

static void on_signal(int sig)
{
	ctl_stop_signal = sig;
}

/* SIGINT/SIGTERM end `watch` cleanly: the blocking read returns EINTR. */
static void signals_setup(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	struct ctl_args a;
	int rc = ctl_parse_args(argc, argv, &a, stdout, stderr);

	if (rc >= 0)
		return rc;
	if (a.pretty < 0)
		a.pretty = isatty(STDOUT_FILENO);
	signals_setup();
	return ctl_run(a.path, a.cmd, a.ns, a.pretty);
}
