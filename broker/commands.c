/* SPDX-License-Identifier: MIT */
/*
 * The control socket's commands: one handler each, dispatched by name from
 * the table in proto/ctlcmd.c (which also says who may run them and which
 * request keys they take; control.c checks both before calling here).
 * Handlers read the broker's state and build the reply; the framing, the
 * clients and the watch stream are control.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfqb/version.h>

#include "commands.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "steering.h"

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

json_object *commands_reply_ok(void)
{
	json_object *o = json_object_new_object();

	if (o)
		jadd(o, "ok", json_object_new_boolean(1));
	return o;
}

/* From session.c's counter table: a new counter shows up here by itself. */
static json_object *verdicts_obj(const struct session_counters *sc)
{
	json_object *v = json_object_new_object();

	for (size_t i = 0; i < session_verdict_ncounters; i++)
		jadd(v, session_verdict_counters[i].name, json_object_new_uint64(
			session_counter_get(sc, &session_verdict_counters[i])));
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

static json_object *cmd_status(struct cmd_req *r)
{
	struct session_totals t;
	struct control_info ci;
	json_object *o = commands_reply_ok();
	time_t now = time(NULL);

	control_get_info(r->ctl, &ci);
	session_mgr_totals(r->m, &t);

	jadd(o, "version", json_object_new_string(NFQB_VERSION_STRING));
	jadd(o, "pid", json_object_new_int(getpid()));
	jadd(o, "uptime_s", json_object_new_uint64(
		now > t.started ? (uint64_t)(now - t.started) : 0));
	jadd(o, "namespaces", json_object_new_uint64(t.namespaces));
	jadd(o, "workers", json_object_new_uint64(session_mgr_workers(r->m, NULL, 0)));
	jadd(o, "packets", json_object_new_uint64(t.c.packets));
	jadd(o, "bytes", json_object_new_uint64(t.c.bytes));
	jadd(o, "verdicts", verdicts_obj(&t.c));
	jadd(o, "attaches", json_object_new_uint64(t.attaches));
	jadd(o, "refusals", json_object_new_uint64(t.refusals));
	jadd(o, "control_clients", json_object_new_uint64(ci.clients));
	jadd(o, "watchers", json_object_new_uint64(ci.watchers));
	jadd(o, "control_refused", json_object_new_uint64(ci.refused));
	jadd(o, "config", ci.config_path ?
			       json_object_new_string(ci.config_path) : NULL);
	/* What /readyz and the reload metrics say, for people without Prometheus. */
	jadd(o, "ready", json_object_new_boolean(t.ready));
	jadd(o, "last_reload_ok", json_object_new_boolean(t.last_reload_ok));
	jadd(o, "last_reload_ok_at", json_object_new_int64(t.last_reload_ok_at));
	jadd(o, "reloads_ok", json_object_new_uint64(t.reloads_ok));
	jadd(o, "reloads_failed", json_object_new_uint64(t.reloads_failed));
	jadd(o, "metrics_listen", ci.http ?
			       json_object_new_string(http_address(ci.http)) : NULL);
	if (ci.http)
		jadd(o, "http", http_obj(ci.http));
	jadd(o, "access", json_object_new_string(
		cfg_control_access(session_mgr_cfg(r->m), r->uid) == CONTROL_ADMIN ? "admin" : "read-only"));
	return o;
}

/* From the snapshot the metrics tick keeps (metrics_kstats_refresh): no setns here. */
static json_object *kernel_arr(const struct session_view *v, json_object *agent)
{
	const struct nfqb_kstat *ks = v->ks->k;
	json_object *arr = json_object_new_array();
	int n = v->ks->n;

	if (!v->ks->at_ms) {
		jadd(agent, "kernel_error", json_object_new_string("not read yet"));
		return arr;
	}
	jadd(agent, "kernel_age_ms", json_object_new_uint64(loop_now_ms() - v->ks->at_ms));
	if (n < 0)
		jadd(agent, "kernel_error", json_object_new_string(session_kstats_strerror(n)));
	for (int i = 0; i < n; i++) {
		json_object *k = json_object_new_object();

		jadd(k, "queue", json_object_new_uint64(ks[i].queue));
		jadd(k, "queued", json_object_new_uint64(ks[i].queued));
		jadd(k, "dropped_full", json_object_new_uint64(ks[i].dropped_full));
		jadd(k, "dropped_netlink", json_object_new_uint64(ks[i].dropped_netlink));
		jadd(k, "id_seq", json_object_new_uint64(ks[i].id_seq));
		jadd(k, "portid", json_object_new_uint64(ks[i].portid));
		jpush(arr, k);
	}
	return arr;
}

static void steer_queue_str(const struct steer_item *it, char *buf, size_t len)
{
	if (it->queue_lo == it->queue_hi)
		snprintf(buf, len, "%u", (unsigned)it->queue_lo);
	else
		snprintf(buf, len, "%u-%u", (unsigned)it->queue_lo, (unsigned)it->queue_hi);
}

/* One steer[] item as installed, with the kernel's counters of its rules. */
static json_object *steer_rule_obj(const struct steer_item *it, const struct steer_counter *c)
{
	json_object *o = json_object_new_object();
	char q[16];

	steer_queue_str(it, q, sizeof(q));
	jadd(o, "index", json_object_new_uint64(it->index));
	jadd(o, "hook", json_object_new_string(steer_hook_name(it->hook)));
	jadd(o, "family", json_object_new_string(steer_family_name(it->family)));
	jadd(o, "queue", json_object_new_string(q));
	jadd(o, "bypass", json_object_new_boolean(it->bypass));
	if (c) {
		jadd(o, "kernel_rules", json_object_new_uint64(c->rules));
		jadd(o, "packets", json_object_new_uint64(c->packets));
		jadd(o, "bytes", json_object_new_uint64(c->bytes));
	}
	return o;
}

/*
 * "steer": what the namespace's entry steers and what the kernel holds.
 * The counters are read from the kernel now (one rule dump on the
 * broker's own socket; nfnetlink fills it inside recv(), no waiting).
 */
static json_object *steer_obj(const struct session_view *sv)
{
	struct steer_counter local[32], *c = local;
	struct steering_view v;
	json_object *o, *rules;
	int n = -ENOENT;

	steering_view(sv->session, &v);
	if (!v.list && !v.installed && !v.err)
		return NULL;
	o = json_object_new_object();
	rules = json_object_new_array();
	if (v.list && v.list->n > sizeof(local) / sizeof(local[0]))
		c = calloc(v.list->n, sizeof(*c));
	if (c && v.installed && !v.stale && v.list)
		n = steering_counters(sv->session, c, v.list->n);
	jadd(o, "installed", json_object_new_boolean(v.installed));
	jadd(o, "table", json_object_new_string(STEER_TABLE));
	jadd(o, "backend", v.installed ? json_object_new_string(steer_backend_name(v.backend))
				       : NULL);
	if (v.list && v.list->name)
		jadd(o, "list", json_object_new_string(v.list->name));
	if (v.stale)
		jadd(o, "stale", json_object_new_boolean(true));
	jadd(o, "pending", json_object_new_boolean(v.pending));
	for (size_t i = 0; v.list && i < v.list->n; i++)
		jpush(rules, steer_rule_obj(&v.list->items[i], n >= 0 ? &c[i] : NULL));
	jadd(o, "rules", rules);
	if (n < 0 && n != -ENOENT && v.installed && !v.stale)
		jadd(o, "counters_error", json_object_new_string(strerror(-n)));
	jadd(o, "error", v.err ? json_object_new_string(v.why) : NULL);
	jadd(o, "changes", json_object_new_uint64(v.changes));
	jadd(o, "failures", json_object_new_uint64(v.failures));
	if (c != local)
		free(c);
	return o;
}

static json_object *agent_obj(const struct session_view *v)
{
	json_object *a = json_object_new_object(), *q = json_object_new_array();

	for (size_t i = 0; i < v->nqueues; i++)
		jpush(q, json_object_new_uint64(v->queues[i]));
	jadd(a, "name", json_object_new_string(v->name));
	jadd(a, "state", json_object_new_string(session_state_name(v->state)));
	jadd(a, "netns_inode", json_object_new_uint64(v->netns_ino));
	jadd(a, "agent_pid", json_object_new_int(v->agent_pid));
	jadd(a, "agent_uid", json_object_new_uint64(v->agent_uid));
	jadd(a, "policy", json_object_new_string(v->policy));
	jadd(a, "mode", json_object_new_string(v->audit ? "audit" : "enforce"));
	jadd(a, "queues", q);
	jadd(a, "packets", json_object_new_uint64(v->c.packets));
	jadd(a, "bytes", json_object_new_uint64(v->c.bytes));
	jadd(a, "verdicts", verdicts_obj(&v->c));
	jadd(a, "kernel", kernel_arr(v, a));
	jadd(a, "overruns", json_object_new_uint64(v->overruns));
	jadd(a, "attached_at", json_object_new_int64(v->attached_at));
	jadd(a, "takeovers", json_object_new_uint64(v->takeovers));
	/* The worker thread serving it; null while binding (the main loop's). */
	jadd(a, "worker", v->worker >= 0 ? json_object_new_int(v->worker) : NULL);
	jadd(a, "solo", json_object_new_boolean(v->solo));
	jadd(a, "steer", steer_obj(v));
	return a;
}

static int by_name(const void *a, const void *b)
{
	const struct session_view *x = a, *y = b;

	return strcmp(x->name, y->name);
}

struct views {
	struct session_view *v;
	size_t n, cap;
};

static void add_view(struct session *s, void *data)
{
	struct views *vs = data;

	if (vs->n < vs->cap)
		session_view(s, &vs->v[vs->n++]);
}

static json_object *cmd_agents(struct cmd_req *r)
{
	size_t cap = session_mgr_count(r->m);
	struct views vs = { .v = calloc(cap ? cap : 1, sizeof(*vs.v)), .cap = cap };
	json_object *o, *arr;

	if (!vs.v) {
		snprintf(r->err, r->errlen, "out of memory");
		return NULL;
	}
	session_mgr_foreach(r->m, add_view, &vs);
	qsort(vs.v, vs.n, sizeof(*vs.v), by_name);
	o = commands_reply_ok();
	arr = json_object_new_array();
	for (size_t i = 0; i < vs.n; i++)
		jpush(arr, agent_obj(&vs.v[i]));
	jadd(o, "agents", arr);
	free(vs.v);
	return o;
}

static json_object *rule_obj(const struct policy *p, int idx)
{
	json_object *r = json_object_new_object();
	struct policy_counter pcv, *pc = &pcv;

	policy_counter_load(p, idx, &pcv);
	jadd(r, "policy", json_object_new_string(policy_name(p)));
	jadd(r, "rule", json_object_new_string(policy_rule_name(p, idx)));
	jadd(r, "packets", json_object_new_uint64(pc->packets));
	jadd(r, "bytes", json_object_new_uint64(pc->bytes));
	jadd(r, "mode", json_object_new_string(policy_audit(p) ? "audit" : "enforce"));
	jadd(r, "would_drop", json_object_new_uint64(pc->would_drop));
	jadd(r, "log_suppressed", json_object_new_uint64(pc->log_suppressed));
	if (policy_action_at(p, idx)->comment)
		jadd(r, "comment", json_object_new_string(policy_action_at(p, idx)->comment));
	return r;
}

static json_object *cmd_rules(struct cmd_req *r)
{
	const struct policy_set *ps = session_mgr_cfg(r->m)->policies;
	json_object *o = commands_reply_ok(), *arr = json_object_new_array();

	for (size_t i = 0; i < policy_set_count(ps); i++) {
		const struct policy *p = policy_set_at(ps, i);
		int nr = (int)policy_rule_count(p);

		for (int k = 0; k < nr; k++)
			jpush(arr, rule_obj(p, k));
		jpush(arr, rule_obj(p, -1));
	}
	jadd(o, "rules", arr);
	return o;
}

static json_object *cmd_reload(struct cmd_req *r)
{
	struct control_info ci;
	struct errs e = { 0 };
	char vb[LOG_VALUE_MAX];
	json_object *o, *arr;

	control_get_info(r->ctl, &ci);
	if (!ci.config_path) {
		snprintf(r->err, r->errlen, "no config file to reload from");
		return NULL;
	}
	log_event(LOGL_INFO, "reload_start", "config=%s source=control client=%u",
		  log_value(vb, sizeof(vb), ci.config_path), r->client_id);
	if (session_mgr_reload(r->m, ci.config_path, &e) == 0) {
		errs_reset(&e);
		o = commands_reply_ok();
		jadd(o, "namespaces", json_object_new_uint64(session_mgr_count(r->m)));
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

static json_object *cmd_watch(struct cmd_req *r)
{
	struct watch_filter f;
	char fb[WATCH_GLOB_MAX * 4];
	json_object *o;

	if (watch_filter_parse(&f, r->req, r->err, r->errlen) < 0)
		return NULL;
	control_client_watch(r->cl, &f);
	o = commands_reply_ok();
	jadd(o, "watch", f.ns[0] ? json_object_new_string(f.ns) : NULL);
	jadd(o, "filter", json_object_new_string(watch_filter_describe(&f, fb, sizeof(fb))));
	return o;
}

static json_object *cmd_metrics(struct cmd_req *r)
{
	struct metrics_buf b = { 0 };
	json_object *o;

	if (metrics_render(r->m, &b) < 0) {
		metrics_buf_free(&b);
		snprintf(r->err, r->errlen, "out of memory");
		return NULL;
	}
	o = commands_reply_ok();
	jadd(o, "text", json_object_new_string_len(b.data, (int)b.len));
	metrics_buf_free(&b);
	return o;
}

/* One row per command of proto/ctlcmd.c; test-control checks none is missing. */
static const struct {
	const char *name;
	command_fn fn;
} handlers[] = {
	{ "status", cmd_status },
	{ "agents", cmd_agents },
	{ "rules", cmd_rules },
	{ "reload", cmd_reload },
	{ "watch", cmd_watch },
	{ "metrics", cmd_metrics },
};

command_fn commands_handler(const char *name)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcmp(handlers[i].name, name) == 0)
			return handlers[i].fn;
	return NULL;
}
