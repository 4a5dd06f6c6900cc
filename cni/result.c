/* SPDX-License-Identifier: MIT */
/* CNI results and error objects on stdout (CNI spec "Result", "Error"). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "cni.h"

const char *const cni_supported_versions[] = { "0.4.0", "1.0.0", NULL };

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

void cni_print_version(void)
{
	struct json_object *o = json_object_new_object();
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; cni_supported_versions[i]; i++)
		json_object_array_add(a, json_object_new_string(cni_supported_versions[i]));
	json_object_object_add(o, "cniVersion", json_object_new_string("1.0.0"));
	json_object_object_add(o, "supportedVersions", a);
	print_json(o);
	json_object_put(o);
}

void cni_print_result(const struct conf *c)
{
	struct json_object *o;

	if (!c->prev) {
		o = json_object_new_object();
		json_object_object_add(o, "cniVersion", json_object_new_string(c->version));
		print_json(o);
		json_object_put(o);
		return;
	}
	/* A chained plugin that changes nothing passes its input on. */
	if (!json_object_object_get_ex(c->prev, "cniVersion", NULL))
		json_object_object_add(c->prev, "cniVersion", json_object_new_string(c->version));
	print_json(c->prev);
}
