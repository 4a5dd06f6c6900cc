/* SPDX-License-Identifier: MIT */
/*
 * Zero allocations per packet (issue 13): synthetic NFQNL packet messages
 * through the library's receive and dispatch, the broker's verdict step
 * (session_verdict: metadata, policy evaluation by the index, counters,
 * audit, marks, rate-limited log lines) and the batched verdicts, with
 * malloc, calloc, realloc and free counted. Setup may allocate; the packet
 * loop must not. A count, not a timing. Under ASan (which owns malloc)
 * the packets still run, for its checks, and the count is skipped.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "nfq-msg.h"
#include "policy-index.h"
#include "policy-int.h"
#include "session-private.h"

/* ------------------------------------------------------------------ */
/* Allocation counting (not under ASan, which owns malloc itself)     */
/* ------------------------------------------------------------------ */

#include "alloc-count.h"

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

#define QNUM 7
#define BATCH 32
#define PACKETS 4096

struct fx {
	struct loop *l;
	struct session_mgr *m;
	struct session *s;
	int peer;
};

/* A policy of a few hundred rules (so the index decides), one that logs,
 * one that marks, and audit mode on a second policy. */
static char *config_text(const char *mode)
{
	size_t cap = 64 * 1024, len = 0;
	char *b = malloc(cap);

	assert_non_null(b);
	len += (size_t)snprintf(b, cap,
		"{\"broker\":{\"listen\":\"/nonexistent/a.sock\"},"
		"\"namespaces\":[{\"name\":\"*\",\"queues\":[%d],\"policy\":\"p\"}],"
		"\"policies\":{\"p\":{\"mode\":\"%s\",\"default\":\"drop\",\"rules\":[", QNUM, mode);
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(b + len, cap - len,
			"{\"name\":\"r%d\",\"match\":{\"proto\":\"udp\",\"dst\":\"10.%d.%d.0/24\","
			"\"dport\":[%d,\"%d-%d\"]},\"verdict\":\"%s\"%s},", i, i / 200, i % 200,
			1000 + i, 2000 + i * 4, 2003 + i * 4, i % 2 ? "drop" : "accept",
			i % 3 ? "" : ",\"set_mark\":7");
	snprintf(b + len, cap - len,
		 "{\"name\":\"loud\",\"match\":{\"proto\":\"tcp\"},\"verdict\":\"drop\",\"log\":true}]}}}");
	return b;
}

static void fixture_init(struct fx *f, const char *mode)
{
	char *text = config_text(mode);
	struct errs e = { 0 };
	struct cfg *cfg = cfg_parse_string(text, &e);
	struct session *s;

	for (size_t i = 0; i < e.n; i++)
		print_error("config: %s\n", e.lines[i]);
	assert_non_null(cfg);
	free(text);
	f->l = loop_new();
	assert_non_null(f->l);
	f->m = session_mgr_new(f->l, cfg);
	assert_non_null(f->m);
	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->q = tmsg_queue_pair(&f->peer, 0);
	assert_non_null(s->q);
	assert_int_equal(tmsg_name_peer(f->peer, 0), 0);
	s->mgr = f->m;
	s->lease_fd = s->rtnl_fd = s->steer.fd = -1;
	snprintf(s->name, sizeof(s->name), "pod-a");
	s->policy = policy_set_find(f->m->cfg->policies, "p");
	assert_non_null(s->policy);
	assert_non_null(s->policy->idx);
	s->state = SESSION_ATTACHED;
	loop_timer_init(&s->grace, NULL, s);
	loop_timer_init(&s->bind_timer, NULL, s);
	loop_timer_init(&s->check_timer, NULL, s);
	s->next = f->m->head;
	f->m->head = s;
	f->m->count++;
	/* the binding as a completed bind leaves it, without a kernel */
	assert_int_equal(binding_add(s->q, QNUM, session_verdict, s, false), 0);
	f->s = s;
}

static void fixture_free(struct fx *f)
{
	close(f->peer);
	session_mgr_free(f->m);
	loop_free(f->l);
}

/* IPv4 + UDP (or TCP for every 16th) headers aimed at rules and past them. */
static size_t put_packet(uint8_t *buf, uint32_t id)
{
	uint8_t ip[28] = { 0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17 };

	if (id % 16 == 0)
		ip[9] = 6;
	ip[12] = 192;
	ip[13] = 168;
	ip[15] = (uint8_t)id;
	ip[16] = 10;
	ip[17] = (uint8_t)(id % 2);
	ip[18] = (uint8_t)(id % 200);
	ip[19] = 9;
	ip[20] = 0x80;
	ip[23] = (uint8_t)(id >> 3);
	ip[22] = (uint8_t)((id % 3 ? 2000 + (id % 300) * 4 : 1000 + id % 300) >> 8);
	ip[23] = (uint8_t)(id % 3 ? 2000 + (id % 300) * 4 : 1000 + id % 300);
	return tmsg_packet(buf, QNUM, id, ip, sizeof(ip));
}

/* @n packets in batches: sent, dispatched, their verdicts read back. */
static unsigned run_packets(struct fx *f, uint32_t first, unsigned n)
{
	_Alignas(8) uint8_t buf[256], rx[65536];
	unsigned verdict_msgs = 0;

	for (unsigned done = 0; done < n; done += BATCH) {
		for (unsigned i = 0; i < BATCH && done + i < n; i++) {
			size_t len = put_packet(buf, first + done + i);

			assert_int_equal(send(f->peer, buf, len, 0), (ssize_t)len);
		}
		assert_true(nfqb_queue_run(f->s->q, false) >= 0);
		for (int k = 0; k < 64; k++) {
			ssize_t r = recv(f->peer, rx, sizeof(rx), MSG_DONTWAIT);

			if (r <= 0)
				break;
			verdict_msgs++;
		}
	}
	return verdict_msgs;
}

/* @worker: count as worker thread 0 does, into the policy's own block for it. */
static void check_no_alloc(const char *mode, bool worker)
{
	struct policy_counter pc;
	struct fx f = { 0 };
	unsigned long a0, f0;
	uint64_t before;

	fixture_init(&f, mode);
	if (worker) {
		assert_int_equal(policy_set_workers(f.m->cfg->policies, 1), 0);
		policy_thread_worker(0);
	}
	/* The counter must see a real allocation, or the check proves nothing. */
	a0 = n_allocs;
	f0 = n_frees;
	free(malloc(16));
	if (COUNT_ALLOCS) {
		assert_int_equal(n_allocs, a0 + 1);
		assert_int_equal(n_frees, f0 + 1);
	}

	/* warm-up: stdio's buffers, the first log line, lazily sized state */
	assert_true(run_packets(&f, 1, 256) > 0);
	before = f.s->c.packets;
	a0 = n_allocs;
	f0 = n_frees;
	assert_true(run_packets(&f, 1000, PACKETS) > 0);
	assert_int_equal(n_allocs, a0);
	assert_int_equal(n_frees, f0);
	/* every packet was decided, by rules and by the default */
	assert_int_equal(f.s->c.packets - before, PACKETS);
	for (int idx = -1; idx <= 300; idx += 301) {
		assert_true(policy_counter_load(f.s->policy, idx, &pc));
		assert_true(pc.packets > 0);
		/* a worker's counts are in its block, not in the shared one */
		assert_true(worker == (policy_counter(f.s->policy, idx)->packets == 0));
	}
	assert_true(policy_counter_load(f.s->policy, 0, &pc));
	assert_true(pc.packets > 0);
	policy_thread_worker(-1);
	fixture_free(&f);
	/* under ASan the packets still ran (memory errors), uncounted */
	if (!COUNT_ALLOCS)
		skip();
}

static void test_enforce_allocates_nothing(void **state)
{
	(void)state;
	check_no_alloc("enforce", false);
}

static void test_worker_counters_allocate_nothing(void **state)
{
	(void)state;
	check_no_alloc("enforce", true);
}

static void test_audit_allocates_nothing(void **state)
{
	(void)state;
	check_no_alloc("audit", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enforce_allocates_nothing),
		cmocka_unit_test(test_audit_allocates_nothing),
		cmocka_unit_test(test_worker_counters_allocate_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
