/* SPDX-License-Identifier: MIT */
/*
 * What a reload costs against the number of rules: cfg_load() of a config
 * with one policy of N rules (what `nfq-broker --check` and a reload both
 * do) and policy_set_carry_counters() from the previous set (what only a
 * reload adds), for N = 1,000 / 5,000 / 20,000 (or the sizes given). The
 * last column is the time per rule relative to the smallest N: about 1
 * when the cost is linear, N/N0 when it is quadratic.
 * Usage: bench-reload [N...]. Never run by tests; bench/bench-reload.sh
 * measures the real daemon (--check, SIGHUP) the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "config.h"
#include "errs.h"
#include "policy.h"

/* A config whose policy has @n rules like real ones (a port and a net each). */
static int write_config(const char *path, size_t n)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "{\"namespaces\": [{\"name\": \"*\", \"queues\": [1], \"policy\": \"big\"}],\n"
		" \"policies\": {\"big\": {\"default\": \"drop\", \"rules\": [\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s{\"name\": \"rule-%zu\", \"match\": {\"proto\": \"tcp\", "
			"\"dst\": \"10.%zu.%zu.0/24\", \"dport\": %zu}, \"verdict\": \"accept\"}\n",
			i ? "," : "", i, (i >> 8) & 255, i & 255, i % 65535 + 1);
	fprintf(f, "]}}}\n");
	return fclose(f);
}

static struct cfg *load(const char *path)
{
	struct errs e = { 0 };
	struct cfg *c = cfg_load(path, &e);

	if (!c)
		fprintf(stderr, "bench-reload: %s: %s\n", path,
			e.n ? e.lines[0] : "out of memory");
	errs_reset(&e);
	return c;
}

int main(int argc, char **argv)
{
	static const size_t defaults[] = { 1000, 5000, 20000 };
	char path[] = "/tmp/bench-reload-XXXXXX";
	double base = 0;
	int fd = mkstemp(path), nsizes = argc > 1 ? argc - 1 : 3;

	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	printf("%8s %12s %12s %12s %10s\n", "rules", "load_ms", "carry_ms", "reload_ms",
	       "per_rule");
	for (int k = 0; k < nsizes; k++) {
		size_t n = argc > 1 ? strtoul(argv[k + 1], NULL, 10) : defaults[k];
		struct cfg *old, *new;
		double t0, t1, t2;

		if (!n || write_config(path, n) < 0 || !(old = load(path)))
			break;
		t0 = now_s();
		new = load(path);
		t1 = now_s();
		if (!new) {
			cfg_free(old);
			break;
		}
		policy_set_carry_counters(new->policies, old->policies);
		t2 = now_s();
		if (!base)
			base = (t2 - t0) / (double)n;
		printf("%8zu %12.1f %12.1f %12.1f %10.2f\n", n, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
		       (t2 - t0) * 1e3, (t2 - t0) / (double)n / base);
		cfg_free(old);
		cfg_free(new);
	}
	unlink(path);
	return 0;
}
