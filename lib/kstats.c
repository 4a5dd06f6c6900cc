/* SPDX-License-Identifier: MIT */
/*
 * /proc/net/netfilter/nfnetlink_queue: one line per bound queue,
 * "queue portid queued copy_mode copy_range dropped user_dropped id_seq 1".
 */
#include <errno.h>
#include <stdio.h>

#include "internal.h"

#define KSTATS_DEFAULT_PATH "/proc/net/netfilter/nfnetlink_queue"

static int parse_line(const char *line, struct nfqb_kstat *k)
{
	unsigned int one;
	int n = sscanf(line, "%u %u %u %u %u %u %u %u %u", &k->queue, &k->portid,
		       &k->queued, &k->copy_mode, &k->copy_range, &k->dropped_full,
		       &k->dropped_netlink, &k->id_seq, &one);

	/* The last column is a constant 1 the kernel prints; older kernels
	 * may lack it, so eight columns are enough. */
	return n >= 8 ? 0 : -EBADMSG;
}

int nfqb_kstats_read(const char *path, struct nfqb_kstat *out, size_t max)
{
	char line[256];
	struct nfqb_kstat k;
	int count = 0, err = 0;
	FILE *f = fopen(path ? path : KSTATS_DEFAULT_PATH, "re");

	if (!f)
		return errno == ENOENT && !path ? 0 : -errno; /* no module loaded: no queues */
	while (fgets(line, sizeof(line), f)) {
		if (parse_line(line, &k) < 0) {
			err = -EBADMSG;
			break;
		}
		if ((size_t)count < max)
			out[count] = k;
		count++;
	}
	fclose(f);
	return err < 0 ? err : count;
}
