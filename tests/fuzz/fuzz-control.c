/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "control": the bytes are what one client writes to the
 * control socket (broker/control.c) before it shuts down its sending side:
 * request lines, partial lines, NULs, oversized lines, pipelined
 * requests. The server runs on the broker's loop, pumped here, with a
 * session manager holding two fake sessions (tests/fake-session.h) so
 * status, agents, rules, watch, metrics and reload (of an unchanged config
 * file) have something to report. Invariants: never a crash or leak; every
 * client is gone again after it hangs up; no fd leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"

/* fake-session.h is written for cmocka tests. */
#define assert_non_null(x) FUZZ_CHECK((x) != NULL)
#define assert_int_equal(a, b) FUZZ_CHECK((a) == (b))
#include "fake-session.h"

#include "config.h"
#include "control.h"
#include "errs.h"
#include "loop.h"
#include "fuzz-loop.h"

static const char config_text[] =
	"{\"broker\": {\"listen\": \"/nonexistent/a.sock\"},"
	" \"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"web\"}],"
	" \"policies\": {"
	"  \"web\": {\"default\": \"drop\", \"rules\": ["
	"    {\"name\": \"dns\", \"match\": {\"proto\": \"udp\", \"dport\": 53}, \"verdict\": \"accept\"},"
	"    {\"name\": \"ssh\", \"match\": {\"proto\": \"tcp\", \"dport\": 22}, \"verdict\": \"accept\"}]},"
	"  \"open\": {\"default\": \"accept\", \"rules\": []}}}\n";

static char dir[] = "/tmp/fuzz-control-XXXXXX", sock_path[108], cfg_path[108];
static struct loop *loop;
static struct session_mgr *mgr;
static struct control *ctl;
static int baseline_fds;

static void cleanup(void)
{
	control_free(ctl);
	session_mgr_free(mgr);
	loop_free(loop);
	unlink(cfg_path);
	snprintf(sock_path, sizeof(sock_path), "%s/run", dir);
	rmdir(sock_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint16_t qa[] = { 1 }, qb[] = { 2, 3 };
	struct errs e = { 0 };
	char why[256];
	struct cfg *cfg;
	FILE *f;

	FUZZ_CHECK(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/run/control.sock", dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/broker.json", dir);
	f = fopen(cfg_path, "w");
	FUZZ_CHECK(f && fputs(config_text, f) >= 0 && fclose(f) == 0);
	loop = loop_new();
	FUZZ_CHECK(loop);
	fuzz_pump_init(loop);
	cfg = cfg_load(cfg_path, &e);
	FUZZ_CHECK(cfg);
	mgr = session_mgr_new(loop, cfg);
	FUZZ_CHECK(mgr);
	fake_session_queues(mgr, "pod-a", "web", 11, qa, 1);
	fake_session_queues(mgr, "pod-b", "open", 22, qb, 2);
	ctl = control_new(mgr, cfg_path, sock_path, 0600, why, sizeof(why));
	FUZZ_CHECK(ctl);
	atexit(cleanup);
	return 0;
}

/* Read what the server sent: bytes read, -1 at EOF. */
static ssize_t read_replies(int sock)
{
	char buf[65536];
	ssize_t n, total = 0;

	for (;;) {
		n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			total += n;
			continue;
		}
		if (n == 0)
			return -1;
		FUZZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET);
		return errno == ECONNRESET ? -1 : total;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t off = 0;
	int sock, quiet = 0;
	ssize_t n;

	/* Taken at the first input: libFuzzer opens fds after initialization. */
	if (!baseline_fds)
		baseline_fds = fuzz_count_fds();
	if (size > 3 * CONTROL_REQ_MAX)
		return -1;
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_CHECK(sock >= 0);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	FUZZ_CHECK(connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (size == 0)
		shutdown(sock, SHUT_WR);
	/* Write what the socket takes, pumping the server in between, until
	 * it hangs up or (a watcher) goes quiet. */
	for (int i = 0; i < 2000 && quiet < 3; i++) {
		if (off < size) {
			n = send(sock, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				off = size;  /* the server hung up (line too long) */
			if (off == size)
				shutdown(sock, SHUT_WR);
		}
		fuzz_pump(loop);
		n = read_replies(sock);
		if (n < 0)
			break;
		quiet = off == size && n == 0 ? quiet + 1 : 0;
	}
	/* A watcher stays until it hangs up: then it is dropped too. */
	close(sock);
	for (int i = 0; i < 20 && control_clients(ctl); i++)
		fuzz_pump(loop);
	FUZZ_CHECK(control_clients(ctl) == 0);
	FUZZ_CHECK(control_watchers(ctl) == 0);
	FUZZ_CHECK(mgr->count == 2);
	fuzz_check_fds(baseline_fds);
	return 0;
}
