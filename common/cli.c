/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>

#include "cli.h"

static const char *program = "nfq";

void cli_set_program(const char *name)
{
	program = name;
}

const char *cli_program(void)
{
	return program;
}

static int vusage_error(FILE *f, const char *fmt, va_list ap)
{
	fprintf(f, "%s: ", program);
	vfprintf(f, fmt, ap);
	fprintf(f, "\nTry '%s --help'.\n", program);
	return CLI_EXIT_USAGE;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vusage_error(stderr, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_usage_error_to(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vusage_error(f, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_bad_option(int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (c == ':')
		return cli_usage_error("option '%s' needs an argument", arg);
	return cli_usage_error("unknown option '%s'", arg);
}

void cli_print_version(void)
{
	printf("%s %s\n", program, NFQB_VERSION_STRING);
}

int cli_parse_uint(const char *opt, const char *arg, unsigned long long min,
		   unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	/* strtoull accepts a sign and leading blanks; a count does not. */
	if (!isdigit((unsigned char)*arg))
		goto bad;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	return cli_usage_error("%s: '%s' is not a number from %llu to %llu", opt, arg, min, max);
}
