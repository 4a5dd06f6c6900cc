/* SPDX-License-Identifier: MIT */
/*
 * nfq-agent: open a network namespace's netlink sockets, drop every
 * capability, lend the sockets to nfq-broker and hold the lease until
 * SIGTERM. Re-attaches with the same sockets whenever the broker goes away.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/netlink.h>

#include <nfqb/agent.h>
#include "agent-lookup.h"
#include "cli.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "paths.h"
#include "signals.h"
#include "wire.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Without --verbose, a broker that stays away is logged every Nth try. */
#define RETRY_LOG_EVERY 10

struct opts {
	const char *broker;
	const char *name;
	const char *netns;
	const char *user;      /* --user USER[:GROUP], resolved into uid/gid */
	const char *status;    /* --status-file PATH, or NULL */
	uid_t uid;
	gid_t gid;
	bool rtnl;
	bool verbose;
};

struct agent {
	struct opts o;
	int socks[2];
	int nsocks;
	int sigfd;
	int lease;
	uint64_t netns_inode;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nfq-agent --name NAME [--broker SOCKET] [--netns PATH] [--no-rtnl]\n"
		"                 [--user USER[:GROUP]] [--status-file PATH] [--verbose]\n"
		"\n"
		"Open the netlink sockets of a network namespace, drop every capability and\n"
		"hand the sockets to nfq-broker; stay attached until SIGTERM.\n"
		"\n"
		"  -b, --broker SOCKET  the broker's agent socket (default\n"
		"                       " NFQB_PATH_AGENT_SOCK ")\n"
		"  -n, --name NAME      name the broker matches its namespaces against\n"
		"      --netns PATH     namespace to open the sockets in (/run/netns/X,\n"
		"                       /proc/PID/ns/net); default: the current one\n"
		"      --no-rtnl        do not hand over a NETLINK_ROUTE socket\n"
		"  -u, --user USER[:GROUP]  once the sockets are open, become USER (name or\n"
		"                       uid) with GROUP (default: USER's) as its only group\n"
		"      --status-file PATH  keep PATH (replaced atomically) saying\n"
		"                       state=attached|retrying|refused|error|stopped,\n"
		"                       attempts=N and reason=TEXT: readiness for nfq-cni\n"
		"  -v, --verbose        log every retry\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n");
}

static int check_opts(struct opts *o)
{
	struct wire_hello h;
	char why[WIRE_REASON_MAX];

	if (!*o->broker)
		return cli_usage_error("--broker: empty path");
	if (strlen(o->broker) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cli_usage_error("--broker: path longer than %zu bytes",
				   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (!o->name)
		return cli_usage_error("missing --name NAME");
	if (!*o->name)
		return cli_usage_error("--name: name is empty");
	if (strlen(o->name) >= WIRE_NAME_MAX)
		return cli_usage_error("--name: longer than %d bytes", WIRE_NAME_MAX - 1);
	wire_hello_init(&h, o->name, 0, 1);
	if (wire_hello_check(&h, sizeof(h), 1, why, sizeof(why)) < 0)
		return cli_usage_error("--name: %s", why);
	if (o->netns && !*o->netns)
		return cli_usage_error("--netns: empty path");
	/* Looked up before anything is opened: a typo costs nothing. */
	if (o->user && nfqb_agent_lookup_user(o->user, &o->uid, &o->gid, why, sizeof(why)) < 0)
		return cli_usage_error("--user: %s", why);
	return CLI_EXIT_OK;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_NETNS = 256, OPT_NO_RTNL, OPT_STATUS };
	static const struct option longopts[] = {
		{ "broker", required_argument, NULL, 'b' },
		{ "name", required_argument, NULL, 'n' },
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "no-rtnl", no_argument, NULL, OPT_NO_RTNL },
		{ "user", required_argument, NULL, 'u' },
		{ "status-file", required_argument, NULL, OPT_STATUS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->rtnl = true;
	o->broker = NFQB_PATH_AGENT_SOCK;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:n:u:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->broker = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case OPT_NETNS:
			o->netns = optarg;
			break;
		case OPT_NO_RTNL:
			o->rtnl = false;
			break;
		case 'u':
			o->user = optarg;
			break;
		case OPT_STATUS:
			if (!*optarg)
				return cli_usage_error("--status-file: empty path");
			o->status = optarg;
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
	c = check_opts(o);
	return c == CLI_EXIT_OK ? -1 : c;
}

static uint64_t namespace_inode(const struct agent *a)
{
	uint64_t ino = 0;
	struct stat st;

	/* SIOCGSKNS needs CAP_NET_ADMIN, hence before the capabilities go. */
	if (wire_fd_netns(a->socks[0], NULL, &ino) == 0)
		return ino;
	if (stat(a->o.netns ? a->o.netns : "/proc/self/ns/net", &st) == 0)
		return st.st_ino;
	return 0;
}

/*
 * The --status-file: what nfq-cni waits on instead of reading the log,
 * whose wording is no interface. Written to PATH.tmp, then renamed: a
 * reader sees the old or the new state, never half of one. Lines:
 * state=..., attempts=N, reason=TEXT (one line, newlines dropped).
 */
static void status_write(const struct agent *a, const char *state, unsigned long attempts,
			 const char *reason)
{
	char buf[WIRE_REASON_MAX + 128];
	struct iovec iov = { .iov_base = buf };
	int n;

	if (!a->o.status)
		return;
	n = snprintf(buf, sizeof(buf), "state=%s\nattempts=%lu\nreason=", state, attempts);
	for (const char *r = reason ? reason : ""; *r && n < (int)sizeof(buf) - 2; r++)
		buf[n++] = (*r == '\n' || *r == '\r') ? ' ' : *r;
	buf[n++] = '\n';
	iov.iov_len = (size_t)n;
	/* a status that cannot be written is not the lease's end: readers
	 * wait for the next one */
	(void)fs_write_replace(a->o.status, &iov, 1, 0644);
}

enum lease_end { LEASE_LOST, LEASE_SIGNAL, LEASE_REFUSED };

/* Hold the lease until the broker drops it or a signal arrives. */
static enum lease_end hold_lease(struct agent *a, int *signo)
{
	struct pollfd p[2] = {
		{ .fd = a->lease, .events = POLLIN },
		{ .fd = a->sigfd, .events = POLLIN },
	};

	for (;;) {
		struct nfqb_lease_event ev;
		char q[NFQB_LEASE_REASON_MAX + 3];
		int r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return LEASE_LOST;
		}
		if (p[1].revents) {
			*signo = signals_wait(a->sigfd, 0);
			if (*signo)
				return LEASE_SIGNAL;
		}
		if (!p[0].revents)
			continue;
		r = nfqb_agent_lease_wait(a->lease, 0, a->socks, (size_t)a->nsocks, &ev);
		if (r == 0 || r == -EINTR)
			continue;
		if (r < 0)
			return LEASE_LOST;
		switch (ev.kind) {
		case NFQB_LEASE_CLOSED:
			return LEASE_LOST;
		case NFQB_LEASE_REFUSED:
			log_event(ev.retry ? LOGL_WARN : LOGL_ERROR, "refused",
				  "name=%s reason=%s retry=%s", a->o.name,
				  log_value(q, sizeof(q), ev.reason), ev.retry ? "true" : "false");
			if (ev.retry)
				return LEASE_LOST;
			status_write(a, "refused", 0, ev.reason);
			fprintf(stderr, "nfq-agent: refused: %s\n", ev.reason);
			return LEASE_REFUSED;
		case NFQB_LEASE_SOCKETS:
			log_event(LOGL_INFO, "sockets_swapped", "name=%s", a->o.name);
			break;
		default:
			log_event(LOGL_WARN, "ignored_message", "name=%s type=%d bytes=%zu",
				  a->o.name, ev.msg_type, ev.msg_len);
			break;
		}
	}
}

static bool retryable(int err)
{
	switch (err) {
	case -ENOENT:
	case -EHOSTDOWN:
	case -ETIMEDOUT:
	case -ECONNRESET:
	case -EPIPE:
	case -ECONNABORTED:
	case -EAGAIN:       /* the broker refused for a passing reason */
		return true;
	default:
		return false;
	}
}

/* The netlink port id names the kernel socket behind an fd. */
static uint32_t sock_portid(int fd)
{
	struct sockaddr_nl sa = { 0 };
	socklen_t len = sizeof(sa);

	return getsockname(fd, (struct sockaddr *)&sa, &len) == 0 ? sa.nl_pid : 0;
}

/* Attach, hold, re-attach: returns the exit code. */
static int run(struct agent *a)
{
	char why[WIRE_REASON_MAX + 64], q[sizeof(why) + 3], qb[256];
	int delay = BACKOFF_MIN_MS, signo = 0;
	unsigned long attempt = 0;

	log_value(qb, sizeof(qb), a->o.broker);
	for (;;) {
		int64_t since;

		uint32_t portid = sock_portid(a->socks[0]);

		attempt++;
		/* On a takeover the broker hands back the sockets holding the
		 * queues: from then on those are ours to hold and hand over. */
		a->lease = nfqb_agent_attach_swap(a->o.broker, a->o.name, a->socks,
						  (size_t)a->nsocks, why, sizeof(why));
		if (a->lease >= 0) {
			log_event(LOGL_INFO, "attached", "name=%s netns_inode=%" PRIu64
				  " broker=%s attempts=%lu sockets=%s", a->o.name, a->netns_inode, qb, attempt,
			      sock_portid(a->socks[0]) == portid ? "own" : "broker's");
			status_write(a, "attached", attempt, "");
			attempt = 0;
			since = clock_now_ms();
			switch (hold_lease(a, &signo)) {
			case LEASE_SIGNAL:
				nfqb_agent_detach(a->lease);
				a->lease = -1;
				log_event(LOGL_INFO, "detached", "name=%s signal=%s", a->o.name,
					  strsignal(signo));
				status_write(a, "stopped", 0, strsignal(signo));
				return CLI_EXIT_OK;
			case LEASE_REFUSED:
				close(a->lease);
				a->lease = -1;
				return CLI_EXIT_RUNTIME;
			case LEASE_LOST:
				break;
			}
			close(a->lease);
			a->lease = -1;
			/* A lease that lasted resets the backoff; a broker that
			 * drops us at once does not get hammered. */
			if (clock_now_ms() - since >= BACKOFF_MAX_MS)
				delay = BACKOFF_MIN_MS;
			log_event(LOGL_WARN, "lease_lost", "name=%s retry_ms=%d", a->o.name, delay);
			status_write(a, "retrying", 0, "lease lost");
		} else if (a->lease == -ECONNREFUSED) {
			log_event(LOGL_ERROR, "refused", "name=%s reason=%s", a->o.name,
				  log_value(q, sizeof(q), why));
			status_write(a, "refused", attempt, why);
			fprintf(stderr, "nfq-agent: refused: %s\n", why);
			return CLI_EXIT_RUNTIME;
		} else if (!retryable(a->lease)) {
			log_event(LOGL_ERROR, "error", "op=attach name=%s error=%s", a->o.name,
				  log_value(q, sizeof(q), why));
			status_write(a, "error", attempt, why);
			return CLI_EXIT_RUNTIME;
		} else {
			status_write(a, "retrying", attempt, why);
			if (a->o.verbose || attempt == 1 || attempt % RETRY_LOG_EVERY == 0)
				log_event(LOGL_WARN, "retry", "name=%s attempt=%lu retry_ms=%d error=%s",
					  a->o.name, attempt, delay, log_value(q, sizeof(q), why));
		}
		a->lease = -1;
		signo = signals_wait(a->sigfd, delay);
		if (signo) {
			log_event(LOGL_INFO, "stopped", "name=%s signal=%s", a->o.name,
				  strsignal(signo));
			status_write(a, "stopped", attempt, strsignal(signo));
			return CLI_EXIT_OK;
		}
		delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	}
}

int main(int argc, char **argv)
{
	struct agent a = { .socks = { -1, -1 }, .sigfd = -1, .lease = -1 };
	char q[WIRE_REASON_MAX], qn[PATH_MAX + 3];
	int ret;

	cli_set_program("nfq-agent");
#ifdef NFQB_AGENT_STATIC
	/* glibc's NSS modules would load a second, shared libc into this one
	 * (agent/meson.build): --user names come from the files */
	agent_lookup_files("/etc/passwd", "/etc/group");
#endif
	ret = parse_args(argc, argv, &a.o);
	if (ret >= 0)
		return ret;

	a.sigfd = signals_open((const int[]){ SIGTERM, SIGINT }, 2, 0);
	if (a.sigfd < 0) {
		log_event(LOGL_ERROR, "error", "op=signalfd error=%s",
			  log_value(q, sizeof(q), strerror(-a.sigfd)));
		return CLI_EXIT_RUNTIME;
	}
	a.nsocks = nfqb_agent_open_sockets(a.o.netns, a.o.rtnl, a.socks);
	if (a.nsocks < 0) {
		log_event(LOGL_ERROR, "error", "op=open_sockets netns=%s error=%s",
			  log_value(qn, sizeof(qn), a.o.netns ? a.o.netns : "(current)"),
			  log_value(q, sizeof(q), strerror(-a.nsocks)));
		ret = CLI_EXIT_RUNTIME;
		goto out;
	}
	a.netns_inode = namespace_inode(&a);
	/* Before the first connect: the broker only ever sees this uid. */
	ret = a.o.user ? nfqb_agent_drop_privileges(a.o.uid, a.o.gid) : nfqb_agent_drop_caps();
	if (ret < 0) {
		log_event(LOGL_ERROR, "error", "op=%s error=%s",
			  a.o.user ? "drop_privileges" : "drop_caps",
			  log_value(q, sizeof(q), strerror(-ret)));
		ret = CLI_EXIT_RUNTIME;
		goto out;
	}
	if (ret == 1)
		log_event(LOGL_INFO, "notice",
			  "op=drop_caps detail=\"bounding set kept: no CAP_SETPCAP; "
			  "every other set is empty and no_new_privs is set\"");
	if (a.o.verbose)
		log_event(LOGL_INFO, "ready",
			  "name=%s netns_inode=%" PRIu64 " sockets=%d pid=%d uid=%u gid=%u",
			  a.o.name, a.netns_inode, a.nsocks, (int)getpid(), (unsigned)getuid(),
			  (unsigned)getgid());
	ret = run(&a);
out:
	for (int i = 0; i < 2; i++)
		if (a.socks[i] >= 0)
			close(a.socks[i]);
	close(a.sigfd);
	return ret;
}
