/* SPDX-License-Identifier: MIT */
/* <state_dir>/<container id>.json: which agent serves a container; .log: its stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni.h"
#include "fsutil.h"

int state_paths_init(struct paths *p, const struct conf *c, const char *cid)
{
	if (snprintf(p->state, sizeof(p->state), "%s/%s.json", c->state_dir, cid) >=
	    (int)sizeof(p->state) ||
	    snprintf(p->log, sizeof(p->log), "%s/%s.log", c->state_dir, cid) >= (int)sizeof(p->log))
		return -ENAMETOOLONG;
	return 0;
}

int state_write(const char *path, const struct state *s, const char *ifname)
{
	struct json_object *o = json_object_new_object();
	char tmp[PATH_MAX + 8];
	const char *txt;
	int fd = -1, ret = 0;
	size_t len;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	json_object_object_add(o, "starttime", json_object_new_uint64(s->start));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "netns", json_object_new_string(s->netns));
	json_object_object_add(o, "ifname", json_object_new_string(ifname ? ifname : ""));
	txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					     JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(txt);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* A torn file would leave DEL unable to find the agent: write, then rename. */
	if (write(fd, txt, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		ret = errno ? -errno : -EIO;
		unlink(tmp);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		ret = -errno;
		unlink(tmp);
	}
fail:
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	return ret;
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
	ret = s->pid > 0 ? 0 : -EINVAL;
fail:
	json_object_put(o);
	return ret;
}

void state_remove(const struct paths *p)
{
	unlink(p->state);
	unlink(p->log);
}
