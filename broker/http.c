/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd runs in its "external epoll" mode: it owns an epoll fd
 * holding its listening and connection sockets, which we register in our
 * own loop; whenever that fd is readable, or MHD's timeout (idle
 * connections, buffered data) expires, MHD_run() does the work without
 * blocking. Requests are answered from the loop thread, so the handler
 * reads the broker's state directly, like the control socket does.
 *
 * A local user may connect and dawdle. Every connection gets a total
 * deadline (HTTP_DEADLINE_MS from accept, or from its previous response,
 * to its next response: a slowloris that sends a byte a second is cut
 * off), its request is capped in size (MHD's per-connection memory), and
 * when all HTTP_MAX_CONNECTIONS slots are taken a new connection evicts
 * the oldest one that has held its slot for HTTP_EVICT_AFTER_MS (no real
 * scraper takes that long), so idle connections cannot lock scrapes out.
 * MHD has no call to drop one connection: we shut its socket down, and
 * MHD sees the end of the stream and closes it on its next run. Scrapes
 * render at most HTTP_RENDERS_PER_S times a second; beyond that they get
 * the last rendered text, so a scrape loop costs the loop little.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "session.h"

#ifdef NFQB_HAVE_MHD

#include <microhttpd.h>

/* A local scraper needs a few connections. */
#define HTTP_MAX_CONNECTIONS 16
#define HTTP_IDLE_TIMEOUT_S  10         /* MHD's own idle limit, a backstop */
#define HTTP_DEADLINE_MS     5000u      /* accept (or last response) to response */
#define HTTP_EVICT_AFTER_MS  250u       /* a slot held this long may be taken over */
#define HTTP_MEMORY_LIMIT    16384u     /* per connection: caps the request's size */
#define HTTP_RENDERS_PER_S   5u

/* One accepted connection, MHD's "socket context". */
struct hconn {
	struct hconn *prev, *next;
	int fd;                       /* MHD's; only shut down here, never closed */
	uint64_t since_ms;            /* accepted, or its last response completed */
	bool cut;                     /* shut down, MHD has not reaped it yet */
};

struct http {
	struct session_mgr *m;
	struct MHD_Daemon *d;
	int epfd;                     /* MHD's, registered in our loop */
	struct loop_timer timer;
	struct hconn *conns;
	unsigned nconns;              /* not cut */
	uint32_t deadline_ms, evict_after_ms;
	uint64_t cut_deadline, cut_evicted, refused;
	uint64_t refuse_log_ms;
	unsigned refuse_suppressed;
	struct metrics_cache cache;
	char addr[64];
	char lasterr[256];
	bool public;                  /* not a loopback address (broker.metrics_public) */
};

bool http_available(void)
{
	return true;
}

/* Connections MHD holds right now. */
static unsigned http_connections(struct http *h)
{
	const union MHD_DaemonInfo *i =
		MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i ? i->num_connections : 0;
}

/* End @hc: MHD reads the end of the stream on its next run and closes it. */
static void hconn_cut(struct http *h, struct hconn *hc)
{
	if (hc->cut)
		return;
	(void)shutdown(hc->fd, SHUT_RDWR);
	hc->cut = true;
	h->nconns--;
}

/* Cut connections past their deadline; returns the next deadline (0: none). */
static uint64_t http_deadlines(struct http *h, uint64_t now)
{
	uint64_t next = 0;

	for (struct hconn *hc = h->conns; hc; hc = hc->next) {
		uint64_t due = hc->since_ms + h->deadline_ms;

		if (hc->cut)
			continue;
		if (due <= now) {
			hconn_cut(h, hc);
			h->cut_deadline++;
			log_event(LOGL_INFO, "http_drop", "reason=\"no complete request within "
				  "%u ms\"", h->deadline_ms);
		} else if (!next || due < next) {
			next = due;
		}
	}
	return next;
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}

/*
 * Run MHD, then wake up again no later than it or a deadline asks to. A
 * connection cut here wakes MHD's epoll fd by itself (its socket reads
 * the end of the stream).
 */
static void http_run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG to;
	struct loop *l = session_mgr_loop(h->m);
	unsigned before = http_connections(h);
	uint64_t now, next;

	MHD_run(h->d);
	/*
	 * At MHD's own connection limit it takes its listening socket out of
	 * its epoll set and puts it back only at the start of a later run:
	 * run again when slots were freed, or clients waiting in the backlog
	 * sit there until the next timeout.
	 */
	if (http_connections(h) < before)
		MHD_run(h->d);
	now = loop_now_ms();
	next = http_deadlines(h, now);
	if (MHD_get_timeout(h->d, &to) == MHD_YES)
		next = earliest(next, now + (to > 86400000ull ? 86400000ull : to));
	if (next)
		loop_timer_arm(l, &h->timer, next);
	else
		loop_timer_cancel(l, &h->timer);
}

/* At most one refusal line a second. */
static void refuse_log(struct http *h, const char *why)
{
	uint64_t now = loop_now_ms();

	h->refused++;
	session_mgr_count_refusal(h->m, REFUSAL_HTTP_LIMIT);
	if (h->refuse_log_ms && now - h->refuse_log_ms < 1000) {
		h->refuse_suppressed++;
		return;
	}
	log_event(LOGL_WARN, "http_refuse", "reason=\"%s\" max=%d suppressed=%u", why,
		  HTTP_MAX_CONNECTIONS, h->refuse_suppressed);
	h->refuse_log_ms = now ? now : 1;
	h->refuse_suppressed = 0;
}

/*
 * Before MHD takes a new connection: at the limit, the oldest one that
 * held its slot long enough makes room; when none did, the new one goes.
 */
static enum MHD_Result http_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http *h = cls;
	struct hconn *oldest = NULL;
	uint64_t now = loop_now_ms();

	if (h->nconns < HTTP_MAX_CONNECTIONS)
		return MHD_YES;
	for (struct hconn *hc = h->conns; hc; hc = hc->next)
		if (!hc->cut && (!oldest || hc->since_ms < oldest->since_ms))
			oldest = hc;
	if (!oldest || now - oldest->since_ms < h->evict_after_ms) {
		refuse_log(h, "connection limit: no slot held long enough to be taken over");
		return MHD_NO;
	}
	hconn_cut(h, oldest);
	h->cut_evicted++;
	log_event(LOGL_INFO, "http_drop", "reason=\"connection limit: the oldest slot "
		  "(%" PRIu64 " ms) taken over\"", now - oldest->since_ms);
	return MHD_YES;
}

static void http_notify(void *cls, struct MHD_Connection *conn, void **ctx,
			enum MHD_ConnectionNotificationCode code)
{
	struct http *h = cls;
	struct hconn *hc = *ctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *i =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		hc = calloc(1, sizeof(*hc));
		if (!hc || !i) {
			/* Untracked it would escape the deadline: refuse it instead. */
			free(hc);
			if (i)
				(void)shutdown(i->connect_fd, SHUT_RDWR);
			return;
		}
		hc->fd = i->connect_fd;
		hc->since_ms = loop_now_ms();
		hc->next = h->conns;
		if (h->conns)
			h->conns->prev = hc;
		h->conns = hc;
		h->nconns++;
		*ctx = hc;
		return;
	}
	if (!hc)
		return;
	if (!hc->cut)
		h->nconns--;
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		h->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	free(hc);
	*ctx = NULL;
}

/* A response went out: the deadline starts again for the next request. */
static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode code)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct hconn *hc = i ? i->socket_context : NULL;

	if (hc && code == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		hc->since_ms = loop_now_ms();
}

static void http_event(struct loop *l, int fd, uint32_t events, void *data)
{
	http_run(data);
}

static void http_timer(struct loop *l, struct loop_timer *t, void *data)
{
	http_run(data);
}

static void http_logger(void *cls, const char *fmt, va_list ap)
{
	struct http *h = cls;
	char vb[LOG_VALUE_MAX];
	size_t n;

	vsnprintf(h->lasterr, sizeof(h->lasterr), fmt, ap);
	n = strlen(h->lasterr);
	while (n && (h->lasterr[n - 1] == '\n' || h->lasterr[n - 1] == ' '))
		h->lasterr[--n] = '\0';
	log_event(LOGL_DEBUG, "http_error", "error=%s", log_value(vb, sizeof(vb), h->lasterr));
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
			       const char *type, char *body, size_t len,
			       enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status,
				    const char *text)
{
	return respond(conn, status, "text/plain; charset=utf-8", (char *)text, strlen(text),
		       MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version,
			       const char *upload_data, size_t *upload_data_size,
			       void **con_cls)
{
	struct http *h = cls;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "only GET and HEAD are served here\n");
	/* Answered from the loop thread: a stuck loop answers nothing, and
	 * the probe's own timeout fails it. */
	if (strcmp(url, "/healthz") == 0)
		return respond_text(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0)
		return session_mgr_ready(h->m) ?
		       respond_text(conn, MHD_HTTP_OK, "ready\n") :
		       respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				    "not ready: starting or shutting down\n");
	if (strcmp(url, "/metrics") != 0)
		return respond_text(conn, MHD_HTTP_NOT_FOUND,
				    "not found: nfq-broker serves GET /metrics, /healthz, "
				    "/readyz\n");
	if (metrics_cache_get(&h->cache, h->m, loop_now_ms(), HTTP_RENDERS_PER_S) < 0)
		return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "out of memory rendering the metrics\n");
	/* A copy: the cached text may be rendered again before this one is sent. */
	return respond(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, h->cache.b.data,
		       h->cache.b.len, MHD_RESPMEM_MUST_COPY);
}

static void format_addr(struct http *h, const struct sockaddr_storage *ss, uint16_t port)
{
	char ab[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ab, sizeof(ab));
		snprintf(h->addr, sizeof(h->addr), "[%s]:%u", ab, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ab, sizeof(ab));
		snprintf(h->addr, sizeof(h->addr), "%s:%u", ab, port);
	}
}

static int http_start(struct http *h, const char *listen, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	socklen_t sslen;
	int rc;

	rc = metrics_parse_address(listen, session_mgr_cfg(h->m)->metrics_public, &ss, &sslen,
				   why, whylen);
	if (rc < 0)
		return rc;
	h->public = !metrics_addr_loopback(&ss);
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	/* The logger first, so MHD never prints on its own. */
	/* MHD's limit is a backstop above ours: cut ones hold a slot until reaped. */
	h->d = MHD_start_daemon(flags, 0, http_accept, h, handler, h,
				MHD_OPTION_EXTERNAL_LOGGER, http_logger, h,
				MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * HTTP_MAX_CONNECTIONS),
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
				MHD_OPTION_NOTIFY_CONNECTION, http_notify, h,
				MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
				MHD_OPTION_END);
	if (!h->d) {
		rc = errno ? -errno : -EIO;
		snprintf(why, whylen, "cannot serve metrics on %s: %s", listen,
			 h->lasterr[0] ? h->lasterr : strerror(-rc));
		return rc;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		snprintf(why, whylen, "libmicrohttpd has no epoll fd");
		return -EIO;
	}
	h->epfd = info->epoll_fd;
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	format_addr(h, &ss, info ? info->port : 0);
	rc = loop_add(session_mgr_loop(h->m), h->epfd, EPOLLIN, http_event, h);
	if (rc < 0) {
		h->epfd = -1;
		snprintf(why, whylen, "cannot watch the HTTP server: %s", strerror(-rc));
		return rc;
	}
	http_run(h);
	return 0;
}

struct http *http_new(struct session_mgr *m, const char *listen, char *why, size_t whylen)
{
	struct http *h = calloc(1, sizeof(*h));
	int rc;

	if (!h) {
		snprintf(why, whylen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	h->m = m;
	h->epfd = -1;
	h->deadline_ms = HTTP_DEADLINE_MS;
	h->evict_after_ms = HTTP_EVICT_AFTER_MS;
	loop_timer_init(&h->timer, http_timer, h);
	rc = http_start(h, listen, why, whylen);
	if (rc < 0) {
		http_free(h);
		errno = -rc;
		return NULL;
	}
	log_event(LOGL_INFO, "http_listen", "addr=%s path=/metrics", h->addr);
	if (h->public)
		log_event(LOGL_WARN, "http_listen", "addr=%s warning=\"metrics exposed on a "
			  "non-loopback address\"", h->addr);
	return h;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	loop_timer_cancel(session_mgr_loop(h->m), &h->timer);
	/* The epoll fd is MHD's: forget it here, MHD closes it. */
	if (h->epfd >= 0)
		loop_del(session_mgr_loop(h->m), h->epfd);
	if (h->d)
		MHD_stop_daemon(h->d);
	/* MHD said goodbye to each connection; anything left is not its any more. */
	while (h->conns) {
		struct hconn *hc = h->conns;

		h->conns = hc->next;
		free(hc);
	}
	metrics_cache_free(&h->cache);
	free(h);
}

const char *http_address(const struct http *h)
{
	return h->addr;
}

void http_set_limits(struct http *h, uint32_t deadline_ms, uint32_t evict_after_ms)
{
	h->deadline_ms = deadline_ms ? deadline_ms : 1;
	h->evict_after_ms = evict_after_ms;
}

void http_get_stats(const struct http *h, struct http_stats *st)
{
	*st = (struct http_stats){ .connections = h->nconns, .cut_deadline = h->cut_deadline,
				   .cut_evicted = h->cut_evicted, .refused = h->refused,
				   .renders = h->cache.renders, .cached = h->cache.hits };
}

#else /* !NFQB_HAVE_MHD */

struct http {
	char addr[1];
};

bool http_available(void)
{
	return false;
}

struct http *http_new(struct session_mgr *m, const char *listen, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rc;

	/* A bad address is reported as such, with or without libmicrohttpd. */
	rc = metrics_parse_address(listen, session_mgr_cfg(m)->metrics_public, &ss, &sslen,
				   why, whylen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	snprintf(why, whylen, "cannot serve metrics on %s: nfq-broker was built without "
		 "libmicrohttpd", listen);
	errno = ENOTSUP;
	return NULL;
}

void http_free(struct http *h)
{
	free(h);
}

void http_set_limits(struct http *h, uint32_t deadline_ms, uint32_t evict_after_ms)
{
}

void http_get_stats(const struct http *h, struct http_stats *st)
{
	*st = (struct http_stats){ 0 };
}

const char *http_address(const struct http *h)
{
	return h->addr;
}

#endif
