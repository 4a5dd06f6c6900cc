/* SPDX-License-Identifier: MIT */
/*
 * The exposition is rebuilt from the live counters: there is no second
 * copy of them to keep in sync. The text format wants all samples of one
 * family together, so each family walks the sessions once. The kernel
 * statistics are the exception: reading them costs two setns() and a
 * /proc read per namespace, so a tick refreshes a few sessions' snapshots
 * at a time and a render (however many scrapes ask) only reads those.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <nfqb/version.h>

#include "loop.h"
#include "metrics.h"
#include "steering.h"
#include "session.h"
#include "worker.h"

/* ------------------------------------------------------------ buffer */

void metrics_buf_free(struct metrics_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

static bool reserve(struct metrics_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *d;

	if (b->err)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	while (cap < b->len + more + 1)
		cap *= 2;
	d = realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (w < 0 || !reserve(b, (size_t)w))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)w;
}

void metrics_buf_label(struct metrics_buf *b, const char *s)
{
	size_t n = 0;

	if (!s)
		s = "";
	/* Worst case every byte doubles, plus the quotes. */
	if (!reserve(b, 2 * strlen(s) + 2))
		return;
	b->data[b->len + n++] = '"';
	for (; *s; s++) {
		if (*s == '\\' || *s == '"') {
			b->data[b->len + n++] = '\\';
			b->data[b->len + n++] = *s;
		} else if (*s == '\n') {
			b->data[b->len + n++] = '\\';
			b->data[b->len + n++] = 'n';
		} else {
			b->data[b->len + n++] = *s;
		}
	}
	b->data[b->len + n++] = '"';
	b->len += n;
	b->data[b->len] = '\0';
}

/* ------------------------------------------------------------ histograms */

const struct hist_bounds hist_latency_bounds = { {
	10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 25000000, 100000000,
} };

const struct hist_bounds hist_lag_bounds = { {
	500000, 1000000, 2500000, 5000000, 10000000, 25000000,
	50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000u,
} };

uint64_t hist_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ families */

static void family(struct metrics_buf *b, const char *name, const char *type,
		  const char *help)
{
	metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"} value — up to three labels, NULL keys end the list. */
static void sample(struct metrics_buf *b, const char *name, const char *k1,
		   const char *v1, const char *k2, const char *v2, const char *k3,
		   const char *v3, uint64_t value)
{
	const char *keys[3] = { k1, k2, k3 }, *vals[3] = { v1, v2, v3 };

	metrics_buf_printf(b, "%s", name);
	for (int i = 0; i < 3 && keys[i]; i++) {
		metrics_buf_printf(b, "%s%s=", i ? "," : "{", keys[i]);
		metrics_buf_label(b, vals[i]);
	}
	metrics_buf_printf(b, "%s %" PRIu64 "\n", k1 ? "}" : "", value);
}

/* What a metric's emitter reads: taken once per render. */
struct render {
	struct metrics_buf *b;
	const struct cfg *cfg;
	struct session_totals t;
	struct session_view *v;       /* every session, in the manager's order */
	size_t nv;
	struct session_worker_view w[WORKER_MAX];  /* the worker threads */
	unsigned nw;
};

struct metric {
	const char *name, *type, *help;
	void (*emit)(const struct render *r, const struct metric *mt);
	/* for emit_broker (@v NULL) and emit_ns */
	uint64_t (*get)(const struct render *r, const struct session_view *v);
};

static void emit_broker(const struct render *r, const struct metric *mt)
{
	sample(r->b, mt->name, NULL, NULL, NULL, NULL, NULL, NULL, mt->get(r, NULL));
}

static void emit_ns(const struct render *r, const struct metric *mt)
{
	for (size_t i = 0; i < r->nv; i++)
		sample(r->b, mt->name, "ns", r->v[i].name, NULL, NULL, NULL, NULL,
		       mt->get(r, &r->v[i]));
}

static void emit_build_info(const struct render *r, const struct metric *mt)
{
	sample(r->b, mt->name, "version", NFQB_VERSION_STRING, NULL, NULL, NULL, NULL, 1);
}

/* One sample per verdict counter of session.c's table. */
static void emit_verdicts(const struct render *r, const struct metric *mt,
			  const char *ns, const struct session_counters *c)
{
	for (size_t i = 0; i < session_verdict_ncounters; i++) {
		const struct session_counter_def *d = &session_verdict_counters[i];

		if (ns)
			sample(r->b, mt->name, "ns", ns, "verdict", d->name, NULL, NULL,
			       session_counter_get(c, d));
		else
			sample(r->b, mt->name, "verdict", d->name, NULL, NULL, NULL, NULL,
			       session_counter_get(c, d));
	}
}

static void emit_broker_verdicts(const struct render *r, const struct metric *mt)
{
	emit_verdicts(r, mt, NULL, &r->t.c);
}

static void emit_ns_verdicts(const struct render *r, const struct metric *mt)
{
	for (size_t i = 0; i < r->nv; i++)
		emit_verdicts(r, mt, r->v[i].name, &r->v[i].c);
}

static void emit_ns_info(const struct render *r, const struct metric *mt)
{
	for (size_t i = 0; i < r->nv; i++)
		sample(r->b, mt->name, "ns", r->v[i].name, "state",
		       session_state_name(r->v[i].state), "policy", r->v[i].policy, 1);
}

/* Sessions whose snapshot failed or was not read yet have no samples. */
static void emit_queues(const struct render *r, const struct metric *mt)
{
	char qb[8];

	for (size_t i = 0; i < r->nv; i++) {
		const struct session_kstats *ks = r->v[i].ks;

		for (int j = 0; j < ks->n; j++) {
			const struct nfqb_kstat *k = &ks->k[j];

			snprintf(qb, sizeof(qb), "%u", k->queue);
			if (strcmp(mt->name, "nfqb_queue_dropped_total") == 0) {
				sample(r->b, mt->name, "ns", r->v[i].name, "queue", qb,
				       "reason", "full", k->dropped_full);
				sample(r->b, mt->name, "ns", r->v[i].name, "queue", qb,
				       "reason", "netlink", k->dropped_netlink);
			} else {
				sample(r->b, mt->name, "ns", r->v[i].name, "queue", qb, NULL, NULL,
				       strcmp(mt->name, "nfqb_queue_depth") == 0 ? k->queued :
				       k->id_seq);
			}
		}
	}
}

/*
 * name_bucket{[ns=..,]le=..} cumulative, then name_sum (seconds) and
 * name_count; @ns NULL: no ns label.
 */
static void hist_samples(struct metrics_buf *b, const char *name, const char *ns,
			 const struct hist *h, const struct hist_bounds *hb)
{
	uint64_t cum = 0;

	for (int i = 0; i <= HIST_BOUNDS; i++) {
		cum += h->bucket[i];
		metrics_buf_printf(b, "%s_bucket{", name);
		if (ns) {
			metrics_buf_printf(b, "ns=");
			metrics_buf_label(b, ns);
			metrics_buf_printf(b, ",");
		}
		if (i < HIST_BOUNDS)
			metrics_buf_printf(b, "le=\"%g\"} %" PRIu64 "\n",
					   (double)hb->ns[i] / 1e9, cum);
		else
			metrics_buf_printf(b, "le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	for (int k = 0; k < 2; k++) {
		metrics_buf_printf(b, "%s_%s", name, k ? "count" : "sum");
		if (ns) {
			metrics_buf_printf(b, "{ns=");
			metrics_buf_label(b, ns);
			metrics_buf_printf(b, "}");
		}
		if (k)
			metrics_buf_printf(b, " %" PRIu64 "\n", h->count);
		else
			metrics_buf_printf(b, " %.9f\n", (double)h->sum_ns / 1e9);
	}
}

static void emit_broker_latency(const struct render *r, const struct metric *mt)
{
	hist_samples(r->b, mt->name, NULL, &r->t.latency, &hist_latency_bounds);
}

static void emit_ns_latency(const struct render *r, const struct metric *mt)
{
	for (size_t i = 0; i < r->nv; i++)
		hist_samples(r->b, mt->name, r->v[i].name, &r->v[i].latency, &hist_latency_bounds);
}

static void emit_loop_lag(const struct render *r, const struct metric *mt)
{
	hist_samples(r->b, mt->name, NULL, &r->t.loop_lag, &hist_lag_bounds);
}

static void emit_reloads(const struct render *r, const struct metric *mt)
{
	sample(r->b, mt->name, "result", "success", NULL, NULL, NULL, NULL, r->t.reloads_ok);
	sample(r->b, mt->name, "result", "failure", NULL, NULL, NULL, NULL,
	       r->t.reloads_failed);
}

/* Every reason, zeros included: rate() needs the series before the first one. */
static void emit_refusals(const struct render *r, const struct metric *mt)
{
	for (int i = 0; i < REFUSAL_N; i++)
		sample(r->b, mt->name, "listener", session_refusal_listener(i), "reason",
		       session_refusal_reason(i), NULL, NULL, r->t.refused[i]);
}

/*
 * /proc/self/fd lists the open fds. After the broker switched to another
 * user the kernel may make it unreadable (not dumpable): then the family
 * has no sample rather than a wrong one.
 */
static void emit_open_fds(const struct render *r, const struct metric *mt)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;

	if (!d)
		return;
	while (readdir(d))
		n++;
	closedir(d);
	/* ".", ".." and the directory's own fd */
	n = n >= 3 ? n - 3 : 0;
	sample(r->b, mt->name, NULL, NULL, NULL, NULL, NULL, NULL, n);
}

static void emit_rules(const struct render *r, const struct metric *mt)
{
	const struct policy_set *ps = r->cfg->policies;
	bool bytes = strcmp(mt->name, "nfqb_rule_bytes_total") == 0;
	bool would = strcmp(mt->name, "nfqb_rule_would_drop_total") == 0;

	for (size_t i = 0; i < policy_set_count(ps); i++) {
		const struct policy *p = policy_set_at(ps, i);
		int nr = (int)policy_rule_count(p);

		/* The default (-1) last, as the rules are evaluated. */
		for (int k = 0; k <= nr; k++) {
			int idx = k < nr ? k : -1;
			struct policy_counter pcv, *pc = &pcv;

			policy_counter_load(p, idx, &pcv);
			sample(r->b, mt->name, "policy", policy_name(p), "rule",
			       policy_rule_name(p, idx), NULL, NULL,
			       would ? pc->would_drop : bytes ? pc->bytes : pc->packets);
		}
	}
}

/*
 * Steering state of the namespaces that have a steer list (no sample for
 * the others). No kernel read here: the rule counters are nfq-ctl agents'.
 */
static void emit_steer(const struct render *r, const struct metric *mt)
{
	bool failures = strcmp(mt->name, "nfqb_steer_failures_total") == 0;

	for (size_t i = 0; i < r->nv; i++) {
		struct steering_view sv;

		steering_view(r->v[i].session, &sv);
		/* Configured, or an earlier config's rules still there. */
		if (!sv.list && !sv.stale)
			continue;
		sample(r->b, mt->name, "ns", r->v[i].name, NULL, NULL, NULL, NULL,
		       failures ? sv.failures : (sv.installed && !sv.stale && !sv.err));
	}
}

static uint64_t get_one(const struct render *r, const struct session_view *v)
{
	return 1;
}

static uint64_t get_uptime(const struct render *r, const struct session_view *v)
{
	time_t now = time(NULL);

	return now > r->t.started ? (uint64_t)(now - r->t.started) : 0;
}

static uint64_t get_max_fds(const struct render *r, const struct session_view *v)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (uint64_t)rl.rlim_cur;
}

#define GETTER(fn, expr) \
	static uint64_t fn(const struct render *r, const struct session_view *v) { return (expr); }
GETTER(get_namespaces, r->t.namespaces)
GETTER(get_attaches, r->t.attaches)
GETTER(get_refusals, r->t.refusals)
GETTER(get_packets, r->t.c.packets)
GETTER(get_bytes, r->t.c.bytes)
GETTER(get_kstats_refreshes, r->t.kstats_refreshes)
GETTER(get_ns_packets, v->c.packets)
GETTER(get_ns_bytes, v->c.bytes)
GETTER(get_ns_overruns, v->overruns)
GETTER(get_ready, r->t.ready)
GETTER(get_reload_ok, r->t.last_reload_ok)
GETTER(get_reload_ok_at, (uint64_t)r->t.last_reload_ok_at)
GETTER(get_started, (uint64_t)r->t.started)

/* One sample per worker thread: its sessions, or the packets it decided. */
static uint64_t worker_value(const struct session_worker_view *w, const char *name)
{
	if (strstr(name, "packets"))
		return w->c.packets;
	if (strstr(name, "solo"))
		return w->solo;
	return w->sessions;
}

static void emit_workers(const struct render *r, const struct metric *mt)
{
	for (unsigned i = 0; i < r->nw; i++) {
		char ib[16];

		snprintf(ib, sizeof(ib), "%u", r->w[i].index);
		sample(r->b, mt->name, "worker", ib, NULL, NULL, NULL, NULL,
		       worker_value(&r->w[i], mt->name));
	}
}

/* The exposition, in this order: a new metric is one row (and its getter). */
static const struct metric metrics[] = {
	{ "nfqb_up", "gauge", "Whether the broker answers (always 1 when scraped).",
	  emit_broker, get_one },
	{ "nfqb_build_info", "gauge", "The broker's version.", emit_build_info, NULL },
	{ "nfqb_uptime_seconds", "gauge", "Seconds since the broker started.",
	  emit_broker, get_uptime },
	{ "nfqb_namespaces", "gauge", "Namespaces served (attached or in their grace period).",
	  emit_broker, get_namespaces },
	{ "nfqb_agent_attaches_total", "counter", "Agents accepted.",
	  emit_broker, get_attaches },
	{ "nfqb_agent_refusals_total", "counter", "Agents refused.",
	  emit_broker, get_refusals },
	{ "nfqb_broker_packets_total", "counter",
	  "Packets decided since the broker started, all namespaces.",
	  emit_broker, get_packets },
	{ "nfqb_broker_bytes_total", "counter",
	  "Bytes (original packet lengths) decided since the broker started.",
	  emit_broker, get_bytes },
	{ "nfqb_broker_verdicts_total", "counter",
	  "Verdicts since the broker started (error: could not be sent).",
	  emit_broker_verdicts, NULL },
	{ "nfqb_worker_sessions", "gauge",
	  "Namespaces served by each worker thread (attached or in their grace period).",
	  emit_workers, NULL },
	{ "nfqb_worker_packets_total", "counter",
	  "Packets decided by each worker thread since the broker started.",
	  emit_workers, NULL },
	{ "nfqb_worker_solo", "gauge",
	  "1 while a worker thread is solo: it serves one namespace and waits in its receive.",
	  emit_workers, NULL },
	{ "nfqb_kstats_refresh_total", "counter",
	  "Reads of a namespace's kernel queue statistics (on a tick, not per scrape).",
	  emit_broker, get_kstats_refreshes },
	{ "nfqb_namespace_info", "gauge", "One per namespace served: its state and policy.",
	  emit_ns_info, NULL },
	{ "nfqb_packets_total", "counter", "Packets decided, per namespace.",
	  emit_ns, get_ns_packets },
	{ "nfqb_bytes_total", "counter", "Bytes (original packet lengths) decided, per namespace.",
	  emit_ns, get_ns_bytes },
	{ "nfqb_verdicts_total", "counter", "Verdicts per namespace (error: could not be sent).",
	  emit_ns_verdicts, NULL },
	{ "nfqb_socket_overruns_total", "counter",
	  "Receive buffer overruns (ENOBUFS) of a namespace's netlink socket.",
	  emit_ns, get_ns_overruns },
	{ "nfqb_queue_depth", "gauge", "Packets waiting in the kernel queue.",
	  emit_queues, NULL },
	{ "nfqb_queue_dropped_total", "counter",
	  "Packets the kernel dropped: queue full, or the socket could not take them.",
	  emit_queues, NULL },
	{ "nfqb_queue_enqueued_total", "counter",
	  "Packets the kernel queued (its id_seq; restarts when a queue is rebound).",
	  emit_queues, NULL },
	{ "nfqb_rule_hits_total", "counter",
	  "Packets matched, per policy rule (\"(default)\": no rule matched).", emit_rules, NULL },
	{ "nfqb_rule_bytes_total", "counter", "Bytes matched, per policy rule.",
	  emit_rules, NULL },
	{ "nfqb_rule_would_drop_total", "counter",
	  "Audit mode: packets a rule would have dropped, accepted instead.", emit_rules, NULL },
	{ "nfqb_steer_installed", "gauge",
	  "1 when a namespace's steer list is in the kernel as configured (0: unsteered, "
	  "or an earlier config's rules after a failed replace).", emit_steer, NULL },
	{ "nfqb_steer_failures_total", "counter",
	  "Steering installs, replaces or removals the kernel refused, per namespace.",
	  emit_steer, NULL },
	{ "nfqb_ready", "gauge",
	  "1 once the config is loaded, every socket listens and the loop runs (/readyz).",
	  emit_broker, get_ready },
	{ "nfqb_config_last_reload_successful", "gauge",
	  "Whether the last config load (start, SIGHUP or nfq-ctl reload) succeeded.",
	  emit_broker, get_reload_ok },
	{ "nfqb_config_last_reload_success_timestamp_seconds", "gauge",
	  "Unix time of the last successful config load (the start counts).",
	  emit_broker, get_reload_ok_at },
	{ "nfqb_config_reloads_total", "counter",
	  "Config reloads since the broker started, by result (the start's load not counted).",
	  emit_reloads, NULL },
	{ "nfqb_refusals_total", "counter",
	  "Connections refused, by listener (agent, control, http) and reason.",
	  emit_refusals, NULL },
	{ "nfqb_broker_verdict_latency_seconds", "histogram",
	  "Receive to verdict sent, all namespaces: the dispatch round's duration, per packet.",
	  emit_broker_latency, NULL },
	{ "nfqb_verdict_latency_seconds", "histogram",
	  "Receive to verdict sent, per namespace: the dispatch round's duration, per packet.",
	  emit_ns_latency, NULL },
	{ "nfqb_loop_lag_seconds", "histogram",
	  "How late the event loop ran a timer due every 100 ms (a busy or blocked loop).",
	  emit_loop_lag, NULL },
	{ "process_start_time_seconds", "gauge", "Start time of the process since unix epoch.",
	  emit_broker, get_started },
	{ "process_open_fds", "gauge", "Number of open file descriptors.",
	  emit_open_fds, NULL },
	{ "process_max_fds", "gauge", "Maximum number of open file descriptors (RLIMIT_NOFILE).",
	  emit_broker, get_max_fds },
};

size_t metrics_count(void)
{
	return sizeof(metrics) / sizeof(metrics[0]);
}

const char *metrics_name(size_t i, const char **type, const char **help)
{
	if (i >= metrics_count())
		return NULL;
	if (type)
		*type = metrics[i].type;
	if (help)
		*help = metrics[i].help;
	return metrics[i].name;
}

struct collect {
	struct session_view *v;
	size_t n, cap;
};

static void collect_one(struct session *s, void *data)
{
	struct collect *c = data;

	if (c->n < c->cap)
		session_view(s, &c->v[c->n++]);
}

int metrics_render(struct session_mgr *m, struct metrics_buf *b)
{
	size_t cap = session_mgr_count(m);
	struct collect c = { .v = calloc(cap ? cap : 1, sizeof(*c.v)), .cap = cap };
	struct render r = { .b = b, .cfg = session_mgr_cfg(m) };

	if (!c.v)
		return -ENOMEM;
	session_mgr_totals(m, &r.t);
	r.nw = session_mgr_workers(m, r.w, WORKER_MAX);
	session_mgr_foreach(m, collect_one, &c);
	r.v = c.v;
	r.nv = c.n;
	for (size_t i = 0; i < metrics_count(); i++) {
		family(b, metrics[i].name, metrics[i].type, metrics[i].help);
		metrics[i].emit(&r, &metrics[i]);
	}
	free(c.v);
	if (!b->err && !b->data)
		reserve(b, 0);
	return b->err;
}

/* ------------------------------------------------------------ snapshots */

unsigned metrics_kstats_budget(size_t count, uint32_t tick_ms, uint32_t refresh_ms)
{
	uint64_t n;

	if (!refresh_ms)
		refresh_ms = 1;
	n = ((uint64_t)count * tick_ms + refresh_ms - 1) / refresh_ms;
	if (n < 1)
		n = 1;
	return n > METRICS_KSTATS_BUDGET ? METRICS_KSTATS_BUDGET : (unsigned)n;
}

unsigned metrics_kstats_refresh(struct session_mgr *m, uint64_t now_ms, uint32_t tick_ms)
{
	uint32_t refresh = session_mgr_cfg(m)->ctl.metrics_refresh_ms;

	return session_mgr_kstats_refresh(m, now_ms,
					  metrics_kstats_budget(session_mgr_count(m), tick_ms,
								refresh), refresh);
}

/* ------------------------------------------------------------ ticks */

struct metrics_tick {
	struct session_mgr *m;
	struct loop_timer kstats;     /* refreshes the sessions' kernel statistics */
	struct loop_timer overruns;   /* logs the sockets' new ENOBUFS */
	struct loop_timer lag;        /* measures how late the loop runs timers */
};

static uint32_t kstats_period(const struct session_mgr *m)
{
	uint32_t r = session_mgr_cfg(m)->ctl.metrics_refresh_ms;

	return r && r < METRICS_KSTATS_TICK_MS ? r : METRICS_KSTATS_TICK_MS;
}

static void kstats_tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct metrics_tick *mt = data;
	/* The period follows a reload of metrics_refresh_ms. */
	uint32_t ms = kstats_period(mt->m);

	metrics_kstats_refresh(mt->m, loop_now_ms(), ms);
	loop_timer_arm(l, &mt->kstats, loop_now_ms() + ms);
}

/*
 * A timer with no work of its own: how late it runs is how long the loop
 * was busy elsewhere (a long dispatch round, a blocking call) when it
 * was due.
 */
static void lag_tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct metrics_tick *mt = data;

	session_mgr_loop_lag(mt->m, t->deadline, hist_now_ns());
	loop_timer_arm(l, &mt->lag, loop_tick_next(t->deadline, METRICS_LAG_TICK_MS));
}

static void overruns_tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct metrics_tick *mt = data;

	session_mgr_log_overruns(mt->m);
	loop_timer_arm(l, &mt->overruns, loop_tick_next(t->deadline, METRICS_OVERRUN_TICK_MS));
}

struct metrics_tick *metrics_tick_new(struct session_mgr *m)
{
	struct metrics_tick *mt = calloc(1, sizeof(*mt));
	int rc;

	if (!mt)
		return NULL;
	mt->m = m;
	loop_timer_init(&mt->kstats, kstats_tick, mt);
	loop_timer_init(&mt->overruns, overruns_tick, mt);
	loop_timer_init(&mt->lag, lag_tick, mt);
	/* Soon after start, so a broker restart shows its adopted queues quickly. */
	rc = loop_timer_arm(session_mgr_loop(m), &mt->kstats, loop_now_ms() + 1);
	if (rc == 0)
		rc = loop_timer_arm(session_mgr_loop(m), &mt->overruns,
				    loop_tick_after(METRICS_OVERRUN_TICK_MS));
	if (rc == 0)
		rc = loop_timer_arm(session_mgr_loop(m), &mt->lag,
				    loop_tick_after(METRICS_LAG_TICK_MS));
	if (rc < 0) {
		metrics_tick_free(mt);
		errno = -rc;
		return NULL;
	}
	return mt;
}

void metrics_tick_free(struct metrics_tick *mt)
{
	if (!mt)
		return;
	loop_timer_cancel(session_mgr_loop(mt->m), &mt->kstats);
	loop_timer_cancel(session_mgr_loop(mt->m), &mt->overruns);
	loop_timer_cancel(session_mgr_loop(mt->m), &mt->lag);
	free(mt);
}

int metrics_cache_get(struct metrics_cache *mc, struct session_mgr *m, uint64_t now_ms,
		      unsigned per_s)
{
	struct metrics_buf b = { 0 };
	int rc;

	if (!mc->window_ms || now_ms - mc->window_ms >= 1000) {
		mc->window_ms = now_ms ? now_ms : 1;
		mc->window_renders = 0;
	}
	if (mc->b.data && mc->window_renders >= per_s) {
		mc->hits++;
		return 0;
	}
	rc = metrics_render(m, &b);
	metrics_buf_free(&mc->b);
	if (rc < 0) {
		metrics_buf_free(&b);
		return rc;
	}
	mc->b = b;
	mc->window_renders++;
	mc->renders++;
	return 0;
}

void metrics_cache_free(struct metrics_cache *mc)
{
	metrics_buf_free(&mc->b);
	mc->window_ms = 0;
	mc->window_renders = 0;
}

/* ------------------------------------------------------------ listen address */

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int metrics_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
			 char *why, size_t whylen)
{
	return metrics_parse_address(s, false, ss, sslen, why, whylen);
}

int metrics_parse_address(const char *s, bool public_ok, struct sockaddr_storage *ss,
			  socklen_t *sslen, char *why, size_t whylen)
{
	char host[64];
	const char *colon, *hs = s;
	size_t hl;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		/* [v6]:port — the address's own colons are not the separator. */
		const char *rb = strchr(s, ']');

		colon = rb && rb[1] == ':' ? rb + 1 : NULL;
		hs = s + 1;
		hl = colon ? (size_t)(rb - hs) : 0;
	} else {
		colon = strrchr(s, ':');
		hl = colon ? (size_t)(colon - s) : 0;
	}
	if (!colon || hl == 0 || hl >= sizeof(host)) {
		snprintf(why, whylen, "\"%s\" is not ADDRESS:PORT (e.g. 127.0.0.1:9101)", s);
		return -EINVAL;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (parse_port(colon + 1, &port) < 0) {
		snprintf(why, whylen, "port \"%s\" is not a number 0-65535", colon + 1);
		return -EINVAL;
	}
	if (hs == s) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			snprintf(why, whylen, "\"%s\" is not an IPv4 address (write IPv6 as "
				 "[::1]:PORT)", host);
			return -EINVAL;
		}
		if (!public_ok && (ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
			snprintf(why, whylen, "%s is not a loopback address (127.0.0.0/8 or "
				 "[::1]; broker.metrics_public allows it)", host);
			return -EINVAL;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			snprintf(why, whylen, "\"%s\" is not an IPv6 address", host);
			return -EINVAL;
		}
		if (!public_ok && !IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
			snprintf(why, whylen, "%s is not a loopback address (127.0.0.0/8 or "
				 "[::1]; broker.metrics_public allows it)", host);
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
	}
	return 0;
}

bool metrics_addr_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
}
