/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "render.h"

uint64_t jget_u64(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return 0;
	return json_object_is_type(v, json_type_double) ?
	       (uint64_t)json_object_get_double(v) : json_object_get_uint64(v);
}

const char *jget_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *jget(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

bool render_has_table(const char *cmd)
{
	return strcmp(cmd, "agents") == 0 || strcmp(cmd, "rules") == 0 ||
	       strcmp(cmd, "status") == 0;
}

/* Number cells: a small ring of buffers so one row can hold many. */
struct cells {
	char b[32][FMT_NUM_MAX + 40];
	size_t n;
};

static char *cell(struct cells *c)
{
	return c->b[c->n++ % 32];
}

static const char *cnt(struct cells *c, uint64_t v)
{
	return fmt_count(cell(c), FMT_NUM_MAX, v);
}

static const char *byt(struct cells *c, uint64_t v)
{
	return fmt_bytes(cell(c), FMT_NUM_MAX, v);
}

static const char *num(struct cells *c, uint64_t v)
{
	char *b = cell(c);

	snprintf(b, FMT_NUM_MAX, "%" PRIu64, v);
	return b;
}

/* "1,2,3" from an array of numbers. */
static const char *queues_str(struct cells *c, json_object *arr)
{
	char *b = cell(c);
	size_t off = 0, len = sizeof(c->b[0]);

	b[0] = '\0';
	for (size_t i = 0; arr && i < json_object_array_length(arr) && off < len; i++)
		off += (size_t)snprintf(b + off, len - off, "%s%" PRIu64, i ? "," : "",
					json_object_get_uint64(json_object_array_get_idx(arr, i)));
	return b[0] ? b : "-";
}

/* The lead's per-namespace "steer" object, when the broker has one. */
static const char *steer_str(struct cells *c, json_object *a)
{
	json_object *st = jget(a, "steer", json_type_object), *rules;
	const char *err, *backend;
	char *b;

	if (!st)
		return "-";
	b = cell(c);
	err = jget_str(st, "error");
	backend = jget_str(st, "backend");
	rules = jget(st, "rules", json_type_array);
	if (err)
		snprintf(b, sizeof(c->b[0]), "error");
	else if (json_object_get_boolean(jget(st, "installed", json_type_boolean)))
		snprintf(b, sizeof(c->b[0]), "%s(%zu)", backend ? backend : "yes",
			 rules ? json_object_array_length(rules) : 0);
	else
		snprintf(b, sizeof(c->b[0]), "no");
	return b;
}

/* The worker thread serving a namespace, "solo" when it serves it alone;
 * "-" while binding (null) or from a broker without workers. */
static const char *worker_str(struct cells *c, json_object *a)
{
	json_object *w = jget(a, "worker", json_type_int);
	json_object *solo = jget(a, "solo", json_type_boolean);
	char *b = cell(c);

	if (!w)
		return "-";
	snprintf(b, sizeof(c->b[0]), "%d%s", json_object_get_int(w),
		 solo && json_object_get_boolean(solo) ? " solo" : "");
	return b;
}

static int agents_table(FILE *f, json_object *reply, bool wide, time_t now)
{
	static const char *const hdr[] = {
		"NAME", "STATE", "POLICY", "QUEUES", ">PACKETS", ">BYTES", ">DROPS", ">ERRORS",
		">KDROPS", ">AGE",
		/* wide */ ">PID", ">UID", ">NETNS", ">ACCEPT", ">REPEAT", ">KQUEUED",
		">OVERRUNS", ">TAKEOVERS", "WORKER", "STEER",
	};
	json_object *arr = jget(reply, "agents", json_type_array);
	struct fmt_table t;
	size_t ncols = wide ? 20 : 10;
	int rc;

	if (!arr)
		return -EINVAL;
	if (fmt_table_init(&t, ncols, hdr) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *a = json_object_array_get_idx(arr, i);
		json_object *v = jget(a, "verdicts", json_type_object);
		json_object *k = jget(a, "kernel", json_type_array);
		uint64_t kdrops = 0, kqueued = 0;
		struct cells c = { .n = 0 };
		int64_t at = (int64_t)jget_u64(a, "attached_at");
		char age[FMT_NUM_MAX];

		for (size_t q = 0; k && q < json_object_array_length(k); q++) {
			json_object *ks = json_object_array_get_idx(k, q);

			kdrops += jget_u64(ks, "dropped_full") + jget_u64(ks, "dropped_netlink");
			kqueued += jget_u64(ks, "queued");
		}
		const char *row[] = {
			jget_str(a, "name"), jget_str(a, "state"), jget_str(a, "policy"),
			queues_str(&c, jget(a, "queues", json_type_array)),
			cnt(&c, jget_u64(a, "packets")), byt(&c, jget_u64(a, "bytes")),
			cnt(&c, jget_u64(v, "drop")), cnt(&c, jget_u64(v, "error")),
			cnt(&c, kdrops), at > 0 ? fmt_age(age, sizeof(age), now - at) : "-",
			num(&c, jget_u64(a, "agent_pid")), num(&c, jget_u64(a, "agent_uid")),
			num(&c, jget_u64(a, "netns_inode")), cnt(&c, jget_u64(v, "accept")),
			cnt(&c, jget_u64(v, "repeat")), cnt(&c, kqueued),
			cnt(&c, jget_u64(a, "overruns")), cnt(&c, jget_u64(a, "takeovers")),
			worker_str(&c, a), steer_str(&c, a),
		};
		fmt_table_row(&t, row);
	}
	rc = fmt_table_print(&t, f, 0);
	fmt_table_free(&t);
	return rc;
}

static int rules_table(FILE *f, json_object *reply, bool wide)
{
	static const char *const hdr[] = {
		"POLICY", "RULE", ">PACKETS", ">BYTES", /* wide */ ">AVGLEN", ">SHARE",
	};
	json_object *arr = jget(reply, "rules", json_type_array);
	struct fmt_table t;
	int rc;

	if (!arr)
		return -EINVAL;
	if (fmt_table_init(&t, wide ? 6 : 4, hdr) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *r = json_object_array_get_idx(arr, i);
		const char *pol = jget_str(r, "policy");
		uint64_t pk = jget_u64(r, "packets"), by = jget_u64(r, "bytes"), total = 0;
		struct cells c = { .n = 0 };
		char *share = cell(&c);

		/* The share of its policy's packets: the rows of one policy are adjacent. */
		for (size_t j = 0; j < json_object_array_length(arr); j++) {
			json_object *o = json_object_array_get_idx(arr, j);
			const char *p2 = jget_str(o, "policy");

			if (pol && p2 && strcmp(pol, p2) == 0)
				total += jget_u64(o, "packets");
		}
		if (total)
			snprintf(share, FMT_NUM_MAX, "%.1f%%", 100.0 * (double)pk / (double)total);
		else
			snprintf(share, FMT_NUM_MAX, "-");
		const char *row[] = {
			pol, jget_str(r, "rule"), cnt(&c, pk), byt(&c, by),
			pk ? num(&c, by / pk) : "-", share,
		};
		fmt_table_row(&t, row);
	}
	rc = fmt_table_print(&t, f, 0);
	fmt_table_free(&t);
	return rc;
}

/* "accept 1.2k, drop 3, ..." in the reply's order. */
static const char *verdicts_str(struct cells *c, json_object *v)
{
	char *b = cell(c);
	size_t off = 0, len = sizeof(c->b[0]);
	char nb[FMT_NUM_MAX];

	b[0] = '\0';
	if (!v)
		return "-";
	json_object_object_foreach(v, key, val) {
		if (off >= len)
			break;
		off += (size_t)snprintf(b + off, len - off, "%s%s %s", off ? ", " : "", key,
					fmt_count(nb, sizeof(nb), json_object_get_uint64(val)));
	}
	return b;
}

static int status_table(FILE *f, json_object *reply, bool wide, time_t now)
{
	struct cells c = { .n = 0 };
	char up[FMT_NUM_MAX], verd[256];
	json_object *http = jget(reply, "http", json_type_object);
	const char *ml = jget_str(reply, "metrics_listen");

	snprintf(verd, sizeof(verd), "%s", verdicts_str(&c, jget(reply, "verdicts",
								 json_type_object)));
	fprintf(f, "version:     %s (pid %s)\n", jget_str(reply, "version") ?: "-",
		num(&c, jget_u64(reply, "pid")));
	fprintf(f, "uptime:      %s\n", fmt_age(up, sizeof(up),
						(long long)jget_u64(reply, "uptime_s")));
	/* Brokers before these keys: no line rather than a guess. */
	if (jget(reply, "ready", json_type_boolean))
		fprintf(f, "ready:       %s\n",
			json_object_get_boolean(jget(reply, "ready", json_type_boolean)) ?
			"yes" : "no (starting or stopping)");
	if (jget(reply, "last_reload_ok", json_type_boolean)) {
		long long at = (long long)jget_u64(reply, "last_reload_ok_at");
		char ago[FMT_NUM_MAX];

		fmt_age(ago, sizeof(ago), (long long)now > at ? (long long)now - at : 0);
		fprintf(f, "reload:      last load %s, last good one %s ago; reloads %s ok, "
			"%s failed\n",
			json_object_get_boolean(jget(reply, "last_reload_ok", json_type_boolean)) ?
			"ok" : "REJECTED (the previous config is in force)", ago,
			cnt(&c, jget_u64(reply, "reloads_ok")),
			cnt(&c, jget_u64(reply, "reloads_failed")));
	}
	fprintf(f, "namespaces:  %s\n", num(&c, jget_u64(reply, "namespaces")));
	if (jget(reply, "workers", json_type_int))
		fprintf(f, "workers:     %s threads\n", num(&c, jget_u64(reply, "workers")));
	fprintf(f, "packets:     %s (%s)\n", cnt(&c, jget_u64(reply, "packets")),
		byt(&c, jget_u64(reply, "bytes")));
	fprintf(f, "verdicts:    %s\n", verd);
	fprintf(f, "agents:      %s attached, %s refused\n", cnt(&c, jget_u64(reply, "attaches")),
		cnt(&c, jget_u64(reply, "refusals")));
	fprintf(f, "control:     %s clients, %s watching, %s refused\n",
		num(&c, jget_u64(reply, "control_clients")), num(&c, jget_u64(reply, "watchers")),
		cnt(&c, jget_u64(reply, "control_refused")));
	fprintf(f, "metrics:     %s\n", ml ? ml : "-");
	fprintf(f, "access:      %s\n", jget_str(reply, "access") ?: "-");
	if (!wide)
		return 0;
	fprintf(f, "config:      %s\n", jget_str(reply, "config") ?: "-");
	if (http)
		fprintf(f, "http:        %s connections, %s renders, %s cached, %s refused, "
			"%s cut at the deadline, %s evicted\n",
			cnt(&c, jget_u64(http, "connections")), cnt(&c, jget_u64(http, "renders")),
			cnt(&c, jget_u64(http, "cached")), cnt(&c, jget_u64(http, "refused")),
			cnt(&c, jget_u64(http, "cut_deadline")), cnt(&c, jget_u64(http, "cut_evicted")));
	/* Whatever else a newer broker adds, verbatim. */
	json_object_object_foreach(reply, key, val) {
		static const char *const known[] = {
			"ok", "version", "pid", "uptime_s", "namespaces", "packets", "bytes",
			"verdicts", "attaches", "refusals", "control_clients", "watchers",
			"control_refused", "config", "metrics_listen", "http", "access",
			"ready", "last_reload_ok", "last_reload_ok_at", "reloads_ok",
			"reloads_failed", "workers",
		};
		bool seen = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			seen = seen || strcmp(known[i], key) == 0;
		if (!seen)
			fprintf(f, "%s:%*s%s\n", key, key[0] && strlen(key) < 12 ?
				(int)(12 - strlen(key)) : 1, "",
				json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	return 0;
}

int render_table(FILE *f, const char *cmd, json_object *reply, bool wide, time_t now)
{
	if (strcmp(cmd, "agents") == 0)
		return agents_table(f, reply, wide, now);
	if (strcmp(cmd, "rules") == 0)
		return rules_table(f, reply, wide);
	if (strcmp(cmd, "status") == 0)
		return status_table(f, reply, wide, now);
	return -EINVAL;
}

/* "10.0.0.1:53", "[fd00::1]:53", or the address alone without a port. */
static void endpoint(FILE *f, json_object *ev, const char *addr_key, const char *port_key)
{
	const char *a = jget_str(ev, addr_key);
	json_object *p = jget(ev, port_key, json_type_int);
	bool v6 = a && strchr(a, ':');

	if (!a) {
		fputc('-', f);
		return;
	}
	if (p)
		fprintf(f, v6 ? "[%s]:%" PRIu64 : "%s:%" PRIu64, a, json_object_get_uint64(p));
	else
		fputs(a, f);
}

/* A name from the broker, printable ("-" for none). */
static const char *safe(char *buf, size_t len, const char *s)
{
	snprintf(buf, len, "%s", s ? s : "-");
	return fmt_sanitize(buf);
}

int render_event(FILE *f, json_object *ev)
{
	json_object *ts, *lost;
	char tb[32] = "--:--:--.------";
	const char *proto = jget_str(ev, "proto"), *flags = jget_str(ev, "tcp_flags");
	const char *err = jget_str(ev, "error");
	char nb[512];

	if (!ev || !json_object_is_type(ev, json_type_object))
		return -EINVAL;
	if (json_object_object_get_ex(ev, "lost", &lost)) {
		fprintf(f, "-- lost %" PRIu64 " events (the watcher fell behind) --\n",
			json_object_get_uint64(lost));
		return 0;
	}
	if (json_object_object_get_ex(ev, "ts", &ts)) {
		double d = json_object_get_double(ts);
		time_t sec = (time_t)d;
		long usec = (long)((d - (double)sec) * 1e6 + 0.5);
		struct tm tm;

		if (usec > 999999)
			usec = 999999;
		if (localtime_r(&sec, &tm))
			snprintf(tb, sizeof(tb), "%02d:%02d:%02d.%06ld", tm.tm_hour, tm.tm_min,
				 tm.tm_sec, usec);
	}
	fprintf(f, "%s %s %s ", tb, safe(nb, sizeof(nb), jget_str(ev, "ns")),
		proto ? proto : "non-ip");
	endpoint(f, ev, "src", "sport");
	fputs(" -> ", f);
	endpoint(f, ev, "dst", "dport");
	if (flags)
		fprintf(f, " flags [%s]", flags);
	fprintf(f, " len %" PRIu64, jget_u64(ev, "len"));
	if (jget(ev, "uid", json_type_int))
		fprintf(f, " uid=%" PRIu64, jget_u64(ev, "uid"));
	if (jget(ev, "gid", json_type_int))
		fprintf(f, " gid=%" PRIu64, jget_u64(ev, "gid"));
	fprintf(f, " policy=%s", safe(nb, sizeof(nb), jget_str(ev, "policy")));
	fprintf(f, " rule=%s", safe(nb, sizeof(nb), jget_str(ev, "rule")));
	fprintf(f, " verdict=%s", safe(nb, sizeof(nb), jget_str(ev, "verdict")));
	if (jget(ev, "audit", json_type_string))
		fprintf(f, " audit=%s", safe(nb, sizeof(nb), jget_str(ev, "audit")));
	if (err)
		fprintf(f, " error=\"%s\"", safe(nb, sizeof(nb), err));
	fputc('\n', f);
	return 0;
}
