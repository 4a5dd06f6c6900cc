/* SPDX-License-Identifier: MIT */
/*
 * nfq-broker: receives NETLINK_NETFILTER sockets from per-namespace agents,
 * binds NFQUEUE queues on them and gives every packet the verdict of the
 * namespace's policy (docs/interface.md §1-§4). The main thread's epoll loop
 * runs listeners, control, timers and binding; attached namespaces are
 * served by --workers threads, each with its own loop (worker.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "config.h"
#include "control.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "paths.h"
#include "privs.h"
#include "sdglue.h"
#include "session.h"
#include "signals.h"
#include "unixsock.h"
#include "worker.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct broker {
	const char *config_path;
	struct privs_user user;       /* --user, else broker.user */
	int workers;                  /* --workers, -1: broker.workers */
	struct loop *loop;
	struct session_mgr *mgr;
	struct attach *listener;
	struct control *control;
	struct http *http;             /* broker.metrics_listen, optional */
	struct metrics_tick *tick;
	struct sdglue *sd;             /* systemd's notifications */
	int sigfd;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nfq-broker [--config FILE] [--user USER[:GROUP]] [--workers N] [--check]\n"
		"                  [--verbose]\n"
		"\n"
		"Receives the netfilter sockets of network namespaces from nfq-agent and\n"
		"gives NFQUEUE verdicts in them by the policies of FILE (JSON).\n"
		"\n"
		"  -c, --config FILE  configuration file (default " NFQB_PATH_CONFIG ")\n"
		"  -u, --user USER[:GROUP]  once the sockets are bound, become USER (name\n"
		"                     or uid) with GROUP (default: USER's) as its only\n"
		"                     group, keeping the capabilities it needs; overrides\n"
		"                     broker.user\n"
		"  -w, --workers N    serve the namespaces on N threads (0..64; 0 = one per\n"
		"                     online CPU); overrides broker.workers\n"
		"      --check        validate FILE, print \"ok\" or every error, and exit\n"
		"  -v, --verbose      log debug events too\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"Signals: SIGHUP reloads FILE, SIGUSR1 logs per-namespace counters,\n"
		"SIGTERM/SIGINT shut down (queues stay bound to the agents' sockets).\n"
		"Under systemd: Type=notify, and the sockets of nfq-broker.socket.\n"
		"Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n");
}

/* --check: every error one per line, or "ok". Opens nothing but the file. */
static int check_config(const char *path)
{
	struct errs e = { 0 };
	struct cfg *c = cfg_load(path, &e);

	if (c) {
		puts("ok");
		cfg_free(c);
		return 0;
	}
	for (size_t i = 0; i < e.n; i++)
		puts(e.lines[i]);
	errs_reset(&e);
	return EXIT_USAGE;
}

/* Hundreds of namespaces hold three or four fds each. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void reload(struct broker *b)
{
	struct errs e = { 0 };

	log_event(LOGL_INFO, "reload_start", "config=%s", b->config_path);
	/* systemd hears RELOADING/READY through the manager's reload hook
	 * (sdglue.c), so that nfq-ctl reload says so too. */
	(void)session_mgr_reload(b->mgr, b->config_path, &e);
	errs_reset(&e);
}

static void signal_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct broker *b = data;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_event(LOGL_INFO, "shutdown", "signal=%s",
				  si.ssi_signo == SIGTERM ? "TERM" : "INT");
			session_mgr_set_ready(b->mgr, false);
			loop_stop(l);
			return;
		case SIGHUP:
			reload(b);
			break;
		case SIGUSR1:
			session_mgr_log_stats(b->mgr);
			break;
		default:
			break;
		}
	}
}

/* The signals of the usage text, read from a signalfd in the loop. */
static const int broker_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };

/* --workers, else broker.workers; 0 means one per online CPU. */
static unsigned workers_count(int opt, const struct cfg *cfg)
{
	long n = opt >= 0 ? opt : (long)cfg->workers;

	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > WORKER_MAX ? WORKER_MAX : (unsigned)n;
}

static void broker_close(struct broker *b)
{
	sdglue_free(b->sd);
	control_free(b->control);
	http_free(b->http);
	metrics_tick_free(b->tick);
	attach_free(b->listener);
	session_mgr_free(b->mgr);
	if (b->sigfd >= 0) {
		loop_del(b->loop, b->sigfd);
		close(b->sigfd);
	}
	loop_free(b->loop);
}

static int broker_open(struct broker *b, struct cfg *cfg)
{
	char why[512] = "";
	int rc;

	b->loop = loop_new();
	if (!b->loop) {
		log_event(LOGL_ERROR, "start", "error=\"event loop: %s\"", strerror(errno));
		cfg_free(cfg);
		return -errno;
	}
	b->mgr = session_mgr_new(b->loop, cfg);
	if (!b->mgr) {
		cfg_free(cfg);
		return -ENOMEM;
	}
	b->sd = sdglue_new(b->mgr);
	if (!b->sd)
		return -ENOMEM;
	rc = signals_open(broker_signals, sizeof(broker_signals) / sizeof(broker_signals[0]),
			  SFD_NONBLOCK);
	b->sigfd = rc < 0 ? -1 : rc;
	if (rc < 0 || loop_add(b->loop, b->sigfd, EPOLLIN, signal_event, b) < 0) {
		log_event(LOGL_ERROR, "start", "error=\"signals: %s\"", strerror(errno));
		return -EIO;
	}
	b->listener = attach_listen(b->mgr, cfg->listen, cfg->listen_mode, why, sizeof(why));
	if (!b->listener) {
		rc = -errno;
		log_event(LOGL_ERROR, "start", "error=\"%s\"", why);
		return rc;
	}
	/* The control socket (docs/interface.md §5) reads its state from b->mgr. */
	b->control = control_new(b->mgr, b->config_path, cfg->control, cfg->control_mode,
				 why, sizeof(why));
	if (!b->control) {
		rc = -errno;
		log_event(LOGL_ERROR, "start", "error=\"%s\"", why);
		return rc;
	}
	if (cfg->metrics_listen) {
		b->http = http_new(b->mgr, cfg->metrics_listen, why, sizeof(why));
		if (!b->http) {
			rc = -errno;
			log_event(LOGL_ERROR, "start", "error=\"%s\"", why);
			return rc;
		}
		control_set_http(b->control, b->http);
	}
	b->tick = metrics_tick_new(b->mgr);
	if (!b->tick) {
		rc = -errno;
		log_event(LOGL_ERROR, "start", "error=\"ticks: %s\"", strerror(-rc));
		return rc;
	}
	return 0;
}

static int start_workers(struct broker *b)
{
	int rc = session_mgr_start_workers(b->mgr, workers_count(b->workers,
								 session_mgr_cfg(b->mgr)));

	if (rc < 0)
		log_event(LOGL_ERROR, "start", "error=\"worker threads: %s\"", strerror(-rc));
	return rc;
}

/* After this, group members (listen_mode 0660) can reach the agent socket. */
static int give_listen_group(const struct cfg *cfg)
{
	char msg[512], vb[LOG_VALUE_MAX];
	int rc;

	if (!cfg->listen_group || lchown(cfg->listen, (uid_t)-1, cfg->listen_gid) == 0)
		return 0;
	rc = -errno;
	snprintf(msg, sizeof(msg), "cannot give %s to group %s: %s", cfg->listen,
		 cfg->listen_group, strerror(-rc));
	log_event(LOGL_ERROR, "start", "error=%s", log_value(vb, sizeof(vb), msg));
	return rc;
}

/* Everything that needed root is done: keep only what serving needs. */
static int drop_privileges(struct broker *b)
{
	const struct cfg *cfg = session_mgr_cfg(b->mgr);
	struct privs_result res = { 0 };
	char why[256], caps[256], vb[LOG_VALUE_MAX];
	int rc;

	if (!b->user.set && cfg->user)
		b->user = (struct privs_user){ .set = true, .uid = cfg->user_uid,
					       .gid = cfg->user_gid };
	rc = give_listen_group(cfg);
	if (rc < 0)
		return rc;
	rc = privs_drop(privs_needed(cfg), &b->user, &res, why, sizeof(why));
	if (rc < 0) {
		log_event(LOGL_ERROR, "privileges", "error=%s", log_value(vb, sizeof(vb), why));
		return rc;
	}
	log_event(LOGL_INFO, "privileges", "uid=%u gid=%u caps=%s bounding=%s no_new_privs=1",
		  (unsigned)getuid(), (unsigned)getgid(), privs_text(res.kept, caps, sizeof(caps)),
		  res.bounding_cleared ? "cleared" : "kept");
	for (int c = 0; c < 64; c++)
		if (res.missing & PRIVS_BIT(c))
			log_event(LOGL_WARN, "privileges", "missing=%s effect=%s",
				  privs_text(PRIVS_BIT(c), caps, sizeof(caps)),
				  log_value(vb, sizeof(vb), privs_without(c)));
	return 0;
}

static int run(const char *path, const struct privs_user *user, int workers)
{
	struct broker b = { .config_path = path, .user = *user, .sigfd = -1,
			    .workers = workers };
	struct errs e = { 0 };
	struct cfg *cfg = cfg_load(path, &e);
	char vb[LOG_VALUE_MAX], why[512];
	int rc;

	if (!cfg) {
		for (size_t i = 0; i < e.n; i++)
			log_event(LOGL_ERROR, "config_error", "error=%s",
				  log_value(vb, sizeof(vb), e.lines[i]));
		errs_reset(&e);
		return EXIT_USAGE;
	}
	raise_nofile();
	/* Before binding: the sockets systemd holds are used instead. */
	rc = sdglue_sockets(cfg, why, sizeof(why));
	if (rc < 0) {
		log_event(LOGL_ERROR, "start", "error=%s", log_value(vb, sizeof(vb), why));
		cfg_free(cfg);
	} else {
		rc = broker_open(&b, cfg);
	}
	if (rc == 0)
		rc = drop_privileges(&b);
	/* After the drop: capabilities are per thread, and a new thread
	 * inherits its creator's. */
	if (rc == 0)
		rc = start_workers(&b);
	if (rc == 0) {
		const struct cfg *in_force = session_mgr_cfg(b.mgr);

		log_event(LOGL_INFO, "start", "version=%s pid=%d config=%s listen=%s entries=%zu "
			  "policies=%zu grace_ms=%u workers=%u", NFQB_VERSION_STRING, (int)getpid(),
			  path, in_force->listen, in_force->nns,
			  policy_set_count(in_force->policies), in_force->grace_ms,
			  session_mgr_workers(b.mgr, NULL, 0));
		sdglue_ready(b.sd);
		/* Config loaded, every socket listening: the loop now serves. */
		session_mgr_set_ready(b.mgr, true);
		rc = loop_run(b.loop);
		if (rc < 0)
			log_event(LOGL_ERROR, "loop", "error=\"%s\"", strerror(-rc));
		sdglue_stopping(b.sd);
	}
	/* An activated socket the configuration did not name: never used. */
	unixsock_inherit_close();
	broker_close(&b);
	log_event(LOGL_INFO, "exit", "code=%d", rc < 0 ? EXIT_RUNTIME : 0);
	return rc < 0 ? EXIT_RUNTIME : 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256 };
	int workers = -1;
	char *end;
	long nw;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "user", required_argument, NULL, 'u' },
		{ "workers", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *config = NULL, *user_spec = NULL;
	struct privs_user user = { 0 };
	char why[256];
	bool check = false;
	int opt;

	cli_set_program("nfq-broker");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:u:w:vhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case 'u':
			user_spec = optarg;
			break;
		case 'w':
			errno = 0;
			nw = strtol(optarg, &end, 10);
			if (!*optarg || *end || errno || nw < 0 || nw > WORKER_MAX)
				return cli_usage_error("--workers: '%s' is not a number from 0 to %u",
						       optarg, WORKER_MAX);
			workers = (int)nw;
			break;
		case 'v':
			log_set_verbose(true);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version();
			return 0;
		case ':':
		default:
			return cli_bad_option(opt, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!config && access(NFQB_PATH_CONFIG, F_OK) < 0 && errno == ENOENT)
		return cli_usage_error("no --config FILE, and no " NFQB_PATH_CONFIG);
	if (!config)
		config = NFQB_PATH_CONFIG;
	if (!*config)
		return cli_usage_error("--config: empty path");
	/* An unknown --user is a usage error, with --check too. */
	if (user_spec && privs_parse_user(user_spec, &user, why, sizeof(why)) < 0)
		return cli_usage_error("--user: %s", why);
	return check ? check_config(config) : run(config, &user, workers);
}
