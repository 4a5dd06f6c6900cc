/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl's logic, apart from main() so tests/test-ctl.c can link it: the
 * arguments (checked against the command table proto/ctlcmd.c, which also
 * gives the usage text), the request and the printing of the reply.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "ctl.h"
#include "ctlcmd.h"

#define REPLY_TIMEOUT_MS 30000
#define REPLY_MAX (256u << 20)     /* a sanity bound, far above any real reply */

volatile sig_atomic_t ctl_stop_signal;

__attribute__((format(printf, 1, 2)))
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("nfq-ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_RUNTIME;
}

/* fail(), or only its exit status when @quiet. */
__attribute__((format(printf, 2, 3)))
static int fail_if(bool quiet, const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return CTL_EXIT_RUNTIME;
	fputs("nfq-ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_RUNTIME;
}

const char *ctl_connect_reason(int err)
{
	switch (err) {
	case ECONNREFUSED: return "broker not running (connection refused)";
	case ENOENT:       return "no such socket (is the broker running?)";
	case EACCES:
	case EPERM:        return "permission denied";
	case ENOTSOCK:     return "not a socket";
	case EPROTOTYPE:   return "not a control socket (wrong socket type)";
	}
	return strerror(err);
}

static int ctl_connect(const char *path, int *fdp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return cli_usage_error("--control: path longer than %zu bytes: %s",
				   sizeof(sa.sun_path) - 1, path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		close(fd);
		return fail("cannot connect to %s: %s", path, ctl_connect_reason(err));
	}
	*fdp = fd;
	return 0;
}

/* 0 or -errno; the caller reports it. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR && !ctl_stop_signal)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read one line (the reply) into a new string. Bytes after the newline
 * (watch events already sent) are kept in @rest/@restlen. @quiet: no
 * message when there is none.
 */
static int read_line(int fd, const char *path, char **line, char **rest, size_t *restlen,
		     bool quiet)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap), *nl = NULL;
	long long deadline = clock_now_ms() + REPLY_TIMEOUT_MS;
	int rc;

	if (!buf)
		return fail("out of memory");
	while (!nl) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - clock_now_ms();
		ssize_t n;

		if (left <= 0) {
			rc = fail_if(quiet, "%s: no reply from the broker within %d s", path,
				  REPLY_TIMEOUT_MS / 1000);
			goto fail;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR && !ctl_stop_signal)
			continue;
		if (n < 0) {
			rc = ctl_stop_signal ? CTL_EXIT_RUNTIME : fail("poll: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			continue;
		if (len + 1 >= cap) {
			char *b;

			if (cap >= REPLY_MAX) {
				rc = fail_if(quiet, "%s: reply larger than %u bytes", path, REPLY_MAX);
				goto fail;
			}
			b = realloc(buf, cap * 2);
			if (!b) {
				rc = fail_if(quiet, "out of memory");
				goto fail;
			}
			buf = b;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR && !ctl_stop_signal)
			continue;
		if (n < 0) {
			rc = fail_if(quiet, "%s: cannot read the reply: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0) {
			rc = fail_if(quiet, "%s: the broker closed the connection without a reply", path);
			goto fail;
		}
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
	}
	*nl = '\0';
	*restlen = len - (size_t)(nl + 1 - buf);
	*rest = malloc(*restlen + 1);
	if (!*rest) {
		rc = fail_if(quiet, "out of memory");
		goto fail;
	}
	memcpy(*rest, nl + 1, *restlen);
	*line = buf;
	return 0;
fail:
	free(buf);
	return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int print_json(int fd, json_object *o, bool pretty)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED :
		     JSON_C_TO_STRING_PLAIN);
	size_t len = 0;
	const char *s = json_object_to_json_string_length(o, flags, &len);

	if (write_all(fd, s, len) < 0 || write_all(fd, "\n", 1) < 0)
		return fail("cannot write to stdout: %s", strerror(errno));
	return 0;
}

static int report_refusal(FILE *f, const char *cmd, json_object *reply);

int ctl_print_reply(int fd, FILE *err, const char *cmd, json_object *reply, bool pretty)
{
	json_object *ok = NULL, *text;
	const char *s;

	if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok)) {
		print_json(fd, reply, pretty);
		return report_refusal(err, cmd, reply);
	}
	if (strcmp(cmd, "metrics") == 0 && json_object_object_get_ex(reply, "text", &text)) {
		s = json_object_get_string(text);
		if (write_all(fd, s, strlen(s)) < 0)
			return fail("cannot write to stdout: %s", strerror(errno));
		return 0;
	}
	return print_json(fd, reply, pretty);
}

/* The broker said no: its reason (and a config's errors) on stderr. */
static int report_refusal(FILE *f, const char *cmd, json_object *reply)
{
	json_object *err = NULL, *errs = NULL;

	json_object_object_get_ex(reply, "error", &err);
	fprintf(f, "nfq-ctl: %s: %s\n", cmd,
		err ? json_object_get_string(err) : "the broker replied ok=false");
	if (json_object_object_get_ex(reply, "errors", &errs) &&
	    json_object_is_type(errs, json_type_array))
		for (size_t i = 0; i < json_object_array_length(errs); i++)
			fprintf(f, "  %s\n",
				json_object_get_string(json_object_array_get_idx(errs, i)));
	return CTL_EXIT_RUNTIME;
}

/* Copy the event lines to stdout until a signal or the end of the connection. */
static int watch_loop(int fd, const char *path, const char *rest, size_t restlen)
{
	char buf[65536];

	if (restlen && write_all(STDOUT_FILENO, rest, restlen) < 0)
		return errno == EPIPE ? 0 : fail("cannot write to stdout: %s", strerror(errno));
	while (!ctl_stop_signal) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("%s: %s", path, strerror(errno));
		if (n == 0) {
			fprintf(stderr, "nfq-ctl: watch ended: the broker closed the connection\n");
			return 0;
		}
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			/* A reader that went away (| head) ends the watch. */
			return errno == EPIPE ? 0 : fail("cannot write to stdout: %s",
							 strerror(errno));
	}
	return 0;
}

int ctl_run(const char *path, const char *cmd, const char *ns, bool pretty)
{
	json_object *req = json_object_new_object(), *reply = NULL, *ok = NULL;
	char *line = NULL, *rest = NULL;
	const char *s;
	size_t restlen = 0, len = 0;
	int fd = -1, rc, serr;

	if (!req)
		return fail("out of memory");
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (ns)
		json_object_object_add(req, "ns", json_object_new_string(ns));
	rc = ctl_connect(path, &fd);
	if (rc)
		goto out;
	s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
	serr = send_all(fd, s, len);
	if (serr == 0)
		serr = send_all(fd, "\n", 1);
	/*
	 * A broker that refuses this uid says why and hangs up, perhaps before
	 * the request went out: its reason beats "Broken pipe".
	 */
	rc = read_line(fd, path, &line, &rest, &restlen, serr != 0);
	if (rc && serr)
		rc = fail("%s: cannot send the request: %s", path, strerror(-serr));
	if (rc)
		goto out;
	reply = json_tokener_parse(line);
	if (!reply || !json_object_is_type(reply, json_type_object) ||
	    !json_object_object_get_ex(reply, "ok", &ok)) {
		rc = fail("%s: malformed reply from the broker: %.200s", path, line);
		goto out;
	}
	if (json_object_get_boolean(ok) && strcmp(cmd, "watch") == 0)
		rc = watch_loop(fd, path, rest, restlen);
	else
		rc = ctl_print_reply(STDOUT_FILENO, stderr, cmd, reply, pretty);
out:
	json_object_put(req);
	json_object_put(reply);
	free(line);
	free(rest);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* "name args" of @c as nfq-ctl's synopsis shows it. */
static const char *synopsis(const struct ctlcmd *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
	return buf;
}

void ctl_usage(FILE *f)
{
	fputs("Usage: nfq-ctl [--control SOCKET] COMMAND\n"
	      "\n"
	      "Asks the running nfq-broker over its control socket.\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < ctlcmd_count(); i++) {
		const struct ctlcmd *c = ctlcmd_at(i);
		char syn[64];
		int w = (int)strlen(synopsis(c, syn, sizeof(syn)));

		/* The help column, unless the synopsis is longer. */
		fprintf(f, "  %s%*s%s\n", syn, w < CTL_HELP_COLUMN ? CTL_HELP_COLUMN - w : 2, "",
			c->help);
	}
	fputs("\n"
	      "Options:\n"
	      "  -c, --control SOCKET  control socket (default " CTL_DEFAULT_SOCKET ")\n"
	      "  -n, --ns NAME         watch only namespace NAME\n"
	      "  -p, --pretty          indented JSON (the default on a terminal)\n"
	      "  -C, --compact         one-line JSON (the default when piped)\n"
	      "  -h, --help            show this help\n"
	      "  -V, --version         show the version\n"
	      "\n"
	      "Exit status: 0 ok, 1 the broker said no or cannot be reached, 2 usage error.\n", f);
}

/* The commands taking request key @key, joined by ", " (for a message). */
static const char *commands_with(const char *key, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ctlcmd_count() && off < len; i++) {
		const struct ctlcmd *c = ctlcmd_at(i);

		if (ctlcmd_accepts(c, key))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						c->name);
	}
	return buf;
}

int ctl_parse_args(int argc, char **argv, struct ctl_args *a, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "ns", required_argument, NULL, 'n' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "compact", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	char names[CTLCMD_NAMES_MAX];
	const struct ctlcmd *c;
	int opt;

	*a = (struct ctl_args){ .path = CTL_DEFAULT_SOCKET, .pretty = -1 };
	cli_set_program("nfq-ctl");   /* usage errors say "nfq-ctl: ..." */
	opterr = 0;
	optind = 0;     /* glibc: start afresh (tests parse many argv) */
	while ((opt = getopt_long(argc, argv, ":c:n:pChV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->path = optarg;
			break;
		case 'n':
			a->ns = optarg;
			break;
		case 'p':
			a->pretty = 1;
			break;
		case 'C':
			a->pretty = 0;
			break;
		case 'h':
			ctl_usage(out);
			return 0;
		case 'V':
			fprintf(out, "nfq-ctl %s\n", NFQB_VERSION_STRING);
			return 0;
		case ':':
			return cli_usage_error_to(err, "option '%s' needs an argument",
					      argv[optind - 1]);
		default:
			return cli_usage_error_to(err, "unknown option '%s'", argv[optind - 1]);
		}
	}
	ctlcmd_names(names, sizeof(names));
	if (optind >= argc)
		return cli_usage_error_to(err, "missing command (%s)", names);
	a->cmd = argv[optind];
	c = ctlcmd_find(a->cmd);
	if (!c)
		return cli_usage_error_to(err, "unknown command '%s' (%s)", a->cmd, names);
	if (optind + 1 < argc)
		return cli_usage_error_to(err, "unexpected argument '%s'", argv[optind + 1]);
	if (a->ns && !ctlcmd_accepts(c, "ns"))
		return cli_usage_error_to(err, "--ns applies to %s only",
				      commands_with("ns", names, sizeof(names)));
	if (a->ns && !*a->ns)
		return cli_usage_error_to(err, "--ns: empty namespace name");
	if (!*a->path)
		return cli_usage_error_to(err, "--control: empty path");
	return -1;
}
