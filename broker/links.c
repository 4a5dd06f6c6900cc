/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "links.h"

struct link_entry {
	uint32_t ifindex;
	int32_t id;
	uint32_t gen;            /* dump generation that last saw it */
	char name[IF_NAMESIZE];
};

struct links {
	struct link_entry *v;    /* sorted by ifindex */
	size_t n, cap;
	uint32_t seq;            /* sequence number of our dump request */
	uint32_t gen;            /* bumped per dump */
	bool dumping;
	bool redump;             /* dump again once the current one ends */
};

/* Enough for any one RTM_NEWLINK message; dumps span several reads. */
#define LINKS_RXBUF 32768
/* Reads per links_read() call: other fds get their turn. */
#define LINKS_READ_BUDGET 64

struct links *links_new(void)
{
	struct links *l = calloc(1, sizeof(*l));

	if (l)
		l->seq = (uint32_t)time(NULL);
	return l;
}

void links_free(struct links *l)
{
	if (!l)
		return;
	free(l->v);
	free(l);
}

size_t links_count(const struct links *l)
{
	return l->n;
}

/* Index of @ifindex, or where it would go (*found false). */
static size_t find(const struct links *l, uint32_t ifindex, bool *found)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].ifindex < ifindex)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < l->n && l->v[lo].ifindex == ifindex;
	return lo;
}

int32_t links_id(const struct links *l, uint32_t ifindex)
{
	bool found;
	size_t i;

	if (!l || !ifindex)
		return -1;
	i = find(l, ifindex, &found);
	return found ? l->v[i].id : -1;
}

const char *links_name(const struct links *l, uint32_t ifindex)
{
	bool found;
	size_t i;

	if (!l || !ifindex)
		return NULL;
	i = find(l, ifindex, &found);
	return found ? l->v[i].name : NULL;
}

static int32_t map_id(const struct policy_set *ps, const char *name)
{
	return ps ? policy_ifname_id(ps, name) : -1;
}

static void link_set(struct links *l, const struct policy_set *ps, uint32_t ifindex,
		     const char *name)
{
	struct link_entry *e;
	bool found;
	size_t i = find(l, ifindex, &found);

	if (!found) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 8;

			e = realloc(l->v, cap * sizeof(*e));
			if (!e)
				return;     /* that link stays unknown: matches no indev/outdev */
			l->v = e;
			l->cap = cap;
		}
		memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*e));
		l->n++;
		l->v[i].ifindex = ifindex;
	}
	e = &l->v[i];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->id = map_id(ps, e->name);
	e->gen = l->gen;
}

static void link_del(struct links *l, uint32_t ifindex)
{
	bool found;
	size_t i = find(l, ifindex, &found);

	if (!found)
		return;
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
	l->n--;
}

/* After a complete dump: what it did not list is gone. */
static void sweep(struct links *l)
{
	size_t j = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].gen == l->gen)
			l->v[j++] = l->v[i];
	l->n = j;
}

static void handle_link(struct links *l, const struct policy_set *ps,
			const struct nlmsghdr *nlh)
{
	const struct ifinfomsg *ifi;
	struct nlattr *a;
	const char *name = NULL;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index <= 0)
		return;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		link_del(l, (uint32_t)ifi->ifi_index);
		return;
	}
	mnl_attr_for_each(a, nlh, sizeof(*ifi)) {
		if (mnl_attr_get_type(a) != IFLA_IFNAME)
			continue;
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return;
		name = mnl_attr_get_str(a);
	}
	if (name)
		link_set(l, ps, (uint32_t)ifi->ifi_index, name);
}

static void dump_ended(struct links *l, bool complete)
{
	l->dumping = false;
	if (complete)
		sweep(l);
}

void links_handle(struct links *l, const struct policy_set *ps, const void *buf,
		  size_t len)
{
	const char *p = buf;

	/* Not mnl_nlmsg_ok(): it casts nlmsg_len to int, so a length of
	 * 0xffffffff passes and the walk never ends. */
	while (len >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nlh = (const void *)p;
		size_t step;

		if (nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
			break;
		step = NLMSG_ALIGN(nlh->nlmsg_len);
		step = step < len ? step : len;
		p += step;
		len -= step;

		bool ours = l->dumping && nlh->nlmsg_seq == l->seq;

		switch (nlh->nlmsg_type) {
		case RTM_NEWLINK:
		case RTM_DELLINK:
			handle_link(l, ps, nlh);
			break;
		case NLMSG_DONE:
			if (ours)
				dump_ended(l, !(nlh->nlmsg_flags & NLM_F_DUMP_INTR));
			break;
		case NLMSG_ERROR:
			/* EBUSY: a dump of a previous owner is still running on
			 * this socket; ours has to wait for it to end. */
			if (ours) {
				dump_ended(l, false);
				l->redump = true;
			}
			break;
		default:
			break;
		}
	}
}

int links_request_dump(struct links *l, int fd)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++l->seq;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if (sendto(fd, nlh, nlh->nlmsg_len, MSG_DONTWAIT | MSG_NOSIGNAL,
		   (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	l->gen++;
	l->dumping = true;
	l->redump = false;
	return 0;
}

/*
 * Messages were lost (overrun or truncation): the table may be stale and a
 * running dump is incomplete, so it must not sweep. Start over.
 */
static void lost(struct links *l)
{
	l->dumping = false;
	l->redump = true;
}

int links_read(struct links *l, int fd, const struct policy_set *ps)
{
	/* Per thread: worker threads read their sessions' route sockets. */
	static _Thread_local char buf[LINKS_RXBUF] __attribute__((aligned(NLMSG_ALIGNTO)));
	int rc = 0;

	for (int i = 0; i < LINKS_READ_BUDGET; i++) {
		struct sockaddr_nl from;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
		};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno != ENOBUFS)
				return -errno;
			lost(l);
			continue;
		}
		if (n == 0)
			break;
		if (mh.msg_flags & MSG_TRUNC) {
			lost(l);
			continue;
		}
		/* Only the kernel speaks for the namespace's links; a process
		 * in there may unicast to this port id too. */
		if (mh.msg_namelen < sizeof(from) || from.nl_pid != 0)
			continue;
		links_handle(l, ps, buf, (size_t)n);
	}
	if (l->redump && !l->dumping)
		rc = links_request_dump(l, fd);
	return rc;
}

void links_remap(struct links *l, const struct policy_set *ps)
{
	for (size_t i = 0; i < l->n; i++)
		l->v[i].id = map_id(ps, l->v[i].name);
}
