/* SPDX-License-Identifier: MIT */
/*
 * libnfqb — the python-netfilterqueue API in C, without its limits.
 *
 * One struct nfqb_queue wraps one NETLINK_NETFILTER socket, on which any
 * number of NFQUEUE queue numbers can be bound. Packets are delivered to the
 * callback given at bind time, from inside nfqb_queue_run() or
 * nfqb_queue_handle(). A packet handed to the callback points into the
 * library's receive buffer: nothing is allocated per packet unless the
 * caller asks for it with nfqb_packet_retain().
 *
 * Conventions: functions return 0 (or a non-negative value) on success and a
 * negative errno on failure; nothing prints. Functions that return pointers
 * return NULL and set errno on failure.
 *
 * Threading: a queue and its packets belong to one thread at a time.
 */
#ifndef NFQB_QUEUE_H
#define NFQB_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nfqb/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libnfqb builds with -fvisibility=hidden: what this header declares is
 * the exported interface (the version script then keeps it to nfqb_*). */
#pragma GCC visibility push(default)

/* Kept for programs written against 0.1: <nfqb/version.h> has the parts. */
#define NFQB_VERSION NFQB_VERSION_STRING

struct nfqb_queue;
struct nfqb_packet;

/** Called once per packet, inside nfqb_queue_run()/nfqb_queue_handle(). */
typedef void (*nfqb_callback)(struct nfqb_packet *p, void *user);

/** How much of each packet the kernel copies to user space. With
 * NFQB_COPY_NONE the kernel queues nothing: every packet the rule sends
 * to the queue is dropped (or accepted, with fail-open/--queue-bypass). */
enum nfqb_copy_mode { NFQB_COPY_NONE, NFQB_COPY_META, NFQB_COPY_PACKET };

enum {                       /* queue flags, OR'd into nfqb_queue_opts.flags */
	NFQB_F_FAIL_OPEN = 1 << 0, NFQB_F_CONNTRACK = 1 << 1, NFQB_F_GSO = 1 << 2,
	NFQB_F_UID_GID   = 1 << 3, NFQB_F_SECCTX    = 1 << 4,
};
#define NFQB_F_ALL 0x1fu

struct nfqb_queue_opts {
	uint32_t max_len;            /* default 1024 */
	enum nfqb_copy_mode mode;    /* default NFQB_COPY_PACKET */
	uint32_t range;              /* default 65535 */
	uint32_t sock_len;           /* receive buffer in bytes; 0 = library default */
	uint32_t flags;              /* NFQB_F_*; default NFQB_F_GSO */
};
#define NFQB_QUEUE_OPTS_DEFAULT { 1024, NFQB_COPY_PACKET, 65535, 0, NFQB_F_GSO }

/** Largest copy range (the kernel copies at most 65531 bytes of it). */
#define NFQB_MAX_PAYLOAD 65535u
/** Largest replacement payload: a netlink attribute's 16-bit length holds
 * its 4-byte header too. */
#define NFQB_MAX_SET_PAYLOAD 65531u
/** Library default receive buffer (sock_len 0). */
#define NFQB_DEFAULT_SOCK_LEN (4u << 20)
/** Largest sock_len accepted (applied with SO_RCVBUFFORCE, else SO_RCVBUF). */
#define NFQB_MAX_SOCK_LEN (1u << 30)

/** Netfilter verdicts (values of <linux/netfilter.h>). */
enum nfqb_verdict {
	NFQB_DROP = 0, NFQB_ACCEPT = 1, NFQB_QUEUE = 3, NFQB_REPEAT = 4,
};

/** Hooks, as nfqb_packet_hook() reports them (NF_INET_*). */
enum nfqb_hook {
	NFQB_HOOK_PREROUTING = 0, NFQB_HOOK_INPUT = 1, NFQB_HOOK_FORWARD = 2,
	NFQB_HOOK_OUTPUT = 3, NFQB_HOOK_POSTROUTING = 4,
};

/** Which interface nfqb_packet_ifindex()/nfqb_packet_ifname() report. */
enum nfqb_dev { NFQB_DEV_IN, NFQB_DEV_OUT, NFQB_DEV_PHYSIN, NFQB_DEV_PHYSOUT };

/* ------------------------------------------------------------------ */
/* Queue                                                              */
/* ------------------------------------------------------------------ */

/**
 * nfqb_queue_open - open a NETLINK_NETFILTER socket in the current network
 * namespace (NetfilterQueue()). Returns NULL and sets errno on failure.
 */
struct nfqb_queue *nfqb_queue_open(void);

/**
 * nfqb_queue_open_fd - wrap a NETLINK_NETFILTER socket opened elsewhere,
 * typically in another network namespace (NetfilterQueue(sockfd=N)).
 * Takes ownership of @sockfd on success and on failure (it is closed).
 * Errors: EBADF (not an open fd), ENOTSOCK, EAFNOSUPPORT (not AF_NETLINK),
 * EPROTONOSUPPORT (not NETLINK_NETFILTER).
 */
struct nfqb_queue *nfqb_queue_open_fd(int sockfd);

/**
 * nfqb_queue_close - unbind every queue number (without waiting for the
 * kernel's answers: it unbinds while handling each send), flush pending
 * verdicts and close the socket. A config request in flight is cancelled. Packets still retained stay valid as memory but their
 * verdicts fail with -ENOTCONN. NULL is a no-op. Not from a callback of
 * @q (use nfqb_queue_stop() and close after run returns).
 */
void nfqb_queue_close(struct nfqb_queue *q);

/**
 * nfqb_queue_detach - flush pending verdicts and close the socket WITHOUT
 * unbinding: when another process holds a copy of the socket (an agent),
 * the kernel keeps the queues and goes on queueing packets for a later
 * owner. Otherwise the same as nfqb_queue_close(). NULL is a no-op.
 */
void nfqb_queue_detach(struct nfqb_queue *q);

/**
 * nfqb_queue_bind - bind queue number @num to this socket and deliver its
 * packets to @cb. @opts NULL means NFQB_QUEUE_OPTS_DEFAULT. All flags go to
 * the kernel in one NFQA_CFG_FLAGS with a mask covering every NFQB_F_* bit.
 *
 * If the kernel already has @num bound to this very socket (a socket handed
 * over from a process that bound it before, e.g. a restarted broker), the
 * queue is adopted: the options are applied and the callback registered.
 *
 * Errors: EINVAL (bad opts: max_len 0, range 0 with NFQB_COPY_PACKET,
 * range > 65535, unknown mode or flag bits, sock_len > 1 GiB), EBUSY (bound
 * already, by this queue object or by another socket), EOPNOTSUPP (the
 * kernel rejected a flag; see nfqb_queue_rejected_flags()), EPERM (no
 * CAP_NET_ADMIN), ETIMEDOUT (no answer from the kernel within 5 s), EDEADLK
 * (called from inside a callback of this queue: waiting for the kernel's
 * answer would dispatch packets over the one being handled), EALREADY (an
 * asynchronous request is in flight). Built on nfqb_queue_bind_async():
 * packets of other bound queues arriving meanwhile are dispatched.
 */
int nfqb_queue_bind(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
		    void *user, const struct nfqb_queue_opts *opts);

/**
 * nfqb_queue_unbind - unbind queue number @num (pending verdicts for it
 * are flushed first; the kernel drops what is still queued for it).
 * Errors: ENOENT when @num is not bound here, EDEADLK from a callback.
 */
int nfqb_queue_unbind(struct nfqb_queue *q, uint16_t num);

/**
 * nfqb_queue_set_opts - change max_len, copy mode, range and flags of a
 * bound queue without unbinding it (nothing queued is lost).
 */
int nfqb_queue_set_opts(struct nfqb_queue *q, uint16_t num,
			const struct nfqb_queue_opts *opts);

/* ------------------------------------------------------------------ */
/* Asynchronous configuration (symbol version NFQB_1.1)               */
/* ------------------------------------------------------------------ */

/*
 * The kernel handles a config request inside the sender's send call; its
 * answer is queued on the socket behind any packets, or lost to an
 * overrun, or read by another process sharing the socket. An event loop
 * that must never wait (nfq-broker) sends the request, goes on, and learns
 * the outcome when nfqb_queue_run()/nfqb_queue_handle() meets the answer.
 * One request is in flight per queue object at a time; the caller bounds
 * the wait with its own timer and nfqb_queue_config_cancel().
 *
 * Every message libnfqb sends on a netlink socket, synchronous or not,
 * names the kernel as its destination (overriding a connect() by anyone
 * sharing the socket) and uses MSG_DONTWAIT.
 */

/**
 * nfqb_config_cb - called once when an asynchronous request ended. @err is
 * 0 or the negative errno the synchronous call would have returned (with
 * nfqb_queue_errmsg() and nfqb_queue_rejected_flags() set likewise). Runs
 * inside nfqb_queue_run()/nfqb_queue_handle() after the record carrying
 * the kernel's answer was handled. It may start another request or give
 * verdicts; it must NOT close or detach @q (stop the run and do it after).
 */
typedef void (*nfqb_config_cb)(struct nfqb_queue *q, uint16_t num, int err, void *user);

/**
 * nfqb_queue_bind_async - nfqb_queue_bind() without waiting: registers @cb
 * for @num (packets may arrive before the answer) and sends the bind
 * request. Returns 0 when the request is on its way (@done follows), or a
 * negative errno at once: EINVAL/EBUSY as nfqb_queue_bind(), EALREADY when
 * another request of @q is in flight, or the send's error. The steps the
 * synchronous call takes happen as answers arrive: EAGAIN retried once,
 * EBUSY adopts a queue bound to this very socket, EPERM probed (EBUSY when
 * another socket holds @num), EOPNOTSUPP probed flag by flag.
 */
int nfqb_queue_bind_async(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
			  void *user, const struct nfqb_queue_opts *opts,
			  nfqb_config_cb done, void *done_user);

/**
 * nfqb_queue_set_opts_async - nfqb_queue_set_opts() without waiting; returns
 * like nfqb_queue_bind_async() (ENOENT when @num is not bound here).
 */
int nfqb_queue_set_opts_async(struct nfqb_queue *q, uint16_t num,
			      const struct nfqb_queue_opts *opts,
			      nfqb_config_cb done, void *done_user);

/**
 * nfqb_queue_unbind_async - nfqb_queue_unbind() without waiting: the
 * binding is gone at once, @done (may be NULL) reports the kernel's answer.
 */
int nfqb_queue_unbind_async(struct nfqb_queue *q, uint16_t num,
			    nfqb_config_cb done, void *done_user);

/**
 * nfqb_queue_unbind_nowait - unbind @num and forget about it: the kernel
 * unbinds while handling the send, only its answer is not awaited (an
 * error answer is counted in kernel_errors). Needs no idle queue object;
 * callable from a callback. Errors: ENOENT, the send's error (the binding
 * is gone all the same).
 */
int nfqb_queue_unbind_nowait(struct nfqb_queue *q, uint16_t num);

/** nfqb_queue_config_pending - whether an asynchronous request is in flight. */
bool nfqb_queue_config_pending(const struct nfqb_queue *q);

/**
 * nfqb_queue_config_cancel - give up the request in flight (e.g. its timer
 * ran out: the answer was lost or read by another process): its callback
 * is never called, a late answer is ignored. A bind in flight is withdrawn
 * and, as the kernel may have bound the queue already, an unbind is sent
 * for it (nowait). nfqb_queue_errmsg() then says the kernel did not answer.
 */
void nfqb_queue_config_cancel(struct nfqb_queue *q);

/**
 * nfqb_queue_adopted - whether @num was found already bound to this socket
 * by a previous owner (see nfqb_queue_bind()). Packets that owner read but
 * never decided are still in the kernel: settle them with
 * nfqb_queue_verdict_batch() up to the kernel's id_seq (nfqb_kstats_read()).
 */
bool nfqb_queue_adopted(const struct nfqb_queue *q, uint16_t num);

/**
 * nfqb_queue_rejected_flags - after a bind/set_opts that failed with
 * -EOPNOTSUPP, the NFQB_F_* bits this kernel refused (0 otherwise).
 */
uint32_t nfqb_queue_rejected_flags(const struct nfqb_queue *q);

/** nfqb_flag_name - "fail_open", "conntrack", "gso", "uid_gid", "secctx", or NULL. */
const char *nfqb_flag_name(uint32_t flag);

/**
 * nfqb_queue_errmsg - one line explaining the last failure on @q, naming
 * the queue number and, for EOPNOTSUPP, the flag ("" when none).
 */
const char *nfqb_queue_errmsg(const struct nfqb_queue *q);

/** nfqb_queue_fd - the socket, for poll/epoll (get_fd()). */
int nfqb_queue_fd(const struct nfqb_queue *q);

/** nfqb_queue_portid - the netlink port id the kernel knows this socket by. */
uint32_t nfqb_queue_portid(const struct nfqb_queue *q);

/**
 * nfqb_queue_run - receive and dispatch packets (run(block)).
 * Records are received up to 8 per system call (recvmmsg;
 * nfqb_queue_set_rx_batch()); a blocking run whose last wake brought a
 * single record sleeps in a receive of one and gives its verdict before
 * any look for a second; every 8th such sleep is a batch again, and any
 * receive that brings several goes back to batches (docs/library.md).
 * Not from a callback of @q (-EDEADLK).
 * Non-blocking (@block false): handles what is already queued on the
 * socket (about NFQB_RUN_BUDGET messages, so one busy socket cannot
 * starve others in an event loop: the fd stays readable; an edge-triggered
 * loop asks nfqb_queue_drained()), flushes verdicts, returns the number of
 * packets handled.
 * Blocking: loops until nfqb_queue_stop() or an error, sleeping in the
 * receive itself. Pending verdicts are flushed before it sleeps and, under
 * sustained load, after every 64 records, so no packet waits long for a
 * batch. For the length of a blocking run the socket has a receive timeout
 * (SO_RCVTIMEO, 60 s; the caller's own is restored at the end) so that a
 * signal interrupts it with -EINTR also when its handler has SA_RESTART.
 * ENOBUFS (the socket overran) is counted in the stats and survived.
 */
int nfqb_queue_run(struct nfqb_queue *q, bool block);

#define NFQB_RUN_BUDGET 1024

/**
 * nfqb_queue_stop - make nfqb_queue_run() return after the current record
 * (callable from a callback). Records the run had already received stay
 * with @q and are handled first by the next nfqb_queue_run() or by a
 * synchronous config call (see nfqb_queue_pending()).
 */
void nfqb_queue_stop(struct nfqb_queue *q);

/**
 * nfqb_queue_pending - whether @q holds records it received but did not
 * handle yet: a run takes up to NFQB_RX_BATCH_MAX records per system call
 * (nfqb_queue_set_rx_batch()), and one stopped by nfqb_queue_stop() leaves
 * the rest. Their packets wait for a verdict while the socket may no
 * longer be readable, so an event loop that stops runs calls
 * nfqb_queue_run() again while this is true instead of waiting for the
 * fd. False for NULL. Since NFQB_1.3.
 */
bool nfqb_queue_pending(const struct nfqb_queue *q);

/**
 * nfqb_queue_drained - whether the last nfqb_queue_run() on @q returned
 * because the socket had no record left (with nothing held and nothing
 * received since). Then every record that arrives later makes the fd
 * readable anew, so an event loop that watches the fd edge-triggered
 * (EPOLLET) may wait for it; while this is false (the run stopped at its
 * budget, at nfqb_queue_stop() or at an error, or it followed a
 * nfqb_queue_wait() that took a lone record: nobody looked) it must run @q
 * again without waiting. False for NULL. Since NFQB_1.3.
 */
bool nfqb_queue_drained(const struct nfqb_queue *q);

/**
 * nfqb_queue_wait - sleep until records arrive on @q's socket or someone
 * calls nfqb_queue_wake(), and hold what arrived for the next
 * nfqb_queue_run(), which handles it first. For a thread that serves this
 * one socket but must also answer other events: it sleeps in the receive
 * itself, as a blocking run does, instead of in poll() or epoll_wait()
 * and then a receive. A non-blocking run after it that finds fewer
 * records held than the receive asked for flushes and returns without
 * receiving again. Like a blocking run, the wait asks for a single record
 * when the last wake brought one, and the run after it gives that
 * record's verdict and returns without looking for a second: it is then
 * not drained (nfqb_queue_drained()), and the caller's next wait takes
 * whatever came meanwhile. Returns the number of records held (0 when a wait in
 * poll() ended: the socket's file is O_NONBLOCK or has a receive timeout
 * that expired), or -errno: -ENOBUFS (counted, as by a run), -EINTR (a
 * signal whose handler has no SA_RESTART). Not from a callback of @q
 * (-EDEADLK). Since NFQB_1.3.
 */
int nfqb_queue_wait(struct nfqb_queue *q);

/**
 * nfqb_queue_wake - end a nfqb_queue_wait() on @q, now or, if none sleeps,
 * the next one. It asks the kernel for an acknowledgement (NLMSG_NOOP
 * with NLM_F_ACK), which arrives on @q's socket as a record that runs
 * skip. Touches nothing in @q but its fd: callable from another thread
 * while @q's owner waits or runs, and from a signal handler. A wakeup that
 * must carry a reason carries it beside, set before the call. Whoever
 * shares the socket can read the answer away or make it undeliverable
 * (connect() the socket elsewhere): with a shared socket keep a backstop,
 * such as a signal to a waiter that still sleeps. 0 or -errno (-ENOTSOCK
 * when @q is not a netlink socket).
 * Since NFQB_1.3.
 */
int nfqb_queue_wake(const struct nfqb_queue *q);

/**
 * nfqb_queue_handle - dispatch netlink bytes the caller received itself
 * from this queue's socket (run_socket()). Pending verdicts are flushed
 * before it returns. Returns the number of packets handled; malformed
 * messages are skipped and counted, never fatal. The bytes may be
 * hostile: nothing outside @buf[0, @len) is read, and a record whose
 * length does not fit what is left ends the walk (counted as malformed).
 */
int nfqb_queue_handle(struct nfqb_queue *q, const void *buf, size_t len);

/** nfqb_queue_flush - send every pending (batched) verdict now. */
int nfqb_queue_flush(struct nfqb_queue *q);

/**
 * nfqb_queue_set_rx_batch - how many records one receive may take, 1 to
 * NFQB_RX_BATCH_MAX (the default). 1 receives one record per system call
 * and so never leaves records behind a stopped run (nfqb_queue_pending()):
 * for callers that must stop mid-run and then wait on the fd, as the
 * Python module does when a callback raises. Returns 0 or -EINVAL. Since
 * NFQB_1.3.
 */
int nfqb_queue_set_rx_batch(struct nfqb_queue *q, unsigned n);

#define NFQB_RX_BATCH_MAX 8

/**
 * nfqb_queue_set_batching - coalesce consecutive plain accepts given in the
 * callback into one NFQNL_MSG_VERDICT_BATCH (default on).
 */
void nfqb_queue_set_batching(struct nfqb_queue *q, bool on);

/**
 * nfqb_queue_verdict_batch - give @verdict to every packet of queue @num
 * with an id up to @max_id that is still waiting in the kernel, e.g. to
 * settle packets a previous owner of the socket read but never decided.
 */
int nfqb_queue_verdict_batch(struct nfqb_queue *q, uint16_t num,
			     uint32_t max_id, uint32_t verdict);

/**
 * nfqb_queue_set_rtnl - give the queue a NETLINK_ROUTE socket of the
 * namespace its netfilter socket lives in, used by nfqb_packet_ifname().
 * Takes ownership of @fd (-1 drops the current one).
 */
int nfqb_queue_set_rtnl(struct nfqb_queue *q, int fd);

/** Counters kept by the library for one queue object. */
struct nfqb_queue_stats {
	uint64_t packets;        /* packets dispatched to callbacks */
	uint64_t bytes;          /* their original lengths (cap_len) */
	uint64_t verdicts;       /* verdicts given (single or in a batch) */
	uint64_t batches;        /* NFQNL_MSG_VERDICT_BATCH messages sent */
	uint64_t batched;        /* verdicts carried by those batches */
	uint64_t enobufs;        /* receive overruns (kernel dropped messages) */
	uint64_t malformed;      /* messages skipped as malformed */
	uint64_t kernel_errors;  /* NLMSG_ERROR replies to verdicts */
	uint64_t unsettled;      /* packets left with no verdict and not retained */
	uint64_t send_errors;    /* verdict sends that failed */
};

/** nfqb_queue_get_stats - copy the counters of @q into @st. */
void nfqb_queue_get_stats(const struct nfqb_queue *q, struct nfqb_queue_stats *st);

/* ------------------------------------------------------------------ */
/* Kernel queue statistics (/proc/net/netfilter/nfnetlink_queue)       */
/* ------------------------------------------------------------------ */

struct nfqb_kstat {
	uint32_t queue;          /* queue number */
	uint32_t portid;         /* netlink port id of the bound socket */
	uint32_t queued;         /* packets waiting for a verdict now */
	uint32_t copy_mode;      /* NFQB_COPY_* */
	uint32_t copy_range;
	uint32_t dropped_full;   /* dropped because the queue was full */
	uint32_t dropped_netlink;/* dropped because the socket could not take them */
	uint32_t id_seq;         /* last packet id handed out */
};

/**
 * nfqb_kstats_read - parse a nfnetlink_queue proc file (@path NULL =
 * /proc/net/netfilter/nfnetlink_queue; use /proc/PID/net/... for another
 * namespace). Fills up to @max entries, returns how many lines the file
 * had (may exceed @max), or a negative errno. EBADMSG on a malformed line.
 */
int nfqb_kstats_read(const char *path, struct nfqb_kstat *out, size_t max);

/* ------------------------------------------------------------------ */
/* Packet                                                             */
/* ------------------------------------------------------------------ */

/** nfqb_packet_id - the kernel's packet id (Packet.id). */
uint32_t nfqb_packet_id(const struct nfqb_packet *p);
/** nfqb_packet_queue - the queue number the packet came from. */
uint16_t nfqb_packet_queue(const struct nfqb_packet *p);
/** nfqb_packet_hw_protocol - link-layer protocol, host order (0x0800 IPv4, 0x86dd IPv6). */
uint16_t nfqb_packet_hw_protocol(const struct nfqb_packet *p);
/** nfqb_packet_hook - NFQB_HOOK_* the packet was queued from. */
uint8_t nfqb_packet_hook(const struct nfqb_packet *p);
/** nfqb_packet_mark - the mark the packet arrived with (Packet.mark). */
uint32_t nfqb_packet_mark(const struct nfqb_packet *p);
/** nfqb_packet_get_mark - the mark the verdict will carry (arrival mark unless set). */
uint32_t nfqb_packet_get_mark(const struct nfqb_packet *p);
/** nfqb_packet_set_mark - send @mark with the verdict. -EALREADY after a verdict. */
int nfqb_packet_set_mark(struct nfqb_packet *p, uint32_t mark);

/**
 * nfqb_packet_payload - the packet's network-layer bytes (the replacement
 * if set_payload was called). NULL with *len 0 when the copy mode carried
 * none; NULL with errno ESTALE once the callback returned for a packet not
 * retained.
 */
const void *nfqb_packet_payload(const struct nfqb_packet *p, size_t *len);
/** nfqb_packet_payload_len - length of nfqb_packet_payload(), or -ESTALE. */
int nfqb_packet_payload_len(const struct nfqb_packet *p);
/**
 * nfqb_packet_set_payload - replace the payload sent with the verdict (copied).
 * Errors: EMSGSIZE (> NFQB_MAX_SET_PAYLOAD bytes), EALREADY (verdict
 * given), ESTALE.
 */
int nfqb_packet_set_payload(struct nfqb_packet *p, const void *buf, size_t len);
/**
 * nfqb_packet_cap_len - the packet's original length; larger than the
 * payload when the copy range truncated it. The kernel reports it only
 * when it truncated a copy, so with NFQB_COPY_META (no copy) it is 0: use
 * COPY_PACKET with a small range to learn lengths cheaply.
 */
uint32_t nfqb_packet_cap_len(const struct nfqb_packet *p);

/** nfqb_packet_hw - source hardware address and its real length, NULL when absent. */
const uint8_t *nfqb_packet_hw(const struct nfqb_packet *p, size_t *len);
/** nfqb_packet_timestamp - arrival time; -ENODATA when the kernel sent none. */
int nfqb_packet_timestamp(const struct nfqb_packet *p, struct timespec *ts);

/** nfqb_packet_indev..physoutdev - interface index, 0 when absent. */
uint32_t nfqb_packet_indev(const struct nfqb_packet *p);
uint32_t nfqb_packet_outdev(const struct nfqb_packet *p);
uint32_t nfqb_packet_physindev(const struct nfqb_packet *p);
uint32_t nfqb_packet_physoutdev(const struct nfqb_packet *p);
/** nfqb_packet_ifindex - one of the four above by @which. */
uint32_t nfqb_packet_ifindex(const struct nfqb_packet *p, enum nfqb_dev which);
/**
 * nfqb_packet_ifname - name of interface @which, resolved in the socket's
 * namespace (through nfqb_queue_set_rtnl()'s socket when given, else in the
 * caller's namespace). @buf holds IF_NAMESIZE (16) bytes. -ENODATA when the
 * packet has no such interface, -ENODEV when the index is unknown.
 */
int nfqb_packet_ifname(const struct nfqb_packet *p, enum nfqb_dev which, char *buf);

/** nfqb_packet_uid/gid - socket owner (needs NFQB_F_UID_GID); -ENODATA when absent. */
int nfqb_packet_uid(const struct nfqb_packet *p, uint32_t *uid);
int nfqb_packet_gid(const struct nfqb_packet *p, uint32_t *gid);
/** nfqb_packet_skbinfo - NFQA_SKB_* bits; -ENODATA when absent. */
int nfqb_packet_skbinfo(const struct nfqb_packet *p, uint32_t *info);
/** nfqb_packet_priority - skb->priority; -ENODATA when absent. */
int nfqb_packet_priority(const struct nfqb_packet *p, uint32_t *prio);
/** nfqb_packet_vlan - VLAN protocol and TCI (host order); -ENODATA when untagged. */
int nfqb_packet_vlan(const struct nfqb_packet *p, uint16_t *proto, uint16_t *tci);
/** nfqb_packet_l2hdr - the full link-layer header, NULL when absent. */
const void *nfqb_packet_l2hdr(const struct nfqb_packet *p, size_t *len);
/** nfqb_packet_secctx - security context string (needs NFQB_F_SECCTX), NULL when absent. */
const char *nfqb_packet_secctx(const struct nfqb_packet *p, size_t *len);
/**
 * nfqb_packet_ct - the raw nested NFQA_CT conntrack attributes (needs
 * NFQB_F_CONNTRACK and kernel support), NULL when absent; @info receives
 * NFQA_CT_INFO (enum ip_conntrack_info) or UINT32_MAX when absent.
 */
const void *nfqb_packet_ct(const struct nfqb_packet *p, size_t *len, uint32_t *info);

/**
 * nfqb_packet_retain - keep the packet past its callback: returns a copy the
 * caller owns (payload included). A verdict on either the original (inside
 * the callback) or the copy settles both. Free it with
 * nfqb_packet_release(). NULL with errno EALREADY when retained already or
 * decided, ESTALE outside the callback, ENOMEM.
 */
struct nfqb_packet *nfqb_packet_retain(struct nfqb_packet *p);
/**
 * nfqb_packet_release - free a retained packet. A packet released without
 * a verdict stays queued in the kernel and is counted as unsettled.
 * NULL is a no-op; packets not obtained from retain are ignored.
 */
void nfqb_packet_release(struct nfqb_packet *p);

/**
 * nfqb_packet_accept/drop/repeat - give the verdict. Inside the callback,
 * a plain accept may be coalesced into a batch; anything else, and any
 * verdict on a retained packet outside its callback, is sent at once.
 * A second verdict on one packet returns -EALREADY.
 */
int nfqb_packet_accept(struct nfqb_packet *p);
int nfqb_packet_drop(struct nfqb_packet *p);
int nfqb_packet_repeat(struct nfqb_packet *p);
/** nfqb_packet_requeue - hand the packet to queue number @num. */
int nfqb_packet_requeue(struct nfqb_packet *p, uint16_t num);
/** nfqb_packet_verdict - any NFQB_* verdict (NFQB_QUEUE with the number in bits 16-31). */
int nfqb_packet_verdict(struct nfqb_packet *p, uint32_t verdict);
/** nfqb_packet_decided - whether a verdict was given. */
bool nfqb_packet_decided(const struct nfqb_packet *p);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* NFQB_QUEUE_H */
