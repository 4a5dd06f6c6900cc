/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/metrics.c (and the HTTP endpoint of http.c): the
 * exposition of known counters, checked value by value and by a strict
 * parser of the Prometheus text format (HELP/TYPE before the samples, one
 * block per family, valid names, escapes and values, no duplicate series);
 * label escaping; broker.metrics_listen parsing and its config errors; a
 * real scrape over HTTP on loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "internal.h"
#include "metrics.h"
#include "session-private.h"
#include "fake-session.h"

/* ------------------------------------------------------------ text parser */

struct family {
	char name[128];
	char type[32];
	bool samples_done;
};

struct parsed {
	struct family fam[64];
	size_t nfam;
	char *series[4096];
	size_t nseries;
};

static bool name_ok(const char *s, size_t n, bool metric)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool ok = isalpha((unsigned char)ch) || ch == '_' || (metric && ch == ':') ||
			  (i > 0 && isdigit((unsigned char)ch));

		if (!ok)
			return false;
	}
	return true;
}

static struct family *fam_find(struct parsed *p, const char *name, size_t n)
{
	for (size_t i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == n && strncmp(p->fam[i].name, name, n) == 0)
			return &p->fam[i];
	return NULL;
}

/* Whether the sample name @n (@len bytes) belongs to family @f: a histogram's
 * samples are its _bucket, _sum and _count series. */
static bool sample_of(const struct family *f, const char *n, size_t len)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	size_t fl = strlen(f->name);

	if (len < fl || strncmp(n, f->name, fl) != 0)
		return false;
	if (len == fl)
		return strcmp(f->type, "histogram") != 0;
	for (size_t i = 0; i < 3 && strcmp(f->type, "histogram") == 0; i++)
		if (len - fl == strlen(sfx[i]) && strncmp(n + fl, sfx[i], len - fl) == 0)
			return true;
	return false;
}

/* Labels: {name="value",...}; returns the position after '}' or NULL. */
static const char *parse_labels(const char *s)
{
	if (*s != '{')
		return s;
	s++;
	while (*s != '}') {
		const char *n = s;

		while (isalnum((unsigned char)*s) || *s == '_')
			s++;
		if (!name_ok(n, (size_t)(s - n), false) || *s++ != '=' || *s++ != '"')
			return NULL;
		while (*s != '"') {
			if (!*s || *s == '\n')
				return NULL;
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return NULL;
			}
			s++;
		}
		s++;
		if (*s == ',')
			s++;
		else if (*s != '}')
			return NULL;
	}
	return s + 1;
}

/* Strict check of a whole exposition; fails the test on the first problem. */
static void parse_text(const char *text, struct parsed *p)
{
	const char *line = text;
	struct family *cur = NULL;

	memset(p, 0, sizeof(*p));
	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	while (*line) {
		const char *end = strchr(line, '\n'), *s;
		char buf[1024];
		size_t len = (size_t)(end - line);

		assert_non_null(end);
		assert_true(len < sizeof(buf));
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = end + 1;
		if (strncmp(buf, "# HELP ", 7) == 0) {
			const char *n = buf + 7, *sp = strchr(n, ' ');

			assert_non_null(sp);
			if (!name_ok(n, (size_t)(sp - n), true))
				fail_msg("bad metric name in: %s", buf);
			if (fam_find(p, n, (size_t)(sp - n)))
				fail_msg("family listed twice: %s", buf);
			assert_true(p->nfam < 64);
			if (cur)
				cur->samples_done = true;
			cur = &p->fam[p->nfam++];
			snprintf(cur->name, sizeof(cur->name), "%.*s", (int)(sp - n), n);
			continue;
		}
		if (strncmp(buf, "# TYPE ", 7) == 0) {
			char name[128], type[32];

			assert_int_equal(sscanf(buf + 7, "%127s %31s", name, type), 2);
			assert_non_null(cur);
			assert_string_equal(name, cur->name);
			assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
				    strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0 &&
			    (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
				fail_msg("counter without _total: %s", name);
			snprintf(cur->type, sizeof(cur->type), "%s", type);
			continue;
		}
		if (buf[0] == '#')
			fail_msg("unexpected comment: %s", buf);
		/* A sample of the current family, after its TYPE. */
		s = buf;
		while (isalnum((unsigned char)*s) || *s == '_' || *s == ':')
			s++;
		if (!cur || !cur->type[0] || !sample_of(cur, buf, (size_t)(s - buf)))
			fail_msg("sample outside its family block: %s", buf);
		s = parse_labels(s);
		if (!s || *s != ' ')
			fail_msg("bad labels in: %s", buf);
		{
			char *vend;
			double v = strtod(s + 1, &vend);

			if (vend == s + 1 || *vend)
				fail_msg("bad value in: %s", buf);
			assert_true(v >= 0);
		}
		for (size_t i = 0; i < p->nseries; i++)
			if (strncmp(p->series[i], buf, (size_t)(s - buf)) == 0 &&
			    p->series[i][s - buf] == '\0')
				fail_msg("series twice: %s", buf);
		assert_true(p->nseries < 4096);
		p->series[p->nseries] = strndup(buf, (size_t)(s - buf));
		assert_non_null(p->series[p->nseries++]);
	}
}

static void parsed_free(struct parsed *p)
{
	for (size_t i = 0; i < p->nseries; i++)
		free(p->series[i]);
}

/* The value of one exact series line ("name{labels}"), or -1 when absent. */
static long long value_of(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ')
			return strtoll(l + n + 1, NULL, 10);
	return -1;
}

/* ------------------------------------------------------------ fixture */

static const char config[] =
	"{\"broker\": {\"listen\": \"/nonexistent/a.sock\", \"control\": \"/nonexistent/c.sock\"},"
	" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"web\"}],"
	" \"policies\": {"
	"  \"web\": {\"default\": \"drop\", \"rules\": ["
	"    {\"name\": \"dns\", \"match\": {\"proto\": \"udp\", \"dport\": 53}, \"verdict\": \"accept\"}]},"
	"  \"open\": {\"default\": \"accept\", \"rules\": []}}}";

struct fx {
	struct loop *loop;
	struct session_mgr *m;
};

static struct session *fake_session(struct session_mgr *m, const char *name,
				    const char *policy, uint64_t ino)
{
	static const uint16_t queues[] = { 1, 7 };

	return fake_session_queues(m, name, policy, ino, queues,
				   sizeof(queues) / sizeof(queues[0]));
}

/* What session_verdict counts for one packet of @len bytes to @dport. */
static void decide(struct session *s, uint8_t proto, uint16_t dport, uint32_t len)
{
	struct pktmeta pm = { .family = 4, .proto = proto, .has_ports = true, .dport = dport,
			      .len = len, .indev_id = -1, .outdev_id = -1 };
	const struct policy_action *act;

	policy_count(s->policy, policy_eval(s->policy, &pm, &act), len);
	for (struct session_counters *c = &s->c; c; c = c == &s->c ? &s->mgr->total : NULL) {
		c->packets++;
		c->bytes += len;
		if (act->verdict == NFQB_ACCEPT)
			c->accept++;
		else
			c->drop++;
	}
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct errs e = { 0 };
	struct cfg *cfg;

	if (!f)
		return -1;
	f->loop = loop_new();
	cfg = cfg_parse_string(config, &e);
	if (!f->loop || !cfg)
		return -1;
	f->m = session_mgr_new(f->loop, cfg);
	if (!f->m)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	session_mgr_free(f->m);
	loop_free(f->loop);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ render */

static void test_render_counts(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 1001);
	struct session *b = fake_session(f->m, "pod-b", "open", 1002);
	struct metrics_buf mb = { 0 };
	struct parsed p;

	for (int i = 0; i < 3; i++)
		decide(a, 17, 53, 100);          /* dns: accept */
	for (int i = 0; i < 2; i++)
		decide(a, 6, 80, 60);            /* web default: drop */
	for (int i = 0; i < 4; i++)
		decide(b, 6, 22, 1000);          /* open default: accept */
	f->m->attaches = 5;
	f->m->refusals = 2;
	assert_int_equal(metrics_render(f->m, &mb), 0);
	parse_text(mb.data, &p);

	assert_int_equal(value_of(mb.data, "nfqb_up"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_namespaces"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_agent_attaches_total"), 5);
	assert_int_equal(value_of(mb.data, "nfqb_agent_refusals_total"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_broker_packets_total"), 9);
	assert_int_equal(value_of(mb.data, "nfqb_broker_bytes_total"), 4420);
	assert_int_equal(value_of(mb.data, "nfqb_broker_verdicts_total{verdict=\"accept\"}"), 7);
	assert_int_equal(value_of(mb.data, "nfqb_broker_verdicts_total{verdict=\"drop\"}"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_packets_total{ns=\"pod-a\"}"), 5);
	assert_int_equal(value_of(mb.data, "nfqb_packets_total{ns=\"pod-b\"}"), 4);
	assert_int_equal(value_of(mb.data, "nfqb_bytes_total{ns=\"pod-a\"}"), 420);
	assert_int_equal(value_of(mb.data, "nfqb_verdicts_total{ns=\"pod-a\",verdict=\"accept\"}"), 3);
	assert_int_equal(value_of(mb.data, "nfqb_verdicts_total{ns=\"pod-a\",verdict=\"drop\"}"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_verdicts_total{ns=\"pod-b\",verdict=\"repeat\"}"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_namespace_info{ns=\"pod-b\",state=\"attached\","
					   "policy=\"open\"}"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_rule_hits_total{policy=\"web\",rule=\"dns\"}"), 3);
	assert_int_equal(value_of(mb.data, "nfqb_rule_hits_total{policy=\"web\",rule=\"(default)\"}"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_rule_bytes_total{policy=\"web\",rule=\"dns\"}"), 300);
	assert_int_equal(value_of(mb.data, "nfqb_rule_hits_total{policy=\"open\",rule=\"(default)\"}"), 4);
	assert_int_equal(value_of(mb.data, "nfqb_socket_overruns_total{ns=\"pod-a\"}"), 0);
	/* Every family the contract names is there, HELP and TYPE included. */
	assert_non_null(fam_find(&p, "nfqb_queue_depth", 16));
	assert_non_null(fam_find(&p, "nfqb_queue_dropped_total", 24));
	assert_non_null(fam_find(&p, "nfqb_uptime_seconds", 19));
	parsed_free(&p);
	metrics_buf_free(&mb);
}

/* The value of @series as a double (sums are fractional), or -1. */
static double fvalue_of(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

static bool near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}

/*
 * Histograms: buckets cumulative, +Inf equal to _count, _sum in seconds;
 * per namespace and for the whole broker. Also the reload, refusal,
 * readiness and process families.
 */
static void test_render_histograms(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 1001);
	struct metrics_buf mb = { 0 };
	struct parsed p;
	long long prev = 0;
	char series[128];

	/* 3 packets decided in a 20 µs round, 1 in a 3 ms one, 2 in a 1 s one */
	hist_add(&a->latency, &hist_latency_bounds, 20000, 3);
	hist_add(&a->latency, &hist_latency_bounds, 3000000, 1);
	hist_add(&a->latency, &hist_latency_bounds, 1000000000, 2);
	f->m->latency = a->latency;
	session_mgr_loop_lag(f->m, 1000, 1000u * 1000000u + 700000u);   /* 0.7 ms late */
	session_mgr_loop_lag(f->m, 1000, 999u * 1000000u);              /* early: 0 */
	session_mgr_count_refusal(f->m, REFUSAL_AGENT_NO_MATCH);
	session_mgr_count_refusal(f->m, REFUSAL_HTTP_LIMIT);
	session_mgr_count_refusal(f->m, REFUSAL_HTTP_LIMIT);
	assert_int_equal(metrics_render(f->m, &mb), 0);
	parse_text(mb.data, &p);
	for (int i = 0; i < HIST_BOUNDS; i++) {
		long long v;

		snprintf(series, sizeof(series), "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
			 "le=\"%g\"}", (double)hist_latency_bounds.ns[i] / 1e9);
		v = value_of(mb.data, series);
		assert_true(v >= prev);
		prev = v;
	}
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
				  "le=\"1e-05\"}"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
				  "le=\"2.5e-05\"}"), 3);
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
				  "le=\"0.0025\"}"), 3);
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
				  "le=\"0.005\"}"), 4);
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
				  "le=\"0.1\"}"), 4);
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_bucket{ns=\"pod-a\","
				  "le=\"+Inf\"}"), 6);
	assert_int_equal(value_of(mb.data, "nfqb_verdict_latency_seconds_count{ns=\"pod-a\"}"), 6);
	assert_true(near(fvalue_of(mb.data, "nfqb_verdict_latency_seconds_sum{ns=\"pod-a\"}"),
			 2.00306));
	assert_int_equal(value_of(mb.data, "nfqb_broker_verdict_latency_seconds_bucket{"
				  "le=\"+Inf\"}"), 6);
	assert_int_equal(value_of(mb.data, "nfqb_broker_verdict_latency_seconds_count"), 6);
	assert_int_equal(value_of(mb.data, "nfqb_loop_lag_seconds_bucket{le=\"0.0005\"}"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_loop_lag_seconds_bucket{le=\"0.001\"}"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_loop_lag_seconds_count"), 2);
	assert_true(near(fvalue_of(mb.data, "nfqb_loop_lag_seconds_sum"), 0.0007));
	/* refusals: every reason present, zeros included */
	assert_int_equal(value_of(mb.data, "nfqb_refusals_total{listener=\"agent\","
				  "reason=\"no_match\"}"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_refusals_total{listener=\"http\","
				  "reason=\"limit\"}"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_refusals_total{listener=\"control\","
				  "reason=\"uid\"}"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_agent_refusals_total"), 1);
	/* the start's load: successful, no reload yet */
	assert_int_equal(value_of(mb.data, "nfqb_config_last_reload_successful"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_config_last_reload_success_timestamp_seconds"),
			 (long long)f->m->started);
	assert_int_equal(value_of(mb.data, "nfqb_config_reloads_total{result=\"failure\"}"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_ready"), 0);
	assert_int_equal(value_of(mb.data, "process_start_time_seconds"), (long long)f->m->started);
	assert_true(value_of(mb.data, "process_open_fds") >= 3);
	assert_true(value_of(mb.data, "process_max_fds") >= value_of(mb.data, "process_open_fds"));
	parsed_free(&p);
	metrics_buf_free(&mb);
}

/* A failed reload shows until the next good one; the counts by result. */
static void test_render_reloads(void **state)
{
	struct fx *f = *state;
	char path[] = "/tmp/test-metrics-reload.XXXXXX";
	struct metrics_buf mb = { 0 };
	struct errs e = { 0 };
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{", 1), 1);
	close(fd);
	assert_int_equal(session_mgr_reload(f->m, path, &e), -EINVAL);
	errs_reset(&e);
	assert_int_equal(metrics_render(f->m, &mb), 0);
	assert_int_equal(value_of(mb.data, "nfqb_config_last_reload_successful"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_config_reloads_total{result=\"failure\"}"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_config_reloads_total{result=\"success\"}"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_config_last_reload_success_timestamp_seconds"),
			 (long long)f->m->started);
	metrics_buf_free(&mb);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, config, strlen(config)), (ssize_t)strlen(config));
	close(fd);
	f->m->started -= 100;      /* so the success's timestamp is a later one */
	assert_int_equal(session_mgr_reload(f->m, path, &e), 0);
	assert_int_equal(metrics_render(f->m, &mb), 0);
	assert_int_equal(value_of(mb.data, "nfqb_config_last_reload_successful"), 1);
	assert_int_equal(value_of(mb.data, "nfqb_config_reloads_total{result=\"success\"}"), 1);
	assert_true(value_of(mb.data, "nfqb_config_last_reload_success_timestamp_seconds") >
		    (long long)f->m->started);
	metrics_buf_free(&mb);
	unlink(path);
}

static void test_render_escapes_labels(void **state)
{
	struct fx *f = *state;
	struct session *s = fake_session(f->m, "we\"ird\\name\nx", "web", 7);
	struct metrics_buf mb = { 0 };
	struct parsed p;

	decide(s, 17, 53, 10);
	assert_int_equal(metrics_render(f->m, &mb), 0);
	parse_text(mb.data, &p);
	assert_int_equal(value_of(mb.data, "nfqb_packets_total{ns=\"we\\\"ird\\\\name\\nx\"}"), 1);
	parsed_free(&p);
	metrics_buf_free(&mb);
}

static void test_render_empty(void **state)
{
	struct fx *f = *state;
	struct metrics_buf mb = { 0 };
	struct parsed p;

	assert_int_equal(metrics_render(f->m, &mb), 0);
	parse_text(mb.data, &p);
	assert_int_equal(value_of(mb.data, "nfqb_namespaces"), 0);
	assert_int_equal(value_of(mb.data, "nfqb_packets_total{ns=\"pod-a\"}"), -1);
	parsed_free(&p);
	metrics_buf_free(&mb);
}

/*
 * Every row of metrics.c's table is in the exposition, in table order, with
 * its HELP line (the row's text) and TYPE; and no family is there that the
 * table does not have.
 */
static void test_render_table(void **state)
{
	struct fx *f = *state;
	struct metrics_buf mb = { 0 };
	struct parsed p;

	fake_session(f->m, "pod-a", "web", 1001);
	assert_int_equal(metrics_render(f->m, &mb), 0);
	parse_text(mb.data, &p);
	assert_int_equal(p.nfam, metrics_count());
	for (size_t i = 0; i < metrics_count(); i++) {
		const char *type, *help, *name = metrics_name(i, &type, &help);
		char line[512];

		assert_non_null(name);
		assert_string_equal(p.fam[i].name, name);
		assert_string_equal(p.fam[i].type, type);
		snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
		if (!strstr(mb.data, line))
			fail_msg("no HELP/TYPE pair for %s", name);
	}
	assert_null(metrics_name(metrics_count(), NULL, NULL));
	parsed_free(&p);
	metrics_buf_free(&mb);
}

/* docs/control.md's metric table names every family of the table. */
static void test_doc_lists_every_metric(void **state)
{
	FILE *f = fopen(TEST_SRCDIR "/../docs/control.md", "r");
	static char doc[1 << 17];
	size_t n;
	char *sec, *end;

	assert_non_null(f);
	n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	sec = strstr(doc, "\n## Metrics\n");
	assert_non_null(sec);
	end = strstr(sec + 1, "\n## ");
	if (end)
		*end = '\0';
	for (size_t i = 0; i < metrics_count(); i++) {
		char quoted[140];

		snprintf(quoted, sizeof(quoted), "`%s`", metrics_name(i, NULL, NULL));
		if (!strstr(sec, quoted))
			fail_msg("docs/control.md's Metrics section lacks %s", quoted);
	}
}

/* ------------------------------------------------------------ snapshots */

static void test_kstats_budget(void **state)
{
	/* 41 namespaces, a 250 ms tick, read every 5 s: 3 a tick, not 41 at once */
	assert_int_equal(metrics_kstats_budget(41, 250, 5000), 3);
	assert_int_equal(metrics_kstats_budget(0, 250, 5000), 1);
	assert_int_equal(metrics_kstats_budget(1, 250, 5000), 1);
	assert_int_equal(metrics_kstats_budget(20, 250, 5000), 1);
	assert_int_equal(metrics_kstats_budget(21, 250, 5000), 2);
	/* never more than the cap, whatever the config asks */
	assert_int_equal(metrics_kstats_budget(1000, 250, 100), METRICS_KSTATS_BUDGET);
	assert_int_equal(metrics_kstats_budget(5, 100, 0), METRICS_KSTATS_BUDGET);
}

/* Each session read about once per refresh period, spread over the ticks. */
static void test_kstats_refresh_spread(void **state)
{
	struct fx *f = *state;
	struct session *s[10];
	uint64_t now = 100000;

	f->m->cfg->ctl.metrics_refresh_ms = 1000;
	for (int i = 0; i < 10; i++) {
		char name[16];

		snprintf(name, sizeof(name), "pod-%d", i);
		s[i] = fake_session(f->m, name, "web", 2000 + (uint64_t)i);
		assert_int_equal(s[i]->ks.at_ms, 0);
	}
	/* 10 * 250 / 1000: 3 a tick until all are read once */
	assert_int_equal(metrics_kstats_refresh(f->m, now, 250), 3);
	assert_int_equal(metrics_kstats_refresh(f->m, now + 250, 250), 3);
	assert_int_equal(metrics_kstats_refresh(f->m, now + 500, 250), 3);
	assert_int_equal(metrics_kstats_refresh(f->m, now + 750, 250), 1);
	assert_int_equal(f->m->kstats_refreshes, 10);
	for (int i = 0; i < 10; i++) {
		assert_true(s[i]->ks.at_ms >= now && s[i]->ks.at_ms <= now + 750);
		/* a socketpair is no netfilter socket: its error is kept, not hidden */
		assert_true(s[i]->ks.n < 0);
	}
	/* nothing is due before its period is over */
	assert_int_equal(metrics_kstats_refresh(f->m, now + 999, 250), 0);
	assert_int_equal(metrics_kstats_refresh(f->m, now + 1000, 250), 3);
	assert_int_equal(f->m->kstats_refreshes, 13);
	/* a session that just came is read first */
	struct session *n = fake_session(f->m, "pod-new", "web", 3000);

	/* the others were read less than 1000 ms ago */
	assert_int_equal(metrics_kstats_refresh(f->m, now + 1001, 250), 1);
	assert_int_equal(n->ks.at_ms, now + 1001);
	/* a failed read is tried again after a second, not after the period */
	f->m->cfg->ctl.metrics_refresh_ms = 5000;
	assert_int_equal(metrics_kstats_refresh(f->m, now + 2000, 250), 1);
	assert_int_equal(metrics_kstats_refresh(f->m, now + 2250, 250), 1);
	for (struct session *x = f->m->head; x; x = x->next)
		x->ks.n = 0;         /* as if read fine: the full period applies */
	assert_int_equal(metrics_kstats_refresh(f->m, now + 2500, 250), 0);
}

/* Rendering reads the snapshot only: it never counts a refresh itself. */
static void test_render_from_snapshot(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 1001);
	struct metrics_buf mb = { 0 };

	a->ks.n = 1;
	a->ks.at_ms = 5;
	a->ks.k[0] = (struct nfqb_kstat){ .queue = 3, .queued = 7, .dropped_full = 2,
					  .dropped_netlink = 1, .id_seq = 99 };
	f->m->kstats_refreshes = 4;
	for (int i = 0; i < 3; i++) {
		metrics_buf_free(&mb);
		assert_int_equal(metrics_render(f->m, &mb), 0);
	}
	assert_int_equal(f->m->kstats_refreshes, 4);
	assert_int_equal(value_of(mb.data, "nfqb_kstats_refresh_total"), 4);
	assert_int_equal(value_of(mb.data, "nfqb_queue_depth{ns=\"pod-a\",queue=\"3\"}"), 7);
	assert_int_equal(value_of(mb.data, "nfqb_queue_dropped_total{ns=\"pod-a\",queue=\"3\","
				  "reason=\"full\"}"), 2);
	assert_int_equal(value_of(mb.data, "nfqb_queue_enqueued_total{ns=\"pod-a\",queue=\"3\"}"),
			 99);
	/* a failed read leaves the namespace out of the kernel families */
	a->ks.n = -ENODATA;
	metrics_buf_free(&mb);
	assert_int_equal(metrics_render(f->m, &mb), 0);
	assert_int_equal(value_of(mb.data, "nfqb_queue_depth{ns=\"pod-a\",queue=\"3\"}"), -1);
	metrics_buf_free(&mb);
}

/* At most N renders a second; beyond that the last text comes back. */
static void test_cache_budget(void **state)
{
	struct fx *f = *state;
	struct metrics_cache mc = { 0 };
	uint64_t now = 50000;

	for (int i = 0; i < 3; i++) {
		f->m->refusals = (uint64_t)i;
		assert_int_equal(metrics_cache_get(&mc, f->m, now + (uint64_t)i, 3), 0);
		assert_int_equal(value_of(mc.b.data, "nfqb_agent_refusals_total"), i);
	}
	f->m->refusals = 77;
	assert_int_equal(metrics_cache_get(&mc, f->m, now + 10, 3), 0);
	assert_int_equal(value_of(mc.b.data, "nfqb_agent_refusals_total"), 2);
	assert_int_equal(mc.renders, 3);
	assert_int_equal(mc.hits, 1);
	/* the next second renders again */
	assert_int_equal(metrics_cache_get(&mc, f->m, now + 1000, 3), 0);
	assert_int_equal(value_of(mc.b.data, "nfqb_agent_refusals_total"), 77);
	assert_int_equal(mc.renders, 4);
	metrics_cache_free(&mc);
	assert_null(mc.b.data);
	metrics_cache_free(&mc);
}

static void test_buf_label(void **state)
{
	struct metrics_buf b = { 0 };

	metrics_buf_label(&b, "a\\b\"c\nd");
	metrics_buf_label(&b, NULL);
	metrics_buf_printf(&b, " %d", 42);
	assert_string_equal(b.data, "\"a\\\\b\\\"c\\nd\"\"\" 42");
	assert_int_equal(b.len, strlen(b.data));
	metrics_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

/* ------------------------------------------------------------ listen address */

static void test_parse_listen(void **state)
{
	static const char *const good[] = {
		"127.0.0.1:9101", "127.1.2.3:0", "[::1]:65535", "127.0.0.1:1",
	};
	static const struct { const char *in, *why; } bad[] = {
		{ "0.0.0.0:9101", "0.0.0.0 is not a loopback address" },
		{ "10.0.0.1:9101", "10.0.0.1 is not a loopback address" },
		{ "[::]:9101", ":: is not a loopback address" },
		{ "[fe80::1]:9101", "fe80::1 is not a loopback address" },
		{ "localhost:9101", "\"localhost\" is not an IPv4 address" },
		{ "127.0.0.1", "is not ADDRESS:PORT" },
		{ "127.0.0.1:70000", "port \"70000\" is not a number 0-65535" },
		{ "127.0.0.1:", "port \"\" is not a number" },
		{ "127.0.0.1:-1", "port \"-1\" is not a number" },
		{ "127.0.0.1:80x", "port \"80x\"" },
		{ ":9101", "is not ADDRESS:PORT" },
		{ "::1:9101", "write IPv6 as [::1]:PORT" },
		{ "[::1]", "is not ADDRESS:PORT" },
		{ "[]:80", "is not ADDRESS:PORT" },
		{ "[::1:80", "is not ADDRESS:PORT" },
		{ "[::1]80", "is not ADDRESS:PORT" },
		{ "[127.0.0.1]:80", "\"127.0.0.1\" is not an IPv6 address" },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	char why[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(metrics_parse_listen(good[i], &ss, &len, why, sizeof(why)), 0);
	assert_int_equal(metrics_parse_listen("127.0.0.1:9101", &ss, &len, why, sizeof(why)), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9101);
	assert_int_equal(metrics_parse_listen("[::1]:80", &ss, &len, why, sizeof(why)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 80);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(metrics_parse_listen(bad[i].in, &ss, &len, why, sizeof(why)),
				 -EINVAL);
		if (!strstr(why, bad[i].why))
			fail_msg("%s: got \"%s\", expected \"%s\"", bad[i].in, why, bad[i].why);
	}
}

static void test_config_key(void **state)
{
	static const char tmpl[] =
		"{\"broker\": {%s},"
		" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"p\"}],"
		" \"policies\": {\"p\": {\"default\": \"accept\", \"rules\": []}}}";
	char text[512];
	struct errs e = { 0 };
	struct cfg *c;

	snprintf(text, sizeof(text), tmpl, "");
	c = cfg_parse_string(text, &e);
	assert_non_null(c);
	assert_null(c->metrics_listen);
	cfg_free(c);

	snprintf(text, sizeof(text), tmpl, "\"metrics_listen\": \"127.0.0.1:9101\"");
	c = cfg_parse_string(text, &e);
	assert_non_null(c);
	assert_string_equal(c->metrics_listen, "127.0.0.1:9101");
	cfg_free(c);

	snprintf(text, sizeof(text), tmpl, "\"metrics_listen\": \"0.0.0.0:9101\"");
	assert_null(cfg_parse_string(text, &e));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.lines[0], "broker.metrics_listen: 0.0.0.0 is not a loopback "
			    "address (127.0.0.0/8 or [::1]; broker.metrics_public allows it)");
	errs_reset(&e);

	snprintf(text, sizeof(text), tmpl, "\"metrics_listen\": 9101");
	assert_null(cfg_parse_string(text, &e));
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.lines[0], "broker.metrics_listen: "));
	errs_reset(&e);
}

/* ------------------------------------------------------------ HTTP */

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	loop_stop(l);
}

/* Run the loop for @ms milliseconds. */
static void pump(struct loop *l, unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	loop_timer_arm(l, &t, loop_now_ms() + ms);
	assert_int_equal(loop_run(l), 0);
	loop_timer_cancel(l, &t);
}

static void block_cb(struct loop *l, struct loop_timer *t, void *data)
{
	usleep(200 * 1000);
}

/*
 * The loop-lag tick: an idle loop runs it about on time; a callback that blocks the loop for 200 ms makes
 * the next tick at least 100 ms late.
 */
static void test_loop_lag_tick(void **state)
{
	struct fx *f = *state;
	struct metrics_tick *mt = metrics_tick_new(f->m);
	struct loop_timer blocker;
	struct session_totals t;
	uint64_t late = 0, n0;

	assert_non_null(mt);
	pump(f->loop, 350);
	session_mgr_totals(f->m, &t);
	assert_true(t.loop_lag.count >= 1 && t.loop_lag.count <= 4);
	/* idle: well under 250 ms each, even on a loaded test machine */
	for (int i = 9; i <= HIST_BOUNDS; i++)
		assert_int_equal(t.loop_lag.bucket[i], 0);
	n0 = t.loop_lag.count;
	loop_timer_init(&blocker, block_cb, NULL);
	assert_int_equal(loop_timer_arm(f->loop, &blocker, loop_now_ms() + 10), 0);
	pump(f->loop, 400);
	session_mgr_totals(f->m, &t);
	assert_true(t.loop_lag.count > n0);
	/* observations above 50 ms (hist_lag_bounds.ns[6]) */
	for (int i = 7; i <= HIST_BOUNDS; i++)
		late += t.loop_lag.bucket[i];
	assert_true(late >= 1);
	assert_true(t.loop_lag.sum_ns >= 100000000u);
	metrics_tick_free(mt);
	metrics_tick_free(NULL);
}

/* One HTTP/1.0 exchange with the server at @addr; the whole response. */
static char *http_get(struct loop *l, const char *addr, const char *req)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(addr, ':');
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	char host[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_non_null(buf);
	assert_non_null(colon);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	for (int i = 0; i < 500; i++) {
		ssize_t n;

		pump(l, 10);
		n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
		else
			assert_true(errno == EAGAIN);
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

static void test_http_scrape(void **state)
{
	struct fx *f = *state;
	struct session *s = fake_session(f->m, "pod-h", "web", 9);
	char why[256] = "";
	struct http *h;
	struct parsed p;
	char *r, *body;

	if (!http_available())
		skip();
	decide(s, 17, 53, 50);
	h = http_new(f->m, "127.0.0.1:0", why, sizeof(why));
	if (!h)
		fail_msg("http_new: %s", why);
	assert_int_not_equal(strcmp(http_address(h), "127.0.0.1:0"), 0);

	r = http_get(f->loop, http_address(h), "GET /metrics HTTP/1.0\r\n\r\n");
	assert_true(strncmp(r, "HTTP/1.0 200", 12) == 0 || strncmp(r, "HTTP/1.1 200", 12) == 0);
	assert_non_null(strstr(r, "text/plain; version=0.0.4"));
	body = strstr(r, "\r\n\r\n");
	assert_non_null(body);
	parse_text(body + 4, &p);
	assert_int_equal(value_of(body + 4, "nfqb_packets_total{ns=\"pod-h\"}"), 1);
	parsed_free(&p);
	free(r);

	r = http_get(f->loop, http_address(h), "GET /other HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 404 "));
	free(r);
	r = http_get(f->loop, http_address(h),
		     "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nab");
	assert_non_null(strstr(r, " 405 "));
	free(r);
	/* Not HTTP at all: no answer, connection closed. */
	r = http_get(f->loop, http_address(h), "GARBAGE\r\n\r\n");
	assert_null(strstr(r, " 200 "));
	free(r);
	/* The broker's loop goes on: a second scrape still works. */
	r = http_get(f->loop, http_address(h), "GET /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, "nfqb_up 1"));
	free(r);
	http_free(h);
	assert_int_equal(loop_fd_count(f->loop), 0);
}

static void test_http_errors(void **state)
{
	struct fx *f = *state;
	char why[256] = "", addr[64];
	struct http *h, *h2;

	assert_null(http_new(f->m, "0.0.0.0:0", why, sizeof(why)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(why, "not a loopback address"));
	if (!http_available()) {
		assert_null(http_new(f->m, "127.0.0.1:0", why, sizeof(why)));
		assert_int_equal(errno, ENOTSUP);
		return;
	}
	h = http_new(f->m, "127.0.0.1:0", why, sizeof(why));
	assert_non_null(h);
	snprintf(addr, sizeof(addr), "%s", http_address(h));
	/* The port is taken: the reason names the address. */
	h2 = http_new(f->m, addr, why, sizeof(why));
	assert_null(h2);
	assert_non_null(strstr(why, addr));
	http_free(h);
	http_free(NULL);
	assert_int_equal(loop_fd_count(f->loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_render_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_histograms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_reloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_escapes_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_table, setup, teardown),
		cmocka_unit_test(test_doc_lists_every_metric),
		cmocka_unit_test(test_kstats_budget),
		cmocka_unit_test_setup_teardown(test_kstats_refresh_spread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_from_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_budget, setup, teardown),
		cmocka_unit_test(test_buf_label),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_config_key),
		cmocka_unit_test_setup_teardown(test_http_scrape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_lag_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
