/* SPDX-License-Identifier: MIT */
/*
 * Policy language: every validation error with its exact message, every
 * matcher against packets that must and must not match, evaluation order,
 * actions, counters and their carry-over on reload, and that evaluation
 * allocates nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <nfqb/queue.h>

#include "errs.h"
#include "pktmeta.h"
#include "policy.h"

/* ------------------------------------------------------------------ */
/* Allocation counting (not under ASan, which owns malloc itself)     */
/* ------------------------------------------------------------------ */

#include "alloc-count.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* Parses @text as the value of "policies" (NULL set on any error). */
/* What session_verdict() does: evaluate, then count on the rule found. */
static int eval_count(const struct policy *p, const struct pktmeta *m,
		      const struct policy_action **act)
{
	int idx = policy_eval(p, m, act);

	policy_count(p, idx, m->len);
	return idx;
}

static struct policy_set *parse(const char *text, struct errs *e)
{
	json_object *o = json_tokener_parse(text);
	struct policy_set *s;

	assert_non_null(o);
	s = policy_set_parse(o, e);
	json_object_put(o);
	return s;
}

static struct policy_set *parse_ok(const char *text)
{
	struct errs e = { 0 };
	struct policy_set *s = parse(text, &e);

	if (!s) {
		for (size_t i = 0; i < e.n; i++)
			print_error("unexpected: %s\n", e.lines[i]);
		fail_msg("config rejected: %s", text);
	}
	assert_int_equal(e.n, 0);
	errs_reset(&e);
	return s;
}

/*
 * Packet description, "key=value" words: src= dst= (the family follows the
 * address), proto= (name or number), sport= dport= (sets has_ports), hook=,
 * in= out= (interned through @s), mark= ctmark= (sets has_ct) uid= gid= len=.
 */
static void mkpkt(const struct policy_set *s, const char *desc, struct pktmeta *m)
{
	char buf[256], *save = NULL;

	memset(m, 0, sizeof(*m));
	m->indev_id = -1;
	m->outdev_id = -1;
	snprintf(buf, sizeof(buf), "%s", desc);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *v = strchr(w, '=');

		assert_non_null(v);
		*v++ = '\0';
		if (!strcmp(w, "src") || !strcmp(w, "dst")) {
			int af = strchr(v, ':') ? AF_INET6 : AF_INET;

			assert_int_equal(inet_pton(af, v, w[0] == 's' ? m->src : m->dst), 1);
			m->family = af == AF_INET ? 4 : 6;
		} else if (!strcmp(w, "proto")) {
			m->proto = !strcmp(v, "tcp") ? 6 : !strcmp(v, "udp") ? 17 :
				   !strcmp(v, "icmp") ? 1 : (uint8_t)strtoul(v, NULL, 0);
		} else if (!strcmp(w, "sport")) {
			m->sport = (uint16_t)strtoul(v, NULL, 0);
			m->has_ports = true;
		} else if (!strcmp(w, "dport")) {
			m->dport = (uint16_t)strtoul(v, NULL, 0);
			m->has_ports = true;
		} else if (!strcmp(w, "hook")) {
			static const char *const h[] = { "prerouting", "input",
				"forward", "output", "postrouting" };
			size_t i;

			for (i = 0; i < 5 && strcmp(v, h[i]); i++)
				;
			assert_true(i < 5);
			m->hook = (uint8_t)i;
		} else if (!strcmp(w, "in")) {
			m->indev_id = policy_ifname_id(s, v);
		} else if (!strcmp(w, "out")) {
			m->outdev_id = policy_ifname_id(s, v);
		} else if (!strcmp(w, "mark")) {
			m->mark = (uint32_t)strtoul(v, NULL, 0);
		} else if (!strcmp(w, "ctmark")) {
			m->ctmark = (uint32_t)strtoul(v, NULL, 0);
			m->has_ct = true;
		} else if (!strcmp(w, "uid")) {
			m->uid = (uint32_t)strtoul(v, NULL, 0);
			m->has_uid = true;
		} else if (!strcmp(w, "gid")) {
			m->gid = (uint32_t)strtoul(v, NULL, 0);
			m->has_gid = true;
		} else if (!strcmp(w, "len")) {
			m->len = (uint32_t)strtoul(v, NULL, 0);
		} else {
			fail_msg("bad packet word %s", w);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Validation errors                                                  */
/* ------------------------------------------------------------------ */

/* A one-rule policy "web" with @match and verdict accept. */
#define RULE(rest) "{\"web\":{\"rules\":[{\"name\":\"r\"," rest "}]}}"
#define MATCH(m) RULE("\"match\":{" m "},\"verdict\":\"accept\"")
#define R0 "policies.web.rules[0]"

static const struct bad_case {
	const char *config;
	const char *error;
} bad_cases[] = {
	{ MATCH("\"dport\":70000"),
	  R0 ".match.dport: port 70000 out of range 0-65535" },
	{ MATCH("\"dport\":[22,80,\"90-80\"]"),
	  R0 ".match.dport[2]: empty port range \"90-80\"" },
	{ MATCH("\"dport\":[22,\"1-70000\"]"),
	  R0 ".match.dport[1]: port 70000 out of range 0-65535" },
	{ MATCH("\"dport\":\"80\""),
	  R0 ".match.dport: bad port range \"80\" (expected a number or \"lo-hi\")" },
	{ MATCH("\"sport\":\" 1-2\""),
	  R0 ".match.sport: bad port range \" 1-2\" (expected a number or \"lo-hi\")" },
	{ MATCH("\"dport\":-1"),
	  R0 ".match.dport: port -1 out of range 0-65535" },
	/* beyond what json-c holds: saturated, so no (wrong) number is shown */
	{ MATCH("\"dport\":99999999999999999999999"),
	  R0 ".match.dport: port out of range 0-65535" },
	{ MATCH("\"uid\":-99999999999999999999999"),
	  R0 ".match.uid: uid out of range 0-4294967295" },
	{ MATCH("\"mark\":18446744073709551615"),
	  R0 ".match.mark: mark out of range 0-4294967295" },
	{ MATCH("\"dport\":1.5"),
	  R0 ".match.dport: port 1.5 is not an integer" },
	{ MATCH("\"dport\":true"),
	  R0 ".match.dport: expected a port number or \"lo-hi\" range, got boolean true" },
	{ MATCH("\"sport\":null"),
	  R0 ".match.sport: expected a port number or \"lo-hi\" range, got null" },
	{ MATCH("\"dport\":[[1,2]]"),
	  R0 ".match.dport[0]: expected a port number or \"lo-hi\" range, got array [1,2]" },
	{ MATCH("\"dport\":[]"),
	  R0 ".match.dport: empty list" },
	{ MATCH("\"src\":[\"10.0.0.0/8\",\"10.0.0.0/33\"]"),
	  R0 ".match.src[1]: bad address or CIDR \"10.0.0.0/33\"" },
	{ MATCH("\"dst\":\"2001:db8::/129\""),
	  R0 ".match.dst: bad address or CIDR \"2001:db8::/129\"" },
	{ MATCH("\"src\":\"10.0.0/8\""),
	  R0 ".match.src: bad address or CIDR \"10.0.0/8\"" },
	{ MATCH("\"src\":\"10.0.0.0/\""),
	  R0 ".match.src: bad address or CIDR \"10.0.0.0/\"" },
	{ MATCH("\"src\":\"10.0.0.1/8\""),
	  R0 ".match.src: CIDR \"10.0.0.1/8\" has host bits set (network is 10.0.0.0/8)" },
	{ MATCH("\"dst\":\"2001:db8::1/32\""),
	  R0 ".match.dst: CIDR \"2001:db8::1/32\" has host bits set (network is 2001:db8::/32)" },
	{ MATCH("\"src\":10"),
	  R0 ".match.src: expected an address or CIDR string, got number 10" },
	{ MATCH("\"color\":\"red\""),
	  R0 ".match.color: unknown key" },
	{ MATCH("\"family\":\"ipv5\""),
	  R0 ".match.family: unknown family \"ipv5\" (ipv4, ipv6)" },
	{ MATCH("\"family\":4"),
	  R0 ".match.family: expected \"ipv4\" or \"ipv6\", got number 4" },
	{ MATCH("\"proto\":\"tcpp\""),
	  R0 ".match.proto: unknown protocol \"tcpp\" (tcp, udp, icmp, icmpv6, sctp, "
	  "udplite, gre, esp, ah, or a number 0-255)" },
	{ MATCH("\"proto\":[\"tcp\",256]"),
	  R0 ".match.proto[1]: protocol 256 out of range 0-255" },
	{ MATCH("\"hook\":\"inptu\""),
	  R0 ".match.hook: unknown hook \"inptu\" (prerouting, input, forward, output, postrouting)" },
	{ MATCH("\"indev\":\"eth/0\""),
	  R0 ".match.indev: bad interface name \"eth/0\" (1-15 characters, no '/', ':' or whitespace)" },
	{ MATCH("\"outdev\":[\"eth0\",\"sixteen-chars-xx\"]"),
	  R0 ".match.outdev[1]: bad interface name \"sixteen-chars-xx\" (1-15 characters, "
	  "no '/', ':' or whitespace)" },
	{ MATCH("\"indev\":\"\""),
	  R0 ".match.indev: bad interface name \"\" (1-15 characters, no '/', ':' or whitespace)" },
	{ MATCH("\"mark\":\"0x10\""),
	  R0 ".match.mark: bad mark \"0x10\" (expected a number or \"value/mask\", 32 bits each)" },
	{ MATCH("\"mark\":\"0x11/0xf0\""),
	  R0 ".match.mark: mark value 0x11 has bits outside mask 0xf0 and can never match" },
	{ MATCH("\"mark\":\"1/0x100000000\""),
	  R0 ".match.mark: bad mark \"1/0x100000000\" (expected a number or \"value/mask\", "
	  "32 bits each)" },
	{ MATCH("\"mark\":4294967296"),
	  R0 ".match.mark: mark 4294967296 out of range 0-4294967295" },
	{ MATCH("\"uid\":\"1000\""),
	  R0 ".match.uid: expected a number, got string \"1000\"" },
	{ MATCH("\"gid\":[1,-2]"),
	  R0 ".match.gid[1]: gid -2 out of range 0-4294967295" },
	{ MATCH("\"length\":\"100-300000\""),
	  R0 ".match.length: length 300000 out of range 0-262144" },
	{ MATCH("\"length\":\"500-100\""),
	  R0 ".match.length: empty length range \"500-100\"" },
	{ MATCH("\"length\":[1,2]"),
	  R0 ".match.length: expected a number or \"lo-hi\" string, got array [1,2]" },
	{ RULE("\"match\":[],\"verdict\":\"accept\""),
	  R0 ".match: expected an object, got array []" },
	{ RULE("\"verdict\":\"maybe\""),
	  R0 ".verdict: unknown verdict \"maybe\" (accept, drop, repeat, queue:N)" },
	{ RULE("\"verdict\":\"queue:70000\""),
	  R0 ".verdict: queue 70000 out of range 0-65535" },
	{ RULE("\"verdict\":\"queue:x\""),
	  R0 ".verdict: bad verdict \"queue:x\" (queue:N needs a number N 0-65535)" },
	{ RULE("\"verdict\":1"),
	  R0 ".verdict: expected a verdict string, got number 1" },
	{ RULE("\"verdict\":\"accept\",\"set_mark\":\"42\""),
	  R0 ".set_mark: expected a number, got string \"42\"" },
	{ RULE("\"verdict\":\"accept\",\"set_mark\":-1"),
	  R0 ".set_mark: mark -1 out of range 0-4294967295" },
	{ RULE("\"verdict\":\"accept\",\"log\":\"yes\""),
	  R0 ".log: expected true, false or a {\"rate\", \"burst\"} object, got string \"yes\"" },
	{ RULE("\"verdict\":\"accept\",\"colour\":1"),
	  R0 ".colour: unknown key" },
	/* log limits (iptables -m limit) */
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"fast\"}"),
	  R0 ".log.rate: bad rate \"fast\" (expected \"N/second\", \"N/minute\", \"N/hour\", "
	  "\"N/day\" or \"unlimited\")" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"10/week\"}"),
	  R0 ".log.rate: bad rate \"10/week\" (expected \"N/second\", \"N/minute\", \"N/hour\", "
	  "\"N/day\" or \"unlimited\")" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"10/\"}"),
	  R0 ".log.rate: bad rate \"10/\" (expected \"N/second\", \"N/minute\", \"N/hour\", "
	  "\"N/day\" or \"unlimited\")" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"/second\"}"),
	  R0 ".log.rate: bad rate \"/second\" (expected \"N/second\", \"N/minute\", \"N/hour\", "
	  "\"N/day\" or \"unlimited\")" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"10/seconds\"}"),
	  R0 ".log.rate: bad rate \"10/seconds\" (expected \"N/second\", \"N/minute\", \"N/hour\", "
	  "\"N/day\" or \"unlimited\")" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"0/second\"}"),
	  R0 ".log.rate: rate 0/second out of range 1-1000000 per second" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":\"2000000/s\"}"),
	  R0 ".log.rate: rate 2000000/second out of range 1-1000000 per second" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"rate\":10}"),
	  R0 ".log.rate: expected a rate string (\"N/second\", \"N/minute\", \"N/hour\", "
	  "\"N/day\" or \"unlimited\"), got number 10" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"burst\":0}"),
	  R0 ".log.burst: burst 0 out of range 1-10000" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"burst\":10001}"),
	  R0 ".log.burst: burst 10001 out of range 1-10000" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"burst\":\"5\"}"),
	  R0 ".log.burst: expected a number, got string \"5\"" },
	{ RULE("\"verdict\":\"accept\",\"log\":{\"every\":1}"),
	  R0 ".log.every: unknown key" },
	{ RULE("\"verdict\":\"accept\",\"log\":[]"),
	  R0 ".log: expected true, false or a {\"rate\", \"burst\"} object, got array []" },
	/* comments */
	{ RULE("\"verdict\":\"accept\",\"comment\":5"),
	  R0 ".comment: expected a string, got number 5" },
	{ RULE("\"verdict\":\"accept\",\"comment\":\"two\\nlines\""),
	  R0 ".comment: comment has a control character (0x0a)" },
	{ RULE("\"verdict\":\"accept\",\"comment\":\"nul\\u0000byte\""),
	  R0 ".comment: comment has a NUL byte" },
	/* set_connmark */
	{ RULE("\"verdict\":\"accept\",\"set_connmark\":0"),
	  R0 ".set_connmark: connmark 0 out of range 1-4294967295" },
	{ RULE("\"verdict\":\"accept\",\"set_connmark\":4294967296"),
	  R0 ".set_connmark: connmark 4294967296 out of range 1-4294967295" },
	{ RULE("\"verdict\":\"accept\",\"set_connmark\":\"0x1\""),
	  R0 ".set_connmark: expected a number, got string \"0x1\"" },
	{ RULE("\"verdict\":\"drop\",\"set_connmark\":1"),
	  R0 ".set_connmark: set_connmark with verdict drop: a dropped packet never reaches "
	  "the CONNMARK --save-mark rule" },
	/* connmark match */
	{ MATCH("\"connmark\":\"0x11/0xf0\""),
	  R0 ".match.connmark: connmark value 0x11 has bits outside mask 0xf0 and can never match" },
	{ MATCH("\"connmark\":\"1/\""),
	  R0 ".match.connmark: bad connmark \"1/\" (expected a number or \"value/mask\", 32 bits each)" },
	{ MATCH("\"connmark\":-1"),
	  R0 ".match.connmark: connmark -1 out of range 0-4294967295" },
	{ MATCH("\"connmark\":[1]"),
	  R0 ".match.connmark: expected a number or \"value/mask\" string, got array [1]" },
	/* mode and the default's action object */
	{ "{\"web\":{\"mode\":\"dry\"}}",
	  "policies.web.mode: unknown mode \"dry\" (enforce, audit)" },
	{ "{\"web\":{\"mode\":true}}",
	  "policies.web.mode: expected a mode string, got boolean true" },
	{ "{\"web\":{\"default\":{\"log\":true}}}",
	  "policies.web.default.verdict: required key missing" },
	{ "{\"web\":{\"default\":{\"verdict\":\"drop\",\"name\":\"d\"}}}",
	  "policies.web.default.name: unknown key" },
	{ "{\"web\":{\"default\":{\"verdict\":\"drop\",\"match\":{}}}}",
	  "policies.web.default.match: unknown key" },
	{ "{\"web\":{\"default\":{\"verdict\":\"drop\",\"set_connmark\":2}}}",
	  "policies.web.default.set_connmark: set_connmark with verdict drop: a dropped packet "
	  "never reaches the CONNMARK --save-mark rule" },
	{ "{\"web\":{\"default\":{\"verdict\":\"nope\"}}}",
	  "policies.web.default.verdict: unknown verdict \"nope\" (accept, drop, repeat, queue:N)" },
	{ "{\"web\":{\"default\":[\"drop\"]}}",
	  "policies.web.default: expected a verdict string or an action object, got array [\"drop\"]" },
	{ "{\"web\":{\"default\":{\"verdict\":\"drop\",\"log\":{\"rate\":\"1/fortnight\"}}}}",
	  "policies.web.default.log.rate: bad rate \"1/fortnight\" (expected \"N/second\", "
	  "\"N/minute\", \"N/hour\", \"N/day\" or \"unlimited\")" },
	{ RULE("\"match\":{}"),
	  R0 ".verdict: required key missing" },
	{ "{\"web\":{\"rules\":[{\"verdict\":\"drop\"}]}}",
	  R0 ".name: required key missing" },
	{ "{\"web\":{\"rules\":[{\"name\":\"a b\",\"verdict\":\"drop\"}]}}",
	  R0 ".name: bad rule name \"a b\" (1-64 letters, digits, '_', '-', '.', ':', '/')" },
	{ "{\"web\":{\"rules\":[{\"name\":\"a\",\"verdict\":\"drop\"},"
	  "{\"name\":\"b\",\"verdict\":\"drop\"},{\"name\":\"a\",\"verdict\":\"drop\"}]}}",
	  "policies.web.rules[2].name: duplicate rule name \"a\" (also rules[0])" },
	{ "{\"web\":{\"rules\":[\"x\"]}}",
	  R0 ": expected a rule object, got string \"x\"" },
	{ "{\"web\":{\"rules\":{}}}",
	  "policies.web.rules: expected an array of rules, got object {}" },
	{ "{\"web\":{\"default\":\"allow\"}}",
	  "policies.web.default: unknown verdict \"allow\" (accept, drop, repeat, queue:N)" },
	{ "{\"web\":{\"defualt\":\"drop\"}}",
	  "policies.web.defualt: unknown key" },
	{ "{\"web\":5}",
	  "policies.web: expected a policy object, got number 5" },
	{ "{\"a b\":{}}",
	  "policies: bad policy name \"a b\" (1-64 letters, digits, '_', '-', '.', ':', '/')" },
	{ "[]",
	  "policies: expected an object of named policies, got array []" },
};

static void test_bad_configs(void **state)
{
	/* The issue asks for at least 25 distinct malformed configs. */
	assert_true(sizeof(bad_cases) / sizeof(bad_cases[0]) >= 25);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct errs e = { 0 };
		struct policy_set *s = parse(bad_cases[i].config, &e);

		if (e.n != 1 || strcmp(e.lines[0], bad_cases[i].error)) {
			print_error("case %zu: %s\n  want: %s\n", i,
				    bad_cases[i].config, bad_cases[i].error);
			for (size_t k = 0; k < e.n; k++)
				print_error("  got:  %s\n", e.lines[k]);
			fail();
		}
		assert_null(s);
		errs_reset(&e);
	}
}

static void test_missing_policies(void **state)
{
	struct errs e = { 0 };

	assert_null(policy_set_parse(NULL, &e));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.lines[0], "policies: required key missing");
	errs_reset(&e);
}

static void test_all_errors_reported(void **state)
{
	static const char *const want[] = {
		"policies.a.rules[0].match.dport[1]: empty port range \"9-1\"",
		"policies.a.rules[0].match.src: bad address or CIDR \"1.2.3.4/40\"",
		"policies.a.rules[0].verdict: unknown verdict \"nope\" (accept, drop, repeat, queue:N)",
		"policies.a.rules[1].name: duplicate rule name \"x\" (also rules[0])",
		"policies.a.rules[1].log: expected true, false or a {\"rate\", \"burst\"} object, got number 1",
		"policies.a.extra: unknown key",
		"policies.b.default: queue 65536 out of range 0-65535",
		"policies.b.rules[0].match.mark: mark -5 out of range 0-4294967295",
		"policies.b.rules[0].verdict: required key missing",
	};
	struct errs e = { 0 };
	struct policy_set *s = parse(
		"{\"a\":{\"rules\":["
		"  {\"name\":\"x\",\"match\":{\"dport\":[1,\"9-1\"],\"src\":\"1.2.3.4/40\"},"
		"   \"verdict\":\"nope\"},"
		"  {\"name\":\"x\",\"verdict\":\"drop\",\"log\":1}],"
		" \"extra\":true},"
		" \"ok\":{\"default\":\"drop\"},"
		" \"b\":{\"default\":\"queue:65536\",\"rules\":[{\"name\":\"m\","
		"   \"match\":{\"mark\":-5}}]}}", &e);

	assert_null(s);
	for (size_t i = 0; i < e.n; i++)
		print_message("  %s\n", e.lines[i]);
	assert_int_equal(e.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < e.n; i++)
		assert_string_equal(e.lines[i], want[i]);
	errs_reset(&e);
}

/* Errors found earlier (by config.c) neither fail nor disappear here. */
static void test_errors_appended(void **state)
{
	struct errs e = { 0 };
	struct policy_set *s;

	errs_add(&e, "broker.listen", "earlier");
	s = parse("{\"p\":{}}", &e);
	assert_non_null(s);
	assert_int_equal(e.n, 1);
	policy_set_free(s);
	assert_null(parse("{\"p\":{\"x\":1}}", &e));
	assert_int_equal(e.n, 2);
	assert_string_equal(e.lines[0], "broker.listen: earlier");
	assert_string_equal(e.lines[1], "policies.p.x: unknown key");
	errs_reset(&e);
}

/* Evaluation only reads the policy: counting is policy_count()'s. */
static void test_eval_counts_nothing(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"web\":{\"rules\":[{\"name\":\"dns\","
		"\"match\":{\"dport\":53},\"verdict\":\"drop\"}]}}");
	const struct policy *p = policy_set_find(s, "web");
	const struct policy_action *act;
	struct pktmeta m;

	(void)state;
	mkpkt(s, "src=10.0.0.1 dst=10.0.0.2 proto=udp sport=9 dport=53 len=70", &m);
	assert_int_equal(policy_eval(p, &m, &act), 0);
	assert_int_equal(policy_counter(p, 0)->packets, 0);
	policy_count(p, 0, 70);
	policy_count(p, -1, 30);
	policy_count(p, 1, 30);          /* out of range: ignored */
	policy_count(p, -2, 30);
	assert_int_equal(policy_counter(p, 0)->packets, 1);
	assert_int_equal(policy_counter(p, 0)->bytes, 70);
	assert_int_equal(policy_counter(p, -1)->packets, 1);
	assert_int_equal(policy_counter(p, -1)->bytes, 30);
	policy_set_free(s);
}

/*
 * docs/policy.md's match-key table ("| key | forms | matches when |") names
 * exactly the keys of the key table (POLICY_MATCH_KEYS), each once.
 */
static void test_docs_list_every_match_key(void **state)
{
	char line[1024], keys[32][16];
	size_t nkeys = 0, nseen[32] = { 0 };
	bool in_table = false, seen_table = false;
	FILE *f = fopen(TEST_SRCDIR "/../docs/policy.md", "r");

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *cell, *end;

		if (strncmp(line, "| key | forms | matches when |", 30) == 0) {
			in_table = seen_table = true;
			continue;
		}
		if (!in_table || strncmp(line, "|---", 4) == 0)
			continue;
		if (line[0] != '|') {
			in_table = false;
			continue;
		}
		end = strchr(line + 1, '|');
		assert_non_null(end);
		*end = '\0';
		/* the first cell: `a` or `a`, `b` */
		for (cell = strchr(line, '`'); cell; cell = strchr(end + 1, '`')) {
			end = strchr(cell + 1, '`');
			assert_non_null(end);
			assert_true(nkeys < 32 && end - cell - 1 < 16);
			snprintf(keys[nkeys++], 16, "%.*s", (int)(end - cell - 1), cell + 1);
		}
	}
	fclose(f);
	assert_true(seen_table);
	for (size_t k = 0; k < nkeys; k++) {
		size_t i;
		const char *doc = NULL;

		for (i = 0; policy_match_key(i, &doc); i++)
			if (strcmp(policy_match_key(i, NULL), keys[k]) == 0)
				break;
		if (!policy_match_key(i, NULL))
			print_error("docs/policy.md lists \"%s\", not a match key\n", keys[k]);
		assert_non_null(policy_match_key(i, NULL));
		assert_non_null(doc);
		assert_true(doc[0] != '\0');
		nseen[i]++;
	}
	for (size_t i = 0; policy_match_key(i, NULL); i++) {
		if (nseen[i] != 1)
			print_error("docs/policy.md lists match key \"%s\" %zu times\n",
				    policy_match_key(i, NULL), nseen[i]);
		assert_int_equal(nseen[i], 1);
	}
}

/* A rejected reload leaves the set in force untouched. */
static void test_bad_reload_harms_nothing(void **state)
{
	struct policy_set *old = parse_ok(
		"{\"web\":{\"default\":\"drop\",\"rules\":[{\"name\":\"dns\","
		"\"match\":{\"proto\":\"udp\",\"dport\":53},\"verdict\":\"accept\"}]}}");
	const struct policy *p = policy_set_find(old, "web");
	const struct policy_action *act;
	struct pktmeta m;
	struct errs e = { 0 };

	mkpkt(old, "src=10.0.0.1 dst=10.0.0.2 proto=udp sport=9 dport=53 len=70", &m);
	assert_int_equal(eval_count(p, &m, &act), 0);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		assert_null(parse(bad_cases[i].config, &e));
		errs_reset(&e);
	}
	assert_ptr_equal(policy_set_find(old, "web"), p);
	assert_int_equal(eval_count(p, &m, &act), 0);
	assert_int_equal(act->verdict, NFQB_ACCEPT);
	assert_int_equal(policy_counter(p, 0)->packets, 2);
	assert_int_equal(policy_counter(p, 0)->bytes, 140);
	policy_set_free(old);
}

/* ------------------------------------------------------------------ */
/* Matchers                                                           */
/* ------------------------------------------------------------------ */

#define V4TCP "src=10.0.0.1 dst=10.0.0.2 proto=tcp sport=1234 dport=80"
#define V6TCP "src=2001:db8::1 dst=fd00::2 proto=tcp sport=1234 dport=80"

static const struct match_case {
	const char *match;
	const char *pkt;
	bool hit;
} match_cases[] = {
	{ "{}", V4TCP, true },
	{ "{}", "", true },
	{ "{}", "hook=output mark=7", true },
	/* family */
	{ "{\"family\":\"ipv4\"}", V4TCP, true },
	{ "{\"family\":\"ipv4\"}", V6TCP, false },
	{ "{\"family\":\"ipv6\"}", V6TCP, true },
	{ "{\"family\":\"ipv6\"}", V4TCP, false },
	{ "{\"family\":\"ipv4\"}", "hook=input", false },
	/* proto */
	{ "{\"proto\":\"tcp\"}", V4TCP, true },
	{ "{\"proto\":\"udp\"}", V4TCP, false },
	{ "{\"proto\":6}", V6TCP, true },
	{ "{\"proto\":[\"udp\",\"tcp\"]}", V4TCP, true },
	{ "{\"proto\":[\"udp\",\"icmp\"]}", V4TCP, false },
	{ "{\"proto\":\"icmp\"}", "src=10.0.0.1 dst=10.0.0.2 proto=1", true },
	{ "{\"proto\":\"icmpv6\"}", "src=::1 dst=::2 proto=58", true },
	{ "{\"proto\":\"sctp\"}", "src=::1 dst=::2 proto=132", true },
	{ "{\"proto\":\"udplite\"}", "src=::1 dst=::2 proto=136", true },
	{ "{\"proto\":[\"gre\",\"esp\",\"ah\"]}", "src=::1 dst=::2 proto=51", true },
	{ "{\"proto\":255}", "src=10.0.0.1 dst=10.0.0.2 proto=255", true },
	{ "{\"proto\":254}", "src=10.0.0.1 dst=10.0.0.2 proto=255", false },
	{ "{\"proto\":0}", "", false },   /* not IP: protocol unknown */
	/* src / dst, v4 */
	{ "{\"src\":\"10.0.0.1\"}", V4TCP, true },
	{ "{\"src\":\"10.0.0.2\"}", V4TCP, false },
	{ "{\"src\":\"10.0.0.0/8\"}", "src=10.255.1.1 dst=1.1.1.1", true },
	{ "{\"src\":\"10.0.0.0/8\"}", "src=11.0.0.1 dst=1.1.1.1", false },
	{ "{\"src\":\"10.0.0.0/31\"}", "src=10.0.0.1 dst=1.1.1.1", true },
	{ "{\"src\":\"10.0.0.0/31\"}", "src=10.0.0.2 dst=1.1.1.1", false },
	{ "{\"src\":\"0.0.0.0/0\"}", "src=203.0.113.9 dst=1.1.1.1", true },
	{ "{\"src\":\"0.0.0.0/0\"}", V6TCP, false },
	{ "{\"src\":\"0.0.0.0/0\"}", "mark=1", false },
	{ "{\"dst\":\"10.0.0.2\"}", V4TCP, true },
	{ "{\"dst\":\"10.0.0.1\"}", V4TCP, false },
	{ "{\"src\":\"10.0.0.0/8\",\"dst\":\"10.0.0.0/8\"}", V4TCP, true },
	{ "{\"src\":\"10.0.0.0/8\",\"dst\":\"192.168.0.0/16\"}", V4TCP, false },
	/* src / dst, v6 and mixed lists */
	{ "{\"src\":\"::/0\"}", V6TCP, true },
	{ "{\"src\":\"::/0\"}", V4TCP, false },
	{ "{\"src\":\"2001:db8::/32\"}", "src=2001:db8:ffff::1 dst=::1", true },
	{ "{\"src\":\"2001:db8::/32\"}", "src=2001:db9::1 dst=::1", false },
	{ "{\"src\":\"2001:db8:0:1::/65\"}", "src=2001:db8:0:1:7fff::1 dst=::1", true },
	{ "{\"src\":\"2001:db8:0:1::/65\"}", "src=2001:db8:0:1:8000::1 dst=::1", false },
	{ "{\"src\":\"fe80::1\"}", "src=fe80::1 dst=::1", true },
	{ "{\"src\":\"fe80::1\"}", "src=fe80::2 dst=::1", false },
	{ "{\"dst\":\"fd00::/8\"}", V6TCP, true },
	{ "{\"src\":\"::ffff:10.0.0.1\"}", V4TCP, false },
	{ "{\"src\":[\"192.168.0.0/16\",\"fd00::/8\"]}", "src=fd12::1 dst=::1", true },
	{ "{\"src\":[\"192.168.0.0/16\",\"fd00::/8\"]}", "src=192.168.3.4 dst=1.1.1.1", true },
	{ "{\"src\":[\"192.168.0.0/16\",\"fd00::/8\"]}", V4TCP, false },
	{ "{\"src\":[\"192.168.0.0/16\",\"fd00::/8\"]}", V6TCP, false },
	/* ports */
	{ "{\"dport\":80}", V4TCP, true },
	{ "{\"dport\":81}", V4TCP, false },
	{ "{\"dport\":\"8000-8080\"}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=8000", true },
	{ "{\"dport\":\"8000-8080\"}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=8080", true },
	{ "{\"dport\":\"8000-8080\"}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=7999", false },
	{ "{\"dport\":\"8000-8080\"}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=8081", false },
	{ "{\"dport\":[22,\"8000-8080\"]}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=22", true },
	{ "{\"dport\":[22,\"8000-8080\"]}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=8050", true },
	{ "{\"dport\":[22,\"8000-8080\"]}", "src=1.1.1.1 dst=2.2.2.2 sport=1 dport=23", false },
	{ "{\"dport\":0}", "src=1.1.1.1 dst=2.2.2.2 proto=1", false },   /* no ports */
	{ "{\"sport\":\"0-65535\"}", V6TCP, true },
	{ "{\"sport\":\"0-65535\"}", "src=::1 dst=::2 proto=58", false },
	{ "{\"sport\":1234}", V4TCP, true },
	{ "{\"sport\":80}", V4TCP, false },
	{ "{\"sport\":1234,\"dport\":80}", V4TCP, true },
	{ "{\"sport\":1234,\"dport\":81}", V4TCP, false },
	/* hook */
	{ "{\"hook\":\"input\"}", V4TCP " hook=input", true },
	{ "{\"hook\":\"input\"}", V4TCP " hook=output", false },
	{ "{\"hook\":[\"forward\",\"postrouting\"]}", V4TCP " hook=postrouting", true },
	{ "{\"hook\":[\"forward\",\"postrouting\"]}", V4TCP " hook=prerouting", false },
	{ "{\"hook\":\"output\"}", "hook=output", true },   /* needs no IP header */
	/* indev / outdev */
	{ "{\"indev\":\"eth0\"}", V4TCP " in=eth0", true },
	{ "{\"indev\":\"eth0\"}", V4TCP " in=eth1", false },
	{ "{\"indev\":\"eth0\"}", V4TCP, false },
	{ "{\"indev\":\"eth0\"}", V4TCP " out=eth0", false },
	{ "{\"indev\":[\"eth0\",\"veth1\"]}", V4TCP " in=veth1", true },
	{ "{\"outdev\":\"eth0\"}", V4TCP " out=eth0", true },
	{ "{\"outdev\":\"eth0\"}", V4TCP " in=eth0", false },
	{ "{\"indev\":\"lo\",\"outdev\":\"lo\"}", "in=lo out=lo", true },
	/* mark */
	{ "{\"mark\":42}", V4TCP " mark=42", true },
	{ "{\"mark\":42}", V4TCP " mark=43", false },
	{ "{\"mark\":0}", V4TCP, true },
	{ "{\"mark\":\"0x10/0xf0\"}", V4TCP " mark=0x1f", true },
	{ "{\"mark\":\"0x10/0xf0\"}", V4TCP " mark=0x110", true },
	{ "{\"mark\":\"0x10/0xf0\"}", V4TCP " mark=0x20", false },
	{ "{\"mark\":\"0/0xff\"}", V4TCP " mark=0x100", true },
	{ "{\"mark\":\"0/0xff\"}", V4TCP " mark=1", false },
	{ "{\"mark\":\"16/240\"}", V4TCP " mark=0x1f", true },
	{ "{\"mark\":4294967295}", V4TCP " mark=0xffffffff", true },
	/* connmark: only a packet the kernel sent conntrack data with */
	{ "{\"connmark\":7}", V4TCP " ctmark=7", true },
	{ "{\"connmark\":7}", V4TCP " ctmark=6", false },
	{ "{\"connmark\":7}", V4TCP " mark=7", false },
	{ "{\"connmark\":0}", V4TCP, false },
	{ "{\"connmark\":0}", V4TCP " ctmark=0", true },
	{ "{\"connmark\":\"0x1/0x1\"}", V4TCP " ctmark=0x11", true },
	{ "{\"connmark\":\"0x1/0x1\"}", V4TCP " ctmark=0x10", false },
	{ "{\"connmark\":\"0x1/0x1\",\"mark\":\"0x2/0x2\"}", V4TCP " ctmark=1 mark=2", true },
	{ "{\"connmark\":\"0x1/0x1\",\"mark\":\"0x2/0x2\"}", V4TCP " ctmark=1 mark=1", false },
	{ "{}", V4TCP " ctmark=9", true },
	/* uid / gid: absent is not 0 */
	{ "{\"uid\":1000}", V4TCP " uid=1000", true },
	{ "{\"uid\":1000}", V4TCP " uid=1001", false },
	{ "{\"uid\":1000}", V4TCP, false },
	{ "{\"uid\":0}", V4TCP, false },
	{ "{\"uid\":0}", V4TCP " uid=0", true },
	{ "{\"uid\":[0,1000]}", V4TCP " uid=1000", true },
	{ "{\"gid\":100}", V4TCP " gid=100", true },
	{ "{\"gid\":100}", V4TCP " uid=100", false },
	{ "{\"uid\":1,\"gid\":2}", V4TCP " uid=1 gid=2", true },
	{ "{\"uid\":1,\"gid\":2}", V4TCP " uid=1 gid=3", false },
	/* length */
	{ "{\"length\":\"100-200\"}", V4TCP " len=100", true },
	{ "{\"length\":\"100-200\"}", V4TCP " len=200", true },
	{ "{\"length\":\"100-200\"}", V4TCP " len=99", false },
	{ "{\"length\":\"100-200\"}", V4TCP " len=201", false },
	{ "{\"length\":60}", V4TCP " len=60", true },
	{ "{\"length\":60}", V4TCP " len=61", false },
	{ "{\"length\":\"65536-262144\"}", "len=70000", true },
	/* several keys: all must hold */
	{ "{\"proto\":\"udp\",\"dport\":53,\"src\":\"10.0.0.0/8\"}",
	  "src=10.1.1.1 dst=8.8.8.8 proto=udp sport=5000 dport=53", true },
	{ "{\"proto\":\"udp\",\"dport\":53,\"src\":\"10.0.0.0/8\"}",
	  "src=10.1.1.1 dst=8.8.8.8 proto=tcp sport=5000 dport=53", false },
	{ "{\"proto\":\"udp\",\"dport\":53,\"src\":\"10.0.0.0/8\"}",
	  "src=11.1.1.1 dst=8.8.8.8 proto=udp sport=5000 dport=53", false },
	{ "{\"family\":\"ipv6\",\"hook\":\"forward\",\"outdev\":\"eth0\",\"mark\":\"1/1\","
	  "\"length\":\"0-1500\"}",
	  V6TCP " hook=forward out=eth0 mark=3 len=1500", true },
	{ "{\"family\":\"ipv6\",\"hook\":\"forward\",\"outdev\":\"eth0\",\"mark\":\"1/1\","
	  "\"length\":\"0-1500\"}",
	  V6TCP " hook=forward out=eth0 mark=2 len=1500", false },
};

static void test_matchers(void **state)
{
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		const struct policy_action *act = NULL;
		struct policy_set *s;
		struct pktmeta m;
		char cfg[1024];
		int idx;

		snprintf(cfg, sizeof(cfg), "{\"t\":{\"default\":\"drop\",\"rules\":"
			 "[{\"name\":\"r\",\"match\":%s,\"verdict\":\"accept\"}]}}",
			 c->match);
		s = parse_ok(cfg);
		mkpkt(s, c->pkt, &m);
		idx = eval_count(policy_set_find(s, "t"), &m, &act);
		if ((idx == 0) != c->hit)
			fail_msg("case %zu: match %s, packet \"%s\": want %s", i,
				 c->match, c->pkt, c->hit ? "hit" : "miss");
		assert_non_null(act);
		assert_int_equal(act->verdict, c->hit ? NFQB_ACCEPT : NFQB_DROP);
		policy_set_free(s);
	}
}

/* Parsed bytes through to a verdict: the two modules agree. */
static void test_from_bytes(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"p\":{\"default\":\"drop\",\"rules\":[{\"name\":\"dns6\",\"match\":"
		"{\"family\":\"ipv6\",\"proto\":\"udp\",\"dport\":53,\"dst\":\"fd00::/8\"},"
		"\"verdict\":\"accept\"}]}}");
	uint8_t pkt[40 + 8 + 8] = { 0x60 };
	const struct policy_action *act;
	struct pktmeta m = { .indev_id = -1, .outdev_id = -1 };

	pkt[6] = 44;                       /* fragment header, first fragment */
	inet_pton(AF_INET6, "fd00::1", pkt + 8);
	inet_pton(AF_INET6, "fd00::53", pkt + 24);
	pkt[40] = 17;
	pkt[48 + 1] = 99;                  /* sport 99 */
	pkt[48 + 3] = 53;                  /* dport 53 */
	assert_int_equal(pktmeta_parse_l3(&m, pkt, sizeof(pkt)), 0);
	assert_int_equal(eval_count(policy_set_find(s, "p"), &m, &act), 0);
	pkt[43] = 8;                       /* offset 1: a later fragment */
	assert_int_equal(pktmeta_parse_l3(&m, pkt, sizeof(pkt)), 0);
	assert_int_equal(eval_count(policy_set_find(s, "p"), &m, &act), -1);
	policy_set_free(s);
}

/* ------------------------------------------------------------------ */
/* Evaluation, actions, counters                                      */
/* ------------------------------------------------------------------ */

static const char order_cfg[] =
	"{\"web\":{\"default\":\"queue:3\",\"rules\":["
	"{\"name\":\"http-drop\",\"match\":{\"dport\":80},\"verdict\":\"drop\",\"log\":true},"
	"{\"name\":\"tcp\",\"match\":{\"proto\":\"tcp\"},\"verdict\":\"accept\",\"set_mark\":42},"
	"{\"name\":\"tcp-again\",\"match\":{\"proto\":\"tcp\"},\"verdict\":\"repeat\"}]},"
	" \"other\":{}}";

static void test_first_match_and_actions(void **state)
{
	struct policy_set *s = parse_ok(order_cfg);
	const struct policy *p = policy_set_find(s, "web");
	const struct policy_action *act;
	struct pktmeta m;

	mkpkt(s, V4TCP " len=100", &m);
	assert_int_equal(eval_count(p, &m, &act), 0);
	assert_int_equal(act->verdict, NFQB_DROP);
	assert_true(act->log);
	assert_false(act->set_mark);

	mkpkt(s, "src=1.1.1.1 dst=2.2.2.2 proto=tcp sport=1 dport=443 len=60", &m);
	assert_int_equal(eval_count(p, &m, &act), 1);
	assert_int_equal(act->verdict, NFQB_ACCEPT);
	assert_true(act->set_mark);
	assert_int_equal(act->mark, 42);
	assert_false(act->log);

	mkpkt(s, "src=1.1.1.1 dst=2.2.2.2 proto=udp sport=1 dport=80 len=10", &m);
	assert_int_equal(eval_count(p, &m, &act), 0);     /* dport alone */

	mkpkt(s, "src=1.1.1.1 dst=2.2.2.2 proto=1 len=84", &m);
	assert_int_equal(eval_count(p, &m, &act), -1);
	assert_int_equal(act->verdict, NFQB_QUEUE | 3u << 16);
	assert_false(act->set_mark);
	assert_false(act->log);

	/* A policy with nothing in it accepts. */
	assert_int_equal(eval_count(policy_set_find(s, "other"), &m, &act), -1);
	assert_int_equal(act->verdict, NFQB_ACCEPT);

	/* Counters: rule 0 twice (100 + 10), rule 1 once, rule 2 never. */
	assert_int_equal(policy_counter(p, 0)->packets, 2);
	assert_int_equal(policy_counter(p, 0)->bytes, 110);
	assert_int_equal(policy_counter(p, 1)->packets, 1);
	assert_int_equal(policy_counter(p, 1)->bytes, 60);
	assert_int_equal(policy_counter(p, 2)->packets, 0);
	assert_int_equal(policy_counter(p, -1)->packets, 1);
	assert_int_equal(policy_counter(p, -1)->bytes, 84);
	assert_null(policy_counter(p, 3));
	assert_null(policy_counter(p, -2));
	policy_set_free(s);
}

static void test_accessors(void **state)
{
	struct policy_set *s = parse_ok(order_cfg);
	const struct policy *p;
	char buf[POLICY_VERDICT_NAME_MAX];

	assert_int_equal(policy_set_count(s), 2);
	assert_string_equal(policy_name(policy_set_at(s, 0)), "web");
	assert_string_equal(policy_name(policy_set_at(s, 1)), "other");
	assert_null(policy_set_at(s, 2));
	assert_null(policy_set_find(s, "nope"));
	assert_null(policy_set_find(s, "we"));
	p = policy_set_find(s, "web");
	assert_int_equal(policy_rule_count(p), 3);
	assert_string_equal(policy_rule_name(p, -1), "(default)");
	assert_string_equal(policy_rule_name(p, 0), "http-drop");
	assert_string_equal(policy_rule_name(p, 2), "tcp-again");
	assert_null(policy_rule_name(p, 3));
	assert_null(policy_rule_name(p, -2));
	assert_int_equal(policy_rule_count(policy_set_find(s, "other")), 0);
	assert_string_equal(policy_verdict_name(NFQB_ACCEPT, buf, sizeof(buf)), "accept");
	assert_string_equal(policy_verdict_name(NFQB_DROP, buf, sizeof(buf)), "drop");
	assert_string_equal(policy_verdict_name(NFQB_REPEAT, buf, sizeof(buf)), "repeat");
	assert_string_equal(policy_verdict_name(NFQB_QUEUE | 65535u << 16, buf, sizeof(buf)),
			    "queue:65535");
	assert_int_equal(policy_set_count(NULL), 0);
	assert_null(policy_set_find(NULL, "web"));
	policy_set_free(s);
	policy_set_free(NULL);
}

static void test_ifname_ids(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"a\":{\"rules\":[{\"name\":\"r\",\"match\":{\"indev\":\"eth0\"},"
		"\"verdict\":\"drop\"}]},"
		" \"b\":{\"rules\":[{\"name\":\"r\",\"match\":{\"outdev\":[\"veth-x1\",\"eth0\"],"
		"\"indev\":\"fifteen-chars-x\"},\"verdict\":\"drop\"}]}}");
	int32_t eth0 = policy_ifname_id(s, "eth0");
	int32_t veth = policy_ifname_id(s, "veth-x1");
	int32_t longname = policy_ifname_id(s, "fifteen-chars-x");

	/* One id per distinct name across the whole set. */
	assert_true(eth0 >= 0 && veth >= 0 && longname >= 0);
	assert_true(eth0 != veth && veth != longname && eth0 != longname);
	assert_int_equal(policy_ifname_id(s, "eth1"), -1);
	assert_int_equal(policy_ifname_id(s, "eth"), -1);
	assert_int_equal(policy_ifname_id(s, ""), -1);
	assert_int_equal(policy_ifname_id(NULL, "eth0"), -1);
	assert_int_equal(policy_ifname_id(s, NULL), -1);
	policy_set_free(s);
}

static void count(const struct policy_set *s, const char *pol, const char *pkt, int times)
{
	const struct policy *p = policy_set_find(s, pol);
	const struct policy_action *act;
	struct pktmeta m;

	assert_non_null(p);
	mkpkt(s, pkt, &m);
	for (int i = 0; i < times; i++)
		eval_count(p, &m, &act);
}

static void test_carry_counters(void **state)
{
	struct policy_set *old = parse_ok(
		"{\"web\":{\"default\":\"drop\",\"rules\":["
		"{\"name\":\"a\",\"match\":{\"dport\":1},\"verdict\":\"accept\"},"
		"{\"name\":\"b\",\"match\":{\"dport\":2},\"verdict\":\"accept\"},"
		"{\"name\":\"c\",\"match\":{\"dport\":3},\"verdict\":\"accept\"}]},"
		" \"gone\":{\"rules\":[{\"name\":\"a\",\"verdict\":\"drop\"}]}}");
	struct policy_set *new = parse_ok(
		"{\"web\":{\"default\":\"accept\",\"rules\":["
		"{\"name\":\"b\",\"match\":{\"dport\":22},\"verdict\":\"drop\"},"
		"{\"name\":\"a\",\"match\":{\"dport\":1},\"verdict\":\"accept\"},"
		"{\"name\":\"d\",\"match\":{\"dport\":3},\"verdict\":\"accept\"}]},"
		" \"renamed\":{\"rules\":[{\"name\":\"a\",\"verdict\":\"drop\"}]}}");
	const struct policy *w;

	count(old, "web", "src=1.1.1.1 dst=2.2.2.2 sport=9 dport=1 len=10", 3);
	count(old, "web", "src=1.1.1.1 dst=2.2.2.2 sport=9 dport=2 len=20", 5);
	count(old, "web", "src=1.1.1.1 dst=2.2.2.2 sport=9 dport=3 len=30", 7);
	count(old, "web", "src=1.1.1.1 dst=2.2.2.2 sport=9 dport=4 len=40", 2);
	count(old, "gone", "len=1", 4);

	policy_set_carry_counters(new, old);
	w = policy_set_find(new, "web");
	assert_int_equal(policy_counter(w, 0)->packets, 5);    /* b, moved */
	assert_int_equal(policy_counter(w, 0)->bytes, 100);
	assert_int_equal(policy_counter(w, 1)->packets, 3);    /* a */
	assert_int_equal(policy_counter(w, 1)->bytes, 30);
	assert_int_equal(policy_counter(w, 2)->packets, 0);    /* d is new */
	assert_int_equal(policy_counter(w, -1)->packets, 2);   /* default kept */
	assert_int_equal(policy_counter(w, -1)->bytes, 80);
	assert_int_equal(policy_counter(policy_set_find(new, "renamed"), 0)->packets, 0);
	/* Counting goes on from the carried values; the old set is untouched. */
	count(new, "web", "src=1.1.1.1 dst=2.2.2.2 sport=9 dport=1 len=10", 1);
	assert_int_equal(policy_counter(w, 1)->packets, 4);
	assert_int_equal(policy_counter(policy_set_find(old, "web"), 0)->packets, 3);
	assert_int_equal(policy_set_carry_counters(new, NULL), 0);
	assert_int_equal(policy_set_carry_counters(NULL, old), 0);
	policy_set_free(old);
	policy_set_free(new);
}

/* A "policies" text of policy "big" with @n rules named r<i>, in reverse
 * order when @reverse; @dup makes the last rule's name repeat the first's. */
static char *big_policy(size_t n, bool reverse, bool dup)
{
	size_t cap = 64 + n * 64, len = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	len += (size_t)snprintf(t + len, cap - len, "{\"big\":{\"rules\":[");
	for (size_t i = 0; i < n; i++) {
		size_t k = reverse ? n - 1 - i : i;

		if (dup && i == n - 1)
			k = reverse ? n - 1 : 0;
		len += (size_t)snprintf(t + len, cap - len, "%s{\"name\":\"r%zu\","
					"\"match\":{\"dport\":%zu},\"verdict\":\"drop\"}",
					i ? "," : "", k, k % 65535 + 1);
	}
	snprintf(t + len, cap - len, "]}}");
	return t;
}

/* 20,000 rules: names carried over by name (reordered), duplicates still
 * found, in O(rules) (the time is only measured by bench-reload). */
static void test_carry_counters_many(void **state)
{
	enum { N = 20000 };
	char *a = big_policy(N, false, false), *b = big_policy(N, true, false);
	char *d = big_policy(N, false, true), want[128];
	struct policy_set *old = parse_ok(a), *new = parse_ok(b), *bad;
	const struct policy *po = policy_set_find(old, "big"), *pn = policy_set_find(new, "big");
	struct errs e = { 0 };

	for (int i = 0; i < N; i++)
		((struct policy_counter *)policy_counter(po, i))->packets = (uint64_t)i + 1;
	assert_int_equal(policy_set_carry_counters(new, old), 0);
	for (int i = 0; i < N; i++) {
		/* new rule i is old rule N-1-i */
		assert_int_equal(policy_counter(pn, i)->packets, N - i);
		assert_int_equal(strtoul(policy_rule_name(pn, i) + 1, NULL, 10), N - 1 - i);
	}
	bad = parse(d, &e);
	assert_null(bad);
	assert_int_equal(e.n, 1);
	snprintf(want, sizeof(want), "policies.big.rules[%d].name: duplicate rule name "
		 "\"r0\" (also rules[0])", N - 1);
	assert_string_equal(e.lines[0], want);
	errs_reset(&e);
	policy_set_free(old);
	policy_set_free(new);
	free(a);
	free(b);
	free(d);
	(void)state;
}

static void test_interface_example(void **state)
{
	/* The "policies" of docs/interface.md §2 as written there. */
	struct policy_set *s = parse_ok(
		"{\"default\": { \"default\": \"accept\", \"rules\": [] },"
		" \"web\": { \"default\": \"drop\", \"rules\": ["
		"  { \"name\": \"dns\",  \"match\": { \"proto\": \"udp\", \"dport\": 53 },"
		"    \"verdict\": \"accept\" },"
		"  { \"name\": \"ssh\",  \"match\": { \"proto\": \"tcp\", \"dport\": [22, \"8000-8080\"],"
		"    \"src\": \"10.0.0.0/8\" }, \"verdict\": \"accept\", \"set_mark\": 42 },"
		"  { \"name\": \"noisy\", \"match\": { \"proto\": \"icmp\" }, \"verdict\": \"drop\","
		"    \"log\": true } ] } }");
	const struct policy_action *act;
	struct pktmeta m;

	mkpkt(s, "src=10.2.3.4 dst=10.0.0.9 proto=tcp sport=40000 dport=8080", &m);
	assert_int_equal(eval_count(policy_set_find(s, "web"), &m, &act), 1);
	assert_int_equal(act->mark, 42);
	mkpkt(s, "src=10.2.3.4 dst=10.0.0.9 proto=icmp", &m);
	assert_int_equal(eval_count(policy_set_find(s, "web"), &m, &act), 2);
	assert_true(act->log);
	policy_set_free(s);
}

static void test_eval_allocates_nothing(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"p\":{\"default\":\"drop\",\"rules\":["
		"{\"name\":\"a\",\"match\":{\"src\":[\"10.0.0.0/8\",\"fd00::/8\"],"
		"\"dport\":[1,\"2-9\"],\"indev\":\"eth0\",\"uid\":[1,2]},\"verdict\":\"accept\"},"
		"{\"name\":\"b\",\"match\":{\"mark\":\"1/1\",\"length\":\"1-9\"},"
		"\"verdict\":\"accept\",\"log\":true}]}}");
	const struct policy *p = policy_set_find(s, "p");
	const struct policy_action *act;
	struct pktmeta m[3];
	unsigned long before;

	if (!COUNT_ALLOCS) {
		policy_set_free(s);
		skip();
	}
	mkpkt(s, "src=10.0.0.1 dst=10.0.0.2 sport=1 dport=5 in=eth0 uid=2", &m[0]);
	mkpkt(s, "src=fd00::1 dst=::2 mark=3 len=5", &m[1]);
	mkpkt(s, "len=5000", &m[2]);
	/* The counter must see a real allocation, or the check below proves nothing. */
	before = n_allocs;
	free(malloc(16));
	assert_int_equal(n_allocs, before + 1);

	before = n_allocs;
	for (int i = 0; i < 30000; i++)
		eval_count(p, &m[i % 3], &act);
	assert_int_equal(n_allocs, before);
	assert_int_equal(policy_counter(p, 0)->packets, 10000);
	assert_int_equal(policy_counter(p, 1)->packets, 10000);
	assert_int_equal(policy_counter(p, -1)->packets, 10000);
	policy_set_free(s);
}

/* ------------------------------------------------------------------ */
/* Audit mode, log limits, comments, connmarks                        */
/* ------------------------------------------------------------------ */

static void test_mode_and_default_action(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"a\":{\"mode\":\"audit\",\"default\":{\"verdict\":\"drop\",\"log\":true,"
		"\"comment\":\"fell through\",\"set_mark\":5}},"
		" \"e\":{\"mode\":\"enforce\"}, \"plain\":{\"default\":\"drop\"}}");
	const struct policy *a = policy_set_find(s, "a");
	const struct policy_action *d = policy_action_at(a, -1);

	assert_true(policy_audit(a));
	assert_false(policy_audit(policy_set_find(s, "e")));
	assert_false(policy_audit(policy_set_find(s, "plain")));
	assert_int_equal(d->verdict, NFQB_DROP);
	assert_true(d->log);
	assert_true(d->set_mark);
	assert_int_equal(d->mark, 5);
	assert_string_equal(d->comment, "fell through");
	/* "log": true means the default limit, 10 a second, bursts of 10 */
	assert_int_equal(d->limit.cost_ns, 100000000);
	assert_int_equal(d->limit.burst, POLICY_LOG_BURST_DEFAULT);
	d = policy_action_at(policy_set_find(s, "plain"), -1);
	assert_int_equal(d->verdict, NFQB_DROP);
	assert_false(d->log);
	assert_null(d->comment);
	assert_null(policy_action_at(a, 0));
	assert_null(policy_action_at(a, -2));
	policy_set_free(s);
}

static void test_comments(void **state)
{
	char long_c[POLICY_COMMENT_MAX + 2], cfg[POLICY_COMMENT_MAX + 200];
	struct errs e = { 0 };
	struct policy_set *s;

	memset(long_c, 'x', sizeof(long_c));
	long_c[POLICY_COMMENT_MAX] = '\0';          /* exactly the maximum: fine */
	snprintf(cfg, sizeof(cfg), "{\"p\":{\"rules\":[{\"name\":\"r\",\"verdict\":\"accept\","
		 "\"comment\":\"%s\"}]}}", long_c);
	s = parse_ok(cfg);
	assert_int_equal(strlen(policy_action_at(policy_set_find(s, "p"), 0)->comment),
			 POLICY_COMMENT_MAX);
	policy_set_free(s);
	long_c[POLICY_COMMENT_MAX] = 'x';
	long_c[POLICY_COMMENT_MAX + 1] = '\0';
	snprintf(cfg, sizeof(cfg), "{\"p\":{\"rules\":[{\"name\":\"r\",\"verdict\":\"accept\","
		 "\"comment\":\"%s\"}]}}", long_c);
	assert_null(parse(cfg, &e));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.lines[0], "policies.p.rules[0].comment: comment of 257 bytes "
			    "is longer than 256");
	errs_reset(&e);
	/* UTF-8 is text, not control characters */
	s = parse_ok("{\"p\":{\"rules\":[{\"name\":\"r\",\"verdict\":\"accept\","
		     "\"comment\":\"caf\\u00e9 \\\"quoted\\\"\"}]}}");
	assert_string_equal(policy_action_at(policy_set_find(s, "p"), 0)->comment,
			    "caf\xc3\xa9 \"quoted\"");
	policy_set_free(s);
}

static void test_log_rates(void **state)
{
	static const struct {
		const char *rate;
		uint64_t cost_ns;
	} rates[] = {
		{ "10/second", 100000000ull }, { "1/s", 1000000000ull },
		{ "3/min", 20000000000ull }, { "60/minute", 1000000000ull },
		{ "1/h", 3600000000000ull }, { "2/hour", 1800000000000ull },
		{ "1/d", 86400000000000ull }, { "1000000/sec", 1000ull },
		{ "unlimited", 0 },
	};

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		char cfg[256];
		struct policy_set *s;
		const struct policy_action *a;

		snprintf(cfg, sizeof(cfg), "{\"p\":{\"rules\":[{\"name\":\"r\",\"verdict\":"
			 "\"accept\",\"log\":{\"rate\":\"%s\",\"burst\":3}}]}}", rates[i].rate);
		s = parse_ok(cfg);
		a = policy_action_at(policy_set_find(s, "p"), 0);
		assert_true(a->log);
		assert_int_equal(a->limit.cost_ns, rates[i].cost_ns);
		assert_int_equal(a->limit.burst, 3);
		policy_set_free(s);
	}
}

/* The token bucket: a burst, then one line per cost, the held-back count
 * reported once and counted in total. */
static void test_log_limit(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"p\":{\"default\":{\"verdict\":\"accept\",\"log\":{\"rate\":\"unlimited\"}},"
		"\"rules\":[{\"name\":\"r\",\"verdict\":\"accept\","
		"\"log\":{\"rate\":\"2/second\",\"burst\":3}},"
		"{\"name\":\"quiet\",\"verdict\":\"drop\"}]}}");
	const struct policy *p = policy_set_find(s, "p");
	const uint64_t t0 = 5000000000ull, sec = 1000000000ull;
	uint64_t held = 99;
	unsigned long before;

	before = n_allocs;
	for (int i = 0; i < 3; i++) {
		assert_true(policy_log_take(p, 0, t0, &held));
		assert_int_equal(held, 0);
	}
	assert_false(policy_log_take(p, 0, t0, &held));
	assert_false(policy_log_take(p, 0, t0 + sec / 4, &held));
	/* half a second: one token back */
	assert_true(policy_log_take(p, 0, t0 + sec / 2, &held));
	assert_int_equal(held, 2);
	assert_false(policy_log_take(p, 0, t0 + sec / 2 + 1, &held));
	/* a long pause refills to the burst, no more */
	for (int i = 0; i < 3; i++) {
		assert_true(policy_log_take(p, 0, t0 + 100 * sec, &held));
		assert_int_equal(held, i == 0 ? 1 : 0);
	}
	assert_false(policy_log_take(p, 0, t0 + 100 * sec, &held));
	assert_int_equal(policy_counter(p, 0)->log_suppressed, 4);
	/* a clock that goes back does not stall the bucket */
	assert_true(policy_log_take(p, 0, t0, &held));
	assert_int_equal(held, 1);
	/* unlimited: every line */
	for (int i = 0; i < 1000; i++)
		assert_true(policy_log_take(p, -1, t0, &held));
	assert_int_equal(policy_counter(p, -1)->log_suppressed, 0);
	/* the rule without "log" has the default limit (audit lines) */
	for (unsigned i = 0; i < POLICY_LOG_BURST_DEFAULT; i++)
		assert_true(policy_log_take(p, 1, t0, &held));
	assert_false(policy_log_take(p, 1, t0, &held));
	assert_true(policy_log_take(p, 1, t0 + sec / 10, &held));
	assert_int_equal(held, 1);
	assert_false(policy_log_take(p, 7, t0, &held));
	if (COUNT_ALLOCS)
		assert_int_equal(n_allocs, before);
	policy_set_free(s);
}

static void test_would_drop_counted_and_carried(void **state)
{
	const char *cfg = "{\"p\":{\"mode\":\"audit\",\"default\":\"drop\","
			  "\"rules\":[{\"name\":\"r\",\"match\":{\"dport\":22},\"verdict\":\"drop\"}]}}";
	struct policy_set *s = parse_ok(cfg), *n;
	const struct policy *p = policy_set_find(s, "p");

	policy_count_would_drop(p, 0);
	policy_count_would_drop(p, 0);
	policy_count_would_drop(p, -1);
	policy_count_would_drop(p, 5);         /* out of range: ignored */
	policy_count_would_drop(p, -3);
	assert_int_equal(policy_counter(p, 0)->would_drop, 2);
	assert_int_equal(policy_counter(p, -1)->would_drop, 1);
	n = parse_ok("{\"p\":{\"default\":\"drop\",\"rules\":[{\"name\":\"r\","
		     "\"verdict\":\"drop\"}]}}");
	assert_int_equal(policy_set_carry_counters(n, s), 0);
	p = policy_set_find(n, "p");
	assert_false(policy_audit(p));
	assert_int_equal(policy_counter(p, 0)->would_drop, 2);
	assert_int_equal(policy_counter(p, -1)->would_drop, 1);
	policy_set_free(n);
	policy_set_free(s);
}

static void test_connmark_actions(void **state)
{
	struct policy_set *s = parse_ok(
		"{\"c\":{\"rules\":[{\"name\":\"once\",\"verdict\":\"accept\",\"set_connmark\":1},"
		"{\"name\":\"both\",\"verdict\":\"repeat\",\"set_mark\":16,\"set_connmark\":2},"
		"{\"name\":\"q\",\"verdict\":\"queue:3\",\"set_connmark\":4294967295}]},"
		" \"m\":{\"rules\":[{\"name\":\"seen\",\"match\":{\"connmark\":\"1/1\"},"
		"\"verdict\":\"accept\"}]},"
		" \"d\":{\"default\":{\"verdict\":\"accept\",\"set_connmark\":8}},"
		" \"none\":{\"rules\":[{\"name\":\"x\",\"match\":{\"mark\":1},\"verdict\":\"drop\"}]}}");
	const struct policy *c = policy_set_find(s, "c");

	assert_int_equal(policy_action_at(c, 0)->connmark, 1);
	assert_false(policy_action_at(c, 0)->set_mark);
	assert_int_equal(policy_action_at(c, 1)->connmark, 2);
	assert_int_equal(policy_action_at(c, 1)->mark, 16);
	assert_int_equal(policy_action_at(c, 2)->connmark, UINT32_MAX);
	assert_int_equal(policy_action_at(c, -1)->connmark, 0);
	assert_true(policy_sets_connmark(c));
	assert_false(policy_uses_connmark(c));
	assert_true(policy_uses_connmark(policy_set_find(s, "m")));
	assert_false(policy_sets_connmark(policy_set_find(s, "m")));
	assert_true(policy_sets_connmark(policy_set_find(s, "d")));
	assert_false(policy_sets_connmark(policy_set_find(s, "none")));
	assert_false(policy_uses_connmark(policy_set_find(s, "none")));
	policy_set_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_missing_policies),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_errors_appended),
		cmocka_unit_test(test_bad_reload_harms_nothing),
		cmocka_unit_test(test_matchers),
		cmocka_unit_test(test_from_bytes),
		cmocka_unit_test(test_first_match_and_actions),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_ifname_ids),
		cmocka_unit_test(test_eval_counts_nothing),
		cmocka_unit_test(test_docs_list_every_match_key),
		cmocka_unit_test(test_carry_counters),
		cmocka_unit_test(test_carry_counters_many),
		cmocka_unit_test(test_interface_example),
		cmocka_unit_test(test_eval_allocates_nothing),
		cmocka_unit_test(test_mode_and_default_action),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_log_rates),
		cmocka_unit_test(test_log_limit),
		cmocka_unit_test(test_would_drop_counted_and_carried),
		cmocka_unit_test(test_connmark_actions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
