/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include <nfqb/queue.h>

#include "names.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const hooks[] = {
	[NFQB_HOOK_PREROUTING] = "prerouting", [NFQB_HOOK_INPUT] = "input",
	[NFQB_HOOK_FORWARD] = "forward", [NFQB_HOOK_OUTPUT] = "output",
	[NFQB_HOOK_POSTROUTING] = "postrouting",
};

/* Verdicts as the config spells them; "queue" takes ":N" there. */
static const char *const verdicts[] = {
	[NFQB_DROP] = "drop", [NFQB_ACCEPT] = "accept", [NFQB_QUEUE] = "queue",
	[NFQB_REPEAT] = "repeat",
};

/* names_hook - see names.h. */
const char *names_hook(unsigned hook)
{
	return hook < COUNT(hooks) ? hooks[hook] : NULL;
}

/* names_hook_by_name - see names.h. */
int names_hook_by_name(const char *name)
{
	for (size_t i = 0; i < COUNT(hooks); i++)
		if (hooks[i] && strcmp(name, hooks[i]) == 0)
			return (int)i;
	return -1;
}

/* names_hook_list - see names.h. */
const char *names_hook_list(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < COUNT(hooks) && off < len; i++)
		if (hooks[i])
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
						off ? ", " : "", hooks[i]);
	return buf;
}

/* names_verdict - see names.h. */
const char *names_verdict(uint32_t verdict)
{
	return verdict < COUNT(verdicts) ? verdicts[verdict] : NULL;
}

/* names_verdict_by_name - see names.h. */
int names_verdict_by_name(const char *name)
{
	for (size_t i = 0; i < COUNT(verdicts); i++)
		if (verdicts[i] && i != NFQB_QUEUE && strcmp(name, verdicts[i]) == 0)
			return (int)i;
	return -1;
}
