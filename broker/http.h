/* SPDX-License-Identifier: MIT */
/*
 * Optional HTTP endpoint for a Prometheus scrape: GET /metrics on
 * broker.metrics_listen (a loopback address unless broker.metrics_public),
 * and the probes GET /healthz (200 whenever the loop answers) and
 * /readyz (200 once session_mgr_ready(), 503 before), served by libmicrohttpd
 * driven from the broker's own event loop (MHD's epoll fd registered in
 * it, MHD's timeout as a loop timer; no thread). Built only when
 * libmicrohttpd was found; otherwise http_new() fails with ENOTSUP.
 */
#ifndef BROKER_HTTP_H
#define BROKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session_mgr;
struct http;

/*
 * http_new - listen on @listen ("127.0.0.1:9101", "[::1]:0") and serve
 * metrics_render(@m). A non-loopback address (allowed by @m's config's
 * metrics_public) is logged as a warning. Returns the server, or NULL with errno and a
 * one-line reason in @why.
 */
struct http *http_new(struct session_mgr *m, const char *listen, char *why, size_t whylen);

/* http_free - stop serving, close every connection. NULL is a no-op. */
void http_free(struct http *h);

/* http_address - the address actually bound ("127.0.0.1:40123" for port 0). */
const char *http_address(const struct http *h);

/* What the endpoint did to protect itself, and how scrapes were served. */
struct http_stats {
	unsigned connections;         /* open now */
	uint64_t cut_deadline;        /* closed at their total deadline */
	uint64_t cut_evicted;         /* closed to make room at the limit */
	uint64_t refused;             /* refused at the limit */
	uint64_t renders, cached;     /* scrapes rendered anew / given the last text */
};

/* http_get_stats - fill @st. */
void http_get_stats(const struct http *h, struct http_stats *st);

/*
 * http_set_limits - change the total deadline of a request (5000 ms) and
 * how long a connection holds its slot before a new one may take it over
 * (250 ms). For tests.
 */
void http_set_limits(struct http *h, uint32_t deadline_ms, uint32_t evict_after_ms);

/* http_available - whether this build can serve HTTP at all. */
bool http_available(void);

#endif
