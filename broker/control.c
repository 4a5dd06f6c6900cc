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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "control.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ring.h"
#include "unixsock.h"
#include "watch.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define REQ_DEPTH  8

struct client {
	struct control *c;
	struct client *prev, *next;
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
	bool ns_filter;
	char ns[WIRE_NAME_MAX];
	uint64_t lost;                /* events lost since the last one delivered */
	uint64_t lost_total, events;
	struct loop_timer stall;
	struct loop_timer idle;       /* no complete request for broker.control_idle_ms */
};

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
	struct client *clients;
	size_t nclients, nwatchers;
	unsigned next_id;
	uint32_t stall_ms;
	uint64_t dropped;
	struct loop_timer tick;
	struct loop_timer kstats;     /* refreshes the sessions' kernel statistics */
	uint32_t kstats_ms;           /* its period */
	struct ratelog refuse_log[2];  /* REFUSE_UID, REFUSE_LIMIT */
	uint64_t refused;
	struct http *http;
};

static void client_close(struct client *cl, const char *why);
static bool client_update(struct client *cl);
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

static void jpush(json_object *arr, json_object *v)
{
	if (arr)
		json_object_array_add(arr, v);
	else
		json_object_put(v);
}

/* Queue @obj as one line; false when the client had to be closed. */
static bool reply(struct client *cl, json_object *obj)
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

static json_object *reply_new(void)
{
	json_object *o = json_object_new_object();

	if (o)
		jadd(o, "ok", json_object_new_boolean(1));
	return o;
}

__attribute__((format(printf, 2, 3)))
static bool reply_error(struct client *cl, const char *fmt, ...)
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
	struct client *cl = data;
	char why[96];

	snprintf(why, sizeof(why), "stalled: %zu bytes not read for %u ms",
		 ring_len(&cl->out), cl->c->stall_ms);
	client_close(cl, why);
}

static void idle_over(struct loop *l, struct loop_timer *t, void *data)
{
	struct client *cl = data;
	char why[96];

	/* A watcher is streaming, and pending output is the stall timer's. */
	if (cl->watching || ring_len(&cl->out)) {
		loop_timer_arm(l, &cl->idle, loop_now_ms() + cl->c->m->cfg->ctl.idle_ms);
		return;
	}
	snprintf(why, sizeof(why), "idle: no request for %u ms", cl->c->m->cfg->ctl.idle_ms);
	client_close(cl, why);
}

static void idle_rearm(struct client *cl)
{
	if (cl->watching)
		loop_timer_cancel(cl->c->loop, &cl->idle);
	else
		loop_timer_arm(cl->c->loop, &cl->idle, loop_now_ms() + cl->c->m->cfg->ctl.idle_ms);
}

/* Send what the socket takes; false when the client was closed. */
static bool client_flush(struct client *cl)
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
static bool client_update(struct client *cl)
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
	/* Only ours to set: the session manager has one hook. */
	if (c->nwatchers) {
		c->m->watch = watch_hook;
		c->m->watch_data = c;
	} else if (c->m->watch == watch_hook) {
		c->m->watch = NULL;
		c->m->watch_data = NULL;
	}
}

/* Hot path: a memcpy into the ring; the loop sends it later. */
static void client_event(struct client *cl, const char *line, size_t n)
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

static void watch_hook(const struct session *s, const struct nfqb_packet *p,
		       const struct pktmeta *m, int rule, const struct policy_action *act,
		       int rc, void *data)
{
	struct control *c = data;
	char line[WATCH_EVENT_MAX];
	size_t n = 0;

	for (struct client *cl = c->clients; cl; cl = cl->next) {
		if (!cl->watching || cl->closing)
			continue;
		if (cl->ns_filter && strcmp(cl->ns, s->name) != 0)
			continue;
		if (!n)
			n = watch_format(line, sizeof(line), s, p, m, rule, act, rc);
		if (!n)
			return;     /* cannot happen with WATCH_EVENT_MAX; never send half */
		client_event(cl, line, n);
	}
}

/* ------------------------------------------------------------ commands */

static json_object *verdicts_obj(const struct session_counters *sc)
{
	json_object *v = json_object_new_object();

	jadd(v, "accept", json_object_new_uint64(sc->accept));
	jadd(v, "drop", json_object_new_uint64(sc->drop));
	jadd(v, "repeat", json_object_new_uint64(sc->repeat));
	jadd(v, "queue", json_object_new_uint64(sc->queue));
	jadd(v, "error", json_object_new_uint64(sc->errors));
	return v;
}

static json_object *http_obj(const struct http *h)
{
	json_object *o = json_object_new_object();
	struct http_stats st;

	http_get_stats(h, &st);
	jadd(o, "connections", json_object_new_uint64(st.connections));
	jadd(o, "cut_deadline", json_object_new_uint64(st.cut_deadline));
	jadd(o, "cut_evicted", json_object_new_uint64(st.cut_evicted));
	jadd(o, "refused", json_object_new_uint64(st.refused));
	jadd(o, "renders", json_object_new_uint64(st.renders));
	jadd(o, "cached", json_object_new_uint64(st.cached));
	return o;
}

static json_object *cmd_status(struct client *cl, json_object *req, char *err, size_t el)
{
	struct control *c = cl->c;
	struct session_mgr *m = c->m;
	json_object *o = reply_new();
	time_t now = time(NULL);

	jadd(o, "version", json_object_new_string(NFQB_VERSION_STRING));
	jadd(o, "pid", json_object_new_int(getpid()));
	jadd(o, "uptime_s", json_object_new_uint64(
		now > m->started ? (uint64_t)(now - m->started) : 0));
	jadd(o, "namespaces", json_object_new_uint64(m->count));
	jadd(o, "packets", json_object_new_uint64(m->total.packets));
	jadd(o, "bytes", json_object_new_uint64(m->total.bytes));
	jadd(o, "verdicts", verdicts_obj(&m->total));
	jadd(o, "attaches", json_object_new_uint64(m->attaches));
	jadd(o, "refusals", json_object_new_uint64(m->refusals));
	jadd(o, "control_clients", json_object_new_uint64(c->nclients));
	jadd(o, "watchers", json_object_new_uint64(c->nwatchers));
	jadd(o, "control_refused", json_object_new_uint64(c->refused));
	jadd(o, "config", c->config_path ?
			       json_object_new_string(c->config_path) : NULL);
	jadd(o, "metrics_listen", c->http ?
			       json_object_new_string(http_address(c->http)) : NULL);
	if (c->http)
		jadd(o, "http", http_obj(c->http));
	jadd(o, "access", json_object_new_string(
		cfg_control_access(m->cfg, cl->uid) == CONTROL_ADMIN ? "admin" : "read-only"));
	return o;
}

/* From the snapshot the control tick keeps (metrics_kstats_refresh): no setns here. */
static json_object *kernel_arr(const struct session *s, json_object *agent)
{
	const struct nfqb_kstat *ks = s->ks.k;
	json_object *arr = json_object_new_array();
	int n = s->ks.n;

	if (!s->ks.at_ms) {
		jadd(agent, "kernel_error", json_object_new_string("not read yet"));
		return arr;
	}
	jadd(agent, "kernel_age_ms", json_object_new_uint64(loop_now_ms() - s->ks.at_ms));
	if (n < 0)
		jadd(agent, "kernel_error", json_object_new_string(session_kstats_strerror(n)));
	for (int i = 0; i < n; i++) {
		json_object *k = json_object_new_object();

		jadd(k, "queue", json_object_new_uint64(ks[i].queue));
		jadd(k, "queued", json_object_new_uint64(ks[i].queued));
		jadd(k, "dropped_full", json_object_new_uint64(ks[i].dropped_full));
		jadd(k, "dropped_netlink",
				       json_object_new_uint64(ks[i].dropped_netlink));
		jadd(k, "id_seq", json_object_new_uint64(ks[i].id_seq));
		jadd(k, "portid", json_object_new_uint64(ks[i].portid));
		jpush(arr, k);
	}
	return arr;
}

static json_object *agent_obj(const struct session *s)
{
	json_object *a = json_object_new_object(), *q = json_object_new_array();
	struct nfqb_queue_stats st;

	nfqb_queue_get_stats(s->q, &st);
	for (size_t i = 0; i < s->nqueues; i++)
		jpush(q, json_object_new_uint64(s->queues[i]));
	jadd(a, "name", json_object_new_string(s->name));
	jadd(a, "state", json_object_new_string(session_state_name(s->state)));
	jadd(a, "netns_inode", json_object_new_uint64(s->netns_ino));
	jadd(a, "agent_pid", json_object_new_int(s->agent_pid));
	jadd(a, "agent_uid", json_object_new_uint64(s->agent_uid));
	jadd(a, "policy", json_object_new_string(policy_name(s->policy)));
	jadd(a, "queues", q);
	jadd(a, "packets", json_object_new_uint64(s->c.packets));
	jadd(a, "bytes", json_object_new_uint64(s->c.bytes));
	jadd(a, "verdicts", verdicts_obj(&s->c));
	jadd(a, "kernel", kernel_arr(s, a));
	jadd(a, "overruns", json_object_new_uint64(st.enobufs));
	jadd(a, "attached_at", json_object_new_int64(s->attached_at));
	jadd(a, "takeovers", json_object_new_uint64(s->takeovers));
	return a;
}

static int by_name(const void *a, const void *b)
{
	const struct session *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static json_object *cmd_agents(struct client *cl, json_object *req, char *err, size_t el)
{
	struct session_mgr *m = cl->c->m;
	const struct session **v = calloc(m->count ? m->count : 1, sizeof(*v));
	json_object *o, *arr;
	size_t n = 0;

	if (!v) {
		snprintf(err, el, "out of memory");
		return NULL;
	}
	for (const struct session *s = m->head; s && n < m->count; s = s->next)
		v[n++] = s;
	qsort(v, n, sizeof(*v), by_name);
	o = reply_new();
	arr = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		jpush(arr, agent_obj(v[i]));
	jadd(o, "agents", arr);
	free(v);
	return o;
}

static json_object *rule_obj(const struct policy *p, int idx)
{
	json_object *r = json_object_new_object();
	const struct policy_counter *pc = policy_counter(p, idx);

	jadd(r, "policy", json_object_new_string(policy_name(p)));
	jadd(r, "rule", json_object_new_string(policy_rule_name(p, idx)));
	jadd(r, "packets", json_object_new_uint64(pc->packets));
	jadd(r, "bytes", json_object_new_uint64(pc->bytes));
	return r;
}

static json_object *cmd_rules(struct client *cl, json_object *req, char *err, size_t el)
{
	const struct policy_set *ps = cl->c->m->cfg->policies;
	json_object *o = reply_new(), *arr = json_object_new_array();

	for (size_t i = 0; i < policy_set_count(ps); i++) {
		const struct policy *p = policy_set_at(ps, i);
		int nr = (int)policy_rule_count(p);

		for (int r = 0; r < nr; r++)
			jpush(arr, rule_obj(p, r));
		jpush(arr, rule_obj(p, -1));
	}
	jadd(o, "rules", arr);
	return o;
}

static json_object *cmd_reload(struct client *cl, json_object *req, char *err, size_t el)
{
	struct control *c = cl->c;
	struct errs e = { 0 };
	char vb[LOG_VALUE_MAX];
	json_object *o, *arr;

	if (!c->config_path) {
		snprintf(err, el, "no config file to reload from");
		return NULL;
	}
	log_event(LOGL_INFO, "reload_start", "config=%s source=control client=%u",
		  log_value(vb, sizeof(vb), c->config_path), cl->id);
	if (session_mgr_reload(c->m, c->config_path, &e) == 0) {
		errs_reset(&e);
		o = reply_new();
		jadd(o, "namespaces", json_object_new_uint64(c->m->count));
		return o;
	}
	o = json_object_new_object();
	arr = json_object_new_array();
	jadd(o, "ok", json_object_new_boolean(0));
	jadd(o, "error", json_object_new_string(
		"the new config was rejected, the old one stays in force"));
	for (size_t i = 0; i < e.n; i++)
		jpush(arr, json_object_new_string(e.lines[i]));
	if (e.oom)
		jpush(arr, json_object_new_string("(out of memory: errors missing)"));
	jadd(o, "errors", arr);
	errs_reset(&e);
	return o;
}

static json_object *cmd_watch(struct client *cl, json_object *req, char *err, size_t el)
{
	char vb[LOG_VALUE_MAX];
	json_object *ns = NULL, *o;

	if (json_object_object_get_ex(req, "ns", &ns) && !json_object_is_type(ns, json_type_null)) {
		if (!json_object_is_type(ns, json_type_string) ||
		    json_object_get_string_len(ns) == 0) {
			snprintf(err, el, "\"ns\" must be a namespace name (a non-empty string)");
			return NULL;
		}
		if ((size_t)json_object_get_string_len(ns) >= sizeof(cl->ns)) {
			snprintf(err, el, "\"ns\" longer than %zu bytes", sizeof(cl->ns) - 1);
			return NULL;
		}
		snprintf(cl->ns, sizeof(cl->ns), "%s", json_object_get_string(ns));
		cl->ns_filter = true;
	} else {
		cl->ns[0] = '\0';
		cl->ns_filter = false;
	}
	if (!cl->watching) {
		cl->watching = true;
		cl->c->nwatchers++;
		watch_set(cl->c);
		loop_timer_cancel(cl->c->loop, &cl->idle);
	}
	/* The name comes from the client: quoted, so it cannot forge fields. */
	log_event(LOGL_INFO, "watch_start", "client=%u pid=%d ns=%s", cl->id, (int)cl->pid,
		  cl->ns_filter ? log_value(vb, sizeof(vb), cl->ns) : "*");
	o = reply_new();
	jadd(o, "watch", cl->ns_filter ? json_object_new_string(cl->ns) : NULL);
	return o;
}

static json_object *cmd_metrics(struct client *cl, json_object *req, char *err, size_t el)
{
	struct metrics_buf b = { 0 };
	json_object *o;

	if (metrics_render(cl->c->m, &b) < 0) {
		metrics_buf_free(&b);
		snprintf(err, el, "out of memory");
		return NULL;
	}
	o = reply_new();
	jadd(o, "text", json_object_new_string_len(b.data, (int)b.len));
	metrics_buf_free(&b);
	return o;
}

typedef json_object *(*cmd_fn)(struct client *cl, json_object *req, char *err, size_t el);

static const struct cmd {
	const char *name;
	cmd_fn fn;
	const char *keys[2];          /* allowed besides "cmd" */
	bool admin;                   /* changes the broker or shows every tenant's packets */
} cmds[] = {
	{ "status", cmd_status, { NULL }, false },
	{ "agents", cmd_agents, { NULL }, false },
	{ "rules", cmd_rules, { NULL }, false },
	{ "reload", cmd_reload, { NULL }, true },
	{ "watch", cmd_watch, { "ns", NULL }, true },
	{ "metrics", cmd_metrics, { NULL }, false },
};

static const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static const char *unknown_key(const struct cmd *cmd, json_object *req)
{
	json_object_object_foreach(req, key, val) {
		bool known = strcmp(key, "cmd") == 0;

		(void)val;
		for (size_t i = 0; !known && i < 2 && cmd->keys[i]; i++)
			known = strcmp(key, cmd->keys[i]) == 0;
		if (!known)
			return key;
	}
	return NULL;
}

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
static int parse_request(struct client *cl, const char *line, size_t len, json_object **out)
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

/* One request line; false when the client was closed. */
static bool handle_line(struct client *cl, const char *line, size_t len)
{
	char err[256] = "";
	json_object *req, *cmdo, *o;
	const struct cmd *cmd;
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
		return reply_error(cl, "missing \"cmd\" (a string: status, agents, rules, "
				   "reload, watch, metrics)");
	}
	name = json_object_get_string(cmdo);
	cmd = cmd_find(name);
	if (!cmd) {
		char nb[80];

		watch_json_str(nb, sizeof(nb), name);
		json_object_put(req);
		return reply_error(cl, "unknown command %s (known: status, agents, rules, "
				   "reload, watch, metrics)", nb);
	}
	bad = unknown_key(cmd, req);
	if (bad) {
		char kb[80];

		watch_json_str(kb, sizeof(kb), bad);
		json_object_put(req);
		return reply_error(cl, "unknown key %s in a \"%s\" request", kb, cmd->name);
	}
	/* Asked each time: a reload may have changed who is allowed. */
	access = cfg_control_access(cl->c->m->cfg, cl->uid);
	if (access == CONTROL_NONE || (cmd->admin && access != CONTROL_ADMIN)) {
		json_object_put(req);
		log_event(LOGL_INFO, "control_deny", "client=%u pid=%d uid=%u cmd=%s", cl->id,
			  (int)cl->pid, (unsigned)cl->uid, cmd->name);
		if (access == CONTROL_NONE) {
			cl->closing = true;
			return reply_error(cl, "uid %u is not allowed on the control socket",
					   (unsigned)cl->uid);
		}
		return reply_error(cl, "%s needs an admin uid (broker.control_admin_uids)",
				   cmd->name);
	}
	log_event(LOGL_DEBUG, "control_request", "client=%u cmd=%s", cl->id, cmd->name);
	o = cmd->fn(cl, req, err, sizeof(err));
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
static bool client_process(struct client *cl)
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
				cl->closing = true;
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
		cl->closing = true;
	if (!client_flush(cl))
		return false;
	return client_update(cl);
}

static void client_read(struct client *cl)
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
	struct client *cl = data;

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

static void client_close(struct client *cl, const char *why)
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
	if (cl->watching) {
		log_event(LOGL_INFO, "watch_end", "client=%u pid=%d events=%" PRIu64 " lost=%"
			  PRIu64, cl->id, (int)cl->pid, cl->events, cl->lost_total);
		cl->watching = false;
		c->nwatchers--;
		watch_set(c);
	}
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
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
	size_t mine = 0;

	if (c->nclients >= CONTROL_MAX_CLIENTS)
		return "too many control clients";
	if (access != CONTROL_ADMIN &&
	    c->nclients >= CONTROL_MAX_CLIENTS - CONTROL_ADMIN_RESERVE)
		return "too many control clients (the rest are kept for admin uids)";
	for (const struct client *cl = c->clients; cl; cl = cl->next)
		mine += cl->uid == uid;
	return mine >= CONTROL_MAX_PER_UID ? "too many control clients of this uid" : NULL;
}

static void client_add(struct control *c, int fd)
{
	struct client *cl;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1 };
	socklen_t cl_len = sizeof(cred);
	const char *full;
	int rc, access;

	/* No credentials: nobody we can vouch for (uid -1 is never allowed). */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) < 0)
		cred.uid = (uid_t)-1;
	access = cfg_control_access(c->m->cfg, cred.uid);
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
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
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

/*
 * Log each namespace's new receive overruns once a tick, not per packet.
 * The count logged so far lives in the session: nothing here is keyed by
 * a pointer that may be freed and reused. A takeover brings a new socket
 * whose count starts again below it.
 */
static void log_overruns(struct session_mgr *m)
{
	for (struct session *s = m->head; s; s = s->next) {
		char vb[LOG_VALUE_MAX];
		struct nfqb_queue_stats st;

		nfqb_queue_get_stats(s->q, &st);
		if (st.enobufs < s->enobufs_logged)
			s->enobufs_logged = 0;
		if (st.enobufs > s->enobufs_logged)
			log_event(LOGL_WARN, "enobufs", "name=%s overruns=%" PRIu64 " total=%"
				  PRIu64 " hint=\"the socket's receive buffer overran and the "
				  "kernel dropped queued packets: raise sock_len\"",
				  log_value(vb, sizeof(vb), s->name),
				  st.enobufs - s->enobufs_logged, st.enobufs);
		s->enobufs_logged = st.enobufs;
	}
}

/* A reload may have taken watch away from a uid: its watchers stop. */
static void drop_unauthorized(struct control *c)
{
	struct client *cl = c->clients, *next;

	for (; cl; cl = next) {
		next = cl->next;
		if (cl->watching && cfg_control_access(c->m->cfg, cl->uid) != CONTROL_ADMIN)
			client_close(cl, "watch needs an admin uid (broker.control_admin_uids)");
	}
}

static void tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct control *c = data;

	log_overruns(c->m);
	drop_unauthorized(c);
	loop_timer_arm(l, &c->tick, loop_now_ms() + CONTROL_TICK_MS);
}

static uint32_t kstats_period(const struct control *c)
{
	uint32_t r = c->m->cfg->ctl.metrics_refresh_ms;

	return r && r < CONTROL_KSTATS_TICK_MS ? r : CONTROL_KSTATS_TICK_MS;
}

static void kstats_tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct control *c = data;

	/* The period follows a reload of metrics_refresh_ms. */
	c->kstats_ms = kstats_period(c);
	metrics_kstats_refresh(c->m, loop_now_ms(), c->kstats_ms);
	loop_timer_arm(l, &c->kstats, loop_now_ms() + c->kstats_ms);
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
	c->loop = m->loop;
	c->fd = -1;
	c->stall_ms = CONTROL_STALL_MS;
	loop_timer_init(&c->tick, tick, c);
	loop_timer_init(&c->kstats, kstats_tick, c);
	c->path = strdup(path);
	/* Absolute, so "status" says which file and a reload finds it. */
	if (config_path)
		c->config_path = realpath(config_path, NULL);
	if (config_path && !c->config_path)
		c->config_path = strdup(config_path);
	if (!c->path || (config_path && !c->config_path))
		goto fail;
	rc = control_bind(c, mode, why, whylen);
	if (rc < 0)
		goto fail;
	rc = loop_add(c->loop, c->fd, EPOLLIN, listener_event, c);
	if (rc < 0) {
		snprintf(why, whylen, "cannot watch the control socket: %s", strerror(-rc));
		goto fail;
	}
	rc = loop_timer_arm(c->loop, &c->tick, loop_now_ms() + CONTROL_TICK_MS);
	if (rc < 0)
		goto fail;
	c->kstats_ms = kstats_period(c);
	/* Soon after start, so a broker restart shows its adopted queues quickly. */
	rc = loop_timer_arm(c->loop, &c->kstats, loop_now_ms() + 1);
	if (rc < 0)
		goto fail;
	if (m->cfg->metrics_listen) {
		c->http = http_new(m, m->cfg->metrics_listen, why, whylen);
		if (!c->http) {
			rc = -errno;
			goto fail;
		}
	}
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
	while (c->clients)
		client_close(c->clients, NULL);
	watch_set(c);
	http_free(c->http);
	loop_timer_cancel(c->loop, &c->tick);
	loop_timer_cancel(c->loop, &c->kstats);
	if (c->fd >= 0) {
		loop_del(c->loop, c->fd);
		close(c->fd);
	}
	unixsock_unlink_ours(c->path, c->dev, c->ino);
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

void control_set_stall_ms(struct control *c, uint32_t ms)
{
	c->stall_ms = ms ? ms : 1;
}
