#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Policy reload under steady traffic (docs/policy.md "Reload"): while two
# streams of UDP datagrams (IPv4 and IPv6, one every few milliseconds) pass
# through the queue, the broker is reloaded over and over, by SIGHUP and by
# `nfq-ctl reload`, with valid configs that change another rule and with
# invalid ones (a bad value, a JSON syntax error). Every datagram of the
# streams arrives exactly once; a changed rule applies to the very next
# packets; an invalid config is rejected with its JSON path in the log and
# in nfq-ctl's reply, and the old policy keeps deciding; rule counters that
# kept their name carry over; the agent is never re-attached and the
# kernel queue never overflows.
#
# The streams' rule matches `"outdev": "lo"` and the new configs mention
# another interface first, so the interface names interned by the policy
# set change numbering on reload: a reload that forgot to remap a
# namespace's links would drop the stream.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init policy-reload
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock
N4=4000             # IPv4 stream, one datagram every 1 ms
N6=2000             # IPv6 stream, one every 2 ms

nt_ns_new NS_R r
nt_ipt "$NS_R" -A OUTPUT -o lo -p udp -m comment --comment q-udp -j NFQUEUE --queue-num 1
nt_ip6t "$NS_R" -A OUTPUT -o lo -p udp -m comment --comment q-udp -j NFQUEUE --queue-num 1

# write_config VERDICT_OF_p5002 [EXTRA_RULE] - the "steady" policy: the
# streams' rule, p5002 with the given verdict, EXTRA_RULE (a JSON rule
# object) appended. With "new" as a third argument the new-style layout:
# a rule on another interface in front, and a second policy.
write_config() {
	local front="" spare=""
	if [[ "${3:-}" == new ]]; then
		front='{ "name": "other-if", "match": { "outdev": "eth7", "proto": "udp", "dport": 5009 }, "verdict": "drop" },'
		spare=', "spare": { "default": "accept", "rules": [ { "name": "x", "match": { "indev": "a0" }, "verdict": "drop" } ] }'
	fi
	bk_config "\"namespaces\": [
    { \"name\": \"pod-r\", \"netns\": \"$(nt_ns_path "$NS_R")\", \"queues\": [1], \"policy\": \"steady\" }
  ],
  \"policies\": {
    \"steady\": {
      \"default\": \"drop\",
      \"rules\": [ $front
        { \"name\": \"steady\", \"match\": { \"proto\": \"udp\", \"dport\": 5001, \"outdev\": \"lo\" }, \"verdict\": \"accept\" },
        { \"name\": \"p5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"verdict\": \"$1\" }${2:+,
        $2}
      ]
    }$spare
  }"
}

# A valid change (p5002 now accepts), a cosmetic variant of it, and two
# invalid files: the old policy (p5002 drops) with one bad value, and a
# JSON syntax error.
config_v2()   { write_config accept "" new; }
config_v2b()  { write_config accept '{ "name": "p5003", "match": { "dport": [5003] }, "verdict": "accept" }' new; }
config_bad1() { write_config drop '{ "name": "bad", "match": { "dport": 70000 }, "verdict": "accept" }'; }
config_bad2() { config_v2; sed -i '$d' "$BK_CONF"; }    # the closing brace cut off

BAD1_ERR='policies\.steady\.rules\[2\]\.match\.dport: port 70000 out of range 0-65535'

# ctl NAME ARGS... - nfq-ctl on the test's broker (5 s at most), NT_RC set.
ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" --compact "$@"
}

# rule_counter FILE POLICY RULE FIELD - from the reply of nfq-ctl rules.
rule_counter() {
	python3 - "$@" <<'EOF'
import json, sys
f, pol, rule, field = sys.argv[1:]
d = json.load(open(f))
hits = [r[field] for r in d["rules"] if r["policy"] == pol and r["rule"] == rule]
print(hits[0] if len(hits) == 1 else "missing" if not hits else "duplicate")
EOF
}

# reloads_seen OK_OR_FALSE - "event=reload ok=..." lines so far.
reloads_seen() {
	nt_count "$BK_LOG" "event=reload ok=$1 "
}

# hup OK_OR_FALSE - SIGHUP, wait for the broker's verdict on the file.
# The pause spreads the reloads over the streams.
hup() {
	local before
	sleep 0.2
	before=$(reloads_seen "$1")
	kill -HUP "$BK_PID"
	bk_wait_count "event=reload ok=$1 " $((before + 1))
}

# summary NAME KEY - like nt_udp_summary, but reading the whole line: the
# order list of a long stream is too big for a pipe that stops early.
summary() {
	sed -n "s/^summary \(.* \)\?$2=\([^ ]*\).*/\2/p" "$(nt_out "$1")"
}

# stream_check NAME COUNT - the receiver NAME got datagrams 0..COUNT-1,
# each exactly once and intact.
stream_check() {
	local name=$1 count=$2 got idx
	got=$(summary "$name" received)
	nt_assert_eq "$count" "$got" "$name: datagrams received of $count sent"
	nt_assert_eq 0 "$(summary "$name" bad)" "$name: damaged datagrams"
	idx=$(summary "$name" order | tr , '\n' | sort -n | uniq | awk -v n="$count" \
		'$1 >= 0 && $1 < n { k++ } END { print k + 0 }')
	nt_assert_eq "$count" "$idx" "$name: distinct datagram indices 0..$((count - 1)) received"
}

# ---------------------------------------------------------------- start
nt_sub start
write_config drop
bk_start broker
bk_agent_nsenter AG_R agent-r "$NS_R" pod-r
bk_wait_attach pod-r
nt_wait_queue "$NS_R" 1
PORTID=$(nt_kstat "$NS_R" 1 portid)
bk_expect_traffic "$NS_R" 5001 5 5 "port 5001 before the reloads"
bk_expect_traffic "$NS_R" 5002 5 0 "port 5002 before the reloads (p5002: drop)"
nt_ok

# ---------------------------------------------------------------- reloads
nt_sub reloads-under-traffic
nt_udp_recv RX4 stream4 "$NS_R" 127.0.0.1 5001 "$N4" 30000
nt_udp_recv RX6 stream6 "$NS_R" ::1 5001 "$N6" 30000
nt_spawn TX4 send4 nt_x "$NS_R" "$(nt_bin udp-tool)" send 127.0.0.1 5001 \
	--count "$N4" --interval-ms 1
nt_spawn TX6 send6 nt_x "$NS_R" "$(nt_bin udp-tool)" send ::1 5001 \
	--count "$N6" --interval-ms 2
sleep 0.3

# (a) a valid change: p5002 accepts from the next packet on
config_v2
hup true
nt_assert_grep "$BK_LOG" 'event=reload ok=true entries=1 policies=2 sessions=1 ended=0' "valid reload logged"
bk_expect_traffic "$NS_R" 5002 3 3 "port 5002 right after the reload (p5002: accept)"

# (b) invalid: rejected with the path, p5002 still accepts
config_bad1
hup false
nt_assert_grep "$BK_LOG" "event=config_error error=\"$BAD1_ERR\"" "rejected reload: error with its JSON path"
bk_expect_traffic "$NS_R" 5002 3 3 "port 5002 after the rejected reload (still accept)"
ctl ctl-bad reload
nt_assert_eq 1 "$NT_RC" "nfq-ctl reload of an invalid file: exit status"
nt_assert_grep "$(nt_out ctl-bad)" "\"errors\":\[\"$BAD1_ERR\"\]" "nfq-ctl reload of an invalid file: errors in the reply"
nt_assert_eq 2 "$(reloads_seen false)" "rejected reloads so far"

# more reloads, both ways, while the streams go on
config_v2b
sleep 0.2
ctl ctl-ok reload
nt_assert_eq 0 "$NT_RC" "nfq-ctl reload of a valid file: exit status"
nt_assert_grep "$(nt_out ctl-ok)" '"ok":true' "nfq-ctl reload of a valid file: reply"
config_bad2
hup false
nt_assert_grep "$BK_LOG" 'event=config_error error=".*invalid JSON' "syntax error logged"
config_v2
hup true
hup true
# the file now asks for the old p5002 (drop) but has an error: not applied
config_bad1
hup false
{ kill -0 "$TX4" && kill -0 "$TX6"; } 2>/dev/null ||
	nt_fail "a stream ended before the reloads did: the test did not reload under traffic"
nt_assert_eq 4 "$(reloads_seen true)" "accepted reloads"
nt_assert_eq 4 "$(reloads_seen false)" "rejected reloads"

nt_expect_exit "$TX4" 30000 0 "IPv4 sender"
nt_expect_exit "$TX6" 30000 0 "IPv6 sender"
nt_assert_grep "$(nt_out send4)" "^sent=$N4 errors=0$" "IPv4 sender"
nt_assert_grep "$(nt_out send6)" "^sent=$N6 errors=0$" "IPv6 sender"
nt_expect_exit "$RX4" 30000 0 "IPv4 receiver"
nt_expect_exit "$RX6" 30000 0 "IPv6 receiver"
stream_check stream4 "$N4"
stream_check stream6 "$N6"
nt_ok

# ---------------------------------------------------------------- after
nt_sub after
kill -0 "$BK_PID" || nt_fail "the broker died"
bk_expect_traffic "$NS_R" 5002 5 5 "port 5002 after the last (rejected) reload: still accept"
bk_expect_traffic "$NS_R" 5001 5 5 "port 5001 after the reloads"
# the queue was never re-bound or overrun
nt_assert_eq "$PORTID" "$(nt_kstat "$NS_R" 1 portid)" "queue 1's portid (never re-bound)"
nt_assert_eq 0 "$(nt_kstat "$NS_R" 1 dropped_full)" "kernel drops: queue full"
nt_assert_eq 0 "$(nt_kstat "$NS_R" 1 dropped_netlink)" "kernel drops: netlink"
nt_assert_eq 0 "$(nt_kstat "$NS_R" 1 queued)" "packets still waiting in the queue"
nt_assert_lines "$BK_LOG" 'event=(attach|takeover) ' 1 "no re-attach during the reloads"
nt_assert_lines "$BK_LOG" 'event=policy_change ' 0 "policy changes (pod-r kept policy steady)"
# counters carried over by (policy, rule) name; new rules start at 0
ctl rules rules
nt_assert_eq 0 "$NT_RC" "nfq-ctl rules: exit status"
R=$(nt_out rules)
n_steady=$((5 + N4 + N6 + 5))
b_steady=$(((5 + N4 + 5) * 42 + N6 * 62))
nt_assert_eq "$n_steady" "$(rule_counter "$R" steady steady packets)" "packets of steady/steady"
nt_assert_eq "$b_steady" "$(rule_counter "$R" steady steady bytes)" "bytes of steady/steady"
nt_assert_eq 16 "$(rule_counter "$R" steady p5002 packets)" "packets of steady/p5002 (5 dropped, 11 accepted)"
nt_assert_eq 0 "$(rule_counter "$R" steady other-if packets)" "packets of steady/other-if"
nt_assert_eq 0 "$(rule_counter "$R" steady "(default)" packets)" "packets of steady/(default)"
nt_assert_eq missing "$(rule_counter "$R" steady p5003 packets)" "rule p5003 (only in v2b)"
nt_assert_eq 0 "$(rule_counter "$R" spare "(default)" packets)" "packets of spare/(default)"
nt_assert_eq $((n_steady - N6 + 16)) "$(nt_ipt_count "$NS_R" OUTPUT q-udp)" \
	"iptables: datagrams queued, v4"
nt_assert_eq "$N6" "$(nt_ipt_count "$NS_R" -6 OUTPUT q-udp)" "iptables: datagrams queued, v6"
bk_expect_stats pod-r "after the reloads" packets=$((n_steady + 16)) \
	accept=$((n_steady + 11)) drop=5 errors=0
bk_stop
nt_assert_nogrep "$BK_LOG" 'runtime error|Sanitizer' "sanitizer reports in the broker log"
nt_ok
