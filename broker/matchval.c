/* SPDX-License-Identifier: MIT */
/* The values of the match vocabulary: see matchval.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "matchval.h"
#include "pktmeta.h"

/* mval_parse_num - see matchval.h. */
int mval_parse_num(const char *s, size_t len, bool hex, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (hex && len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (len == 0 || len > 16)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
			d = (unsigned)(s[i] - 'a' + 10);
		else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
			d = (unsigned)(s[i] - 'A' + 10);
		else
			return -EINVAL;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* mval_range_str - see matchval.h. */
bool mval_range_str(json_object *o, const char *path, struct errs *e, const char *noun,
		    uint64_t max, uint64_t *lo, uint64_t *hi)
{
	char vb[JSONV_TEXT_MAX];
	const char *s, *dash;
	size_t len;

	s = jsonv_str(o, &len);
	dash = s ? memchr(s, '-', len) : NULL;
	if (!dash || mval_parse_num(s, (size_t)(dash - s), false, lo) ||
	    mval_parse_num(dash + 1, len - (size_t)(dash - s) - 1, false, hi)) {
		errs_add(e, path, "bad %s range %s (expected a number or \"lo-hi\")",
			 noun, jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	if (*lo > max || *hi > max) {
		errs_add(e, path, "%s %" PRIu64 " out of range 0-%" PRIu64,
			 noun, *lo > max ? *lo : *hi, max);
		return false;
	}
	if (*lo > *hi) {
		errs_add(e, path, "empty %s range %s", noun, jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	return true;
}

/* mval_list - see matchval.h. */
bool mval_list(json_object *o, const char *path, struct errs *e, size_t max, size_t size,
	       mval_item_fn fn, void *ctx, void **out, size_t *n)
{
	char ipath[ERRS_PATH_MAX];
	bool is_arr = json_object_is_type(o, json_type_array);
	size_t len = is_arr ? json_object_array_length(o) : 1;
	bool ok = true;
	char *arr;

	if (len == 0) {
		errs_add(e, path, "empty list");
		return false;
	}
	if (len > max) {
		errs_add(e, path, "list too long (%zu elements, at most %zu)", len, max);
		return false;
	}
	arr = calloc(len, size);
	if (!arr) {
		jsonv_nomem(e, path);
		return false;
	}
	if (!is_arr) {
		ok = fn(o, path, ctx, arr);
	} else {
		for (size_t i = 0; i < len; i++) {
			errs_path_idx(ipath, sizeof(ipath), path, i);
			if (!fn(json_object_array_get_idx(o, i), ipath, ctx, arr + i * size))
				ok = false;
		}
	}
	*out = arr;
	*n = len;
	return ok;
}

/* mval_cidr - see matchval.h. */
bool mval_cidr(json_object *o, const char *path, struct errs *e, struct mval_cidr *out)
{
	uint8_t addr[16] = { 0 }, mask[16] = { 0 };
	char buf[INET6_ADDRSTRLEN + 8], vb[JSONV_TEXT_MAX], net[INET6_ADDRSTRLEN];
	uint64_t plen, max;
	const char *s;
	char *slash;
	size_t len;
	bool hostbits = false;
	int af;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(e, path, "an address or CIDR string", o);
	s = jsonv_str(o, &len);
	if (!s || len >= sizeof(buf))
		goto bad;
	memcpy(buf, s, len + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	af = strchr(buf, ':') ? AF_INET6 : AF_INET;
	max = af == AF_INET ? 32 : 128;
	if (inet_pton(af, buf, addr) != 1)
		goto bad;
	plen = max;
	if (slash && (mval_parse_num(slash + 1, strlen(slash + 1), false, &plen) ||
		      plen > max))
		goto bad;
	for (uint64_t i = 0; i < plen; i++)
		mask[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	for (size_t i = 0; i < sizeof(addr); i++) {
		hostbits |= (addr[i] & ~mask[i]) != 0;
		addr[i] &= mask[i];
	}
	if (hostbits) {
		inet_ntop(af, addr, net, sizeof(net));
		errs_add(e, path, "CIDR %s has host bits set (network is %s/%" PRIu64 ")",
			 jsonv_text(o, vb, sizeof(vb)), net, plen);
		return false;
	}
	memcpy(out->addr, addr, sizeof(out->addr));
	memcpy(out->mask, mask, sizeof(out->mask));
	out->af = af == AF_INET ? 4 : 6;
	out->plen = (uint8_t)plen;
	return true;
bad:
	errs_add(e, path, "bad address or CIDR %s", jsonv_text(o, vb, sizeof(vb)));
	return false;
}

/* mval_port - see matchval.h. */
bool mval_port(json_object *o, const char *path, struct errs *e, uint16_t *lo,
	       uint16_t *hi)
{
	uint64_t l, h;

	if (json_object_is_type(o, json_type_string)) {
		if (!mval_range_str(o, path, e, "port", 65535, &l, &h))
			return false;
	} else if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, e, "port", 0, 65535, &l))
			return false;
		h = l;
	} else {
		return jsonv_type_err(e, path, "a port number or \"lo-hi\" range", o);
	}
	*lo = (uint16_t)l;
	*hi = (uint16_t)h;
	return true;
}

/* mval_proto - see matchval.h. */
bool mval_proto(json_object *o, const char *path, struct errs *e, uint8_t *proto)
{
	char vb[JSONV_TEXT_MAX];
	uint64_t v;
	int num;

	if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, e, "protocol", 0, 255, &v))
			return false;
		*proto = (uint8_t)v;
		return true;
	}
	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(e, path, "a protocol name or number", o);
	num = pktmeta_proto_by_name(json_object_get_string(o));
	if (num >= 0) {
		*proto = (uint8_t)num;
		return true;
	}
	errs_add(e, path, "unknown protocol %s (tcp, udp, icmp, icmpv6, sctp, "
		 "udplite, gre, esp, ah, or a number 0-255)", jsonv_text(o, vb, sizeof(vb)));
	return false;
}

/* Mirrors the kernel's dev_valid_name(). */
static bool valid_ifname(const char *s, size_t len)
{
	if (!s || len == 0 || len >= MVAL_IFNAME_SIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == ' ' ||
		    (s[i] >= '\t' && s[i] <= '\r'))
			return false;
	return true;
}

/* mval_ifname - see matchval.h. */
const char *mval_ifname(json_object *o, const char *path, struct errs *e)
{
	char vb[JSONV_TEXT_MAX];
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_string)) {
		jsonv_type_err(e, path, "an interface name", o);
		return NULL;
	}
	s = jsonv_str(o, &len);
	if (!valid_ifname(s, len)) {
		errs_add(e, path, "bad interface name %s (1-15 characters, "
			 "no '/', ':' or whitespace)", jsonv_text(o, vb, sizeof(vb)));
		return NULL;
	}
	return s;
}

/* mval_mark - see matchval.h. */
bool mval_markmask(json_object *o, const char *path, struct errs *e, const char *noun,
		   uint32_t *val, uint32_t *mask)
{
	char vb[JSONV_TEXT_MAX];
	uint64_t v, m = UINT32_MAX;
	const char *s, *slash;
	size_t len;

	if (jsonv_is_number(o)) {
		if (!jsonv_uint(o, path, e, noun, 0, UINT32_MAX, &v))
			return false;
	} else if (json_object_is_type(o, json_type_string)) {
		s = jsonv_str(o, &len);
		slash = s ? memchr(s, '/', len) : NULL;
		if (!slash || mval_parse_num(s, (size_t)(slash - s), true, &v) ||
		    mval_parse_num(slash + 1, len - (size_t)(slash - s) - 1, true, &m) ||
		    v > UINT32_MAX || m > UINT32_MAX) {
			errs_add(e, path, "bad %s %s (expected a number or "
				 "\"value/mask\", 32 bits each)", noun,
				 jsonv_text(o, vb, sizeof(vb)));
			return false;
		}
		if (v & ~m) {
			errs_add(e, path, "%s value 0x%" PRIx64 " has bits outside "
				 "mask 0x%" PRIx64 " and can never match", noun, v, m);
			return false;
		}
	} else {
		return jsonv_type_err(e, path, "a number or \"value/mask\" string", o);
	}
	*val = (uint32_t)v;
	*mask = (uint32_t)m;
	return true;
}

/* mval_mark - see matchval.h. */
bool mval_mark(json_object *o, const char *path, struct errs *e, uint32_t *val,
	       uint32_t *mask)
{
	return mval_markmask(o, path, e, "mark", val, mask);
}

/* mval_family - see matchval.h. */
bool mval_family(json_object *o, const char *path, struct errs *e, uint8_t *af)
{
	char vb[JSONV_TEXT_MAX];
	const char *s;

	if (!json_object_is_type(o, json_type_string))
		return jsonv_type_err(e, path, "\"ipv4\" or \"ipv6\"", o);
	s = json_object_get_string(o);
	if (strcmp(s, "ipv4") == 0) {
		*af = 4;
	} else if (strcmp(s, "ipv6") == 0) {
		*af = 6;
	} else {
		errs_add(e, path, "unknown family %s (ipv4, ipv6)", jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	return true;
}
