/* SPDX-License-Identifier: MIT */
/*
 * Event formatting runs in the verdict step (only while someone watches),
 * so it writes into a fixed buffer with snprintf and never allocates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "escape.h"
#include "names.h"
#include "watch.h"

size_t watch_json_str(char *buf, size_t len, const char *s)
{
	return escape_quote(buf, len, s, ESCAPE_JSON, NULL);
}

/* Appending into a fixed buffer; once something did not fit, it stays failed. */
struct out {
	char *buf;
	size_t len, pos;
	bool full;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (o->full)
		return;
	va_start(ap, fmt);
	w = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= o->len - o->pos) {
		o->full = true;
		return;
	}
	o->pos += (size_t)w;
}

/* ,"key":"value" (or null); the first key of the object has no comma. */
static void put_str(struct out *o, const char *key, const char *val)
{
	size_t w;
	bool cut;

	put(o, "%s\"%s\":", o->pos > 1 ? "," : "", key);
	if (o->full)
		return;
	w = escape_quote(o->buf + o->pos, o->len - o->pos, val, ESCAPE_JSON, &cut);
	if (w == 0 || cut)
		o->full = true;
	else
		o->pos += w;
}

static void put_u64(struct out *o, const char *key, uint64_t v)
{
	put(o, "%s\"%s\":%" PRIu64, o->pos > 1 ? "," : "", key, v);
}

static void put_null(struct out *o, const char *key)
{
	put(o, "%s\"%s\":null", o->pos > 1 ? "," : "", key);
}

/* Interface name in the packet's namespace; the index when the name is unknown. */
static void put_dev(struct out *o, const char *key, const struct session *s, uint32_t idx)
{
	const char *name = idx && session_links(s) ? links_name(session_links(s), idx) : NULL;
	char nb[16];

	if (!idx) {
		put_null(o, key);
		return;
	}
	if (!name) {
		snprintf(nb, sizeof(nb), "%" PRIu32, idx);
		name = nb;
	}
	put_str(o, key, name);
}

static void put_addr(struct out *o, const char *key, const struct pktmeta *m,
		     const uint8_t *a)
{
	char ab[INET6_ADDRSTRLEN];
	const char *s = NULL;

	if (m->family == 4)
		s = inet_ntop(AF_INET, a, ab, sizeof(ab));
	else if (m->family == 6)
		s = inet_ntop(AF_INET6, a, ab, sizeof(ab));
	if (s)
		put_str(o, key, s);
	else
		put_null(o, key);
}

size_t watch_format(char *buf, size_t len, const struct session *s,
		    const struct nfqb_packet *p, const struct pktmeta *m, int rule,
		    const struct policy_action *act, int rc)
{
	struct out o = { .buf = buf, .len = len };
	char pb[8], vb[POLICY_VERDICT_NAME_MAX];

	put(&o, "{");
	put_str(&o, "ns", session_name(s));
	put_u64(&o, "queue", nfqb_packet_queue(p));
	put_u64(&o, "id", nfqb_packet_id(p));
	put_str(&o, "hook", names_hook(m->hook));
	put_str(&o, "family", m->family == 4 ? "ipv4" : m->family == 6 ? "ipv6" : NULL);
	put_str(&o, "proto", m->family ? pktmeta_proto_name(m->proto, pb, sizeof(pb)) : NULL);
	put_addr(&o, "src", m, m->src);
	put_addr(&o, "dst", m, m->dst);
	if (m->has_ports) {
		put_u64(&o, "sport", m->sport);
		put_u64(&o, "dport", m->dport);
	} else {
		put_null(&o, "sport");
		put_null(&o, "dport");
	}
	put_u64(&o, "len", m->len);
	put_dev(&o, "indev", s, nfqb_packet_indev(p));
	put_dev(&o, "outdev", s, nfqb_packet_outdev(p));
	put_u64(&o, "mark", act->set_mark ? act->mark : m->mark);
	put_str(&o, "policy", policy_name(session_policy(s)));
	put_str(&o, "rule", policy_rule_name(session_policy(s), rule));
	put_str(&o, "verdict", policy_verdict_name(act->verdict, vb, sizeof(vb)));
	if (rc < 0)
		put_str(&o, "error", strerror(-rc));
	put(&o, "}\n");
	return o.full ? 0 : o.pos;
}

size_t watch_format_lost(char *buf, size_t len, uint64_t n)
{
	int w = snprintf(buf, len, "{\"lost\":%" PRIu64 "}\n", n);

	return w < 0 || (size_t)w >= len ? 0 : (size_t)w;
}
