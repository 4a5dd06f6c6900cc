/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"

/* jsonv_type_name - see jsonv.h. */
const char *jsonv_type_name(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_object:  return "object";
	case json_type_array:   return "array";
	case json_type_string:  return "string";
	case json_type_int:
	case json_type_double:  return "number";
	case json_type_boolean: return "boolean";
	case json_type_null:    return "null";
	}
	return "value";
}

/* jsonv_text - see jsonv.h. */
const char *jsonv_text(json_object *o, char *buf, size_t len)
{
	const char *s = json_object_to_json_string_ext(o,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s)
		s = "?";
	if (strlen(s) < len)
		return s;
	snprintf(buf, len, "%.*s...", (int)len - 4, s);
	return buf;
}

/* jsonv_type_err - see jsonv.h. */
bool jsonv_type_err(struct errs *e, const char *path, const char *want, json_object *o)
{
	char vb[JSONV_TEXT_MAX];

	if (json_object_is_type(o, json_type_null))
		errs_add(e, path, "expected %s, got null", want);
	else
		errs_add(e, path, "expected %s, got %s %s", want, jsonv_type_name(o),
			 jsonv_text(o, vb, sizeof(vb)));
	return false;
}

/* jsonv_want - see jsonv.h. */
bool jsonv_want(json_object *o, enum json_type t, const char *path, struct errs *e)
{
	static const char *const want[] = {
		[json_type_object] = "an object", [json_type_array] = "an array",
		[json_type_string] = "a string", [json_type_int] = "an integer",
		[json_type_boolean] = "a boolean", [json_type_double] = "a number",
		[json_type_null] = "null",
	};

	if (json_object_is_type(o, t))
		return true;
	return jsonv_type_err(e, path, want[t], o);
}

/* jsonv_is_number - see jsonv.h. */
bool jsonv_is_number(json_object *o)
{
	return json_object_is_type(o, json_type_int) ||
	       json_object_is_type(o, json_type_double);
}

static bool uint_range_err(json_object *o, const char *path, struct errs *e,
			   const char *noun, uint64_t min, uint64_t max)
{
	char vb[JSONV_TEXT_MAX];

	errs_add(e, path, "%s %s out of range %" PRIu64 "-%" PRIu64, noun,
		 jsonv_text(o, vb, sizeof(vb)), min, max);
	return false;
}

/* jsonv_uint - see jsonv.h. */
bool jsonv_uint(json_object *o, const char *path, struct errs *e, const char *noun,
		uint64_t min, uint64_t max, uint64_t *out)
{
	char vb[JSONV_TEXT_MAX];
	double d;

	if (json_object_is_type(o, json_type_int)) {
		int64_t v = json_object_get_int64(o);
		uint64_t u = v < 0 ? 0 : json_object_get_uint64(o);

		if ((v == INT64_MAX && u == UINT64_MAX) || v == INT64_MIN) {
			/* saturated: the printed value would be a lie */
			errs_add(e, path, "%s out of range %" PRIu64 "-%" PRIu64,
				 noun, min, max);
			return false;
		}
		if (v < 0 || u < min || u > max)
			return uint_range_err(o, path, e, noun, min, max);
		*out = u;
		return true;
	}
	if (!json_object_is_type(o, json_type_double))
		return jsonv_type_err(e, path, "an integer", o);
	d = json_object_get_double(o);
	if (!(d >= (double)min && d <= (double)max))
		return uint_range_err(o, path, e, noun, min, max);
	if ((double)(uint64_t)d != d) {
		errs_add(e, path, "%s %s is not an integer", noun,
			 jsonv_text(o, vb, sizeof(vb)));
		return false;
	}
	*out = (uint64_t)d;
	return true;
}

/* jsonv_bool - see jsonv.h. */
bool jsonv_bool(json_object *o, const char *path, bool *out, struct errs *e)
{
	if (!jsonv_want(o, json_type_boolean, path, e))
		return false;
	*out = json_object_get_boolean(o);
	return true;
}

/* jsonv_str - see jsonv.h. */
const char *jsonv_str(json_object *o, size_t *len)
{
	const char *s;

	if (!json_object_is_type(o, json_type_string))
		return NULL;
	s = json_object_get_string(o);
	*len = (size_t)json_object_get_string_len(o);
	return strlen(s) == *len ? s : NULL;
}

/* jsonv_string - see jsonv.h. */
bool jsonv_string(json_object *o, const char *path, char **out, struct errs *e)
{
	const char *s;
	size_t len;
	char *d;

	if (!jsonv_want(o, json_type_string, path, e))
		return false;
	s = jsonv_str(o, &len);
	if (len == 0) {
		errs_add(e, path, "must not be empty");
		return false;
	}
	if (!s) {
		errs_add(e, path, "contains a NUL character");
		return false;
	}
	d = strdup(s);
	if (!d) {
		e->oom = 1;
		return false;
	}
	free(*out);
	*out = d;
	return true;
}

/* jsonv_check_keys - see jsonv.h. */
void jsonv_check_keys(json_object *obj, const char *path, const char *const *known,
		      struct errs *e)
{
	char p[ERRS_PATH_MAX];

	json_object_object_foreach(obj, key, val) {
		const char *const *k = known;

		(void)val;
		while (*k && strcmp(key, *k) != 0)
			k++;
		if (*k)
			continue;
		errs_path_key(p, sizeof(p), path, key);
		errs_add(e, p, "unknown key");
	}
}

/* jsonv_nomem - see jsonv.h. */
void jsonv_nomem(struct errs *e, const char *path)
{
	e->oom = 1;
	errs_add(e, path, "out of memory");
}
