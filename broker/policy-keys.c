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

#include "matchval.h"
#include "names.h"
#include "policy-int.h"

/* ------------------------------------------------------------------ */
/* List items                                                         */
/* ------------------------------------------------------------------ */

/*
 * One item or a non-empty array of items into a new array of @size-byte
 * elements. Every bad item is reported; returns false when any was bad.
 */
static bool parse_list(json_object *o, const char *path, struct compile *c,
		       size_t size, mval_item_fn fn, void **out, uint32_t *n)
{
	size_t len = 0;
	bool ok = mval_list(o, path, c->e, UINT32_MAX, size, fn, c, out, &len);

	*n = (uint32_t)len;
	return ok;
}

static bool item_cidr(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
	struct cidr *ci = slot;
	struct mval_cidr m;

	if (!mval_cidr(o, path, c->e, &m))
		return false;
	memcpy(ci->net, m.addr, sizeof(ci->net));
	memcpy(ci->mask, m.mask, sizeof(ci->mask));
	ci->family = m.af;
	return true;
}

static bool item_port(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
	struct range16 *r = slot;

	return mval_port(o, path, c->e, &r->lo, &r->hi);
}

static bool item_proto(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
	return mval_proto(o, path, c->e, slot);
}

static bool item_hook(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
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

static bool item_ifname(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
	const char *s = mval_ifname(o, path, c->e);
	int32_t *id = slot;

	if (!s)
		return false;
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

static bool item_uid(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
	return item_id(o, path, c, slot, "uid");
}

static bool item_gid(json_object *o, const char *path, void *ctx, void *slot)
{
	struct compile *c = ctx;
	return item_id(o, path, c, slot, "gid");
}

/* ------------------------------------------------------------------ */
/* Match keys                                                         */
/* ------------------------------------------------------------------ */

static bool m_family(json_object *o, const char *path, struct compile *c,
		     struct rule *r)
{
	uint8_t af;

	if (!mval_family(o, path, c->e, &af))
		return false;
	r->need |= af == 4 ? PK_V4 : PK_V6;
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
	return mval_markmask(o, path, c->e, noun, valp, maskp);
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
		if (!mval_range_str(o, path, c->e, "length", LENGTH_MAX, &lo, &hi))
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
