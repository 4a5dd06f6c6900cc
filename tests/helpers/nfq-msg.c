/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include "internal.h"
#include "nfq-msg.h"

struct nlmsghdr *tmsg_packet_header(void *buf, uint16_t queue)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(queue);
	return nlh;
}

struct nlmsghdr *tmsg_packet_begin(void *buf, uint16_t queue, uint32_t id,
				   uint16_t hw_protocol, uint8_t hook)
{
	struct nfqnl_msg_packet_hdr h = {
		.packet_id = htonl(id), .hw_protocol = htons(hw_protocol), .hook = hook,
	};
	struct nlmsghdr *nlh = tmsg_packet_header(buf, queue);

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(h), &h);
	return nlh;
}

size_t tmsg_packet(void *buf, uint16_t queue, uint32_t id, const void *payload,
		   size_t payload_len)
{
	struct nlmsghdr *nlh = tmsg_packet_begin(buf, queue, id, 0x0800, NF_INET_LOCAL_IN);

	mnl_attr_put(nlh, NFQA_PAYLOAD, payload_len, payload);
	return MNL_ALIGN(nlh->nlmsg_len);
}

struct nfqb_queue *tmsg_queue_pair(int *peer, int flags)
{
	struct nfqb_queue *q;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | flags, 0, sv) < 0)
		return NULL;
	q = queue_new_unchecked(sv[0]);
	if (!q) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	*peer = sv[1];
	return q;
}

int tmsg_name_peer(int fd, uint32_t pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint32_t self = (uint32_t)getpid();

	memcpy(sa.sun_path + 2, &pid, sizeof(pid));
	memcpy(sa.sun_path + 6, &self, sizeof(self));
	_Static_assert(offsetof(struct sockaddr_un, sun_path) + 10 == sizeof(struct sockaddr_nl),
		       "peer name must fill a sockaddr_nl exactly");
	return bind(fd, (struct sockaddr *)&sa, sizeof(struct sockaddr_nl)) < 0 ? -errno : 0;
}

int tmsg_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	/* opendir's own fd was open while counting. */
	return n - 1;
}
