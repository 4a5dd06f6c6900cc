/* SPDX-License-Identifier: MIT */
/*
 * Policies are compiled once per (re)load into flat per-rule arrays plus a
 * bitmask of the fields each rule tests (policy-int.h), which
 * policy-eval.c matches with no allocation. Parsing goes on after an error
 * so one `--check` run reports all of them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfqb/queue.h>

#include "jsonv.h"
#include "policy-int.h"

/* ------------------------------------------------------------------ */
/* Rule names by hash                                                 */
/* ------------------------------------------------------------------ */

/*
 * Rule name -> index of one policy's rules: open addressing, linear
 * probing, at most half full. Built per policy at parse time (duplicate
 * names) and per reload (counter carry-over), so that both cost O(rules)
 * rather than O(rules^2): 20,000 rules used to block the loop ~1 s.
 */
struct name_index {
	uint32_t *slot;            /* rule index + 1; 0 is an empty slot */
	size_t mask;
};

/* FNV-1a: names are short, and a bad spread costs time, never results. */
static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int name_index_init(struct name_index *t, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	t->slot = calloc(cap, sizeof(*t->slot));
	t->mask = cap - 1;
	return t->slot ? 0 : -ENOMEM;
}

static void name_index_free(struct name_index *t)
{
	free(t->slot);
	t->slot = NULL;
}

/* The index of the rule of @rules named @name, or -1. */
static long name_index_find(const struct name_index *t, const struct rule *rules,
			    const char *name)
{
	for (size_t i = name_hash(name) & t->mask;; i = (i + 1) & t->mask) {
		uint32_t v = t->slot[i];

		if (!v)
			return -1;
		if (strcmp(rules[v - 1].name, name) == 0)
			return (long)v - 1;
	}
}

/* Add rules[@idx] (named, not in the table yet). */
static void name_index_add(struct name_index *t, const struct rule *rules, size_t idx)
{
	size_t i = name_hash(rules[idx].name) & t->mask;

	while (t->slot[i])
		i = (i + 1) & t->mask;
	t->slot[i] = (uint32_t)idx + 1;
}

static int carry_policy(struct policy *p, const struct policy *q)
{
	struct name_index t;

	p->ctr->c[0] = q->ctr->c[0];
	if (!q->n_rules || !p->n_rules)
		return 0;
	if (name_index_init(&t, q->n_rules) < 0)
		return -ENOMEM;
	for (size_t k = 0; k < q->n_rules; k++)
		if (q->rules[k].name)
			name_index_add(&t, q->rules, k);
	for (size_t r = 0; r < p->n_rules; r++) {
		long k = p->rules[r].name ? name_index_find(&t, q->rules, p->rules[r].name) : -1;

		if (k >= 0)
			p->ctr->c[r + 1] = q->ctr->c[k + 1];
	}
	name_index_free(&t);
	return 0;
}

/* policy_set_carry_counters - see policy.h. */
int policy_set_carry_counters(struct policy_set *to, const struct policy_set *from)
{
	int ret = 0;

	if (!to || !from)
		return 0;
	for (size_t i = 0; i < to->n; i++) {
		const struct policy *q = policy_set_find(from, to->pols[i]->name);

		if (q && carry_policy(to->pols[i], q) < 0)
			ret = -ENOMEM;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Freeing                                                            */
/* ------------------------------------------------------------------ */

/* Room for @n rules and the default. */
static struct policy_counters *counters_new(size_t n)
{
	struct policy_counters *c = calloc(1, sizeof(*c) + (n + 1) * sizeof(c->c[0]));

	if (c)
		c->n = n + 1;
	return c;
}

static void rule_release(struct rule *r)
{
	free(r->src);
	free(r->dst);
	free(r->sport);
	free(r->dport);
	free(r->indev);
	free(r->outdev);
	free(r->uid);
	free(r->gid);
	free(r->name);
}

static void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++)
		rule_release(&p->rules[i]);
	free(p->rules);
	free(p->ctr);
	free(p->name);
	free(p);
}

/* policy_set_free - free @s and every policy in it; NULL is a no-op. */
void policy_set_free(struct policy_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		policy_free(s->pols[i]);
	free(s->pols);
	free(s->ifnames);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Parsing helpers                                                    */
/* ------------------------------------------------------------------ */

struct compile {
	struct policy_set *set;
	struct errs *e;
	struct name_index names;   /* of the policy being parsed */
};

/* Strict decimal (or 0x hex when @hex): digits only, no sign, no spaces.
 * 0 ok, -EINVAL bad syntax. Values are capped far above any field range. */
static int parse_num(const char *s, size_t len, bool hex, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (hex && len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (len == 0 || len > 16)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
			d = (unsigned)(s[i] - 'a' + 10);
		else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
			d = (unsigned)(s[i] - 'A' + 10);
		else
			return -EINVAL;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* "lo-hi" (a number alone is a JSON number, not a string). */
static bool parse_range_str(json_object *o, const char *path, struct errs *e,
			    const char *noun, uint64_t max, uint64_t *lo, uint64_t *hi)
{
	char vb[VALBUF];
	const char *s, *dash;
	size_t len;

	s = jsonv_str(o, &len);
	dash = s ? memchr(s, '-', len) : NULL;
	if (!dash || parse_num(s, (size_t)(dash - s), false, lo) ||
	    parse_num(dash + 1, len - (size_t)(dash - s) - 1, false, hi)) {
		errs_add(e, path, "bad %s range %s (expected a number or \"lo-hi\")",
			 noun, jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	if (*lo > max || *hi > max) {
		errs_add(e, path, "%s %" PRIu64 " out of range 0-%" PRIu64,
			 noun, *lo > max ? *lo : *hi, max);
		return false;
	}
	if (*lo > *hi) {
		errs_add(e, path, "empty %s range %s", noun, jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	return true;
}

static bool valid_name(const char *s, size_t len)
{
	if (!s || len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("_-.:/", ch)))
			return false;
	}
	return true;
}

#define NAME_RULES "(1-64 letters, digits, '_', '-', '.', ':', '/')"

/* ------------------------------------------------------------------ */
/* List items                                                         */
/* ------------------------------------------------------------------ */

typedef bool (*item_fn)(json_object *o, const char *path, struct compile *c,
			void *slot);

/*
 * One item or a non-empty array of items into a new array of @size-byte
 * elements. Every bad item is reported; returns false when any was bad.
 */
static bool parse_list(json_object *o, const char *path, struct compile *c,
		       size_t size, item_fn fn, void **out, uint32_t *n)
{
	char ipath[ERRS_PATH_MAX];
	size_t len = 1;
	bool ok = true;
	char *arr;

	if (json_object_is_type(o, json_type_array)) {
		len = json_object_array_length(o);
		if (len == 0) {
			errs_add(c->e, path, "empty list");
			return false;
		}
		if (len > UINT32_MAX) {
			errs_add(c->e, path, "list too long");
			return false;
		}
	}
	arr = calloc(len, size);
	if (!arr) {
		jsonv_nomem(c->e, path);
		return false;
	}
	if (!json_object_is_type(o, json_type_array)) {
		ok = fn(o, path, c, arr);
	} else {
		for (size_t i = 0; i < len; i++) {
			errs_path_idx(ipath, sizeof(ipath), path, i);
			if (!fn(json_object_array_get_idx(o, i), ipath, c,
				arr + i * size))
				ok = false;
		}
	}
	*out = arr;
	*n = (uint32_t)len;
	return ok;
}

static bool item_cidr(json_object *o, const char *path, struct compile *c,
		      void *slot)
{
	struct cidr *ci = slot;
	uint8_t addr[16] = { 0 }, mask[16] = { 0 };
	char buf[INET6_ADDRSTRLEN + 8], vb[VALBUF], net[INET6_ADDRSTRLEN];
	uint64_t plen, max;
	const char *s;
	char *slash;
	size_t len;
	bool hostbits = false;
	int af;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(c->e, path, "an address or CIDR string", o);
	s = jsonv_str(o, &len);
	if (!s || len >= sizeof(buf))
		goto bad;
	memcpy(buf, s, len + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	af = strchr(buf, ':') ? AF_INET6 : AF_INET;
	max = af == AF_INET ? 32 : 128;
	if (inet_pton(af, buf, addr) != 1)
		goto bad;
	plen = max;
	if (slash && (parse_num(slash + 1, strlen(slash + 1), false, &plen) ||
		      plen > max))
		goto bad;
	for (uint64_t i = 0; i < plen; i++)
		mask[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	for (size_t i = 0; i < sizeof(addr); i++) {
		hostbits |= (addr[i] & ~mask[i]) != 0;
		addr[i] &= mask[i];
	}
	if (hostbits) {
		inet_ntop(af, addr, net, sizeof(net));
		errs_add(c->e, path, "CIDR %s has host bits set (network is %s/%" PRIu64 ")",
			 jsonv_text(o, vb, sizeof(vb)), net, plen);
		return false;
	}
	memcpy(ci->net, addr, sizeof(ci->net));
	memcpy(ci->mask, mask, sizeof(ci->mask));
	ci->family = af == AF_INET ? 4 : 6;
	return true;
bad:
	errs_add(c->e, path, "bad address or CIDR %s", jsonv_text(o, vb, sizeof(vb)));
	return false;
}

static bool item_port(json_object *o, const char *path, struct compile *c,
		      void *slot)
{
	struct range16 *r = slot;
	uint64_t lo, hi;

	if (json_object_is_type(o, json_type_string)) {
		if (!parse_range_str(o, path, c->e, "port", 65535, &lo, &hi))
			return false;
	} else if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, c->e, "port", 0, 65535, &lo))
			return false;
		hi = lo;
	} else {
		return jsonv_type_err(c->e, path, "a port number or \"lo-hi\" range", o);
	}
	r->lo = (uint16_t)lo;
	r->hi = (uint16_t)hi;
	return true;
}

static bool item_proto(json_object *o, const char *path, struct compile *c,
		       void *slot)
{
	uint8_t *p = slot;
	char vb[VALBUF];
	uint64_t v;
	int num;

	if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, c->e, "protocol", 0, 255, &v))
			return false;
		*p = (uint8_t)v;
		return true;
	}
	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(c->e, path, "a protocol name or number", o);
	num = pktmeta_proto_by_name(json_object_get_string(o));
	if (num >= 0) {
		*p = (uint8_t)num;
		return true;
	}
	errs_add(c->e, path, "unknown protocol %s (tcp, udp, icmp, icmpv6, sctp, "
		 "udplite, gre, esp, ah, or a number 0-255)", jsonv_text(o, vb, sizeof(vb)));
	return false;
}

static const char *const hook_names[] = {
	[NFQB_HOOK_PREROUTING] = "prerouting", [NFQB_HOOK_INPUT] = "input",
	[NFQB_HOOK_FORWARD] = "forward", [NFQB_HOOK_OUTPUT] = "output",
	[NFQB_HOOK_POSTROUTING] = "postrouting",
};

static bool item_hook(json_object *o, const char *path, struct compile *c,
		      void *slot)
{
	uint8_t *h = slot;
	char vb[VALBUF];

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(c->e, path, "a hook name", o);
	for (size_t i = 0; i < sizeof(hook_names) / sizeof(hook_names[0]); i++)
		if (strcmp(json_object_get_string(o), hook_names[i]) == 0) {
			*h = (uint8_t)i;
			return true;
		}
	errs_add(c->e, path, "unknown hook %s (prerouting, input, forward, "
		 "output, postrouting)", jsonv_text(o, vb, sizeof(vb)));
	return false;
}

/* Mirrors the kernel's dev_valid_name(). */
static bool valid_ifname(const char *s, size_t len)
{
	if (!s || len == 0 || len >= IFNAME_SIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == ' ' ||
		    (s[i] >= '\t' && s[i] <= '\r'))
			return false;
	return true;
}

static int32_t intern_ifname(struct policy_set *s, const char *name)
{
	int32_t id = policy_ifname_id(s, name);

	if (id >= 0)
		return id;
	if (s->n_ifnames == s->cap_ifnames) {
		size_t cap = s->cap_ifnames ? s->cap_ifnames * 2 : 8;
		char (*v)[IFNAME_SIZE] = realloc(s->ifnames, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->ifnames = v;
		s->cap_ifnames = cap;
	}
	snprintf(s->ifnames[s->n_ifnames], IFNAME_SIZE, "%s", name);
	return (int32_t)s->n_ifnames++;
}

static bool item_ifname(json_object *o, const char *path, struct compile *c,
			void *slot)
{
	int32_t *id = slot;
	char vb[VALBUF];
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(c->e, path, "an interface name", o);
	s = jsonv_str(o, &len);
	if (!valid_ifname(s, len)) {
		errs_add(c->e, path, "bad interface name %s (1-15 characters, "
			 "no '/', ':' or whitespace)", jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	*id = intern_ifname(c->set, s);
	if (*id < 0) {
		jsonv_nomem(c->e, path);
		return false;
	}
	return true;
}

/* uid and gid share the item parser; the noun comes from the key. */
static bool item_id(json_object *o, const char *path, struct compile *c,
		    void *slot, const char *noun)
{
	uint64_t v;

	if (!jsonv_is_number(o))
		return jsonv_type_err(c->e, path, "a number", o);
	if (!jsonv_uint(o, path, c->e, noun, 0, UINT32_MAX, &v))
		return false;
	*(uint32_t *)slot = (uint32_t)v;
	return true;
}

static bool item_uid(json_object *o, const char *path, struct compile *c, void *slot)
{
	return item_id(o, path, c, slot, "uid");
}

static bool item_gid(json_object *o, const char *path, struct compile *c, void *slot)
{
	return item_id(o, path, c, slot, "gid");
}

/* ------------------------------------------------------------------ */
/* Match keys                                                         */
/* ------------------------------------------------------------------ */

static bool m_family(json_object *o, const char *path, struct compile *c,
		     struct rule *r)
{
	char vb[VALBUF];
	const char *s;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(c->e, path, "\"ipv4\" or \"ipv6\"", o);
	s = json_object_get_string(o);
	if (strcmp(s, "ipv4") == 0) {
		r->family = 4;
	} else if (strcmp(s, "ipv6") == 0) {
		r->family = 6;
	} else {
		errs_add(c->e, path, "unknown family %s (ipv4, ipv6)", jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	return true;
}

static bool m_proto(json_object *o, const char *path, struct compile *c,
		    struct rule *r)
{
	uint8_t *v = NULL;
	uint32_t n = 0;
	bool ok = parse_list(o, path, c, sizeof(*v), item_proto, (void **)&v, &n);

	for (uint32_t i = 0; ok && i < n; i++)
		r->protos[v[i] >> 6] |= UINT64_C(1) << (v[i] & 63);
	free(v);
	return ok;
}

static bool m_hook(json_object *o, const char *path, struct compile *c,
		   struct rule *r)
{
	uint8_t *v = NULL;
	uint32_t n = 0;
	bool ok = parse_list(o, path, c, sizeof(*v), item_hook, (void **)&v, &n);

	for (uint32_t i = 0; ok && i < n; i++)
		r->hooks |= 1u << v[i];
	free(v);
	return ok;
}

static bool m_src(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->src), item_cidr, (void **)&r->src, &r->n_src);
}

static bool m_dst(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->dst), item_cidr, (void **)&r->dst, &r->n_dst);
}

static bool m_sport(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->sport), item_port,
			  (void **)&r->sport, &r->n_sport);
}

static bool m_dport(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->dport), item_port,
			  (void **)&r->dport, &r->n_dport);
}

static bool m_indev(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->indev), item_ifname,
			  (void **)&r->indev, &r->n_indev);
}

static bool m_outdev(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->outdev), item_ifname,
			  (void **)&r->outdev, &r->n_outdev);
}

static bool m_uid(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->uid), item_uid, (void **)&r->uid, &r->n_uid);
}

static bool m_gid(json_object *o, const char *path, struct compile *c, struct rule *r)
{
	return parse_list(o, path, c, sizeof(*r->gid), item_gid, (void **)&r->gid, &r->n_gid);
}

/* A number (exact mark) or "value/mask", each side decimal or 0x hex. */
static bool m_mark(json_object *o, const char *path, struct compile *c,
		   struct rule *r)
{
	char vb[VALBUF];
	uint64_t val, mask = UINT32_MAX;
	const char *s, *slash;
	size_t len;

	if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, c->e, "mark", 0, UINT32_MAX, &val))
			return false;
	} else if (json_object_is_type(o, json_type_string)) {
		s = jsonv_str(o, &len);
		slash = s ? memchr(s, '/', len) : NULL;
		if (!slash || parse_num(s, (size_t)(slash - s), true, &val) ||
		    parse_num(slash + 1, len - (size_t)(slash - s) - 1, true, &mask) ||
		    val > UINT32_MAX || mask > UINT32_MAX) {
			errs_add(c->e, path, "bad mark %s (expected a number or "
				 "\"value/mask\", 32 bits each)", jsonv_text(o, vb, sizeof(vb)));
			return false;
		}
		if (val & ~mask) {
			errs_add(c->e, path, "mark value 0x%" PRIx64 " has bits outside "
				 "mask 0x%" PRIx64 " and can never match", val, mask);
			return false;
		}
	} else {
		return jsonv_type_err(c->e, path, "a number or \"value/mask\" string", o);
	}
	r->mark_val = (uint32_t)val;
	r->mark_mask = (uint32_t)mask;
	return true;
}

static bool m_length(json_object *o, const char *path, struct compile *c,
		     struct rule *r)
{
	uint64_t lo, hi;

	if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, c->e, "length", 0, LENGTH_MAX, &lo))
			return false;
		hi = lo;
	} else if (json_object_is_type(o, json_type_string)) {
		if (!parse_range_str(o, path, c->e, "length", LENGTH_MAX, &lo, &hi))
			return false;
	} else {
		return jsonv_type_err(c->e, path, "a number or \"lo-hi\" string", o);
	}
	r->len_lo = (uint32_t)lo;
	r->len_hi = (uint32_t)hi;
	return true;
}

static const struct match_key {
	const char *name;
	uint32_t bit;
	bool (*parse)(json_object *o, const char *path, struct compile *c,
		      struct rule *r);
} match_keys[] = {
	{ "family", T_FAMILY, m_family }, { "proto", T_PROTO, m_proto },
	{ "src", T_SRC, m_src }, { "dst", T_DST, m_dst },
	{ "sport", T_SPORT, m_sport }, { "dport", T_DPORT, m_dport },
	{ "hook", T_HOOK, m_hook }, { "indev", T_INDEV, m_indev },
	{ "outdev", T_OUTDEV, m_outdev }, { "mark", T_MARK, m_mark },
	{ "uid", T_UID, m_uid }, { "gid", T_GID, m_gid },
	{ "length", T_LENGTH, m_length },
};

/* Folds the keys present into need/scalar fields; absent ones always pass. */
static void finish_rule(struct rule *r)
{
	uint32_t t = r->tests;

	if (t & T_NEEDS_IP)
		r->need |= PK_IP;
	if (t & T_FAMILY)
		r->need |= r->family == 4 ? PK_V4 : PK_V6;
	if (t & T_PORTS)
		r->need |= PK_PORTS;
	if (t & T_UID)
		r->need |= PK_UID;
	if (t & T_GID)
		r->need |= PK_GID;
	if (!(t & T_HOOK))
		r->hooks = UINT32_MAX;
	if (!(t & T_PROTO))
		memset(r->protos, 0xff, sizeof(r->protos));
	if (!(t & T_MARK))
		r->mark_val = r->mark_mask = 0;
	if (!(t & T_LENGTH)) {
		r->len_lo = 0;
		r->len_hi = UINT32_MAX;
	}
}

static void parse_match(json_object *o, const char *path, struct compile *c,
			struct rule *r)
{
	struct json_object_iterator it, end;
	char kpath[ERRS_PATH_MAX];

	if (!json_object_is_type(o, json_type_object)) {
		jsonv_type_err(c->e, path, "an object", o);
		return;
	}
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		json_object *v = json_object_iter_peek_value(&it);
		size_t k;

		errs_path_key(kpath, sizeof(kpath), path, key);
		for (k = 0; k < sizeof(match_keys) / sizeof(match_keys[0]); k++)
			if (strcmp(key, match_keys[k].name) == 0)
				break;
		if (k == sizeof(match_keys) / sizeof(match_keys[0])) {
			errs_add(c->e, kpath, "unknown key");
			continue;
		}
		if (match_keys[k].parse(v, kpath, c, r))
			r->tests |= match_keys[k].bit;
	}
}

/* ------------------------------------------------------------------ */
/* Rules and policies                                                 */
/* ------------------------------------------------------------------ */

static bool parse_verdict(json_object *o, const char *path, struct errs *e,
			  uint32_t *verdict)
{
	char vb[VALBUF];
	const char *s;
	uint64_t q;
	size_t len;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(e, path, "a verdict string", o);
	s = jsonv_str(o, &len);
	if (s && strcmp(s, "accept") == 0) {
		*verdict = NFQB_ACCEPT;
	} else if (s && strcmp(s, "drop") == 0) {
		*verdict = NFQB_DROP;
	} else if (s && strcmp(s, "repeat") == 0) {
		*verdict = NFQB_REPEAT;
	} else if (s && strncmp(s, "queue:", 6) == 0) {
		if (parse_num(s + 6, len - 6, false, &q)) {
			errs_add(e, path, "bad verdict %s (queue:N needs a number "
				 "N 0-65535)", jsonv_text(o, vb, sizeof(vb)));
			return false;
		}
		if (q > 65535) {
			errs_add(e, path, "queue %" PRIu64 " out of range 0-65535", q);
			return false;
		}
		*verdict = NFQB_QUEUE | (uint32_t)q << 16;
	} else {
		errs_add(e, path, "unknown verdict %s (accept, drop, repeat, queue:N)",
			 jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	return true;
}

/* Rule @idx of @p; @rpath is its path. Errors are reported, not returned. */
static void parse_rule(json_object *o, const char *rpath, struct compile *c,
		       struct policy *p, size_t idx)
{
	struct rule *r = &p->rules[idx];
	struct json_object_iterator it, end;
	char kpath[ERRS_PATH_MAX], vb[VALBUF];
	bool has_verdict = false, has_name = false;
	uint64_t v;
	long dup;

	if (!json_object_is_type(o, json_type_object)) {
		jsonv_type_err(c->e, rpath, "a rule object", o);
		return;
	}
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		json_object *val = json_object_iter_peek_value(&it);

		errs_path_key(kpath, sizeof(kpath), rpath, key);
		if (strcmp(key, "name") == 0) {
			const char *s;
			size_t len;

			has_name = true;
			if (!json_object_is_type(val, json_type_string)) {
				jsonv_type_err(c->e, kpath, "a rule name string", val);
				continue;
			}
			s = jsonv_str(val, &len);
			if (!valid_name(s, len)) {
				errs_add(c->e, kpath, "bad rule name %s " NAME_RULES,
					 jsonv_text(val, vb, sizeof(vb)));
				continue;
			}
			dup = name_index_find(&c->names, p->rules, s);
			if (dup >= 0)
				errs_add(c->e, kpath, "duplicate rule name %s (also rules[%ld])",
					 jsonv_text(val, vb, sizeof(vb)), dup);
			r->name = strdup(s);
			if (!r->name)
				jsonv_nomem(c->e, kpath);
			else if (dup < 0)
				name_index_add(&c->names, p->rules, idx);
		} else if (strcmp(key, "match") == 0) {
			parse_match(val, kpath, c, r);
		} else if (strcmp(key, "verdict") == 0) {
			has_verdict = true;
			parse_verdict(val, kpath, c->e, &r->act.verdict);
		} else if (strcmp(key, "set_mark") == 0) {
			if (!jsonv_is_number(val))
				jsonv_type_err(c->e, kpath, "a number", val);
			else if (jsonv_uint(val, kpath, c->e, "mark", 0, UINT32_MAX, &v))
				r->act.mark = (uint32_t)v;
			r->act.set_mark = true;
		} else if (strcmp(key, "log") == 0) {
			if (!json_object_is_type(val, json_type_boolean))
				jsonv_type_err(c->e, kpath, "true or false", val);
			else
				r->act.log = json_object_get_boolean(val);
		} else {
			errs_add(c->e, kpath, "unknown key");
		}
	}
	finish_rule(r);
	if (!has_name) {
		errs_path_key(kpath, sizeof(kpath), rpath, "name");
		errs_add(c->e, kpath, "required key missing");
	}
	if (!has_verdict) {
		errs_path_key(kpath, sizeof(kpath), rpath, "verdict");
		errs_add(c->e, kpath, "required key missing");
	}
}

static void parse_rules(json_object *o, const char *path, struct compile *c,
			struct policy *p)
{
	char rpath[ERRS_PATH_MAX];
	size_t n;

	if (!json_object_is_type(o, json_type_array)) {
		jsonv_type_err(c->e, path, "an array of rules", o);
		return;
	}
	n = json_object_array_length(o);
	if (n > INT32_MAX) {
		errs_add(c->e, path, "too many rules");
		return;
	}
	p->rules = calloc(n ? n : 1, sizeof(*p->rules));
	p->ctr = counters_new(n);
	if (!p->rules || !p->ctr) {
		jsonv_nomem(c->e, path);
		return;
	}
	if (name_index_init(&c->names, n) < 0) {
		jsonv_nomem(c->e, path);
		return;
	}
	p->n_rules = n;
	for (size_t i = 0; i < n; i++) {
		errs_path_idx(rpath, sizeof(rpath), path, i);
		parse_rule(json_object_array_get_idx(o, i), rpath, c, p, i);
	}
	name_index_free(&c->names);
}

/* Returns the policy, complete when no error was added; NULL on ENOMEM. */
static struct policy *parse_policy(json_object *o, const char *name,
				   const char *path, struct compile *c)
{
	struct json_object_iterator it, end;
	char kpath[ERRS_PATH_MAX];
	struct policy *p = calloc(1, sizeof(*p));

	if (!p || !(p->name = strdup(name)))
		goto fail;
	p->def.verdict = NFQB_ACCEPT;
	if (!json_object_is_type(o, json_type_object)) {
		jsonv_type_err(c->e, path, "a policy object", o);
		goto done;
	}
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		json_object *val = json_object_iter_peek_value(&it);

		errs_path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "default") == 0)
			parse_verdict(val, kpath, c->e, &p->def.verdict);
		else if (strcmp(key, "rules") == 0)
			parse_rules(val, kpath, c, p);
		else
			errs_add(c->e, kpath, "unknown key");
	}
done:
	if (!p->ctr)
		p->ctr = counters_new(0);
	if (!p->ctr)
		goto fail;
	return p;
fail:
	jsonv_nomem(c->e, path);
	policy_free(p);
	return NULL;
}

/* policy_set_parse - see policy.h. */
struct policy_set *policy_set_parse(json_object *obj, struct errs *e)
{
	struct json_object_iterator it, end;
	char path[ERRS_PATH_MAX], vb[VALBUF];
	struct compile c = { .e = e };
	size_t n0 = e->n;
	struct policy_set *s = calloc(1, sizeof(*s));

	if (!s) {
		jsonv_nomem(e, "policies");
		return NULL;
	}
	c.set = s;
	if (!obj) {
		errs_add(e, "policies", "required key missing");
		goto fail;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		jsonv_type_err(e, "policies", "an object of named policies", obj);
		goto fail;
	}
	s->pols = calloc((size_t)json_object_object_length(obj) + 1, sizeof(*s->pols));
	if (!s->pols) {
		jsonv_nomem(e, "policies");
		goto fail;
	}
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		struct policy *p;

		if (!valid_name(name, strlen(name))) {
			json_object *js = json_object_new_string(name);

			errs_add(e, "policies", "bad policy name %s " NAME_RULES,
				 js ? jsonv_text(js, vb, sizeof(vb)) : "?");
			json_object_put(js);
			continue;
		}
		errs_path_key(path, sizeof(path), "policies", name);
		p = parse_policy(json_object_iter_peek_value(&it), name, path, &c);
		if (p)
			s->pols[s->n++] = p;
	}
	if (e->n != n0 || e->oom)
		goto fail;
	return s;
fail:
	policy_set_free(s);
	return NULL;
}
