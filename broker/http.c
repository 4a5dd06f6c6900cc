/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd runs in its "external epoll" mode: it owns an epoll fd
 * holding its listening and connection sockets, which we register in our
 * own loop; whenever that fd is readable, or MHD's timeout (idle
 * connections, buffered data) expires, MHD_run() does the work without
 * blocking. Requests are answered from the loop thread, so the handler
 * reads the broker's state directly, like the control socket does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "session.h"

#ifdef NFQB_HAVE_MHD

#include <microhttpd.h>

/* A local scraper needs a few connections; anything idle goes after 10 s. */
#define HTTP_MAX_CONNECTIONS 16
#define HTTP_IDLE_TIMEOUT_S  10

struct http {
	struct session_mgr *m;
	struct MHD_Daemon *d;
	int epfd;                     /* MHD's, registered in our loop */
	struct loop_timer timer;
	char addr[64];
	char lasterr[256];
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

/* Run MHD, then wake up again no later than it asks to. */
static void http_run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG to;
	struct loop *l = h->m->loop;
	unsigned before = http_connections(h);

	MHD_run(h->d);
	/*
	 * At the connection limit MHD takes its listening socket out of its
	 * epoll set and puts it back only at the start of a later run: run
	 * again when slots were freed, or clients waiting in the backlog sit
	 * there until the next timeout.
	 */
	if (before >= HTTP_MAX_CONNECTIONS && http_connections(h) < before)
		MHD_run(h->d);
	if (MHD_get_timeout(h->d, &to) == MHD_YES)
		loop_timer_arm(l, &h->timer, loop_now_ms() + (to > 86400000ull ? 86400000ull : to));
	else
		loop_timer_cancel(l, &h->timer);
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
	struct metrics_buf b = { 0 };

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "only GET and HEAD are served here\n");
	if (strcmp(url, "/metrics") != 0)
		return respond_text(conn, MHD_HTTP_NOT_FOUND,
				    "not found: nfq-broker serves GET /metrics\n");
	if (metrics_render(h->m, &b) < 0) {
		metrics_buf_free(&b);
		return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "out of memory rendering the metrics\n");
	}
	/* MHD frees the text with free() once sent. */
	return respond(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, b.data, b.len,
		       MHD_RESPMEM_MUST_FREE);
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

	rc = metrics_parse_listen(listen, &ss, &sslen, why, whylen);
	if (rc < 0)
		return rc;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	/* The logger first, so MHD never prints on its own. */
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, h,
				MHD_OPTION_EXTERNAL_LOGGER, http_logger, h,
				MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
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
	rc = loop_add(h->m->loop, h->epfd, EPOLLIN, http_event, h);
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
	loop_timer_init(&h->timer, http_timer, h);
	rc = http_start(h, listen, why, whylen);
	if (rc < 0) {
		http_free(h);
		errno = -rc;
		return NULL;
	}
	log_event(LOGL_INFO, "http_listen", "addr=%s path=/metrics", h->addr);
	return h;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	loop_timer_cancel(h->m->loop, &h->timer);
	/* The epoll fd is MHD's: forget it here, MHD closes it. */
	if (h->epfd >= 0)
		loop_del(h->m->loop, h->epfd);
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h);
}

const char *http_address(const struct http *h)
{
	return h->addr;
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
	rc = metrics_parse_listen(listen, &ss, &sslen, why, whylen);
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

const char *http_address(const struct http *h)
{
	return h->addr;
}

#endif
