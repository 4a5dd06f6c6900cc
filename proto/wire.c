/* SPDX-License-Identifier: MIT */
/*
 * Agent <-> broker wire protocol: record transport with SCM_RIGHTS and the
 * checks both ends apply to what they receive. See wire.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "wire.h"

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif

/* Room for more fds than any valid record carries, so a sender attaching
 * too many is seen (and every fd closed) instead of the kernel silently
 * dropping the excess behind MSG_CTRUNC only. */
#define WIRE_RECV_FDS (WIRE_MAX_FDS + 6)

void wire_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int wire_send(int sock, const void *msg, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (!msg || !len || nfds > WIRE_MAX_FDS || (nfds && !fds))
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SOCK_SEQPACKET sends whole records or nothing; anything else is a
	 * socket of the wrong type. */
	if ((size_t)n != len)
		return -EMSGSIZE;
	return 0;
}

/* Collect every fd of every SCM_RIGHTS message into @got (capacity @cap).
 * Returns false when a foreign control message was present. */
static bool collect_fds(struct msghdr *mh, int *got, size_t cap, size_t *ngot)
{
	bool clean = true;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			clean = false;
			continue;
		}
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt && *ngot < cap; i++)
			memcpy(&got[(*ngot)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	return clean;
}

/*
 * Whether a cut-short control message means we, not the peer, ran out:
 * the kernel installs every fd it can and sets MSG_CTRUNC at the first it
 * cannot (EMFILE/ENFILE); a peer sending too many fills our whole control
 * buffer instead. So: fewer fds than a valid record may carry, and fewer
 * than the hello (when it is one) announced.
 */
static bool out_of_fds(const struct msghdr *mh, const void *buf, size_t len, size_t ngot,
		       bool clean)
{
	struct wire_hello h;

	if (!clean || (mh->msg_flags & MSG_TRUNC) || !(mh->msg_flags & MSG_CTRUNC) ||
	    ngot >= WIRE_MAX_FDS)
		return false;
	if (len != sizeof(h))
		return true;
	memcpy(&h, buf, sizeof(h));
	return h.hdr.type != WIRE_HELLO || (h.nfds <= WIRE_MAX_FDS && ngot < h.nfds);
}

ssize_t wire_recv(int sock, void *buf, size_t len, int fds[WIRE_MAX_FDS], size_t *nfds)
{
	/* Room for credentials too, so that a socket with SO_PASSCRED set
	 * still delivers (and we close) the fds instead of truncating. */
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred)) +
			 CMSG_SPACE(sizeof(int) * WIRE_RECV_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	/* Sized by the control buffer, not by WIRE_RECV_FDS: any fd the
	 * kernel managed to install must be seen to be closed. */
	int got[sizeof(ctl) / sizeof(int)];
	size_t ngot = 0;
	bool clean;
	ssize_t n;

	for (size_t i = 0; i < WIRE_MAX_FDS; i++)
		fds[i] = -1;
	*nfds = 0;
	if (!buf || !len)
		return -EINVAL;

	memset(&ctl, 0, sizeof(ctl));
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		/* Never blocks, whatever the fd's flags: callers poll first. */
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	clean = collect_fds(&mh, got, sizeof(got) / sizeof(got[0]), &ngot);
	if (!clean || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    ngot > WIRE_MAX_FDS) {
		close_fds(got, ngot);
		return out_of_fds(&mh, buf, (size_t)n, ngot, clean) ? -EMFILE : -EBADMSG;
	}
	/* An empty record reads like EOF; fds riding on it must not leak. */
	if (n == 0) {
		close_fds(got, ngot);
		return 0;
	}
	memcpy(fds, got, ngot * sizeof(int));
	*nfds = ngot;
	return n;
}

/* Names end up in key=value log lines, JSON and globs: keep them to
 * visible ASCII without the characters that would need quoting. */
bool wire_name_char_ok(unsigned char ch)
{
	return ch >= 0x21 && ch <= 0x7e && ch != '"' && ch != '\\' && ch != '=';
}

static int name_check(const char *name, size_t max, char *why, size_t whylen)
{
	size_t len = strnlen(name, max);

	if (len == 0) {
		wire_why(why, whylen, "name is empty");
		return -EINVAL;
	}
	if (len == max) {
		wire_why(why, whylen, "name is not NUL-terminated within %zu bytes", max);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (!wire_name_char_ok(ch)) {
			wire_why(why, whylen,
				"name has invalid character 0x%02x at offset %zu", ch, i);
			return -EINVAL;
		}
	}
	return 0;
}

int wire_hello_check(const void *buf, size_t len, size_t nfds, char *why, size_t whylen)
{
	struct wire_hello m;

	if (why && whylen)
		why[0] = '\0';
	if (!buf || len < sizeof(struct wire_hdr)) {
		wire_why(why, whylen, "hello too short: %zu bytes", len);
		return -EPROTO;
	}
	/* Header first: a peer of another version may use another size, and
	 * "wrong version" is the useful diagnosis then. */
	memcpy(&m.hdr, buf, sizeof(m.hdr));
	if (m.hdr.magic != WIRE_MAGIC) {
		wire_why(why, whylen, "bad magic 0x%08x", m.hdr.magic);
		return -EPROTO;
	}
	if (m.hdr.version != WIRE_VERSION) {
		wire_why(why, whylen, "protocol version %u not supported (broker speaks %u)",
			m.hdr.version, WIRE_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (m.hdr.type != WIRE_HELLO) {
		wire_why(why, whylen, "expected hello (type %d), got type %u",
			WIRE_HELLO, m.hdr.type);
		return -EPROTO;
	}
	if (len != sizeof(m)) {
		wire_why(why, whylen, "hello is %zu bytes, expected %zu", len, sizeof(m));
		return -EPROTO;
	}
	memcpy(&m, buf, sizeof(m));
	if (m.nfds < 1 || m.nfds > WIRE_MAX_FDS) {
		wire_why(why, whylen, "hello announces %u fds, expected 1 or 2", m.nfds);
		return -EPROTO;
	}
	if (m.nfds != nfds) {
		wire_why(why, whylen, "hello announces %u fds but %zu arrived", m.nfds, nfds);
		return -EPROTO;
	}
	if (m.flags != 0) {
		wire_why(why, whylen, "hello has unknown flags 0x%04x", m.flags);
		return -EPROTO;
	}
	return name_check(m.name, sizeof(m.name), why, whylen);
}

static const char *netlink_proto_name(int proto)
{
	switch (proto) {
	case NETLINK_ROUTE:
		return "NETLINK_ROUTE";
	case NETLINK_NETFILTER:
		return "NETLINK_NETFILTER";
	default:
		return "netlink protocol";
	}
}

int wire_fd_check(int fd, int proto, char *why, size_t whylen)
{
	socklen_t optlen;
	struct stat st;
	int val;

	if (why && whylen)
		why[0] = '\0';
	if (fstat(fd, &st) < 0) {
		int err = errno;

		wire_why(why, whylen, "not an open file: %s", strerror(err));
		return -err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		wire_why(why, whylen, "not a socket");
		return -ENOTSOCK;
	}
	optlen = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &optlen) < 0) {
		int err = errno;

		wire_why(why, whylen, "cannot read socket family: %s", strerror(err));
		return -err;
	}
	if (val != AF_NETLINK) {
		wire_why(why, whylen, "socket family %d is not AF_NETLINK", val);
		return -EAFNOSUPPORT;
	}
	optlen = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &val, &optlen) < 0) {
		int err = errno;

		wire_why(why, whylen, "cannot read netlink protocol: %s", strerror(err));
		return -err;
	}
	if (val != proto) {
		wire_why(why, whylen, "netlink protocol %d is not %s (%d)",
			val, netlink_proto_name(proto), proto);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int wire_fd_netns(int fd, uint64_t *dev, uint64_t *ino)
{
	struct stat st;
	int nsfd, err = 0;

	nsfd = ioctl(fd, SIOCGSKNS);
	if (nsfd < 0)
		return -errno;
	if (fstat(nsfd, &st) < 0)
		err = -errno;
	close(nsfd);
	if (err)
		return err;
	if (dev)
		*dev = st.st_dev;
	if (ino)
		*ino = st.st_ino;
	return 0;
}

static void hdr_init(struct wire_hdr *h, enum wire_type type)
{
	h->magic = WIRE_MAGIC;
	h->version = WIRE_VERSION;
	h->type = type;
}

void wire_hello_init(struct wire_hello *m, const char *name, uint32_t pid, uint16_t nfds)
{
	memset(m, 0, sizeof(*m));
	hdr_init(&m->hdr, WIRE_HELLO);
	m->pid = pid;
	m->nfds = nfds;
	if (name)
		strncpy(m->name, name, sizeof(m->name) - 1);
}

void wire_accept_init(struct wire_accept *m, uint64_t netns_inode, uint32_t nqueues)
{
	memset(m, 0, sizeof(*m));
	hdr_init(&m->hdr, WIRE_ACCEPT);
	m->netns_inode = netns_inode;
	m->nqueues = nqueues;
}

void wire_refuse_init(struct wire_refuse *m, const char *reason)
{
	wire_refuse_init_flags(m, reason, 0);
}

void wire_refuse_init_flags(struct wire_refuse *m, const char *reason, uint32_t flags)
{
	memset(m, 0, sizeof(*m));
	hdr_init(&m->hdr, WIRE_REFUSE);
	m->flags = flags;
	if (!reason)
		return;
	strncpy(m->reason, reason, sizeof(m->reason) - 1);
	/* The reason is one line: the agent prints it as such. */
	for (char *p = m->reason; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void wire_bye_init(struct wire_bye *m)
{
	memset(m, 0, sizeof(*m));
	hdr_init(&m->hdr, WIRE_BYE);
}

uint32_t wire_refuse_flags(const struct wire_refuse *m)
{
	/* A reason running into the flags is an older broker's long one. */
	if (strnlen(m->reason, sizeof(m->reason)) == sizeof(m->reason))
		return 0;
	return m->flags;
}

int wire_peek_type(const void *buf, size_t len)
{
	struct wire_hdr h;
	size_t want;

	if (!buf || len < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != WIRE_MAGIC || h.version != WIRE_VERSION)
		return -1;
	switch (h.type) {
	case WIRE_HELLO:
		want = sizeof(struct wire_hello);
		break;
	case WIRE_ACCEPT:
		want = sizeof(struct wire_accept);
		break;
	case WIRE_REFUSE:
		want = sizeof(struct wire_refuse);
		break;
	case WIRE_BYE:
		want = sizeof(struct wire_bye);
		break;
	default:
		return -1;
	}
	return len == want ? (int)h.type : -1;
}
