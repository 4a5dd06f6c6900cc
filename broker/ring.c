/* SPDX-License-Identifier: MIT */
/*
 * Growing the ring unwraps it into a new buffer; steady state is a memcpy
 * per put and one sendmsg (two iovecs) per send.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ring.h"

void ring_free(struct ring *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->head = r->len = 0;
}

static int grow(struct ring *r, size_t need)
{
	size_t cap = r->cap ? r->cap : 4096, first;
	char *b;

	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	b = malloc(cap);
	if (!b)
		return -ENOMEM;
	/* Unwrap the pending bytes to the start of the new buffer. */
	first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
	if (r->len) {
		memcpy(b, r->buf + r->head, first);
		memcpy(b + first, r->buf, r->len - first);
	}
	free(r->buf);
	r->buf = b;
	r->cap = cap;
	r->head = 0;
	return 0;
}

int ring_put(struct ring *r, const void *data, size_t n)
{
	size_t tail, first;

	if (n > SIZE_MAX - r->len)
		return -ENOMEM;
	if (r->len + n > r->cap && grow(r, r->len + n) < 0)
		return -ENOMEM;
	if (!n)
		return 0;
	tail = (r->head + r->len) % r->cap;
	first = r->cap - tail < n ? r->cap - tail : n;
	memcpy(r->buf + tail, data, first);
	memcpy(r->buf, (const char *)data + first, n - first);
	r->len += n;
	return 0;
}

ssize_t ring_send(struct ring *r, int fd)
{
	struct iovec iov[2];
	struct msghdr mh = { .msg_iov = iov };
	size_t first;
	ssize_t n;

	if (!r->len)
		return 0;
	first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
	iov[0].iov_base = r->buf + r->head;
	iov[0].iov_len = first;
	iov[1].iov_base = r->buf;
	iov[1].iov_len = r->len - first;
	mh.msg_iovlen = iov[1].iov_len ? 2 : 1;
	n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	r->head = (r->head + (size_t)n) % r->cap;
	r->len -= (size_t)n;
	if (!r->len) {
		r->head = 0;
		if (r->cap > RING_KEEP)
			ring_free(r);
	}
	return n;
}
