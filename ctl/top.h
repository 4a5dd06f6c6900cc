/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl top's data: samples of the per-namespace and per-rule counters,
 * their rates between two samples, sorting and the frame's tables, apart
 * from the terminal handling so tests/test-top.c can check them.
 */
#ifndef CTL_TOP_H
#define CTL_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

enum { TOP_PACKETS, TOP_BYTES, TOP_DROPS, TOP_ERRORS, TOP_KDROPS, TOP_QUEUED, TOP_NCOUNTERS };

struct top_row {
	char *name;                   /* namespace, or "policy/rule" */
	uint64_t v[TOP_NCOUNTERS];    /* counters as the broker sent them */
	double rate[TOP_NCOUNTERS];   /* per second since the previous sample */
	bool has_rate;                /* false in a first sample or for a new row */
};

struct top_sample {
	long long at_ms;              /* CLOCK_MONOTONIC */
	struct top_row *ns, *rules;
	size_t nns, nrules;
};

enum top_sort { TOP_SORT_PACKETS, TOP_SORT_BYTES, TOP_SORT_DROPS, TOP_SORT_NAME };

/* top_sample_parse - rows of @s from an agents and a rules reply. 0 or -ENOMEM. */
int top_sample_parse(struct top_sample *s, json_object *agents, json_object *rules);

/* top_rates - @cur's rates against @prev (same names), over their time apart. */
void top_rates(struct top_sample *cur, const struct top_sample *prev);

/* top_sort - both lists by @key: rates descending (name to break ties), or names. */
void top_sort(struct top_sample *s, enum top_sort key);

/* top_sort_name - "packets/s", "bytes/s", "drops/s", "name". */
const char *top_sort_name(enum top_sort key);

/*
 * top_render - the namespaces' and the rules' tables on @f, both within
 * @maxrows lines (0: every row). Returns 0 or -ENOMEM.
 */
int top_render(FILE *f, const struct top_sample *s, size_t maxrows);

/* top_sample_free - release @s's rows; @s is then empty. */
void top_sample_free(struct top_sample *s);

#endif
