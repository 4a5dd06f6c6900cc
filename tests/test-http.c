/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/http.c, the optional Prometheus scrape endpoint:
 * a real server on a loopback port driven by the broker's loop, talked to
 * with plain TCP sockets from the test. Checks the exact answer to GET and
 * HEAD /metrics (status, content type, length, the body metrics_render
 * gives), 404 and 405 answers, keep-alive, slow and concurrent clients
 * while the loop keeps serving its other fds and timers, the connection
 * limit with slot takeover, the total deadline against slowloris clients,
 * the request-size cap, the render budget, shutdown with clients
 * connected and the start-up errors. Without
 * libmicrohttpd only the "not available" error is checked and the test
 * reports itself skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "loop.h"
#include "metrics.h"
#include "session-private.h"

static const char config[] =
	"{\"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"p\"}],"
	" \"policies\": {\"p\": {\"default\": \"accept\", \"rules\": []}}}";

struct fx {
	struct loop *loop;
	struct session_mgr *m;
	struct http *h;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct errs e = { 0 };
	struct cfg *cfg;

	if (!f)
		return -1;
	f->loop = loop_new();
	cfg = cfg_parse_string(config, &e);
	if (!f->loop || !cfg)
		return -1;
	f->m = session_mgr_new(f->loop, cfg);
	if (!f->m)
		return -1;
	/* uptime 0 on every render: two renders of the same state are equal */
	f->m->started = time(NULL) + 3600;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	http_free(f->h);
	session_mgr_free(f->m);
	loop_free(f->loop);
	free(f);
	return 0;
}

/* Start serving on @listen; fails the test with the reason otherwise. */
static struct http *start(struct fx *f, const char *listen)
{
	char why[256] = "";
	struct http *h = http_new(f->m, listen, why, sizeof(why));

	if (!h)
		fail_msg("http_new(%s): %s (%s)", listen, why, strerror(errno));
	return h;
}

/* ------------------------------------------------------------ loop helpers */

static void stop_cb(struct loop *l, struct loop_timer *t, void *data)
{
	loop_stop(l);
}

static void pump(struct loop *l, unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	assert_int_equal(loop_timer_arm(l, &t, loop_now_ms() + ms), 0);
	assert_int_equal(loop_run(l), 0);
	loop_timer_cancel(l, &t);
}

/* ------------------------------------------------------------ client */

/* A TCP connection to "a.b.c.d:port" or "[v6]:port", non-blocking once up. */
static int client(const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	const char *colon = strrchr(addr, ':');
	char host[64];
	socklen_t sl;
	int fd;

	assert_non_null(colon);
	if (addr[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2), addr + 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(colon + 1));
		assert_int_equal(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(colon + 1));
		assert_int_equal(inet_pton(AF_INET, host, &s4->sin_addr), 1);
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	/* the kernel completes a loopback handshake before the server accepts */
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
	return fd;
}

static void send_all(int fd, const char *s)
{
	size_t len = strlen(s);

	assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

struct resp {
	char raw[1 << 17];
	size_t len;
	bool eof;                /* the server closed (or reset) the connection */
	int status;
	const char *body;        /* into raw, after the blank line */
	size_t body_len;
	long clen;               /* Content-Length, -1 when absent */
};

/* The value of header @name in @r (copied into @out), or NULL. */
static const char *header(const struct resp *r, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = strstr(r->raw, "\r\n");

	while (p && p + 2 < r->body - 2) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *end = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, outlen, "%.*s", (int)(end - v), v);
			return out;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/* Whether @r holds a complete response (HEAD: the headers are all there is). */
static bool parse(struct resp *r, bool head)
{
	const char *end = strstr(r->raw, "\r\n\r\n");
	char v[32];

	if (!end)
		return false;
	r->body = end + 4;
	r->body_len = r->len - (size_t)(r->body - r->raw);
	if (sscanf(r->raw, "HTTP/1.%*d %d ", &r->status) != 1)
		r->status = -1;
	r->clen = header(r, "Content-Length", v, sizeof(v)) ? atol(v) : -1;
	if (head)
		return true;
	return r->clen >= 0 && r->body_len >= (size_t)r->clen;
}

/*
 * Read one response from @fd while the loop runs (the server lives in it):
 * until it is complete, the server closes, or 2 s pass.
 */
static void read_resp(struct loop *l, int fd, struct resp *r, bool head)
{
	memset(r, 0, sizeof(*r));
	r->status = -1;
	for (int i = 0; i < 400; i++) {
		ssize_t n;

		pump(l, 5);
		n = recv(fd, r->raw + r->len, sizeof(r->raw) - 1 - r->len, MSG_DONTWAIT);
		if (n > 0) {
			r->len += (size_t)n;
			r->raw[r->len] = '\0';
			if (parse(r, head))
				return;
		} else if (n == 0 || errno == ECONNRESET) {
			r->eof = true;
			parse(r, head);
			return;
		} else {
			assert_int_equal(errno, EAGAIN);
		}
	}
	fail_msg("no complete response within 2 s (%zu bytes)", r->len);
}

/* One request on a fresh connection, the response read to the end. */
static void request(struct fx *f, const char *req, struct resp *r)
{
	int fd = client(http_address(f->h));

	send_all(fd, req);
	read_resp(f->loop, fd, r, strncmp(req, "HEAD ", 5) == 0);
	close(fd);
}

/* What metrics_render says about the broker right now. */
static char *render(struct fx *f)
{
	struct metrics_buf b = { 0 };

	assert_int_equal(metrics_render(f->m, &b), 0);
	assert_non_null(b.data);
	return b.data;
}

/*
 * @s with process_open_fds' value blanked (a copy): the scrape's render
 * counted the client's connection, the test's own render does not.
 */
static char *mask_fds(const char *s, size_t len)
{
	static const char key[] = "\nprocess_open_fds ";
	char *out = strndup(s, len), *p, *end;

	assert_non_null(out);
	p = strstr(out, key);
	if (p) {
		p += strlen(key);
		end = strchr(p, '\n');
		assert_non_null(end);
		memmove(p + 1, end, strlen(end) + 1);
		*p = 'N';
	}
	return out;
}

static void assert_body(const struct resp *r, const char *want)
{
	char *a = mask_fds(r->body, r->body_len), *b = mask_fds(want, strlen(want));

	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* ------------------------------------------------------------ tests */

static void test_scrape(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char v[128], *want;
	unsigned port;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	/* the port actually bound, not the 0 asked for */
	assert_int_equal(sscanf(http_address(f->h), "127.0.0.1:%u", &port), 1);
	assert_true(port > 0 && port < 65536);

	request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	assert_non_null(header(r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, METRICS_CONTENT_TYPE);
	assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
	assert_true(r->clen > 0);
	assert_int_equal((size_t)r->clen, r->body_len);
	want = render(f);
	assert_body(r, want);
	assert_non_null(strstr(want, "nfqb_up 1\n"));
	free(want);

	/* the handler reads the live state: changed counters show in the next scrape */
	f->m->total.packets = 123456789;
	f->m->refusals = 42;
	request(f, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	want = render(f);
	assert_body(r, want);
	assert_non_null(strstr(r->body, " 123456789\n"));
	free(want);
	free(r);
}

static void test_head(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char v[128], *want;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	request(f, "HEAD /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	assert_non_null(header(r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, METRICS_CONTENT_TYPE);
	assert_int_equal(r->body_len, 0);
	want = render(f);
	/* the length of the body a GET would get (the open fds' count may
	 * differ by a digit: the connection was open then) */
	assert_true(r->clen >= (long)strlen(want) - 1 && r->clen <= (long)strlen(want) + 1);
	free(want);
	free(r);
}

static void test_not_found(void **state)
{
	static const char *const paths[] = {
		"/", "/metrics/", "/metricsx", "/Metrics", "/other", "/metrics/../x",
	};
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char req[128], v[128];

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", paths[i]);
		request(f, req, r);
		if (r->status != 404)
			fail_msg("GET %s: status %d", paths[i], r->status);
		assert_non_null(header(r, "Content-Type", v, sizeof(v)));
		assert_string_equal(v, "text/plain; charset=utf-8");
		assert_body(r, "not found: nfq-broker serves GET /metrics, /healthz, /readyz\n");
	}
	/* a query string is not part of the path: still the metrics */
	request(f, "GET /metrics?name[]=x HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, "nfqb_up 1\n"));
	free(r);
}

static void test_method_not_allowed(void **state)
{
	static const char *const reqs[] = {
		"POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nab",
		"POST /metrics HTTP/1.0\r\n\r\n",
		"PUT /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		"DELETE /metrics HTTP/1.0\r\n\r\n",
		"OPTIONS /metrics HTTP/1.0\r\n\r\n",
		"POST /other HTTP/1.0\r\n\r\n",        /* the method is judged first */
	};
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char v[128];

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		request(f, reqs[i], r);
		if (r->status != 405)
			fail_msg("%s: status %d", reqs[i], r->status);
		assert_non_null(header(r, "Allow", v, sizeof(v)));
		assert_string_equal(v, "GET, HEAD");
		assert_non_null(header(r, "Content-Type", v, sizeof(v)));
		assert_string_equal(v, "text/plain; charset=utf-8");
		assert_body(r, "only GET and HEAD are served here\n");
	}
	free(r);
}

/* Not HTTP at all: 400 and the connection closed, and the server goes on. */
static void test_garbage(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char v[64];
	int fd;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	fd = client(http_address(f->h));
	send_all(fd, "\x01\x02\x03 garbage \xff\r\n\r\n");
	read_resp(f->loop, fd, r, false);
	assert_int_equal(r->status, 400);
	assert_non_null(header(r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	read_resp(f->loop, fd, r, false);
	assert_true(r->eof);
	assert_int_equal(r->len, 0);
	close(fd);
	/* a client that connects and says nothing, then leaves */
	fd = client(http_address(f->h));
	pump(f->loop, 10);
	close(fd);
	request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	free(r);
}

/*
 * HTTP/1.1: each request on a connection is answered in full. The server
 * may close after a response (libmicrohttpd does when the handler answers
 * on its first call, as http.c does) but then it must say so.
 */
static void test_http11(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char *want, v[64];
	int fd, answered = 0;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	want = render(f);
	fd = client(http_address(f->h));
	for (int i = 0; i < 3; i++) {
		bool closing;

		send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
		read_resp(f->loop, fd, r, false);
		assert_false(r->eof);
		assert_int_equal(r->status, 200);
		assert_body(r, want);
		answered++;
		closing = header(r, "Connection", v, sizeof(v)) && strcasecmp(v, "close") == 0;
		if (closing) {
			read_resp(f->loop, fd, r, false);
			assert_true(r->eof);
			assert_int_equal(r->len, 0);
			close(fd);
			fd = client(http_address(f->h));
		}
	}
	assert_int_equal(answered, 3);
	free(want);
	close(fd);
	free(r);
}

/* What the loop's other users saw while the HTTP clients were served. */
struct others {
	int efd;
	uint64_t fd_total;       /* sum of what was read from the eventfd */
	int timer_calls;
	struct loop_timer t;
};

static void other_fd_cb(struct loop *l, int fd, uint32_t events, void *data)
{
	struct others *o = data;
	uint64_t v;

	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
	o->fd_total += v;
}

static void other_timer_cb(struct loop *l, struct loop_timer *t, void *data)
{
	struct others *o = data;

	o->timer_calls++;
	if (o->timer_calls < 10)
		loop_timer_arm(l, t, loop_now_ms() + 2);
}

/*
 * Several clients sending their requests a few bytes at a time: all are
 * answered, and meanwhile the loop goes on serving an eventfd and a timer.
 */
static void test_slow_concurrent_clients(void **state)
{
	enum { N = 6 };
	static const char req[] = "GET /metrics HTTP/1.0\r\nUser-Agent: test\r\n\r\n";
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	struct others o = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	uint64_t one = 1;
	char *want;
	int fd[N];

	assert_non_null(r);
	assert_true(o.efd >= 0);
	f->h = start(f, "127.0.0.1:0");
	assert_int_equal(loop_add(f->loop, o.efd, EPOLLIN, other_fd_cb, &o), 0);
	loop_timer_init(&o.t, other_timer_cb, &o);
	assert_int_equal(loop_timer_arm(f->loop, &o.t, loop_now_ms() + 2), 0);
	for (int i = 0; i < N; i++)
		fd[i] = client(http_address(f->h));
	/* a few bytes from everyone, round after round */
	for (size_t off = 0, round = 1; off < sizeof(req) - 1; off += 5, round++) {
		for (int i = 0; i < N; i++) {
			char part[8];

			snprintf(part, sizeof(part), "%.5s", req + off);
			send_all(fd[i], part);
		}
		/* the eventfd is served while every HTTP client is half-way */
		assert_int_equal(write(o.efd, &one, sizeof(one)), sizeof(one));
		for (int k = 0; k < 100 && o.fd_total < round; k++)
			pump(f->loop, 3);
		assert_int_equal(o.fd_total, round);
	}
	assert_true(o.timer_calls >= 1);
	want = render(f);
	for (int i = N - 1; i >= 0; i--) {
		read_resp(f->loop, fd[i], r, false);
		assert_int_equal(r->status, 200);
		assert_body(r, want);
		close(fd[i]);
	}
	pump(f->loop, 40);
	assert_int_equal(o.timer_calls, 10);
	free(want);
	assert_int_equal(loop_del(f->loop, o.efd), 0);
	close(o.efd);
	free(r);
}

/* Whether the server ended @fd's connection (EOF or reset), within @ms. */
static bool ended(struct loop *l, int fd, unsigned ms)
{
	char b[4096];

	for (unsigned i = 0; i <= ms / 5; i++) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			assert_int_equal(errno, EAGAIN);
		pump(l, 5);
	}
	return false;
}

/*
 * Sixteen connections at most. A new one beyond them is refused while
 * every slot is young; once the oldest held its slot long enough (a
 * slowloris, not a scraper), the new one takes it over and is answered
 * at once.
 */
static void test_connection_limit(void **state)
{
	enum { LIMIT = 16 };
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	struct http_stats st;
	int fd[LIMIT], extra;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	http_set_limits(f->h, 60000, 300);
	for (int i = 0; i < LIMIT; i++) {
		fd[i] = client(http_address(f->h));
		send_all(fd[i], "GET /metr");
		pump(f->loop, 2);
	}
	pump(f->loop, 20);
	http_get_stats(f->h, &st);
	assert_int_equal(st.connections, LIMIT);
	/* every slot busy for less than 300 ms: the newcomer goes */
	extra = client(http_address(f->h));
	send_all(extra, req);
	assert_true(ended(f->loop, extra, 200));
	close(extra);
	http_get_stats(f->h, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.cut_evicted, 0);
	/* later, a scrape takes the oldest slot over and is served at once */
	pump(f->loop, 300);
	for (int k = 0; k < 3; k++) {
		uint64_t t0 = loop_now_ms();

		extra = client(http_address(f->h));
		send_all(extra, req);
		read_resp(f->loop, extra, r, false);
		assert_int_equal(r->status, 200);
		assert_true(loop_now_ms() - t0 < 500);
		close(extra);
		pump(f->loop, 10);
	}
	/* the oldest dawdler lost its slot; the scrapes after it found the slot free */
	assert_true(ended(f->loop, fd[0], 100));
	for (int i = 1; i < LIMIT; i++)
		assert_false(ended(f->loop, fd[i], 0));
	http_get_stats(f->h, &st);
	assert_int_equal(st.cut_evicted, 1);
	assert_int_equal(st.connections, LIMIT - 1);
	/* an admitted slow client that finishes its request is served */
	send_all(fd[LIMIT - 1], "ics HTTP/1.0\r\n\r\n");
	read_resp(f->loop, fd[LIMIT - 1], r, false);
	assert_int_equal(r->status, 200);
	for (int i = 0; i < LIMIT; i++)
		close(fd[i]);
	free(r);
}

/* A request dribbled in a byte at a time is cut at its total deadline. */
static void test_deadline(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	struct http_stats st;
	uint64_t t0;
	int slow, ka;
	bool gone = false;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	http_set_limits(f->h, 300, 1000);
	slow = client(http_address(f->h));
	t0 = loop_now_ms();
	/* activity does not extend it, unlike MHD's idle timeout */
	for (int i = 0; i < 100 && !gone; i++) {
		char c = "GET /metrics HTTP/1.0\r\nX-A: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"[i % 64];

		if (send(slow, &c, 1, MSG_NOSIGNAL) != 1)
			gone = true;
		gone = gone || ended(f->loop, slow, 20);
	}
	assert_true(gone);
	assert_true(loop_now_ms() - t0 >= 290 && loop_now_ms() - t0 < 1000);
	close(slow);
	http_get_stats(f->h, &st);
	assert_int_equal(st.cut_deadline, 1);
	/* a connection that sends nothing at all ends at it too */
	ka = client(http_address(f->h));
	t0 = loop_now_ms();
	assert_true(ended(f->loop, ka, 1000));
	assert_true(loop_now_ms() - t0 >= 250);
	http_get_stats(f->h, &st);
	assert_int_equal(st.cut_deadline, 2);
	/* and a prompt scrape is answered meanwhile */
	request(f, req, r);
	assert_int_equal(r->status, 200);
	close(ka);
	free(r);
}

/* The request's size is capped: huge headers get an error, not memory. */
static void test_request_too_large(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	static char big[40000];
	int fd;

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	fd = client(http_address(f->h));
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /metrics HTTP/1.0\r\nX-Big: ", 31);
	/* more than the cap; the server answers before reading the rest */
	(void)send(fd, big, sizeof(big) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	read_resp(f->loop, fd, r, false);
	assert_true(r->status == 431 || r->status == 413 || (r->eof && r->status == -1));
	assert_true(r->status != 200);
	close(fd);
	/* the next scrape is fine */
	request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	free(r);
}

/* A scrape loop renders a few times a second; the rest get the last text. */
static void test_render_budget(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	struct http_stats st;
	char first[64];

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	for (int i = 0; i < 20; i++) {
		f->m->refusals = (uint64_t)i;
		request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
		assert_int_equal(r->status, 200);
		if (i == 0)
			snprintf(first, sizeof(first), "%s",
				 strstr(r->body, "\nnfqb_agent_refusals_total ") + 1);
	}
	http_get_stats(f->h, &st);
	/* 20 scrapes in well under 2 s: at most 2 windows of 5 renders */
	assert_true(st.renders >= 5 && st.renders <= 10);
	assert_int_equal(st.renders + st.cached, 20);
	assert_int_equal(strncmp(first, "nfqb_agent_refusals_total 0\n", 28), 0);
	/* served, just not newer than the last render */
	assert_non_null(strstr(r->body, "\nnfqb_agent_refusals_total "));
	free(r);
}

/* http_free with clients connected: they are closed, the loop is clean. */
static void test_free_with_clients(void **state)
{
	struct fx *f = *state;
	int idle, half, n;
	char b[16];

	f->h = start(f, "127.0.0.1:0");
	assert_int_equal(loop_fd_count(f->loop), 1);
	idle = client(http_address(f->h));
	half = client(http_address(f->h));
	send_all(half, "GET /metr");
	pump(f->loop, 20);
	http_free(f->h);
	f->h = NULL;
	assert_int_equal(loop_fd_count(f->loop), 0);
	/* nothing of the server left in the loop: no callbacks, no timers */
	pump(f->loop, 30);
	for (int *fd = &idle; fd; fd = fd == &idle ? &half : NULL) {
		n = (int)recv(*fd, b, sizeof(b), MSG_DONTWAIT);
		assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
		close(*fd);
	}
	http_free(NULL);
}

static void test_other_loopback_addresses(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	unsigned port;
	int probe;

	assert_non_null(r);
	f->h = start(f, "127.0.0.2:0");
	assert_int_equal(sscanf(http_address(f->h), "127.0.0.2:%u", &port), 1);
	request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	http_free(f->h);
	f->h = NULL;

	/* IPv6 loopback, when this host has it */
	probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0 || bind(probe, (struct sockaddr *)&s6, sizeof(s6)) < 0) {
		if (probe >= 0)
			close(probe);
		free(r);
		print_message("no IPv6 loopback here: [::1] not tried\n");
		return;
	}
	close(probe);
	f->h = start(f, "[::1]:0");
	assert_int_equal(sscanf(http_address(f->h), "[::1]:%u", &port), 1);
	assert_true(port > 0);
	request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	free(r);
}

static void test_start_errors(void **state)
{
	static const char *const bad[] = {
		"0.0.0.0:0", "10.1.2.3:9101", "[::]:0", "localhost:9101", "127.0.0.1",
		"127.0.0.1:65536", "127.0.0.1:x", "", ":9101",
	};
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char why[256], addr[64];

	assert_non_null(r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		errno = 0;
		assert_null(http_new(f->m, bad[i], why, sizeof(why)));
		if (errno != EINVAL)
			fail_msg("%s: errno %d (%s)", bad[i], errno, why);
		assert_true(why[0] != '\0');
		assert_int_equal(loop_fd_count(f->loop), 0);
	}
	f->h = start(f, "127.0.0.1:0");
	snprintf(addr, sizeof(addr), "%s", http_address(f->h));
	/* the port is taken: refused with a reason naming the address */
	why[0] = '\0';
	errno = 0;
	assert_null(http_new(f->m, addr, why, sizeof(why)));
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(why, addr));
	assert_int_equal(loop_fd_count(f->loop), 1);
	/* and the first server did not notice */
	request(f, "GET /metrics HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	free(r);
}

/* Without libmicrohttpd: a clear error and nothing registered. */
static void test_unavailable(void **state)
{
	struct fx *f = *state;
	char why[256] = "";

	assert_false(http_available());
	errno = 0;
	assert_null(http_new(f->m, "127.0.0.1:0", why, sizeof(why)));
	assert_int_equal(errno, ENOTSUP);
	assert_string_equal(why, "cannot serve metrics on 127.0.0.1:0: nfq-broker was built "
			    "without libmicrohttpd");
	assert_int_equal(loop_fd_count(f->loop), 0);
	/* a bad address is still named as such */
	why[0] = '\0';
	errno = 0;
	assert_null(http_new(f->m, "0.0.0.0:9101", why, sizeof(why)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(why, "0.0.0.0 is not a loopback address (127.0.0.0/8 or [::1]; "
			    "broker.metrics_public allows it)");
	http_free(NULL);
}

/*
 * /healthz answers whenever the loop runs; /readyz only once the broker
 * said it serves (session_mgr_set_ready), 503 before and after.
 */
static void test_probes(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	char v[128];

	assert_non_null(r);
	f->h = start(f, "127.0.0.1:0");
	request(f, "GET /healthz HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	assert_body(r, "ok\n");
	request(f, "GET /readyz HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 503);
	assert_non_null(header(r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain; charset=utf-8");
	assert_body(r, "not ready: starting or shutting down\n");
	session_mgr_set_ready(f->m, true);
	request(f, "HEAD /readyz HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	request(f, "GET /readyz HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 200);
	assert_body(r, "ready\n");
	{
		char *text = render(f);

		assert_non_null(strstr(text, "\nnfqb_ready 1\n"));
		free(text);
	}
	session_mgr_set_ready(f->m, false);
	request(f, "GET /readyz HTTP/1.0\r\n\r\n", r);
	assert_int_equal(r->status, 503);
	/* the probes are GET/HEAD only, like /metrics */
	request(f, "POST /healthz HTTP/1.0\r\nContent-Length: 0\r\n\r\n", r);
	assert_int_equal(r->status, 405);
	free(r);
}

/*
 * broker.metrics_public lets the endpoint listen on any address (here the
 * wildcard, reached over loopback); without it the same address is refused.
 */
static void test_public_address(void **state)
{
	struct fx *f = *state;
	struct resp *r = malloc(sizeof(*r));
	struct cfg *c = (struct cfg *)session_mgr_cfg(f->m);
	char why[256] = "", addr[64];
	int fd;

	assert_non_null(r);
	errno = 0;
	assert_null(http_new(f->m, "0.0.0.0:0", why, sizeof(why)));
	assert_int_equal(errno, EINVAL);
	c->metrics_public = true;
	f->h = start(f, "0.0.0.0:0");
	assert_int_equal(strncmp(http_address(f->h), "0.0.0.0:", 8), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%s", strchr(http_address(f->h), ':') + 1);
	fd = client(addr);
	send_all(fd, "GET /healthz HTTP/1.0\r\n\r\n");
	read_resp(f->loop, fd, r, false);
	close(fd);
	assert_int_equal(r->status, 200);
	c->metrics_public = false;
	free(r);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_scrape),
		T(test_head),
		T(test_not_found),
		T(test_method_not_allowed),
		T(test_garbage),
		T(test_http11),
		T(test_slow_concurrent_clients),
		T(test_connection_limit),
		T(test_deadline),
		T(test_request_too_large),
		T(test_render_budget),
		T(test_free_with_clients),
		T(test_other_loopback_addresses),
		T(test_start_errors),
		T(test_probes),
		T(test_public_address),
	};
	const struct CMUnitTest without[] = {
		T(test_unavailable),
	};

	if (!http_available()) {
		int rc = cmocka_run_group_tests(without, NULL, NULL);

		/* 77: meson's "skipped" */
		return rc ? rc : 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
