/* SPDX-License-Identifier: MIT */
/*
 * Agent <-> broker wire protocol, version 1 (internal to libnfqb and the broker).
 *
 * Transport: a path AF_UNIX SOCK_SEQPACKET socket, one message per record.
 * Every message is a fixed-size struct; the receiver checks the exact size
 * for its type, the magic and the version before looking at anything else.
 *
 *   agent  -> broker  HELLO  (+ SCM_RIGHTS: fds[0] NETLINK_NETFILTER,
 *                              fds[1] NETLINK_ROUTE when nfds == 2)
 *   broker -> agent   ACCEPT or REFUSE (reason text and flags, then the broker
 *                     closes; WIRE_REFUSE_F_RETRY: a passing condition such as
 *                     the broker being out of fds, try again later);
 *                     an ACCEPT with WIRE_ACCEPT_F_SOCKETS carries, as
 *                     SCM_RIGHTS, the sockets that hold the namespace's
 *                     queues (a takeover): the agent keeps those instead of
 *                     its own, so its copies keep the queues alive if the
 *                     broker goes away
 *   agent  -> broker  BYE    (lease ends now, no grace period), then close
 *
 * After ACCEPT the open connection is the lease: EOF from the agent starts
 * the broker's grace period; EOF from the broker makes the agent reconnect.
 * All integers are in host byte order (both ends share one kernel).
 */
#ifndef NFQB_WIRE_H
#define NFQB_WIRE_H

#include <stdint.h>

#define WIRE_MAGIC   0x4251464eu  /* "NFQB" little endian */
#define WIRE_VERSION 1u
#define WIRE_NAME_MAX 320         /* bytes incl. NUL: k8s "<namespace>/<pod>" fits */
#define WIRE_REASON_MAX 256
#define WIRE_MAX_FDS 2

enum wire_type {
	WIRE_HELLO  = 1,
	WIRE_ACCEPT = 2,
	WIRE_REFUSE = 3,
	WIRE_BYE    = 4,
};

struct wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;            /* enum wire_type */
};

struct wire_hello {
	struct wire_hdr hdr;
	uint32_t pid;             /* informational; the broker uses SO_PEERCRED */
	uint16_t nfds;            /* 1 or 2, must equal the fds in SCM_RIGHTS */
	uint16_t flags;           /* reserved, 0 */
	char name[WIRE_NAME_MAX]; /* NUL-terminated, NUL-padded */
};

struct wire_accept {
	struct wire_hdr hdr;
	uint64_t netns_inode;     /* the namespace the broker found behind the fds */
	uint32_t nqueues;         /* queue numbers bound (or adopted) */
	uint32_t flags;           /* WIRE_ACCEPT_F_* */
};

#define WIRE_ACCEPT_F_SOCKETS 1u  /* fds attached: keep these, close yours */

/*
 * The flags were added within version 1 without changing the record's
 * size: they take the last 4 bytes of what was a 256-byte reason field.
 * Older brokers zero-filled that field after the reason's NUL, so a
 * reason NUL-terminated before the flags means the flags are valid (0
 * from an older broker); an older agent stops reading at that NUL and
 * sees a plain refusal. wire_refuse_flags() applies this rule.
 */
struct wire_refuse {
	struct wire_hdr hdr;
	char reason[WIRE_REASON_MAX - 4]; /* NUL-terminated one-line reason */
	uint32_t flags;               /* WIRE_REFUSE_F_* */
};

#define WIRE_REFUSE_F_RETRY 1u    /* the refusal may pass: attach again later */

struct wire_bye {
	struct wire_hdr hdr;
};

/* Largest message either side reads, for receive buffers (one byte more
 * than any valid message, so an oversized record shows up as MSG_TRUNC or
 * as a wrong size rather than fitting by accident). */
#define WIRE_MSG_MAX (sizeof(struct wire_hello) + 1)

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * wire_send - send one record with @nfds fds attached (copies; the caller
 * keeps its fds). Never blocks and never raises SIGPIPE (MSG_DONTWAIT |
 * MSG_NOSIGNAL): a peer that does not read gets -EAGAIN, not our time.
 * Returns 0 or a negative errno.
 */
int wire_send(int sock, const void *msg, size_t len, const int *fds, size_t nfds);

/*
 * wire_recv - receive one record into @buf with MSG_CMSG_CLOEXEC, collecting
 * up to WIRE_MAX_FDS fds into @fds (unused slots set to -1) and their count
 * into *nfds. Returns the record length, 0 on EOF, -EAGAIN, or -EBADMSG
 * when the record or its control data was truncated (MSG_TRUNC/MSG_CTRUNC)
 * or carried too many fds: then every fd that arrived is already closed and
 * the caller must drop the peer. -EMFILE instead of -EBADMSG when the
 * control data was cut short because this process could not take the
 * fds (fewer arrived than a valid record carries, and fewer than its
 * hello announced): the peer did nothing wrong and may try again. The
 * record itself is in @buf then. The caller owns the returned fds.
 */
ssize_t wire_recv(int sock, void *buf, size_t len, int fds[WIRE_MAX_FDS], size_t *nfds);

/*
 * wire_hello_check - validate a HELLO record of @len bytes that came with
 * @nfds fds: exact size, magic, version, type, nfds field, flags, name
 * (non-empty, NUL-terminated, printable, no spaces or quotes). Returns 0
 * or a negative errno with a one-line reason in @why.
 */
int wire_hello_check(const void *buf, size_t len, size_t nfds, char *why, size_t whylen);

/*
 * wire_fd_check - @fd is an AF_NETLINK socket of protocol @proto
 * (SO_DOMAIN/SO_PROTOCOL, checked with fstat first). 0 or -errno + reason.
 */
int wire_fd_check(int fd, int proto, char *why, size_t whylen);

/*
 * wire_fd_netns - identify the network namespace of socket @fd
 * (SIOCGSKNS, then fstat of the nsfs fd): its device and inode.
 */
int wire_fd_netns(int fd, uint64_t *dev, uint64_t *ino);

/* Record builders: fill a struct with header, version and fields. */
void wire_hello_init(struct wire_hello *m, const char *name, uint32_t pid, uint16_t nfds);
void wire_accept_init(struct wire_accept *m, uint64_t netns_inode, uint32_t nqueues);
void wire_refuse_init(struct wire_refuse *m, const char *reason);
/* wire_refuse_init with WIRE_REFUSE_F_* @flags. */
void wire_refuse_init_flags(struct wire_refuse *m, const char *reason, uint32_t flags);
void wire_bye_init(struct wire_bye *m);

/* wire_name_char_ok - whether @ch may appear in an agent's name (the
 * broker's config accepts the same set in namespaces[].name). */
bool wire_name_char_ok(unsigned char ch);

/* wire_why - write a one-line reason into @why (NULL or 0 length: nothing). */
void wire_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* wire_refuse_flags - the flags of a received REFUSE record (0 when the
 * sender predates them; see struct wire_refuse). */
uint32_t wire_refuse_flags(const struct wire_refuse *m);

/* wire_peek_type - the type of a record with a valid header and length, else -1. */
int wire_peek_type(const void *buf, size_t len);

#endif
