/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#include "log.h"
#include "session-private.h"
#include "steering.h"

#define KSTATS_PATH "/proc/thread-self/net/netfilter/nfnetlink_queue"

static void session_destroy(struct session *s, bool unbind);
static void bind_timeout(struct loop *l, struct loop_timer *t, void *data);
static void health_check(struct loop *l, struct loop_timer *t, void *data);

const char *session_state_name(enum session_state st)
{
	switch (st) {
	case SESSION_ATTACHED: return "attached";
	case SESSION_GRACE:    return "grace";
	case SESSION_BINDING:  return "binding";
	}
	return "?";
}

/* "1,2,7" into @buf. */
static const char *queues_str(const struct session *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->nqueues && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%u", i ? "," : "", s->queues[i]);
	return buf;
}

/* ------------------------------------------------------------ verdict step */

static const char *addr_str(const struct pktmeta *m, const uint8_t *a, char *buf,
			    size_t len)
{
	if (m->family == 4)
		return inet_ntop(AF_INET, a, buf, (socklen_t)len);
	if (m->family == 6)
		return inet_ntop(AF_INET6, a, buf, (socklen_t)len);
	return "-";
}

/*
 * The log line a rule with "log" (or an audited verdict) asks for, once
 * its rate limit lets it: @held lines were held back before it.
 */
static void log_packet(const struct session *s, const struct nfqb_packet *p,
		       const struct pktmeta *m, int rule, const struct policy_action *act,
		       int rc, uint64_t held)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], pb[8], vb[24], wb[40];
	char rb[LOG_VALUE_MAX], cb[LOG_VALUE_MAX + 16], hb[40];

	wb[0] = cb[0] = hb[0] = '\0';
	if (act->audited)
		snprintf(wb, sizeof(wb), " audit=%s",
			 policy_verdict_name(act->would_verdict, vb, sizeof(vb)));
	if (act->comment)
		snprintf(cb, sizeof(cb), " comment=%s",
			 log_value(rb, sizeof(rb), act->comment));
	if (held)
		snprintf(hb, sizeof(hb), " suppressed=%" PRIu64, held);
	log_event(LOGL_INFO, "packet",
		  "ns=%s queue=%u id=%u policy=%s rule=%s family=%s proto=%s src=%s dst=%s "
		  "sport=%u dport=%u len=%u verdict=%s%s%s%s%s",
		  s->name, nfqb_packet_queue(p), nfqb_packet_id(p), policy_name(s->policy),
		  log_value(rb, sizeof(rb), policy_rule_name(s->policy, rule)),
		  m->family == 4 ? "ipv4" : m->family == 6 ? "ipv6" : "-",
		  pktmeta_proto_name(m->proto, pb, sizeof(pb)),
		  addr_str(m, m->src, src, sizeof(src)), addr_str(m, m->dst, dst, sizeof(dst)),
		  m->sport, m->dport, m->len,
		  policy_verdict_name(act->verdict, vb, sizeof(vb)), wb, cb, hb,
		  rc < 0 ? " verdict_failed=true" : "");
}

/* What the policy can ask about @p, with no allocation. */
static void meta_fill(struct pktmeta *m, const struct session *s,
		      const struct nfqb_packet *p)
{
	const void *l3;
	size_t len = 0;

	memset(m, 0, sizeof(*m));
	m->hook = nfqb_packet_hook(p);
	m->mark = nfqb_packet_mark(p);
	m->indev_id = links_id(s->links, nfqb_packet_indev(p));
	m->outdev_id = links_id(s->links, nfqb_packet_outdev(p));
	m->has_uid = nfqb_packet_uid(p, &m->uid) == 0;
	m->has_gid = nfqb_packet_gid(p, &m->gid) == 0;
	l3 = nfqb_packet_payload(p, &len);
	m->len = nfqb_packet_cap_len(p);
	if (!m->len)
		m->len = (uint32_t)len;
	if (l3)
		pktmeta_parse_l3(m, l3, len);
	l3 = nfqb_packet_ct(p, &len, NULL);
	if (l3)
		pktmeta_parse_ct(m, l3, len);
}

const struct session_counter_def session_verdict_counters[] = {
	{ "accept", "accept", offsetof(struct session_counters, accept) },
	{ "drop", "drop", offsetof(struct session_counters, drop) },
	{ "repeat", "repeat", offsetof(struct session_counters, repeat) },
	{ "queue", "queue", offsetof(struct session_counters, queue) },
	{ "error", "errors", offsetof(struct session_counters, errors) },
	{ "would_drop", "would_drop", offsetof(struct session_counters, would_drop) },
};
const size_t session_verdict_ncounters =
	sizeof(session_verdict_counters) / sizeof(session_verdict_counters[0]);

/*
 * A counter has one writer (the thread serving the session, or the
 * worker owning a totals struct) and readers on the main thread: a relaxed
 * store of the incremented value is a plain mov on x86, and no data race.
 */
#define BUMP(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)

static void count(struct session_counters *c, uint32_t len, uint32_t verdict, int rc)
{
	BUMP(c->packets, 1);
	BUMP(c->bytes, len);
	if (rc < 0) {
		BUMP(c->errors, 1);
		return;
	}
	switch (verdict & 0xffff) {
	case NFQB_ACCEPT: BUMP(c->accept, 1); break;
	case NFQB_DROP:   BUMP(c->drop, 1);   break;
	case NFQB_REPEAT: BUMP(c->repeat, 1); break;
	case NFQB_QUEUE:  BUMP(c->queue, 1);  break;
	}
}

/* Where @s's packets count in the broker's totals: its worker's, or the manager's. */
static struct session_counters *tot_c(struct session *s)
{
	return s->tot_c ? s->tot_c : &s->mgr->total;
}

static struct hist *tot_h(struct session *s)
{
	return s->tot_h ? s->tot_h : &s->mgr->latency;
}

/*
 * Audit mode: the packet is accepted, unmarked, and what the policy
 * decided is kept in @copy for the counters, the log line and observers.
 */
static const struct policy_action *audit(struct session *s, int rule,
					 const struct policy_action *act,
					 struct policy_action *copy)
{
	*copy = *act;
	copy->verdict = NFQB_ACCEPT;
	copy->set_mark = false;
	copy->connmark = 0;
	copy->audited = true;
	copy->would_verdict = act->verdict;
	if ((act->verdict & 0xffff) == NFQB_DROP) {
		BUMP(s->c.would_drop, 1);
		BUMP(tot_c(s)->would_drop, 1);
		policy_count_would_drop(s->policy, rule);
	}
	return copy;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The verdict step: every packet of every namespace passes here, as the
 * nfqb callback. The rule engine plugs in through policy_eval() and
 * policy_count().
 * Allocates nothing (tests/test-hotpath.c counts).
 */
void session_verdict(struct nfqb_packet *p, void *user)
{
	struct session *s = user;
	struct session_mgr *m = s->mgr;
	const struct policy_action *act;
	struct policy_action audited;
	struct pktmeta meta;
	uint64_t held;
	size_t nobs;
	int rule, rc = 0;

	meta_fill(&meta, s, p);
	rule = policy_eval(s->policy, &meta, &act);
	policy_count(s->policy, rule, meta.len);
	if (act->verdict != NFQB_ACCEPT && (s->audit || policy_audit(s->policy)))
		act = audit(s, rule, act, &audited);
	/* set_connmark is a packet mark bit a CONNMARK --save-mark rule
	 * copies to the flow (docs/policy.md): the kernel has no conntrack
	 * glue for queue verdicts. */
	if (act->set_mark || act->connmark)
		rc = nfqb_packet_set_mark(p, (act->set_mark ? act->mark : meta.mark) |
					  act->connmark);
	if (rc == 0)
		rc = nfqb_packet_verdict(p, act->verdict);
	count(&s->c, meta.len, act->verdict, rc);
	count(tot_c(s), meta.len, act->verdict, rc);
	if ((act->log || act->audited) &&
	    policy_log_take(s->policy, rule, mono_ns(), &held))
		log_packet(s, p, &meta, rule, act, rc, held);
	/* Registered by the main thread while workers run: data before fn
	 * (release), fn before the count (session_mgr_observe). */
	nobs = __atomic_load_n(&m->nobs, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < nobs; i++) {
		session_observer_fn fn = __atomic_load_n(&m->obs[i].fn, __ATOMIC_ACQUIRE);

		if (fn)
			fn(s, p, &meta, rule, act, rc,
			   __atomic_load_n(&m->obs[i].data, __ATOMIC_RELAXED));
	}
}

/* ------------------------------------------------------------ kernel stats */

void session_mgr_return_home(struct session_mgr *m)
{
	if (setns(m->home_netns_fd, CLONE_NEWNET) < 0) {
		/* Every later stats read and socket would be in the agent's
		 * namespace: no way to go on safely. */
		log_event(LOGL_ERROR, "setns", "error=\"cannot return to the broker's "
			  "own network namespace: %s\" action=abort", strerror(errno));
		abort();
	}
}

/* nfqb_kstats_read inside namespace @nsfd, returning to the broker's own. */
static int kstats_read_in(struct session_mgr *m, int nsfd, struct nfqb_kstat *out,
			  size_t max)
{
	int n;

	if (m->home_netns_fd < 0)
		return -EBADF;
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return -errno;
	n = nfqb_kstats_read(KSTATS_PATH, out, max);
	session_mgr_return_home(m);
	return n;
}

/* nfqb_kstats_read of the namespace the session's socket lives in. */
static int kstats_read_netns(const struct session *s, struct nfqb_kstat *out, size_t max)
{
	char path[64];
	int nsfd, n;

	nsfd = ioctl(nfqb_queue_fd(s->q), SIOCGSKNS);
	n = nsfd < 0 ? -errno : kstats_read_in(s->mgr, nsfd, out, max);
	if (nsfd >= 0)
		close(nsfd);
	/* Without CAP_SYS_ADMIN for setns, an agent that lives in the
	 * namespace (nsenter) shows it through its own /proc entry. */
	if (n >= 0 || n == -ENOENT || s->agent_pid <= 0 || s->lease_fd < 0)
		return n;
	snprintf(path, sizeof(path), "/proc/%d/net/netfilter/nfnetlink_queue", (int)s->agent_pid);
	return nfqb_kstats_read(path, out, max);
}

int session_kstats(const struct session *s, struct nfqb_kstat *out, size_t max)
{
	struct nfqb_kstat local[64], *all = local;
	size_t cap = sizeof(local) / sizeof(local[0]);
	uint32_t portid = nfqb_queue_portid(s->q);
	size_t got = 0;
	int n;

	n = kstats_read_netns(s, all, cap);
	if (n > (int)cap) {
		/* Many queues in that namespace: read again with room for all. */
		cap = (size_t)n + 16;
		all = calloc(cap, sizeof(*all));
		if (!all)
			return -ENOMEM;
		n = kstats_read_netns(s, all, cap);
	}
	if (n == -ENOENT)
		n = 0;
	for (int i = 0; i < n && (size_t)i < cap; i++)
		if (all[i].portid == portid && got < max)
			out[got++] = all[i];
	if (all != local)
		free(all);
	/* Bound queues always show there: none means we read another
	 * namespace's file (no CAP_SYS_ADMIN to enter this one). */
	if (n >= 0 && got == 0 && s->nqueues > 0)
		return -ENODATA;
	return n < 0 ? n : (int)got;
}

const char *session_kstats_strerror(int err)
{
	if (err == -ENODATA)
		return "queue statistics of this namespace not readable "
		       "(the broker needs CAP_SYS_ADMIN to enter it)";
	return strerror(-err);
}

/* Bounds the drain of an adopted socket while traffic keeps coming. */
#define ADOPT_DRAIN_ROUNDS 1024

static int run_observed(struct session *s);

/*
 * A restarted broker adopted queues the previous one had bound. Packets
 * whose messages still wait in the socket are simply read and decided
 * now; packets the previous broker read but never decided wait in the
 * kernel with no message left to read: REPEAT (a batch up to the id_seq
 * seen before the drain) sends them through the hook again, so that this
 * broker judges them. Draining first keeps every packet counted once.
 */
static void settle_adopted(struct session *s)
{
	struct nfqb_kstat ks[64];
	int n = session_kstats(s, ks, sizeof(ks) / sizeof(ks[0]));

	if (n < 0) {
		log_event(LOGL_WARN, "adopt", "name=%s error=\"kernel queue stats: %s\"",
			  s->name, session_kstats_strerror(n));
		return;
	}
	/* Packets decided in the drain are latency observations too: the
	 * histogram's count stays the packets decided. */
	for (int i = 0; i < ADOPT_DRAIN_ROUNDS; i++)
		if (run_observed(s) <= 0)
			break;
	for (size_t i = 0; i < s->nqueues; i++) {
		uint16_t num = s->queues[i];

		if (!nfqb_queue_adopted(s->q, num))
			continue;
		for (int k = 0; k < n; k++) {
			int rc;

			if (ks[k].queue != num || ks[k].id_seq == 0)
				continue;
			rc = nfqb_queue_verdict_batch(s->q, num, ks[k].id_seq, NFQB_REPEAT);
			if (rc < 0)
				log_event(LOGL_WARN, "adopt", "name=%s queue=%u id_seq=%u "
					  "error=\"%s\"", s->name, num, ks[k].id_seq,
					  strerror(-rc));
			else
				log_event(LOGL_INFO, "adopt", "name=%s queue=%u queued=%u "
					  "id_seq=%u settled=repeat", s->name, num,
					  ks[k].queued, ks[k].id_seq);
		}
	}
}

/* ------------------------------------------------------------ fd events */

static void release(struct session *s, const char *reason);
static void bind_advance(struct session *s);

/* Tell the agent why its session ends (it may be gone: then nothing). */
static void lease_refuse_flags(struct session *s, const char *reason, uint32_t flags)
{
	struct wire_refuse r;

	if (s->lease_fd < 0)
		return;
	wire_refuse_init_flags(&r, reason, flags);
	(void)wire_send(s->lease_fd, &r, sizeof(r), NULL, 0);
}

static void lease_refuse(struct session *s, const char *reason)
{
	lease_refuse_flags(s, reason, 0);
}

/*
 * Verdict sends go to the kernel's address without blocking, so they fail
 * only when the socket itself misbehaves (an agent sharing it shrank its
 * send buffer, ...). Logged at most once a SESSION_SEND_LOG_MS; failing
 * for SESSION_SEND_FAIL_MS with no successful round between ends the
 * session: its packets go undecided anyway, and others must not pay for
 * the log lines. Returns true when @s was released.
 */
static bool sends_failing(struct session *s, int rc, char *why, size_t whylen)
{
	struct nfqb_queue_stats st;
	uint64_t now, fresh;

	nfqb_queue_get_stats(s->q, &st);
	/* For the main thread's readers (session_overruns): a round's work. */
	if (st.enobufs != s->enobufs)
		__atomic_store_n(&s->enobufs, st.enobufs, __ATOMIC_RELAXED);
	if (st.send_errors == s->send_errors_seen) {
		if (rc > 0)
			s->failing_since_ms = 0;   /* verdicts went through */
		return false;
	}
	fresh = st.send_errors - s->send_errors_seen;
	s->send_errors_seen = st.send_errors;
	now = loop_now_ms();
	/* A streak is failures with no quiet SESSION_SEND_FAIL_MS between. */
	if (!s->failing_since_ms || now - s->last_fail_ms > s->mgr->send_fail_ms)
		s->failing_since_ms = now;
	s->last_fail_ms = now;
	if (now - s->fail_logged_ms >= SESSION_SEND_LOG_MS) {
		s->fail_logged_ms = now;
		log_event(LOGL_WARN, "verdict_send_error", "name=%s new_errors=%" PRIu64
			  " send_errors=%" PRIu64 " error=\"%s\" failing_ms=%" PRIu64,
			  s->name, fresh, st.send_errors, rc < 0 ? strerror(-rc) : "-",
			  now - s->failing_since_ms);
	}
	if (now - s->failing_since_ms < s->mgr->send_fail_ms)
		return false;
	snprintf(why, whylen, "verdicts could not be sent for %u ms (%s): the "
		 "namespace's netfilter socket misbehaves", s->mgr->send_fail_ms,
		 rc < 0 ? strerror(-rc) : "send errors");
	return true;
}

/* sends_failing() on the main loop: the session ends here. */
static bool check_sends(struct session *s, int rc)
{
	char why[WIRE_REASON_MAX];

	if (!sends_failing(s, rc, why, sizeof(why)))
		return false;
	lease_refuse(s, why);
	release(s, why);
	return true;
}

/*
 * Every packet of a dispatch round was received after @t0 and had its
 * verdict sent (the run flushes them) by now: the round's duration is each
 * one's latency, at most. Two clock reads per round, none per packet.
 */
static void observe_latency(struct session *s, uint64_t t0, uint64_t packets_before)
{
	uint64_t n = s->c.packets - packets_before, dt;

	if (!n)
		return;
	dt = hist_now_ns() - t0;
	hist_add(&s->latency, &hist_latency_bounds, dt, n);
	hist_add(tot_h(s), &hist_latency_bounds, dt, n);
}

/* One non-blocking run of @s's queue, observed by the latency histograms. */
static int run_observed(struct session *s)
{
	uint64_t t0 = hist_now_ns(), before = s->c.packets;
	int rc = nfqb_queue_run(s->q, false);

	observe_latency(s, t0, before);
	return rc;
}

/* A run that failed as a whole (not a verdict send). */
static void queue_error(struct session *s, int rc)
{
	uint64_t errors;

	if (rc >= 0 || rc == -EAGAIN || rc == -EINTR)
		return;
	errors = s->c.errors + 1;
	__atomic_store_n(&s->c.errors, errors, __ATOMIC_RELAXED);
	/* A socket error repeats per packet: log on powers of two only. */
	if ((errors & (errors - 1)) == 0)
		log_event(LOGL_WARN, "queue_error", "name=%s error=\"%s\" errors=%" PRIu64,
			  s->name, strerror(-rc), errors);
}

static void queue_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct session *s = data;
	int rc = run_observed(s);

	/* The answer to a bind step arrived during the run (which stopped
	 * there): take the next step now, outside the library. */
	if (s->state == SESSION_BINDING && s->bind_answered) {
		bind_advance(s);
		return;     /* @s may be gone */
	}
	if (check_sends(s, rc))
		return;
	queue_error(s, rc);
}

/*
 * queue_event() of an attached session on its worker thread. A worker
 * never ends a session: when the sends keep failing it stops reading the
 * socket, flags the session and wakes the main thread (wake_event()).
 */
static bool worker_run(struct loop *l, int fd, struct session *s)
{
	uint64_t one = 1;
	int rc = run_observed(s);

	if (sends_failing(s, rc, s->fail_why, sizeof(s->fail_why))) {
		loop_del(l, fd);
		__atomic_store_n(&s->send_failed, true, __ATOMIC_RELEASE);
		if (write(s->mgr->wake_fd, &one, sizeof(one)) < 0) {
			/* the counter is non-zero already: the main thread wakes */
		}
		return false;
	}
	queue_error(s, rc);
	return true;
}

static void worker_queue_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct session *s = data;

	/* Watched edge-triggered: what a run left (its budget spent, an
	 * error) would not wake the fd again. */
	if (worker_run(l, fd, s) && !nfqb_queue_drained(s->q))
		(void)loop_again(l, fd);
}

/* The main thread's side: release what the workers flagged. */
static void wake_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct session_mgr *m = data;
	struct session *s, *next;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: drained by an earlier round */
	}
	for (s = m->head; s; s = next) {
		next = s->next;
		if (!__atomic_load_n(&s->send_failed, __ATOMIC_ACQUIRE))
			continue;
		lease_refuse(s, s->fail_why);
		release(s, s->fail_why);
	}
}

/* The socket stays open (other fds may not take its number while a call
 * is under way); closed when the session goes. */
static void rtnl_drop(struct session *s, struct loop *l, int fd, int err)
{
	log_event(LOGL_WARN, "rtnl_error", "name=%s error=\"%s\" (interface names "
		  "frozen for this namespace)", s->name, strerror(-err));
	loop_del(l, fd);
	__atomic_store_n(&s->rtnl_off, true, __ATOMIC_RELEASE);
}

static void rtnl_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct session *s = data;
	int rc = links_read(s->links, fd, s->pset);

	if (rc < 0)
		rtnl_drop(s, l, fd, rc);
}

/* ------------------------------------------------------------ threads */

/*
 * Run @fn for @s on the thread that serves it: through worker_call() for
 * a worker's session, right here for one on the manager's loop.
 */
static int session_call(struct session *s,
			int (*fn)(struct worker *w, struct loop *l, void *arg))
{
	if (!s->worker)
		return fn(NULL, s->mgr->loop, s);
	return worker_call(s->worker, fn, s);
}

/* Install what the main thread staged: policy, audit, interface names. */
static int apply_call(struct worker *w, struct loop *l, void *arg)
{
	struct session *s = arg;

	s->policy = s->next_policy;
	s->audit = s->next_audit;
	if (s->next_pset) {
		s->pset = s->next_pset;
		s->next_pset = NULL;
		if (s->links)
			links_remap(s->links, s->pset);
	}
	if (s->next_links) {
		int rc;

		links_free(s->links);
		s->links = s->next_links;
		s->next_links = NULL;
		rc = loop_add(l, s->rtnl_fd, EPOLLIN, rtnl_event, s);
		if (rc < 0)
			rtnl_drop(s, l, s->rtnl_fd, rc);
	}
	return 0;
}

static int assign_call(struct worker *w, struct loop *l, void *arg)
{
	struct session *s = arg;
	/* Edge-triggered: a level-triggered fd is polled once more by the
	 * epoll_wait() after each run, 0.3-0.5 us of a lone packet's round
	 * trip here (bench/README.md, "What limits the latency");
	 * worker_queue_event() reruns what a run left. */
	int rc = loop_add(l, nfqb_queue_fd(s->q), EPOLLIN | EPOLLET, worker_queue_event, s);

	/* records the last run on the manager's loop left (it failed with
	 * some held) are not in the socket for the add to report */
	if (rc == 0 && !nfqb_queue_drained(s->q))
		(void)loop_again(l, nfqb_queue_fd(s->q));
	if (rc == 0 && s->rtnl_fd >= 0 && !s->rtnl_off) {
		rc = loop_add(l, s->rtnl_fd, EPOLLIN, rtnl_event, s);
		if (rc < 0)
			loop_del(l, nfqb_queue_fd(s->q));
	}
	return rc;
}

static int unassign_call(struct worker *w, struct loop *l, void *arg)
{
	struct session *s = arg;

	loop_del(l, nfqb_queue_fd(s->q));
	if (s->rtnl_fd >= 0)
		loop_del(l, s->rtnl_fd);
	return 0;
}

/*
 * Solo: a worker with a single session sleeps in that session's receive
 * (nfqb_queue_wait()) rather than in epoll_wait() and then a receive, one
 * system call fewer per wakeup: 0.4-0.5 us of a lone packet's round trip
 * here (bench/README.md, "What limits the latency"). While records come
 * one per wake the library reads them one at a time and gives each
 * verdict before looking for more: two system calls per packet (the
 * receive, the verdict), where the reference loop makes three. Its
 * loop's other fds then wake it through the main thread: worker_call()
 * kicks it, and the session's
 * NETLINK_ROUTE socket is watched on the main loop too (edge-triggered:
 * one kick per message batch), so a link change is read as
 * soon as it would have been. A kick is an acknowledgement the kernel
 * queues on the session's own socket (nfqb_queue_wake()), so no wakeup
 * falls between the worker's look at its flag and its receive.
 */
static void solo_kick(void *arg)
{
	struct session *s = arg;

	/* fails only when the socket cannot take a record, and then it holds
	 * records already: the receive does not sleep */
	(void)nfqb_queue_wake(s->q);
}

/* The loop has nothing ready and nothing queued: sleep in the receive. */
static void solo_idle(struct loop *l, void *data)
{
	struct session *s = data;
	int fd = nfqb_queue_fd(s->q);

	while (!worker_kick_take(s->worker)) {
		/* its sends failed: no longer read (the main thread releases it) */
		if (__atomic_load_n(&s->send_failed, __ATOMIC_ACQUIRE)) {
			loop_set_idle(l, NULL, NULL);
			return;
		}
		/* an error of the wait's receive is the run's to report: the
		 * socket says it again */
		worker_sleeping(s->worker, true);
		(void)nfqb_queue_wait(s->q);
		worker_sleeping(s->worker, false);
		/* What the socket still has, or what a run held back, the
		 * next wait takes: a run after a wait of one record gives its
		 * verdict without looking for more, so it is not drained, and
		 * is not asked. No epoll_wait() happens here: the fd stays in
		 * the loop's set (edge-triggered), where every record that
		 * arrives meanwhile is reported to the loop's next one, and
		 * leaving solo queues a run that looks (solo_off_call()). */
		if (!worker_run(l, fd, s))
			return;
	}
}

static int solo_call(struct worker *w, struct loop *l, void *arg)
{
	struct session *s = arg;

	/* a session whose sends failed is not read any more */
	if (__atomic_load_n(&s->send_failed, __ATOMIC_ACQUIRE))
		s = NULL;
	loop_set_idle(l, s ? solo_idle : NULL, s);
	return 0;
}

/* Back to epoll_wait(): the first run there looks until the socket is
 * empty, whatever the solo runs left unlooked (-ENOENT, ignored, when the
 * fd is no longer watched: its sends failed). */
static int solo_off_call(struct worker *w, struct loop *l, void *arg)
{
	struct session *s = arg;

	loop_set_idle(l, NULL, NULL);
	(void)loop_again(l, nfqb_queue_fd(s->q));
	return 0;
}

static void solo_rtnl_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct session *s = data;

	/* the worker gave the socket up (rtnl_drop()): so does this watch */
	if (__atomic_load_n(&s->rtnl_off, __ATOMIC_ACQUIRE)) {
		loop_del(l, fd);
		return;
	}
	worker_kick(s->worker);
}

/* Whether @s is its worker's solo session (mgr->solo[] says). */
static bool solo_is(const struct session *s)
{
	return s->worker && s->mgr->solo[worker_index(s->worker)] == s;
}

/* Watch @s's route socket on the main loop while it is solo. */
static void solo_watch_rtnl(struct session *s)
{
	if (solo_is(s) && s->rtnl_fd >= 0 &&
	    loop_add(s->mgr->loop, s->rtnl_fd, EPOLLIN | EPOLLET, solo_rtnl_event, s) < 0)
		log_event(LOGL_WARN, "solo", "name=%s error=\"cannot watch the route socket; "
			  "link changes are read with the next packet\"", s->name);
}

static void solo_enter(struct session *s)
{
	s->mgr->solo[worker_index(s->worker)] = s;
	worker_set_kick(s->worker, solo_kick, s);
	(void)worker_call(s->worker, solo_call, s);
	solo_watch_rtnl(s);
	log_event(LOGL_DEBUG, "solo", "name=%s worker=%u state=on", s->name,
		  worker_index(s->worker));
}

/* @w's solo session, if it has one, goes back to waiting in epoll: before
 * another session joins @w (its packets never wait on that sleep) and
 * before the solo one leaves. */
static void solo_stop(struct session_mgr *m, struct worker *w)
{
	struct session *s = m->solo[worker_index(w)];

	if (!s)
		return;
	(void)worker_call(w, solo_off_call, s);
	worker_set_kick(w, NULL, NULL);
	m->solo[worker_index(w)] = NULL;
	if (s->rtnl_fd >= 0)
		loop_del(m->loop, s->rtnl_fd);
	log_event(LOGL_DEBUG, "solo", "name=%s worker=%u state=off", s->name,
		  worker_index(w));
}

/* After @w's load changed: its one session, if it has exactly one, goes
 * solo (none on the way out of session_mgr_free()). */
static void solo_start(struct session_mgr *m, struct worker *w)
{
	struct session *s;

	if (worker_load(w) != 1 || m->closing || m->solo[worker_index(w)])
		return;
	for (s = m->head; s; s = s->next)
		if (s->worker == w) {
			solo_enter(s);
			return;
		}
}

/*
 * Hand a bound session to the least-loaded worker: its sockets leave the
 * manager's loop for the worker's. No-op without workers.
 */
static int session_assign(struct session *s)
{
	struct session_mgr *m = s->mgr;
	struct worker *w = worker_pool_least_loaded(m->pool);
	int rc;

	if (!w)
		return 0;
	loop_del(m->loop, nfqb_queue_fd(s->q));
	if (s->rtnl_fd >= 0)
		loop_del(m->loop, s->rtnl_fd);
	s->worker = w;
	s->tot_c = &worker_totals_mut(w)->c;
	s->tot_h = &worker_totals_mut(w)->latency;
	solo_stop(m, w);
	rc = session_call(s, assign_call);
	if (rc < 0) {
		s->worker = NULL;
		s->tot_c = NULL;
		s->tot_h = NULL;
		solo_start(m, w);      /* its one session again, if it had one */
		return rc;
	}
	worker_load_add(w, 1);
	solo_start(m, w);
	return 0;
}

/* Take @s back from its worker: nothing there reads it once this returns. */
static void session_unassign(struct session *s)
{
	struct worker *w = s->worker;

	if (!w)
		return;
	solo_stop(s->mgr, w);
	(void)session_call(s, unassign_call);
	worker_load_add(w, -1);
	s->worker = NULL;
	solo_start(s->mgr, w);
}

/* The socket's overruns: the worker publishes them for the main thread. */
static uint64_t session_overruns(const struct session *s)
{
	struct nfqb_queue_stats st;

	if (s->worker)
		return __atomic_load_n(&s->enobufs, __ATOMIC_RELAXED);
	nfqb_queue_get_stats(s->q, &st);
	return st.enobufs;
}

static void release(struct session *s, const char *reason)
{
	char rb[LOG_VALUE_MAX];

	session_unassign(s);
	log_event(LOGL_INFO, "release",
		  "name=%s netns_inode=%" PRIu64 " reason=%s packets=%" PRIu64
		  " bytes=%" PRIu64 " accept=%" PRIu64 " drop=%" PRIu64,
		  s->name, s->netns_ino, log_value(rb, sizeof(rb), reason), s->c.packets,
		  s->c.bytes, s->c.accept, s->c.drop);
	/* Rules out before the queues go: nothing is queued to nobody. */
	steering_release(s);
	session_destroy(s, true);
}

static void grace_over(struct loop *l, struct loop_timer *t, void *data)
{
	release(data, "grace period over");
}

static void lease_lost(struct session *s, const char *why)
{
	struct session_mgr *m = s->mgr;
	uint32_t grace = m->cfg->grace_ms;
	char wb[LOG_VALUE_MAX], rb[WIRE_REASON_MAX];

	if (s->state == SESSION_BINDING) {
		/* Never attached: nothing to keep for a successor. */
		snprintf(rb, sizeof(rb), "%s while its queues were being bound", why);
		release(s, rb);
		return;
	}
	loop_del(m->loop, s->lease_fd);
	close(s->lease_fd);
	s->lease_fd = -1;
	s->state = SESSION_GRACE;
	log_event(LOGL_INFO, "lease_lost", "name=%s netns_inode=%" PRIu64 " agent_pid=%d "
		  "reason=%s grace_ms=%u", s->name, s->netns_ino, (int)s->agent_pid,
		  log_value(wb, sizeof(wb), why), grace);
	if (grace == 0 || loop_timer_arm(m->loop, &s->grace, loop_now_ms() + grace) < 0)
		release(s, grace ? "no memory for the grace timer" : "lease lost, grace_ms 0");
}

static void lease_event(struct loop *l, int fd, uint32_t events, void *data)
{
	struct session *s = data;
	union {
		char buf[WIRE_MSG_MAX];
		struct wire_hdr hdr;
	} u;
	int fds[WIRE_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;

	if (!(events & EPOLLIN)) {
		lease_lost(s, "agent connection hung up");
		return;
	}
	n = wire_recv(fd, u.buf, sizeof(u.buf), fds, &nfds);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	if (n == -EAGAIN)
		return;
	if (n > 0 && nfds == 0 && wire_peek_type(u.buf, (size_t)n) == WIRE_BYE) {
		release(s, "agent said bye");
		return;
	}
	if (n > 0) {
		lease_lost(s, "unexpected message from the agent");
		return;
	}
	lease_lost(s, n == 0 ? "agent disconnected" : "agent connection error");
}

/* ------------------------------------------------------------ life cycle */

static void session_link(struct session_mgr *m, struct session *s)
{
	s->prev = NULL;
	s->next = m->head;
	if (m->head)
		m->head->prev = s;
	m->head = s;
	m->count++;
	s->by_ns.dev = s->netns_dev;
	s->by_ns.ino = s->netns_ino;
	nsmap_add(&m->by_ns, &s->by_ns);
}

static void session_unlink(struct session *s)
{
	struct session_mgr *m = s->mgr;

	if (s->prev)
		s->prev->next = s->next;
	else if (m->head == s)
		m->head = s->next;
	else
		return;     /* never linked */
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	m->count--;
	nsmap_del(&m->by_ns, &s->by_ns);
}

/*
 * Close every fd of @s and free it. @unbind false keeps the kernel's
 * queues bound (the agent's copy of the socket keeps them alive).
 */
static void session_destroy(struct session *s, bool unbind)
{
	struct session_mgr *m;

	if (!s)
		return;
	m = s->mgr;
	session_unassign(s);
	session_unlink(s);
	loop_timer_cancel(m->loop, &s->grace);
	loop_timer_cancel(m->loop, &s->bind_timer);
	loop_timer_cancel(m->loop, &s->check_timer);
	steering_close(s);
	if (s->lease_fd >= 0) {
		loop_del(m->loop, s->lease_fd);
		close(s->lease_fd);
	}
	if (s->rtnl_fd >= 0) {
		loop_del(m->loop, s->rtnl_fd);
		close(s->rtnl_fd);
	}
	if (s->q) {
		loop_del(m->loop, nfqb_queue_fd(s->q));
		if (unbind)
			nfqb_queue_close(s->q);
		else
			nfqb_queue_detach(s->q);
	}
	links_free(s->links);
	links_free(s->next_links);
	free(s->queues);
	free(s->want);
	free(s);
}

static struct session *session_alloc(struct session_mgr *m, const struct session_hello *h)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->mgr = m;
	s->lease_fd = -1;
	s->rtnl_fd = -1;
	s->steer.fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", h->name);
	s->netns_dev = h->netns_dev;
	s->netns_ino = h->netns_ino;
	s->agent_pid = h->pid;
	s->agent_uid = h->uid;
	s->policy = s->next_policy = h->entry->policy;
	s->audit = s->next_audit = h->entry->audit;
	s->pset = m->cfg->policies;
	s->state = SESSION_ATTACHED;
	s->attached_at = time(NULL);
	loop_timer_init(&s->grace, grace_over, s);
	loop_timer_init(&s->bind_timer, bind_timeout, s);
	loop_timer_init(&s->check_timer, health_check, s);
	return s;
}

/*
 * Whether @fd receives multicast @group already. Asked first because a
 * NETLINK_ADD_MEMBERSHIP, even one that changes nothing, walks every
 * subscribed socket of the protocol on the machine with interrupts off
 * (the kernel's netlink_update_listeners()): with a socket per namespace
 * that made the broker's attaches O(namespaces), 12 % of its CPU at 2,000
 * (bench/README.md, "What limits the attach"). The list is read under the
 * table's shared side, without the walk.
 */
static bool rtnl_subscribed(int fd, int group)
{
	uint32_t groups[4] = { 0 };
	socklen_t len = sizeof(groups);

	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len) < 0)
		return false;
	/* @len is what the kernel would need, which may be more than it wrote */
	if (len > sizeof(groups))
		len = sizeof(groups);
	return (size_t)(group - 1) / 32 < len / sizeof(groups[0]) &&
	       (groups[(group - 1) / 32] >> ((group - 1) % 32) & 1);
}

/*
 * Take the namespace's NETLINK_ROUTE socket and start following its links:
 * the table is made here and installed, with the socket's watch, on the
 * thread serving @s (apply_call()).
 */
static void rtnl_start(struct session *s, int *fd)
{
	struct links *links = links_new();
	int group = RTNLGRP_LINK;
	int rc;

	s->rtnl_fd = *fd;
	*fd = -1;
	/* The agent subscribed already; an older or foreign one may not have. */
	if (!rtnl_subscribed(s->rtnl_fd, group))
		(void)setsockopt(s->rtnl_fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
				 sizeof(group));
	rc = links ? links_request_dump(links, s->rtnl_fd) : -ENOMEM;
	if (rc < 0) {
		log_event(LOGL_WARN, "rtnl_error", "name=%s error=\"%s\"", s->name,
			  strerror(-rc));
		links_free(links);
		close(s->rtnl_fd);
		s->rtnl_fd = -1;
		return;
	}
	s->next_links = links;
	(void)session_call(s, apply_call);
	solo_watch_rtnl(s);
}

/* With @give_sockets, the ACCEPT carries the sockets that hold the queues,
 * for an agent that brought other ones (a takeover): it keeps ours, so its
 * copies keep the queues alive should this broker go away. */
static void send_accept(struct session *s, bool give_sockets)
{
	int fds[WIRE_MAX_FDS] = { nfqb_queue_fd(s->q), s->rtnl_fd };
	struct wire_accept a;
	int rc;

	wire_accept_init(&a, s->netns_ino, (uint32_t)s->nqueues);
	if (give_sockets)
		a.flags |= WIRE_ACCEPT_F_SOCKETS;
	rc = wire_send(s->lease_fd, &a, sizeof(a), fds,
		       give_sockets ? (s->rtnl_fd >= 0 ? 2 : 1) : 0);
	/* A vanished agent shows up as a hang-up on the lease next round. */
	if (rc < 0)
		log_event(LOGL_DEBUG, "accept_send", "name=%s error=\"%s\"", s->name,
			  strerror(-rc));
}

static void log_attach(const struct session *s, const char *event)
{
	char qb[256];

	log_event(LOGL_INFO, event,
		  "name=%s netns_inode=%" PRIu64 " agent_pid=%d uid=%u entry=namespaces[%zu] "
		  "policy=%s queues=%s adopted=%zu rtnl=%s%s",
		  s->name, s->netns_ino, (int)s->agent_pid, (unsigned)s->agent_uid,
		  s->entry_index, policy_name(s->policy), queues_str(s, qb, sizeof(qb)),
		  s->nadopted, s->rtnl_fd >= 0 ? "true" : "false",
		  s->audit || policy_audit(s->policy) ? " audit=true" : "");
	/* Said at attach rather than refused at load: the rules live in the
	 * namespace, where the broker cannot see them. */
	if (policy_sets_connmark(s->policy))
		log_event(LOGL_INFO, "connmark_rules", "name=%s policy=%s note=\"set_connmark "
			  "sets packet mark bits; queue verdicts cannot set the conntrack mark "
			  "on this kernel (no CONFIG_NETFILTER_NETLINK_GLUE_CT): the namespace "
			  "needs -m mark --mark V/V -j CONNMARK --save-mark --mask V after the "
			  "queue and -m connmark --mark V/V -j ACCEPT before the NFQUEUE rule "
			  "(docs/policy.md)\"", s->name, policy_name(s->policy));
}

/* ------------------------------------------------------------ health */

/*
 * A netlink socket connect()ed to a port id receives from that port only:
 * the kernel's packets and answers are refused from then on. Nothing the
 * broker does can repair a socket the agent shares, so the namespace is
 * refused or released with this reason (sends are safe either way: they
 * name the kernel). Returns true with @why when @fd is connected.
 */
static bool sock_hijacked(int fd, const char *what, char *why, size_t whylen)
{
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);

	memset(&sa, 0, sizeof(sa));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    (sa.nl_pid == 0 && sa.nl_groups == 0))
		return false;
	snprintf(why, whylen, "the %s socket was connect()ed to netlink port %u by a "
		 "process sharing it: the kernel cannot deliver to it", what, sa.nl_pid);
	return true;
}

static bool session_hijacked(const struct session *s, char *why, size_t whylen)
{
	return sock_hijacked(nfqb_queue_fd(s->q), "netfilter", why, whylen) ||
	       sock_hijacked(s->rtnl_fd, "route", why, whylen);
}

static void bind_refuse(struct session *s, const char *why);

static void health_check(struct loop *l, struct loop_timer *t, void *data)
{
	struct session *s = data;
	char why[WIRE_REASON_MAX];

	if (!session_hijacked(s, why, sizeof(why))) {
		loop_timer_arm(l, &s->check_timer, loop_tick_next(t->deadline, SESSION_CHECK_MS));
		return;
	}
	if (s->state == SESSION_BINDING) {
		bind_refuse(s, why);
		return;
	}
	lease_refuse(s, why);
	release(s, why);
}

/* ------------------------------------------------------------ binding */

/*
 * A new session binds its queues one request at a time through the loop:
 * the kernel's answer is read by queue_event() like any packet, so a
 * socket whose answers never come (read by the agent sharing it, lost to
 * an overrun) costs this session its SESSION_BIND_MS and nobody else
 * anything.
 */

/* The refusal's log line and count, like the listener's refusals. */
static void log_refuse(struct session *s, const char *why)
{
	char nb[LOG_VALUE_MAX], rb[LOG_VALUE_MAX];

	log_event(LOGL_WARN, "refuse", "name=%s agent_pid=%d uid=%d reason=%s",
		  log_value(nb, sizeof(nb), s->name), (int)s->agent_pid,
		  (int)s->agent_uid, log_value(rb, sizeof(rb), why));
	session_mgr_count_refusal(s->mgr, REFUSAL_AGENT_ATTACH);
}

/* The agent is refused: told why, logged, every fd of the session closed,
 * what was bound unbound. */
static void bind_refuse(struct session *s, const char *why)
{
	lease_refuse(s, why);
	log_refuse(s, why);
	session_destroy(s, true);
}

static void bind_fail(struct session *s, uint16_t num, int err)
{
	char why[WIRE_REASON_MAX];

	snprintf(why, sizeof(why), "%s", nfqb_queue_errmsg(s->q));
	if (!why[0])
		snprintf(why, sizeof(why), "queue %u: %s", num, strerror(-err));
	bind_refuse(s, why);
}

static void bind_timeout(struct loop *l, struct loop_timer *t, void *data)
{
	struct session *s = data;
	char why[WIRE_REASON_MAX];

	nfqb_queue_config_cancel(s->q);
	snprintf(why, sizeof(why), "queue %u: no answer from the kernel within %u ms (is "
		 "the socket shared with a process that reads or redirects it?)",
		 s->nqueues < s->nwant ? s->want[s->nqueues] : 0, s->mgr->bind_ms);
	bind_refuse(s, why);
}

static void bind_answer(struct nfqb_queue *q, uint16_t num, int err, void *user)
{
	struct session *s = user;

	s->bind_answered = true;
	s->bind_err = err;
	/* The session may end on this answer: leave the library first. */
	nfqb_queue_stop(q);
}

static int bind_request(struct session *s)
{
	return nfqb_queue_bind_async(s->q, s->want[s->nqueues], session_verdict, s,
				     &s->qopts, bind_answer, s);
}

/* Every queue bound: the agent is served from now on. */
static void bind_complete(struct session *s)
{
	char why[WIRE_REASON_MAX];
	int rc;

	loop_timer_cancel(s->mgr->loop, &s->bind_timer);
	s->state = SESSION_ATTACHED;
	if (s->nadopted)
		settle_adopted(s);
	/* Packets received with the last answer, after it, were left in the
	 * queue's slots when bind_answer() stopped the run; the socket may not
	 * be readable again for them. Failed sends are counted in the queue's
	 * stats, which the next round's sends_failing() reads. */
	if (nfqb_queue_pending(s->q))
		queue_error(s, run_observed(s));
	/* Queues first, then the rules that feed them: never queue to nobody. */
	steering_attach(s);
	/* The answer before the hand-over to a worker: the agent wakes while
	 * this thread waits for the worker (two thread wakeups, 0.2 ms on
	 * average on the test VM; bench/README.md, "What limits the attach").
	 * The queues are bound, so packets wait in the socket until the
	 * worker reads it; nothing else runs on this thread in between. */
	send_accept(s, false);
	rc = session_assign(s);
	if (rc < 0) {
		/* Told it is attached: a refusal that may pass (the worker's
		 * epoll_ctl() failed: memory, max_user_watches) ends the lease
		 * with the reason, and the agent attaches again. release(), not
		 * bind_refuse(): the steering submitted above comes out too. */
		snprintf(why, sizeof(why), "no worker thread could take the namespace: %s",
			 strerror(-rc));
		lease_refuse_flags(s, why, WIRE_REFUSE_F_RETRY);
		log_refuse(s, why);
		release(s, why);
		return;
	}
	s->mgr->attaches++;
	if (s->qopts.mode == NFQB_COPY_NONE)
		log_event(LOGL_WARN, "copy_none", "name=%s entry=namespaces[%zu] "
			  "detail=\"copy none: the kernel drops every packet sent to these "
			  "queues without asking the broker\"", s->name, s->entry_index);
	log_attach(s, "attach");
}

static void bind_advance(struct session *s)
{
	uint16_t num = s->want[s->nqueues];
	int rc;

	s->bind_answered = false;
	if (s->bind_err < 0) {
		bind_fail(s, num, s->bind_err);
		return;
	}
	s->queues[s->nqueues++] = num;
	if (nfqb_queue_adopted(s->q, num))
		s->nadopted++;
	if (s->nqueues == s->nwant) {
		bind_complete(s);
		return;
	}
	rc = bind_request(s);
	if (rc < 0)
		bind_fail(s, s->want[s->nqueues], rc);
}

static int binding_prepare(struct session *s, const struct cfg_ns *entry)
{
	s->queues = calloc(entry->nqueues ? entry->nqueues : 1, sizeof(*s->queues));
	s->want = calloc(entry->nqueues ? entry->nqueues : 1, sizeof(*s->want));
	if (!s->queues || !s->want)
		return -ENOMEM;
	memcpy(s->want, entry->queues, entry->nqueues * sizeof(*s->want));
	s->nwant = entry->nqueues;
	s->qopts = entry->qopts;
	s->entry_index = entry->index;
	s->state = SESSION_BINDING;
	return 0;
}

static int attach_new(struct session_mgr *m, const struct session_hello *h, int *lease_fd,
		      int fds[WIRE_MAX_FDS], char *why, size_t whylen)
{
	struct session *s = session_alloc(m, h);
	int rc;

	if (!s) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	s->q = nfqb_queue_open_fd(fds[0]);
	fds[0] = -1;        /* consumed, also on failure */
	if (!s->q) {
		rc = -errno;
		snprintf(why, whylen, "netfilter socket unusable: %s", strerror(-rc));
		goto fail;
	}
	rc = binding_prepare(s, h->entry);
	if (rc < 0) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	s->rtnl_fd = fds[1];     /* looked at only: taken below */
	if (session_hijacked(s, why, whylen)) {
		s->rtnl_fd = -1;
		rc = -EPROTO;
		goto fail;
	}
	s->rtnl_fd = -1;
	if (s->nwant > 0) {
		rc = bind_request(s);
		if (rc < 0) {
			snprintf(why, whylen, "%s", nfqb_queue_errmsg(s->q));
			goto fail;
		}
	}
	rc = loop_add(m->loop, nfqb_queue_fd(s->q), EPOLLIN, queue_event, s);
	if (rc < 0) {
		snprintf(why, whylen, "cannot watch the netfilter socket: %s", strerror(-rc));
		goto fail;
	}
	rc = loop_add(m->loop, *lease_fd, EPOLLIN, lease_event, s);
	if (rc < 0) {
		snprintf(why, whylen, "cannot watch the lease: %s", strerror(-rc));
		goto fail;
	}
	rc = loop_timer_arm(m->loop, &s->bind_timer, loop_now_ms() + m->bind_ms);
	if (rc == 0)
		rc = loop_timer_arm(m->loop, &s->check_timer, loop_tick_after(SESSION_CHECK_MS));
	if (rc < 0) {
		loop_del(m->loop, *lease_fd);
		snprintf(why, whylen, "no memory for the bind timer");
		goto fail;
	}
	s->lease_fd = *lease_fd;
	*lease_fd = -1;
	if (fds[1] >= 0)
		rtnl_start(s, &fds[1]);
	session_link(m, s);
	log_event(LOGL_DEBUG, "binding", "name=%s netns_inode=%" PRIu64 " agent_pid=%d "
		  "queues=%zu", s->name, s->netns_ino, (int)s->agent_pid, s->nwant);
	if (s->nwant == 0)
		bind_complete(s);
	return 0;
fail:
	session_destroy(s, true);
	return rc;
}

/* Same inode, no live agent: the new agent holds the lease from now on. */
static int takeover(struct session *s, const struct session_hello *h, int *lease_fd,
		    int fds[WIRE_MAX_FDS], char *why, size_t whylen)
{
	struct session_mgr *m = s->mgr;
	struct stat a, b;
	bool same;
	int rc;

	rc = loop_add(m->loop, *lease_fd, EPOLLIN, lease_event, s);
	if (rc < 0) {
		snprintf(why, whylen, "cannot watch the lease: %s", strerror(-rc));
		return rc;
	}
	loop_timer_cancel(m->loop, &s->grace);
	s->lease_fd = *lease_fd;
	*lease_fd = -1;
	s->agent_pid = h->pid;
	s->agent_uid = h->uid;
	s->state = SESSION_ATTACHED;
	s->next_policy = h->entry->policy;
	s->next_audit = h->entry->audit;
	(void)session_call(s, apply_call);
	s->entry_index = h->entry->index;
	s->takeovers++;
	/* A restarted agent opened new sockets; the queues stay on the ones
	 * the session holds, so not one packet is interrupted, and the agent
	 * gets those back to hold instead of its own (closed by the caller). */
	same = fstat(fds[0], &a) == 0 && fstat(nfqb_queue_fd(s->q), &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	if (s->rtnl_fd < 0 && fds[1] >= 0)
		rtnl_start(s, &fds[1]);
	m->attaches++;
	send_accept(s, !same);
	log_attach(s, "takeover");
	log_event(LOGL_DEBUG, "takeover_socket", "name=%s same_socket=%s sockets_given=%s",
		  s->name, same ? "true" : "false", same ? "false" : "true");
	return 0;
}

int session_attach(struct session_mgr *m, const struct session_hello *h, int *lease_fd,
		   int fds[WIRE_MAX_FDS], char *why, size_t whylen)
{
	struct session *s = session_find(m, h->netns_dev, h->netns_ino);

	if (s && s->state == SESSION_ATTACHED) {
		snprintf(why, whylen, "namespace %s (inode %" PRIu64 ") already served by "
			 "agent pid %d", s->name, s->netns_ino, (int)s->agent_pid);
		return -EBUSY;
	}
	if (s && s->state == SESSION_BINDING) {
		snprintf(why, whylen, "namespace %s (inode %" PRIu64 ") is being attached "
			 "by agent pid %d", s->name, s->netns_ino, (int)s->agent_pid);
		return -EBUSY;
	}
	if (s && strcmp(s->name, h->name) == 0)
		return takeover(s, h, lease_fd, fds, why, whylen);
	/* Another name may map to other queues: start over rather than
	 * serve the new name with the old one's bindings. */
	if (s)
		release(s, "a differently named agent attached to the namespace");
	return attach_new(m, h, lease_fd, fds, why, whylen);
}

struct session *session_find(struct session_mgr *m, uint64_t dev, uint64_t ino)
{
	struct nsmap_node *n;

	if (!nsmap_complete(&m->by_ns)) {
		/* the map had no table for some session: the list has all */
		for (struct session *s = m->head; s; s = s->next)
			if (s->netns_ino == ino && s->netns_dev == dev)
				return s;
		return NULL;
	}
	n = nsmap_find(&m->by_ns, dev, ino);
	return n ? (struct session *)((char *)n - offsetof(struct session, by_ns)) : NULL;
}

/* ------------------------------------------------------------ manager */

struct session_mgr *session_mgr_new(struct loop *loop, struct cfg *cfg)
{
	struct session_mgr *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	nsmap_init(&m->by_ns);
	m->loop = loop;
	m->cfg = cfg;
	m->started = time(NULL);
	/* The start's load is the first successful one. */
	m->last_reload_ok = true;
	m->last_reload_ok_at = m->started;
	m->bind_ms = SESSION_BIND_MS;
	m->send_fail_ms = SESSION_SEND_FAIL_MS;
	m->wake_fd = -1;
	/* Kernel queue stats are read from inside each namespace; this is
	 * the way back. Without it the agent's /proc entry is used. */
	m->home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return m;
}

int session_mgr_start_workers(struct session_mgr *m, unsigned n)
{
	int rc;

	if (m->pool)
		return -EALREADY;
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0)
		return -errno;
	rc = loop_add(m->loop, m->wake_fd, EPOLLIN, wake_event, m);
	if (rc < 0)
		goto fail;
	if (policy_set_workers(m->cfg->policies, n) < 0)
		log_event(LOGL_WARN, "workers", "warning=\"out of memory for per-worker rule "
			  "counters: the workers share them\"");
	m->pool = worker_pool_new(n);
	if (!m->pool) {
		rc = -errno;
		loop_del(m->loop, m->wake_fd);
		goto fail;
	}
	return 0;
fail:
	close(m->wake_fd);
	m->wake_fd = -1;
	return rc;
}

unsigned session_mgr_workers(const struct session_mgr *m, struct session_worker_view *out,
			     unsigned max)
{
	unsigned n = worker_pool_size(m->pool);

	for (unsigned i = 0; i < n && i < max; i++) {
		struct worker *w = worker_pool_at(m->pool, i);
		struct worker_totals t;

		worker_totals_read(w, &t);
		out[i] = (struct session_worker_view){ .index = i, .sessions = worker_load(w),
						       .solo = m->solo[worker_index(w)] != NULL,
						       .c = t.c };
	}
	return n;
}

void session_mgr_free(struct session_mgr *m)
{
	if (!m)
		return;
	m->closing = true;     /* no session turns solo on the way out */
	while (m->head) {
		struct session *s = m->head;

		session_unassign(s);
		log_event(LOGL_INFO, "detach", "name=%s netns_inode=%" PRIu64 " packets=%"
			  PRIu64 " queues_kept=true", s->name, s->netns_ino, s->c.packets);
		session_destroy(s, false);
	}
	nsmap_clear(&m->by_ns);
	steering_worker_free(m);
	worker_pool_free(m->pool);
	if (m->wake_fd >= 0) {
		loop_del(m->loop, m->wake_fd);
		close(m->wake_fd);
	}
	if (m->home_netns_fd >= 0)
		close(m->home_netns_fd);
	cfg_free(m->cfg);
	free(m);
}

static void log_config_errors(const struct errs *e)
{
	char vb[LOG_VALUE_MAX];

	for (size_t i = 0; i < e->n; i++)
		log_event(LOGL_ERROR, "config_error", "error=%s",
			  log_value(vb, sizeof(vb), e->lines[i]));
}

#define RELOAD_GONE "no namespaces entry or policy left for it after a reload"

/*
 * Point @s at its policy in @n; false, with the reason in @why, when the
 * new config has none for it or its new entry's netns pin excludes it (an
 * agent let in by a catch-all entry must not get a pinned entry's policy
 * just because the operator added that entry).
 */
static bool reresolve(struct session *s, const struct cfg *n, char *why, size_t whylen)
{
	const struct cfg_ns *entry = cfg_match(n, s->name);
	const struct policy *pol;
	const char *old = policy_name(s->policy);
	char pin[WIRE_REASON_MAX - 48];

	if (entry && cfg_ns_pin_check(entry, s->netns_dev, s->netns_ino, pin, sizeof(pin)) < 0) {
		snprintf(why, whylen, "after a reload: %s", pin);
		return false;
	}
	/* An entry that no longer matches leaves the policy known by name. */
	pol = entry ? entry->policy : policy_set_find(n->policies, old);
	if (!pol) {
		snprintf(why, whylen, "%s", RELOAD_GONE);
		return false;
	}
	if (strcmp(policy_name(pol), old) != 0)
		log_event(LOGL_INFO, "policy_change", "name=%s from=%s to=%s", s->name, old,
			  policy_name(pol));
	/* Installed by reload_swap() on the session's thread. */
	s->next_policy = pol;
	s->next_audit = entry ? entry->audit : s->audit;
	s->next_pset = n->policies;
	return true;
}

/* A worker installs what was staged for each of its sessions; the main
 * thread waits in worker_call(), so the session list holds still. */
static int apply_worker_call(struct worker *w, struct loop *l, void *arg)
{
	struct session_mgr *m = arg;

	for (struct session *s = m->head; s; s = s->next)
		if (s->worker == w)
			(void)apply_call(w, l, s);
	return 0;
}

/*
 * Every session onto what reresolve() staged, on its own thread: one
 * worker_call per worker, not per session (a reload with thousands of
 * sessions would otherwise wait for a thread hand-off each), and no lock
 * on the packet path. Once this returns, no thread decides with the old
 * config's policies.
 */
static void reload_swap(struct session_mgr *m)
{
	for (struct session *s = m->head; s; s = s->next)
		if (!s->worker)
			(void)apply_call(NULL, m->loop, s);
	for (unsigned i = 0; i < worker_pool_size(m->pool); i++)
		(void)worker_call(worker_pool_at(m->pool, i), apply_worker_call, m);
}

static int reload_apply(struct session_mgr *m, const char *path, struct errs *e);

int session_mgr_reload(struct session_mgr *m, const char *path, struct errs *e)
{
	int rc;

	if (m->reload_hook)
		m->reload_hook(m->reload_data, false);
	rc = reload_apply(m, path, e);
	if (m->reload_hook)
		m->reload_hook(m->reload_data, true);
	return rc;
}

static int reload_apply(struct session_mgr *m, const char *path, struct errs *e)
{
	struct cfg *n = cfg_load(path, e), *old = m->cfg;
	struct session *s, *next;
	char why[WIRE_REASON_MAX];
	size_t ended = 0;

	if (!n) {
		m->reloads_failed++;
		m->last_reload_ok = false;
		log_event(LOGL_ERROR, "reload", "ok=false errors=%zu config=old", e->n);
		log_config_errors(e);
		return -EINVAL;
	}
	/* Before any worker decides with them. */
	if (policy_set_workers(n->policies, worker_pool_size(m->pool)) < 0)
		log_event(LOGL_WARN, "reload", "warning=\"out of memory for per-worker rule "
			  "counters: the workers share them\"");
	for (s = m->head; s; s = next) {
		next = s->next;
		if (reresolve(s, n, why, sizeof(why))) {
			steering_reload(s, n);
			continue;
		}
		/* Still on the old policy: must go before the old config does.
		 * The agent hears why on its lease (never blocking on it). */
		if (s->lease_fd >= 0) {
			struct wire_refuse r;

			wire_refuse_init(&r, strcmp(why, RELOAD_GONE) == 0 ?
					 "namespace no longer configured after a reload" : why);
			(void)wire_send(s->lease_fd, &r, sizeof(r), NULL, 0);
		}
		release(s, why);
		ended++;
	}
	reload_swap(m);
	/* After the swap, so that no packet decided on the old policies is
	 * missed: the new counters are added to (workers count there too). */
	if (policy_set_carry_counters(n->policies, old->policies) < 0)
		log_event(LOGL_WARN, "reload", "warning=\"out of memory: some rule counters "
			  "start from 0\"");
	/* The sockets are bound already; moving them would cut off agents. */
	if (strcmp(old->listen, n->listen) != 0 || old->listen_mode != n->listen_mode)
		log_event(LOGL_WARN, "reload", "warning=\"broker.listen and listen_mode "
			  "take effect at the next start\"");
	if (old->workers != n->workers)
		log_event(LOGL_WARN, "reload", "warning=\"broker.workers takes effect at the "
			  "next start\"");
	m->cfg = n;
	cfg_free(old);
	m->reloads_ok++;
	m->last_reload_ok = true;
	m->last_reload_ok_at = time(NULL);
	log_event(LOGL_INFO, "reload", "ok=true entries=%zu policies=%zu sessions=%zu ended=%zu",
		  n->nns, policy_set_count(n->policies), m->count, ended);
	return 0;
}

static void log_counters(const char *what, const char *fields,
			 const struct session_counters *c)
{
	char vb[256];
	size_t off = 0;

	vb[0] = '\0';
	for (size_t i = 0; i < session_verdict_ncounters && off < sizeof(vb); i++) {
		const struct session_counter_def *d = &session_verdict_counters[i];

		off += (size_t)snprintf(vb + off, sizeof(vb) - off, " %s=%" PRIu64, d->log_name,
					session_counter_get(c, d));
	}
	log_event(LOGL_INFO, "stats", "%s%s packets=%" PRIu64 " bytes=%" PRIu64 "%s", what,
		  fields, c->packets, c->bytes, vb);
}

/*
 * The count logged so far lives in the session: nothing here is keyed by
 * a pointer that may be freed and reused. A takeover brings a new socket
 * whose count starts again below it.
 */
void session_mgr_log_overruns(struct session_mgr *m)
{
	for (struct session *s = m->head; s; s = s->next) {
		char vb[LOG_VALUE_MAX];
		uint64_t enobufs = session_overruns(s);

		if (enobufs < s->enobufs_logged)
			s->enobufs_logged = 0;
		if (enobufs > s->enobufs_logged)
			log_event(LOGL_WARN, "enobufs", "name=%s overruns=%" PRIu64 " total=%"
				  PRIu64 " hint=\"the socket's receive buffer overran and the "
				  "kernel dropped queued packets: raise sock_len\"",
				  log_value(vb, sizeof(vb), s->name),
				  enobufs - s->enobufs_logged, enobufs);
		s->enobufs_logged = enobufs;
	}
}

void session_mgr_log_stats(struct session_mgr *m)
{
	char fields[1024], qb[256], nb[WIRE_NAME_MAX + 8];

	struct session_totals t;

	/* Read as control and metrics read it: through the view and the totals. */
	for (struct session *s = m->head; s; s = s->next) {
		struct session_view v;

		session_view(s, &v);
		snprintf(fields, sizeof(fields), " netns_inode=%" PRIu64 " state=%s agent_pid=%d"
			 " policy=%s queues=%s", v.netns_ino, session_state_name(v.state),
			 (int)v.agent_pid, v.policy, queues_str(s, qb, sizeof(qb)));
		snprintf(nb, sizeof(nb), "name=%s", v.name);
		log_counters(nb, fields, &v.c);
	}
	session_mgr_totals(m, &t);
	snprintf(fields, sizeof(fields), " namespaces=%zu", t.namespaces);
	log_counters("scope=total", fields, &t.c);
}

/* ------------------------------------------------------------ reading */

void session_view(const struct session *s, struct session_view *v)
{
	*v = (struct session_view){
		.name = s->name, .state = s->state, .netns_dev = s->netns_dev,
		.netns_ino = s->netns_ino, .agent_pid = s->agent_pid, .agent_uid = s->agent_uid,
		.policy = policy_name(s->policy), .queues = s->queues, .nqueues = s->nqueues,
		.ks = &s->ks, .overruns = session_overruns(s), .attached_at = s->attached_at,
		.takeovers = s->takeovers, .session = s,
		.audit = s->audit || policy_audit(s->policy),
		.worker = s->worker ? (int)worker_index(s->worker) : -1,
		.solo = solo_is(s),
	};
	session_counters_load(&v->c, &s->c);
	hist_load(&v->latency, &s->latency);
}

void session_mgr_totals(const struct session_mgr *m, struct session_totals *t)
{
	*t = (struct session_totals){
		.namespaces = m->count, .attaches = m->attaches,
		.refusals = m->refusals, .kstats_refreshes = m->kstats_refreshes,
		.started = m->started, .loop_lag = m->loop_lag,
		.reloads_ok = m->reloads_ok, .reloads_failed = m->reloads_failed,
		.last_reload_ok = m->last_reload_ok, .last_reload_ok_at = m->last_reload_ok_at,
		.ready = m->ready,
	};
	memcpy(t->refused, m->refused, sizeof(t->refused));
	/* Sessions on the main loop (binding, no workers) count in m->total;
	 * every worker in its own: the sum is every packet since start. */
	session_counters_load(&t->c, &m->total);
	hist_load(&t->latency, &m->latency);
	for (unsigned i = 0; i < worker_pool_size(m->pool); i++) {
		struct worker_totals wt;

		worker_totals_read(worker_pool_at(m->pool, i), &wt);
		session_counters_add(&t->c, &wt.c);
		hist_merge(&t->latency, &wt.latency);
	}
}

size_t session_mgr_count(const struct session_mgr *m)
{
	return m->count;
}

void session_mgr_foreach(struct session_mgr *m,
			 void (*fn)(struct session *s, void *data), void *data)
{
	for (struct session *s = m->head; s; s = s->next)
		fn(s, data);
}

const struct cfg *session_mgr_cfg(const struct session_mgr *m)
{
	return m->cfg;
}

struct loop *session_mgr_loop(const struct session_mgr *m)
{
	return m->loop;
}

static const struct {
	const char *listener, *reason;
} refusal_names[REFUSAL_N] = {
	[REFUSAL_AGENT_UID] = { "agent", "uid" },
	[REFUSAL_AGENT_PENDING] = { "agent", "pending" },
	[REFUSAL_AGENT_FDS] = { "agent", "fds" },
	[REFUSAL_AGENT_HELLO] = { "agent", "hello" },
	[REFUSAL_AGENT_NO_MATCH] = { "agent", "no_match" },
	[REFUSAL_AGENT_PIN] = { "agent", "pin" },
	[REFUSAL_AGENT_SESSION_CAP] = { "agent", "session_cap" },
	[REFUSAL_AGENT_ATTACH] = { "agent", "attach" },
	[REFUSAL_CONTROL_UID] = { "control", "uid" },
	[REFUSAL_CONTROL_LIMIT] = { "control", "limit" },
	[REFUSAL_HTTP_LIMIT] = { "http", "limit" },
};

const char *session_refusal_listener(enum session_refusal r)
{
	return r < REFUSAL_N ? refusal_names[r].listener : "?";
}

const char *session_refusal_reason(enum session_refusal r)
{
	return r < REFUSAL_N ? refusal_names[r].reason : "?";
}

void session_mgr_count_refusal(struct session_mgr *m, enum session_refusal why)
{
	if (why >= REFUSAL_N)
		return;
	m->refused[why]++;
	if (why <= REFUSAL_AGENT_ATTACH)
		m->refusals++;
}

void session_mgr_loop_lag(struct session_mgr *m, uint64_t due_ms, uint64_t now_ns)
{
	uint64_t due_ns = due_ms * 1000000u;

	hist_add(&m->loop_lag, &hist_lag_bounds, now_ns > due_ns ? now_ns - due_ns : 0, 1);
}

void session_mgr_on_reload(struct session_mgr *m, void (*fn)(void *data, bool done),
			   void *data)
{
	m->reload_hook = fn;
	m->reload_data = data;
}

void session_mgr_set_ready(struct session_mgr *m, bool ready)
{
	m->ready = ready;
}

bool session_mgr_ready(const struct session_mgr *m)
{
	return m->ready;
}

size_t session_mgr_uid_sessions(const struct session_mgr *m, uid_t uid)
{
	size_t n = 0;

	for (const struct session *s = m->head; s; s = s->next)
		n += s->agent_uid == uid;
	return n;
}

const char *session_name(const struct session *s)
{
	return s->name;
}

uid_t session_agent_uid(const struct session *s)
{
	return s->agent_uid;
}

const struct policy *session_policy(const struct session *s)
{
	return s->policy;
}

const struct links *session_links(const struct session *s)
{
	return s->links;
}

static int barrier_call(struct worker *w, struct loop *l, void *arg)
{
	return 0;
}

int session_mgr_observe(struct session_mgr *m, session_observer_fn fn, void *data)
{
	for (size_t i = 0; i < SESSION_OBSERVERS_MAX; i++) {
		if (m->obs[i].fn)
			continue;
		/* Workers read these (session_verdict): data, then fn, then the count. */
		__atomic_store_n(&m->obs[i].data, data, __ATOMIC_RELAXED);
		__atomic_store_n(&m->obs[i].fn, fn, __ATOMIC_RELEASE);
		if (m->nobs < i + 1)
			__atomic_store_n(&m->nobs, i + 1, __ATOMIC_RELEASE);
		return (int)i;
	}
	return -ENOSPC;
}

void session_mgr_unobserve(struct session_mgr *m, int handle)
{
	size_t n = m->nobs;

	if (handle < 0 || handle >= SESSION_OBSERVERS_MAX)
		return;
	__atomic_store_n(&m->obs[handle].fn, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&m->obs[handle].data, NULL, __ATOMIC_RELAXED);
	while (n && !m->obs[n - 1].fn)
		n--;
	__atomic_store_n(&m->nobs, n, __ATOMIC_RELEASE);
	/* A worker may be inside the callback: once each one took a call
	 * (between two dispatch rounds), none is, and @data may go. */
	for (unsigned i = 0; i < worker_pool_size(m->pool); i++)
		(void)worker_call(worker_pool_at(m->pool, i), barrier_call, NULL);
}

/* ------------------------------------------------------------ snapshots */

/* A failed read is tried again within a second: the queues may just be bound. */
#define KSTATS_RETRY_MS 1000u

static bool kstats_stale(const struct session *s, uint64_t now_ms, uint32_t refresh_ms)
{
	if (s->ks.n < 0 && refresh_ms > KSTATS_RETRY_MS)
		refresh_ms = KSTATS_RETRY_MS;
	return !s->ks.at_ms || now_ms - s->ks.at_ms >= refresh_ms;
}

static void kstats_read(struct session_mgr *m, struct session *s, uint64_t now_ms)
{
	s->ks.n = session_kstats(s, s->ks.k, SESSION_KSTATS_MAX);
	s->ks.at_ms = now_ms ? now_ms : 1;
	m->kstats_refreshes++;
}

unsigned session_mgr_kstats_refresh(struct session_mgr *m, uint64_t now_ms, unsigned budget,
				    uint32_t refresh_ms)
{
	unsigned done = 0;
	struct session *s;

	/* New sessions first: an agent that just attached shows its queues soon. */
	for (s = m->head; s && done < budget; s = s->next)
		if (!s->ks.at_ms) {
			kstats_read(m, s, now_ms);
			done++;
		}
	for (s = m->head; s && done < budget; s = s->next)
		if (kstats_stale(s, now_ms, refresh_ms)) {
			kstats_read(m, s, now_ms);
			done++;
		}
	return done;
}
