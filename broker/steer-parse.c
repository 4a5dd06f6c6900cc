/* SPDX-License-Identifier: MIT */
/*
 * The config form of steering (docs/steering.md): a "steer" list, inline
 * in a namespaces[] entry or named under "steering", into a struct
 * steer_list. Match values are read by matchval.c, as the policy reads
 * them; what this file adds is which keys the kernel can match at a hook,
 * and the checks that make a rule that could never match an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "matchval.h"
#include "pktmeta.h"
#include "policy.h"
#include "steer.h"

static const char *const hook_names[] = {
	[STEER_HOOK_PREROUTING] = "prerouting",
	[STEER_HOOK_INPUT] = "input",
	[STEER_HOOK_FORWARD] = "forward",
	[STEER_HOOK_OUTPUT] = "output",
	[STEER_HOOK_POSTROUTING] = "postrouting",
};

static const char *const family_names[] = {
	[STEER_FAMILY_INET] = "inet",
	[STEER_FAMILY_IP] = "ip",
	[STEER_FAMILY_IP6] = "ip6",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* steer_hook_name - see steer.h. */
const char *steer_hook_name(enum steer_hook h)
{
	return (size_t)h < NELEM(hook_names) ? hook_names[h] : "?";
}

/* steer_family_name - see steer.h. */
const char *steer_family_name(enum steer_family f)
{
	return (size_t)f < NELEM(family_names) ? family_names[f] : "?";
}

/* ------------------------------------------------------------ list items */

/* What the item callbacks of one match need: where to report, and the
 * address family the item is limited to (0: both). */
struct mctx {
	struct errs *e;
	uint8_t af;
	const char *af_why;           /* e.g. "a family \"ip\" item" */
};

static bool it_proto(json_object *o, const char *path, void *ctx, void *slot)
{
	struct mctx *m = ctx;

	return mval_proto(o, path, m->e, slot);
}

static bool it_port(json_object *o, const char *path, void *ctx, void *slot)
{
	struct steer_range *r = slot;
	struct mctx *m = ctx;

	return mval_port(o, path, m->e, &r->lo, &r->hi);
}

static bool it_cidr(json_object *o, const char *path, void *ctx, void *slot)
{
	struct steer_cidr *c = slot;
	struct mctx *m = ctx;
	char vb[JSONV_TEXT_MAX];
	struct mval_cidr v;

	if (!mval_cidr(o, path, m->e, &v))
		return false;
	if (m->af && v.af != m->af) {
		errs_add(m->e, path, "IPv%u address %s in %s can never match", v.af,
			 jsonv_text(o, vb, sizeof(vb)), m->af_why);
		return false;
	}
	c->af = v.af;
	c->plen = v.plen;
	memcpy(c->addr, v.addr, sizeof(c->addr));
	return true;
}

static bool it_ifname(json_object *o, const char *path, void *ctx, void *slot)
{
	struct mctx *m = ctx;
	const char *s = mval_ifname(o, path, m->e);

	if (!s)
		return false;
	snprintf(slot, IFNAMSIZ, "%s", s);
	return true;
}

/* ------------------------------------------------------------ match */

/* What a match key is, by its name or alias. */
enum mkey { MK_NONE, MK_FAMILY, MK_PROTO, MK_SRC, MK_DST, MK_SPORT, MK_DPORT,
	    MK_INDEV, MK_OUTDEV, MK_MARK };

/* Keys present, by their canonical key, with the name they were given as. */
struct mseen {
	const char *as[MK_MARK + 1];
	bool ok[MK_MARK + 1];
};

/* Protocols whose header starts with a source and destination port. */
static bool proto_has_ports(uint8_t p)
{
	return p == 6 || p == 17 || p == 33 || p == 132 || p == 136;
}

#define PORT_PROTOS "tcp, udp, udplite, sctp or dccp (33)"

/* sport/dport: only with a proto, every one of which has ports. */
static void check_ports(const struct steer_match *m, const struct mseen *seen,
			const char *mpath, enum mkey k, struct errs *e)
{
	char p[ERRS_PATH_MAX], nb[8];

	errs_path_key(p, sizeof(p), mpath, seen->as[k]);
	if (!seen->as[MK_PROTO]) {
		errs_add(e, p, "ports need a \"proto\" that has them (%s)", PORT_PROTOS);
		return;
	}
	for (size_t i = 0; seen->ok[MK_PROTO] && i < m->nprotos; i++) {
		if (proto_has_ports(m->protos[i]))
			continue;
		errs_add(e, p, "proto %s has no ports (only %s have)",
			 pktmeta_proto_name(m->protos[i], nb, sizeof(nb)), PORT_PROTOS);
		return;
	}
}

/* Bit 1: an IPv4 prefix in @c, bit 2: an IPv6 one. */
static unsigned cidr_afs(const struct steer_cidr *c, size_t n)
{
	unsigned afs = 0;

	for (size_t i = 0; i < n; i++)
		afs |= c[i].af == 4 ? 1u : 2u;
	return afs;
}

/* src and dst with no address family in common: no packet has both. */
static void check_afs(const struct steer_match *m, const char *mpath, struct errs *e)
{
	char p[ERRS_PATH_MAX];

	if (!m->nsrc || !m->ndst || (cidr_afs(m->src, m->nsrc) & cidr_afs(m->dst, m->ndst)))
		return;
	errs_path_key(p, sizeof(p), mpath, "dst");
	errs_add(e, p, "no address family in common with \"src\": the item can never match");
}

/* indev/outdev where the kernel has no such interface. */
static void check_dev(const struct steer_item *it, const char *mpath, const char *key,
		      bool in, struct errs *e)
{
	char p[ERRS_PATH_MAX];
	enum steer_hook h = it->hook;

	errs_path_key(p, sizeof(p), mpath, key);
	if (in && (h == STEER_HOOK_OUTPUT || h == STEER_HOOK_POSTROUTING))
		errs_add(e, p, "a packet has no input interface at hook \"%s\" "
			 "(only at prerouting, input and forward)", steer_hook_name(h));
	else if (!in && (h == STEER_HOOK_PREROUTING || h == STEER_HOOK_INPUT))
		errs_add(e, p, "a packet has no output interface at hook \"%s\" "
			 "(only at forward, output and postrouting)", steer_hook_name(h));
}

/* The policy keys steering cannot use: said so, rather than "unknown key". */
static bool policy_only_key(const char *key)
{
	const char *k;

	for (size_t i = 0; (k = policy_match_key(i, NULL)); i++)
		if (strcmp(k, key) == 0)
			return true;
	return false;
}

static const struct {
	const char *name;
	enum mkey k;
} mkeys[] = {
	{ "family", MK_FAMILY }, { "proto", MK_PROTO }, { "src", MK_SRC },
	{ "dst", MK_DST }, { "sport", MK_SPORT }, { "dport", MK_DPORT },
	{ "indev", MK_INDEV }, { "iif", MK_INDEV },
	{ "outdev", MK_OUTDEV }, { "oif", MK_OUTDEV }, { "mark", MK_MARK },
};

/* steer_match_key - see steer.h. */
const char *steer_match_key(size_t i)
{
	return i < NELEM(mkeys) ? mkeys[i].name : NULL;
}

static enum mkey mkey_of(const char *name)
{
	for (size_t i = 0; i < NELEM(mkeys); i++)
		if (strcmp(mkeys[i].name, name) == 0)
			return mkeys[i].k;
	return MK_NONE;
}

#define LIST(o, p, ctx, arr, n, fn) \
	mval_list(o, p, (ctx)->e, STEER_LIST_MAX, sizeof(*(arr)), fn, ctx, (void **)&(arr), &(n))

/* One key of a match (family was read first). Returns false when bad. */
static bool parse_mkey(enum mkey k, json_object *v, const char *p, struct mctx *mc,
		       struct steer_match *m)
{
	switch (k) {
	case MK_PROTO:  return LIST(v, p, mc, m->protos, m->nprotos, it_proto);
	case MK_SRC:    return LIST(v, p, mc, m->src, m->nsrc, it_cidr);
	case MK_DST:    return LIST(v, p, mc, m->dst, m->ndst, it_cidr);
	case MK_SPORT:  return LIST(v, p, mc, m->sport, m->nsport, it_port);
	case MK_DPORT:  return LIST(v, p, mc, m->dport, m->ndport, it_port);
	case MK_INDEV:  return LIST(v, p, mc, m->indev, m->nindev, it_ifname);
	case MK_OUTDEV: return LIST(v, p, mc, m->outdev, m->noutdev, it_ifname);
	case MK_MARK:
		m->has_mark = mval_mark(v, p, mc->e, &m->mark, &m->mark_mask);
		return m->has_mark;
	case MK_FAMILY:
	case MK_NONE:
		break;
	}
	return true;
}

/* match.family: limits the item to one address family; the item's own
 * "family" (ip, ip6) must agree with it. */
static void parse_mfamily(json_object *obj, const char *mpath, struct steer_item *it,
			  struct mctx *mc, struct errs *e)
{
	char p[ERRS_PATH_MAX];
	json_object *v;

	if (it->family != STEER_FAMILY_INET) {
		mc->af = it->family == STEER_FAMILY_IP ? 4 : 6;
		mc->af_why = it->family == STEER_FAMILY_IP ? "a family \"ip\" item" :
			     "a family \"ip6\" item";
	}
	if (!json_object_object_get_ex(obj, "family", &v))
		return;
	errs_path_key(p, sizeof(p), mpath, "family");
	if (!mval_family(v, p, e, &it->m.af))
		return;
	if (mc->af && mc->af != it->m.af) {
		errs_add(e, p, "\"ipv%u\" contradicts the item's \"family\": \"%s\"",
			 it->m.af, steer_family_name(it->family));
		return;
	}
	mc->af = it->m.af;
	mc->af_why = it->m.af == 4 ? "a match with \"family\": \"ipv4\"" :
		     "a match with \"family\": \"ipv6\"";
}

static void parse_match(json_object *obj, const char *mpath, struct steer_item *it,
			bool hook_ok, struct errs *e)
{
	struct mctx mc = { .e = e };
	struct mseen seen = { 0 };
	char p[ERRS_PATH_MAX];

	if (!jsonv_want(obj, json_type_object, mpath, e))
		return;
	parse_mfamily(obj, mpath, it, &mc, e);
	json_object_object_foreach(obj, key, v) {
		enum mkey k = mkey_of(key);

		errs_path_key(p, sizeof(p), mpath, key);
		if (k == MK_NONE) {
			if (strcmp(key, "hook") == 0)
				errs_add(e, p, "not available for steering (the item's own "
					 "\"hook\" says where it applies)");
			else if (policy_only_key(key))
				errs_add(e, p, "not available for steering (the kernel "
					 "matches it only in the policy)");
			else
				errs_add(e, p, "unknown key");
			continue;
		}
		if (seen.as[k]) {
			errs_add(e, p, "\"%s\" is another name for \"%s\", given twice", key,
				 seen.as[k]);
			continue;
		}
		seen.as[k] = key;
		seen.ok[k] = parse_mkey(k, v, p, &mc, &it->m);
	}
	if (seen.as[MK_SPORT])
		check_ports(&it->m, &seen, mpath, MK_SPORT, e);
	if (seen.as[MK_DPORT])
		check_ports(&it->m, &seen, mpath, MK_DPORT, e);
	if (hook_ok && seen.as[MK_INDEV])
		check_dev(it, mpath, seen.as[MK_INDEV], true, e);
	if (hook_ok && seen.as[MK_OUTDEV])
		check_dev(it, mpath, seen.as[MK_OUTDEV], false, e);
	if (seen.ok[MK_SRC] && seen.ok[MK_DST])
		check_afs(&it->m, mpath, e);
}

/* ------------------------------------------------------------ item */

static bool parse_name(json_object *v, const char *path, const char *const *names,
		       size_t n, const char *noun, const char *hint, int *out,
		       struct errs *e)
{
	char vb[JSONV_TEXT_MAX], list[96] = "", want[32];
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		snprintf(want, sizeof(want), "a %s name", noun);
		return jsonv_type_err(e, path, want, v);
	}
	s = json_object_get_string(v);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i ? ", " : "", names[i]);
	}
	errs_add(e, path, "unknown %s %s (%s%s)", noun, jsonv_text(v, vb, sizeof(vb)),
		 list, hint);
	return false;
}

static bool parse_hook(json_object *v, const char *path, struct steer_item *it,
		       struct errs *e)
{
	int h;

	if (!parse_name(v, path, hook_names, NELEM(hook_names), "hook", "", &h, e))
		return false;
	it->hook = (enum steer_hook)h;
	return true;
}

static void parse_family(json_object *v, const char *path, struct steer_item *it,
			 struct errs *e)
{
	const char *s = json_object_is_type(v, json_type_string) ?
			json_object_get_string(v) : "";
	/* "ipv4" is match.family's word: say where it belongs. */
	const char *hint = strncmp(s, "ipv", 3) == 0 ?
			   "; \"ipv4\" and \"ipv6\" are for match.family" : "";
	int f;

	if (parse_name(v, path, family_names, NELEM(family_names), "family", hint, &f, e))
		it->family = (enum steer_family)f;
}

/* A signed integer in [STEER_PRIORITY_MIN, STEER_PRIORITY_MAX]. */
static void parse_priority(json_object *v, const char *path, struct steer_item *it,
			   struct errs *e)
{
	char vb[JSONV_TEXT_MAX];
	double d;

	if (!jsonv_is_number(v)) {
		jsonv_type_err(e, path, "an integer", v);
		return;
	}
	d = json_object_get_double(v);
	if (!(d >= STEER_PRIORITY_MIN && d <= STEER_PRIORITY_MAX)) {
		errs_add(e, path, "priority %s out of range %d-%d", jsonv_text(v, vb, sizeof(vb)),
			 STEER_PRIORITY_MIN, STEER_PRIORITY_MAX);
		return;
	}
	if ((double)(int32_t)d != d) {
		errs_add(e, path, "priority %s is not an integer", jsonv_text(v, vb, sizeof(vb)));
		return;
	}
	it->priority = (int32_t)d;
}

/* A queue number, or a "lo-hi" range of at least two queues. */
static bool parse_queue(json_object *v, const char *path, struct steer_item *it,
			struct errs *e)
{
	char vb[JSONV_TEXT_MAX];
	uint64_t lo, hi;

	if (json_object_is_type(v, json_type_string)) {
		if (!mval_range_str(v, path, e, "queue", 65535, &lo, &hi))
			return false;
		if (lo == hi) {
			errs_add(e, path, "queue range %s has one queue (write the number %"
				 PRIu64 ")", jsonv_text(v, vb, sizeof(vb)), lo);
			return false;
		}
	} else if (jsonv_is_number(v)) {
		if (!jsonv_uint(v, path, e, "queue", 0, 65535, &lo))
			return false;
		hi = lo;
	} else {
		return jsonv_type_err(e, path, "a queue number or \"lo-hi\" range", v);
	}
	it->queue_lo = (uint16_t)lo;
	it->queue_hi = (uint16_t)hi;
	return true;
}

static bool get_key(json_object *obj, const char *path, const char *key, char *p,
		    json_object **v)
{
	errs_path_key(p, ERRS_PATH_MAX, path, key);
	return json_object_object_get_ex(obj, key, v);
}

static void parse_item(json_object *obj, const char *path, struct steer_item *it,
		       struct errs *e)
{
	static const char *const keys[] = {
		"hook", "family", "priority", "match", "queue", "bypass", "fanout", NULL
	};
	char p[ERRS_PATH_MAX];
	bool hook_ok = false, queue_ok = false;
	json_object *v;

	/* An empty range until a queue is read: the queue check skips an item
	 * whose queue is missing or was reported bad already. */
	it->queue_lo = 1;
	it->queue_hi = 0;
	if (!jsonv_want(obj, json_type_object, path, e))
		return;
	jsonv_check_keys(obj, path, keys, e);
	if (get_key(obj, path, "hook", p, &v))
		hook_ok = parse_hook(v, p, it, e);
	else
		errs_add(e, p, "required key missing");
	if (get_key(obj, path, "family", p, &v))
		parse_family(v, p, it, e);
	if (get_key(obj, path, "priority", p, &v))
		parse_priority(v, p, it, e);
	if (get_key(obj, path, "queue", p, &v))
		queue_ok = parse_queue(v, p, it, e);
	else
		errs_add(e, p, "required key missing");
	if (get_key(obj, path, "bypass", p, &v))
		jsonv_bool(v, p, &it->bypass, e);
	if (get_key(obj, path, "fanout", p, &v) && jsonv_bool(v, p, &it->fanout, e) &&
	    it->fanout && queue_ok && it->queue_lo == it->queue_hi)
		errs_add(e, p, "fanout spreads a queue range: \"queue\" must be \"lo-hi\"");
	if (get_key(obj, path, "match", p, &v))
		parse_match(v, p, it, hook_ok, e);
}

/* ------------------------------------------------------------ queues */

static bool bit_get(const uint64_t *bm, unsigned q)
{
	return bm[q / 64] & (UINT64_C(1) << (q % 64));
}

/* "namespaces[0].steer" -> "namespaces[0].queues": where the queues are. */
static void queues_path(char *out, size_t len, const char *path)
{
	size_t n = strlen(path);
	const char *suffix = ".steer";

	if (n >= strlen(suffix) && strcmp(path + n - strlen(suffix), suffix) == 0)
		snprintf(out, len, "%.*s.queues", (int)(n - strlen(suffix)), path);
	else
		snprintf(out, len, "the entry's queues");
}

/* Every run of queues of @it not in @bm: one error each, at @at. @what
 * names the item for a named list ("" inline). */
static size_t check_item_queues(const struct steer_item *it, const uint64_t *bm,
				const char *at, const char *what, const char *qpath,
				struct errs *e)
{
	size_t nerr = 0;

	for (unsigned q = it->queue_lo; q <= it->queue_hi; q++) {
		unsigned end = q;

		if (bit_get(bm, q))
			continue;
		while (end < it->queue_hi && !bit_get(bm, end + 1))
			end++;
		if (end == q)
			errs_add(e, at, "queue %u%s is not one of %s", q, what, qpath);
		else
			errs_add(e, at, "queues %u-%u%s are not among %s", q, end, what, qpath);
		nerr++;
		q = end;
	}
	return nerr;
}

/* steer_check_queues - see steer.h. */
size_t steer_check_queues(const struct steer_list *l, const char *path,
			  const uint16_t *queues, size_t nqueues, struct errs *e)
{
	char qpath[ERRS_PATH_MAX], at[ERRS_PATH_MAX], ip[ERRS_PATH_MAX], what[ERRS_PATH_MAX + 8];
	uint64_t bm[65536 / 64] = { 0 };
	size_t nerr = 0;

	if (!l)
		return 0;
	for (size_t i = 0; i < nqueues; i++)
		bm[queues[i] / 64] |= UINT64_C(1) << (queues[i] % 64);
	queues_path(qpath, sizeof(qpath), path);
	for (size_t i = 0; i < l->n; i++) {
		if (l->name) {
			/* A named list: the error is the entry's, the item is named. */
			snprintf(what, sizeof(what), " (steering.%s[%zu].queue)", l->name, i);
			snprintf(at, sizeof(at), "%s", path);
		} else {
			errs_path_idx(ip, sizeof(ip), path, i);
			errs_path_key(at, sizeof(at), ip, "queue");
			what[0] = '\0';
		}
		nerr += check_item_queues(&l->items[i], bm, at, what, qpath, e);
	}
	return nerr;
}

/* ------------------------------------------------------------ list */

/* steer_parse - see steer.h. */
struct steer_list *steer_parse(json_object *v, const char *path, const uint16_t *queues,
			       size_t nqueues, struct errs *e)
{
	char ip[ERRS_PATH_MAX];
	size_t nerr = e->n, n;
	struct steer_list *l;

	if (!jsonv_want(v, json_type_array, path, e))
		return NULL;
	n = json_object_array_length(v);
	if (n > STEER_ITEMS_MAX) {
		errs_add(e, path, "too many items (%zu, at most %d)", n, STEER_ITEMS_MAX);
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->items = calloc(n ? n : 1, sizeof(*l->items)))) {
		jsonv_nomem(e, path);
		free(l);
		return NULL;
	}
	l->n = n;
	for (size_t i = 0; i < n; i++) {
		l->items[i].index = i;
		errs_path_idx(ip, sizeof(ip), path, i);
		parse_item(json_object_array_get_idx(v, i), ip, &l->items[i], e);
	}
	if (queues)
		steer_check_queues(l, path, queues, nqueues, e);
	if (e->n != nerr || e->oom) {
		steer_list_free(l);
		return NULL;
	}
	return l;
}

static void match_free(struct steer_match *m)
{
	free(m->protos);
	free(m->sport);
	free(m->dport);
	free(m->src);
	free(m->dst);
	free(m->indev);
	free(m->outdev);
}

/* A copy of @n elements of @size bytes at @src into *@dst; false: no memory. */
static bool dup_array(void *dst, const void *src, size_t n, size_t size)
{
	void *p = NULL;

	if (n) {
		p = malloc(n * size);
		if (!p)
			return false;
		memcpy(p, src, n * size);
	}
	*(void **)dst = p;
	return true;
}

static bool match_dup(struct steer_match *d, const struct steer_match *m)
{
	*d = *m;
	d->protos = NULL;
	d->sport = d->dport = NULL;
	d->src = d->dst = NULL;
	d->indev = d->outdev = NULL;
	return dup_array(&d->protos, m->protos, m->nprotos, sizeof(*m->protos)) &&
	       dup_array(&d->sport, m->sport, m->nsport, sizeof(*m->sport)) &&
	       dup_array(&d->dport, m->dport, m->ndport, sizeof(*m->dport)) &&
	       dup_array(&d->src, m->src, m->nsrc, sizeof(*m->src)) &&
	       dup_array(&d->dst, m->dst, m->ndst, sizeof(*m->dst)) &&
	       dup_array(&d->indev, m->indev, m->nindev, sizeof(*m->indev)) &&
	       dup_array(&d->outdev, m->outdev, m->noutdev, sizeof(*m->outdev));
}

/* steer_list_dup - see steer.h. */
struct steer_list *steer_list_dup(const struct steer_list *l)
{
	struct steer_list *d;

	if (!l)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	if ((l->name && !(d->name = strdup(l->name))) ||
	    (l->n && !(d->items = calloc(l->n, sizeof(*d->items)))))
		goto fail;
	for (; d->n < l->n; d->n++) {
		d->items[d->n] = l->items[d->n];
		if (!match_dup(&d->items[d->n].m, &l->items[d->n].m)) {
			d->n++;         /* its partial copy is freed with the rest */
			goto fail;
		}
	}
	return d;
fail:
	steer_list_free(d);
	return NULL;
}

/* steer_list_free - see steer.h. */
void steer_list_free(struct steer_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		match_free(&l->items[i].m);
	free(l->items);
	free(l->name);
	free(l);
}

/* ------------------------------------------------------------ equality */

static bool arr_equal(const void *a, size_t na, const void *b, size_t nb, size_t size)
{
	return na == nb && (na == 0 || memcmp(a, b, na * size) == 0);
}

static bool cidrs_equal(const struct steer_cidr *a, size_t na, const struct steer_cidr *b,
			size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].af != b[i].af || a[i].plen != b[i].plen ||
		    memcmp(a[i].addr, b[i].addr, sizeof(a[i].addr)) != 0)
			return false;
	return true;
}

static bool ranges_equal(const struct steer_range *a, size_t na,
			 const struct steer_range *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].lo != b[i].lo || a[i].hi != b[i].hi)
			return false;
	return true;
}

static bool match_equal(const struct steer_match *a, const struct steer_match *b)
{
	return a->af == b->af &&
	       arr_equal(a->protos, a->nprotos, b->protos, b->nprotos, sizeof(*a->protos)) &&
	       ranges_equal(a->sport, a->nsport, b->sport, b->nsport) &&
	       ranges_equal(a->dport, a->ndport, b->dport, b->ndport) &&
	       cidrs_equal(a->src, a->nsrc, b->src, b->nsrc) &&
	       cidrs_equal(a->dst, a->ndst, b->dst, b->ndst) &&
	       arr_equal(a->indev, a->nindev, b->indev, b->nindev, sizeof(*a->indev)) &&
	       arr_equal(a->outdev, a->noutdev, b->outdev, b->noutdev, sizeof(*a->outdev)) &&
	       a->has_mark == b->has_mark &&
	       (!a->has_mark || (a->mark == b->mark && a->mark_mask == b->mark_mask));
}

static bool item_equal(const struct steer_item *a, const struct steer_item *b)
{
	return a->hook == b->hook && a->family == b->family &&
	       a->priority == b->priority && a->queue_lo == b->queue_lo &&
	       a->queue_hi == b->queue_hi && a->bypass == b->bypass &&
	       a->fanout == b->fanout && match_equal(&a->m, &b->m);
}

/* steer_list_equal - see steer.h. */
bool steer_list_equal(const struct steer_list *a, const struct steer_list *b)
{
	size_t na = a ? a->n : 0, nb = b ? b->n : 0;

	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!item_equal(&a->items[i], &b->items[i]))
			return false;
	return true;
}
