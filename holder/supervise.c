/* SPDX-License-Identifier: MIT */
/*
 * The held namespaces: one nfq-agent each, started from the recorded
 * netns path, watched through a pidfd, restarted with a bounded backoff
 * when it dies, adopted again (pid + start time + argv checked) when the
 * holder itself restarts. The agent is what holds the namespace's sockets
 * and its lease (docs/holder.md): the holder only keeps one running.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "holder.h"
#include "log.h"

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

struct held *held_find(struct holder *hd, const char *cid)
{
	for (size_t i = 0; i < hd->n_held; i++)
		if (strcmp(hd->held[i]->cid, cid) == 0)
			return hd->held[i];
	return NULL;
}

struct held *held_new(struct holder *hd, const char *cid)
{
	struct held *h;

	if (hd->n_held == hd->cap_held) {
		size_t cap = hd->cap_held ? hd->cap_held * 2 : 16;
		struct held **n = realloc(hd->held, cap * sizeof(*n));

		if (!n)
			return NULL;
		hd->held = n;
		hd->cap_held = cap;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	snprintf(h->cid, sizeof(h->cid), "%s", cid);
	if (state_paths_init(&h->p, hd->state_dir, cid) < 0) {
		free(h);
		return NULL;
	}
	h->pidfd = -1;
	h->exit_status = -1;
	h->backoff_ms = HOLDER_BACKOFF_MIN_MS;
	hd->held[hd->n_held++] = h;
	return h;
}

void held_free(struct holder *hd, struct held *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < hd->n_held; i++) {
		if (hd->held[i] == h) {
			hd->held[i] = hd->held[--hd->n_held];
			break;
		}
	}
	if (h->pidfd >= 0)
		close(h->pidfd);
	free(h);
}

int held_record(const struct held *h)
{
	return state_write(h->p.state, &h->s);
}

/* The log file for a (re)started agent: appended to, so that one
 * namespace's restarts read as one story, and cut when it grew past
 * HOLDER_LOG_MAX (the tail survives the release: state_keep_log). */
static int open_log(const struct held *h)
{
	struct stat st;
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;

	if (stat(h->p.log, &st) == 0 && st.st_size > (off_t)HOLDER_LOG_MAX)
		flags |= O_TRUNC;
	return open(h->p.log, flags, 0600);
}

int held_spawn(struct holder *hd, struct held *h, int64_t now)
{
	char *argv[] = { (char *)hd->agent, "--broker", h->s.broker, "--name", h->s.name,
			 "--netns", h->s.netns, "--status-file", h->p.status, NULL };
	char qn[160];
	int logfd, ret;
	pid_t pid;
	char st;

	unlink(h->p.status);
	logfd = open_log(h);
	if (logfd < 0)
		return -errno;
	pid = agent_spawn(hd->agent, argv, logfd);
	close(logfd);
	if (pid < 0)
		return (int)pid;
	h->pidfd = pidfd_open_(pid);
	if (h->pidfd < 0) {
		ret = -errno;
		agent_child_stop(pid);
		return ret;
	}
	h->child = true;
	h->s.pid = pid;
	h->started_ms = now;
	h->restart_at = 0;
	ret = agent_proc_stat(pid, &h->s.start, &st);
	if (ret == 0)
		ret = held_record(h);
	log_event(LOGL_INFO, "agent_started", "cid=%s name=%s pid=%d restarts=%lu", h->cid,
		  log_value(qn, sizeof(qn), h->s.name), (int)pid, h->restarts);
	/* Unrecorded, a holder restart could not find it: better none. */
	if (ret < 0) {
		agent_child_stop(pid);
		close(h->pidfd);
		h->pidfd = -1;
		return ret;
	}
	return 0;
}

void held_exited(struct holder *hd, struct held *h, int64_t now)
{
	char qn[160], how[48] = "unknown";
	int st;

	h->exit_status = -1;
	if (h->child && waitpid(h->s.pid, &st, WNOHANG) == h->s.pid) {
		h->exit_status = st;
		if (WIFEXITED(st))
			snprintf(how, sizeof(how), "exit=%d", WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			snprintf(how, sizeof(how), "signal=%d", WTERMSIG(st));
	}
	log_event(h->stopping ? LOGL_INFO : LOGL_WARN, "agent_exited", "cid=%s name=%s pid=%d status=%s ran_ms=%lld",
		  h->cid, log_value(qn, sizeof(qn), h->s.name), (int)h->s.pid, how,
		  h->started_ms ? (long long)(now - h->started_ms) : -1LL);
	close(h->pidfd);
	h->pidfd = -1;
	(void)hd;
}

void held_schedule(struct held *h, int64_t now)
{
	char qn[160];

	/* An agent that served a while gets the short delay again: a crash
	 * loop backs off, a rare crash costs 100 ms. */
	if (h->started_ms && now - h->started_ms >= HOLDER_STABLE_MS)
		h->backoff_ms = HOLDER_BACKOFF_MIN_MS;
	h->restart_at = now + h->backoff_ms;
	log_event(LOGL_INFO, "agent_restart_planned", "cid=%s name=%s in_ms=%d", h->cid,
		  log_value(qn, sizeof(qn), h->s.name), h->backoff_ms);
	h->backoff_ms = h->backoff_ms * 2 > HOLDER_BACKOFF_MAX_MS ? HOLDER_BACKOFF_MAX_MS : h->backoff_ms * 2;
}

bool held_stop(struct held *h, int64_t now)
{
	h->stopping = true;
	h->restart_at = 0;
	if (h->pidfd < 0)
		return true;
	/* Through the pidfd: a recycled pid is never signalled. */
	if (pidfd_kill(h->pidfd, SIGTERM) < 0 && errno == ESRCH)
		return false; /* exiting already: the pidfd says when */
	h->kill_at = now + STOP_TIMEOUT_MS;
	return false;
}

void held_forget(struct holder *hd, struct held *h)
{
	char qn[160];

	log_event(LOGL_INFO, "released", "cid=%s name=%s restarts=%lu", h->cid,
		  log_value(qn, sizeof(qn), h->s.name), h->restarts);
	state_remove(&h->p, hd->state_dir, h->s.name);
	held_free(hd, h);
}

int held_status(const struct held *h, struct agent_status *st)
{
	return agent_status_read(h->p.status, st);
}

/* A state file found at start: the agent still runs (adopt it) or is
 * restarted at once. */
static void adopt_one(struct holder *hd, const char *cid, int64_t now)
{
	struct held *h = held_new(hd, cid);
	char qn[160];
	int ret;

	if (!h)
		return;
	ret = state_read(h->p.state, &h->s);
	if (ret < 0 || h->s.n_att == 0 || !h->s.broker[0] || !h->s.netns[0]) {
		log_event(LOGL_WARN, "state_dropped", "cid=%s reason=%s", cid,
			  ret < 0 ? "unreadable" : "incomplete");
		if (ret == 0)
			agent_stop(&h->s);
		state_remove(&h->p, hd->state_dir, h->s.name[0] ? h->s.name : cid);
		held_free(hd, h);
		return;
	}
	if (agent_alive(&h->s)) {
		h->pidfd = pidfd_open_(h->s.pid);
		/* Checked again with the pidfd held: the pid cannot change under it now. */
		if (h->pidfd >= 0 && agent_alive(&h->s)) {
			h->started_ms = now;
			log_event(LOGL_INFO, "agent_adopted", "cid=%s name=%s pid=%d", cid,
				  log_value(qn, sizeof(qn), h->s.name), (int)h->s.pid);
			return;
		}
		if (h->pidfd >= 0)
			close(h->pidfd);
		h->pidfd = -1;
	}
	log_event(LOGL_WARN, "agent_missing", "cid=%s name=%s pid=%d", cid,
		  log_value(qn, sizeof(qn), h->s.name), (int)h->s.pid);
	h->restart_at = now;
}

size_t held_adopt_all(struct holder *hd, int64_t now)
{
	DIR *dir = opendir(hd->state_dir);
	struct dirent *d;

	while (dir && (d = readdir(dir))) {
		char cid[CID_MAX + 1];
		size_t n = strlen(d->d_name);

		if (n <= 5 || n - 5 > CID_MAX || strcmp(d->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(cid, sizeof(cid), "%.*s", (int)(n - 5), d->d_name);
		if (holder_cid_ok(cid) && !held_find(hd, cid))
			adopt_one(hd, cid, now);
	}
	if (dir)
		closedir(dir);
	return hd->n_held;
}

int64_t held_timers(struct holder *hd, int64_t now)
{
	int64_t next = 0;

	for (size_t i = 0; i < hd->n_held; i++) {
		struct held *h = hd->held[i];

		if (h->restart_at && h->restart_at <= now && h->pidfd < 0) {
			int ret;

			h->restarts++;
			ret = held_spawn(hd, h, now);
			if (ret < 0) {
				char qn[160];

				log_event(LOGL_ERROR, "agent_start_failed", "cid=%s name=%s error=%s", h->cid,
					  log_value(qn, sizeof(qn), h->s.name), strerror(-ret));
				held_schedule(h, now);
			}
		}
		if (h->stopping && h->pidfd >= 0 && h->kill_at && h->kill_at <= now) {
			pidfd_kill(h->pidfd, SIGKILL);
			h->kill_at = 0;
		}
		if (h->restart_at && (!next || h->restart_at < next))
			next = h->restart_at;
		if (h->stopping && h->kill_at && (!next || h->kill_at < next))
			next = h->kill_at;
	}
	return next;
}
