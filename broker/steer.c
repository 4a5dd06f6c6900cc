/* SPDX-License-Identifier: MIT */
/*
 * Steering, the kernel side: a steer_list becomes one nf_tables batch
 * (libnftnl) that replaces the broker's own tables "ip|ip6|inet nfq_broker"
 * in one transaction, so the namespace sees the old rules or the new ones
 * and never half of either. The batch is sent on a NETLINK_NETFILTER
 * socket that only the broker holds (session.c opens it inside the
 * namespace): nfnetlink runs a batch inside the send, so every error the
 * kernel has for it is queued on the socket when the send returns and one
 * non-blocking read collects them — nothing here ever waits.
 *
 * Which expression sends packets to a queue: nft's native "queue" when the
 * kernel has it, else the xtables-compat NFQUEUE target (revision 3), the
 * one iptables-nft uses. The first batch tries native; a rule refused with
 * ENOENT/EOPNOTSUPP switches to xt for the life of the broker (one kernel).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/netlink.h>

#include "steer.h"

/* Room reserved for one message; element lists are split to fit. */
#define STEER_MSG_MAX   (64u << 10)
#define STEER_ELEMS_PER_MSG 256u
/* nft's datatype numbers, so that `nft list ruleset` prints sets readably. */
#define NFT_TYPE_IPADDR        7
#define NFT_TYPE_IP6ADDR       8
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE  13
#define NFT_TYPE_IFNAME        41
/* The compat target wants exactly XT_ALIGN of the target's own size. */
#define XT_NFQ_INFO_LEN XT_ALIGN(sizeof(struct xt_NFQ_info_v3))

static enum steer_backend backend_known = STEER_BACKEND_UNKNOWN;

static const uint8_t family_nfproto[] = {
	[STEER_FAMILY_INET] = NFPROTO_INET,
	[STEER_FAMILY_IP] = NFPROTO_IPV4,
	[STEER_FAMILY_IP6] = NFPROTO_IPV6,
};

static const uint32_t hook_num[] = {
	[STEER_HOOK_PREROUTING] = NF_INET_PRE_ROUTING,
	[STEER_HOOK_INPUT] = NF_INET_LOCAL_IN,
	[STEER_HOOK_FORWARD] = NF_INET_FORWARD,
	[STEER_HOOK_OUTPUT] = NF_INET_LOCAL_OUT,
	[STEER_HOOK_POSTROUTING] = NF_INET_POST_ROUTING,
};

const char *steer_backend_name(enum steer_backend b)
{
	switch (b) {
	case STEER_BACKEND_NFT_QUEUE: return "nft-queue";
	case STEER_BACKEND_XT_NFQUEUE: return "xt-NFQUEUE";
	default: return "unknown";
	}
}

/* Found by the steering thread, read by the loop: atomics. */
enum steer_backend steer_backend(void)
{
	return __atomic_load_n(&backend_known, __ATOMIC_RELAXED);
}

void steer_backend_reset(void)
{
	__atomic_store_n(&backend_known, STEER_BACKEND_UNKNOWN, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ the batch */

void steer_batch_free(struct steer_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->tags);
	memset(b, 0, sizeof(*b));
}

/* Make room for one more message at the end; its header comes back. */
static char *batch_room(struct steer_batch *b)
{
	size_t want = b->len + STEER_MSG_MAX;

	if (b->err)
		return NULL;
	if (want > b->cap) {
		size_t cap = b->cap ? b->cap : STEER_MSG_MAX * 2;
		char *nb;

		while (cap < want)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb) {
			b->err = -ENOMEM;
			return NULL;
		}
		memset(nb + b->cap, 0, cap - b->cap);
		b->buf = nb;
		b->cap = cap;
	}
	return b->buf + b->len;
}

/* The message just built at the end is complete: remember what it was. */
static void batch_commit(struct steer_batch *b, const struct nlmsghdr *nlh, int item,
			 const char *what)
{
	if (b->ntags == b->captags) {
		size_t cap = b->captags ? b->captags * 2 : 32;
		struct steer_tag *t = realloc(b->tags, cap * sizeof(*t));

		if (!t) {
			b->err = -ENOMEM;
			return;
		}
		b->tags = t;
		b->captags = cap;
	}
	b->tags[b->ntags++] = (struct steer_tag){ nlh->nlmsg_seq, item, what };
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static struct nlmsghdr *batch_hdr(struct steer_batch *b, uint16_t type, uint8_t fam,
				  uint16_t flags)
{
	char *p = batch_room(b);

	return p ? nftnl_nlmsg_build_hdr(p, type, fam, flags, b->seq++) : NULL;
}

static void add_table(struct steer_batch *b, uint8_t fam, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, fam);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, STEER_TABLE);
	nlh = batch_hdr(b, type, fam, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		batch_commit(b, nlh, -1, type == NFT_MSG_NEWTABLE ? "table" : "table removal");
	}
	nftnl_table_free(t);
}

/* The base chain of a (hook, priority) pair: "output", "input_m150", "forward_p10". */
static void chain_name(const struct steer_item *it, char *buf, size_t len)
{
	if (it->priority == 0)
		snprintf(buf, len, "%s", steer_hook_name(it->hook));
	else
		snprintf(buf, len, "%s_%c%" PRId32, steer_hook_name(it->hook),
			 it->priority < 0 ? 'm' : 'p',
			 it->priority < 0 ? -it->priority : it->priority);
}

static void add_chain(struct steer_batch *b, uint8_t fam, const struct steer_item *it)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	char name[64];

	if (!c) {
		b->err = -ENOMEM;
		return;
	}
	chain_name(it, name, sizeof(name));
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, fam);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, STEER_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook_num[it->hook]);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, it->priority);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = batch_hdr(b, NFT_MSG_NEWCHAIN, fam, NLM_F_CREATE);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		batch_commit(b, nlh, (int)it->index, "chain");
	}
	nftnl_chain_free(c);
}

/* ------------------------------------------------------------ expressions */

/* Adds @e to @r, or records ENOMEM (a NULL @e) in the batch. */
static void rule_add(struct steer_batch *b, struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_rule_add_expr(r, e);
}

static struct nftnl_expr *ex_meta(uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *ex_payload(uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	}
	return e;
}

static struct nftnl_expr *ex_cmp(const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return e;
}

static struct nftnl_expr *ex_mask(const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	return e;
}

static struct nftnl_expr *ex_range(const void *lo, const void *hi, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("range");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, lo, len);
		nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, hi, len);
	}
	return e;
}

static struct nftnl_expr *ex_lookup(uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, "__set%d");
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	}
	return e;
}

static struct nftnl_expr *ex_queue(const struct steer_item *it, enum steer_backend be)
{
	uint16_t total = (uint16_t)(it->queue_hi - it->queue_lo + 1);
	uint16_t flags = 0;
	struct nftnl_expr *e;

	if (be == STEER_BACKEND_NFT_QUEUE) {
		flags = (it->bypass ? NFT_QUEUE_FLAG_BYPASS : 0) |
			(it->fanout ? NFT_QUEUE_FLAG_CPU_FANOUT : 0);
		e = nftnl_expr_alloc("queue");
		if (e) {
			nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, it->queue_lo);
			nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, total);
			nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, flags);
		}
		return e;
	}
	/* The compat target checks the info's size against XT_ALIGN of the
	 * target's; libnftnl takes ownership of the buffer. */
	struct xt_NFQ_info_v3 *info = calloc(1, XT_NFQ_INFO_LEN);

	if (!info)
		return NULL;
	info->queuenum = it->queue_lo;
	info->queues_total = total;
	info->flags = (it->bypass ? NFQ_FLAG_BYPASS : 0) | (it->fanout ? NFQ_FLAG_CPU_FANOUT : 0);
	e = nftnl_expr_alloc("target");
	if (!e) {
		free(info);
		return NULL;
	}
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, XT_NFQ_INFO_LEN);
	return e;
}

/* ------------------------------------------------------------ anonymous sets */

/* An inclusive interval of @klen-byte big-endian keys. */
struct span {
	uint8_t lo[16], hi[16];
};

static int span_cmp(const void *a, const void *b, void *klen)
{
	return memcmp(((const struct span *)a)->lo, ((const struct span *)b)->lo,
		      *(const size_t *)klen);
}

/* @k + 1 in place; false when it wrapped (the interval reaches the end). */
static bool key_inc(uint8_t *k, size_t klen)
{
	for (size_t i = klen; i-- > 0;)
		if (++k[i] != 0)
			return true;
	return false;
}

/* Sorts @v and merges overlapping and adjacent intervals; the new count. */
static size_t spans_merge(struct span *v, size_t n, size_t klen)
{
	size_t out = 0;

	qsort_r(v, n, sizeof(*v), span_cmp, &klen);
	for (size_t i = 0; i < n; i++) {
		if (out > 0) {
			uint8_t next[16];
			struct span *last = &v[out - 1];

			memcpy(next, last->hi, klen);
			if (!key_inc(next, klen) || memcmp(v[i].lo, next, klen) <= 0) {
				if (memcmp(v[i].hi, last->hi, klen) > 0)
					memcpy(last->hi, v[i].hi, klen);
				continue;
			}
		}
		v[out++] = v[i];
	}
	return out;
}

static void set_elem(struct steer_batch *b, struct nftnl_set *s, const uint8_t *key,
		     size_t klen, bool end)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	if (!e) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)klen);
	if (end)
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
	nftnl_set_elem_add(s, e);
}

/* A set object naming anonymous set @id of the batch (for NEWSET and NEWSETELEM). */
static struct nftnl_set *set_obj(uint8_t fam, uint32_t id)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (s) {
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, fam);
		nftnl_set_set_str(s, NFTNL_SET_TABLE, STEER_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, "__set%d");
		nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	}
	return s;
}

/*
 * nft prints a set's keys by the byte order kept in its user data
 * (without it, names show as ""): interface names are host order,
 * addresses and ports network order.
 */
static void set_byteorder(struct steer_batch *b, struct nftnl_set *s, uint32_t type)
{
	enum { NFT_BYTEORDER_HOST = 1, NFT_BYTEORDER_BIG = 2 };
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(32);

	if (!u) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER,
			    type == NFT_TYPE_IFNAME || type == NFT_TYPE_INET_PROTOCOL ?
			    NFT_BYTEORDER_HOST : NFT_BYTEORDER_BIG);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
			   nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

/* Sends the elements gathered in *@s; *@s starts over empty. */
static void set_flush(struct steer_batch *b, struct nftnl_set **s, uint8_t fam, uint32_t id,
		      int item)
{
	struct nlmsghdr *nlh = batch_hdr(b, NFT_MSG_NEWSETELEM, fam, NLM_F_CREATE);

	if (nlh) {
		nftnl_set_elems_nlmsg_build_payload(nlh, *s);
		batch_commit(b, nlh, item, "set elements");
	}
	nftnl_set_free(*s);
	if (!(*s = set_obj(fam, id)))
		b->err = -ENOMEM;
}

/*
 * An anonymous constant set holding @v (intervals when @interval, else the
 * @lo keys alone), then a lookup of register 1 in it added to @r.
 */
static void add_set(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam, int item,
		    struct span *v, size_t n, size_t klen, uint32_t type, bool interval)
{
	uint32_t id = ++b->set_id;
	struct nftnl_set *s = set_obj(fam, id);
	struct nlmsghdr *nlh;
	size_t pending = 0;

	if (!s) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT |
			  (interval ? NFT_SET_INTERVAL : 0));
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, (uint32_t)klen);
	set_byteorder(b, s, type);
	nlh = batch_hdr(b, NFT_MSG_NEWSET, fam, NLM_F_CREATE);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		batch_commit(b, nlh, item, "set");
	}
	if (interval)
		n = spans_merge(v, n, klen);
	for (size_t i = 0; i < n && s && !b->err; i++) {
		uint8_t end[16];

		set_elem(b, s, v[i].lo, klen, false);
		pending++;
		memcpy(end, v[i].hi, klen);
		/* An interval that runs to the last key has no end element. */
		if (interval && key_inc(end, klen)) {
			set_elem(b, s, end, klen, true);
			pending++;
		}
		if (pending >= STEER_ELEMS_PER_MSG) {
			set_flush(b, &s, fam, id, item);
			pending = 0;
		}
	}
	if (pending && s)
		set_flush(b, &s, fam, id, item);
	nftnl_set_free(s);
	rule_add(b, r, ex_lookup(id));
}

/* ------------------------------------------------------------ match keys */

/*
 * Match register 1 against @v: one value (cmp), one interval (range, or a
 * prefix as bitwise + cmp), or a set. @v is scratch: sets sort it.
 */
static void match_spans(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam, int item,
			struct span *v, size_t n, size_t klen, uint32_t type)
{
	if (n == 1 && memcmp(v[0].lo, v[0].hi, klen) == 0) {
		rule_add(b, r, ex_cmp(v[0].lo, (uint32_t)klen));
	} else if (n == 1) {
		rule_add(b, r, ex_range(v[0].lo, v[0].hi, (uint32_t)klen));
	} else {
		add_set(b, r, fam, item, v, n, klen, type, true);
	}
}

static void match_protos(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam,
			 const struct steer_item *it, struct span *v)
{
	const struct steer_match *m = &it->m;

	rule_add(b, r, ex_meta(NFT_META_L4PROTO));
	for (size_t i = 0; i < m->nprotos; i++)
		v[i].lo[0] = v[i].hi[0] = m->protos[i];
	if (m->nprotos == 1)
		rule_add(b, r, ex_cmp(&m->protos[0], 1));
	else
		add_set(b, r, fam, (int)it->index, v, m->nprotos, 1, NFT_TYPE_INET_PROTOCOL, false);
}

static void match_ports(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam, int item,
			const struct steer_range *p, size_t n, uint32_t off, struct span *v)
{
	rule_add(b, r, ex_payload(NFT_PAYLOAD_TRANSPORT_HEADER, off, 2));
	for (size_t i = 0; i < n; i++) {
		uint16_t lo = htons(p[i].lo), hi = htons(p[i].hi);

		memcpy(v[i].lo, &lo, 2);
		memcpy(v[i].hi, &hi, 2);
	}
	match_spans(b, r, fam, item, v, n, 2, NFT_TYPE_INET_SERVICE);
}

/* The prefixes of @c of address family @af as intervals; their count. */
static size_t cidr_spans(const struct steer_cidr *c, size_t n, uint8_t af, struct span *v)
{
	size_t klen = af == 4 ? 4 : 16, out = 0;

	for (size_t i = 0; i < n; i++) {
		if (c[i].af != af)
			continue;
		for (size_t k = 0; k < klen; k++) {
			unsigned bits = c[i].plen > k * 8 ? c[i].plen - k * 8 : 0;
			uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

			v[out].lo[k] = c[i].addr[k] & mask;
			v[out].hi[k] = (uint8_t)(c[i].addr[k] | ~mask);
		}
		out++;
	}
	return out;
}

/* One prefix: payload & mask == network (cheaper than a range). */
static void match_prefix(struct steer_batch *b, struct nftnl_rule *r, const struct span *s,
			 size_t klen)
{
	uint8_t mask[16];

	for (size_t k = 0; k < klen; k++)
		mask[k] = (uint8_t)~(s->lo[k] ^ s->hi[k]);
	if (memcmp(s->lo, s->hi, klen) != 0)
		rule_add(b, r, ex_mask(mask, (uint32_t)klen));
	rule_add(b, r, ex_cmp(s->lo, (uint32_t)klen));
}

static void match_addrs(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam, int item,
			struct span *v, size_t n, uint8_t af, bool dst)
{
	size_t klen = af == 4 ? 4 : 16;
	uint32_t off = af == 4 ? (dst ? 16 : 12) : (dst ? 24 : 8);

	rule_add(b, r, ex_payload(NFT_PAYLOAD_NETWORK_HEADER, off, (uint32_t)klen));
	if (n == 1)
		match_prefix(b, r, &v[0], klen);
	else
		add_set(b, r, fam, item, v, n, klen,
			af == 4 ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR, true);
}

static void match_ifnames(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam, int item,
			  const char (*names)[IFNAMSIZ], size_t n, uint32_t key, struct span *v)
{
	rule_add(b, r, ex_meta(key));
	for (size_t i = 0; i < n; i++) {
		memset(v[i].lo, 0, sizeof(v[i].lo));
		strncpy((char *)v[i].lo, names[i], IFNAMSIZ - 1);
	}
	if (n == 1)
		rule_add(b, r, ex_cmp(v[0].lo, IFNAMSIZ));
	else
		add_set(b, r, fam, item, v, n, IFNAMSIZ, NFT_TYPE_IFNAME, false);
}

static void match_mark(struct steer_batch *b, struct nftnl_rule *r, const struct steer_match *m)
{
	uint32_t mask = m->mark_mask, val = m->mark & m->mark_mask;

	rule_add(b, r, ex_meta(NFT_META_MARK));
	if (mask != UINT32_MAX)
		rule_add(b, r, ex_mask(&mask, 4));
	rule_add(b, r, ex_cmp(&val, 4));
}

/* ------------------------------------------------------------ rules */

static void rule_comment(struct steer_batch *b, struct nftnl_rule *r, const char *list,
			 size_t index)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(128);
	char text[96];

	if (!u) {
		b->err = -ENOMEM;
		return;
	}
	snprintf(text, sizeof(text), "nfq-broker %s[%zu]", list ? list : "steer", index);
	nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, text);
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
			    nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

/* The matches of @it for address family @af (0: both) in rule @r. */
static void rule_matches(struct steer_batch *b, struct nftnl_rule *r, uint8_t fam,
			 const struct steer_item *it, uint8_t af, struct span *v)
{
	const struct steer_match *m = &it->m;
	int item = (int)it->index;
	size_t n;

	if (fam == NFPROTO_INET && af) {
		uint8_t nfp = af == 4 ? NFPROTO_IPV4 : NFPROTO_IPV6;

		rule_add(b, r, ex_meta(NFT_META_NFPROTO));
		rule_add(b, r, ex_cmp(&nfp, 1));
	}
	if (m->nindev)
		match_ifnames(b, r, fam, item, (const char (*)[IFNAMSIZ])m->indev, m->nindev,
			      NFT_META_IIFNAME, v);
	if (m->noutdev)
		match_ifnames(b, r, fam, item, (const char (*)[IFNAMSIZ])m->outdev, m->noutdev,
			      NFT_META_OIFNAME, v);
	if (m->has_mark)
		match_mark(b, r, m);
	if ((n = cidr_spans(m->src, m->nsrc, af, v)) > 0)
		match_addrs(b, r, fam, item, v, n, af, false);
	if ((n = cidr_spans(m->dst, m->ndst, af, v)) > 0)
		match_addrs(b, r, fam, item, v, n, af, true);
	if (m->nprotos)
		match_protos(b, r, fam, it, v);
	if (m->nsport)
		match_ports(b, r, fam, item, m->sport, m->nsport, 0, v);
	if (m->ndport)
		match_ports(b, r, fam, item, m->dport, m->ndport, 2, v);
}

static void add_rule(struct steer_batch *b, uint8_t fam, const struct steer_list *l,
		     const struct steer_item *it, uint8_t af, enum steer_backend be,
		     struct span *v)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;
	char chain[64];

	if (!r) {
		b->err = -ENOMEM;
		return;
	}
	chain_name(it, chain, sizeof(chain));
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, fam);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, STEER_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	rule_comment(b, r, l->name, it->index);
	rule_matches(b, r, fam, it, af, v);
	rule_add(b, r, nftnl_expr_alloc("counter"));
	rule_add(b, r, ex_queue(it, be));
	/* Sets of this rule went out first: a rule's lookup needs its set. */
	nlh = batch_hdr(b, NFT_MSG_NEWRULE, fam, NLM_F_CREATE | NLM_F_APPEND);
	if (nlh && !b->err) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		batch_commit(b, nlh, (int)it->index, "rule");
	}
	nftnl_rule_free(r);
}

/*
 * The address families one item needs rules for: inet with addresses of
 * both families becomes two rules (each with its own addresses); a key
 * given only in the other family leaves no rule for this one.
 */
static void item_rules(struct steer_batch *b, uint8_t fam, const struct steer_list *l,
		       const struct steer_item *it, enum steer_backend be, struct span *v)
{
	const struct steer_match *m = &it->m;
	static const uint8_t afs[] = { 4, 6 };

	if (fam == NFPROTO_IPV4 || fam == NFPROTO_IPV6) {
		add_rule(b, fam, l, it, fam == NFPROTO_IPV4 ? 4 : 6, be, v);
		return;
	}
	if (!m->nsrc && !m->ndst) {
		add_rule(b, fam, l, it, m->af, be, v);
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		uint8_t af = afs[i];

		if (m->af && m->af != af)
			continue;
		if ((m->nsrc && !cidr_spans(m->src, m->nsrc, af, v)) ||
		    (m->ndst && !cidr_spans(m->dst, m->ndst, af, v)))
			continue;
		add_rule(b, fam, l, it, af, be, v);
	}
}

static size_t list_max_elems(const struct steer_list *l)
{
	size_t max = 1;

	for (size_t i = 0; l && i < l->n; i++) {
		const struct steer_match *m = &l->items[i].m;
		size_t v[] = { m->nprotos, m->nsport, m->ndport, m->nsrc, m->ndst,
			       m->nindev, m->noutdev };

		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			if (v[k] > max)
				max = v[k];
	}
	return max;
}

/* The chain of @it was made already by an earlier item of the same family. */
static bool chain_seen(const struct steer_list *l, size_t upto, enum steer_family f,
		       const struct steer_item *it)
{
	for (size_t i = 0; i < upto; i++)
		if (l->items[i].family == f && l->items[i].hook == it->hook &&
		    l->items[i].priority == it->priority)
			return true;
	return false;
}

/* A table-wide rule flush ("nft flush table"): no hook goes away. */
static void flush_rules(struct steer_batch *b, uint8_t fam)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	if (!r) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, fam);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, STEER_TABLE);
	nlh = batch_hdr(b, NFT_MSG_DELRULE, fam, 0);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		batch_commit(b, nlh, -1, "rule flush");
	}
	nftnl_rule_free(r);
}

/*
 * One family's part of the transaction. Unregistering a hook makes
 * nfnetlink_queue drop every packet waiting in the namespace's queues
 * (nf_queue_nf_hook_drop), and while the broker reloads packets do wait:
 * so a replace never deletes a base chain or a table. It flushes the
 * rules of the tables that exist, creates what is missing, and writes
 * the rules again; a chain no longer wanted stays, empty (policy accept),
 * until the namespace is released (steer_remove deletes the tables).
 */
static void family_tables(struct steer_batch *b, const struct steer_list *l,
			  enum steer_family f, enum steer_backend be,
			  const struct steer_installed *have, struct span *v)
{
	uint8_t fam = family_nfproto[f];
	bool any = false, exists = have && have->table[f];

	for (size_t i = 0; l && i < l->n; i++)
		any |= l->items[i].family == f;
	if (!l) {
		/* Removal of what exists; not knowing, create-if-missing then
		 * delete: gone either way. */
		if (!have)
			add_table(b, fam, NFT_MSG_NEWTABLE);
		if (!have || exists)
			add_table(b, fam, NFT_MSG_DELTABLE);
		return;
	}
	if (any || exists)
		add_table(b, fam, NFT_MSG_NEWTABLE);    /* create if missing */
	if (exists)
		flush_rules(b, fam);
	if (!any)
		return;
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].family == f && !chain_seen(l, i, f, &l->items[i]))
			add_chain(b, fam, &l->items[i]);
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].family == f)
			item_rules(b, fam, l, &l->items[i], be, v);
}

int steer_batch_build(struct steer_batch *b, const struct steer_list *l,
		      enum steer_backend be, const struct steer_installed *have, uint32_t seq)
{
	static const enum steer_family order[] = { STEER_FAMILY_INET, STEER_FAMILY_IP,
						   STEER_FAMILY_IP6 };
	struct span *v = calloc(list_max_elems(l), sizeof(*v));
	char *p;

	memset(b, 0, sizeof(*b));
	b->seq = seq;
	if (!v)
		return -ENOMEM;
	if ((p = batch_room(b)) != NULL)
		batch_commit(b, nftnl_batch_begin(p, b->seq++), -1, "batch");
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		family_tables(b, l, order[i], be, have, v);
	if ((p = batch_room(b)) != NULL)
		batch_commit(b, nftnl_batch_end(p, b->seq++), -1, "batch");
	free(v);
	if (b->err) {
		int err = b->err;

		steer_batch_free(b);
		return err;
	}
	return 0;
}

const struct steer_tag *steer_batch_tag(const struct steer_batch *b, uint32_t seq)
{
	for (size_t i = 0; i < b->ntags; i++)
		if (b->tags[i].seq == seq)
			return &b->tags[i];
	return NULL;
}

/* ------------------------------------------------------------ the socket */

int steer_socket_setup(int fd)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int one = 1;

	/* Connected to the kernel, the socket takes nothing from anyone else:
	 * a process in the namespace with CAP_NET_ADMIN could otherwise send
	 * it forged errors or floods once it has a port. */
	if (connect(fd, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	/* Errors without the request echoed back, with the kernel's text. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	return 0;
}

/* A batch larger than the socket's send buffer is refused with EMSGSIZE. */
static void sndbuf_fit(int fd, size_t len)
{
	int want = (int)(len + 4096), have = 0;
	socklen_t sl = sizeof(have);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &sl) == 0 && have >= want)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

static ssize_t nl_send(int fd, const void *buf, size_t len)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t n = sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&kernel,
			   sizeof(kernel));

	if (n < 0)
		return -errno;
	return (size_t)n == len ? n : -EMSGSIZE;
}

/* Whatever an earlier exchange left unread is not about the next one
 * (bounded: the socket is connected to the kernel, nobody floods it). */
static void drain_stale(int fd)
{
	char buf[64];

	for (int i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) > 0; i++)
		;
}

/*
 * Run dump request @nlh on @fd, calling @cb for every answer. A dump is
 * filled inside recv(), so every read finds data until NLMSG_DONE.
 */
static int nl_dump(int fd, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE] __attribute__((aligned(4)));
	uint32_t seq = nlh->nlmsg_seq;
	int rc;

	drain_stale(fd);
	rc = (int)nl_send(fd, nlh, nlh->nlmsg_len);
	if (rc < 0)
		return rc;
	for (int round = 0; round < 100000; round++) {
		ssize_t got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (got < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		rc = mnl_cb_run(buf, (size_t)got, seq, 0, cb, data);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	return -E2BIG;
}

/*
 * Whether table STEER_TABLE exists in family @fam: a GETTABLE by name, not
 * a dump (a tenant with NET_ADMIN decides how big a dump of its namespace
 * is). 1, 0, or -errno.
 */
static int table_exists(int fd, uint8_t fam)
{
	char buf[MNL_SOCKET_BUFFER_SIZE] __attribute__((aligned(4)));
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	uint32_t seq = 0x7ab1e + fam;
	int rc;

	if (!t)
		return -ENOMEM;
	memset(buf, 0, 512);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, fam, NLM_F_ACK, seq);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, STEER_TABLE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	drain_stale(fd);
	rc = (int)nl_send(fd, nlh, nlh->nlmsg_len);
	if (rc < 0)
		return rc;
	/* Answered inside the send: the table, then an ack; or an error. */
	for (int round = 0; round < 4; round++) {
		ssize_t got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (got < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		rc = mnl_cb_run(buf, (size_t)got, seq, 0, NULL, NULL);
		if (rc == MNL_CB_STOP)
			return 1;
		if (rc < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	return 1;
}

int steer_read_installed(int fd, struct steer_installed *have)
{
	memset(have, 0, sizeof(*have));
	for (size_t f = 0; f < sizeof(family_nfproto); f++) {
		int rc = table_exists(fd, family_nfproto[f]);

		if (rc < 0)
			return rc;
		have->table[f] = rc == 1;
	}
	return 0;
}

/* The kernel's text of an extended ack, if it sent one. */
static void ext_ack_msg(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	size_t off;

	buf[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	off = sizeof(*err);           /* with NLM_F_CAPPED, just the header */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += err->msg.nlmsg_len - sizeof(err->msg);
	mnl_attr_for_each(a, nlh, off)
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(buf, len, "%s", mnl_attr_get_str(a));
}

/*
 * Read everything the kernel queued for us (non-blocking): the first
 * error of the batch, with what it was about, into @res.
 */
static void collect_errors(int fd, const struct steer_batch *b, struct steer_result *res)
{
	char buf[16384] __attribute__((aligned(4)));
	ssize_t n;

	for (int round = 0; round < 4096; round++) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return;
		int left = (int)n;

		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;
			const struct steer_tag *t;

			/* Only the kernel can send here (the socket is connected
			 * to it); only errors about this batch count. */
			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (e->error == 0 || res->err || !steer_batch_tag(b, e->msg.nlmsg_seq))
				continue;
			res->err = e->error;
			t = steer_batch_tag(b, e->msg.nlmsg_seq);
			res->what = t ? t->what : "batch";
			res->item = t ? t->item : -1;
			ext_ack_msg(nlh, res->msg, sizeof(res->msg));
		}
	}
}

/* One batch for @l with backend @be, sent and answered. */
static int send_batch(int fd, const struct steer_list *l, enum steer_backend be,
		      struct steer_result *res)
{
	struct steer_installed have;
	struct steer_batch b;
	int rc;

	memset(res, 0, sizeof(*res));
	res->item = -1;
	rc = steer_read_installed(fd, &have);
	if (rc < 0) {
		res->err = rc;
		res->what = "reading the installed tables";
		return rc;
	}
	/* Nothing to clear or remove: no transaction (each one with a
	 * deletion makes the kernel's next commit wait a grace period). */
	res->tables = have.table[0] || have.table[1] || have.table[2];
	if ((!l || !l->n) && !res->tables)
		return 0;
	rc = steer_batch_build(&b, l, be, &have, 1);
	if (rc < 0) {
		res->err = rc;
		res->what = "building the batch";
		return rc;
	}
	sndbuf_fit(fd, b.len);
	drain_stale(fd);
	res->messages = b.ntags;
	rc = (int)nl_send(fd, b.buf, b.len);
	if (rc < 0) {
		res->err = rc;
		res->what = "sending the batch";
	} else {
		collect_errors(fd, &b, res);
	}
	steer_batch_free(&b);
	if (!res->err)
		res->tables = l != NULL && (l->n || res->tables);
	return res->err;
}

/* The kernel refused the queue expression itself: it lacks nft_queue. */
static bool no_native_queue(const struct steer_result *r)
{
	return r->what && strcmp(r->what, "rule") == 0 &&
	       (r->err == -ENOENT || r->err == -EOPNOTSUPP);
}

int steer_apply(int fd, const struct steer_list *l, struct steer_result *res)
{
	static const struct steer_list none = { 0 };
	enum steer_backend known = steer_backend(), be = known;
	bool any = l && l->n > 0;
	int rc;

	if (!l)
		l = &none;      /* no rules; NULL to the builder means removal */
	if (be == STEER_BACKEND_UNKNOWN && any)
		be = STEER_BACKEND_NFT_QUEUE;
	rc = send_batch(fd, l, be == STEER_BACKEND_UNKNOWN ? STEER_BACKEND_XT_NFQUEUE : be, res);
	if (rc < 0 && known == STEER_BACKEND_UNKNOWN && no_native_queue(res)) {
		/* Known from now on, whatever the compat target's fate: the
		 * kernel would only try to load nft_queue again. */
		be = STEER_BACKEND_XT_NFQUEUE;
		known = be;
		__atomic_store_n(&backend_known, be, __ATOMIC_RELAXED);
		rc = send_batch(fd, l, be, res);
		res->backend_found = true;
	}
	if (rc == 0 && any && known == STEER_BACKEND_UNKNOWN) {
		__atomic_store_n(&backend_known, be, __ATOMIC_RELAXED);
		res->backend_found = true;
	}
	res->backend = any ? be : steer_backend();
	return rc;
}

int steer_remove(int fd, struct steer_result *res)
{
	memset(res, 0, sizeof(*res));
	res->backend = steer_backend();
	return send_batch(fd, NULL, STEER_BACKEND_XT_NFQUEUE, res);
}

/* ------------------------------------------------------------ counters */

struct dump_ctx {
	struct steer_counter *out;
	size_t n;
	const char *list;
	size_t rules;
};

/* "nfq-broker NAME[i]": the item index, or -1 when the rule is not ours. */
static int comment_item(const struct nftnl_rule *r, const char *list)
{
	uint32_t len = 0;
	const uint8_t *u = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
	char want[80];
	size_t wl;
	unsigned long idx;
	char *end;

	/* TLV: type, length, then the NUL-terminated comment. */
	if (!u || len < 3 || u[0] != NFTNL_UDATA_RULE_COMMENT || (uint32_t)u[1] + 2 > len)
		return -1;
	wl = (size_t)snprintf(want, sizeof(want), "nfq-broker %s[", list ? list : "steer");
	if (u[1] < wl + 2 || memcmp(u + 2, want, wl) != 0)
		return -1;
	idx = strtoul((const char *)u + 2 + wl, &end, 10);
	return *end == ']' && idx < 1u << 20 ? (int)idx : -1;
}

static int dump_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	int item;

	if (!r) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 ||
	    strcmp(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), STEER_TABLE) != 0)
		goto out;
	item = comment_item(r, d->list);
	if (item < 0 || (size_t)item >= d->n)
		goto out;
	d->rules++;
	d->out[item].rules++;
	it = nftnl_expr_iter_create(r);
	while (it && (e = nftnl_expr_iter_next(it)) != NULL) {
		if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0) {
			d->out[item].packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
			d->out[item].bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		}
	}
	nftnl_expr_iter_destroy(it);
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int steer_counters(int fd, const struct steer_list *l, struct steer_counter *out, size_t n)
{
	struct dump_ctx d = { out, n, l ? l->name : NULL, 0 };

	memset(out, 0, n * sizeof(*out));
	/* One dump per family: with a table name, the kernel's dump stops
	 * after the first table of that name, whatever the family. */
	for (size_t f = 0; f < sizeof(family_nfproto); f++) {
		char buf[512] __attribute__((aligned(4))) = { 0 };
		struct nftnl_rule *r = nftnl_rule_alloc();
		struct nlmsghdr *nlh;
		int rc;

		if (!r)
			return -ENOMEM;
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, family_nfproto[f], NLM_F_DUMP,
					    0x5e7 + (uint32_t)f);
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, STEER_TABLE);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
		rc = nl_dump(fd, nlh, dump_rule_cb, &d);
		if (rc < 0)
			return rc;
	}
	return (int)d.rules;
}
