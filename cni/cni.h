/* SPDX-License-Identifier: MIT */
/*
 * nfq-cni internals, shared by its files:
 *   main.c     command dispatch and ADD/DEL/CHECK/STATUS/GC (cni_main)
 *   cli.c      main(), apart so that the unit tests link the rest
 *   netconf.c  the netconf on stdin, CNI_* environment, CNI_ARGS, the name
 *   agent.c    finding, starting, stopping an nfq-agent; reading its log
 *   state.c    <state_dir>/<container id>.json (.log, .status), the lock,
 *              the retained logs
 *   result.c   CNI results and error objects on stdout
 *   via-holder.c  the commands through nfq-holder ("holder" in the netconf)
 */
#ifndef NFQB_CNI_H
#define NFQB_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "paths.h"
#include "wire.h"

#define NETCONF_MAX (1u << 20)
#define STATE_MAX (64u << 10)
#define LOG_READ_MAX (256u << 10)
#define DEFAULT_BROKER NFQB_PATH_AGENT_SOCK
#define DEFAULT_STATE_DIR "/run/nfq-broker/cni"
#define DEFAULT_ATTACH_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define POLL_MS 20
#define CID_MAX 200
#define NET_MAX 128               /* the netconf's "name" */
#define IF_MAX 64                 /* CNI_IFNAME */
#define ATT_MAX 32                /* attachments one agent serves */
#define LOG_KEEP 5                /* retained logs per name */
#define LOG_KEEP_BYTES (64u << 10) /* each keeps its last 64 KiB */
#define EXCLUDE_MAX 64

/* CNI error codes: 1-99 are the spec's, the rest are this plugin's. */
enum {
	CNI_ERR_VERSION = 1,      /* incompatible CNI version */
	CNI_ERR_FIELD = 2,        /* unsupported field in the network config */
	CNI_ERR_ENV = 4,          /* invalid environment variables */
	CNI_ERR_IO = 5,           /* I/O failure */
	CNI_ERR_DECODE = 6,       /* failed to decode the netconf */
	CNI_ERR_NETCONF = 7,      /* invalid network config */
	CNI_ERR_TRY_LATER = 11,   /* the broker is not reachable */
	CNI_ERR_UNAVAILABLE = 50, /* STATUS: the broker is not reachable */
	CNI_ERR_REFUSED = 999,    /* the broker refused the agent */
	CNI_ERR_AGENT = 1000,     /* the agent could not be started or died */
	CNI_ERR_STATE = 1001,     /* the state directory or files failed */
	CNI_ERR_NOT_ATTACHED = 1002, /* CHECK: no agent, not running, not attached */
};

/* The CNI spec versions this plugin speaks, NULL-terminated. */
extern const char *const cni_supported_versions[];

struct cni_err {
	int code;
	char msg[1024];
	char details[1024];
};

struct conf {
	struct json_object *root;
	const char *version;       /* one of supported_versions */
	const char *broker;
	const char *agent;         /* NULL: CNI_PATH, beside nfq-cni, then PATH */
	const char *state_dir;
	const char *holder;        /* nfq-holder's socket, or NULL: start the agent directly */
	const char *netname;       /* "name": attachments are per network */
	int attach_timeout_ms;
	struct json_object *prev;  /* prevResult (borrowed from root), or NULL */
	const char *excl_ns[EXCLUDE_MAX];   /* exclude_namespaces (borrowed) */
	size_t n_excl_ns;
	const char *excl_pods[EXCLUDE_MAX]; /* exclude_pods: fnmatch globs */
	size_t n_excl_pods;
	struct json_object *valid; /* GC: cni.dev/valid-attachments, or NULL */
};

struct env {
	const char *command;
	const char *cid;
	const char *netns;
	const char *ifname;
	char k8s_ns[WIRE_NAME_MAX]; /* CNI_ARGS K8S_POD_NAMESPACE, "" when absent */
	char name[WIRE_NAME_MAX];
};

/* One (network, interface) of a container: what ADD adds and DEL drops. */
struct att {
	char net[NET_MAX];
	char ifname[IF_MAX];
};

struct state {
	pid_t pid;
	unsigned long long start;  /* process start time: pids get reused */
	char name[WIRE_NAME_MAX];
	char netns[PATH_MAX];
	char broker[108];          /* the agent's --broker (nfq-holder restarts it with it) */
	struct att att[ATT_MAX];
	size_t n_att;
};

struct paths {
	char state[PATH_MAX];
	char log[PATH_MAX];
	char status[PATH_MAX];
};

/* The agent's --status-file, parsed. */
struct agent_status {
	char state[16];            /* attached, retrying, refused, error, stopped */
	unsigned long attempts;
	char reason[512];
};

/* ---- main.c */

/* cni_main - the whole plugin: CNI_* from the environment, the netconf on
 * stdin, the answer on stdout; the exit status. */
int cni_main(int argc, char **argv);

/* ---- result.c */

/* cni_set_err - fill @e (the first error wins); returns -EINVAL for the
 * caller to pass up. */
__attribute__((format(printf, 3, 4)))
int cni_set_err(struct cni_err *e, int code, const char *fmt, ...);
/* cni_set_details - the error's "details" (an agent's last log line). */
void cni_set_details(struct cni_err *e, const char *s);
/* cni_print_error - the CNI error object on stdout; the exit status is the caller's. */
void cni_print_error(const struct cni_err *e, const char *version);
/* cni_print_version - the VERSION command's answer, in @version (the netconf's). */
void cni_print_version(const char *version);
/* cni_print_result - ADD's result: the previous result passed on, in the
 * shape of the netconf's version. */
void cni_print_result(const struct conf *c);
/* cni_version_at_least - whether CNI version @v is @major.@minor or later. */
bool cni_version_at_least(const char *v, int major, int minor);

/* ---- netconf.c */

/* netconf_read - read and validate the netconf on stdin into @c. */
int netconf_read(struct conf *c, struct cni_err *e);
/* netconf_version_only - VERSION: the cniVersion on stdin when it is one we
 * speak, else "1.1.0"; stdin may be empty. */
const char *netconf_version_only(void);
/* netconf_sanitize_name - map every byte the wire refuses to '_'. */
void netconf_sanitize_name(char *name);
/* netconf_excluded - whether the pod of @v is excluded by @c. */
bool netconf_excluded(const struct conf *c, const struct env *v);
/* netconf_env_get - a CNI_* variable, NULL when unset or empty. */
const char *netconf_env_get(const char *key);
/* netconf_env_read - CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, and the
 * agent's name (from CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME, else the
 * container id). */
int netconf_env_read(struct env *v, struct cni_err *e);

/* ---- agent.c */

/* agent_proc_stat - start time and state letter of @pid from /proc. */
int agent_proc_stat(pid_t pid, unsigned long long *start, char *st);
/* agent_alive - whether the process recorded in @s still runs (same start time, nfq-agent). */
bool agent_alive(const struct state *s);
/* agent_stop - SIGTERM the recorded agent, SIGKILL after STOP_TIMEOUT_MS. */
void agent_stop(const struct state *s);
/* agent_child_stop - end and reap our own child. */
void agent_child_stop(pid_t pid);
/* agent_find - the nfq-agent to run: conf "agent", each CNI_PATH
 * directory, beside nfq-cni (symlinks resolved), or PATH. */
int agent_find(const struct conf *c, char *out, size_t outlen, struct cni_err *e);
/* agent_spawn - start @prog detached, stderr to @logfd; the pid or -errno. */
pid_t agent_spawn(const char *prog, char *const argv[], int logfd);
/* agent_log_last_line - the last non-empty line of @text holding @prefix
 * (NULL: any), after the prefix, into @out. */
bool agent_log_last_line(const char *text, const char *prefix, char *out, size_t outlen);
/* agent_status_read - parse the agent's --status-file; -ENOENT before it wrote one. */
int agent_status_read(const char *path, struct agent_status *st);

/* ---- via-holder.c: the commands when the netconf names a "holder" */

/* via_holder_add - HOLD the attachment; the result printed once attached. */
int via_holder_add(const struct conf *c, const struct env *v, struct cni_err *e);
/* via_holder_del - RELEASE (network, interface); the holder ends the agent after the last. */
int via_holder_del(const struct conf *c, const struct env *v, struct cni_err *e);
/* via_holder_check - CHECK, answered by the holder. */
int via_holder_check(const struct conf *c, const struct env *v, struct cni_err *e);
/* via_holder_gc - GC with cni.dev/valid-attachments, done by the holder. */
int via_holder_gc(const struct conf *c, struct cni_err *e);
/* via_holder_status - STATUS's holder half: its socket takes a connection. */
int via_holder_status(const struct conf *c, struct cni_err *e);

/* ---- state.c */

/* state_paths_init - the state, log and status file paths of container @cid. */
int state_paths_init(struct paths *p, const char *state_dir, const char *cid);
/* state_lock - an exclusive flock on @state_dir: the fd, or -errno. */
int state_lock(const char *state_dir);
/* state_write - record @s atomically (write, then rename). */
int state_write(const char *path, const struct state *s);
/* state_read - 0, -ENOENT when there is no state, -EINVAL when unreadable. */
int state_read(const char *path, struct state *s);
/* state_att_find - index of (@net, @ifname) in @s, or -1. */
int state_att_find(const struct state *s, const char *net, const char *ifname);
/* state_att_add - record (@net, @ifname) once; -ENOSPC when full. */
int state_att_add(struct state *s, const char *net, const char *ifname);
/* state_att_del - drop (@net, @ifname); whether it was there. */
bool state_att_del(struct state *s, const char *net, const char *ifname);
/* state_remove - drop the state and status files and keep the log (see
 * state_keep_log) under @name. */
void state_remove(const struct paths *p, const char *state_dir, const char *name);
/* state_keep_log - move @log to <state_dir>/logs/<name>.1.log (its last
 * LOG_KEEP_BYTES), shifting older ones up to LOG_KEEP. */
void state_keep_log(const char *state_dir, const char *log, const char *name);

#endif
