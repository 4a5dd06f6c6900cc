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
 * TYPE lines, then the samples of each family. The kernel queue statistics
 * come from each session's snapshot (metrics_kstats_refresh): rendering
 * never enters a namespace. Returns 0 or -ENOMEM.
 */
int metrics_render(struct session_mgr *m, struct metrics_buf *b);

/*
 * metrics_count / metrics_name - the table metrics_render() renders, in
 * order: the @i-th family's name (NULL past the end), its type and help.
 */
size_t metrics_count(void);
const char *metrics_name(size_t i, const char **type, const char **help);

/* Most namespaces whose kernel statistics one tick reads (a setns pair each). */
#define METRICS_KSTATS_BUDGET 8

/*
 * metrics_kstats_budget - how many of @count namespaces one tick of
 * @tick_ms reads so that each is read about every @refresh_ms: the work
 * is spread over the ticks, at least 1, at most METRICS_KSTATS_BUDGET.
 */
unsigned metrics_kstats_budget(size_t count, uint32_t tick_ms, uint32_t refresh_ms);

/*
 * metrics_kstats_refresh - one tick: session_mgr_kstats_refresh() of up to
 * metrics_kstats_budget() sessions whose snapshot is older than the
 * config's metrics_refresh_ms (never read ones first). Returns how many
 * were read (also counted in the totals' kstats_refreshes).
 */
unsigned metrics_kstats_refresh(struct session_mgr *m, uint64_t now_ms, uint32_t tick_ms);

#define METRICS_KSTATS_TICK_MS 250u    /* kernel stats refresh tick (at most) */
#define METRICS_OVERRUN_TICK_MS 1000u  /* socket overrun (ENOBUFS) log tick */
#define METRICS_LAG_TICK_MS 100u       /* loop lag probe (nfqb_loop_lag_seconds) */

/*
 * The broker's periodic reads: every METRICS_KSTATS_TICK_MS (or
 * metrics_refresh_ms when shorter) metrics_kstats_refresh(), every
 * METRICS_OVERRUN_TICK_MS session_mgr_log_overruns(), every
 * METRICS_LAG_TICK_MS how late the loop ran that timer (session_mgr_loop_lag()).
 */
struct metrics_tick;

/* metrics_tick_new - start the ticks on @m's loop; NULL with errno. */
struct metrics_tick *metrics_tick_new(struct session_mgr *m);

/* metrics_tick_free - stop the ticks. NULL is a no-op. */
void metrics_tick_free(struct metrics_tick *mt);

/*
 * The last rendered exposition and a per-second render budget: however
 * often an HTTP client scrapes, the text is rendered at most @per_s times
 * a second; scrapes beyond that get the last text again.
 */
struct metrics_cache {
	struct metrics_buf b;
	uint64_t window_ms;      /* start of the current second; 0: never rendered */
	unsigned window_renders;
	uint64_t renders, hits;
};

/*
 * metrics_cache_get - @mc->b rendered anew at @now_ms unless @per_s renders
 * happened in this second already. Returns 0 or -ENOMEM (the cache is
 * then empty).
 */
int metrics_cache_get(struct metrics_cache *mc, struct session_mgr *m, uint64_t now_ms,
		      unsigned per_s);

/* metrics_cache_free - forget the text; the cache is empty and reusable. */
void metrics_cache_free(struct metrics_cache *mc);

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

/*
 * metrics_parse_address - metrics_parse_listen(), any address when
 * @public_ok (broker.metrics_public): "0.0.0.0:9101", "[::]:9101".
 */
int metrics_parse_address(const char *s, bool public_ok, struct sockaddr_storage *ss,
			  socklen_t *sslen, char *why, size_t whylen);

/* metrics_addr_loopback - whether @ss is a loopback address. */
bool metrics_addr_loopback(const struct sockaddr_storage *ss);

#endif
