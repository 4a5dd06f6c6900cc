/* SPDX-License-Identifier: MIT */
/*
 * The holder socket's messages (docs/holder.md): one SOCK_SEQPACKET
 * message each way. A request is a verb line (HOLD, RELEASE, CHECK, GC)
 * and key=value lines; the answer is "ok" or "error" with code=, msg=
 * and details= lines (the CNI error the plugin passes on). Text, so that
 * a person can speak it with socat; every value is one line of printable
 * bytes, bounded, and checked here before anything acts on it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holder.h"

enum { F_CID = 1, F_NET = 2, F_IF = 4, F_NAME = 8, F_NETNS = 16, F_BROKER = 32, F_TIMEOUT = 64 };

static const struct {
	const char *verb;
	unsigned need, allow;
} verbs[] = {
	[HOLDER_HOLD] = { "HOLD", F_CID | F_NET | F_IF | F_NAME | F_NETNS | F_BROKER,
			  F_CID | F_NET | F_IF | F_NAME | F_NETNS | F_BROKER | F_TIMEOUT },
	[HOLDER_RELEASE] = { "RELEASE", F_CID | F_NET, F_CID | F_NET | F_IF },
	[HOLDER_CHECK] = { "CHECK", F_CID | F_NET | F_IF | F_NETNS, F_CID | F_NET | F_IF | F_NETNS },
	[HOLDER_GC] = { "GC", F_NET, F_NET },
};

const char *holder_verb_name(enum holder_verb v)
{
	return (size_t)v < sizeof(verbs) / sizeof(verbs[0]) ? verbs[v].verb : "?";
}

bool holder_cid_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z');

		if (!alnum && (i == 0 || !strchr("_.-", ch)))
			return false;
	}
	return true;
}

/* Copy a value of @n bytes into @out (@outlen); -EINVAL when it does not fit. */
static int put(char *out, size_t outlen, const char *v, size_t n)
{
	if (n >= outlen)
		return -EINVAL;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

static int valid_add(struct holder_req *r, const char *v, size_t n, char *why, size_t whylen)
{
	const char *sp = memchr(v, ' ', n);
	struct holder_valid *a;

	if (r->n_valid >= HOLDER_VALID_MAX) {
		snprintf(why, whylen, "valid: more than %d entries", HOLDER_VALID_MAX);
		return -EINVAL;
	}
	if (!r->valid) {
		r->valid = calloc(HOLDER_VALID_MAX, sizeof(*r->valid));
		if (!r->valid) {
			snprintf(why, whylen, "out of memory");
			return -ENOMEM;
		}
	}
	a = &r->valid[r->n_valid];
	if (!sp || put(a->cid, sizeof(a->cid), v, (size_t)(sp - v)) < 0 ||
	    put(a->ifname, sizeof(a->ifname), sp + 1, n - (size_t)(sp - v) - 1) < 0 ||
	    !holder_cid_ok(a->cid) || !a->ifname[0]) {
		snprintf(why, whylen, "valid: \"%.*s\" is not \"CONTAINERID IFNAME\"", (int)(n > 200 ? 200 : n), v);
		return -EINVAL;
	}
	r->n_valid++;
	return 0;
}

/* One key=value line; @seen collects the keys for the duplicate and the
 * required-key checks. */
static int parse_field(struct holder_req *r, const char *k, size_t kn, const char *v, size_t vn,
		       unsigned *seen, char *why, size_t whylen)
{
	static const struct { const char *key; unsigned bit; size_t off, len; } keys[] = {
		{ "cid", F_CID, offsetof(struct holder_req, cid), CID_MAX + 1 },
		{ "net", F_NET, offsetof(struct holder_req, net), NET_MAX },
		{ "ifname", F_IF, offsetof(struct holder_req, ifname), IF_MAX },
		{ "name", F_NAME, offsetof(struct holder_req, name), WIRE_NAME_MAX },
		{ "netns", F_NETNS, offsetof(struct holder_req, netns), PATH_MAX },
		{ "broker", F_BROKER, offsetof(struct holder_req, broker), HOLDER_BROKER_MAX },
	};
	unsigned allow = verbs[r->verb].allow;

	if (r->verb == HOLDER_GC && kn == 5 && memcmp(k, "valid", 5) == 0)
		return valid_add(r, v, vn, why, whylen);
	if (kn == 10 && memcmp(k, "timeout_ms", 10) == 0 && (allow & F_TIMEOUT)) {
		char num[16], *end;
		long ms;

		if (*seen & F_TIMEOUT)
			goto dup;
		*seen |= F_TIMEOUT;
		if (put(num, sizeof(num), v, vn) < 0)
			goto bad_timeout;
		errno = 0;
		ms = strtol(num, &end, 10);
		if (!num[0] || *end || errno || ms < 100 || ms > 600000)
			goto bad_timeout;
		r->timeout_ms = (int)ms;
		return 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strlen(keys[i].key) != kn || memcmp(keys[i].key, k, kn) != 0 || !(allow & keys[i].bit))
			continue;
		if (*seen & keys[i].bit)
			goto dup;
		*seen |= keys[i].bit;
		if (put((char *)r + keys[i].off, keys[i].len, v, vn) < 0) {
			snprintf(why, whylen, "%s: longer than %zu bytes", keys[i].key, keys[i].len - 1);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(why, whylen, "%s: unknown key \"%.*s\"", verbs[r->verb].verb, (int)(kn > 64 ? 64 : kn), k);
	return -EINVAL;
dup:
	snprintf(why, whylen, "%.*s: given twice", (int)kn, k);
	return -EINVAL;
bad_timeout:
	snprintf(why, whylen, "timeout_ms: must be an integer 100-600000");
	return -EINVAL;
}

/* What the fields must be beyond their length. */
static int check_values(const struct holder_req *r, unsigned seen, char *why, size_t whylen)
{
	static const char *const names[] = { "cid", "net", "ifname", "name", "netns", "broker", "timeout_ms" };
	unsigned missing = verbs[r->verb].need & ~seen;

	for (unsigned i = 0; missing && i < 7; i++) {
		if (missing & (1u << i)) {
			snprintf(why, whylen, "%s: missing %s", verbs[r->verb].verb, names[i]);
			return -EINVAL;
		}
	}
	if ((seen & F_CID) && !holder_cid_ok(r->cid)) {
		snprintf(why, whylen, "cid: \"%s\" is not a valid container id", r->cid);
		return -EINVAL;
	}
	if ((seen & F_NET) && !r->net[0]) {
		snprintf(why, whylen, "net: empty");
		return -EINVAL;
	}
	if ((verbs[r->verb].need & F_IF) && !r->ifname[0]) {
		snprintf(why, whylen, "ifname: empty");
		return -EINVAL;
	}
	if ((seen & F_NAME) && !r->name[0]) {
		snprintf(why, whylen, "name: empty");
		return -EINVAL;
	}
	if ((seen & F_NETNS) && r->netns[0] != '/') {
		snprintf(why, whylen, "netns: \"%.256s\" is not an absolute path", r->netns);
		return -EINVAL;
	}
	if ((seen & F_BROKER) && r->broker[0] != '/') {
		snprintf(why, whylen, "broker: \"%.100s\" is not an absolute path", r->broker);
		return -EINVAL;
	}
	return 0;
}

int holder_req_parse(const char *buf, size_t len, struct holder_req *r, char *why, size_t whylen)
{
	const char *p = buf, *end = buf + len;
	unsigned seen = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	r->timeout_ms = DEFAULT_ATTACH_TIMEOUT_MS;
	snprintf(why, whylen, "empty request");
	if (len == 0 || len > HOLDER_MSG_MAX)
		return len ? (snprintf(why, whylen, "request longer than %u bytes", HOLDER_MSG_MAX), -EINVAL) : -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if ((ch < 0x20 && ch != '\n') || ch == 0x7f) {
			snprintf(why, whylen, "control byte 0x%02x at offset %zu", ch, i);
			return -EINVAL;
		}
	}
	for (int line = 0; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eq;
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (line == 0) {
			size_t v;

			for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
				if (strlen(verbs[v].verb) == n && memcmp(verbs[v].verb, p, n) == 0)
					break;
			if (v == sizeof(verbs) / sizeof(verbs[0])) {
				snprintf(why, whylen, "unknown verb \"%.*s\"", (int)(n > 32 ? 32 : n), p);
				return -EINVAL;
			}
			r->verb = (enum holder_verb)v;
		} else if (n > 0) {
			eq = memchr(p, '=', n);
			if (!eq || eq == p) {
				snprintf(why, whylen, "line %d: not key=value", line + 1);
				ret = -EINVAL;
				goto fail;
			}
			ret = parse_field(r, p, (size_t)(eq - p), eq + 1, n - (size_t)(eq - p) - 1, &seen,
					  why, whylen);
			if (ret < 0)
				goto fail;
		}
		p = nl ? nl + 1 : end;
	}
	ret = check_values(r, seen, why, whylen);
	if (ret == 0)
		return 0;
fail:
	holder_req_clear(r);
	return ret;
}

void holder_req_clear(struct holder_req *r)
{
	free(r->valid);
	r->valid = NULL;
	r->n_valid = 0;
}

/* Append "key=value\n" when @v is set. */
static int add(char *buf, size_t len, size_t *used, const char *k, const char *v)
{
	int n;

	if (!v || !*v)
		return 0;
	n = snprintf(buf + *used, len - *used, "%s=%s\n", k, v);
	if (n < 0 || (size_t)n >= len - *used)
		return -ENOSPC;
	*used += (size_t)n;
	return 0;
}

ssize_t holder_req_format(const struct holder_req *r, char *buf, size_t len)
{
	char num[16], pair[CID_MAX + IF_MAX + 2];
	size_t used = 0;
	int n = snprintf(buf, len, "%s\n", verbs[r->verb].verb);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	used = (size_t)n;
	snprintf(num, sizeof(num), "%d", r->timeout_ms);
	if (add(buf, len, &used, "cid", r->cid) < 0 || add(buf, len, &used, "net", r->net) < 0 ||
	    add(buf, len, &used, "ifname", r->ifname) < 0 || add(buf, len, &used, "name", r->name) < 0 ||
	    add(buf, len, &used, "netns", r->netns) < 0 || add(buf, len, &used, "broker", r->broker) < 0 ||
	    (r->verb == HOLDER_HOLD && r->timeout_ms && add(buf, len, &used, "timeout_ms", num) < 0))
		return -ENOSPC;
	for (size_t i = 0; i < r->n_valid; i++) {
		snprintf(pair, sizeof(pair), "%s %s", r->valid[i].cid, r->valid[i].ifname);
		if (add(buf, len, &used, "valid", pair) < 0)
			return -ENOSPC;
	}
	return (ssize_t)used;
}

/* @s on one line: newlines and other control bytes as spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

ssize_t holder_reply_format(const struct cni_err *e, char *buf, size_t len)
{
	char msg[sizeof(e->msg)], details[sizeof(e->details)];
	int n;

	if (!e || e->code == 0)
		n = snprintf(buf, len, "ok\n");
	else {
		snprintf(msg, sizeof(msg), "%s", e->msg);
		snprintf(details, sizeof(details), "%s", e->details);
		one_line(msg);
		one_line(details);
		n = snprintf(buf, len, "error\ncode=%d\nmsg=%s\ndetails=%s\n", e->code, msg, details);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int holder_reply_parse(const char *buf, size_t len, struct cni_err *e)
{
	const char *p = buf, *end = buf + len;

	memset(e, 0, sizeof(*e));
	if ((len == 3 && memcmp(buf, "ok\n", 3) == 0) || (len == 2 && memcmp(buf, "ok", 2) == 0))
		return 0;
	if (len < 6 || memcmp(buf, "error\n", 6) != 0)
		return -EINVAL;
	for (p += 6; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 5 && memcmp(p, "code=", 5) == 0) {
			char num[16];

			if (put(num, sizeof(num), p + 5, n - 5) == 0)
				e->code = atoi(num);
		} else if (n >= 4 && memcmp(p, "msg=", 4) == 0) {
			put(e->msg, sizeof(e->msg), p + 4, n - 4 < sizeof(e->msg) ? n - 4 : sizeof(e->msg) - 1);
		} else if (n >= 8 && memcmp(p, "details=", 8) == 0) {
			put(e->details, sizeof(e->details), p + 8,
			    n - 8 < sizeof(e->details) ? n - 8 : sizeof(e->details) - 1);
		}
		p = nl ? nl + 1 : end;
	}
	return e->code > 0 ? 1 : -EINVAL;
}
