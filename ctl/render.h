/* SPDX-License-Identifier: MIT */
/*
 * nfq-ctl's human output: the tables of agents, rules and status, and the
 * one-line text form of a watch event. Input is the broker's JSON reply
 * (docs/control.md); missing keys print "-" rather than failing, so a
 * newer or older broker still prints.
 */
#ifndef CTL_RENDER_H
#define CTL_RENDER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>

/*
 * render_table - @reply to @cmd ("agents", "rules", "status") as a table
 * on @f, more columns when @wide; @now is the wall clock for ages.
 * Returns 0, or -EINVAL for another command or a reply without its array.
 */
int render_table(FILE *f, const char *cmd, json_object *reply, bool wide, time_t now);

/* render_has_table - whether @cmd has a table form. */
bool render_has_table(const char *cmd);

/*
 * render_event - one watch event as a text line (newline included) on @f:
 * "12:34:56.789012 pod-a udp 10.0.0.1:5353 -> 10.0.0.2:53 len 61 rule=dns
 * verdict=accept" (local time, like tcpdump); a {"lost":N} line as
 * "-- lost N events --". Returns 0, or -EINVAL for a line that is not
 * an event object.
 */
int render_event(FILE *f, json_object *ev);

/* jget_u64 / jget_str - @o's member @key, 0 / NULL when absent or mistyped. */
uint64_t jget_u64(json_object *o, const char *key);
const char *jget_str(json_object *o, const char *key);

#endif
