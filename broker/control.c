/* SPDX-License-Identifier: MIT */
/*
 * Every client is a non-blocking socket in the broker's loop with a fixed
 * request buffer and a byte ring of pending output. Requests are handled
 * one line at a time; while a client has more than CONTROL_READ_PAUSE
 * bytes of replies waiting, its requests are not read (the kernel's socket
 * buffer then pushes back on it), so memory per client stays bounded.
 *
 * The watch hook is installed in the session manager only while someone
 * watches: without a watcher the verdict step pays one NULL test. With
 * one, each packet is formatted once into a stack buffer and copied into
 * the rings of the matching watchers; the sockets are written when the
 * loop reports them writable, never from the verdict step.
 *
 * Threads: the verdict step runs on the worker threads (worker.h). The
 * hook walks the watchers under c->wmu (taken only while somebody
 * watches: without a watcher the hook is not installed) and appends each
 * line to the watcher's inbox, a fixed buffer, then rings c->wake_fd once;
 * the main thread moves the inboxes into the rings (inbox_event()). A
 * mutex rather than a per-worker ring: the filters and the watcher list
 * are the main thread's and change with requests, and the lock is held
 * for one memcpy per watcher. Called on the main thread itself (a manager
 * without workers), the hook puts lines straight into the rings.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "control.h"
#include "commands.h"
#include "ctlcmd.h"
#include "log.h"
#include "ring.h"
#include "unixsock.h"
#include "watch.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define REQ_DEPTH  8

struct control_client {
	struct control *c;
	LIST_ENTRY(control_client) link;
	int fd;
	unsigned id;
	pid_t pid;
	uid_t uid;
	char in[CONTROL_REQ_MAX];
	size_t inlen;
	struct ring out;
	uint32_t mask;                /* epoll events currently asked for */
	bool eof;                     /* the client will send nothing more */
	bool closing;                 /* close once the output is sent */
	bool watching;
	struct watch_filter filter;   /* which events this watcher gets */
	uint64_t lost;                /* events lost since the last one delivered */
	uint64_t lost_total, events;
	struct loop_timer stall;
	struct loop_timer idle;       /* no complete request for broker.control_idle_ms */
	/* under c->wmu: */
	LIST_ENTRY(control_client) wlink;  /* in c->watchers: gets events */
	bool wlinked;
	char *inbox;                  /* WATCH_INBOX bytes of whole lines from workers */
	size_t inbox_len;
	uint64_t inbox_lost;          /* events the full inbox could not take */
};

/* A watcher's share of the events of one main-loop round, from the workers. */
#define WATCH_INBOX (64u << 10)

/* Refusals at accept are logged at most once a second, with a count. */
struct ratelog {
	uint64_t at_ms;
	unsigned suppressed;
};

struct control {
	struct session_mgr *m;
	struct loop *loop;
	char *config_path;
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	LIST_HEAD(, control_client) clients;
	size_t nclients, nwatchers;
	unsigned next_id;
	uint32_t stall_ms;
	uint64_t dropped;
	struct loop_timer tick;
	int observer;                 /* session_mgr_observe() handle, -1: none */
	struct ratelog refuse_log[2];  /* REFUSE_UID, REFUSE_LIMIT */
	uint64_t refused;
	const struct http *http;      /* main.c's, shown by "status" */
	pthread_t owner;              /* the thread of the loop */
	pthread_mutex_t wmu;          /* watchers, their filters and inboxes */
	LIST_HEAD(, control_client) watchers;
	int wake_fd;                  /* eventfd: an inbox has lines */
	bool wake_armed;              /* under wmu: wake_fd rung, not yet drained */
};

static void client_close(struct control_client *cl, const char *why);
static bool client_update(struct control_client *cl);
static void watch_hook(const struct session *s, const struct nfqb_packet *p,
		       const struct pktmeta *m, int rule, const struct policy_action *act,
		       int rc, void *data);

/* ------------------------------------------------------------ output */

/* json-c's add on a NULL container (out of memory) would abort: skip it. */
static void jadd(json_object *o, const char *key, json_object *v)
{
	if (o)
		json_object_object_add(o, key, v);
	else
		json_object_put(v);
}

/* Queue @obj as one line; false when the client had to be closed. */
static bool reply(struct control_client *cl, json_object *obj)
{
	size_t len = 0;
	const char *s = obj ? json_object_to_json_string_length(obj, JSON_FLAGS, &len) : NULL;
	bool ok = s && ring_put(&cl->out, s, len) == 0 &&
		  ring_put(&cl->out, "\n", 1) == 0;

	json_object_put(obj);
	if (!ok)
		client_close(cl, "out of memory for a reply");
	return ok;
}

__attribute__((format(printf, 2, 3)))
static bool reply_error(struct control_client *cl, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!o) {
		client_close(cl, "out of memory for a reply");
		return false;
	}
	jadd(o, "ok", json_object_new_boolean(0));
	jadd(o, "error", json_object_new_string(msg));
	return reply(cl, o);
}

static void stall_over(struct loop *l, struct loop_timer *t, void *data)
{
	struct control_client *cl = data;
	char why[96];

	snprintf(why, sizeof(why), "stalled: %zu bytes not read for %u ms",
		 ring_len(&cl->out), cl->c->stall_ms);
	client_close(cl, why);
}

static void idle_over(struct loop *l, struct loop_timer *t, void *data)
{
	struct control_client *cl = data;
	char why[96];

	/* A watcher is streaming, and pending output is the stall timer's. */
	if (cl->watching || ring_len(&cl->out)) {
		loop_timer_arm(l, &cl->idle, loop_now_ms() + session_mgr_cfg(cl->c->m)->ctl.idle_ms);
		return;
	}
	snprintf(why, sizeof(why), "idle: no request for %u ms", session_mgr_cfg(cl->c->m)->ctl.idle_ms);
	client_close(cl, why);
}

static void idle_rearm(struct control_client *cl)
{
	if (cl->watching)
		loop_timer_cancel(cl->c->loop, &cl->idle);
	else
		loop_timer_arm(cl->c->loop, &cl->idle, loop_now_ms() + session_mgr_cfg(cl->c->m)->ctl.idle_ms);
}

/* Send what the socket takes; false when the client was closed. */
static bool client_flush(struct control_client *cl)
{
	bool progress = false;
	ssize_t n;

	while ((n = ring_send(&cl->out, cl->fd)) > 0)
		progress = true;
	if (n < 0 && n != -EAGAIN && n != -EINTR) {
		char why[96];

		snprintf(why, sizeof(why), "send: %s", strerror((int)-n));
		client_close(cl, why);
		return false;
	}
	if (!ring_len(&cl->out))
		loop_timer_cancel(cl->c->loop, &cl->stall);
	else if (progress || !loop_timer_armed(&cl->stall))
		loop_timer_arm(cl->c->loop, &cl->stall, loop_now_ms() + cl->c->stall_ms);
	return true;
}

/*
 * Bring the epoll mask in line with the state: read requests unless
 * paused or done, wait for writability while output is pending. Closes a
 * client that is done and has nothing left to send. False when closed.
 */
static bool client_update(struct control_client *cl)
{
	size_t pending = ring_len(&cl->out);
	uint32_t want = 0;

	if (cl->closing && !pending) {
		client_close(cl, NULL);
		return false;
	}
	if (!cl->eof && !cl->closing && pending < CONTROL_READ_PAUSE)
		want |= EPOLLIN | EPOLLRDHUP;
	if (pending)
		want |= EPOLLOUT;
	if (want != cl->mask) {
		int rc = loop_mod(cl->c->loop, cl->fd, want);

		if (rc < 0) {
			client_close(cl, "epoll_ctl failed");
			return false;
		}
		cl->mask = want;
	}
	return true;
}

/* ------------------------------------------------------------ watch */

static void watch_set(struct control *c)
{
	/* Observing only while someone watches: otherwise no call per packet. */
	if (c->nwatchers && c->observer < 0) {
		c->observer = session_mgr_observe(c->m, watch_hook, c);
	} else if (!c->nwatchers && c->observer >= 0) {
		session_mgr_unobserve(c->m, c->observer);
		c->observer = -1;
	}
}

/* Hot path: a memcpy into the ring; the loop sends it later. */
static void client_event(struct control_client *cl, const char *line, size_t n)
{
	char lb[48];
	size_t ln = 0, pending = ring_len(&cl->out);

	if (cl->lost)
		ln = watch_format_lost(lb, sizeof(lb), cl->lost);
	if (pending + ln + n > CONTROL_WATCH_MAX ||
	    (ln && ring_put(&cl->out, lb, ln) < 0)) {
		cl->lost++;
		cl->lost_total++;
		return;
	}
	cl->lost = 0;
	if (ring_put(&cl->out, line, n) < 0) {
		cl->lost++;
		cl->lost_total++;
	} else {
		cl->events++;
	}
	/* Empty before: ask the loop to tell us when the socket takes it. */
	if (!pending && !(cl->mask & EPOLLOUT)) {
		if (loop_mod(cl->c->loop, cl->fd, cl->mask | EPOLLOUT) == 0)
			cl->mask |= EPOLLOUT;
		loop_timer_arm(cl->c->loop, &cl->stall, loop_now_ms() + cl->c->stall_ms);
	}
}

/* A worker's event for @cl, under c->wmu: into the inbox, the main thread woken once. */
static void inbox_put(struct control_client *cl, const char *line, size_t n)
{
	struct control *c = cl->c;
	uint64_t one = 1;

	if (!cl->inbox || cl->inbox_len + n > WATCH_INBOX) {
		cl->inbox_lost++;
		return;
	}
	memcpy(cl->inbox + cl->inbox_len, line, n);
	cl->inbox_len += n;
	if (!c->wake_armed && write(c->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		c->wake_armed = true;
}

static void watch_hook(const struct session *s, const struct nfqb_packet *p,
		       const struct pktmeta *m, int rule, const struct policy_action *act,
		       int rc, void *data)
{
	struct control *c = data;
	bool here = pthread_equal(pthread_self(), c->owner);
	struct control_client *cl;
	char line[WATCH_EVENT_MAX];
	size_t n = 0;

	pthread_mutex_lock(&c->wmu);
	LIST_FOREACH(cl, &c->watchers, wlink) {
		if (!watch_filter_match(&cl->filter, s, m, rule, act))
			continue;
		if (!n)
			n = watch_format(line, sizeof(line), s, p, m, rule, act, rc);
		if (!n)
			break;      /* cannot happen with WATCH_EVENT_MAX; never send half */
		if (here)
			client_event(cl, line, n);
		else
			inbox_put(cl, line, n);
	}
	pthread_mutex_unlock(&c->wmu);
}

/* The workers' lines of @cl into its ring, one event at a time (loss counted as ever). */
static void inbox_drain(struct control_client *cl)
{
	size_t off = 0;

	while (off < cl->inbox_len) {
		const char *nl = memchr(cl->inbox + off, '\n', cl->inbox_len - off);
		size_t n = nl ? (size_t)(nl - (cl->inbox + off)) + 1 : cl->inbox_len - off;

		client_event(cl, cl->inbox + off, n);
		off += n;
	}
	cl->inbox_len = 0;
	cl->lost += cl->inbox_lost;
	cl->lost_total += cl->inbox_lost;
	cl->inbox_lost = 0;
}

static void inbox_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct control *c = data;
	struct control_client *cl;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing new */
	}
	pthread_mutex_lock(&c->wmu);
	c->wake_armed = false;
	LIST_FOREACH(cl, &c->watchers, wlink)
		inbox_drain(cl);
	pthread_mutex_unlock(&c->wmu);
}

/* @cl gets no more events: out of c->watchers, its inbox gone. */
static void watch_unlink(struct control_client *cl)
{
	struct control *c = cl->c;

	pthread_mutex_lock(&c->wmu);
	if (cl->wlinked) {
		LIST_REMOVE(cl, wlink);
		cl->wlinked = false;
	}
	pthread_mutex_unlock(&c->wmu);
	free(cl->inbox);
	cl->inbox = NULL;
	cl->inbox_len = 0;
}

/* @cl is done: its output is flushed, then it is closed; no more events. */
static void client_set_closing(struct control_client *cl)
{
	cl->closing = true;
	watch_unlink(cl);
}

/* ------------------------------------------------------------ requests */

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

static bool line_blank(const char *line, size_t len)
{
	while (len && (is_blank(line[len - 1]) || line[len - 1] == '\n'))
		len--;
	return len == 0;
}

/*
 * Parse one request line; the whole line must be one JSON object. Returns
 * 1 with *@out set, 0 after an error reply, -1 when the client was closed.
 */
static int parse_request(struct control_client *cl, const char *line, size_t len, json_object **out)
{
	struct json_tokener *tok = json_tokener_new_ex(REQ_DEPTH);
	enum json_tokener_error jerr;
	json_object *req;
	size_t end;

	*out = NULL;
	if (!tok) {
		client_close(cl, "out of memory for a request");
		return -1;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!req && jerr == json_tokener_continue)
		jerr = json_tokener_error_parse_eof;
	if (!req && jerr == json_tokener_success)
		jerr = json_tokener_error_parse_unexpected;
	if (jerr != json_tokener_success) {
		json_object_put(req);
		return reply_error(cl, "malformed request: %s", json_tokener_error_desc(jerr))
		       ? 0 : -1;
	}
	while (end < len && is_blank(line[end]))
		end++;
	if (end < len) {
		json_object_put(req);
		return reply_error(cl, "malformed request: text after the JSON object") ? 0 : -1;
	}
	if (!json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return reply_error(cl, "a request is a JSON object like {\"cmd\":\"status\"}")
		       ? 0 : -1;
	}
	*out = req;
	return 1;
}

/* The handler of @cmd on @req; NULL with a reason in @err. */
static json_object *run_command(struct control_client *cl, const struct ctlcmd *cmd,
				json_object *req, char *err, size_t el)
{
	struct cmd_req r = { .m = cl->c->m, .ctl = cl->c, .cl = cl, .client_id = cl->id,
			     .uid = cl->uid, .req = req, .err = err, .errlen = el };
	command_fn fn = commands_handler(cmd->name);

	if (!fn) {
		snprintf(err, el, "%s is not served by this broker", cmd->name);
		return NULL;
	}
	return fn(&r);
}

static const char *unknown_key(const struct ctlcmd *cmd, json_object *req)
{
	json_object_object_foreach(req, key, val) {
		(void)val;
		if (!ctlcmd_accepts(cmd, key))
			return key;
	}
	return NULL;
}

/* One request line; false when the client was closed. */
static bool handle_line(struct control_client *cl, const char *line, size_t len)
{
	char err[256] = "";
	json_object *req, *cmdo, *o;
	const struct ctlcmd *cmd;
	char names[CTLCMD_NAMES_MAX];
	const char *name, *bad;
	int rc, access;

	while (len && is_blank(line[len - 1]))
		len--;
	if (!len)
		return true;      /* blank lines are keep-alives */
	if (memchr(line, '\0', len))
		return reply_error(cl, "malformed request: NUL byte in the line");
	rc = parse_request(cl, line, len, &req);
	if (rc <= 0)
		return rc == 0;
	if (!json_object_object_get_ex(req, "cmd", &cmdo) ||
	    !json_object_is_type(cmdo, json_type_string)) {
		json_object_put(req);
		return reply_error(cl, "missing \"cmd\" (a string: %s)",
				   ctlcmd_names(names, sizeof(names)));
	}
	name = json_object_get_string(cmdo);
	cmd = ctlcmd_find(name);
	if (!cmd) {
		char nb[80];

		watch_json_str(nb, sizeof(nb), name);
		json_object_put(req);
		return reply_error(cl, "unknown command %s (known: %s)", nb,
				   ctlcmd_names(names, sizeof(names)));
	}
	bad = unknown_key(cmd, req);
	if (bad) {
		char kb[80];

		watch_json_str(kb, sizeof(kb), bad);
		json_object_put(req);
		return reply_error(cl, "unknown key %s in a \"%s\" request", kb, cmd->name);
	}
	/* Asked each time: a reload may have changed who is allowed. */
	access = cfg_control_access(session_mgr_cfg(cl->c->m), cl->uid);
	if (access == CONTROL_NONE || (cmd->access == CTLCMD_ADMIN && access != CONTROL_ADMIN)) {
		json_object_put(req);
		log_event(LOGL_INFO, "control_deny", "client=%u pid=%d uid=%u cmd=%s", cl->id,
			  (int)cl->pid, (unsigned)cl->uid, cmd->name);
		if (access == CONTROL_NONE) {
			client_set_closing(cl);
			return reply_error(cl, "uid %u is not allowed on the control socket",
					   (unsigned)cl->uid);
		}
		return reply_error(cl, "%s needs an admin uid (broker.control_admin_uids)",
				   cmd->name);
	}
	log_event(LOGL_DEBUG, "control_request", "client=%u cmd=%s", cl->id, cmd->name);
	o = run_command(cl, cmd, req, err, sizeof(err));
	json_object_put(req);
	if (!o)
		return reply_error(cl, "%s", err[0] ? err : "out of memory");
	return reply(cl, o);
}

/*
 * Handle the complete lines in the request buffer while the client is not
 * paused; a line that fills the buffer without a newline is refused and
 * ends the connection. False when the client was closed.
 */
static bool client_process_some(struct control_client *cl)
{
	while (!cl->closing && ring_len(&cl->out) < CONTROL_READ_PAUSE) {
		char *nl = memchr(cl->in, '\n', cl->inlen);
		size_t len;

		if (!nl) {
			if (cl->inlen == sizeof(cl->in)) {
				cl->inlen = 0;
				if (!reply_error(cl, "request too long (at most %d bytes per line)",
						 CONTROL_REQ_MAX))
					return false;
				client_set_closing(cl);
				log_event(LOGL_INFO, "control_drop", "client=%u pid=%d "
					  "reason=\"request too long\"", cl->id, (int)cl->pid);
				break;
			}
			/* A last request without its newline still counts. */
			if (cl->eof && cl->inlen) {
				len = cl->inlen;
				cl->inlen = 0;
				if (!handle_line(cl, cl->in, len))
					return false;
			}
			break;
		}
		len = (size_t)(nl - cl->in);
		/* Blank keep-alive lines do not keep an idle client. */
		if (!line_blank(cl->in, len))
			idle_rearm(cl);
		if (!handle_line(cl, cl->in, len))
			return false;
		memmove(cl->in, nl + 1, cl->inlen - len - 1);
		cl->inlen -= len + 1;
	}
	if (cl->eof && !cl->inlen && !cl->watching)
		client_set_closing(cl);
	return client_flush(cl);
}

/*
 * client_process_some() until the pause or the buffer's end: when the
 * pause stopped it and the flush then drained everything at once, no
 * EPOLLOUT will come and the client may send nothing more, so the lines
 * still buffered must go on now (at most a buffer's worth).
 */
static bool client_process(struct control_client *cl)
{
	do {
		if (!client_process_some(cl))
			return false;
	} while (!cl->closing && ring_len(&cl->out) < CONTROL_READ_PAUSE &&
		 memchr(cl->in, '\n', cl->inlen));
	return client_update(cl);
}

static void client_read(struct control_client *cl)
{
	ssize_t n = recv(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen, MSG_DONTWAIT);

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		client_close(cl, "receive error");
		return;
	}
	if (n == 0)
		cl->eof = true;
	cl->inlen += (size_t)n;
	client_process(cl);
}

static void client_event_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	struct control_client *cl = data;

	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The peer is gone: nothing more can be delivered. */
		client_close(cl, NULL);
		return;
	}
	if (events & EPOLLOUT) {
		if (!client_flush(cl))
			return;
		/* Drained below the pause: requests waiting in the buffer go on. */
		if (!client_process(cl))
			return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP) && cl->mask & EPOLLIN)
		client_read(cl);
}

/* ------------------------------------------------------------ clients */

/*
 * Closing a unix socket with unread data resets the connection: the peer
 * would see ECONNRESET instead of our last reply and the end of the
 * stream. What it sent already is read and thrown away first (bounded).
 */
static void drain_input(int fd)
{
	char sink[4096];

	for (int i = 0; i < 256; i++)
		if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
}

static void client_close(struct control_client *cl, const char *why)
{
	struct control *c = cl->c;
	char vb[LOG_VALUE_MAX];

	if (why) {
		c->dropped++;
		log_event(LOGL_WARN, "control_drop", "client=%u pid=%d reason=%s lost=%" PRIu64,
			  cl->id, (int)cl->pid, log_value(vb, sizeof(vb), why), cl->lost_total);
	} else {
		log_event(LOGL_DEBUG, "control_close", "client=%u pid=%d events=%" PRIu64
			  " lost=%" PRIu64, cl->id, (int)cl->pid, cl->events, cl->lost_total);
	}
	loop_timer_cancel(c->loop, &cl->stall);
	loop_timer_cancel(c->loop, &cl->idle);
	if (cl->fd >= 0) {
		loop_del(c->loop, cl->fd);
		drain_input(cl->fd);
		close(cl->fd);
		cl->fd = -1;
	}
	watch_unlink(cl);
	if (cl->watching) {
		log_event(LOGL_INFO, "watch_end", "client=%u pid=%d events=%" PRIu64 " lost=%"
			  PRIu64, cl->id, (int)cl->pid, cl->events, cl->lost_total);
		cl->watching = false;
		c->nwatchers--;
		watch_set(c);
	}
	LIST_REMOVE(cl, link);
	c->nclients--;
	ring_free(&cl->out);
	free(cl);
}

enum { REFUSE_UID, REFUSE_LIMIT };

/* At most one refusal line a second per kind (a uid not allowed, a limit):
 * a connect flood cannot flood the log, nor hide the other kind. */
__attribute__((format(printf, 3, 4)))
static void refuse_log(struct control *c, int kind, const char *fmt, ...)
{
	struct ratelog *rl = &c->refuse_log[kind];
	uint64_t now = loop_now_ms();
	char msg[256];
	va_list ap;

	c->refused++;
	session_mgr_count_refusal(c->m, kind == REFUSE_UID ? REFUSAL_CONTROL_UID :
				  REFUSAL_CONTROL_LIMIT);
	if (rl->at_ms && now - rl->at_ms < 1000) {
		rl->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_event(LOGL_WARN, "control_refuse", "%s suppressed=%u", msg, rl->suppressed);
	rl->at_ms = now ? now : 1;
	rl->suppressed = 0;
}

/* Say why, best effort and without waiting, and hang up. */
__attribute__((format(printf, 2, 3)))
static void refuse_client(int fd, const char *fmt, ...)
{
	char msg[200], line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", msg);
	(void)send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	drain_input(fd);
	close(fd);
}

/*
 * Whether one more client of @uid (with @access) fits: CONTROL_MAX_PER_UID
 * per uid, and the last CONTROL_ADMIN_RESERVE slots kept for admin uids,
 * so no read-only user can lock root's `nfq-ctl status` out.
 */
static const char *client_limit(const struct control *c, uid_t uid, int access)
{
	const struct control_client *cl;
	size_t mine = 0;

	if (c->nclients >= CONTROL_MAX_CLIENTS)
		return "too many control clients";
	if (access != CONTROL_ADMIN &&
	    c->nclients >= CONTROL_MAX_CLIENTS - CONTROL_ADMIN_RESERVE)
		return "too many control clients (the rest are kept for admin uids)";
	LIST_FOREACH(cl, &c->clients, link)
		mine += cl->uid == uid;
	return mine >= CONTROL_MAX_PER_UID ? "too many control clients of this uid" : NULL;
}

static void client_add(struct control *c, int fd)
{
	struct control_client *cl;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
	socklen_t cl_len = sizeof(cred);
	const char *full;
	int rc, access;

	/* No credentials: nobody we can vouch for (uid -1 is never allowed). */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) < 0)
		cred.uid = (uid_t)-1;
	access = cfg_control_access(session_mgr_cfg(c->m), cred.uid);
	if (access == CONTROL_NONE) {
		refuse_log(c, REFUSE_UID, "uid=%u pid=%d reason=\"not in broker.control_allow_uids\"",
			   (unsigned)cred.uid, (int)cred.pid);
		refuse_client(fd, "uid %u is not allowed on the control socket",
			      (unsigned)cred.uid);
		return;
	}
	full = client_limit(c, cred.uid, access);
	if (full) {
		refuse_log(c, REFUSE_LIMIT, "uid=%u pid=%d reason=\"%s\" clients=%zu max=%d per_uid=%d",
			   (unsigned)cred.uid, (int)cred.pid, full, c->nclients,
			   CONTROL_MAX_CLIENTS, CONTROL_MAX_PER_UID);
		refuse_client(fd, "%s (at most %d, %d per uid)", full, CONTROL_MAX_CLIENTS,
			      CONTROL_MAX_PER_UID);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->c = c;
	cl->fd = fd;
	cl->id = ++c->next_id;
	cl->pid = cred.pid;
	cl->uid = cred.uid;
	cl->mask = EPOLLIN | EPOLLRDHUP;
	loop_timer_init(&cl->stall, stall_over, cl);
	loop_timer_init(&cl->idle, idle_over, cl);
	rc = loop_add(c->loop, fd, cl->mask, client_event_cb, cl);
	if (rc < 0) {
		log_event(LOGL_WARN, "control_refuse", "reason=\"%s\"", strerror(-rc));
		close(fd);
		free(cl);
		return;
	}
	LIST_INSERT_HEAD(&c->clients, cl, link);
	c->nclients++;
	idle_rearm(cl);
	log_event(LOGL_DEBUG, "control_connect", "client=%u pid=%d uid=%u", cl->id,
		  (int)cl->pid, (unsigned)cl->uid);
}

static void listener_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct control *c = data;

	/* A bounded batch: a connect storm cannot monopolise the loop. */
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_event(LOGL_WARN, "control_accept", "error=\"%s\"",
					  strerror(errno));
			return;
		}
		client_add(c, cfd);
	}
}

/* ------------------------------------------------------------ ticks */

/* A reload may have taken watch away from a uid: its watchers stop. */
static void drop_unauthorized(struct control *c)
{
	struct control_client *cl, *next;

	for (cl = LIST_FIRST(&c->clients); cl; cl = next) {
		next = LIST_NEXT(cl, link);
		if (cl->watching && cfg_control_access(session_mgr_cfg(c->m), cl->uid) != CONTROL_ADMIN)
			client_close(cl, "watch needs an admin uid (broker.control_admin_uids)");
	}
}

static void tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct control *c = data;

	drop_unauthorized(c);
	loop_timer_arm(l, &c->tick, loop_tick_next(t->deadline, CONTROL_AUTH_TICK_MS));
}

/* ------------------------------------------------------------ server */

static int control_bind(struct control *c, mode_t mode, char *why, size_t whylen)
{
	bool stale = false;

	c->fd = unixsock_bind_path(c->path, SOCK_STREAM, mode, 64, &c->dev, &c->ino, &stale,
				   why, whylen);
	if (stale)
		log_event(LOGL_INFO, "stale_socket", "path=%s removed=true", c->path);
	return c->fd < 0 ? c->fd : 0;
}

struct control *control_new(struct session_mgr *m, const char *config_path,
			    const char *path, mode_t mode, char *why, size_t whylen)
{
	struct control *c = calloc(1, sizeof(*c));
	char vb[LOG_VALUE_MAX];
	int rc = -ENOMEM;

	if (why && whylen)
		why[0] = '\0';
	if (!c)
		goto fail;
	c->m = m;
	c->loop = session_mgr_loop(m);
	LIST_INIT(&c->clients);
	c->fd = -1;
	c->observer = -1;
	c->stall_ms = CONTROL_STALL_MS;
	c->owner = pthread_self();
	pthread_mutex_init(&c->wmu, NULL);
	LIST_INIT(&c->watchers);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	loop_timer_init(&c->tick, tick, c);
	c->path = strdup(path);
	/* Absolute, so "status" says which file and a reload finds it. */
	if (config_path)
		c->config_path = realpath(config_path, NULL);
	if (config_path && !c->config_path)
		c->config_path = strdup(config_path);
	if (!c->path || (config_path && !c->config_path))
		goto fail;
	rc = c->wake_fd < 0 ? -errno : loop_add(c->loop, c->wake_fd, EPOLLIN, inbox_event, c);
	if (rc < 0) {
		snprintf(why, whylen, "control socket's event fd: %s", strerror(-rc));
		goto fail;
	}
	rc = control_bind(c, mode, why, whylen);
	if (rc < 0)
		goto fail;
	rc = loop_add(c->loop, c->fd, EPOLLIN, listener_event, c);
	if (rc < 0) {
		snprintf(why, whylen, "cannot watch the control socket: %s", strerror(-rc));
		goto fail;
	}
	rc = loop_timer_arm(c->loop, &c->tick, loop_tick_after(CONTROL_AUTH_TICK_MS));
	if (rc < 0)
		goto fail;
	log_event(LOGL_INFO, "control_listen", "path=%s mode=%04o",
		  log_value(vb, sizeof(vb), c->path), (unsigned)mode);
	return c;
fail:
	if (rc == -ENOMEM && why && !why[0])
		snprintf(why, whylen, "out of memory");
	control_free(c);
	errno = -rc;
	return NULL;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->clients))
		client_close(LIST_FIRST(&c->clients), NULL);
	watch_set(c);
	loop_timer_cancel(c->loop, &c->tick);
	if (c->fd >= 0) {
		loop_del(c->loop, c->fd);
		close(c->fd);
	}
	unixsock_unlink_ours(c->path, c->dev, c->ino);
	if (c->wake_fd >= 0) {
		loop_del(c->loop, c->wake_fd);
		close(c->wake_fd);
	}
	pthread_mutex_destroy(&c->wmu);
	free(c->path);
	free(c->config_path);
	free(c);
}

size_t control_clients(const struct control *c)
{
	return c->nclients;
}

size_t control_watchers(const struct control *c)
{
	return c->nwatchers;
}

void control_set_http(struct control *c, const struct http *h)
{
	c->http = h;
}

void control_get_info(const struct control *c, struct control_info *out)
{
	*out = (struct control_info){ .clients = c->nclients, .watchers = c->nwatchers,
				      .refused = c->refused, .config_path = c->config_path,
				      .http = c->http };
}

void control_client_watch(struct control_client *cl, const struct watch_filter *f)
{
	char fb[WATCH_GLOB_MAX * 4], vb[LOG_VALUE_MAX], nb[LOG_VALUE_MAX];

	struct control *c = cl->c;

	/* Without room the events of worker threads are counted lost. */
	if (!cl->inbox && !cl->closing)
		cl->inbox = malloc(WATCH_INBOX);
	pthread_mutex_lock(&c->wmu);
	cl->filter = *f;
	if (!cl->wlinked && !cl->closing) {
		LIST_INSERT_HEAD(&c->watchers, cl, wlink);
		cl->wlinked = true;
	}
	pthread_mutex_unlock(&c->wmu);
	if (!cl->watching) {
		cl->watching = true;
		c->nwatchers++;
		watch_set(c);
		loop_timer_cancel(c->loop, &cl->idle);
	}
	/* The filter comes from the client: quoted, so it cannot forge fields. */
	log_event(LOGL_INFO, "watch_start", "client=%u pid=%d ns=%s filter=%s", cl->id,
		  (int)cl->pid, f->ns[0] ? log_value(nb, sizeof(nb), f->ns) : "*",
		  log_value(vb, sizeof(vb), watch_filter_describe(f, fb, sizeof(fb))));
}

void control_set_stall_ms(struct control *c, uint32_t ms)
{
	c->stall_ms = ms ? ms : 1;
}
