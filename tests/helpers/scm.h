/* SPDX-License-Identifier: MIT */
/*
 * Test helper: send a record with fds attached as SCM_RIGHTS, whatever the
 * count (up to TSCM_MAX_FDS) and whatever the record: for what the code
 * under test must refuse, which its own senders never produce.
 */
#ifndef NFQB_TEST_SCM_H
#define NFQB_TEST_SCM_H

#include <stddef.h>
#include <sys/types.h>

#define TSCM_MAX_FDS 64

/*
 * tscm_send - sendmsg(@sock) of @len bytes from @buf with @nfds fds
 * (copies; the caller keeps its own) in one SCM_RIGHTS message; no
 * SIGPIPE. Returns what sendmsg returned (-1 with errno on failure, also
 * errno EINVAL for more than TSCM_MAX_FDS fds).
 */
ssize_t tscm_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

#endif
