/* SPDX-License-Identifier: MIT */
/*
 * libnfqb internals shared by lib/ sources and reachable by unit tests through
 * the static archive. Nothing here is exported from the shared library.
 */
#ifndef NFQB_INTERNAL_H
#define NFQB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/netlink.h>

#include <nfqb/queue.h>

#define NFQB_HIDDEN __attribute__((visibility("hidden")))

/* One netlink record: a 64 KiB payload (GSO) plus every other attribute. */
#define NFQB_RXBUF_SIZE (65536u + 8192u)
/* Records one receive takes (recvmmsg): a drain costs one system call per
 * NFQB_RX_SLOTS packets instead of one per packet. Each slot has room for
 * the largest record; pages a slot never touches are never committed. */
#define NFQB_RX_SLOTS NFQB_RX_BATCH_MAX
#define NFQB_RX_AREA ((size_t)NFQB_RX_SLOTS * NFQB_RXBUF_SIZE)
/* While records come one per wake, every NFQB_RX_LOOK_EVERY-th sleep is a
 * batch receive again: the one that notices when they stop coming alone. */
#define NFQB_RX_LOOK_EVERY 8
/* Small verdicts (id, mark) coalesced into one send. */
#define NFQB_TXBUF_SIZE 8192u
/* Records a run handles before it flushes gathered verdicts even though
 * more are waiting: bounds how long a batched packet waits under load. */
#define NFQB_FLUSH_EVERY 64
/* How long a synchronous config call waits for the kernel's answers. */
#define NFQB_CFG_TIMEOUT_MS 5000
/* Room for any config, probe or verdict message without a payload. */
#define NFQB_CFG_MSG_MAX 256u

/* Attributes seen on a packet (bit = 1 << NFQA_*). */
#define PKT_HAS(p, a) (((p)->present >> (a)) & 1u)

enum pkt_state {
	PKT_STALE = 0,   /* callback over (or never dispatched): no access */
	PKT_LIVE,        /* inside its callback */
	PKT_COPY,        /* a retained copy the caller owns */
};

struct nfqb_packet {
	struct nfqb_queue *q;     /* NULL once the queue closed (copies) */
	struct nfqb_packet *twin; /* original <-> retained copy while in callback */
	struct nfqb_packet *next, *prev; /* the queue's list of live copies */
	uint8_t state;            /* enum pkt_state */
	bool decided;
	bool mark_set;
	bool payload_set;
	bool counted;             /* copy is counted in its binding's outstanding */
	bool owns_payload;        /* new_payload is malloc'd (copies only) */
	uint8_t hook;
	uint16_t queue_num;
	uint16_t hw_protocol;
	uint32_t id;
	uint32_t present;         /* PKT_HAS bits */
	uint32_t mark, new_mark;
	/* the whole netlink record; every pointer below points into it */
	const uint8_t *msg;
	uint32_t msg_len;
	const uint8_t *payload;
	uint32_t payload_len;
	uint8_t *new_payload;
	uint32_t new_payload_len;
	uint32_t cap_len;
	uint32_t ifindex[4];      /* enum nfqb_dev */
	uint8_t hw[8];
	uint16_t hw_len;
	uint16_t vlan_proto, vlan_tci;
	struct timespec ts;
	uint32_t uid, gid, skbinfo, priority, ct_info;
	const uint8_t *l2hdr;
	uint32_t l2hdr_len;
	const char *secctx;
	uint32_t secctx_len;
	const uint8_t *ct;
	uint32_t ct_len;
};

struct nfqb_binding {
	uint16_t num;
	bool adopted;
	nfqb_callback cb;
	void *user;
	bool batch_pending;
	uint32_t batch_max;       /* highest id of the coalesced accepts */
	uint32_t batch_count;
	/* packets still waiting in the kernel without a verdict (retained or
	 * abandoned): a batch covers every lower id, so none may be pending. */
	uint32_t outstanding;
};

/* Steps of the asynchronous config request in flight (one per queue). */
enum cfg_step {
	CFG_IDLE = 0,
	CFG_BIND,                 /* CMD_BIND with the options */
	CFG_BIND_RETRY,           /* the same after EAGAIN (a module was loaded) */
	CFG_ADOPT,                /* EBUSY: CMD_NONE, bound to this socket already? */
	CFG_PERM_PROBE,           /* EPERM: another socket's queue or no capability? */
	CFG_FLAG_PROBE,           /* EOPNOTSUPP: one flag at a time */
	CFG_SET_OPTS,             /* CMD_NONE with the options */
	CFG_UNBIND,
};

struct cfg_op {
	uint8_t step;             /* enum cfg_step */
	bool is_bind;             /* the binding of @num is withdrawn on failure */
	uint16_t num;
	uint32_t probe_flag;      /* the flag CFG_FLAG_PROBE asks about */
	int err;                  /* the failure the probes explain */
	struct nfqb_queue_opts opts;
	nfqb_config_cb done;
	void *user;
};

struct nfqb_queue {
	int fd;
	bool to_kernel;           /* a netlink socket: every send names the kernel */
	int rtnl_fd;
	uint32_t portid;
	uint32_t seq;
	bool stop;
	bool batching;
	bool dispatching;
	uint8_t *rx;              /* NFQB_RX_AREA, mapped once */
	/* Records received but not yet handled: slots [rx_next, rx_count). A
	 * stopped run leaves the rest here for the next one. */
	unsigned rx_next, rx_count;
	unsigned rx_batch;        /* slots one receive fills, <= NFQB_RX_SLOTS */
	bool rx_spilled;          /* slots 1.. hold pages of large records */
	bool rx_dry;              /* the last run ended at an empty socket and
				   * nothing received since: nfqb_queue_drained() */
	bool rx_short;            /* nfqb_queue_wait() got fewer records than it
				   * asked for (the socket was empty after them)
				   * or a lone one: the run after it does not
				   * receive again (rx_stopped()) */
	unsigned rx_asked;        /* records the last receive asked for */
	unsigned rx_woke;         /* records received since the socket last ran
				   * dry, counted up to 2 */
	bool rx_lonely;           /* the last wake that brought records brought
				   * one: the next sleep takes one (rx_fill()) */
	unsigned rx_lone;         /* sleeps that took one record since a sleep
				   * last looked for more (NFQB_RX_LOOK_EVERY) */
	bool rx_unlooked;         /* the last receive was such a sleep: the
				   * socket may hold more, nobody looked */
	struct mmsghdr rx_mm[NFQB_RX_SLOTS];
	struct iovec rx_iov[NFQB_RX_SLOTS];
	struct sockaddr_nl rx_sa[NFQB_RX_SLOTS];
	uint8_t tx[NFQB_TXBUF_SIZE];
	size_t tx_len;
	uint8_t *scratch;         /* set_payload of the packet in its callback */
	struct nfqb_binding *bind;
	size_t nbind, capbind;
	struct nfqb_packet cur;   /* the packet being dispatched */
	struct nfqb_packet *copies; /* retained copies still alive */
	/* pending config request: its sequence number, and its answer once
	 * dispatch saw it (acted on by cfg_progress() after the dispatch) */
	uint32_t cfg_seq;
	bool cfg_done;
	int cfg_err;
	struct cfg_op op;
	uint32_t rejected_flags;
	uint32_t sock_len;
	struct nfqb_queue_stats st;
	char errmsg[160];
};

/* queue.c */
NFQB_HIDDEN struct nfqb_queue *queue_new_unchecked(int fd);
NFQB_HIDDEN struct nfqb_binding *queue_binding(struct nfqb_queue *q, uint16_t num);
/* Dispatch records without flushing verdicts (nfqb_queue_handle flushes). */
NFQB_HIDDEN int queue_dispatch(struct nfqb_queue *q, const void *buf, size_t len);
/* Register a binding without asking the kernel (bind's last step; unit
 * tests and benchmarks use it on socketpair queues). */
NFQB_HIDDEN int binding_add(struct nfqb_queue *q, uint16_t num, nfqb_callback cb,
			    void *user, bool adopted);
/* Send @iov to the kernel (never to a connected peer) without blocking:
 * the socket may be shared with a process that connect()s it or clears
 * O_NONBLOCK. @addressed false for the unit tests' socketpairs. */
NFQB_HIDDEN int nl_send_kernel(int fd, const struct iovec *iov, size_t n, bool addressed);
/* Build a config message for @num in @buf (NFQB_CFG_MSG_MAX bytes, zeroed
 * first so no padding byte is left uninitialised). */
NFQB_HIDDEN struct nlmsghdr *cfg_build(char *buf, uint16_t num, uint8_t cmd,
				       const struct nfqb_queue_opts *o, uint32_t mask);
/* Act on a config answer dispatch recorded (next request or completion). */
NFQB_HIDDEN void cfg_progress(struct nfqb_queue *q);
NFQB_HIDDEN void queue_seterr(struct nfqb_queue *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* packet.c: parse one NFQNL_MSG_PACKET into @p (pointers into @nlh). */
NFQB_HIDDEN int packet_parse(struct nfqb_packet *p, const struct nlmsghdr *nlh);
NFQB_HIDDEN void packet_unlink_copy(struct nfqb_packet *c);

/* verdict.c */
NFQB_HIDDEN int verdict_flush(struct nfqb_queue *q);
NFQB_HIDDEN int verdict_send(struct nfqb_queue *q, const struct iovec *iov, size_t n);
NFQB_HIDDEN void verdict_after_callback(struct nfqb_queue *q, struct nfqb_binding *b);

#endif
