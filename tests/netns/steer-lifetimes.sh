#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Steering across a namespace's life (docs/steering.md "Lifetimes"):
#  - reloads that change the steering (a port added, the hook moved from
#    output to input) while a stream of datagrams runs: the table is
#    replaced in one transaction, so every datagram of the stream is
#    queued and decided by the broker (its rule's counter equals the
#    stream's length) and every one arrives;
#  - a reload with a bad steer item is rejected with its JSON path and
#    the installed rules stay as they were;
#  - "steer": [] removes the table; steering it again installs it again;
#  - the table goes when the namespace is released: grace period over
#    (agent killed) and refused on reload (entry gone);
#  - broker kill -9 and restart: the table stays while no broker runs,
#    the new broker reconciles it (one table, one rule: never two) and
#    traffic is still decided.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init steer-lifetimes
command -v nft >/dev/null || nt_skip "needs nft (Debian package nftables)"
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock
N=4000              # stream datagrams, one every 2 ms: outlasts the reloads
BK_BROKER_EXTRA='"grace_ms": 500'

nt_ns_new NS_L l

# write_config STEER [ENTRY_NAME] - pod-l's entry with STEER (a JSON
# "steer" value); policy: 5001 accepted by rule "stream", 5002 and 5005 dropped.
write_config() {
	bk_config "\"namespaces\": [
    { \"name\": \"${2:-pod-l}\", \"queues\": [1, 2], \"policy\": \"web\", \"steer\": $1 }
  ],
  \"policies\": {
    \"web\": { \"default\": \"accept\", \"rules\": [
      { \"name\": \"stream\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" },
      { \"name\": \"no-5002\", \"match\": { \"proto\": \"udp\", \"dport\": [5002, 5005] }, \"verdict\": \"drop\" } ] }
  }"
}
OUT_V1='[ { "hook": "output", "match": { "proto": "udp", "dport": [5001, 5002], "outdev": "lo" }, "queue": 1 } ]'
OUT_V2='[ { "hook": "output", "match": { "proto": "udp", "dport": [5001, 5002, 5005], "outdev": "lo" }, "queue": 1 } ]'
IN_V3='[ { "hook": "input", "family": "ip", "match": { "proto": "udp", "dport": [5001, 5002, 5005], "indev": "lo" }, "queue": 2 } ]'
BAD='[ { "hook": "output", "match": { "proto": "udp", "dport": [5001] }, "queue": 7 } ]'

ctl() {     # NAME ARGS... - nfq-ctl on the test's broker, NT_RC set
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" --compact "$@"
}

tables() {  # the nfq_broker tables in pod-l, one per line
	nt_x "$NS_L" nft list tables 2>/dev/null | grep nfq_broker || true
}

ruleset() { # the broker's tables as nft shows them (the counters cut out)
	nt_x "$NS_L" nft list ruleset 2>/dev/null |
		sed -n '/^table .* nfq_broker/,/^}/p' | sed 's/counter packets [0-9]* bytes [0-9]*/counter/'
}

# rule_packets RULE - the broker's counter of policy web's RULE.
rule_packets() {
	local out=rules-$BASHPID-$RANDOM
	ctl "$out" rules
	python3 - "$(nt_out "$out")" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print([r["packets"] for r in d["rules"] if r["policy"] == "web" and r["rule"] == sys.argv[2]][0])
EOF
}

reloads() { nt_count "$BK_LOG" "event=reload ok=$1 "; }
hup() {     # OK_OR_FALSE - SIGHUP and wait for the verdict on the file
	local before
	before=$(reloads "$1")
	kill -HUP "$BK_PID"
	bk_wait_count "event=reload ok=$1 " $((before + 1))
}

# ---------------------------------------------------------------- start
nt_sub start
write_config "$OUT_V1"
bk_start broker
bk_agent_nsenter AG_L agent-l "$NS_L" pod-l
bk_wait_attach pod-l
nt_wait_queue "$NS_L" 1
bk_wait_log 'event=steer_install name=pod-l ' 5000
bk_expect_traffic "$NS_L" 5002 3 0 "steered at output: 5002 dropped"
bk_expect_traffic "$NS_L" 5005 3 3 "5005 not steered yet"
nt_ok

# ---------------------------------------------------------------- reload under traffic
nt_sub reload-under-traffic
before=$(rule_packets stream)
nt_udp_recv RX stream "$NS_L" 127.0.0.1 5001 "$N" 30000
nt_spawn TX send nt_x "$NS_L" "$(nt_bin udp-tool)" send 127.0.0.1 5001 --count "$N" --interval-ms 2
sleep 0.5
write_config "$OUT_V2"
hup true
bk_wait_log 'event=steer_replace name=pod-l rules=1 ' 3000
bk_expect_traffic "$NS_L" 5005 3 0 "port added by reload: 5005 now steered and dropped"
sleep 0.5
write_config "$IN_V3"
hup true
bk_wait_count 'event=steer_replace name=pod-l ' 2
ruleset >"$NT_TMP/ruleset-v3"
nt_assert_grep "$NT_TMP/ruleset-v3" '^table ip nfq_broker' "hook moved: the ip table"
nt_assert_grep "$NT_TMP/ruleset-v3" 'hook input' "hook moved: input"
# the inet table's output chain stays, empty: deleting a base chain would
# make the kernel drop the packets waiting in the queues
nt_assert_eq 1 "$(grep -c 'queue num' "$NT_TMP/ruleset-v3")" "hook moved: one rule left"
kill -0 "$TX" 2>/dev/null || nt_fail "the stream ended before the reloads did"
nt_expect_exit "$TX" 30000 0 "stream sender"
nt_expect_exit "$RX" 30000 0 "stream receiver"
nt_assert_eq "$N" "$(nt_udp_summary stream received)" "stream datagrams received"
# Every datagram queued and decided at least once; a few that crossed
# the output hook under the old rules and the input hook under the new
# ones were (rightly) decided at both.
decided=$(( $(rule_packets stream) - before ))
nt_assert_ge "$N" "$decided" "every stream datagram was queued and decided (rule stream's counter)"
nt_assert_le $((N + 50)) "$decided" "datagrams decided twice only around the hook move"
bk_expect_traffic "$NS_L" 5002 3 0 "at input, on queue 2: 5002 dropped"
nt_assert_eq 0 "$(nt_kstat "$NS_L" 1 dropped_full)" "kernel drops, queue 1"
nt_assert_eq 0 "$(nt_kstat "$NS_L" 2 dropped_full)" "kernel drops, queue 2"
nt_ok

# ---------------------------------------------------------------- bad steer on reload
nt_sub bad-reload
ruleset >"$NT_TMP/ruleset-before"
write_config "$BAD"
ctl reload-bad reload
nt_assert_eq 1 "$NT_RC" "nfq-ctl reload of a bad steer: exit status"
nt_assert_grep "$(nt_out reload-bad)" 'namespaces\[0\]\.steer\[0\]\.queue: queue 7 is not one of namespaces\[0\]\.queues' "the error names its JSON path"
ruleset >"$NT_TMP/ruleset-after"
cmp -s "$NT_TMP/ruleset-before" "$NT_TMP/ruleset-after" || nt_fail "a rejected reload changed the rules"
bk_expect_traffic "$NS_L" 5002 3 0 "old steering still in force"
nt_ok

# ---------------------------------------------------------------- a queue not bound
nt_sub queue-not-bound
# valid config, but queue 3 was never bound by this session (queues bind at
# attach): the rules are not installed, the old ones stay, the reason shown
ruleset >"$NT_TMP/ruleset-before-q3"
bk_config "\"namespaces\": [
    { \"name\": \"pod-l\", \"queues\": [1, 2, 3], \"policy\": \"web\", \"steer\": [
      { \"hook\": \"output\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"queue\": 3 } ] }
  ],
  \"policies\": { \"web\": { \"default\": \"accept\", \"rules\": [] } }"
hup true
bk_wait_log 'event=steer_error name=pod-l during=steer_replace error="steer\[0\] steers to queue 3, which this session has not bound' 3000
ruleset >"$NT_TMP/ruleset-after-q3"
cmp -s "$NT_TMP/ruleset-before-q3" "$NT_TMP/ruleset-after-q3" || nt_fail "rules naming an unbound queue were installed"
ctl metrics-q3 metrics
nt_assert_grep "$(nt_out metrics-q3)" '^nfqb_steer_installed\{ns="pod-l"\} 0$' "metrics: not installed as configured"
nt_ok

# ---------------------------------------------------------------- steer removed, then back
nt_sub steer-removed
write_config '[]'
hup true
bk_wait_log 'event=steer_clear name=pod-l rules=0 ' 3000
ruleset >"$NT_TMP/ruleset-cleared"
nt_assert_nogrep "$NT_TMP/ruleset-cleared" 'queue' "steer []: no rule left (the chains stay, empty)"
bk_expect_traffic "$NS_L" 5002 3 3 "unsteered: 5002 not queued"
write_config "$OUT_V1"
hup true
bk_wait_count 'event=steer_replace name=pod-l ' 3
nt_assert_eq "table inet nfq_broker
table ip nfq_broker" "$(tables)" "steered again: the tables, once each"
bk_expect_traffic "$NS_L" 5002 3 0 "steered again: 5002 dropped"
nt_ok

# ---------------------------------------------------------------- broker kill -9, restart
nt_sub broker-restart
kill -KILL "$BK_PID"
nt_wait_pid "$BK_PID" 5000
nt_assert_ne "" "$(tables)" "the tables stay while no broker runs"
tables >"$NT_TMP/tables-crash"
ruleset >"$NT_TMP/ruleset-crash"
# datagrams sent while no broker runs wait in the queue: the reconcile
# must not drop them (deleting a base chain would)
nt_udp_recv RH held "$NS_L" 127.0.0.1 5001 5 20000
nt_udp_send "$NS_L" 127.0.0.1 5001 --count 5
queued_is() { [[ "$(nt_kstat "$NS_L" 1 queued)" == "$1" ]]; }
nt_wait_for 3000 "5 datagrams held in queue 1" queued_is 5
bk_start broker-2
bk_wait_log 'event=attach name=pod-l .*adopted=2 ' 15000
bk_wait_log 'event=steer_install name=pod-l rules=1 ' 5000
nt_wait_pid "$RH" 20000
nt_assert_eq 5 "$(nt_udp_summary held received)" "datagrams held while no broker ran: decided after the restart, none lost"
nt_assert_eq "$(cat "$NT_TMP/tables-crash")" "$(tables)" "the same tables after the restart, not two of any"
ruleset >"$NT_TMP/ruleset-restart"
cmp -s "$NT_TMP/ruleset-crash" "$NT_TMP/ruleset-restart" ||
	nt_fail "the rules after the restart differ from before (duplicated?)"
nt_assert_eq 1 "$(grep -c 'queue num' "$NT_TMP/ruleset-restart")" "one rule"
bk_expect_traffic "$NS_L" 5002 3 0 "after the restart: 5002 still dropped"
bk_expect_traffic "$NS_L" 5001 3 3 "after the restart: 5001 accepted"
nt_ok

# ---------------------------------------------------------------- grace over
nt_sub grace-over
kill -KILL "$AG_L"
nt_wait_pid "$AG_L" 5000
bk_wait_log 'event=release name=pod-l .*reason="?grace period over' 5000
bk_wait_log 'event=steer_remove name=pod-l rules=0 ' 5000
nt_assert_eq "" "$(tables)" "grace over: no table"
bk_expect_traffic "$NS_L" 5002 3 3 "released: nothing queued to nobody"
nt_ok

# ---------------------------------------------------------------- refused on reload
nt_sub refused-on-reload
bk_agent_nsenter AG_L2 agent-l2 "$NS_L" pod-l
bk_wait_log 'event=attach name=pod-l .*adopted=0 ' 10000
bk_wait_count 'event=steer_install name=pod-l ' 2
nt_assert_eq "table inet nfq_broker" "$(tables)" "a new agent: the table is back (only the one it needs)"
# neither the entry nor its policy left: the session cannot stay
bk_config '"namespaces": [ { "name": "pod-other", "queues": [1], "policy": "other" } ],
  "policies": { "other": { "default": "accept", "rules": [] } }'
hup true
bk_wait_log 'event=release name=pod-l .*reason="no namespaces entry or policy left' 5000
bk_wait_count 'event=steer_remove name=pod-l ' 2
nt_assert_eq "" "$(tables)" "refused on reload: no table"
bk_expect_traffic "$NS_L" 5002 3 3 "refused: nothing queued to nobody"
nt_ok

kill -0 "$BK_PID" || nt_fail "the broker died"
