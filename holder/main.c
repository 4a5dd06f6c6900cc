/* SPDX-License-Identifier: MIT */
/*
 * nfq-holder: the node's keeper of pod namespaces (docs/holder.md).
 * nfq-cni asks it to HOLD a (container, network, interface) and to
 * RELEASE it; the holder keeps one nfq-agent per container namespace
 * running from the first HOLD to the last RELEASE, whatever dies in
 * between: the agent (restarted), the runtime (the holder is not in its
 * cgroup), the broker (the agent re-attaches), the holder itself (its
 * agents live on and are adopted again from the state dir).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "holder.h"
#include "cli.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "signals.h"
#include "unixsock.h"

#define CLIENT_MAX 64
#define CLIENT_TIMEOUT_MS 5000   /* a client that connects and says nothing */
#define TICK_MS 20               /* while an answer waits on an agent's status file */

struct opts {
	const char *sock;
	const char *state_dir;
	const char *agent;
	bool verbose;
};

struct client {
	int fd;
	int64_t since;
};

struct loop {
	struct server sv;
	struct client cl[CLIENT_MAX];
	size_t n_cl;
	int lfd, sigfd, lockfd;
	dev_t sock_dev;
	ino_t sock_ino;
	bool quit;
	char agent[PATH_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nfq-holder [--socket PATH] [--state-dir DIR] [--agent PATH] [--verbose]\n"
		"\n"
		"Keep one nfq-agent per pod namespace running from nfq-cni's first ADD to\n"
		"its last DEL: restarted when it dies, adopted again after a holder restart.\n"
		"\n"
		"  -s, --socket PATH    where nfq-cni connects (default " HOLDER_DEFAULT_SOCK ")\n"
		"  -d, --state-dir DIR  one file per held namespace (default " HOLDER_DEFAULT_STATE ")\n"
		"  -a, --agent PATH     the nfq-agent to run (default: beside nfq-holder, then PATH)\n"
		"  -v, --verbose        log debug events\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "agent", required_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->sock = HOLDER_DEFAULT_SOCK;
	o->state_dir = HOLDER_DEFAULT_STATE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:d:a:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->sock = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'a':
			o->agent = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case 'V':
			cli_print_version();
			return CLI_EXIT_OK;
		default:
			return cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->sock[0] != '/')
		return cli_usage_error("--socket: \"%s\" is not an absolute path", o->sock);
	if (o->state_dir[0] != '/')
		return cli_usage_error("--state-dir: \"%s\" is not an absolute path", o->state_dir);
	if (strlen(o->state_dir) > PATH_MAX - CID_MAX - 32)
		return cli_usage_error("--state-dir: path too long");
	return -1;
}

/* The agent: --agent, else beside our own binary, else PATH. */
static int find_agent(const struct opts *o, char *out, size_t len)
{
	struct conf c = { .agent = o->agent };
	struct cni_err e = { 0 };

	/* No CNI_PATH here: that is the plugin's environment, not ours. */
	unsetenv("CNI_PATH");
	if (agent_find(&c, out, len, &e) < 0) {
		char qm[LOG_VALUE_MAX];

		log_event(LOGL_ERROR, "no_agent", "msg=%s", log_value(qm, sizeof(qm), e.msg));
		return -ENOENT;
	}
	return 0;
}

/* Only root may hold namespaces: the requests name netns paths and
 * broker sockets the holder then opens with all its privileges. */
static bool peer_is_root(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == 0;
}

static void accept_clients(struct loop *l, int64_t now)
{
	for (;;) {
		int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		if (!peer_is_root(fd)) {
			log_event(LOGL_WARN, "client_refused", "reason=not_root");
			close(fd);
			continue;
		}
		if (l->n_cl == CLIENT_MAX) {
			struct cni_err e = { .code = CNI_ERR_TRY_LATER, .msg = "nfq-holder: too many clients" };

			serve_reply(fd, &e);
			continue;
		}
		l->cl[l->n_cl++] = (struct client){ .fd = fd, .since = now };
	}
}

/* Read client @i's request: 1 when it is gone from the list. */
static int read_client(struct loop *l, size_t i, int64_t now)
{
	static char buf[HOLDER_MSG_MAX + 1];
	struct holder_req r;
	char why[512];
	int fd = l->cl[i].fd;
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	l->cl[i] = l->cl[--l->n_cl];
	if (n <= 0) {
		close(fd);
		return 1;
	}
	if ((size_t)n > sizeof(buf) - 1 ||
	    holder_req_parse(buf, (size_t)n, &r, why, sizeof(why)) < 0) {
		struct cni_err e = { .code = CNI_ERR_DECODE };
		char qw[LOG_VALUE_MAX];

		if ((size_t)n > sizeof(buf) - 1)
			snprintf(why, sizeof(why), "request longer than %u bytes", HOLDER_MSG_MAX);
		snprintf(e.msg, sizeof(e.msg), "nfq-holder: bad request: %s", why);
		log_event(LOGL_WARN, "bad_request", "reason=%s", log_value(qw, sizeof(qw), why));
		serve_reply(fd, &e);
		return 1;
	}
	if (log_verbose()) {
		char qn[NET_MAX * 4 + 3], qi[IF_MAX * 4 + 3];

		log_event(LOGL_DEBUG, "request", "verb=%s cid=%s net=%s ifname=%s", holder_verb_name(r.verb),
			  r.cid, log_value(qn, sizeof(qn), r.net), log_value(qi, sizeof(qi), r.ifname));
	}
	serve_request(&l->sv, fd, &r, now);
	holder_req_clear(&r);
	return 1;
}

static void on_signal(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			l->quit = true;
}

/* One turn: poll sockets, signals and every agent's pidfd. */
static void turn(struct loop *l)
{
	struct holder *hd = &l->sv.hd;
	size_t n = 0, nfd = 2 + l->n_cl + hd->n_held;
	struct pollfd *pfd = calloc(nfd, sizeof(*pfd));
	struct held **who = calloc(hd->n_held + 1, sizeof(*who));
	int64_t now = clock_now_ms(), next;
	int timeout = -1;
	size_t ncl = l->n_cl;

	if (!pfd || !who) {
		free(pfd);
		free(who);
		clock_sleep_ms(100);
		return;
	}
	pfd[n++] = (struct pollfd){ .fd = l->sigfd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
	for (size_t i = 0; i < ncl; i++)
		pfd[n++] = (struct pollfd){ .fd = l->cl[i].fd, .events = POLLIN };
	for (size_t i = 0; i < hd->n_held; i++) {
		if (hd->held[i]->pidfd < 0)
			continue;
		who[n - 2 - ncl] = hd->held[i];
		pfd[n++] = (struct pollfd){ .fd = hd->held[i]->pidfd, .events = POLLIN };
	}
	next = held_timers(hd, now);
	if (next)
		timeout = next <= now ? 0 : (int)(next - now);
	if (l->sv.n_w > 0 && (timeout < 0 || timeout > TICK_MS))
		timeout = TICK_MS;
	if (ncl > 0 && (timeout < 0 || timeout > 1000))
		timeout = 1000;
	poll(pfd, n, timeout);
	now = clock_now_ms();
	if (pfd[0].revents)
		on_signal(l);
	/* Agents first: an exit decides waiters and may free entries. */
	for (size_t i = 2 + ncl; i < n; i++)
		if (pfd[i].revents)
			serve_agent_exited(&l->sv, who[i - 2 - ncl], now);
	/* Back to front: read_client() moves the last client into slot i. */
	for (size_t i = ncl; i-- > 0; ) {
		if (pfd[2 + i].revents)
			read_client(l, i, now);
		else if (now - l->cl[i].since > CLIENT_TIMEOUT_MS) {
			close(l->cl[i].fd);
			l->cl[i] = l->cl[--l->n_cl];
		}
	}
	if (pfd[1].revents)
		accept_clients(l, now);
	held_timers(hd, now);
	serve_tick(&l->sv, now);
	free(pfd);
	free(who);
}

/* One holder per state dir: a second would restart the first's agents. */
static int lock_state(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int setup(struct loop *l, const struct opts *o)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	char why[256];
	int ret;

	ret = fs_mkdir_p(o->state_dir, 0755, 0700, false, NULL, 0);
	if (ret < 0)
		return cli_usage_error("--state-dir %s: %s", o->state_dir, strerror(-ret));
	l->lockfd = lock_state(o->state_dir);
	if (l->lockfd < 0)
		return cli_usage_error("--state-dir %s: %s", o->state_dir,
				       l->lockfd == -EBUSY ? "another nfq-holder serves it" : strerror(-l->lockfd));
	if (find_agent(o, l->agent, sizeof(l->agent)) < 0)
		return CLI_EXIT_USAGE;
	l->sigfd = signals_open(sigs, 3, SFD_NONBLOCK);
	if (l->sigfd < 0)
		return cli_usage_error("signalfd: %s", strerror(-l->sigfd));
	/* Our agents are reaped through their pidfds: SIGCHLD must not be ignored. */
	signal(SIGCHLD, SIG_DFL);
	l->lfd = unixsock_bind_path(o->sock, SOCK_SEQPACKET, 0600, 64, &l->sock_dev, &l->sock_ino, NULL, why, sizeof(why));
	if (l->lfd < 0)
		return cli_usage_error("--socket %s: %s", o->sock, why);
	l->sv.hd.state_dir = o->state_dir;
	l->sv.hd.agent = l->agent;
	return -1;
}

int main(int argc, char **argv)
{
	struct loop l = { .lfd = -1, .sigfd = -1, .lockfd = -1 };
	struct opts o = { 0 };
	int ret;
	size_t found;

	cli_set_program("nfq-holder");
	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;
	log_set_verbose(o.verbose);
	ret = setup(&l, &o);
	if (ret >= 0)
		goto out;
	found = held_adopt_all(&l.sv.hd, clock_now_ms());
	log_event(LOGL_INFO, "started", "socket=%s state_dir=%s agent=%s held=%zu", o.sock, o.state_dir,
		  l.agent, found);
	while (!l.quit)
		turn(&l);
	/* The agents stay: they hold the namespaces while no holder runs, and
	 * the next holder adopts them (docs/holder.md). */
	serve_shutdown(&l.sv);
	log_event(LOGL_INFO, "stopped", "held=%zu", l.sv.hd.n_held);
	ret = CLI_EXIT_OK;
out:
	for (size_t i = 0; i < l.n_cl; i++)
		close(l.cl[i].fd);
	while (l.sv.hd.n_held)
		held_free(&l.sv.hd, l.sv.hd.held[0]);
	free(l.sv.hd.held);
	if (l.lfd >= 0) {
		close(l.lfd);
		unixsock_unlink_ours(o.sock, l.sock_dev, l.sock_ino);
	}
	if (l.sigfd >= 0)
		close(l.sigfd);
	if (l.lockfd >= 0)
		close(l.lockfd);
	return ret;
}
