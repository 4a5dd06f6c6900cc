/* SPDX-License-Identifier: MIT */
/* Unit tests for broker/steer-parse.c: every accepted form of a steer list,
 * list equality, and every error with its exact message and JSON path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steer.h"

#define PATH "namespaces[0].steer"

/* The queues of the namespace entry every test list is checked against. */
static const uint16_t queues[] = { 0, 1, 2, 3, 4, 5, 9 };
#define NQ (sizeof(queues) / sizeof(queues[0]))

static struct steer_list *parse_q(const char *json, const uint16_t *q, size_t nq,
				  struct errs *e)
{
	json_object *v = json_tokener_parse(json);
	struct steer_list *l;

	if (!v)
		fail_msg("bad test JSON: %s", json);
	l = steer_parse(v, PATH, q, nq, e);
	json_object_put(v);
	return l;
}

static struct steer_list *ok(const char *json)
{
	struct errs e = { 0 };
	struct steer_list *l = parse_q(json, queues, NQ, &e);

	if (!l) {
		char *got = errs_join(&e, "\n");

		print_error("json: %s\nunexpected errors: %s\n", json, got);
		free(got);
	}
	assert_non_null(l);
	assert_int_equal(e.n, 0);
	errs_reset(&e);
	return l;
}

/* The error lines, joined by '\n', must equal @want. */
static void bad(const char *json, const char *want)
{
	struct errs e = { 0 };
	struct steer_list *l = parse_q(json, queues, NQ, &e);
	char *got = errs_join(&e, "\n");

	if (l || strcmp(got, want) != 0)
		print_error("json: %s\nwant: %s\ngot:  %s\n", json, want, got);
	assert_null(l);
	assert_string_equal(got, want);
	free(got);
	errs_reset(&e);
}

/* One item {"hook": "input", "queue": 1, "match": @match}: its error. */
static void bad_match(const char *match, const char *want)
{
	char *json;

	assert_true(asprintf(&json, "[{\"hook\": \"input\", \"queue\": 1, \"match\": %s}]",
			     match) > 0);
	bad(json, want);
	free(json);
}

static void assert_cidr(const struct steer_cidr *c, int af, const char *addr, int plen)
{
	uint8_t want[16] = { 0 };

	assert_int_equal(inet_pton(af == 4 ? AF_INET : AF_INET6, addr, want), 1);
	assert_int_equal(c->af, af);
	assert_int_equal(c->plen, plen);
	assert_memory_equal(c->addr, want, sizeof(want));
}

/* ------------------------------------------------------------ accepted */

static void test_minimal(void **state)
{
	struct steer_list *l = ok("[{\"hook\": \"output\", \"family\": \"inet\", \"match\": "
				  "{\"proto\": \"udp\", \"dport\": [8080, 9999]}, \"queue\": 1}]");
	const struct steer_item *it = &l->items[0];

	(void)state;
	assert_null(l->name);
	assert_int_equal(l->n, 1);
	assert_int_equal(it->index, 0);
	assert_int_equal(it->hook, STEER_HOOK_OUTPUT);
	assert_int_equal(it->family, STEER_FAMILY_INET);
	assert_int_equal(it->priority, 0);
	assert_int_equal(it->queue_lo, 1);
	assert_int_equal(it->queue_hi, 1);
	assert_false(it->bypass);
	assert_false(it->fanout);
	assert_int_equal(it->m.af, 0);
	assert_int_equal(it->m.nprotos, 1);
	assert_int_equal(it->m.protos[0], 17);
	assert_int_equal(it->m.ndport, 2);
	assert_int_equal(it->m.dport[0].lo, 8080);
	assert_int_equal(it->m.dport[0].hi, 8080);
	assert_int_equal(it->m.dport[1].lo, 9999);
	assert_int_equal(it->m.dport[1].hi, 9999);
	assert_int_equal(it->m.nsport + it->m.nsrc + it->m.ndst + it->m.nindev +
			 it->m.noutdev, 0);
	assert_false(it->m.has_mark);
	steer_list_free(l);
}

static void test_defaults_and_no_match(void **state)
{
	struct steer_list *l = ok("[{\"hook\": \"prerouting\", \"queue\": 0}]");

	(void)state;
	assert_int_equal(l->items[0].hook, STEER_HOOK_PREROUTING);
	assert_int_equal(l->items[0].family, STEER_FAMILY_INET);
	assert_int_equal(l->items[0].priority, 0);
	assert_int_equal(l->items[0].queue_lo, 0);
	assert_int_equal(l->items[0].m.nprotos, 0);
	steer_list_free(l);

	l = ok("[]");
	assert_int_equal(l->n, 0);
	steer_list_free(l);
}

static void test_every_hook_and_family(void **state)
{
	static const char *const hooks[] = {
		"prerouting", "input", "forward", "output", "postrouting"
	};
	static const char *const fams[] = { "inet", "ip", "ip6" };

	(void)state;
	for (size_t h = 0; h < 5; h++) {
		for (size_t f = 0; f < 3; f++) {
			char json[160];
			struct steer_list *l;

			snprintf(json, sizeof(json), "[{\"hook\": \"%s\", \"family\": \"%s\","
				 " \"queue\": 2}]", hooks[h], fams[f]);
			l = ok(json);
			assert_int_equal(l->items[0].hook, (int)h);
			assert_string_equal(steer_hook_name(l->items[0].hook), hooks[h]);
			assert_string_equal(steer_family_name(l->items[0].family), fams[f]);
			steer_list_free(l);
		}
	}
	assert_int_equal(STEER_FAMILY_IP, 1);
	assert_string_equal(steer_hook_name((enum steer_hook)99), "?");
	assert_string_equal(steer_family_name((enum steer_family)99), "?");
}

static void test_full_item(void **state)
{
	struct steer_list *l = ok(
		"[{\"hook\": \"forward\", \"family\": \"inet\", \"priority\": -150,"
		" \"match\": {\"family\": \"ipv6\", \"proto\": [\"tcp\", 17, \"sctp\", 33, \"udplite\"],"
		"   \"src\": [\"fd00::/8\", \"2001:db8::1\"], \"dst\": \"::/0\","
		"   \"sport\": \"1024-65535\", \"dport\": [53, \"8000-8080\"],"
		"   \"iif\": \"eth0\", \"outdev\": [\"veth-a\", \"lo\"], \"mark\": \"0x10/0xf0\"},"
		" \"queue\": \"2-5\", \"bypass\": true, \"fanout\": true},"
		" {\"hook\": \"input\", \"family\": \"ip\", \"priority\": 400,"
		"  \"match\": {\"src\": [\"10.0.0.0/8\", \"192.168.1.7\", \"0.0.0.0/0\"],"
		"   \"indev\": \"wg0\", \"mark\": 42}, \"queue\": \"3-4\", \"bypass\": false},"
		" {\"hook\": \"postrouting\", \"family\": \"ip6\", \"priority\": -400,"
		"  \"match\": {\"dst\": \"fe80::/10\", \"oif\": \"eth1\", \"mark\": \"0/0\"},"
		"  \"queue\": 9}]");
	const struct steer_item *a = &l->items[0], *b = &l->items[1], *c = &l->items[2];

	(void)state;
	assert_int_equal(l->n, 3);
	assert_int_equal(a->hook, STEER_HOOK_FORWARD);
	assert_int_equal(a->priority, -150);
	assert_int_equal(a->m.af, 6);
	assert_int_equal(a->m.nprotos, 5);
	assert_int_equal(a->m.protos[0], 6);
	assert_int_equal(a->m.protos[1], 17);
	assert_int_equal(a->m.protos[2], 132);
	assert_int_equal(a->m.protos[3], 33);
	assert_int_equal(a->m.protos[4], 136);
	assert_int_equal(a->m.nsrc, 2);
	assert_cidr(&a->m.src[0], 6, "fd00::", 8);
	assert_cidr(&a->m.src[1], 6, "2001:db8::1", 128);
	assert_int_equal(a->m.ndst, 1);
	assert_cidr(&a->m.dst[0], 6, "::", 0);
	assert_int_equal(a->m.nsport, 1);
	assert_int_equal(a->m.sport[0].lo, 1024);
	assert_int_equal(a->m.sport[0].hi, 65535);
	assert_int_equal(a->m.ndport, 2);
	assert_int_equal(a->m.dport[1].lo, 8000);
	assert_int_equal(a->m.dport[1].hi, 8080);
	assert_int_equal(a->m.nindev, 1);
	assert_string_equal(a->m.indev[0], "eth0");
	assert_int_equal(a->m.noutdev, 2);
	assert_string_equal(a->m.outdev[0], "veth-a");
	assert_string_equal(a->m.outdev[1], "lo");
	assert_true(a->m.has_mark);
	assert_int_equal(a->m.mark, 0x10);
	assert_int_equal(a->m.mark_mask, 0xf0);
	assert_int_equal(a->queue_lo, 2);
	assert_int_equal(a->queue_hi, 5);
	assert_true(a->bypass);
	assert_true(a->fanout);

	assert_int_equal(b->index, 1);
	assert_int_equal(b->family, STEER_FAMILY_IP);
	assert_int_equal(b->priority, 400);
	assert_int_equal(b->m.af, 0);
	assert_int_equal(b->m.nsrc, 3);
	assert_cidr(&b->m.src[0], 4, "10.0.0.0", 8);
	assert_cidr(&b->m.src[1], 4, "192.168.1.7", 32);
	assert_cidr(&b->m.src[2], 4, "0.0.0.0", 0);
	assert_string_equal(b->m.indev[0], "wg0");
	assert_true(b->m.has_mark);
	assert_int_equal(b->m.mark, 42);
	assert_int_equal(b->m.mark_mask, 0xffffffffu);
	assert_int_equal(b->queue_lo, 3);
	assert_int_equal(b->queue_hi, 4);
	assert_false(b->bypass);
	assert_false(b->fanout);

	assert_int_equal(c->index, 2);
	assert_int_equal(c->family, STEER_FAMILY_IP6);
	assert_int_equal(c->priority, -400);
	assert_cidr(&c->m.dst[0], 6, "fe80::", 10);
	assert_string_equal(c->m.outdev[0], "eth1");
	assert_true(c->m.has_mark);
	assert_int_equal(c->m.mark_mask, 0);
	assert_int_equal(c->queue_lo, 9);
	assert_int_equal(c->queue_hi, 9);
	steer_list_free(l);
}

/* v4 and v6 mixed in an inet item; match.family agreeing with the item. */
static void test_mixed_families(void **state)
{
	struct steer_list *l = ok(
		"[{\"hook\": \"output\", \"match\": {\"dst\": [\"10.1.0.0/16\", \"fd00::/64\"]},"
		"  \"queue\": 1},"
		" {\"hook\": \"output\", \"family\": \"ip\", \"match\": {\"family\": \"ipv4\"},"
		"  \"queue\": 1}]");

	(void)state;
	assert_cidr(&l->items[0].m.dst[0], 4, "10.1.0.0", 16);
	assert_cidr(&l->items[0].m.dst[1], 6, "fd00::", 64);
	assert_int_equal(l->items[1].m.af, 4);
	steer_list_free(l);
}

/* A list at the limit is accepted; NULL queues skips the queue check. */
static void test_limits(void **state)
{
	char *json = malloc(STEER_LIST_MAX * 8 + 200);
	struct errs e = { 0 };
	struct steer_list *l;
	size_t off;

	(void)state;
	assert_non_null(json);
	off = (size_t)sprintf(json, "[{\"hook\": \"input\", \"queue\": \"1-2\", "
			      "\"match\": {\"proto\": \"tcp\", \"dport\": [");
	for (int i = 0; i < STEER_LIST_MAX; i++)
		off += (size_t)sprintf(json + off, "%s%d", i ? "," : "", i + 1);
	strcpy(json + off, "]}}]");
	l = parse_q(json, NULL, 0, &e);
	assert_non_null(l);
	assert_int_equal(e.n, 0);
	assert_int_equal(l->items[0].m.ndport, STEER_LIST_MAX);
	assert_int_equal(l->items[0].m.dport[STEER_LIST_MAX - 1].lo, STEER_LIST_MAX);
	steer_list_free(l);

	strcpy(json + off, ",5000]}}]");
	bad(json, PATH "[0].match.dport: list too long (1025 elements, at most 1024)");
	free(json);
	steer_list_free(NULL);
}

/* ------------------------------------------------------------ equality */

static struct steer_list *from(const char *json)
{
	struct errs e = { 0 };
	struct steer_list *l = parse_q(json, NULL, 0, &e);

	if (!l) {
		char *got = errs_join(&e, "\n");

		print_error("json: %s\nunexpected errors: %s\n", json, got);
		free(got);
	}
	assert_non_null(l);
	return l;
}

/* The fields of one item, as JSON values, in the order render() writes them. */
enum { F_HOOK, F_FAM, F_PRIO, F_MFAM, F_PROTO, F_SRC, F_DST, F_SPORT, F_DPORT, F_IN,
       F_OUT, F_MARK, F_QUEUE, F_BYPASS, F_FANOUT, F_N };

static struct steer_list *render(const char *const f[F_N])
{
	char json[1024];

	snprintf(json, sizeof(json),
		 "[{\"hook\": %s, \"family\": %s, \"priority\": %s, \"match\": {\"family\": %s,"
		 " \"proto\": %s, \"src\": %s, \"dst\": %s, \"sport\": %s, \"dport\": %s,"
		 " \"indev\": %s, \"outdev\": %s, \"mark\": %s}, \"queue\": %s, \"bypass\": %s,"
		 " \"fanout\": %s}]", f[F_HOOK], f[F_FAM], f[F_PRIO], f[F_MFAM], f[F_PROTO],
		 f[F_SRC], f[F_DST], f[F_SPORT], f[F_DPORT], f[F_IN], f[F_OUT], f[F_MARK],
		 f[F_QUEUE], f[F_BYPASS], f[F_FANOUT]);
	return from(json);
}

static void test_equal(void **state)
{
	static const char *const base[F_N] = {
		"\"forward\"", "\"inet\"", "5", "\"ipv4\"", "[\"tcp\", \"udp\"]",
		"\"10.0.0.0/8\"", "\"10.1.0.0/16\"", "1", "\"80-90\"", "\"a\"", "\"b\"",
		"\"1/3\"", "\"1-2\"", "true", "true",
	};
	/* Each differs from base in exactly one field. */
	static const struct {
		int f;
		const char *v;
	} differ[] = {
		{ F_FAM, "\"ip\"" }, { F_PRIO, "6" },
		{ F_MFAM, "\"ipv6\"" }, { F_PROTO, "\"tcp\"" }, { F_PROTO, "[\"udp\", \"tcp\"]" },
		{ F_SRC, "\"10.0.0.0/9\"" }, { F_SRC, "\"11.0.0.0/8\"" },
		{ F_DST, "[\"10.1.0.0/16\", \"10.2.0.0/16\"]" }, { F_SPORT, "2" },
		{ F_DPORT, "\"80-91\"" }, { F_DPORT, "\"79-90\"" }, { F_IN, "\"c\"" },
		{ F_OUT, "\"c\"" }, { F_OUT, "\"bb\"" }, { F_MARK, "\"1/1\"" },
		{ F_MARK, "\"0/3\"" }, { F_QUEUE, "\"1-3\"" }, { F_QUEUE, "\"0-2\"" },
		{ F_BYPASS, "false" }, { F_FANOUT, "false" },
	};
	struct steer_list *a = render(base), *b = render(base), *e0 = from("[]");

	(void)state;
	assert_true(steer_list_equal(a, b));
	assert_true(steer_list_equal(NULL, NULL));
	assert_true(steer_list_equal(NULL, e0));
	assert_true(steer_list_equal(e0, NULL));
	assert_false(steer_list_equal(a, NULL));
	assert_false(steer_list_equal(NULL, a));
	/* names aside */
	a->name = strdup("web");
	assert_true(steer_list_equal(a, b));
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		const char *f[F_N];
		struct steer_list *d;

		memcpy(f, base, sizeof(f));
		f[differ[i].f] = differ[i].v;
		if (differ[i].f == F_MFAM)       /* v6 match: v6 networks */
			f[F_SRC] = "\"fd00::/8\"", f[F_DST] = "\"fd01::/16\"";
		d = render(f);
		if (steer_list_equal(a, d))
			fail_msg("equal despite field %d = %s", differ[i].f, differ[i].v);
		assert_false(steer_list_equal(d, b));
		steer_list_free(d);
	}
	/* no mark: the mark fields do not count */
	{
		struct steer_list *x = from("[{\"hook\": \"input\", \"queue\": 1}]");
		struct steer_list *y = from("[{\"hook\": \"input\", \"queue\": 1}]");

		y->items[0].m.mark = 7;
		assert_true(steer_list_equal(x, y));
		y->items[0].m.has_mark = true;
		assert_false(steer_list_equal(x, y));
		steer_list_free(x);
		steer_list_free(y);
	}
	/* the hook (base's outdev needs forward: compared apart) */
	{
		struct steer_list *x = from("[{\"hook\": \"input\", \"queue\": 1}]");
		struct steer_list *y = from("[{\"hook\": \"output\", \"queue\": 1}]");

		assert_false(steer_list_equal(x, y));
		steer_list_free(x);
		steer_list_free(y);
	}
	/* a second item, and order */
	{
		struct steer_list *two = from("[{\"hook\": \"input\", \"queue\": 1},"
					      " {\"hook\": \"output\", \"queue\": 1}]");
		struct steer_list *rev = from("[{\"hook\": \"output\", \"queue\": 1},"
					      " {\"hook\": \"input\", \"queue\": 1}]");
		struct steer_list *one = from("[{\"hook\": \"input\", \"queue\": 1}]");

		assert_false(steer_list_equal(two, rev));
		assert_false(steer_list_equal(two, one));
		assert_true(steer_list_equal(two, two));
		steer_list_free(two);
		steer_list_free(rev);
		steer_list_free(one);
	}
	steer_list_free(a);
	steer_list_free(b);
	steer_list_free(e0);
}

/* ------------------------------------------------------------ errors */

static void test_list_errors(void **state)
{
	char *json;
	size_t off;

	(void)state;
	bad("{}", PATH ": expected an array, got object {}");
	bad("\"web\"", PATH ": expected an array, got string \"web\"");
	bad("[1, null]", PATH "[0]: expected an object, got number 1\n"
	    PATH "[1]: expected an object, got null");
	/* an item that is not an object has no queue to check (queue 0 is
	 * not in these queues: the check must not see a zeroed item) */
	{
		static const uint16_t q5[] = { 5 };
		struct errs e = { 0 };
		char *got;

		assert_null(parse_q("[1, {\"hook\": \"input\"}, {\"hook\": \"input\", \"queue\": -1}]",
				    q5, 1, &e));
		got = errs_join(&e, "\n");
		assert_string_equal(got, PATH "[0]: expected an object, got number 1\n"
				    PATH "[1].queue: required key missing\n"
				    PATH "[2].queue: queue -1 out of range 0-65535");
		free(got);
		errs_reset(&e);
	}
	json = malloc((STEER_ITEMS_MAX + 1) * 40 + 8);
	assert_non_null(json);
	off = (size_t)sprintf(json, "[");
	for (int i = 0; i <= STEER_ITEMS_MAX; i++)
		off += (size_t)sprintf(json + off, "%s{\"hook\": \"input\", \"queue\": 1}",
				       i ? "," : "");
	strcpy(json + off, "]");
	bad(json, PATH ": too many items (257, at most 256)");
	free(json);
}

static void test_item_errors(void **state)
{
	(void)state;
	bad("[{\"hook\": \"input\", \"queue\": 1, \"color\": 1, \"match \": {}}]",
	    PATH "[0].color: unknown key\n" PATH "[0].match : unknown key");
	bad("[{}]", PATH "[0].hook: required key missing\n" PATH "[0].queue: required key missing");
	bad("[{\"hook\": \"ingress\", \"queue\": 1}]",
	    PATH "[0].hook: unknown hook \"ingress\" (prerouting, input, forward, output, postrouting)");
	bad("[{\"hook\": \"INPUT\", \"queue\": 1}]",
	    PATH "[0].hook: unknown hook \"INPUT\" (prerouting, input, forward, output, postrouting)");
	bad("[{\"hook\": 1, \"queue\": 1}]",
	    PATH "[0].hook: expected a hook name, got number 1");
	bad("[{\"hook\": \"input\", \"family\": \"ipv4\", \"queue\": 1}]",
	    PATH "[0].family: unknown family \"ipv4\" (inet, ip, ip6; \"ipv4\" and \"ipv6\" "
	    "are for match.family)");
	bad("[{\"hook\": \"input\", \"family\": \"arp\", \"queue\": 1}]",
	    PATH "[0].family: unknown family \"arp\" (inet, ip, ip6)");
	bad("[{\"hook\": \"input\", \"family\": [\"ip\"], \"queue\": 1}]",
	    PATH "[0].family: expected a family name, got array [\"ip\"]");
	bad("[{\"hook\": \"input\", \"priority\": 401, \"queue\": 1},"
	    " {\"hook\": \"input\", \"priority\": -401, \"queue\": 1},"
	    " {\"hook\": \"input\", \"priority\": 1.5, \"queue\": 1},"
	    " {\"hook\": \"input\", \"priority\": \"10\", \"queue\": 1}]",
	    PATH "[0].priority: priority 401 out of range -400-400\n"
	    PATH "[1].priority: priority -401 out of range -400-400\n"
	    PATH "[2].priority: priority 1.5 is not an integer\n"
	    PATH "[3].priority: expected an integer, got string \"10\"");
	bad("[{\"hook\": \"input\", \"queue\": 1, \"bypass\": \"yes\", \"fanout\": 1}]",
	    PATH "[0].bypass: expected a boolean, got string \"yes\"\n"
	    PATH "[0].fanout: expected a boolean, got number 1");
	bad("[{\"hook\": \"input\", \"queue\": 1, \"match\": [\"tcp\"]}]",
	    PATH "[0].match: expected an object, got array [\"tcp\"]");
}

static void test_queue_errors(void **state)
{
	(void)state;
	bad("[{\"hook\": \"input\", \"queue\": 70000}, {\"hook\": \"input\", \"queue\": -1},"
	    " {\"hook\": \"input\", \"queue\": \"5-3\"}, {\"hook\": \"input\", \"queue\": \"3-3\"},"
	    " {\"hook\": \"input\", \"queue\": \"a-b\"}, {\"hook\": \"input\", \"queue\": \"1-70000\"},"
	    " {\"hook\": \"input\", \"queue\": true}, {\"hook\": \"input\", \"queue\": \"3\"}]",
	    PATH "[0].queue: queue 70000 out of range 0-65535\n"
	    PATH "[1].queue: queue -1 out of range 0-65535\n"
	    PATH "[2].queue: empty queue range \"5-3\"\n"
	    PATH "[3].queue: queue range \"3-3\" has one queue (write the number 3)\n"
	    PATH "[4].queue: bad queue range \"a-b\" (expected a number or \"lo-hi\")\n"
	    PATH "[5].queue: queue 70000 out of range 0-65535\n"
	    PATH "[6].queue: expected a queue number or \"lo-hi\" range, got boolean true\n"
	    PATH "[7].queue: bad queue range \"3\" (expected a number or \"lo-hi\")");
	/* not one of the entry's queues (0-5 and 9): every run of them */
	bad("[{\"hook\": \"input\", \"queue\": 7}, {\"hook\": \"input\", \"queue\": \"3-12\"},"
	    " {\"hook\": \"input\", \"queue\": \"4-5\"}, {\"hook\": \"input\", \"queue\": \"8-9\"}]",
	    PATH "[0].queue: queue 7 is not one of namespaces[0].queues\n"
	    PATH "[1].queue: queues 6-8 are not among namespaces[0].queues\n"
	    PATH "[1].queue: queues 10-12 are not among namespaces[0].queues\n"
	    PATH "[3].queue: queue 8 is not one of namespaces[0].queues");
	/* reported beside the other errors of the list */
	bad("[{\"hook\": \"nope\", \"queue\": 7}, {\"hook\": \"input\", \"queue\": 1, \"x\": 0}]",
	    PATH "[0].hook: unknown hook \"nope\" (prerouting, input, forward, output, postrouting)\n"
	    PATH "[1].x: unknown key\n"
	    PATH "[0].queue: queue 7 is not one of namespaces[0].queues");
	bad("[{\"hook\": \"input\", \"queue\": 1, \"fanout\": true},"
	    " {\"hook\": \"input\", \"queue\": \"1-2\", \"fanout\": true, \"bypass\": true}]",
	    PATH "[0].fanout: fanout spreads a queue range: \"queue\" must be \"lo-hi\"");
}

static void test_match_key_errors(void **state)
{
	(void)state;
	bad_match("{\"color\": 1}", PATH "[0].match.color: unknown key");
	bad_match("{\"uid\": 0, \"gid\": 0, \"length\": 100}",
		  PATH "[0].match.uid: not available for steering (the kernel matches it only in the policy)\n"
		  PATH "[0].match.gid: not available for steering (the kernel matches it only in the policy)\n"
		  PATH "[0].match.length: not available for steering (the kernel matches it only in the policy)");
	bad_match("{\"hook\": \"input\"}",
		  PATH "[0].match.hook: not available for steering (the item's own \"hook\" says "
		  "where it applies)");
	bad_match("{\"indev\": \"a\", \"iif\": \"b\"}",
		  PATH "[0].match.iif: \"iif\" is another name for \"indev\", given twice");
	bad_match("{\"proto\": [], \"src\": [], \"indev\": []}",
		  PATH "[0].match.proto: empty list\n" PATH "[0].match.src: empty list\n"
		  PATH "[0].match.indev: empty list");
}

/* The value errors come from the policy's own parsers: same words. */
static void test_match_value_errors(void **state)
{
	(void)state;
	bad_match("{\"family\": \"ipv5\"}",
		  PATH "[0].match.family: unknown family \"ipv5\" (ipv4, ipv6)");
	bad_match("{\"proto\": [\"tcp\", \"quic\", 300]}",
		  PATH "[0].match.proto[1]: unknown protocol \"quic\" (tcp, udp, icmp, icmpv6, "
		  "sctp, udplite, gre, esp, ah, or a number 0-255)\n"
		  PATH "[0].match.proto[2]: protocol 300 out of range 0-255");
	bad_match("{\"proto\": \"tcp\", \"dport\": [70000, \"90-80\", \"80\"], \"sport\": true}",
		  PATH "[0].match.dport[0]: port 70000 out of range 0-65535\n"
		  PATH "[0].match.dport[1]: empty port range \"90-80\"\n"
		  PATH "[0].match.dport[2]: bad port range \"80\" (expected a number or \"lo-hi\")\n"
		  PATH "[0].match.sport: expected a port number or \"lo-hi\" range, got boolean true");
	bad_match("{\"src\": [\"10.0.0.0/33\", \"10.0.0.1/8\"], \"dst\": 10}",
		  PATH "[0].match.src[0]: bad address or CIDR \"10.0.0.0/33\"\n"
		  PATH "[0].match.src[1]: CIDR \"10.0.0.1/8\" has host bits set (network is 10.0.0.0/8)\n"
		  PATH "[0].match.dst: expected an address or CIDR string, got number 10");
	bad_match("{\"indev\": \"eth/0\", \"outdev\": \"0123456789abcdef\"}",
		  PATH "[0].match.indev: bad interface name \"eth/0\" (1-15 characters, no '/', ':' or whitespace)\n"
		  PATH "[0].match.outdev: bad interface name \"0123456789abcdef\" (1-15 characters, no '/', ':' or whitespace)\n"
		  PATH "[0].match.outdev: a packet has no output interface at hook \"input\" (only at "
		  "forward, output and postrouting)");
	bad("[{\"hook\": \"forward\", \"queue\": 1, \"match\": {\"oif\": \"0123456789abcdef\"}}]",
	    PATH "[0].match.oif: bad interface name \"0123456789abcdef\" (1-15 characters, no '/', ':' or whitespace)");
	bad_match("{\"mark\": \"0x11/0xf0\"}",
		  PATH "[0].match.mark: mark value 0x11 has bits outside mask 0xf0 and can never match");
	bad_match("{\"mark\": \"x\"}",
		  PATH "[0].match.mark: bad mark \"x\" (expected a number or \"value/mask\", 32 bits each)");
	bad_match("{\"mark\": -1}", PATH "[0].match.mark: mark -1 out of range 0-4294967295");
}

static void test_consistency_errors(void **state)
{
	(void)state;
	/* ports need a proto that has them */
	bad_match("{\"dport\": 53}",
		  PATH "[0].match.dport: ports need a \"proto\" that has them (tcp, udp, udplite, "
		  "sctp or dccp (33))");
	bad_match("{\"sport\": 53, \"proto\": \"icmp\"}",
		  PATH "[0].match.sport: proto icmp has no ports (only tcp, udp, udplite, sctp or "
		  "dccp (33) have)");
	bad_match("{\"proto\": [\"tcp\", 47], \"dport\": 1, \"sport\": 2}",
		  PATH "[0].match.sport: proto gre has no ports (only tcp, udp, udplite, sctp or "
		  "dccp (33) have)\n"
		  PATH "[0].match.dport: proto gre has no ports (only tcp, udp, udplite, sctp or "
		  "dccp (33) have)");
	/* a bad proto is its own error, not a second one at the ports */
	bad_match("{\"proto\": \"quic\", \"dport\": 1}",
		  PATH "[0].match.proto: unknown protocol \"quic\" (tcp, udp, icmp, icmpv6, "
		  "sctp, udplite, gre, esp, ah, or a number 0-255)");
	/* families */
	bad("[{\"hook\": \"input\", \"family\": \"ip\", \"queue\": 1,"
	    "  \"match\": {\"family\": \"ipv6\"}},"
	    " {\"hook\": \"input\", \"family\": \"ip6\", \"queue\": 1,"
	    "  \"match\": {\"family\": \"ipv4\"}}]",
	    PATH "[0].match.family: \"ipv6\" contradicts the item's \"family\": \"ip\"\n"
	    PATH "[1].match.family: \"ipv4\" contradicts the item's \"family\": \"ip6\"");
	bad("[{\"hook\": \"input\", \"family\": \"ip\", \"queue\": 1,"
	    "  \"match\": {\"src\": [\"10.0.0.0/8\", \"fd00::/8\"]}},"
	    " {\"hook\": \"input\", \"family\": \"ip6\", \"queue\": 1,"
	    "  \"match\": {\"dst\": \"10.0.0.1\"}},"
	    " {\"hook\": \"input\", \"queue\": 1,"
	    "  \"match\": {\"dst\": \"::1\", \"family\": \"ipv4\"}}]",
	    PATH "[0].match.src[1]: IPv6 address \"fd00::/8\" in a family \"ip\" item can never match\n"
	    PATH "[1].match.dst: IPv4 address \"10.0.0.1\" in a family \"ip6\" item can never match\n"
	    PATH "[2].match.dst: IPv6 address \"::1\" in a match with \"family\": \"ipv4\" can never match");
	/* an inet item whose src and dst share no address family (mixed lists pass) */
	bad("[{\"hook\": \"input\", \"queue\": 1,"
	    "  \"match\": {\"src\": \"10.0.0.0/8\", \"dst\": [\"fd00::/8\", \"::1\"]}},"
	    " {\"hook\": \"input\", \"queue\": 1,"
	    "  \"match\": {\"src\": [\"10.0.0.0/8\", \"fd00::1\"], \"dst\": \"::1\"}}]",
	    PATH "[0].match.dst: no address family in common with \"src\": the item can never match");
	/* interfaces the hook does not have */
	bad("[{\"hook\": \"output\", \"queue\": 1, \"match\": {\"indev\": \"a\"}},"
	    " {\"hook\": \"postrouting\", \"queue\": 1, \"match\": {\"iif\": \"a\"}},"
	    " {\"hook\": \"prerouting\", \"queue\": 1, \"match\": {\"outdev\": \"a\"}},"
	    " {\"hook\": \"input\", \"queue\": 1, \"match\": {\"oif\": \"a\"}},"
	    " {\"hook\": \"forward\", \"queue\": 1, \"match\": {\"iif\": \"a\", \"oif\": \"b\"}}]",
	    PATH "[0].match.indev: a packet has no input interface at hook \"output\" (only at "
	    "prerouting, input and forward)\n"
	    PATH "[1].match.iif: a packet has no input interface at hook \"postrouting\" (only at "
	    "prerouting, input and forward)\n"
	    PATH "[2].match.outdev: a packet has no output interface at hook \"prerouting\" (only "
	    "at forward, output and postrouting)\n"
	    PATH "[3].match.oif: a packet has no output interface at hook \"input\" (only at "
	    "forward, output and postrouting)");
}

/* Every error of a list at once, in item order. */
static void test_all_at_once(void **state)
{
	(void)state;
	bad("[{\"hook\": \"output\", \"queue\": 70000, \"match\": {\"dport\": 1, \"uid\": 0}},"
	    " {\"queue\": 1, \"family\": \"ipx\"},"
	    " {\"hook\": \"input\", \"queue\": 8, \"match\": {\"src\": \"fd00::/8\", \"family\": \"ipv4\"}}]",
	    PATH "[0].queue: queue 70000 out of range 0-65535\n"
	    PATH "[0].match.uid: not available for steering (the kernel matches it only in the policy)\n"
	    PATH "[0].match.dport: ports need a \"proto\" that has them (tcp, udp, udplite, sctp or dccp (33))\n"
	    PATH "[1].hook: required key missing\n"
	    PATH "[1].family: unknown family \"ipx\" (inet, ip, ip6)\n"
	    PATH "[2].match.src: IPv6 address \"fd00::/8\" in a match with \"family\": \"ipv4\" can never match\n"
	    PATH "[2].queue: queue 8 is not one of namespaces[0].queues");
}

/* A named list: the entry that uses it gets the error, naming the item. */
static void test_check_queues(void **state)
{
	static const uint16_t q1[] = { 1 };
	struct steer_list *l = from("[{\"hook\": \"input\", \"queue\": 1},"
				    " {\"hook\": \"input\", \"queue\": \"0-3\"}]");
	struct errs e = { 0 };
	char *got;

	(void)state;
	assert_int_equal(steer_check_queues(l, "namespaces[2].steer", queues, NQ, &e), 0);
	assert_int_equal(e.n, 0);
	l->name = strdup("web");
	assert_int_equal(steer_check_queues(l, "namespaces[2].steer", q1, 1, &e), 2);
	got = errs_join(&e, "\n");
	assert_string_equal(got,
		"namespaces[2].steer: queue 0 (steering.web[1].queue) is not one of namespaces[2].queues\n"
		"namespaces[2].steer: queues 2-3 (steering.web[1].queue) are not among namespaces[2].queues");
	free(got);
	errs_reset(&e);
	assert_int_equal(steer_check_queues(NULL, "x", q1, 1, &e), 0);
	steer_list_free(l);
}

/*
 * docs/steering.md's match-key table ("| key | forms | matches when |") names
 * exactly the keys steering takes, aliases included, each once; and its
 * limits are the code's.
 */
static void test_docs(void **state)
{
	char line[1024], keys[32][16], want[64];
	size_t nkeys = 0, nseen[32] = { 0 };
	bool in_table = false, seen_table = false, seen_list = false, seen_items = false;
	FILE *f = fopen(TEST_SRCDIR "/../docs/steering.md", "r");

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *cell, *end;

		snprintf(want, sizeof(want), "at most **%d**", STEER_LIST_MAX);
		seen_list |= strstr(line, want) != NULL;
		snprintf(want, sizeof(want), "at most **%d**", STEER_ITEMS_MAX);
		seen_items |= strstr(line, want) != NULL;
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
		for (cell = strchr(line, '`'); cell; cell = strchr(end + 1, '`')) {
			end = strchr(cell + 1, '`');
			assert_non_null(end);
			assert_true(nkeys < 32 && end - cell - 1 < 16);
			snprintf(keys[nkeys++], 16, "%.*s", (int)(end - cell - 1), cell + 1);
		}
	}
	fclose(f);
	assert_true(seen_table);
	assert_true(seen_list);
	assert_true(seen_items);
	for (size_t k = 0; k < nkeys; k++) {
		size_t i;

		for (i = 0; steer_match_key(i); i++)
			if (strcmp(steer_match_key(i), keys[k]) == 0)
				break;
		if (!steer_match_key(i))
			print_error("docs/steering.md lists \"%s\", not a steer match key\n", keys[k]);
		assert_non_null(steer_match_key(i));
		nseen[i]++;
	}
	for (size_t i = 0; steer_match_key(i); i++) {
		if (nseen[i] != 1)
			print_error("docs/steering.md lists match key \"%s\" %zu times\n",
				    steer_match_key(i), nseen[i]);
		assert_int_equal(nseen[i], 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_defaults_and_no_match),
		cmocka_unit_test(test_every_hook_and_family),
		cmocka_unit_test(test_full_item),
		cmocka_unit_test(test_mixed_families),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_list_errors),
		cmocka_unit_test(test_item_errors),
		cmocka_unit_test(test_queue_errors),
		cmocka_unit_test(test_match_key_errors),
		cmocka_unit_test(test_match_value_errors),
		cmocka_unit_test(test_consistency_errors),
		cmocka_unit_test(test_all_at_once),
		cmocka_unit_test(test_check_queues),
		cmocka_unit_test(test_docs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
