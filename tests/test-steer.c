/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/steer.c: the nf_tables batch a steer list becomes.
 * The batch is parsed back with libnftnl and checked message by message.
 * The native "queue" expression is only checked here, on these synthetic
 * messages: this machine's kernel has no nft_queue, so the netns tests
 * (tests/netns/steer*.sh) exercise the xtables-compat NFQUEUE path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>

#include "steer.h"

#define MSGTYPE(nlh) ((nlh)->nlmsg_type & 0xff)

/* Every message of @b in order: (subsystem-less type, family). */
struct walked {
	uint16_t type[256];
	uint8_t fam[256];
	const struct nlmsghdr *nlh[256];
	size_t n;
};

static void walk(const struct steer_batch *b, struct walked *w)
{
	const struct nlmsghdr *nlh = (const void *)b->buf;
	int left = (int)b->len;

	w->n = 0;
	while (mnl_nlmsg_ok(nlh, left) && w->n < 256) {
		const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);

		w->type[w->n] = nlh->nlmsg_type;
		w->fam[w->n] = g->nfgen_family;
		w->nlh[w->n++] = nlh;
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	assert_int_equal(left, 0);
}

/* The names of the expressions of a NEWRULE message, comma-joined. */
static void rule_exprs(const struct nlmsghdr *nlh, char *out, size_t len,
		       struct nftnl_rule **keep)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;

	assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
	out[0] = '\0';
	it = nftnl_expr_iter_create(r);
	while ((e = nftnl_expr_iter_next(it)) != NULL) {
		if (out[0])
			strncat(out, ",", len - strlen(out) - 1);
		strncat(out, nftnl_expr_get_str(e, NFTNL_EXPR_NAME), len - strlen(out) - 1);
	}
	nftnl_expr_iter_destroy(it);
	*keep = r;
}

/* The last expression of @r (the queue statement). */
static struct nftnl_expr *last_expr(struct nftnl_rule *r)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e, *last = NULL;

	while ((e = nftnl_expr_iter_next(it)) != NULL)
		last = e;
	nftnl_expr_iter_destroy(it);
	return last;
}

static struct steer_range dports[] = { { 8080, 8080 }, { 9999, 9999 } };
static uint8_t udp[] = { 17 };

/* The minimal form: output, inet, udp dport {8080, 9999}, queue 1. */
static struct steer_item minimal_item(void)
{
	struct steer_item it = { 0 };

	it.hook = STEER_HOOK_OUTPUT;
	it.family = STEER_FAMILY_INET;
	it.m.protos = udp;
	it.m.nprotos = 1;
	it.m.dport = dports;
	it.m.ndport = 2;
	it.queue_lo = it.queue_hi = 1;
	return it;
}

static void test_remove_only(void **state)
{
	struct steer_batch b;
	struct walked w;

	(void)state;
	assert_int_equal(steer_batch_build(&b, NULL, STEER_BACKEND_XT_NFQUEUE, NULL, 10), 0);
	walk(&b, &w);
	/* BEGIN, then create+delete in inet, ip, ip6, then END. */
	assert_int_equal(w.n, 8);
	assert_int_equal(w.type[0], NFNL_MSG_BATCH_BEGIN);
	assert_int_equal(w.type[7], NFNL_MSG_BATCH_END);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(MSGTYPE(w.nlh[1 + 2 * i]), NFT_MSG_NEWTABLE);
		assert_int_equal(MSGTYPE(w.nlh[2 + 2 * i]), NFT_MSG_DELTABLE);
	}
	assert_int_equal(w.fam[1], NFPROTO_INET);
	assert_int_equal(w.fam[3], NFPROTO_IPV4);
	assert_int_equal(w.fam[5], NFPROTO_IPV6);
	/* Sequence numbers from 10, one per message, tagged. */
	assert_int_equal(w.nlh[0]->nlmsg_seq, 10);
	assert_int_equal(w.nlh[7]->nlmsg_seq, 17);
	assert_string_equal(steer_batch_tag(&b, 12)->what, "table removal");
	assert_null(steer_batch_tag(&b, 99));
	steer_batch_free(&b);
	steer_batch_free(NULL);
}

/* The minimal item with backend @be: the messages and its rule's expressions. */
static struct nftnl_rule *minimal_rule(enum steer_backend be, struct steer_item *it,
				       char *exprs, size_t len)
{
	struct steer_list l = { NULL, it, 1 };
	struct steer_batch b;
	struct nftnl_rule *r = NULL;
	struct walked w;
	size_t rules = 0;

	assert_int_equal(steer_batch_build(&b, &l, be, NULL, 1), 0);
	walk(&b, &w);
	for (size_t i = 0; i < w.n; i++) {
		if (MSGTYPE(w.nlh[i]) == NFT_MSG_NEWCHAIN) {
			struct nftnl_chain *c = nftnl_chain_alloc();

			assert_int_equal(nftnl_chain_nlmsg_parse(w.nlh[i], c), 0);
			assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "output");
			assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
					 NF_INET_LOCAL_OUT);
			assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "filter");
			nftnl_chain_free(c);
		}
		if (MSGTYPE(w.nlh[i]) == NFT_MSG_NEWRULE && w.type[i] >> 8 == NFNL_SUBSYS_NFTABLES) {
			rules++;
			assert_int_equal(w.fam[i], NFPROTO_INET);
			rule_exprs(w.nlh[i], exprs, len, &r);
		}
	}
	assert_int_equal(rules, 1);
	steer_batch_free(&b);
	return r;
}

static void test_native_queue(void **state)
{
	struct steer_item it = minimal_item();
	struct nftnl_rule *r;
	struct nftnl_expr *q;
	char exprs[256];

	(void)state;
	it.queue_lo = 3;
	it.queue_hi = 6;
	it.bypass = true;
	r = minimal_rule(STEER_BACKEND_NFT_QUEUE, &it, exprs, sizeof(exprs));
	/* l4proto == udp, th dport in {8080, 9999}, counter, queue */
	assert_string_equal(exprs, "meta,cmp,payload,lookup,counter,queue");
	q = last_expr(r);
	assert_int_equal(nftnl_expr_get_u16(q, NFTNL_EXPR_QUEUE_NUM), 3);
	assert_int_equal(nftnl_expr_get_u16(q, NFTNL_EXPR_QUEUE_TOTAL), 4);
	assert_int_equal(nftnl_expr_get_u16(q, NFTNL_EXPR_QUEUE_FLAGS), NFT_QUEUE_FLAG_BYPASS);
	nftnl_rule_free(r);
}

static void test_xt_target(void **state)
{
	struct steer_item it = minimal_item();
	const struct xt_NFQ_info_v3 *info;
	struct nftnl_rule *r;
	struct nftnl_expr *t;
	uint32_t len = 0;
	char exprs[256];

	(void)state;
	it.queue_lo = 2;
	it.queue_hi = 3;
	it.fanout = true;
	r = minimal_rule(STEER_BACKEND_XT_NFQUEUE, &it, exprs, sizeof(exprs));
	assert_string_equal(exprs, "meta,cmp,payload,lookup,counter,target");
	t = last_expr(r);
	assert_string_equal(nftnl_expr_get_str(t, NFTNL_EXPR_TG_NAME), "NFQUEUE");
	assert_int_equal(nftnl_expr_get_u32(t, NFTNL_EXPR_TG_REV), 3);
	info = nftnl_expr_get(t, NFTNL_EXPR_TG_INFO, &len);
	/* XT_ALIGN(6): the kernel checks the exact size. */
	assert_int_equal(len, 8);
	assert_int_equal(info->queuenum, 2);
	assert_int_equal(info->queues_total, 2);
	assert_int_equal(info->flags, NFQ_FLAG_CPU_FANOUT);
	nftnl_rule_free(r);
}

/*
 * Elements of every NEWSETELEM message of @b: keys and end flags, read
 * with libmnl (the attribute layout is the kernel's, nf_tables.h).
 */
static size_t set_elems(const struct steer_batch *b, uint8_t keys[][16], bool *end,
			size_t max, uint32_t *klen)
{
	struct walked w;
	size_t n = 0;

	walk(b, &w);
	for (size_t i = 0; i < w.n; i++) {
		const struct nlattr *a, *el, *x;

		if (MSGTYPE(w.nlh[i]) != NFT_MSG_NEWSETELEM || w.type[i] >> 8 != NFNL_SUBSYS_NFTABLES)
			continue;
		mnl_attr_for_each(a, w.nlh[i], sizeof(struct nfgenmsg)) {
			if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
				continue;
			mnl_attr_for_each_nested(el, a) {
				assert_true(n < max);
				memset(keys[n], 0, 16);
				end[n] = false;
				mnl_attr_for_each_nested(x, el) {
					const struct nlattr *v;

					if (mnl_attr_get_type(x) == NFTA_SET_ELEM_FLAGS)
						end[n] = ntohl(mnl_attr_get_u32(x)) &
							 NFT_SET_ELEM_INTERVAL_END;
					if (mnl_attr_get_type(x) != NFTA_SET_ELEM_KEY)
						continue;
					v = mnl_attr_get_payload(x);
					*klen = mnl_attr_get_payload_len(v);
					memcpy(keys[n], mnl_attr_get_payload(v), *klen);
				}
				n++;
			}
		}
	}
	return n;
}

/* Overlapping and adjacent port ranges merge; the kernel refuses overlaps. */
static void test_port_intervals_merge(void **state)
{
	struct steer_range p[] = { { 100, 200 }, { 150, 300 }, { 301, 301 }, { 50, 50 },
				   { 65535, 65535 } };
	struct steer_item it = minimal_item();
	struct steer_list l = { NULL, &it, 1 };
	struct steer_batch b;
	uint8_t keys[16][16];
	bool end[16];
	uint32_t klen = 0;
	size_t n;

	(void)state;
	it.m.dport = p;
	it.m.ndport = 5;
	assert_int_equal(steer_batch_build(&b, &l, STEER_BACKEND_XT_NFQUEUE, NULL, 1), 0);
	n = set_elems(&b, keys, end, 16, &klen);
	assert_int_equal(klen, 2);
	/* [50,50] [100,301] [65535,65535]: 50, end 51, 100, end 302, 65535 (no end). */
	assert_int_equal(n, 5);
	assert_int_equal(ntohs(*(uint16_t *)keys[0]), 50);
	assert_false(end[0]);
	assert_int_equal(ntohs(*(uint16_t *)keys[1]), 51);
	assert_true(end[1]);
	assert_int_equal(ntohs(*(uint16_t *)keys[2]), 100);
	assert_int_equal(ntohs(*(uint16_t *)keys[3]), 302);
	assert_true(end[3]);
	assert_int_equal(ntohs(*(uint16_t *)keys[4]), 65535);
	assert_false(end[4]);
	steer_batch_free(&b);
}

static struct steer_cidr cidr(int af, const char *a, unsigned plen)
{
	struct steer_cidr c = { .af = (uint8_t)af, .plen = (uint8_t)plen };

	assert_int_equal(inet_pton(af == 4 ? AF_INET : AF_INET6, a, c.addr), 1);
	return c;
}

/* inet with addresses of both families: one rule per family, each with its own. */
static void test_inet_split_by_family(void **state)
{
	struct steer_cidr src[] = { cidr(4, "10.1.2.3", 24), cidr(6, "fd00::1", 64),
				    cidr(4, "192.168.0.0", 16) };
	struct steer_item it = minimal_item();
	struct steer_list l = { "web", &it, 1 };
	struct steer_batch b;
	struct walked w;
	char exprs[256];
	size_t rules = 0;

	(void)state;
	it.m.src = src;
	it.m.nsrc = 3;
	it.m.nprotos = 0;
	it.m.ndport = 0;
	assert_int_equal(steer_batch_build(&b, &l, STEER_BACKEND_XT_NFQUEUE, NULL, 1), 0);
	walk(&b, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct nftnl_rule *r;
		uint32_t ulen = 0;
		const char *u;

		if (MSGTYPE(w.nlh[i]) != NFT_MSG_NEWRULE || w.type[i] >> 8 != NFNL_SUBSYS_NFTABLES)
			continue;
		rule_exprs(w.nlh[i], exprs, sizeof(exprs), &r);
		/* nfproto check, then v4: set of two prefixes; v6: one prefix */
		assert_string_equal(exprs, rules == 0 ?
				    "meta,cmp,payload,lookup,counter,target" :
				    "meta,cmp,payload,bitwise,cmp,counter,target");
		u = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &ulen);
		assert_non_null(u);
		assert_string_equal(u + 2, "nfq-broker web[0]");
		nftnl_rule_free(r);
		rules++;
	}
	assert_int_equal(rules, 2);
	steer_batch_free(&b);
}

/* An ip-family item goes to "ip nfq_broker"; chains per (hook, priority). */
static void test_families_and_chains(void **state)
{
	struct steer_item it[3] = { minimal_item(), minimal_item(), minimal_item() };
	struct steer_list l = { NULL, it, 3 };
	struct steer_batch b;
	struct walked w;
	size_t chains = 0, tables_ip = 0;

	(void)state;
	it[1].index = 1;
	it[1].family = STEER_FAMILY_IP;
	it[1].priority = -150;
	it[2].index = 2;                /* same chain as item 0 */
	assert_int_equal(steer_batch_build(&b, &l, STEER_BACKEND_XT_NFQUEUE, NULL, 1), 0);
	walk(&b, &w);
	for (size_t i = 0; i < w.n; i++) {
		if (MSGTYPE(w.nlh[i]) == NFT_MSG_NEWCHAIN) {
			struct nftnl_chain *c = nftnl_chain_alloc();

			assert_int_equal(nftnl_chain_nlmsg_parse(w.nlh[i], c), 0);
			if (w.fam[i] == NFPROTO_IPV4) {
				assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME),
						    "output_m150");
				assert_int_equal((int32_t)nftnl_chain_get_u32(c, NFTNL_CHAIN_PRIO),
						 -150);
			}
			nftnl_chain_free(c);
			chains++;
		}
		if (MSGTYPE(w.nlh[i]) == NFT_MSG_NEWTABLE && w.fam[i] == NFPROTO_IPV4)
			tables_ip++;
	}
	assert_int_equal(chains, 2);
	/* ip: created if missing, never deleted (it has an item) */
	assert_int_equal(tables_ip, 1);
	steer_batch_free(&b);
}

/*
 * A replace never deletes a base chain or a table (unregistering a hook
 * makes the kernel drop every packet waiting in the queues): rules of the
 * existing tables are flushed, a family no longer used keeps its (now
 * empty) table, a family never used gets none. Removal deletes all three.
 */
static void test_replace_keeps_chains(void **state)
{
	struct steer_item it = minimal_item();             /* inet output */
	struct steer_list l = { NULL, &it, 1 };
	struct steer_installed have = { .table = { [STEER_FAMILY_INET] = true,
						   [STEER_FAMILY_IP] = true } };
	struct steer_batch b;
	struct walked w;
	size_t flush = 0, newtable = 0, deleted = 0;

	(void)state;
	assert_int_equal(steer_batch_build(&b, &l, STEER_BACKEND_XT_NFQUEUE, &have, 1), 0);
	walk(&b, &w);
	for (size_t i = 0; i < w.n; i++) {
		if (w.type[i] >> 8 != NFNL_SUBSYS_NFTABLES)
			continue;
		switch (MSGTYPE(w.nlh[i])) {
		case NFT_MSG_DELRULE:
			assert_int_not_equal(w.fam[i], NFPROTO_IPV6);
			flush++;
			break;
		case NFT_MSG_NEWTABLE:
			assert_int_not_equal(w.fam[i], NFPROTO_IPV6);
			newtable++;
			break;
		case NFT_MSG_DELCHAIN:
		case NFT_MSG_DELTABLE:
			deleted++;
			break;
		}
	}
	assert_int_equal(flush, 2);        /* inet and ip */
	assert_int_equal(newtable, 2);
	assert_int_equal(deleted, 0);
	steer_batch_free(&b);
}

/* A large list is split over several element messages. */
static void test_large_list_chunks(void **state)
{
	struct steer_range *p = calloc(1000, sizeof(*p));
	struct steer_item it = minimal_item();
	struct steer_list l = { NULL, &it, 1 };
	struct steer_batch b;
	struct walked w;
	size_t elem_msgs = 0;

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < 1000; i++)
		p[i].lo = p[i].hi = (uint16_t)(2 * i + 1);   /* never adjacent */
	it.m.dport = p;
	it.m.ndport = 1000;
	assert_int_equal(steer_batch_build(&b, &l, STEER_BACKEND_XT_NFQUEUE, NULL, 1), 0);
	walk(&b, &w);
	for (size_t i = 0; i < w.n; i++)
		if (MSGTYPE(w.nlh[i]) == NFT_MSG_NEWSETELEM)
			elem_msgs++;
	/* 2000 elements (start + end each), 256 per message */
	assert_int_equal(elem_msgs, 8);
	steer_batch_free(&b);
	free(p);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(steer_backend_name(STEER_BACKEND_NFT_QUEUE), "nft-queue");
	assert_string_equal(steer_backend_name(STEER_BACKEND_XT_NFQUEUE), "xt-NFQUEUE");
	assert_string_equal(steer_backend_name(STEER_BACKEND_UNKNOWN), "unknown");
	steer_backend_reset();
	assert_int_equal(steer_backend(), STEER_BACKEND_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_only),
		cmocka_unit_test(test_native_queue),
		cmocka_unit_test(test_xt_target),
		cmocka_unit_test(test_port_intervals_merge),
		cmocka_unit_test(test_inet_split_by_family),
		cmocka_unit_test(test_families_and_chains),
		cmocka_unit_test(test_replace_keeps_chains),
		cmocka_unit_test(test_large_list_chunks),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
