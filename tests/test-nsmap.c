// SPDX-License-Identifier: MIT
/*
 * nsmap: the sessions by namespace. Checked against a plain list under
 * random adds and deletes across table growth (same answers, the newest of
 * equal keys first), and the table that cannot be had (nsmap_complete()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "helpers/alloc-count.h"
#include "helpers/rng.h"
#include "nsmap.h"

#define NODES 3000

struct item {
	struct nsmap_node n;
	bool in;
	unsigned long added;     /* order of the last add */
};

static struct item items[NODES];

/* The list's answer: the item added last under the key, among those in. */
static struct item *ref_find(uint64_t dev, uint64_t ino)
{
	struct item *best = NULL;

	for (size_t i = 0; i < NODES; i++)
		if (items[i].in && items[i].n.dev == dev && items[i].n.ino == ino &&
		    (!best || items[i].added > best->added))
			best = &items[i];
	return best;
}

static void check_all(const struct nsmap *m)
{
	size_t in = 0;

	for (size_t i = 0; i < NODES; i++) {
		struct item *want = ref_find(items[i].n.dev, items[i].n.ino);

		assert_ptr_equal(nsmap_find(m, items[i].n.dev, items[i].n.ino),
				 want ? &want->n : NULL);
		in += items[i].in;
	}
	assert_int_equal(m->count, in);
	assert_null(nsmap_find(m, 7, 1u << 30));     /* a key nobody has */
}

static void test_against_list(void **state)
{
	struct nsmap m;
	unsigned long order = 0;

	(void)state;
	nsmap_init(&m);
	assert_null(nsmap_find(&m, 0, 1));
	/* inodes close together as nsfs hands them out, every 10th key
	 * twice (a namespace two sessions claim), two devices */
	for (size_t i = 0; i < NODES; i++)
		items[i] = (struct item){ .n = { .dev = i % 7 == 0 ? 5 : 4,
						 .ino = 4026531840u + (i % 10 == 9 ? i - 1 : i) } };
	for (size_t i = 0; i < NODES; i++) {
		nsmap_add(&m, &items[i].n);
		items[i].in = true;
		items[i].added = ++order;
	}
	assert_true(nsmap_complete(&m));
	assert_true(m.nslots >= NODES);               /* it grew */
	check_all(&m);
	for (int round = 0; round < 20000; round++) {
		struct item *it = &items[rng() % NODES];

		if (it->in) {
			nsmap_del(&m, &it->n);
			it->in = false;
		} else {
			nsmap_add(&m, &it->n);
			it->in = true;
			it->added = ++order;
		}
		if (round % 2000 == 0)
			check_all(&m);
	}
	check_all(&m);
	for (size_t i = 0; i < NODES; i++) {
		nsmap_del(&m, &items[i].n);
		nsmap_del(&m, &items[i].n);           /* twice: nothing */
		items[i].in = false;
	}
	assert_int_equal(m.count, 0);
	check_all(&m);
	nsmap_clear(&m);
	nsmap_clear(&m);
}

/* A node added twice is linked once (a second link would make a cycle);
 * clearing the map lets its nodes go into another one. */
static void test_twice_and_clear(void **state)
{
	struct nsmap m, m2;
	struct nsmap_node a = { .dev = 3, .ino = 30 }, b = { .dev = 3, .ino = 30 };

	(void)state;
	nsmap_init(&m);
	nsmap_add(&m, &a);
	nsmap_add(&m, &a);
	assert_int_equal(m.count, 1);
	assert_null(a.next);
	nsmap_add(&m, &b);
	assert_ptr_equal(nsmap_find(&m, 3, 30), &b);
	nsmap_del(&m, &b);
	assert_ptr_equal(nsmap_find(&m, 3, 30), &a);
	nsmap_clear(&m);
	assert_int_equal(a.state, NSMAP_OUT);
	nsmap_del(&m, &a);                            /* after the clear: nothing */
	nsmap_init(&m2);
	nsmap_add(&m2, &a);
	assert_ptr_equal(nsmap_find(&m2, 3, 30), &a);
	assert_int_equal(m2.count, 1);
	nsmap_clear(&m2);
}

/* No first table: the node is lost and the map says it is incomplete
 * until that node goes; a later growth that fails keeps the old table. */
static void test_no_memory(void **state)
{
	struct nsmap m;
	struct nsmap_node a = { .dev = 1, .ino = 10 }, b = { .dev = 1, .ino = 11 };
	static struct nsmap_node more[70];

	(void)state;
	if (!COUNT_ALLOCS)
		skip();                               /* ASan owns calloc */
	nsmap_init(&m);
	fail_callocs = 1;
	nsmap_add(&m, &a);
	assert_int_equal(fail_callocs, 0);
	assert_false(nsmap_complete(&m));
	assert_null(nsmap_find(&m, 1, 10));
	nsmap_add(&m, &b);                            /* now there is memory */
	assert_ptr_equal(nsmap_find(&m, 1, 11), &b);
	assert_false(nsmap_complete(&m));
	nsmap_del(&m, &a);
	assert_true(nsmap_complete(&m));
	assert_int_equal(m.count, 1);

	/* the table is full: its growth fails, the chains take the rest */
	for (size_t i = 0; i < 70; i++)
		more[i] = (struct nsmap_node){ .dev = 2, .ino = i };
	for (size_t i = 0; i + 1 < m.nslots; i++)
		nsmap_add(&m, &more[i]);
	fail_callocs = 1;
	nsmap_add(&m, &more[69]);
	assert_int_equal(fail_callocs, 0);
	assert_true(nsmap_complete(&m));
	assert_int_equal(m.nslots, 64);
	for (size_t i = 0; i + 1 < 64; i++)
		assert_ptr_equal(nsmap_find(&m, 2, i), &more[i]);
	assert_ptr_equal(nsmap_find(&m, 2, 69), &more[69]);
	nsmap_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_list),
		cmocka_unit_test(test_twice_and_clear),
		cmocka_unit_test(test_no_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
