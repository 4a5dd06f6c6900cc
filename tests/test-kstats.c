/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/kstats.c: parsing /proc/net/netfilter/nfnetlink_queue. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct tmpf {
	char path[64];
};

/* A file holding @text; removed again by tmp_drop(). */
static void tmp_write(struct tmpf *t, const char *text)
{
	int fd;
	size_t len = strlen(text);

	snprintf(t->path, sizeof(t->path), "/tmp/nfqb-kstats-XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void tmp_drop(struct tmpf *t)
{
	unlink(t->path);
}

/* The kernel's format: "%5u %6u %5u %1u %5u %5u %5u %8u %2d\n". */
static const char two_lines[] =
	"    0  12345     3 2 65531     7     8       99  1\n"
	"65535 4294967295     0 1     0     0     0 4294967295  1\n";

static void test_two_lines(void **state)
{
	struct nfqb_kstat k[4];
	struct tmpf t;

	memset(k, 0xee, sizeof(k));
	tmp_write(&t, two_lines);
	assert_int_equal(nfqb_kstats_read(t.path, k, 4), 2);
	tmp_drop(&t);
	assert_int_equal(k[0].queue, 0);
	assert_int_equal(k[0].portid, 12345);
	assert_int_equal(k[0].queued, 3);
	assert_int_equal(k[0].copy_mode, NFQB_COPY_PACKET);
	assert_int_equal(k[0].copy_range, 65531);
	assert_int_equal(k[0].dropped_full, 7);
	assert_int_equal(k[0].dropped_netlink, 8);
	assert_int_equal(k[0].id_seq, 99);
	assert_int_equal(k[1].queue, 65535);
	assert_int_equal(k[1].portid, UINT32_MAX);
	assert_int_equal(k[1].copy_mode, NFQB_COPY_META);
	assert_int_equal(k[1].id_seq, UINT32_MAX);
	/* Nothing written past the lines the file had. */
	assert_int_equal(k[2].queue, 0xeeeeeeee);
	(void)state;
}

static void test_eight_columns(void **state)
{
	struct nfqb_kstat k[2];
	struct tmpf t;

	tmp_write(&t, "   42   777     1 2  1500     0     5       10\n");
	assert_int_equal(nfqb_kstats_read(t.path, k, 2), 1);
	tmp_drop(&t);
	assert_int_equal(k[0].queue, 42);
	assert_int_equal(k[0].portid, 777);
	assert_int_equal(k[0].copy_range, 1500);
	assert_int_equal(k[0].dropped_netlink, 5);
	assert_int_equal(k[0].id_seq, 10);
	(void)state;
}

static void test_empty_file(void **state)
{
	struct nfqb_kstat k[1];
	struct tmpf t;

	tmp_write(&t, "");
	assert_int_equal(nfqb_kstats_read(t.path, k, 1), 0);
	tmp_drop(&t);
	(void)state;
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"    1     2     3 2 65531     0     0\n",                /* 7 columns */
		"    1  12345     3 2 65531 seven     0       99  1\n",
		"garbage\n",
		"\n",
		"    0  12345     3 2 65531     7     8       99  1\nnot a line\n",
	};
	struct nfqb_kstat k[4];
	struct tmpf t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tmp_write(&t, bad[i]);
		if (nfqb_kstats_read(t.path, k, 4) != -EBADMSG)
			fail_msg("case %zu was not refused", i);
		tmp_drop(&t);
	}
	(void)state;
}

static void test_more_lines_than_max(void **state)
{
	struct nfqb_kstat k[3];
	struct tmpf t;

	memset(k, 0xee, sizeof(k));
	tmp_write(&t, "1 10 0 2 100 0 0 5 1\n2 20 0 2 100 0 0 6 1\n3 30 0 2 100 0 0 7 1\n");
	assert_int_equal(nfqb_kstats_read(t.path, k, 2), 3);
	assert_int_equal(k[0].queue, 1);
	assert_int_equal(k[1].queue, 2);
	assert_int_equal(k[1].id_seq, 6);
	assert_int_equal(k[2].queue, 0xeeeeeeee);
	/* Counting only. */
	assert_int_equal(nfqb_kstats_read(t.path, NULL, 0), 3);
	tmp_drop(&t);
	(void)state;
}

static void test_missing_custom_path(void **state)
{
	struct nfqb_kstat k[1];

	assert_int_equal(nfqb_kstats_read("/nonexistent/nfqb/nfnetlink_queue", k, 1), -ENOENT);
	(void)state;
}

static void on_packet(struct nfqb_packet *p, void *user)
{
	nfqb_packet_accept(p);
	(void)user;
}

static void test_default_path(void **state)
{
	const struct nfqb_queue_opts o = { 64, NFQB_COPY_PACKET, 321, 0, NFQB_F_GSO };
	struct nfqb_queue *q;
	struct nfqb_kstat k[256];
	uint16_t num = (uint16_t)(49000 + getpid() % 1000);
	int n, found = -1;

	assert_true(nfqb_kstats_read(NULL, k, 256) >= 0);
	q = nfqb_queue_open();
	assert_non_null(q);
	assert_int_equal(nfqb_queue_bind(q, num, on_packet, NULL, &o), 0);
	n = nfqb_kstats_read(NULL, k, 256);
	assert_true(n >= 1 && n <= 256);
	for (int i = 0; i < n; i++)
		if (k[i].queue == num)
			found = i;
	assert_true(found >= 0);
	assert_int_equal(k[found].portid, nfqb_queue_portid(q));
	assert_int_equal(k[found].copy_mode, NFQB_COPY_PACKET);
	assert_int_equal(k[found].copy_range, 321);
	assert_int_equal(k[found].queued, 0);
	nfqb_queue_close(q);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_lines),
		cmocka_unit_test(test_eight_columns),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_more_lines_than_max),
		cmocka_unit_test(test_missing_custom_path),
		cmocka_unit_test(test_default_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
