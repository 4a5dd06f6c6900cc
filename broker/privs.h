/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for nfq-broker: once its sockets are bound, keep only the
 * capabilities its features use (docs/broker.md, "Privileges"), empty the
 * bounding and ambient sets, set no_new_privs, and optionally become a
 * dedicated user while keeping those capabilities.
 */
#ifndef BROKER_PRIVS_H
#define BROKER_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* A set of capabilities: bit N is capability N. */
#define PRIVS_BIT(cap) ((uint64_t)1 << (cap))

/* Whom to become: broker.user or --user, resolved. */
struct privs_user {
	bool set;
	uid_t uid;
	gid_t gid;
};

/* What privs_drop() did. */
struct privs_result {
	uint64_t kept;           /* permitted = effective now */
	uint64_t missing;        /* wanted but not permitted at start */
	bool bounding_cleared;   /* false without CAP_SETPCAP: bounding set kept */
};

/*
 * privs_needed - the capabilities the broker keeps for configuration @c:
 * CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH always,
 * CAP_SYS_PTRACE when a namespaces[].netns pin is under /proc/.
 */
uint64_t privs_needed(const struct cfg *c);

/* privs_feature - what in the broker needs @cap, or NULL for none. */
const char *privs_feature(int cap);

/* privs_without - what stops working without @cap, or NULL for none. */
const char *privs_without(int cap);

/* privs_text - "cap_net_admin,cap_sys_admin" ("none" for 0) into @buf. */
const char *privs_text(uint64_t caps, char *buf, size_t len);

/*
 * privs_parse_user - resolve "USER[:GROUP]" (names or decimal ids) into
 * @u. Returns 0, or a negative errno with the reason in @why.
 */
int privs_parse_user(const char *spec, struct privs_user *u, char *why, size_t whylen);

/* privs_parse_group - a group name or decimal gid. Like privs_parse_user. */
int privs_parse_group(const char *spec, gid_t *gid, char *why, size_t whylen);

/*
 * privs_drop - keep exactly @want (as far as it is permitted now) in the
 * permitted and effective sets, empty the inheritable and ambient sets,
 * drop every other capability from the bounding set (needs CAP_SETPCAP)
 * and set no_new_privs; with @user set, become that user (only its group,
 * no supplementary ones) on the way, keeping @want. Returns 0 with @res
 * filled, or a negative errno with the reason in @why: the process is then
 * in an unknown state and must exit.
 */
int privs_drop(uint64_t want, const struct privs_user *user, struct privs_result *res,
	       char *why, size_t whylen);

#endif
