/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "wire": the agent listener's hello handling (broker/attach.c
 * with proto/wire.c) over its real SOCK_SEQPACKET socket. Input byte 0 is
 * the number of fds to attach (0-3), byte 1 their kinds, 2 bits each
 * (/dev/null, a NETLINK_NETFILTER socket, a NETLINK_ROUTE socket, a unix
 * socket); the rest is the record. The broker's loop is pumped until it
 * answers or hangs up. Every namespaces[] entry pins a namespace no socket
 * lives in, so even a perfect hello is refused before a queue would be
 * bound: no root needed, no kernel state touched. Invariants: never a
 * crash or leak; the connection is answered or closed at once; every fd
 * the broker received is closed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "attach.h"
#include "config.h"
#include "errs.h"
#include "loop.h"
#include "session-private.h"
#include "wire.h"
#include "fuzz.h"
#include "fuzz-loop.h"

static struct loop *loop;
static struct session_mgr *mgr;
static struct attach *att;
static char dir[] = "/tmp/fuzz-wire-XXXXXX", path[108];
static int kinds[4] = { -1, -1, -1, -1 };
static int baseline_fds;

static const char cfg_fmt[] =
	"{\"broker\": {\"allow_uids\": [%u]},"
	" \"namespaces\": ["
	"   {\"name\": \"fuzz-pinned\", \"netns\": \"/proc/self/ns/uts\", \"queues\": [21], \"policy\": \"p\"},"
	"   {\"name\": \"pod-*\", \"netns\": \"%s/no-such-netns\", \"queues\": [22], \"policy\": \"p\"}],"
	" \"policies\": {\"p\": {\"default\": \"accept\", \"rules\": []}}}";

/* The listener removes its socket file; the directory is ours. */
static void cleanup(void)
{
	attach_free(att);
	session_mgr_free(mgr);
	loop_free(loop);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char text[1024];
	struct errs e = { 0 };
	struct cfg *c;

	FUZZ_CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	snprintf(text, sizeof(text), cfg_fmt, (unsigned)getuid(), dir);
	c = cfg_parse_string(text, &e);
	FUZZ_CHECK(c);
	loop = loop_new();
	FUZZ_CHECK(loop);
	fuzz_pump_init(loop);
	mgr = session_mgr_new(loop, c);
	FUZZ_CHECK(mgr);
	att = attach_listen(mgr, path, 0600, text, sizeof(text));
	FUZZ_CHECK(att);
	atexit(cleanup);
	kinds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	kinds[1] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	kinds[2] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	kinds[3] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	for (int i = 0; i < 4; i++)
		FUZZ_CHECK(kinds[i] >= 0);
	return 0;
}

static int send_record(int sock, const uint8_t *rec, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)rec, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Pump until the broker answers or hangs up: true when it did. */
static bool answered(int sock)
{
	char buf[WIRE_MSG_MAX];
	int fds[WIRE_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;

	for (int i = 0; i < 200; i++) {
		fuzz_pump(loop);
		n = wire_recv(sock, buf, sizeof(buf), fds, &nfds);
		if (n == -EAGAIN)
			continue;
		for (size_t k = 0; k < WIRE_MAX_FDS; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		/* Nothing but a refusal (or a hang-up) may come back. */
		FUZZ_CHECK(n <= 0 || wire_peek_type(buf, (size_t)n) == WIRE_REFUSE);
		FUZZ_CHECK(nfds == 0);
		return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sock, fds[3];
	size_t nfds;

	/* Taken at the first input: libFuzzer opens fds after initialization. */
	if (!baseline_fds)
		baseline_fds = fuzz_count_fds();
	if (size < 2 || size > 4096)
		return -1;     /* not worth keeping: the broker reads one small record */
	nfds = data[0] & 3;
	for (size_t i = 0; i < nfds; i++)
		fds[i] = kinds[(data[1] >> (2 * i)) & 3];
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_CHECK(sock >= 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	FUZZ_CHECK(connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FUZZ_CHECK(send_record(sock, data + 2, size - 2, fds, nfds) == 0);
	FUZZ_CHECK(answered(sock));
	close(sock);
	/* The connection is gone on the broker's side too, with its fds. */
	for (int i = 0; i < 10 && attach_pending(att); i++)
		fuzz_pump(loop);
	FUZZ_CHECK(attach_pending(att) == 0);
	FUZZ_CHECK(mgr->count == 0);
	fuzz_check_fds(baseline_fds);
	return 0;
}
