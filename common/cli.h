/* SPDX-License-Identifier: MIT */
/*
 * Command-line conventions every program shares: "PROG: message" plus
 * "Try 'PROG --help'." on stderr and exit status 2 for usage errors,
 * "PROG VERSION" for --version, and strict number arguments.
 */
#ifndef NFQB_COMMON_CLI_H
#define NFQB_COMMON_CLI_H

#include <stdio.h>

#include <nfqb/version.h>  /* NFQB_VERSION_STRING: the one version, from meson.build */

enum { CLI_EXIT_OK = 0, CLI_EXIT_RUNTIME = 1, CLI_EXIT_USAGE = 2 };

/* cli_set_program - the name messages start with (e.g. "nfq-agent"). */
void cli_set_program(const char *name);

/* cli_program - the name set by cli_set_program ("nfq" before that). */
const char *cli_program(void);

/*
 * cli_usage_error - print "PROG: <message>" and the --help hint on stderr;
 * returns CLI_EXIT_USAGE so callers can `return cli_usage_error(...)`.
 */
__attribute__((format(printf, 1, 2)))
int cli_usage_error(const char *fmt, ...);

/* cli_usage_error_to - the same on @f (a program whose parser writes to a
 * stream its caller chose, e.g. a unit test's memory stream). */
__attribute__((format(printf, 2, 3)))
int cli_usage_error_to(FILE *f, const char *fmt, ...);

/*
 * cli_bad_option - the usage error for getopt_long's ':' (missing
 * argument) or '?' (unknown option) result @c, naming argv[optind - 1].
 * The caller runs getopt with opterr = 0 and a leading ':' in optstring.
 */
int cli_bad_option(int c, char **argv);

/* cli_print_version - "PROG VERSION" on stdout. */
void cli_print_version(void);

/*
 * cli_parse_uint - @arg of option @opt as a decimal number in [@min, @max]
 * into @out. Returns 0, or prints the usage error and returns
 * CLI_EXIT_USAGE (no sign, no trailing bytes, no overflow).
 */
int cli_parse_uint(const char *opt, const char *arg, unsigned long long min,
		   unsigned long long max, unsigned long long *out);

#endif
