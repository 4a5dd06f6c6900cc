/* SPDX-License-Identifier: MIT */
/*
 * A session's steering through its life (steering.h). Every change is one
 * steer_apply() transaction on the session's own nf_tables socket; this
 * file decides when, and keeps what the kernel holds in struct steering.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/sockios.h>

#include "log.h"
#include "session-private.h"
#include "steering.h"

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

	nsfd = ioctl(nfqb_queue_fd(s->q), SIOCGSKNS);
	if (nsfd < 0) {
		err = -errno;
		snprintf(why, whylen, "cannot identify the namespace (SIOCGSKNS: %s)",
			 strerror(errno));
		return err;
	}
	if (m->home_netns_fd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
		err = m->home_netns_fd < 0 ? -EBADF : -errno;
		snprintf(why, whylen, "steering needs CAP_SYS_ADMIN to enter the namespace "
			 "(setns: %s)", strerror(-err));
		goto fail;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
	if (fd < 0)
		err = -errno;
	if (setns(m->home_netns_fd, CLONE_NEWNET) < 0) {
		/* Every later socket would be made in the agent's namespace. */
		log_event(LOGL_ERROR, "setns", "error=\"cannot return to the broker's "
			  "own network namespace: %s\" action=abort", strerror(errno));
		abort();
	}
	if (fd < 0) {
		snprintf(why, whylen, "netlink socket: %s", strerror(-err));
		goto fail;
	}
	steer_socket_setup(fd);
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

/*
 * Make the kernel hold @l's rules (NULL: none, the tables stay empty), or
 * with @event "steer_remove" delete the tables. On success the kernel has
 * exactly that; on failure it keeps what it had (one transaction).
 */
static int change(struct session *s, const struct steer_list *l, const char *event)
{
	bool remove = strcmp(event, "steer_remove") == 0;
	struct steering *st = &s->steer;
	struct steer_result r;
	char wb[LOG_VALUE_MAX];
	int rc;

	if (st->fd < 0) {
		rc = open_in_netns(s, st->why, sizeof(st->why));
		if (rc < 0)
			goto fail;
		st->fd = rc;
	}
	rc = remove ? steer_remove(st->fd, &r) : steer_apply(st->fd, l, &r);
	if (r.backend_found)
		log_event(LOGL_INFO, "steer_backend", "backend=%s detail=\"%s\"",
			  steer_backend_name(r.backend), r.backend == STEER_BACKEND_XT_NFQUEUE ?
			  "kernel has no nft queue expression: xtables-compat NFQUEUE target" :
			  "nft queue expression");
	if (rc < 0) {
		result_why(&r, l, st->why, sizeof(st->why));
		goto fail;
	}
	st->changes++;
	st->err = 0;
	st->why[0] = '\0';
	st->list = l;
	st->stale = false;
	st->installed = l != NULL && !remove;
	if (l)
		st->backend = r.backend;
	log_event(LOGL_INFO, event, "name=%s rules=%zu backend=%s messages=%zu", s->name,
		  l ? l->n : 0, l ? steer_backend_name(r.backend) : "-", r.messages);
	return 0;
fail:
	st->failures++;
	st->err = rc;
	log_event(LOGL_WARN, "steer_error", "name=%s during=%s error=%s", s->name, event,
		  log_value(wb, sizeof(wb), st->why));
	return rc;
}

void steering_attach(struct session *s)
{
	const struct steer_list *l = wanted(s, s->mgr->cfg);

	/* A restarted broker finds its predecessor's tables: rewriting them
	 * reconciles (one table, never two). Adopted queues are the one sign
	 * that a predecessor served this namespace and may have left rules
	 * the config no longer wants: they are flushed, not the tables
	 * deleted (that would drop the packets held while no broker ran).
	 * Otherwise an unsteered namespace costs no socket. */
	s->steer.list = NULL;
	if (!l) {
		if (s->nadopted && change(s, NULL, "steer_clear") == 0)
			steering_close(s);
		return;
	}
	if (change(s, l, "steer_install") < 0) {
		s->steer.list = l;      /* configured, not installed: shown with the error */
		log_event(LOGL_WARN, "steer_unsteered", "name=%s detail=\"served unsteered: "
			  "only rules added by hand reach the queues\"", s->name);
	}
}

void steering_reload(struct session *s, const struct cfg *n)
{
	struct steering *st = &s->steer;
	const struct steer_list *l = wanted(s, n);

	if (s->state == SESSION_BINDING)
		return;         /* installs at bind_complete, from the new config */
	if (!st->err && steer_list_equal(st->list, l)) {
		st->list = l;   /* same rules, now owned by the new config */
		return;
	}
	if (!l && !st->installed && !st->stale) {
		st->list = NULL;
		st->err = 0;
		st->why[0] = '\0';
		return;
	}
	if (change(s, l, l ? "steer_replace" : "steer_clear") < 0) {
		/* The kernel still holds the previous rules, whose list goes
		 * with the old config: keep them marked, not described. */
		st->stale = st->installed;
		st->list = l;
	}
}

void steering_release(struct session *s)
{
	struct steering *st = &s->steer;

	/* A socket exists once anything was written (or tried) there. */
	if (st->fd >= 0)
		(void)change(s, NULL, "steer_remove");
	steering_close(s);
}

void steering_close(struct session *s)
{
	if (s->steer.fd >= 0)
		close(s->steer.fd);
	s->steer.fd = -1;
}

void steering_view(const struct session *s, struct steering_view *v)
{
	const struct steering *st = &s->steer;

	*v = (struct steering_view){
		.list = st->list, .installed = st->installed, .stale = st->stale,
		.err = st->err, .why = st->why, .backend = st->backend,
		.changes = st->changes, .failures = st->failures,
	};
}

int steering_counters(const struct session *s, struct steer_counter *out, size_t n)
{
	if (s->steer.fd < 0 || !s->steer.installed)
		return -ENOENT;
	return steer_counters(s->steer.fd, s->steer.stale ? NULL : s->steer.list, out, n);
}
