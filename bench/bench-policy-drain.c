/* SPDX-License-Identifier: MIT */
/*
 * bench-policy-drain: the drain rate of a real NFQUEUE through the broker's
 * verdict work (pktmeta_parse_l3, policy_eval, policy_count, accept) with
 * policies of 20 and 10,000 rules (issue 13, "Policies at scale": the
 * 10,000-rule policy >= 0.80 x the 20-rule one).
 *
 * Method (the issue's): the consumer stopped, N datagrams of 64 bytes sent
 * to 127.0.0.1 and held by the queue (max_len 65536, a receive buffer
 * large enough for all of them), then the consumer drains alone; the time
 * from its first read to the last verdict is the drain time. Rules are a
 * platform team's: a protocol, a list of destination CIDRs (10.x.y.0/24),
 * a port list; the last rule matches the datagrams, so the linear scan
 * walks every rule and the index must find the one.
 * Rounds interleave the policies; medians of ROUNDS.
 *
 * Usage: bench-policy-drain [datagrams]   (root; needs iptables; default
 * 50000). Runs in a private network namespace of its own. Never run by
 * tests.
 *   ninja -C build bench/bench-policy-drain && ./build/bench/bench-policy-drain
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nfqb/queue.h>

#include "bench-util.h"
#include "errs.h"
#include "pktmeta.h"
#include "policy-index.h"
#include "policy-int.h"
#include "policy.h"

#define QNUM 7
#define PORT 5758
#define ROUNDS 5

struct consumer {
	const struct policy *p;
	long decided, matched;
};

/* The drain in progress: the callback is bound once, the policy changes. */
static struct consumer *cur;

static int iptables(const char *rule)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "iptables -w %s", rule);
	return system(cmd) == 0 ? 0 : -1;
}

/* The verdict step of session_verdict(), minus logging and observers. */
static void on_packet(struct nfqb_packet *pk, void *user)
{
	struct consumer *c = cur;
	const struct policy_action *act;
	struct pktmeta m;
	size_t len = 0;
	const void *l3 = nfqb_packet_payload(pk, &len);
	int rule;

	memset(&m, 0, sizeof(m));
	m.indev_id = m.outdev_id = -1;
	m.hook = 3;
	m.len = (uint32_t)len;
	if (l3)
		pktmeta_parse_l3(&m, l3, len);
	rule = policy_eval(c->p, &m, &act);
	policy_count(c->p, rule, m.len);
	c->matched += rule >= 0;
	nfqb_packet_verdict(pk, NFQB_ACCEPT);
	c->decided++;
}

static char *config(int n)
{
	size_t cap = (size_t)n * 200 + 512, len = 0;
	char *b = malloc(cap);
	unsigned seed = 777;

	if (!b)
		return NULL;
	len += (size_t)snprintf(b, cap, "{\"p\":{\"default\":\"drop\",\"rules\":[");
	for (int i = 0; i < n - 1; i++) {
		seed = seed * 1103515245u + 12345u;
		len += (size_t)snprintf(b + len, cap - len,
			"{\"name\":\"r%d\",\"match\":{\"proto\":\"%s\",\"dst\":[\"10.%u.%u.0/24\","
			"\"10.%u.%u.0/24\"],\"dport\":[%u,\"%u-%u\"]},\"verdict\":\"%s\"},",
			i, seed & 1 ? "tcp" : "udp", (seed >> 8) & 255, (seed >> 16) & 255,
			(seed >> 4) & 255, (seed >> 20) & 255, 1024 + (seed >> 12) % 60000,
			2000 + (seed >> 3) % 50000, 2010 + (seed >> 3) % 50000,
			i % 2 ? "accept" : "drop");
	}
	snprintf(b + len, cap - len, "{\"name\":\"ours\",\"match\":{\"proto\":\"udp\","
		 "\"dst\":\"127.0.0.0/8\",\"dport\":%d},\"verdict\":\"accept\"}]}}", PORT);
	return b;
}

static struct policy_set *load(int n)
{
	char *text = config(n);
	json_object *o = text ? json_tokener_parse(text) : NULL;
	struct errs e = { 0 };
	struct policy_set *s = o ? policy_set_parse(o, &e) : NULL;

	json_object_put(o);
	free(text);
	for (size_t i = 0; i < e.n; i++)
		fprintf(stderr, "bench-policy-drain: config: %s\n", e.lines[i]);
	errs_reset(&e);
	return s;
}

/* Fill the queue with @n datagrams, then drain it through @p: seconds,
 * or < 0 when packets were lost. */
static double drain(struct nfqb_queue *q, const struct policy *p, long n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct consumer c = { .p = p };
	struct pollfd pfd = { .fd = nfqb_queue_fd(q), .events = POLLIN };
	int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char buf[64] = { 0 };
	double t0, end;

	if (tx < 0)
		return -1;
	/* a queued datagram stays charged to the sender: room for all */
	setsockopt(tx, SOL_SOCKET, SO_SNDBUFFORCE, &(int){ 256 << 20 }, sizeof(int));
	for (long i = 0; i < n; i++)
		if (sendto(tx, buf, sizeof(buf), MSG_DONTWAIT, (void *)&a, sizeof(a)) < 0) {
			fprintf(stderr, "bench-policy-drain: send %ld: %s\n", i, strerror(errno));
			close(tx);
			return -1;
		}
	close(tx);
	cur = &c;
	t0 = now_s();
	end = t0 + 30;
	while (c.decided < n && now_s() < end)
		if (poll(&pfd, 1, 200) > 0)
			nfqb_queue_run(q, false);
	t0 = now_s() - t0;
	if (c.decided < n) {
		fprintf(stderr, "bench-policy-drain: %ld of %ld decided\n", c.decided, n);
		return -1;
	}
	if (c.matched != n)
		fprintf(stderr, "bench-policy-drain: matched %ld of %ld\n", c.matched, n);
	return t0;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 50000;
	struct nfqb_queue_opts o = NFQB_QUEUE_OPTS_DEFAULT;
	struct policy_set *s20 = load(20), *s10k = load(10000);
	struct policy *p20, *p10k;
	struct policy_index *idx;
	double t20[ROUNDS], t10k[ROUNDS], tlin = -1;
	struct nfqb_queue *q;

	(void)cur;
	if (n <= 0 || n > 65000 || !s20 || !s10k) {
		fprintf(stderr, "usage: bench-policy-drain [datagrams <= 65000]\n");
		return 2;
	}
	p20 = (struct policy *)policy_set_find(s20, "p");
	p10k = (struct policy *)policy_set_find(s10k, "p");
	if (unshare(CLONE_NEWNET) < 0 || lo_up() < 0) {
		perror("bench-policy-drain: private network namespace (root needed)");
		return 1;
	}
	if (iptables("-A OUTPUT -p udp --dport 5758 -j NFQUEUE --queue-num 7") < 0 ||
	    iptables("-A INPUT -p udp --dport 5758 -j DROP") < 0)
		return 1;
	o.max_len = 65536;
	o.sock_len = 256u << 20;
	q = nfqb_queue_open();
	if (!q || nfqb_queue_bind(q, QNUM, on_packet, NULL, &o) < 0) {
		fprintf(stderr, "bench-policy-drain: bind: %s\n", q ? nfqb_queue_errmsg(q) : "open");
		return 1;
	}
	for (int r = 0; r < ROUNDS; r++) {
		t20[r] = drain(q, p20, n);
		t10k[r] = drain(q, p10k, n);
		if (t20[r] <= 0 || t10k[r] <= 0)
			return 1;
	}
	/* the linear scan of the same 10,000 rules, for scale: fewer packets */
	idx = p10k->idx;
	p10k->idx = NULL;
	tlin = drain(q, p10k, n / 50);
	p10k->idx = idx;
	nfqb_queue_close(q);
	qsort(t20, ROUNDS, sizeof(double), dbl_cmp);
	qsort(t10k, ROUNDS, sizeof(double), dbl_cmp);
	printf("datagrams=%ld payload=64 rounds=%d (medians)\n", n, ROUNDS);
	printf("rules=20     %9.0f pkt/s  %6.2f us/pkt (1.00)\n", n / t20[ROUNDS / 2],
	       t20[ROUNDS / 2] * 1e6 / (double)n);
	printf("rules=10000  %9.0f pkt/s  %6.2f us/pkt (%.2f x the 20-rule drain rate) index\n",
	       n / t10k[ROUNDS / 2], t10k[ROUNDS / 2] * 1e6 / (double)n,
	       t20[ROUNDS / 2] / t10k[ROUNDS / 2]);
	if (tlin > 0)
		printf("rules=10000  %9.0f pkt/s  %6.2f us/pkt (%.3f x) linear scan, one run of %ld\n",
		       (double)(n / 50) / tlin, tlin * 1e6 / (double)(n / 50),
		       (t20[ROUNDS / 2] / (double)n) / (tlin / (double)(n / 50)), n / 50);
	policy_set_free(s20);
	policy_set_free(s10k);
	return 0;
}
