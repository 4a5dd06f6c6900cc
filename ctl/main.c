/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl: command-line client of the broker's control socket
 * (docs/interface.md §1, §5, docs/control.md). Sends one request line,
 * prints the reply: tables (or pretty JSON) on a terminal, compact JSON when
 * piped; `metrics` prints the Prometheus text itself; `watch` prints the
 * events until a signal, --count or the end of the connection; `top` draws
 * a live view. The logic is ctl.c, render.c, top.c.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl.h"

static void on_signal(int sig)
{
	ctl_stop_signal = sig;
}

/* SIGINT/SIGTERM end `watch` and `top` cleanly: the blocking read returns EINTR. */
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
	ctl_resolve_output(&a, isatty(STDOUT_FILENO));
	signals_setup();
	return ctl_run(&a);
}
