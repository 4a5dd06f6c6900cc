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
#include "matchval.h"
#include "names.h"
#include "policy-index.h"
#include "policy-int.h"

/* ------------------------------------------------------------------ */
/* Rule names by hash                                                 */
/* ------------------------------------------------------------------ */


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

/*
 * @from's counts onto @to's: added, not copied, since worker threads may
 * count into @to already (the old policy @from no longer changes).
 */
static void counter_carry(struct policy_counter *to, const struct policy_counter *from)
{
	__atomic_fetch_add(&to->packets, from->packets, __ATOMIC_RELAXED);
	__atomic_fetch_add(&to->bytes, from->bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&to->would_drop, from->would_drop, __ATOMIC_RELAXED);
	__atomic_fetch_add(&to->log_suppressed, from->log_suppressed, __ATOMIC_RELAXED);
}

/* Slot @k of @q: its shared block and every worker's added. */
static struct policy_counter slot_total(const struct policy *q, size_t k)
{
	struct policy_counter t = { 0 };

	policy_counter_add_load(&t, &q->ctr->s[k].c);
	for (size_t i = 0; i < POLICY_WORKERS_MAX; i++)
		if (q->ctr->w[i])
			policy_counter_add_load(&t, &q->ctr->w[i][k]);
	return t;
}

static int carry_policy(struct policy *p, const struct policy *q)
{
	struct policy_counter tot = slot_total(q, 0);
	struct name_index t;

	counter_carry(&p->ctr->s[0].c, &tot);
	if (!q->n_rules || !p->n_rules)
		return 0;
	if (name_index_init(&t, q->n_rules) < 0)
		return -ENOMEM;
	for (size_t k = 0; k < q->n_rules; k++)
		if (q->rules[k].name)
			name_index_add(&t, q->rules, k);
	for (size_t r = 0; r < p->n_rules; r++) {
		long k = p->rules[r].name ? name_index_find(&t, q->rules, p->rules[r].name) : -1;

		if (k >= 0) {
			tot = slot_total(q, (size_t)k + 1);
			counter_carry(&p->ctr->s[r + 1].c, &tot);
		}
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

/* policy_set_workers - see policy.h. */
int policy_set_workers(struct policy_set *s, unsigned n)
{
	if (n > POLICY_WORKERS_MAX)
		n = POLICY_WORKERS_MAX;
	for (size_t i = 0; s && i < s->n; i++) {
		struct policy_counters *c = s->pols[i]->ctr;

		for (unsigned w = 0; w < n; w++) {
			if (c->w[w])
				continue;
			/* Rounded up to whole cache lines: nobody else's counters share them. */
			size_t len = (c->n * sizeof(*c->w[w]) + 63) / 64 * 64;

			c->w[w] = aligned_alloc(64, len);
			if (!c->w[w])
				return -ENOMEM;
			memset(c->w[w], 0, len);
		}
	}
	return 0;
}

/* Room for @n rules and the default. */
static struct policy_counters *counters_new(size_t n)
{
	struct policy_counters *c = calloc(1, sizeof(*c) + (n + 1) * sizeof(c->s[0]));

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
	for (size_t i = 0; i < p->n_rules; i++) {
		rule_release(&p->rules[i]);
		free((char *)p->acts[i].comment);
	}
	free(p->rules);
	free(p->acts);
	for (size_t i = 0; p->ctr && i < POLICY_WORKERS_MAX; i++)
		free(p->ctr->w[i]);
	free(p->ctr);
	policy_index_free(p->idx);
	free((char *)p->def.comment);
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

#define NAME_RULES POLICY_NAME_RULES

/* policy_name_valid - see policy.h. */
bool policy_name_valid(const char *s)
{
	return valid_name(s, s ? strlen(s) : 0);
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
	if (s && names_verdict_by_name(s) >= 0) {
		*verdict = (uint32_t)names_verdict_by_name(s);
	} else if (s && strncmp(s, "queue:", 6) == 0) {
		if (mval_parse_num(s + 6, len - 6, false, &q)) {
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

/* ------------------------------------------------------------------ */
/* Actions: verdict, marks, log, comment                              */
/* ------------------------------------------------------------------ */

#define LOG_RATE_MAX 1000000u
#define LOG_BURST_MAX 10000u
#define RATE_FORMS "\"N/second\", \"N/minute\", \"N/hour\", \"N/day\" or \"unlimited\""

static const struct {
	const char *unit;
	uint64_t ns;
} rate_units[] = {
	{ "second", 1000000000ull }, { "minute", 60000000000ull },
	{ "hour", 3600000000000ull }, { "day", 86400000000000ull },
};

/* "N/unit" as iptables -m limit spells it (a unit may be cut short:
 * "10/s", "3/min"), or "unlimited". */
static bool parse_rate(json_object *o, const char *path, struct errs *e,
		       struct policy_log_limit *lim)
{
	char vb[VALBUF];
	const char *s, *slash;
	uint64_t n;
	size_t len, ulen;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(e, path, "a rate string (" RATE_FORMS ")", o);
	s = jsonv_str(o, &len);
	if (s && strcmp(s, "unlimited") == 0) {
		lim->cost_ns = 0;
		return true;
	}
	slash = s ? memchr(s, '/', len) : NULL;
	if (!slash || mval_parse_num(s, (size_t)(slash - s), false, &n))
		goto bad;
	ulen = len - (size_t)(slash - s) - 1;
	for (size_t i = 0; ulen && i < sizeof(rate_units) / sizeof(rate_units[0]); i++) {
		if (strncmp(slash + 1, rate_units[i].unit, ulen) != 0 ||
		    ulen > strlen(rate_units[i].unit))
			continue;
		if (n < 1 || n > LOG_RATE_MAX) {
			errs_add(e, path, "rate %" PRIu64 "/%s out of range 1-%u per %s", n,
				 rate_units[i].unit, LOG_RATE_MAX, rate_units[i].unit);
			return false;
		}
		lim->cost_ns = rate_units[i].ns / n;
		return true;
	}
bad:
	errs_add(e, path, "bad rate %s (expected " RATE_FORMS ")", jsonv_text(o, vb, sizeof(vb)));
	return false;
}

/* "log": true/false, or {"rate": ..., "burst": N} (logging on, limited). */
static void parse_log(json_object *o, const char *path, struct compile *c,
		      struct policy_action *a)
{
	struct json_object_iterator it, end;
	char kpath[ERRS_PATH_MAX];
	uint64_t v;

	if (json_object_is_type(o, json_type_boolean)) {
		a->log = json_object_get_boolean(o);
		return;
	}
	if (!json_object_is_type(o, json_type_object)) {
		jsonv_type_err(c->e, path, "true, false or a {\"rate\", \"burst\"} object", o);
		return;
	}
	a->log = true;
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		json_object *val = json_object_iter_peek_value(&it);

		errs_path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "rate") == 0) {
			parse_rate(val, kpath, c->e, &a->limit);
		} else if (strcmp(key, "burst") == 0) {
			if (!jsonv_is_number(val))
				jsonv_type_err(c->e, kpath, "a number", val);
			else if (jsonv_uint(val, kpath, c->e, "burst", 1, LOG_BURST_MAX, &v))
				a->limit.burst = (uint32_t)v;
		} else {
			errs_add(c->e, kpath, "unknown key");
		}
	}
}

/* A comment is shown in tables and log lines: one line of printable text. */
static void parse_comment(json_object *o, const char *path, struct compile *c,
			  struct policy_action *a)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_string)) {
		jsonv_type_err(c->e, path, "a string", o);
		return;
	}
	s = jsonv_str(o, &len);
	if (!s) {
		errs_add(c->e, path, "comment has a NUL byte");
		return;
	}
	if (len > POLICY_COMMENT_MAX) {
		errs_add(c->e, path, "comment of %zu bytes is longer than %d", len,
			 POLICY_COMMENT_MAX);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			errs_add(c->e, path, "comment has a control character (0x%02x)",
				 (unsigned char)s[i]);
			return;
		}
	}
	free((char *)a->comment);
	a->comment = strdup(s);
	if (!a->comment)
		jsonv_nomem(c->e, path);
}

static void action_init(struct policy_action *a)
{
	struct policy_log_limit def = { 1000000000ull / 10, POLICY_LOG_BURST_DEFAULT };

	a->limit = def;       /* POLICY_LOG_RATE_DEFAULT */
}

/*
 * Key @key of a rule's or a default's action into @a; false when it is
 * not an action key. *@has_verdict set when it was "verdict".
 */
static bool parse_action_key(const char *key, json_object *val, const char *kpath,
			     struct compile *c, struct policy_action *a, bool *has_verdict)
{
	uint64_t v;

	if (strcmp(key, "verdict") == 0) {
		*has_verdict = true;
		parse_verdict(val, kpath, c->e, &a->verdict);
	} else if (strcmp(key, "set_mark") == 0) {
		if (!jsonv_is_number(val))
			jsonv_type_err(c->e, kpath, "a number", val);
		else if (jsonv_uint(val, kpath, c->e, "mark", 0, UINT32_MAX, &v))
			a->mark = (uint32_t)v;
		a->set_mark = true;
	} else if (strcmp(key, "set_connmark") == 0) {
		if (!jsonv_is_number(val))
			jsonv_type_err(c->e, kpath, "a number", val);
		else if (jsonv_uint(val, kpath, c->e, "connmark", 1, UINT32_MAX, &v))
			a->connmark = (uint32_t)v;
	} else if (strcmp(key, "log") == 0) {
		parse_log(val, kpath, c, a);
	} else if (strcmp(key, "comment") == 0) {
		parse_comment(val, kpath, c, a);
	} else {
		return false;
	}
	return true;
}

/* What only a complete action can tell. */
static void check_action(const char *path, struct compile *c, const struct policy_action *a)
{
	char kpath[ERRS_PATH_MAX];

	if (a->connmark && (a->verdict & 0xffff) == NFQB_DROP) {
		errs_path_key(kpath, sizeof(kpath), path, "set_connmark");
		errs_add(c->e, kpath, "set_connmark with verdict drop: a dropped packet "
			 "never reaches the CONNMARK --save-mark rule");
	}
}

/* ------------------------------------------------------------------ */
/* Rules and policies                                                 */
/* ------------------------------------------------------------------ */

/* Rule @idx of @p; @rpath is its path. Errors are reported, not returned. */
static void parse_rule(json_object *o, const char *rpath, struct compile *c,
		       struct policy *p, size_t idx)
{
	struct rule *r = &p->rules[idx];
	struct policy_action *a = &p->acts[idx];
	struct json_object_iterator it, end;
	char kpath[ERRS_PATH_MAX], vb[VALBUF];
	bool has_verdict = false, has_name = false;
	long dup;

	action_init(a);
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
			policy_keys_parse_match(val, kpath, c, r);
		} else if (!parse_action_key(key, val, kpath, c, a, &has_verdict)) {
			errs_add(c->e, kpath, "unknown key");
		}
	}
	policy_keys_finish(r);
	if (!has_name) {
		errs_path_key(kpath, sizeof(kpath), rpath, "name");
		errs_add(c->e, kpath, "required key missing");
	}
	if (!has_verdict) {
		errs_path_key(kpath, sizeof(kpath), rpath, "verdict");
		errs_add(c->e, kpath, "required key missing");
	} else {
		check_action(rpath, c, a);
	}
}

/* "default": a verdict string, or an action object without name/match. */
static void parse_default(json_object *o, const char *path, struct compile *c,
			  struct policy *p)
{
	struct json_object_iterator it, end;
	char kpath[ERRS_PATH_MAX];
	bool has_verdict = false;

	if (json_object_is_type(o, json_type_string)) {
		parse_verdict(o, path, c->e, &p->def.verdict);
		return;
	}
	if (!json_object_is_type(o, json_type_object)) {
		jsonv_type_err(c->e, path, "a verdict string or an action object", o);
		return;
	}
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		json_object *val = json_object_iter_peek_value(&it);

		errs_path_key(kpath, sizeof(kpath), path, key);
		if (!parse_action_key(key, val, kpath, c, &p->def, &has_verdict))
			errs_add(c->e, kpath, "unknown key");
	}
	if (!has_verdict) {
		errs_path_key(kpath, sizeof(kpath), path, "verdict");
		errs_add(c->e, kpath, "required key missing");
	} else {
		check_action(path, c, &p->def);
	}
}

static void parse_mode(json_object *o, const char *path, struct errs *e, struct policy *p)
{
	char vb[VALBUF];
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_string)) {
		jsonv_type_err(e, path, "a mode string", o);
		return;
	}
	s = jsonv_str(o, &len);
	if (s && strcmp(s, "enforce") == 0)
		p->audit = false;
	else if (s && strcmp(s, "audit") == 0)
		p->audit = true;
	else
		errs_add(e, path, "unknown mode %s (enforce, audit)", jsonv_text(o, vb, sizeof(vb)));
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
	p->acts = calloc(n ? n : 1, sizeof(*p->acts));
	p->ctr = counters_new(n);
	if (!p->rules || !p->acts || !p->ctr) {
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
	action_init(&p->def);
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
			parse_default(val, kpath, c, p);
		else if (strcmp(key, "mode") == 0)
			parse_mode(val, kpath, c->e, p);
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
	if (p->n_rules >= POLICY_INDEX_MIN_RULES && policy_index_build(p) < 0)
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
