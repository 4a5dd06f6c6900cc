/* SPDX-License-Identifier: MIT */
/* Filesystem helpers the programs share. */
#ifndef NFQB_COMMON_FSUTIL_H
#define NFQB_COMMON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

#endif
