#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Attach/detach soak: NS namespaces, CYCLES rounds in which every namespace's
# agent attaches, gets traffic decided, and leaves (SIGTERM = bye on even
# rounds, SIGKILL + grace on odd ones). Prints the broker's open fds and RSS
# after the first round and after the last, so a leak shows as growth.
# Run by hand (never part of the tests):
#
#   BUILD=build bench/soak-attach.sh [NS] [CYCLES]
#   STEER=1 BUILD=build bench/soak-attach.sh [NS] [CYCLES]
#
# With STEER=1 the namespaces have no iptables rule: the broker steers
# port 5001 into queue 1 itself (docs/steering.md), so every round also
# installs and removes its tables; at the end no nfq_broker table may be
# left in any namespace.
#
# Uses the netns test kit: unique namespaces, everything removed at exit.
set -euo pipefail
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRC/tests/netns/lib.sh"
. "$SRC/tests/netns/broker-lib.sh"
NS_COUNT=${1:-10}
CYCLES=${2:-20}
nt_init soak
bk_init

declare -a NSS
for ((i = 0; i < NS_COUNT; i++)); do
	nt_ns_new n "s$i"
	NSS[i]=$n
	[[ "${STEER:-0}" == 1 ]] || bk_queue_rule "$n" 1 5001
done
BK_BROKER_EXTRA='"grace_ms": 200'
STEER_JSON=""
[[ "${STEER:-0}" != 1 ]] || STEER_JSON=', "steer": [ { "hook": "output",
    "match": { "proto": "udp", "dport": 5001, "outdev": "lo" }, "queue": 1 } ]'
bk_config '"namespaces": [ { "name": "*", "queues": [1], "policy": "allow"'"$STEER_JSON"' } ],
  "policies": { "allow": { "default": "accept", "rules": [] } }'
bk_start

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$BK_PID/status"; }

declare -a PIDS
lost=0
round() {   # CYCLE
	local i pid
	for ((i = 0; i < NS_COUNT; i++)); do
		bk_agent_netns pid "agent-$1-$i" "${NSS[i]}" "soak-$i"
		PIDS[i]=$pid
	done
	for ((i = 0; i < NS_COUNT; i++)); do
		bk_wait_attach "soak-$i" $(($1 + 1)) 10000
	done
	[[ "${STEER:-0}" != 1 ]] ||
		bk_wait_count 'event=steer_install ' $((($1 + 1) * NS_COUNT)) 20000
	bk_traffic "${NSS[0]}" 5001 20
	lost=$((lost + 20 - BK_GOT))
	for ((i = 0; i < NS_COUNT; i++)); do
		if (($1 % 2)); then kill -KILL "${PIDS[i]}"; else kill -TERM "${PIDS[i]}"; fi
		nt_wait_pid "${PIDS[i]}" 5000 || true
	done
	bk_wait_count 'event=release ' $(((($1 + 1)) * NS_COUNT)) 15000
}

start=$(nt_now_ms)
round 0
fd0=$(bk_fd_count "$BK_PID")
rss0=$(rss_kib)
for ((c = 1; c < CYCLES; c++)); do
	round "$c"
done
fd1=$(bk_fd_count "$BK_PID")
rss1=$(rss_kib)
elapsed=$(($(nt_now_ms) - start))
printf 'soak: namespaces=%d cycles=%d attaches=%d elapsed_ms=%d datagrams_lost=%d\n' \
	"$NS_COUNT" "$CYCLES" $((NS_COUNT * CYCLES)) "$elapsed" "$lost"
printf 'soak: broker fds after round 1: %d, after round %d: %d\n' "$fd0" "$CYCLES" "$fd1"
printf 'soak: broker RSS after round 1: %d KiB, after round %d: %d KiB\n' "$rss0" "$CYCLES" "$rss1"
if [[ "${STEER:-0}" == 1 ]]; then
	bk_wait_count 'event=steer_remove ' $((CYCLES * NS_COUNT)) 20000
	left=0
	for ((i = 0; i < NS_COUNT; i++)); do
		! nt_x "${NSS[i]}" nft list tables 2>/dev/null | grep -q nfq_broker || left=$((left + 1))
	done
	printf 'soak: steering installs=%d removals=%d namespaces with a table left=%d\n' \
		"$(nt_count "$BK_LOG" 'event=steer_install ')" \
		"$(nt_count "$BK_LOG" 'event=steer_remove ')" "$left"
fi
