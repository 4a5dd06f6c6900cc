/* SPDX-License-Identifier: MIT */
/*
 * A session's steering through its life (steering.h).
 *
 * Every change is one steer_apply()/steer_remove() transaction, run by one
 * worker thread, never by the event loop: an nf_tables commit that follows
 * another one with deletions waits for an RCU grace period (the kernel
 * flushes its global destroy work first), 10-25 ms on the CI machine, and
 * a burst of reloads or releases would stall every namespace's verdicts
 * that long per change. The loop prepares a job that owns everything the
 * worker needs (a socket opened in the namespace, a copy of the list, on
 * release the queue itself), the worker runs jobs in order, and the loop
 * applies each result when the worker's eventfd says it is done.
 *
 * Ownership: a job belongs to the worker's lists from submit to completion,
 * then to done_event(), which frees it. A job points back to its session
 * until the session goes (steering_close() clears the pointer under the
 * lock); an orphaned job still runs, so that a release's removal always
 * follows the session's last install.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/sockios.h>

#include "log.h"
#include "session-private.h"
#include "steering.h"

struct steer_job {
	struct steer_job *next;
	struct session *s;            /* NULL once the session is gone */
	char name[WIRE_NAME_MAX];     /* for the log line, whatever became of s */
	const char *event;            /* steer_install, _replace, _clear, _remove */
	int fd;                       /* NETLINK_NETFILTER socket in the namespace, owned */
	struct steer_list *list;      /* owned copy; NULL: no rules */
	struct nfqb_queue *q;         /* a release's queue: unbound once the rules are gone */
	struct steer_result res;
	int rc;
};

struct steering_worker {
	struct session_mgr *m;
	pthread_t th;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct steer_job *todo, **todo_tail;   /* FIFO: a namespace's changes in order */
	struct steer_job *cur;                 /* being run */
	struct steer_job *done, **done_tail;
	bool stop;
	int efd;                               /* readable: jobs done */
};

/* ------------------------------------------------------------ the worker */

static void *worker_main(void *arg)
{
	struct steering_worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct steer_job *j;

		while (!w->todo && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->todo)
			break;          /* stop, and nothing left to do */
		j = w->todo;
		w->todo = j->next;
		if (!w->todo)
			w->todo_tail = &w->todo;
		w->cur = j;
		pthread_mutex_unlock(&w->mu);
		j->rc = strcmp(j->event, "steer_remove") == 0 ?
			steer_remove(j->fd, &j->res) : steer_apply(j->fd, j->list, &j->res);
		pthread_mutex_lock(&w->mu);
		w->cur = NULL;
		j->next = NULL;
		*w->done_tail = j;
		w->done_tail = &j->next;
		(void)!write(w->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void job_free(struct steer_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	steer_list_free(j->list);
	free(j);
}

static void apply_result(struct session *s, struct steer_job *j);

/* The jobs the worker finished, in order: results applied, queues closed. */
static void done_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct steering_worker *w = data;
	struct steer_job *list, *j;
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&w->mu);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	while ((j = list) != NULL) {
		list = j->next;
		apply_result(j->s, j);
		/* Released: its rules are gone, now its queues may go. */
		if (j->q)
			nfqb_queue_close(j->q);
		job_free(j);
	}
}

static struct steering_worker *worker_get(struct session_mgr *m)
{
	struct steering_worker *w = m->steer_worker;

	if (w)
		return w->running ? w : NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->m = m;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->steer_worker = w;
	if (w->efd < 0 || loop_add(m->loop, w->efd, EPOLLIN, done_event, w) < 0 ||
	    pthread_create(&w->th, NULL, worker_main, w) != 0) {
		log_event(LOGL_ERROR, "steer_worker", "error=\"cannot start the steering "
			  "thread: %s\"", strerror(errno));
		return NULL;
	}
	/* Seen in ps -L and by tests/netns/privileges.sh. */
	pthread_setname_np(w->th, "nfqb-steer");
	w->running = true;
	return w;
}

void steering_worker_free(struct session_mgr *m)
{
	struct steering_worker *w = m->steer_worker;

	if (!w)
		return;
	if (w->running) {
		/* Queued removals still run: released namespaces lose their rules. */
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	if (w->efd >= 0) {
		loop_del(m->loop, w->efd);
		done_event(m->loop, w->efd, EPOLLIN, w);
		close(w->efd);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
	m->steer_worker = NULL;
}

/* ------------------------------------------------------------ the loop's side */

/* The configured steering of @s under config @c (its entry's; none without one). */
static const struct steer_list *wanted(const struct session *s, const struct cfg *c)
{
	const struct cfg_ns *entry = cfg_match(c, s->name);
	const struct steer_list *l = entry ? entry->steer : NULL;

	return l && l->n ? l : NULL;
}

/* A NETLINK_NETFILTER socket inside @s's namespace, or -errno with a reason. */
static int open_in_netns(struct session *s, char *why, size_t whylen)
{
	struct session_mgr *m = s->mgr;
	int nsfd, fd = -1, err = 0;

	nsfd = s->q ? ioctl(nfqb_queue_fd(s->q), SIOCGSKNS) : -1;
	if (nsfd < 0) {
		err = s->q ? -errno : -EBADF;
		snprintf(why, whylen, "cannot identify the namespace (SIOCGSKNS: %s)",
			 strerror(-err));
		return err;
	}
	if (m->home_netns_fd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
		err = m->home_netns_fd < 0 ? -EBADF : -errno;
		if (err == -EPERM)
			snprintf(why, whylen, "steering needs CAP_SYS_ADMIN to enter the "
				 "namespace (setns: %s)", strerror(-err));
		else
			snprintf(why, whylen, "cannot enter the namespace (%s)",
				 m->home_netns_fd < 0 ? "the broker's own namespace is unknown" :
				 strerror(-err));
		goto fail;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0)
		err = -errno;
	if (fd >= 0 && (err = steer_socket_setup(fd)) < 0) {
		close(fd);
		fd = -1;
	}
	session_mgr_return_home(m);
	if (fd < 0)
		snprintf(why, whylen, "netlink socket: %s", strerror(-err));
fail:
	close(nsfd);
	return fd >= 0 ? fd : err;
}

static void result_why(const struct steer_result *r, const struct steer_list *l, char *why,
		       size_t whylen)
{
	char item[64] = "";

	if (r->item >= 0)
		snprintf(item, sizeof(item), " of %s[%d]", l && l->name ? l->name : "steer",
			 r->item);
	snprintf(why, whylen, "kernel refused the %s%s: %s%s%s", r->what ? r->what : "batch",
		 item, strerror(-r->err), r->msg[0] ? " — " : "", r->msg);
}

static void log_failure(const char *name, const char *event, const char *why)
{
	char wb[LOG_VALUE_MAX];

	log_event(LOGL_WARN, "steer_error", "name=%s during=%s error=%s", name, event,
		  log_value(wb, sizeof(wb), why));
}

static const char EV_INSTALL[] = "steer_install";

static void fail_now(struct session *s, const char *event, int err)
{
	s->steer.failures++;
	s->steer.err = err;
	log_failure(s->name, event, s->steer.why);
	if (event == EV_INSTALL)
		log_event(LOGL_WARN, "steer_unsteered", "name=%s detail=\"served unsteered: "
			  "only rules added by hand reach the queues\"", s->name);
}

/*
 * Hand a change to the worker: @l's rules (NULL: none, the tables stay),
 * or the tables' removal with @event "steer_remove" (then @q, if given,
 * is closed once they are gone). Returns 0, or -errno with st->why set.
 */
static int submit(struct session *s, const struct steer_list *l, const char *event,
		  struct nfqb_queue *q)
{
	struct steering_worker *w = worker_get(s->mgr);
	struct steer_job *j = calloc(1, sizeof(*j));
	int rc = -ENOMEM;

	snprintf(s->steer.why, sizeof(s->steer.why), "out of memory");
	if (!w || !j)
		goto fail;
	j->fd = -1;
	j->event = event;
	j->q = q;
	j->s = s;
	snprintf(j->name, sizeof(j->name), "%s", s->name);
	if (l && !(j->list = steer_list_dup(l)))
		goto fail;
	rc = open_in_netns(s, s->steer.why, sizeof(s->steer.why));
	if (rc < 0)
		goto fail;
	j->fd = rc;
	s->steer.why[0] = '\0';
	s->steer.jobs++;
	pthread_mutex_lock(&w->mu);
	*w->todo_tail = j;
	w->todo_tail = &j->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
fail:
	if (j) {
		j->q = NULL;    /* the caller keeps it */
		job_free(j);
	}
	return rc;
}

/* The worker's answer for @j, in the loop, in submission order. */
static void apply_result(struct session *s, struct steer_job *j)
{
	struct steering *st = s ? &s->steer : NULL;
	bool remove = strcmp(j->event, "steer_remove") == 0;
	bool any = j->list && j->list->n;

	if (j->res.backend_found)
		log_event(LOGL_INFO, "steer_backend", "backend=%s detail=\"%s\"",
			  steer_backend_name(j->res.backend),
			  j->res.backend == STEER_BACKEND_XT_NFQUEUE ?
			  "kernel has no nft queue expression: xtables-compat NFQUEUE target" :
			  "nft queue expression");
	if (st)
		st->jobs--;
	if (j->rc < 0) {
		char why[WIRE_REASON_MAX];

		result_why(&j->res, j->list, why, sizeof(why));
		if (!st) {
			log_failure(j->name, j->event, why);
			return;
		}
		if (j->event == EV_INSTALL)
			st->tables = j->res.tables;
		snprintf(st->why, sizeof(st->why), "%s", why);
		/* The kernel kept what it had: an earlier config's rules, if any. */
		st->stale = st->installed;
		fail_now(s, j->event, j->rc);
		return;
	}
	/* A check that found nothing to do is no event. */
	log_event(j->res.messages ? LOGL_INFO : LOGL_DEBUG, j->event,
		  "name=%s rules=%zu backend=%s messages=%zu", j->name, any ? j->list->n : 0,
		  any ? steer_backend_name(j->res.backend) : "-", j->res.messages);
	if (!st)
		return;
	st->changes++;
	st->err = 0;
	st->why[0] = '\0';
	st->stale = false;
	st->tables = j->res.tables;
	st->installed = any && !remove;
	if (st->installed)
		st->backend = j->res.backend;
}

/*
 * Whether every queue @l steers to is bound by @s: a reload does not bind
 * queues for running sessions, so a new steer item may name one this
 * session never bound; its rules would queue to nobody.
 */
static bool queues_bound(const struct session *s, const struct steer_list *l, char *why,
			 size_t whylen)
{
	for (size_t i = 0; l && i < l->n; i++) {
		for (unsigned q = l->items[i].queue_lo; q <= l->items[i].queue_hi; q++) {
			bool found = false;

			for (size_t k = 0; k < s->nqueues && !found; k++)
				found = s->queues[k] == q;
			if (!found) {
				snprintf(why, whylen, "%s[%zu] steers to queue %u, which this "
					 "session has not bound (queues are bound at attach: "
					 "restart its agent)", l->name ? l->name : "steer", i, q);
				return false;
			}
		}
	}
	return true;
}

static bool same_list(const struct steer_list *a, const struct steer_list *b)
{
	const char *na = a ? a->name : NULL, *nb = b ? b->name : NULL;

	/* The name is in every rule's comment, which the counters go by. */
	return steer_list_equal(a, b) && (na == nb || (na && nb && strcmp(na, nb) == 0));
}

static void log_trace(const struct session *s)
{
	char wb[LOG_VALUE_MAX];

	log_event(LOGL_DEBUG, "steer_check", "name=%s error=%s", s->name,
		  log_value(wb, sizeof(wb), s->steer.why));
}

void steering_attach(struct session *s)
{
	const struct steer_list *l = wanted(s, s->mgr->cfg);
	const char *event;
	int rc;

	s->steer.list = l;
	if (l && !queues_bound(s, l, s->steer.why, sizeof(s->steer.why))) {
		fail_now(s, EV_INSTALL, -ENXIO);
		return;
	}
	/* Without steering: adopted queues are the sign that a predecessor
	 * served this namespace and may have left rules the config no longer
	 * wants. Flush them and keep the hooks (the queues may hold packets).
	 * Otherwise an unsteered namespace costs no socket, job or thread. */
	if (!l && !s->nadopted)
		return;
	/* A restarted broker finds its predecessor's tables: rewriting them
	 * reconciles (one table, never two). */
	event = l ? EV_INSTALL : "steer_clear";
	rc = submit(s, l, event, NULL);
	if (rc < 0 && l)
		fail_now(s, event, rc);
	else if (rc < 0)
		log_trace(s);   /* nothing configured: no error to show */
}

void steering_reload(struct session *s, const struct cfg *n)
{
	struct steering *st = &s->steer;
	const struct steer_list *l = wanted(s, n);
	int rc;

	if (s->state == SESSION_BINDING)
		return;         /* installs at bind_complete, from the new config */
	if (!st->err && same_list(st->list, l)) {
		st->list = l;   /* same rules, now owned by the new config */
		return;
	}
	st->list = l;
	if (!l && !st->tables && !st->stale && !st->jobs) {
		st->err = 0;
		st->why[0] = '\0';
		return;
	}
	if (l && !queues_bound(s, l, st->why, sizeof(st->why))) {
		st->stale = st->installed;
		fail_now(s, "steer_replace", -ENXIO);
		return;
	}
	rc = submit(s, l, l ? "steer_replace" : "steer_clear", NULL);
	if (rc < 0) {
		st->stale = st->installed;
		fail_now(s, l ? "steer_replace" : "steer_clear", rc);
	}
}

bool steering_release(struct session *s)
{
	struct steering *st = &s->steer;
	struct nfqb_queue *q = s->q;

	if (!st->tables && !st->installed && !st->stale && !st->jobs)
		return false;
	/* The queue goes with the job: unbound once the rules are gone, so
	 * nothing is queued to nobody while they still match. */
	if (q)
		loop_del(s->mgr->loop, nfqb_queue_fd(q));
	if (submit(s, NULL, "steer_remove", q) < 0) {
		/* session_destroy() unbinds and closes it, rules or not. */
		log_failure(s->name, "steer_remove", st->why);
		return false;
	}
	s->q = NULL;
	return true;
}

void steering_close(struct session *s)
{
	struct steering_worker *w = s->mgr->steer_worker;

	if (s->steer.fd >= 0)
		close(s->steer.fd);
	s->steer.fd = -1;
	if (!w || !s->steer.jobs)
		return;
	/* Its jobs still run (a removal must follow the last install), but
	 * their results have no session to go to. */
	pthread_mutex_lock(&w->mu);
	for (struct steer_job *j = w->todo; j; j = j->next)
		if (j->s == s)
			j->s = NULL;
	if (w->cur && w->cur->s == s)
		w->cur->s = NULL;
	for (struct steer_job *j = w->done; j; j = j->next)
		if (j->s == s)
			j->s = NULL;
	pthread_mutex_unlock(&w->mu);
	s->steer.jobs = 0;
}

void steering_view(const struct session *s, struct steering_view *v)
{
	const struct steering *st = &s->steer;

	*v = (struct steering_view){
		.list = st->list, .installed = st->installed, .stale = st->stale,
		.pending = st->jobs > 0, .err = st->err, .why = st->why,
		.backend = st->backend, .changes = st->changes, .failures = st->failures,
	};
}

int steering_counters(const struct session *cs, struct steer_counter *out, size_t n)
{
	/* The read socket is a cache of the session's: opened on first use. */
	struct session *s = (struct session *)cs;
	struct steering *st = &s->steer;
	char why[WIRE_REASON_MAX];
	int rc;

	if (!st->installed)
		return -ENOENT;
	/* A socket of the loop's own: the worker's are its jobs'. */
	if (st->fd < 0) {
		rc = open_in_netns(s, why, sizeof(why));
		if (rc < 0)
			return rc;
		st->fd = rc;
	}
	return steer_counters(st->fd, st->stale ? NULL : st->list, out, n);
}
