/* SPDX-License-Identifier: MIT */
/*
 * The match keys of the policy language: each key's parser into the
 * compiled struct rule, and the key table policy-parse.c reads rules with.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfqb/queue.h>

#include "names.h"
#include "policy-int.h"

/* "lo-hi" (a number alone is a JSON number, not a string). */
static bool parse_range_str(json_object *o, const char *path, struct errs *e,
			    const char *noun, uint64_t max, uint64_t *lo, uint64_t *hi)
{
	char vb[VALBUF];
	const char *s, *dash;
	size_t len;

	s = jsonv_str(o, &len);
	dash = s ? memchr(s, '-', len) : NULL;
	if (!dash || policy_parse_num(s, (size_t)(dash - s), false, lo) ||
	    policy_parse_num(dash + 1, len - (size_t)(dash - s) - 1, false, hi)) {
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
	if (slash && (policy_parse_num(slash + 1, strlen(slash + 1), false, &plen) ||
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

static bool item_hook(json_object *o, const char *path, struct compile *c,
		      void *slot)
{
	uint8_t *h = slot;
	char vb[VALBUF], lb[80];
	int hook;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(c->e, path, "a hook name", o);
	hook = names_hook_by_name(json_object_get_string(o));
	if (hook >= 0) {
		*h = (uint8_t)hook;
		return true;
	}
	errs_add(c->e, path, "unknown hook %s (%s)", jsonv_text(o, vb, sizeof(vb)),
		 names_hook_list(lb, sizeof(lb)));
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
		r->need |= PK_V4;
	} else if (strcmp(s, "ipv6") == 0) {
		r->need |= PK_V6;
	} else {
		errs_add(c->e, path, "unknown family %s (ipv4, ipv6)",
			 jsonv_text(o, vb, sizeof(vb)));
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

/* A number (exact value) or "value/mask", each side decimal or 0x hex;
 * @noun is the key ("mark", "connmark"). */
static bool parse_markmask(json_object *o, const char *path, struct compile *c,
			   const char *noun, uint32_t *valp, uint32_t *maskp)
{
	char vb[VALBUF];
	uint64_t val, mask = UINT32_MAX;
	const char *s, *slash;
	size_t len;

	if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, c->e, noun, 0, UINT32_MAX, &val))
			return false;
	} else if (json_object_is_type(o, json_type_string)) {
		s = jsonv_str(o, &len);
		slash = s ? memchr(s, '/', len) : NULL;
		if (!slash || policy_parse_num(s, (size_t)(slash - s), true, &val) ||
		    policy_parse_num(slash + 1, len - (size_t)(slash - s) - 1, true, &mask) ||
		    val > UINT32_MAX || mask > UINT32_MAX) {
			errs_add(c->e, path, "bad %s %s (expected a number or "
				 "\"value/mask\", 32 bits each)", noun,
				 jsonv_text(o, vb, sizeof(vb)));
			return false;
		}
		if (val & ~mask) {
			errs_add(c->e, path, "%s value 0x%" PRIx64 " has bits outside "
				 "mask 0x%" PRIx64 " and can never match", noun, val, mask);
			return false;
		}
	} else {
		return jsonv_type_err(c->e, path, "a number or \"value/mask\" string", o);
	}
	*valp = (uint32_t)val;
	*maskp = (uint32_t)mask;
	return true;
}

static bool m_mark(json_object *o, const char *path, struct compile *c,
		   struct rule *r)
{
	return parse_markmask(o, path, c, "mark", &r->mark_val, &r->mark_mask);
}

/* The conntrack mark: the kernel sends it only with the queue flag
 * conntrack (config.c checks the entries using the policy). */
static bool m_connmark(json_object *o, const char *path, struct compile *c,
		       struct rule *r)
{
	return parse_markmask(o, path, c, "connmark", &r->ctmark_val, &r->ctmark_mask);
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

/* "Absent" defaults of the scalar keys: values every packet passes. */
static void absent_proto(struct rule *r)
{
	memset(r->protos, 0xff, sizeof(r->protos));
}

static void absent_hook(struct rule *r)
{
	r->hooks = UINT32_MAX;
}

static void absent_length(struct rule *r)
{
	r->len_lo = 0;
	r->len_hi = UINT32_MAX;
}

#define POLICY_KEY_ROW(n, needs, list, absent, doc) \
	{ #n, KEY_BIT(n), needs, m_##n, absent, doc },
static const struct match_key {
	const char *name;
	uint32_t bit;
	uint32_t needs;
	bool (*parse)(json_object *o, const char *path, struct compile *c,
		      struct rule *r);
	void (*absent)(struct rule *r);
	const char *doc;
} match_keys[] = { POLICY_MATCH_KEYS(POLICY_KEY_ROW) };
#undef POLICY_KEY_ROW

/* policy_match_key - see policy.h. */
const char *policy_match_key(size_t i, const char **doc)
{
	if (i >= K_COUNT)
		return NULL;
	if (doc)
		*doc = match_keys[i].doc;
	return match_keys[i].name;
}

/* policy_keys_finish - see policy-int.h. */
void policy_keys_finish(struct rule *r)
{
	for (size_t k = 0; k < K_COUNT; k++) {
		if (r->tests & match_keys[k].bit)
			r->need |= match_keys[k].needs;
		else if (match_keys[k].absent)
			match_keys[k].absent(r);
	}
}

void policy_keys_parse_match(json_object *o, const char *path, struct compile *c,
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
