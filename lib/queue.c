/* SPDX-License-Identifier: MIT */
/*
 * Queue objects: the netlink socket, binding queue numbers with their
 * options, and the receive loop that dispatches packets to callbacks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "internal.h"

#define MSG_PACKET ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)

void queue_seterr(struct nfqb_queue *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->errmsg, sizeof(q->errmsg), fmt, ap);
	va_end(ap);
}

struct nfqb_binding *queue_binding(struct nfqb_queue *q, uint16_t num)
{
	for (size_t i = 0; i < q->nbind; i++)
		if (q->bind[i].num == num)
			return &q->bind[i];
	return NULL;
}

/* Wraps any fd without checking what it is: unit tests hand in one end of
 * a socketpair to see exactly what the library sends. */
struct nfqb_queue *queue_new_unchecked(int fd)
{
	struct nfqb_queue *q = calloc(1, sizeof(*q));

	if (!q)
		goto fail;
	q->rx = malloc(NFQB_RXBUF_SIZE);
	if (!q->rx)
		goto fail;
	q->fd = fd;
	q->rtnl_fd = -1;
	q->batching = true;
	q->seq = (uint32_t)time(NULL);
	return q;
fail:
	if (q)
		free(q->rx);
	free(q);
	close(fd);
	errno = ENOMEM;
	return NULL;
}

static int sock_portid(int fd, uint32_t *portid)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	if (sa.nl_pid == 0) {
		/* Never bound: let the kernel pick a port id now so that it is
		 * known (and stable) before the first config request. */
		memset(&sa, 0, sizeof(sa));
		sa.nl_family = AF_NETLINK;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -errno;
		len = sizeof(sa);
		if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
			return -errno;
	}
	*portid = sa.nl_pid;
	return 0;
}

static int check_netfilter_fd(int fd)
{
	struct stat st;
	int v;
	socklen_t len = sizeof(v);

	if (fd < 0 || fstat(fd, &st) < 0)
		return -EBADF;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0)
		return -errno;
	if (v != AF_NETLINK)
		return -EAFNOSUPPORT;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0)
		return -errno;
	if (v != NETLINK_NETFILTER)
		return -EPROTONOSUPPORT;
	return 0;
}

struct nfqb_queue *nfqb_queue_open_fd(int sockfd)
{
	struct nfqb_queue *q;
	uint32_t portid = 0;
	int err;

	err = check_netfilter_fd(sockfd);
	if (err == 0)
		err = sock_portid(sockfd, &portid);
	if (err < 0) {
		if (err != -EBADF)
			close(sockfd);
		errno = -err;
		return NULL;
	}
	q = queue_new_unchecked(sockfd);
	if (q)
		q->portid = portid;
	return q;
}

struct nfqb_queue *nfqb_queue_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

	if (fd < 0)
		return NULL;
	return nfqb_queue_open_fd(fd);
}

static void queue_free(struct nfqb_queue *q)
{
	/* Retained copies outlive the queue as memory; their verdicts then
	 * fail with -ENOTCONN instead of touching freed memory. */
	while (q->copies)
		packet_unlink_copy(q->copies);
	if (q->fd >= 0)
		close(q->fd);
	if (q->rtnl_fd >= 0)
		close(q->rtnl_fd);
	free(q->bind);
	free(q->scratch);
	free(q->rx);
	free(q);
}

void nfqb_queue_detach(struct nfqb_queue *q)
{
	if (!q)
		return;
	verdict_flush(q);
	queue_free(q);
}

void nfqb_queue_close(struct nfqb_queue *q)
{
	if (!q)
		return;
	verdict_flush(q);
	/* Errors do not matter here: the kernel unbinds on close anyway
	 * unless another process holds the socket, which is what detach is for. */
	while (q->nbind > 0 && !q->dispatching)
		nfqb_queue_unbind(q, q->bind[q->nbind - 1].num);
	queue_free(q);
}

int nfqb_queue_fd(const struct nfqb_queue *q)
{
	return q ? q->fd : -EINVAL;
}

uint32_t nfqb_queue_portid(const struct nfqb_queue *q)
{
	return q->portid;
}

void nfqb_queue_stop(struct nfqb_queue *q)
{
	q->stop = true;
}

void nfqb_queue_set_batching(struct nfqb_queue *q, bool on)
{
	if (!on)
		verdict_flush(q);
	q->batching = on;
}

void nfqb_queue_get_stats(const struct nfqb_queue *q, struct nfqb_queue_stats *st)
{
	*st = q->st;
}

uint32_t nfqb_queue_rejected_flags(const struct nfqb_queue *q)
{
	return q->rejected_flags;
}

const char *nfqb_queue_errmsg(const struct nfqb_queue *q)
{
	return q->errmsg;
}

bool nfqb_queue_adopted(const struct nfqb_queue *q, uint16_t num)
{
	const struct nfqb_binding *b = queue_binding((struct nfqb_queue *)q, num);

	return b && b->adopted;
}

const char *nfqb_flag_name(uint32_t flag)
{
	switch (flag) {
	case NFQB_F_FAIL_OPEN: return "fail_open";
	case NFQB_F_CONNTRACK: return "conntrack";
	case NFQB_F_GSO:       return "gso";
	case NFQB_F_UID_GID:   return "uid_gid";
	case NFQB_F_SECCTX:    return "secctx";
	}
	return NULL;
}

int nfqb_queue_set_rtnl(struct nfqb_queue *q, int fd)
{
	if (q->rtnl_fd >= 0)
		close(q->rtnl_fd);
	q->rtnl_fd = fd;
	return 0;
}

/* ---- receiving ---------------------------------------------------- */

static void dispatch_packet(struct nfqb_queue *q, const struct nlmsghdr *nlh)
{
	struct nfqb_packet *p = &q->cur;
	struct nfqb_binding *b;

	if (packet_parse(p, nlh) < 0) {
		q->st.malformed++;
		return;
	}
	b = queue_binding(q, p->queue_num);
	if (!b || !b->cb) {
		/* Bound by a previous owner of the socket but not by us: it
		 * stays queued until someone binds it or the socket closes. */
		q->st.unsettled++;
		p->state = PKT_STALE;
		return;
	}
	q->st.packets++;
	q->st.bytes += p->cap_len;
	p->q = q;
	p->state = PKT_LIVE;
	b->cb(p, b->user);
	/* The callback may have unbound or bound queues: look again. */
	verdict_after_callback(q, queue_binding(q, p->queue_num));
}

static void handle_error(struct nfqb_queue *q, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		q->st.malformed++;
		return;
	}
	if (q->cfg_seq && nlh->nlmsg_seq == q->cfg_seq) {
		q->cfg_done = true;
		q->cfg_err = e->error;
		return;
	}
	if (e->error)
		q->st.kernel_errors++;
}

/*
 * The buffer may come from the caller (nfqb_queue_handle, Python's
 * run_socket), not only from the kernel: libmnl's walk takes its length as
 * an int and trusts nlmsg_len, so a hostile length loops forever or reads
 * past the end. Every length is checked here in size_t against what is
 * left; the first malformed record is counted and ends the walk (nothing
 * after it can be framed).
 */
static const struct nlmsghdr *next_record(struct nfqb_queue *q, const uint8_t *buf,
					  size_t len, size_t *off)
{
	const struct nlmsghdr *nlh;
	size_t rem = len - *off, step;

	if (rem == 0)
		return NULL;      /* before any arithmetic: buf may be NULL */
	nlh = (const void *)(buf + *off);
	if (rem < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > rem) {
		q->st.malformed++;
		return NULL;
	}
	step = NLMSG_ALIGN((size_t)nlh->nlmsg_len);
	*off += step < rem ? step : rem;
	return nlh;
}

int queue_dispatch(struct nfqb_queue *q, const void *buf, size_t len)
{
	const struct nlmsghdr *nlh;
	size_t off = 0;
	uint64_t before;

	if (!q || (!buf && len))
		return -EINVAL;
	before = q->st.packets;
	if (q->dispatching)
		return -EDEADLK;   /* q->cur belongs to the running callback */
	q->dispatching = true;
	while ((nlh = next_record(q, buf, len, &off))) {
		if (nlh->nlmsg_type == NLMSG_ERROR)
			handle_error(q, nlh);
		else if (nlh->nlmsg_type == MSG_PACKET)
			dispatch_packet(q, nlh);
		else if (nlh->nlmsg_type >= NLMSG_MIN_TYPE)
			q->st.malformed++;
	}
	q->dispatching = false;
	return (int)(q->st.packets - before);
}

int nfqb_queue_handle(struct nfqb_queue *q, const void *buf, size_t len)
{
	int n = queue_dispatch(q, buf, len), err;

	if (n < 0 || !q)
		return n;
	err = verdict_flush(q);
	return err < 0 ? err : n;
}

/* One record from the socket. Returns packets handled, -EAGAIN, or an error. */
static int rx_once(struct nfqb_queue *q, int flags)
{
	struct sockaddr_nl sa = { 0 };
	struct iovec iov = { q->rx, NFQB_RXBUF_SIZE };
	struct msghdr mh = {
		.msg_name = &sa, .msg_namelen = sizeof(sa),
		.msg_iov = &iov, .msg_iovlen = 1,
	};
	ssize_t n;

	do
		n = recvmsg(q->fd, &mh, flags);
	while (n < 0 && errno == EINTR && (flags & MSG_DONTWAIT));
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	if ((mh.msg_flags & MSG_TRUNC) || sa.nl_pid != 0) {
		/* Larger than any record the kernel builds, or not from the
		 * kernel at all: skip it whole. */
		q->st.malformed++;
		return 0;
	}
	return queue_dispatch(q, q->rx, (size_t)n);
}

int nfqb_queue_run(struct nfqb_queue *q, bool block)
{
	int total = 0, budget = NFQB_RUN_BUDGET, unflushed = 0, n, err;
	struct pollfd pfd;

	if (!q || q->fd < 0)
		return -EBADF;
	for (;;) {
		if (q->stop || (!block && budget-- <= 0))
			break;
		n = rx_once(q, MSG_DONTWAIT);
		if (n >= 0) {
			total += n;
			/* Under sustained load the socket never runs dry: flush
			 * anyway, or batched packets would wait (and fill the
			 * kernel queue) for as long as the load lasts. */
			if (++unflushed >= NFQB_FLUSH_EVERY) {
				unflushed = 0;
				err = verdict_flush(q);
				if (err < 0)
					return err;
			}
			continue;
		}
		if (n == -ENOBUFS) {
			q->st.enobufs++;
			continue;
		}
		err = verdict_flush(q);
		if (n != -EAGAIN && n != -EWOULDBLOCK)
			return n;
		if (err < 0)
			return err;
		if (!block)
			return total;
		pfd = (struct pollfd){ .fd = q->fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0)
			return -errno;   /* -EINTR: a signal wants the caller */
	}
	q->stop = false;
	err = verdict_flush(q);
	return err < 0 ? err : total;
}

/* ---- configuration ------------------------------------------------ */

/* Send a config message and wait for its acknowledgement, dispatching any
 * packet of other bound queues that arrives meanwhile. */
static int cfg_request(struct nfqb_queue *q, struct nlmsghdr *nlh)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
	struct timespec start, now;
	int n, waited;

	if (q->dispatching)
		return -EDEADLK;   /* waiting would dispatch over q->cur */
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++q->seq ? q->seq : ++q->seq;
	q->cfg_seq = nlh->nlmsg_seq;
	q->cfg_done = false;
	verdict_flush(q);
	if (send(q->fd, nlh, nlh->nlmsg_len, 0) < 0) {
		q->cfg_seq = 0;
		return -errno;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!q->cfg_done) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (int)((now.tv_sec - start.tv_sec) * 1000 +
			       (now.tv_nsec - start.tv_nsec) / 1000000);
		if (waited >= NFQB_CFG_TIMEOUT_MS)
			break;
		n = poll(&pfd, 1, NFQB_CFG_TIMEOUT_MS - waited);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		n = rx_once(q, MSG_DONTWAIT);
		if (n == -ENOBUFS)
			q->st.enobufs++;   /* our ack may be lost: the timeout tells */
		else if (n < 0 && n != -EAGAIN)
			break;
	}
	q->cfg_seq = 0;
	if (!q->cfg_done)
		return -ETIMEDOUT;
	verdict_flush(q);
	return q->cfg_err;
}

static int opts_check(const struct nfqb_queue_opts *o)
{
	if (o->max_len == 0 || o->range > NFQB_MAX_PAYLOAD ||
	    o->sock_len > NFQB_MAX_SOCK_LEN || (o->flags & ~NFQB_F_ALL))
		return -EINVAL;
	if (o->mode != NFQB_COPY_NONE && o->mode != NFQB_COPY_META &&
	    o->mode != NFQB_COPY_PACKET)
		return -EINVAL;
	if (o->mode == NFQB_COPY_PACKET && o->range == 0)
		return -EINVAL;
	return 0;
}

static const char *opts_problem(const struct nfqb_queue_opts *o)
{
	if (o->max_len == 0)
		return "max_len must be at least 1";
	if (o->range > NFQB_MAX_PAYLOAD)
		return "range above 65535";
	if (o->sock_len > NFQB_MAX_SOCK_LEN)
		return "sock_len above 1 GiB";
	if (o->flags & ~NFQB_F_ALL)
		return "unknown flag bits";
	if (o->mode == NFQB_COPY_PACKET && o->range == 0)
		return "range 0 with COPY_PACKET copies nothing";
	return "unknown copy mode";
}

static struct nlmsghdr *cfg_build(char *buf, uint16_t num, uint8_t cmd,
				  const struct nfqb_queue_opts *o, uint32_t mask)
{
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);

	if (cmd != NFQNL_CFG_CMD_NONE)
		nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, cmd);
	if (o) {
		nfq_nlmsg_cfg_put_params(nlh, (uint8_t)o->mode, (int)o->range);
		nfq_nlmsg_cfg_put_qmaxlen(nlh, o->max_len);
	}
	if (mask) {
		mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(o ? o->flags : 0));
		mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
	}
	return nlh;
}

/* The kernel checks flags before looking the queue up, so a flags-only
 * message for one flag tells whether that flag is supported. */
static uint32_t probe_flags(struct nfqb_queue *q, uint16_t num, uint32_t flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t rejected = 0;

	for (uint32_t f = 1; f & NFQB_F_ALL; f <<= 1) {
		if (!(flags & f))
			continue;
		nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
		mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(f));
		mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(f));
		if (cfg_request(q, nlh) == -EOPNOTSUPP)
			rejected |= f;
	}
	return rejected;
}

/* The kernel answers EPERM both for a queue bound by another socket and
 * for a socket without CAP_NET_ADMIN (its opener's and the sender's are
 * checked before anything else). A message of a type no handler takes
 * tells them apart: EINVAL when permitted, EPERM when not. */
static bool socket_permitted(struct nfqb_queue *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	return cfg_request(q, nfq_nlmsg_put(buf, 0xff, 0)) != -EPERM;
}

static void apply_sock_len(struct nfqb_queue *q, uint32_t len)
{
	int v = (int)(len ? len : NFQB_DEFAULT_SOCK_LEN);

	if ((uint32_t)v <= q->sock_len)
		return;
	if (setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(q->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	q->sock_len = (uint32_t)v;
}

static int explain(struct nfqb_queue *q, uint16_t num, uint32_t flags, int err)
{
	char names[80] = "";

	switch (err) {
	case -EOPNOTSUPP:
		q->rejected_flags = probe_flags(q, num, flags);
		for (uint32_t f = 1; f & NFQB_F_ALL; f <<= 1)
			if (q->rejected_flags & f)
				snprintf(names + strlen(names), sizeof(names) - strlen(names),
					 "%s%s", *names ? "," : "", nfqb_flag_name(f));
		queue_seterr(q, "queue %u: kernel does not support flag %s", num,
			     *names ? names : "(unknown)");
		break;
	case -EBUSY:
		queue_seterr(q, "queue %u: already bound by another socket", num);
		break;
	case -EPERM:
		queue_seterr(q, "queue %u: not permitted: the socket's opener and its user "
			     "both need CAP_NET_ADMIN in the namespace", num);
		break;
	default:
		queue_seterr(q, "queue %u: %s", num, strerror(-err));
	}
	return err;
}

int binding_add(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
		void *user, bool adopted)
{
	struct nfqb_binding *b;

	if (q->nbind == q->capbind) {
		size_t cap = q->capbind ? q->capbind * 2 : 4;

		b = realloc(q->bind, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		q->bind = b;
		q->capbind = cap;
	}
	q->bind[q->nbind++] = (struct nfqb_binding){
		.num = num, .cb = cb, .user = user, .adopted = adopted,
	};
	return 0;
}

int nfqb_queue_bind(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
		    void *user, const struct nfqb_queue_opts *opts)
{
	static const struct nfqb_queue_opts defaults = NFQB_QUEUE_OPTS_DEFAULT;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nfqb_binding *b;
	bool adopted = false;
	int err;

	if (!q || !cb)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	q->rejected_flags = 0;
	if (opts_check(opts) < 0) {
		queue_seterr(q, "queue %u: %s", num, opts_problem(opts));
		return -EINVAL;
	}
	if (queue_binding(q, num)) {
		queue_seterr(q, "queue %u: already bound on this queue object", num);
		return -EBUSY;
	}
	apply_sock_len(q, opts->sock_len);
	/* Registered before asking: packets of @num can arrive ahead of the
	 * kernel's acknowledgement, and must find their callback. */
	err = binding_add(q, num, cb, user, false);
	if (err < 0)
		return err;
	err = cfg_request(q, cfg_build(buf, num, NFQNL_CFG_CMD_BIND, opts, NFQB_F_ALL));
	if (err == -EAGAIN)  /* conntrack glue module was just loaded */
		err = cfg_request(q, cfg_build(buf, num, NFQNL_CFG_CMD_BIND, opts, NFQB_F_ALL));
	if (err == -EBUSY) {
		/* Bound to this very socket already (the kernel says EPERM
		 * for another socket): a previous owner handed it to us. */
		err = cfg_request(q, cfg_build(buf, num, NFQNL_CFG_CMD_NONE, opts, NFQB_F_ALL));
		adopted = err == 0;
	} else if (err == -EPERM && socket_permitted(q)) {
		err = -EBUSY;
	}
	b = queue_binding(q, num);
	if (err < 0) {
		if (b)
			*b = q->bind[--q->nbind];
		return explain(q, num, opts->flags, err);
	}
	if (b)
		b->adopted = adopted;
	return 0;
}

int nfqb_queue_set_opts(struct nfqb_queue *q, uint16_t num,
			const struct nfqb_queue_opts *opts)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int err;

	if (!q || !opts || opts_check(opts) < 0)
		return -EINVAL;
	if (!queue_binding(q, num))
		return -ENOENT;
	q->rejected_flags = 0;
	apply_sock_len(q, opts->sock_len);
	err = cfg_request(q, cfg_build(buf, num, NFQNL_CFG_CMD_NONE, opts, NFQB_F_ALL));
	return err < 0 ? explain(q, num, opts->flags, err) : 0;
}

/* The kernel dropped whatever was still queued for @num: retained copies
 * of it have nothing left to decide (their verdicts now say -ENOTCONN). */
static void forget_copies(struct nfqb_queue *q, uint16_t num)
{
	struct nfqb_packet *c = q->copies, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->queue_num == num)
			packet_unlink_copy(c);
	}
}

int nfqb_queue_unbind(struct nfqb_queue *q, uint16_t num)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nfqb_binding *b;
	int err;

	if (!q)
		return -EINVAL;
	b = queue_binding(q, num);
	if (!b)
		return -ENOENT;
	if (q->dispatching)
		return -EDEADLK;
	verdict_flush(q);
	err = cfg_request(q, cfg_build(buf, num, NFQNL_CFG_CMD_UNBIND, NULL, 0));
	/* Look again: packets dispatched while waiting may have changed the table. */
	b = queue_binding(q, num);
	if (b)
		*b = q->bind[--q->nbind];
	forget_copies(q, num);
	return err == -ENODEV ? 0 : err;
}
