/* SPDX-License-Identifier: MIT */
/*
 * The values of the match vocabulary (docs/policy.md "Match keys"), shared
 * by the policy language (policy-keys.c) and steering (steer-parse.c), so
 * that a port, CIDR, protocol, interface name or mark is read, and its
 * error worded, the same way in both. Each function reports into a struct
 * errs with the JSON path and returns whether the value was good.
 */
#ifndef BROKER_MATCHVAL_H
#define BROKER_MATCHVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "errs.h"

/* Longest interface name plus its NUL (IFNAMSIZ). */
#define MVAL_IFNAME_SIZE 16

/* An address prefix: host bits cleared, unused bytes of addr/mask zero. */
struct mval_cidr {
	uint8_t af;                   /* 4 or 6 */
	uint8_t plen;
	uint8_t addr[16];             /* network byte order */
	uint8_t mask[16];
};

/*
 * mval_parse_num - strict decimal (or 0x hex when @hex): digits only, no
 * sign, no spaces. 0 ok, -EINVAL bad syntax. Values are capped far above
 * any field range.
 */
int mval_parse_num(const char *s, size_t len, bool hex, uint64_t *out);

/*
 * mval_range_str - a "lo-hi" string, both ends 0..@max and lo <= hi:
 * "bad <noun> range ...", "<noun> N out of range 0-max", "empty <noun> range ...".
 */
bool mval_range_str(json_object *o, const char *path, struct errs *e, const char *noun,
		    uint64_t max, uint64_t *lo, uint64_t *hi);

/* One list element into @slot; @ctx is the caller's. */
typedef bool (*mval_item_fn)(json_object *o, const char *path, void *ctx, void *slot);

/*
 * mval_list - one item, or a non-empty array of at most @max items, into a
 * new array (*@out, *@n) of @size-byte elements parsed by @fn. Every bad
 * item is reported with its index; returns false when any was bad (*@out
 * is still set when allocated: the caller frees it).
 */
bool mval_list(json_object *o, const char *path, struct errs *e, size_t max, size_t size,
	       mval_item_fn fn, void *ctx, void **out, size_t *n);

/* mval_cidr - "10.0.0.0/8", "fd00::1" (a host: full prefix); no host bits set. */
bool mval_cidr(json_object *o, const char *path, struct errs *e, struct mval_cidr *out);

/* mval_port - a port number or a "lo-hi" string, 0-65535. */
bool mval_port(json_object *o, const char *path, struct errs *e, uint16_t *lo,
	       uint16_t *hi);

/* mval_proto - a protocol name (pktmeta's table) or a number 0-255. */
bool mval_proto(json_object *o, const char *path, struct errs *e, uint8_t *proto);

/* mval_ifname - a valid Linux interface name; returns it (owned by @o) or NULL. */
const char *mval_ifname(json_object *o, const char *path, struct errs *e);

/* mval_mark - a number, or "value/mask" (decimal or 0x hex, 32 bits each);
 * a number means mask 0xffffffff. */
bool mval_mark(json_object *o, const char *path, struct errs *e, uint32_t *val,
	       uint32_t *mask);

/* mval_markmask - mval_mark for key @noun ("mark", "connmark") in messages. */
bool mval_markmask(json_object *o, const char *path, struct errs *e, const char *noun,
		   uint32_t *val, uint32_t *mask);

/* mval_family - "ipv4" or "ipv6" into 4 or 6. */
bool mval_family(json_object *o, const char *path, struct errs *e, uint8_t *af);

#endif
