/* SPDX-License-Identifier: MIT */
/*
 * Allocation counting for unit tests: include in exactly one file of a test
 * program. It interposes malloc/calloc/realloc/free over glibc's and counts
 * calls in n_allocs (malloc, calloc, realloc) and n_frees (free of non-NULL).
 * While fail_callocs is above 0, calloc fails (ENOMEM) and counts it down.
 * COUNT_ALLOCS is 0 under ASan, which owns malloc itself: the counters then
 * stay 0 and a test skips its count.
 */
#ifndef TESTS_ALLOC_COUNT_H
#define TESTS_ALLOC_COUNT_H

#include <errno.h>
#include <stddef.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && \
	!__has_feature(address_sanitizer)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
static volatile unsigned long n_allocs, n_frees;
static volatile long fail_callocs;

void *malloc(size_t n)
{
	n_allocs++;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	n_allocs++;
	if (fail_callocs > 0) {
		fail_callocs--;
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	n_allocs++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (p)
		n_frees++;
	__libc_free(p);
}
#else
#define COUNT_ALLOCS 0
static volatile unsigned long n_allocs, n_frees;
static volatile long fail_callocs;
#endif

#endif
