/* SPDX-License-Identifier: MIT */
/*
 * The requests: HOLD adds an attachment and starts the namespace's agent
 * when it is the first, RELEASE drops one and stops the agent after the
 * last, CHECK and GC as nfq-cni's. An answer that depends on the agent
 * (HOLD: attached or refused; RELEASE: gone) waits in the waiter list
 * while the loop goes on serving everyone else.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "holder.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"

struct waiter {
	int fd;
	enum holder_verb verb;
	struct held *h;
	char net[NET_MAX];
	char ifname[IF_MAX];
	int timeout_ms;
	int64_t deadline;
};

void serve_reply(int fd, const struct cni_err *e)
{
	char buf[4096];
	ssize_t n = holder_reply_format(e, buf, sizeof(buf));

	if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_event(LOGL_WARN, "reply_failed", "error=%s", strerror(errno));
	close(fd);
}

static void reply_err(int fd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply_err(int fd, int code, const char *fmt, ...)
{
	struct cni_err e = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	serve_reply(fd, &e);
}

static int wait_add(struct server *sv, int fd, enum holder_verb verb, struct held *h,
		    const char *net, const char *ifname, int timeout_ms, int64_t now)
{
	struct waiter *w;

	if (sv->n_w == sv->cap_w) {
		size_t cap = sv->cap_w ? sv->cap_w * 2 : 16;
		struct waiter *n = realloc(sv->w, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		sv->w = n;
		sv->cap_w = cap;
	}
	w = &sv->w[sv->n_w++];
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->verb = verb;
	w->h = h;
	snprintf(w->net, sizeof(w->net), "%s", net);
	snprintf(w->ifname, sizeof(w->ifname), "%s", ifname);
	w->timeout_ms = timeout_ms;
	w->deadline = now + timeout_ms;
	return 0;
}

static void wait_drop(struct server *sv, size_t i)
{
	sv->w[i] = sv->w[--sv->n_w];
}

/* Forget @h; whoever still waits on it is answered first: a RELEASE is
 * done, a HOLD failed with @e (NULL: "released while waiting"). */
static void forget(struct server *sv, struct held *h, const struct cni_err *e)
{
	struct cni_err gone = { .code = CNI_ERR_AGENT };

	snprintf(gone.msg, sizeof(gone.msg), "container %s was released while ADD waited", h->cid);
	for (size_t i = sv->n_w; i-- > 0; ) {
		if (sv->w[i].h != h)
			continue;
		serve_reply(sv->w[i].fd, sv->w[i].verb == HOLDER_RELEASE ? NULL : e ? e : &gone);
		wait_drop(sv, i);
	}
	held_forget(&sv->hd, h);
}

/* The last attachment went: stop the agent, forget the namespace once it
 * is gone. Returns whether @h was freed already. */
static bool release_last(struct server *sv, struct held *h, int64_t now)
{
	if (held_stop(h, now)) {
		forget(sv, h, NULL);
		return true;
	}
	return false;
}

/* Drop (@net, @ifname) of @h after a failed HOLD; the agent goes with the last. */
static void drop_att(struct server *sv, struct held *h, const char *net, const char *ifname, int64_t now)
{
	state_att_del(&h->s, net, ifname);
	if (h->s.n_att > 0)
		held_record(h);
	else
		release_last(sv, h, now);
}

/* A new namespace for a known container: the old agent serves a namespace
 * that is gone. Stopped here, synchronously (rare: a sandbox recreated
 * under the same id without a DEL). */
static void replace_netns(struct held *h, const char *netns)
{
	if (h->pidfd >= 0) {
		agent_stop(&h->s);
		if (h->child)
			waitpid(h->s.pid, NULL, WNOHANG);
		close(h->pidfd);
		h->pidfd = -1;
	}
	h->s.n_att = 0;
	snprintf(h->s.netns, sizeof(h->s.netns), "%s", netns);
}

/*
 * The running agent's status: 0, or -1 when it has none (yet). Whoever sees
 * it attached first, the HOLD itself or its waiter, makes @h no longer
 * fresh: an agent that dies after it served is restarted, not forgotten.
 */
static int live_status(struct held *h, struct agent_status *st)
{
	if (h->pidfd < 0 || held_status(h, st) != 0)
		return -1;
	if (strcmp(st->state, "attached") == 0)
		h->fresh = false;
	return 0;
}

static void do_hold(struct server *sv, int fd, const struct holder_req *r, int64_t now)
{
	struct held *h = held_find(&sv->hd, r->cid);
	struct agent_status st;
	int ret;

	if (h && h->stopping) {
		reply_err(fd, CNI_ERR_TRY_LATER, "container %s is being released; try again", r->cid);
		return;
	}
	if (h && strcmp(h->s.netns, r->netns) != 0)
		replace_netns(h, r->netns);
	if (!h) {
		h = held_new(&sv->hd, r->cid);
		if (!h) {
			reply_err(fd, CNI_ERR_STATE, "container %s: out of memory", r->cid);
			return;
		}
		snprintf(h->s.name, sizeof(h->s.name), "%s", r->name);
		snprintf(h->s.netns, sizeof(h->s.netns), "%s", r->netns);
	}
	/* The first HOLD's broker and name hold, as with one agent per
	 * namespace in direct mode. */
	if (!h->s.broker[0])
		snprintf(h->s.broker, sizeof(h->s.broker), "%s", r->broker);
	if (state_att_add(&h->s, r->net, r->ifname) < 0) {
		reply_err(fd, CNI_ERR_STATE, "container %s: more than %d attachments", r->cid, ATT_MAX);
		return;
	}
	if (h->pidfd < 0 && !h->restart_at) {
		h->fresh = true;
		ret = held_spawn(&sv->hd, h, now);
		if (ret < 0) {
			reply_err(fd, CNI_ERR_AGENT, "cannot run nfq-agent %.512s: %s", sv->hd.agent, strerror(-ret));
			state_remove(&h->p, sv->hd.state_dir, h->s.name);
			held_free(&sv->hd, h);
			return;
		}
	} else if (held_record(h) < 0) {
		reply_err(fd, CNI_ERR_STATE, "%.512s: %s", h->p.state, strerror(errno));
		state_att_del(&h->s, r->net, r->ifname);
		return;
	}
	if (live_status(h, &st) == 0 && strcmp(st.state, "attached") == 0) {
		serve_reply(fd, NULL);
		return;
	}
	if (wait_add(sv, fd, HOLDER_HOLD, h, r->net, r->ifname, r->timeout_ms, now) < 0)
		reply_err(fd, CNI_ERR_STATE, "out of memory");
}

static void do_release(struct server *sv, int fd, const struct holder_req *r, int64_t now)
{
	struct held *h = held_find(&sv->hd, r->cid);

	if (!h) {
		serve_reply(fd, NULL);
		return;
	}
	for (size_t i = h->s.n_att; i-- > 0; )
		if (strcmp(h->s.att[i].net, r->net) == 0 && (!r->ifname[0] || strcmp(h->s.att[i].ifname, r->ifname) == 0))
			state_att_del(&h->s, h->s.att[i].net, h->s.att[i].ifname);
	if (h->s.n_att > 0) {
		if (held_record(h) < 0)
			reply_err(fd, CNI_ERR_STATE, "%.512s: %s", h->p.state, strerror(errno));
		else
			serve_reply(fd, NULL);
		return;
	}
	if (release_last(sv, h, now)) {
		serve_reply(fd, NULL);
		return;
	}
	if (wait_add(sv, fd, HOLDER_RELEASE, h, r->net, r->ifname, STOP_TIMEOUT_MS * 2, now) < 0)
		serve_reply(fd, NULL);
}

static void do_check(struct server *sv, int fd, const struct holder_req *r)
{
	struct held *h = held_find(&sv->hd, r->cid);
	struct agent_status st;
	struct cni_err e = { 0 };

	if (!h)
		cni_set_err(&e, CNI_ERR_NOT_ATTACHED, "no agent recorded for container %s", r->cid);
	else if (state_att_find(&h->s, r->net, r->ifname) < 0)
		cni_set_err(&e, CNI_ERR_NOT_ATTACHED, "container %s has no attachment on network %s interface %s",
			    r->cid, r->net, r->ifname);
	else if (h->pidfd < 0)
		cni_set_err(&e, CNI_ERR_NOT_ATTACHED, "agent for container %s is not running (restart planned, %lu so far)",
			    r->cid, h->restarts);
	else if (strcmp(h->s.netns, r->netns) != 0)
		cni_set_err(&e, CNI_ERR_NOT_ATTACHED, "agent for container %s serves %.512s, not CNI_NETNS %.512s",
			    r->cid, h->s.netns, r->netns);
	else if (held_status(h, &st) < 0 || strcmp(st.state, "attached") != 0) {
		cni_set_err(&e, CNI_ERR_NOT_ATTACHED, "agent for container %s (pid %d) is not attached to the broker",
			    r->cid, (int)h->s.pid);
		if (st.reason[0])
			cni_set_details(&e, st.reason);
	}
	serve_reply(fd, &e);
}

static bool gc_valid(const struct holder_req *r, const char *cid, const char *ifname)
{
	for (size_t i = 0; i < r->n_valid; i++)
		if (strcmp(r->valid[i].cid, cid) == 0 && strcmp(r->valid[i].ifname, ifname) == 0)
			return true;
	return false;
}

/* GC answers at once: the agents it ends stop in the background. */
static void do_gc(struct server *sv, int fd, const struct holder_req *r, int64_t now)
{
	for (size_t i = sv->hd.n_held; i-- > 0; ) {
		struct held *h = sv->hd.held[i];
		size_t before = h->s.n_att;

		if (h->stopping)
			continue;
		for (size_t k = h->s.n_att; k-- > 0; )
			if (strcmp(h->s.att[k].net, r->net) == 0 && !gc_valid(r, h->cid, h->s.att[k].ifname))
				state_att_del(&h->s, h->s.att[k].net, h->s.att[k].ifname);
		if (h->s.n_att == before)
			continue;
		log_event(LOGL_INFO, "gc", "cid=%s net=%s dropped=%zu", h->cid, r->net, before - h->s.n_att);
		if (h->s.n_att > 0)
			held_record(h);
		else
			release_last(sv, h, now);
	}
	serve_reply(fd, NULL);
}

void serve_request(struct server *sv, int fd, struct holder_req *r, int64_t now)
{
	switch (r->verb) {
	case HOLDER_HOLD:
		do_hold(sv, fd, r, now);
		break;
	case HOLDER_RELEASE:
		do_release(sv, fd, r, now);
		break;
	case HOLDER_CHECK:
		do_check(sv, fd, r);
		break;
	case HOLDER_GC:
		do_gc(sv, fd, r, now);
		break;
	}
}

/* The agent started for a HOLD exited before it attached: why, from its
 * status file (a refusal) or its exit status and last log line. */
static void hold_failed(const struct held *h, struct cni_err *e)
{
	struct agent_status st;
	char *log = NULL, line[1024];
	int s = h->exit_status;

	if (held_status(h, &st) == 0 && strcmp(st.state, "refused") == 0) {
		cni_set_err(e, CNI_ERR_REFUSED, "broker refused the agent: %s", st.reason);
		return;
	}
	if (s >= 0 && WIFEXITED(s))
		cni_set_err(e, CNI_ERR_AGENT, "nfq-agent exited with status %d", WEXITSTATUS(s));
	else if (s >= 0 && WIFSIGNALED(s))
		cni_set_err(e, CNI_ERR_AGENT, "nfq-agent killed by signal %d", WTERMSIG(s));
	else
		cni_set_err(e, CNI_ERR_AGENT, "nfq-agent exited before it attached");
	if (fs_read_file(h->p.log, LOG_READ_MAX, &log) >= 0 && agent_log_last_line(log, NULL, line, sizeof(line)))
		cni_set_details(e, line);
	free(log);
}

void serve_agent_exited(struct server *sv, struct held *h, int64_t now)
{
	held_exited(&sv->hd, h, now);
	if (h->stopping) {
		forget(sv, h, NULL);
		return;
	}
	if (h->fresh) {
		struct cni_err e = { 0 };

		/* Nothing ever attached: the HOLD fails as a direct ADD would. */
		hold_failed(h, &e);
		forget(sv, h, &e);
		return;
	}
	held_schedule(h, now);
}

/* One waiter: 1 when answered (drop it), 0 while undecided. */
static int tick_one(struct server *sv, struct waiter *w, int64_t now)
{
	struct agent_status st = { 0 };
	struct cni_err e = { 0 };
	struct held *h = w->h;

	if (w->verb == HOLDER_RELEASE) {
		if (now < w->deadline)
			return 0;
		reply_err(w->fd, CNI_ERR_AGENT, "agent for container %s did not exit within %d ms", h->cid,
			  w->timeout_ms);
		return 1;
	}
	if (live_status(h, &st) == 0) {
		if (strcmp(st.state, "attached") == 0) {
			serve_reply(w->fd, NULL);
			return 1;
		}
		if (strcmp(st.state, "refused") == 0) {
			cni_set_err(&e, CNI_ERR_REFUSED, "broker refused the agent: %s", st.reason);
			goto fail;
		}
	}
	if (now < w->deadline)
		return 0;
	cni_set_err(&e, CNI_ERR_TRY_LATER, "broker not reachable at %.512s: waited %d ms, the agent made %lu attempt%s",
		    h->s.broker, w->timeout_ms, st.attempts, st.attempts == 1 ? "" : "s");
	if (st.reason[0])
		cni_set_details(&e, st.reason);
fail:
	serve_reply(w->fd, &e);
	return -1;
}

bool serve_tick(struct server *sv, int64_t now)
{
	for (size_t i = sv->n_w; i-- > 0; ) {
		struct waiter w = sv->w[i];
		int ret = tick_one(sv, &w, now);

		if (ret == 0)
			continue;
		wait_drop(sv, i);
		/* A failed HOLD that started the agent takes its attachment
		 * back, as a failed direct ADD does: the runtime's DEL finds
		 * nothing to do. One for an agent that served already (the
		 * broker away, say) leaves it for the runtime's DEL: a
		 * repeated ADD must not end a pod's service. Dropping may
		 * answer other waiters of the namespace: start over. */
		if (ret < 0 && w.h->fresh) {
			drop_att(sv, w.h, w.net, w.ifname, now);
			i = sv->n_w;
		}
	}
	return sv->n_w > 0;
}

void serve_shutdown(struct server *sv)
{
	for (size_t i = 0; i < sv->n_w; i++)
		reply_err(sv->w[i].fd, CNI_ERR_TRY_LATER, "nfq-holder is stopping; try again");
	sv->n_w = 0;
	free(sv->w);
	sv->w = NULL;
	sv->cap_w = 0;
}
