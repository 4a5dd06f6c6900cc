/* SPDX-License-Identifier: MIT */
/*
 * A listening unix socket at a path is set up the same way for agents and
 * for the control socket: parents created world-searchable, a stale socket
 * of a dead process replaced, a live one never, the mode applied from the
 * bind on, and only our own file removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fsutil.h"
#include "unixsock.h"

/* Sockets passed by the service manager, by path; fd -1 once claimed. */
static struct inherited {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
} inherited[UNIXSOCK_INHERIT_MAX];
static size_t ninherited;

int unixsock_inherit(const char *path, int fd)
{
	struct inherited *in = NULL;
	int fl;

	/* A claimed slot is free again. */
	for (size_t i = 0; i < ninherited && !in; i++)
		if (inherited[i].fd < 0)
			in = &inherited[i];
	if (!in && ninherited == UNIXSOCK_INHERIT_MAX)
		return -ENOSPC;
	if (!in)
		in = &inherited[ninherited];
	if (strlen(path) >= sizeof(in->path))
		return -ENAMETOOLONG;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	snprintf(in->path, sizeof(in->path), "%s", path);
	in->fd = fd;
	if (in == &inherited[ninherited])
		ninherited++;
	return 0;
}

size_t unixsock_inherit_close(void)
{
	size_t n = 0;

	for (size_t i = 0; i < ninherited; i++)
		if (inherited[i].fd >= 0) {
			close(inherited[i].fd);
			inherited[i].fd = -1;
			n++;
		}
	ninherited = 0;
	return n;
}

/* The inherited socket for @path, handed over; -1 when there is none. */
static int inherit_claim(const char *path)
{
	for (size_t i = 0; i < ninherited; i++)
		if (inherited[i].fd >= 0 && strcmp(inherited[i].path, path) == 0) {
			int fd = inherited[i].fd;

			inherited[i].fd = -1;
			return fd;
		}
	return -1;
}

/* Agents of other uids must reach the socket whatever our umask. */
static int mkdir_parents(const char *path, char *why, size_t whylen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int rc = fs_mkdir_parents(path, 0755, true, dir, sizeof(dir));

	if (rc < 0)
		snprintf(why, whylen, "cannot create directory %s: %s", dir, strerror(-rc));
	return rc;
}

/* Whether a server answers at @path: 1 yes, 0 stale, negative errno. */
static int socket_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS || errno == EPROTOTYPE)
		rc = 1;   /* a full backlog or another socket type is alive too */
	else
		rc = errno == ECONNREFUSED ? 0 : -errno;
	close(fd);
	return rc;
}

int unixsock_prepare_path(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int rc;

	rc = mkdir_parents(path, why, whylen);
	if (rc < 0)
		return rc;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(why, whylen, "cannot use %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	rc = socket_live(path);
	if (rc > 0) {
		snprintf(why, whylen, "another process (a running broker?) listens on %s", path);
		return -EADDRINUSE;
	}
	if (rc < 0) {
		snprintf(why, whylen, "cannot probe %s: %s", path, strerror(-rc));
		return rc;
	}
	/* Left behind by a broker that died: nobody will ever answer there. */
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(why, whylen, "cannot remove stale socket %s: %s", path, strerror(-rc));
		return rc;
	}
	return 1;
}

int unixsock_bind_path(const char *path, int type, mode_t mode, int backlog,
		       dev_t *dev, ino_t *ino, bool *stale, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, rc;

	if (!path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	/* Its mode and owner are the service manager's (SocketMode=); the
	 * file outlives us, so it has no identity to unlink by. */
	fd = inherit_claim(path);
	if (fd >= 0) {
		int t = 0;
		socklen_t tl = sizeof(t);

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tl) < 0 || t != type) {
			snprintf(why, whylen, "the socket passed for %s is not a %s socket", path,
				 type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "SOCK_STREAM");
			close(fd);
			return -EPROTOTYPE;
		}
		if (stale)
			*stale = false;
		*dev = 0;
		*ino = 0;
		return fd;
	}
	rc = unixsock_prepare_path(path, why, whylen);
	if (rc < 0)
		return rc;
	if (stale)
		*stale = rc > 0;
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "socket: %s", strerror(-rc));
		return rc;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* Never reachable with wider permissions than asked, not even briefly. */
	old = umask(0777 & ~mode);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot bind %s: %s", path, strerror(-rc));
		goto fail;
	}
	if (chmod(path, mode) < 0 || stat(path, &st) < 0 || listen(fd, backlog) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot set up %s: %s", path, strerror(-rc));
		unlink(path);
		goto fail;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
fail:
	close(fd);
	return rc;
}

void unixsock_unlink_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (ino && stat(path, &st) == 0 && st.st_ino == ino && st.st_dev == dev)
		unlink(path);
}
