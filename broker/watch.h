/* SPDX-License-Identifier: MIT */
/*
 * The control socket's "watch" stream (docs/interface.md §5): one JSON object
 * per decided packet, formatted into a caller's fixed buffer with no
 * allocation. The control client's output queue is broker/ring.h.
 */
#ifndef BROKER_WATCH_H
#define BROKER_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "session.h"

/* Room for one event line: names are capped (ns 320, policy/rule 64). */
#define WATCH_EVENT_MAX 2048

/*
 * watch_json_str - @s as a JSON string literal (quotes included) into
 * @buf of @len bytes, NUL-terminated. Quotes, backslashes and control
 * bytes are escaped; bytes >= 0x80 are copied (names are UTF-8 or
 * opaque). A string that does not fit is cut between escapes, never
 * inside one, so the result is always valid JSON. @s NULL gives null.
 * Returns the number of bytes written (without the NUL); @len must be
 * at least 3 ("" plus NUL), otherwise 0 is returned and nothing written.
 */
size_t watch_json_str(char *buf, size_t len, const char *s);

/*
 * watch_format - the event line of one packet decided by session @s
 * ("{...}\n") into @buf (WATCH_EVENT_MAX bytes suffice): ns, queue, id,
 * hook, family, proto, src, dst, sport, dport, len, indev, outdev, mark,
 * policy, rule, verdict, plus "error" when the verdict could not be sent
 * (@rc < 0). Returns the length, 0 when @len was too small.
 */
size_t watch_format(char *buf, size_t len, const struct session *s,
		    const struct nfqb_packet *p, const struct pktmeta *m, int rule,
		    const struct policy_action *act, int rc);

/* watch_format_lost - the line {"lost":N} telling a watcher it missed N events. */
size_t watch_format_lost(char *buf, size_t len, uint64_t n);

#endif
