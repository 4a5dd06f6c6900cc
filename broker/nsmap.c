// SPDX-License-Identifier: MIT
#include "nsmap.h"

#include <stdlib.h>

#define NSMAP_MIN_SLOTS 64u

void nsmap_init(struct nsmap *m)
{
	m->slot = NULL;
	m->nslots = 0;
	m->count = 0;
	m->lost = 0;
}

void nsmap_clear(struct nsmap *m)
{
	/* the linked nodes are out again (a lost one cannot be reached:
	 * its own nsmap_del() finds lost at 0 and leaves it) */
	for (size_t i = 0; i < m->nslots; i++) {
		struct nsmap_node *next;

		for (struct nsmap_node *p = m->slot[i]; p; p = next) {
			next = p->next;
			p->next = NULL;
			p->state = NSMAP_OUT;
		}
	}
	free(m->slot);
	nsmap_init(m);
}

static size_t slot_of(uint64_t dev, uint64_t ino, size_t nslots)
{
	/* Inodes of one nsfs are close together: mix before masking. */
	uint64_t h = (ino ^ (dev << 32 | dev >> 32)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (nslots - 1);
}

/*
 * Twice the slots, every chain moved. The order within a chain is kept
 * (nodes of one key stay newest first): each old chain is walked from its
 * tail. On no memory the map keeps its table and its chains grow.
 */
static void grow(struct nsmap *m)
{
	size_t n = m->nslots ? m->nslots * 2 : NSMAP_MIN_SLOTS;
	struct nsmap_node **slot = calloc(n, sizeof(*slot));

	if (!slot)
		return;
	for (size_t i = 0; i < m->nslots; i++) {
		struct nsmap_node *rev = NULL, *next;

		for (struct nsmap_node *p = m->slot[i]; p; p = next) {
			next = p->next;
			p->next = rev;
			rev = p;
		}
		for (struct nsmap_node *p = rev; p; p = next) {
			size_t k = slot_of(p->dev, p->ino, n);

			next = p->next;
			p->next = slot[k];
			slot[k] = p;
		}
	}
	free(m->slot);
	m->slot = slot;
	m->nslots = n;
}

void nsmap_add(struct nsmap *m, struct nsmap_node *n)
{
	size_t k;

	if (n->state != NSMAP_OUT)
		return;     /* in already (or lost): a second link would loop */
	if (m->count >= m->nslots)
		grow(m);
	n->next = NULL;
	if (!m->nslots) {
		n->state = NSMAP_LOST;
		m->lost++;
		return;
	}
	k = slot_of(n->dev, n->ino, m->nslots);
	n->next = m->slot[k];
	m->slot[k] = n;
	n->state = NSMAP_IN;
	m->count++;
}

void nsmap_del(struct nsmap *m, struct nsmap_node *n)
{
	struct nsmap_node **pp;

	if (n->state == NSMAP_LOST) {
		n->state = NSMAP_OUT;
		if (m->lost)
			m->lost--;
		return;
	}
	if (n->state != NSMAP_IN || !m->nslots)
		return;
	for (pp = &m->slot[slot_of(n->dev, n->ino, m->nslots)]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			n->state = NSMAP_OUT;
			m->count--;
			return;
		}
	}
}

struct nsmap_node *nsmap_find(const struct nsmap *m, uint64_t dev, uint64_t ino)
{
	if (!m->nslots)
		return NULL;
	for (struct nsmap_node *p = m->slot[slot_of(dev, ino, m->nslots)]; p; p = p->next)
		if (p->ino == ino && p->dev == dev)
			return p;
	return NULL;
}
