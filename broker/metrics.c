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
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"
#include "metrics.h"
#include "session.h"

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

static const char *const verdict_names[] = { "accept", "drop", "repeat", "queue", "error" };

static uint64_t verdict_count(const struct session_counters *c, size_t i)
{
	const uint64_t v[] = { c->accept, c->drop, c->repeat, c->queue, c->errors };

	return v[i];
}

static void broker_families(struct session_mgr *m, struct metrics_buf *b)
{
	time_t now = time(NULL);

	family(b, "nfqb_up", "gauge", "Whether the broker answers (always 1 when scraped).");
	sample(b, "nfqb_up", NULL, NULL, NULL, NULL, NULL, NULL, 1);
	family(b, "nfqb_build_info", "gauge", "The broker's version.");
	sample(b, "nfqb_build_info", "version", NFQB_VERSION_STRING, NULL, NULL, NULL,
	       NULL, 1);
	family(b, "nfqb_uptime_seconds", "gauge", "Seconds since the broker started.");
	sample(b, "nfqb_uptime_seconds", NULL, NULL, NULL, NULL, NULL, NULL,
	       now > m->started ? (uint64_t)(now - m->started) : 0);
	family(b, "nfqb_namespaces", "gauge",
	       "Namespaces served (attached or in their grace period).");
	sample(b, "nfqb_namespaces", NULL, NULL, NULL, NULL, NULL, NULL, m->count);
	family(b, "nfqb_agent_attaches_total", "counter", "Agents accepted.");
	sample(b, "nfqb_agent_attaches_total", NULL, NULL, NULL, NULL, NULL, NULL,
	       m->attaches);
	family(b, "nfqb_agent_refusals_total", "counter", "Agents refused.");
	sample(b, "nfqb_agent_refusals_total", NULL, NULL, NULL, NULL, NULL, NULL,
	       m->refusals);
	family(b, "nfqb_broker_packets_total", "counter",
	       "Packets decided since the broker started, all namespaces.");
	sample(b, "nfqb_broker_packets_total", NULL, NULL, NULL, NULL, NULL, NULL,
	       m->total.packets);
	family(b, "nfqb_broker_bytes_total", "counter",
	       "Bytes (original packet lengths) decided since the broker started.");
	sample(b, "nfqb_broker_bytes_total", NULL, NULL, NULL, NULL, NULL, NULL,
	       m->total.bytes);
	family(b, "nfqb_broker_verdicts_total", "counter",
	       "Verdicts since the broker started (error: could not be sent).");
	for (size_t i = 0; i < 5; i++)
		sample(b, "nfqb_broker_verdicts_total", "verdict", verdict_names[i], NULL,
		       NULL, NULL, NULL, verdict_count(&m->total, i));
	family(b, "nfqb_kstats_refresh_total", "counter",
	       "Reads of a namespace's kernel queue statistics (on a tick, not per scrape).");
	sample(b, "nfqb_kstats_refresh_total", NULL, NULL, NULL, NULL, NULL, NULL,
	       m->kstats_refreshes);
}

static void namespace_families(struct session_mgr *m, struct metrics_buf *b)
{
	const struct session *s;

	family(b, "nfqb_namespace_info", "gauge",
	       "One per namespace served: its state and policy.");
	for (s = m->head; s; s = s->next)
		sample(b, "nfqb_namespace_info", "ns", s->name, "state",
		       session_state_name(s->state), "policy", policy_name(s->policy), 1);
	family(b, "nfqb_packets_total", "counter", "Packets decided, per namespace.");
	for (s = m->head; s; s = s->next)
		sample(b, "nfqb_packets_total", "ns", s->name, NULL, NULL, NULL, NULL,
		       s->c.packets);
	family(b, "nfqb_bytes_total", "counter",
	       "Bytes (original packet lengths) decided, per namespace.");
	for (s = m->head; s; s = s->next)
		sample(b, "nfqb_bytes_total", "ns", s->name, NULL, NULL, NULL, NULL,
		       s->c.bytes);
	family(b, "nfqb_verdicts_total", "counter",
	       "Verdicts per namespace (error: could not be sent).");
	for (s = m->head; s; s = s->next)
		for (size_t i = 0; i < 5; i++)
			sample(b, "nfqb_verdicts_total", "ns", s->name, "verdict",
			       verdict_names[i], NULL, NULL, verdict_count(&s->c, i));
	family(b, "nfqb_socket_overruns_total", "counter",
	       "Receive buffer overruns (ENOBUFS) of a namespace's netlink socket.");
	for (s = m->head; s; s = s->next) {
		struct nfqb_queue_stats st;

		nfqb_queue_get_stats(s->q, &st);
		sample(b, "nfqb_socket_overruns_total", "ns", s->name, NULL, NULL, NULL,
		       NULL, st.enobufs);
	}
}

/* Sessions whose snapshot failed or was not read yet have no samples here. */
static void kernel_families(struct session_mgr *m, struct metrics_buf *b)
{
	char qb[8];
	const struct session *s;

	family(b, "nfqb_queue_depth", "gauge", "Packets waiting in the kernel queue.");
	for (s = m->head; s; s = s->next)
		for (int j = 0; j < s->ks.n; j++) {
			snprintf(qb, sizeof(qb), "%u", s->ks.k[j].queue);
			sample(b, "nfqb_queue_depth", "ns", s->name, "queue", qb, NULL,
			       NULL, s->ks.k[j].queued);
		}
	family(b, "nfqb_queue_dropped_total", "counter",
	       "Packets the kernel dropped: queue full, or the socket could not take them.");
	for (s = m->head; s; s = s->next)
		for (int j = 0; j < s->ks.n; j++) {
			snprintf(qb, sizeof(qb), "%u", s->ks.k[j].queue);
			sample(b, "nfqb_queue_dropped_total", "ns", s->name, "queue", qb,
			       "reason", "full", s->ks.k[j].dropped_full);
			sample(b, "nfqb_queue_dropped_total", "ns", s->name, "queue", qb,
			       "reason", "netlink", s->ks.k[j].dropped_netlink);
		}
	family(b, "nfqb_queue_enqueued_total", "counter",
	       "Packets the kernel queued (its id_seq; restarts when a queue is rebound).");
	for (s = m->head; s; s = s->next)
		for (int j = 0; j < s->ks.n; j++) {
			snprintf(qb, sizeof(qb), "%u", s->ks.k[j].queue);
			sample(b, "nfqb_queue_enqueued_total", "ns", s->name, "queue", qb,
			       NULL, NULL, s->ks.k[j].id_seq);
		}
}

static void rule_families(struct session_mgr *m, struct metrics_buf *b)
{
	const struct policy_set *ps = m->cfg->policies;
	size_t np = policy_set_count(ps);

	for (int pass = 0; pass < 2; pass++) {
		const char *name = pass ? "nfqb_rule_bytes_total" : "nfqb_rule_hits_total";

		family(b, name, "counter", pass ? "Bytes matched, per policy rule." :
		       "Packets matched, per policy rule (\"(default)\": no rule matched).");
		for (size_t i = 0; i < np; i++) {
			const struct policy *p = policy_set_at(ps, i);
			int nr = (int)policy_rule_count(p);

			for (int r = 0; r < nr; r++) {
				const struct policy_counter *pc = policy_counter(p, r);

				sample(b, name, "policy", policy_name(p), "rule",
				       policy_rule_name(p, r), NULL, NULL,
				       pass ? pc->bytes : pc->packets);
			}
			/* The default last, as the rules are evaluated. */
			sample(b, name, "policy", policy_name(p), "rule", policy_rule_name(p, -1),
			       NULL, NULL, pass ? policy_counter(p, -1)->bytes :
			       policy_counter(p, -1)->packets);
		}
	}
}

int metrics_render(struct session_mgr *m, struct metrics_buf *b)
{
	broker_families(m, b);
	namespace_families(m, b);
	kernel_families(m, b);
	rule_families(m, b);
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

/* A failed read is tried again within a second: the queues may just be bound. */
#define KSTATS_RETRY_MS 1000u

static bool kstats_stale(const struct session *s, uint64_t now_ms, uint32_t refresh_ms)
{
	if (s->ks.n < 0 && refresh_ms > KSTATS_RETRY_MS)
		refresh_ms = KSTATS_RETRY_MS;
	return !s->ks.at_ms || now_ms - s->ks.at_ms >= refresh_ms;
}

static void kstats_read(struct session_mgr *m, struct session *s, uint64_t now_ms)
{
	s->ks.n = session_kstats(s, s->ks.k, SESSION_KSTATS_MAX);
	s->ks.at_ms = now_ms ? now_ms : 1;
	m->kstats_refreshes++;
}

unsigned metrics_kstats_refresh(struct session_mgr *m, uint64_t now_ms, uint32_t tick_ms)
{
	uint32_t refresh = m->cfg->ctl.metrics_refresh_ms;
	unsigned budget = metrics_kstats_budget(m->count, tick_ms, refresh), done = 0;
	struct session *s;

	/* New sessions first: an agent that just attached shows its queues soon. */
	for (s = m->head; s && done < budget; s = s->next)
		if (!s->ks.at_ms) {
			kstats_read(m, s, now_ms);
			done++;
		}
	for (s = m->head; s && done < budget; s = s->next)
		if (kstats_stale(s, now_ms, refresh)) {
			kstats_read(m, s, now_ms);
			done++;
		}
	return done;
}

/* ------------------------------------------------------------ ticks */

struct metrics_tick {
	struct session_mgr *m;
	struct loop_timer kstats;     /* refreshes the sessions' kernel statistics */
	struct loop_timer overruns;   /* logs the sockets' new ENOBUFS */
};

static uint32_t kstats_period(const struct session_mgr *m)
{
	uint32_t r = m->cfg->ctl.metrics_refresh_ms;

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

static void overruns_tick(struct loop *l, struct loop_timer *t, void *data)
{
	struct metrics_tick *mt = data;

	session_mgr_log_overruns(mt->m);
	loop_timer_arm(l, &mt->overruns, loop_now_ms() + METRICS_OVERRUN_TICK_MS);
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
	/* Soon after start, so a broker restart shows its adopted queues quickly. */
	rc = loop_timer_arm(m->loop, &mt->kstats, loop_now_ms() + 1);
	if (rc == 0)
		rc = loop_timer_arm(m->loop, &mt->overruns,
				    loop_now_ms() + METRICS_OVERRUN_TICK_MS);
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
	loop_timer_cancel(mt->m->loop, &mt->kstats);
	loop_timer_cancel(mt->m->loop, &mt->overruns);
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
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
			snprintf(why, whylen, "%s is not a loopback address (127.0.0.0/8 or "
				 "[::1])", host);
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
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
			snprintf(why, whylen, "%s is not a loopback address (127.0.0.0/8 or "
				 "[::1])", host);
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
	}
	return 0;
}
