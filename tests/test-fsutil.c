/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/fsutil.c in a fresh directory under /tmp: modes of
 * the levels made, existing levels left alone, the failing path named,
 * and reads bounded by their limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "fsutil.h"

static char root[64];

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/test-fsutil.XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static mode_t mode_of(const char *fmt, const char *a)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), fmt, root, a);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	return st.st_mode & 07777;
}

static void test_mkdir_p_modes(void **state)
{
	char p[PATH_MAX];
	mode_t old = umask(077);

	snprintf(p, sizeof(p), "%s/a/b/c/", root);
	assert_int_equal(fs_mkdir_p(p, 0755, 0700, true, NULL, 0), 0);
	assert_int_equal(mode_of("%s/%s", "a"), 0755);
	assert_int_equal(mode_of("%s/%s", "a/b"), 0755);
	assert_int_equal(mode_of("%s/%s", "a/b/c"), 0700);
	/* again: every level exists, nothing changes */
	assert_int_equal(fs_mkdir_p(p, 0711, 0711, true, NULL, 0), 0);
	assert_int_equal(mode_of("%s/%s", "a/b/c"), 0700);
	/* without exact the umask applies */
	snprintf(p, sizeof(p), "%s/u/v", root);
	assert_int_equal(fs_mkdir_p(p, 0755, 0755, false, NULL, 0), 0);
	assert_int_equal(mode_of("%s/%s", "u"), 0700);
	umask(old);
}

static void test_mkdir_p_errors(void **state)
{
	char p[PATH_MAX], f[PATH_MAX], want[PATH_MAX], big[PATH_MAX + 8];
	int fd;

	snprintf(p, sizeof(p), "%s/file", root);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(want, sizeof(want), "%s/file/x", root);
	snprintf(p, sizeof(p), "%s/file/x/y", root);
	assert_int_equal(fs_mkdir_p(p, 0755, 0755, false, f, sizeof(f)), -ENOTDIR);
	assert_string_equal(f, want);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(fs_mkdir_p(big, 0755, 0755, false, NULL, 0), -ENAMETOOLONG);
	assert_int_equal(fs_mkdir_p("", 0755, 0755, false, NULL, 0), -ENOENT);
}

static void test_mkdir_parents(void **state)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/s/t/agent.sock", root);
	assert_int_equal(fs_mkdir_parents(p, 0755, true, NULL, 0), 0);
	assert_int_equal(mode_of("%s/%s", "s/t"), 0755);
	snprintf(p, sizeof(p), "%s/s/t/agent.sock", root);
	assert_int_equal(access(p, F_OK), -1);   /* the leaf is not made */
	assert_int_equal(fs_mkdir_parents("agent.sock", 0755, true, NULL, 0), 0);
	assert_int_equal(fs_mkdir_parents("/agent.sock", 0755, true, NULL, 0), 0);
}

static void test_read_file(void **state)
{
	char p[PATH_MAX], *buf = NULL;
	char data[10000];
	int fd;

	memset(data, 'z', sizeof(data));
	snprintf(p, sizeof(p), "%s/data", root);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	close(fd);
	assert_int_equal(fs_read_file(p, sizeof(data), &buf), sizeof(data));
	assert_int_equal(strlen(buf), sizeof(data));
	free(buf);
	buf = NULL;
	assert_int_equal(fs_read_file(p, sizeof(data) - 1, &buf), -EFBIG);
	assert_null(buf);
	snprintf(p, sizeof(p), "%s/none", root);
	assert_int_equal(fs_read_file(p, 10, &buf), -ENOENT);
	assert_null(buf);
}

/* The new content replaces the old whole, at the mode asked, and no
 * temporary file stays behind, on success or failure. */
static void test_write_replace(void **state)
{
	char p[PATH_MAX], tmp[PATH_MAX + 8], *buf = NULL, lng[PATH_MAX];
	struct iovec iov[2] = { { .iov_base = "state=attached\n", .iov_len = 15 },
				{ .iov_base = "reason=\n", .iov_len = 8 } };
	struct stat st;
	mode_t old = umask(022);

	snprintf(p, sizeof(p), "%s/status", root);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	assert_int_equal(fs_write_replace(p, iov, 2, 0640), 0);
	umask(old);
	assert_int_equal(fs_read_file(p, 100, &buf), 23);
	assert_string_equal(buf, "state=attached\nreason=\n");
	free(buf);
	buf = NULL;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(access(tmp, F_OK), -1);
	/* shorter content: nothing of the old is left */
	assert_int_equal(fs_write_replace(p, &iov[1], 1, 0640), 0);
	assert_int_equal(fs_read_file(p, 100, &buf), 8);
	assert_string_equal(buf, "reason=\n");
	free(buf);
	buf = NULL;
	/* no directory for it: the error, and the old file untouched */
	snprintf(p, sizeof(p), "%s/none/status", root);
	assert_int_equal(fs_write_replace(p, iov, 2, 0640), -ENOENT);
	/* a rename onto a directory fails: the temporary file goes too */
	snprintf(p, sizeof(p), "%s/isdir", root);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(fs_write_replace(p, iov, 2, 0640), -EISDIR);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(rmdir(p), 0);
	/* a path that fits, with no room for ".tmp" */
	memset(lng, 'a', sizeof(lng) - 3);
	lng[sizeof(lng) - 3] = '\0';
	assert_int_equal(fs_write_replace(lng, iov, 1, 0640), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdir_p_modes),
		cmocka_unit_test(test_mkdir_p_errors),
		cmocka_unit_test(test_mkdir_parents),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_write_replace),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
