/* SPDX-License-Identifier: MIT */
/* Unit tests for broker/links.c: the ifindex -> name/id table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "links.h"

/* A policy set whose rules mention eth0 and veth1 (ids 0 and 1 in some order). */
static struct policy_set *make_set(const char *json)
{
	struct errs e = { 0 };
	json_object *o = json_tokener_parse(json);
	struct policy_set *s;

	assert_non_null(o);
	s = policy_set_parse(o, &e);
	json_object_put(o);
	assert_int_equal(e.n, 0);
	assert_non_null(s);
	errs_reset(&e);
	return s;
}

static const char set_a[] =
	"{\"p\": {\"default\": \"accept\", \"rules\": ["
	"{\"name\": \"r1\", \"match\": {\"indev\": \"eth0\"}, \"verdict\": \"drop\"},"
	"{\"name\": \"r2\", \"match\": {\"outdev\": \"veth1\"}, \"verdict\": \"drop\"}]}}";
static const char set_b[] =
	"{\"p\": {\"default\": \"accept\", \"rules\": ["
	"{\"name\": \"r1\", \"match\": {\"indev\": \"wg0\"}, \"verdict\": \"drop\"}]}}";

/* Append one RTM_NEWLINK/RTM_DELLINK to @buf at *off. */
static void put_link(char *buf, size_t *off, uint16_t type, uint32_t seq, int ifindex,
		     const char *name)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags = NLM_F_MULTI;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = ifindex;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	*off += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void put_done(char *buf, size_t *off, uint32_t seq, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);

	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags = NLM_F_MULTI | flags;
	mnl_nlmsg_put_extra_header(nlh, sizeof(int));
	*off += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void test_notifications(void **state)
{
	struct policy_set *ps = make_set(set_a), *ps2 = make_set(set_b);
	struct links *l = links_new();
	char buf[8192] __attribute__((aligned(4))) = { 0 };
	size_t off = 0;
	int32_t eth0 = policy_ifname_id(ps, "eth0"), veth1 = policy_ifname_id(ps, "veth1");

	assert_non_null(l);
	assert_true(eth0 >= 0 && veth1 >= 0 && eth0 != veth1);
	assert_int_equal(links_id(l, 1), -1);
	assert_null(links_name(l, 1));

	put_link(buf, &off, RTM_NEWLINK, 0, 7, "veth1");
	put_link(buf, &off, RTM_NEWLINK, 0, 1, "lo");
	put_link(buf, &off, RTM_NEWLINK, 0, 3, "eth0");
	put_link(buf, &off, RTM_NEWLINK, 0, 9, NULL);   /* no name: ignored */
	links_handle(l, ps, buf, off);
	assert_int_equal(links_count(l), 3);
	assert_string_equal(links_name(l, 1), "lo");
	assert_int_equal(links_id(l, 1), -1);         /* no rule names lo */
	assert_int_equal(links_id(l, 3), eth0);
	assert_int_equal(links_id(l, 7), veth1);
	assert_int_equal(links_id(l, 0), -1);
	assert_int_equal(links_id(l, 9), -1);

	/* rename and delete */
	off = 0;
	put_link(buf, &off, RTM_NEWLINK, 0, 3, "wg0");
	put_link(buf, &off, RTM_DELLINK, 0, 7, "veth1");
	put_link(buf, &off, RTM_DELLINK, 0, 42, "nope");
	links_handle(l, ps, buf, off);
	assert_int_equal(links_count(l), 2);
	assert_string_equal(links_name(l, 3), "wg0");
	assert_int_equal(links_id(l, 3), -1);
	assert_null(links_name(l, 7));

	/* a reload maps names to the new set's ids */
	links_remap(l, ps2);
	assert_int_equal(links_id(l, 3), policy_ifname_id(ps2, "wg0"));
	assert_true(links_id(l, 3) >= 0);

	/* garbage never crashes nor changes anything */
	memset(buf, 0xff, 64);
	links_handle(l, ps2, buf, 64);
	links_handle(l, ps2, buf, 3);
	assert_int_equal(links_count(l), 2);

	links_free(l);
	links_free(NULL);
	policy_set_free(ps);
	policy_set_free(ps2);
}

static void test_many_links(void **state)
{
	struct links *l = links_new();
	char buf[256] __attribute__((aligned(4)));
	char name[IF_NAMESIZE];

	for (int i = 500; i >= 1; i--) {
		size_t off = 0;

		snprintf(name, sizeof(name), "if%d", i);
		put_link(buf, &off, RTM_NEWLINK, 0, i * 3, name);
		links_handle(l, NULL, buf, off);
	}
	assert_int_equal(links_count(l), 500);
	for (int i = 1; i <= 500; i++) {
		snprintf(name, sizeof(name), "if%d", i);
		assert_string_equal(links_name(l, (uint32_t)i * 3), name);
		assert_null(links_name(l, (uint32_t)i * 3 + 1));
	}
	links_free(l);
}

/* The real kernel: a dump of this namespace lists lo as ifindex 1. */
static void test_kernel_dump(void **state)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	struct links *l = links_new();
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(links_request_dump(l, fd), 0);
	for (int i = 0; i < 50 && !links_name(l, 1); i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_true(poll(&p, 1, 100) >= 0);
		assert_int_equal(links_read(l, fd, NULL), 0);
	}
	assert_non_null(links_name(l, 1));
	assert_string_equal(links_name(l, 1), "lo");
	close(fd);
	links_free(l);
}

/* A dump that completes removes links it did not list (lost DELLINKs). */
static void test_dump_sweeps(void **state)
{
	struct links *l = links_new();
	char buf[4096] __attribute__((aligned(4))) = { 0 };
	int fds[1];
	size_t off = 0;
	uint32_t seq;
	struct nlmsghdr req;

	put_link(buf, &off, RTM_NEWLINK, 0, 5, "old0");
	links_handle(l, NULL, buf, off);

	/* request on a real socket, then answer ourselves with chosen messages */
	fds[0] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	assert_true(fds[0] >= 0);
	assert_int_equal(links_request_dump(l, fds[0]), 0);
	/* find our sequence number from the kernel's reply */
	assert_true(recv(fds[0], buf, sizeof(buf), 0) > 0);
	memcpy(&req, buf, sizeof(req));
	seq = req.nlmsg_seq;
	close(fds[0]);

	off = 0;
	put_link(buf, &off, RTM_NEWLINK, seq, 1, "lo");
	put_done(buf, &off, seq + 1, 0);             /* someone else's DONE: no sweep */
	links_handle(l, NULL, buf, off);
	assert_string_equal(links_name(l, 5), "old0");
	off = 0;
	put_done(buf, &off, seq, NLM_F_DUMP_INTR);  /* interrupted: no sweep */
	links_handle(l, NULL, buf, off);
	assert_string_equal(links_name(l, 5), "old0");
	links_free(l);

	/* a complete dump does sweep */
	l = links_new();
	off = 0;
	put_link(buf, &off, RTM_NEWLINK, 0, 5, "old0");
	links_handle(l, NULL, buf, off);
	fds[0] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	assert_int_equal(links_request_dump(l, fds[0]), 0);
	assert_true(recv(fds[0], buf, sizeof(buf), 0) > 0);
	memcpy(&req, buf, sizeof(req));
	seq = req.nlmsg_seq;
	close(fds[0]);
	off = 0;
	put_link(buf, &off, RTM_NEWLINK, seq, 1, "lo");
	put_done(buf, &off, seq, 0);
	links_handle(l, NULL, buf, off);
	assert_null(links_name(l, 5));
	assert_string_equal(links_name(l, 1), "lo");
	links_free(l);
}

/* A process in the namespace unicasts a forged link to the socket, and
 * (sharing the socket) connect()s it: the forgery is skipped, and the dump
 * request goes to the kernel, not to the connected peer. */
static void test_hostile_peer(void **state)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK }, pa = { .nl_family = AF_NETLINK };
	struct links *l = links_new();
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int peer = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	socklen_t len = sizeof(sa);
	_Alignas(4) char buf[512] = { 0 };
	size_t off = 0;

	assert_true(fd >= 0 && peer >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	len = sizeof(pa);
	assert_int_equal(bind(peer, (struct sockaddr *)&pa, sizeof(pa)), 0);
	assert_int_equal(getsockname(peer, (struct sockaddr *)&pa, &len), 0);
	put_link(buf, &off, RTM_NEWLINK, 0, 1, "evil0");
	if (sendto(peer, buf, off, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		close(peer);
		links_free(l);
		skip();                         /* needs CAP_NET_ADMIN */
	}
	assert_int_equal(links_read(l, fd, NULL), 0);
	assert_null(links_name(l, 1));

	assert_int_equal(connect(fd, (struct sockaddr *)&pa, sizeof(pa)), 0);
	assert_int_equal(links_request_dump(l, fd), 0);
	assert_true(recv(peer, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN);
	close(peer);
	close(fd);
	links_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notifications),
		cmocka_unit_test(test_many_links),
		cmocka_unit_test(test_kernel_dump),
		cmocka_unit_test(test_dump_sweeps),
		cmocka_unit_test(test_hostile_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
