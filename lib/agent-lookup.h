/* SPDX-License-Identifier: MIT */
/*
 * Internal to libnfqb and nfq-agent (hidden: not in libnfqb.map).
 */
#ifndef NFQB_LIB_AGENT_LOOKUP_H
#define NFQB_LIB_AGENT_LOOKUP_H

#include <stdbool.h>

/*
 * agent_lookup_files - make nfqb_agent_lookup_user() read user and group
 * names from the files @passwd and @group itself (nfq-agent passes
 * "/etc/passwd" and "/etc/group"; tests their fixtures) rather than ask
 * glibc's NSS; NULL, NULL goes back to NSS, the default. A statically
 * linked program needs it: glibc loads NSS modules with dlopen(), they
 * are linked to the shared libc, and a static binary that calls
 * getpwnam_r() may crash in them (Debian's libnss_systemd does). Like
 * glibc's files backend, it skips entries named "+..." or "-..." (NIS
 * compat lines). The strings are not copied; not thread-safe (set it
 * before any lookup).
 */
void agent_lookup_files(const char *passwd, const char *group);

#endif
