/* SPDX-License-Identifier: MIT */
/*
 * The control socket's commands (docs/control.md): one table shared by the
 * broker, which dispatches and checks requests from it, and nfq-ctl, which
 * derives its usage text, argument checks and the command list from it.
 * Adding a command is one row here and one handler in broker/commands.c;
 * tests/test-ctlcmd.c checks docs/control.md's command table against it.
 */
#ifndef PROTO_CTLCMD_H
#define PROTO_CTLCMD_H

#include <stdbool.h>
#include <stddef.h>

/* Who may run a command: broker.control_allow_uids or control_admin_uids. */
enum ctlcmd_access {
	CTLCMD_READ,              /* counters and names only */
	CTLCMD_ADMIN,             /* changes the broker or shows every tenant's packets */
};

#define CTLCMD_KEYS_MAX 8

struct ctlcmd {
	const char *name;
	enum ctlcmd_access access;
	const char *keys[CTLCMD_KEYS_MAX + 1]; /* request keys besides "cmd", NULL-ended */
	const char *args;         /* nfq-ctl's synopsis after the name, "" for none */
	const char *help;         /* one line for nfq-ctl --help */
};

/* ctlcmd_count - the number of commands in the table. */
size_t ctlcmd_count(void);

/* ctlcmd_at - the @i-th command (in the table's order), NULL past the end. */
const struct ctlcmd *ctlcmd_at(size_t i);

/* ctlcmd_find - the command called @name, or NULL. */
const struct ctlcmd *ctlcmd_find(const char *name);

/* ctlcmd_accepts - whether a @cmd request may carry @key ("cmd" always). */
bool ctlcmd_accepts(const struct ctlcmd *cmd, const char *key);

/*
 * ctlcmd_names - every command name joined by ", " into @buf of @len
 * bytes, NUL-terminated ("status, agents, ..."). Returns @buf.
 */
const char *ctlcmd_names(char *buf, size_t len);

/* Room for ctlcmd_names() with every command of the table. */
#define CTLCMD_NAMES_MAX 256

#endif
