/* SPDX-License-Identifier: MIT */
/*
 * The names the broker prints and parses for netfilter hooks and verdicts:
 * one table each, shared by the policy language, log lines, watch events
 * and the control socket. (Protocol names are pktmeta_proto_name().)
 */
#ifndef BROKER_NAMES_H
#define BROKER_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* names_hook - "prerouting", "input", ... for NFQB_HOOK_*; NULL otherwise. */
const char *names_hook(unsigned hook);

/* names_hook_by_name - the NFQB_HOOK_* named @name, or -1. */
int names_hook_by_name(const char *name);

/* names_hook_list - every hook name, ", "-separated, into @buf; returns @buf. */
const char *names_hook_list(char *buf, size_t len);

/*
 * names_verdict - the name of a verdict without argument ("accept", "drop",
 * "repeat"; "queue" for NFQB_QUEUE, whose number the caller adds); NULL for
 * a value that is none of them. @verdict is the low 16 bits.
 */
const char *names_verdict(uint32_t verdict);

/* names_verdict_by_name - NFQB_ACCEPT/DROP/REPEAT for their names, else -1
 * ("queue:N" carries a number: the policy parser reads it). */
int names_verdict_by_name(const char *name);

#endif
