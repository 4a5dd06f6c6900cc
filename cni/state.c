/* SPDX-License-Identifier: MIT */
/*
 * <state_dir>/<container id>.json: which agent serves a container and the
 * (network, interface) attachments it serves them for; .log: its stderr;
 * .status: its --status-file. <state_dir>/logs/: logs kept after DEL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "cni.h"
#include "fsutil.h"

int state_paths_init(struct paths *p, const char *state_dir, const char *cid)
{
	if (snprintf(p->state, sizeof(p->state), "%s/%s.json", state_dir, cid) >=
	    (int)sizeof(p->state) ||
	    snprintf(p->log, sizeof(p->log), "%s/%s.log", state_dir, cid) >= (int)sizeof(p->log) ||
	    snprintf(p->status, sizeof(p->status), "%s/%s.status", state_dir, cid) >=
	    (int)sizeof(p->status))
		return -ENAMETOOLONG;
	return 0;
}

/* Two networks of one container are set up by two plugin runs that may
 * overlap: their read-modify-write of the record is serialised here. */
int state_lock(const char *state_dir)
{
	int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	return fd;
}

int state_att_find(const struct state *s, const char *net, const char *ifname)
{
	for (size_t i = 0; i < s->n_att; i++)
		if (strcmp(s->att[i].net, net) == 0 && strcmp(s->att[i].ifname, ifname) == 0)
			return (int)i;
	return -1;
}

int state_att_add(struct state *s, const char *net, const char *ifname)
{
	if (state_att_find(s, net, ifname) >= 0)
		return 0;
	if (s->n_att >= ATT_MAX)
		return -ENOSPC;
	snprintf(s->att[s->n_att].net, NET_MAX, "%s", net);
	snprintf(s->att[s->n_att].ifname, IF_MAX, "%s", ifname);
	s->n_att++;
	return 0;
}

bool state_att_del(struct state *s, const char *net, const char *ifname)
{
	int i = state_att_find(s, net, ifname);

	if (i < 0)
		return false;
	memmove(&s->att[i], &s->att[i + 1], (s->n_att - (size_t)i - 1) * sizeof(s->att[0]));
	s->n_att--;
	return true;
}

int state_write(const char *path, const struct state *s)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct iovec iov[2] = { [1] = { .iov_base = "\n", .iov_len = 1 } };
	const char *txt;
	int ret;

	if (!o || !a) {
		json_object_put(o);
		json_object_put(a);
		return -ENOMEM;
	}
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	json_object_object_add(o, "starttime", json_object_new_uint64(s->start));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "netns", json_object_new_string(s->netns));
	if (s->broker[0])
		json_object_object_add(o, "broker", json_object_new_string(s->broker));
	for (size_t i = 0; i < s->n_att; i++) {
		struct json_object *x = json_object_new_object();

		json_object_object_add(x, "network", json_object_new_string(s->att[i].net));
		json_object_object_add(x, "ifname", json_object_new_string(s->att[i].ifname));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "attachments", a);
	txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					     JSON_C_TO_STRING_NOSLASHESCAPE);
	iov[0] = (struct iovec){ .iov_base = (void *)txt, .iov_len = strlen(txt) };
	/* A torn file would leave DEL unable to find the agent: write, then rename. */
	ret = fs_write_replace(path, iov, 2, 0600);
	json_object_put(o);
	return ret;
}

static void read_atts(struct json_object *o, struct state *s)
{
	struct json_object *a, *n, *i;

	if (!json_object_object_get_ex(o, "attachments", &a) || !json_object_is_type(a, json_type_array))
		return;
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		struct json_object *x = json_object_array_get_idx(a, k);

		if (json_object_object_get_ex(x, "network", &n) && json_object_is_type(n, json_type_string) &&
		    json_object_object_get_ex(x, "ifname", &i) && json_object_is_type(i, json_type_string))
			state_att_add(s, json_object_get_string(n), json_object_get_string(i));
	}
}

/* Returns 0, -ENOENT when there is no state, -EINVAL when it is unreadable. */
int state_read(const char *path, struct state *s)
{
	struct json_object *o = NULL, *v;
	char *buf = NULL;
	ssize_t n = fs_read_file(path, STATE_MAX, &buf);
	int ret = -EINVAL;

	memset(s, 0, sizeof(*s));
	if (n < 0)
		return n == -ENOENT ? -ENOENT : -EINVAL;
	o = json_tokener_parse(buf);
	free(buf);
	if (!o || !json_object_is_type(o, json_type_object))
		goto fail;
	if (!json_object_object_get_ex(o, "pid", &v) || !json_object_is_type(v, json_type_int))
		goto fail;
	s->pid = (pid_t)json_object_get_int(v);
	if (!json_object_object_get_ex(o, "starttime", &v) || !json_object_is_type(v, json_type_int))
		goto fail;
	s->start = json_object_get_uint64(v);
	if (!json_object_object_get_ex(o, "name", &v) || !json_object_is_type(v, json_type_string))
		goto fail;
	snprintf(s->name, sizeof(s->name), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "netns", &v) && json_object_is_type(v, json_type_string))
		snprintf(s->netns, sizeof(s->netns), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "broker", &v) && json_object_is_type(v, json_type_string))
		snprintf(s->broker, sizeof(s->broker), "%s", json_object_get_string(v));
	read_atts(o, s);
	ret = s->pid > 0 ? 0 : -EINVAL;
fail:
	json_object_put(o);
	return ret;
}

/* The log's file name: the agent's name with '/' as '_' (names hold no other
 * byte a file name cannot). */
static int log_name(char *out, size_t len, const char *state_dir, const char *name, int n)
{
	char safe[WIRE_NAME_MAX];

	snprintf(safe, sizeof(safe), "%s", name[0] ? name : "unnamed");
	for (char *c = safe; *c; c++)
		if (*c == '/')
			*c = '_';
	return snprintf(out, len, "%s/logs/%s.%d.log", state_dir, safe, n) >= (int)len ? -1 : 0;
}

/* The last LOG_KEEP_BYTES of @path: a log of any size costs that much. */
static ssize_t log_tail(const char *path, char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 &&
	    lseek(fd, st.st_size > (off_t)LOG_KEEP_BYTES ? st.st_size - (off_t)LOG_KEEP_BYTES : 0,
		  SEEK_SET) >= 0)
		n = read(fd, buf, LOG_KEEP_BYTES);
	close(fd);
	return n;
}

void state_keep_log(const char *state_dir, const char *log, const char *name)
{
	char dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX], *buf = malloc(LOG_KEEP_BYTES);
	ssize_t n = buf ? log_tail(log, buf) : -1;
	int fd;

	unlink(log);
	if (n <= 0 || snprintf(dir, sizeof(dir), "%s/logs", state_dir) >= (int)sizeof(dir) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST))
		goto out;
	for (int i = LOG_KEEP - 1; i >= 1; i--) {
		if (log_name(from, sizeof(from), state_dir, name, i) < 0 ||
		    log_name(to, sizeof(to), state_dir, name, i + 1) < 0)
			goto out;
		rename(from, to);
	}
	if (log_name(to, sizeof(to), state_dir, name, 1) < 0)
		goto out;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, buf, (size_t)n) != n)
			unlink(to);
		close(fd);
	}
out:
	free(buf);
}

void state_remove(const struct paths *p, const char *state_dir, const char *name)
{
	unlink(p->state);
	unlink(p->status);
	state_keep_log(state_dir, p->log, name);
}
