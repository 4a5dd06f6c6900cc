/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nfq-ctl's logic (ctl/ctl.c): argument parsing and its
 * usage errors, NFQ_CTL_SOCKET, the output chosen for a terminal or a
 * pipe, the usage texts (every command of proto/ctlcmd.c listed with its
 * help line; each command's own options), and the printing of replies
 * (JSON, the metrics text, a refusal with its errors).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nfqb/version.h>

#include <json-c/json.h>

#include "ctl.h"
#include "ctlcmd.h"

/* Output of one ctl_parse_args() call. */
struct parsed {
	int rc;
	struct ctl_args a;
	char *out, *err;
};

static struct parsed parse(const char *first, ...)
{
	char *argv[32] = { "nfq-ctl" };
	int argc = 1;
	size_t ol = 0, el = 0;
	struct parsed p = { 0 };
	FILE *out = open_memstream(&p.out, &ol), *err = open_memstream(&p.err, &el);
	va_list ap;

	assert_non_null(out);
	assert_non_null(err);
	va_start(ap, first);
	for (const char *s = first; s && argc < 31; s = va_arg(ap, const char *))
		argv[argc++] = (char *)s;
	va_end(ap);
	p.rc = ctl_parse_args(argc, argv, &p.a, out, err);
	fclose(out);
	fclose(err);
	return p;
}

static void parsed_free(struct parsed *p)
{
	free(p->out);
	free(p->err);
}

/* A usage error: exit 2, the message, and the hint. */
static void assert_usage_error(struct parsed p, const char *msg)
{
	char want[512];

	snprintf(want, sizeof(want), "nfq-ctl: %s\nTry 'nfq-ctl --help'.\n", msg);
	assert_int_equal(p.rc, CTL_EXIT_USAGE);
	assert_string_equal(p.err, want);
	assert_string_equal(p.out, "");
	parsed_free(&p);
}

static void test_parse_ok(void **state)
{
	struct parsed p = parse("status", NULL);

	assert_int_equal(p.rc, -1);
	assert_string_equal(p.a.cmd, "status");
	assert_string_equal(p.a.path, CTL_DEFAULT_SOCKET);
	assert_null(p.a.ns);
	assert_int_equal(p.a.pretty, -1);
	assert_string_equal(p.err, "");
	parsed_free(&p);

	p = parse("-c", "/tmp/x.sock", "--ns", "pod-a", "-C", "watch", NULL);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.a.cmd, "watch");
	assert_string_equal(p.a.path, "/tmp/x.sock");
	assert_string_equal(p.a.ns, "pod-a");
	assert_int_equal(p.a.pretty, 0);
	parsed_free(&p);

	p = parse("metrics", "--pretty", NULL);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.a.pretty, 1);
	parsed_free(&p);

	/* Options after the command; every watch filter. */
	p = parse("watch", "--ns", "pod-*", "--verdict", "drop", "--policy", "web", "--rule",
		  "dns", "--proto", "udp", "--port", "53", "--addr", "10.0.0.0/8", "--count",
		  "5", "--reconnect", "-o", "text", NULL);
	assert_int_equal(p.rc, -1);
	assert_string_equal(p.a.ns, "pod-*");
	for (size_t i = 0; i < CTL_NFILTERS; i++)
		assert_non_null(p.a.filter[i]);
	assert_string_equal(p.a.filter[0], "drop");
	assert_string_equal(p.a.filter[5], "10.0.0.0/8");
	assert_int_equal(p.a.count, 5);
	assert_true(p.a.reconnect);
	assert_int_equal(p.a.output, CTL_OUT_TEXT);
	parsed_free(&p);

	p = parse("top", "-d", "0.25", "--once", NULL);
	assert_int_equal(p.rc, -1);
	assert_int_equal(p.a.delay_ms, 250);
	assert_true(p.a.once);
	parsed_free(&p);

	p = parse("agents", "-o", "wide", NULL);
	assert_int_equal(p.a.output, CTL_OUT_WIDE);
	parsed_free(&p);
}

/* NFQ_CTL_SOCKET is the default socket; -c wins; empty is unset. */
static void test_socket_env(void **state)
{
	struct parsed p;

	setenv(CTL_SOCKET_ENV, "/tmp/env.sock", 1);
	p = parse("status", NULL);
	assert_string_equal(p.a.path, "/tmp/env.sock");
	parsed_free(&p);
	p = parse("-c", "/tmp/opt.sock", "status", NULL);
	assert_string_equal(p.a.path, "/tmp/opt.sock");
	parsed_free(&p);
	setenv(CTL_SOCKET_ENV, "", 1);
	p = parse("status", NULL);
	assert_string_equal(p.a.path, CTL_DEFAULT_SOCKET);
	parsed_free(&p);
	unsetenv(CTL_SOCKET_ENV);
}

/* A terminal gets tables and text, a pipe compact JSON (as before); -p/-C mean JSON. */
static void test_resolve_output(void **state)
{
	static const struct {
		const char *cmd, *opt;
		bool tty;
		enum ctl_output out;
		int pretty;
	} cases[] = {
		{ "agents", NULL, true, CTL_OUT_TABLE, 1 },
		{ "rules", NULL, true, CTL_OUT_TABLE, 1 },
		{ "status", NULL, true, CTL_OUT_TABLE, 1 },
		{ "watch", NULL, true, CTL_OUT_TEXT, 0 },
		{ "reload", NULL, true, CTL_OUT_JSON, 1 },
		{ "metrics", NULL, true, CTL_OUT_JSON, 1 },
		{ "agents", NULL, false, CTL_OUT_JSON, 0 },
		{ "watch", NULL, false, CTL_OUT_JSON, 0 },
		{ "status", "-p", true, CTL_OUT_JSON, 1 },
		{ "status", "-C", true, CTL_OUT_JSON, 0 },
		{ "status", "-p", false, CTL_OUT_JSON, 1 },
		{ "status", "-otable", false, CTL_OUT_TABLE, 0 },
		{ "watch", "-otext", false, CTL_OUT_TEXT, 0 },
		{ "status", "-ojson", true, CTL_OUT_JSON, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parsed p = parse(cases[i].cmd, cases[i].opt, NULL);

		assert_int_equal(p.rc, -1);
		ctl_resolve_output(&p.a, cases[i].tty);
		if (p.a.output != cases[i].out || p.a.pretty != cases[i].pretty)
			fail_msg("%s %s tty=%d: output %d pretty %d", cases[i].cmd,
				 cases[i].opt ? cases[i].opt : "", cases[i].tty, p.a.output,
				 p.a.pretty);
		parsed_free(&p);
	}
}

/* Every command of the table is accepted, nothing else. */
static void test_parse_every_command(void **state)
{
	for (size_t i = 0; i < ctlcmd_count(); i++) {
		struct parsed p = parse(ctlcmd_at(i)->name, NULL);

		assert_int_equal(p.rc, -1);
		assert_string_equal(p.a.cmd, ctlcmd_at(i)->name);
		parsed_free(&p);
	}
	{
		struct parsed p = parse("top", NULL);

		assert_int_equal(p.rc, -1);
		assert_string_equal(p.a.cmd, "top");
		assert_int_equal(p.a.delay_ms, 1000);
		parsed_free(&p);
	}
}

static void test_parse_errors(void **state)
{
	char names[CTLCMD_NAMES_MAX], msg[400];

	ctlcmd_names(names, sizeof(names));
	strcat(names, ", top");
	snprintf(msg, sizeof(msg), "missing command (%s)", names);
	assert_usage_error(parse(NULL), msg);
	snprintf(msg, sizeof(msg), "unknown command 'stats' (%s)", names);
	assert_usage_error(parse("stats", NULL), msg);
	assert_usage_error(parse("status", "extra", NULL), "unexpected argument 'extra'");
	assert_usage_error(parse("--ns", "a", "status", NULL), "--ns applies to watch only");
	assert_usage_error(parse("--ns=", "watch", NULL), "--ns: empty namespace name");
	assert_usage_error(parse("--control=", "status", NULL), "--control: empty path");
	assert_usage_error(parse("-q", "status", NULL), "unknown option '-q'");
	assert_usage_error(parse("--bogus", NULL), "unknown option '--bogus'");
	assert_usage_error(parse("status", "-c", NULL), "option '-c' needs an argument");
	assert_usage_error(parse("agents", "-o", "text", NULL), "-o text applies to watch only");
	assert_usage_error(parse("watch", "-o", "wide", NULL),
			   "-o wide applies to agents, rules, status only");
	assert_usage_error(parse("-o", "xml", "status", NULL),
			   "--output: unknown format 'xml' (json, table, wide, text)");
	assert_usage_error(parse("rules", "--port", "53", NULL), "--port applies to watch only");
	assert_usage_error(parse("status", "--count", "3", NULL), "--count applies to watch only");
	assert_usage_error(parse("watch", "--count", "-1", NULL),
			   "--count: '-1' is not a positive number");
	assert_usage_error(parse("watch", "--count", "x", NULL),
			   "--count: 'x' is not a positive number");
	assert_usage_error(parse("agents", "-d", "2", NULL), "--delay applies to top only");
	assert_usage_error(parse("top", "-d", "4000", NULL),
			   "--delay: '4000' is not a number of seconds (0.1-3600)");
	assert_usage_error(parse("top", "-d", "1s", NULL),
			   "--delay: '1s' is not a number of seconds (0.1-3600)");
	assert_usage_error(parse("top", "-p", NULL),
			   "top has no --output: it draws a screen (--once prints one frame)");
	assert_usage_error(parse("status", "-C", "-o", "wide", NULL),
			   "--compact is JSON output: not with -o wide");
	assert_usage_error(parse("watch", "--addr=", NULL), "--addr: empty value");
}

static void test_help_and_version(void **state)
{
	struct parsed p = parse("--help", NULL);

	assert_int_equal(p.rc, 0);
	assert_string_equal(p.err, "");
	assert_non_null(strstr(p.out, "Usage: nfq-ctl [--control SOCKET] COMMAND [OPTIONS]\n"));
	/* Every command on its own line, its help at the column (or 2 spaces after). */
	for (size_t i = 0; i < ctlcmd_count(); i++) {
		const struct ctlcmd *c = ctlcmd_at(i);
		char syn[64], line[256];
		int w;

		w = snprintf(syn, sizeof(syn), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
		snprintf(line, sizeof(line), "\n  %s%*s%s\n", syn,
			 w < CTL_HELP_COLUMN ? CTL_HELP_COLUMN - w : 2, "", c->help);
		if (!strstr(p.out, line))
			fail_msg("usage lacks the line for %s: %s", c->name, line);
	}
	assert_non_null(strstr(p.out, "\n  status           version, uptime,"));
	assert_non_null(strstr(p.out, "\n  watch [FILTERS]  one line per decided packet"));
	assert_non_null(strstr(p.out, "\n  top [-d SECONDS] [--once]  live view"));
	parsed_free(&p);

	/* A command's own help, before or after the command; exit 0. */
	p = parse("watch", "--help", NULL);
	assert_int_equal(p.rc, 0);
	assert_non_null(strstr(p.out, "Usage: nfq-ctl [OPTIONS] watch [FILTERS]\n"));
	assert_non_null(strstr(p.out, "\n      --addr CIDR "));
	assert_non_null(strstr(p.out, "Needs an admin uid"));
	assert_null(strstr(p.out, "--delay"));
	parsed_free(&p);
	p = parse("-h", "agents", NULL);
	assert_int_equal(p.rc, 0);
	assert_non_null(strstr(p.out, "Usage: nfq-ctl [OPTIONS] agents\n"));
	assert_non_null(strstr(p.out, "table or wide"));
	assert_null(strstr(p.out, "--verdict"));
	assert_null(strstr(p.out, "Needs an admin"));
	parsed_free(&p);
	p = parse("top", "--help", NULL);
	assert_non_null(strstr(p.out, "\n  -d, --delay SECONDS "));
	assert_null(strstr(p.out, "--output"));
	parsed_free(&p);

	p = parse("-V", NULL);
	assert_int_equal(p.rc, 0);
	assert_string_equal(p.out, "nfq-ctl " NFQB_VERSION_STRING "\n");
	parsed_free(&p);
}

static void test_connect_reason(void **state)
{
	assert_string_equal(ctl_connect_reason(ECONNREFUSED),
			    "broker not running (connection refused)");
	assert_string_equal(ctl_connect_reason(ENOENT),
			    "no such socket (is the broker running?)");
	assert_string_equal(ctl_connect_reason(EACCES), "permission denied");
	assert_string_equal(ctl_connect_reason(EPERM), "permission denied");
	assert_string_equal(ctl_connect_reason(EPROTOTYPE),
			    "not a control socket (wrong socket type)");
	assert_string_equal(ctl_connect_reason(EIO), strerror(EIO));
}

/* ctl_print_reply() of @json for @cmd: exit status, stdout and stderr text. */
static int print_reply(const char *cmd, const char *json, bool pretty, char *out,
		       size_t outlen, char **err)
{
	json_object *reply = json_tokener_parse(json);
	size_t el = 0;
	FILE *ef = open_memstream(err, &el);
	int fds[2], rc;
	ssize_t n;

	assert_non_null(reply);
	assert_non_null(ef);
	assert_int_equal(pipe(fds), 0);
	rc = ctl_print_reply(fds[1], ef, cmd, reply, pretty);
	close(fds[1]);
	n = read(fds[0], out, outlen - 1);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fds[0]);
	fclose(ef);
	json_object_put(reply);
	return rc;
}

static void test_print_reply(void **state)
{
	char out[4096], *err = NULL;

	assert_int_equal(print_reply("status", "{\"ok\":true,\"pid\":7}", false, out,
				     sizeof(out), &err), 0);
	assert_string_equal(out, "{\"ok\":true,\"pid\":7}\n");
	assert_string_equal(err, "");
	free(err);

	assert_int_equal(print_reply("status", "{\"ok\":true,\"pid\":7}", true, out,
				     sizeof(out), &err), 0);
	assert_string_equal(out, "{\n  \"ok\": true,\n  \"pid\": 7\n}\n");
	free(err);

	/* metrics: the text itself, not JSON. */
	assert_int_equal(print_reply("metrics", "{\"ok\":true,\"text\":\"# HELP a b\\na 1\\n\"}",
				     false, out, sizeof(out), &err), 0);
	assert_string_equal(out, "# HELP a b\na 1\n");
	free(err);

	/* A refusal: the reply on stdout, the reason and each error on stderr, exit 1. */
	assert_int_equal(print_reply("reload", "{\"ok\":false,\"error\":\"rejected\","
				     "\"errors\":[\"a: bad\",\"b: worse\"]}", false, out,
				     sizeof(out), &err), CTL_EXIT_RUNTIME);
	assert_non_null(strstr(out, "\"ok\":false"));
	assert_string_equal(err, "nfq-ctl: reload: rejected\n  a: bad\n  b: worse\n");
	free(err);

	assert_int_equal(print_reply("status", "{\"ok\":false}", false, out, sizeof(out),
				     &err), CTL_EXIT_RUNTIME);
	assert_string_equal(err, "nfq-ctl: status: the broker replied ok=false\n");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_every_command),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_socket_env),
		cmocka_unit_test(test_resolve_output),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_connect_reason),
		cmocka_unit_test(test_print_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
