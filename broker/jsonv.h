/* SPDX-License-Identifier: MIT */
/*
 * JSON validation helpers shared by the configuration (config.c) and the
 * policy language (policy-parse.c, policy-keys.c): one wording for every
 * error, each naming its JSON path, and one integer check that knows where
 * json-c saturates. Every function reports into a struct errs and returns
 * whether the value was good, so a caller goes on and reports the rest.
 */
#ifndef BROKER_JSONV_H
#define BROKER_JSONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "errs.h"

/* Buffer size for jsonv_text(): a longer value is cut and ends in "...". */
#define JSONV_TEXT_MAX 72

/* jsonv_type_name - "object", "array", "string", "number", "boolean", "null". */
const char *jsonv_type_name(json_object *o);

/* jsonv_text - @o as JSON ("70000", "\"x\""), cut to fit @len bytes of @buf. */
const char *jsonv_text(json_object *o, char *buf, size_t len);

/* jsonv_type_err - "expected <want>, got <type> <value>"; returns false. */
bool jsonv_type_err(struct errs *e, const char *path, const char *want, json_object *o);

/* jsonv_want - true when @o has type @t, else a type error ("an object", ...). */
bool jsonv_want(json_object *o, enum json_type t, const char *path, struct errs *e);

/* jsonv_is_number - an integer or a double. */
bool jsonv_is_number(json_object *o);

/*
 * jsonv_uint - an integer in [@min, @max] into @out: "<noun> 70000 out of
 * range 0-65535", "<noun> 1.5 is not an integer"; integral doubles (1e3)
 * are accepted. A value beyond what json-c holds (it saturates at the
 * int64/uint64 limits) is reported without the misleading saturated number.
 * Anything but a number: "expected an integer, got ...".
 */
bool jsonv_uint(json_object *o, const char *path, struct errs *e, const char *noun,
		uint64_t min, uint64_t max, uint64_t *out);

/* jsonv_bool - a JSON boolean into @out. */
bool jsonv_bool(json_object *o, const char *path, bool *out, struct errs *e);

/* jsonv_str - the bytes of a JSON string without embedded NULs, else NULL. */
const char *jsonv_str(json_object *o, size_t *len);

/*
 * jsonv_string - a non-empty string without NULs, strdup'ed into *@out
 * (freeing what was there). ENOMEM sets e->oom.
 */
bool jsonv_string(json_object *o, const char *path, char **out, struct errs *e);

/* jsonv_check_keys - "<path>.<key>: unknown key" for every key of @obj not
 * in the NULL-terminated list @known. */
void jsonv_check_keys(json_object *obj, const char *path, const char *const *known,
		      struct errs *e);

/* jsonv_nomem - mark @e out of memory and say where. */
void jsonv_nomem(struct errs *e, const char *path);

#endif
