/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for broker/privs.c: which capabilities which configuration
 * keeps, user and group parsing with their messages, and the drop itself
 * (in forked children, as root), plus nfqb_agent_drop_privileges() of
 * <nfqb/agent.h> that the agent's --user uses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <nfqb/agent.h>
#include "config.h"
#include "privs.h"

#define BASE (PRIVS_BIT(CAP_NET_ADMIN) | PRIVS_BIT(CAP_SYS_ADMIN) | \
	      PRIVS_BIT(CAP_DAC_READ_SEARCH))

static struct cfg *cfg_with_pins(const char *pin_a, const char *pin_b)
{
	char json[1024];
	struct errs e = { 0 };
	struct cfg *c;

	snprintf(json, sizeof(json),
		 "{\"namespaces\": [{\"name\": \"a\", %s%s%s \"queues\": [1], \"policy\": \"p\"},"
		 " {\"name\": \"b\", %s%s%s \"queues\": [1], \"policy\": \"p\"}],"
		 " \"policies\": {\"p\": {\"default\": \"accept\", \"rules\": []}}}",
		 pin_a ? "\"netns\": \"" : "", pin_a ? pin_a : "", pin_a ? "\"," : "",
		 pin_b ? "\"netns\": \"" : "", pin_b ? pin_b : "", pin_b ? "\"," : "");
	c = cfg_parse_string(json, &e);
	assert_non_null(c);
	errs_reset(&e);
	return c;
}

static void test_needed(void **state)
{
	struct cfg *c;

	(void)state;
	assert_int_equal(privs_needed(NULL), BASE);
	c = cfg_with_pins(NULL, NULL);
	assert_int_equal(privs_needed(c), BASE);
	cfg_free(c);
	c = cfg_with_pins("/run/netns/a", NULL);
	assert_int_equal(privs_needed(c), BASE);
	cfg_free(c);
	/* A /proc/PID/ns/net pin of another user's process needs ptrace access. */
	c = cfg_with_pins("/run/netns/a", "/proc/1/ns/net");
	assert_int_equal(privs_needed(c), BASE | PRIVS_BIT(CAP_SYS_PTRACE));
	cfg_free(c);
	c = cfg_with_pins("/procfs/a", NULL);
	assert_int_equal(privs_needed(c), BASE);
	cfg_free(c);
}

static void test_text_and_features(void **state)
{
	char buf[128], tiny[8];

	(void)state;
	assert_string_equal(privs_text(0, buf, sizeof(buf)), "none");
	assert_string_equal(privs_text(BASE, buf, sizeof(buf)),
			    "cap_dac_read_search,cap_net_admin,cap_sys_admin");
	assert_string_equal(privs_text(BASE | PRIVS_BIT(CAP_SYS_PTRACE), buf, sizeof(buf)),
			    "cap_dac_read_search,cap_net_admin,cap_sys_ptrace,cap_sys_admin");
	assert_string_equal(privs_text(PRIVS_BIT(CAP_CHOWN), buf, sizeof(buf)), "cap_chown");
	/* Cut, never overrun. */
	assert_string_equal(privs_text(BASE, tiny, sizeof(tiny)), "cap_dac");
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		bool ours = c == CAP_NET_ADMIN || c == CAP_SYS_ADMIN || c == CAP_SYS_PTRACE ||
			    c == CAP_DAC_READ_SEARCH;

		assert_int_equal(privs_feature(c) != NULL, ours);
		assert_int_equal(privs_without(c) != NULL, ours);
	}
	assert_non_null(strstr(privs_without(CAP_NET_ADMIN), "refused"));
}

static void expect_user(const char *spec, uid_t uid, gid_t gid)
{
	struct privs_user u = { 0 };
	char why[256] = "x";

	if (privs_parse_user(spec, &u, why, sizeof(why)) < 0)
		print_error("%s: %s\n", spec, why);
	assert_true(u.set);
	assert_int_equal(u.uid, uid);
	assert_int_equal(u.gid, gid);
	assert_string_equal(why, "");
}

static void expect_user_err(const char *spec, int err, const char *want)
{
	struct privs_user u = { 0 };
	char why[256] = "";

	assert_int_equal(privs_parse_user(spec, &u, why, sizeof(why)), err);
	assert_false(u.set);
	assert_string_equal(why, want);
}

/* A uid without a passwd entry, found rather than assumed. */
static unsigned free_uid(void)
{
	for (unsigned u = 4000000000u; u < 4000001000u; u++)
		if (!getpwuid((uid_t)u))
			return u;
	fail_msg("no uid without passwd entry in 4000000000-4000001000");
	return 0;
}

static void test_parse_user(void **state)
{
	struct passwd *pw = getpwnam("nobody");
	char spec[64], want[160];
	unsigned u = free_uid();

	(void)state;
	assert_non_null(pw);
	expect_user("root", 0, 0);
	expect_user("0", 0, 0);
	expect_user("nobody", pw->pw_uid, pw->pw_gid);
	expect_user("nobody:root", pw->pw_uid, 0);
	expect_user("root:65534", 0, 65534);
	snprintf(spec, sizeof(spec), "%u:%u", u, u);
	expect_user(spec, u, u);

	expect_user_err("nfqb-no-such-user", -ENOENT, "unknown user \"nfqb-no-such-user\"");
	expect_user_err("root:nfqb-no-such-group", -ENOENT,
			"unknown group \"nfqb-no-such-group\"");
	snprintf(spec, sizeof(spec), "%u", u);
	snprintf(want, sizeof(want), "uid %u has no passwd entry: give its group too (%u:GID)",
		 u, u);
	expect_user_err(spec, -ENOENT, want);
	expect_user_err("", -EINVAL, "\"\" is not USER or USER:GROUP");
	expect_user_err(":0", -EINVAL, "\":0\" is not USER or USER:GROUP");
	expect_user_err("root:", -EINVAL, "\"root:\" is not USER or USER:GROUP");
	expect_user_err("ro ot", -EINVAL, "user has invalid character 0x20 at offset 2");
	expect_user_err("root\n", -EINVAL, "user has invalid character 0x0a at offset 4");
	expect_user_err("a\"b", -EINVAL, "user has invalid character 0x22 at offset 1");
	expect_user_err("4294967295", -ERANGE, "user id 4294967295 out of range 0-4294967294");
	expect_user_err("0:4294967295", -ERANGE, "group id 4294967295 out of range 0-4294967294");
	expect_user_err("00000000000000000001", -ERANGE,
			"user id 00000000000000000001 out of range 0-4294967294");
	memset(want, 'a', sizeof(want) - 1);
	want[sizeof(want) - 1] = '\0';
	{
		char longer[300];

		memset(longer, 'a', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		expect_user_err(longer, -ENAMETOOLONG, "user longer than 255 bytes");
	}
	expect_user_err(NULL, -EINVAL, "no user given");
}

static void test_parse_group(void **state)
{
	char why[128] = "";
	gid_t g = 42;

	(void)state;
	assert_int_equal(privs_parse_group("0", &g, why, sizeof(why)), 0);
	assert_int_equal(g, 0);
	g = 42;
	assert_int_equal(privs_parse_group("root", &g, why, sizeof(why)), 0);
	assert_int_equal(g, 0);
	assert_int_equal(privs_parse_group("4294967294", &g, why, sizeof(why)), 0);
	assert_int_equal(g, 4294967294u);
	assert_int_equal(privs_parse_group("nfqb-no-such-group", &g, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "unknown group \"nfqb-no-such-group\"");
	assert_int_equal(privs_parse_group("4294967295", &g, why, sizeof(why)), -ERANGE);
	assert_string_equal(why, "group id 4294967295 out of range 0-4294967294");
	assert_int_equal(privs_parse_group("", &g, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "no group given");
	assert_int_equal(g, 4294967294u);
}

/* One line of /proc/self/status as a number (hex for Cap*). */
static unsigned long long status_field(const char *key, int base)
{
	char line[256];
	size_t klen = strlen(key);
	unsigned long long v = ~0ull;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			v = strtoull(line + klen + 1, NULL, base);
	fclose(f);
	return v;
}

/* The child's checks: exit 0 when every one holds, else the failing one's number. */
static int check_dropped(uint64_t caps, uid_t uid, gid_t gid, bool one_group)
{
	if (status_field("CapEff", 16) != caps)
		return 10;
	if (status_field("CapPrm", 16) != caps)
		return 11;
	if (status_field("CapInh", 16) != 0)
		return 12;
	if (status_field("CapAmb", 16) != 0)
		return 13;
	if (status_field("CapBnd", 16) != caps)
		return 14;
	if (status_field("NoNewPrivs", 10) != 1)
		return 15;
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
		return 16;
	if (one_group && getgroups(0, NULL) != 1)
		return 17;
	return 0;
}

/* Set the calling thread's capabilities from text; false on failure. */
static bool set_caps_text(const char *text)
{
	cap_t c = cap_from_text(text);
	bool ok = c && cap_set_proc(c) == 0;

	cap_free(c);
	return ok;
}

static int child_privs_drop(const struct privs_user *u)
{
	cap_value_t ptrace = CAP_SYS_PTRACE;
	struct privs_result res;
	char why[256];
	cap_t now = cap_get_proc();

	/* Wanted but absent from the start: reported as missing. */
	if (!now || cap_set_flag(now, CAP_PERMITTED, 1, &ptrace, CAP_CLEAR) < 0 ||
	    cap_set_flag(now, CAP_EFFECTIVE, 1, &ptrace, CAP_CLEAR) < 0 || cap_set_proc(now) < 0)
		return 2;
	cap_free(now);
	if (privs_drop(BASE | PRIVS_BIT(CAP_SYS_PTRACE), u, &res, why, sizeof(why)) < 0)
		return 3;
	if (res.kept != BASE || res.missing != PRIVS_BIT(CAP_SYS_PTRACE) ||
	    !res.bounding_cleared)
		return 4;
	return check_dropped(BASE, u->set ? u->uid : 0, u->set ? u->gid : 0, u->set);
}

static int run_child(int (*fn)(const void *), const void *arg)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int drop_root(const void *arg)
{
	(void)arg;
	return child_privs_drop(&(struct privs_user){ 0 });
}

static int drop_to_user(const void *arg)
{
	(void)arg;
	return child_privs_drop(&(struct privs_user){ .set = true, .uid = 65534, .gid = 65534 });
}

/* Without CAP_SETUID the switch fails with its reason. */
static int drop_no_setuid(const void *arg)
{
	struct privs_user u = { .set = true, .uid = 65534, .gid = 65534 };
	struct privs_result res;
	char why[256] = "";

	(void)arg;
	if (!set_caps_text("cap_net_admin,cap_setpcap=ep"))
		return 2;
	if (privs_drop(BASE, &u, &res, why, sizeof(why)) != -EPERM)
		return 3;
	return strcmp(why, "cannot become uid 65534 gid 65534: Operation not permitted") ? 4 : 0;
}

/* Without CAP_SETPCAP the bounding set stays; the rest is dropped all the same. */
static int drop_no_setpcap(const void *arg)
{
	uint64_t kept = PRIVS_BIT(CAP_NET_ADMIN) | PRIVS_BIT(CAP_SYS_ADMIN);
	unsigned long long bounding = status_field("CapBnd", 16);
	struct privs_result res;
	char why[256] = "";

	(void)arg;
	if (!set_caps_text("cap_net_admin,cap_sys_admin=ep"))
		return 2;
	if (privs_drop(BASE, NULL, &res, why, sizeof(why)) != 0)
		return 3;
	if (res.kept != kept || res.missing != PRIVS_BIT(CAP_DAC_READ_SEARCH) ||
	    res.bounding_cleared)
		return 4;
	if (status_field("CapEff", 16) != kept || status_field("CapPrm", 16) != kept)
		return 5;
	if (status_field("CapBnd", 16) != bounding || status_field("NoNewPrivs", 10) != 1)
		return 6;
	return 0;
}

static void test_drop(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(run_child(drop_root, NULL), 0);
	assert_int_equal(run_child(drop_to_user, NULL), 0);
	assert_int_equal(run_child(drop_no_setuid, NULL), 0);
	assert_int_equal(run_child(drop_no_setpcap, NULL), 0);
}

static int agent_drop(const void *arg)
{
	(void)arg;
	if (nfqb_agent_drop_privileges(65534, 65533) != 0)
		return 2;
	return check_dropped(0, 65534, 65533, true);
}

static int agent_drop_bad(const void *arg)
{
	(void)arg;
	if (nfqb_agent_drop_privileges((uid_t)-1, 0) != -EINVAL ||
	    nfqb_agent_drop_privileges(0, (gid_t)-1) != -EINVAL)
		return 2;
	/* Nothing was touched by the refused calls. */
	return status_field("NoNewPrivs", 10) == 0 ? 0 : 3;
}

static void test_agent_drop_privileges(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(run_child(agent_drop, NULL), 0);
	assert_int_equal(run_child(agent_drop_bad, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_needed),
		cmocka_unit_test(test_text_and_features),
		cmocka_unit_test(test_parse_user),
		cmocka_unit_test(test_parse_group),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_agent_drop_privileges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
