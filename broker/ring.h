/* SPDX-License-Identifier: MIT */
/*
 * The byte ring that queues a control client's output (replies and watch
 * events) without ever blocking the event loop.
 */
#ifndef BROKER_RING_H
#define BROKER_RING_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A byte ring: the pending output of one control client. It grows on
 * demand (the owner bounds it) and keeps its memory while in use, so a
 * watcher in steady state costs a memcpy per event and no allocation.
 */
struct ring {
	char *buf;
	size_t cap, head, len;
};

/* ring_free - release the memory; the ring is empty and reusable. */
void ring_free(struct ring *r);

/* ring_put - append @n bytes of @data; 0 or -ENOMEM (nothing added). */
int ring_put(struct ring *r, const void *data, size_t n);

/*
 * ring_send - send as much as @fd takes (non-blocking, no SIGPIPE)
 * and drop it from the ring. Returns the bytes sent (0 when the ring is
 * empty), -EAGAIN when the socket is full, or another negative errno.
 * An emptied ring larger than RING_KEEP gives its memory back.
 */
ssize_t ring_send(struct ring *r, int fd);

#define RING_KEEP (512u << 10)

static inline size_t ring_len(const struct ring *r)
{
	return r->len;
}

#endif
