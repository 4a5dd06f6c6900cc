/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nfq-cni (cni/): the plugin run in-process through
 * cni_main() with the CNI_* environment, the netconf on stdin and stdout
 * captured, against a fake nfq-agent (a shell script) that writes its
 * --status-file as FAKE_AGENT_MODE says. The spec's conformance: every
 * version, STATUS, GC, per-interface DEL and its refcount, idempotent DEL,
 * prevResult pass-through, names, agent lookup, exclusions, and every
 * error code with its exact message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cni.h"
#include "fsutil.h"
#include "fake-agent.h"

static char root[64];
static char agent[96], statedir[96], sockpath[96];
static char out[16384];
static int timeout_ms = 3000;

static const char *const versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };
#define PREV10 "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\"}]," \
	"\"ips\":[{\"address\":\"10.22.0.5/24\",\"interface\":0}]}"


static int setup(void **state)
{
	FILE *f;

	(void)state;
	snprintf(root, sizeof(root), "/tmp/test-cni.XXXXXX");
	if (!mkdtemp(root))
		return -1;
	snprintf(agent, sizeof(agent), "%s/nfq-agent", root);
	snprintf(sockpath, sizeof(sockpath), "%s/agent.sock", root);
	f = fopen(agent, "w");
	if (!f)
		return -1;
	fputs(fake_agent, f);
	fclose(f);
	return chmod(agent, 0755);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* Each test its own state directory and a clean CNI environment. */
static int each(void **state)
{
	static int n;

	(void)state;
	snprintf(statedir, sizeof(statedir), "%s/state%d", root, ++n);
	unsetenv("CNI_COMMAND");
	unsetenv("CNI_CONTAINERID");
	unsetenv("CNI_NETNS");
	unsetenv("CNI_IFNAME");
	unsetenv("CNI_ARGS");
	unsetenv("CNI_PATH");
	unsetenv("FAKE_AGENT_MODE");
	return 0;
}

/* Reap the fake agents that ended (our children while the test lives). */
static int each_end(void **state)
{
	(void)state;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return 0;
}

static void env(const char *cmd, const char *cid, const char *ifname, const char *args)
{
	setenv("CNI_COMMAND", cmd, 1);
	if (cid)
		setenv("CNI_CONTAINERID", cid, 1);
	else
		unsetenv("CNI_CONTAINERID");
	setenv("CNI_NETNS", "/proc/self/ns/net", 1);
	if (ifname)
		setenv("CNI_IFNAME", ifname, 1);
	else
		unsetenv("CNI_IFNAME");
	if (args)
		setenv("CNI_ARGS", args, 1);
	else
		unsetenv("CNI_ARGS");
}

/* A netconf: version, network name, extra keys (",..." or ""). */
static const char *conf(const char *ver, const char *net, const char *extra)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
		 "{\"cniVersion\":\"%s\",\"name\":\"%s\",\"type\":\"nfq-cni\",\"broker\":\"%s\","
		 "\"agent\":\"%s\",\"state_dir\":\"%s\",\"attach_timeout_ms\":%d%s}",
		 ver, net, sockpath, agent, statedir, timeout_ms, extra);
	return buf;
}

/* Run the plugin with @stdin_text; stdout in out[]; the exit status. */
static int run(const char *stdin_text)
{
	char in_path[160], out_path[160];
	int in, o, saved_in, saved_out, rc;
	ssize_t n;

	snprintf(in_path, sizeof(in_path), "%s/stdin", root);
	snprintf(out_path, sizeof(out_path), "%s/stdout", root);
	in = open(in_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	o = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(in >= 0 && o >= 0);
	assert_int_equal(write(in, stdin_text, strlen(stdin_text)), (ssize_t)strlen(stdin_text));
	lseek(in, 0, SEEK_SET);
	fflush(stdout);
	saved_in = dup(0);
	saved_out = dup(1);
	dup2(in, 0);
	dup2(o, 1);
	rc = cni_main(1, (char *[]){ "nfq-cni", NULL });
	fflush(stdout);
	dup2(saved_in, 0);
	dup2(saved_out, 1);
	close(saved_in);
	close(saved_out);
	lseek(o, 0, SEEK_SET);
	n = read(o, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
	close(in);
	close(o);
	return rc;
}

/* The error object in out[]: code and msg exactly, cniVersion @ver. */
static void expect_err(int code, const char *msg, const char *ver)
{
	struct json_object *o = json_tokener_parse(out), *v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "code", &v));
	if (json_object_get_int(v) != code)
		fail_msg("code %d, expected %d: %s", json_object_get_int(v), code, out);
	assert_true(json_object_object_get_ex(o, "msg", &v));
	assert_string_equal(json_object_get_string(v), msg);
	assert_true(json_object_object_get_ex(o, "cniVersion", &v));
	assert_string_equal(json_object_get_string(v), ver);
	json_object_put(o);
}

static int read_state(const char *cid, struct state *s)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s.json", statedir, cid);
	return state_read(path, s);
}

static bool exists(const char *fmt, const char *a)
{
	char path[512];

	snprintf(path, sizeof(path), fmt, statedir, a);
	return access(path, F_OK) == 0;
}

/* ------------------------------------------------------------------ versions */

static void test_version(void **state)
{
	char want[256], in[128];

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		env("VERSION", NULL, NULL, NULL);
		snprintf(in, sizeof(in), "{\"cniVersion\":\"%s\",\"name\":\"n\"}", versions[i]);
		assert_int_equal(run(in), 0);
		snprintf(want, sizeof(want), "{\"cniVersion\":\"%s\",\"supportedVersions\":"
			 "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}", versions[i]);
		assert_string_equal(out, want);
	}
	assert_int_equal(run(""), 0);
	assert_string_equal(out, "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":"
			    "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}");
}

/* ADD in each version: the result in that version's shape; a prevResult
 * of the same version comes back byte for byte. */
static void test_add_versions(void **state)
{
	char extra[512], cid[32];

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		struct json_object *o, *ips, *v;
		bool old = versions[i][0] == '0';

		snprintf(cid, sizeof(cid), "ver%zu", i);
		env("ADD", cid, "eth0", NULL);
		snprintf(extra, sizeof(extra), ",\"prevResult\":" PREV10);
		assert_int_equal(run(conf(versions[i], "n", extra)), 0);
		o = json_tokener_parse(out);
		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "cniVersion", &v));
		assert_string_equal(json_object_get_string(v), versions[i]);
		assert_true(json_object_object_get_ex(o, "ips", &ips));
		assert_int_equal(json_object_object_get_ex(json_object_array_get_idx(ips, 0), "version", &v), old);
		if (old)
			assert_string_equal(json_object_get_string(v), "4");
		json_object_put(o);
		if (strcmp(versions[i], "1.0.0") == 0)
			assert_string_equal(out, PREV10);
		/* no prevResult: only the version */
		env("ADD", cid, "eth1", NULL);
		assert_int_equal(run(conf(versions[i], "n", "")), 0);
		snprintf(extra, sizeof(extra), "{\"cniVersion\":\"%s\"}", versions[i]);
		assert_string_equal(out, extra);
		env("DEL", cid, "eth0", NULL);
		assert_int_equal(run(conf(versions[i], "n", "")), 0);
		env("DEL", cid, "eth1", NULL);
		assert_int_equal(run(conf(versions[i], "n", "")), 0);
		assert_false(exists("%s/%s.json", cid));
	}
}

static void test_check_versions(void **state)
{
	(void)state;
	env("ADD", "chk", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	env("CHECK", "chk", "eth0", NULL);
	for (size_t i = 0; i < 2; i++) {
		char msg[128];

		assert_int_equal(run(conf(versions[i], "n", "")), 1);
		snprintf(msg, sizeof(msg), "CHECK needs cniVersion 0.4.0 or later, the netconf has %s",
			 versions[i]);
		expect_err(CNI_ERR_VERSION, msg, versions[i]);
	}
	for (size_t i = 2; i < 5; i++) {
		assert_int_equal(run(conf(versions[i], "n", "")), 0);
		assert_string_equal(out, "");
	}
	env("CHECK", "chk", "eth9", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	expect_err(CNI_ERR_NOT_ATTACHED, "container chk has no attachment on network n interface eth9", "1.0.0");
	env("CHECK", "nope", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	expect_err(CNI_ERR_NOT_ATTACHED, "no agent recorded for container nope", "1.0.0");
	env("DEL", "chk", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
}

/* ------------------------------------------------------------------ STATUS, GC */

static void test_status(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[256];
	int fd;

	(void)state;
	env("STATUS", NULL, NULL, NULL);
	assert_int_equal(run(conf("1.1.0", "n", "")), 1);
	snprintf(msg, sizeof(msg), "broker not reachable at %s: No such file or directory", sockpath);
	expect_err(CNI_ERR_UNAVAILABLE, msg, "1.1.0");
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	expect_err(CNI_ERR_VERSION, "STATUS needs cniVersion 1.1.0, the netconf has 1.0.0", "1.0.0");

	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sockpath);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(run(conf("1.1.0", "n", "")), 0);
	assert_string_equal(out, "");
	close(fd);
	unlink(sockpath);
}

static void test_gc(void **state)
{
	struct state a, b;

	(void)state;
	env("ADD", "gc1", "eth0", NULL);
	assert_int_equal(run(conf("1.1.0", "n1", "")), 0);
	env("ADD", "gc1", "eth1", NULL);
	assert_int_equal(run(conf("1.1.0", "n2", "")), 0);
	env("ADD", "gc2", "eth0", NULL);
	assert_int_equal(run(conf("1.1.0", "n1", "")), 0);
	assert_int_equal(read_state("gc1", &a), 0);
	assert_int_equal(a.n_att, 2);

	env("GC", NULL, NULL, NULL);
	assert_int_equal(run(conf("1.0.0", "n1", "")), 1);
	expect_err(CNI_ERR_VERSION, "GC needs cniVersion 1.1.0, the netconf has 1.0.0", "1.0.0");
	assert_int_equal(run(conf("1.1.0", "n1", ",\"cni.dev/valid-attachments\":[1]")), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.cni.dev/valid-attachments[0]: needs string \"containerID\" and \"ifname\"",
		   "1.1.0");
	/* n1: gc2/eth0 is valid, gc1/eth0 is not; gc1 keeps its n2 attachment */
	assert_int_equal(run(conf("1.1.0", "n1",
		",\"cni.dev/valid-attachments\":[{\"containerID\":\"gc2\",\"ifname\":\"eth0\"}]")), 0);
	assert_string_equal(out, "");
	assert_int_equal(read_state("gc1", &b), 0);
	assert_int_equal(b.n_att, 1);
	assert_string_equal(b.att[0].net, "n2");
	assert_true(agent_alive(&b));
	assert_int_equal(read_state("gc2", &b), 0);
	assert_true(agent_alive(&b));
	/* n2 with nothing valid: gc1's last attachment, its agent ends */
	assert_int_equal(run(conf("1.1.0", "n2", ",\"cni.dev/valid-attachments\":[]")), 0);
	assert_int_equal(read_state("gc1", &b), -ENOENT);
	assert_false(agent_alive(&a));
	assert_true(exists("%s/logs/%s.1.log", "gc1"));
	assert_int_equal(run(conf("1.1.0", "n1", "")), 0);
	assert_int_equal(read_state("gc2", &b), -ENOENT);
}

/* ------------------------------------------------------------------ DEL */

static void test_del_refcount(void **state)
{
	struct state s, t;
	char log[512], *text = NULL;

	(void)state;
	env("ADD", "rc1", "eth0", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod");
	assert_int_equal(run(conf("1.0.0", "net-a", "")), 0);
	assert_int_equal(read_state("rc1", &s), 0);
	env("ADD", "rc1", "eth1", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod");
	assert_int_equal(run(conf("1.0.0", "net-b", "")), 0);
	assert_int_equal(read_state("rc1", &t), 0);
	assert_int_equal(t.pid, s.pid);
	assert_int_equal(t.n_att, 2);
	/* a repeated ADD adds nothing */
	assert_int_equal(run(conf("1.0.0", "net-b", "")), 0);
	assert_int_equal(read_state("rc1", &t), 0);
	assert_int_equal(t.n_att, 2);

	env("DEL", "rc1", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "net-a", "")), 0);
	assert_string_equal(out, "");
	assert_true(agent_alive(&s));
	/* idempotent: the same DEL again, an interface never added */
	assert_int_equal(run(conf("1.0.0", "net-a", "")), 0);
	env("DEL", "rc1", "eth7", NULL);
	assert_int_equal(run(conf("1.0.0", "net-b", "")), 0);
	assert_true(agent_alive(&s));
	env("DEL", "rc1", "eth1", NULL);
	assert_int_equal(run(conf("1.0.0", "net-b", "")), 0);
	assert_false(agent_alive(&s));
	assert_false(exists("%s/%s.json", "rc1"));
	assert_false(exists("%s/%s.status", "rc1"));
	assert_false(exists("%s/%s.log", "rc1"));
	snprintf(log, sizeof(log), "%s/logs/ns_pod.1.log", statedir);
	assert_true(fs_read_file(log, 4096, &text) > 0);
	assert_non_null(strstr(text, "event=attached"));
	free(text);
	assert_int_equal(run(conf("1.0.0", "net-b", "")), 0);
}

static void test_del_unknown(void **state)
{
	(void)state;
	env("DEL", "never", "eth0", NULL);
	unsetenv("CNI_NETNS");
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	assert_string_equal(out, "");
	assert_int_equal(run(conf("0.3.1", "n", "")), 0);
}

/* Logs kept after DEL: LOG_KEEP per name, the newest first. */
static void test_log_keep(void **state)
{
	char path[512];

	(void)state;
	for (int i = 0; i < LOG_KEEP + 2; i++) {
		env("ADD", "lk", "eth0", "K8S_POD_NAME=keep");
		assert_int_equal(run(conf("1.0.0", "n", "")), 0);
		env("DEL", "lk", "eth0", NULL);
		assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	}
	for (int i = 1; i <= LOG_KEEP + 1; i++) {
		snprintf(path, sizeof(path), "%s/logs/keep.%d.log", statedir, i);
		assert_int_equal(access(path, F_OK) == 0, i <= LOG_KEEP);
	}
	/* a log larger than the cap: its last LOG_KEEP_BYTES are kept */
	env("ADD", "lk", "eth0", "K8S_POD_NAME=keep");
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	{
		char *big = malloc(LOG_KEEP_BYTES * 2), *text = NULL;
		FILE *f;

		assert_non_null(big);
		memset(big, 'a', LOG_KEEP_BYTES * 2);
		memcpy(big + LOG_KEEP_BYTES * 2 - 4, "END\n", 4);
		snprintf(path, sizeof(path), "%s/lk.log", statedir);
		f = fopen(path, "a");
		assert_non_null(f);
		assert_int_equal(fwrite(big, 1, LOG_KEEP_BYTES * 2, f), LOG_KEEP_BYTES * 2);
		fclose(f);
		free(big);
		env("DEL", "lk", "eth0", NULL);
		assert_int_equal(run(conf("1.0.0", "n", "")), 0);
		snprintf(path, sizeof(path), "%s/logs/keep.1.log", statedir);
		assert_int_equal(fs_read_file(path, LOG_KEEP_BYTES * 4, &text), LOG_KEEP_BYTES);
		assert_memory_equal(text + LOG_KEEP_BYTES - 4, "END\n", 4);
		free(text);
	}
}

/* ------------------------------------------------------------------ names */

static const char *name_of(const char *args, const char *cid)
{
	static struct env v;
	struct cni_err e = { 0 };

	memset(&v, 0, sizeof(v));
	env("ADD", cid, "eth0", args);
	v.command = "ADD";
	assert_int_equal(netconf_env_read(&v, &e), 0);
	return v.name;
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(name_of("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web", "c1"), "ns/web");
	assert_string_equal(name_of("IgnoreUnknown=1;K8S_POD_NAME=web", "c1"), "web");
	assert_string_equal(name_of("K8S_POD_NAMESPACE=ns", "c1"), "c1");
	assert_string_equal(name_of(NULL, "c1"), "c1");
	assert_string_equal(name_of("K8S_POD_NAME=a b\"c=d\\e\x01\xc3\xa9", "c1"), "a_b_c_d_e___");
}

/* ------------------------------------------------------------------ agent lookup */

static void test_lookup(void **state)
{
	char dir[160], link[200], got[PATH_MAX], self[PATH_MAX], want[PATH_MAX + 256];
	struct conf c = { .agent = NULL };
	struct cni_err e = { 0 };

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cnibin", root);
	mkdir(dir, 0755);
	snprintf(link, sizeof(link), "%s/nfq-agent", dir);
	assert_int_equal(symlink(agent, link), 0);
	setenv("CNI_PATH", "/nonexistent-a:", 1);
	{
		char p[256];

		snprintf(p, sizeof(p), "/nonexistent-a:%s", dir);
		setenv("CNI_PATH", p, 1);
	}
	assert_int_equal(agent_find(&c, got, sizeof(got), &e), 0);
	assert_string_equal(got, link);
	/* an explicit agent wins */
	c.agent = "/bin/true";
	assert_int_equal(agent_find(&c, got, sizeof(got), &e), 0);
	assert_string_equal(got, "/bin/true");
	c.agent = NULL;
	/* nowhere: every place tried, in order */
	setenv("CNI_PATH", "/nonexistent-a:/nonexistent-b", 1);
	{
		char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

		setenv("PATH", "/nonexistent-c", 1);
		assert_non_null(realpath("/proc/self/exe", self));
		*strrchr(self, '/') = '\0';
		assert_int_equal(agent_find(&c, got, sizeof(got), &e), -EINVAL);
		if (saved) {
			setenv("PATH", saved, 1);
			free(saved);
		}
	}
	snprintf(want, sizeof(want), "nfq-agent not found; tried: /nonexistent-a/nfq-agent, "
		 "/nonexistent-b/nfq-agent, %s/nfq-agent, /nonexistent-c/nfq-agent", self);
	assert_int_equal(e.code, CNI_ERR_AGENT);
	assert_string_equal(e.msg, want);
	unlink(link);
}

/* ------------------------------------------------------------------ exclusions */

static void test_exclusions(void **state)
{
	const char *ex = ",\"exclude_namespaces\":[\"kube-system\"],\"exclude_pods\":[\"skip-*\"],"
			 "\"prevResult\":" PREV10;

	(void)state;
	env("ADD", "ex1", "eth0", "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=dns");
	assert_int_equal(run(conf("1.0.0", "n", ex)), 0);
	assert_string_equal(out, PREV10);
	assert_false(exists("%s/%s.json", "ex1"));
	env("ADD", "ex2", "eth0", "K8S_POD_NAME=skip-me");
	assert_int_equal(run(conf("1.0.0", "n", ex)), 0);
	assert_string_equal(out, PREV10);
	assert_false(exists("%s/%s.json", "ex2"));
	env("CHECK", "ex2", "eth0", "K8S_POD_NAME=skip-me");
	assert_int_equal(run(conf("1.0.0", "n", ex)), 0);
	env("DEL", "ex2", "eth0", "K8S_POD_NAME=skip-me");
	assert_int_equal(run(conf("1.0.0", "n", ex)), 0);
	/* not excluded: an agent */
	env("ADD", "ex3", "eth0", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=skip");
	assert_int_equal(run(conf("1.0.0", "n", ex)), 0);
	assert_true(exists("%s/%s.json", "ex3"));
	env("DEL", "ex3", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", ex)), 0);
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void **state)
{
	char msg[512];

	(void)state;
	unsetenv("CNI_COMMAND");
	assert_int_equal(run(conf("0.4.0", "n", "")), 1);
	expect_err(CNI_ERR_ENV, "CNI_COMMAND is not set", "0.4.0");
	env("FROB", "e1", "eth0", NULL);
	assert_int_equal(run(conf("0.4.0", "n", "")), 1);
	expect_err(CNI_ERR_ENV, "CNI_COMMAND: unknown command \"FROB\"", "0.4.0");
	env("ADD", "e1", "eth0", NULL);
	assert_int_equal(run("{\"cniVersion\":"), 1);
	expect_err(CNI_ERR_DECODE, "netconf: invalid JSON: unexpected end of input", "1.1.0");
	assert_int_equal(run("{\"cniVersion\":\"0.2.0\",\"name\":\"n\"}"), 1);
	expect_err(CNI_ERR_VERSION, "netconf.cniVersion: version \"0.2.0\" not supported", "1.1.0");
	assert_int_equal(run("{\"cniVersion\":\"1.0.0\"}"), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.name: missing", "1.0.0");
	assert_int_equal(run(conf("1.0.0", "n", ",\"exclude_pods\":\"x\"")), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.exclude_pods: must be a list of strings", "1.0.0");
	assert_int_equal(run(conf("1.0.0", "n", ",\"exclude_namespaces\":[\"\"]")), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.exclude_namespaces[0]: must be a non-empty string", "1.0.0");
	env("ADD", "../x", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	expect_err(CNI_ERR_ENV, "CNI_CONTAINERID: \"../x\" is not a valid container id", "1.0.0");
	env("ADD", "e1", NULL, NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	expect_err(CNI_ERR_ENV, "CNI_IFNAME is not set", "1.0.0");

	/* the agent: refused (999), exited (1000), never attached (11) */
	env("ADD", "e2", "eth0", "K8S_POD_NAME=p");
	setenv("FAKE_AGENT_MODE", "refused", 1);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	expect_err(CNI_ERR_REFUSED, "broker refused the agent: no namespaces entry matches name \"p\"", "1.0.0");
	assert_false(exists("%s/%s.json", "e2"));
	setenv("FAKE_AGENT_MODE", "exit", 1);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	snprintf(msg, sizeof(msg), "nfq-agent (%s) exited with status 3", agent);
	expect_err(CNI_ERR_AGENT, msg, "1.0.0");
	assert_non_null(strstr(out, "\"details\":\"fake: boom\""));
	assert_false(exists("%s/%s.json", "e2"));
	setenv("FAKE_AGENT_MODE", "retry", 1);
	timeout_ms = 300;
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	timeout_ms = 3000;
	snprintf(msg, sizeof(msg), "broker not reachable at %s: waited 300 ms, the agent made 3 attempts",
		 sockpath);
	expect_err(CNI_ERR_TRY_LATER, msg, "1.0.0");
	assert_non_null(strstr(out, "\"details\":\"no broker socket at /x\""));
	assert_false(exists("%s/%s.json", "e2"));
	/* the state directory (1001) */
	setenv("FAKE_AGENT_MODE", "attached", 1);
	assert_int_equal(run(conf("1.0.0", "n", ",\"state_dir\":\"/proc/nfq-cni-test\"")), 1);
	assert_non_null(strstr(out, "\"code\":1001,\"msg\":\"state_dir /proc/nfq-cni-test: "));
}

/* CHECK of an agent that runs but is not attached (the broker went away). */
static void test_check_not_attached(void **state)
{
	struct state s;
	char msg[256];

	(void)state;
	env("ADD", "na", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	assert_int_equal(read_state("na", &s), 0);
	{
		char path[256];
		FILE *f;

		snprintf(path, sizeof(path), "%s/na.status", statedir);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("state=retrying\nattempts=2\nreason=lease lost\n", f);
		fclose(f);
	}
	/* ADD of another interface to an agent that is not attached waits for
	 * it, then fails; the attachment stays for the runtime's DEL */
	env("ADD", "na", "eth1", NULL);
	timeout_ms = 300;
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	timeout_ms = 3000;
	snprintf(msg, sizeof(msg), "broker not reachable at %s: waited 300 ms, the agent made 2 attempts",
		 sockpath);
	expect_err(CNI_ERR_TRY_LATER, msg, "1.0.0");
	assert_int_equal(read_state("na", &s), 0);
	assert_int_equal(s.n_att, 2);
	env("DEL", "na", "eth1", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	assert_true(agent_alive(&s));
	env("CHECK", "na", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	snprintf(msg, sizeof(msg), "agent for container na (pid %d) is not attached to the broker", (int)s.pid);
	expect_err(CNI_ERR_NOT_ATTACHED, msg, "1.0.0");
	assert_non_null(strstr(out, "\"details\":\"lease lost\""));
	kill(s.pid, SIGKILL);
	while (waitpid(s.pid, NULL, 0) < 0 && errno == EINTR)
		;
	assert_int_equal(run(conf("1.0.0", "n", "")), 1);
	snprintf(msg, sizeof(msg), "agent for container na (pid %d) is not running", (int)s.pid);
	expect_err(CNI_ERR_NOT_ATTACHED, msg, "1.0.0");
	/* ADD replaces the dead agent and keeps the attachment */
	env("ADD", "na", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	assert_int_equal(read_state("na", &s), 0);
	assert_true(agent_alive(&s));
	assert_int_equal(s.n_att, 1);
	env("DEL", "na", "eth0", NULL);
	assert_int_equal(run(conf("1.0.0", "n", "")), 0);
	assert_false(agent_alive(&s));
}


/* ------------------------------------------------------------------ holder */

/* A fake nfq-holder at @path: answers one request with @reply, the
 * request kept in @got. Bound before the fork: no race with the plugin. */
static pid_t fake_holder(const char *path, const char *reply, const char *got)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	pid_t pid;

	assert_true(l >= 0);
	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 4), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[8192];
		int c = accept(l, NULL, NULL), fd;
		ssize_t n = c >= 0 ? recv(c, buf, sizeof(buf), 0) : -1;

		fd = open(got, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (n > 0 && fd >= 0 && write(fd, buf, (size_t)n) != n)
			_exit(1);
		if (send(c, reply, strlen(reply), 0) < 0)
			_exit(1);
		_exit(0);
	}
	close(l);
	return pid;
}

static void expect_request(const char *got, const char *want)
{
	char *text = NULL;

	assert_true(fs_read_file(got, 8192, &text) >= 0);
	assert_string_equal(text, want);
	free(text);
}

static void test_holder(void **state)
{
	char hsock[160], got[160], extra[1024], want[1024], msg[512];
	pid_t pid;
	int st;

	(void)state;
	snprintf(hsock, sizeof(hsock), "%s/holder.sock", root);
	snprintf(got, sizeof(got), "%s/holder.got", root);
	snprintf(extra, sizeof(extra), ",\"holder\":\"%s\"", hsock);
	env("ADD", "h1", "eth0", "K8S_POD_NAME=p");

	/* ADD: HOLD with everything the holder needs; its "ok" is the result */
	pid = fake_holder(hsock, "ok\n", got);
	assert_int_equal(run(conf("1.0.0", "n", extra)), 0);
	waitpid(pid, &st, 0);
	snprintf(want, sizeof(want), "HOLD\ncid=h1\nnet=n\nifname=eth0\nname=p\nnetns=/proc/self/ns/net\n"
		 "broker=%s\ntimeout_ms=%d\n", sockpath, timeout_ms);
	expect_request(got, want);
	assert_non_null(strstr(out, "\"cniVersion\":\"1.0.0\""));
	/* nothing started, nothing recorded by the plugin itself */
	assert_false(exists("%s/%s.json", "h1"));

	/* its error is the plugin's, code, msg and details */
	pid = fake_holder(hsock, "error\ncode=999\nmsg=broker refused the agent: x\ndetails=d\n", got);
	assert_int_equal(run(conf("1.0.0", "n", extra)), 1);
	waitpid(pid, &st, 0);
	expect_err(CNI_ERR_REFUSED, "broker refused the agent: x", "1.0.0");
	assert_non_null(strstr(out, "\"details\":\"d\""));

	/* an answer that is neither */
	pid = fake_holder(hsock, "maybe\n", got);
	assert_int_equal(run(conf("1.0.0", "n", extra)), 1);
	waitpid(pid, &st, 0);
	snprintf(msg, sizeof(msg), "nfq-holder at %s: unreadable answer", hsock);
	expect_err(CNI_ERR_IO, msg, "1.0.0");

	/* DEL: RELEASE of the interface; CHECK: the holder's answer */
	env("DEL", "h1", "eth0", "K8S_POD_NAME=p");
	pid = fake_holder(hsock, "ok\n", got);
	assert_int_equal(run(conf("1.0.0", "n", extra)), 0);
	waitpid(pid, &st, 0);
	expect_request(got, "RELEASE\ncid=h1\nnet=n\nifname=eth0\n");
	env("CHECK", "h1", "eth0", "K8S_POD_NAME=p");
	pid = fake_holder(hsock, "error\ncode=1002\nmsg=no agent recorded for container h1\n", got);
	assert_int_equal(run(conf("1.0.0", "n", extra)), 1);
	waitpid(pid, &st, 0);
	expect_request(got, "CHECK\ncid=h1\nnet=n\nifname=eth0\nnetns=/proc/self/ns/net\n");
	expect_err(CNI_ERR_NOT_ATTACHED, "no agent recorded for container h1", "1.0.0");

	/* GC: the valid list goes along */
	env("GC", NULL, NULL, NULL);
	pid = fake_holder(hsock, "ok\n", got);
	snprintf(extra, sizeof(extra), ",\"holder\":\"%s\",\"cni.dev/valid-attachments\":"
		 "[{\"containerID\":\"k1\",\"ifname\":\"eth0\"},{\"containerID\":\"../x\",\"ifname\":\"eth0\"}]", hsock);
	assert_int_equal(run(conf("1.1.0", "n", extra)), 0);
	waitpid(pid, &st, 0);
	expect_request(got, "GC\nnet=n\nvalid=k1 eth0\n");

	/* no holder there: try later, saying where */
	unlink(hsock);
	snprintf(extra, sizeof(extra), ",\"holder\":\"%s\"", hsock);
	env("ADD", "h1", "eth0", "K8S_POD_NAME=p");
	assert_int_equal(run(conf("1.0.0", "n", extra)), 1);
	snprintf(msg, sizeof(msg), "nfq-holder not reachable at %s: No such file or directory", hsock);
	expect_err(CNI_ERR_TRY_LATER, msg, "1.0.0");

	/* the key itself */
	assert_int_equal(run(conf("1.0.0", "n", ",\"holder\":\"holder.sock\"")), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.holder: \"holder.sock\" is not an absolute path", "1.0.0");
	assert_int_equal(run(conf("1.0.0", "n", ",\"holder\":7")), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.holder: must be a string", "1.0.0");
	memset(msg, 'x', 150);
	msg[0] = '/';
	msg[150] = '\0';
	snprintf(extra, sizeof(extra), ",\"holder\":\"%s\"", msg);
	assert_int_equal(run(conf("1.0.0", "n", extra)), 1);
	expect_err(CNI_ERR_NETCONF, "netconf.holder: path longer than 107 bytes", "1.0.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_version, each, each_end),
		cmocka_unit_test_setup_teardown(test_add_versions, each, each_end),
		cmocka_unit_test_setup_teardown(test_check_versions, each, each_end),
		cmocka_unit_test_setup_teardown(test_status, each, each_end),
		cmocka_unit_test_setup_teardown(test_gc, each, each_end),
		cmocka_unit_test_setup_teardown(test_del_refcount, each, each_end),
		cmocka_unit_test_setup_teardown(test_del_unknown, each, each_end),
		cmocka_unit_test_setup_teardown(test_log_keep, each, each_end),
		cmocka_unit_test_setup_teardown(test_names, each, each_end),
		cmocka_unit_test_setup_teardown(test_lookup, each, each_end),
		cmocka_unit_test_setup_teardown(test_exclusions, each, each_end),
		cmocka_unit_test_setup_teardown(test_errors, each, each_end),
		cmocka_unit_test_setup_teardown(test_check_not_attached, each, each_end),
		cmocka_unit_test_setup_teardown(test_holder, each, each_end),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
