/* SPDX-License-Identifier: MIT */
/*
 * A session as the broker would hold it, without an agent or a kernel
 * queue behind it (the nfqb_queue wraps one end of a socketpair), linked
 * into @m's list. For tests of the modules that read sessions (control,
 * metrics). session_mgr_free() frees it like any other.
 */
#ifndef TESTS_FAKE_SESSION_H
#define TESTS_FAKE_SESSION_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "session-private.h"

static inline struct session *fake_session_queues(struct session_mgr *m, const char *name,
						  const char *policy, uint64_t ino,
						  const uint16_t *queues, size_t n)
{
	struct session *s = calloc(1, sizeof(*s));
	int sv[2];

	assert_non_null(s);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	s->q = queue_new_unchecked(sv[0]);
	assert_non_null(s->q);
	s->mgr = m;
	s->lease_fd = -1;
	s->rtnl_fd = -1;
	s->steer.fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->netns_ino = ino;
	s->agent_pid = 4242;
	s->policy = policy_set_find(m->cfg->policies, policy);
	assert_non_null(s->policy);
	s->queues = calloc(n, sizeof(*s->queues));
	assert_non_null(s->queues);
	for (size_t i = 0; i < n; i++)
		s->queues[i] = queues[i];
	s->nqueues = n;
	s->state = SESSION_ATTACHED;
	loop_timer_init(&s->grace, NULL, s);
	loop_timer_init(&s->bind_timer, NULL, s);
	loop_timer_init(&s->check_timer, NULL, s);
	s->next = m->head;
	if (m->head)
		m->head->prev = s;
	m->head = s;
	m->count++;
	s->by_ns.dev = s->netns_dev;   /* as session_link(): session_find() sees it */
	s->by_ns.ino = s->netns_ino;
	nsmap_add(&m->by_ns, &s->by_ns);
	return s;
}

#endif
