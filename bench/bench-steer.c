/* SPDX-License-Identifier: MIT */
/*
 * bench-steer - the cost of one steering change (broker/steer.c): build the
 * nf_tables batch, read which tables exist, send, collect the kernel's
 * answers. Runs in a network namespace of its own (unshare), so nothing
 * outside is touched; needs root. Never run by the tests.
 *
 *   build/bench/bench-steer [ROUNDS] [PORTS]
 *
 * Reference in the same run: the smallest exchange a change starts with,
 * the three table lookups (steer_read_installed). Figures: median and p99
 * microseconds, and the ratio of the medians against the reference.
 * Replaces are timed back to back and spaced 25 ms apart: a commit that
 * follows one with deletions waits for an RCU grace period (why the broker
 * runs changes on a thread of their own, never on its event loop).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "steer.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, size_t n, double ref)
{
	qsort(t, n, sizeof(*t), cmp_d);
	printf("%-34s median %8.1f us  p99 %8.1f us  ratio %.2f\n", what, t[n / 2],
	       t[n * 99 / 100], ref > 0 ? t[n / 2] / ref : 1.0);
}

/* A list of @nitems items of @ports ports each (a set per rule when > 1). */
static struct steer_list *make_list(size_t nitems, size_t ports)
{
	struct steer_list *l = calloc(1, sizeof(*l));
	struct steer_range *p = calloc(ports, sizeof(*p));
	static uint8_t udp = 17;

	l->items = calloc(nitems, sizeof(*l->items));
	l->n = nitems;
	for (size_t i = 0; i < ports; i++)
		p[i].lo = p[i].hi = (uint16_t)(1000 + 2 * i);
	for (size_t i = 0; i < nitems; i++) {
		struct steer_item *it = &l->items[i];

		it->index = i;
		it->hook = i % 2 ? STEER_HOOK_INPUT : STEER_HOOK_OUTPUT;
		it->family = STEER_FAMILY_INET;
		it->m.protos = &udp;
		it->m.nprotos = 1;
		it->m.dport = p;
		it->m.ndport = ports;
		it->queue_lo = it->queue_hi = 1;
	}
	return l;
}

int main(int argc, char **argv)
{
	size_t rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 500;
	size_t ports = argc > 2 ? strtoul(argv[2], NULL, 10) : 2;
	struct steer_list *one = make_list(1, ports), *many = make_list(20, ports);
	double *t = calloc(rounds, sizeof(*t)), ref;
	struct steer_result r;
	int fd;

	if (rounds < 10 || !t || unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "bench-steer: needs root (unshare: %s) and ROUNDS >= 10\n",
			strerror(errno));
		return 1;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	steer_socket_setup(fd);
	if (steer_apply(fd, one, &r) < 0) {
		fprintf(stderr, "bench-steer: install failed: %s (%s)\n", strerror(-r.err),
			r.what);
		return 1;
	}
	printf("backend %s, %zu rounds, %zu port(s) per rule\n",
	       steer_backend_name(steer_backend()), rounds, ports);
	steer_remove(fd, &r);
	for (size_t i = 0; i < rounds; i++) {
		struct steer_installed have;
		double a = now_us();

		steer_read_installed(fd, &have);
		t[i] = now_us() - a;
	}
	qsort(t, rounds, sizeof(*t), cmp_d);
	ref = t[rounds / 2];
	report("reference: 3 table lookups", t, rounds, ref);
	for (size_t i = 0; i < rounds; i++) {
		double a = now_us();

		steer_apply(fd, one, &r);  /* replace: flush + rewrite */
		t[i] = now_us() - a;
	}
	report("1 item: replace, back to back", t, rounds, ref);
	for (size_t i = 0; i < rounds / 10; i++) {
		double a;

		usleep(25000);
		a = now_us();
		steer_apply(fd, one, &r);
		t[i] = now_us() - a;
	}
	report("1 item: replace, 25 ms apart", t, rounds / 10, ref);
	for (size_t i = 0; i < rounds; i++) {
		double a = now_us();

		steer_apply(fd, many, &r);
		t[i] = now_us() - a;
	}
	report("20 items, 2 hooks: replace b2b", t, rounds, ref);
	for (size_t i = 0; i < rounds; i++) {
		struct steer_counter c[20];
		double a = now_us();

		steer_counters(fd, many, c, 20);
		t[i] = now_us() - a;
	}
	report("20 items: read counters", t, rounds, ref);
	close(fd);
	return 0;
}
