/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/ring.c, the control clients' output byte ring:
 * wrap-around, growth, a full socket, a vanished peer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring.h"

static void drain(int fd, char *out, size_t *len, size_t cap)
{
	ssize_t n;

	while ((n = recv(fd, out + *len, cap - *len, MSG_DONTWAIT)) > 0)
		*len += (size_t)n;
}

static void test_ring_order_wrap_grow(void **state)
{
	struct ring r = { 0 };
	static char got[1 << 20], want[1 << 20];
	size_t glen = 0, wlen = 0;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ring_send(&r, sv[0]), 0);      /* empty: nothing */
	/* Interleave puts and sends so the head moves and the data wraps. */
	for (int i = 0; i < 5000; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "line %d %.*s\n", i, i % 40,
				 "........................................");

		assert_int_equal(ring_put(&r, line, (size_t)n), 0);
		memcpy(want + wlen, line, (size_t)n);
		wlen += (size_t)n;
		if (i % 7 == 0) {
			ssize_t s = ring_send(&r, sv[0]);

			assert_true(s > 0 || s == -EAGAIN);
			drain(sv[1], got, &glen, sizeof(got));
		}
	}
	while (ring_len(&r)) {
		ssize_t s = ring_send(&r, sv[0]);

		assert_true(s > 0 || s == -EAGAIN);
		drain(sv[1], got, &glen, sizeof(got));
	}
	drain(sv[1], got, &glen, sizeof(got));
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	ring_free(&r);
	close(sv[0]);
	close(sv[1]);
}

static void test_ring_full_socket_and_gone_peer(void **state)
{
	struct ring r = { 0 };
	static char chunk[65536];
	ssize_t n;
	int sv[2], sz = 4096;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 16; i++)
		assert_int_equal(ring_put(&r, chunk, sizeof(chunk)), 0);
	assert_int_equal(ring_len(&r), 16 * sizeof(chunk));
	/* The socket fills up: EAGAIN, never a block, the rest kept. */
	while ((n = ring_send(&r, sv[0])) > 0)
		;
	assert_int_equal(n, -EAGAIN);
	assert_true(ring_len(&r) > 0);
	/* The peer goes away: EPIPE, and no SIGPIPE kills the test. */
	close(sv[1]);
	n = ring_send(&r, sv[0]);
	assert_int_equal(n, -EPIPE);
	ring_free(&r);
	assert_int_equal(ring_len(&r), 0);
	assert_null(r.buf);
	close(sv[0]);
}

static void test_ring_gives_memory_back(void **state)
{
	struct ring r = { 0 };
	static char big[RING_KEEP + 1];
	int sv[2], sz = 4 << 20;
	ssize_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	assert_int_equal(ring_put(&r, big, sizeof(big)), 0);
	assert_true(r.cap > RING_KEEP);
	while (ring_len(&r)) {
		char sink[65536];

		n = ring_send(&r, sv[0]);
		assert_true(n > 0 || n == -EAGAIN);
		while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	assert_null(r.buf);
	assert_int_equal(r.cap, 0);
	/* Small rings keep their buffer for the next event. */
	assert_int_equal(ring_put(&r, "x\n", 2), 0);
	assert_true(ring_send(&r, sv[0]) == 2);
	assert_non_null(r.buf);
	ring_free(&r);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_order_wrap_grow),
		cmocka_unit_test(test_ring_full_socket_and_gone_peer),
		cmocka_unit_test(test_ring_gives_memory_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
