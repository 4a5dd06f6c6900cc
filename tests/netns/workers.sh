#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Worker threads (docs/broker.md "Worker threads"): nfq-broker --workers 2
# serves three namespaces, spread over both workers (nfq-ctl agents says
# which, least-loaded first: 2 and 1); every namespace's packets are
# decided by its policy (one port accepted, one dropped); the totals of
# status, of the workers (metrics) and of the sessions agree; a reload
# under traffic in two namespaces changes the decisions at once and loses
# no datagram; an agent killed with SIGKILL leaves its session to the
# grace period and its release while the other namespaces keep being
# served; a burst of more records than one run takes (the queue sockets
# are watched edge-triggered) is decided to the last one with no traffic
# after it; a worker with a single namespace sleeps in its receive (solo,
# docs/design.md "Threads") and leaves that when a second joins, and goes
# back to it when the other leaves, deciding right throughout (the calls
# of the reload reach it through its kick), also with request-and-answer
# traffic switching to and fro; SIGTERM ends the broker cleanly.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init workers
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock
NSTREAM=5000        # datagrams per stream during the reloads, one per ms
BK_BROKER_EXTRA='"grace_ms": 600'

nt_ns_new NS_A a
nt_ns_new NS_B b
nt_ns_new NS_C c
for ns in "$NS_A" "$NS_B" "$NS_C"; do
	bk_queue_rule "$ns" 1 5001
	bk_queue_rule "$ns" 1 5002
	bk_queue_rule "$ns" 1 5003
done

# pod-b's link test (solo-links): datagrams from NS_H over a veth whose
# end in pod-b is renamed while pod-b's worker sleeps in its receive
nt_ns_new NS_H h
nt_veth "$NS_H" x0 10.77.0.1/24 "$NS_B" x0 10.77.0.2/24
nt_ipt "$NS_B" -A INPUT -p udp --dport 5005 -j NFQUEUE --queue-num 1

# write_config VERDICT_OF_5002
write_config() {
	bk_config "\"queue_defaults\": { \"max_len\": 8192 },
  \"namespaces\": [
    { \"name\": \"pod-a\", \"netns\": \"$(nt_ns_path "$NS_A")\", \"queues\": [1], \"policy\": \"p\" },
    { \"name\": \"pod-b\", \"netns\": \"$(nt_ns_path "$NS_B")\", \"queues\": [1], \"policy\": \"p\" },
    { \"name\": \"pod-c\", \"netns\": \"$(nt_ns_path "$NS_C")\", \"queues\": [1], \"policy\": \"p\" }
  ],
  \"policies\": {
    \"p\": {
      \"default\": \"drop\",
      \"rules\": [
        { \"name\": \"open\", \"match\": { \"proto\": \"udp\", \"dport\": [5001, 5003] }, \"verdict\": \"accept\" },
        { \"name\": \"p5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"verdict\": \"$1\" },
        { \"name\": \"byname\", \"match\": { \"proto\": \"udp\", \"dport\": 5005, \"indev\": \"solo1\" }, \"verdict\": \"accept\" }
      ]
    }
  }"
}

# ctl NAME ARGS... - nfq-ctl on the test's broker (5 s at most), NT_RC set.
ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" --compact "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl $*: exit status $NT_RC"
}

# agents_py EXPR - evaluate EXPR over `a` (the agents list of the last
# nfq-ctl agents reply, by name) and `st` (the last status reply).
agents_py() {
	python3 - "$(nt_out agents)" "$(nt_out status)" "$1" <<'EOF'
import json, sys
a = {x["name"]: x for x in json.load(open(sys.argv[1]))["agents"]}
try:
    st = json.load(open(sys.argv[2]))
except Exception:
    st = {}
print(eval(sys.argv[3]))
EOF
}

# metric NAME_WITH_LABELS - a sample of the last nfq-ctl metrics.
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$(nt_out metrics)"
}

# traffic_all WHAT - the policy in every namespace still attached.
traffic_all() {
	local ns
	for ns in "$@"; do
		bk_expect_traffic "$ns" 5001 5 5 "$WHAT: accepted port"
	done
}

# ---------------------------------------------------------------- start
nt_sub bad-option
write_config drop
for bad in 65 -1 x 2x ""; do
	nt_run "bad-workers$bad" 5000 "$BK_BROKER" --config "$BK_CONF" --workers "$bad"
	nt_assert_eq 2 "$NT_RC" "--workers '$bad': usage error"
	nt_assert_grep "$(nt_err "bad-workers$bad")" \
		"^nfq-broker: --workers: '$bad' is not a number from 0 to 64\$" "--workers '$bad': message"
done
nt_assert_eq "" "$(ls "$NT_TMP/run" 2>/dev/null)" "no socket made by a refused start"
nt_ok

nt_sub start
nt_spawn BK_PID broker "$BK_BROKER" --config "$BK_CONF" --verbose --workers 2
BK_LOG=$(nt_err broker)
nt_wait_ready "$BK_PID" "$BK_LOG" 'event=start '
nt_assert_grep "$BK_LOG" 'event=start .* workers=2$' "start line: two workers"
nt_assert_eq "nfqb-worker0 nfqb-worker1" \
	"$(ps -L -o comm= -p "$BK_PID" | grep '^nfqb-worker' | sort | xargs)" "worker threads"
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_wait_attach pod-a
bk_agent_nsenter AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-b
bk_agent_nsenter AG_C agent-c "$NS_C" pod-c
bk_wait_attach pod-c
for ns in "$NS_A" "$NS_B" "$NS_C"; do
	nt_wait_queue "$ns" 1
done
nt_ok

# ---------------------------------------------------------------- decisions
nt_sub decisions
for ns in "$NS_A" "$NS_B" "$NS_C"; do
	bk_expect_traffic "$ns" 5001 5 5 "port 5001 (open: accept)"
	bk_expect_traffic "$ns" 5002 5 0 "port 5002 (p5002: drop)"
done
ctl agents agents
ctl status status
nt_assert_eq "[0, 0, 1]" "$(agents_py 'sorted(x["worker"] for x in a.values())')" \
	"workers of the three sessions (least-loaded: 2 and 1)"
nt_assert_eq 2 "$(agents_py 'st["workers"]')" "nfq-ctl status: workers"
nt_assert_eq 30 "$(agents_py 'st["packets"]')" "status: packets decided"
nt_assert_eq "$(agents_py 'st["packets"]')" "$(agents_py 'sum(x["packets"] for x in a.values())')" \
	"status packets == the sessions' sum"
nt_assert_eq "15 15" "$(agents_py 'st["verdicts"]["accept"], st["verdicts"]["drop"]' | tr -d '(),')" \
	"status: accepted and dropped"
nt_run st-table 5000 "$CTL" --control "$CSOCK" -o table status
nt_assert_grep "$(nt_out st-table)" '^workers: +2 threads$' "nfq-ctl status table: workers line"
ctl metrics metrics
w0=$(metric 'nfqb_worker_packets_total{worker="0"}')
w1=$(metric 'nfqb_worker_packets_total{worker="1"}')
nt_assert_eq 30 $((w0 + w1)) "metrics: packets of worker 0 + worker 1"
nt_assert_eq 20 "$w0" "metrics: worker 0 (two namespaces, 10 each)"
nt_assert_eq "$(metric nfqb_broker_packets_total)" $((w0 + w1)) "metrics: broker total == workers' sum"
nt_assert_eq 2 "$(metric 'nfqb_worker_sessions{worker="0"}')" "metrics: sessions of worker 0"
nt_assert_eq 1 "$(metric 'nfqb_worker_sessions{worker="1"}')" "metrics: sessions of worker 1"
nt_assert_eq 0 "$(metric 'nfqb_worker_solo{worker="0"}')" "metrics: worker 0 (two namespaces) not solo"
nt_assert_eq 1 "$(metric 'nfqb_worker_solo{worker="1"}')" "metrics: worker 1 (pod-b alone) solo"
nt_assert_eq "[False, True, False]" \
	"$(agents_py '[a[n]["solo"] for n in ("pod-a", "pod-b", "pod-c")]')" \
	"nfq-ctl agents: only pod-b, alone on its worker, is solo"
# solo: pod-a alone on worker 0 until pod-c joined it; pod-b alone on 1
nt_assert_grep "$BK_LOG" 'event=solo name=pod-a worker=0 state=on$' "pod-a went solo"
nt_assert_grep "$BK_LOG" 'event=solo name=pod-a worker=0 state=off$' "pod-a left solo for pod-c"
nt_assert_lines "$BK_LOG" 'event=solo name=pod-b worker=1 state=on$' 1 "pod-b solo on worker 1"
nt_assert_nogrep "$BK_LOG" 'event=solo name=pod-c ' "pod-c never solo (it shares worker 0)"
nt_ok

# ---------------------------------------------------------------- links
# pod-b is solo: its worker sleeps in the queue's receive, not in epoll,
# so a link change must wake it (the main loop watches the route socket
# and kicks). The rename is followed at once by traffic; the rule accepts
# by the new name only, so a worker that read the change late drops it.
nt_sub solo-links
# from_h COUNT - COUNT datagrams from NS_H to pod-b over the veth: BK_GOT
from_h() {
	local rpid name="recv-h-$RANDOM"
	nt_udp_recv rpid "$name" "$NS_B" 10.77.0.2 5005 "$1" 1500
	nt_udp_send "$NS_H" 10.77.0.2 5005 --count "$1"
	nt_wait_pid "$rpid" 5000
	BK_GOT=$(nt_udp_summary "$name" received)
}
from_h 3
nt_assert_eq 0 "$BK_GOT" "indev x0: no rule for it (default drop)"
# rename FROM TO - pod-b's veth end, up again with its carrier back
rename() {
	ip -n "$NS_B" link set "$1" down
	ip -n "$NS_B" link set "$1" name "$2"
	ip -n "$NS_B" link set "$2" up
	nt_wait_for 3000 "the veth carrier back" \
		nt_x "$NS_B" sh -c "grep -qx 1 /sys/class/net/$2/carrier"
}
for round in 1 2 3; do
	rename x0 solo1
	from_h 3
	nt_assert_eq 3 "$BK_GOT" "round $round: renamed to solo1 while solo: accepted by name"
	rename solo1 x0
	from_h 3
	nt_assert_eq 0 "$BK_GOT" "round $round: renamed back to x0: dropped"
done
nt_assert_lines "$BK_LOG" 'event=solo name=pod-b worker=1 state=on$' 1 "pod-b solo all along"
nt_assert_nogrep "$BK_LOG" 'event=solo name=pod-b .*state=off' "pod-b never left solo"
nt_ok

# ---------------------------------------------------------------- reload
# Streams in two namespaces, on different workers (pod-c is alone on
# worker 1): the config swap reaches both, no datagram of the accepted
# streams is lost.
nt_sub reload-under-traffic
B_W=$(agents_py 'a["pod-b"]["worker"]')
C_W=$(agents_py 'a["pod-c"]["worker"]')
nt_assert_ne "$B_W" "$C_W" "pod-b and pod-c on different workers"
nt_udp_recv RXB streamb "$NS_B" 127.0.0.1 5003 "$NSTREAM" 20000
nt_udp_recv RXC streamc "$NS_C" 127.0.0.1 5003 "$NSTREAM" 20000
nt_spawn TXB sendb nt_x "$NS_B" "$(nt_bin udp-tool)" send 127.0.0.1 5003 \
	--count "$NSTREAM" --interval-ms 1
nt_spawn TXC sendc nt_x "$NS_C" "$(nt_bin udp-tool)" send 127.0.0.1 5003 \
	--count "$NSTREAM" --interval-ms 1
sleep 0.3
write_config accept
kill -HUP "$BK_PID"
bk_wait_count 'event=reload ok=true ' 1
bk_expect_traffic "$NS_B" 5002 3 3 "port 5002 right after the reload (accept), worker $B_W"
bk_expect_traffic "$NS_C" 5002 3 3 "port 5002 right after the reload (accept), worker $C_W"
write_config drop
kill -HUP "$BK_PID"
bk_wait_count 'event=reload ok=true ' 2
bk_expect_traffic "$NS_C" 5002 3 0 "port 5002 after the second reload (drop)"
{ kill -0 "$TXB" && kill -0 "$TXC"; } 2>/dev/null ||
	nt_fail "a stream ended before the reloads did: the test did not reload under traffic"
nt_expect_exit "$TXB" 20000 0 "sender in pod-b"
nt_expect_exit "$TXC" 20000 0 "sender in pod-c"
nt_expect_exit "$RXB" 20000 0 "receiver in pod-b"
nt_expect_exit "$RXC" 20000 0 "receiver in pod-c"
nt_assert_eq "$NSTREAM" "$(nt_udp_summary streamb received)" "stream in pod-b: all received"
nt_assert_eq "$NSTREAM" "$(nt_udp_summary streamc received)" "stream in pod-c: all received"
for ns in "$NS_B" "$NS_C"; do
	nt_assert_eq 0 "$(nt_kstat "$ns" 1 dropped_full)" "kernel drops (queue full) in $ns"
	nt_assert_eq 0 "$(nt_kstat "$ns" 1 dropped_netlink)" "kernel drops (netlink) in $ns"
done
nt_assert_lines "$BK_LOG" 'event=(attach|takeover) ' 3 "no re-attach during the reloads"
ctl rules rules
nt_assert_eq $((2 * NSTREAM + 15)) "$(python3 -c '
import json, sys
print([r["packets"] for r in json.load(open(sys.argv[1]))["rules"] if r["rule"] == "open"][0])
' "$(nt_out rules)")" "rule open: every accepted datagram of every worker counted, carried over reloads"
nt_ok

# ---------------------------------------------------------------- kill -9
nt_sub agent-killed
kill -KILL "$AG_C"
nt_wait_pid "$AG_C" 5000
bk_wait_log 'event=lease_lost name=pod-c '
# in the grace period, and after the release: the others are served
WHAT="pod-c in grace" traffic_all "$NS_A" "$NS_B"
bk_wait_log 'event=release name=pod-c .*reason="grace period over"' 5000
WHAT="pod-c released" traffic_all "$NS_A" "$NS_B"
bk_expect_traffic "$NS_A" 5002 3 0 "port 5002 in pod-a (drop)"
ctl agents agents
nt_assert_eq "['pod-a', 'pod-b']" "$(agents_py 'sorted(a)')" "sessions after the release"
ctl metrics metrics
for w in 0 1; do
	nt_assert_eq "$(agents_py "sum(x['worker'] == $w for x in a.values())")" \
		"$(metric "nfqb_worker_sessions{worker=\"$w\"}")" \
		"metrics: sessions of worker $w after the release (nfq-ctl agents agrees)"
done
nt_assert_eq 1 "$(metric "nfqb_worker_sessions{worker=\"$C_W\"}")" \
	"metrics: sessions of pod-c's worker after the release (its other one)"
nt_assert_lines "$BK_LOG" "event=solo name=pod-a worker=$C_W state=on\$" 2 \
	"pod-a alone again: solo again"
for w in 0 1; do
	nt_assert_eq "$(agents_py "int(sum(x['worker'] == $w for x in a.values()) == 1)")" \
		"$(metric "nfqb_worker_solo{worker=\"$w\"}")" \
		"metrics: worker $w solo exactly when it serves one namespace"
done
nt_assert_eq "True" "$(agents_py 'a["pod-a"]["solo"]')" "nfq-ctl agents: pod-a solo again"
# the released namespace's queue was unbound (the worker let go of it first)
unbound() { ! nt_queue_bound "$@"; }
nt_wait_for 3000 "queue 1 of pod-c unbound" unbound "$NS_C" 1
nt_ok

# ---------------------------------------------------------------- solo switch
# Request and answer in pod-a and pod-b, each alone on its worker (solo),
# while pod-c attaches (joining one of their workers, which leaves solo)
# and is released again (solo again), three times. While requests come one
# at a time a solo run gives each verdict without looking for more
# (docs/library.md) and is not drained; no switch may leave a request
# unanswered: bench-udp ping waits 1 s for each answer and fails on any
# loss. The pings run until the switches are done and are then stopped
# (SIGINT), however long the switches took: a fixed count ran out before
# them on a loaded CI machine.
nt_sub solo-switch
UDP=$(nt_bin bench-udp)
nt_spawn ECHO_A echo-a nt_x "$NS_A" "$UDP" echo --addr 127.0.0.1 --port 5003 \
	--ready-file "$NT_TMP/echo-a.ready"
nt_spawn ECHO_B echo-b nt_x "$NS_B" "$UDP" echo --addr 127.0.0.1 --port 5003 \
	--ready-file "$NT_TMP/echo-b.ready"
nt_wait_file 5000 "$NT_TMP/echo-a.ready"
nt_wait_file 5000 "$NT_TMP/echo-b.ready"
off0=$(grep -cE 'event=solo name=pod-[ab] worker=[01] state=off$' "$BK_LOG" || true)
# 5,000,000 round trips take minutes: the count only bounds a ping whose
# stop never comes
nt_spawn PING_A ping-a nt_x "$NS_A" "$UDP" ping --addr 127.0.0.1 --port 5003 --count 5000000
nt_spawn PING_B ping-b nt_x "$NS_B" "$UDP" ping --addr 127.0.0.1 --port 5003 --count 5000000
for round in 1 2 3; do
	bk_agent_nsenter AG_C agent-c-$round "$NS_C" pod-c
	bk_wait_attach pod-c $((round + 1))
	kill -TERM "$AG_C"
	nt_wait_pid "$AG_C" 5000
	bk_wait_count 'event=release name=pod-c ' $((round + 1)) 5000
done
for p in a b; do
	var=PING_${p^^}
	kill -0 "${!var}" 2>/dev/null ||
		nt_fail "the ping in pod-$p ended before the switches were done: $(cat "$(nt_out "ping-$p")")"
done
off1=$(grep -cE 'event=solo name=pod-[ab] worker=[01] state=off$' "$BK_LOG" || true)
nt_assert_eq 3 $((off1 - off0)) "pod-a or pod-b left solo once per attach of pod-c"
# (a ping that ended meanwhile is reported by nt_expect_exit)
kill -INT "$PING_A" "$PING_B" 2>/dev/null || true
nt_expect_exit "$PING_A" 5000 0 "ping in pod-a (every answer within 1 s)"
nt_expect_exit "$PING_B" 5000 0 "ping in pod-b (every answer within 1 s)"
for p in a b; do
	nt_assert_grep "$(nt_out "ping-$p")" '^ping n=[0-9]+ lost=0 ' "ping in pod-$p: no loss"
	n=$(sed -n 's/^ping n=\([0-9]*\) .*/\1/p' "$(nt_out "ping-$p")")
	nt_assert_ge 1000 "$n" "ping in pod-$p: round trips across the switches"
done
nt_kill "$ECHO_A"
nt_kill "$ECHO_B"
ctl agents agents
nt_assert_eq "[True, True]" "$(agents_py '[a[n]["solo"] for n in ("pod-a", "pod-b")]')" \
	"pod-a and pod-b solo again"
nt_ok

# ---------------------------------------------------------------- burst
# A worker watches its queue sockets edge-triggered: a run stops after
# NFQB_RUN_BUDGET (1024) records and must be run again without a new
# wakeup. The broker is stopped while NBURST datagrams queue up in pod-a's
# socket; once it goes on, nothing else is sent and every one of them
# must still get its verdict. The rule is on INPUT: loopback has orphaned
# the datagrams there, so a queued one does not hold the sender's buffer
# (on OUTPUT the sender would block after a few hundred).
nt_sub burst-past-budget
NBURST=2500
nt_ipt "$NS_A" -A INPUT -i lo -p udp --dport 5004 -j NFQUEUE --queue-num 1
ctl status status
before=$(agents_py 'st["packets"]')
kill -STOP "$BK_PID"
nt_udp_send "$NS_A" 127.0.0.1 5004 --count "$NBURST"
all_queued() { [[ "$(nt_kstat "$1" 1 queued)" == "$NBURST" ]]; }
nt_wait_for 5000 "all $NBURST datagrams waiting in the queue" all_queued "$NS_A"
nt_assert_eq 0 "$(nt_kstat "$NS_A" 1 dropped_netlink)" "none lost to a full socket"
kill -CONT "$BK_PID"
none_queued() { [[ "$(nt_kstat "$1" 1 queued)" == 0 ]]; }
nt_wait_for 5000 "the burst decided, with no traffic after it" none_queued "$NS_A"
ctl status status
nt_assert_eq $((before + NBURST)) "$(agents_py 'st["packets"]')" "status: every datagram of the burst counted"
nt_ok

# ---------------------------------------------------------------- stop
nt_sub stop
kill -0 "$BK_PID" || nt_fail "the broker died"
bk_stop
nt_assert_grep "$BK_LOG" 'event=exit code=0' "broker exit logged"
nt_assert_nogrep "$BK_LOG" 'runtime error|Sanitizer|ThreadSanitizer' "sanitizer reports in the broker log"
nt_ok
