/* SPDX-License-Identifier: MIT */
/*
 * Verdicts: given exactly once per packet. Plain accepts given inside the
 * callback are coalesced per queue number into one NFQNL_MSG_VERDICT_BATCH
 * (which accepts every queued id up to its own, so it is used only while no
 * lower id is still waiting for a verdict); other small verdicts given in
 * the callback are gathered into one send; verdicts with a payload, and any
 * verdict on a retained packet outside its callback, go out at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "internal.h"

#define VERDICT_MSG_MAX 64   /* header + verdict + mark, with room to spare */
/* nla_len is 16 bits and counts its own header: a longer payload would
 * wrap it and the kernel would apply the verdict without the payload. */
_Static_assert(NFQB_MAX_SET_PAYLOAD == 0xffffu - MNL_ATTR_HDRLEN, "nla_len bound");

int verdict_send(struct nfqb_queue *q, const struct iovec *iov, size_t n)
{
	int err;

	if (q->fd < 0)
		return -ENOTCONN;
	/* Addressed to the kernel and non-blocking: an agent sharing the
	 * socket may have connect()ed it to a peer that never reads. */
	err = nl_send_kernel(q->fd, iov, n, q->to_kernel);
	if (err < 0)
		q->st.send_errors++;
	return err;
}

static int tx_write(struct nfqb_queue *q)
{
	struct iovec iov = { q->tx, q->tx_len };
	int err;

	if (!q->tx_len)
		return 0;
	err = verdict_send(q, &iov, 1);
	q->tx_len = 0;
	return err;
}

static int tx_append(struct nfqb_queue *q, const struct nlmsghdr *nlh)
{
	int err = 0;

	if (q->tx_len + nlh->nlmsg_len > sizeof(q->tx))
		err = tx_write(q);
	memcpy(q->tx + q->tx_len, nlh, nlh->nlmsg_len);
	q->tx_len += nlh->nlmsg_len;
	return err;
}

/* What nfq_nlmsg_put() and nfq_nlmsg_verdict_put() build, without padding. */
struct verdict_msg {
	struct nlmsghdr nlh;
	struct nfgenmsg nfg;
	struct nlattr attr;
	struct nfqnl_msg_verdict_hdr vh;
};
_Static_assert(sizeof(struct verdict_msg) ==
	       sizeof(struct nlmsghdr) + sizeof(struct nfgenmsg) + sizeof(struct nlattr) +
	       sizeof(struct nfqnl_msg_verdict_hdr), "no padding: every byte sent is set");
_Static_assert(offsetof(struct verdict_msg, vh) ==
	       NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + NLA_HDRLEN,
	       "the netlink layout");
_Static_assert(sizeof(struct verdict_msg) + MNL_ATTR_HDRLEN + sizeof(uint32_t) +
	       MNL_ATTR_HDRLEN <= VERDICT_MSG_MAX,
	       "room for a mark and a payload attribute's header");

/*
 * A verdict message in @buf (VERDICT_MSG_MAX bytes; a mark may follow it).
 * Written whole here rather than with libnetfilter_queue's helpers: every
 * packet's verdict passes here, and the helpers cost a clearing of the
 * buffer, two calls into libnetfilter_queue and three more from it into
 * libmnl (tests/test-verdict.c compares the bytes with theirs). A mark
 * still goes through nfq_nlmsg_verdict_put_mark().
 */
static struct nlmsghdr *put_verdict(char *buf, int type, uint16_t num,
				    uint32_t id, uint32_t verdict)
{
	const struct verdict_msg m = {
		.nlh = {
			.nlmsg_len = sizeof(m),
			.nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type,
			.nlmsg_flags = NLM_F_REQUEST,
		},
		.nfg = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0,
			 .res_id = htons(num) },
		.attr = { .nla_len = NLA_HDRLEN + sizeof(m.vh), .nla_type = NFQA_VERDICT_HDR },
		.vh = { .verdict = htonl(verdict), .id = htonl(id) },
	};

	memcpy(buf, &m, sizeof(m));
	return (struct nlmsghdr *)buf;
}

int verdict_flush(struct nfqb_queue *q)
{
	_Alignas(struct nlmsghdr) char buf[VERDICT_MSG_MAX];
	int err = 0, e;

	/* Batches go last: each accepts every lower id still queued, so the
	 * single verdicts for lower ids gathered before must reach the kernel
	 * first. */
	for (size_t i = 0; i < q->nbind; i++) {
		struct nfqb_binding *b = &q->bind[i];
		int type = b->batch_count > 1 ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT;

		if (!b->batch_pending)
			continue;
		e = tx_append(q, put_verdict(buf, type, b->num, b->batch_max, NF_ACCEPT));
		if (e < 0)
			err = e;
		if (type == NFQNL_MSG_VERDICT_BATCH) {
			q->st.batches++;
			q->st.batched += b->batch_count;
		}
		b->batch_pending = false;
		b->batch_count = 0;
	}
	e = tx_write(q);
	return err < 0 ? err : e;
}

int nfqb_queue_flush(struct nfqb_queue *q)
{
	return q ? verdict_flush(q) : -EINVAL;
}

/* The packet that carries the state: a retained copy once there is one. */
static struct nfqb_packet *canon(struct nfqb_packet *p)
{
	return p->state == PKT_LIVE && p->twin ? p->twin : p;
}

static int check_open(const struct nfqb_packet *p)
{
	if (p->state == PKT_STALE)
		return -ESTALE;
	if (p->decided)
		return -EALREADY;
	return 0;
}

int nfqb_packet_set_mark(struct nfqb_packet *p, uint32_t mark)
{
	int err;

	p = canon(p);
	err = check_open(p);
	if (err < 0)
		return err;
	p->new_mark = mark;
	p->mark_set = true;
	return 0;
}

static uint8_t *payload_room(struct nfqb_packet *p, size_t len)
{
	uint8_t *room;

	if (p->state == PKT_COPY) {
		room = realloc(p->owns_payload ? p->new_payload : NULL, len ? len : 1);
		if (room) {
			p->new_payload = room;
			p->owns_payload = true;
		}
		return room;
	}
	/* One buffer per queue serves the packet in its callback. */
	if (!p->q->scratch)
		p->q->scratch = malloc(NFQB_MAX_PAYLOAD);
	return p->q->scratch;
}

int nfqb_packet_set_payload(struct nfqb_packet *p, const void *buf, size_t len)
{
	uint8_t *room;
	int err;

	p = canon(p);
	err = check_open(p);
	if (err < 0)
		return err;
	if (len > NFQB_MAX_SET_PAYLOAD)
		return -EMSGSIZE;
	if (!buf && len)
		return -EINVAL;
	if (p->state == PKT_COPY && !p->q)
		return -ENOTCONN;
	room = payload_room(p, len);
	if (!room)
		return -ENOMEM;
	if (len)
		memmove(room, buf, len);
	p->new_payload = room;
	p->new_payload_len = (uint32_t)len;
	p->payload_set = true;
	return 0;
}

static int send_with_payload(struct nfqb_queue *q, struct nfqb_packet *p,
			     struct nlmsghdr *nlh)
{
	static const uint8_t zeros[4];
	struct nlattr *a = (struct nlattr *)((char *)nlh + nlh->nlmsg_len);
	size_t hlen = nlh->nlmsg_len + MNL_ATTR_HDRLEN;
	uint32_t len = p->new_payload_len;
	struct iovec iov[3] = {
		{ nlh, hlen },
		{ p->new_payload, len },
		{ (void *)zeros, MNL_ALIGN(len) - len },
	};

	a->nla_type = NFQA_PAYLOAD;
	a->nla_len = (uint16_t)(MNL_ATTR_HDRLEN + len);
	nlh->nlmsg_len += MNL_ALIGN(MNL_ATTR_HDRLEN + len);
	return verdict_send(q, iov, iov[2].iov_len ? 3 : 2);
}

static int send_single(struct nfqb_queue *q, struct nfqb_packet *p,
		       uint32_t verdict, bool in_cb)
{
	_Alignas(struct nlmsghdr) char buf[VERDICT_MSG_MAX];
	struct nlmsghdr *nlh = put_verdict(buf, NFQNL_MSG_VERDICT, p->queue_num,
					   p->id, verdict);
	struct iovec iov;

	if (p->mark_set)
		nfq_nlmsg_verdict_put_mark(nlh, p->new_mark);
	if (in_cb && !p->payload_set)
		return tx_append(q, nlh);
	/* Sent at once: verdicts given before it and still gathered must
	 * reach the kernel first, or this one overtakes them (a held packet
	 * accepted after the current one would be reinjected before it). A
	 * failed flush is counted in send_errors; this verdict still goes. */
	verdict_flush(q);
	if (p->payload_set)
		return send_with_payload(q, p, nlh);
	iov = (struct iovec){ nlh, nlh->nlmsg_len };
	return verdict_send(q, &iov, 1);
}

static bool id_after(uint32_t a, uint32_t b)
{
	return (int32_t)(b - a) < 0;
}

static int verdict_apply(struct nfqb_packet *p, uint32_t verdict)
{
	struct nfqb_packet *c = canon(p);
	struct nfqb_queue *q = c->q;
	struct nfqb_binding *b;
	bool in_cb;
	int err = check_open(c);

	if (err < 0)
		return err;
	if ((verdict & NF_VERDICT_MASK) > NF_MAX_VERDICT ||
	    (verdict & NF_VERDICT_MASK) == NF_STOLEN)
		return -EINVAL;
	if (!q || !(b = queue_binding(q, c->queue_num)))
		return -ENOTCONN;
	in_cb = q->cur.state == PKT_LIVE && (c == &q->cur || c->twin == &q->cur);
	if (in_cb && q->batching && verdict == NF_ACCEPT && !c->mark_set &&
	    !c->payload_set && b->outstanding == 0) {
		if (!b->batch_pending || id_after(c->id, b->batch_max))
			b->batch_max = c->id;
		b->batch_pending = true;
		b->batch_count++;
	} else {
		err = send_single(q, c, verdict, in_cb);
		if (err < 0)
			return err;
	}
	c->decided = true;
	if (c->twin)
		c->twin->decided = true;
	if (c->counted) {
		c->counted = false;
		b->outstanding--;
	}
	q->st.verdicts++;
	return 0;
}

void verdict_after_callback(struct nfqb_queue *q, struct nfqb_binding *b)
{
	struct nfqb_packet *p = &q->cur;
	struct nfqb_packet *c = p->twin;

	if (c) {
		c->twin = NULL;
		if (!c->decided && b) {
			c->counted = true;
			b->outstanding++;
		}
	} else if (!p->decided) {
		/* Neither decided nor retained: it waits in the kernel for good,
		 * and no batch may cover its id from now on. */
		q->st.unsettled++;
		if (b)
			b->outstanding++;
	}
	p->twin = NULL;
	p->state = PKT_STALE;
}

int nfqb_packet_accept(struct nfqb_packet *p) { return verdict_apply(p, NF_ACCEPT); }
int nfqb_packet_drop(struct nfqb_packet *p) { return verdict_apply(p, NF_DROP); }
int nfqb_packet_repeat(struct nfqb_packet *p) { return verdict_apply(p, NF_REPEAT); }
int nfqb_packet_verdict(struct nfqb_packet *p, uint32_t verdict) { return verdict_apply(p, verdict); }

int nfqb_packet_requeue(struct nfqb_packet *p, uint16_t num)
{
	return verdict_apply(p, NF_QUEUE_NR((uint32_t)num));   /* num << 16 overflows an int */
}

bool nfqb_packet_decided(const struct nfqb_packet *p)
{
	return p->decided;
}

int nfqb_queue_verdict_batch(struct nfqb_queue *q, uint16_t num,
			     uint32_t max_id, uint32_t verdict)
{
	_Alignas(struct nlmsghdr) char buf[VERDICT_MSG_MAX];
	struct nlmsghdr *nlh;
	struct iovec iov;
	int err;

	if (!q || (verdict & NF_VERDICT_MASK) > NF_MAX_VERDICT ||
	    (verdict & NF_VERDICT_MASK) == NF_STOLEN)
		return -EINVAL;
	err = verdict_flush(q);
	if (err < 0)
		return err;
	nlh = put_verdict(buf, NFQNL_MSG_VERDICT_BATCH, num, max_id, verdict);
	iov = (struct iovec){ nlh, nlh->nlmsg_len };
	err = verdict_send(q, &iov, 1);
	if (err == 0)
		q->st.batches++;
	return err;
}
