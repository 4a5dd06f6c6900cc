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

#include "commands.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

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

static json_object *cmd_status(struct cmd_req *r)
{
	struct session_mgr *m = r->m;
	struct control_info ci;
	json_object *o = commands_reply_ok();
	time_t now = time(NULL);

	control_get_info(r->ctl, &ci);

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
	jadd(o, "control_clients", json_object_new_uint64(ci.clients));
	jadd(o, "watchers", json_object_new_uint64(ci.watchers));
	jadd(o, "control_refused", json_object_new_uint64(ci.refused));
	jadd(o, "config", ci.config_path ?
			       json_object_new_string(ci.config_path) : NULL);
	jadd(o, "metrics_listen", ci.http ?
			       json_object_new_string(http_address(ci.http)) : NULL);
	if (ci.http)
		jadd(o, "http", http_obj(ci.http));
	jadd(o, "access", json_object_new_string(
		cfg_control_access(m->cfg, r->uid) == CONTROL_ADMIN ? "admin" : "read-only"));
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

static json_object *cmd_agents(struct cmd_req *r)
{
	struct session_mgr *m = r->m;
	const struct session **v = calloc(m->count ? m->count : 1, sizeof(*v));
	json_object *o, *arr;
	size_t n = 0;

	if (!v) {
		snprintf(r->err, r->errlen, "out of memory");
		return NULL;
	}
	for (const struct session *s = m->head; s && n < m->count; s = s->next)
		v[n++] = s;
	qsort(v, n, sizeof(*v), by_name);
	o = commands_reply_ok();
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

static json_object *cmd_rules(struct cmd_req *r)
{
	const struct policy_set *ps = r->m->cfg->policies;
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
		jadd(o, "namespaces", json_object_new_uint64(r->m->count));
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
	json_object *ns = NULL, *o;
	const char *name = NULL;

	if (json_object_object_get_ex(r->req, "ns", &ns) &&
	    !json_object_is_type(ns, json_type_null)) {
		if (!json_object_is_type(ns, json_type_string) ||
		    json_object_get_string_len(ns) == 0) {
			snprintf(r->err, r->errlen,
				 "\"ns\" must be a namespace name (a non-empty string)");
			return NULL;
		}
		if ((size_t)json_object_get_string_len(ns) >= WIRE_NAME_MAX) {
			snprintf(r->err, r->errlen, "\"ns\" longer than %d bytes",
				 WIRE_NAME_MAX - 1);
			return NULL;
		}
		name = json_object_get_string(ns);
	}
	control_client_watch(r->cl, name);
	o = commands_reply_ok();
	jadd(o, "watch", name ? json_object_new_string(name) : NULL);
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
