/* SPDX-License-Identifier: MIT */
/*
 * Packets: our own NFQA_* attribute parser (libnetfilter_queue 1.0.5's
 * nfq_nlmsg_parse rejects packets with a security context and skips
 * NFQA_VLAN, NFQA_L2HDR and NFQA_PRIORITY), the accessors, and
 * retain/release. Parsing stores pointers into the record: no allocation.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/rtnetlink.h>

#include "internal.h"

/*
 * Walk the attributes in @len bytes at @base. The record may come from the
 * caller rather than the kernel (nfqb_queue_handle), and libmnl's walk
 * takes an int length and ends at the *aligned* message end, up to 3 bytes
 * past an unaligned nlmsg_len: every length is checked here in size_t
 * against what is left, and an attribute that does not fit is an error.
 * Inlined at each use, so that the callback is too: the walk is on every
 * packet's path, and so are the accessors below (libmnl's are calls into
 * the shared library for one load each).
 */
static inline __attribute__((always_inline)) int
attr_walk(const uint8_t *base, size_t len,
	  int (*cb)(const struct nlattr *a, void *data), void *data)
{
	size_t off = 0, rem, step;
	const struct nlattr *a;
	int err;

	while (off < len) {
		a = (const void *)(base + off);
		rem = len - off;
		if (rem < sizeof(*a) || a->nla_len < sizeof(*a) || a->nla_len > rem)
			return -EBADMSG;
		err = cb(a, data);
		if (err < 0)
			return err;
		step = NLA_ALIGN((size_t)a->nla_len);
		off += step < rem ? step : rem;
	}
	return 0;
}

static inline uint16_t attr_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

static inline const void *attr_data(const struct nlattr *a)
{
	return (const uint8_t *)a + NLA_HDRLEN;
}

/* nla_len >= NLA_HDRLEN: attr_walk() checked it */
static inline uint16_t attr_len(const struct nlattr *a)
{
	return (uint16_t)(a->nla_len - NLA_HDRLEN);
}

static bool attr_fits(const struct nlattr *a, size_t need)
{
	return attr_len(a) >= need;
}

static uint32_t attr_be32(const struct nlattr *a)
{
	uint32_t v;

	memcpy(&v, attr_data(a), sizeof(v));
	return ntohl(v);
}

static int parse_vlan_cb(const struct nlattr *a, void *data)
{
	struct nfqb_packet *p = data;
	uint16_t v;

	if (!attr_fits(a, sizeof(v)))
		return -EBADMSG;
	memcpy(&v, attr_data(a), sizeof(v));
	if (attr_type(a) == NFQA_VLAN_PROTO)
		p->vlan_proto = ntohs(v);
	else if (attr_type(a) == NFQA_VLAN_TCI)
		p->vlan_tci = ntohs(v);
	return 0;
}

static int parse_hdr(struct nfqb_packet *p, const struct nlattr *a)
{
	struct nfqnl_msg_packet_hdr h;

	if (!attr_fits(a, sizeof(h)))
		return -EBADMSG;
	memcpy(&h, attr_data(a), sizeof(h));
	p->id = ntohl(h.packet_id);
	p->hw_protocol = ntohs(h.hw_protocol);
	p->hook = h.hook;
	return 0;
}

static int parse_hw(struct nfqb_packet *p, const struct nlattr *a)
{
	struct nfqnl_msg_packet_hw hw;

	if (!attr_fits(a, sizeof(hw)))
		return -EBADMSG;
	memcpy(&hw, attr_data(a), sizeof(hw));
	p->hw_len = ntohs(hw.hw_addrlen);
	if (p->hw_len > sizeof(p->hw))
		p->hw_len = sizeof(p->hw);
	memcpy(p->hw, hw.hw_addr, sizeof(p->hw));
	return 0;
}

static int parse_ts(struct nfqb_packet *p, const struct nlattr *a)
{
	struct nfqnl_msg_packet_timestamp ts;

	if (!attr_fits(a, sizeof(ts)))
		return -EBADMSG;
	memcpy(&ts, attr_data(a), sizeof(ts));
	p->ts.tv_sec = (time_t)be64toh(ts.sec);
	p->ts.tv_nsec = (long)(be64toh(ts.usec) % 1000000u) * 1000;
	return 0;
}

/* Attributes carrying one big-endian u32, and where each one goes. */
static uint32_t *u32_slot(struct nfqb_packet *p, int type)
{
	switch (type) {
	case NFQA_MARK:               return &p->mark;
	case NFQA_IFINDEX_INDEV:      return &p->ifindex[NFQB_DEV_IN];
	case NFQA_IFINDEX_OUTDEV:     return &p->ifindex[NFQB_DEV_OUT];
	case NFQA_IFINDEX_PHYSINDEV:  return &p->ifindex[NFQB_DEV_PHYSIN];
	case NFQA_IFINDEX_PHYSOUTDEV: return &p->ifindex[NFQB_DEV_PHYSOUT];
	case NFQA_CT_INFO:            return &p->ct_info;
	case NFQA_CAP_LEN:            return &p->cap_len;
	case NFQA_SKB_INFO:           return &p->skbinfo;
	case NFQA_UID:                return &p->uid;
	case NFQA_GID:                return &p->gid;
	case NFQA_PRIORITY:           return &p->priority;
	}
	return NULL;
}

static int parse_attr(const struct nlattr *a, struct nfqb_packet *p)
{
	int type = attr_type(a);
	uint32_t *slot;

	if (type <= NFQA_UNSPEC || type > NFQA_MAX)
		return 0;             /* newer kernel: skip what we do not know */
	slot = u32_slot(p, type);
	if (slot) {
		if (!attr_fits(a, sizeof(uint32_t)))
			return -EBADMSG;
		*slot = attr_be32(a);
	} else {
		switch (type) {
		case NFQA_PACKET_HDR:
			if (parse_hdr(p, a) < 0)
				return -EBADMSG;
			break;
		case NFQA_HWADDR:
			if (parse_hw(p, a) < 0)
				return -EBADMSG;
			break;
		case NFQA_TIMESTAMP:
			if (parse_ts(p, a) < 0)
				return -EBADMSG;
			break;
		case NFQA_PAYLOAD:
			p->payload = attr_data(a);
			p->payload_len = attr_len(a);
			break;
		case NFQA_L2HDR:
			p->l2hdr = attr_data(a);
			p->l2hdr_len = attr_len(a);
			break;
		case NFQA_SECCTX:
			p->secctx = attr_data(a);
			p->secctx_len = (uint32_t)strnlen(p->secctx, attr_len(a));
			break;
		case NFQA_CT:
			p->ct = attr_data(a);
			p->ct_len = attr_len(a);
			break;
		case NFQA_VLAN:
			if (attr_walk(attr_data(a), attr_len(a),
				      parse_vlan_cb, p) < 0)
				return -EBADMSG;
			break;
		default:
			return 0;     /* VERDICT_HDR, EXP: nothing for a reader */
		}
	}
	p->present |= 1u << type;
	return 0;
}

static int parse_attr_cb(const struct nlattr *a, void *data)
{
	return parse_attr(a, data);
}

int packet_parse(struct nfqb_packet *p, const struct nlmsghdr *nlh)
{
	const size_t attrs = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const struct nfgenmsg *nfg;
	int err;

	memset(p, 0, sizeof(*p));
	p->ct_info = UINT32_MAX;
	if (nlh->nlmsg_len < attrs)
		return -EBADMSG;
	nfg = (const void *)((const uint8_t *)nlh + NLMSG_HDRLEN);
	p->queue_num = ntohs(nfg->res_id);
	p->msg = (const uint8_t *)nlh;
	p->msg_len = nlh->nlmsg_len;
	err = attr_walk(p->msg + attrs, nlh->nlmsg_len - attrs, parse_attr_cb, p);
	if (err < 0)
		return err;
	if (!PKT_HAS(p, NFQA_PACKET_HDR))
		return -EBADMSG;
	if (!PKT_HAS(p, NFQA_CAP_LEN))
		p->cap_len = p->payload_len;
	p->new_mark = p->mark;
	return 0;
}

/* ---- accessors ---------------------------------------------------- */

uint32_t nfqb_packet_id(const struct nfqb_packet *p) { return p->id; }
uint16_t nfqb_packet_queue(const struct nfqb_packet *p) { return p->queue_num; }
uint16_t nfqb_packet_hw_protocol(const struct nfqb_packet *p) { return p->hw_protocol; }
uint8_t nfqb_packet_hook(const struct nfqb_packet *p) { return p->hook; }
uint32_t nfqb_packet_mark(const struct nfqb_packet *p) { return p->mark; }
uint32_t nfqb_packet_cap_len(const struct nfqb_packet *p) { return p->cap_len; }

uint32_t nfqb_packet_get_mark(const struct nfqb_packet *p)
{
	return p->mark_set ? p->new_mark : p->mark;
}

const void *nfqb_packet_payload(const struct nfqb_packet *p, size_t *len)
{
	if (p->state == PKT_STALE) {
		if (len)
			*len = 0;
		errno = ESTALE;
		return NULL;
	}
	if (len)
		*len = p->payload_set ? p->new_payload_len : p->payload_len;
	if (p->payload_set)
		return p->new_payload;
	return p->payload_len ? p->payload : NULL;
}

int nfqb_packet_payload_len(const struct nfqb_packet *p)
{
	if (p->state == PKT_STALE)
		return -ESTALE;
	return (int)(p->payload_set ? p->new_payload_len : p->payload_len);
}

const uint8_t *nfqb_packet_hw(const struct nfqb_packet *p, size_t *len)
{
	if (!PKT_HAS(p, NFQA_HWADDR)) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = p->hw_len;
	return p->hw;
}

int nfqb_packet_timestamp(const struct nfqb_packet *p, struct timespec *ts)
{
	if (!PKT_HAS(p, NFQA_TIMESTAMP))
		return -ENODATA;
	*ts = p->ts;
	return 0;
}

uint32_t nfqb_packet_ifindex(const struct nfqb_packet *p, enum nfqb_dev which)
{
	return (unsigned)which < 4 ? p->ifindex[which] : 0;
}

uint32_t nfqb_packet_indev(const struct nfqb_packet *p) { return p->ifindex[NFQB_DEV_IN]; }
uint32_t nfqb_packet_outdev(const struct nfqb_packet *p) { return p->ifindex[NFQB_DEV_OUT]; }
uint32_t nfqb_packet_physindev(const struct nfqb_packet *p) { return p->ifindex[NFQB_DEV_PHYSIN]; }
uint32_t nfqb_packet_physoutdev(const struct nfqb_packet *p) { return p->ifindex[NFQB_DEV_PHYSOUT]; }

static int opt_u32(const struct nfqb_packet *p, int attr, uint32_t v, uint32_t *out)
{
	if (!PKT_HAS(p, attr))
		return -ENODATA;
	*out = v;
	return 0;
}

int nfqb_packet_uid(const struct nfqb_packet *p, uint32_t *uid)
{
	return opt_u32(p, NFQA_UID, p->uid, uid);
}

int nfqb_packet_gid(const struct nfqb_packet *p, uint32_t *gid)
{
	return opt_u32(p, NFQA_GID, p->gid, gid);
}

int nfqb_packet_skbinfo(const struct nfqb_packet *p, uint32_t *info)
{
	return opt_u32(p, NFQA_SKB_INFO, p->skbinfo, info);
}

int nfqb_packet_priority(const struct nfqb_packet *p, uint32_t *prio)
{
	return opt_u32(p, NFQA_PRIORITY, p->priority, prio);
}

int nfqb_packet_vlan(const struct nfqb_packet *p, uint16_t *proto, uint16_t *tci)
{
	if (!PKT_HAS(p, NFQA_VLAN))
		return -ENODATA;
	if (proto)
		*proto = p->vlan_proto;
	if (tci)
		*tci = p->vlan_tci;
	return 0;
}

const void *nfqb_packet_l2hdr(const struct nfqb_packet *p, size_t *len)
{
	if (len)
		*len = p->l2hdr ? p->l2hdr_len : 0;
	return p->l2hdr;
}

const char *nfqb_packet_secctx(const struct nfqb_packet *p, size_t *len)
{
	if (len)
		*len = p->secctx ? p->secctx_len : 0;
	return p->secctx;
}

const void *nfqb_packet_ct(const struct nfqb_packet *p, size_t *len, uint32_t *info)
{
	if (len)
		*len = p->ct ? p->ct_len : 0;
	if (info)
		*info = PKT_HAS(p, NFQA_CT_INFO) ? p->ct_info : UINT32_MAX;
	return p->ct;
}

/* ---- interface names ---------------------------------------------- */

/* Recv one message from the kernel (others skipped and -EAGAIN returned). */
static ssize_t rtnl_recv(int fd, char *buf, size_t len)
{
	struct sockaddr_nl from = { 0 };
	struct iovec iov = { buf, len };
	struct msghdr mh = {
		.msg_name = &from, .msg_namelen = sizeof(from),
		.msg_iov = &iov, .msg_iovlen = 1,
	};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	/* Only the kernel answers; a process may unicast to our port id. */
	if (mh.msg_namelen < sizeof(from) || from.nl_pid != 0)
		return -EAGAIN;
	return n;
}

/* How long nfqb_packet_ifname() may wait for the kernel's answer in all. */
#define RTNL_DEADLINE_MS 1000

static int rtnl_ifname(int fd, uint32_t ifindex, char *buf)
{
	char req[256], rsp[32768];
	struct timespec t0, now;
	int left;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct iovec iov;
	const struct nlattr *a;
	ssize_t n;
	int err;

	memset(req, 0, sizeof(req));
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ifindex;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	iov = (struct iovec){ nlh, nlh->nlmsg_len };
	err = nl_send_kernel(fd, &iov, 1, true);
	if (err < 0)
		return err;
	/* Link notifications may be queued before our answer: skip them, all
	 * within one deadline, so a process sharing the socket (reading our
	 * answer, or sending filler) costs the caller 1 s at most. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int tries = 0; tries < 64; tries++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = RTNL_DEADLINE_MS - (int)((now.tv_sec - t0.tv_sec) * 1000 +
						(now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return -ETIMEDOUT;
		n = rtnl_recv(fd, rsp, sizeof(rsp));
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		nlh = (struct nlmsghdr *)rsp;
		if (!mnl_nlmsg_ok(nlh, (int)n) || nlh->nlmsg_seq != ifindex)
			continue;
		if (nlh->nlmsg_type == NLMSG_ERROR)
			return -ENODEV;
		if (nlh->nlmsg_type != RTM_NEWLINK)
			continue;
		mnl_attr_for_each(a, nlh, sizeof(*ifi)) {
			if (mnl_attr_get_type(a) == IFLA_IFNAME &&
			    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
				snprintf(buf, IF_NAMESIZE, "%s", mnl_attr_get_str(a));
				return 0;
			}
		}
		return -ENODEV;
	}
	return -ETIMEDOUT;
}

int nfqb_packet_ifname(const struct nfqb_packet *p, enum nfqb_dev which, char *buf)
{
	uint32_t idx = nfqb_packet_ifindex(p, which);

	if (!idx)
		return -ENODATA;
	if (p->q && p->q->rtnl_fd >= 0)
		return rtnl_ifname(p->q->rtnl_fd, idx, buf);
	return if_indextoname(idx, buf) ? 0 : -ENODEV;
}

/* ---- retain / release --------------------------------------------- */

static const void *rebase(const void *ptr, const uint8_t *from, uint8_t *to)
{
	return ptr ? to + ((const uint8_t *)ptr - from) : NULL;
}

static int copy_new_payload(struct nfqb_packet *c, const struct nfqb_packet *p)
{
	if (!p->payload_set)
		return 0;
	c->new_payload = malloc(p->new_payload_len ? p->new_payload_len : 1);
	if (!c->new_payload)
		return -ENOMEM;
	memcpy(c->new_payload, p->new_payload, p->new_payload_len);
	c->owns_payload = true;
	return 0;
}

struct nfqb_packet *nfqb_packet_retain(struct nfqb_packet *p)
{
	struct nfqb_packet *c;
	uint8_t *msg;

	if (p->state != PKT_LIVE || p->twin || p->decided) {
		/* Stale first, decided or not, as every other call says
		 * (check_open() in verdict.c). */
		errno = p->state == PKT_STALE ? ESTALE : EALREADY;
		return NULL;
	}
	c = malloc(sizeof(*c) + p->msg_len);
	if (!c)
		return NULL;
	*c = *p;
	msg = (uint8_t *)(c + 1);
	memcpy(msg, p->msg, p->msg_len);
	c->msg = msg;
	c->payload = rebase(p->payload, p->msg, msg);
	c->l2hdr = rebase(p->l2hdr, p->msg, msg);
	c->secctx = rebase(p->secctx, p->msg, msg);
	c->ct = rebase(p->ct, p->msg, msg);
	c->new_payload = NULL;
	c->owns_payload = false;
	if (copy_new_payload(c, p) < 0) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->state = PKT_COPY;
	c->twin = p;
	p->twin = c;
	c->prev = NULL;
	c->next = p->q->copies;
	if (c->next)
		c->next->prev = c;
	p->q->copies = c;
	return c;
}

/* Take a copy off its queue's list; the copy stays valid as memory. */
void packet_unlink_copy(struct nfqb_packet *c)
{
	struct nfqb_queue *q = c->q;

	if (!q)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		q->copies = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->twin)
		c->twin->twin = NULL;
	c->next = c->prev = c->twin = NULL;
	c->q = NULL;
}

void nfqb_packet_release(struct nfqb_packet *p)
{
	if (!p || p->state != PKT_COPY)
		return;
	/* Released undecided, it stays queued in the kernel and outstanding
	 * in its binding (no batch may cover it any more). */
	if (p->q && !p->decided && p->counted)
		p->q->st.unsettled++;
	packet_unlink_copy(p);
	if (p->owns_payload)
		free(p->new_payload);
	free(p);
}
