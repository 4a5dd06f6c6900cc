/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

static int make_one(const char *dir, mode_t mode, bool exact, char *failed, size_t failedlen)
{
	int rc = mkdir(dir, mode);

	if (rc == 0 && exact)
		rc = chmod(dir, mode);
	if (rc < 0 && errno != EEXIST) {
		int err = errno;

		if (failed && failedlen)
			snprintf(failed, failedlen, "%s", dir);
		return -err;
	}
	return 0;
}

int fs_mkdir_p(const char *dir, mode_t parent_mode, mode_t leaf_mode, bool exact,
	       char *failed, size_t failedlen)
{
	char buf[PATH_MAX];
	size_t n;
	int rc;

	n = (size_t)snprintf(buf, sizeof(buf), "%s", dir);
	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	if (n == 0)
		return -ENOENT;
	/* "a/b/" names a/b: a trailing slash is not one more level. */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		rc = make_one(buf, parent_mode, exact, failed, failedlen);
		*p = '/';
		if (rc < 0)
			return rc;
	}
	return make_one(buf, leaf_mode, exact, failed, failedlen);
}

int fs_mkdir_parents(const char *path, mode_t mode, bool exact, char *failed,
		     size_t failedlen)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return fs_mkdir_p(dir, mode, mode, exact, failed, failedlen);
}

ssize_t fs_read_fd(int fd, size_t max, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			char *nb;

			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			free(buf);
			return n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

ssize_t fs_read_file(const char *path, size_t max, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = fs_read_fd(fd, max, out);
	close(fd);
	return n;
}

int fs_write_replace(const char *path, const struct iovec *iov, int n, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t want = 0;
	ssize_t done;
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (int i = 0; i < n; i++)
		want += iov[i].iov_len;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	done = writev(fd, iov, n);
	if (done < 0)
		ret = -errno;
	else if ((size_t)done != want)
		ret = -EIO;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}
