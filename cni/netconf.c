/* SPDX-License-Identifier: MIT */
/* The netconf on stdin, the CNI_* environment and the agent's name. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/un.h>

#include "cni.h"
#include "fsutil.h"
#include "holder.h"

static int conf_string(struct json_object *root, const char *key, const char *def,
		       const char **out, struct cni_err *e)
{
	struct json_object *v;

	*out = def;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.%s: must be a string", key);
	*out = json_object_get_string(v);
	if (!**out)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.%s: must not be empty", key);
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.%s: contains a NUL byte", key);
	return 0;
}

static int conf_version(struct conf *c, struct cni_err *e)
{
	const char *v;

	if (conf_string(c->root, "cniVersion", NULL, &v, e) < 0)
		return -EINVAL;
	if (!v)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.cniVersion: missing");
	for (size_t i = 0; cni_supported_versions[i]; i++) {
		if (strcmp(v, cni_supported_versions[i]) == 0) {
			c->version = cni_supported_versions[i];
			return 0;
		}
	}
	cni_set_err(e, CNI_ERR_VERSION, "netconf.cniVersion: version \"%.64s\" not supported", v);
	cni_set_details(e, "supported versions: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0");
	return -EINVAL;
}

/* A list of strings, borrowed from the netconf. */
static int conf_list(struct json_object *root, const char *key, const char **out, size_t *n,
		     struct cni_err *e)
{
	struct json_object *v;

	*n = 0;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.%s: must be a list of strings", key);
	if (json_object_array_length(v) > EXCLUDE_MAX)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.%s: more than %d entries", key,
			       EXCLUDE_MAX);
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *x = json_object_array_get_idx(v, i);

		if (!json_object_is_type(x, json_type_string) || !json_object_get_string_len(x))
			return cni_set_err(e, CNI_ERR_NETCONF, "netconf.%s[%zu]: must be a non-empty string",
				       key, i);
		out[(*n)++] = json_object_get_string(x);
	}
	return 0;
}

/* GC's list: [{"containerID": ..., "ifname": ...}], checked up front. */
static int conf_valid(struct conf *c, struct cni_err *e)
{
	struct json_object *v, *x;

	if (!json_object_object_get_ex(c->root, "cni.dev/valid-attachments", &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.cni.dev/valid-attachments: must be a list");
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *a = json_object_array_get_idx(v, i);

		if (!json_object_is_type(a, json_type_object) ||
		    !json_object_object_get_ex(a, "containerID", &x) || !json_object_is_type(x, json_type_string) ||
		    !json_object_object_get_ex(a, "ifname", &x) || !json_object_is_type(x, json_type_string))
			return cni_set_err(e, CNI_ERR_NETCONF,
				       "netconf.cni.dev/valid-attachments[%zu]: needs string \"containerID\" and \"ifname\"",
				       i);
	}
	c->valid = v;
	return 0;
}

static int conf_keys(struct conf *c, struct cni_err *e)
{
	struct json_object *v;

	if (conf_string(c->root, "name", NULL, &c->netname, e) < 0)
		return -EINVAL;
	if (!c->netname)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.name: missing");
	if (strlen(c->netname) >= NET_MAX)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.name: longer than %d bytes", NET_MAX - 1);
	if (conf_list(c->root, "exclude_namespaces", c->excl_ns, &c->n_excl_ns, e) < 0 ||
	    conf_list(c->root, "exclude_pods", c->excl_pods, &c->n_excl_pods, e) < 0 ||
	    conf_valid(c, e) < 0)
		return -EINVAL;

	if (conf_string(c->root, "broker", DEFAULT_BROKER, &c->broker, e) < 0 ||
	    conf_string(c->root, "agent", NULL, &c->agent, e) < 0 ||
	    conf_string(c->root, "state_dir", DEFAULT_STATE_DIR, &c->state_dir, e) < 0 ||
	    conf_string(c->root, "holder", NULL, &c->holder, e) < 0)
		return -EINVAL;
	if (c->holder && c->holder[0] != '/')
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.holder: \"%.256s\" is not an absolute path",
			       c->holder);
	if (c->holder && strlen(c->holder) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.holder: path longer than %zu bytes",
			       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (c->broker[0] != '/')
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.broker: \"%.256s\" is not an absolute path",
			       c->broker);
	if (strlen(c->broker) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.broker: path longer than %zu bytes",
			       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (c->state_dir[0] != '/')
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.state_dir: \"%.256s\" is not an absolute path",
			       c->state_dir);
	if (strlen(c->state_dir) > PATH_MAX - CID_MAX - 16)
		return cni_set_err(e, CNI_ERR_NETCONF, "netconf.state_dir: path too long");
	c->attach_timeout_ms = DEFAULT_ATTACH_TIMEOUT_MS;
	if (json_object_object_get_ex(c->root, "attach_timeout_ms", &v)) {
		int64_t ms = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || ms < 100 || ms > 600000)
			return cni_set_err(e, CNI_ERR_NETCONF,
				       "netconf.attach_timeout_ms: must be an integer 100-600000");
		c->attach_timeout_ms = (int)ms;
	}
	if (json_object_object_get_ex(c->root, "prevResult", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_object))
			return cni_set_err(e, CNI_ERR_NETCONF, "netconf.prevResult: must be an object");
		c->prev = v;
	}
	return 0;
}

/* Parse and check the netconf; on failure @e says why (and c->version is
 * set once the version is known, for the error object). */
static int conf_parse(struct conf *c, const char *buf, size_t len, struct cni_err *e)
{
	struct json_tokener *tok = json_tokener_new();
	size_t end;

	if (!tok)
		return cni_set_err(e, CNI_ERR_DECODE, "netconf: out of memory");
	c->root = json_tokener_parse_ex(tok, buf, (int)len);
	if (!c->root) {
		enum json_tokener_error je = json_tokener_get_error(tok);

		json_tokener_free(tok);
		return cni_set_err(e, CNI_ERR_DECODE, "netconf: invalid JSON: %s",
			       je == json_tokener_continue ? "unexpected end of input" :
			       json_tokener_error_desc(je));
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++) {
		if (!strchr(" \t\r\n", buf[end]))
			return cni_set_err(e, CNI_ERR_DECODE,
				       "netconf: invalid JSON: trailing data at offset %zu", end);
	}
	if (!json_object_is_type(c->root, json_type_object))
		return cni_set_err(e, CNI_ERR_DECODE, "netconf: not a JSON object");
	if (conf_version(c, e) < 0)
		return -EINVAL;
	return conf_keys(c, e);
}

const char *netconf_version_only(void)
{
	struct json_object *o = NULL, *v;
	const char *ver = "1.1.0";
	char *buf = NULL;

	if (isatty(STDIN_FILENO) || fs_read_fd(STDIN_FILENO, NETCONF_MAX, &buf) <= 0)
		goto out;
	o = json_tokener_parse(buf);
	if (!o || !json_object_object_get_ex(o, "cniVersion", &v) || !json_object_is_type(v, json_type_string))
		goto out;
	for (size_t i = 0; cni_supported_versions[i]; i++)
		if (strcmp(json_object_get_string(v), cni_supported_versions[i]) == 0)
			ver = cni_supported_versions[i];
out:
	json_object_put(o);
	free(buf);
	return ver;
}

int netconf_read(struct conf *c, struct cni_err *e)
{
	char *buf = NULL;
	ssize_t n = fs_read_fd(STDIN_FILENO, NETCONF_MAX, &buf);
	int ret;

	if (n == -EFBIG)
		return cni_set_err(e, CNI_ERR_DECODE, "netconf: larger than %u bytes", NETCONF_MAX);
	if (n < 0)
		return cni_set_err(e, CNI_ERR_DECODE, "netconf: reading stdin: %s", strerror((int)-n));
	ret = conf_parse(c, buf, (size_t)n, e);
	free(buf);
	return ret;
}

/* ------------------------------------------------------------------ environment */

const char *netconf_env_get(const char *key)
{
	const char *v = getenv(key);

	return v && *v ? v : NULL;
}

/* Pick K8S_POD_NAMESPACE and K8S_POD_NAME out of "K=V;K=V". */
static int parse_args(const char *args, char *ns, char *pod, size_t len, struct cni_err *e)
{
	const char *p = args;

	ns[0] = pod[0] = '\0';
	while (p && *p) {
		const char *semi = strchr(p, ';');
		size_t n = semi ? (size_t)(semi - p) : strlen(p);
		const char *eq = memchr(p, '=', n);

		if (n > 0) {
			size_t klen = eq ? (size_t)(eq - p) : 0, vlen = eq ? n - klen - 1 : 0;
			char *dst = NULL;

			if (!eq || klen == 0)
				return cni_set_err(e, CNI_ERR_ENV, "CNI_ARGS: \"%.*s\" is not KEY=VALUE",
					       (int)(n > 128 ? 128 : n), p);
			if (klen == 17 && memcmp(p, "K8S_POD_NAMESPACE", 17) == 0)
				dst = ns;
			else if (klen == 12 && memcmp(p, "K8S_POD_NAME", 12) == 0)
				dst = pod;
			if (dst) {
				if (vlen >= len)
					return cni_set_err(e, CNI_ERR_ENV, "CNI_ARGS: %.*s: value too long",
						       (int)klen, p);
				memcpy(dst, eq + 1, vlen);
				dst[vlen] = '\0';
			}
		}
		p = semi ? semi + 1 : NULL;
	}
	return 0;
}

void netconf_sanitize_name(char *name)
{
	for (char *p = name; *p; p++)
		if (!wire_name_char_ok((unsigned char)*p))
			*p = '_';
}

/*
 * The agent's name: "<K8S_POD_NAMESPACE>/<K8S_POD_NAME>", K8S_POD_NAME
 * alone (podman passes no namespace), else the container id. Bytes the
 * wire refuses (space, control bytes, '"', '\\', '=', non-ASCII) become
 * '_': a runtime's name never fails ADD, only its length can.
 */
static int env_name(struct env *v, struct cni_err *e)
{
	char pod[WIRE_NAME_MAX];
	const char *args = netconf_env_get("CNI_ARGS");

	if (parse_args(args, v->k8s_ns, pod, sizeof(pod), e) < 0)
		return -EINVAL;
	if (v->k8s_ns[0] && pod[0]) {
		size_t nl = strlen(v->k8s_ns), pl = strlen(pod);

		if (nl + 1 + pl >= sizeof(v->name))
			return cni_set_err(e, CNI_ERR_ENV, "CNI_ARGS: K8S_POD_NAMESPACE/K8S_POD_NAME: "
				       "longer than %d bytes", WIRE_NAME_MAX - 1);
		memcpy(v->name, v->k8s_ns, nl);
		v->name[nl] = '/';
		memcpy(v->name + nl + 1, pod, pl + 1);
	} else if (pod[0]) {
		snprintf(v->name, sizeof(v->name), "%s", pod);
	} else {
		snprintf(v->name, sizeof(v->name), "%s", v->cid);
	}
	netconf_sanitize_name(v->name);
	return 0;
}

bool netconf_excluded(const struct conf *c, const struct env *v)
{
	for (size_t i = 0; i < c->n_excl_ns; i++)
		if (v->k8s_ns[0] && strcmp(c->excl_ns[i], v->k8s_ns) == 0)
			return true;
	for (size_t i = 0; i < c->n_excl_pods; i++)
		if (fnmatch(c->excl_pods[i], v->name, 0) == 0)
			return true;
	return false;
}

int netconf_env_read(struct env *v, struct cni_err *e)
{
	bool del = strcmp(v->command, "DEL") == 0;

	v->cid = netconf_env_get("CNI_CONTAINERID");
	v->netns = netconf_env_get("CNI_NETNS");
	v->ifname = netconf_env_get("CNI_IFNAME");
	if (!v->cid)
		return cni_set_err(e, CNI_ERR_ENV, "CNI_CONTAINERID is not set");
	if (!holder_cid_ok(v->cid))
		return cni_set_err(e, CNI_ERR_ENV, "CNI_CONTAINERID: \"%.256s\" is not a valid container id",
			       v->cid);
	/* DEL must work with what is left: the namespace may be gone. */
	if (del)
		return 0;
	if (!v->netns)
		return cni_set_err(e, CNI_ERR_ENV, "CNI_NETNS is not set");
	if (v->netns[0] != '/' || strlen(v->netns) >= PATH_MAX)
		return cni_set_err(e, CNI_ERR_ENV, "CNI_NETNS: \"%.256s\" is not an absolute path",
			       v->netns);
	if (!v->ifname)
		return cni_set_err(e, CNI_ERR_ENV, "CNI_IFNAME is not set");
	if (strlen(v->ifname) >= IF_MAX)
		return cni_set_err(e, CNI_ERR_ENV, "CNI_IFNAME: longer than %d bytes", IF_MAX - 1);
	return env_name(v, e);
}
