#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The lease (docs/interface.md §4): an agent restarted inside grace_ms takes its
# namespace over without one packet lost; an agent killed for good makes
# the broker unbind and close every fd of that namespace once grace_ms is
# over — checked against the namespace's own netlink socket table, and by
# `ip netns del` really freeing the namespace (its veth peer in an observer
# namespace disappears only then); an agent that ends with SIGTERM (BYE)
# is released at once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init broker-lease
bk_init

GRACE_MS=2000
nt_ns_new NS_A a
nt_ns_new NS_B b
nt_ns_new NS_C c
nt_ns_new NS_O observer
for ns in "$NS_A" "$NS_B" "$NS_C"; do
	bk_queue_rule "$ns" 1 5001
done
# The observer sees NS_A die: a veth's peer goes when its namespace does.
nt_veth "$NS_A" va 10.231.0.1/30 "$NS_O" vo 10.231.0.2/30

BK_BROKER_EXTRA="\"grace_ms\": $GRACE_MS"
bk_config '"namespaces": [ { "name": "*", "queues": [1], "policy": "allow" } ],
  "policies": { "allow": { "default": "accept", "rules": [] } }'
bk_start
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_netns AG_B agent-b "$NS_B" pod-b
bk_agent_netns AG_C agent-c "$NS_C" pod-c
for n in pod-a pod-b pod-c; do
	bk_wait_attach "$n"
done
for ns in "$NS_A" "$NS_B" "$NS_C"; do
	nt_wait_queue "$ns" 1
	nt_assert_eq 2 "$(bk_ns_fds "$BK_PID" "$ns")" "broker's sockets in $ns while attached"
done

# ---------------------------------------------------------------- takeover
nt_sub takeover
PORTID=$(nt_kstat "$NS_A" 1 portid)
N=60
nt_udp_recv RPID recv-takeover "$NS_A" 127.0.0.1 5001 "$N" 15000
nt_spawn SPID send-takeover nt_x "$NS_A" "$(nt_bin udp-tool)" send 127.0.0.1 5001 \
	--count "$N" --interval-ms 40
sleep 0.6
kill -KILL "$AG_A"
bk_wait_log 'event=lease_lost name=pod-a .*reason="agent disconnected" grace_ms=2000'
sleep 0.3
bk_agent_nsenter AG_A agent-a2 "$NS_A" pod-a
bk_wait_log "event=takeover name=pod-a netns_inode=$(nt_ns_ino "$NS_A") agent_pid=$AG_A "
nt_expect_exit "$SPID" 10000 0 "sender during the takeover"
nt_wait_pid "$RPID" 15000
nt_assert_eq "$N" "$(nt_udp_summary recv-takeover received)" "datagrams received across the agent restart"
nt_assert_eq "$PORTID" "$(nt_kstat "$NS_A" 1 portid)" "queue 1 of pod-a still on the same socket"
# past the old grace deadline: still served, never released
sleep $((GRACE_MS / 1000 + 1))
nt_assert_nogrep "$BK_LOG" 'event=release name=pod-a ' "pod-a released despite the takeover"
bk_expect_traffic "$NS_A" 5001 5 5 "pod-a after its grace deadline passed"
bk_expect_stats pod-a "after the takeover" packets=$((N + 5)) accept=$((N + 5))
nt_ok

# ---------------------------------------------------------------- grace expiry
nt_sub grace-expiry
kill -KILL "$AG_B"
bk_wait_log 'event=lease_lost name=pod-b '
# inside the grace period the broker still decides pod-b's packets
bk_expect_traffic "$NS_B" 5001 3 3 "pod-b inside its grace period"
nt_assert_eq 2 "$(bk_ns_fds "$BK_PID" "$NS_B")" "broker's sockets in pod-b inside the grace period"
bk_wait_log 'event=release name=pod-b .*reason="grace period over" packets=3 ' $((GRACE_MS + 3000))
nt_assert_eq 0 "$(bk_ns_fds "$BK_PID" "$NS_B")" "broker's sockets in pod-b after the grace period"
nt_queue_bound "$NS_B" 1 && nt_fail "queue 1 of pod-b still bound after the grace period"
# nobody serves the queue now: the kernel drops what it would queue
bk_expect_traffic "$NS_B" 5001 3 0 "pod-b after its release"
nt_assert_eq 2 "$(bk_stats scope=total namespaces)" "namespaces served after pod-b's release"
nt_ok

# ---------------------------------------------------------------- netns freed
nt_sub netns-freed
ip -n "$NS_O" link show vo >/dev/null || nt_fail "observer veth missing before the test"
INO_A=$(nt_ns_ino "$NS_A")
kill -KILL "$AG_A"
bk_wait_log 'event=lease_lost name=pod-a '
nt_ns_del "$NS_A"
# deleted, but the broker's sockets keep it alive for the grace period
sleep 0.5
ip -n "$NS_O" link show vo >/dev/null 2>&1 ||
	nt_fail "namespace of pod-a died while the broker still held it"
bk_wait_log "event=release name=pod-a netns_inode=$INO_A .*reason=\"grace period over\"" $((GRACE_MS + 3000))
vo_gone() { ! ip -n "$NS_O" link show vo >/dev/null 2>&1; }
nt_wait_for 15000 "pod-a's namespace to be freed (its veth peer gone)" vo_gone
nt_ok

# ---------------------------------------------------------------- bye
nt_sub bye
kill -TERM "$AG_C"
nt_expect_exit "$AG_C" 5000 0 "agent of pod-c after SIGTERM"
bk_wait_log 'event=release name=pod-c .*reason="agent said bye"' 1000
nt_assert_eq 0 "$(bk_ns_fds "$BK_PID" "$NS_C")" "broker's sockets in pod-c after the bye"
nt_queue_bound "$NS_C" 1 && nt_fail "queue 1 of pod-c still bound after the bye"
nt_assert_nogrep "$BK_LOG" 'event=lease_lost name=pod-c ' "pod-c got a grace period after a bye"
nt_assert_eq 0 "$(bk_stats scope=total namespaces)" "namespaces served at the end"
bk_stop
nt_ok
