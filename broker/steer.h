/* SPDX-License-Identifier: MIT */
/*
 * Steering: which packets of a namespace reach its queues, decided by the
 * broker's config (namespaces[].steer, docs/steering.md) and installed by
 * the broker into nftables tables of its own in that namespace
 * ("ip|ip6|inet nfq_broker"), never touching any other table.
 *
 * Two halves:
 *   steer-parse.c  the config form: JSON -> struct steer_list, validated up
 *                  front with JSON paths (no json-c objects kept);
 *   steer.c        the kernel side: a steer_list -> one nf_tables batch built
 *                  with libnftnl (replace all three tables atomically, or
 *                  delete them), sent on a NETLINK_NETFILTER socket the broker
 *                  opens inside the namespace; rule counters read back.
 */
#ifndef BROKER_STEER_H
#define BROKER_STEER_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "errs.h"

enum steer_hook {
	STEER_HOOK_PREROUTING,
	STEER_HOOK_INPUT,
	STEER_HOOK_FORWARD,
	STEER_HOOK_OUTPUT,
	STEER_HOOK_POSTROUTING,
};

enum steer_family {
	STEER_FAMILY_INET,            /* default: both IPv4 and IPv6 */
	STEER_FAMILY_IP,
	STEER_FAMILY_IP6,
};

/* An inclusive range of port numbers (a single port: lo == hi). */
struct steer_range {
	uint16_t lo, hi;
};

/* An address prefix: af 4 or 6, addr in network byte order (first 4 or 16 bytes). */
struct steer_cidr {
	uint8_t af;
	uint8_t plen;
	uint8_t addr[16];
};

/*
 * The match of one item, in the policy's vocabulary. Lists are OR, keys
 * AND (as in a policy rule). An empty list (n == 0) means "any".
 */
struct steer_match {
	uint8_t af;                   /* "family": 0 any, 4 ipv4, 6 ipv6 */
	uint8_t *protos;              /* "proto": IP protocol numbers */
	size_t nprotos;
	struct steer_range *sport, *dport;
	size_t nsport, ndport;
	struct steer_cidr *src, *dst;
	size_t nsrc, ndst;
	char (*indev)[IFNAMSIZ];      /* "indev" (alias "iif"): interface names */
	char (*outdev)[IFNAMSIZ];     /* "outdev" (alias "oif") */
	size_t nindev, noutdev;
	bool has_mark;                /* "mark": value or "value/mask" */
	uint32_t mark, mark_mask;
};

/* One steer[] item: packets at @hook of @family matching @m go to a queue. */
struct steer_item {
	size_t index;                 /* position in its list (for names, messages) */
	enum steer_hook hook;
	enum steer_family family;
	int32_t priority;             /* base chain priority, default 0 */
	struct steer_match m;
	uint16_t queue_lo, queue_hi;  /* one queue, or a range spread by flow hash */
	bool bypass;                  /* nobody bound: accept instead of drop */
	bool fanout;                  /* spread a range by CPU instead of flow hash */
};

/* A steer list: namespaces[].steer, or a named one under "steering". */
struct steer_list {
	char *name;                   /* "steering" key it came from, or NULL (inline) */
	struct steer_item *items;
	size_t n;
};

/* ---------------------------------------------------------------- steer-parse.c */

/* Limits of the config form: a rule per item, a set element per list entry. */
#define STEER_ITEMS_MAX 256           /* items in one steer list */
#define STEER_LIST_MAX 1024           /* elements in one match list (proto, dport, ...) */
#define STEER_PRIORITY_MIN (-400)
#define STEER_PRIORITY_MAX 400

/*
 * steer_parse - parse @v (the value of a "steer" key, or of one "steering"
 * entry) at JSON path @path into a new list. @queues/@nqueues: the queues
 * the namespace entry binds (a steered queue must be one of them), or NULL
 * to skip that check (a named list is checked where it is used, with
 * steer_check_queues). Every problem is added to @e with its path. Returns
 * the list, or NULL when there was an error.
 */
struct steer_list *steer_parse(json_object *v, const char *path, const uint16_t *queues,
			       size_t nqueues, struct errs *e);

/*
 * steer_check_queues - add an error at @path for every queue @l steers to
 * that is not in @queues. Returns the number of errors added.
 */
size_t steer_check_queues(const struct steer_list *l, const char *path,
			  const uint16_t *queues, size_t nqueues, struct errs *e);

/* steer_list_dup - a deep copy of @l (NULL: NULL), or NULL without memory. */
struct steer_list *steer_list_dup(const struct steer_list *l);

/* steer_list_free - NULL is a no-op. */
void steer_list_free(struct steer_list *l);

/* steer_list_equal - same items in the same order (names aside); NULL == empty. */
bool steer_list_equal(const struct steer_list *a, const struct steer_list *b);

/* steer_match_key - name @i (0, 1, ...) of the match keys steering takes,
 * aliases included ("iif", "oif"); NULL past the last. For docs checks. */
const char *steer_match_key(size_t i);

/* Names as written in the config (and shown by nfq-ctl agents). */
const char *steer_hook_name(enum steer_hook h);
const char *steer_family_name(enum steer_family f);

/* ---------------------------------------------------------------- steer.c */

/* The broker's tables, one per family it steers in. */
#define STEER_TABLE "nfq_broker"

/* What sends a packet to a queue in the installed rules. */
enum steer_backend {
	STEER_BACKEND_UNKNOWN,        /* nothing installed yet */
	STEER_BACKEND_NFT_QUEUE,      /* nft's native "queue" expression (nft_queue) */
	STEER_BACKEND_XT_NFQUEUE,     /* the xtables-compat NFQUEUE target, revision 3 */
};

/* steer_backend_name - "nft-queue", "xt-NFQUEUE" or "unknown". */
const char *steer_backend_name(enum steer_backend b);

/* steer_backend - what this kernel was found to take (UNKNOWN until a first install). */
enum steer_backend steer_backend(void);

/* steer_backend_reset - forget it (unit tests). */
void steer_backend_reset(void);

/* Which message of a batch a sequence number was, for error reports. */
struct steer_tag {
	uint32_t seq;
	int item;                     /* steer[] index, -1 for tables and the batch */
	const char *what;             /* "table", "chain", "set", "set elements", "rule" */
};

/* A built nf_tables batch: BEGIN, the messages, END. */
struct steer_batch {
	char *buf;
	size_t len, cap;
	uint32_t seq;                 /* the next message's */
	uint32_t set_id;              /* the last anonymous set's id */
	struct steer_tag *tags;       /* one per message, in order */
	size_t ntags, captags;
	int err;                      /* first failure while building */
};

/* The broker's tables found in a namespace (steer_read_installed). */
struct steer_installed {
	bool table[3];                /* by enum steer_family */
};

/*
 * steer_batch_build - fill @b with one transaction that makes the broker's
 * tables hold exactly @l's rules (queue expression per @be): per family,
 * a table @l uses is created if missing, an existing one (per @have; NULL:
 * none) has its rules flushed, @l's chains are created if missing, then
 * its sets and rules. No base chain or table is ever deleted here:
 * unregistering a hook drops every packet waiting in the namespace's
 * queues; a chain no longer wanted stays empty until removal.
 * @l NULL: the removal transaction, every family's table deleted.
 * Sequence numbers start at @seq. 0 or -ENOMEM; on success the caller
 * frees @b with steer_batch_free().
 */
int steer_batch_build(struct steer_batch *b, const struct steer_list *l,
		      enum steer_backend be, const struct steer_installed *have, uint32_t seq);

/*
 * steer_read_installed - which of the broker's tables exist in @fd's
 * namespace, from a table dump (nfnetlink fills it inside recv(): never
 * waits). 0 or -errno.
 */
int steer_read_installed(int fd, struct steer_installed *have);

/* steer_batch_free - release @b's buffers (NULL is a no-op). */
void steer_batch_free(struct steer_batch *b);

/* steer_batch_tag - the message of @b with sequence number @seq, or NULL. */
const struct steer_tag *steer_batch_tag(const struct steer_batch *b, uint32_t seq);

/* The outcome of steer_apply()/steer_remove(). */
struct steer_result {
	int err;                      /* 0 or the kernel's -errno */
	const char *what;             /* which message the kernel refused */
	int item;                     /* its steer[] index, -1 when none */
	char msg[128];                /* the kernel's extended-ack text, if any */
	size_t messages;              /* in the batch */
	enum steer_backend backend;   /* the one used */
	bool backend_found;           /* this call found out which the kernel takes */
	bool tables;                  /* afterwards, some of the broker's tables exist */
};

/* steer_socket_setup - options for a NETLINK_NETFILTER socket @fd used here. */
int steer_socket_setup(int fd);

/*
 * steer_apply - make the broker's tables in @fd's namespace hold @l's rules
 * in one transaction (NULL or empty: no rules; the tables stay, empty). @fd: a NETLINK_NETFILTER
 * socket nobody else reads. Never blocks: nfnetlink answers a batch
 * before the send returns. Returns 0 or the first error (@res says which
 * message and why); on error the namespace keeps what it had.
 */
int steer_apply(int fd, const struct steer_list *l, struct steer_result *res);

/* steer_remove - delete the broker's tables (the namespace is released). */
int steer_remove(int fd, struct steer_result *res);

/* Counters of one item, summed over its rules (an inet item may have two). */
struct steer_counter {
	uint64_t packets, bytes;
	unsigned rules;               /* found in the kernel; 0: not installed */
};

/*
 * steer_counters - read the broker's rules in @fd's namespace and sum
 * their counters per item of @l into @out[0..n) (zeroed first). Returns
 * the number of rules found, or a negative errno.
 */
int steer_counters(int fd, const struct steer_list *l, struct steer_counter *out, size_t n);

#endif
