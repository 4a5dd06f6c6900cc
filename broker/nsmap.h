/* SPDX-License-Identifier: MIT */
/*
 * nsmap - the broker's sessions by network namespace (nsfs device and
 * inode), for the lookup every attach makes. A list scan cost a broker
 * with 3,000 namespaces 12 % of its CPU during an attach run
 * (bench/README.md, "What limits the attach").
 *
 * Intrusive and chained: a node lives in its owner (struct session), the
 * map only links it; a full table only makes longer chains (it grows when
 * it can). Only the very first table can fail to come: the node is then
 * "lost" and nsmap_complete() says so, for the caller to search its own
 * list instead. Several nodes may have the same key; nsmap_find() returns
 * the one added last, as the scan of the session list it replaces did (new
 * sessions go first).
 */
#ifndef NFQB_BROKER_NSMAP_H
#define NFQB_BROKER_NSMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nsmap_state { NSMAP_OUT, NSMAP_IN, NSMAP_LOST };

struct nsmap_node {
	struct nsmap_node *next;
	uint64_t dev, ino;
	enum nsmap_state state;   /* NSMAP_OUT (zeroed) until added */
};

struct nsmap {
	struct nsmap_node **slot;
	size_t nslots;          /* a power of two, or 0 before the first table */
	size_t count;           /* nodes linked */
	size_t lost;            /* nodes added while there was no table */
};

/* nsmap_init - an empty map (no allocation until the first add). */
void nsmap_init(struct nsmap *m);
/* nsmap_clear - free the table, every linked node out again; the nodes are
 * their owners'. */
void nsmap_clear(struct nsmap *m);
/* nsmap_add - link @n under its dev/ino, which must not change while linked;
 * a node that is in already is left alone. */
void nsmap_add(struct nsmap *m, struct nsmap_node *n);
/* nsmap_del - unlink @n; a node that is not linked is left alone. */
void nsmap_del(struct nsmap *m, struct nsmap_node *n);
/* nsmap_find - the node added last under @dev/@ino, or NULL. */
struct nsmap_node *nsmap_find(const struct nsmap *m, uint64_t dev, uint64_t ino);
/* nsmap_complete - whether every node added is linked (nsmap_find() sees all). */
static inline bool nsmap_complete(const struct nsmap *m)
{
	return m->lost == 0;
}

#endif
