/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for nfq-ctl's human output (ctl/render.c): the agents, rules
 * and status tables (plain and wide, the optional "steer" object, missing
 * keys), and watch events as text lines (IPv4, IPv6, TCP flags, uid/gid,
 * non-IP, lost, an error, control bytes in names).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render.h"

static const char agents_json[] =
	"{\"ok\":true,\"agents\":["
	"{\"name\":\"pod-a\",\"state\":\"attached\",\"netns_inode\":4026532000,"
	"\"agent_pid\":42,\"agent_uid\":0,\"policy\":\"web\",\"queues\":[1,2],"
	"\"packets\":1234,\"bytes\":158464,\"verdicts\":{\"accept\":1230,\"drop\":4,"
	"\"repeat\":0,\"queue\":0,\"error\":1},\"kernel\":[{\"queue\":1,\"queued\":3,"
	"\"dropped_full\":5,\"dropped_netlink\":1},{\"queue\":2,\"queued\":0,"
	"\"dropped_full\":0,\"dropped_netlink\":0}],\"overruns\":0,"
	"\"attached_at\":1000,\"takeovers\":2,\"worker\":1,\"solo\":true,"
	"\"steer\":{\"installed\":true,\"backend\":\"nft\",\"rules\":[{},{}]}},"
	"{\"name\":\"b\",\"state\":\"grace\",\"policy\":\"open\",\"queues\":[7],"
	"\"packets\":5,\"bytes\":1140,\"verdicts\":{\"accept\":5},\"kernel\":[],"
	"\"attached_at\":0}]}";

static char *render(const char *cmd, const char *json, bool wide, int *rc)
{
	json_object *o = json_tokener_parse(json);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(o);
	assert_non_null(f);
	*rc = render_table(f, cmd, o, wide, 1192);
	fclose(f);
	json_object_put(o);
	return buf;
}

static void test_agents(void **state)
{
	int rc;
	char *s = render("agents", agents_json, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s,
		"NAME   STATE     POLICY  QUEUES  PACKETS    BYTES  DROPS  ERRORS  KDROPS    AGE\n"
		"pod-a  attached  web     1,2        1.2k  154 KiB      4       1       6  3m12s\n"
		"b      grace     open    7             5  1.1 KiB      0       0       0      -\n");
	free(s);
	s = render("agents", agents_json, true, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(s, "  PID  UID       NETNS  ACCEPT  REPEAT  KQUEUED  OVERRUNS  "
				  "TAKEOVERS  WORKER  STEER\n"));
	assert_non_null(strstr(s, "3m12s   42    0  4026532000    1.2k       0        3         0"
				  "          2  1 solo  nft(2)\n"));
	/* No worker (binding, or no workers) and no steer object: "-". */
	assert_non_null(strstr(s, "          0  -       -\n"));
	free(s);

	s = render("agents", "{\"ok\":true,\"agents\":[{\"name\":\"x\",\"steer\":"
		   "{\"installed\":false,\"error\":\"no nft\"}},{\"name\":\"y\",\"steer\":"
		   "{\"installed\":false}}]}", true, &rc);
	assert_non_null(strstr(s, "  error\n"));
	assert_non_null(strstr(s, "  no\n"));
	free(s);
	/* Not an agents reply. */
	s = render("agents", "{\"ok\":true}", false, &rc);
	assert_int_equal(rc, -EINVAL);
	free(s);
}

static void test_rules(void **state)
{
	static const char json[] = "{\"ok\":true,\"rules\":["
		"{\"policy\":\"web\",\"rule\":\"dns\",\"packets\":3,\"bytes\":300},"
		"{\"policy\":\"web\",\"rule\":\"(default)\",\"packets\":1,\"bytes\":1500},"
		"{\"policy\":\"open\",\"rule\":\"(default)\",\"packets\":0,\"bytes\":0}]}";
	int rc;
	char *s = render("rules", json, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s,
		"POLICY  RULE       PACKETS    BYTES\n"
		"web     dns              3    300 B\n"
		"web     (default)        1  1.4 KiB\n"
		"open    (default)        0      0 B\n");
	free(s);
	s = render("rules", json, true, &rc);
	assert_string_equal(s,
		"POLICY  RULE       PACKETS    BYTES  AVGLEN  SHARE\n"
		"web     dns              3    300 B     100  75.0%\n"
		"web     (default)        1  1.4 KiB    1500  25.0%\n"
		"open    (default)        0      0 B       -      -\n");
	free(s);
}

static void test_status(void **state)
{
	static const char json[] = "{\"ok\":true,\"version\":\"0.1.0\",\"pid\":9,"
		"\"uptime_s\":3700,\"namespaces\":2,\"packets\":1500,\"bytes\":2048,"
		"\"verdicts\":{\"accept\":1000,\"drop\":500},\"attaches\":3,\"refusals\":1,"
		"\"control_clients\":1,\"watchers\":0,\"control_refused\":0,"
		"\"config\":\"/etc/nfq-broker.json\",\"metrics_listen\":null,"
		"\"access\":\"admin\",\"newkey\":[1]}";
	int rc;
	char *s = render("status", json, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s,
		"version:     0.1.0 (pid 9)\n"
		"uptime:      1h01m\n"
		"namespaces:  2\n"
		"packets:     1.5k (2.0 KiB)\n"
		"verdicts:    accept 1.0k, drop 500\n"
		"agents:      3 attached, 1 refused\n"
		"control:     1 clients, 0 watching, 0 refused\n"
		"metrics:     -\n"
		"access:      admin\n");
	free(s);
	/* A broker with worker threads says how many, after the namespaces. */
	s = render("status", "{\"ok\":true,\"namespaces\":2,\"workers\":4}", false, &rc);
	assert_non_null(strstr(s, "\nnamespaces:  2\nworkers:     4 threads\n"));
	free(s);
	s = render("status", json, true, &rc);
	assert_non_null(strstr(s, "\nconfig:      /etc/nfq-broker.json\n"));
	assert_non_null(strstr(s, "\nnewkey:      [1]\n"));
	free(s);
	/* readiness and the reload state, when the broker sends them (now: 1192) */
	s = render("status", "{\"ok\":true,\"ready\":false,\"last_reload_ok\":false,"
		   "\"last_reload_ok_at\":1000,\"reloads_ok\":2,\"reloads_failed\":1}",
		   false, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(s, "\nready:       no (starting or stopping)\n"));
	assert_non_null(strstr(s, "\nreload:      last load REJECTED (the previous config is "
			       "in force), last good one 3m12s ago; reloads 2 ok, 1 failed\n"));
	free(s);
	s = render("reload", json, false, &rc);
	assert_int_equal(rc, -EINVAL);
	free(s);
	assert_true(render_has_table("status"));
	assert_false(render_has_table("watch"));
}

static char *event(const char *json, int *rc)
{
	json_object *o = json_tokener_parse(json);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = render_event(f, o);
	fclose(f);
	json_object_put(o);
	return buf;
}

static void test_event(void **state)
{
	int rc;
	char *s;

	setenv("TZ", "UTC", 1);
	tzset();
	s = event("{\"ts\":1764650096.789012,\"ns\":\"pod-a\",\"proto\":\"udp\","
		  "\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"sport\":5353,\"dport\":8080,"
		  "\"len\":64,\"policy\":\"web\",\"rule\":\"dns\",\"verdict\":\"accept\"}", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(s, "04:34:56.789012 pod-a udp 10.0.0.1:5353 -> 10.0.0.2:8080 len 64 "
			       "policy=web rule=dns verdict=accept\n");
	free(s);
	s = event("{\"ts\":1764650096.000001,\"ns\":\"p\",\"proto\":\"tcp\",\"src\":\"fd00::1\","
		  "\"dst\":\"fd00::2\",\"sport\":1,\"dport\":443,\"tcp_flags\":\"S.\",\"len\":80,"
		  "\"uid\":1000,\"gid\":100,\"policy\":\"w\",\"rule\":\"(default)\","
		  "\"verdict\":\"queue:3\",\"error\":\"No buffer space available\"}", &rc);
	assert_string_equal(s, "04:34:56.000001 p tcp [fd00::1]:1 -> [fd00::2]:443 flags [S.] "
			       "len 80 uid=1000 gid=100 policy=w rule=(default) verdict=queue:3 "
			       "error=\"No buffer space available\"\n");
	free(s);
	/* Not IP, no ports, a name with control bytes. */
	s = event("{\"ts\":1764650096.5,\"ns\":\"a\\u001b[2Jb\",\"proto\":null,\"src\":null,"
		  "\"dst\":null,\"sport\":null,\"dport\":null,\"len\":40,\"policy\":\"o\","
		  "\"rule\":\"r\",\"verdict\":\"drop\"}", &rc);
	assert_string_equal(s, "04:34:56.500000 a?[2Jb non-ip - -> - len 40 policy=o rule=r "
			       "verdict=drop\n");
	free(s);
	s = event("{\"lost\":12}", &rc);
	assert_string_equal(s, "-- lost 12 events (the watcher fell behind) --\n");
	free(s);
	s = event("[1]", &rc);
	assert_int_equal(rc, -EINVAL);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agents),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
