/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/watch.c: JSON string escaping (cut short only
 * between escapes), the event line of a packet (every field, checked by
 * parsing it back with json-c).
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
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "session-private.h"
#include "watch.h"

/* ------------------------------------------------------------ json strings */

static void assert_json_string(const char *lit, const char *expect)
{
	json_object *o = json_tokener_parse(lit);

	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_string));
	assert_string_equal(json_object_get_string(o), expect);
	json_object_put(o);
}

static void test_json_str_escapes(void **state)
{
	char buf[128];
	size_t n;

	n = watch_json_str(buf, sizeof(buf), "pod-a");
	assert_string_equal(buf, "\"pod-a\"");
	assert_int_equal(n, 7);
	watch_json_str(buf, sizeof(buf), "a\"b\\c\nd\te\x01" "f\x7f");
	assert_string_equal(buf, "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007f\"");
	assert_json_string(buf, "a\"b\\c\nd\te\x01" "f\x7f");
	/* UTF-8 passes through unchanged. */
	watch_json_str(buf, sizeof(buf), "p\xc3\xa4" "d");
	assert_json_string(buf, "p\xc3\xa4" "d");
	n = watch_json_str(buf, sizeof(buf), NULL);
	assert_string_equal(buf, "null");
	assert_int_equal(n, 4);
	n = watch_json_str(buf, sizeof(buf), "");
	assert_string_equal(buf, "\"\"");
	assert_int_equal(n, 2);
}

static void test_json_str_truncation(void **state)
{
	const char *s = "ab\"\"\"\"\x01\x01\x01xyz";
	char buf[64];

	/* Every size gives valid JSON, a prefix of the string, never half an escape. */
	for (size_t len = 3; len < 40; len++) {
		json_object *o;
		size_t n;

		memset(buf, 'X', sizeof(buf));
		n = watch_json_str(buf, len, s);
		assert_true(n < len);
		assert_int_equal(buf[n], '\0');
		o = json_tokener_parse(buf);
		assert_non_null(o);
		assert_true(strncmp(json_object_get_string(o), s,
				    strlen(json_object_get_string(o))) == 0);
		json_object_put(o);
		assert_int_equal(buf[len], 'X');   /* nothing written past @len */
	}
	assert_int_equal(watch_json_str(buf, 2, "a"), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(watch_json_str(buf, 0, "a"), 0);
	assert_int_equal(watch_json_str(buf, 4, NULL), 0);
}

/* ------------------------------------------------------------ events */

struct fx {
	struct policy_set *ps;
	struct session s;
	struct links *links;
};

static const char policies[] =
	"{\"web\": {\"default\": \"drop\", \"rules\": ["
	"{\"name\": \"dns\", \"match\": {\"proto\": \"udp\", \"dport\": 53}, \"verdict\": \"accept\"},"
	"{\"name\": \"mark\", \"match\": {\"proto\": \"tcp\"}, \"verdict\": \"accept\", \"set_mark\": 42}]}}";

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct errs e = { 0 };
	json_object *o = json_tokener_parse(policies);
	char buf[512] __attribute__((aligned(4))) = { 0 };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	if (!f || !o)
		return -1;
	f->ps = policy_set_parse(o, &e);
	json_object_put(o);
	if (!f->ps || e.n)
		return -1;
	f->links = links_new();
	/* One known interface: index 3 is "veth0". */
	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = 3;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "veth0");
	links_handle(f->links, f->ps, buf, nlh->nlmsg_len);
	snprintf(f->s.name, sizeof(f->s.name), "pod-a");
	f->s.policy = policy_set_find(f->ps, "web");
	f->s.links = f->links;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	links_free(f->links);
	policy_set_free(f->ps);
	free(f);
	return 0;
}

static struct pktmeta udp_meta(void)
{
	struct pktmeta m = {
		.family = 4, .proto = 17, .hook = NFQB_HOOK_INPUT, .has_ports = true,
		.sport = 40000, .dport = 53, .len = 61, .mark = 7, .indev_id = -1,
		.outdev_id = -1,
	};

	inet_pton(AF_INET, "10.1.0.1", m.src);
	inet_pton(AF_INET, "10.1.0.2", m.dst);
	return m;
}

static json_object *parse_line(const char *line, size_t n)
{
	json_object *o;

	assert_true(n > 2);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	o = json_tokener_parse(line);
	assert_non_null(o);
	return o;
}

static const char *field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("key %s missing", key);
	return json_object_is_type(v, json_type_null) ? "null" : json_object_get_string(v);
}

static void test_format_udp(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet p = { .id = 77, .queue_num = 5, .hook = NFQB_HOOK_INPUT,
				 .ifindex = { 3, 0 } };
	struct pktmeta m = udp_meta();
	const struct policy_action *act;
	char line[WATCH_EVENT_MAX];
	json_object *o;
	int rule = policy_eval(f->s.policy, &m, &act);
	size_t n;

	assert_int_equal(rule, 0);
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_string_equal(field(o, "ns"), "pod-a");
	assert_string_equal(field(o, "queue"), "5");
	assert_string_equal(field(o, "id"), "77");
	assert_string_equal(field(o, "hook"), "input");
	assert_string_equal(field(o, "family"), "ipv4");
	assert_string_equal(field(o, "proto"), "udp");
	assert_string_equal(field(o, "src"), "10.1.0.1");
	assert_string_equal(field(o, "dst"), "10.1.0.2");
	assert_string_equal(field(o, "sport"), "40000");
	assert_string_equal(field(o, "dport"), "53");
	assert_string_equal(field(o, "len"), "61");
	assert_string_equal(field(o, "indev"), "veth0");
	assert_string_equal(field(o, "outdev"), "null");
	assert_string_equal(field(o, "mark"), "7");
	assert_string_equal(field(o, "policy"), "web");
	assert_string_equal(field(o, "rule"), "dns");
	assert_string_equal(field(o, "verdict"), "accept");
	assert_false(json_object_object_get_ex(o, "error", NULL));
	json_object_put(o);
}

static void test_format_mark_default_error(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet p = { .id = 1, .queue_num = 0, .hook = NFQB_HOOK_OUTPUT,
				 .ifindex = { 0, 9 } };
	struct pktmeta m = udp_meta();
	const struct policy_action *act;
	char line[WATCH_EVENT_MAX];
	json_object *o;
	int rule;
	size_t n;

	/* tcp: rule "mark" sets mark 42; ifindex 9 has no known name. */
	m.proto = 6;
	m.hook = NFQB_HOOK_OUTPUT;
	rule = policy_eval(f->s.policy, &m, &act);
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, -ENOBUFS);
	o = parse_line(line, n);
	assert_string_equal(field(o, "rule"), "mark");
	assert_string_equal(field(o, "mark"), "42");
	assert_string_equal(field(o, "proto"), "tcp");
	assert_string_equal(field(o, "hook"), "output");
	assert_string_equal(field(o, "indev"), "null");
	assert_string_equal(field(o, "outdev"), "9");
	assert_string_equal(field(o, "error"), strerror(ENOBUFS));
	json_object_put(o);

	/* Not IP: no family, addresses, proto or ports; the default decides. */
	memset(&m, 0, sizeof(m));
	m.len = 20;
	m.hook = NFQB_HOOK_OUTPUT;
	rule = policy_eval(f->s.policy, &m, &act);
	assert_int_equal(rule, -1);
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_string_equal(field(o, "family"), "null");
	assert_string_equal(field(o, "proto"), "null");
	assert_string_equal(field(o, "src"), "null");
	assert_string_equal(field(o, "sport"), "null");
	assert_string_equal(field(o, "dport"), "null");
	assert_string_equal(field(o, "rule"), "(default)");
	assert_string_equal(field(o, "verdict"), "drop");
	assert_string_equal(field(o, "hook"), "output");
	json_object_put(o);
}

static void test_format_ipv6_long_name(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet p = { .id = 2, .queue_num = 65535, .hook = 9 };
	struct pktmeta m = udp_meta();
	const struct policy_action *act;
	char line[WATCH_EVENT_MAX], small[64];
	json_object *o;
	int rule;
	size_t n;

	/* The longest name an agent can have, full of characters to escape. */
	memset(f->s.name, '"', sizeof(f->s.name) - 1);
	f->s.name[sizeof(f->s.name) - 1] = '\0';
	m.family = 6;
	m.hook = 9;
	inet_pton(AF_INET6, "fd00::1", m.src);
	inet_pton(AF_INET6, "fd00::2", m.dst);
	rule = policy_eval(f->s.policy, &m, &act);
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_string_equal(field(o, "ns"), f->s.name);
	assert_string_equal(field(o, "family"), "ipv6");
	assert_string_equal(field(o, "src"), "fd00::1");
	assert_string_equal(field(o, "queue"), "65535");
	assert_string_equal(field(o, "hook"), "null");   /* unknown hook number */
	json_object_put(o);
	/* Too small a buffer: nothing, never a cut line. */
	assert_int_equal(watch_format(small, sizeof(small), &f->s, &p, &m, rule, act, 0), 0);
}

/* The worst-case names: every byte a control byte (escaped to 6), still one line. */
static void test_format_worst_case(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet p = { .id = UINT32_MAX, .queue_num = 65535, .hook = NFQB_HOOK_INPUT };
	struct pktmeta m = udp_meta();
	const struct policy_action *act;
	char line[WATCH_EVENT_MAX];
	int rule;

	memset(f->s.name, '\x01', sizeof(f->s.name) - 1);
	f->s.name[sizeof(f->s.name) - 1] = '\0';
	m.family = 6;
	m.proto = 6;
	m.tcp_flags = 0xff;
	m.has_uid = m.has_gid = true;
	m.uid = m.gid = UINT32_MAX;
	rule = policy_eval(f->s.policy, &m, &act);
	assert_true(watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, -ENOBUFS) > 0);
}

/* ts (unix time with microseconds), tcp_flags as tcpdump writes them, uid/gid. */
static void test_format_tcp_uid(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet p = { .id = 1, .queue_num = 1, .hook = NFQB_HOOK_OUTPUT };
	struct pktmeta m = udp_meta();
	const struct policy_action *act;
	char line[WATCH_EVENT_MAX];
	json_object *o, *ts;
	struct timespec now;
	int rule;
	size_t n;

	m.proto = 6;
	m.tcp_flags = 0x12;          /* SYN|ACK */
	m.has_uid = true;
	m.uid = 1000;
	rule = policy_eval(f->s.policy, &m, &act);
	clock_gettime(CLOCK_REALTIME, &now);
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_int_equal(strncmp(line, "{\"ts\":", 6), 0);
	assert_true(json_object_object_get_ex(o, "ts", &ts));
	assert_true(json_object_is_type(ts, json_type_double));
	assert_true(json_object_get_double(ts) >= (double)now.tv_sec - 1 &&
		    json_object_get_double(ts) <= (double)now.tv_sec + 2);
	assert_string_equal(field(o, "tcp_flags"), "S.");
	assert_string_equal(field(o, "uid"), "1000");
	assert_false(json_object_object_get_ex(o, "gid", NULL));
	json_object_put(o);

	m.tcp_flags = 0x19;          /* FIN|PSH|ACK */
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_string_equal(field(o, "tcp_flags"), "FP.");
	json_object_put(o);
	m.tcp_flags = 0;
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_string_equal(field(o, "tcp_flags"), "-");
	json_object_put(o);
	/* UDP: no tcp_flags key at all. */
	m = udp_meta();
	rule = policy_eval(f->s.policy, &m, &act);
	n = watch_format(line, sizeof(line), &f->s, &p, &m, rule, act, 0);
	o = parse_line(line, n);
	assert_false(json_object_object_get_ex(o, "tcp_flags", NULL));
	assert_false(json_object_object_get_ex(o, "uid", NULL));
	json_object_put(o);
}

/* ------------------------------------------------------------ filters */

static int filter_of(const char *json, struct watch_filter *wf, char *err, size_t errlen)
{
	json_object *o = json_tokener_parse(json);
	int rc;

	assert_non_null(o);
	err[0] = '\0';
	rc = watch_filter_parse(wf, o, err, errlen);
	json_object_put(o);
	return rc;
}

static void test_filter_errors(void **state)
{
	static const struct { const char *json, *err; } cases[] = {
		{ "{\"ns\":5}", "bad \"ns\" filter: not a string" },
		{ "{\"ns\":\"\"}", "bad \"ns\" filter: empty" },
		{ "{\"policy\":[1]}", "bad \"policy\" filter: not a string" },
		{ "{\"rule\":\"\"}", "bad \"rule\" filter: empty" },
		{ "{\"verdict\":\"allow\"}",
		  "bad \"verdict\" filter: \"allow\" is not a verdict (accept, drop, repeat, queue)" },
		{ "{\"verdict\":\"queue:3\"}",
		  "bad \"verdict\" filter: \"queue:3\" is not a verdict (accept, drop, repeat, queue)" },
		{ "{\"proto\":\"tcpp\"}", "bad \"proto\" filter: \"tcpp\" is not a protocol (tcp, "
		  "udp, icmp, icmpv6, sctp, udplite, gre, esp, ah or 0-255)" },
		{ "{\"proto\":\"256\"}", "bad \"proto\" filter: \"256\" is not a protocol (tcp, "
		  "udp, icmp, icmpv6, sctp, udplite, gre, esp, ah or 0-255)" },
		{ "{\"port\":70000}", "bad \"port\" filter: 70000 is not a port (0-65535)" },
		{ "{\"port\":-1}", "bad \"port\" filter: -1 is not a port (0-65535)" },
		{ "{\"port\":\"5x\"}", "bad \"port\" filter: \"5x\" is not a port (0-65535)" },
		{ "{\"port\":\"\"}", "bad \"port\" filter: \"\" is not a port (0-65535)" },
		{ "{\"port\":1.5}", "bad \"port\" filter: not a number" },
		{ "{\"addr\":\"10.0.0.300\"}",
		  "bad \"addr\" filter: \"10.0.0.300\" is not an IPv4 or IPv6 address" },
		{ "{\"addr\":\"10.0.0.0/33\"}",
		  "bad \"addr\" filter: \"/33\" is not a prefix length (0-32)" },
		{ "{\"addr\":\"fd00::/129\"}",
		  "bad \"addr\" filter: \"/129\" is not a prefix length (0-128)" },
		{ "{\"addr\":\"10.0.0.0/\"}",
		  "bad \"addr\" filter: \"/\" is not a prefix length (0-32)" },
		{ "{\"addr\":\"10.0.0.0/-1\"}",
		  "bad \"addr\" filter: \"/-1\" is not a prefix length (0-32)" },
	};
	struct watch_filter wf;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(filter_of(cases[i].json, &wf, err, sizeof(err)), -EINVAL);
		if (strcmp(err, cases[i].err) != 0)
			fail_msg("%s: got '%s', expected '%s'", cases[i].json, err, cases[i].err);
	}
	/* Too long a glob. */
	{
		char json[WATCH_GLOB_MAX + 32];

		snprintf(json, sizeof(json), "{\"ns\":\"%0*d\"}", WATCH_GLOB_MAX, 0);
		assert_int_equal(filter_of(json, &wf, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "bad \"ns\" filter: longer than 319 bytes");
	}
}

static bool matches(struct fx *f, const char *json, const struct pktmeta *m)
{
	const struct policy_action *act;
	struct watch_filter wf;
	char err[256];
	int rule = policy_eval(f->s.policy, m, &act);

	if (filter_of(json, &wf, err, sizeof(err)) != 0)
		fail_msg("%s: %s", json, err);
	return watch_filter_match(&wf, &f->s, m, rule, act);
}

static void test_filter_match(void **state)
{
	struct fx *f = *state;
	struct pktmeta m = udp_meta(), tcp = udp_meta(), v6 = udp_meta(), raw = { .len = 20 };
	struct watch_filter wf;
	char err[256], d[256];

	tcp.proto = 6;
	tcp.dport = 80;
	v6.family = 6;
	inet_pton(AF_INET6, "fd00::1", v6.src);
	inet_pton(AF_INET6, "fd00:1::2", v6.dst);
	/* m: pod-a, policy web, rule dns, accept, udp 10.1.0.1:40000 -> 10.1.0.2:53 */
	assert_true(matches(f, "{}", &m));
	assert_true(matches(f, "{\"ns\":null}", &m));
	assert_true(matches(f, "{\"ns\":\"pod-a\"}", &m));
	assert_true(matches(f, "{\"ns\":\"pod-*\"}", &m));
	assert_false(matches(f, "{\"ns\":\"pod-b\"}", &m));
	assert_false(matches(f, "{\"ns\":\"pod\"}", &m));
	assert_true(matches(f, "{\"policy\":\"w?b\"}", &m));
	assert_false(matches(f, "{\"policy\":\"open\"}", &m));
	assert_true(matches(f, "{\"rule\":\"dns\"}", &m));
	assert_false(matches(f, "{\"rule\":\"mark\"}", &m));
	assert_true(matches(f, "{\"rule\":\"(default)\"}", &raw));
	assert_true(matches(f, "{\"verdict\":\"accept\"}", &m));
	assert_false(matches(f, "{\"verdict\":\"drop\"}", &m));
	assert_true(matches(f, "{\"verdict\":\"drop\"}", &raw));
	assert_true(matches(f, "{\"proto\":\"udp\"}", &m));
	assert_true(matches(f, "{\"proto\":\"17\"}", &m));
	assert_false(matches(f, "{\"proto\":\"tcp\"}", &m));
	assert_true(matches(f, "{\"proto\":\"tcp\"}", &tcp));
	assert_false(matches(f, "{\"proto\":\"0\"}", &raw));   /* not IP: no proto */
	assert_true(matches(f, "{\"port\":53}", &m));
	assert_true(matches(f, "{\"port\":\"40000\"}", &m));
	assert_false(matches(f, "{\"port\":80}", &m));
	assert_false(matches(f, "{\"port\":0}", &raw));
	assert_true(matches(f, "{\"addr\":\"10.1.0.2\"}", &m));
	assert_true(matches(f, "{\"addr\":\"10.1.0.1/32\"}", &m));
	assert_true(matches(f, "{\"addr\":\"10.0.0.0/8\"}", &m));
	assert_true(matches(f, "{\"addr\":\"10.1.0.0/30\"}", &m));
	assert_false(matches(f, "{\"addr\":\"10.1.0.4/30\"}", &m));
	assert_true(matches(f, "{\"addr\":\"0.0.0.0/0\"}", &m));
	assert_false(matches(f, "{\"addr\":\"::/0\"}", &m));   /* other family */
	assert_true(matches(f, "{\"addr\":\"fd00:1::/33\"}", &v6));
	assert_false(matches(f, "{\"addr\":\"fd00:8000::/17\"}", &v6));
	assert_true(matches(f, "{\"addr\":\"fd00::/15\"}", &v6));
	assert_false(matches(f, "{\"addr\":\"10.0.0.0/8\"}", &raw));
	/* Everything at once: all must hold. */
	assert_true(matches(f, "{\"ns\":\"pod-?\",\"verdict\":\"accept\",\"policy\":\"web\","
			    "\"rule\":\"dns\",\"proto\":\"udp\",\"port\":53,\"addr\":\"10.1.0.1\"}", &m));
	assert_false(matches(f, "{\"ns\":\"pod-?\",\"verdict\":\"accept\",\"policy\":\"web\","
			     "\"rule\":\"dns\",\"proto\":\"udp\",\"port\":54,\"addr\":\"10.1.0.1\"}", &m));

	/* The description for the log line and the reply. */
	assert_int_equal(filter_of("{}", &wf, err, sizeof(err)), 0);
	assert_string_equal(watch_filter_describe(&wf, d, sizeof(d)), "*");
	assert_int_equal(filter_of("{\"ns\":\"p*\",\"verdict\":\"queue\",\"proto\":\"6\","
				   "\"port\":\"80\",\"addr\":\"fd00::1/64\",\"rule\":\"r\","
				   "\"policy\":\"p\"}", &wf, err, sizeof(err)), 0);
	assert_string_equal(watch_filter_describe(&wf, d, sizeof(d)),
			    "ns=p* verdict=queue policy=p rule=r proto=tcp port=80 addr=fd00::1/64");
}

static void test_format_lost(void **state)
{
	char buf[48];
	json_object *o;

	assert_int_equal(watch_format_lost(buf, sizeof(buf), 12345), 15);
	o = parse_line(buf, strlen(buf));
	assert_string_equal(field(o, "lost"), "12345");
	json_object_put(o);
	assert_int_equal(watch_format_lost(buf, 5, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_str_escapes),
		cmocka_unit_test(test_json_str_truncation),
		cmocka_unit_test_setup_teardown(test_format_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_mark_default_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_ipv6_long_name, setup, teardown),
		cmocka_unit_test(test_format_lost),
		cmocka_unit_test_setup_teardown(test_format_worst_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_tcp_uid, setup, teardown),
		cmocka_unit_test(test_filter_errors),
		cmocka_unit_test_setup_teardown(test_filter_match, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
