/* SPDX-License-Identifier: MIT */
/*
 * nfqb-probe - libnfqb test driver for the netns integration tests.
 *
 * Binds one or more NFQUEUE queue numbers through libnfqb, applies one
 * action to every packet of the first queue (packets of further queues are
 * accepted), prints what it saw and exits after --count packets or at the
 * timeout. See usage() for the options.
 *
 * Output (stdout, line buffered):
 *   id=.. hook=.. len=.. cap_len=.. payload_len=.. mark=.. indev=.. outdev=..
 *     uid=.. gid=.. hw_protocol=0x.... queue=.. proto=.. idx=..   (--print)
 *   check name=NAME ret=N err=ENAME                 (check-* actions)
 *   summary packets=N verdicts=V timeout=0|1 ...    (always, last)
 * stderr: "ready queues=.. portid=.. netns_ino=.." once bound, and errors
 * as "nfqb-probe: OP: ENAME (text): library message".
 *
 * Exit: 0 count reached (or no --count), 1 runtime error, 2 usage,
 * 3 timeout before --count packets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include <nfqb/queue.h>

#include "clock.h"

#define MAX_QUEUES 8
#define MAX_HOLD 64

enum action {
	ACT_ACCEPT, ACT_DROP, ACT_MARK, ACT_REPEAT_MARK, ACT_PAYLOAD_REPLACE,
	ACT_HOLD_REVERSE, ACT_REQUEUE,
	ACT_CHECK_OVERSIZE, ACT_CHECK_DOUBLE, ACT_CHECK_STALE, ACT_CHECK_RETAIN,
};

struct probe {
	struct nfqb_queue *q;
	uint16_t queues[MAX_QUEUES];
	size_t nqueues;
	struct nfqb_queue_opts opts;
	enum action act;
	uint32_t arg;                /* mark, hold count or queue number */
	const char *old, *new;       /* payload-replace */
	long count;                  /* -1: no limit */
	long seen;
	bool print;
	bool rtnl;
	const char *fd_netns;
	const char *fd_kind;
	long stall_ms;
	long timeout_ms;
	struct nfqb_packet *held[MAX_HOLD];
	size_t nheld;
	struct nfqb_packet *stale;   /* check-stale: looked at after the callback */
	int failed;                  /* a verdict failed: exit 1 */
};

static volatile sig_atomic_t got_signal;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nfqb-probe --queue N [--queue M ...] [options]\n"
		"  --count K           exit after K packets (default: run until the timeout)\n"
		"  --action A          accept | drop | mark:M | repeat-mark:M | requeue:N |\n"
		"                      payload-replace:OLD:NEW | hold-reverse:K |\n"
		"                      check-oversize | check-double | check-stale | check-retain\n"
		"                      (applies to the first queue; others are accepted)\n"
		"  --mode M            none | meta | packet (default packet)\n"
		"  --range R           copy range (default 65535)\n"
		"  --max-len L         kernel queue length (default 1024)\n"
		"  --sock-len B        receive buffer bytes (default: library default)\n"
		"  --flags F,...       fail_open,gso,uid_gid,secctx,conntrack or none (default gso)\n"
		"  --fd-from-netns NS  open the socket inside /run/netns/NS (or a path) in a\n"
		"                      child, receive it over SCM_RIGHTS, use it from here\n"
		"  --rtnl              also hand over / open a NETLINK_ROUTE socket for ifnames\n"
		"  --fd-kind K         hand open_fd a wrong fd: file | udp | route | closed\n"
		"  --stall-ms T        do not read the socket for T ms after binding\n"
		"  --timeout-ms T      give up after T ms (default 10000)\n"
		"  --print             print one line per packet\n"
		"exit: 0 done, 1 runtime error, 2 usage, 3 timeout before --count packets\n");
}

/* ------------------------------------------------------------ helpers */

static const char *ename(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "E?";
}

static void report_err(struct probe *pr, const char *op, int err)
{
	fprintf(stderr, "nfqb-probe: %s: %s (%s): %s\n", op, ename(err), strerror(-err),
		pr->q ? nfqb_queue_errmsg(pr->q) : "");
}

static void check(const char *name, int ret)
{
	printf("check name=%s ret=%d err=%s\n", name, ret, ret < 0 ? ename(ret) : "0");
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* ------------------------------------------------------------ packets */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Where the L4 header starts and which protocol it is; -1 when unknown. */
static int l4(const uint8_t *pkt, size_t len, size_t *off, uint8_t *proto)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		*off = (size_t)(pkt[0] & 15) * 4;
		*proto = pkt[9];
		return *off >= 20 && *off <= len ? 0 : -1;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		*off = 40;   /* the tests send no extension headers */
		*proto = pkt[6];
		return 0;
	}
	return -1;
}

/* The total length the IP header claims, 0 when there is no header. */
static uint32_t ip_len(const uint8_t *pkt, size_t len)
{
	if (len >= 20 && pkt[0] >> 4 == 4)
		return (uint32_t)(pkt[2] << 8 | pkt[3]);
	if (len >= 40 && pkt[0] >> 4 == 6)
		return 40u + (uint32_t)(pkt[4] << 8 | pkt[5]);
	return 0;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Recompute IP (v4) and UDP lengths and checksums of @pkt in place. */
static void udp_fix(uint8_t *pkt, size_t len, size_t off)
{
	uint8_t *udp = pkt + off;
	uint32_t sum;
	uint16_t c;

	put16(udp + 4, (uint32_t)(len - off));
	put16(udp + 6, 0);
	if (pkt[0] >> 4 == 4) {
		put16(pkt + 2, (uint32_t)len);
		put16(pkt + 10, 0);
		put16(pkt + 10, csum_fold(csum_add(0, pkt, off)));
		sum = csum_add(0, pkt + 12, 8);
	} else {
		put16(pkt + 4, (uint32_t)(len - 40));
		sum = csum_add(0, pkt + 8, 32);
	}
	sum += 17 + (uint32_t)(len - off);
	c = csum_fold(csum_add(sum, udp, len - off));
	put16(udp + 6, c ? c : 0xffff);
}

/* Replace the first @old in the UDP payload by @new; 0 when not found. */
static int udp_replace(const uint8_t *in, size_t len, const char *old,
		       const char *new, uint8_t *out, size_t *outlen)
{
	size_t off, ol = strlen(old), nl = strlen(new), at;
	const uint8_t *hit;
	uint8_t proto;

	if (l4(in, len, &off, &proto) < 0 || proto != 17 || off + 8 > len || !ol)
		return 0;
	hit = memmem(in + off + 8, len - off - 8, old, ol);
	if (!hit || len - ol + nl > NFQB_MAX_PAYLOAD)
		return 0;
	at = (size_t)(hit - in);
	memcpy(out, in, at);
	memcpy(out + at, new, nl);
	memcpy(out + at + nl, hit + ol, len - at - ol);
	*outlen = len - ol + nl;
	udp_fix(out, *outlen, off);
	return 1;
}

static const char *hook_name(uint8_t h)
{
	static const char *const names[] = {
		"prerouting", "input", "forward", "output", "postrouting",
	};

	return h < 5 ? names[h] : "?";
}

static void dev_field(const struct nfqb_packet *p, enum nfqb_dev which, char *out)
{
	char name[IF_NAMESIZE];
	int err = nfqb_packet_ifname(p, which, name);

	if (err == 0)
		snprintf(out, 24, "%s", name);
	else if (err == -ENODATA)
		snprintf(out, 24, "-");
	else
		snprintf(out, 24, "#%u", nfqb_packet_ifindex(p, which));
}

static void id_field(int err, uint32_t v, char *out)
{
	if (err == 0)
		snprintf(out, 12, "%u", v);
	else
		snprintf(out, 12, "-");
}

/* The udp-tool index ("seq=NNNNNNNN;" at the start of the UDP data). */
static long udp_idx(const uint8_t *pkt, size_t len)
{
	size_t off;
	uint8_t proto;
	char num[9];

	if (l4(pkt, len, &off, &proto) < 0 || proto != 17 || off + 8 + 13 > len ||
	    memcmp(pkt + off + 8, "seq=", 4))
		return -1;
	memcpy(num, pkt + off + 12, 8);
	num[8] = 0;
	return strtol(num, NULL, 10);
}

static void print_packet(const struct nfqb_packet *p)
{
	size_t plen = 0;
	const uint8_t *pl = nfqb_packet_payload(p, &plen);
	char in[24], out[24], uid[12], gid[12];
	uint32_t u = 0, g = 0;
	size_t off = 0;
	uint8_t proto = 0;
	int ue = nfqb_packet_uid(p, &u), ge = nfqb_packet_gid(p, &g);

	dev_field(p, NFQB_DEV_IN, in);
	dev_field(p, NFQB_DEV_OUT, out);
	id_field(ue, u, uid);
	id_field(ge, g, gid);
	if (pl)
		l4(pl, plen, &off, &proto);
	printf("id=%u hook=%s len=%u cap_len=%u payload_len=%d mark=%u indev=%s outdev=%s "
	       "uid=%s gid=%s hw_protocol=0x%04x queue=%u proto=%u idx=%ld\n",
	       nfqb_packet_id(p), hook_name(nfqb_packet_hook(p)),
	       pl ? ip_len(pl, plen) : 0, nfqb_packet_cap_len(p),
	       nfqb_packet_payload_len(p), nfqb_packet_mark(p), in, out, uid, gid,
	       nfqb_packet_hw_protocol(p), nfqb_packet_queue(p), proto,
	       pl ? udp_idx(pl, plen) : -1);
}

/* ------------------------------------------------------------ actions */

static int act_payload_replace(struct probe *pr, struct nfqb_packet *p)
{
	static uint8_t buf[NFQB_MAX_PAYLOAD];
	size_t len = 0, outlen = 0;
	const uint8_t *pl = nfqb_packet_payload(p, &len);
	int err;

	if (pl && udp_replace(pl, len, pr->old, pr->new, buf, &outlen)) {
		err = nfqb_packet_set_payload(p, buf, outlen);
		if (err < 0)
			return err;
		if (pr->print)
			printf("replaced id=%u len=%zu\n", nfqb_packet_id(p), outlen);
	}
	return nfqb_packet_accept(p);
}

/* Retain until the K-th packet, then accept it and the held ones newest
 * first: the receiver must see them reversed. */
static int act_hold_reverse(struct probe *pr, struct nfqb_packet *p)
{
	struct nfqb_packet *c;
	int err, ret = 0;

	if (pr->nheld + 1 < pr->arg) {
		c = nfqb_packet_retain(p);
		if (!c)
			return -errno;
		pr->held[pr->nheld++] = c;
		return 0;
	}
	ret = nfqb_packet_accept(p);
	while (pr->nheld > 0) {
		c = pr->held[--pr->nheld];
		err = nfqb_packet_accept(c);
		if (err < 0 && ret == 0)
			ret = err;
		nfqb_packet_release(c);
	}
	return ret;
}

static int act_check_oversize(struct nfqb_packet *p)
{
	static uint8_t big[NFQB_MAX_PAYLOAD + 1];

	/* The netlink attribute's 16-bit length must hold its header too. */
	check("set_payload_65532", nfqb_packet_set_payload(p, big, NFQB_MAX_SET_PAYLOAD + 1));
	check("set_payload_oversize", nfqb_packet_set_payload(p, big, sizeof(big)));
	check("set_payload_null", nfqb_packet_set_payload(p, NULL, 5));
	return nfqb_packet_accept(p);
}

static int act_check_double(struct nfqb_packet *p)
{
	int err = nfqb_packet_accept(p);

	check("first_accept", err);
	check("second_accept", nfqb_packet_accept(p));
	check("drop_after_accept", nfqb_packet_drop(p));
	check("repeat_after_accept", nfqb_packet_repeat(p));
	check("set_mark_after_accept", nfqb_packet_set_mark(p, 1));
	check("set_payload_after_accept", nfqb_packet_set_payload(p, "x", 1));
	check("retain_after_accept", nfqb_packet_retain(p) ? 0 : -errno);
	check("decided", nfqb_packet_decided(p) ? 1 : 0);
	return err;
}

static int act_check_retain(struct nfqb_packet *p)
{
	struct nfqb_packet *c, *c2;
	int err;

	/* Not a retained copy: must be ignored, the packet stays usable. */
	nfqb_packet_release(p);
	c = nfqb_packet_retain(p);
	check("retain", c ? 0 : -errno);
	if (!c)
		return nfqb_packet_accept(p);
	c2 = nfqb_packet_retain(p);
	check("retain_twice", c2 ? 0 : -errno);
	nfqb_packet_release(c2);
	err = nfqb_packet_accept(p);
	check("accept_original", err);
	check("accept_copy", nfqb_packet_accept(c));
	check("copy_decided", nfqb_packet_decided(c) ? 1 : 0);
	check("copy_payload_len", nfqb_packet_payload_len(c) > 0 ? 1 : nfqb_packet_payload_len(c));
	nfqb_packet_release(c);
	return err;
}

/* After the callback the packet is no longer the caller's: every access
 * must fail with ESTALE, and nothing may crash. */
static void check_stale_after(struct probe *pr)
{
	struct nfqb_packet *p = pr->stale;
	size_t len = 123;
	const void *pl;

	if (!p)
		return;
	pr->stale = NULL;
	errno = 0;
	pl = nfqb_packet_payload(p, &len);
	check("stale_payload", pl ? (int)len : -errno);
	check("stale_payload_len", nfqb_packet_payload_len(p));
	check("stale_set_payload", nfqb_packet_set_payload(p, "x", 1));
	check("stale_accept", nfqb_packet_accept(p));
	check("stale_set_mark", nfqb_packet_set_mark(p, 1));
	check("stale_retain", nfqb_packet_retain(p) ? 0 : -errno);
}

static int act_apply(struct probe *pr, struct nfqb_packet *p)
{
	switch (pr->act) {
	case ACT_ACCEPT:
		return nfqb_packet_accept(p);
	case ACT_DROP:
		return nfqb_packet_drop(p);
	case ACT_MARK:
		if (nfqb_packet_set_mark(p, pr->arg) < 0)
			return -EIO;
		return nfqb_packet_accept(p);
	case ACT_REPEAT_MARK:
		if (nfqb_packet_get_mark(p) == pr->arg)
			return nfqb_packet_accept(p);
		if (nfqb_packet_set_mark(p, pr->arg) < 0)
			return -EIO;
		return nfqb_packet_repeat(p);
	case ACT_REQUEUE:
		return nfqb_packet_requeue(p, (uint16_t)pr->arg);
	case ACT_PAYLOAD_REPLACE:
		return act_payload_replace(pr, p);
	case ACT_HOLD_REVERSE:
		return act_hold_reverse(pr, p);
	case ACT_CHECK_OVERSIZE:
		return act_check_oversize(p);
	case ACT_CHECK_DOUBLE:
		return act_check_double(p);
	case ACT_CHECK_RETAIN:
		return act_check_retain(p);
	case ACT_CHECK_STALE:
		pr->stale = p;
		return nfqb_packet_accept(p);
	}
	return -EINVAL;
}

static void on_packet(struct nfqb_packet *p, void *user)
{
	struct probe *pr = user;
	int err;

	if (pr->print)
		print_packet(p);
	pr->seen++;
	if (nfqb_packet_queue(p) == pr->queues[0])
		err = act_apply(pr, p);
	else
		err = nfqb_packet_accept(p);
	if (err < 0) {
		fprintf(stderr, "nfqb-probe: verdict for packet %u: %s (%s)\n",
			nfqb_packet_id(p), ename(err), strerror(-err));
		pr->failed = 1;
		if (!nfqb_packet_decided(p))
			nfqb_packet_accept(p);
	}
	if (pr->count >= 0 && pr->seen >= pr->count && pr->nheld == 0)
		nfqb_queue_stop(pr->q);
}

/* ------------------------------------------------------------ sockets */

static int send_fds(int sock, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

/* Child side: enter the namespace, open the sockets, hand them over. */
static void __attribute__((noreturn)) opener_child(int sock, const char *ns, bool rtnl)
{
	char path[512];
	int nsfd, fds[2] = { -1, -1 }, n = rtnl ? 2 : 1;

	snprintf(path, sizeof(path), "%s%s", strchr(ns, '/') ? "" : "/run/netns/", ns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "nfqb-probe: entering %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	fds[0] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (rtnl)
		fds[1] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fds[0] < 0 || (rtnl && fds[1] < 0) || send_fds(sock, fds, n) < 0) {
		fprintf(stderr, "nfqb-probe: opening sockets in %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	_exit(0);
}

static int recv_fds(int sock, int *fds, int want)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int n;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -EPROTO;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	memcpy(fds, CMSG_DATA(cm), (size_t)n * sizeof(int));
	if (n != want || (mh.msg_flags & MSG_CTRUNC)) {
		for (int i = 0; i < n; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return 0;
}

/* Open the sockets in namespace @ns through a short-lived child. */
static int fds_from_netns(const char *ns, bool rtnl, int *fds)
{
	int sp[2], status, err;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(sp[0]);
		close(sp[1]);
		return err;
	}
	if (pid == 0) {
		close(sp[0]);
		opener_child(sp[1], ns, rtnl);
	}
	close(sp[1]);
	err = recv_fds(sp[0], fds, rtnl ? 2 : 1);
	close(sp[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		err = err ? err : -ECHILD;
	return err;
}

/* A deliberately wrong fd for nfqb_queue_open_fd (error tests). */
static int wrong_fd(const char *kind)
{
	if (!strcmp(kind, "file"))
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!strcmp(kind, "udp"))
		return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!strcmp(kind, "route"))
		return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	return 1000;   /* "closed": nothing is open there */
}

static unsigned long sock_netns_ino(int fd)
{
	struct stat st;
	int nsfd = ioctl(fd, SIOCGSKNS);
	unsigned long ino = 0;

	if (nsfd >= 0 && fstat(nsfd, &st) == 0)
		ino = (unsigned long)st.st_ino;
	if (nsfd >= 0)
		close(nsfd);
	return ino;
}

static int open_queue(struct probe *pr)
{
	int fds[2] = { -1, -1 }, err;

	if (pr->fd_kind) {
		pr->q = nfqb_queue_open_fd(wrong_fd(pr->fd_kind));
	} else if (pr->fd_netns) {
		err = fds_from_netns(pr->fd_netns, pr->rtnl, fds);
		if (err < 0) {
			report_err(pr, "receiving sockets from the namespace", err);
			return err;
		}
		pr->q = nfqb_queue_open_fd(fds[0]);
	} else {
		pr->q = nfqb_queue_open();
		if (pr->rtnl)
			fds[1] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	}
	if (!pr->q) {
		err = -errno;
		if (fds[1] >= 0)
			close(fds[1]);
		report_err(pr, "open", err);
		return err;
	}
	if (fds[1] >= 0)
		nfqb_queue_set_rtnl(pr->q, fds[1]);
	return 0;
}

static int bind_all(struct probe *pr)
{
	char op[32];
	int err;

	for (size_t i = 0; i < pr->nqueues; i++) {
		err = nfqb_queue_bind(pr->q, pr->queues[i], on_packet, pr, &pr->opts);
		if (err < 0) {
			snprintf(op, sizeof(op), "bind queue %u", pr->queues[i]);
			report_err(pr, op, err);
			return err;
		}
	}
	fprintf(stderr, "ready queues=%zu portid=%u netns_ino=%lu\n", pr->nqueues,
		nfqb_queue_portid(pr->q), sock_netns_ino(nfqb_queue_fd(pr->q)));
	return 0;
}

/* ------------------------------------------------------------ main loop */

static void on_signal(int sig)
{
	got_signal = sig;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (ms % 1000) * 1000000 };

	while (!got_signal && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Returns 0 when --count was reached, 3 on timeout, 1 on error. */
static int run(struct probe *pr)
{
	long deadline = clock_now_ms() + pr->timeout_ms, left;
	struct pollfd pfd = { .fd = nfqb_queue_fd(pr->q), .events = POLLIN };
	int n;

	if (pr->stall_ms > 0)
		sleep_ms(pr->stall_ms < pr->timeout_ms ? pr->stall_ms : pr->timeout_ms);
	while (!got_signal) {
		if (pr->count >= 0 && pr->seen >= pr->count && pr->nheld == 0)
			return 0;
		left = deadline - clock_now_ms();
		if (left <= 0)
			return pr->count >= 0 ? 3 : 0;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR) {
			report_err(pr, "poll", -errno);
			return 1;
		}
		if (n <= 0)
			continue;
		n = nfqb_queue_run(pr->q, false);
		check_stale_after(pr);
		if (n < 0 && n != -EINTR) {
			report_err(pr, "run", n);
			return 1;
		}
	}
	return pr->count >= 0 ? 3 : 0;
}

static void summary(struct probe *pr, int rc)
{
	struct nfqb_queue_stats st;

	nfqb_queue_get_stats(pr->q, &st);
	printf("summary packets=%ld verdicts=%llu timeout=%d batches=%llu enobufs=%llu "
	       "unsettled=%llu kernel_errors=%llu send_errors=%llu held=%zu\n",
	       pr->seen, (unsigned long long)st.verdicts, rc == 3,
	       (unsigned long long)st.batches, (unsigned long long)st.enobufs,
	       (unsigned long long)st.unsettled, (unsigned long long)st.kernel_errors,
	       (unsigned long long)st.send_errors, pr->nheld);
}

/* ------------------------------------------------------------ arguments */

static int parse_flags(const char *s, uint32_t *flags)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	*flags = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t f = 0;

		for (uint32_t b = 1; b & NFQB_F_ALL; b <<= 1)
			if (!strcmp(tok, nfqb_flag_name(b)))
				f = b;
		if (!f && strcmp(tok, "none")) {
			fprintf(stderr, "nfqb-probe: unknown flag '%s'\n", tok);
			err = -EINVAL;
			break;
		}
		*flags |= f;
	}
	free(copy);
	return err;
}

static int parse_action(struct probe *pr, char *s)
{
	static const struct { const char *name; enum action act; bool arg; } tab[] = {
		{ "accept", ACT_ACCEPT, false }, { "drop", ACT_DROP, false },
		{ "mark", ACT_MARK, true }, { "repeat-mark", ACT_REPEAT_MARK, true },
		{ "requeue", ACT_REQUEUE, true }, { "hold-reverse", ACT_HOLD_REVERSE, true },
		{ "check-oversize", ACT_CHECK_OVERSIZE, false },
		{ "check-double", ACT_CHECK_DOUBLE, false },
		{ "check-stale", ACT_CHECK_STALE, false },
		{ "check-retain", ACT_CHECK_RETAIN, false },
	};
	char *colon = strchr(s, ':');
	size_t nlen = colon ? (size_t)(colon - s) : strlen(s);

	if (!strncmp(s, "payload-replace:", 16)) {
		pr->act = ACT_PAYLOAD_REPLACE;
		pr->old = s + 16;
		colon = strchr(s + 16, ':');
		if (!colon || colon == pr->old)
			return -EINVAL;
		*colon = 0;
		pr->new = colon + 1;
		return 0;
	}
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strlen(tab[i].name) != nlen || strncmp(s, tab[i].name, nlen))
			continue;
		pr->act = tab[i].act;
		if (tab[i].arg != !!colon)
			return -EINVAL;
		if (!colon)
			return 0;
		if (parse_u32(colon + 1, pr->act == ACT_REQUEUE ? 65535 : UINT32_MAX, &pr->arg) < 0)
			return -EINVAL;
		if (pr->act == ACT_HOLD_REVERSE && (pr->arg < 1 || pr->arg > MAX_HOLD))
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static int parse_mode(const char *s, enum nfqb_copy_mode *mode)
{
	if (!strcmp(s, "none"))
		*mode = NFQB_COPY_NONE;
	else if (!strcmp(s, "meta"))
		*mode = NFQB_COPY_META;
	else if (!strcmp(s, "packet"))
		*mode = NFQB_COPY_PACKET;
	else
		return -EINVAL;
	return 0;
}

static int parse_opt(struct probe *pr, int c, char *arg)
{
	uint32_t v;

	switch (c) {
	case 'q':
		if (pr->nqueues == MAX_QUEUES || parse_u32(arg, 65535, &v) < 0)
			return -EINVAL;
		pr->queues[pr->nqueues++] = (uint16_t)v;
		return 0;
	case 'c':
		if (parse_u32(arg, 10000000, &v) < 0)
			return -EINVAL;
		pr->count = v;
		return 0;
	case 'a': return parse_action(pr, arg);
	case 'm': return parse_mode(arg, &pr->opts.mode);
	/* range and max_len are passed through unchecked: the library judges */
	case 'r': return parse_u32(arg, UINT32_MAX, &pr->opts.range);
	case 'l': return parse_u32(arg, UINT32_MAX, &pr->opts.max_len);
	case 'b': return parse_u32(arg, UINT32_MAX, &pr->opts.sock_len);
	case 'f': return parse_flags(arg, &pr->opts.flags);
	case 'n': pr->fd_netns = arg; return 0;
	case 'k':
		if (strcmp(arg, "file") && strcmp(arg, "udp") && strcmp(arg, "route") &&
		    strcmp(arg, "closed"))
			return -EINVAL;
		pr->fd_kind = arg;
		return 0;
	case 's':
		if (parse_u32(arg, 600000, &v) < 0)
			return -EINVAL;
		pr->stall_ms = v;
		return 0;
	case 't':
		if (parse_u32(arg, 600000, &v) < 0)
			return -EINVAL;
		pr->timeout_ms = v;
		return 0;
	case 'p': pr->print = true; return 0;
	case 'R': pr->rtnl = true; return 0;
	}
	return -EINVAL;
}

static int parse_args(struct probe *pr, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'c' },
		{ "action", required_argument, NULL, 'a' },
		{ "mode", required_argument, NULL, 'm' },
		{ "range", required_argument, NULL, 'r' },
		{ "max-len", required_argument, NULL, 'l' },
		{ "sock-len", required_argument, NULL, 'b' },
		{ "flags", required_argument, NULL, 'f' },
		{ "fd-from-netns", required_argument, NULL, 'n' },
		{ "fd-kind", required_argument, NULL, 'k' },
		{ "rtnl", no_argument, NULL, 'R' },
		{ "stall-ms", required_argument, NULL, 's' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "print", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, idx = 0;

	while ((c = getopt_long(argc, argv, "h", lo, &idx)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?' || parse_opt(pr, c, optarg) < 0) {
			if (c != '?')
				fprintf(stderr, "nfqb-probe: bad value '%s' for --%s\n",
					optarg, lo[idx].name);
			return -EINVAL;
		}
		idx = 0;
	}
	if (optind < argc) {
		fprintf(stderr, "nfqb-probe: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!pr->nqueues && !pr->fd_kind) {
		fprintf(stderr, "nfqb-probe: --queue is required\n");
		return -EINVAL;
	}
	if (pr->act == ACT_HOLD_REVERSE && pr->count >= 0 && pr->count % pr->arg) {
		fprintf(stderr, "nfqb-probe: --count must be a multiple of hold-reverse's K\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct probe pr = {
		.opts = NFQB_QUEUE_OPTS_DEFAULT, .count = -1, .timeout_ms = 10000,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(&pr, argc, argv) < 0) {
		fprintf(stderr, "try 'nfqb-probe --help'\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (open_queue(&pr) < 0)
		return 1;
	if (bind_all(&pr) < 0) {
		nfqb_queue_close(pr.q);
		return 1;
	}
	rc = run(&pr);
	if (rc != 1 && pr.failed)
		rc = 1;
	summary(&pr, rc);
	/* Packets still held are settled by the kernel when the queue goes. */
	for (size_t i = 0; i < pr.nheld; i++)
		nfqb_packet_release(pr.held[i]);
	nfqb_queue_close(pr.q);
	return rc;
}
