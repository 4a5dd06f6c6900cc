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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "internal.h"
#include "wire.h"

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

static int sock_is_netlink(int fd);

/* Wraps any fd without checking what it is: unit tests hand in one end of
 * a socketpair to see exactly what the library sends. */
struct nfqb_queue *queue_new_unchecked(int fd)
{
	struct nfqb_queue *q = calloc(1, sizeof(*q));

	if (!q)
		goto fail;
	/* mmap, not malloc: the area is large and mostly never touched, and
	 * must not come from (and return to) the heap's committed pages */
	q->rx = mmap(NULL, NFQB_RX_AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	if (q->rx == MAP_FAILED) {
		q->rx = NULL;
		goto fail;
	}
	for (unsigned i = 0; i < NFQB_RX_SLOTS; i++) {
		q->rx_iov[i] = (struct iovec){ .iov_base = q->rx + i * NFQB_RXBUF_SIZE,
					       .iov_len = NFQB_RXBUF_SIZE };
		q->rx_mm[i].msg_hdr = (struct msghdr){ .msg_iov = &q->rx_iov[i], .msg_iovlen = 1,
						       .msg_name = &q->rx_sa[i] };
	}
	q->fd = fd;
	q->to_kernel = sock_is_netlink(fd);
	q->rtnl_fd = -1;
	q->batching = true;
	q->rx_batch = NFQB_RX_SLOTS;
	q->seq = (uint32_t)time(NULL);
	return q;
fail:
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


struct nfqb_queue *nfqb_queue_open_fd(int sockfd)
{
	struct nfqb_queue *q;
	uint32_t portid = 0;
	int err;

	/* One check for library users and the broker's listener (proto/). */
	err = wire_fd_check(sockfd, NETLINK_NETFILTER, NULL, 0);
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
	munmap(q->rx, NFQB_RX_AREA);
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
	nfqb_queue_config_cancel(q);
	/* The kernel unbinds while handling each send; its answers do not
	 * matter here (it unbinds on close anyway unless another process
	 * holds the socket), and waiting for them is what a loop must not. */
	while (q->nbind > 0)
		nfqb_queue_unbind_nowait(q, q->bind[q->nbind - 1].num);
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

/* Records received and not handled yet (a stopped run leaves them). */
static bool rx_held(const struct nfqb_queue *q)
{
	return q->rx_next < q->rx_count;
}

bool nfqb_queue_pending(const struct nfqb_queue *q)
{
	return q && rx_held(q);
}

bool nfqb_queue_drained(const struct nfqb_queue *q)
{
	return q && q->rx_dry;
}

int nfqb_queue_set_rx_batch(struct nfqb_queue *q, unsigned n)
{
	if (!q || n < 1 || n > NFQB_RX_SLOTS)
		return -EINVAL;
	q->rx_batch = n;
	return 0;
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

/*
 * Slot 0 stays committed, as the one buffer of a single receive did; the
 * other slots only hold records in bursts. When a burst of large records
 * (GSO, jumbo) wrote more than the first page of any of them, their pages
 * go back once the socket has run dry (rx_trim()), or a thousand queues
 * would each keep half a MiB after one burst. Small records touch one page
 * per slot and are left alone: trimming those would fault on every burst.
 */
#define RX_SPILL_BYTES 4096u

static void rx_note_spill(struct nfqb_queue *q, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		if (q->rx_mm[i].msg_len > RX_SPILL_BYTES)
			q->rx_spilled = true;
}

static void rx_trim(struct nfqb_queue *q)
{
	if (!q->rx_spilled)
		return;
	q->rx_spilled = false;
	(void)madvise(q->rx + NFQB_RXBUF_SIZE, NFQB_RX_AREA - NFQB_RXBUF_SIZE, MADV_DONTNEED);
}

/* The socket ran dry: did the wake that ends here bring one record? One
 * that brought none (a run on an empty socket) tells nothing. */
static void rx_ran_dry(struct nfqb_queue *q)
{
	if (q->rx_woke)
		q->rx_lonely = q->rx_woke == 1;
	q->rx_woke = 0;
}

/*
 * One record into slot 0 with recvfrom(), the receive with the least work
 * before it sleeps (recvmmsg() copies in and checks a message header for
 * each slot it tries). 1, or -1 with errno set, as recvmmsg() answers:
 * rx_fill() retries both alike.
 */
static int rx_recv_one(struct nfqb_queue *q, int flags)
{
	socklen_t alen = sizeof(q->rx_sa[0]);
	ssize_t n;

	q->rx_sa[0].nl_pid = 0;
	n = recvfrom(q->fd, q->rx_iov[0].iov_base, q->rx_iov[0].iov_len, flags,
		     (struct sockaddr *)&q->rx_sa[0], &alen);
	if (n < 0)
		return -1;
	q->rx_mm[0].msg_len = (unsigned)n;
	return 1;
}

/*
 * Fill up to @vlen slots from the socket: how many records arrived, or -errno.
 * recvmmsg() rather than one recv per record: a drain costs one system call
 * per NFQB_RX_SLOTS packets, and fewer records than asked for means the socket
 * was empty, which saves the receive that would only say EAGAIN (a
 * receive of one has to make it: below). MSG_TRUNC makes netlink report a
 * record's real length, so a truncated record still shows. The source
 * address is read because the socket may be shared with an agent that
 * could connect() it elsewhere: only the kernel's records (nl_pid 0)
 * count.
 *
 * A socket whose records come one at a time (request and answer: each
 * wake finds a single record, the socket then dry) sleeps in a recvfrom()
 * of one instead, and the record's verdict goes out before anything looks
 * for a second: the caller's next sleep is that look (rx_stopped()). Two
 * system calls per packet with its verdict, where the reference loop
 * makes three (bench/README.md, "What limits the latency"): the receive
 * that would only say EAGAIN sat between the packet and its verdict.
 * Every NFQB_RX_LOOK_EVERY-th such sleep is a batch again, whose count
 * says whether records still come alone; any receive that brings several
 * goes back to batches. Only sleeps take one: a caller that waits in
 * epoll_wait() keeps its batches and its looks.
 */
static int rx_fill(struct nfqb_queue *q, int flags, unsigned vlen)
{
	bool blocking = flags & MSG_WAITFORONE;
	bool lone = q->rx_lonely && blocking && q->rx_lone < NFQB_RX_LOOK_EVERY - 1;
	int n;

	if (lone)
		vlen = 1;
	q->rx_dry = false;
	q->rx_short = false;
	q->rx_unlooked = false;
	do {
		if (vlen == 1)
			n = rx_recv_one(q, (flags & ~MSG_WAITFORONE) | MSG_TRUNC);
		else {
			for (unsigned i = 0; i < vlen; i++) {
				q->rx_sa[i].nl_pid = 0;
				q->rx_mm[i].msg_hdr.msg_namelen = sizeof(q->rx_sa[i]);
			}
			n = recvmmsg(q->fd, q->rx_mm, vlen, flags | MSG_TRUNC, NULL);
		}
	} while (n < 0 && errno == EINTR && (flags & MSG_DONTWAIT));
	if (n < 0) {
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && (flags & MSG_DONTWAIT))
			rx_ran_dry(q);
		return -errno;
	}
	q->rx_asked = vlen;
	if (lone) {
		/* a wake of one as far as anybody knows: the look that
		 * would tell is the caller's next sleep */
		q->rx_lone++;
		q->rx_unlooked = true;
	} else {
		if (blocking)
			q->rx_lone = 0;
		/* several at once: not alone, also under a load that never
		 * lets the socket run dry (which would tell the same) */
		if (n > 1)
			q->rx_lonely = false;
		/* only whether a wake brought one record counts: no wrap */
		q->rx_woke = q->rx_woke + (unsigned)n > 2 ? 2 : q->rx_woke + (unsigned)n;
		if ((unsigned)n < vlen)
			rx_ran_dry(q);
	}
	q->rx_next = 0;
	q->rx_count = (unsigned)n;
	rx_note_spill(q, (unsigned)n);
	return n;
}

/* Whether a run stops receiving once the @n records of its last receive
 * are handled: fewer than asked for (the socket was empty after them), or
 * a lone sleep's one, whose verdict goes out first. */
static bool rx_stopped(const struct nfqb_queue *q, int n)
{
	return (unsigned)n < q->rx_asked || q->rx_unlooked;
}

/* Handle the next held record: packets handled, or -ECONNRESET. */
static int rx_next(struct nfqb_queue *q)
{
	unsigned i = q->rx_next++;
	size_t len = q->rx_mm[i].msg_len;
	int n;

	if (len == 0)
		return -ECONNRESET;
	if (len > NFQB_RXBUF_SIZE || q->rx_sa[i].nl_pid != 0) {
		/* Larger than any record the kernel builds, or not from the
		 * kernel at all: skip it whole. */
		q->st.malformed++;
		return 0;
	}
	n = queue_dispatch(q, q->rx_iov[i].iov_base, len);
	cfg_progress(q);
	return n;
}

int nfqb_queue_handle(struct nfqb_queue *q, const void *buf, size_t len)
{
	int held = 0, n, err;

	/* Records a stopped run left are older than @buf's: a batch verdict
	 * for @buf's packets would settle theirs unseen. */
	while (q && !q->dispatching && rx_held(q) && (n = rx_next(q)) >= 0)
		held += n;
	n = queue_dispatch(q, buf, len);
	if (n < 0 || !q)
		return n;
	cfg_progress(q);
	err = verdict_flush(q);
	return err < 0 ? err : n + held;
}

/* How a run waits for the next records. */
enum rx_wait {
	RX_NOWAIT,      /* the socket may hold more: take what is there */
	RX_BLOCK,       /* it ran dry: block in the receive itself */
	RX_POLL,        /* a blocking receive did not block (O_NONBLOCK on a
			 * shared file, or the receive timeout): poll, then take */
};

/* Receive for a run that may wait; poll() only where a blocking receive
 * cannot be trusted to block. -EINTR when a signal wants the caller. */
static int rx_wait_fill(struct nfqb_queue *q, enum rx_wait w)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLIN };

	if (w == RX_BLOCK)
		return rx_fill(q, MSG_WAITFORONE, q->rx_batch);
	if (w == RX_POLL && poll(&pfd, 1, -1) < 0)
		return -errno;
	return rx_fill(q, MSG_DONTWAIT, q->rx_batch);
}

/*
 * A blocking run sleeps in the receive itself (rx_fill()) rather than in
 * poll() and then a receive: one system call fewer per wakeup, about 2 us
 * of a packet's round trip here (bench/README.md). A receive timeout
 * (SO_RCVTIMEO) is set for the run's length because only then does a
 * signal interrupt a blocking receive whatever its handler's SA_RESTART
 * (signal(7)); the caller's own timeout is restored when the run ends.
 */
#define RUN_RCVTIMEO_S 60

static bool run_timeout_set(struct nfqb_queue *q, struct timeval *saved)
{
	struct timeval tv = { .tv_sec = RUN_RCVTIMEO_S };
	socklen_t len = sizeof(*saved);

	return getsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, saved, &len) == 0 &&
	       setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
}

static void run_timeout_restore(struct nfqb_queue *q, const struct timeval *saved)
{
	setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, saved, sizeof(*saved));
}

/* @sleep: how a blocking run waits once the socket ran dry. */
static int run_loop(struct nfqb_queue *q, bool block, enum rx_wait sleep)
{
	int total = 0, budget = NFQB_RUN_BUDGET, unflushed = 0, failed = 0, n, err;
	/* the records nfqb_queue_wait() held were all the socket had, or a
	 * lone record whose verdict goes out first */
	enum rx_wait w = q->rx_short && rx_held(q) ? sleep : RX_NOWAIT;

	while (!q->stop) {
		if (!rx_held(q)) {
			if (failed || (!block && budget <= 0))
				break;
			if (w != RX_NOWAIT) {
				/* the socket ran dry: give the gathered verdicts */
				rx_trim(q);
				unflushed = 0;
				err = verdict_flush(q);
				if (err < 0)
					return err;
				/* Every record that arrives from now on wakes
				 * the fd again (edge-triggered waits rely on it);
				 * after a lone sleep's record nobody looked. */
				q->rx_dry = !q->rx_unlooked;
				if (!block)
					return total;
			}
			n = rx_wait_fill(q, w);
			/* fewer records than asked for: the socket was empty (or
			 * an overrun cut the receive short: the next one says
			 * so); a lone sleep's record: its verdict first */
			if (n >= 0)
				w = rx_stopped(q, n) ? sleep : RX_NOWAIT;
			else if (n == -ENOBUFS)
				q->st.enobufs++;
			else if (n == -EAGAIN || n == -EWOULDBLOCK)
				w = w == RX_NOWAIT ? sleep : RX_POLL;
			else
				return n;
			continue;
		}
		n = rx_next(q);
		if (n < 0)
			return n;
		total += n;
		budget--;
		/* Under sustained load the socket never runs dry: flush anyway,
		 * or batched packets would wait (and fill the kernel queue) for
		 * as long as the load lasts. A failed flush still lets the
		 * records already received have their callbacks (the socket
		 * will not announce them again) and ends the run after them. */
		if (++unflushed >= NFQB_FLUSH_EVERY) {
			unflushed = 0;
			err = verdict_flush(q);
			if (err < 0 && !failed)
				failed = err;
		}
	}
	q->stop = false;
	err = verdict_flush(q);
	if (failed)
		return failed;
	return err < 0 ? err : total;
}

int nfqb_queue_run(struct nfqb_queue *q, bool block)
{
	struct timeval saved;
	bool timed;
	int rc;

	if (!q || q->fd < 0)
		return -EBADF;
	/* From a callback: the outer run's held records and q->cur belong
	 * to it, a nested receive would overwrite the one being handled. */
	if (q->dispatching)
		return -EDEADLK;
	/* only this run's own receives decide (one stopped before its
	 * first, by a stop asked for earlier, did not see the socket) */
	q->rx_dry = false;
	/* a run that does not block returns where it would wait */
	timed = block && run_timeout_set(q, &saved);
	rc = run_loop(q, block, timed || !block ? RX_BLOCK : RX_POLL);
	if (timed)
		run_timeout_restore(q, &saved);

	/* A stop asked for by a callback belongs to this run, also when it
	 * ended in an error; one asked for by a signal handler during the
	 * wait (-EINTR) still ends the next. */
	if (rc < 0 && rc != -EINTR && rc != -EBADF)
		q->stop = false;
	return rc;
}

/*
 * The wait a worker serving a single socket sleeps in instead of
 * epoll_wait() and a receive: one system call fewer per wakeup (while
 * records come alone the receive takes one and the run after it no
 * look, rx_fill()). What else needs the sleeper wakes it with
 * nfqb_queue_wake(): the kernel's answer is a record like the packets, so
 * no wakeup falls between a check and the receive and no signal is
 * needed, while nobody sharing the socket reads the answer away or
 * connect()s the socket elsewhere (the broker keeps a signal as the
 * backstop for that: broker/worker.c).
 */
int nfqb_queue_wait(struct nfqb_queue *q)
{
	struct pollfd pfd;
	int n;

	if (!q || q->fd < 0)
		return -EBADF;
	if (q->dispatching)
		return -EDEADLK;
	if (rx_held(q))
		return (int)(q->rx_count - q->rx_next);
	n = rx_fill(q, MSG_WAITFORONE, q->rx_batch);
	if (n == -EAGAIN || n == -EWOULDBLOCK) {
		/* O_NONBLOCK on the file, set through a copy of it (the
		 * socket may be shared): then sleep in poll() */
		pfd = (struct pollfd){ .fd = q->fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0)
			return -errno;
		return 0;
	}
	if (n == -ENOBUFS)
		q->st.enobufs++;
	if (n < 0)
		return n;
	q->rx_short = rx_stopped(q, n);
	return n;
}

/* NLMSG_NOOP asks for nothing; NLM_F_ACK makes the kernel answer it with
 * an NLMSG_ERROR record of error 0 (or -EPERM without CAP_NET_ADMIN, which
 * wakes as well), sent to this socket. seq 0 is never a config request's:
 * handle_error() ignores it. */
int nfqb_queue_wake(const struct nfqb_queue *q)
{
	struct nlmsghdr nlh = {
		.nlmsg_len = NLMSG_HDRLEN,
		.nlmsg_type = NLMSG_NOOP,
		.nlmsg_flags = NLM_F_ACK,
	};
	struct iovec iov = { .iov_base = &nlh, .iov_len = sizeof(nlh) };

	if (!q || q->fd < 0)
		return -EBADF;
	if (!q->to_kernel)
		return -ENOTSOCK;
	return nl_send_kernel(q->fd, &iov, 1, true);
}

/* ---- configuration ------------------------------------------------ */

/*
 * Config requests are a small state machine (struct cfg_op): one request
 * is sent, dispatch records the kernel's answer (handle_error), and
 * cfg_progress() then sends the next request or completes. The synchronous
 * calls start the same machine and wait on the socket for its end.
 */

static const struct sockaddr_nl kernel_addr = { .nl_family = AF_NETLINK };

/*
 * One buffer goes out with sendto(): the kernel's sendmsg() path copies
 * and checks a msghdr and an iovec array first, about 0.4 us of a lone
 * verdict's round trip (bench/README.md, "The verdict's system call").
 */
int nl_send_kernel(int fd, const struct iovec *iov, size_t n, bool addressed)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
	const int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	ssize_t r;

	if (addressed) {
		/* An explicit destination overrides whatever the socket was
		 * connect()ed to by a process sharing it. */
		mh.msg_name = (void *)&kernel_addr;
		mh.msg_namelen = sizeof(kernel_addr);
	}
	do
		r = n == 1 ? sendto(fd, iov->iov_base, iov->iov_len, flags, mh.msg_name,
				    mh.msg_namelen)
			   : sendmsg(fd, &mh, flags);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int sock_is_netlink(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 && v == AF_NETLINK;
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

struct nlmsghdr *cfg_build(char *buf, uint16_t num, uint8_t cmd,
			   const struct nfqb_queue_opts *o, uint32_t mask)
{
	struct nlmsghdr *nlh;

	/* libmnl 1.0.4 leaves attribute padding (after the 5-byte params)
	 * as it finds it: start from zeros. */
	memset(buf, 0, NFQB_CFG_MSG_MAX);
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
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

static uint32_t next_seq(struct nfqb_queue *q)
{
	return ++q->seq ? q->seq : ++q->seq;
}

/* Send @nlh asking for an acknowledgement; its answer completes the step. */
static int cfg_send(struct nfqb_queue *q, struct nlmsghdr *nlh)
{
	struct iovec iov = { nlh, nlh->nlmsg_len };
	int err;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = next_seq(q);
	q->cfg_seq = nlh->nlmsg_seq;
	q->cfg_done = false;
	/* Verdicts given before a config change reach the kernel first. */
	verdict_flush(q);
	err = nl_send_kernel(q->fd, &iov, 1, q->to_kernel);
	if (err < 0)
		q->cfg_seq = 0;
	return err;
}

static int send_opts(struct nfqb_queue *q, uint8_t cmd)
{
	char buf[NFQB_CFG_MSG_MAX];

	return cfg_send(q, cfg_build(buf, q->op.num, cmd, &q->op.opts, NFQB_F_ALL));
}

/* The kernel checks flags before looking the queue up, so a flags-only
 * message for one flag tells whether that flag is supported. Sends the
 * probe for the next requested flag after @after; 1 when none is left. */
static int send_flag_probe(struct nfqb_queue *q, uint32_t after)
{
	char buf[NFQB_CFG_MSG_MAX];
	struct nlmsghdr *nlh;
	uint32_t f = after ? after << 1 : 1;

	for (; f & NFQB_F_ALL; f <<= 1)
		if (q->op.opts.flags & f)
			break;
	if (!(f & NFQB_F_ALL))
		return 1;
	q->op.probe_flag = f;
	memset(buf, 0, sizeof(buf));
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->op.num);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(f));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(f));
	return cfg_send(q, nlh);
}

/* The kernel answers EPERM both for a queue bound by another socket and
 * for a socket without CAP_NET_ADMIN (its opener's and the sender's are
 * checked before anything else). A message of a type no handler takes
 * tells them apart: EINVAL when permitted, EPERM when not. */
static int send_perm_probe(struct nfqb_queue *q)
{
	char buf[NFQB_CFG_MSG_MAX];

	memset(buf, 0, sizeof(buf));
	return cfg_send(q, nfq_nlmsg_put(buf, 0xff, 0));
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

static void explain(struct nfqb_queue *q, uint16_t num, int err)
{
	char names[80] = "";

	switch (err) {
	case -EOPNOTSUPP:
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
	case -ETIMEDOUT:
		queue_seterr(q, "queue %u: no answer from the kernel", num);
		break;
	default:
		queue_seterr(q, "queue %u: %s", num, strerror(-err));
	}
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

static void binding_drop(struct nfqb_queue *q, uint16_t num)
{
	struct nfqb_binding *b = queue_binding(q, num);

	if (b)
		*b = q->bind[--q->nbind];
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

/* The request ended: settle the binding, explain a failure, tell the caller. */
static void cfg_finish(struct nfqb_queue *q, int err)
{
	struct cfg_op op = q->op;
	struct nfqb_binding *b;

	q->op.step = CFG_IDLE;
	q->cfg_seq = 0;
	if (op.is_bind) {
		b = queue_binding(q, op.num);
		if (err < 0) {
			/* Never bound: copies retained meanwhile decide nothing. */
			binding_drop(q, op.num);
			forget_copies(q, op.num);
		} else if (b)
			b->adopted = op.step == CFG_ADOPT;
	}
	if (err < 0)
		explain(q, op.num, err);
	if (op.done)
		op.done(q, op.num, err, op.user);
}

/* EOPNOTSUPP from a bind or set_opts: find out which flags, then fail. */
static void start_flag_probe(struct nfqb_queue *q)
{
	int rc;

	q->op.step = CFG_FLAG_PROBE;
	q->op.err = -EOPNOTSUPP;
	rc = send_flag_probe(q, 0);
	if (rc != 0)
		cfg_finish(q, rc < 0 ? rc : -EOPNOTSUPP);
}

/* The next step after the answer @err to the current one. */
static void cfg_step(struct nfqb_queue *q, int err)
{
	int rc = 0;

	switch (q->op.step) {
	case CFG_BIND:
	case CFG_BIND_RETRY:
		if (err == -EAGAIN && q->op.step == CFG_BIND) {
			/* conntrack glue module was just loaded */
			q->op.step = CFG_BIND_RETRY;
			rc = send_opts(q, NFQNL_CFG_CMD_BIND);
		} else if (err == -EBUSY) {
			/* Bound to this very socket already (the kernel says EPERM
			 * for another socket): a previous owner handed it to us. */
			q->op.step = CFG_ADOPT;
			rc = send_opts(q, NFQNL_CFG_CMD_NONE);
		} else if (err == -EPERM) {
			q->op.step = CFG_PERM_PROBE;
			rc = send_perm_probe(q);
		} else if (err == -EOPNOTSUPP) {
			start_flag_probe(q);
		} else {
			cfg_finish(q, err);
		}
		break;
	case CFG_ADOPT:
	case CFG_SET_OPTS:
		if (err == -EOPNOTSUPP)
			start_flag_probe(q);
		else
			cfg_finish(q, err);
		break;
	case CFG_PERM_PROBE:
		cfg_finish(q, err == -EPERM ? -EPERM : -EBUSY);
		break;
	case CFG_FLAG_PROBE:
		if (err == -EOPNOTSUPP)
			q->rejected_flags |= q->op.probe_flag;
		rc = send_flag_probe(q, q->op.probe_flag);
		if (rc > 0)
			cfg_finish(q, -EOPNOTSUPP);
		break;
	case CFG_UNBIND:
		cfg_finish(q, err == -ENODEV ? 0 : err);
		break;
	default:
		break;
	}
	if (rc < 0)
		cfg_finish(q, rc);
}

void cfg_progress(struct nfqb_queue *q)
{
	if (!q->cfg_done)
		return;
	q->cfg_done = false;
	q->cfg_seq = 0;
	if (q->op.step != CFG_IDLE)
		cfg_step(q, q->cfg_err);
}

static int op_start(struct nfqb_queue *q, uint8_t step, uint16_t num,
		    const struct nfqb_queue_opts *opts, nfqb_config_cb done, void *user)
{
	q->op = (struct cfg_op){
		.step = step, .num = num, .done = done, .user = user,
		.is_bind = step == CFG_BIND,
	};
	if (opts)
		q->op.opts = *opts;
	return 0;
}

/* A failure before anything reached the kernel: no callback follows. */
static int op_abort(struct nfqb_queue *q, int err)
{
	if (q->op.is_bind)
		binding_drop(q, q->op.num);
	q->op.step = CFG_IDLE;
	queue_seterr(q, "queue %u: cannot send to the kernel: %s", q->op.num, strerror(-err));
	return err;
}

int nfqb_queue_bind_async(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
			  void *user, const struct nfqb_queue_opts *opts,
			  nfqb_config_cb done, void *done_user)
{
	static const struct nfqb_queue_opts defaults = NFQB_QUEUE_OPTS_DEFAULT;
	int err;

	if (!q || !cb)
		return -EINVAL;
	if (q->op.step != CFG_IDLE)
		return -EALREADY;
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
	op_start(q, CFG_BIND, num, opts, done, done_user);
	err = send_opts(q, NFQNL_CFG_CMD_BIND);
	return err < 0 ? op_abort(q, err) : 0;
}

int nfqb_queue_set_opts_async(struct nfqb_queue *q, uint16_t num,
			      const struct nfqb_queue_opts *opts,
			      nfqb_config_cb done, void *done_user)
{
	int err;

	if (!q || !opts || opts_check(opts) < 0)
		return -EINVAL;
	if (q->op.step != CFG_IDLE)
		return -EALREADY;
	if (!queue_binding(q, num))
		return -ENOENT;
	q->rejected_flags = 0;
	apply_sock_len(q, opts->sock_len);
	op_start(q, CFG_SET_OPTS, num, opts, done, done_user);
	err = send_opts(q, NFQNL_CFG_CMD_NONE);
	return err < 0 ? op_abort(q, err) : 0;
}

static int send_unbind(struct nfqb_queue *q, uint16_t num, bool ack)
{
	char buf[NFQB_CFG_MSG_MAX];
	struct nlmsghdr *nlh = cfg_build(buf, num, NFQNL_CFG_CMD_UNBIND, NULL, 0);
	struct iovec iov = { nlh, nlh->nlmsg_len };

	if (ack)
		return cfg_send(q, nlh);
	/* No NLM_F_ACK: only a failure is answered, and no request matches
	 * its sequence number (counted in kernel_errors). */
	nlh->nlmsg_seq = next_seq(q);
	verdict_flush(q);
	return nl_send_kernel(q->fd, &iov, 1, q->to_kernel);
}

int nfqb_queue_unbind_async(struct nfqb_queue *q, uint16_t num,
			    nfqb_config_cb done, void *done_user)
{
	int err;

	if (!q)
		return -EINVAL;
	if (q->op.step != CFG_IDLE)
		return -EALREADY;
	if (!queue_binding(q, num))
		return -ENOENT;
	op_start(q, CFG_UNBIND, num, NULL, done, done_user);
	err = send_unbind(q, num, true);
	binding_drop(q, num);
	forget_copies(q, num);
	if (err < 0)
		q->op.step = CFG_IDLE;
	return err;
}

int nfqb_queue_unbind_nowait(struct nfqb_queue *q, uint16_t num)
{
	int err;

	if (!q)
		return -EINVAL;
	if (!queue_binding(q, num))
		return -ENOENT;
	err = send_unbind(q, num, false);
	binding_drop(q, num);
	forget_copies(q, num);
	return err;
}

bool nfqb_queue_config_pending(const struct nfqb_queue *q)
{
	return q && q->op.step != CFG_IDLE;
}

void nfqb_queue_config_cancel(struct nfqb_queue *q)
{
	struct cfg_op op;

	if (!q || q->op.step == CFG_IDLE)
		return;
	op = q->op;
	q->op.step = CFG_IDLE;
	q->cfg_seq = 0;
	q->cfg_done = false;
	if (op.is_bind && queue_binding(q, op.num))
		(void)nfqb_queue_unbind_nowait(q, op.num);
	explain(q, op.num, -ETIMEDOUT);
}

/* ---- synchronous calls: the machine above, waited for ------------- */

struct sync_wait {
	bool done;
	int err;
};

static void sync_done(struct nfqb_queue *q, uint16_t num, int err, void *user)
{
	struct sync_wait *w = user;

	w->done = true;
	w->err = err;
}

static int elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int)((now.tv_sec - start->tv_sec) * 1000 +
		     (now.tv_nsec - start->tv_nsec) / 1000000);
}

/* Wait for the request in flight, dispatching any packet of other bound
 * queues that arrives meanwhile. */
static int cfg_wait(struct nfqb_queue *q, struct sync_wait *w)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
	struct timespec start;
	int n, waited, err = -ETIMEDOUT;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!w->done) {
		if (rx_held(q)) {
			n = rx_next(q);
			if (n < 0) {
				err = n;
				break;
			}
			continue;
		}
		waited = elapsed_ms(&start);
		if (waited >= NFQB_CFG_TIMEOUT_MS)
			break;
		n = poll(&pfd, 1, NFQB_CFG_TIMEOUT_MS - waited);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -ETIMEDOUT;
			break;
		}
		/* one record at a time: the answer is then the last record
		 * taken, and packets after it stay in the socket, which
		 * says so to whoever polls it next */
		n = rx_fill(q, MSG_DONTWAIT, 1);
		if (n == -ENOBUFS) {
			q->st.enobufs++;   /* our answer may be lost: the timeout tells */
		} else if (n < 0 && n != -EAGAIN) {
			err = n;
			break;
		}
	}
	if (w->done) {
		verdict_flush(q);
		return w->err;
	}
	nfqb_queue_config_cancel(q);
	if (err != -ETIMEDOUT)
		explain(q, q->op.num, err);
	else
		queue_seterr(q, "queue %u: no answer from the kernel within %d ms",
			     q->op.num, NFQB_CFG_TIMEOUT_MS);
	return err;
}

static int sync_check(const struct nfqb_queue *q)
{
	if (q->dispatching)
		return -EDEADLK;   /* waiting would dispatch over q->cur */
	if (q->op.step != CFG_IDLE)
		return -EALREADY;
	return 0;
}

int nfqb_queue_bind(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
		    void *user, const struct nfqb_queue_opts *opts)
{
	struct sync_wait w = { 0 };
	int err;

	if (!q || !cb)
		return -EINVAL;
	err = sync_check(q);
	if (err == 0)
		err = nfqb_queue_bind_async(q, num, cb, user, opts, sync_done, &w);
	return err < 0 ? err : cfg_wait(q, &w);
}

int nfqb_queue_set_opts(struct nfqb_queue *q, uint16_t num,
			const struct nfqb_queue_opts *opts)
{
	struct sync_wait w = { 0 };
	int err;

	if (!q || !opts)
		return -EINVAL;
	err = sync_check(q);
	if (err == 0)
		err = nfqb_queue_set_opts_async(q, num, opts, sync_done, &w);
	return err < 0 ? err : cfg_wait(q, &w);
}

int nfqb_queue_unbind(struct nfqb_queue *q, uint16_t num)
{
	struct sync_wait w = { 0 };
	int err;

	if (!q)
		return -EINVAL;
	if (!queue_binding(q, num))
		return -ENOENT;
	err = sync_check(q);
	if (err == 0)
		err = nfqb_queue_unbind_async(q, num, sync_done, &w);
	return err < 0 ? err : cfg_wait(q, &w);
}
