/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl's logic, apart from main() so tests/test-ctl.c can link it: the
 * arguments (checked against the command table proto/ctlcmd.c, which also
 * gives the usage text), the request, the printing of the reply and the
 * watch stream. Tables and event lines are render.c's; top is top.c.
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
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "ctl.h"
#include "ctlcmd.h"
#include "render.h"

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

static int ctl_connect(const char *path, int *fdp, bool quiet)
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
		return fail_if(quiet, "cannot connect to %s: %s", path, ctl_connect_reason(err));
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

const char *const ctl_filter_keys[CTL_NFILTERS] = {
	"verdict", "policy", "rule", "proto", "port", "addr",
};

/* Commands nfq-ctl runs itself (on top of the broker's), for usage and checks. */
static const struct ctlcmd local_cmds[] = {
	{ "top", CTLCMD_READ, { NULL }, "[-d SECONDS] [--once]",
	  "live view of the busiest namespaces and rules (q quits)" },
};
#define NLOCAL (sizeof(local_cmds) / sizeof(local_cmds[0]))

static const struct ctlcmd *find_cmd(const char *name)
{
	const struct ctlcmd *c = ctlcmd_find(name);

	for (size_t i = 0; !c && i < NLOCAL; i++)
		if (strcmp(local_cmds[i].name, name) == 0)
			c = &local_cmds[i];
	return c;
}

int ctl_request(const char *path, json_object *req, json_object **reply, bool quiet)
{
	char *line = NULL, *rest = NULL;
	const char *s;
	size_t restlen = 0, len = 0;
	json_object *ok;
	int fd = -1, rc, serr;

	*reply = NULL;
	rc = ctl_connect(path, &fd, quiet);
	if (rc)
		return rc;
	s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
	serr = send_all(fd, s, len);
	if (serr == 0)
		serr = send_all(fd, "\n", 1);
	rc = read_line(fd, path, &line, &rest, &restlen, quiet || serr != 0);
	if (rc && serr)
		rc = fail_if(quiet, "%s: cannot send the request: %s", path, strerror(-serr));
	if (rc)
		goto out;
	*reply = json_tokener_parse(line);
	if (!*reply || !json_object_is_type(*reply, json_type_object) ||
	    !json_object_object_get_ex(*reply, "ok", &ok)) {
		json_object_put(*reply);
		*reply = NULL;
		rc = fail_if(quiet, "%s: malformed reply from the broker: %.200s", path, line);
	}
out:
	free(line);
	free(rest);
	close(fd);
	return rc;
}

/* The watch request of @a: its filters as request keys. */
static json_object *watch_request(const struct ctl_args *a)
{
	json_object *req = json_object_new_object();

	if (!req)
		return NULL;
	json_object_object_add(req, "cmd", json_object_new_string("watch"));
	if (a->ns)
		json_object_object_add(req, "ns", json_object_new_string(a->ns));
	for (size_t i = 0; i < CTL_NFILTERS; i++)
		if (a->filter[i])
			json_object_object_add(req, ctl_filter_keys[i],
					       json_object_new_string(a->filter[i]));
	return req;
}

/* Where a watch stands: events so far, the partial line carried over. */
struct watch_state {
	const struct ctl_args *a;
	unsigned long long events;
	char *buf;                    /* one line at most WATCH_LINE_MAX */
	size_t len;
};
#define WATCH_LINE_MAX 65536

enum {
	WATCH_MORE = -1,          /* go on; from a stream: the broker closed it */
	WATCH_RETRY = -2,         /* no watch started (connect or reply failed, said unless quiet) */
};

/* One event line (no newline): printed as @a's output asks. */
static int watch_line(struct watch_state *w, char *line, size_t n)
{
	bool lost = strncmp(line, "{\"lost\"", 7) == 0;

	if (!n)
		return WATCH_MORE;
	if (w->a->output == CTL_OUT_TEXT) {
		json_object *ev = json_tokener_parse(line);

		if (!ev || render_event(stdout, ev) < 0)
			fprintf(stdout, "?? %.200s\n", line);
		json_object_put(ev);
	} else {
		line[n] = '\n';
		if (write_all(STDOUT_FILENO, line, n + 1) < 0)
			return errno == EPIPE ? 0 : fail("cannot write to stdout: %s", strerror(errno));
	}
	if (!lost && w->a->count && ++w->events >= w->a->count)
		return 0;
	return WATCH_MORE;
}

/* Split @n received bytes into lines; WATCH_MORE or the exit status. */
static int watch_feed(struct watch_state *w, const char *data, size_t n)
{
	int rc = WATCH_MORE;

	for (size_t i = 0; i < n && rc == WATCH_MORE; i++) {
		if (data[i] == '\n') {
			rc = watch_line(w, w->buf, w->len);
			w->len = 0;
		} else if (w->len + 1 < WATCH_LINE_MAX) {
			w->buf[w->len++] = data[i];
		}
	}
	if (w->a->output == CTL_OUT_TEXT && fflush(stdout) == EOF)
		return errno == EPIPE ? 0 : fail("cannot write to stdout: %s", strerror(errno));
	return rc;
}

/* Events until a signal (0), --count (0), an error, or the end (WATCH_MORE). */
static int watch_stream(struct watch_state *w, int fd, const char *rest, size_t restlen)
{
	char buf[65536];
	int rc = watch_feed(w, rest, restlen);

	while (rc == WATCH_MORE && !ctl_stop_signal) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("%s: %s", w->a->path, strerror(errno));
		if (n == 0)
			return WATCH_MORE;
		rc = watch_feed(w, buf, (size_t)n);
	}
	return rc == WATCH_MORE ? 0 : rc;
}

/* Sleep @ms unless a signal comes first. */
static void nap(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	if (!ctl_stop_signal)
		nanosleep(&ts, NULL);
}

/*
 * One watch connection: WATCH_MORE when the broker ended the stream,
 * WATCH_RETRY when none began, else the exit status.
 */
static int watch_once(struct watch_state *w, json_object *req, bool quiet)
{
	char *line = NULL, *rest = NULL;
	json_object *reply = NULL, *ok = NULL;
	const char *s;
	size_t restlen = 0, len = 0;
	int fd = -1, rc, serr;

	rc = ctl_connect(w->a->path, &fd, quiet);
	if (rc)
		return WATCH_RETRY;
	s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
	serr = send_all(fd, s, len);
	if (serr == 0)
		serr = send_all(fd, "\n", 1);
	rc = read_line(fd, w->a->path, &line, &rest, &restlen, quiet);
	if (rc) {
		rc = WATCH_RETRY;
		goto out;
	}
	reply = json_tokener_parse(line);
	if (!reply || !json_object_is_type(reply, json_type_object) ||
	    !json_object_object_get_ex(reply, "ok", &ok)) {
		rc = fail("%s: malformed reply from the broker: %.200s", w->a->path, line);
		goto out;
	}
	if (!json_object_get_boolean(ok)) {
		/* A bad filter or no grant: asking again would not help. */
		rc = ctl_print_reply(STDOUT_FILENO, stderr, "watch", reply, false);
		goto out;
	}
	rc = watch_stream(w, fd, rest, restlen);
out:
	json_object_put(reply);
	free(line);
	free(rest);
	close(fd);
	return rc;
}

/*
 * watch: the broker going away is an error (status 1) unless --reconnect,
 * which tries again every second until a signal.
 */
static int run_watch(const struct ctl_args *a)
{
	struct watch_state w = { .a = a, .buf = malloc(WATCH_LINE_MAX + 1) };
	json_object *req = watch_request(a);
	bool retrying = false;
	int rc = CTL_EXIT_RUNTIME;

	if (!w.buf || !req) {
		rc = fail("out of memory");
		goto out;
	}
	for (;;) {
		w.len = 0;
		rc = watch_once(&w, req, retrying);
		if ((rc != WATCH_MORE && rc != WATCH_RETRY) || ctl_stop_signal)
			break;
		if (!a->reconnect) {
			/* A failed start was reported already; a stream's end is news. */
			rc = rc == WATCH_RETRY ? CTL_EXIT_RUNTIME :
			     fail("watch: the broker closed the connection (%s)", a->path);
			break;
		}
		if (!retrying)
			fprintf(stderr, "nfq-ctl: watch: no broker at %s; reconnecting "
				"every second\n", a->path);
		retrying = true;
		nap(1000);
		if (ctl_stop_signal)
			break;
	}
	if (rc == WATCH_MORE || rc == WATCH_RETRY)
		rc = 0;          /* a signal while reconnecting */
out:
	json_object_put(req);
	free(w.buf);
	return rc;
}

int ctl_run(const struct ctl_args *a)
{
	json_object *req, *reply = NULL, *ok = NULL;
	bool json = a->output == CTL_OUT_JSON || a->output == CTL_OUT_AUTO;
	int rc;

	if (strcmp(a->cmd, "top") == 0)
		return ctl_top(a);
	if (strcmp(a->cmd, "watch") == 0)
		return run_watch(a);
	req = json_object_new_object();
	if (!req)
		return fail("out of memory");
	json_object_object_add(req, "cmd", json_object_new_string(a->cmd));
	rc = ctl_request(a->path, req, &reply, false);
	json_object_put(req);
	if (rc)
		return rc;
	json_object_object_get_ex(reply, "ok", &ok);
	if (json || !json_object_get_boolean(ok) || !render_has_table(a->cmd)) {
		rc = ctl_print_reply(STDOUT_FILENO, stderr, a->cmd, reply, a->pretty > 0);
	} else if (render_table(stdout, a->cmd, reply, a->output == CTL_OUT_WIDE,
				time(NULL)) < 0) {
		rc = fail("%s: the reply has no table to print", a->cmd);
	} else if (fflush(stdout) == EOF && errno != EPIPE) {
		rc = fail("cannot write to stdout: %s", strerror(errno));
	}
	json_object_put(reply);
	return rc;
}

/* "name args" of @c as nfq-ctl's synopsis shows it. */
static const char *synopsis(const struct ctlcmd *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
	return buf;
}

static void command_line(FILE *f, const struct ctlcmd *c)
{
	char syn[64];
	int w = (int)strlen(synopsis(c, syn, sizeof(syn)));

	/* The help column, unless the synopsis is longer. */
	fprintf(f, "  %s%*s%s\n", syn, w < CTL_HELP_COLUMN ? CTL_HELP_COLUMN - w : 2, "",
		c->help);
}

/* Every option: its usage line and the commands it applies to (NULL: all). */
static const struct optdoc {
	const char *line;
	const char *cmds;             /* space-separated, NULL: every command */
} optdocs[] = {
	{ "  -c, --control SOCKET  control socket (default $" CTL_SOCKET_ENV ", else\n"
	  "                        " CTL_DEFAULT_SOCKET ")\n", NULL },
	{ "  -o, --output FORMAT   table or wide (more columns): the default on a terminal;\n"
	  "                        json: the default when piped\n", "agents rules status" },
	{ "  -o, --output FORMAT   text (the default on a terminal) or json (NDJSON, the\n"
	  "                        default when piped)\n", "watch" },
	{ "  -o, --output json     the reply as JSON (the default)\n", "reload metrics" },
	{ "  -p, --pretty          indented JSON (the default on a terminal)\n"
	  "  -C, --compact         one-line JSON (the default when piped)\n",
	  "agents rules status reload metrics" },
	{ "  -n, --ns GLOB         only namespaces matching GLOB (fnmatch: pod-*)\n"
	  "      --verdict V       only accept, drop, repeat or queue\n"
	  "      --policy GLOB     only packets decided by a matching policy\n"
	  "      --rule GLOB       only packets matching a rule (\"(default)\": none)\n"
	  "      --proto P         only tcp, udp, icmp, icmpv6, sctp, ... or a number\n"
	  "      --port N          only packets with N as source or destination port\n"
	  "      --addr CIDR       only packets from or to CIDR (10.0.0.0/8, fd00::1)\n"
	  "      --count N         exit after N events\n"
	  "      --reconnect       when the broker goes away, reconnect (else exit 1)\n",
	  "watch" },
	{ "  -d, --delay SECONDS   refresh period (default 1, 0.1-3600)\n"
	  "      --once            print one frame (rates over one period) and exit\n",
	  "top" },
	{ "  -h, --help            show this help\n", NULL },
};

static bool applies(const char *cmds, const char *cmd)
{
	size_t n = strlen(cmd);

	for (const char *p = cmds; p && (p = strstr(p, cmd)); p += n)
		if ((p == cmds || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return !cmds;
}

void ctl_usage(FILE *f)
{
	fputs("Usage: nfq-ctl [--control SOCKET] COMMAND [OPTIONS]\n"
	      "\n"
	      "Asks the running nfq-broker over its control socket.\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < ctlcmd_count(); i++)
		command_line(f, ctlcmd_at(i));
	for (size_t i = 0; i < NLOCAL; i++)
		command_line(f, &local_cmds[i]);
	fputs("\n"
	      "Options:\n"
	      "  -c, --control SOCKET  control socket (default $" CTL_SOCKET_ENV ", else\n"
	      "                        " CTL_DEFAULT_SOCKET ")\n"
	      "  -o, --output FORMAT   table, wide, json (agents, rules, status); text, json\n"
	      "                        (watch). A terminal gets tables and text, a pipe JSON\n"
	      "  -p, --pretty          indented JSON (the default on a terminal)\n"
	      "  -C, --compact         one-line JSON (the default when piped)\n"
	      "  -h, --help            show this help; after a command, that command's\n"
	      "  -V, --version         show the version\n"
	      "\n"
	      "'nfq-ctl COMMAND --help' lists a command's own options (watch's filters, top's).\n"
	      "Exit status: 0 ok, 1 the broker said no or cannot be reached, 2 usage error.\n", f);
}

void ctl_command_usage(FILE *f, const char *cmd)
{
	const struct ctlcmd *c = find_cmd(cmd);
	char syn[64];

	if (!c)
		return;
	fprintf(f, "Usage: nfq-ctl [OPTIONS] %s\n\n%s.\n", synopsis(c, syn, sizeof(syn)),
		c->help);
	if (c->access == CTLCMD_ADMIN)
		fputs("Needs an admin uid (broker.control_admin_uids).\n", f);
	fputs("\nOptions:\n", f);
	for (size_t i = 0; i < sizeof(optdocs) / sizeof(optdocs[0]); i++)
		if (applies(optdocs[i].cmds, cmd))
			fputs(optdocs[i].line, f);
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

static int parse_output(const char *s, enum ctl_output *o, FILE *err)
{
	static const char *const names[] = { "json", "table", "wide", "text" };

	for (size_t i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*o = (enum ctl_output)(CTL_OUT_JSON + i);
			return -1;
		}
	return cli_usage_error_to(err, "--output: unknown format '%s' (json, table, wide, text)",
				  s);
}

static int parse_delay(const char *s, unsigned *ms, FILE *err)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (!*s || *end || errno || !(d >= 0.1 && d <= 3600))
		return cli_usage_error_to(err, "--delay: '%s' is not a number of seconds "
					  "(0.1-3600)", s);
	*ms = (unsigned)(d * 1000 + 0.5);
	return -1;
}

/* The option-to-command checks, once the command is known. */
static int check_scope(const struct ctl_args *a, const struct ctlcmd *c, bool delay_set,
		       FILE *err)
{
	char names[CTLCMD_NAMES_MAX];
	bool watch = strcmp(c->name, "watch") == 0, top = strcmp(c->name, "top") == 0;

	if (a->ns && !ctlcmd_accepts(c, "ns"))
		return cli_usage_error_to(err, "--ns applies to %s only",
					  commands_with("ns", names, sizeof(names)));
	for (size_t i = 0; i < CTL_NFILTERS; i++)
		if (a->filter[i] && !watch)
			return cli_usage_error_to(err, "--%s applies to watch only",
						  ctl_filter_keys[i]);
	if ((a->count || a->reconnect) && !watch)
		return cli_usage_error_to(err, "--%s applies to watch only",
					  a->count ? "count" : "reconnect");
	if ((delay_set || a->once) && !top)
		return cli_usage_error_to(err, "--%s applies to top only",
					  delay_set ? "delay" : "once");
	if (top && (a->output != CTL_OUT_AUTO || a->pretty >= 0))
		return cli_usage_error_to(err, "top has no --output: it draws a screen "
					  "(--once prints one frame)");
	if ((a->output == CTL_OUT_TABLE || a->output == CTL_OUT_WIDE) &&
	    !render_has_table(c->name))
		return cli_usage_error_to(err, "-o %s applies to agents, rules, status only",
					  a->output == CTL_OUT_TABLE ? "table" : "wide");
	if (a->output == CTL_OUT_TEXT && !watch)
		return cli_usage_error_to(err, "-o text applies to watch only");
	if (a->pretty >= 0 && a->output != CTL_OUT_AUTO && a->output != CTL_OUT_JSON)
		return cli_usage_error_to(err, "--%s is JSON output: not with -o %s",
					  a->pretty ? "pretty" : "compact",
					  a->output == CTL_OUT_TEXT ? "text" :
					  a->output == CTL_OUT_WIDE ? "wide" : "table");
	return -1;
}

int ctl_parse_args(int argc, char **argv, struct ctl_args *a, FILE *out, FILE *err)
{
	enum { OPT_COUNT = 256, OPT_RECONNECT, OPT_ONCE, OPT_FILTER };
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "ns", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "compact", no_argument, NULL, 'C' },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "reconnect", no_argument, NULL, OPT_RECONNECT },
		{ "delay", required_argument, NULL, 'd' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "verdict", required_argument, NULL, OPT_FILTER + 0 },
		{ "policy", required_argument, NULL, OPT_FILTER + 1 },
		{ "rule", required_argument, NULL, OPT_FILTER + 2 },
		{ "proto", required_argument, NULL, OPT_FILTER + 3 },
		{ "port", required_argument, NULL, OPT_FILTER + 4 },
		{ "addr", required_argument, NULL, OPT_FILTER + 5 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *env = getenv(CTL_SOCKET_ENV);
	char names[CTLCMD_NAMES_MAX];
	const struct ctlcmd *c;
	bool help = false, delay_set = false;
	int opt, rc;

	*a = (struct ctl_args){ .path = env && *env ? env : CTL_DEFAULT_SOCKET, .pretty = -1,
				.delay_ms = 1000 };
	cli_set_program("nfq-ctl");   /* usage errors say "nfq-ctl: ..." */
	opterr = 0;
	optind = 0;     /* glibc: start afresh (tests parse many argv) */
	while ((opt = getopt_long(argc, argv, ":c:n:o:d:pChV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->path = optarg;
			break;
		case 'n':
			a->ns = optarg;
			break;
		case 'o':
			if ((rc = parse_output(optarg, &a->output, err)) >= 0)
				return rc;
			break;
		case 'p':
			a->pretty = 1;
			break;
		case 'C':
			a->pretty = 0;
			break;
		case OPT_COUNT: {
			char *end;

			errno = 0;
			a->count = strtoull(optarg, &end, 10);
			if (!*optarg || *end || errno || !a->count || *optarg == '-')
				return cli_usage_error_to(err, "--count: '%s' is not a positive "
							  "number", optarg);
			break;
		}
		case OPT_RECONNECT:
			a->reconnect = true;
			break;
		case 'd':
			if ((rc = parse_delay(optarg, &a->delay_ms, err)) >= 0)
				return rc;
			delay_set = true;
			break;
		case OPT_ONCE:
			a->once = true;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			fprintf(out, "nfq-ctl %s\n", NFQB_VERSION_STRING);
			return 0;
		case ':':
			return cli_usage_error_to(err, "option '%s' needs an argument",
					      argv[optind - 1]);
		default:
			if (opt >= OPT_FILTER && opt < OPT_FILTER + CTL_NFILTERS) {
				if (!*optarg)
					return cli_usage_error_to(err, "--%s: empty value",
								  ctl_filter_keys[opt - OPT_FILTER]);
				a->filter[opt - OPT_FILTER] = optarg;
				break;
			}
			return cli_usage_error_to(err, "unknown option '%s'", argv[optind - 1]);
		}
	}
	ctlcmd_names(names, sizeof(names));
	snprintf(names + strlen(names), sizeof(names) - strlen(names), ", top");
	if (optind < argc)
		a->cmd = argv[optind];
	c = a->cmd ? find_cmd(a->cmd) : NULL;
	if (help && c) {
		ctl_command_usage(out, c->name);
		return 0;
	}
	if (help) {
		ctl_usage(out);
		return 0;
	}
	if (!a->cmd)
		return cli_usage_error_to(err, "missing command (%s)", names);
	if (!c)
		return cli_usage_error_to(err, "unknown command '%s' (%s)", a->cmd, names);
	if (optind + 1 < argc)
		return cli_usage_error_to(err, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = check_scope(a, c, delay_set, err)) >= 0)
		return rc;
	if (a->ns && !*a->ns)
		return cli_usage_error_to(err, "--ns: empty namespace name");
	if (!*a->path)
		return cli_usage_error_to(err, "--control: empty path");
	return -1;
}

void ctl_resolve_output(struct ctl_args *a, bool tty)
{
	if (a->output == CTL_OUT_AUTO && tty && a->pretty < 0) {
		if (render_has_table(a->cmd))
			a->output = CTL_OUT_TABLE;
		else if (strcmp(a->cmd, "watch") == 0)
			a->output = CTL_OUT_TEXT;
	}
	if (a->output == CTL_OUT_AUTO)
		a->output = CTL_OUT_JSON;
	if (a->pretty < 0)
		a->pretty = tty && strcmp(a->cmd, "watch") != 0;
}
