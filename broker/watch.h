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

#include <json-c/json.h>

#include "session.h"

/*
 * Room for one event line: names are capped (ns 320, policy/rule 64) but
 * a control byte escapes to 6, so the worst case is about 3.3 KiB.
 */
#define WATCH_EVENT_MAX 4096

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
 * ("{...}\n") into @buf (WATCH_EVENT_MAX bytes suffice): ts (unix time,
 * microseconds), ns, queue, id, hook, family, proto, src, dst, sport,
 * dport, tcp_flags (TCP only), len, indev, outdev, mark, uid/gid (when the
 * kernel sent them), policy, rule, verdict, plus "error" when the verdict
 * could not be sent (@rc < 0). Returns the length, 0 when @len was too small.
 */
size_t watch_format(char *buf, size_t len, const struct session *s,
		    const struct nfqb_packet *p, const struct pktmeta *m, int rule,
		    const struct policy_action *act, int rc);

/*
 * A watcher's filter (docs/control.md, "watch"): every field set must
 * match; unset fields match anything. Plain data, no json-c, so matching
 * in the verdict step allocates nothing.
 */
#define WATCH_GLOB_MAX 320           /* WIRE_NAME_MAX: an exact name always fits */
struct watch_filter {
	char ns[WATCH_GLOB_MAX];      /* fnmatch() glob on the namespace name, "" any */
	char policy[WATCH_GLOB_MAX];  /* glob on the policy name, "" any */
	char rule[WATCH_GLOB_MAX];    /* glob on the rule name ("(default)"), "" any */
	int verdict;                  /* NFQB_ACCEPT/DROP/REPEAT/QUEUE, -1 any */
	int proto;                    /* IP protocol number, -1 any */
	int port;                     /* source or destination port, -1 any */
	uint8_t family;               /* 4 or 6 for an address filter, 0 none */
	uint8_t plen;                 /* prefix length */
	uint8_t addr[16];             /* source or destination within addr/plen */
};

/* The request keys of watch_filter_parse(), for proto/ctlcmd.c and the docs. */
#define WATCH_FILTER_KEYS "ns", "verdict", "policy", "rule", "proto", "port", "addr"

/*
 * watch_filter_parse - the filter keys of a watch request @req into @f.
 * A bad value gives -EINVAL and a message naming the key in @err
 * ("bad \"port\" filter: ..."). Unknown keys are the caller's check.
 */
int watch_filter_parse(struct watch_filter *f, json_object *req, char *err, size_t errlen);

/*
 * watch_filter_match - whether the packet decided by @s (@m, @rule, @act)
 * passes @f. Verdict-step code: no allocation, no system call.
 */
bool watch_filter_match(const struct watch_filter *f, const struct session *s,
			const struct pktmeta *m, int rule, const struct policy_action *act);

/*
 * watch_filter_describe - @f as "key=value ..." (for the watch_start log
 * line and the reply), "*" when it matches everything. Returns @buf.
 */
const char *watch_filter_describe(const struct watch_filter *f, char *buf, size_t len);

/* watch_format_lost - the line {"lost":N} telling a watcher it missed N events. */
size_t watch_format_lost(char *buf, size_t len, uint64_t n);

#endif
