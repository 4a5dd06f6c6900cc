/* SPDX-License-Identifier: MIT */
/*
 * The commands when the netconf names a "holder": nfq-cni starts nothing
 * and asks nfq-holder (docs/holder.md) to HOLD or RELEASE the attachment,
 * so that no process of the pod lives in the runtime's cgroup and a dead
 * agent is replaced. One SOCK_SEQPACKET message each way (holder/req.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "cni.h"
#include "holder.h"

/* The answer takes the agent's attach wait, plus this for the holder. */
#define HOLDER_SLACK_MS 5000

/* Send @r, wait @timeout_ms for the answer. 0, or -EINVAL with @e set. */
static int call(const struct conf *c, const struct holder_req *r, int timeout_ms, struct cni_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	char *buf = malloc(HOLDER_MSG_MAX);
	int fd = -1, ret = -EINVAL;
	ssize_t n;

	if (!buf)
		return cni_set_err(e, CNI_ERR_IO, "out of memory");
	n = holder_req_format(r, buf, HOLDER_MSG_MAX);
	if (n < 0) {
		cni_set_err(e, CNI_ERR_IO, "request to nfq-holder longer than %u bytes", HOLDER_MSG_MAX);
		goto fail;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->holder);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		cni_set_err(e, CNI_ERR_TRY_LATER, "nfq-holder not reachable at %.512s: %s", c->holder,
			    strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
		cni_set_err(e, CNI_ERR_TRY_LATER, "nfq-holder at %.512s: send: %s", c->holder, strerror(errno));
		goto fail;
	}
	do
		n = recv(fd, buf, HOLDER_MSG_MAX, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		cni_set_err(e, CNI_ERR_TRY_LATER, "nfq-holder at %.512s did not answer within %d ms",
			    c->holder, timeout_ms);
		goto fail;
	}
	if (n <= 0) {
		cni_set_err(e, CNI_ERR_TRY_LATER, "nfq-holder at %.512s closed the connection without an answer",
			    c->holder);
		goto fail;
	}
	switch (holder_reply_parse(buf, (size_t)n, e)) {
	case 0:
		ret = 0;
		break;
	case 1:
		ret = -EINVAL;
		break;
	default:
		cni_set_err(e, CNI_ERR_IO, "nfq-holder at %.512s: unreadable answer", c->holder);
	}
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

static void req_init(struct holder_req *r, enum holder_verb verb, const struct conf *c, const struct env *v)
{
	memset(r, 0, sizeof(*r));
	r->verb = verb;
	snprintf(r->cid, sizeof(r->cid), "%s", v->cid);
	snprintf(r->net, sizeof(r->net), "%s", c->netname);
	snprintf(r->ifname, sizeof(r->ifname), "%s", v->ifname ? v->ifname : "");
}

int via_holder_add(const struct conf *c, const struct env *v, struct cni_err *e)
{
	struct holder_req r;

	req_init(&r, HOLDER_HOLD, c, v);
	snprintf(r.name, sizeof(r.name), "%s", v->name);
	snprintf(r.netns, sizeof(r.netns), "%s", v->netns);
	snprintf(r.broker, sizeof(r.broker), "%s", c->broker);
	r.timeout_ms = c->attach_timeout_ms;
	if (call(c, &r, c->attach_timeout_ms + HOLDER_SLACK_MS, e) < 0)
		return -EINVAL;
	cni_print_result(c);
	return 0;
}

int via_holder_del(const struct conf *c, const struct env *v, struct cni_err *e)
{
	struct holder_req r;

	req_init(&r, HOLDER_RELEASE, c, v);
	return call(c, &r, STOP_TIMEOUT_MS * 2 + HOLDER_SLACK_MS, e);
}

int via_holder_check(const struct conf *c, const struct env *v, struct cni_err *e)
{
	struct holder_req r;

	req_init(&r, HOLDER_CHECK, c, v);
	snprintf(r.netns, sizeof(r.netns), "%s", v->netns);
	return call(c, &r, HOLDER_SLACK_MS, e);
}

int via_holder_gc(const struct conf *c, struct cni_err *e)
{
	struct holder_req r = { .verb = HOLDER_GC };
	size_t n = c->valid ? json_object_array_length(c->valid) : 0;
	int ret;

	if (n > HOLDER_VALID_MAX)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.cni.dev/valid-attachments: more than %d entries",
			       HOLDER_VALID_MAX);
	snprintf(r.net, sizeof(r.net), "%s", c->netname);
	r.valid = calloc(n ? n : 1, sizeof(*r.valid));
	if (!r.valid)
		return cni_set_err(e, CNI_ERR_IO, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(c->valid, i), *x, *y;

		json_object_object_get_ex(a, "containerID", &x);
		json_object_object_get_ex(a, "ifname", &y);
		/* An id the holder could never have held is not worth sending. */
		if (!holder_cid_ok(json_object_get_string(x)) || !json_object_get_string_len(y) ||
		    json_object_get_string_len(y) >= IF_MAX)
			continue;
		snprintf(r.valid[r.n_valid].cid, sizeof(r.valid[0].cid), "%s", json_object_get_string(x));
		snprintf(r.valid[r.n_valid].ifname, sizeof(r.valid[0].ifname), "%s", json_object_get_string(y));
		r.n_valid++;
	}
	ret = call(c, &r, HOLDER_SLACK_MS, e);
	holder_req_clear(&r);
	return ret;
}

int via_holder_status(const struct conf *c, struct cni_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->holder);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ret = cni_set_err(e, CNI_ERR_UNAVAILABLE, "nfq-holder not reachable at %.512s: %s", c->holder,
				  strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}
