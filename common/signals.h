/* SPDX-License-Identifier: MIT */
/*
 * Signals as the programs take them: blocked and read from a signalfd in
 * the event loop (no handlers, no EINTR surprises), SIGPIPE ignored.
 */
#ifndef NFQB_COMMON_SIGNALS_H
#define NFQB_COMMON_SIGNALS_H

#include <stddef.h>

/*
 * signals_open - block the @n signals in @signos, ignore SIGPIPE (a peer
 * that vanished must not kill us mid-send) and return a close-on-exec
 * signalfd for them (@flags: more SFD_* flags, e.g. SFD_NONBLOCK), or a
 * negative errno.
 */
int signals_open(const int *signos, size_t n, int flags);

/*
 * signals_wait - wait up to @ms (-1: for ever) for a signal on @sigfd.
 * Returns its number, or 0 when none came (or the wait failed).
 */
int signals_wait(int sigfd, int ms);

#endif
