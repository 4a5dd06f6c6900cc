/* SPDX-License-Identifier: MIT */
/* TEMPORARY lead stub: replaced by the steercfg branch's parser. */
#include <stdlib.h>
#include <string.h>

#include "steer.h"

struct steer_list *steer_parse(json_object *v, const char *path, const uint16_t *queues,
			       size_t nqueues, struct errs *e)
{
	(void)v; (void)path; (void)queues; (void)nqueues; (void)e;
	return NULL;
}

size_t steer_check_queues(const struct steer_list *l, const char *path,
			  const uint16_t *queues, size_t nqueues, struct errs *e)
{
	(void)l; (void)path; (void)queues; (void)nqueues; (void)e;
	return 0;
}

void steer_list_free(struct steer_list *l)
{
	free(l);
}

bool steer_list_equal(const struct steer_list *a, const struct steer_list *b)
{
	return a == b;
}

const char *steer_hook_name(enum steer_hook h)
{
	static const char *n[] = { "prerouting", "input", "forward", "output", "postrouting" };
	return n[h];
}

const char *steer_family_name(enum steer_family f)
{
	static const char *n[] = { "inet", "ip", "ip6" };
	return n[f];
}
