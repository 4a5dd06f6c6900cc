/* SPDX-License-Identifier: MIT */
/*
 * The handlers of the control socket's commands (docs/control.md). The
 * table of commands, their access level and keys is proto/ctlcmd.h;
 * control.c frames requests, checks them against it and calls the
 * handler found here by name.
 */
#ifndef BROKER_COMMANDS_H
#define BROKER_COMMANDS_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "control.h"
#include "session.h"

/* One request, as a handler sees it. */
struct cmd_req {
	struct session_mgr *m;
	struct control *ctl;
	struct control_client *cl;
	unsigned client_id;
	uid_t uid;
	json_object *req;             /* the request object, keys checked */
	char *err;                    /* the reason when the handler returns NULL */
	size_t errlen;
};

/* A handler: the reply (with "ok"), or NULL with a reason in r->err. */
typedef json_object *(*command_fn)(struct cmd_req *r);

/* commands_handler - the handler of the command called @name, or NULL. */
command_fn commands_handler(const char *name);

/* commands_reply_ok - a new {"ok":true} reply object (NULL: out of memory). */
json_object *commands_reply_ok(void);

#endif
