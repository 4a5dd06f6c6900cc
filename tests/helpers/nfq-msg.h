/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for lib/ without a kernel: a queue on one end of a datagram
 * socketpair, synthetic NFQNL packet messages to feed it, and the peer
 * naming that makes those messages look as if the kernel sent them.
 * No cmocka here: the fuzz targets use these too; callers check results.
 */
#ifndef NFQB_TEST_NFQ_MSG_H
#define NFQB_TEST_NFQ_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

struct nfqb_queue;

/*
 * tmsg_packet_header - start an NFQNL_MSG_PACKET at @buf (aligned, room for
 * the message the caller builds): nlmsghdr and nfgenmsg for @queue, no
 * attribute yet (a message without PACKET_HDR is malformed). Add
 * attributes with mnl_attr_put(); the message is MNL_ALIGN(nlh->nlmsg_len)
 * bytes.
 */
struct nlmsghdr *tmsg_packet_header(void *buf, uint16_t queue);

/*
 * tmsg_packet_begin - tmsg_packet_header() and a PACKET_HDR for @id with
 * @hw_protocol and @hook.
 */
struct nlmsghdr *tmsg_packet_begin(void *buf, uint16_t queue, uint32_t id,
				   uint16_t hw_protocol, uint8_t hook);

/*
 * tmsg_packet - a minimal valid IPv4 packet message at @buf for @queue/@id,
 * hook LOCAL_IN, with @payload. Returns its aligned length.
 */
size_t tmsg_packet(void *buf, uint16_t queue, uint32_t id, const void *payload,
		   size_t payload_len);

/*
 * tmsg_queue_pair - a queue (queue_new_unchecked) on one end of an AF_UNIX
 * datagram socketpair; the other end into *peer, the test's "kernel".
 * @flags adds SOCK_NONBLOCK or not. Returns NULL on failure.
 */
struct nfqb_queue *tmsg_queue_pair(int *peer, int flags);

/*
 * tmsg_name_peer - bind @fd to an address the queue takes for the kernel's
 * (@pid 0) or another process's: the queue drops records whose sender
 * address has a non-zero nl_pid. An unnamed AF_UNIX peer leaves the
 * address unwritten, so the peer gets an abstract name whose bytes that
 * overlap nl_pid are @pid, followed by our pid to keep it unique; exactly
 * as long as a sockaddr_nl, so nothing is truncated on receipt.
 * Returns 0 or -errno.
 */
int tmsg_name_peer(int fd, uint32_t pid);

/* tmsg_count_fds - the open fds of this process (leak checks). */
int tmsg_count_fds(void);

#endif
