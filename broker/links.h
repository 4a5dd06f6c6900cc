/* SPDX-License-Identifier: MIT */
/*
 * Interface table of one attached namespace: ifindex -> name, and the name's
 * interned id in the current policy set (policy_ifname_id), so the verdict
 * step matches indev/outdev by comparing integers. Filled from an
 * RTM_GETLINK dump on the namespace's own NETLINK_ROUTE socket and kept
 * current from its RTMGRP_LINK notifications. The table changes only on
 * link events, never per packet.
 */
#ifndef BROKER_LINKS_H
#define BROKER_LINKS_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct links;

/* links_new - an empty table; NULL with errno on failure. */
struct links *links_new(void);
/* links_free - NULL is a no-op. The socket is not the table's. */
void links_free(struct links *l);

/*
 * links_request_dump - ask the kernel on NETLINK_ROUTE socket @fd for every
 * link. The replies are read by links_read(). Links that the finished dump
 * does not list are dropped (they vanished while notifications were lost).
 */
int links_request_dump(struct links *l, int fd);

/*
 * links_read - read everything waiting on @fd (non-blocking) and apply it,
 * mapping names through @ps. A receive overrun (ENOBUFS) or a truncated
 * message starts a new dump. Returns 0, or a negative errno when the socket
 * is unusable (the caller drops it; packets then match no indev/outdev).
 */
int links_read(struct links *l, int fd, const struct policy_set *ps);

/*
 * links_handle - apply the netlink messages in @buf (RTM_NEWLINK,
 * RTM_DELLINK, NLMSG_DONE, NLMSG_ERROR); for tests and links_read().
 */
void links_handle(struct links *l, const struct policy_set *ps, const void *buf,
		  size_t len);

/* links_remap - recompute every id for a new policy set (after a reload). */
void links_remap(struct links *l, const struct policy_set *ps);

/* links_id - the interned id of interface @ifindex; -1 when unknown or unused. */
int32_t links_id(const struct links *l, uint32_t ifindex);
/* links_name - the name of @ifindex, or NULL when unknown. */
const char *links_name(const struct links *l, uint32_t ifindex);
/* links_count - number of interfaces known. */
size_t links_count(const struct links *l);

#endif
