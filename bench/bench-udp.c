/* SPDX-License-Identifier: MIT */
/*
 * bench-udp - the traffic side of scripts/bench (tests/netns/workers.sh runs
 * its echo and ping too).
 *
 *   bench-udp drain --pid PID [--netns PATH]... [--addr A] [--port P]
 *                   [--count N] [--size S] [--timeout-ms MS]
 *       The drain method of issue 13. In each namespace given (default: the
 *       current one) a sink bound to A:P and a sender; the consumer PID is
 *       stopped (SIGSTOP), N datagrams of S bytes are sent in each namespace
 *       (an NFQUEUE rule of the caller's holds them in the queue), then PID
 *       is resumed alone (SIGCONT). Prints, on one line, the time from the
 *       resume to the last datagram at the sinks (its kernel receive time,
 *       SO_TIMESTAMPNS; the sinks read nothing until every namespace's
 *       /proc/net/netfilter/nfnetlink_queue shows its queues empty, polled
 *       once a millisecond, so they take no CPU from the consumer) and the
 *       consumer's CPU time until the queues were seen empty (sum of
 *       /proc/PID/task/<tid>/schedstat run times, ns: utime+stime at
 *       nanosecond resolution, every thread counted).
 *         drain packets=.. seconds=.. pps=.. cpu_ns=.. cpu_ns_per_pkt=..
 *               sink_cpu_ns=.. cores_busy=..
 *       (cores_busy: the consumer's and the sink's CPU over the span, in
 *       CPUs: at the machine's CPU count the drain is CPU-bound.)
 *   bench-udp echo --addr A --port P [--ready-file F]
 *       Send every datagram back to where it came from, until killed.
 *   bench-udp ping --addr A --port P [--count N] [--size S] [--warmup W]
 *       N sequential request/reply round trips (SIGINT/SIGTERM end them
 *       early; the request in flight then is not counted); prints
 *         ping n=.. lost=.. p50_us=.. p99_us=.. mean_us=..
 *   bench-udp flow --addr A --port P [--count N] [--size S] [--window W]
 *       Steady traffic to a sink of its own on A:P, at most W datagrams in
 *       flight; datagrams not back within 200 ms are written off so a drop
 *       never stalls the flow; SIGINT/SIGTERM end the sending early.
 *       Prints: flow sent=.. received=.. send_errors=..
 *   bench-udp spawn-wait --status-file F [--timeout-ms MS] -- CMD...
 *       Start CMD (an nfq-agent with --status-file F), read F each time
 *       a file in its directory is renamed or written (inotify; without
 *       it, every 100 us) until it says state=attached; print
 *       "attached us=.. pid=.." (from the fork) and leave CMD running (the
 *       caller kills it by pid).
 * Exit: 0 done, 1 failure (loss, timeout), 2 usage.
 */
#include <arpa/inet.h>
#include <dirent.h>
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
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#define MAX_NS 8
#define BATCH 64
#define BIG_BUF (256 << 20)

struct opts {
	const char *addr, *ready_file, *status_file;
	const char *netns[MAX_NS];
	int n_netns;
	int port;
	long count, size, warmup, window, timeout_ms;
	pid_t pid;
};

static int sockaddr_of(const struct opts *o, struct sockaddr_in *a)
{
	*a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	return inet_pton(AF_INET, o->addr, &a->sin_addr) == 1 ? 0 : -1;
}

static void bufs(int fd, int opt_force, int opt)
{
	int v = BIG_BUF;

	if (setsockopt(fd, SOL_SOCKET, opt_force, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

/* ------------------------------------------------------------------ drain */

/* Run time of every thread of @pid in ns (schedstat's first field). */
static long long cpu_ns(pid_t pid)
{
	char path[64], line[128];
	long long sum = 0, v;
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, d->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && sscanf(line, "%lld", &v) == 1)
			sum += v;
		fclose(f);
	}
	closedir(dir);
	return sum;
}

/* This process's CPU time in ns (the sink's share of a drain). */
static long long self_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The start of the small file @path (a /proc entry, a status file) in
 * @buf, NUL-terminated; false when it cannot be read or is empty. */
static bool read_head(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

static char task_state(const char *path)
{
	char buf[512], *p;

	if (!read_head(path, buf, sizeof(buf)))
		return 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Whether every thread of @pid is stopped ('t': stopped while traced,
 * under strace). A broker's workers stop a moment after its main thread. */
static int all_stopped(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int seen = 0, stopped = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((d = readdir(dir))) {
		char st;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", (int)pid, d->d_name);
		st = task_state(path);
		seen++;
		stopped += st == 'T' || st == 't';
	}
	closedir(dir);
	return seen > 0 && stopped == seen;
}

/* Stop @pid and wait until every thread of it is stopped. */
static int stop_pid(pid_t pid)
{
	if (kill(pid, SIGSTOP) < 0)
		return -1;
	for (int i = 0; i < 2000; i++) {
		if (all_stopped(pid))
			return 0;
		usleep(1000);
	}
	errno = ETIMEDOUT;
	return -1;
}

/*
 * Open the sink and the sender in namespace @path (NULL: this one). For a
 * drain (@qf not NULL) also the namespace's NFQUEUE table
 * (/proc/net/netfilter/nfnetlink_queue, opened from inside the namespace so
 * that it shows that namespace's queues), and the sink takes the kernel's
 * receive times.
 */
static int open_pair(const struct opts *o, const char *path, int home, int *rx, int *tx,
		     int *qf)
{
	struct sockaddr_in a;
	int fd = -1, one = 1;

	*rx = *tx = -1;
	if (sockaddr_of(o, &a) < 0)
		return -1;
	if (path) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			goto fail;
		close(fd);
		fd = -1;
	}
	*rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	*tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (*rx < 0 || *tx < 0 || bind(*rx, (void *)&a, sizeof(a)) < 0 ||
	    connect(*tx, (void *)&a, sizeof(a)) < 0)
		goto fail;
	if (qf) {
		*qf = open("/proc/self/net/netfilter/nfnetlink_queue", O_RDONLY | O_CLOEXEC);
		if (*qf < 0 || setsockopt(*rx, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
			goto fail;
	}
	bufs(*rx, SO_RCVBUFFORCE, SO_RCVBUF);
	/* a queued datagram stays charged to its sender: room for all */
	bufs(*tx, SO_SNDBUFFORCE, SO_SNDBUF);
	if (path && setns(home, CLONE_NEWNET) < 0)
		goto fail;
	return 0;
fail:
	perror("bench-udp: sockets");
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Packets waiting for a verdict in the queues of @qf's namespace (the sum of
 * the third column, queue_total), or -1. */
static long queued_total(int qf)
{
	char buf[4096], *line, *save = NULL;
	long sum = 0;
	unsigned q, portid, total;
	ssize_t n = pread(qf, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -1;
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%u %u %u", &q, &portid, &total) == 3)
			sum += total;
	return sum;
}

/*
 * Read whatever is there; returns datagrams read and, with @last, raises
 * *@last to the latest kernel receive time (SO_TIMESTAMPNS, CLOCK_REALTIME,
 * seconds).
 */
static long drain_rx(int fd, char *buf, size_t size, double *last)
{
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	static char ctl[BATCH][CMSG_SPACE(sizeof(struct timespec))];
	int n;

	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = buf, .iov_len = size };
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1,
						      .msg_control = ctl[i],
						      .msg_controllen = sizeof(ctl[i]) } };
	}
	n = recvmmsg(fd, m, BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; last && i < n; i++) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&m[i].msg_hdr);
		struct timespec ts;
		double t;

		if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		t = timespec_s(&ts);
		if (t > *last)
			*last = t;
	}
	return n > 0 ? n : 0;
}

/* Whether every namespace's queues are empty: all verdicts given. */
static bool queues_empty(const int *qf, int k)
{
	for (int i = 0; i < k; i++)
		if (queued_total(qf[i]) != 0)
			return false;
	return true;
}

/*
 * The sink stays out of the consumer's way: during the drain it only looks
 * at the kernel queues' counts once a millisecond, and reads the datagrams
 * after the queues are empty. The end of the drain is the kernel's receive
 * time of the last datagram, so a sink that competes with the consumer for
 * a core (two broker workers on two cores) neither delays nor blurs it.
 */
static int cmd_drain(const struct opts *o)
{
	int rx[MAX_NS], tx[MAX_NS], qf[MAX_NS], k = o->n_netns ? o->n_netns : 1, home, rc = 1;
	char *buf = calloc(1, (size_t)o->size + 64);
	long got = 0, want = o->count * k;
	long long c0, c1, s0, s1;
	double t0, last = 0, end, rt0;
	bool empty = false;

	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!buf || home < 0 || o->pid <= 0)
		return 2;
	for (int i = 0; i < k; i++)
		if (open_pair(o, o->n_netns ? o->netns[i] : NULL, home, &rx[i], &tx[i], &qf[i]) < 0)
			return 1;
	if (stop_pid(o->pid) < 0) {
		fprintf(stderr, "bench-udp: cannot stop pid %d: %s\n", (int)o->pid, strerror(errno));
		return 1;
	}
	for (int i = 0; i < k; i++)
		for (long j = 0; j < o->count; j++)
			if (send(tx[i], buf, (size_t)o->size, MSG_DONTWAIT) < 0) {
				fprintf(stderr, "bench-udp: send %ld in ns %d: %s\n", j, i, strerror(errno));
				kill(o->pid, SIGCONT);
				return 1;
			}
	/* nothing may arrive before the resume: the queue holds it all */
	for (int i = 0; i < k; i++)
		got += drain_rx(rx[i], buf, (size_t)o->size, &last);
	if (got) {
		fprintf(stderr, "bench-udp: %ld datagrams arrived while the consumer was stopped "
			"(no queue rule?)\n", got);
		kill(o->pid, SIGCONT);
		return 1;
	}
	c0 = cpu_ns(o->pid);
	s0 = self_cpu_ns();
	t0 = now_s();
	rt0 = clock_s(CLOCK_REALTIME);
	kill(o->pid, SIGCONT);
	end = t0 + (double)o->timeout_ms / 1000;
	while (!(empty = queues_empty(qf, k)) && now_s() < end)
		usleep(1000);
	c1 = cpu_ns(o->pid);
	s1 = self_cpu_ns();
	/* the last verdicts' datagrams may still be on their way (softirq) */
	while (got < want && now_s() < end) {
		long n = 0;

		for (int i = 0; i < k; i++)
			n += drain_rx(rx[i], buf, (size_t)o->size, &last);
		got += n;
		if (!n && empty)
			usleep(1000);
	}
	if (got < want) {
		fprintf(stderr, "bench-udp: drain: %ld of %ld datagrams arrived in %ld ms%s\n",
			got, want, o->timeout_ms, empty ? "" : " (queues not empty)");
	} else {
		double s = last - rt0;

		/* cores_busy: consumer + sink CPU over the span; near the
		 * machine's CPU count, the drain is CPU-bound */
		printf("drain packets=%ld seconds=%.6f pps=%.0f cpu_ns=%lld cpu_ns_per_pkt=%.1f "
		       "sink_cpu_ns=%lld cores_busy=%.2f\n",
		       want, s, (double)want / s, c1 - c0, (double)(c1 - c0) / (double)want,
		       s1 - s0, (double)(c1 - c0 + s1 - s0) / (s * 1e9));
		rc = 0;
	}
	for (int i = 0; i < k; i++) {
		close(rx[i]);
		close(tx[i]);
		close(qf[i]);
	}
	close(home);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ echo, ping */

/* SIGINT/SIGTERM end ping and flow early, without SA_RESTART so that a
 * blocked recv() returns: the caller stops them when its test is done
 * rather than guessing how long they must run. */
static volatile sig_atomic_t stop_req;

static void on_stop_signal(int sig)
{
	stop_req = sig;
}

static void catch_stop(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int cmd_echo(const struct opts *o)
{
	struct sockaddr_in a, from;
	socklen_t fl;
	char buf[65536];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	if (sockaddr_of(o, &a) < 0 || fd < 0 || bind(fd, (void *)&a, sizeof(a)) < 0) {
		perror("bench-udp: echo");
		return 1;
	}
	if (o->ready_file) {
		FILE *f = fopen(o->ready_file, "we");

		if (f) {
			fputs("ready\n", f);
			fclose(f);
		}
	}
	for (;;) {
		fl = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0, (void *)&from, &fl);
		if (n >= 0)
			sendto(fd, buf, (size_t)n, 0, (void *)&from, fl);
	}
}

static int dbl_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static int cmd_ping(const struct opts *o)
{
	struct sockaddr_in a;
	struct timeval tv = { .tv_sec = 1 };
	long n = o->count, ok = 0, lost = 0;
	double *rtt, sum = 0;
	char *buf;
	int fd;

	/* first: a stop that comes while the socket is made is not lost (a
	 * background job of a script starts with SIGINT ignored) */
	catch_stop();
	rtt = calloc((size_t)n, sizeof(double));
	buf = calloc(1, (size_t)o->size + 64);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!rtt || !buf || sockaddr_of(o, &a) < 0 || fd < 0 ||
	    connect(fd, (void *)&a, sizeof(a)) < 0) {
		perror("bench-udp: ping");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (long i = -o->warmup; i < n && !stop_req; i++) {
		double t = now_s();

		if (send(fd, buf, (size_t)o->size, 0) < 0 ||
		    recv(fd, buf, (size_t)o->size + 64, 0) < 0) {
			if (errno == EINTR && stop_req)
				break;	/* stopped, not lost */
			lost++;
			if (lost > 10)
				break;
			continue;
		}
		t = (now_s() - t) * 1e6;
		if (i >= 0) {
			rtt[ok++] = t;
			sum += t;
		}
	}
	close(fd);
	if (!ok) {
		fprintf(stderr, "bench-udp: ping: %s\n",
			stop_req && !lost ? "stopped before any measured round trip" : "no reply");
		return 1;
	}
	qsort(rtt, (size_t)ok, sizeof(double), dbl_cmp);
	printf("ping n=%ld lost=%ld p50_us=%.2f p99_us=%.2f mean_us=%.2f\n", ok, lost,
	       rtt[ok / 2], rtt[(ok * 99) / 100 < ok ? (ok * 99) / 100 : ok - 1], sum / (double)ok);
	free(rtt);
	free(buf);
	return lost ? 1 : 0;
}

/* ------------------------------------------------------------------ flow */

static int cmd_flow(const struct opts *o)
{
	int rx, tx, home = -1;
	char *buf = calloc(1, (size_t)o->size + 64);
	long sent = 0, got = 0, written_off = 0, errs = 0;
	struct pollfd pfd;
	double quiet, end;

	if (!buf || open_pair(o, NULL, home, &rx, &tx, NULL) < 0)
		return 1;
	catch_stop();
	pfd = (struct pollfd){ .fd = rx, .events = POLLIN };
	quiet = now_s();
	end = quiet + (double)o->timeout_ms / 1000;
	while (((!stop_req && sent < o->count) || got + written_off < sent) && now_s() < end) {
		while (!stop_req && sent < o->count && sent - got - written_off < o->window) {
			if (send(tx, buf, (size_t)o->size, 0) < 0)
				errs++;
			sent++;
		}
		if (poll(&pfd, 1, 20) > 0) {
			got += drain_rx(rx, buf, (size_t)o->size, NULL);
			quiet = now_s();
		} else if (now_s() - quiet > 0.2) {
			written_off = sent - got;
			quiet = now_s();
		}
	}
	/* stragglers of written-off datagrams still count as received */
	while (poll(&pfd, 1, 200) > 0)
		got += drain_rx(rx, buf, (size_t)o->size, NULL);
	printf("flow sent=%ld received=%ld send_errors=%ld\n", sent, got, errs);
	close(rx);
	close(tx);
	free(buf);
	return sent == o->count || stop_req ? 0 : 1;
}

/* ------------------------------------------------------------------ spawn-wait */

static int attached(const char *path)
{
	char buf[64];

	return read_head(path, buf, sizeof(buf)) &&
	       strncmp(buf, "state=attached\n", 15) == 0;
}

/*
 * A watch on the status file's directory, so the wait ends when the agent
 * renames its file into place (IN_MOVED_TO) or writes it (IN_CLOSE_WRITE):
 * polling every 100 us (150 with the sleep's timer slack) added up to
 * 0.5 ms to the reference's figure (bench/README.md, "What limits the
 * attach"). -1 without inotify: poll.
 */
static int watch_status_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd >= 0 && inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Until something happens in the directory, or 10 ms (the child may die). */
static void wait_status(int ifd)
{
	struct pollfd p = { .fd = ifd, .events = POLLIN };
	char ev[4096];

	if (ifd < 0) {
		usleep(100);
		return;
	}
	if (poll(&p, 1, 10) > 0)
		while (read(ifd, ev, sizeof(ev)) > 0) {
		}
}

static int cmd_spawn_wait(const struct opts *o, char **argv)
{
	double t0, end;
	pid_t pid;
	int st, ifd, rc = 1;

	unlink(o->status_file);
	ifd = watch_status_dir(o->status_file);
	t0 = now_s();
	end = t0 + (double)o->timeout_ms / 1000;
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* the caller reads our stdout to its end: not the agent's */
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (now_s() < end) {
		if (attached(o->status_file)) {
			printf("attached us=%.0f pid=%d\n", (now_s() - t0) * 1e6, (int)pid);
			/* the caller reads this line before the watch's teardown
			 * (an RCU grace period, ~8 ms) at close */
			fflush(stdout);
			rc = 0;
			goto out;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "bench-udp: %s exited (status %d) before attaching\n",
				argv[0], st);
			goto out;
		}
		wait_status(ifd);
	}
	fprintf(stderr, "bench-udp: %s not attached after %ld ms\n", argv[0], o->timeout_ms);
	printf("timeout pid=%d\n", (int)pid);
out:
	if (ifd >= 0)
		close(ifd);
	return rc;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f, "usage: bench-udp drain|echo|ping|flow|spawn-wait [options] (see the source)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "netns", required_argument, NULL, 'n' },
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'P' },
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "window", required_argument, NULL, 'W' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "status-file", required_argument, NULL, 'f' },
		{ 0 }
	};
	struct opts o = { .addr = "127.0.0.1", .port = 5900, .count = 10000, .size = 64,
			  .warmup = 100, .window = 64, .timeout_ms = 30000 };
	const char *cmd;
	int c;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o.pid = (pid_t)atol(optarg); break;
		case 'n':
			if (o.n_netns == MAX_NS)
				return 2;
			o.netns[o.n_netns++] = optarg;
			break;
		case 'a': o.addr = optarg; break;
		case 'P': o.port = atoi(optarg); break;
		case 'c': o.count = atol(optarg); break;
		case 's': o.size = atol(optarg); break;
		case 'w': o.warmup = atol(optarg); break;
		case 'W': o.window = atol(optarg); break;
		case 't': o.timeout_ms = atol(optarg); break;
		case 'r': o.ready_file = optarg; break;
		case 'f': o.status_file = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	if (o.count <= 0 || o.size <= 0 || o.size > 65000 || o.window <= 0 || o.warmup < 0) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "drain"))
		return cmd_drain(&o);
	if (!strcmp(cmd, "echo"))
		return cmd_echo(&o);
	if (!strcmp(cmd, "ping"))
		return cmd_ping(&o);
	if (!strcmp(cmd, "flow"))
		return cmd_flow(&o);
	if (!strcmp(cmd, "spawn-wait") && o.status_file && optind < argc)
		return cmd_spawn_wait(&o, argv + optind);
	usage(stderr);
	return 2;
}
