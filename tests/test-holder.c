/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nfq-holder (holder/): the socket's request and reply
 * messages (every verb, round trips, and each bad input with its exact
 * reason), the state file it keeps per namespace (the broker recorded,
 * torn and foreign files), and adoption at start (a dead agent planned for
 * a restart, an unreadable record dropped).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "holder.h"
#include "clock.h"
#include "fake-agent.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-holder-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#define HOLD "HOLD\ncid=abc123\nnet=net1\nifname=eth0\nname=kube-system/web\nnetns=/run/netns/x\nbroker=/run/b.sock\n"

static int parse(const char *msg, struct holder_req *r, char *why, size_t whylen)
{
	return holder_req_parse(msg, strlen(msg), r, why, whylen);
}

static void test_parse_hold(void **state)
{
	struct holder_req r;
	char why[256];

	(void)state;
	assert_int_equal(parse(HOLD "timeout_ms=1500\n", &r, why, sizeof(why)), 0);
	assert_int_equal(r.verb, HOLDER_HOLD);
	assert_string_equal(r.cid, "abc123");
	assert_string_equal(r.net, "net1");
	assert_string_equal(r.ifname, "eth0");
	assert_string_equal(r.name, "kube-system/web");
	assert_string_equal(r.netns, "/run/netns/x");
	assert_string_equal(r.broker, "/run/b.sock");
	assert_int_equal(r.timeout_ms, 1500);
	/* no trailing newline, the default timeout */
	assert_int_equal(holder_req_parse(HOLD, strlen(HOLD) - 1, &r, why, sizeof(why)), 0);
	assert_int_equal(r.timeout_ms, DEFAULT_ATTACH_TIMEOUT_MS);
	assert_string_equal(r.broker, "/run/b.sock");
}

static void test_parse_other_verbs(void **state)
{
	struct holder_req r;
	char why[256];

	(void)state;
	assert_int_equal(parse("RELEASE\ncid=a\nnet=n\n", &r, why, sizeof(why)), 0);
	assert_int_equal(r.verb, HOLDER_RELEASE);
	assert_string_equal(r.ifname, "");
	assert_int_equal(parse("RELEASE\ncid=a\nnet=n\nifname=eth1\n", &r, why, sizeof(why)), 0);
	assert_string_equal(r.ifname, "eth1");
	assert_int_equal(parse("CHECK\ncid=a\nnet=n\nifname=eth0\nnetns=/x\n", &r, why, sizeof(why)), 0);
	assert_int_equal(r.verb, HOLDER_CHECK);
	assert_int_equal(parse("GC\nnet=n\nvalid=a eth0\nvalid=b.2 eth1\n", &r, why, sizeof(why)), 0);
	assert_int_equal(r.verb, HOLDER_GC);
	assert_int_equal(r.n_valid, 2);
	assert_string_equal(r.valid[1].cid, "b.2");
	assert_string_equal(r.valid[1].ifname, "eth1");
	holder_req_clear(&r);
	assert_null(r.valid);
	assert_int_equal(parse("GC\nnet=n\n", &r, why, sizeof(why)), 0);
	assert_int_equal(r.n_valid, 0);
}

static void test_round_trip(void **state)
{
	struct holder_req r = { .verb = HOLDER_HOLD, .timeout_ms = 2500 }, back;
	struct holder_valid v[2] = { { "c1", "eth0" }, { "c2", "eth1" } };
	char buf[4096], why[256];
	ssize_t n;

	(void)state;
	snprintf(r.cid, sizeof(r.cid), "c0ffee");
	snprintf(r.net, sizeof(r.net), "net-a");
	snprintf(r.ifname, sizeof(r.ifname), "net1");
	snprintf(r.name, sizeof(r.name), "ns/pod name");
	snprintf(r.netns, sizeof(r.netns), "/var/run/netns/cni-1");
	snprintf(r.broker, sizeof(r.broker), "/run/nfq-broker/agent.sock");
	n = holder_req_format(&r, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(holder_req_parse(buf, (size_t)n, &back, why, sizeof(why)), 0);
	assert_string_equal(back.name, "ns/pod name");
	assert_string_equal(back.netns, r.netns);
	assert_int_equal(back.timeout_ms, 2500);
	/* GC with its list */
	memset(&r, 0, sizeof(r));
	r.verb = HOLDER_GC;
	snprintf(r.net, sizeof(r.net), "n");
	r.valid = v;
	r.n_valid = 2;
	n = holder_req_format(&r, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(holder_req_parse(buf, (size_t)n, &back, why, sizeof(why)), 0);
	assert_int_equal(back.n_valid, 2);
	assert_string_equal(back.valid[0].cid, "c1");
	holder_req_clear(&back);
	/* too small a buffer */
	assert_int_equal(holder_req_format(&r, buf, 10), -ENOSPC);
}

static void expect_bad(const char *msg, const char *reason)
{
	struct holder_req r;
	char why[256];

	if (parse(msg, &r, why, sizeof(why)) != -EINVAL)
		fail_msg("accepted: %s", msg);
	assert_string_equal(why, reason);
	assert_null(r.valid);
}

static void test_bad_requests(void **state)
{
	char big[300], msg[600];

	(void)state;
	expect_bad("", "empty request");
	expect_bad("FROB\ncid=a\n", "unknown verb \"FROB\"");
	expect_bad("hold\n", "unknown verb \"hold\"");
	expect_bad("HOLD\ncid=a\n", "HOLD: missing net");
	expect_bad("HOLD\ncid=a\nnet=n\nifname=e\nname=x\nnetns=/n\n", "HOLD: missing broker");
	expect_bad(HOLD "color=red\n", "HOLD: unknown key \"color\"");
	expect_bad("RELEASE\ncid=a\nnet=n\nname=x\n", "RELEASE: unknown key \"name\"");
	expect_bad("RELEASE\ncid=a\nnet=n\ntimeout_ms=200\n", "RELEASE: unknown key \"timeout_ms\"");
	expect_bad("GC\nnet=n\ncid=a\n", "GC: unknown key \"cid\"");
	expect_bad(HOLD "cid=b\n", "cid: given twice");
	expect_bad(HOLD "timeout_ms=1\n", "timeout_ms: must be an integer 100-600000");
	expect_bad(HOLD "timeout_ms=5s\n", "timeout_ms: must be an integer 100-600000");
	expect_bad(HOLD "timeout_ms=99999999999999999999\n", "timeout_ms: must be an integer 100-600000");
	expect_bad(HOLD "timeout_ms=1000\ntimeout_ms=1000\n", "timeout_ms: given twice");
	expect_bad(HOLD "novalue\n", "line 8: not key=value");
	expect_bad(HOLD "=x\n", "line 8: not key=value");
	expect_bad("HOLD\ncid=../etc\nnet=n\nifname=e\nname=x\nnetns=/n\nbroker=/b\n",
		   "cid: \"../etc\" is not a valid container id");
	expect_bad("HOLD\ncid=a\nnet=n\nifname=e\nname=x\nnetns=run/n\nbroker=/b\n",
		   "netns: \"run/n\" is not an absolute path");
	expect_bad("HOLD\ncid=a\nnet=n\nifname=e\nname=x\nnetns=/n\nbroker=b.sock\n",
		   "broker: \"b.sock\" is not an absolute path");
	expect_bad("HOLD\ncid=a\nnet=n\nifname=\nname=x\nnetns=/n\nbroker=/b\n", "ifname: empty");
	expect_bad("HOLD\ncid=a\nnet=n\nifname=e\nname=\nnetns=/n\nbroker=/b\n", "name: empty");
	expect_bad("RELEASE\ncid=a\nnet=\n", "net: empty");
	expect_bad("HOLD\ncid=a\tb\n", "control byte 0x09 at offset 10");
	expect_bad("GC\nnet=n\nvalid=a\n", "valid: \"a\" is not \"CONTAINERID IFNAME\"");
	expect_bad("GC\nnet=n\nvalid=a \n", "valid: \"a \" is not \"CONTAINERID IFNAME\"");
	expect_bad("GC\nnet=n\nvalid=../x eth0\n", "valid: \"../x eth0\" is not \"CONTAINERID IFNAME\"");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(msg, sizeof(msg), "RELEASE\ncid=a\nnet=%s\n", big);
	expect_bad(msg, "net: longer than 127 bytes");
	/* one byte past the limit */
	{
		char *huge = malloc(HOLDER_MSG_MAX + 1);
		struct holder_req r;
		char why[128];

		assert_non_null(huge);
		memset(huge, 'a', HOLDER_MSG_MAX + 1);
		assert_int_equal(holder_req_parse(huge, HOLDER_MSG_MAX + 1, &r, why, sizeof(why)), -EINVAL);
		assert_string_equal(why, "request longer than 65536 bytes");
		free(huge);
	}
}

static void test_gc_list_limit(void **state)
{
	size_t len = 16 + (HOLDER_VALID_MAX + 1) * 16, used;
	char *msg = malloc(len), why[128];
	struct holder_req r;

	(void)state;
	assert_non_null(msg);
	used = (size_t)snprintf(msg, len, "GC\nnet=n\n");
	for (int i = 0; i <= HOLDER_VALID_MAX; i++)
		used += (size_t)snprintf(msg + used, len - used, "valid=c%d e\n", i);
	assert_int_equal(holder_req_parse(msg, used, &r, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "valid: more than 1024 entries");
	assert_null(r.valid);
	free(msg);
}

static void test_replies(void **state)
{
	struct cni_err e = { .code = CNI_ERR_REFUSED, .msg = "broker refused\nthe agent", .details = "why" }, back;
	char buf[4096];
	ssize_t n;

	(void)state;
	n = holder_reply_format(NULL, buf, sizeof(buf));
	assert_int_equal(n, 3);
	assert_int_equal(holder_reply_parse(buf, (size_t)n, &back), 0);
	n = holder_reply_format(&e, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(holder_reply_parse(buf, (size_t)n, &back), 1);
	assert_int_equal(back.code, CNI_ERR_REFUSED);
	/* a newline in a message would end the line: sent as a space */
	assert_string_equal(back.msg, "broker refused the agent");
	assert_string_equal(back.details, "why");
	assert_int_equal(holder_reply_parse("okay", 4, &back), -EINVAL);
	assert_int_equal(holder_reply_parse("error\nmsg=x\n", 12, &back), -EINVAL);
	assert_int_equal(holder_reply_parse("error\ncode=zz\n", 14, &back), -EINVAL);
	assert_int_equal(holder_reply_parse("", 0, &back), -EINVAL);
	assert_int_equal(holder_reply_format(&e, buf, 8), -ENOSPC);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_state_file(void **state)
{
	struct state s = { .pid = 4242, .start = 99 }, back;
	char path[160];

	(void)state;
	snprintf(path, sizeof(path), "%s/c1.json", dir);
	snprintf(s.name, sizeof(s.name), "ns/pod");
	snprintf(s.netns, sizeof(s.netns), "/run/netns/a");
	snprintf(s.broker, sizeof(s.broker), "/run/b.sock");
	state_att_add(&s, "n1", "eth0");
	state_att_add(&s, "n2", "eth1");
	assert_int_equal(state_write(path, &s), 0);
	assert_int_equal(state_read(path, &back), 0);
	assert_int_equal(back.pid, 4242);
	assert_int_equal(back.start, 99);
	assert_string_equal(back.broker, "/run/b.sock");
	assert_string_equal(back.netns, "/run/netns/a");
	assert_int_equal(back.n_att, 2);
	assert_string_equal(back.att[1].ifname, "eth1");
	/* no leftover temporary file: written, then renamed */
	snprintf(path, sizeof(path), "%s/c1.json.tmp", dir);
	assert_int_equal(access(path, F_OK), -1);
	/* a torn or foreign file is unreadable, not half-read */
	snprintf(path, sizeof(path), "%s/c2.json", dir);
	write_file(path, "{\"pid\":12,\"starttime\":");
	assert_int_equal(state_read(path, &back), -EINVAL);
	write_file(path, "{\"pid\":\"12\",\"starttime\":1,\"name\":\"x\"}");
	assert_int_equal(state_read(path, &back), -EINVAL);
	write_file(path, "[]");
	assert_int_equal(state_read(path, &back), -EINVAL);
	snprintf(path, sizeof(path), "%s/c3.json", dir);
	assert_int_equal(state_read(path, &back), -ENOENT);
}

/* At start: a record whose agent is gone gets a restart planned now; an
 * unreadable one is dropped with its files; a record without broker or
 * attachments could not be restarted and is dropped too. */
static void test_adopt(void **state)
{
	struct holder hd = { .agent = "/bin/false" };
	struct state s = { .pid = 0x7ffffff0, .start = 1 };
	char path[160], sub[96];
	struct held *h;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/adopt", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	hd.state_dir = sub;
	snprintf(s.name, sizeof(s.name), "ns/dead");
	snprintf(s.netns, sizeof(s.netns), "/run/netns/gone");
	snprintf(s.broker, sizeof(s.broker), "/run/b.sock");
	state_att_add(&s, "n1", "eth0");
	snprintf(path, sizeof(path), "%s/dead1.json", sub);
	assert_int_equal(state_write(path, &s), 0);
	snprintf(path, sizeof(path), "%s/torn1.json", sub);
	write_file(path, "{\"pid\":");
	s.broker[0] = '\0';
	snprintf(path, sizeof(path), "%s/nobroker.json", sub);
	assert_int_equal(state_write(path, &s), 0);
	snprintf(path, sizeof(path), "%s/..bad.json", sub);
	write_file(path, "{}");

	assert_int_equal(held_adopt_all(&hd, 1000), 1);
	h = held_find(&hd, "dead1");
	assert_non_null(h);
	assert_int_equal(h->pidfd, -1);
	assert_int_equal(h->restart_at, 1000);
	assert_string_equal(h->s.broker, "/run/b.sock");
	snprintf(path, sizeof(path), "%s/torn1.json", sub);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/nobroker.json", sub);
	assert_int_equal(access(path, F_OK), -1);
	/* not a container id: not ours to read or remove */
	snprintf(path, sizeof(path), "%s/..bad.json", sub);
	assert_int_equal(access(path, F_OK), 0);
	/* a second scan adds nothing */
	assert_int_equal(held_adopt_all(&hd, 2000), 1);
	held_free(&hd, h);
	assert_int_equal(hd.n_held, 0);
	held_free(&hd, NULL);
	free(hd.held);
}

/* The restart backoff doubles up to its cap and starts over after an
 * agent that served long enough. */
static void test_backoff(void **state)
{
	struct held h = { .backoff_ms = HOLDER_BACKOFF_MIN_MS, .pidfd = -1 };
	int64_t now = 100000;

	(void)state;
	snprintf(h.cid, sizeof(h.cid), "b1");
	h.started_ms = now - 10;
	held_schedule(&h, now);
	assert_int_equal(h.restart_at, now + 100);
	held_schedule(&h, now);
	assert_int_equal(h.restart_at, now + 200);
	for (int i = 0; i < 10; i++)
		held_schedule(&h, now);
	assert_int_equal(h.restart_at, now + HOLDER_BACKOFF_MAX_MS);
	h.started_ms = now - HOLDER_STABLE_MS;
	held_schedule(&h, now);
	assert_int_equal(h.restart_at, now + HOLDER_BACKOFF_MIN_MS);
}


/* ------------------------------------------------------------------ serving */


struct fixture {
	struct server sv;
	char sdir[96], agent[96];
};

static struct fixture *fx_new(const char *name)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	assert_non_null(f);
	snprintf(f->sdir, sizeof(f->sdir), "%s/%s", dir, name);
	snprintf(f->agent, sizeof(f->agent), "%s/fake-agent-%s", dir, name);
	assert_int_equal(mkdir(f->sdir, 0700), 0);
	fd = open(f->agent, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, fake_agent, strlen(fake_agent)), (ssize_t)strlen(fake_agent));
	close(fd);
	f->sv.hd.state_dir = f->sdir;
	f->sv.hd.agent = f->agent;
	setenv("FAKE_AGENT_MODE", "attached", 1);
	return f;
}

/* Stop what is left (as a holder would never do: its agents outlive it). */
static void fx_free(struct fixture *f)
{
	while (f->sv.hd.n_held) {
		struct held *h = f->sv.hd.held[0];

		if (h->pidfd >= 0) {
			kill(h->s.pid, SIGKILL);
			waitpid(h->s.pid, NULL, 0);
		}
		held_free(&f->sv.hd, h);
	}
	free(f->sv.hd.held);
	serve_shutdown(&f->sv);
	free(f);
}

/* The loop's part: agent exits, timers, waiters, until @cfd has an answer
 * (then it is read into @ans), or without @cfd (-1) until nothing is held,
 * or @ms passed. Returns whether that came. */
static bool pump(struct fixture *f, int cfd, int ms, char *ans, size_t len)
{
	int64_t end = clock_now_ms() + ms;

	while (clock_now_ms() < end) {
		int64_t now = clock_now_ms();
		struct pollfd p = { .fd = cfd, .events = POLLIN };

		for (size_t i = f->sv.hd.n_held; i-- > 0; ) {
			struct pollfd q = { .fd = f->sv.hd.held[i]->pidfd, .events = POLLIN };

			if (q.fd >= 0 && poll(&q, 1, 0) == 1)
				serve_agent_exited(&f->sv, f->sv.hd.held[i], now);
		}
		held_timers(&f->sv.hd, now);
		serve_tick(&f->sv, now);
		if (cfd >= 0 && poll(&p, 1, 10) == 1) {
			ssize_t n = recv(cfd, ans, len - 1, MSG_DONTWAIT);

			ans[n > 0 ? n : 0] = '\0';
			return true;
		}
		if (cfd < 0 && f->sv.hd.n_held == 0)
			return true;
		if (cfd < 0)
			clock_sleep_ms(10);
	}
	return false;
}

/* Send @msg as a client would; the answer in @ans. */
static void ask(struct fixture *f, const char *msg, char *ans, size_t len)
{
	struct holder_req r;
	char why[256];
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	if (holder_req_parse(msg, strlen(msg), &r, why, sizeof(why)) < 0)
		fail_msg("bad test request: %s", why);
	serve_request(&f->sv, sp[1], &r, clock_now_ms());
	holder_req_clear(&r);
	if (!pump(f, sp[0], 8000, ans, len))
		fail_msg("no answer to %s", msg);
	close(sp[0]);
}

#define HOLD_A "HOLD\ncid=ca\nnet=n\nifname=eth0\nname=p\nnetns=/proc/self/ns/net\nbroker=/b\ntimeout_ms=3000\n"

static void test_serve_hold_release(void **state)
{
	struct fixture *f = fx_new("hr");
	char ans[4096], path[256];
	struct state s;
	struct held *h;
	pid_t pid;

	(void)state;
	ask(f, HOLD_A, ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	h = held_find(&f->sv.hd, "ca");
	assert_non_null(h);
	snprintf(path, sizeof(path), "%s/ca.json", f->sdir);
	assert_int_equal(state_read(path, &s), 0);
	assert_int_equal(s.pid, h->s.pid);
	assert_string_equal(s.broker, "/b");
	pid = h->s.pid;
	/* a second network: the same agent, answered at once */
	ask(f, "HOLD\ncid=ca\nnet=m\nifname=eth1\nname=other\nnetns=/proc/self/ns/net\nbroker=/b\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	assert_int_equal(h->s.pid, pid);
	assert_int_equal(h->s.n_att, 2);
	assert_string_equal(h->s.name, "p");
	/* CHECK: the right and the wrong ones */
	ask(f, "CHECK\ncid=ca\nnet=n\nifname=eth0\nnetns=/proc/self/ns/net\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	ask(f, "CHECK\ncid=zz\nnet=n\nifname=eth0\nnetns=/x\n", ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=1002\nmsg=no agent recorded for container zz\ndetails=\n");
	ask(f, "CHECK\ncid=ca\nnet=n\nifname=eth9\nnetns=/x\n", ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=1002\nmsg=container ca has no attachment on network n interface eth9\ndetails=\n");
	ask(f, "CHECK\ncid=ca\nnet=n\nifname=eth0\nnetns=/x\n", ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=1002\nmsg=agent for container ca serves /proc/self/ns/net, not CNI_NETNS /x\ndetails=\n");
	/* RELEASE of one: the agent stays; of the last: it goes, its log stays */
	ask(f, "RELEASE\ncid=ca\nnet=m\nifname=eth1\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	assert_int_equal(kill(pid, 0), 0);
	ask(f, "RELEASE\ncid=ca\nnet=n\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	assert_null(held_find(&f->sv.hd, "ca"));
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* reaped already */
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/logs/p.1.log", f->sdir);
	assert_int_equal(access(path, F_OK), 0);
	/* RELEASE again: nothing to do, still ok */
	ask(f, "RELEASE\ncid=ca\nnet=n\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	fx_free(f);
}

static void test_serve_failures(void **state)
{
	struct fixture *f = fx_new("fail");
	char ans[4096], path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/ca.json", f->sdir);
	setenv("FAKE_AGENT_MODE", "refused", 1);
	ask(f, HOLD_A, ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=999\nmsg=broker refused the agent: no namespaces entry matches name \"p\"\ndetails=\n");
	/* The answer may come from the agent's status file while the agent
	 * is still on its way out: it is stopped, and forgotten once it exited. */
	pump(f, -1, 2000, ans, sizeof(ans));
	assert_int_equal(f->sv.hd.n_held, 0);
	assert_int_equal(access(path, F_OK), -1);
	setenv("FAKE_AGENT_MODE", "exit", 1);
	ask(f, HOLD_A, ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=1000\nmsg=nfq-agent exited with status 3\ndetails=fake: boom\n");
	assert_int_equal(f->sv.hd.n_held, 0);
	setenv("FAKE_AGENT_MODE", "retry", 1);
	ask(f, "HOLD\ncid=ca\nnet=n\nifname=eth0\nname=p\nnetns=/proc/self/ns/net\nbroker=/b\ntimeout_ms=300\n",
	    ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=11\nmsg=broker not reachable at /b: waited 300 ms, the agent made 3 attempts\n"
			    "details=no broker socket at /x\n");
	/* the agent is being stopped: gone once it exited */
	pump(f, -1, 2000, ans, sizeof(ans));
	assert_int_equal(f->sv.hd.n_held, 0);
	assert_int_equal(access(path, F_OK), -1);
	/* an agent program that cannot run */
	f->sv.hd.agent = "/nonexistent/nfq-agent";
	ask(f, HOLD_A, ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=1000\nmsg=cannot run nfq-agent /nonexistent/nfq-agent: No such file or directory\ndetails=\n");
	assert_int_equal(f->sv.hd.n_held, 0);
	fx_free(f);
}

/* A killed agent is restarted after the backoff; GC drops what is not valid. */
static void test_serve_restart_gc(void **state)
{
	struct fixture *f = fx_new("rs");
	char ans[4096];
	struct held *h;
	pid_t first;

	(void)state;
	ask(f, HOLD_A, ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	h = held_find(&f->sv.hd, "ca");
	first = h->s.pid;
	kill(first, SIGKILL);
	for (int i = 0; i < 100 && (h->restarts == 0 || h->pidfd < 0); i++)
		pump(f, -1, 20, ans, sizeof(ans));
	assert_int_equal(h->restarts, 1);
	assert_true(h->s.pid != first);
	assert_true(h->pidfd >= 0);
	assert_int_equal(h->exit_status & 0x7f, SIGKILL);
	/* the broker away: a repeated ADD fails but ends nothing */
	write_file(h->p.status, "state=retrying\nattempts=2\nreason=gone\n");
	ask(f, "HOLD\ncid=ca\nnet=n\nifname=eth0\nname=p\nnetns=/proc/self/ns/net\nbroker=/b\ntimeout_ms=200\n",
	    ans, sizeof(ans));
	assert_string_equal(ans, "error\ncode=11\nmsg=broker not reachable at /b: waited 200 ms, the agent made 2 attempts\n"
			    "details=gone\n");
	assert_int_equal(h->s.n_att, 1);
	assert_false(h->stopping);
	assert_int_equal(kill(h->s.pid, 0), 0);
	write_file(h->p.status, "state=attached\nattempts=3\nreason=\n");
	/* GC: eth0 valid, eth1 not */
	ask(f, "HOLD\ncid=ca\nnet=n\nifname=eth1\nname=p\nnetns=/proc/self/ns/net\nbroker=/b\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	ask(f, "GC\nnet=other\n", ans, sizeof(ans));
	assert_int_equal(h->s.n_att, 2);
	ask(f, "GC\nnet=n\nvalid=ca eth0\n", ans, sizeof(ans));
	assert_string_equal(ans, "ok\n");
	assert_int_equal(h->s.n_att, 1);
	assert_string_equal(h->s.att[0].ifname, "eth0");
	ask(f, "GC\nnet=n\n", ans, sizeof(ans));
	pump(f, -1, 2000, ans, sizeof(ans));
	assert_int_equal(f->sv.hd.n_held, 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_hold),
		cmocka_unit_test(test_parse_other_verbs),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_gc_list_limit),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_serve_hold_release),
		cmocka_unit_test(test_serve_failures),
		cmocka_unit_test(test_serve_restart_gc),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
