/* SPDX-License-Identifier: MIT */
/*
 * nfq-cni: a chained CNI plugin (INTERFACE.md §7). ADD starts an nfq-agent
 * for the container's network namespace, waits until the broker accepted
 * it and passes the previous result through unchanged; DEL ends that
 * agent's lease; CHECK verifies it is still attached. State lives in
 * <state_dir>/<container id>.json (+ .log, the agent's stderr).
 *
 * The CNI contract: the netconf arrives on stdin, the parameters in CNI_*
 * environment variables, the result or an error object goes to stdout and
 * an error exits non-zero. See docs/cni.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "wire.h"

#define NETCONF_MAX (1u << 20)
#define STATE_MAX (64u << 10)
#define LOG_READ_MAX (256u << 10)
#define DEFAULT_BROKER "/run/nfq-broker/agent.sock"
#define DEFAULT_STATE_DIR "/run/nfq-broker/cni"
#define DEFAULT_ATTACH_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define POLL_MS 20
#define CID_MAX 200

/* CNI error codes: 1-99 are the spec's, the rest are this plugin's. */
enum {
	CNI_ERR_VERSION = 1,      /* incompatible CNI version */
	CNI_ERR_ENV = 4,          /* invalid environment variables */
	CNI_ERR_DECODE = 6,       /* failed to decode the netconf */
	CNI_ERR_NETCONF = 7,      /* invalid network config */
	CNI_ERR_TRY_LATER = 11,   /* the broker is not reachable */
	CNI_ERR_REFUSED = 999,    /* the broker refused the agent */
	CNI_ERR_AGENT = 1000,     /* the agent could not be started or died */
	CNI_ERR_STATE = 1001,     /* the state directory or files failed */
	CNI_ERR_NOT_ATTACHED = 1002, /* CHECK: no agent, not running, not attached */
};

static const char *const supported_versions[] = { "0.4.0", "1.0.0", NULL };

struct cni_err {
	int code;
	char msg[1024];
	char details[1024];
};

struct conf {
	struct json_object *root;
	const char *version;       /* one of supported_versions */
	const char *broker;
	const char *agent;         /* NULL: beside nfq-cni, then PATH */
	const char *state_dir;
	int attach_timeout_ms;
	struct json_object *prev;  /* prevResult (borrowed from root), or NULL */
};

struct env {
	const char *command;
	const char *cid;
	const char *netns;
	const char *ifname;
	char name[WIRE_NAME_MAX];
};

struct state {
	pid_t pid;
	unsigned long long start;  /* process start time: pids get reused */
	char name[WIRE_NAME_MAX];
	char netns[PATH_MAX];
};

struct paths {
	char state[PATH_MAX];
	char log[PATH_MAX];
};

static int set_err(struct cni_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fill @e (the first error wins) and return -EINVAL for the caller to pass up. */
static int set_err(struct cni_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e->code)
		return -EINVAL;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void set_details(struct cni_err *e, const char *s)
{
	snprintf(e->details, sizeof(e->details), "%s", s ? s : "");
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
}

/* The CNI error object on stdout; the exit status is the caller's. */
static void print_error(const struct cni_err *e, const char *version)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "cniVersion", json_object_new_string(version));
	json_object_object_add(o, "code", json_object_new_int(e->code));
	json_object_object_add(o, "msg", json_object_new_string(e->msg));
	if (e->details[0])
		json_object_object_add(o, "details", json_object_new_string(e->details));
	print_json(o);
	json_object_put(o);
}

static void print_version(void)
{
	struct json_object *o = json_object_new_object();
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; supported_versions[i]; i++)
		json_object_array_add(a, json_object_new_string(supported_versions[i]));
	json_object_object_add(o, "cniVersion", json_object_new_string("1.0.0"));
	json_object_object_add(o, "supportedVersions", a);
	print_json(o);
	json_object_put(o);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Read at most @max bytes of @fd into a NUL-terminated allocation. Returns
 * the length, -EFBIG when there is more, or a negative errno. */
static ssize_t read_all(int fd, size_t max, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			char *nb;

			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			free(buf);
			return n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

static ssize_t read_file(const char *path, size_t max, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read_all(fd, max, out);
	close(fd);
	return n;
}

/* ------------------------------------------------------------------ netconf */

static int conf_string(struct json_object *root, const char *key, const char *def,
		       const char **out, struct cni_err *e)
{
	struct json_object *v;

	*out = def;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return set_err(e, CNI_ERR_NETCONF, "netconf.%s: must be a string", key);
	*out = json_object_get_string(v);
	if (!**out)
		return set_err(e, CNI_ERR_NETCONF, "netconf.%s: must not be empty", key);
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return set_err(e, CNI_ERR_NETCONF, "netconf.%s: contains a NUL byte", key);
	return 0;
}

static int conf_version(struct conf *c, struct cni_err *e)
{
	const char *v;

	if (conf_string(c->root, "cniVersion", NULL, &v, e) < 0)
		return -EINVAL;
	if (!v)
		return set_err(e, CNI_ERR_NETCONF, "netconf.cniVersion: missing");
	for (size_t i = 0; supported_versions[i]; i++) {
		if (strcmp(v, supported_versions[i]) == 0) {
			c->version = supported_versions[i];
			return 0;
		}
	}
	set_err(e, CNI_ERR_VERSION, "netconf.cniVersion: version \"%.64s\" not supported", v);
	set_details(e, "supported versions: 0.4.0, 1.0.0");
	return -EINVAL;
}

static int conf_keys(struct conf *c, struct cni_err *e)
{
	struct json_object *v;

	if (conf_string(c->root, "broker", DEFAULT_BROKER, &c->broker, e) < 0 ||
	    conf_string(c->root, "agent", NULL, &c->agent, e) < 0 ||
	    conf_string(c->root, "state_dir", DEFAULT_STATE_DIR, &c->state_dir, e) < 0)
		return -EINVAL;
	if (c->broker[0] != '/')
		return set_err(e, CNI_ERR_NETCONF, "netconf.broker: \"%.256s\" is not an absolute path",
			       c->broker);
	if (strlen(c->broker) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return set_err(e, CNI_ERR_NETCONF, "netconf.broker: path longer than %zu bytes",
			       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (c->state_dir[0] != '/')
		return set_err(e, CNI_ERR_NETCONF, "netconf.state_dir: \"%.256s\" is not an absolute path",
			       c->state_dir);
	if (strlen(c->state_dir) > PATH_MAX - CID_MAX - 16)
		return set_err(e, CNI_ERR_NETCONF, "netconf.state_dir: path too long");
	c->attach_timeout_ms = DEFAULT_ATTACH_TIMEOUT_MS;
	if (json_object_object_get_ex(c->root, "attach_timeout_ms", &v)) {
		int64_t ms = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || ms < 100 || ms > 600000)
			return set_err(e, CNI_ERR_NETCONF,
				       "netconf.attach_timeout_ms: must be an integer 100-600000");
		c->attach_timeout_ms = (int)ms;
	}
	if (json_object_object_get_ex(c->root, "prevResult", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_object))
			return set_err(e, CNI_ERR_NETCONF, "netconf.prevResult: must be an object");
		c->prev = v;
	}
	return 0;
}

/* Parse and check the netconf; on failure @e says why (and c->version is
 * set once the version is known, for the error object). */
static int conf_parse(struct conf *c, const char *buf, size_t len, struct cni_err *e)
{
	struct json_tokener *tok = json_tokener_new();
	size_t end;

	if (!tok)
		return set_err(e, CNI_ERR_DECODE, "netconf: out of memory");
	c->root = json_tokener_parse_ex(tok, buf, (int)len);
	if (!c->root) {
		enum json_tokener_error je = json_tokener_get_error(tok);

		json_tokener_free(tok);
		return set_err(e, CNI_ERR_DECODE, "netconf: invalid JSON: %s",
			       je == json_tokener_continue ? "unexpected end of input" :
			       json_tokener_error_desc(je));
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++) {
		if (!strchr(" \t\r\n", buf[end]))
			return set_err(e, CNI_ERR_DECODE,
				       "netconf: invalid JSON: trailing data at offset %zu", end);
	}
	if (!json_object_is_type(c->root, json_type_object))
		return set_err(e, CNI_ERR_DECODE, "netconf: not a JSON object");
	if (conf_version(c, e) < 0)
		return -EINVAL;
	return conf_keys(c, e);
}

static int conf_read(struct conf *c, struct cni_err *e)
{
	char *buf = NULL;
	ssize_t n = read_all(STDIN_FILENO, NETCONF_MAX, &buf);
	int ret;

	if (n == -EFBIG)
		return set_err(e, CNI_ERR_DECODE, "netconf: larger than %u bytes", NETCONF_MAX);
	if (n < 0)
		return set_err(e, CNI_ERR_DECODE, "netconf: reading stdin: %s", strerror((int)-n));
	ret = conf_parse(c, buf, (size_t)n, e);
	free(buf);
	return ret;
}

/* ------------------------------------------------------------------ environment */

static bool cid_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z');

		/* The spec's rule, which also keeps the id a safe file name. */
		if (!alnum && (i == 0 || !strchr("_.-", ch)))
			return false;
	}
	return true;
}

static const char *env_get(const char *key)
{
	const char *v = getenv(key);

	return v && *v ? v : NULL;
}

/* Pick K8S_POD_NAMESPACE and K8S_POD_NAME out of "K=V;K=V". */
static int parse_args(const char *args, char *ns, char *pod, size_t len, struct cni_err *e)
{
	const char *p = args;

	ns[0] = pod[0] = '\0';
	while (p && *p) {
		const char *semi = strchr(p, ';');
		size_t n = semi ? (size_t)(semi - p) : strlen(p);
		const char *eq = memchr(p, '=', n);

		if (n > 0) {
			size_t klen = eq ? (size_t)(eq - p) : 0, vlen = eq ? n - klen - 1 : 0;
			char *dst = NULL;

			if (!eq || klen == 0)
				return set_err(e, CNI_ERR_ENV, "CNI_ARGS: \"%.*s\" is not KEY=VALUE",
					       (int)(n > 128 ? 128 : n), p);
			if (klen == 17 && memcmp(p, "K8S_POD_NAMESPACE", 17) == 0)
				dst = ns;
			else if (klen == 12 && memcmp(p, "K8S_POD_NAME", 12) == 0)
				dst = pod;
			if (dst) {
				if (vlen >= len)
					return set_err(e, CNI_ERR_ENV, "CNI_ARGS: %.*s: value too long",
						       (int)klen, p);
				memcpy(dst, eq + 1, vlen);
				dst[vlen] = '\0';
			}
		}
		p = semi ? semi + 1 : NULL;
	}
	return 0;
}

static int name_check(const char *name, struct cni_err *e)
{
	size_t len = strlen(name);

	if (len >= WIRE_NAME_MAX)
		return set_err(e, CNI_ERR_ENV, "agent name is longer than %d bytes",
			       WIRE_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++) {
		if (!wire_name_char_ok((unsigned char)name[i]))
			return set_err(e, CNI_ERR_ENV,
				       "agent name \"%.320s\" has invalid character 0x%02x at offset %zu",
				       name, (unsigned char)name[i], i);
	}
	return 0;
}

/* The agent's name: "<K8S_POD_NAMESPACE>/<K8S_POD_NAME>", else the container id. */
static int env_name(struct env *v, struct cni_err *e)
{
	char ns[WIRE_NAME_MAX], pod[WIRE_NAME_MAX];
	const char *args = env_get("CNI_ARGS");

	if (parse_args(args, ns, pod, sizeof(ns), e) < 0)
		return -EINVAL;
	if (ns[0] && pod[0]) {
		size_t nl = strlen(ns), pl = strlen(pod);

		if (nl + 1 + pl >= sizeof(v->name))
			return set_err(e, CNI_ERR_ENV, "CNI_ARGS: K8S_POD_NAMESPACE/K8S_POD_NAME: "
				       "longer than %d bytes", WIRE_NAME_MAX - 1);
		memcpy(v->name, ns, nl);
		v->name[nl] = '/';
		memcpy(v->name + nl + 1, pod, pl + 1);
	} else {
		snprintf(v->name, sizeof(v->name), "%s", v->cid);
	}
	return name_check(v->name, e);
}

static int env_read(struct env *v, struct cni_err *e)
{
	bool del = strcmp(v->command, "DEL") == 0;

	v->cid = env_get("CNI_CONTAINERID");
	v->netns = env_get("CNI_NETNS");
	v->ifname = env_get("CNI_IFNAME");
	if (!v->cid)
		return set_err(e, CNI_ERR_ENV, "CNI_CONTAINERID is not set");
	if (!cid_ok(v->cid))
		return set_err(e, CNI_ERR_ENV, "CNI_CONTAINERID: \"%.256s\" is not a valid container id",
			       v->cid);
	/* DEL must work with what is left: the namespace may be gone. */
	if (del)
		return 0;
	if (!v->netns)
		return set_err(e, CNI_ERR_ENV, "CNI_NETNS is not set");
	if (v->netns[0] != '/' || strlen(v->netns) >= PATH_MAX)
		return set_err(e, CNI_ERR_ENV, "CNI_NETNS: \"%.256s\" is not an absolute path",
			       v->netns);
	if (!v->ifname)
		return set_err(e, CNI_ERR_ENV, "CNI_IFNAME is not set");
	return env_name(v, e);
}

/* ------------------------------------------------------------------ processes */

/* Start time (clock ticks after boot) and state letter of @pid. */
static int proc_stat(pid_t pid, unsigned long long *start, char *st)
{
	char path[64], *buf = NULL, *p;
	unsigned long long val = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_file(path, 4096, &buf);
	if (n < 0)
		return (int)n;
	/* The command name may hold spaces and parentheses: count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2]) {
		free(buf);
		return -EINVAL;
	}
	*st = p[2];
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		val = strtoull(p, NULL, 10);
	free(buf);
	if (!p)
		return -EINVAL;
	*start = val;
	return 0;
}

/* Whether argv of @pid holds "--name NAME": a check that the pid is our agent. */
static bool proc_has_name(pid_t pid, const char *name)
{
	char path[64], *buf = NULL;
	ssize_t n;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_file(path, 64 << 10, &buf);
	if (n < 0)
		return false;
	for (const char *p = buf; p < buf + n; p += strlen(p) + 1) {
		if (strcmp(p, "--name") == 0 && p + strlen(p) + 1 < buf + n) {
			found = strcmp(p + strlen(p) + 1, name) == 0;
			break;
		}
	}
	free(buf);
	return found;
}

/* Whether the agent recorded in @s still runs (not a zombie, same process). */
static bool agent_alive(const struct state *s)
{
	unsigned long long start;
	char st;

	if (s->pid <= 0 || proc_stat(s->pid, &start, &st) < 0)
		return false;
	return start == s->start && st != 'Z' && st != 'X' && proc_has_name(s->pid, s->name);
}

/* SIGTERM the recorded agent (it says bye to the broker), SIGKILL after
 * STOP_TIMEOUT_MS. It is not our child: watch /proc until it is gone. */
static void agent_stop(const struct state *s)
{
	long long end = now_ms() + STOP_TIMEOUT_MS;

	if (!agent_alive(s))
		return;
	kill(s->pid, SIGTERM);
	while (now_ms() < end) {
		sleep_ms(POLL_MS);
		if (!agent_alive(s))
			return;
	}
	if (agent_alive(s))
		kill(s->pid, SIGKILL);
}

/* End our own child: SIGTERM, SIGKILL after a second, reaped either way. */
static void child_stop(pid_t pid)
{
	long long end = now_ms() + 1000;
	int st;

	kill(pid, SIGTERM);
	while (now_ms() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		sleep_ms(POLL_MS);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

static int exec_ok(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	return access(path, X_OK) < 0 ? -errno : 0;
}

static int search_path(const char *prog, char *out, size_t outlen)
{
	const char *path = getenv("PATH");

	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		if (n > 0 && snprintf(out, outlen, "%.*s/%s", (int)n, path, prog) < (int)outlen &&
		    exec_ok(out) == 0)
			return 0;
		path = colon ? colon + 1 : NULL;
	}
	return -ENOENT;
}

/* The agent program: netconf "agent", else beside this binary, else PATH. */
static int find_agent(const struct conf *c, char *out, size_t outlen, struct cni_err *e)
{
	char self[PATH_MAX];
	ssize_t n;
	int ret;

	if (c->agent && strchr(c->agent, '/')) {
		ret = exec_ok(c->agent);
		if (ret < 0)
			return set_err(e, CNI_ERR_NETCONF, "netconf.agent: %.512s: %s", c->agent,
				       strerror(-ret));
		snprintf(out, outlen, "%s", c->agent);
		return 0;
	}
	if (c->agent) {
		if (search_path(c->agent, out, outlen) < 0)
			return set_err(e, CNI_ERR_NETCONF, "netconf.agent: %.256s: not found in PATH",
				       c->agent);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(out, outlen, "%s/nfq-agent", self) < (int)outlen &&
			    exec_ok(out) == 0)
				return 0;
		}
	}
	if (search_path("nfq-agent", out, outlen) == 0)
		return 0;
	return set_err(e, CNI_ERR_AGENT, "nfq-agent not found beside nfq-cni (%.256s) or in PATH",
		       n > 0 ? self : "?");
}

/* Child side of agent_spawn: only async-signal-safe calls from here on. */
static void __attribute__((noreturn))
child_exec(const char *prog, char *const argv[], int devnull, int logfd, int errpipe)
{
	sigset_t none;
	int err;

	/* Its own session: the runtime's terminal, process group and
	 * signals aimed at them are not the agent's. */
	setsid();
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0 ||
	    dup2(logfd, STDERR_FILENO) < 0)
		goto fail;
	/* Our stdout is the runtime's pipe: an agent holding any fd of ours
	 * would keep the runtime waiting for EOF. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (chdir("/") < 0)
		goto fail;
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(prog, argv);
fail:
	err = errno;
	if (write(errpipe, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

/* Start @prog detached, stderr to @logfd. The agent stays our child while
 * ADD waits (so its exit status is ours to read) and passes to init when
 * nfq-cni exits. Returns the pid or a negative errno (exec failure included). */
static pid_t agent_spawn(const char *prog, char *const argv[], int logfd)
{
	int devnull = -1, p[2] = { -1, -1 }, err = 0, st;
	pid_t pid = -1;
	ssize_t n;

	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || pipe2(p, O_CLOEXEC) < 0) {
		err = -errno;
		goto fail;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto fail;
	}
	if (pid == 0)
		child_exec(prog, argv, devnull, logfd, p[1]);
	close(p[1]);
	p[1] = -1;
	/* EOF: exec succeeded (the pipe closed on exec); else its errno. */
	do
		n = read(p[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(err)) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		err = -err;
		goto fail;
	}
	err = 0;
fail:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (devnull >= 0)
		close(devnull);
	return err < 0 ? err : pid;
}

/* ------------------------------------------------------------------ state */

static int paths_init(struct paths *p, const struct conf *c, const char *cid)
{
	if (snprintf(p->state, sizeof(p->state), "%s/%s.json", c->state_dir, cid) >=
	    (int)sizeof(p->state) ||
	    snprintf(p->log, sizeof(p->log), "%s/%s.log", c->state_dir, cid) >= (int)sizeof(p->log))
		return -ENAMETOOLONG;
	return 0;
}

/* mkdir -p; the last component 0700 (it holds pids and logs). */
static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int state_write(const char *path, const struct state *s, const char *ifname)
{
	struct json_object *o = json_object_new_object();
	char tmp[PATH_MAX + 8];
	const char *txt;
	int fd = -1, ret = 0;
	size_t len;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	json_object_object_add(o, "starttime", json_object_new_uint64(s->start));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "netns", json_object_new_string(s->netns));
	json_object_object_add(o, "ifname", json_object_new_string(ifname ? ifname : ""));
	txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					     JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(txt);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* A torn file would leave DEL unable to find the agent: write, then rename. */
	if (write(fd, txt, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		ret = errno ? -errno : -EIO;
		unlink(tmp);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		ret = -errno;
		unlink(tmp);
	}
fail:
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	return ret;
}

/* Returns 0, -ENOENT when there is no state, -EINVAL when it is unreadable. */
static int state_read(const char *path, struct state *s)
{
	struct json_object *o = NULL, *v;
	char *buf = NULL;
	ssize_t n = read_file(path, STATE_MAX, &buf);
	int ret = -EINVAL;

	memset(s, 0, sizeof(*s));
	if (n < 0)
		return n == -ENOENT ? -ENOENT : -EINVAL;
	o = json_tokener_parse(buf);
	free(buf);
	if (!o || !json_object_is_type(o, json_type_object))
		goto fail;
	if (!json_object_object_get_ex(o, "pid", &v) || !json_object_is_type(v, json_type_int))
		goto fail;
	s->pid = (pid_t)json_object_get_int(v);
	if (!json_object_object_get_ex(o, "starttime", &v) || !json_object_is_type(v, json_type_int))
		goto fail;
	s->start = json_object_get_uint64(v);
	if (!json_object_object_get_ex(o, "name", &v) || !json_object_is_type(v, json_type_string))
		goto fail;
	snprintf(s->name, sizeof(s->name), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "netns", &v) && json_object_is_type(v, json_type_string))
		snprintf(s->netns, sizeof(s->netns), "%s", json_object_get_string(v));
	ret = s->pid > 0 ? 0 : -EINVAL;
fail:
	json_object_put(o);
	return ret;
}

static void state_remove(const struct paths *p)
{
	unlink(p->state);
	unlink(p->log);
}

/* Copy the last non-empty line of @text holding @prefix (NULL: any) after
 * the prefix into @out. Returns whether one was found. */
static bool last_line(const char *text, const char *prefix, char *out, size_t outlen)
{
	const char *found = NULL, *p = text;
	size_t plen = prefix ? strlen(prefix) : 0, n;

	while (p && *p) {
		const char *nl = strchr(p, '\n');

		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0 && (!prefix || (n >= plen && memcmp(p, prefix, plen) == 0)))
			found = p;
		p = nl ? nl + 1 : NULL;
	}
	if (!found)
		return false;
	found += plen;
	n = strcspn(found, "\n");
	snprintf(out, outlen, "%.*s", (int)(n >= outlen ? outlen - 1 : n), found);
	return true;
}

/* Whether the agent's newest lease event in its log is "attached". */
static bool log_attached(const char *text)
{
	const char *last = NULL;

	for (const char *p = text; (p = strstr(p, "event=")); p++) {
		if (p != text && p[-1] != '\n')
			continue;
		if (strncmp(p, "event=attached ", 15) == 0 || strncmp(p, "event=lease_lost ", 17) == 0 ||
		    strncmp(p, "event=retry ", 12) == 0 || strncmp(p, "event=refused ", 14) == 0)
			last = p;
	}
	return last && strncmp(last, "event=attached ", 15) == 0;
}

/* ------------------------------------------------------------------ commands */

static void print_result(const struct conf *c)
{
	struct json_object *o;

	if (!c->prev) {
		o = json_object_new_object();
		json_object_object_add(o, "cniVersion", json_object_new_string(c->version));
		print_json(o);
		json_object_put(o);
		return;
	}
	/* A chained plugin that changes nothing passes its input on. */
	if (!json_object_object_get_ex(c->prev, "cniVersion", NULL))
		json_object_object_add(c->prev, "cniVersion", json_object_new_string(c->version));
	print_json(c->prev);
}

/* The agent exited during ADD: say why, from its exit status and log. */
static int add_failed(const struct paths *p, const char *prog, int status, struct cni_err *e)
{
	char *log = NULL, line[1024];
	bool refused;

	if (read_file(p->log, LOG_READ_MAX, &log) < 0)
		log = NULL;
	refused = log && last_line(log, "nfq-agent: refused: ", line, sizeof(line));
	if (refused) {
		set_err(e, CNI_ERR_REFUSED, "broker refused the agent: %s", line);
	} else {
		if (WIFEXITED(status))
			set_err(e, CNI_ERR_AGENT, "nfq-agent (%.512s) exited with status %d", prog,
				WEXITSTATUS(status));
		else
			set_err(e, CNI_ERR_AGENT, "nfq-agent (%.512s) killed by signal %d", prog,
				WTERMSIG(status));
		if (log && last_line(log, NULL, line, sizeof(line)))
			set_details(e, line);
	}
	free(log);
	return -EINVAL;
}

/* Wait for "event=attached" in the log. Returns 1 attached, 0 exited
 * (@status set), -ETIMEDOUT. */
static int add_wait(pid_t pid, const char *logpath, int timeout_ms, int *status)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		char *log = NULL;
		bool up = false;

		if (read_file(logpath, LOG_READ_MAX, &log) >= 0) {
			up = log_attached(log);
			free(log);
		}
		if (up)
			return 1;
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		sleep_ms(POLL_MS);
	}
}

static int add_timeout(const struct conf *c, const struct paths *p, struct cni_err *e)
{
	char *log = NULL, line[1024];

	set_err(e, CNI_ERR_TRY_LATER, "broker not reachable at %.512s within %d ms", c->broker,
		c->attach_timeout_ms);
	if (read_file(p->log, LOG_READ_MAX, &log) >= 0 && last_line(log, NULL, line, sizeof(line)))
		set_details(e, line);
	free(log);
	return -ETIMEDOUT;
}

/* An agent already recorded for this container: reuse it when it serves
 * the same namespace under the same name, else end it. Returns 1 to reuse. */
static int add_existing(const struct paths *p, const struct env *v)
{
	struct state old;

	if (state_read(p->state, &old) < 0)
		return 0;
	if (agent_alive(&old) && strcmp(old.name, v->name) == 0 && strcmp(old.netns, v->netns) == 0)
		return 1;
	agent_stop(&old);
	state_remove(p);
	return 0;
}

static int cmd_add(const struct conf *c, const struct env *v, struct cni_err *e)
{
	char prog[PATH_MAX];
	char *argv[] = { prog, "--broker", (char *)c->broker, "--name", (char *)v->name,
			 "--netns", (char *)v->netns, NULL };
	struct state s = { 0 };
	struct paths p;
	int logfd = -1, ret, status = 0;
	char st;

	if (find_agent(c, prog, sizeof(prog), e) < 0)
		return -EINVAL;
	if (paths_init(&p, c, v->cid) < 0)
		return set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	ret = mkdir_p(c->state_dir);
	if (ret < 0)
		return set_err(e, CNI_ERR_STATE, "state_dir %.512s: %s", c->state_dir, strerror(-ret));
	if (add_existing(&p, v) == 1) {
		print_result(c);
		return 0;
	}
	logfd = open(p.log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return set_err(e, CNI_ERR_STATE, "%.512s: %s", p.log, strerror(errno));
	s.pid = agent_spawn(prog, argv, logfd);
	close(logfd);
	if (s.pid < 0) {
		unlink(p.log);
		return set_err(e, CNI_ERR_AGENT, "cannot run nfq-agent %.512s: %s", prog,
			       strerror(-s.pid));
	}
	snprintf(s.name, sizeof(s.name), "%s", v->name);
	snprintf(s.netns, sizeof(s.netns), "%s", v->netns);
	/* Recorded before the wait: a runtime that gives up on ADD calls DEL. */
	ret = proc_stat(s.pid, &s.start, &st);
	if (ret == 0)
		ret = state_write(p.state, &s, v->ifname);
	if (ret < 0) {
		child_stop(s.pid);
		state_remove(&p);
		return set_err(e, CNI_ERR_STATE, "%.512s: %s", p.state, strerror(-ret));
	}
	ret = add_wait(s.pid, p.log, c->attach_timeout_ms, &status);
	if (ret == 1) {
		print_result(c);
		return 0;
	}
	if (ret == 0)
		add_failed(&p, prog, status, e);
	else {
		/* The agent's last retry says why, before its exit line. */
		add_timeout(c, &p, e);
		child_stop(s.pid);
	}
	state_remove(&p);
	return -EINVAL;
}

static int cmd_del(const struct conf *c, const struct env *v, struct cni_err *e)
{
	struct state s;
	struct paths p;
	int ret;

	if (paths_init(&p, c, v->cid) < 0)
		return set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	ret = state_read(p.state, &s);
	/* Idempotent: nothing recorded, or a record that names no live
	 * process, leaves nothing to end. An unreadable record cannot name
	 * one safely either: dropping it keeps DEL from failing forever. */
	if (ret == 0)
		agent_stop(&s);
	state_remove(&p);
	return 0;
}

static int cmd_check(const struct conf *c, const struct env *v, struct cni_err *e)
{
	char *log = NULL, line[1024];
	struct state s;
	struct paths p;
	bool up;
	int ret;

	if (paths_init(&p, c, v->cid) < 0)
		return set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	ret = state_read(p.state, &s);
	if (ret == -ENOENT)
		return set_err(e, CNI_ERR_NOT_ATTACHED, "no agent recorded for container %s", v->cid);
	if (ret < 0)
		return set_err(e, CNI_ERR_STATE, "%.512s: unreadable state", p.state);
	if (!agent_alive(&s))
		return set_err(e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not running",
			       v->cid, (int)s.pid);
	if (strcmp(s.netns, v->netns) != 0)
		return set_err(e, CNI_ERR_NOT_ATTACHED,
			       "agent for container %s serves %.512s, not CNI_NETNS %.512s",
			       v->cid, s.netns, v->netns);
	if (read_file(p.log, LOG_READ_MAX, &log) < 0)
		log = NULL;
	up = log && log_attached(log);
	if (!up) {
		set_err(e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not attached to the broker",
			v->cid, (int)s.pid);
		if (log && last_line(log, NULL, line, sizeof(line)))
			set_details(e, line);
	}
	free(log);
	return up ? 0 : -EINVAL;
}

static void usage(void)
{
	printf("Usage: nfq-cni (run by a CNI runtime)\n"
	       "\n"
	       "Chained CNI plugin: ADD starts an nfq-agent for CNI_NETNS, DEL ends its\n"
	       "lease, CHECK verifies it is attached, VERSION lists the spec versions.\n"
	       "The netconf comes on stdin; keys: broker, agent, state_dir,\n"
	       "attach_timeout_ms. See docs/cni.md.\n"
	       "\n"
	       "  -h, --help     show this help\n"
	       "  -V, --version  show the version\n");
}

int main(int argc, char **argv)
{
	struct conf c = { .version = "1.0.0" };
	struct env v = { 0 };
	struct cni_err e = { 0 };
	int ret;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage();
		return 0;
	}
	if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("nfq-cni %s\n", NFQB_VERSION_STRING);
		return 0;
	}
	/* A write to a runtime that stopped reading must not kill us silently. */
	signal(SIGPIPE, SIG_IGN);
	v.command = env_get("CNI_COMMAND");
	if (!v.command) {
		set_err(&e, CNI_ERR_ENV, "CNI_COMMAND is not set");
		goto fail;
	}
	if (strcmp(v.command, "VERSION") == 0) {
		print_version();
		return 0;
	}
	if (strcmp(v.command, "ADD") && strcmp(v.command, "DEL") && strcmp(v.command, "CHECK")) {
		set_err(&e, CNI_ERR_ENV, "CNI_COMMAND: unknown command \"%.64s\"", v.command);
		set_details(&e, "supported: ADD, DEL, CHECK, VERSION");
		goto fail;
	}
	if (conf_read(&c, &e) < 0 || env_read(&v, &e) < 0)
		goto fail;
	if (strcmp(v.command, "ADD") == 0)
		ret = cmd_add(&c, &v, &e);
	else if (strcmp(v.command, "DEL") == 0)
		ret = cmd_del(&c, &v, &e);
	else
		ret = cmd_check(&c, &v, &e);
	if (ret < 0)
		goto fail;
	json_object_put(c.root);
	return 0;
fail:
	print_error(&e, c.version);
	json_object_put(c.root);
	return 1;
}
