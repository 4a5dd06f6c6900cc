/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "config.h"
#include "jsonv.h"
#include "metrics.h"
#include "privs.h"
#include "wire.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* ------------------------------------------------------------ helpers */

static bool get_path(json_object *o, const char *path, size_t maxlen, char **out,
		     struct errs *e)
{
	char *s = NULL;

	if (!jsonv_string(o, path, &s, e))
		return false;
	if (s[0] != '/') {
		errs_add(e, path, "\"%s\" is not an absolute path", s);
		free(s);
		return false;
	}
	if (strlen(s) > maxlen) {
		errs_add(e, path, "path longer than %zu bytes", maxlen);
		free(s);
		return false;
	}
	free(*out);
	*out = s;
	return true;
}

/* A file mode as an octal string: "0600", "660". */
static bool get_mode(json_object *o, const char *path, mode_t *out, struct errs *e)
{
	const char *s;
	size_t len;
	unsigned long v;

	if (!json_object_is_type(o, json_type_string)) {
		jsonv_type_err(e, path, "an octal string like \"0600\"", o);
		return false;
	}
	s = json_object_get_string(o);
	len = strlen(s);
	if (len < 3 || len > 4 || strspn(s, "01234567") != len) {
		errs_add(e, path, "\"%s\" is not an octal mode like \"0600\"", s);
		return false;
	}
	v = strtoul(s, NULL, 8);
	if (v > 0777) {
		errs_add(e, path, "mode \"%s\" out of range 0000-0777", s);
		return false;
	}
	*out = (mode_t)v;
	return true;
}

/* ------------------------------------------------------------ queue options */

static const char *const queue_keys[] = {
	"max_len", "copy", "range", "sock_len", "fail_open", "gso", "uid_gid",
	"secctx", "conntrack", NULL
};

static const struct {
	const char *key;
	uint32_t flag;
} queue_flags[] = {
	{ "fail_open", NFQB_F_FAIL_OPEN },
	{ "gso", NFQB_F_GSO },
	{ "uid_gid", NFQB_F_UID_GID },
	{ "secctx", NFQB_F_SECCTX },
	{ "conntrack", NFQB_F_CONNTRACK },
};

const char *cfg_copy_name(enum nfqb_copy_mode m)
{
	switch (m) {
	case NFQB_COPY_NONE:   return "none";
	case NFQB_COPY_META:   return "meta";
	case NFQB_COPY_PACKET: return "packet";
	}
	return "?";
}

static void parse_copy(json_object *o, const char *path, struct nfqb_queue_opts *q,
		       struct errs *e)
{
	static const enum nfqb_copy_mode modes[] = {
		NFQB_COPY_NONE, NFQB_COPY_META, NFQB_COPY_PACKET
	};
	const char *s;

	if (!jsonv_want(o, json_type_string, path, e))
		return;
	s = json_object_get_string(o);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(s, cfg_copy_name(modes[i])) == 0) {
			q->mode = modes[i];
			return;
		}
	}
	errs_add(e, path, "unknown copy mode \"%s\" (expected none, meta or packet)", s);
}

/* Apply the keys of queue object @obj on top of @q. */
static void parse_queue(json_object *obj, const char *path, struct nfqb_queue_opts *q,
			struct errs *e)
{
	char p[ERRS_PATH_MAX];
	json_object *v;
	uint64_t n;
	bool b;

	if (!jsonv_want(obj, json_type_object, path, e))
		return;
	jsonv_check_keys(obj, path, queue_keys, e);
	if (json_object_object_get_ex(obj, "max_len", &v)) {
		errs_path_key(p, sizeof(p), path, "max_len");
		if (jsonv_uint(v, p, e, "max_len", 1, UINT32_MAX, &n))
			q->max_len = (uint32_t)n;
	}
	if (json_object_object_get_ex(obj, "copy", &v)) {
		errs_path_key(p, sizeof(p), path, "copy");
		parse_copy(v, p, q, e);
	}
	if (json_object_object_get_ex(obj, "range", &v)) {
		errs_path_key(p, sizeof(p), path, "range");
		if (jsonv_uint(v, p, e, "range", 1, NFQB_MAX_PAYLOAD, &n))
			q->range = (uint32_t)n;
	}
	if (json_object_object_get_ex(obj, "sock_len", &v)) {
		errs_path_key(p, sizeof(p), path, "sock_len");
		if (jsonv_uint(v, p, e, "sock_len", 0, NFQB_MAX_SOCK_LEN, &n))
			q->sock_len = (uint32_t)n;
	}
	for (size_t i = 0; i < sizeof(queue_flags) / sizeof(queue_flags[0]); i++) {
		if (!json_object_object_get_ex(obj, queue_flags[i].key, &v))
			continue;
		errs_path_key(p, sizeof(p), path, queue_flags[i].key);
		if (!jsonv_bool(v, p, &b, e))
			continue;
		if (b)
			q->flags |= queue_flags[i].flag;
		else
			q->flags &= ~queue_flags[i].flag;
	}
}

/* ------------------------------------------------------------ broker */

/* Loopback only, unless broker.metrics_public (parsed first) says otherwise:
 * the metrics are for a local scraper, not the network. */
static void parse_metrics_listen(json_object *v, const char *path, struct cfg *c,
				 struct errs *e)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char why[256];
	char *s = NULL;

	if (!jsonv_string(v, path, &s, e))
		return;
	if (metrics_parse_address(s, c->metrics_public, &ss, &sslen, why, sizeof(why)) < 0) {
		errs_add(e, path, "%s", why);
		free(s);
		return;
	}
	free(c->metrics_listen);
	c->metrics_listen = s;
}

/* broker.user / broker.listen_group: looked up now, so --check names a
 * user or group this host does not know. */
static void parse_identity(json_object *obj, struct cfg *c, struct errs *e)
{
	struct privs_user u;
	char why[256];
	json_object *v;

	if (json_object_object_get_ex(obj, "user", &v) &&
	    jsonv_string(v, "broker.user", &c->user, e)) {
		if (privs_parse_user(c->user, &u, why, sizeof(why)) < 0) {
			errs_add(e, "broker.user", "%s", why);
		} else {
			c->user_uid = u.uid;
			c->user_gid = u.gid;
		}
	}
	if (json_object_object_get_ex(obj, "listen_group", &v) &&
	    jsonv_string(v, "broker.listen_group", &c->listen_group, e) &&
	    privs_parse_group(c->listen_group, &c->listen_gid, why, sizeof(why)) < 0)
		errs_add(e, "broker.listen_group", "%s", why);
}

/* The per-uid admission limits of the agent listener. */
static void parse_admission(json_object *obj, struct cfg *c, struct errs *e)
{
	json_object *v;
	uint64_t n;

	if (json_object_object_get_ex(obj, "max_pending_per_uid", &v) &&
	    jsonv_uint(v, "broker.max_pending_per_uid", e, "max_pending_per_uid", 1,
		       CFG_MAX_PENDING_PER_UID, &n))
		c->max_pending_per_uid = (uint32_t)n;
	if (json_object_object_get_ex(obj, "max_sessions_per_uid", &v) &&
	    jsonv_uint(v, "broker.max_sessions_per_uid", e, "max_sessions_per_uid", 0,
		       CFG_MAX_SESSIONS_PER_UID, &n))
		c->max_sessions_per_uid = (uint32_t)n;
}

/* ------------------------------------------------------------ broker: control */

static void get_uid_list(json_object *arr, const char *path, uid_t **out, size_t *nout,
			 struct errs *e)
{
	char p[ERRS_PATH_MAX];
	size_t n;
	uid_t *uids;

	if (!jsonv_want(arr, json_type_array, path, e))
		return;
	n = json_object_array_length(arr);
	uids = calloc(n ? n : 1, sizeof(*uids));
	if (!uids) {
		e->oom = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t v;

		errs_path_idx(p, sizeof(p), path, i);
		if (jsonv_uint(json_object_array_get_idx(arr, i), p, e, "uid", 0,
			       (uint32_t)-2, &v))
			uids[i] = (uid_t)v;
	}
	free(*out);
	*out = uids;
	*nout = n;
}

static void get_ms(json_object *obj, const char *key, uint32_t *out, struct errs *e)
{
	char p[ERRS_PATH_MAX];
	json_object *v;
	uint64_t n;

	if (!json_object_object_get_ex(obj, key, &v))
		return;
	errs_path_key(p, sizeof(p), "broker", key);
	if (jsonv_uint(v, p, e, key, CFG_MIN_CONTROL_MS, CFG_MAX_CONTROL_MS, &n))
		*out = (uint32_t)n;
}

/* broker.control_allow_uids, control_admin_uids, control_idle_ms, metrics_refresh_ms */
static void parse_broker_control(json_object *obj, struct cfg *c, struct errs *e)
{
	json_object *v;

	if (json_object_object_get_ex(obj, "control_allow_uids", &v))
		get_uid_list(v, "broker.control_allow_uids", &c->ctl.allow_uids,
			     &c->ctl.nallow_uids, e);
	if (json_object_object_get_ex(obj, "control_admin_uids", &v))
		get_uid_list(v, "broker.control_admin_uids", &c->ctl.admin_uids,
			     &c->ctl.nadmin_uids, e);
	get_ms(obj, "control_idle_ms", &c->ctl.idle_ms, e);
	get_ms(obj, "metrics_refresh_ms", &c->ctl.metrics_refresh_ms, e);
}

static int control_defaults(struct cfg_control *ctl)
{
	ctl->allow_uids = calloc(1, sizeof(*ctl->allow_uids));
	ctl->admin_uids = calloc(1, sizeof(*ctl->admin_uids));
	if (!ctl->allow_uids || !ctl->admin_uids)
		return -ENOMEM;
	ctl->nallow_uids = ctl->nadmin_uids = 1;      /* [0]: root only */
	ctl->idle_ms = CFG_DEFAULT_CONTROL_IDLE_MS;
	ctl->metrics_refresh_ms = CFG_DEFAULT_METRICS_REFRESH_MS;
	return 0;
}

static bool uid_in(const uid_t *v, size_t n, uid_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == uid)
			return true;
	return false;
}

int cfg_control_access(const struct cfg *c, uid_t uid)
{
	if (uid_in(c->ctl.admin_uids, c->ctl.nadmin_uids, uid))
		return 2;
	return uid_in(c->ctl.allow_uids, c->ctl.nallow_uids, uid) ? 1 : 0;
}

/* ------------------------------------------------------------ broker */

static void parse_broker(json_object *obj, struct cfg *c, struct errs *e)
{
	static const char *const keys[] = {
		"listen", "control", "listen_mode", "control_mode", "allow_uids",
		"grace_ms", "metrics_listen", "workers",
		"user", "listen_group",
		"max_pending_per_uid", "max_sessions_per_uid",
		"control_allow_uids", "control_admin_uids", "control_idle_ms",
		"metrics_refresh_ms", "metrics_public",
		NULL
	};
	const char *path = "broker";
	char p[ERRS_PATH_MAX];
	json_object *v;
	uint64_t n;

	if (!jsonv_want(obj, json_type_object, path, e))
		return;
	jsonv_check_keys(obj, path, keys, e);
	if (json_object_object_get_ex(obj, "listen", &v))
		get_path(v, "broker.listen", SUN_PATH_MAX, &c->listen, e);
	if (json_object_object_get_ex(obj, "control", &v))
		get_path(v, "broker.control", SUN_PATH_MAX, &c->control, e);
	if (json_object_object_get_ex(obj, "listen_mode", &v))
		get_mode(v, "broker.listen_mode", &c->listen_mode, e);
	if (json_object_object_get_ex(obj, "control_mode", &v))
		get_mode(v, "broker.control_mode", &c->control_mode, e);
	if (json_object_object_get_ex(obj, "allow_uids", &v))
		get_uid_list(v, "broker.allow_uids", &c->allow_uids, &c->nallow_uids, e);
	if (json_object_object_get_ex(obj, "grace_ms", &v)) {
		errs_path_key(p, sizeof(p), path, "grace_ms");
		if (jsonv_uint(v, p, e, "grace_ms", 0, CFG_MAX_GRACE_MS, &n))
			c->grace_ms = (uint32_t)n;
	}
	if (json_object_object_get_ex(obj, "workers", &v)) {
		errs_path_key(p, sizeof(p), path, "workers");
		if (jsonv_uint(v, p, e, "workers", 0, CFG_MAX_WORKERS, &n))
			c->workers = (uint32_t)n;
	}
	if (json_object_object_get_ex(obj, "metrics_public", &v))
		jsonv_bool(v, "broker.metrics_public", &c->metrics_public, e);
	if (json_object_object_get_ex(obj, "metrics_listen", &v))
		parse_metrics_listen(v, "broker.metrics_listen", c, e);
	parse_identity(obj, c, e);
	parse_admission(obj, c, e);
	parse_broker_control(obj, c, e);
}

/* ------------------------------------------------------------ namespaces */

static bool has_glob_chars(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Names that no agent can send (wire_hello_check refuses them) never match. */
static bool name_ok(const char *s)
{
	for (; *s; s++)
		if (!wire_name_char_ok((unsigned char)*s))
			return false;
	return true;
}

static void parse_ns_name(json_object *v, const char *path, struct cfg_ns *ns,
			  struct errs *e)
{
	if (!jsonv_string(v, path, &ns->name, e))
		return;
	if (strlen(ns->name) >= WIRE_NAME_MAX)
		errs_add(e, path, "name longer than %d bytes", WIRE_NAME_MAX - 1);
	else if (!name_ok(ns->name))
		errs_add(e, path, "name \"%s\" has a character no agent name can have "
			 "(space, control, '\"', '\\' or '=')", ns->name);
	ns->glob = has_glob_chars(ns->name);
}

static void parse_ns_queues(json_object *arr, const char *path, struct cfg_ns *ns,
			    struct errs *e)
{
	char p[ERRS_PATH_MAX];
	size_t n;

	if (!jsonv_want(arr, json_type_array, path, e))
		return;
	n = json_object_array_length(arr);
	if (n == 0) {
		errs_add(e, path, "must not be empty");
		return;
	}
	ns->queues = calloc(n, sizeof(*ns->queues));
	if (!ns->queues) {
		e->oom = 1;
		return;
	}
	/* One bit per queue number: duplicates found in O(queues). */
	uint64_t seen[65536 / 64] = { 0 };

	for (size_t i = 0; i < n; i++) {
		uint64_t v;

		errs_path_idx(p, sizeof(p), path, i);
		if (!jsonv_uint(json_object_array_get_idx(arr, i), p, e, "queue", 0, 65535, &v))
			continue;
		if (seen[v / 64] & (1ull << (v % 64))) {
			errs_add(e, p, "duplicate queue %" PRIu64, v);
			continue;
		}
		seen[v / 64] |= 1ull << (v % 64);
		ns->queues[ns->nqueues++] = (uint16_t)v;
	}
}

/* ------------------------------------------------------------ steering */

/* "steering": {"NAME": [items...]}, named steer lists entries refer to. */
static void parse_steering(json_object *obj, struct cfg *c, struct errs *e)
{
	char p[ERRS_PATH_MAX], vb[JSONV_TEXT_MAX];

	if (!jsonv_want(obj, json_type_object, "steering", e))
		return;
	c->steering = calloc((size_t)json_object_object_length(obj) + 1,
			     sizeof(*c->steering));
	if (!c->steering) {
		e->oom = 1;
		return;
	}
	json_object_object_foreach(obj, name, v) {
		struct steer_list *l;

		if (!policy_name_valid(name)) {
			json_object *js = json_object_new_string(name);

			errs_add(e, "steering", "bad steering list name %s " POLICY_NAME_RULES,
				 js ? jsonv_text(js, vb, sizeof(vb)) : "?");
			json_object_put(js);
			continue;
		}
		errs_path_key(p, sizeof(p), "steering", name);
		l = steer_parse(v, p, NULL, 0, e);
		if (!l)
			continue;
		l->name = strdup(name);
		if (!l->name) {
			e->oom = 1;
			steer_list_free(l);
			continue;
		}
		c->steering[c->nsteering++] = l;
	}
}

const struct steer_list *cfg_steering_find(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->nsteering; i++)
		if (strcmp(c->steering[i]->name, name) == 0)
			return c->steering[i];
	return NULL;
}

/*
 * namespaces[].steer: an inline list, or the name of one under "steering".
 * @queues is NULL when the entry's queues had errors: checking against
 * them would only add noise. A name that is a key of "steering" but whose
 * list had errors is not "unknown": those errors are reported already.
 */
static void parse_ns_steer(json_object *v, const char *path, struct cfg *c,
			   json_object *steering, struct cfg_ns *ns, const uint16_t *queues,
			   struct errs *e)
{
	const char *name;

	if (json_object_is_type(v, json_type_array)) {
		ns->steer_own = steer_parse(v, path, queues, ns->nqueues, e);
		ns->steer = ns->steer_own && ns->steer_own->n ? ns->steer_own : NULL;
		return;
	}
	if (!json_object_is_type(v, json_type_string)) {
		jsonv_type_err(e, path, "an array of steer items or the name of a "
			       "\"steering\" list", v);
		return;
	}
	name = json_object_get_string(v);
	ns->steer = cfg_steering_find(c, name);
	if (ns->steer) {
		if (queues)
			steer_check_queues(ns->steer, path, queues, ns->nqueues, e);
		if (!ns->steer->n)
			ns->steer = NULL;
		return;
	}
	if (steering && !json_object_is_type(steering, json_type_object))
		return;           /* "steering" itself is reported: every name would be noise */
	if (!json_object_object_get_ex(steering, name, NULL))
		errs_add(e, path, "unknown steering list \"%s\"", name);
}

static void parse_ns_entry(json_object *obj, const char *path, struct cfg *c,
			   json_object *steering, struct cfg_ns *ns, struct errs *e)
{
	static const char *const keys[] = {
		"name", "netns", "queues", "policy", "queue", "steer", "audit", NULL
	};
	static const char *const required[] = { "name", "queues", "policy", NULL };
	char p[ERRS_PATH_MAX];
	bool queues_ok = false;
	json_object *v;
	size_t nerr;

	ns->qopts = c->queue_defaults;
	if (!jsonv_want(obj, json_type_object, path, e))
		return;
	jsonv_check_keys(obj, path, keys, e);
	for (size_t i = 0; required[i]; i++) {
		if (json_object_object_get_ex(obj, required[i], NULL))
			continue;
		errs_path_key(p, sizeof(p), path, required[i]);
		errs_add(e, p, "required key missing");
	}
	if (json_object_object_get_ex(obj, "name", &v)) {
		errs_path_key(p, sizeof(p), path, "name");
		parse_ns_name(v, p, ns, e);
	}
	if (json_object_object_get_ex(obj, "netns", &v)) {
		errs_path_key(p, sizeof(p), path, "netns");
		get_path(v, p, 4095, &ns->netns, e);
	}
	if (json_object_object_get_ex(obj, "queues", &v)) {
		errs_path_key(p, sizeof(p), path, "queues");
		nerr = e->n;
		parse_ns_queues(v, p, ns, e);
		queues_ok = e->n == nerr && ns->queues;
	}
	if (json_object_object_get_ex(obj, "policy", &v)) {
		errs_path_key(p, sizeof(p), path, "policy");
		jsonv_string(v, p, &ns->policy_name, e);
	}
	if (json_object_object_get_ex(obj, "queue", &v)) {
		errs_path_key(p, sizeof(p), path, "queue");
		parse_queue(v, p, &ns->qopts, e);
	}
	if (json_object_object_get_ex(obj, "steer", &v)) {
		errs_path_key(p, sizeof(p), path, "steer");
		parse_ns_steer(v, p, c, steering, ns, queues_ok ? ns->queues : NULL, e);
	}
	if (json_object_object_get_ex(obj, "audit", &v)) {
		errs_path_key(p, sizeof(p), path, "audit");
		jsonv_bool(v, p, &ns->audit, e);
	}
}

struct name_pos {
	const char *name;
	size_t pos;
};

/* By name, then by position: the first of equal names comes first. */
static int by_name(const void *a, const void *b)
{
	const struct name_pos *x = a, *y = b;
	int d = strcmp(x->name, y->name);

	return d ? d : (x->pos > y->pos) - (x->pos < y->pos);
}

/*
 * An exact name listed twice: the second entry could never match. Sorted
 * rather than compared pairwise, so that many entries stay O(n log n);
 * the errors still come in entry order.
 */
static void check_duplicate_names(struct cfg *c, struct errs *e)
{
	char p[ERRS_PATH_MAX], base[ERRS_PATH_MAX];
	struct name_pos *order;
	size_t *first, n = 0;

	order = calloc(c->nns + 1, sizeof(*order));
	first = calloc(c->nns + 1, sizeof(*first));
	if (!order || !first) {
		e->oom = 1;
		goto done;
	}
	for (size_t i = 0; i < c->nns; i++) {
		first[i] = i;
		if (c->ns[i].name)
			order[n++] = (struct name_pos){ c->ns[i].name, i };
	}
	qsort(order, n, sizeof(*order), by_name);
	for (size_t k = 1; k < n; k++)
		if (strcmp(order[k].name, order[k - 1].name) == 0)
			first[order[k].pos] = first[order[k - 1].pos];
	for (size_t i = 0; i < c->nns; i++) {
		if (first[i] == i)
			continue;
		errs_path_idx(base, sizeof(base), "namespaces", i);
		errs_path_key(p, sizeof(p), base, "name");
		errs_add(e, p, "duplicate name \"%s\" (namespaces[%zu] already has it)",
			 c->ns[i].name, first[i]);
	}
done:
	free(order);
	free(first);
}

static void parse_namespaces(json_object *arr, struct cfg *c, json_object *steering,
			     struct errs *e)
{
	char p[ERRS_PATH_MAX];
	size_t n;

	if (!jsonv_want(arr, json_type_array, "namespaces", e))
		return;
	n = json_object_array_length(arr);
	c->ns = calloc(n ? n : 1, sizeof(*c->ns));
	if (!c->ns) {
		e->oom = 1;
		return;
	}
	c->nns = n;
	for (size_t i = 0; i < n; i++) {
		c->ns[i].index = i;
		errs_path_idx(p, sizeof(p), "namespaces", i);
		parse_ns_entry(json_object_array_get_idx(arr, i), p, c, steering, &c->ns[i], e);
	}
	check_duplicate_names(c, e);
}

/*
 * Point every entry at its policy. When the set had errors there is no
 * set, but a name that is not even a key of "policies" is still an error
 * of its own: --check reports it with the others.
 */
static void resolve_policies(struct cfg *c, json_object *policies, struct errs *e)
{
	char p[ERRS_PATH_MAX], base[ERRS_PATH_MAX];

	if (!c->policies && !json_object_is_type(policies, json_type_object))
		return;          /* already reported; every name would be noise */
	for (size_t i = 0; i < c->nns; i++) {
		struct cfg_ns *ns = &c->ns[i];

		if (!ns->policy_name)
			continue;
		if (c->policies)
			ns->policy = policy_set_find(c->policies, ns->policy_name);
		errs_path_idx(base, sizeof(base), "namespaces", i);
		if (ns->policy && policy_uses_connmark(ns->policy) &&
		    !(ns->qopts.flags & NFQB_F_CONNTRACK)) {
			errs_path_key(p, sizeof(p), base, "policy");
			errs_add(e, p, "policy \"%s\" matches connmark, which needs the queue "
				 "flag conntrack (queue_defaults or this entry's queue); a kernel "
				 "without CONFIG_NETFILTER_NETLINK_GLUE_CT refuses that flag: use "
				 "CONNMARK --restore-mark and a mark match instead (docs/policy.md)",
				 ns->policy_name);
		}
		if (c->policies ? ns->policy != NULL :
		    json_object_object_get_ex(policies, ns->policy_name, NULL))
			continue;
		errs_path_key(p, sizeof(p), base, "policy");
		errs_add(e, p, "unknown policy \"%s\"", ns->policy_name);
	}
}

/* ------------------------------------------------------------ root */

static int set_defaults(struct cfg *c)
{
	/* The library's defaults, with the buffer size it would pick made
	 * explicit, so the control socket shows the number in force. */
	static const struct nfqb_queue_opts qd0 = NFQB_QUEUE_OPTS_DEFAULT;
	struct nfqb_queue_opts qd = qd0;

	qd.sock_len = NFQB_DEFAULT_SOCK_LEN;

	c->listen = strdup(CFG_DEFAULT_LISTEN);
	c->control = strdup(CFG_DEFAULT_CONTROL);
	c->allow_uids = calloc(1, sizeof(*c->allow_uids));
	if (!c->listen || !c->control || !c->allow_uids)
		return -ENOMEM;
	if (control_defaults(&c->ctl) < 0)
		return -ENOMEM;
	c->allow_uids[0] = 0;
	c->nallow_uids = 1;
	c->listen_mode = CFG_DEFAULT_MODE;
	c->control_mode = CFG_DEFAULT_MODE;
	c->grace_ms = CFG_DEFAULT_GRACE_MS;
	c->max_pending_per_uid = CFG_DEFAULT_MAX_PENDING_PER_UID;
	c->max_sessions_per_uid = CFG_DEFAULT_MAX_SESSIONS_PER_UID;
	c->queue_defaults = qd;
	return 0;
}

struct cfg *cfg_parse(json_object *root, struct errs *e)
{
	static const char *const keys[] = {
		"broker", "queue_defaults", "namespaces", "policies", "steering", NULL
	};
	size_t nerr = e->n;
	json_object *v, *steering = NULL;
	struct cfg *c;

	c = calloc(1, sizeof(*c));
	if (!c || set_defaults(c) < 0) {
		e->oom = 1;
		goto fail;
	}
	if (json_object_get_type(root) != json_type_object) {
		jsonv_type_err(e, "", "an object at the top level", root);
		goto fail;
	}
	jsonv_check_keys(root, "", keys, e);
	if (json_object_object_get_ex(root, "broker", &v))
		parse_broker(v, c, e);
	/* Entries inherit queue_defaults, so those come first. */
	if (json_object_object_get_ex(root, "queue_defaults", &v))
		parse_queue(v, "queue_defaults", &c->queue_defaults, e);
	/* Entries refer to named steer lists, so those come first too. */
	if (json_object_object_get_ex(root, "steering", &steering))
		parse_steering(steering, c, e);
	if (json_object_object_get_ex(root, "namespaces", &v))
		parse_namespaces(v, c, steering, e);
	else
		errs_add(e, "namespaces", "required key missing");
	/* policy_set_parse reports a missing (NULL) "policies" itself. */
	v = NULL;
	json_object_object_get_ex(root, "policies", &v);
	c->policies = policy_set_parse(v, e);
	resolve_policies(c, v, e);
	if (e->n != nerr || e->oom)
		goto fail;
	return c;
fail:
	if (e->oom && e->n == nerr)
		errs_add(e, "", "out of memory");
	cfg_free(c);
	return NULL;
}

/* Line and column (1-based) of byte @off in @text. */
static void text_pos(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Parse @text (@len bytes) strictly; @name prefixes syntax errors. */
static struct cfg *parse_text(const char *name, const char *text, size_t len,
			      struct errs *e)
{
	struct json_tokener *tok = json_tokener_new();
	enum json_tokener_error jerr;
	json_object *root = NULL;
	struct cfg *c = NULL;
	size_t end;
	int line, col;

	if (!tok) {
		errs_add(e, "", "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* Strict mode also refuses trailing data; feeding the terminating
	 * NUL lets a bare number finish. */
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof) {
		text_pos(text, len, &line, &col);
		errs_add(e, "", "%s:%d:%d: invalid JSON: unexpected end of file", name,
			 line, col);
		goto out;
	}
	if (jerr != json_tokener_success) {
		text_pos(text, end, &line, &col);
		errs_add(e, "", "%s:%d:%d: invalid JSON: %s", name, line, col,
			 json_tokener_error_desc(jerr));
		goto out;
	}
	c = cfg_parse(root, e);
out:
	json_object_put(root);
	json_tokener_free(tok);
	return c;
}

struct cfg *cfg_parse_string(const char *text, struct errs *e)
{
	return parse_text("<string>", text, strlen(text), e);
}

struct cfg *cfg_load(const char *path, struct errs *e)
{
	struct cfg *c = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		errs_add(e, "", "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(CFG_MAX_FILE_SIZE + 1);
	if (!buf) {
		errs_add(e, "", "out of memory");
		goto out;
	}
	len = fread(buf, 1, CFG_MAX_FILE_SIZE + 1, f);
	if (ferror(f)) {
		errs_add(e, "", "%s: %s", path, strerror(errno ? errno : EIO));
		goto out;
	}
	if (len > CFG_MAX_FILE_SIZE) {
		errs_add(e, "", "%s: file larger than %u bytes", path, CFG_MAX_FILE_SIZE);
		goto out;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		errs_add(e, "", "%s: contains a NUL byte", path);
		goto out;
	}
	c = parse_text(path, buf, len, e);
out:
	free(buf);
	fclose(f);
	return c;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nns; i++) {
		free(c->ns[i].name);
		free(c->ns[i].netns);
		free(c->ns[i].queues);
		free(c->ns[i].policy_name);
		steer_list_free(c->ns[i].steer_own);
	}
	free(c->ns);
	for (size_t i = 0; i < c->nsteering; i++)
		steer_list_free(c->steering[i]);
	free(c->steering);
	free(c->allow_uids);
	free(c->ctl.allow_uids);
	free(c->ctl.admin_uids);
	free(c->listen);
	free(c->control);
	free(c->metrics_listen);
	free(c->user);
	free(c->listen_group);
	policy_set_free(c->policies);
	free(c);
}

/* ------------------------------------------------------------ queries */

const struct cfg_ns *cfg_match(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->nns; i++) {
		const struct cfg_ns *ns = &c->ns[i];

		if (ns->glob ? fnmatch(ns->name, name, 0) == 0 : strcmp(ns->name, name) == 0)
			return ns;
	}
	return NULL;
}

bool cfg_uid_allowed(const struct cfg *c, uid_t uid)
{
	for (size_t i = 0; i < c->nallow_uids; i++)
		if (c->allow_uids[i] == uid)
			return true;
	return false;
}

/* ------------------------------------------------------------ netns pins */

int cfg_ns_pin_check(const struct cfg_ns *entry, uint64_t dev, uint64_t ino, char *why,
		     size_t whylen)
{
	struct stat st;

	if (!entry->netns)
		return 0;
	if (stat(entry->netns, &st) < 0) {
		int err = errno;

		snprintf(why, whylen, "namespaces[%zu].netns %s: %s", entry->index,
			 entry->netns, strerror(err));
		return -err;
	}
	if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) {
		snprintf(why, whylen, "the sockets live in network namespace inode %" PRIu64
			 ", not in %s (inode %" PRIu64 ") that namespaces[%zu] pins",
			 ino, entry->netns, (uint64_t)st.st_ino, entry->index);
		return -EXDEV;
	}
	return 0;
}
