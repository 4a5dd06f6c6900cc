/* SPDX-License-Identifier: MIT */
/*
 * The command line every example shares: [--count N] [--timeout SECONDS]
 * QUEUE [more arguments]. Only this is shared; each example stays one
 * file to read about libnfqb.
 */
#ifndef NFQB_EXAMPLE_ARGS_H
#define NFQB_EXAMPLE_ARGS_H

#include <stdio.h>

struct example_args {
	unsigned long queue;      /* 0-65535 */
	unsigned long count;      /* packets before stopping; 0: no limit */
	unsigned long timeout;    /* seconds; 0: none */
	char **rest;              /* the arguments after QUEUE */
};

/*
 * example_parse_args - parse argv for example @prog into @a: the options,
 * then QUEUE and exactly @nrest more arguments (named @rest_names, e.g.
 * "OLD NEW", in the error message). --help prints @usage to stdout and
 * exits 0. Returns 0, or -1 after telling stderr what is wrong.
 */
int example_parse_args(int argc, char **argv, const char *prog, int nrest,
		       const char *rest_names, void (*usage)(FILE *),
		       struct example_args *a);

#endif
