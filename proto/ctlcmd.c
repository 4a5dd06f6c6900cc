/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "ctlcmd.h"

static const struct ctlcmd table[] = {
	{ "status", CTLCMD_READ, { NULL }, "",
	  "version, uptime, namespaces, packet and verdict totals" },
	{ "agents", CTLCMD_READ, { NULL }, "",
	  "every namespace served: agent, queues, counters, kernel stats" },
	{ "rules", CTLCMD_READ, { NULL }, "",
	  "packets and bytes per policy rule" },
	{ "reload", CTLCMD_ADMIN, { NULL }, "",
	  "reload the broker's config file (errors are listed)" },
	{ "watch", CTLCMD_ADMIN,
	  { "ns", "verdict", "policy", "rule", "proto", "port", "addr", NULL }, "[FILTERS]",
	  "one line per decided packet (filtered in the broker) until interrupted" },

	{ "metrics", CTLCMD_READ, { NULL }, "",
	  "the counters in Prometheus text format" },
};

size_t ctlcmd_count(void)
{
	return sizeof(table) / sizeof(table[0]);
}

const struct ctlcmd *ctlcmd_at(size_t i)
{
	return i < ctlcmd_count() ? &table[i] : NULL;
}

const struct ctlcmd *ctlcmd_find(const char *name)
{
	for (size_t i = 0; i < ctlcmd_count(); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

bool ctlcmd_accepts(const struct ctlcmd *cmd, const char *key)
{
	if (strcmp(key, "cmd") == 0)
		return true;
	for (size_t i = 0; i < CTLCMD_KEYS_MAX && cmd->keys[i]; i++)
		if (strcmp(key, cmd->keys[i]) == 0)
			return true;
	return false;
}

const char *ctlcmd_names(char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < ctlcmd_count() && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", table[i].name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	return buf;
}
