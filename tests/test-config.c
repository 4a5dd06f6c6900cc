/* SPDX-License-Identifier: MIT */
/* Unit tests for broker/config.c: defaults, every key's validation, paths in messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define POLICIES "\"policies\": {\"default\": {\"default\": \"accept\", \"rules\": []}," \
	"\"web\": {\"default\": \"drop\", \"rules\": []}}"
#define NS_OK "\"namespaces\": [{\"name\": \"pod-a\", \"queues\": [1], \"policy\": \"web\"}]"

/* Parse @json expecting failure; the error lines joined by '\n' must equal @want. */
static void expect_errors(const char *json, const char *want)
{
	struct errs e = { 0 };
	struct cfg *c = cfg_parse_string(json, &e);
	char *got = errs_join(&e, "\n");

	if (c || strcmp(got, want) != 0)
		print_error("json: %s\nwant: %s\ngot:  %s\n", json, want, got);
	assert_null(c);
	assert_string_equal(got, want);
	free(got);
	errs_reset(&e);
}

/* Parse @json expecting success. */
static struct cfg *expect_ok(const char *json)
{
	struct errs e = { 0 };
	struct cfg *c = cfg_parse_string(json, &e);

	if (!c) {
		char *got = errs_join(&e, "\n");

		print_error("json: %s\nunexpected errors: %s\n", json, got);
		free(got);
	}
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	errs_reset(&e);
	return c;
}

/* A full document with @broker, @qd inserted as the broker / queue_defaults objects. */
static char *doc(const char *broker, const char *qd, const char *ns)
{
	char *s;

	assert_true(asprintf(&s, "{%s%s%s%s%s%s %s, " POLICIES "}",
			     broker ? "\"broker\": " : "", broker ? broker : "",
			     broker ? ", " : "",
			     qd ? "\"queue_defaults\": " : "", qd ? qd : "", qd ? ", " : "",
			     ns ? ns : NS_OK) > 0);
	return s;
}

static void broker_err(const char *broker, const char *want)
{
	char *s = doc(broker, NULL, NULL);

	expect_errors(s, want);
	free(s);
}

static void qd_err(const char *qd, const char *want)
{
	char *s = doc(NULL, qd, NULL);

	expect_errors(s, want);
	free(s);
}

static void ns_err(const char *ns, const char *want)
{
	char *s = doc(NULL, NULL, ns);

	expect_errors(s, want);
	free(s);
}

static void test_defaults(void **state)
{
	struct cfg *c = expect_ok("{" NS_OK ", " POLICIES "}");

	assert_string_equal(c->listen, "/run/nfq-broker/agent.sock");
	assert_string_equal(c->control, "/run/nfq-broker/control.sock");
	assert_int_equal(c->listen_mode, 0600);
	assert_int_equal(c->control_mode, 0600);
	assert_int_equal(c->nallow_uids, 1);
	assert_int_equal(c->allow_uids[0], 0);
	assert_int_equal(c->grace_ms, 5000);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->queue_defaults.max_len, 1024);
	assert_int_equal(c->queue_defaults.mode, NFQB_COPY_PACKET);
	assert_int_equal(c->queue_defaults.range, 65535);
	assert_int_equal(c->queue_defaults.sock_len, 4194304);
	assert_int_equal(c->queue_defaults.flags, NFQB_F_GSO);
	assert_int_equal(c->nns, 1);
	assert_string_equal(c->ns[0].name, "pod-a");
	assert_false(c->ns[0].glob);
	assert_null(c->ns[0].netns);
	assert_int_equal(c->ns[0].nqueues, 1);
	assert_int_equal(c->ns[0].queues[0], 1);
	assert_non_null(c->ns[0].policy);
	assert_string_equal(policy_name(c->ns[0].policy), "web");
	assert_memory_equal(&c->ns[0].qopts, &c->queue_defaults, sizeof(c->queue_defaults));
	assert_true(cfg_uid_allowed(c, 0));
	assert_false(cfg_uid_allowed(c, 1000));
	cfg_free(c);
}

static void test_full(void **state)
{
	struct cfg *c = expect_ok(
		"{\"broker\": {\"listen\": \"/tmp/x/a.sock\", \"control\": \"/tmp/x/c.sock\","
		" \"listen_mode\": \"0660\", \"control_mode\": \"600\", \"allow_uids\": [0, 1000],"
		" \"grace_ms\": 0, \"workers\": 3},"
		" \"queue_defaults\": {\"max_len\": 10, \"copy\": \"meta\", \"range\": 100,"
		"  \"sock_len\": 0, \"fail_open\": true, \"gso\": false, \"uid_gid\": true,"
		"  \"secctx\": false, \"conntrack\": true},"
		" \"namespaces\": ["
		"  {\"name\": \"pod-a\", \"netns\": \"/run/netns/pod-a\", \"queues\": [3, 0, 65535],"
		"   \"policy\": \"web\", \"queue\": {\"max_len\": 7, \"copy\": \"packet\", \"fail_open\": false}},"
		"  {\"name\": \"kube-system/*\", \"queues\": [1], \"policy\": \"default\"},"
		"  {\"name\": \"*\", \"queues\": [2], \"policy\": \"default\", \"queue\": {}}],"
		POLICIES "}");

	assert_string_equal(c->listen, "/tmp/x/a.sock");
	assert_string_equal(c->control, "/tmp/x/c.sock");
	assert_int_equal(c->listen_mode, 0660);
	assert_int_equal(c->control_mode, 0600);
	assert_int_equal(c->nallow_uids, 2);
	assert_true(cfg_uid_allowed(c, 1000));
	assert_int_equal(c->grace_ms, 0);
	assert_int_equal(c->workers, 3);
	assert_int_equal(c->queue_defaults.max_len, 10);
	assert_int_equal(c->queue_defaults.mode, NFQB_COPY_META);
	assert_int_equal(c->queue_defaults.range, 100);
	assert_int_equal(c->queue_defaults.sock_len, 0);
	assert_int_equal(c->queue_defaults.flags,
			 NFQB_F_FAIL_OPEN | NFQB_F_UID_GID | NFQB_F_CONNTRACK);
	/* entry overrides sit on top of queue_defaults */
	assert_int_equal(c->ns[0].qopts.max_len, 7);
	assert_int_equal(c->ns[0].qopts.mode, NFQB_COPY_PACKET);
	assert_int_equal(c->ns[0].qopts.range, 100);
	assert_int_equal(c->ns[0].qopts.flags, NFQB_F_UID_GID | NFQB_F_CONNTRACK);
	assert_string_equal(c->ns[0].netns, "/run/netns/pod-a");
	assert_int_equal(c->ns[0].nqueues, 3);
	assert_int_equal(c->ns[0].queues[2], 65535);
	assert_memory_equal(&c->ns[2].qopts, &c->queue_defaults, sizeof(c->queue_defaults));
	assert_true(c->ns[1].glob);
	assert_true(c->ns[2].glob);

	/* matching: in order, exact or glob */
	assert_ptr_equal(cfg_match(c, "pod-a"), &c->ns[0]);
	assert_ptr_equal(cfg_match(c, "kube-system/dns"), &c->ns[1]);
	assert_ptr_equal(cfg_match(c, "pod-b"), &c->ns[2]);
	assert_string_equal(policy_name(cfg_match(c, "x")->policy), "default");
	cfg_free(c);
}

static void test_no_catch_all(void **state)
{
	struct cfg *c = expect_ok("{\"namespaces\": [{\"name\": \"pod-?\", \"queues\": [1],"
				  " \"policy\": \"web\"}], " POLICIES "}");

	assert_non_null(cfg_match(c, "pod-b"));
	assert_null(cfg_match(c, "pod-bb"));
	assert_null(cfg_match(c, "Pod-b"));
	cfg_free(c);

	c = expect_ok("{\"namespaces\": [], " POLICIES "}");
	assert_null(cfg_match(c, "pod-a"));
	cfg_free(c);
}

static void test_root(void **state)
{
	expect_errors("[]", "expected an object at the top level, got array []");
	expect_errors("{\"namespaces\": [], " POLICIES ", \"bogus\": 1, \"Broker\": {}}",
		      "bogus: unknown key\nBroker: unknown key");
	expect_errors("{" POLICIES "}", "namespaces: required key missing");
	expect_errors("{" NS_OK "}", "policies: required key missing");
	expect_errors("{}", "namespaces: required key missing\npolicies: required key missing");
	expect_errors("{\"namespaces\": {}, " POLICIES "}",
		      "namespaces: expected an array, got object {}");
}

static void test_syntax(void **state)
{
	expect_errors("", "<string>:1:1: invalid JSON: unexpected end of file");
	expect_errors("{\n  \"namespaces\": [\n", "<string>:3:1: invalid JSON: unexpected end of file");
	expect_errors("{\"a\": 1,}", "<string>:1:9: invalid JSON: unexpected character");
	expect_errors("{}\n{}", "<string>:2:1: invalid JSON: unexpected character");
	expect_errors("{\"namespaces\": [] x}", "<string>:1:19: invalid JSON: object value separator ',' expected");
}

static void test_broker_keys(void **state)
{
	broker_err("[]", "broker: expected an object, got array []");
	broker_err("{\"listn\": \"/a\"}", "broker.listn: unknown key");
	broker_err("{\"listen\": 1}", "broker.listen: expected a string, got number 1");
	broker_err("{\"listen\": \"\"}", "broker.listen: must not be empty");
	broker_err("{\"listen\": \"run/x.sock\"}",
		   "broker.listen: \"run/x.sock\" is not an absolute path");
	broker_err("{\"control\": \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		   "broker.control: path longer than 107 bytes");
	broker_err("{\"listen_mode\": 384}",
		   "broker.listen_mode: expected an octal string like \"0600\", got number 384");
	broker_err("{\"listen_mode\": \"0680\"}",
		   "broker.listen_mode: \"0680\" is not an octal mode like \"0600\"");
	broker_err("{\"control_mode\": \"06\"}",
		   "broker.control_mode: \"06\" is not an octal mode like \"0600\"");
	broker_err("{\"control_mode\": \"4755\"}",
		   "broker.control_mode: mode \"4755\" out of range 0000-0777");
	broker_err("{\"allow_uids\": 0}", "broker.allow_uids: expected an array, got number 0");
	broker_err("{\"allow_uids\": [0, -1, \"1000\", 4294967295]}",
		   "broker.allow_uids[1]: uid -1 out of range 0-4294967294\n"
		   "broker.allow_uids[2]: expected an integer, got string \"1000\"\n"
		   "broker.allow_uids[3]: uid 4294967295 out of range 0-4294967294");
	broker_err("{\"grace_ms\": 86400001}",
		   "broker.grace_ms: grace_ms 86400001 out of range 0-86400000");
	broker_err("{\"grace_ms\": 1.5}", "broker.grace_ms: grace_ms 1.5 is not an integer");
	broker_err("{\"grace_ms\": null}", "broker.grace_ms: expected an integer, got null");
	broker_err("{\"workers\": 65}", "broker.workers: workers 65 out of range 0-64");
	broker_err("{\"workers\": -1}", "broker.workers: workers -1 out of range 0-64");
	broker_err("{\"workers\": 1.5}", "broker.workers: workers 1.5 is not an integer");
	broker_err("{\"workers\": \"2\"}",
		   "broker.workers: expected an integer, got string \"2\"");
	broker_err("{\"workers\": true}", "broker.workers: expected an integer, got boolean true");
	broker_err("{\"grace_ms\": \"5000\"}",
		   "broker.grace_ms: expected an integer, got string \"5000\"");
}

/* broker.max_pending_per_uid / max_sessions_per_uid (admission limits). */
static void test_admission_keys(void **state)
{
	struct cfg *c = expect_ok("{" NS_OK ", " POLICIES "}");

	assert_int_equal(c->max_pending_per_uid, 8);
	assert_int_equal(c->max_sessions_per_uid, 0);
	cfg_free(c);
	c = expect_ok("{\"broker\": {\"max_pending_per_uid\": 256, \"max_sessions_per_uid\": 3},"
		      NS_OK ", " POLICIES "}");
	assert_int_equal(c->max_pending_per_uid, 256);
	assert_int_equal(c->max_sessions_per_uid, 3);
	cfg_free(c);
	broker_err("{\"max_pending_per_uid\": 0}",
		   "broker.max_pending_per_uid: max_pending_per_uid 0 out of range 1-256");
	broker_err("{\"max_pending_per_uid\": 257}",
		   "broker.max_pending_per_uid: max_pending_per_uid 257 out of range 1-256");
	broker_err("{\"max_pending_per_uid\": \"8\"}",
		   "broker.max_pending_per_uid: expected an integer, got string \"8\"");
	broker_err("{\"max_sessions_per_uid\": -1}",
		   "broker.max_sessions_per_uid: max_sessions_per_uid -1 out of range 0-1000000");
	broker_err("{\"max_sessions_per_uid\": 2.5}",
		   "broker.max_sessions_per_uid: max_sessions_per_uid 2.5 is not an integer");
	broker_err("{\"max_session_per_uid\": 1}",
		   "broker.max_session_per_uid: unknown key");
}

/* The netns pin check shared by attach and reload. */
static void test_pin_check(void **state)
{
	struct cfg_ns entry = { .index = 4, .netns = "/proc/self/ns/net" };
	char why[256];
	struct stat st;

	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	assert_int_equal(cfg_ns_pin_check(&entry, st.st_dev, st.st_ino, why, sizeof(why)), 0);
	assert_int_equal(cfg_ns_pin_check(&entry, st.st_dev, st.st_ino + 1, why, sizeof(why)),
			 -EXDEV);
	assert_non_null(strstr(why, "not in /proc/self/ns/net"));
	assert_non_null(strstr(why, "that namespaces[4] pins"));
	entry.netns = "/nonexistent/netns";
	assert_int_equal(cfg_ns_pin_check(&entry, st.st_dev, st.st_ino, why, sizeof(why)),
			 -ENOENT);
	assert_string_equal(why, "namespaces[4].netns /nonexistent/netns: "
			    "No such file or directory");
	entry.netns = NULL;
	assert_int_equal(cfg_ns_pin_check(&entry, 1, 2, why, sizeof(why)), 0);
	(void)state;
}

/* Duplicate names among many entries: found in entry order, each against
 * the first entry of that name (sorted, not compared pairwise). */
static void test_duplicate_names_many(void **state)
{
	enum { N = 5000 };
	size_t cap = 128 + N * 80, len = 0;
	char *t = malloc(cap);
	struct errs e = { 0 };
	struct cfg *c;
	char *j;

	assert_non_null(t);
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\"},"
	       " {\"name\": \"b\", \"queues\": [1], \"policy\": \"web\"},"
	       " {\"name\": \"a\", \"queues\": [2], \"policy\": \"web\"},"
	       " {\"name\": \"b\", \"queues\": [2], \"policy\": \"web\"},"
	       " {\"name\": \"a\", \"queues\": [3], \"policy\": \"web\"}]",
	       "namespaces[2].name: duplicate name \"a\" (namespaces[0] already has it)\n"
	       "namespaces[3].name: duplicate name \"b\" (namespaces[1] already has it)\n"
	       "namespaces[4].name: duplicate name \"a\" (namespaces[0] already has it)");
	len += (size_t)snprintf(t + len, cap - len, "{\"namespaces\": [");
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(t + len, cap - len, "%s{\"name\": \"pod-%d\", \"queues\": "
					"[%d], \"policy\": \"web\"}", i ? ", " : "",
					i == N - 1 ? 17 : i, i % 65536);
	snprintf(t + len, cap - len, "], " POLICIES "}");
	c = cfg_parse_string(t, &e);
	assert_null(c);
	j = errs_join(&e, "\n");
	assert_string_equal(j, "namespaces[4999].name: duplicate name \"pod-17\" "
			    "(namespaces[17] already has it)");
	free(j);
	errs_reset(&e);
	free(t);
	(void)state;
}

static void test_queue_keys(void **state)
{
	qd_err("1", "queue_defaults: expected an object, got number 1");
	qd_err("{\"maxlen\": 1}", "queue_defaults.maxlen: unknown key");
	qd_err("{\"max_len\": 0}", "queue_defaults.max_len: max_len 0 out of range 1-4294967295");
	qd_err("{\"max_len\": 4294967296}",
	       "queue_defaults.max_len: max_len 4294967296 out of range 1-4294967295");
	qd_err("{\"max_len\": 99999999999999999999999}",
	       "queue_defaults.max_len: max_len out of range 1-4294967295");
	qd_err("{\"copy\": \"full\"}",
	       "queue_defaults.copy: unknown copy mode \"full\" (expected none, meta or packet)");
	qd_err("{\"copy\": 2}", "queue_defaults.copy: expected a string, got number 2");
	qd_err("{\"range\": 0}", "queue_defaults.range: range 0 out of range 1-65535");
	qd_err("{\"range\": 65536}", "queue_defaults.range: range 65536 out of range 1-65535");
	qd_err("{\"sock_len\": 1073741825}",
	       "queue_defaults.sock_len: sock_len 1073741825 out of range 0-1073741824");
	qd_err("{\"fail_open\": 1}", "queue_defaults.fail_open: expected a boolean, got number 1");
	qd_err("{\"gso\": \"true\"}", "queue_defaults.gso: expected a boolean, got string \"true\"");
	qd_err("{\"uid_gid\": null}", "queue_defaults.uid_gid: expected a boolean, got null");
	qd_err("{\"secctx\": []}", "queue_defaults.secctx: expected a boolean, got array []");
	qd_err("{\"conntrack\": {}}", "queue_defaults.conntrack: expected a boolean, got object {}");
	/* several at once, all reported */
	qd_err("{\"max_len\": -5, \"range\": 70000, \"x\": 1}",
	       "queue_defaults.x: unknown key\n"
	       "queue_defaults.max_len: max_len -5 out of range 1-4294967295\n"
	       "queue_defaults.range: range 70000 out of range 1-65535");
}

static void test_ns_entries(void **state)
{
	ns_err("\"namespaces\": [1]", "namespaces[0]: expected an object, got number 1");
	ns_err("\"namespaces\": [{}]",
	       "namespaces[0].name: required key missing\n"
	       "namespaces[0].queues: required key missing\n"
	       "namespaces[0].policy: required key missing");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\", \"q\": 1}]",
	       "namespaces[0].q: unknown key");
	ns_err("\"namespaces\": [{\"name\": \"\", \"queues\": [1], \"policy\": \"web\"}]",
	       "namespaces[0].name: must not be empty");
	ns_err("\"namespaces\": [{\"name\": \"a b\", \"queues\": [1], \"policy\": \"web\"}]",
	       "namespaces[0].name: name \"a b\" has a character no agent name can have "
	       "(space, control, '\"', '\\' or '=')");
	ns_err("\"namespaces\": [{\"name\": [\"a\"], \"queues\": [1], \"policy\": \"web\"}]",
	       "namespaces[0].name: expected a string, got array [\"a\"]");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\"},"
	       " {\"name\": \"b\", \"queues\": [1], \"policy\": \"web\"},"
	       " {\"name\": \"a\", \"queues\": [2], \"policy\": \"web\"}]",
	       "namespaces[2].name: duplicate name \"a\" (namespaces[0] already has it)");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"netns\": \"run/netns/a\", \"queues\": [1],"
	       " \"policy\": \"web\"}]",
	       "namespaces[0].netns: \"run/netns/a\" is not an absolute path");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"netns\": 5, \"queues\": [1], \"policy\": \"web\"}]",
	       "namespaces[0].netns: expected a string, got number 5");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [], \"policy\": \"web\"}]",
	       "namespaces[0].queues: must not be empty");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": 1, \"policy\": \"web\"}]",
	       "namespaces[0].queues: expected an array, got number 1");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1, 70000, 1, \"2\", -1],"
	       " \"policy\": \"web\"}]",
	       "namespaces[0].queues[1]: queue 70000 out of range 0-65535\n"
	       "namespaces[0].queues[2]: duplicate queue 1\n"
	       "namespaces[0].queues[3]: expected an integer, got string \"2\"\n"
	       "namespaces[0].queues[4]: queue -1 out of range 0-65535");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\"},"
	       " {\"name\": \"b\", \"queues\": [1], \"policy\": \"x\"}]",
	       "namespaces[1].policy: unknown policy \"x\"");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": 3}]",
	       "namespaces[0].policy: expected a string, got number 3");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
	       " \"queue\": {\"copy\": \"all\", \"sock_len\": -1, \"gso\": 0, \"queues\": [1]}}]",
	       "namespaces[0].queue.queues: unknown key\n"
	       "namespaces[0].queue.copy: unknown copy mode \"all\" (expected none, meta or packet)\n"
	       "namespaces[0].queue.sock_len: sock_len -1 out of range 0-1073741824\n"
	       "namespaces[0].queue.gso: expected a boolean, got number 0");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
	       " \"queue\": []}]",
	       "namespaces[0].queue: expected an object, got array []");
}

/* Errors in policies come from the policy parser; with no "policies" object
 * to look names up in, unknown policy checks are skipped. */
static void test_policy_errors_pass_through(void **state)
{
	expect_errors("{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"nope\"}],"
		      " \"policies\": []}",
		      "policies: expected an object of named policies, got array []");
}

/*
 * A policy with an error does not hide a namespace naming a policy that
 * does not exist: --check reports both at once. A name that is a key of
 * "policies" (even of the broken policy) is not unknown.
 */
static void test_unknown_policy_beside_policy_error(void **state)
{
	expect_errors("{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"nope\"},"
		      " {\"name\": \"b\", \"queues\": [2], \"policy\": \"web\"},"
		      " {\"name\": \"c\", \"queues\": [3], \"policy\": \"ok\"}],"
		      " \"policies\": {\"web\": {\"default\": \"maybe\"},"
		      " \"ok\": {\"default\": \"drop\"}}}",
		      "policies.web.default: unknown verdict \"maybe\" (accept, drop, repeat, queue:N)\n"
		      "namespaces[0].policy: unknown policy \"nope\"");
}

/* The "default" cell of @key's row in docs/broker.md's queue options table,
 * without backquotes, into @out; false when there is no such row. */
static bool doc_default(const char *key, char *out, size_t len)
{
	char line[1024], head[64];
	bool found = false;
	FILE *f = fopen(TEST_SRCDIR "/../docs/broker.md", "r");

	assert_non_null(f);
	snprintf(head, sizeof(head), "| `%s` | ", key);
	while (!found && fgets(line, sizeof(line), f)) {
		char *cell, *end;

		if (strncmp(line, head, strlen(head)) != 0)
			continue;
		cell = strchr(line + strlen(head), '|');     /* after the type */
		if (!cell || !(cell = strchr(cell, '`')) || !(end = strchr(cell + 1, '`')))
			continue;
		snprintf(out, len, "%.*s", (int)(end - cell - 1), cell + 1);
		found = true;
	}
	fclose(f);
	return found;
}

/* docs/broker.md states the queue defaults the broker applies. */
static void test_docs_queue_defaults(void **state)
{
	static const struct {
		const char *key;
		uint32_t flag;
	} flags[] = {
		{ "fail_open", NFQB_F_FAIL_OPEN }, { "gso", NFQB_F_GSO },
		{ "uid_gid", NFQB_F_UID_GID }, { "secctx", NFQB_F_SECCTX },
		{ "conntrack", NFQB_F_CONNTRACK },
	};
	struct cfg *c = expect_ok("{" NS_OK ", " POLICIES "}");
	const struct nfqb_queue_opts *q = &c->queue_defaults;
	char v[64], want[64];

	assert_true(doc_default("max_len", v, sizeof(v)));
	assert_int_equal(strtoul(v, NULL, 10), q->max_len);
	assert_true(doc_default("range", v, sizeof(v)));
	assert_int_equal(strtoul(v, NULL, 10), q->range);
	assert_true(doc_default("sock_len", v, sizeof(v)));
	assert_int_equal(strtoul(v, NULL, 10), q->sock_len);
	assert_true(doc_default("copy", v, sizeof(v)));
	snprintf(want, sizeof(want), "\"%s\"", cfg_copy_name(q->mode));
	assert_string_equal(v, want);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		assert_true(doc_default(flags[i].key, v, sizeof(v)));
		assert_string_equal(v, q->flags & flags[i].flag ? "true" : "false");
	}
	cfg_free(c);
}

static void test_every_error_reported(void **state)
{
	expect_errors("{\"broker\": {\"grace_ms\": -1, \"listen\": \"x\"},"
		      " \"queue_defaults\": {\"copy\": \"x\"},"
		      " \"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"zz\"}], "
		      POLICIES "}",
		      "broker.listen: \"x\" is not an absolute path\n"
		      "broker.grace_ms: grace_ms -1 out of range 0-86400000\n"
		      "queue_defaults.copy: unknown copy mode \"x\" (expected none, meta or packet)\n"
		      "namespaces[0].policy: unknown policy \"zz\"");
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test-config-XXXXXX";
	struct errs e = { 0 };
	struct cfg *c;
	int fd = mkstemp(path);
	static const char text[] = "{\n\"namespaces\": [],\n\"policies\": {}\n}\n";
	char *got;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	c = cfg_load(path, &e);
	assert_non_null(c);
	cfg_free(c);

	/* a syntax error names the file, line and column */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "{\n\"namespaces\": [,]}", 20, 0), 20);
	assert_null(cfg_load(path, &e));
	got = errs_join(&e, "\n");
	assert_true(strncmp(got, path, strlen(path)) == 0);
	assert_string_equal(got + strlen(path), ":2:16: invalid JSON: unexpected character");
	free(got);
	errs_reset(&e);

	/* a NUL byte inside the file */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "{}\0{}", 5, 0), 5);
	assert_null(cfg_load(path, &e));
	got = errs_join(&e, "\n");
	assert_non_null(strstr(got, ": contains a NUL byte"));
	free(got);
	errs_reset(&e);

	close(fd);
	unlink(path);
	assert_null(cfg_load(path, &e));
	got = errs_join(&e, "\n");
	assert_non_null(strstr(got, ": No such file or directory"));
	free(got);
	errs_reset(&e);
}

/* broker.user and broker.listen_group: looked up at load (root/0 and
 * nobody exist on every system this runs on). */
static void test_identity_keys(void **state)
{
	char *s = doc("{\"user\": \"root\", \"listen_group\": \"0\"}", NULL, NULL);
	struct cfg *c = expect_ok(s);

	(void)state;
	assert_string_equal(c->user, "root");
	assert_int_equal(c->user_uid, 0);
	assert_int_equal(c->user_gid, 0);
	assert_string_equal(c->listen_group, "0");
	assert_int_equal(c->listen_gid, 0);
	cfg_free(c);
	free(s);
	s = doc("{\"user\": \"65534:0\"}", NULL, NULL);
	c = expect_ok(s);
	assert_int_equal(c->user_uid, 65534);
	assert_int_equal(c->user_gid, 0);
	assert_null(c->listen_group);
	cfg_free(c);
	free(s);
	c = expect_ok("{" NS_OK ", " POLICIES "}");
	assert_null(c->user);
	assert_null(c->listen_group);
	cfg_free(c);

	broker_err("{\"user\": \"nfqb-no-such-user\"}",
		   "broker.user: unknown user \"nfqb-no-such-user\"");
	broker_err("{\"user\": \"root:nfqb-no-such-group\"}",
		   "broker.user: unknown group \"nfqb-no-such-group\"");
	broker_err("{\"user\": \"\"}", "broker.user: must not be empty");
	broker_err("{\"user\": 0}", "broker.user: expected a string, got number 0");
	broker_err("{\"user\": \"a b\"}",
		   "broker.user: user has invalid character 0x20 at offset 1");
	broker_err("{\"user\": \"root:\"}", "broker.user: \"root:\" is not USER or USER:GROUP");
	broker_err("{\"user\": \"4294967295\"}",
		   "broker.user: user id 4294967295 out of range 0-4294967294");
	broker_err("{\"listen_group\": \"nfqb-no-such-group\"}",
		   "broker.listen_group: unknown group \"nfqb-no-such-group\"");
	broker_err("{\"listen_group\": \"99999999999\"}",
		   "broker.listen_group: group id 99999999999 out of range 0-4294967294");
	broker_err("{\"listen_group\": []}", "broker.listen_group: expected a string, got array []");
	/* Both at once: every error is reported. */
	broker_err("{\"user\": \"nfqb-no-such-user\", \"listen_group\": \"\"}",
		   "broker.user: unknown user \"nfqb-no-such-user\"\n"
		   "broker.listen_group: must not be empty");
}

/* broker.control_allow_uids, control_admin_uids, control_idle_ms, metrics_refresh_ms */
static void test_control_keys(void **state)
{
	struct cfg *c;
	char *s;

	/* defaults: root only, for everything; 10 s idle; kernel stats every 5 s */
	s = doc(NULL, NULL, NULL);
	c = expect_ok(s);
	free(s);
	assert_int_equal(c->ctl.nallow_uids, 1);
	assert_int_equal(c->ctl.allow_uids[0], 0);
	assert_int_equal(c->ctl.nadmin_uids, 1);
	assert_int_equal(c->ctl.admin_uids[0], 0);
	assert_int_equal(c->ctl.idle_ms, 10000);
	assert_int_equal(c->ctl.metrics_refresh_ms, 5000);
	assert_int_equal(cfg_control_access(c, 0), 2);
	assert_int_equal(cfg_control_access(c, 1000), 0);
	assert_int_equal(cfg_control_access(c, (uid_t)-1), 0);
	cfg_free(c);

	s = doc("{\"control_allow_uids\": [1000, 1001], \"control_admin_uids\": [0, 1002],"
		" \"control_idle_ms\": 100, \"metrics_refresh_ms\": 3600000}", NULL, NULL);
	c = expect_ok(s);
	free(s);
	assert_int_equal(cfg_control_access(c, 0), 2);
	assert_int_equal(cfg_control_access(c, 1000), 1);
	assert_int_equal(cfg_control_access(c, 1001), 1);
	/* an admin need not be listed twice */
	assert_int_equal(cfg_control_access(c, 1002), 2);
	assert_int_equal(cfg_control_access(c, 1003), 0);
	assert_int_equal(c->ctl.idle_ms, 100);
	assert_int_equal(c->ctl.metrics_refresh_ms, 3600000);
	/* agents' allow_uids is another list */
	assert_int_equal(cfg_uid_allowed(c, 1000), false);
	cfg_free(c);

	/* empty lists: nobody (locking root out is the operator's call) */
	s = doc("{\"control_allow_uids\": [], \"control_admin_uids\": []}", NULL, NULL);
	c = expect_ok(s);
	free(s);
	assert_int_equal(cfg_control_access(c, 0), 0);
	cfg_free(c);

	broker_err("{\"control_allow_uids\": 0}",
		   "broker.control_allow_uids: expected an array, got number 0");
	broker_err("{\"control_admin_uids\": {\"0\": 1}}",
		   "broker.control_admin_uids: expected an array, got object {\"0\":1}");
	broker_err("{\"control_allow_uids\": [0, -1, \"1000\", 4294967295, 1.5]}",
		   "broker.control_allow_uids[1]: uid -1 out of range 0-4294967294\n"
		   "broker.control_allow_uids[2]: expected an integer, got string \"1000\"\n"
		   "broker.control_allow_uids[3]: uid 4294967295 out of range 0-4294967294\n"
		   "broker.control_allow_uids[4]: uid 1.5 is not an integer");
	broker_err("{\"control_idle_ms\": 99}",
		   "broker.control_idle_ms: control_idle_ms 99 out of range 100-3600000");
	broker_err("{\"control_idle_ms\": \"10s\"}",
		   "broker.control_idle_ms: expected an integer, got string \"10s\"");
	broker_err("{\"metrics_refresh_ms\": 0}",
		   "broker.metrics_refresh_ms: metrics_refresh_ms 0 out of range 100-3600000");
	broker_err("{\"metrics_refresh_ms\": 3600001}",
		   "broker.metrics_refresh_ms: metrics_refresh_ms 3600001 out of range 100-3600000");
	broker_err("{\"control_admin_uid\": [0]}", "broker.control_admin_uid: unknown key");
	/* every one reported at once */
	broker_err("{\"control_idle_ms\": -1, \"metrics_refresh_ms\": null,"
		   " \"control_admin_uids\": [\"root\"]}",
		   "broker.control_admin_uids[0]: expected an integer, got string \"root\"\n"
		   "broker.control_idle_ms: control_idle_ms -1 out of range 100-3600000\n"
		   "broker.metrics_refresh_ms: expected an integer, got null");
}

/* ------------------------------------------------------------ steering */

#define STEER_MIN "[{\"hook\": \"output\", \"family\": \"inet\", \"match\": " \
	"{\"proto\": \"udp\", \"dport\": [8080, 9999]}, \"queue\": 1}]"

static void test_steer_inline(void **state)
{
	struct cfg *c = expect_ok("{\"namespaces\": [{\"name\": \"pod-a\", \"queues\": [1],"
				  " \"policy\": \"web\", \"steer\": " STEER_MIN "},"
				  " {\"name\": \"pod-b\", \"queues\": [2], \"policy\": \"web\"},"
				  " {\"name\": \"pod-c\", \"queues\": [3], \"policy\": \"web\","
				  "  \"steer\": []}], " POLICIES "}");

	(void)state;
	assert_non_null(c->ns[0].steer);
	assert_ptr_equal(c->ns[0].steer, c->ns[0].steer_own);
	assert_null(c->ns[0].steer->name);
	assert_int_equal(c->ns[0].steer->n, 1);
	assert_int_equal(c->ns[0].steer->items[0].hook, STEER_HOOK_OUTPUT);
	assert_int_equal(c->ns[0].steer->items[0].m.ndport, 2);
	assert_int_equal(c->ns[0].steer->items[0].queue_lo, 1);
	/* absent and [] both mean no steering */
	assert_null(c->ns[1].steer);
	assert_null(c->ns[1].steer_own);
	assert_null(c->ns[2].steer);
	assert_int_equal(c->nsteering, 0);
	cfg_free(c);
}

static void test_steer_named(void **state)
{
	struct cfg *c = expect_ok(
		"{\"steering\": {\"web\": [{\"hook\": \"input\", \"match\": {\"proto\": \"tcp\","
		"  \"dport\": 80}, \"queue\": \"1-2\", \"bypass\": true}],"
		"  \"none\": []},"
		" \"namespaces\": [{\"name\": \"pod-a\", \"queues\": [1, 2], \"policy\": \"web\","
		"  \"steer\": \"web\"},"
		"  {\"name\": \"pod-*\", \"queues\": [2, 1, 3], \"policy\": \"web\", \"steer\": \"web\"},"
		"  {\"name\": \"x\", \"queues\": [4], \"policy\": \"web\", \"steer\": \"none\"}], "
		POLICIES "}");

	(void)state;
	assert_int_equal(c->nsteering, 2);
	assert_ptr_equal(cfg_steering_find(c, "web"), c->ns[0].steer);
	assert_ptr_equal(c->ns[0].steer, c->ns[1].steer);
	assert_null(c->ns[0].steer_own);
	assert_string_equal(c->ns[0].steer->name, "web");
	assert_int_equal(c->ns[0].steer->items[0].queue_hi, 2);
	assert_true(c->ns[0].steer->items[0].bypass);
	assert_non_null(cfg_steering_find(c, "none"));
	assert_null(c->ns[2].steer);
	assert_null(cfg_steering_find(c, "nope"));
	cfg_free(c);
}

static void test_steer_errors(void **state)
{
	(void)state;
	expect_errors("{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
		      " \"steer\": \"wbe\"}], " POLICIES "}",
		      "namespaces[0].steer: unknown steering list \"wbe\"");
	expect_errors("{\"steering\": {\"web\": []}, \"namespaces\": [{\"name\": \"a\","
		      " \"queues\": [1], \"policy\": \"web\", \"steer\": \"wbe\"}], " POLICIES "}",
		      "namespaces[0].steer: unknown steering list \"wbe\"");
	expect_errors("{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
		      " \"steer\": {\"hook\": \"input\"}}, {\"name\": \"b\", \"queues\": [1],"
		      " \"policy\": \"web\", \"steer\": 1}], " POLICIES "}",
		      "namespaces[0].steer: expected an array of steer items or the name of a "
		      "\"steering\" list, got object {\"hook\":\"input\"}\n"
		      "namespaces[1].steer: expected an array of steer items or the name of a "
		      "\"steering\" list, got number 1");
	expect_errors("{\"steering\": [], \"namespaces\": [{\"name\": \"a\", \"queues\": [1],"
		      " \"policy\": \"web\", \"steer\": \"web\"}], " POLICIES "}",
		      "steering: expected an object, got array []");
	expect_errors("{\"steering\": {\"we b\": [], \"x\": {}}, \"namespaces\": [], " POLICIES "}",
		      "steering: bad steering list name \"we b\" (1-64 letters, digits, '_', '-', "
		      "'.', ':', '/')\n"
		      "steering.x: expected an array, got object {}");
	/* a named list with errors is not also "unknown" where it is used */
	expect_errors("{\"steering\": {\"web\": [{\"hook\": \"in\", \"queue\": 1}]},"
		      " \"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
		      " \"steer\": \"web\"}], " POLICIES "}",
		      "steering.web[0].hook: unknown hook \"in\" (prerouting, input, forward, "
		      "output, postrouting)");
	/* an inline queue outside the entry's queues */
	expect_errors("{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
		      " \"steer\": [{\"hook\": \"input\", \"queue\": 7}]}], " POLICIES "}",
		      "namespaces[0].steer[0].queue: queue 7 is not one of namespaces[0].queues");
	/* a named list's queues, checked at every entry that uses it */
	expect_errors("{\"steering\": {\"web\": [{\"hook\": \"input\", \"queue\": \"1-3\"}]},"
		      " \"namespaces\": [{\"name\": \"a\", \"queues\": [1, 2, 3], \"policy\": \"web\","
		      "  \"steer\": \"web\"},"
		      " {\"name\": \"b\", \"queues\": [1], \"policy\": \"web\", \"steer\": \"web\"},"
		      " {\"name\": \"c\", \"queues\": [2], \"policy\": \"web\", \"steer\": \"web\"}], "
		      POLICIES "}",
		      "namespaces[1].steer: queues 2-3 (steering.web[0].queue) are not among "
		      "namespaces[1].queues\n"
		      "namespaces[2].steer: queue 1 (steering.web[0].queue) is not one of "
		      "namespaces[2].queues\n"
		      "namespaces[2].steer: queue 3 (steering.web[0].queue) is not one of "
		      "namespaces[2].queues");
	/* the entry's own queues bad: no queue check on top */
	expect_errors("{\"namespaces\": [{\"name\": \"a\", \"queues\": [70000], \"policy\": \"web\","
		      " \"steer\": [{\"hook\": \"input\", \"queue\": 7}]}], " POLICIES "}",
		      "namespaces[0].queues[0]: queue 70000 out of range 0-65535");
	/* queue_defaults does not take steer (docs/steering.md) */
	qd_err("{\"steer\": []}", "queue_defaults.steer: unknown key");
}

/* Steering errors come with every other error of the file, at once. */
static void test_steer_all_at_once(void **state)
{
	(void)state;
	expect_errors("{\"broker\": {\"grace_ms\": -1},"
		      " \"steering\": {\"web\": [{\"hook\": \"output\", \"queue\": 1,"
		      "  \"match\": {\"uid\": 0}}]},"
		      " \"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\","
		      "  \"steer\": [{\"hook\": \"output\", \"queue\": 1, \"match\": {\"indev\": \"x\"}}]},"
		      " {\"name\": \"b\", \"queues\": [1], \"policy\": \"nope\", \"steer\": \"missing\"}], "
		      POLICIES "}",
		      "broker.grace_ms: grace_ms -1 out of range 0-86400000\n"
		      "steering.web[0].match.uid: not available for steering (the kernel matches it "
		      "only in the policy)\n"
		      "namespaces[0].steer[0].match.indev: a packet has no input interface at hook "
		      "\"output\" (only at prerouting, input and forward)\n"
		      "namespaces[1].steer: unknown steering list \"missing\"\n"
		      "namespaces[1].policy: unknown policy \"nope\"");
}

/* broker.metrics_public: off by default; on, metrics_listen may be any address */
static void test_metrics_public(void **state)
{
	struct cfg *c;
	char *s;

	s = doc(NULL, NULL, NULL);
	c = expect_ok(s);
	free(s);
	assert_false(c->metrics_public);
	cfg_free(c);
	s = doc("{\"metrics_public\": true, \"metrics_listen\": \"0.0.0.0:9101\"}", NULL, NULL);
	c = expect_ok(s);
	free(s);
	assert_true(c->metrics_public);
	assert_string_equal(c->metrics_listen, "0.0.0.0:9101");
	cfg_free(c);
	s = doc("{\"metrics_public\": true, \"metrics_listen\": \"[::]:9101\"}", NULL, NULL);
	c = expect_ok(s);
	free(s);
	cfg_free(c);
	broker_err("{\"metrics_public\": false, \"metrics_listen\": \"10.0.0.1:9101\"}",
		   "broker.metrics_listen: 10.0.0.1 is not a loopback address (127.0.0.0/8 or "
		   "[::1]; broker.metrics_public allows it)");
	broker_err("{\"metrics_public\": \"yes\"}",
		   "broker.metrics_public: expected a boolean, got string \"yes\"");
	/* a bad flag and a non-loopback address: both reported */
	broker_err("{\"metrics_public\": 1, \"metrics_listen\": \"10.0.0.1:80\"}",
		   "broker.metrics_public: expected a boolean, got number 1\n"
		   "broker.metrics_listen: 10.0.0.1 is not a loopback address (127.0.0.0/8 or "
		   "[::1]; broker.metrics_public allows it)");
	/* public or not, the address must still be one */
	broker_err("{\"metrics_public\": true, \"metrics_listen\": \"localhost:80\"}",
		   "broker.metrics_listen: \"localhost\" is not an IPv4 address (write IPv6 as "
		   "[::1]:PORT)");
}

/* "audit" on a namespaces[] entry, and the connmark match's queue flag. */
static void test_audit_and_connmark(void **state)
{
	static const char ct_pol[] =
		"\"policies\": {\"ct\": {\"rules\": [{\"name\": \"r\", \"match\": "
		"{\"connmark\": \"1/1\"}, \"verdict\": \"accept\"}]}, "
		"\"plain\": {\"default\": \"accept\"}}";
	struct cfg *c;
	char *j;

	c = expect_ok("{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\", "
		      "\"audit\": true}, {\"name\": \"b\", \"queues\": [2], \"policy\": \"web\", "
		      "\"audit\": false}, {\"name\": \"c\", \"queues\": [3], \"policy\": \"web\"}], "
		      POLICIES "}");
	assert_true(c->ns[0].audit);
	assert_false(c->ns[1].audit);
	assert_false(c->ns[2].audit);       /* the default */
	cfg_free(c);
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\", "
	       "\"audit\": \"yes\"}]",
	       "namespaces[0].audit: expected a boolean, got string \"yes\"");
	ns_err("\"namespaces\": [{\"name\": \"a\", \"queues\": [1], \"policy\": \"web\", "
	       "\"audit\": 1}]",
	       "namespaces[0].audit: expected a boolean, got number 1");

	/* connmark needs the conntrack flag: per entry, from queue_defaults or its own */
	assert_true(asprintf(&j, "{\"namespaces\": [{\"name\": \"a\", \"queues\": [1], "
			     "\"policy\": \"ct\"}, {\"name\": \"b\", \"queues\": [2], \"policy\": "
			     "\"ct\", \"queue\": {\"conntrack\": true}}, {\"name\": \"c\", "
			     "\"queues\": [3], \"policy\": \"plain\"}], %s}", ct_pol) > 0);
	expect_errors(j, "namespaces[0].policy: policy \"ct\" matches connmark, which needs the "
		      "queue flag conntrack (queue_defaults or this entry's queue); a kernel "
		      "without CONFIG_NETFILTER_NETLINK_GLUE_CT refuses that flag: use "
		      "CONNMARK --restore-mark and a mark match instead (docs/policy.md)");
	free(j);
	assert_true(asprintf(&j, "{\"queue_defaults\": {\"conntrack\": true}, \"namespaces\": "
			     "[{\"name\": \"a\", \"queues\": [1], \"policy\": \"ct\"}], %s}",
			     ct_pol) > 0);
	c = expect_ok(j);
	assert_true(c->ns[0].qopts.flags & NFQB_F_CONNTRACK);
	cfg_free(c);
	free(j);
	assert_true(asprintf(&j, "{\"queue_defaults\": {\"conntrack\": true}, \"namespaces\": "
			     "[{\"name\": \"a\", \"queues\": [1], \"policy\": \"ct\", \"queue\": "
			     "{\"conntrack\": false}}], %s}", ct_pol) > 0);
	expect_errors(j, "namespaces[0].policy: policy \"ct\" matches connmark, which needs the "
		      "queue flag conntrack (queue_defaults or this entry's queue); a kernel "
		      "without CONFIG_NETFILTER_NETLINK_GLUE_CT refuses that flag: use "
		      "CONNMARK --restore-mark and a mark match instead (docs/policy.md)");
	free(j);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_public),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_no_catch_all),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_broker_keys),
		cmocka_unit_test(test_admission_keys),
		cmocka_unit_test(test_pin_check),
		cmocka_unit_test(test_duplicate_names_many),
		cmocka_unit_test(test_queue_keys),
		cmocka_unit_test(test_ns_entries),
		cmocka_unit_test(test_policy_errors_pass_through),
		cmocka_unit_test(test_unknown_policy_beside_policy_error),
		cmocka_unit_test(test_docs_queue_defaults),
		cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_identity_keys),
		cmocka_unit_test(test_control_keys),
		cmocka_unit_test(test_steer_inline),
		cmocka_unit_test(test_steer_named),
		cmocka_unit_test(test_steer_errors),
		cmocka_unit_test(test_steer_all_at_once),

		cmocka_unit_test(test_audit_and_connmark),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
