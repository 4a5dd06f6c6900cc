/* SPDX-License-Identifier: MIT */
/*
 * The broker's counters in the Prometheus text exposition format (0.0.4):
 * served as `nfq-ctl metrics` over the control socket and, when
 * broker.metrics_listen is set, over HTTP for a scrape (http.c).
 */
#ifndef BROKER_METRICS_H
#define BROKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct session_mgr;

/* A growing text buffer; once an allocation failed, err stays -ENOMEM. */
struct metrics_buf {
	char *data;              /* NUL-terminated when len > 0 */
	size_t len, cap;
	int err;
};

/* metrics_buf_free - release the text; the buffer is empty and reusable. */
void metrics_buf_free(struct metrics_buf *b);

/* metrics_buf_printf - append printf output. */
__attribute__((format(printf, 2, 3)))
void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...);

/*
 * metrics_buf_label - append @s as a label value between double quotes,
 * escaped as the format asks: backslash, double quote and newline.
 */
void metrics_buf_label(struct metrics_buf *b, const char *s);

/*
 * metrics_render - the whole exposition of @m into @b (appended): HELP and
 * TYPE lines, then the samples of each family. Reads the kernel queue
 * statistics of every namespace. Returns 0 or -ENOMEM.
 */
int metrics_render(struct session_mgr *m, struct metrics_buf *b);

/* Content-Type of the text format, for HTTP. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * metrics_parse_listen - parse broker.metrics_listen: "127.0.0.1:9101"
 * (any 127.0.0.0/8 address) or "[::1]:9101"; port 0 asks for a free port.
 * Only loopback addresses are accepted: the metrics are not meant for the
 * network. Fills @ss/@sslen; returns 0, or -EINVAL with the reason in @why.
 */
int metrics_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
			 char *why, size_t whylen);

#endif
