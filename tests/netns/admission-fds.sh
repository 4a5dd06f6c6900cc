#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The broker out of fds (issue 9): with its RLIMIT_NOFILE lowered at run
# time (prlimit --pid) to what it holds already, a new agent cannot be
# taken in. It is told so with a retryable refusal (a reserve fd lets the
# broker accept a peer just to answer it), keeps retrying with its backoff
# instead of exiting, and attaches once the limit is raised again. Mean-
# while the namespace already served keeps being decided, and the broker
# does not spin on its listener.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init admission-fds
command -v prlimit >/dev/null || nt_skip "needs prlimit"
bk_init

nt_ns_new NS_A a        # served all along
nt_ns_new NS_B b        # arrives while the broker is out of fds
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_B" 2 5002

bk_config "\"namespaces\": [
    { \"name\": \"pod-a\", \"queues\": [1], \"policy\": \"allow\" },
    { \"name\": \"pod-b\", \"queues\": [2], \"policy\": \"allow\" }
  ],
  \"policies\": { \"allow\": { \"default\": \"accept\", \"rules\": [] } }"
bk_start
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_wait_attach pod-a
bk_expect_traffic "$NS_A" 5001 10 10 "pod-a before"

# CPU ticks (user + system) the broker used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$BK_PID/stat"; }

nt_sub "out of fds: a retryable refusal, the agent retries, others served"
orig=$(prlimit --pid "$BK_PID" --nofile --output SOFT,HARD --noheadings | awk '{ print $1 ":" $2 }')
maxfd=$(find "/proc/$BK_PID/fd" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
# Every fd below the limit is taken (a hole would be the lowest free one).
lowest=0
while [[ -e /proc/$BK_PID/fd/$lowest ]]; do lowest=$((lowest + 1)); done
limit=$((lowest < maxfd + 1 ? lowest : maxfd + 1))
nt_log "broker fds: highest $maxfd, lowest free $lowest; limit $limit (was $orig)"
prlimit --pid "$BK_PID" --nofile="$limit:${orig#*:}"
ticks0=$(cpu_ticks)
t0=$(nt_now_ms)
bk_agent_nsenter AG_B agent-b "$NS_B" pod-b
nt_wait_ready "$AG_B" "$(nt_err agent-b)" \
	'event=retry name=pod-b .*error="(broker out of file descriptors, try again later|.*Too many open files)"'
bk_wait_log 'event=refuse .*retry=true'
# a few more retries (100, 200, 400 ms...), each refused the same way
nt_wait_for 5000 "pod-b's third refusal" bk__count_ge 'event=refuse .*retry=true' 3
bk_expect_traffic "$NS_A" 5001 10 10 "pod-a while the broker is out of fds"
kill -0 "$AG_B" || nt_fail "agent pod-b exited instead of retrying"
nt_assert_nogrep "$(nt_err agent-b)" "nfq-agent: refused" "pod-b was never refused for good"
nt_assert_nogrep "$BK_LOG" "event=attach name=pod-b" "pod-b attached while out of fds"
elapsed=$(($(nt_now_ms) - t0))
ticks=$(($(cpu_ticks) - ticks0))
nt_log "broker CPU while out of fds: $ticks ticks in $elapsed ms"
# A loop spinning on a readable listener would burn all of it.
nt_assert_le $((elapsed / 20 + 10)) "$ticks" "broker CPU ticks (1/100 s) while out of fds"
prlimit --pid "$BK_PID" --nofile="$orig"
bk_wait_attach pod-b 1 15000
nt_log "pod-b attached $(($(nt_now_ms) - t0)) ms after its start"
bk_expect_traffic "$NS_B" 5002 10 10 "pod-b once fds are free"
bk_expect_traffic "$NS_A" 5001 10 10 "pod-a after"
nt_ok

bk_stop
