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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
