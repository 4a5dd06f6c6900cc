/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl top: every period, ask the broker for agents and rules, subtract
 * the previous sample and draw the busiest namespaces and rules on the
 * terminal's alternate screen with plain ANSI escapes. Keys: p b d n sort,
 * q quits. The terminal (screen, cursor, wrap, termios) is restored on
 * every way out, signals included (the handler only sets a flag; the
 * blocking poll returns EINTR).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "fmt.h"
#include "render.h"
#include "top.h"

#define ENTER_SCREEN "\033[?1049h\033[?25l\033[?7l"
#define LEAVE_SCREEN "\033[?7h\033[?25h\033[?1049l"

static void row_free(struct top_row *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].name);
	free(r);
}

void top_sample_free(struct top_sample *s)
{
	row_free(s->ns, s->nns);
	row_free(s->rules, s->nrules);
	*s = (struct top_sample){ 0 };
}

static int add_row(struct top_row **rows, size_t *n, const char *name, const uint64_t *v)
{
	struct top_row *r = realloc(*rows, (*n + 1) * sizeof(**rows));

	if (!r)
		return -ENOMEM;
	*rows = r;
	r[*n] = (struct top_row){ .name = strdup(name ? name : "?") };
	if (!r[*n].name)
		return -ENOMEM;
	memcpy(r[*n].v, v, sizeof(r[*n].v));
	(*n)++;
	return 0;
}

int top_sample_parse(struct top_sample *s, json_object *agents, json_object *rules)
{
	json_object *arr;

	if (json_object_object_get_ex(agents, "agents", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *a = json_object_array_get_idx(arr, i), *v = NULL, *k = NULL;
			uint64_t c[TOP_NCOUNTERS] = { 0 };

			json_object_object_get_ex(a, "verdicts", &v);
			json_object_object_get_ex(a, "kernel", &k);
			c[TOP_PACKETS] = jget_u64(a, "packets");
			c[TOP_BYTES] = jget_u64(a, "bytes");
			c[TOP_DROPS] = jget_u64(v, "drop");
			c[TOP_ERRORS] = jget_u64(v, "error");
			for (size_t q = 0; k && json_object_is_type(k, json_type_array) &&
			     q < json_object_array_length(k); q++) {
				json_object *ks = json_object_array_get_idx(k, q);

				c[TOP_KDROPS] += jget_u64(ks, "dropped_full") +
						 jget_u64(ks, "dropped_netlink");
				c[TOP_QUEUED] += jget_u64(ks, "queued");
			}
			if (add_row(&s->ns, &s->nns, jget_str(a, "name"), c) < 0)
				return -ENOMEM;
		}
	if (json_object_object_get_ex(rules, "rules", &arr) &&
	    json_object_is_type(arr, json_type_array))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *r = json_object_array_get_idx(arr, i);
			uint64_t c[TOP_NCOUNTERS] = { 0 };
			char name[256];

			c[TOP_PACKETS] = jget_u64(r, "packets");
			c[TOP_BYTES] = jget_u64(r, "bytes");
			snprintf(name, sizeof(name), "%s/%s", jget_str(r, "policy") ?: "?",
				 jget_str(r, "rule") ?: "?");
			if (add_row(&s->rules, &s->nrules, name, c) < 0)
				return -ENOMEM;
		}
	return 0;
}

/* Per-second rates of @cur against @prev (matched by name); new rows count from 0. */
static void rates(struct top_row *cur, size_t n, const struct top_row *prev, size_t np,
		  double secs)
{
	for (size_t i = 0; i < n; i++) {
		const struct top_row *p = NULL;

		for (size_t j = 0; j < np && !p; j++)
			if (strcmp(prev[j].name, cur[i].name) == 0)
				p = &prev[j];
		cur[i].has_rate = p && secs > 0;
		for (int c = 0; c < TOP_NCOUNTERS; c++) {
			uint64_t was = p ? p->v[c] : 0;

			/* A counter that went back (queue rebound, restart) is no rate. */
			cur[i].rate[c] = cur[i].has_rate && cur[i].v[c] >= was ?
					 (double)(cur[i].v[c] - was) / secs : 0;
		}
	}
}

void top_rates(struct top_sample *cur, const struct top_sample *prev)
{
	double secs = (double)(cur->at_ms - prev->at_ms) / 1000.0;

	rates(cur->ns, cur->nns, prev->ns, prev->nns, secs);
	rates(cur->rules, cur->nrules, prev->rules, prev->nrules, secs);
}

static enum top_sort sort_key;

static int cmp_rows(const void *x, const void *y)
{
	const struct top_row *a = x, *b = y;
	int c = sort_key == TOP_SORT_BYTES ? TOP_BYTES :
		sort_key == TOP_SORT_DROPS ? TOP_DROPS : TOP_PACKETS;
	double ra = a->rate[c], rb = b->rate[c];

	if (sort_key == TOP_SORT_DROPS && ra == rb) {
		ra = a->rate[TOP_KDROPS];
		rb = b->rate[TOP_KDROPS];
	}
	if (sort_key != TOP_SORT_NAME && ra != rb)
		return ra < rb ? 1 : -1;
	return strcmp(a->name, b->name);
}

void top_sort(struct top_sample *s, enum top_sort key)
{
	sort_key = key;
	qsort(s->ns, s->nns, sizeof(*s->ns), cmp_rows);
	qsort(s->rules, s->nrules, sizeof(*s->rules), cmp_rows);
}

const char *top_sort_name(enum top_sort key)
{
	static const char *const names[] = { "packets/s", "bytes/s", "drops/s", "name" };

	return names[key];
}

static const char *rate_cell(char *b, const struct top_row *r, int c, bool bytes)
{
	char nb[FMT_NUM_MAX];

	if (!r->has_rate)
		return "-";
	if (bytes) {
		fmt_bytes(nb, sizeof(nb), (uint64_t)r->rate[c]);
		snprintf(b, FMT_NUM_MAX + 4, "%s/s", nb);
		return b;
	}
	return fmt_rate(b, FMT_NUM_MAX, r->rate[c]);
}

int top_render(FILE *f, const struct top_sample *s, size_t maxrows)
{
	static const char *const nh[] = {
		"NAMESPACE", ">PKT/S", ">BYTES/S", ">DROP/S", ">ERR/S", ">QUEUED", ">KDROP/S",
		">PACKETS", ">DROPS",
	};
	static const char *const rh[] = { "POLICY/RULE", ">PKT/S", ">BYTES/S", ">PACKETS", ">BYTES" };
	struct fmt_table t;
	size_t nrows = maxrows ? (maxrows > 6 ? maxrows - 6 : 1) : 0;
	size_t ns_rows = nrows ? (nrows * 2 + 2) / 3 : 0;
	int rc;

	if (fmt_table_init(&t, 9, nh) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < s->nns; i++) {
		const struct top_row *r = &s->ns[i];
		char b[9][FMT_NUM_MAX + 4];
		const char *row[] = {
			r->name, rate_cell(b[0], r, TOP_PACKETS, false),
			rate_cell(b[1], r, TOP_BYTES, true), rate_cell(b[2], r, TOP_DROPS, false),
			rate_cell(b[3], r, TOP_ERRORS, false),
			fmt_count(b[4], FMT_NUM_MAX, r->v[TOP_QUEUED]),
			rate_cell(b[5], r, TOP_KDROPS, false),
			fmt_count(b[6], FMT_NUM_MAX, r->v[TOP_PACKETS]),
			fmt_count(b[7], FMT_NUM_MAX, r->v[TOP_DROPS]),
		};
		fmt_table_row(&t, row);
	}
	rc = fmt_table_print(&t, f, ns_rows);
	fmt_table_free(&t);
	if (rc < 0)
		return rc;
	fputc('\n', f);
	if (fmt_table_init(&t, 5, rh) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < s->nrules; i++) {
		const struct top_row *r = &s->rules[i];
		char b[4][FMT_NUM_MAX + 4];
		const char *row[] = {
			r->name, rate_cell(b[0], r, TOP_PACKETS, false),
			rate_cell(b[1], r, TOP_BYTES, true),
			fmt_count(b[2], FMT_NUM_MAX, r->v[TOP_PACKETS]),
			fmt_bytes(b[3], FMT_NUM_MAX, r->v[TOP_BYTES]),
		};
		fmt_table_row(&t, row);
	}
	rc = fmt_table_print(&t, f, nrows ? (nrows > ns_rows ? nrows - ns_rows : 1) : 0);
	fmt_table_free(&t);
	return rc;
}

/* One sample from the broker: agents and rules. */
static int sample(const struct ctl_args *a, struct top_sample *s, bool quiet)
{
	json_object *req = json_object_new_object(), *ag = NULL, *ru = NULL;
	int rc = CTL_EXIT_RUNTIME;

	*s = (struct top_sample){ .at_ms = clock_now_ms() };
	if (!req)
		return rc;
	json_object_object_add(req, "cmd", json_object_new_string("agents"));
	rc = ctl_request(a->path, req, &ag, quiet);
	if (!rc) {
		json_object_object_add(req, "cmd", json_object_new_string("rules"));
		rc = ctl_request(a->path, req, &ru, quiet);
	}
	if (!rc && (!json_object_get_boolean(json_object_object_get(ag, "ok")) ||
		    !json_object_get_boolean(json_object_object_get(ru, "ok")))) {
		const char *e = jget_str(json_object_get_boolean(json_object_object_get(ag, "ok")) ?
					 ru : ag, "error");

		if (!quiet)
			fprintf(stderr, "nfq-ctl: top: %s\n", e ? e : "the broker said no");
		rc = CTL_EXIT_RUNTIME;
	}
	if (!rc && top_sample_parse(s, ag, ru) < 0) {
		if (!quiet)
			fprintf(stderr, "nfq-ctl: out of memory\n");
		rc = CTL_EXIT_RUNTIME;
	}
	json_object_put(req);
	json_object_put(ag);
	json_object_put(ru);
	return rc;
}

static void header(FILE *f, const struct ctl_args *a, const struct top_sample *s,
		   enum top_sort key, const char *error)
{
	double pps = 0, bps = 0;
	char tb[16] = "", pb[FMT_NUM_MAX], bb[FMT_NUM_MAX];
	time_t now = time(NULL);
	struct tm tm;

	for (size_t i = 0; i < s->nns; i++) {
		pps += s->ns[i].rate[TOP_PACKETS];
		bps += s->ns[i].rate[TOP_BYTES];
	}
	if (localtime_r(&now, &tm))
		strftime(tb, sizeof(tb), "%H:%M:%S", &tm);
	fprintf(f, "nfq-ctl top - %s - %s - every %.1fs - sort: %s (p b d n; q quits)\n",
		tb, a->path, a->delay_ms / 1000.0, top_sort_name(key));
	if (error)
		fprintf(f, "broker: %s\n\n", error);
	else
		fprintf(f, "%zu namespaces, %zu rules, %s packets/s, %s/s\n\n", s->nns,
			s->nrules, fmt_rate(pb, sizeof(pb), pps),
			fmt_bytes(bb, sizeof(bb), (uint64_t)bps));
}

static int once(const struct ctl_args *a)
{
	struct top_sample prev, cur;
	int rc = sample(a, &prev, false);

	if (rc)
		return rc;
	if (!ctl_stop_signal) {
		struct timespec ts = { a->delay_ms / 1000, (long)(a->delay_ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	}
	rc = sample(a, &cur, false);
	if (!rc) {
		top_rates(&cur, &prev);
		top_sort(&cur, TOP_SORT_PACKETS);
		header(stdout, a, &cur, TOP_SORT_PACKETS, NULL);
		if (top_render(stdout, &cur, 0) < 0 || fflush(stdout) == EOF)
			rc = CTL_EXIT_RUNTIME;
	}
	top_sample_free(&prev);
	top_sample_free(&cur);
	return rc;
}

static size_t term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

/* Draw one frame in a single write, so the screen never shows half of one. */
static void draw(const struct ctl_args *a, const struct top_sample *s, enum top_sort key,
		 const char *error)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	size_t rows = term_rows();

	if (!f)
		return;
	fputs("\033[H\033[2J", f);
	header(f, a, s, key, error);
	top_render(f, s, rows > 3 ? rows - 3 : 1);
	if (fclose(f) == 0) {
		/* The last newline would scroll a full screen. */
		if (len && buf[len - 1] == '\n')
			len--;
		for (size_t off = 0; off < len;) {
			ssize_t n = write(STDOUT_FILENO, buf + off, len - off);

			if (n < 0 && errno == EINTR && !ctl_stop_signal)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	free(buf);
}

/* Keys until @deadline; returns false when q (or a signal) ends top. */
static bool keys(long long deadline, enum top_sort *key, bool *redraw)
{
	long long left;

	while ((left = deadline - clock_now_ms()) > 0 && !ctl_stop_signal) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		char c[16];
		ssize_t n;

		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = read(STDIN_FILENO, c, sizeof(c));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return false;        /* the terminal went away */
		for (ssize_t i = 0; i < n; i++) {
			switch (c[i]) {
			case 'q': case 'Q': case 4 /* ^D */:
				return false;
			case 'p': *key = TOP_SORT_PACKETS; *redraw = true; break;
			case 'b': *key = TOP_SORT_BYTES; *redraw = true; break;
			case 'd': *key = TOP_SORT_DROPS; *redraw = true; break;
			case 'n': *key = TOP_SORT_NAME; *redraw = true; break;
			}
		}
		if (*redraw)
			return true;
	}
	return !ctl_stop_signal;
}

static int live(const struct ctl_args *a)
{
	struct termios saved, raw;
	struct top_sample prev = { 0 }, cur = { 0 };
	enum top_sort key = TOP_SORT_PACKETS;
	bool have_prev = false, run = true;
	char error[256];
	int rc;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) || tcgetattr(STDIN_FILENO, &saved) < 0) {
		fprintf(stderr, "nfq-ctl: top needs a terminal (use --once for one frame)\n");
		return CTL_EXIT_RUNTIME;
	}
	/* Connect once before touching the terminal: a wrong socket is a plain error. */
	rc = sample(a, &prev, false);
	if (rc)
		return rc;
	have_prev = true;
	raw = saved;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	fputs(ENTER_SCREEN, stdout);
	fflush(stdout);
	draw(a, &prev, key, NULL);
	while (run && !ctl_stop_signal) {
		long long deadline = clock_now_ms() + a->delay_ms;
		bool redraw = false;

		while (run && !ctl_stop_signal) {
			run = keys(deadline, &key, &redraw);
			if (!redraw)
				break;
			top_sort(have_prev ? &prev : &cur, key);
			draw(a, &prev, key, NULL);
			redraw = false;
		}
		if (!run || ctl_stop_signal)
			break;
		error[0] = '\0';
		if (sample(a, &cur, true) != 0) {
			snprintf(error, sizeof(error), "cannot reach %s: retrying every %.1fs",
				 a->path, a->delay_ms / 1000.0);
			top_sample_free(&cur);
			draw(a, &prev, key, error);
			continue;
		}
		top_rates(&cur, &prev);
		top_sort(&cur, key);
		top_sample_free(&prev);
		prev = cur;
		cur = (struct top_sample){ 0 };
		draw(a, &prev, key, NULL);
	}
	fputs(LEAVE_SCREEN, stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	top_sample_free(&prev);
	top_sample_free(&cur);
	return 0;
}

int ctl_top(const struct ctl_args *a)
{
	return a->once ? once(a) : live(a);
}
