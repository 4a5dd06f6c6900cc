/* SPDX-License-Identifier: MIT */
/*
 * hostile-agent: an agent that misuses the copy of the netfilter socket it
 * keeps after handing it to nfq-broker (issue 9). Run it inside the
 * namespace (nsenter -n): it opens the sockets there, hands them over with
 * nfqb_agent_attach() and, depending on --mode:
 *
 *   full   connect()s its copy to a netlink socket of its own whose receive
 *          buffer is tiny and filled (never read)
 *   empty  connect()s its copy to a netlink socket of its own, never read
 *   steal  reads its copy (two real-time child processes asleep in recv)
 *          while the broker binds
 *
 * --when before: the misuse starts before the hello; after: once served,
 * before the bye. --ready-file is created when the misuse is in effect.
 * After the hand-off it holds for --hold-ms (or until the broker ends the
 * lease), says bye, creates READY.bye and keeps its target socket for
 * --linger-ms more (a broker that follows the connected address is stuck
 * for as long). It prints one line:
 *
 *   result=refused reason=...    the broker refused the hello
 *   result=released reason=...   the broker ended the lease with a reason
 *   result=held                  still served after --hold-ms (then bye)
 *
 * Exit: 0 ran to a result, 1 runtime error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/netlink.h>

#include <nfqb/agent.h>

struct opts {
	const char *broker, *name, *mode, *when, *ready;
	int hold_ms, linger_ms;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hostile-agent --broker SOCK --name NAME --mode full|empty|steal\n"
		   "                     --when before|after [--hold-ms MS] [--linger-ms MS]\n"
		   "                     [--ready-file F]\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "broker", 1, NULL, 'b' }, { "name", 1, NULL, 'n' },
		{ "mode", 1, NULL, 'm' }, { "when", 1, NULL, 'w' },
		{ "hold-ms", 1, NULL, 'h' }, { "ready-file", 1, NULL, 'r' },
		{ "linger-ms", 1, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .hold_ms = 3000 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'b': o->broker = optarg; break;
		case 'n': o->name = optarg; break;
		case 'm': o->mode = optarg; break;
		case 'w': o->when = optarg; break;
		case 'h': o->hold_ms = atoi(optarg); break;
		case 'r': o->ready = optarg; break;
		case 'l': o->linger_ms = atoi(optarg); break;
		default: return -1;
		}
	}
	if (!o->broker || !o->name || !o->mode || !o->when || o->hold_ms < 0 ||
	    o->linger_ms < 0)
		return -1;
	if (strcmp(o->mode, "full") && strcmp(o->mode, "empty") && strcmp(o->mode, "steal"))
		return -1;
	if (strcmp(o->when, "before") && strcmp(o->when, "after"))
		return -1;
	return 0;
}

static void ready(const struct opts *o, const char *suffix)
{
	char path[4096];
	int fd;

	if (!o->ready)
		return;
	snprintf(path, sizeof(path), "%s%s", o->ready, suffix);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, "ready\n", 6) != 6)
			perror("hostile-agent: ready file");
		close(fd);
	}
}

/* A netlink socket of our own in this namespace, never read, its receive
 * buffer as small as the kernel allows. Returns its fd. */
static int target_new(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int t = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	int small = 1;

	if (t < 0 || bind(t, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	(void)setsockopt(t, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	return t;
}

/* @fd connected to a new target socket; with @full that socket's buffer
 * is filled through @fd (what made the broker's plain send() block). */
static int hijack(int fd, bool full)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);
	struct nlmsghdr junk = { .nlmsg_len = sizeof(junk), .nlmsg_type = NLMSG_NOOP };
	int t = target_new(), n = 0;

	if (t < 0 || getsockname(t, (struct sockaddr *)&sa, &len) < 0) {
		perror("hostile-agent: target socket");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("hostile-agent: connect");
		return -1;
	}
	while (full && n < 100000 && send(fd, &junk, sizeof(junk), MSG_DONTWAIT) > 0)
		n++;
	printf("connected target_portid=%u filled=%d\n", sa.nl_pid, n);
	fflush(stdout);
	return t;    /* kept open (and unread) until we exit */
}

/*
 * A child reading our copy of the socket. The kernel queues its answer to
 * the broker inside the broker's own send, and the broker reads it a few
 * microseconds later without sleeping in between: a thief of normal
 * priority rarely gets a CPU in that window on a busy machine. Asleep in
 * recv() with a real-time priority (the test runs as root), it is woken by
 * that very answer and preempts the broker first.
 */
static pid_t thief(int fd)
{
	struct sched_param sp = { .sched_priority = 10 };
	char buf[65536];
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid != 0) {
		/* Waiting before the hello goes out: binding all queues takes
		 * the broker a millisecond or two. */
		close(p[1]);
		if (pid > 0 && read(p[0], buf, 1) != 1)
			perror("hostile-agent: thief");
		close(p[0]);
		return pid;
	}
	close(p[0]);
	if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
		perror("hostile-agent: thief priority (racing at normal priority)");
	if (write(p[1], "x", 1) != 1)
		_exit(1);
	close(p[1]);
	/* Errors (ENOBUFS after an overrun, ...) do not stop it: killed at the end. */
	for (;;)
		(void)recv(fd, buf, sizeof(buf), 0);
}

#define THIEVES 2

static void thieves_stop(pid_t t[THIEVES])
{
	for (int i = 0; i < THIEVES; i++) {
		if (t[i] > 0) {
			kill(t[i], SIGKILL);
			waitpid(t[i], NULL, 0);
		}
		t[i] = -1;
	}
}

/* The printable text of a REFUSE (its reason) from the lease. */
static bool lease_reason(int lease, int ms, char *why, size_t len)
{
	struct pollfd p = { .fd = lease, .events = POLLIN };
	char buf[1024];
	ssize_t n;
	size_t k = 0;

	if (poll(&p, 1, ms) != 1)
		return false;
	n = recv(lease, buf, sizeof(buf), MSG_DONTWAIT);
	if (n <= 0) {
		snprintf(why, len, "lease closed without a reason");
		return true;
	}
	/* header, then the NUL-terminated reason: keep the longest text run */
	for (ssize_t i = 0, start = 0; i <= n; i++) {
		if (i == n || buf[i] < 0x20 || buf[i] > 0x7e) {
			if ((size_t)(i - start) > k && (size_t)(i - start) < len) {
				k = (size_t)(i - start);
				memcpy(why, buf + start, k);
				why[k] = '\0';
			}
			start = i + 1;
		}
	}
	if (!k)
		snprintf(why, len, "(no reason)");
	return true;
}

int main(int argc, char **argv)
{
	struct opts o;
	int fds[2] = { -1, -1 }, lease, target = -1;
	pid_t child[THIEVES] = { -1, -1 };
	char why[512];
	bool before;

	if (parse(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	before = strcmp(o.when, "before") == 0;
	if (nfqb_agent_open_sockets(NULL, true, fds) < 0) {
		perror("hostile-agent: open sockets");
		return 1;
	}
	if (before) {
		if (strcmp(o.mode, "steal") == 0)
			for (int i = 0; i < THIEVES; i++)
				child[i] = thief(fds[0]);
		else if ((target = hijack(fds[0], strcmp(o.mode, "full") == 0)) < 0)
			return 1;
		ready(&o, "");
	}
	lease = nfqb_agent_attach(o.broker, o.name, fds, 2, why, sizeof(why));
	thieves_stop(child);
	if (lease < 0) {
		printf("result=refused reason=%s\n", why);
		return 0;
	}
	if (!before) {
		if (strcmp(o.mode, "steal") == 0)
			for (int i = 0; i < THIEVES; i++)
				child[i] = thief(fds[0]);
		else if ((target = hijack(fds[0], strcmp(o.mode, "full") == 0)) < 0)
			return 1;
		ready(&o, "");
	}
	if (lease_reason(lease, o.hold_ms, why, sizeof(why)))
		printf("result=released reason=%s\n", why);
	else
		printf("result=held\n");
	thieves_stop(child);
	fflush(stdout);
	nfqb_agent_detach(lease);
	ready(&o, ".bye");
	if (o.linger_ms)
		poll(NULL, 0, o.linger_ms);
	if (target >= 0)
		close(target);
	return 0;
}
