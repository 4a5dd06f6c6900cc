/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "packet": the bytes are one receive buffer handed to
 * nfqb_queue_handle() (as Python's run_socket() does) on a queue wrapping
 * one end of a datagram socketpair, so the message walk, the NFQA_*
 * parser, every accessor and the verdict/batching code run on hostile
 * input without a kernel. The packet id picks what the callback does with
 * the packet (verdicts, mark, payload, retain), so the fuzzer reaches
 * every path. Invariants: never a crash, hang, leak or leaked fd; a
 * packet the callback decided is decided.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "nfq-msg.h"
#include "fuzz.h"

/* Queue numbers with a callback; other numbers are "bound by someone else". */
static const uint16_t bound[] = { 0, 1, 7, 65535 };

#define MAX_KEPT 16

static struct nfqb_queue *q;
static int peer = -1;
static struct nfqb_packet *kept[MAX_KEPT];
static size_t nkept;
static volatile uint64_t sink;

static void touch(const void *ptr, size_t len)
{
	const uint8_t *b = ptr;

	for (size_t i = 0; i < len; i++)
		sink += b[i];
}

/* Every accessor, reading every byte it hands out (ASan checks bounds). */
static void read_all(struct nfqb_packet *p)
{
	struct timespec ts;
	uint16_t vp, vt;
	uint32_t v, info;
	char name[IF_NAMESIZE];
	const void *ptr;
	size_t len;

	sink += nfqb_packet_id(p) + nfqb_packet_queue(p) + nfqb_packet_hw_protocol(p) +
		nfqb_packet_hook(p) + nfqb_packet_mark(p) + nfqb_packet_get_mark(p) +
		nfqb_packet_cap_len(p) + (uint64_t)nfqb_packet_payload_len(p);
	ptr = nfqb_packet_payload(p, &len);
	if (ptr)
		touch(ptr, len);
	ptr = nfqb_packet_hw(p, &len);
	FUZZ_CHECK(!ptr || len <= 8);
	if (ptr)
		touch(ptr, len);
	if (nfqb_packet_timestamp(p, &ts) == 0)
		sink += (uint64_t)ts.tv_sec + (uint64_t)ts.tv_nsec;
	for (int d = 0; d < 5; d++)
		sink += nfqb_packet_ifindex(p, (enum nfqb_dev)d);
	sink += nfqb_packet_indev(p) + nfqb_packet_outdev(p) + nfqb_packet_physindev(p) +
		nfqb_packet_physoutdev(p);
	/* No rtnl socket: if_indextoname() of this process's namespace. */
	if (nfqb_packet_ifname(p, NFQB_DEV_IN, name) == 0)
		sink += strnlen(name, sizeof(name));
	if (nfqb_packet_uid(p, &v) == 0)
		sink += v;
	if (nfqb_packet_gid(p, &v) == 0)
		sink += v;
	if (nfqb_packet_skbinfo(p, &v) == 0)
		sink += v;
	if (nfqb_packet_priority(p, &v) == 0)
		sink += v;
	if (nfqb_packet_vlan(p, &vp, &vt) == 0)
		sink += vp + vt;
	ptr = nfqb_packet_l2hdr(p, &len);
	if (ptr)
		touch(ptr, len);
	ptr = nfqb_packet_secctx(p, &len);
	if (ptr)
		touch(ptr, len);
	ptr = nfqb_packet_ct(p, &len, &info);
	if (ptr)
		touch(ptr, len);
	sink += info;
}

static void on_packet(struct nfqb_packet *p, void *user)
{
	uint32_t id = nfqb_packet_id(p);
	uint8_t repl[64];
	const void *pl;
	size_t len;
	int rc = 0;

	read_all(p);
	switch (id % 8) {
	case 0:
		rc = nfqb_packet_accept(p);
		break;
	case 1:
		rc = nfqb_packet_drop(p);
		break;
	case 2:
		nfqb_packet_set_mark(p, id);
		rc = nfqb_packet_repeat(p);
		break;
	case 3:
		/* a payload of the packet's own bytes, shortened or grown */
		pl = nfqb_packet_payload(p, &len);
		memset(repl, 0xa5, sizeof(repl));
		if (pl)
			memcpy(repl, pl, len < sizeof(repl) ? len : sizeof(repl));
		nfqb_packet_set_payload(p, repl, (id >> 3) % (sizeof(repl) + 1));
		rc = nfqb_packet_accept(p);
		break;
	case 4:
		rc = nfqb_packet_requeue(p, (uint16_t)(id >> 16));
		break;
	case 5:
		if (nkept < MAX_KEPT) {
			kept[nkept] = nfqb_packet_retain(p);
			if (kept[nkept])
				nkept++;
		}
		break;
	case 6:
		rc = nfqb_packet_verdict(p, id >> 3);
		break;
	default:
		break;      /* no verdict: the library settles it */
	}
	if (rc == 0 && id % 8 <= 4)
		FUZZ_CHECK(nfqb_packet_decided(p));
	/* A second verdict is always refused. */
	if (nfqb_packet_decided(p))
		FUZZ_CHECK(nfqb_packet_accept(p) == -EALREADY);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	q = tmsg_queue_pair(&peer, SOCK_NONBLOCK);
	FUZZ_CHECK(q);
	for (size_t i = 0; i < sizeof(bound) / sizeof(bound[0]); i++)
		FUZZ_CHECK(binding_add(q, bound[i], on_packet, NULL, false) == 0);
	return 0;
}

/* Verdicts the queue sent: read and dropped, so the socket never fills. */
static void drain(void)
{
	char buf[8192];

	while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nfqb_queue_stats st;
	int n;

	nfqb_queue_get_stats(q, &st);
	n = nfqb_queue_handle(q, data, size);
	FUZZ_CHECK(n >= 0 || n == -EAGAIN || n == -EWOULDBLOCK || n == -ENOBUFS);
	/* Retained copies: every other one decided outside its callback. */
	for (size_t i = 0; i < nkept; i++) {
		read_all(kept[i]);
		if (i % 2 == 0)
			nfqb_packet_drop(kept[i]);
		nfqb_packet_release(kept[i]);
	}
	nkept = 0;
	nfqb_queue_handle(q, NULL, 0);   /* flush what the copies left */
	drain();
	return 0;
}
