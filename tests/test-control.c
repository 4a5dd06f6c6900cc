/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/control.c: every command over a real unix socket
 * served by the broker's loop (pumped by the test), with fake sessions
 * whose counters are known; malformed, oversized, unknown and pipelined
 * requests; the watch stream (filtering, lost-event accounting, the hook
 * present only while someone watches); a stuck client dropped without
 * ever blocking; the client limits (total, per uid, the admin reserve, with
 * clients of other uids connected by forked children); uid authorization
 * (refused at connect, read-only vs admin, grants revoked by a reload);
 * idle clients dropped; the socket file's mode and cleanup.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <json-c/json.h>

#include "commands.h"
#include "control.h"
#include "ctlcmd.h"
#include "internal.h"
#include "session-private.h"
#include "fake-session.h"
#include "scm.h"

static const char config_a[] =
	"{\"broker\": {\"listen\": \"/nonexistent/a.sock\"},"
	" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"web\"}],"
	" \"policies\": {"
	"  \"web\": {\"default\": \"drop\", \"rules\": ["
	"    {\"name\": \"dns\", \"match\": {\"proto\": \"udp\", \"dport\": 53}, \"verdict\": \"accept\"},"
	"    {\"name\": \"ssh\", \"match\": {\"proto\": \"tcp\", \"dport\": 22}, \"verdict\": \"accept\"}]},"
	"  \"open\": {\"default\": \"accept\", \"rules\": []}}}";

/* config_a plus a policy "extra". */
static const char config_b[] =
	"{\"broker\": {\"listen\": \"/nonexistent/a.sock\"},"
	" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"web\"}],"
	" \"policies\": {"
	"  \"web\": {\"default\": \"drop\", \"rules\": ["
	"    {\"name\": \"dns\", \"match\": {\"proto\": \"udp\", \"dport\": 53}, \"verdict\": \"accept\"},"
	"    {\"name\": \"ssh\", \"match\": {\"proto\": \"tcp\", \"dport\": 22}, \"verdict\": \"accept\"}]},"
	"  \"open\": {\"default\": \"accept\", \"rules\": []},"
	"  \"extra\": {\"default\": \"accept\", \"rules\": []}}}";

static const char config_bad[] =
	"{\"broker\": {\"grace_ms\": -1},"
	" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"nope\"}],"
	" \"policies\": {\"web\": {\"default\": \"drop\", \"rules\": []}}}";

struct fx {
	char dir[40], sock[80], cfgpath[80];
	struct loop *loop;
	struct session_mgr *m;
	struct control *c;
};

/* A test client: its socket and what it received but did not consume yet. */
struct tc {
	int fd;
	bool eof;
	size_t len;
	char buf[4 << 20];
};

/* ------------------------------------------------------------ helpers */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	loop_stop(l);
}

/* Run the broker's loop for @ms milliseconds. */
static void pump(struct fx *f, unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	loop_timer_arm(f->loop, &t, loop_now_ms() + ms);
	assert_int_equal(loop_run(f->loop), 0);
	loop_timer_cancel(f->loop, &t);
}

static struct tc *tc_connect(struct fx *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct tc *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl(t->fd, F_SETFL, O_NONBLOCK), 0);
	pump(f, 5);
	return t;
}

static void tc_close(struct tc *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

static void tc_send(struct tc *t, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(t->fd, s, n, MSG_NOSIGNAL);

		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

static void tc_recv(struct tc *t)
{
	for (;;) {
		ssize_t n = recv(t->fd, t->buf + t->len, sizeof(t->buf) - t->len - 1, 0);

		if (n > 0) {
			t->len += (size_t)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			t->eof = true;
		else
			assert_true(errno == EAGAIN);
		return;
	}
}

/* The next line (newline stripped, caller frees) within @ms; NULL on EOF or timeout. */
static char *tc_try_line(struct fx *f, struct tc *t, unsigned ms)
{
	for (unsigned i = 0; i <= ms / 5; i++) {
		char *nl = memchr(t->buf, '\n', t->len), *line;

		if (nl) {
			size_t n = (size_t)(nl - t->buf);

			line = strndup(t->buf, n);
			memmove(t->buf, nl + 1, t->len - n - 1);
			t->len -= n + 1;
			return line;
		}
		if (t->eof)
			return NULL;
		pump(f, 5);
		tc_recv(t);
	}
	return NULL;
}

/* The next line within 5 s; NULL on EOF; fails the test on a timeout. */
static char *tc_line(struct fx *f, struct tc *t)
{
	char *line = tc_try_line(f, t, 5000);

	if (!line && !t->eof)
		fail_msg("no reply within 5 s");
	return line;
}

static json_object *tc_reply(struct fx *f, struct tc *t)
{
	char *line = tc_line(f, t);
	json_object *o;

	if (!line)
		fail_msg("connection closed instead of a reply");
	o = json_tokener_parse(line);
	if (!o || !json_object_is_type(o, json_type_object))
		fail_msg("reply is not a JSON object: %s", line);
	free(line);
	return o;
}

static json_object *request(struct fx *f, struct tc *t, const char *req)
{
	tc_send(t, req, strlen(req));
	return tc_reply(f, t);
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("key %s missing in %s", key, json_object_to_json_string(o));
	return v;
}

static int64_t get_int(json_object *o, const char *key)
{
	return json_object_get_int64(get(o, key));
}

static bool is_ok(json_object *o)
{
	return json_object_get_boolean(get(o, "ok"));
}

/* Fail unless @o is {"ok":false,"error":...} with @what in the error. */
static void assert_error(json_object *o, const char *what)
{
	const char *err;

	assert_false(is_ok(o));
	err = json_object_get_string(get(o, "error"));
	if (!strstr(err, what))
		fail_msg("error \"%s\" does not say \"%s\"", err, what);
}

static void assert_ok_status(struct fx *f, struct tc *t)
{
	json_object *o = request(f, t, "{\"cmd\":\"status\"}\n");

	assert_true(is_ok(o));
	json_object_put(o);
}

/* Pump until the connection is closed by the broker (5 s at most). */
static void assert_closed(struct fx *f, struct tc *t)
{
	for (int i = 0; i < 1000 && !t->eof; i++) {
		pump(f, 5);
		t->len = 0;
		tc_recv(t);
	}
	assert_true(t->eof);
}

/* ------------------------------------------------------------ fake state */

static struct session *fake_session(struct session_mgr *m, const char *name,
				    const char *policy, uint64_t ino)
{
	static const uint16_t queues[] = { 3 };

	return fake_session_queues(m, name, policy, ino, queues,
				   sizeof(queues) / sizeof(queues[0]));
}

/* What session_verdict does for one UDP/TCP packet, watch hook included. */
static void decide(struct session *s, uint8_t proto, uint16_t dport, uint32_t len,
		   uint32_t id)
{
	struct nfqb_packet p = { .id = id, .queue_num = 3, .hook = NFQB_HOOK_INPUT };
	struct pktmeta pm = { .family = 4, .proto = proto, .has_ports = true, .sport = 5555,
			      .dport = dport, .len = len, .hook = NFQB_HOOK_INPUT,
			      .indev_id = -1, .outdev_id = -1 };
	struct session_mgr *m = s->mgr;
	const struct policy_action *act;
	int rule;

	inet_pton(AF_INET, "10.9.0.1", pm.src);
	inet_pton(AF_INET, "10.9.0.2", pm.dst);
	rule = policy_eval(s->policy, &pm, &act);
	policy_count(s->policy, rule, len);
	for (struct session_counters *c = &s->c; c; c = c == &s->c ? &m->total : NULL) {
		c->packets++;
		c->bytes += len;
		if (act->verdict == NFQB_ACCEPT)
			c->accept++;
		else
			c->drop++;
	}
	for (size_t i = 0; i < m->nobs; i++)
		if (m->obs[i].fn)
			m->obs[i].fn(s, &p, &pm, rule, act, 0, m->obs[i].data);
}

/* ------------------------------------------------------------ fixture */

static int setup_with(void **state, bool with_config_path)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct errs e = { 0 };
	char why[256] = "";
	struct cfg *cfg;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-control-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%s/run/control.sock", f->dir);
	snprintf(f->cfgpath, sizeof(f->cfgpath), "%s/broker.json", f->dir);
	write_file(f->cfgpath, config_a);
	f->loop = loop_new();
	cfg = cfg_load(f->cfgpath, &e);
	if (!f->loop || !cfg)
		return -1;
	f->m = session_mgr_new(f->loop, cfg);
	if (!f->m)
		return -1;
	f->c = control_new(f->m, with_config_path ? f->cfgpath : NULL, f->sock, 0600, why,
			   sizeof(why));
	if (!f->c) {
		fprintf(stderr, "control_new: %s\n", why);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, true);
}

static int setup_nopath(void **state)
{
	return setup_with(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	control_free(f->c);
	session_mgr_free(f->m);
	assert_int_equal(loop_fd_count(f->loop), 0);
	loop_free(f->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ------------------------------------------------------------ socket */

static void test_socket_file(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char why[256] = "", stale[96];
	struct control *c2;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct tc *t;
	int fd;

	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A live control socket is never taken over. */
	c2 = control_new(f->m, NULL, f->sock, 0600, why, sizeof(why));
	assert_null(c2);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(why, f->sock));
	assert_int_equal(stat(f->sock, &st), 0);
	t = tc_connect(f);
	assert_ok_status(f, t);
	tc_close(t);
	/* A stale one (no process behind it) is replaced. */
	snprintf(stale, sizeof(stale), "%s/stale.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	c2 = control_new(f->m, NULL, stale, 0660, why, sizeof(why));
	assert_non_null(c2);
	assert_int_equal(stat(stale, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	control_free(c2);
	/* Freed: its file is gone, the other server's is not. */
	assert_int_equal(stat(stale, &st), -1);
	assert_int_equal(stat(f->sock, &st), 0);
	/* A path that is not a socket is left alone. */
	write_file(stale, "x");
	assert_null(control_new(f->m, NULL, stale, 0600, why, sizeof(why)));
	assert_non_null(strstr(why, "not a socket"));
}

/* ------------------------------------------------------------ commands */

static void test_status(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct tc *t = tc_connect(f);
	json_object *o, *v;

	decide(a, 17, 53, 100, 1);
	decide(a, 6, 80, 40, 2);
	f->m->attaches = 3;
	o = request(f, t, "{\"cmd\":\"status\"}\n");
	assert_true(is_ok(o));
	assert_string_equal(json_object_get_string(get(o, "version")), NFQB_VERSION_STRING);
	assert_true(get_int(o, "uptime_s") >= 0);
	assert_int_equal(get_int(o, "namespaces"), 1);
	assert_int_equal(get_int(o, "packets"), 2);
	assert_int_equal(get_int(o, "bytes"), 140);
	v = get(o, "verdicts");
	assert_int_equal(get_int(v, "accept"), 1);
	assert_int_equal(get_int(v, "drop"), 1);
	assert_int_equal(get_int(v, "repeat"), 0);
	assert_int_equal(get_int(o, "attaches"), 3);
	assert_int_equal(get_int(o, "control_clients"), 1);
	assert_int_equal(get_int(o, "watchers"), 0);
	assert_non_null(strstr(json_object_get_string(get(o, "config")), "broker.json"));
	assert_true(json_object_is_type(get(o, "metrics_listen"), json_type_null));
	json_object_put(o);
	tc_close(t);
}

static void test_agents(void **state)
{
	struct fx *f = *state;
	struct session *b = fake_session(f->m, "pod-b", "open", 22);
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct tc *t = tc_connect(f);
	json_object *o, *arr, *x, *q;

	for (int i = 0; i < 5; i++)
		decide(a, 17, 53, 100, (uint32_t)i);
	decide(b, 6, 22, 60, 1);
	b->state = SESSION_GRACE;
	o = request(f, t, "{\"cmd\":\"agents\"}\n");
	assert_true(is_ok(o));
	arr = get(o, "agents");
	assert_int_equal(json_object_array_length(arr), 2);
	/* Sorted by name. */
	x = json_object_array_get_idx(arr, 0);
	assert_string_equal(json_object_get_string(get(x, "name")), "pod-a");
	assert_string_equal(json_object_get_string(get(x, "state")), "attached");
	assert_int_equal(get_int(x, "netns_inode"), 11);
	assert_int_equal(get_int(x, "agent_pid"), 4242);
	assert_string_equal(json_object_get_string(get(x, "policy")), "web");
	q = get(x, "queues");
	assert_int_equal(json_object_array_length(q), 1);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(q, 0)), 3);
	assert_int_equal(get_int(x, "packets"), 5);
	assert_int_equal(get_int(x, "bytes"), 500);
	assert_int_equal(get_int(get(x, "verdicts"), "accept"), 5);
	assert_true(json_object_is_type(get(x, "kernel"), json_type_array));
	x = json_object_array_get_idx(arr, 1);
	assert_string_equal(json_object_get_string(get(x, "name")), "pod-b");
	assert_string_equal(json_object_get_string(get(x, "state")), "grace");
	assert_int_equal(get_int(get(x, "verdicts"), "accept"), 1);
	json_object_put(o);
	tc_close(t);
}

static int64_t rule_hits(json_object *rules, const char *policy, const char *rule,
			 const char *what)
{
	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		json_object *r = json_object_array_get_idx(rules, i);

		if (strcmp(json_object_get_string(get(r, "policy")), policy) == 0 &&
		    strcmp(json_object_get_string(get(r, "rule")), rule) == 0)
			return get_int(r, what);
	}
	return -1;
}

static void test_rules(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct tc *t = tc_connect(f);
	json_object *o, *rules;

	for (int i = 0; i < 4; i++)
		decide(a, 17, 53, 100, (uint32_t)i);
	decide(a, 6, 22, 60, 9);
	decide(a, 6, 80, 70, 10);
	decide(a, 6, 81, 70, 11);
	o = request(f, t, "{\"cmd\":\"rules\"}\n");
	assert_true(is_ok(o));
	rules = get(o, "rules");
	/* web: dns, ssh, (default); open: (default). */
	assert_int_equal(json_object_array_length(rules), 4);
	assert_int_equal(rule_hits(rules, "web", "dns", "packets"), 4);
	assert_int_equal(rule_hits(rules, "web", "dns", "bytes"), 400);
	assert_int_equal(rule_hits(rules, "web", "ssh", "packets"), 1);
	assert_int_equal(rule_hits(rules, "web", "(default)", "packets"), 2);
	assert_int_equal(rule_hits(rules, "web", "(default)", "bytes"), 140);
	assert_int_equal(rule_hits(rules, "open", "(default)", "packets"), 0);
	json_object_put(o);
	tc_close(t);
}

static void test_metrics(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct tc *t = tc_connect(f);
	json_object *o;
	const char *text;

	decide(a, 17, 53, 100, 1);
	o = request(f, t, "{\"cmd\":\"metrics\"}\n");
	assert_true(is_ok(o));
	text = json_object_get_string(get(o, "text"));
	assert_true(strncmp(text, "# HELP ", 7) == 0);
	assert_non_null(strstr(text, "\nnfqb_packets_total{ns=\"pod-a\"} 1\n"));
	assert_non_null(strstr(text, "\nnfqb_rule_hits_total{policy=\"web\",rule=\"dns\"} 1\n"));
	json_object_put(o);
	tc_close(t);
}

static void test_reload(void **state)
{
	struct fx *f = *state;
	struct tc *t = tc_connect(f);
	json_object *o, *errs;
	struct cfg *before;

	write_file(f->cfgpath, config_b);
	o = request(f, t, "{\"cmd\":\"reload\"}\n");
	assert_true(is_ok(o));
	json_object_put(o);
	o = request(f, t, "{\"cmd\":\"rules\"}\n");
	assert_int_equal(rule_hits(get(o, "rules"), "extra", "(default)", "packets"), 0);
	json_object_put(o);

	/* An invalid file: every error listed with its path, the old config kept. */
	before = f->m->cfg;
	write_file(f->cfgpath, config_bad);
	o = request(f, t, "{\"cmd\":\"reload\"}\n");
	assert_error(o, "rejected");
	errs = get(o, "errors");
	assert_int_equal(json_object_array_length(errs), 2);
	assert_non_null(strstr(json_object_to_json_string(errs), "broker.grace_ms"));
	assert_non_null(strstr(json_object_to_json_string(errs), "namespaces[0].policy"));
	json_object_put(o);
	assert_ptr_equal(f->m->cfg, before);
	o = request(f, t, "{\"cmd\":\"rules\"}\n");
	assert_int_equal(rule_hits(get(o, "rules"), "extra", "(default)", "packets"), 0);
	json_object_put(o);

	/* The file vanished: an error naming it. */
	unlink(f->cfgpath);
	o = request(f, t, "{\"cmd\":\"reload\"}\n");
	assert_false(is_ok(o));
	assert_non_null(strstr(json_object_to_json_string(get(o, "errors")), "broker.json"));
	json_object_put(o);
	assert_ok_status(f, t);
	tc_close(t);
}

static void test_reload_without_path(void **state)
{
	struct fx *f = *state;
	struct tc *t = tc_connect(f);
	json_object *o = request(f, t, "{\"cmd\":\"reload\"}\n");

	assert_error(o, "no config file");
	json_object_put(o);
	tc_close(t);
}

/* ------------------------------------------------------------ bad requests */

static void test_bad_requests(void **state)
{
	static const struct { const char *req, *err; } cases[] = {
		{ "not json\n", "malformed request" },
		{ "{\"cmd\":\"status\"\n", "malformed request" },
		{ "{\"cmd\":\"status\"} {\"cmd\":\"status\"}\n", "text after the JSON object" },
		{ "[1,2]\n", "a request is a JSON object" },
		{ "\"status\"\n", "a request is a JSON object" },
		{ "{}\n", "missing \"cmd\"" },
		{ "{\"cmd\":7}\n", "missing \"cmd\"" },
		{ "{\"cmd\":\"frobnicate\"}\n", "unknown command \"frobnicate\"" },
		{ "{\"cmd\":\"a\\\"b\"}\n", "unknown command \"a\\\"b\"" },
		{ "{\"cmd\":\"status\",\"ns\":\"x\"}\n", "unknown key \"ns\" in a \"status\" request" },
		{ "{\"cmd\":\"watch\",\"ns\":5}\n", "bad \"ns\" filter: not a string" },
		{ "{\"cmd\":\"watch\",\"ns\":\"\"}\n", "bad \"ns\" filter: empty" },
		{ "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}\n", "malformed request" },
		{ "{\"cmd\":\"status\"}\xff\n", "malformed request" },
	};
	struct fx *f = *state;
	struct tc *t = tc_connect(f);
	char nul[] = "{\"cmd\":\0\"status\"}\n";
	json_object *o;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = request(f, t, cases[i].req);
		assert_error(o, cases[i].err);
		json_object_put(o);
		/* The connection survives every one of them. */
		assert_ok_status(f, t);
	}
	tc_send(t, nul, sizeof(nul) - 1);
	o = tc_reply(f, t);
	assert_error(o, "NUL byte");
	json_object_put(o);
	/* Blank lines are ignored; \r\n works. */
	tc_send(t, "\n  \n\r\n{\"cmd\":\"status\"}\r\n", 24);
	o = tc_reply(f, t);
	assert_true(is_ok(o));
	json_object_put(o);
	assert_int_equal(control_watchers(f->c), 0);
	assert_int_equal(f->m->nobs, 0);
	tc_close(t);
}

static void test_too_long(void **state)
{
	struct fx *f = *state;
	struct tc *t = tc_connect(f), *other = tc_connect(f);
	static char big[CONTROL_REQ_MAX + 100];
	json_object *o;

	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"cmd\":\"status\"", 15);
	tc_send(t, big, sizeof(big));
	o = tc_reply(f, t);
	assert_error(o, "request too long");
	json_object_put(o);
	/* Then the broker hangs up, cleanly; the other client does not notice. */
	assert_null(tc_line(f, t));
	assert_true(t->eof);
	assert_ok_status(f, other);
	assert_int_equal(control_clients(f->c), 1);
	tc_close(t);
	tc_close(other);

	/* Exactly at the limit (newline included) is still fine. */
	t = tc_connect(f);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	big[CONTROL_REQ_MAX - 1] = '\n';
	tc_send(t, big, CONTROL_REQ_MAX);
	o = tc_reply(f, t);
	assert_true(is_ok(o));
	json_object_put(o);
	tc_close(t);
}

static void test_pipelined_and_eof(void **state)
{
	struct fx *f = *state;
	struct tc *t = tc_connect(f);
	static const char reqs[] = "{\"cmd\":\"status\"}\n{\"cmd\":\"nope\"}\n{\"cmd\":\"rules\"}\n"
				   "{\"cmd\":\"agents\"}";
	json_object *o;

	tc_send(t, reqs, sizeof(reqs) - 1);
	/* The last request has no newline: the end of the stream ends it. */
	shutdown(t->fd, SHUT_WR);
	o = tc_reply(f, t);
	assert_non_null(json_object_object_get_ex(o, "uptime_s", NULL) ? o : NULL);
	json_object_put(o);
	o = tc_reply(f, t);
	assert_error(o, "unknown command");
	json_object_put(o);
	o = tc_reply(f, t);
	assert_true(json_object_object_get_ex(o, "rules", NULL));
	json_object_put(o);
	o = tc_reply(f, t);
	assert_true(json_object_object_get_ex(o, "agents", NULL));
	json_object_put(o);
	assert_null(tc_line(f, t));
	tc_close(t);
	pump(f, 10);
	assert_int_equal(control_clients(f->c), 0);
}

static void test_reply_flood(void **state)
{
	struct fx *f = *state;
	struct tc *t = tc_connect(f);
	static char reqs[3000 * 17 + 1];
	size_t n = 0;
	int got = 0;

	for (int i = 0; i < 3000; i++)
		n += (size_t)snprintf(reqs + n, sizeof(reqs) - n, "{\"cmd\":\"rules\"}\n");
	/* The client sends everything before reading anything. */
	for (size_t off = 0; off < n;) {
		ssize_t w = send(t->fd, reqs + off, n - off, MSG_NOSIGNAL);

		if (w > 0)
			off += (size_t)w;
		else
			assert_true(errno == EAGAIN);
		pump(f, 2);
	}
	/* Nothing is lost or reordered, however far behind the client is. */
	for (char *line; got < 3000 && (line = tc_line(f, t)); got++) {
		assert_non_null(strstr(line, "\"rules\":["));
		free(line);
	}
	assert_int_equal(got, 3000);
	assert_ok_status(f, t);
	tc_close(t);
}

/* Replace who may do what (what a reload of those keys does). */
static void set_access(struct fx *f, const uid_t *allow, size_t na, const uid_t *admin,
		       size_t nd)
{
	struct cfg_control *ctl = &f->m->cfg->ctl;

	free(ctl->allow_uids);
	free(ctl->admin_uids);
	ctl->allow_uids = calloc(na + 1, sizeof(uid_t));
	ctl->admin_uids = calloc(nd + 1, sizeof(uid_t));
	assert_non_null(ctl->allow_uids);
	assert_non_null(ctl->admin_uids);
	if (na)
		memcpy(ctl->allow_uids, allow, na * sizeof(uid_t));
	if (nd)
		memcpy(ctl->admin_uids, admin, nd * sizeof(uid_t));
	ctl->nallow_uids = na;
	ctl->nadmin_uids = nd;
}

/*
 * A client connected as @uid: a child switches to it, connects (the
 * broker sees that uid in SO_PEERCRED), sends @first (or nothing) and
 * hands the socket over.
 */
static struct tc *tc_connect_as_sending(struct fx *f, uid_t uid, const char *first)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, b = 0;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct tc *t = calloc(1, sizeof(*t));
	int sv[2], status;
	pid_t pid;

	assert_non_null(t);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;

		if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(2);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(3);
		if (first && send(fd, first, strlen(first), MSG_NOSIGNAL) != (ssize_t)strlen(first))
			_exit(5);
		_exit(tscm_send(sv[1], &b, 1, &fd, 1) == 1 ? 0 : 4);
	}
	close(sv[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(recvmsg(sv[0], &mh, 0), 1);
	close(sv[0]);
	memcpy(&t->fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	assert_int_equal(fcntl(t->fd, F_SETFL, O_NONBLOCK), 0);
	pump(f, 5);
	return t;
}

static struct tc *tc_connect_as(struct fx *f, uid_t uid)
{
	return tc_connect_as_sending(f, uid, NULL);
}

/* Others than root can reach the socket (what a wider control_mode does). */
static void open_socket(struct fx *f)
{
	char run[96];

	snprintf(run, sizeof(run), "%s/run", f->dir);
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(chmod(run, 0755), 0);
	assert_int_equal(chmod(f->sock, 0666), 0);
}

/* The reply to a refused connection, then its end. */
static void assert_refused(struct fx *f, struct tc *t, const char *error)
{
	json_object *o = tc_reply(f, t);

	assert_false(is_ok(o));
	assert_string_equal(json_object_get_string(get(o, "error")), error);
	json_object_put(o);
	assert_null(tc_line(f, t));
	assert_true(t->eof);
}

static void test_too_many_clients(void **state)
{
	enum { USERS = 4, EACH = (CONTROL_MAX_CLIENTS - CONTROL_ADMIN_RESERVE) / USERS };
	static const uid_t users[USERS + 1] = { 1000, 1001, 1002, 1003, 1004 };
	static const uid_t root[] = { 0 };
	struct fx *f = *state;
	struct tc *t[CONTROL_MAX_CLIENTS], *extra;
	size_t n = 0;

	open_socket(f);
	set_access(f, users, USERS + 1, root, 1);
	/* One uid has CONTROL_MAX_PER_UID at most, root included. */
	for (int i = 0; i < CONTROL_MAX_PER_UID; i++)
		t[n++] = tc_connect(f);
	extra = tc_connect(f);
	assert_refused(f, extra, "too many control clients of this uid (at most 64, 16 per uid)");
	tc_close(extra);
	while (n)
		tc_close(t[--n]);
	pump(f, 20);
	assert_int_equal(control_clients(f->c), 0);

	/* Read-only users fill every slot but the admin reserve ... */
	for (int u = 0; u < USERS; u++)
		for (int i = 0; i < EACH; i++)
			t[n++] = tc_connect_as(f, users[u]);
	pump(f, 20);
	assert_int_equal(control_clients(f->c), CONTROL_MAX_CLIENTS - CONTROL_ADMIN_RESERVE);
	extra = tc_connect_as(f, users[USERS]);
	assert_refused(f, extra, "too many control clients (the rest are kept for admin uids) "
		       "(at most 64, 16 per uid)");
	tc_close(extra);
	/* ... which root's nfq-ctl status still gets, up to the total. */
	for (int i = 0; i < CONTROL_ADMIN_RESERVE; i++) {
		t[n] = tc_connect(f);
		assert_ok_status(f, t[n++]);
	}
	assert_int_equal(control_clients(f->c), CONTROL_MAX_CLIENTS);
	extra = tc_connect(f);
	assert_refused(f, extra, "too many control clients (at most 64, 16 per uid)");
	tc_close(extra);
	assert_true(f->m->refused[REFUSAL_CONTROL_LIMIT] >= 1);
	/* The others are served as before. */
	assert_ok_status(f, t[0]);
	assert_ok_status(f, t[CONTROL_MAX_CLIENTS - 1]);
	while (n)
		tc_close(t[--n]);
	pump(f, 20);
	assert_int_equal(control_clients(f->c), 0);
}

/* ------------------------------------------------------------ authorization */

static void test_uid_not_allowed(void **state)
{
	static const uid_t root[] = { 0 };
	struct fx *f = *state;
	struct tc *t;
	json_object *o;

	open_socket(f);
	/* the default: root only; nobody is refused at once, before any request */
	t = tc_connect_as(f, 65534);
	assert_refused(f, t, "uid 65534 is not allowed on the control socket");
	tc_close(t);
	/* also when it sent its request already */
	t = tc_connect_as_sending(f, 65534, "{\"cmd\":\"status\"}\n");
	assert_refused(f, t, "uid 65534 is not allowed on the control socket");
	tc_close(t);
	pump(f, 10);
	assert_int_equal(control_clients(f->c), 0);
	/* root (still allowed) sees the refusals counted */
	t = tc_connect(f);
	o = request(f, t, "{\"cmd\":\"status\"}\n");
	assert_int_equal(get_int(o, "control_refused"), 2);
	assert_string_equal(json_object_get_string(get(o, "access")), "admin");
	/* and in the metrics' refusals, by reason; the agents' count untouched */
	assert_int_equal(f->m->refused[REFUSAL_CONTROL_UID], 2);
	assert_int_equal(f->m->refused[REFUSAL_CONTROL_LIMIT], 0);
	assert_int_equal(f->m->refusals, 0);
	json_object_put(o);
	/* a reload that takes root's grant away: the next request is refused, the end */
	set_access(f, NULL, 0, NULL, 0);
	o = request(f, t, "{\"cmd\":\"status\"}\n");
	assert_false(is_ok(o));
	assert_string_equal(json_object_get_string(get(o, "error")),
			    "uid 0 is not allowed on the control socket");
	json_object_put(o);
	assert_closed(f, t);
	tc_close(t);
	t = tc_connect(f);
	assert_refused(f, t, "uid 0 is not allowed on the control socket");
	tc_close(t);
	set_access(f, root, 1, root, 1);
}

static void test_read_only(void **state)
{
	static const uid_t ro[] = { 65534 }, root[] = { 0 };
	static const char *const allowed[] = {
		"{\"cmd\":\"status\"}\n", "{\"cmd\":\"agents\"}\n",
		"{\"cmd\":\"rules\"}\n", "{\"cmd\":\"metrics\"}\n",
	};
	struct fx *f = *state;
	struct tc *t;
	json_object *o;

	open_socket(f);
	set_access(f, ro, 1, root, 1);
	fake_session(f->m, "pod-a", "web", 11);
	t = tc_connect_as(f, 65534);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		o = request(f, t, allowed[i]);
		assert_true(is_ok(o));
		json_object_put(o);
	}
	o = request(f, t, "{\"cmd\":\"status\"}\n");
	assert_string_equal(json_object_get_string(get(o, "access")), "read-only");
	json_object_put(o);
	o = request(f, t, "{\"cmd\":\"reload\"}\n");
	assert_false(is_ok(o));
	assert_string_equal(json_object_get_string(get(o, "error")),
			    "reload needs an admin uid (broker.control_admin_uids)");
	json_object_put(o);
	o = request(f, t, "{\"cmd\":\"watch\",\"ns\":\"pod-a\"}\n");
	assert_false(is_ok(o));
	assert_string_equal(json_object_get_string(get(o, "error")),
			    "watch needs an admin uid (broker.control_admin_uids)");
	json_object_put(o);
	assert_int_equal(control_watchers(f->c), 0);
	assert_int_equal(f->m->nobs, 0);
	/* bad requests are still answered as such, and the connection goes on */
	o = request(f, t, "{\"cmd\":\"nope\"}\n");
	assert_error(o, "unknown command");
	json_object_put(o);
	assert_ok_status(f, t);
	tc_close(t);
}

/* A watcher whose uid lost admin in a reload stops at the next tick. */
static void test_watch_revoked(void **state)
{
	static const uid_t root[] = { 0 };
	struct fx *f = *state;
	struct tc *t = tc_connect(f);
	json_object *o = request(f, t, "{\"cmd\":\"watch\"}\n");

	assert_true(is_ok(o));
	json_object_put(o);
	assert_int_equal(control_watchers(f->c), 1);
	set_access(f, root, 1, NULL, 0);
	assert_closed(f, t);
	assert_int_equal(control_watchers(f->c), 0);
	assert_int_equal(f->m->nobs, 0);
	tc_close(t);
}

/* ------------------------------------------------------------ idle clients */

static void test_idle_dropped(void **state)
{
	struct fx *f = *state;
	struct tc *idle, *busy, *watcher, *partial, *blank;
	json_object *o;

	f->m->cfg->ctl.idle_ms = 150;
	idle = tc_connect(f);
	blank = tc_connect(f);
	partial = tc_connect(f);
	busy = tc_connect(f);
	watcher = tc_connect(f);
	tc_send(partial, "{\"cmd\":", 7);          /* never completed */
	o = request(f, watcher, "{\"cmd\":\"watch\"}\n");
	assert_true(is_ok(o));
	json_object_put(o);
	/* a request every 50 ms keeps a client; a watcher needs none */
	for (int i = 0; i < 8; i++) {
		assert_ok_status(f, busy);
		/* a keep-alive is no request (until it is closed) */
		(void)send(blank->fd, "\r\n", 2, MSG_NOSIGNAL);
		pump(f, 50);
	}
	assert_closed(f, idle);
	assert_closed(f, partial);
	assert_closed(f, blank);
	assert_false(busy->eof);
	assert_int_equal(control_clients(f->c), 2);
	assert_int_equal(control_watchers(f->c), 1);
	assert_ok_status(f, busy);
	tc_close(idle);
	tc_close(partial);
	tc_close(blank);
	tc_close(busy);
	tc_close(watcher);
}

/* ------------------------------------------------------------ watch */

static void test_watch_filter(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct session *b = fake_session(f->m, "pod-b", "open", 22);
	struct tc *all = tc_connect(f), *onlyb = tc_connect(f);
	json_object *o;
	char *line;

	assert_int_equal(f->m->nobs, 0);
	o = request(f, all, "{\"cmd\":\"watch\"}\n");
	assert_true(is_ok(o));
	assert_true(json_object_is_type(get(o, "watch"), json_type_null));
	json_object_put(o);
	assert_int_equal(f->m->nobs, 1);
	o = request(f, onlyb, "{\"cmd\":\"watch\",\"ns\":\"pod-b\"}\n");
	assert_string_equal(json_object_get_string(get(o, "watch")), "pod-b");
	json_object_put(o);
	assert_int_equal(control_watchers(f->c), 2);

	decide(a, 17, 53, 80, 100);
	decide(b, 6, 443, 90, 200);
	o = tc_reply(f, all);
	assert_string_equal(json_object_get_string(get(o, "ns")), "pod-a");
	assert_int_equal(get_int(o, "id"), 100);
	assert_int_equal(get_int(o, "queue"), 3);
	assert_int_equal(get_int(o, "dport"), 53);
	assert_string_equal(json_object_get_string(get(o, "rule")), "dns");
	assert_string_equal(json_object_get_string(get(o, "verdict")), "accept");
	assert_string_equal(json_object_get_string(get(o, "src")), "10.9.0.1");
	json_object_put(o);
	o = tc_reply(f, all);
	assert_string_equal(json_object_get_string(get(o, "ns")), "pod-b");
	json_object_put(o);
	o = tc_reply(f, onlyb);
	assert_string_equal(json_object_get_string(get(o, "ns")), "pod-b");
	assert_int_equal(get_int(o, "id"), 200);
	assert_string_equal(json_object_get_string(get(o, "rule")), "(default)");
	json_object_put(o);
	pump(f, 20);
	tc_recv(onlyb);
	assert_int_equal(onlyb->len, 0);     /* nothing of pod-a */

	/* A watcher can still ask things; the reply joins the stream. */
	o = request(f, all, "{\"cmd\":\"status\"}\n");
	assert_int_equal(get_int(o, "watchers"), 2);
	json_object_put(o);
	/* Watching again changes the filter, not the count. */
	o = request(f, all, "{\"cmd\":\"watch\",\"ns\":\"pod-a\"}\n");
	json_object_put(o);
	assert_int_equal(control_watchers(f->c), 2);
	decide(b, 6, 443, 90, 201);
	pump(f, 20);
	tc_recv(all);
	assert_int_equal(all->len, 0);

	tc_close(all);
	pump(f, 20);
	assert_int_equal(control_watchers(f->c), 1);
	assert_int_equal(f->m->nobs, 1);
	/* Half-closed after "watch": still a watcher until it hangs up. */
	shutdown(onlyb->fd, SHUT_WR);
	line = tc_line(f, onlyb);
	assert_non_null(strstr(line, "\"id\":201"));
	free(line);
	decide(b, 6, 443, 90, 202);
	line = tc_line(f, onlyb);
	assert_non_null(strstr(line, "\"id\":202"));
	free(line);
	tc_close(onlyb);
	pump(f, 20);
	assert_int_equal(control_watchers(f->c), 0);
	/* Nobody watches: the verdict step pays nothing. */
	assert_int_equal(f->m->nobs, 0);
}

static void test_watch_lost_events(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct tc *t = tc_connect(f);
	uint64_t events = 0, lost = 0, n = 20000;
	int small = 4096;
	json_object *o;
	char *line;

	setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	o = request(f, t, "{\"cmd\":\"watch\",\"ns\":\"pod-a\"}\n");
	json_object_put(o);
	/* The watcher reads nothing while the packets flow. */
	for (uint64_t i = 0; i < n; i++) {
		decide(a, 17, 53, 64, (uint32_t)i);
		if (i % 500 == 0)
			pump(f, 1);
	}
	assert_int_equal(a->c.packets, n);
	/* Now it reads: what arrived plus what it was told it lost is all. */
	while ((line = tc_try_line(f, t, 200))) {
		o = json_tokener_parse(line);
		assert_non_null(o);
		if (json_object_object_get_ex(o, "lost", NULL)) {
			assert_true(get_int(o, "lost") > 0);
			lost += (uint64_t)get_int(o, "lost");
		} else {
			/* In order, the lost ones accounted for before each. */
			assert_int_equal(get_int(o, "id"), (int64_t)(events + lost));
			events++;
		}
		json_object_put(o);
		free(line);
	}
	assert_true(events > 0);
	assert_true(events < n);
	/* Losses after the last delivered event are told before the next one. */
	if (events + lost < n) {
		decide(a, 17, 53, 64, (uint32_t)n);
		line = tc_line(f, t);
		o = json_tokener_parse(line);
		lost += (uint64_t)get_int(o, "lost");
		json_object_put(o);
		free(line);
		line = tc_line(f, t);
		assert_non_null(strstr(line, "\"id\":20000,"));
		free(line);
	}
	assert_int_equal(events + lost, n);
	assert_true(lost > 0);
	/* After catching up, events flow again, none lost. */
	decide(a, 17, 53, 64, 999999);
	line = tc_line(f, t);
	assert_non_null(strstr(line, "\"id\":999999"));
	free(line);
	assert_int_equal(control_clients(f->c), 1);
	tc_close(t);
}

static void test_stuck_watcher_dropped(void **state)
{
	struct fx *f = *state;
	struct session *a = fake_session(f->m, "pod-a", "web", 11);
	struct tc *t = tc_connect(f), *other = tc_connect(f);
	uint64_t start;
	json_object *o;

	control_set_stall_ms(f->c, 200);
	o = request(f, t, "{\"cmd\":\"watch\"}\n");
	json_object_put(o);
	/* Never reads again. The verdict step is not slowed down... */
	start = loop_now_ms();
	for (uint32_t i = 0; i < 20000; i++) {
		decide(a, 6, 80, 1400, i);
		if (i % 1000 == 0)
			pump(f, 1);
	}
	assert_true(loop_now_ms() - start < 3000);
	/* ...and after the stall time the client is dropped, the hook removed. */
	for (int i = 0; i < 100 && control_clients(f->c) > 1; i++) {
		decide(a, 6, 80, 1400, 1);
		pump(f, 10);
	}
	assert_int_equal(control_clients(f->c), 1);
	assert_int_equal(control_watchers(f->c), 0);
	assert_int_equal(f->m->nobs, 0);
	assert_closed(f, t);
	assert_ok_status(f, other);
	tc_close(t);
	tc_close(other);
}

/* Every command of the shared table has a handler here, and no handler is extra. */
static void test_every_command_served(void **state)
{
	const char *names[] = { "status", "agents", "rules", "reload", "watch", "metrics" };
	size_t served = 0;

	for (size_t i = 0; i < ctlcmd_count(); i++) {
		const struct ctlcmd *c = ctlcmd_at(i);

		if (!commands_handler(c->name))
			fail_msg("no handler for \"%s\" in broker/commands.c", c->name);
		assert_ptr_equal(ctlcmd_find(c->name), c);
		served++;
	}
	assert_int_equal(served, ctlcmd_count());
	assert_null(ctlcmd_at(ctlcmd_count()));
	assert_null(commands_handler("no-such-command"));
	assert_null(ctlcmd_find("no-such-command"));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(ctlcmd_find(names[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_command_served),
		cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_without_path, setup_nopath, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_and_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uid_not_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_revoked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_lost_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_watcher_dropped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
