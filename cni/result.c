/* SPDX-License-Identifier: MIT */
/* CNI results and error objects on stdout (CNI spec "Result", "Error"). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

const char *const cni_supported_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL };

bool cni_version_at_least(const char *v, int major, int minor)
{
	char *end;
	long ma = strtol(v, &end, 10), mi = *end == '.' ? strtol(end + 1, NULL, 10) : 0;

	return ma > major || (ma == major && mi >= minor);
}

/* Fill @e (the first error wins) and return -EINVAL for the caller to pass up. */
int cni_set_err(struct cni_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e->code)
		return -EINVAL;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void cni_set_details(struct cni_err *e, const char *s)
{
	snprintf(e->details, sizeof(e->details), "%s", s ? s : "");
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
}

/* The CNI error object on stdout; the exit status is the caller's. */
void cni_print_error(const struct cni_err *e, const char *version)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "cniVersion", json_object_new_string(version));
	json_object_object_add(o, "code", json_object_new_int(e->code));
	json_object_object_add(o, "msg", json_object_new_string(e->msg));
	if (e->details[0])
		json_object_object_add(o, "details", json_object_new_string(e->details));
	print_json(o);
	json_object_put(o);
}

void cni_print_version(const char *version)
{
	struct json_object *o = json_object_new_object();
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; cni_supported_versions[i]; i++)
		json_object_array_add(a, json_object_new_string(cni_supported_versions[i]));
	json_object_object_add(o, "cniVersion", json_object_new_string(version));
	json_object_object_add(o, "supportedVersions", a);
	print_json(o);
	json_object_put(o);
}

/*
 * A prevResult of another version than the netconf's (a runtime mixing
 * them): the one field that differs between 0.3.x/0.4.0 and 1.x results
 * is ips[].version, required before 1.0.0 and gone since.
 */
static void convert_ips(struct json_object *prev, const char *to)
{
	struct json_object *ips, *addr;
	bool old = !cni_version_at_least(to, 1, 0);

	if (!json_object_object_get_ex(prev, "ips", &ips) || !json_object_is_type(ips, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(ips); i++) {
		struct json_object *ip = json_object_array_get_idx(ips, i);

		if (!json_object_is_type(ip, json_type_object))
			continue;
		if (!old) {
			json_object_object_del(ip, "version");
		} else if (!json_object_object_get_ex(ip, "version", NULL) &&
			   json_object_object_get_ex(ip, "address", &addr)) {
			const char *a = json_object_get_string(addr);

			json_object_object_add(ip, "version",
					       json_object_new_string(a && strchr(a, ':') ? "6" : "4"));
		}
	}
}

void cni_print_result(const struct conf *c)
{
	struct json_object *o, *v;

	if (!c->prev) {
		o = json_object_new_object();
		json_object_object_add(o, "cniVersion", json_object_new_string(c->version));
		print_json(o);
		json_object_put(o);
		return;
	}
	/* A chained plugin that changes nothing passes its input on: only a
	 * prevResult in another version is brought to the netconf's. */
	if (!json_object_object_get_ex(c->prev, "cniVersion", &v)) {
		json_object_object_add(c->prev, "cniVersion", json_object_new_string(c->version));
	} else if (strcmp(json_object_get_string(v), c->version) != 0) {
		convert_ips(c->prev, c->version);
		json_object_object_add(c->prev, "cniVersion", json_object_new_string(c->version));
	}
	print_json(c->prev);
}
