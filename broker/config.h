/* SPDX-License-Identifier: MIT */
/*
 * The broker's configuration (docs/interface.md §2): parsed from JSON and
 * validated in full up front; every problem is reported with its JSON path.
 * The result holds no json-c objects and is immutable once loaded: a reload
 * builds a new struct cfg and swaps the pointer.
 */
#ifndef BROKER_CONFIG_H
#define BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <nfqb/queue.h>

#include "errs.h"
#include "paths.h"
#include "policy.h"
#include "steer.h"

#define CFG_DEFAULT_LISTEN  NFQB_PATH_AGENT_SOCK
#define CFG_DEFAULT_CONTROL NFQB_PATH_CONTROL_SOCK
#define CFG_DEFAULT_MODE    0600
#define CFG_DEFAULT_GRACE_MS 5000u
#define CFG_MAX_GRACE_MS    86400000u    /* one day */
#define CFG_MAX_WORKERS     64u          /* broker.workers; WORKER_MAX */
#define CFG_MAX_FILE_SIZE   (16u << 20)

/* Admission limits (broker.max_*_per_uid). */
#define CFG_DEFAULT_MAX_PENDING_PER_UID 8u
#define CFG_MAX_PENDING_PER_UID  256u       /* the listener's total */
#define CFG_DEFAULT_MAX_SESSIONS_PER_UID 0u /* unlimited */
#define CFG_MAX_SESSIONS_PER_UID 1000000u
/* Control socket and metrics (docs/control.md "Who may ask"). */
#define CFG_DEFAULT_CONTROL_IDLE_MS    10000u
#define CFG_DEFAULT_METRICS_REFRESH_MS 5000u
#define CFG_MIN_CONTROL_MS             100u
#define CFG_MAX_CONTROL_MS             3600000u  /* one hour */

/* One namespaces[] entry. */
struct cfg_ns {
	size_t index;                 /* position in namespaces[] (for messages) */
	char *name;                   /* exact name or shell glob */
	bool glob;                    /* name has glob characters: fnmatch() it */
	char *netns;                  /* pin path, or NULL */
	uint16_t *queues;             /* queue numbers, in the order given */
	size_t nqueues;
	char *policy_name;
	const struct policy *policy;  /* in the same cfg's policy set */
	struct nfqb_queue_opts qopts; /* queue_defaults with this entry's overrides */
	/* "steer" (docs/steering.md): an inline list (owned here) or a named
	 * one (owned by cfg.steering). NULL: no steering ("steer" absent or []). */
	const struct steer_list *steer;
	struct steer_list *steer_own;
	bool audit;                   /* "audit": true: its policy only counts and logs drops */
};

/* Who may use the control socket, and its timers. */
struct cfg_control {
	uid_t *allow_uids;            /* control_allow_uids: read-only commands */
	size_t nallow_uids;
	uid_t *admin_uids;            /* control_admin_uids: also reload and watch */
	size_t nadmin_uids;
	uint32_t idle_ms;             /* control_idle_ms: no request for this long: closed */
	uint32_t metrics_refresh_ms;  /* metrics_refresh_ms: kernel stats snapshot age */
};

struct cfg {
	char *listen;
	char *control;
	char *metrics_listen;         /* broker.metrics_listen ("127.0.0.1:9101"), NULL = off */
	bool metrics_public;          /* broker.metrics_public: metrics_listen may be any address */
	mode_t listen_mode;
	mode_t control_mode;
	uid_t *allow_uids;
	size_t nallow_uids;
	uint32_t grace_ms;
	uint32_t workers;             /* broker.workers: worker threads, 0 = online CPUs */
	/* broker.user and broker.listen_group (privs.h), resolved at load. */
	char *user;                   /* "USER[:GROUP]", NULL = stay who started us */
	uid_t user_uid;
	gid_t user_gid;
	char *listen_group;           /* NULL = the socket keeps the broker's group */
	gid_t listen_gid;
	/* Admission: connections before their hello, sessions, per peer uid. */
	uint32_t max_pending_per_uid;
	uint32_t max_sessions_per_uid;      /* 0: unlimited */
	struct cfg_control ctl;       /* broker.control_* and metrics_refresh_ms */
	struct nfqb_queue_opts queue_defaults;
	struct cfg_ns *ns;
	size_t nns;
	struct policy_set *policies;
	struct steer_list **steering; /* "steering": named steer lists, in file order */
	size_t nsteering;
};

/*
 * cfg_load - read and validate the JSON file @path. Returns the config, or
 * NULL with every problem added to @e (a JSON syntax error names the line
 * and column). Nothing is bound or opened besides the file itself.
 */
struct cfg *cfg_load(const char *path, struct errs *e);

/* cfg_parse_string - the same for a JSON text (tests, reload from memory). */
struct cfg *cfg_parse_string(const char *text, struct errs *e);

/* cfg_parse - the same for an already parsed document. */
struct cfg *cfg_parse(json_object *root, struct errs *e);

/* cfg_free - NULL is a no-op. */
void cfg_free(struct cfg *c);

/*
 * cfg_match - the first namespaces[] entry whose name equals @name or, for
 * a glob, fnmatch()es it; NULL when none does.
 */
const struct cfg_ns *cfg_match(const struct cfg *c, const char *name);

/* cfg_steering_find - the named steer list @name under "steering", or NULL. */
const struct steer_list *cfg_steering_find(const struct cfg *c, const char *name);

/* cfg_uid_allowed - whether @uid is in broker.allow_uids. */
bool cfg_uid_allowed(const struct cfg *c, uid_t uid);

/*
 * cfg_ns_pin_check - whether namespace (@dev, @ino) satisfies @entry's
 * netns pin (always, without one). 0, or a negative errno with a one-line
 * reason in @why: the pin path cannot be read, or is another namespace.
 * The same check at attach and at reload.
 */
int cfg_ns_pin_check(const struct cfg_ns *entry, uint64_t dev, uint64_t ino, char *why,
		     size_t whylen);

/*
 * cfg_control_access - what @uid may do on the control socket: 2 admin
 * (every command), 1 read-only, 0 nothing.
 */
int cfg_control_access(const struct cfg *c, uid_t uid);

/* cfg_copy_name - "none", "meta" or "packet". */
const char *cfg_copy_name(enum nfqb_copy_mode m);

#endif
