/* SPDX-License-Identifier: MIT */
/*
 * libnfqb agent hand-off: open the netlink sockets of a network namespace
 * and hand them to a running nfq-broker, so a CNI plugin or any launcher
 * can attach a namespace without running nfq-agent.
 */
#ifndef NFQB_AGENT_H
#define NFQB_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libnfqb builds with -fvisibility=hidden: what this header declares is
 * the exported interface (the version script then keeps it to nfqb_*). */
#pragma GCC visibility push(default)

/**
 * nfqb_agent_open_sockets - open one NETLINK_NETFILTER socket (fds[0]) and,
 * when @rtnl, one NETLINK_ROUTE socket (fds[1], else -1) inside the network
 * namespace @netns_path (NULL = the caller's). The calling thread enters
 * that namespace only while opening them and returns to its own. Returns
 * the number of sockets opened (1 or 2) or a negative errno; on failure no
 * fd is left open.
 */
int nfqb_agent_open_sockets(const char *netns_path, bool rtnl, int fds[2]);

/**
 * nfqb_agent_drop_caps - drop every capability: effective, permitted,
 * inheritable, ambient and bounding sets, and set no_new_privs. Returns 0,
 * or 1 when everything but the bounding set was dropped because the caller
 * lacks CAP_SETPCAP (e.g. a container granting NET_ADMIN alone): with
 * no_new_privs and empty permitted/inheritable/ambient sets no capability
 * can come back either way. Applies to the calling thread.
 */
int nfqb_agent_drop_caps(void);

/**
 * nfqb_agent_drop_privileges - nfqb_agent_drop_caps(), and on the way
 * become @uid/@gid for good: real, effective and saved ids, with @gid as
 * the only group (supplementary groups are cleared). Call it after the
 * sockets are open: an unprivileged uid can still hand them over and hold
 * the lease, but can no longer read root's files. Needs CAP_SETUID and
 * CAP_SETGID unless the caller already is exactly @uid/@gid. Returns like
 * nfqb_agent_drop_caps(), -EINVAL for an id of -1, or the negative errno of
 * the id change (then the capabilities may be partly dropped: exit).
 * glibc applies the id change to every thread; capabilities are dropped
 * for the calling thread only.
 */
int nfqb_agent_drop_privileges(uid_t uid, gid_t gid);

/**
 * nfqb_agent_lookup_user - resolve "USER" or "USER:GROUP" into ids for
 * nfqb_agent_drop_privileges(). USER and GROUP are names or decimal ids;
 * without GROUP, USER's group from the passwd database is taken (a bare
 * uid without a passwd entry then is an error). Returns 0, or a negative
 * errno with a one-line reason in @why: -ENOENT for an unknown user or
 * group (`unknown user "x"`), -EINVAL for a malformed @spec, -ERANGE for an
 * id out of 0-4294967294.
 */
int nfqb_agent_lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *why,
			   size_t whylen);

/**
 * nfqb_agent_attach - connect to the broker's agent socket @broker_path,
 * send the hello for @name with copies of @fds (@n is 1 or 2) and wait for
 * the answer. Returns the connected lease fd (closing it ends the lease)
 * once the broker accepted (sockets it may send back are closed: see
 * nfqb_agent_attach_swap()), or a negative errno with a reason in @why:
 * -ECONNREFUSED when the broker refused (its reason copied), -EAGAIN when
 * it refused for a passing reason (e.g. it is out of fds, or this uid has
 * too many connections waiting: its reason copied; attach again after a
 * backoff), another errno for local failures (ENOENT/ECONNREFUSED from connect appear as -ENOENT /
 * -EHOSTDOWN so that a refusal is never confused with "no broker").
 */
int nfqb_agent_attach(const char *broker_path, const char *name,
		      const int fds[], size_t n, char *why, size_t whylen);

/**
 * nfqb_agent_attach_swap - nfqb_agent_attach(), and when the broker answers
 * with the sockets that already hold this namespace's queues (it took the
 * namespace over from an agent that went away), closes the caller's @fds
 * and stores those in their place: the caller's copies then keep the queues
 * alive while no broker runs, and are what to hand over next time. A socket
 * the caller did not give (@n smaller) is closed. Returns like
 * nfqb_agent_attach().
 */
int nfqb_agent_attach_swap(const char *broker_path, const char *name,
			   int fds[], size_t n, char *why, size_t whylen);

/* Room for a refusal reason in struct nfqb_lease_event, NUL included. */
#define NFQB_LEASE_REASON_MAX 256

/* What nfqb_agent_lease_wait() saw on a lease. */
enum nfqb_lease_kind {
	NFQB_LEASE_CLOSED = 1,  /* the broker hung up (or the connection failed):
				 * close the lease and attach again */
	NFQB_LEASE_REFUSED,     /* the broker withdrew the namespace: @reason,
				 * @retry; close the lease (attach again only if
				 * @retry) */
	NFQB_LEASE_SOCKETS,     /* an ACCEPT carrying the sockets that hold the
				 * queues: they replaced the caller's (as with
				 * nfqb_agent_attach_swap()); the lease goes on */
	NFQB_LEASE_OTHER,       /* a record this library does not act on
				 * (@msg_type, @msg_len); fds it carried are
				 * closed; the lease goes on */
};

struct nfqb_lease_event {
	int kind;               /* enum nfqb_lease_kind */
	int err;                /* CLOSED: 0 for an orderly hang-up, else the
				 * negative errno of the receive */
	bool retry;             /* REFUSED: the refusal may pass */
	int msg_type;           /* OTHER: the record's type, -1 if unreadable */
	size_t msg_len;         /* OTHER: its length in bytes */
	char reason[NFQB_LEASE_REASON_MAX]; /* REFUSED: one printable line */
};

/**
 * nfqb_agent_lease_wait - wait up to @timeout_ms (-1: for ever, 0: only
 * look) for what the broker sends on a lease from nfqb_agent_attach() and
 * read one record of it into @ev: a later refusal with its reason and
 * retry flag, a hang-up, or an ACCEPT carrying sockets, which replace
 * @fds[0..n-1] (closing the caller's; n 0 closes them instead). Meant to be
 * called when poll() says @lease_fd is readable, or as the blocking wait of
 * a simple agent. Returns 1 with @ev filled, 0 when nothing arrived in
 * time, -EINTR when a signal interrupted the wait, -EINVAL for bad
 * arguments, or another negative errno from poll(). Never closes
 * @lease_fd: after CLOSED or REFUSED the caller does.
 */
int nfqb_agent_lease_wait(int lease_fd, int timeout_ms, int fds[], size_t n,
			  struct nfqb_lease_event *ev);

/**
 * nfqb_agent_detach - end a lease at once (the broker frees the namespace
 * without waiting for its grace period) and close @lease_fd.
 */
void nfqb_agent_detach(int lease_fd);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
