/* SPDX-License-Identifier: MIT */
/*
 * nfq-cni: a chained CNI plugin (docs/interface.md §7). ADD starts an nfq-agent
 * for the container's network namespace, waits until the broker accepted
 * it and passes the previous result through unchanged; DEL ends that
 * agent's lease; CHECK verifies it is still attached. State lives in
 * <state_dir>/<container id>.json (+ .log, the agent's stderr).
 *
 * The CNI contract: the netconf arrives on stdin, the parameters in CNI_*
 * environment variables, the result or an error object goes to stdout and
 * an error exits non-zero. See docs/cni.md. This file: the commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cni.h"
#include "cli.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"

/* The agent exited during ADD: say why, from its exit status and log. */
static int add_failed(const struct paths *p, const char *prog, int status, struct cni_err *e)
{
	char *log = NULL, line[1024];
	bool refused;

	if (fs_read_file(p->log, LOG_READ_MAX, &log) < 0)
		log = NULL;
	refused = log && agent_log_last_line(log, "nfq-agent: refused: ", line, sizeof(line));
	if (refused) {
		cni_set_err(e, CNI_ERR_REFUSED, "broker refused the agent: %s", line);
	} else {
		if (WIFEXITED(status))
			cni_set_err(e, CNI_ERR_AGENT, "nfq-agent (%.512s) exited with status %d", prog,
				WEXITSTATUS(status));
		else
			cni_set_err(e, CNI_ERR_AGENT, "nfq-agent (%.512s) killed by signal %d", prog,
				WTERMSIG(status));
		if (log && agent_log_last_line(log, NULL, line, sizeof(line)))
			cni_set_details(e, line);
	}
	free(log);
	return -EINVAL;
}

/* Wait for "event=attached" in the log. Returns 1 attached, 0 exited
 * (@status set), -ETIMEDOUT. */
static int add_wait(pid_t pid, const char *logpath, int timeout_ms, int *status)
{
	int64_t end = clock_now_ms() + timeout_ms;

	for (;;) {
		char *log = NULL;
		bool up = false;

		if (fs_read_file(logpath, LOG_READ_MAX, &log) >= 0) {
			up = agent_log_attached(log);
			free(log);
		}
		if (up)
			return 1;
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		if (clock_now_ms() >= end)
			return -ETIMEDOUT;
		clock_sleep_ms(POLL_MS);
	}
}

static int add_timeout(const struct conf *c, const struct paths *p, struct cni_err *e)
{
	char *log = NULL, line[1024];

	cni_set_err(e, CNI_ERR_TRY_LATER, "broker not reachable at %.512s within %d ms", c->broker,
		c->attach_timeout_ms);
	if (fs_read_file(p->log, LOG_READ_MAX, &log) >= 0 && agent_log_last_line(log, NULL, line, sizeof(line)))
		cni_set_details(e, line);
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

	if (agent_find(c, prog, sizeof(prog), e) < 0)
		return -EINVAL;
	if (state_paths_init(&p, c, v->cid) < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	/* The last level holds pids and logs: ours alone. */
	ret = fs_mkdir_p(c->state_dir, 0755, 0700, false, NULL, 0);
	if (ret < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir %.512s: %s", c->state_dir, strerror(-ret));
	if (add_existing(&p, v) == 1) {
		cni_print_result(c);
		return 0;
	}
	logfd = open(p.log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return cni_set_err(e, CNI_ERR_STATE, "%.512s: %s", p.log, strerror(errno));
	s.pid = agent_spawn(prog, argv, logfd);
	close(logfd);
	if (s.pid < 0) {
		unlink(p.log);
		return cni_set_err(e, CNI_ERR_AGENT, "cannot run nfq-agent %.512s: %s", prog,
			       strerror(-s.pid));
	}
	snprintf(s.name, sizeof(s.name), "%s", v->name);
	snprintf(s.netns, sizeof(s.netns), "%s", v->netns);
	/* Recorded before the wait: a runtime that gives up on ADD calls DEL. */
	ret = agent_proc_stat(s.pid, &s.start, &st);
	if (ret == 0)
		ret = state_write(p.state, &s, v->ifname);
	if (ret < 0) {
		agent_child_stop(s.pid);
		state_remove(&p);
		return cni_set_err(e, CNI_ERR_STATE, "%.512s: %s", p.state, strerror(-ret));
	}
	ret = add_wait(s.pid, p.log, c->attach_timeout_ms, &status);
	if (ret == 1) {
		cni_print_result(c);
		return 0;
	}
	if (ret == 0)
		add_failed(&p, prog, status, e);
	else {
		/* The agent's last retry says why, before its exit line. */
		add_timeout(c, &p, e);
		agent_child_stop(s.pid);
	}
	state_remove(&p);
	return -EINVAL;
}

static int cmd_del(const struct conf *c, const struct env *v, struct cni_err *e)
{
	struct state s;
	struct paths p;
	int ret;

	if (state_paths_init(&p, c, v->cid) < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir: path too long");
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

	if (state_paths_init(&p, c, v->cid) < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	ret = state_read(p.state, &s);
	if (ret == -ENOENT)
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED, "no agent recorded for container %s", v->cid);
	if (ret < 0)
		return cni_set_err(e, CNI_ERR_STATE, "%.512s: unreadable state", p.state);
	if (!agent_alive(&s))
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not running",
			       v->cid, (int)s.pid);
	if (strcmp(s.netns, v->netns) != 0)
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED,
			       "agent for container %s serves %.512s, not CNI_NETNS %.512s",
			       v->cid, s.netns, v->netns);
	if (fs_read_file(p.log, LOG_READ_MAX, &log) < 0)
		log = NULL;
	up = log && agent_log_attached(log);
	if (!up) {
		cni_set_err(e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not attached to the broker",
			v->cid, (int)s.pid);
		if (log && agent_log_last_line(log, NULL, line, sizeof(line)))
			cni_set_details(e, line);
	}
	free(log);
	return up ? 0 : -EINVAL;
}

/* The runtime gets the error object on stdout; the node's log (stderr,
 * the journal under a systemd-run runtime) gets one line in the format of
 * every other program. Success stays silent: runtimes show stderr. */
static void log_failure(const struct env *v, const struct cni_err *e)
{
	char qc[160], qi[160], qm[LOG_VALUE_MAX], qd[LOG_VALUE_MAX];

	log_event(LOGL_ERROR, "cni_error", "command=%s container=%s code=%d msg=%s%s%s",
		  log_value(qc, sizeof(qc), v->command ? v->command : ""),
		  log_value(qi, sizeof(qi), v->cid ? v->cid : ""), e->code,
		  log_value(qm, sizeof(qm), e->msg), e->details[0] ? " details=" : "",
		  e->details[0] ? log_value(qd, sizeof(qd), e->details) : "");
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

	cli_set_program("nfq-cni");
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage();
		return 0;
	}
	if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		cli_print_version();
		return 0;
	}
	/* A write to a runtime that stopped reading must not kill us silently. */
	signal(SIGPIPE, SIG_IGN);
	v.command = netconf_env_get("CNI_COMMAND");
	if (!v.command) {
		cni_set_err(&e, CNI_ERR_ENV, "CNI_COMMAND is not set");
		goto fail;
	}
	if (strcmp(v.command, "VERSION") == 0) {
		cni_print_version();
		return 0;
	}
	if (strcmp(v.command, "ADD") && strcmp(v.command, "DEL") && strcmp(v.command, "CHECK")) {
		cni_set_err(&e, CNI_ERR_ENV, "CNI_COMMAND: unknown command \"%.64s\"", v.command);
		cni_set_details(&e, "supported: ADD, DEL, CHECK, VERSION");
		goto fail;
	}
	if (netconf_read(&c, &e) < 0 || netconf_env_read(&v, &e) < 0)
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
	log_failure(&v, &e);
	cni_print_error(&e, c.version);
	json_object_put(c.root);
	return 1;
}
