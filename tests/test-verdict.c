/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/verdict.c: which netlink messages a verdict turns into,
 * batching and when it must not happen, ordering, and the counters.
 *
 * The queue wraps one end of an AF_UNIX datagram socketpair
 * (queue_new_unchecked), so every byte the library sends can be read and
 * parsed from the other end. Packets are synthetic NFQNL_MSG_PACKET messages
 * fed through nfqb_queue_handle().
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
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "internal.h"
#include "nfq-msg.h"

#define QNUM 5
#define QNUM2 6

/* ---- packets in ----------------------------------------------------- */

struct mbuf {
	_Alignas(8) uint8_t b[8192];
	size_t len;
};

static void pkt(struct mbuf *m, uint16_t queue, uint32_t id)
{
	static const uint8_t pl[12] = { 0x45, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct nlmsghdr *nlh;

	assert_true(m->len + 256 < sizeof(m->b));
	nlh = tmsg_packet_begin(m->b + m->len, queue, id, 0x0800, NF_INET_LOCAL_OUT);
	mnl_attr_put_u32(nlh, NFQA_MARK, htonl(0x10));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pl), pl);
	m->len += nlh->nlmsg_len;
}

/* ---- verdicts out --------------------------------------------------- */

struct vmsg {
	uint8_t type;             /* NFQNL_MSG_VERDICT or _BATCH */
	uint16_t queue;
	uint32_t id, verdict;
	bool has_mark;
	uint32_t mark;
	bool has_payload;
	const uint8_t *payload;
	size_t payload_len;
};

struct sent {
	int datagrams;
	int n;
	struct vmsg v[64];
	uint8_t *buf;             /* every datagram read, back to back */
	size_t used;
};

#define SENT_BUF (512u * 1024u)

static void parse_verdict(const struct nlmsghdr *nlh, struct vmsg *v)
{
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	bool has_hdr = false;

	assert_int_equal(nlh->nlmsg_type >> 8, NFNL_SUBSYS_QUEUE);
	assert_true(nlh->nlmsg_flags & NLM_F_REQUEST);
	v->type = nlh->nlmsg_type & 0xff;
	v->queue = ntohs(nfg->res_id);
	mnl_attr_for_each(a, nlh, sizeof(*nfg)) {
		switch (mnl_attr_get_type(a)) {
		case NFQA_VERDICT_HDR: {
			struct nfqnl_msg_verdict_hdr h;

			assert_int_equal(mnl_attr_get_payload_len(a), sizeof(h));
			memcpy(&h, mnl_attr_get_payload(a), sizeof(h));
			v->id = ntohl(h.id);
			v->verdict = ntohl(h.verdict);
			has_hdr = true;
			break;
		}
		case NFQA_MARK:
			assert_int_equal(mnl_attr_get_payload_len(a), 4);
			v->has_mark = true;
			v->mark = ntohl(mnl_attr_get_u32(a));
			break;
		case NFQA_PAYLOAD:
			v->has_payload = true;
			v->payload = mnl_attr_get_payload(a);
			v->payload_len = mnl_attr_get_payload_len(a);
			break;
		default:
			fail_msg("unexpected attribute %d", mnl_attr_get_type(a));
		}
	}
	/* Every attribute must have been consumed: nothing cut short. */
	assert_ptr_equal((const uint8_t *)a, (const uint8_t *)nlh + nlh->nlmsg_len);
	assert_true(has_hdr);
}

/* Everything sent so far, without waiting for more. */
static void read_sent(int peer, struct sent *s)
{
	for (;;) {
		uint8_t *at = s->buf + s->used;
		ssize_t n = recv(peer, at, SENT_BUF - s->used, MSG_DONTWAIT | MSG_TRUNC);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)at;
		int rem;

		if (n < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			return;
		}
		assert_true(n > 0 && (size_t)n <= SENT_BUF - s->used);
		s->used += MNL_ALIGN((size_t)n);
		s->datagrams++;
		rem = (int)n;
		while (mnl_nlmsg_ok(nlh, rem)) {
			assert_true(s->n < 64);
			parse_verdict(nlh, &s->v[s->n++]);
			nlh = mnl_nlmsg_next(nlh, &rem);
		}
		assert_int_equal(rem, 0);
	}
}

static void expect_msg(const struct vmsg *v, uint8_t type, uint16_t queue,
		       uint32_t id, uint32_t verdict)
{
	assert_int_equal(v->type, type);
	assert_int_equal(v->queue, queue);
	assert_int_equal(v->id, id);
	assert_int_equal(v->verdict, verdict);
}

static void expect_plain(const struct vmsg *v, uint8_t type, uint16_t queue,
			 uint32_t id, uint32_t verdict)
{
	expect_msg(v, type, queue, id, verdict);
	assert_false(v->has_mark);
	assert_false(v->has_payload);
}

/* ---- fixture ---------------------------------------------------------- */

struct fx;
typedef void (*action)(struct nfqb_packet *p, struct fx *f);

struct fx {
	struct nfqb_queue *q;
	int peer;
	struct mbuf m;
	struct sent s;
	action act;
	int calls;
	struct nfqb_packet *copy[8];
	int ncopy;
};

static void on_packet(struct nfqb_packet *p, void *user)
{
	struct fx *f = user;

	f->calls++;
	if (f->act)
		f->act(p, f);
}

/* A binding without asking the kernel (bind's last step). */
static void test_bind(struct nfqb_queue *q, uint16_t num, nfqb_callback cb, void *user)
{
	assert_int_equal(binding_add(q, num, cb, user, false), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->s.buf = malloc(SENT_BUF);
	f->q = tmsg_queue_pair(&f->peer, 0);
	if (!f->q || !f->s.buf)
		return -1;
	test_bind(f->q, QNUM, on_packet, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < f->ncopy; i++)
		nfqb_packet_release(f->copy[i]);
	/* detach: the bindings are fake, an unbind would wait for an ack. */
	nfqb_queue_detach(f->q);
	if (f->peer >= 0)
		close(f->peer);
	free(f->s.buf);
	free(f);
	return 0;
}

static struct nfqb_queue_stats stats(struct nfqb_queue *q)
{
	struct nfqb_queue_stats st;

	nfqb_queue_get_stats(q, &st);
	return st;
}

/* Feed packets @first..@last of queue @queue through one handle call. */
static void feed(struct fx *f, uint16_t queue, uint32_t first, uint32_t last)
{
	int before = f->calls;

	f->m.len = 0;
	for (uint32_t id = first; id != last + 1; id++)
		pkt(&f->m, queue, id);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), (int)(last - first + 1));
	assert_int_equal(f->calls - before, (int)(last - first + 1));
}

/* ---- actions ---------------------------------------------------------- */

static void act_accept(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_accept(p), 0);
	assert_true(nfqb_packet_decided(p));
	(void)f;
}

static void act_drop(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_drop(p), 0);
	(void)f;
}

/* ---- tests ------------------------------------------------------------ */

static void test_accepts_batched(void **state)
{
	struct fx *f = *state;

	f->act = act_accept;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT_BATCH, QNUM, 3, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 3);
	assert_int_equal(stats(f->q).batches, 1);
	assert_int_equal(stats(f->q).batched, 3);
	assert_int_equal(stats(f->q).send_errors, 0);
}

static void test_single_accept_plain(void **state)
{
	struct fx *f = *state;

	f->act = act_accept;
	feed(f, QNUM, 41, 41);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 41, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 1);
	assert_int_equal(stats(f->q).batches, 0);
	assert_int_equal(stats(f->q).batched, 0);
}

static void test_drop(void **state)
{
	struct fx *f = *state;

	f->act = act_drop;
	feed(f, QNUM, 8, 8);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 8, NF_DROP);
	assert_int_equal(stats(f->q).verdicts, 1);
}

static void act_mark_even(struct nfqb_packet *p, struct fx *f)
{
	if (nfqb_packet_id(p) % 2 == 0)
		assert_int_equal(nfqb_packet_set_mark(p, 0x42), 0);
	act_accept(p, f);
}

static void test_mark_not_batched(void **state)
{
	struct fx *f = *state;

	f->act = act_mark_even;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	/* The marked accept of 2 goes alone and first; the batch (1, 3) after. */
	assert_int_equal(f->s.n, 2);
	expect_msg(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_ACCEPT);
	assert_true(f->s.v[0].has_mark);
	assert_int_equal(f->s.v[0].mark, 0x42);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT_BATCH, QNUM, 3, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 3);
	assert_int_equal(stats(f->q).batches, 1);
	assert_int_equal(stats(f->q).batched, 2);
}

static void act_mark_drop(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_set_mark(p, 0), 0);
	act_drop(p, f);
}

static void test_mark_zero_sent(void **state)
{
	struct fx *f = *state;

	f->act = act_mark_drop;
	feed(f, QNUM, 3, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_msg(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 3, NF_DROP);
	assert_true(f->s.v[0].has_mark);
	assert_int_equal(f->s.v[0].mark, 0);
}

static void act_mark_bytes_drop(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_set_mark(p, 0x01020304), 0);
	act_drop(p, f);
}

static const uint8_t new_payload[5] = { 0xde, 0xad, 0xbe, 0xef, 0x01 };

static void act_payload(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_set_payload(p, new_payload, sizeof(new_payload)), 0);
	assert_int_equal(nfqb_packet_set_mark(p, 9), 0);
	act_accept(p, f);
}

static void test_payload_sent(void **state)
{
	struct fx *f = *state;

	f->act = act_payload;
	feed(f, QNUM, 12, 12);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_msg(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 12, NF_ACCEPT);
	assert_true(f->s.v[0].has_payload);
	assert_int_equal(f->s.v[0].payload_len, sizeof(new_payload));
	assert_memory_equal(f->s.v[0].payload, new_payload, sizeof(new_payload));
	assert_true(f->s.v[0].has_mark);
	assert_int_equal(f->s.v[0].mark, 9);
	assert_int_equal(stats(f->q).batches, 0);
}

static void act_big_payload(struct nfqb_packet *p, struct fx *f)
{
	size_t len = NFQB_MAX_SET_PAYLOAD;
	uint8_t *big = malloc(len + 16);

	/* nla_len is 16 bits and counts its own 4-byte header. */
	assert_int_equal(NFQB_MAX_SET_PAYLOAD, 65531);
	assert_non_null(big);
	for (size_t i = 0; i < len + 16; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(nfqb_packet_set_payload(p, big, 65536), -EMSGSIZE);
	assert_int_equal(nfqb_packet_set_payload(p, big, 65535), -EMSGSIZE);
	assert_int_equal(nfqb_packet_set_payload(p, big, len + 1), -EMSGSIZE);
	assert_int_equal(nfqb_packet_payload_len(p), 12);   /* unchanged */
	assert_int_equal(nfqb_packet_set_payload(p, big, len), 0);
	assert_int_equal(nfqb_packet_payload_len(p), (int)len);
	free(big);
	act_accept(p, f);
}

static void test_payload_size_limit(void **state)
{
	struct fx *f = *state;

	f->act = act_big_payload;
	feed(f, QNUM, 1, 1);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_msg(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 1, NF_ACCEPT);
	assert_true(f->s.v[0].has_payload);
	assert_int_equal(f->s.v[0].payload_len, NFQB_MAX_SET_PAYLOAD);
	for (size_t i = 0; i < NFQB_MAX_SET_PAYLOAD; i++)
		if (f->s.v[0].payload[i] != (uint8_t)(i * 7))
			fail_msg("payload byte %zu differs", i);
}

static void act_repeat(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_repeat(p), 0);
	(void)f;
}

static void test_repeat(void **state)
{
	struct fx *f = *state;

	f->act = act_repeat;
	feed(f, QNUM, 2, 2);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_REPEAT);
}

static void act_requeue(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_requeue(p, 7), 0);
	(void)f;
}

static void test_requeue(void **state)
{
	struct fx *f = *state;

	f->act = act_requeue;
	feed(f, QNUM, 2, 2);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_QUEUE | (7u << 16));
}

static void act_twice(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_drop(p), 0);
	assert_int_equal(nfqb_packet_accept(p), -EALREADY);
	assert_int_equal(nfqb_packet_drop(p), -EALREADY);
	assert_int_equal(nfqb_packet_requeue(p, 1), -EALREADY);
	assert_int_equal(nfqb_packet_set_mark(p, 1), -EALREADY);
	assert_int_equal(nfqb_packet_set_payload(p, "x", 1), -EALREADY);
	(void)f;
}

static void test_second_verdict_refused(void **state)
{
	struct fx *f = *state;

	f->act = act_twice;
	feed(f, QNUM, 4, 4);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 4, NF_DROP);
	assert_int_equal(stats(f->q).verdicts, 1);
}

static void act_bad_verdicts(struct nfqb_packet *p, struct fx *f)
{
	assert_int_equal(nfqb_packet_verdict(p, NF_STOLEN), -EINVAL);
	assert_int_equal(nfqb_packet_verdict(p, NF_MAX_VERDICT + 1), -EINVAL);
	assert_int_equal(nfqb_packet_verdict(p, 0xff), -EINVAL);
	assert_false(nfqb_packet_decided(p));
	assert_int_equal(nfqb_packet_verdict(p, NFQB_ACCEPT), 0);
	(void)f;
}

static void test_bad_verdict_values(void **state)
{
	struct fx *f = *state;

	f->act = act_bad_verdicts;
	feed(f, QNUM, 4, 4);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 4, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 1);
}

static void act_retain_first(struct nfqb_packet *p, struct fx *f)
{
	if (nfqb_packet_id(p) == 1) {
		f->copy[f->ncopy] = nfqb_packet_retain(p);
		assert_non_null(f->copy[f->ncopy]);
		f->ncopy++;
		return;
	}
	act_accept(p, f);
}

static void test_retained_blocks_batch(void **state)
{
	struct fx *f = *state;

	f->act = act_retain_first;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	/* A batch up to 3 would accept 1 too: 2 and 3 must go alone. */
	assert_int_equal(f->s.n, 2);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_ACCEPT);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT, QNUM, 3, NF_ACCEPT);
	assert_int_equal(stats(f->q).batches, 0);
	assert_int_equal(stats(f->q).unsettled, 0);

	/* Outside the callback the copy's verdict leaves at once. */
	assert_int_equal(nfqb_packet_accept(f->copy[0]), 0);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 3);
	expect_plain(&f->s.v[2], NFQNL_MSG_VERDICT, QNUM, 1, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 3);

	/* Nothing waits any more: batching is back. */
	f->act = act_accept;
	feed(f, QNUM, 4, 5);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 4);
	expect_plain(&f->s.v[3], NFQNL_MSG_VERDICT_BATCH, QNUM, 5, NF_ACCEPT);
}

static void act_copy_mark_later(struct nfqb_packet *p, struct fx *f)
{
	f->copy[f->ncopy] = nfqb_packet_retain(p);
	assert_non_null(f->copy[f->ncopy]);
	f->ncopy++;
}

static void test_copy_verdict_with_mark_and_payload(void **state)
{
	struct fx *f = *state;
	struct nfqb_packet *c;

	f->act = act_copy_mark_later;
	feed(f, QNUM, 21, 22);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 0);
	c = f->copy[0];
	assert_int_equal(nfqb_packet_set_mark(c, 0x77), 0);
	assert_int_equal(nfqb_packet_set_payload(c, new_payload, 3), 0);
	assert_int_equal(nfqb_packet_set_payload(c, new_payload, sizeof(new_payload)), 0);
	assert_int_equal(nfqb_packet_get_mark(c), 0x77);
	assert_int_equal(nfqb_packet_drop(c), 0);
	assert_int_equal(nfqb_packet_repeat(f->copy[1]), 0);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 2);
	expect_msg(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 21, NF_DROP);
	assert_true(f->s.v[0].has_mark);
	assert_int_equal(f->s.v[0].mark, 0x77);
	assert_true(f->s.v[0].has_payload);
	assert_int_equal(f->s.v[0].payload_len, sizeof(new_payload));
	assert_memory_equal(f->s.v[0].payload, new_payload, sizeof(new_payload));
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT, QNUM, 22, NF_REPEAT);
	assert_int_equal(nfqb_packet_accept(c), -EALREADY);
	assert_int_equal(stats(f->q).verdicts, 2);
}

static void act_accept_not_first(struct nfqb_packet *p, struct fx *f)
{
	if (nfqb_packet_id(p) != 1)
		act_accept(p, f);
}

static void test_unsettled_blocks_batch(void **state)
{
	struct fx *f = *state;

	f->act = act_accept_not_first;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(stats(f->q).unsettled, 1);
	assert_int_equal(f->s.n, 2);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_ACCEPT);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT, QNUM, 3, NF_ACCEPT);
	/* Packet 1 waits in the kernel for good: no batch may ever cover it. */
	f->act = act_accept;
	feed(f, QNUM, 4, 5);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 4);
	expect_plain(&f->s.v[2], NFQNL_MSG_VERDICT, QNUM, 4, NF_ACCEPT);
	expect_plain(&f->s.v[3], NFQNL_MSG_VERDICT, QNUM, 5, NF_ACCEPT);
	assert_int_equal(stats(f->q).batches, 0);
	assert_int_equal(stats(f->q).unsettled, 1);
}

static void act_drop_first(struct nfqb_packet *p, struct fx *f)
{
	if (nfqb_packet_id(p) == 1)
		act_drop(p, f);
	else
		act_accept(p, f);
}

static void test_single_before_batch(void **state)
{
	struct fx *f = *state;

	f->act = act_drop_first;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 2);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 1, NF_DROP);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT_BATCH, QNUM, 3, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 3);
	assert_int_equal(stats(f->q).batched, 2);
}

static void act_drop_middle(struct nfqb_packet *p, struct fx *f)
{
	if (nfqb_packet_id(p) == 2)
		act_drop(p, f);
	else
		act_accept(p, f);
}

static void test_batch_after_drop_of_lower_id(void **state)
{
	struct fx *f = *state;

	/* The batch up to 3 would accept 2 if it reached the kernel before
	 * the drop of 2: the drop must be sent first. */
	f->act = act_drop_middle;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 2);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_DROP);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT_BATCH, QNUM, 3, NF_ACCEPT);
}

static void act_drop_then_payload(struct nfqb_packet *p, struct fx *f)
{
	if (nfqb_packet_id(p) == 1)
		act_drop(p, f);
	else if (nfqb_packet_id(p) == 2)
		act_accept(p, f);
	else
		act_payload(p, f);
}

static void test_immediate_after_gathered(void **state)
{
	struct fx *f = *state;

	/* The payload verdict of 3 leaves at once, but must not overtake the
	 * drop of 1 (gathered) nor the accept of 2 (pending batch). */
	f->act = act_drop_then_payload;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 3);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 1, NF_DROP);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT, QNUM, 2, NF_ACCEPT);
	expect_msg(&f->s.v[2], NFQNL_MSG_VERDICT, QNUM, 3, NF_ACCEPT);
	assert_true(f->s.v[2].has_payload);
}

static void act_copy_in_later_callback(struct nfqb_packet *p, struct fx *f)
{
	switch (nfqb_packet_id(p)) {
	case 1:
		act_copy_mark_later(p, f);
		break;
	case 2:
		act_drop(p, f);
		break;
	default:
		/* The copy's verdict is immediate: the gathered drop goes first. */
		assert_int_equal(nfqb_packet_accept(f->copy[0]), 0);
		act_accept(p, f);
	}
}

static void test_copy_verdict_in_later_callback(void **state)
{
	struct fx *f = *state;

	f->act = act_copy_in_later_callback;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 3);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT, QNUM, 2, NF_DROP);
	expect_plain(&f->s.v[1], NFQNL_MSG_VERDICT, QNUM, 1, NF_ACCEPT);
	expect_plain(&f->s.v[2], NFQNL_MSG_VERDICT, QNUM, 3, NF_ACCEPT);
	assert_int_equal(stats(f->q).verdicts, 3);
	assert_int_equal(stats(f->q).unsettled, 0);
}

static void test_batching_off(void **state)
{
	struct fx *f = *state;

	nfqb_queue_set_batching(f->q, false);
	f->act = act_accept;
	feed(f, QNUM, 1, 3);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 3);
	for (int i = 0; i < 3; i++)
		expect_plain(&f->s.v[i], NFQNL_MSG_VERDICT, QNUM, (uint32_t)i + 1, NF_ACCEPT);
	/* Small verdicts given in the callbacks share one send. */
	assert_int_equal(f->s.datagrams, 1);
	assert_int_equal(stats(f->q).batches, 0);
	assert_int_equal(stats(f->q).verdicts, 3);

	nfqb_queue_set_batching(f->q, true);
	feed(f, QNUM, 4, 6);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 4);
	expect_plain(&f->s.v[3], NFQNL_MSG_VERDICT_BATCH, QNUM, 6, NF_ACCEPT);
}

static void test_batch_per_queue_number(void **state)
{
	struct fx *f = *state;

	test_bind(f->q, QNUM2, on_packet, f);
	f->act = act_accept;
	f->m.len = 0;
	pkt(&f->m, QNUM, 1);
	pkt(&f->m, QNUM2, 1);
	pkt(&f->m, QNUM, 2);
	pkt(&f->m, QNUM2, 2);
	pkt(&f->m, QNUM2, 3);
	assert_int_equal(nfqb_queue_handle(f->q, f->m.b, f->m.len), 5);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 2);
	for (int i = 0; i < 2; i++) {
		const struct vmsg *v = &f->s.v[i];

		expect_plain(v, NFQNL_MSG_VERDICT_BATCH, v->queue, v->queue == QNUM ? 2 : 3,
			     NF_ACCEPT);
	}
	assert_int_not_equal(f->s.v[0].queue, f->s.v[1].queue);
	assert_int_equal(stats(f->q).batches, 2);
	assert_int_equal(stats(f->q).batched, 5);
}

static void test_batch_id_wraps(void **state)
{
	struct fx *f = *state;

	f->act = act_accept;
	feed(f, QNUM, 0xfffffffeu, 1);   /* ids fffffffe, ffffffff, 0, 1 */
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT_BATCH, QNUM, 1, NF_ACCEPT);
	assert_int_equal(stats(f->q).batched, 4);
}

static void test_verdict_batch_call(void **state)
{
	struct fx *f = *state;

	assert_int_equal(nfqb_queue_verdict_batch(f->q, QNUM, 10, NFQB_REPEAT), 0);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	assert_int_equal(f->s.datagrams, 1);
	expect_plain(&f->s.v[0], NFQNL_MSG_VERDICT_BATCH, QNUM, 10, NF_REPEAT);
	assert_int_equal(stats(f->q).batches, 1);

	assert_int_equal(nfqb_queue_verdict_batch(f->q, QNUM, 10, 0x1ff), -EINVAL);
	assert_int_equal(nfqb_queue_verdict_batch(f->q, QNUM, 10, NF_STOLEN), -EINVAL);
	assert_int_equal(nfqb_queue_verdict_batch(NULL, QNUM, 10, NFQB_ACCEPT), -EINVAL);
	read_sent(f->peer, &f->s);
	assert_int_equal(f->s.n, 1);
	assert_int_equal(stats(f->q).batches, 1);
	assert_int_equal(nfqb_queue_flush(NULL), -EINVAL);
	assert_int_equal(nfqb_queue_flush(f->q), 0);
}

static void test_send_error_counted(void **state)
{
	struct fx *f = *state;

	f->act = act_copy_mark_later;
	feed(f, QNUM, 1, 1);
	close(f->peer);
	f->peer = -1;
	/* Nobody at the other end: the verdict fails and the packet stays open. */
	assert_true(nfqb_packet_accept(f->copy[0]) < 0);
	assert_false(nfqb_packet_decided(f->copy[0]));
	assert_int_equal(stats(f->q).send_errors, 1);
	assert_int_equal(stats(f->q).verdicts, 0);
}


/* The stack under a call is filled with junk first: a byte the library did
 * not write would reach the peer as 0xa5. */
static __attribute__((noinline)) void dirty_stack(void)
{
	volatile uint8_t junk[32768];

	memset((void *)junk, 0xa5, sizeof(junk));
}

/* What libnetfilter_queue builds for a verdict on queue QNUM, in @want
 * (@size bytes, zeroed first); marks and payloads may be added to it. */
static struct nlmsghdr *want_verdict(uint8_t *want, size_t size, int type,
				     uint32_t id, uint32_t verdict)
{
	struct nlmsghdr *ref;

	memset(want, 0, size);
	ref = nfq_nlmsg_put((char *)want, type, QNUM);
	nfq_nlmsg_verdict_put(ref, (int)id, (int)verdict);
	return ref;
}

/* The next datagram sent, read into @got: byte for byte @ref. */
static void expect_bytes(int peer, uint8_t *got, size_t size, const struct nlmsghdr *ref)
{
	ssize_t n = recv(peer, got, size, MSG_DONTWAIT);

	assert_int_equal(n, (ssize_t)ref->nlmsg_len);
	assert_int_equal(memcmp(got, ref, (size_t)n), 0);
}

static void test_no_uninitialised_bytes(void **state)
{
	struct fx *f = *state;
	_Alignas(4) uint8_t got[512], want[512];
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)got;
	const struct nlattr *a;
	struct nlmsghdr *ref;
	bool seen = false;

	/* a batch verdict: byte for byte what a zeroed buffer gives */
	dirty_stack();
	assert_int_equal(nfqb_queue_verdict_batch(f->q, QNUM, 77, NFQB_DROP), 0);
	ref = want_verdict(want, sizeof(want), NFQNL_MSG_VERDICT_BATCH, 77, NF_DROP);
	expect_bytes(f->peer, got, sizeof(got), ref);

	/* a lone accept and a marked drop given in the callback (the library
	 * writes these itself, lib/verdict.c put_verdict()): the same */
	f->act = act_accept;
	dirty_stack();
	feed(f, QNUM, 41, 41);
	ref = want_verdict(want, sizeof(want), NFQNL_MSG_VERDICT, 41, NF_ACCEPT);
	expect_bytes(f->peer, got, sizeof(got), ref);
	f->act = act_mark_bytes_drop;
	dirty_stack();
	feed(f, QNUM, 0x80000001u, 0x80000001u);
	ref = want_verdict(want, sizeof(want), NFQNL_MSG_VERDICT, 0x80000001u, NF_DROP);
	nfq_nlmsg_verdict_put_mark(ref, 0x01020304);
	expect_bytes(f->peer, got, sizeof(got), ref);

	/* a 5-byte replacement payload and a mark: the same bytes, and the
	 * payload's 3 padding bytes are zero */
	f->act = act_payload;
	dirty_stack();
	feed(f, QNUM, 4, 4);
	ref = want_verdict(want, sizeof(want), NFQNL_MSG_VERDICT, 4, NF_ACCEPT);
	nfq_nlmsg_verdict_put_mark(ref, 9);
	nfq_nlmsg_verdict_put_pkt(ref, new_payload, sizeof(new_payload));
	expect_bytes(f->peer, got, sizeof(got), ref);
	assert_true(mnl_nlmsg_ok(nlh, (int)ref->nlmsg_len));
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		const uint8_t *pl = mnl_attr_get_payload(a);
		size_t len = mnl_attr_get_payload_len(a);

		for (size_t i = len; i < MNL_ALIGN(len); i++)
			assert_int_equal(pl[i], 0);
		if (mnl_attr_get_type(a) == NFQA_PAYLOAD)
			seen = len == sizeof(new_payload);
	}
	assert_true(seen);
}

/* Queue numbers of the real-socket tests: high, and per process. */
static uint16_t real_qnum(void)
{
	return (uint16_t)(47000 + getpid() % 1000);
}

static void test_verdict_after_unbind(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = real_qnum();
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(q);
	assert_non_null(f);
	f->act = act_copy_mark_later;
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, f, NULL), 0);
	pkt(&f->m, num, 1);
	assert_int_equal(nfqb_queue_handle(q, f->m.b, f->m.len), 1);
	assert_int_equal(f->ncopy, 1);
	assert_int_equal(nfqb_queue_unbind(q, num), 0);
	assert_int_equal(nfqb_packet_accept(f->copy[0]), -ENOTCONN);
	assert_false(nfqb_packet_decided(f->copy[0]));
	assert_int_equal(nfqb_queue_unbind(q, num), -ENOENT);
	nfqb_packet_release(f->copy[0]);
	nfqb_queue_close(q);
	free(f);
	(void)state;
}

/*
 * Unbinding drops every packet still queued, retained ones included. A copy
 * from before the unbind must not disturb the accounting of a new binding of
 * the same number: accepts there are batched as usual.
 */
static void test_copy_from_before_rebind(void **state)
{
	struct nfqb_queue *q = nfqb_queue_open();
	uint16_t num = real_qnum();
	struct fx *f = calloc(1, sizeof(*f));
	int err;

	assert_non_null(q);
	assert_non_null(f);
	f->act = act_copy_mark_later;
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, f, NULL), 0);
	pkt(&f->m, num, 1);
	assert_int_equal(nfqb_queue_handle(q, f->m.b, f->m.len), 1);
	assert_int_equal(f->ncopy, 1);
	assert_int_equal(nfqb_queue_unbind(q, num), 0);
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, f, NULL), 0);
	err = nfqb_packet_accept(f->copy[0]);
	assert_true(err == 0 || err == -ENOTCONN);
	nfqb_packet_release(f->copy[0]);

	f->act = act_accept;
	f->m.len = 0;
	pkt(&f->m, num, 2);
	pkt(&f->m, num, 3);
	assert_int_equal(nfqb_queue_handle(q, f->m.b, f->m.len), 2);
	assert_int_equal(stats(q).batches, 1);
	assert_int_equal(stats(q).batched, 2);
	nfqb_queue_close(q);
	free(f);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepts_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_accept_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_not_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_zero_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payload_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payload_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requeue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_verdict_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_verdict_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retained_blocks_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_verdict_with_mark_and_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsettled_blocks_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_before_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_after_drop_of_lower_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_immediate_after_gathered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_verdict_in_later_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batching_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_per_queue_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_id_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdict_batch_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_error_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_uninitialised_bytes, setup, teardown),
		cmocka_unit_test(test_verdict_after_unbind),
		cmocka_unit_test(test_copy_from_before_rebind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
