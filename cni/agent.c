/* SPDX-License-Identifier: MIT */
/*
 * The nfq-agent behind a container: find it, start it detached, stop it,
 * and read its --status-file (the readiness ADD and CHECK wait for).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cni.h"
#include "clock.h"
#include "fsutil.h"

/* Start time (clock ticks after boot) and state letter of @pid. */
int agent_proc_stat(pid_t pid, unsigned long long *start, char *st)
{
	char path[64], *buf = NULL, *p;
	unsigned long long val = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = fs_read_file(path, 4096, &buf);
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
	n = fs_read_file(path, 64 << 10, &buf);
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
bool agent_alive(const struct state *s)
{
	unsigned long long start;
	char st;

	if (s->pid <= 0 || agent_proc_stat(s->pid, &start, &st) < 0)
		return false;
	return start == s->start && st != 'Z' && st != 'X' && proc_has_name(s->pid, s->name);
}

/* SIGTERM the recorded agent (it says bye to the broker), SIGKILL after
 * STOP_TIMEOUT_MS. It is not our child: watch /proc until it is gone. */
void agent_stop(const struct state *s)
{
	int64_t end = clock_now_ms() + STOP_TIMEOUT_MS;

	if (!agent_alive(s))
		return;
	kill(s->pid, SIGTERM);
	while (clock_now_ms() < end) {
		clock_sleep_ms(POLL_MS);
		if (!agent_alive(s))
			return;
	}
	if (agent_alive(s))
		kill(s->pid, SIGKILL);
}

/* End our own child: SIGTERM, SIGKILL after a second, reaped either way. */
void agent_child_stop(pid_t pid)
{
	int64_t end = clock_now_ms() + 1000;
	int st;

	kill(pid, SIGTERM);
	while (clock_now_ms() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		clock_sleep_ms(POLL_MS);
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

/* Try "DIR/nfq-agent" for each DIR of the colon-separated @dirs; every
 * place tried is appended to @tried. */
static int search_dirs(const char *dirs, const char *prog, char *out, size_t outlen,
		       char *tried, size_t tlen)
{
	const char *path = dirs;

	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		if (n > 0 && snprintf(out, outlen, "%.*s/%s", (int)n, path, prog) < (int)outlen) {
			if (exec_ok(out) == 0)
				return 0;
			size_t used = strlen(tried);

			snprintf(tried + used, tlen - used, "%s%s", used ? ", " : "", out);
		}
		path = colon ? colon + 1 : NULL;
	}
	return -ENOENT;
}

/* The agent program: netconf "agent" (a path, or a name looked up in PATH),
 * else each CNI_PATH directory, else beside this binary with symlinks
 * resolved (a plugin symlinked into /opt/cni/bin finds its real home),
 * else PATH. */
int agent_find(const struct conf *c, char *out, size_t outlen, struct cni_err *e)
{
	char self[PATH_MAX], tried[768] = "";
	int ret;

	if (c->agent && strchr(c->agent, '/')) {
		ret = exec_ok(c->agent);
		if (ret < 0)
			return cni_set_err(e, CNI_ERR_NETCONF, "netconf.agent: %.512s: %s", c->agent,
				       strerror(-ret));
		snprintf(out, outlen, "%s", c->agent);
		return 0;
	}
	if (c->agent) {
		if (search_dirs(getenv("PATH"), c->agent, out, outlen, tried, sizeof(tried)) < 0)
			return cni_set_err(e, CNI_ERR_NETCONF, "netconf.agent: %.256s: not found in PATH",
				       c->agent);
		return 0;
	}
	if (search_dirs(getenv("CNI_PATH"), "nfq-agent", out, outlen, tried, sizeof(tried)) == 0)
		return 0;
	if (realpath("/proc/self/exe", self)) {
		char *slash = strrchr(self, '/');

		if (slash) {
			*slash = '\0';
			if (search_dirs(self, "nfq-agent", out, outlen, tried, sizeof(tried)) == 0)
				return 0;
		}
	}
	if (search_dirs(getenv("PATH"), "nfq-agent", out, outlen, tried, sizeof(tried)) == 0)
		return 0;
	return cni_set_err(e, CNI_ERR_AGENT, "nfq-agent not found; tried: %.700s",
		       tried[0] ? tried : "(no CNI_PATH, no PATH)");
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
pid_t agent_spawn(const char *prog, char *const argv[], int logfd)
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

/* Copy the last non-empty line of @text holding @prefix (NULL: any) after
 * the prefix into @out. Returns whether one was found. */
bool agent_log_last_line(const char *text, const char *prefix, char *out, size_t outlen)
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

int agent_status_read(const char *path, struct agent_status *st)
{
	char *buf = NULL;
	ssize_t n = fs_read_file(path, 4096, &buf);

	memset(st, 0, sizeof(*st));
	if (n < 0)
		return (int)n;
	for (char *line = buf, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (strncmp(line, "state=", 6) == 0)
			snprintf(st->state, sizeof(st->state), "%s", line + 6);
		else if (strncmp(line, "attempts=", 9) == 0)
			st->attempts = strtoul(line + 9, NULL, 10);
		else if (strncmp(line, "reason=", 7) == 0)
			snprintf(st->reason, sizeof(st->reason), "%s", line + 7);
	}
	free(buf);
	return st->state[0] ? 0 : -EINVAL;
}
