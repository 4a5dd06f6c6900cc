/* SPDX-License-Identifier: MIT */
/*
 * nfq-cni: a chained CNI plugin (docs/interface.md §7). ADD starts an nfq-agent
 * for the container's network namespace, waits until the broker accepted
 * it and passes the previous result through; DEL drops one (network,
 * interface) attachment and the last one ends the agent's lease; CHECK
 * verifies it is still attached; STATUS and GC are CNI 1.1's. State lives
 * in <state_dir>/<container id>.json (+ .log, the agent's stderr, and
 * .status, its --status-file).
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
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cni.h"
#include "cli.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"

/* The agent exited during ADD: say why, from its status file, exit status and log. */
static int add_failed(const struct paths *p, const char *prog, int status, struct cni_err *e)
{
	struct agent_status st;
	char *log = NULL, line[1024];

	if (agent_status_read(p->status, &st) == 0 && strcmp(st.state, "refused") == 0)
		return cni_set_err(e, CNI_ERR_REFUSED, "broker refused the agent: %s", st.reason);
	if (fs_read_file(p->log, LOG_READ_MAX, &log) < 0)
		log = NULL;
	if (WIFEXITED(status))
		cni_set_err(e, CNI_ERR_AGENT, "nfq-agent (%.512s) exited with status %d", prog,
			WEXITSTATUS(status));
	else
		cni_set_err(e, CNI_ERR_AGENT, "nfq-agent (%.512s) killed by signal %d", prog,
			WTERMSIG(status));
	if (log && agent_log_last_line(log, NULL, line, sizeof(line)))
		cni_set_details(e, line);
	free(log);
	return -EINVAL;
}

/* Wait for state=attached in the agent's status file. Returns 1 attached,
 * 0 exited (@status set), -ETIMEDOUT (@st holds the last state seen). */
static int add_wait(pid_t pid, const char *status_path, int timeout_ms, int *status,
		    struct agent_status *st)
{
	int64_t end = clock_now_ms() + timeout_ms;

	memset(st, 0, sizeof(*st));
	for (;;) {
		if (agent_status_read(status_path, st) == 0 && strcmp(st->state, "attached") == 0)
			return 1;
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		if (clock_now_ms() >= end)
			return -ETIMEDOUT;
		clock_sleep_ms(POLL_MS);
	}
}

static int add_timeout(const struct conf *c, const struct agent_status *st, struct cni_err *e)
{
	cni_set_err(e, CNI_ERR_TRY_LATER, "broker not reachable at %.512s: waited %d ms, the agent made %lu attempt%s",
		    c->broker, c->attach_timeout_ms, st->attempts, st->attempts == 1 ? "" : "s");
	if (st->reason[0])
		cni_set_details(e, st->reason);
	return -ETIMEDOUT;
}

/* A running agent took the attachment: ready once it is attached. A
 * concurrent ADD may have started it a moment ago, or the broker may be
 * away; a failure leaves the attachment recorded for the runtime's DEL. */
static int add_ready(const struct conf *c, const struct paths *p, const struct state *s,
		     struct cni_err *e)
{
	int64_t end = clock_now_ms() + c->attach_timeout_ms;
	struct agent_status st;

	for (;;) {
		if (agent_status_read(p->status, &st) == 0 && strcmp(st.state, "attached") == 0) {
			cni_print_result(c);
			return 0;
		}
		if (!agent_alive(s))
			return cni_set_err(e, CNI_ERR_AGENT, "nfq-agent (pid %d) exited before it attached",
				       (int)s->pid);
		if (clock_now_ms() >= end)
			return add_timeout(c, &st, e);
		clock_sleep_ms(POLL_MS);
	}
}

/* Start the agent for @s (name and netns set) and record it with its
 * attachments. Called under the state lock. */
static int add_spawn(const struct conf *c, const struct paths *p, const char *prog,
		     struct state *s, struct cni_err *e)
{
	char *argv[] = { (char *)prog, "--broker", (char *)c->broker, "--name", s->name,
			 "--netns", s->netns, "--status-file", (char *)p->status, NULL };
	int logfd, ret;
	char st;

	unlink(p->status);
	logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return cni_set_err(e, CNI_ERR_STATE, "%.512s: %s", p->log, strerror(errno));
	s->pid = agent_spawn(prog, argv, logfd);
	close(logfd);
	if (s->pid < 0) {
		unlink(p->log);
		return cni_set_err(e, CNI_ERR_AGENT, "cannot run nfq-agent %.512s: %s", prog,
			       strerror(-s->pid));
	}
	/* Recorded before the wait: a runtime that gives up on ADD calls DEL. */
	ret = agent_proc_stat(s->pid, &s->start, &st);
	if (ret == 0)
		ret = state_write(p->state, s);
	if (ret < 0) {
		agent_child_stop(s->pid);
		state_remove(p, c->state_dir, s->name);
		return cni_set_err(e, CNI_ERR_STATE, "%.512s: %s", p->state, strerror(-ret));
	}
	return 0;
}

/*
 * One agent per container (its namespace), serving every (network,
 * interface) attachment recorded for it: a second network's ADD only adds
 * to the record. Returns 1 when a running agent took the attachment, 0
 * when one was started (s->pid), else -EINVAL.
 */
static int add_locked(const struct conf *c, const struct env *v, const struct paths *p,
		      const char *prog, struct state *s, struct cni_err *e)
{
	struct state old;
	int ret;

	memset(s, 0, sizeof(*s));
	if (state_read(p->state, &old) == 0) {
		/* The namespace is what the agent serves: a later network's ADD
		 * with other CNI_ARGS does not rename it (the first ADD's name holds). */
		if (agent_alive(&old) && strcmp(old.netns, v->netns) == 0) {
			if (state_att_add(&old, c->netname, v->ifname) < 0)
				return cni_set_err(e, CNI_ERR_STATE, "container %s: more than %d attachments",
					       v->cid, ATT_MAX);
			ret = state_write(p->state, &old);
			if (ret < 0)
				return cni_set_err(e, CNI_ERR_STATE, "%.512s: %s", p->state, strerror(-ret));
			*s = old;
			return 1;
		}
		/* A dead agent (crashed, killed with the runtime) is replaced for
		 * every attachment it served; another namespace's is not ours. */
		agent_stop(&old);
		if (strcmp(old.netns, v->netns) == 0)
			for (size_t i = 0; i < old.n_att; i++)
				state_att_add(s, old.att[i].net, old.att[i].ifname);
	}
	snprintf(s->name, sizeof(s->name), "%s", v->name);
	snprintf(s->netns, sizeof(s->netns), "%s", v->netns);
	state_att_add(s, c->netname, v->ifname);
	return add_spawn(c, p, prog, s, e);
}

/*
 * Lock @c's state_dir for one command: the lock's fd, or -EINVAL with @e
 * set. A missing state_dir is -ENOENT with @e untouched when @missing_ok
 * (DEL and GC: nothing was ever recorded, so there is nothing to do).
 */
static int lock_state_dir(const struct conf *c, bool missing_ok, struct cni_err *e)
{
	int lock = state_lock(c->state_dir);

	if (lock >= 0 || (missing_ok && lock == -ENOENT))
		return lock;
	return cni_set_err(e, CNI_ERR_STATE, "state_dir %.512s: lock: %s", c->state_dir,
			   strerror(-lock));
}

static int cmd_add(const struct conf *c, const struct env *v, struct cni_err *e)
{
	char prog[PATH_MAX];
	struct agent_status st;
	struct state s;
	struct paths p;
	int lock, ret, status = 0;

	if (netconf_excluded(c, v)) {
		cni_print_result(c);
		return 0;
	}
	if (c->holder)
		return via_holder_add(c, v, e);
	if (agent_find(c, prog, sizeof(prog), e) < 0)
		return -EINVAL;
	if (state_paths_init(&p, c->state_dir, v->cid) < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	/* The last level holds pids and logs: ours alone. */
	ret = fs_mkdir_p(c->state_dir, 0755, 0700, false, NULL, 0);
	if (ret < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir %.512s: %s", c->state_dir, strerror(-ret));
	lock = lock_state_dir(c, false, e);
	if (lock < 0)
		return lock;
	ret = add_locked(c, v, &p, prog, &s, e);
	close(lock);
	if (ret < 0)
		return ret;
	if (ret == 1)
		return add_ready(c, &p, &s, e);
	ret = add_wait(s.pid, p.status, c->attach_timeout_ms, &status, &st);
	if (ret == 1) {
		cni_print_result(c);
		return 0;
	}
	if (ret == 0) {
		add_failed(&p, prog, status, e);
	} else {
		add_timeout(c, &st, e);
		agent_child_stop(s.pid);
	}
	lock = state_lock(c->state_dir);
	state_remove(&p, c->state_dir, s.name);
	if (lock >= 0)
		close(lock);
	return -EINVAL;
}

/*
 * Drop (network, interface) of container @cid; the last attachment ends
 * the agent's lease. @ifname NULL: every interface of @net. Idempotent:
 * nothing recorded, or a record that names no live process, leaves
 * nothing to end; an unreadable record cannot name one safely either, and
 * dropping it keeps DEL from failing forever.
 */
static int release(const char *state_dir, const char *cid, const char *net, const char *ifname,
		   struct cni_err *e)
{
	struct state s;
	struct paths p;
	int ret;

	if (state_paths_init(&p, state_dir, cid) < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	ret = state_read(p.state, &s);
	if (ret == -ENOENT)
		return 0;
	if (ret == 0) {
		if (ifname) {
			state_att_del(&s, net, ifname);
		} else {
			for (size_t i = s.n_att; i-- > 0; )
				if (strcmp(s.att[i].net, net) == 0)
					state_att_del(&s, s.att[i].net, s.att[i].ifname);
		}
		if (s.n_att > 0) {
			ret = state_write(p.state, &s);
			return ret < 0 ? cni_set_err(e, CNI_ERR_STATE, "%.512s: %s", p.state,
						     strerror(-ret)) : 0;
		}
		agent_stop(&s);
	}
	state_remove(&p, state_dir, s.name);
	return 0;
}

static int cmd_del(const struct conf *c, const struct env *v, struct cni_err *e)
{
	int lock, ret;

	if (c->holder)
		return via_holder_del(c, v, e);
	lock = lock_state_dir(c, true, e);
	if (lock == -ENOENT)
		return 0;
	if (lock < 0)
		return lock;
	ret = release(c->state_dir, v->cid, c->netname, v->ifname, e);
	close(lock);
	return ret;
}

static int cmd_check(const struct conf *c, const struct env *v, struct cni_err *e)
{
	struct agent_status st;
	struct state s;
	struct paths p;
	int ret;

	if (!cni_version_at_least(c->version, 0, 4))
		return cni_set_err(e, CNI_ERR_VERSION, "CHECK needs cniVersion 0.4.0 or later, the netconf has %s",
			       c->version);
	if (netconf_excluded(c, v))
		return 0;
	if (c->holder)
		return via_holder_check(c, v, e);
	if (state_paths_init(&p, c->state_dir, v->cid) < 0)
		return cni_set_err(e, CNI_ERR_STATE, "state_dir: path too long");
	ret = state_read(p.state, &s);
	if (ret == -ENOENT)
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED, "no agent recorded for container %s", v->cid);
	if (ret < 0)
		return cni_set_err(e, CNI_ERR_STATE, "%.512s: unreadable state", p.state);
	if (state_att_find(&s, c->netname, v->ifname) < 0)
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED,
			       "container %s has no attachment on network %s interface %s",
			       v->cid, c->netname, v->ifname);
	if (!agent_alive(&s))
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not running",
			       v->cid, (int)s.pid);
	if (strcmp(s.netns, v->netns) != 0)
		return cni_set_err(e, CNI_ERR_NOT_ATTACHED,
			       "agent for container %s serves %.512s, not CNI_NETNS %.512s",
			       v->cid, s.netns, v->netns);
	if (agent_status_read(p.status, &st) < 0 || strcmp(st.state, "attached") != 0) {
		cni_set_err(e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not attached to the broker",
			    v->cid, (int)s.pid);
		if (st.reason[0])
			cni_set_details(e, st.reason);
		return -EINVAL;
	}
	return 0;
}

/* STATUS (CNI 1.1): ready when the broker's agent socket takes a connection. */
static int cmd_status(const struct conf *c, struct cni_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret = 0;

	if (!cni_version_at_least(c->version, 1, 1))
		return cni_set_err(e, CNI_ERR_VERSION, "STATUS needs cniVersion 1.1.0, the netconf has %s",
			       c->version);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->broker);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cni_set_err(e, CNI_ERR_UNAVAILABLE, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ret = cni_set_err(e, CNI_ERR_UNAVAILABLE, "broker not reachable at %.512s: %s",
				  c->broker, strerror(errno));
	close(fd);
	if (ret == 0 && c->holder)
		ret = via_holder_status(c, e);
	return ret;
}

/* Whether (@cid, @ifname) is in GC's cni.dev/valid-attachments. */
static bool gc_valid(const struct conf *c, const char *cid, const char *ifname)
{
	for (size_t i = 0; c->valid && i < json_object_array_length(c->valid); i++) {
		struct json_object *a = json_object_array_get_idx(c->valid, i), *x, *y;

		if (json_object_object_get_ex(a, "containerID", &x) &&
		    json_object_object_get_ex(a, "ifname", &y) &&
		    strcmp(json_object_get_string(x), cid) == 0 &&
		    strcmp(json_object_get_string(y), ifname) == 0)
			return true;
	}
	return false;
}

/* GC (CNI 1.1): release every attachment of this network that the runtime
 * no longer knows. Other networks' attachments are theirs to collect. */
static int cmd_gc(const struct conf *c, struct cni_err *e)
{
	struct dirent *d;
	DIR *dir;
	int lock, ret = 0;

	if (!cni_version_at_least(c->version, 1, 1))
		return cni_set_err(e, CNI_ERR_VERSION, "GC needs cniVersion 1.1.0, the netconf has %s",
			       c->version);
	if (c->holder)
		return via_holder_gc(c, e);
	lock = lock_state_dir(c, true, e);
	if (lock == -ENOENT)
		return 0;
	if (lock < 0)
		return lock;
	dir = opendir(c->state_dir);
	while (dir && (d = readdir(dir))) {
		char cid[CID_MAX + 1];
		size_t n = strlen(d->d_name);
		struct state s;
		struct paths p;

		if (n <= 5 || n - 5 > CID_MAX || strcmp(d->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(cid, sizeof(cid), "%.*s", (int)(n - 5), d->d_name);
		if (state_paths_init(&p, c->state_dir, cid) < 0 || state_read(p.state, &s) < 0)
			continue;
		for (size_t i = 0; i < s.n_att; i++) {
			if (strcmp(s.att[i].net, c->netname) == 0 && !gc_valid(c, cid, s.att[i].ifname) &&
			    release(c->state_dir, cid, s.att[i].net, s.att[i].ifname, e) < 0)
				ret = -EINVAL;
		}
	}
	if (dir)
		closedir(dir);
	close(lock);
	return ret;
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
	       "lease after the container's last attachment, CHECK verifies it is\n"
	       "attached, STATUS whether the broker is reachable, GC releases what the\n"
	       "runtime no longer knows, VERSION lists the spec versions.\n"
	       "The netconf comes on stdin; keys: broker, agent, state_dir,\n"
	       "attach_timeout_ms, exclude_namespaces, exclude_pods, holder. See docs/cni.md.\n"
	       "\n"
	       "  -h, --help     show this help\n"
	       "  -V, --version  show the version\n");
}

static int run_command(const struct conf *c, const struct env *v, struct cni_err *e)
{
	if (strcmp(v->command, "ADD") == 0)
		return cmd_add(c, v, e);
	if (strcmp(v->command, "DEL") == 0)
		return cmd_del(c, v, e);
	if (strcmp(v->command, "CHECK") == 0)
		return cmd_check(c, v, e);
	if (strcmp(v->command, "STATUS") == 0)
		return cmd_status(c, e);
	return cmd_gc(c, e);
}

static bool known_command(const char *cmd)
{
	static const char *const known[] = { "ADD", "DEL", "CHECK", "STATUS", "GC" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(cmd, known[i]) == 0)
			return true;
	return false;
}

int cni_main(int argc, char **argv)
{
	struct conf c = { .version = "1.1.0" };
	struct env v = { 0 };
	struct cni_err e = { 0 };
	bool per_container;

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
		c.version = netconf_version_only();
		goto fail;
	}
	if (strcmp(v.command, "VERSION") == 0) {
		cni_print_version(netconf_version_only());
		return 0;
	}
	if (!known_command(v.command)) {
		cni_set_err(&e, CNI_ERR_ENV, "CNI_COMMAND: unknown command \"%.64s\"", v.command);
		cni_set_details(&e, "supported: ADD, DEL, CHECK, STATUS, GC, VERSION");
		c.version = netconf_version_only();
		goto fail;
	}
	per_container = strcmp(v.command, "STATUS") != 0 && strcmp(v.command, "GC") != 0;
	if (netconf_read(&c, &e) < 0 || (per_container && netconf_env_read(&v, &e) < 0))
		goto fail;
	if (run_command(&c, &v, &e) < 0)
		goto fail;
	json_object_put(c.root);
	return 0;
fail:
	log_failure(&v, &e);
	cni_print_error(&e, c.version);
	json_object_put(c.root);
	return 1;
}
