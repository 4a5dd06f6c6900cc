/* SPDX-License-Identifier: MIT */
/*
 * Event formatting runs in the verdict step (only while someone watches),
 * so it writes into a fixed buffer with snprintf and never allocates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

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

/* The TCP flags as tcpdump prints them: "S", "S.", "P.", "F.", "R" ... */
static const char *tcp_flags_str(uint8_t flags, char *buf)
{
	static const char letters[] = "FSRP.UEW";   /* bit 0 .. bit 7 */
	size_t n = 0;

	for (int i = 0; i < 8; i++)
		if (flags & (1u << i))
			buf[n++] = letters[i];
	if (!n)
		buf[n++] = '-';
	buf[n] = '\0';
	return buf;
}

size_t watch_format(char *buf, size_t len, const struct session *s,
		    const struct nfqb_packet *p, const struct pktmeta *m, int rule,
		    const struct policy_action *act, int rc)
{
	struct out o = { .buf = buf, .len = len };
	char pb[8], vb[POLICY_VERDICT_NAME_MAX], fb[10];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	put(&o, "{\"ts\":%lld.%06ld", (long long)ts.tv_sec, ts.tv_nsec / 1000);
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
	if (m->family && m->proto == IPPROTO_TCP && m->has_ports)
		put_str(&o, "tcp_flags", tcp_flags_str(m->tcp_flags, fb));
	put_u64(&o, "len", m->len);
	put_dev(&o, "indev", s, nfqb_packet_indev(p));
	put_dev(&o, "outdev", s, nfqb_packet_outdev(p));
	put_u64(&o, "mark", act->set_mark ? act->mark : m->mark);
	if (m->has_uid)
		put_u64(&o, "uid", m->uid);
	if (m->has_gid)
		put_u64(&o, "gid", m->gid);
	put_str(&o, "policy", policy_name(session_policy(s)));
	put_str(&o, "rule", policy_rule_name(session_policy(s), rule));
	put_str(&o, "verdict", policy_verdict_name(act->verdict, vb, sizeof(vb)));
	/* audit mode: what the policy would have done (sent: accept) */
	if (act->audited)
		put_str(&o, "audit", policy_verdict_name(act->would_verdict, vb, sizeof(vb)));
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

/* ------------------------------------------------------------ filters */

__attribute__((format(printf, 4, 5)))
static int bad(char *err, size_t errlen, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "bad \"%s\" filter: %s", key, msg);
	return -EINVAL;
}

/* The string value of @key into @out; 0 absent/null, 1 set, <0 bad. */
static int get_str(json_object *req, const char *key, char *out, size_t outlen,
		   char *err, size_t errlen)
{
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(req, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return bad(err, errlen, key, "not a string");
	n = (size_t)json_object_get_string_len(v);
	if (n == 0)
		return bad(err, errlen, key, "empty");
	if (n >= outlen)
		return bad(err, errlen, key, "longer than %zu bytes", outlen - 1);
	if (memchr(json_object_get_string(v), '\0', n))
		return bad(err, errlen, key, "NUL byte in the value");
	memcpy(out, json_object_get_string(v), n + 1);
	return 1;
}

/* "53" or 53: 0..65535. */
static int parse_port(json_object *req, struct watch_filter *f, char *err, size_t errlen)
{
	json_object *v;
	const char *s;
	char *end;
	long n;

	if (!json_object_object_get_ex(req, "port", &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (i < 0 || i > 65535)
			return bad(err, errlen, "port", "%" PRId64 " is not a port (0-65535)", i);
		f->port = (int)i;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return bad(err, errlen, "port", "not a number");
	s = json_object_get_string(v);
	errno = 0;
	n = strtol(s, &end, 10);
	if (!*s || *end || errno || n < 0 || n > 65535 || *s == '-' || *s == '+' || *s == ' ')
		return bad(err, errlen, "port", "\"%.40s\" is not a port (0-65535)", s);
	f->port = (int)n;
	return 0;
}

static int parse_proto(json_object *req, struct watch_filter *f, char *err, size_t errlen)
{
	char s[16], *end;
	int rc = get_str(req, "proto", s, sizeof(s), err, errlen);
	long n;

	if (rc <= 0)
		return rc;
	f->proto = pktmeta_proto_by_name(s);
	if (f->proto >= 0)
		return 0;
	errno = 0;
	n = strtol(s, &end, 10);
	if (*end || errno || n < 0 || n > 255 || *s < '0' || *s > '9')
		return bad(err, errlen, "proto", "\"%s\" is not a protocol (tcp, udp, icmp, icmpv6, "
			   "sctp, udplite, gre, esp, ah or 0-255)", s);
	f->proto = (int)n;
	return 0;
}

static int parse_verdict(json_object *req, struct watch_filter *f, char *err, size_t errlen)
{
	char s[16];
	int rc = get_str(req, "verdict", s, sizeof(s), err, errlen);

	if (rc <= 0)
		return rc;
	f->verdict = strcmp(s, "queue") == 0 ? NFQB_QUEUE : names_verdict_by_name(s);
	if (f->verdict < 0)
		return bad(err, errlen, "verdict", "\"%s\" is not a verdict (accept, drop, "
			   "repeat, queue)", s);
	return 0;
}

/* "10.0.0.0/8", "10.0.0.1" (a /32), "fd00::/64", "::1". */
static int parse_addr(json_object *req, struct watch_filter *f, char *err, size_t errlen)
{
	char s[INET6_ADDRSTRLEN + 8], *slash, *end;
	int rc = get_str(req, "addr", s, sizeof(s), err, errlen), max;
	long n;

	if (rc <= 0)
		return rc;
	slash = strchr(s, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, s, f->addr) == 1)
		f->family = 4;
	else if (inet_pton(AF_INET6, s, f->addr) == 1)
		f->family = 6;
	else
		return bad(err, errlen, "addr", "\"%s\" is not an IPv4 or IPv6 address", s);
	max = f->family == 4 ? 32 : 128;
	f->plen = (uint8_t)max;
	if (!slash)
		return 0;
	errno = 0;
	n = strtol(slash + 1, &end, 10);
	if (!slash[1] || *end || errno || n < 0 || n > max || slash[1] < '0' || slash[1] > '9')
		return bad(err, errlen, "addr", "\"/%s\" is not a prefix length (0-%d)",
			   slash + 1, max);
	f->plen = (uint8_t)n;
	return 0;
}

int watch_filter_parse(struct watch_filter *f, json_object *req, char *err, size_t errlen)
{
	int rc;

	*f = (struct watch_filter){ .verdict = -1, .proto = -1, .port = -1 };
	if ((rc = get_str(req, "ns", f->ns, sizeof(f->ns), err, errlen)) < 0 ||
	    (rc = get_str(req, "policy", f->policy, sizeof(f->policy), err, errlen)) < 0 ||
	    (rc = get_str(req, "rule", f->rule, sizeof(f->rule), err, errlen)) < 0 ||
	    (rc = parse_verdict(req, f, err, errlen)) < 0 ||
	    (rc = parse_proto(req, f, err, errlen)) < 0 ||
	    (rc = parse_port(req, f, err, errlen)) < 0 ||
	    (rc = parse_addr(req, f, err, errlen)) < 0)
		return rc;
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned plen)
{
	unsigned full = plen / 8, rest = plen % 8;

	if (memcmp(a, net, full) != 0)
		return false;
	return !rest || ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/*
 * The broker never calls setlocale(): in the C locale fnmatch() takes its
 * single-byte path, which allocates nothing (verdict-step rule).
 */
static bool glob_ok(const char *glob, const char *s)
{
	return !glob[0] || (s && fnmatch(glob, s, 0) == 0);
}

bool watch_filter_match(const struct watch_filter *f, const struct session *s,
			const struct pktmeta *m, int rule, const struct policy_action *act)
{
	if (f->verdict >= 0 && (int)(act->verdict & 0xffff) != f->verdict)
		return false;
	if (f->proto >= 0 && (!m->family || m->proto != f->proto))
		return false;
	if (f->port >= 0 && (!m->has_ports || (m->sport != f->port && m->dport != f->port)))
		return false;
	if (f->family && (m->family != f->family ||
			  (!prefix_match(m->src, f->addr, f->plen) &&
			   !prefix_match(m->dst, f->addr, f->plen))))
		return false;
	return glob_ok(f->ns, session_name(s)) &&
	       glob_ok(f->policy, policy_name(session_policy(s))) &&
	       glob_ok(f->rule, policy_rule_name(session_policy(s), rule));
}

const char *watch_filter_describe(const struct watch_filter *f, char *buf, size_t len)
{
	struct out o = { .buf = buf, .len = len };
	char ab[INET6_ADDRSTRLEN], pb[8];

	buf[0] = '\0';
	if (f->ns[0])
		put(&o, " ns=%s", f->ns);
	if (f->verdict >= 0)
		put(&o, " verdict=%s", names_verdict((uint32_t)f->verdict));
	if (f->policy[0])
		put(&o, " policy=%s", f->policy);
	if (f->rule[0])
		put(&o, " rule=%s", f->rule);
	if (f->proto >= 0)
		put(&o, " proto=%s", pktmeta_proto_name((uint8_t)f->proto, pb, sizeof(pb)));
	if (f->port >= 0)
		put(&o, " port=%d", f->port);
	if (f->family)
		put(&o, " addr=%s/%u", inet_ntop(f->family == 4 ? AF_INET : AF_INET6, f->addr,
						  ab, sizeof(ab)), f->plen);
	if (!o.pos)
		snprintf(buf, len, "*");
	else
		memmove(buf, buf + 1, strlen(buf));    /* the leading space */
	return buf;
}
