/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include <nfqb/agent.h>

#include "privs.h"

/* Every capability the broker may keep, why, and what breaks without it. */
static const struct {
	int cap;
	const char *feature;
	const char *without;
} needs[] = {
	{ CAP_NET_ADMIN,
	  "SIOCGSKNS on received sockets; NFQUEUE config and verdict messages on the "
	  "agents' sockets; SO_RCVBUFFORCE",
	  "every agent is refused (fd 0: cannot tell its network namespace)" },
	{ CAP_SYS_ADMIN,
	  "setns() into a namespace to read its kernel queue stats (nfq-ctl agents, "
	  "metrics, settling after a restart) and to open the nf_tables socket that "
	  "installs its steering",
	  "no kernel stats and no settling for --netns agents; namespaces with a steer "
	  "list are served unsteered" },
	{ CAP_DAC_READ_SEARCH,
	  "reading a namespace's /proc/net/netfilter/nfnetlink_queue (mode 0440, owned by "
	  "the root of the user namespace owning it) when that is not the broker's uid or gid",
	  "no kernel stats and no settling for namespaces owned by a user namespace, or for "
	  "every namespace under --user" },
	{ CAP_SYS_PTRACE,
	  "stat() of /proc/PID/ns/net pins of other users' or more privileged processes",
	  "agents under such pins are refused with Permission denied" },
};

#define NNEEDS (sizeof(needs) / sizeof(needs[0]))

uint64_t privs_needed(const struct cfg *c)
{
	/* Which namespaces will attach (owned by which user namespace) is not
	 * known up front, so the read override for their stats file stays. */
	uint64_t caps = PRIVS_BIT(CAP_NET_ADMIN) | PRIVS_BIT(CAP_SYS_ADMIN) |
			PRIVS_BIT(CAP_DAC_READ_SEARCH);

	for (size_t i = 0; c && i < c->nns; i++)
		if (c->ns[i].netns && strncmp(c->ns[i].netns, "/proc/", 6) == 0)
			caps |= PRIVS_BIT(CAP_SYS_PTRACE);
	return caps;
}

const char *privs_feature(int cap)
{
	for (size_t i = 0; i < NNEEDS; i++)
		if (needs[i].cap == cap)
			return needs[i].feature;
	return NULL;
}

const char *privs_without(int cap)
{
	for (size_t i = 0; i < NNEEDS; i++)
		if (needs[i].cap == cap)
			return needs[i].without;
	return NULL;
}

const char *privs_text(uint64_t caps, char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (int c = 0; c < 64; c++) {
		char *name;

		if (!(caps & PRIVS_BIT(c)))
			continue;
		name = cap_to_name((cap_value_t)c);
		used += (size_t)snprintf(buf + (used < len ? used : len - 1),
					 used < len ? len - used : 1, "%s%s",
					 used ? "," : "", name ? name : "?");
		cap_free(name);
	}
	if (!buf[0])
		snprintf(buf, len, "none");
	return buf;
}

int privs_parse_user(const char *spec, struct privs_user *u, char *why, size_t whylen)
{
	int rc = nfqb_agent_lookup_user(spec, &u->uid, &u->gid, why, whylen);

	u->set = rc == 0;
	return rc;
}

int privs_parse_group(const char *spec, gid_t *gid, char *why, size_t whylen)
{
	unsigned long v;
	struct group *g;
	char *end;

	if (!spec || !*spec) {
		snprintf(why, whylen, "no group given");
		return -EINVAL;
	}
	if (strspn(spec, "0123456789") == strlen(spec)) {
		errno = 0;
		v = strtoul(spec, &end, 10);
		if (errno || strlen(spec) > 10 || v >= 0xffffffffUL) {
			snprintf(why, whylen, "group id %s out of range 0-4294967294", spec);
			return -ERANGE;
		}
		*gid = (gid_t)v;
		return 0;
	}
	errno = 0;
	/* The broker is one thread: getgrnam's static buffer is fine. */
	g = getgrnam(spec);
	if (!g) {
		if (errno && errno != ENOENT && errno != ESRCH) {
			snprintf(why, whylen, "looking up group \"%s\": %s", spec, strerror(errno));
			return -errno;
		}
		snprintf(why, whylen, "unknown group \"%s\"", spec);
		return -ENOENT;
	}
	*gid = g->gr_gid;
	return 0;
}

static uint64_t permitted_now(void)
{
	cap_t now = cap_get_proc();
	uint64_t caps = 0;

	if (!now)
		return 0;
	for (int c = 0; c <= CAP_LAST_CAP && c < 64; c++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(now, (cap_value_t)c, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			caps |= PRIVS_BIT(c);
	}
	cap_free(now);
	return caps;
}

/* Returns 1 when all others left the bounding set, 0 without CAP_SETPCAP. */
static int drop_bounding(uint64_t keep)
{
	for (int c = 0; c < cap_max_bits() && c < 64; c++) {
		int in;

		if (keep & PRIVS_BIT(c))
			continue;
		in = cap_get_bound((cap_value_t)c);
		if (in < 0) {
			if (errno == EINVAL)
				continue;   /* libcap knows more than this kernel */
			return -errno;
		}
		if (in && cap_drop_bound((cap_value_t)c) < 0)
			return errno == EPERM ? 0 : -errno;
	}
	return 1;
}

/* Become @u, only its group; KEEPCAPS keeps the permitted set across. */
static int switch_user(const struct privs_user *u, char *why, size_t whylen)
{
	int rc = 0;

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		rc = -errno;
	else if (setgroups(1, &u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
		 setresuid(u->uid, u->uid, u->uid) < 0)
		rc = -errno;
	(void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	if (rc < 0)
		snprintf(why, whylen, "cannot become uid %u gid %u: %s", (unsigned)u->uid,
			 (unsigned)u->gid, strerror(-rc));
	return rc;
}

/* Permitted = effective = @keep, inheritable empty; checked afterwards. */
static int set_caps(uint64_t keep, char *why, size_t whylen)
{
	cap_t want = cap_init(), now = NULL;
	int rc = 0;

	if (!want)
		return -errno;
	for (int c = 0; c < 64; c++) {
		cap_value_t v = (cap_value_t)c;

		if (!(keep & PRIVS_BIT(c)))
			continue;
		if (cap_set_flag(want, CAP_PERMITTED, 1, &v, CAP_SET) < 0 ||
		    cap_set_flag(want, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (cap_set_proc(want) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot set capabilities: %s", strerror(-rc));
		goto fail;
	}
	now = cap_get_proc();
	if (!now || cap_compare(now, want) != 0) {
		rc = -EPERM;
		snprintf(why, whylen, "capabilities are not what was set");
	}
fail:
	cap_free(now);
	cap_free(want);
	return rc;
}

int privs_drop(uint64_t want, const struct privs_user *user, struct privs_result *res,
	       char *why, size_t whylen)
{
	uint64_t permitted = permitted_now();
	int rc;

	res->kept = want & permitted;
	res->missing = want & ~permitted;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(why, whylen, "no_new_privs: %s", strerror(-rc));
		return rc;
	}
	/* Needs CAP_SETPCAP, which goes below: first. */
	rc = drop_bounding(res->kept);
	if (rc < 0) {
		snprintf(why, whylen, "bounding set: %s", strerror(-rc));
		return rc;
	}
	res->bounding_cleared = rc == 1;
	if (cap_reset_ambient() < 0 && errno != EINVAL) {
		rc = -errno;
		snprintf(why, whylen, "ambient set: %s", strerror(-rc));
		return rc;
	}
	if (user && user->set && (getuid() != user->uid || geteuid() != user->uid ||
				  getgid() != user->gid || getegid() != user->gid ||
				  getgroups(0, NULL) != 1)) {
		rc = switch_user(user, why, whylen);
		if (rc < 0)
			return rc;
	}
	return set_caps(res->kept, why, whylen);
}
