/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "example-args.h"

static int parse_num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end || *out > max ? -1 : 0;
}

static int parse_options(int argc, char **argv, const char *prog, void (*usage)(FILE *),
			 struct example_args *a)
{
	static const struct option lo[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:t:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (parse_num(optarg, 1000000000, &a->count) < 0 || a->count == 0) {
				fprintf(stderr, "%s: --count: '%s' is not a number 1-1000000000\n",
					prog, optarg);
				return -1;
			}
			break;
		case 't':
			if (parse_num(optarg, 86400, &a->timeout) < 0 || a->timeout == 0) {
				fprintf(stderr, "%s: --timeout: '%s' is not a number of seconds 1-86400\n",
					prog, optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

int example_parse_args(int argc, char **argv, const char *prog, int nrest,
		       const char *rest_names, void (*usage)(FILE *),
		       struct example_args *a)
{
	*a = (struct example_args){ 0 };
	if (parse_options(argc, argv, prog, usage, a) < 0)
		return -1;
	if (argc - optind != 1 + nrest) {
		if (nrest)
			fprintf(stderr, "%s: expected QUEUE %s\n", prog, rest_names);
		else
			fprintf(stderr, "%s: expected one QUEUE argument\n", prog);
		usage(stderr);
		return -1;
	}
	if (parse_num(argv[optind], 65535, &a->queue) < 0) {
		fprintf(stderr, "%s: QUEUE: '%s' is not a number 0-65535\n", prog, argv[optind]);
		return -1;
	}
	a->rest = argv + optind + 1;
	return 0;
}
