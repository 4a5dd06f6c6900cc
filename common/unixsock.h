/* SPDX-License-Identifier: MIT */
/*
 * Unix stream/seqpacket listening sockets at a filesystem path, shared by
 * the broker's agent listener and its control socket.
 */
#ifndef COMMON_UNIXSOCK_H
#define COMMON_UNIXSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * unixsock_prepare_path - mkdir -p the parent of @path (mode 0755) and deal
 * with an existing file there: a stale socket (nobody answers) is removed,
 * a live one is -EADDRINUSE, anything else -EEXIST. Returns 1 when a stale
 * socket was removed, 0 when the path was free, or a negative errno with a
 * one-line reason in @why.
 */
int unixsock_prepare_path(const char *path, char *why, size_t whylen);

/*
 * unixsock_bind_path - a listening unix socket of @type (SOCK_SEQPACKET,
 * SOCK_STREAM) at @path with @mode, never reachable with wider permissions,
 * after unixsock_prepare_path() (*@stale, when not NULL, says whether it
 * removed a stale socket). Returns the non-blocking fd and the file's
 * identity in @dev/@ino, or a negative errno with a reason in @why.
 */
int unixsock_bind_path(const char *path, int type, mode_t mode, int backlog,
		       dev_t *dev, ino_t *ino, bool *stale, char *why, size_t whylen);

/*
 * unixsock_inherit - from now on unixsock_bind_path(@path) returns @fd, a
 * listening socket the service manager bound (socket activation), instead
 * of binding one: made non-blocking and close-on-exec, handed over to that
 * caller, with a zero identity so unixsock_unlink_ours() never removes the
 * file (it is not ours). 0, -ENOSPC when UNIXSOCK_INHERIT_MAX are held,
 * -ENAMETOOLONG, or the errno of fcntl.
 */
int unixsock_inherit(const char *path, int fd);
#define UNIXSOCK_INHERIT_MAX 4

/* unixsock_inherit_close - close the inherited sockets no bind claimed;
 * returns how many there were. */
size_t unixsock_inherit_close(void);

/* unixsock_unlink_ours - remove @path only while it is still the socket file
 * we created (@dev/@ino), never a successor's. */
void unixsock_unlink_ours(const char *path, dev_t dev, ino_t ino);

#endif
