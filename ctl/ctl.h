/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl's logic (ctl.c), callable from tests: argument parsing, the
 * usage text, one request/reply exchange and the printing of a reply.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#include "paths.h"

#define CTL_EXIT_RUNTIME 1
#define CTL_EXIT_USAGE 2

#define CTL_DEFAULT_SOCKET NFQB_PATH_CONTROL_SOCK
/* The usage text's help column (after two spaces of indent). */
#define CTL_HELP_COLUMN 17

/* Set by the signal handler: ends `watch` and pending waits. */
extern volatile sig_atomic_t ctl_stop_signal;

struct ctl_args {
	const char *path;             /* --control */
	const char *cmd;              /* a command of proto/ctlcmd.c */
	const char *ns;               /* --ns, NULL: none */
	int pretty;                   /* 1, 0, or -1: decide by isatty */
};

/*
 * ctl_parse_args - parse nfq-ctl's command line into @a. Returns -1 when
 * the command is to be run; otherwise the exit status, after printing
 * --help/--version on @out or a usage error (with the hint) on @err.
 */
int ctl_parse_args(int argc, char **argv, struct ctl_args *a, FILE *out, FILE *err);

/* ctl_usage - the --help text, its command list from proto/ctlcmd.c. */
void ctl_usage(FILE *f);

/* ctl_connect_reason - a connect() errno as a sentence naming the likely cause. */
const char *ctl_connect_reason(int err);

/*
 * ctl_print_reply - print the broker's @reply to @cmd on @fd: the Prometheus
 * text for metrics, otherwise JSON (@pretty or one line). A refusal
 * (ok=false) is printed too and its error (and errors) written to @err.
 * Returns the exit status.
 */
int ctl_print_reply(int fd, FILE *err, const char *cmd, json_object *reply, bool pretty);

/*
 * ctl_run - connect to @path, send @cmd (with @ns), print the reply; for
 * watch, copy the events until a signal or the end. Returns the exit status.
 */
int ctl_run(const char *path, const char *cmd, const char *ns, bool pretty);

#endif
