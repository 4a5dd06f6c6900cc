/* SPDX-License-Identifier: MIT */
/*
 * Internal to libnfqb and nfq-agent (hidden: not in libnfqb.map).
 */
#ifndef NFQB_LIB_AGENT_LOOKUP_H
#define NFQB_LIB_AGENT_LOOKUP_H

#include <stdbool.h>

/*
 * agent_lookup_files_only - whether nfqb_agent_lookup_user() reads user and
 * group names from /etc/passwd and /etc/group itself (@on) rather than
 * through glibc's NSS. A statically linked program needs it: glibc loads
 * NSS modules with dlopen(), and those are linked to the shared libc, so
 * a static binary that calls getpwnam_r() may crash in them (Debian's
 * libnss_systemd does). Numeric ids are never looked up by name. Default
 * off; not thread-safe (set it before any lookup).
 */
void agent_lookup_files_only(bool on);

#endif
