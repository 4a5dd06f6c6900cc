/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl's logic (ctl.c), callable from tests: argument parsing, the
 * usage texts, one request/reply exchange and the printing of a reply
 * (JSON, or a table through render.c), the watch stream, and `top`
 * (top.c).
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
/* The socket when no --control is given; -c wins over it. */
#define CTL_SOCKET_ENV "NFQ_CTL_SOCKET"
/* The usage text's help column (after two spaces of indent). */
#define CTL_HELP_COLUMN 17

/* Set by the signal handler: ends `watch`, `top` and pending waits. */
extern volatile sig_atomic_t ctl_stop_signal;

/* -o/--output; AUTO: a table (text for watch) on a terminal, else JSON. */
enum ctl_output {
	CTL_OUT_AUTO,
	CTL_OUT_JSON,
	CTL_OUT_TABLE,
	CTL_OUT_WIDE,
	CTL_OUT_TEXT,
};

/* watch's filters besides --ns: option name = request key. */
#define CTL_NFILTERS 6
extern const char *const ctl_filter_keys[CTL_NFILTERS];

struct ctl_args {
	const char *path;             /* --control, else $NFQ_CTL_SOCKET, else the default */
	const char *cmd;              /* a command of proto/ctlcmd.c, or "top" */
	const char *ns;               /* --ns GLOB, NULL: none */
	const char *filter[CTL_NFILTERS]; /* --verdict ... --addr, as ctl_filter_keys */
	int pretty;                   /* 1, 0, or -1: decide by isatty */
	enum ctl_output output;
	unsigned long long count;     /* watch --count N: exit after N events; 0: no limit */
	bool reconnect;               /* watch --reconnect */
	unsigned delay_ms;            /* top -d SECONDS */
	bool once;                    /* top --once: one frame, no terminal control */
};

/*
 * ctl_parse_args - parse nfq-ctl's command line into @a. Returns -1 when
 * the command is to be run; otherwise the exit status, after printing
 * --help (the command's own with a command), --version on @out, or a
 * usage error (with the hint) on @err. $NFQ_CTL_SOCKET is read here.
 */
int ctl_parse_args(int argc, char **argv, struct ctl_args *a, FILE *out, FILE *err);

/* ctl_resolve_output - @a's AUTO output and pretty flag for stdout being a tty or not. */
void ctl_resolve_output(struct ctl_args *a, bool tty);

/* ctl_usage - the --help text, its command list from proto/ctlcmd.c. */
void ctl_usage(FILE *f);

/* ctl_command_usage - `nfq-ctl CMD --help`: synopsis, help, its options. */
void ctl_command_usage(FILE *f, const char *cmd);

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
 * ctl_request - one request @req on a new connection to @path; the reply
 * object into *@reply (the caller puts it). @quiet: no message on stderr.
 * Returns 0 or the exit status.
 */
int ctl_request(const char *path, json_object *req, json_object **reply, bool quiet);

/*
 * ctl_run - run the command of @a: connect, send, print the reply in @a's
 * output; for watch, print the events until a signal, --count or the
 * end (non-zero unless --reconnect). Returns the exit status.
 */
int ctl_run(const struct ctl_args *a);

/* ctl_top - `nfq-ctl top` (top.c). Returns the exit status. */
int ctl_top(const struct ctl_args *a);

#endif
