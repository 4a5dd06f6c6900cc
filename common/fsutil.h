/* SPDX-License-Identifier: MIT */
/* Filesystem helpers the programs share. */
#ifndef NFQB_COMMON_FSUTIL_H
#define NFQB_COMMON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * fs_mkdir_p - mkdir -p @dir: missing parents get @parent_mode, @dir itself
 * @leaf_mode. With @exact, a directory this call creates is chmod'ed to its
 * mode so the umask cannot narrow it (a socket other uids must reach);
 * existing directories are left as they are. Returns 0 or a negative
 * errno; then @failed (may be NULL) holds the path that could not be made.
 */
int fs_mkdir_p(const char *dir, mode_t parent_mode, mode_t leaf_mode, bool exact,
	       char *failed, size_t failedlen);

/*
 * fs_mkdir_parents - fs_mkdir_p of the directory holding @path (nothing
 * for a path without a '/' or directly under "/"), every level @mode.
 */
int fs_mkdir_parents(const char *path, mode_t mode, bool exact, char *failed,
		     size_t failedlen);

/*
 * fs_read_fd - read @fd to its end into a NUL-terminated allocation *@out
 * (the caller frees it). Returns the length, -EFBIG when there are more
 * than @max bytes, or a negative errno.
 */
ssize_t fs_read_fd(int fd, size_t max, char **out);

/* fs_read_file - fs_read_fd of the file at @path. */
ssize_t fs_read_file(const char *path, size_t max, char **out);

/*
 * fs_write_replace - replace the file at @path with the @n buffers of
 * @iov: written to "@path.tmp" (created with @mode), then renamed over
 * @path, so a reader finds the old content or the new, never part of one.
 * The temporary file is removed when a step fails. Returns 0 or a
 * negative errno (-EIO: a short write; -ENAMETOOLONG: no room for
 * ".tmp").
 */
int fs_write_replace(const char *path, const struct iovec *iov, int n, mode_t mode);

#endif
