#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-ctl watch: each filter (namespace glob, verdict, policy, rule, proto,
# port, address) evaluated by the broker gives exactly the matching events
# of a known traffic mix; the text line (-o text, the default on a
# terminal) and NDJSON with a timestamp and TCP flags; --count N exits 0
# after N events; a bad filter is refused by the broker naming the key and
# harms nothing; when the broker goes away watch exits 1 with a message,
# or reconnects with --reconnect.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
. "$(dirname "$0")/ctl-lib.sh"
nt_init ctl-watch
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init

nt_sub setup
ctl_setup
nt_ok

# ---------------------------------------------------------------- filters
nt_sub filters
# NAME EXPECTED_EVENTS ARGS...: one watcher each, all at once
WATCHERS=(
	"all 8 -o json"
	"glob 8 --ns pod-*"
	"ns-b 2 --ns pod-b"
	"drop 2 --verdict drop"
	"accept 6 --verdict accept"
	"policy 2 --policy open"
	"rule 2 --rule p5002"
	"default 2 --rule (default)"
	"tcp 1 --proto tcp"
	"udp-num 7 --proto 17"
	"port 2 --port 5002"
	"addr 8 --addr 127.0.0.0/8"
	"addr-none 0 --addr 10.0.0.0/8"
	"addr6-none 0 --addr ::1"
	"combined 2 --ns pod-a --proto udp --port 5002 --verdict drop --addr 127.0.0.1"
)
declare -A WPID WWANT
for w in "${WATCHERS[@]}"; do
	read -r name want args <<<"$w"
	# shellcheck disable=SC2086 # word splitting wanted
	nt_spawn pid "w-$name" "$CTL" --control "$CSOCK" watch $args
	WPID[$name]=$pid
	WWANT[$name]=$want
done
bk_wait_count 'event=watch_start ' "${#WATCHERS[@]}"
nt_assert_grep "$BK_LOG" 'event=watch_start client=[0-9]+ pid=[0-9]+ ns=pod-a filter="ns=pod-a verdict=drop proto=udp port=5002 addr=127.0.0.1/32"' \
	"watch_start logs the filter"
# the traffic: pod-a 3 x p5001 (accept), 2 x p5002 (drop), 1 TCP SYN (t5003,
# accept); pod-b 2 x udp (open's default, accept)
send "$NS_A" 5001 3
send "$NS_A" 5002 2
syn "$NS_A"
send "$NS_B" 5001 2 200
for name in "${!WPID[@]}"; do
	nt_wait_for 5000 "${WWANT[$name]} events in watch $name" lines_ge "$(nt_out "w-$name")" "${WWANT[$name]}"
done
sleep 0.3   # anything extra would have arrived by now
for name in "${!WPID[@]}"; do
	nt_assert_eq "${WWANT[$name]}" "$(wc -l <"$(nt_out "w-$name")")" "watch $name: events"
done
python3 - "$NT_TMP" <<'PY' || nt_fail "watch events do not match the traffic"
import json, sys, time
d = sys.argv[1]
ev = lambda n: [json.loads(l) for l in open(f"{d}/w-{n}.out")]
full = ev("all")
now = time.time()
for e in full:
    assert now - 30 < e["ts"] <= now, e
    assert isinstance(e["ts"], float), e
key = lambda e: (e["ns"], e["proto"], e["dport"], e["rule"], e["verdict"])
assert sorted(map(key, full)) == sorted(
    [("pod-a", "udp", 5001, "p5001", "accept")] * 3 + [("pod-a", "udp", 5002, "p5002", "drop")] * 2 +
    [("pod-a", "tcp", 5003, "t5003", "accept")] + [("pod-b", "udp", 5001, "(default)", "accept")] * 2), full
tcp = [e for e in full if e["proto"] == "tcp"]
assert tcp[0]["tcp_flags"] == "S", tcp
assert all("tcp_flags" not in e for e in full if e["proto"] != "tcp"), full
assert all(e["uid"] == 0 and e["gid"] == 0 for e in full), full   # sent by root
assert ev("tcp") == tcp, ev("tcp")
assert all(e["ns"] == "pod-b" for e in ev("ns-b"))
assert all(e["verdict"] == "drop" for e in ev("drop"))
assert all(e["policy"] == "open" for e in ev("policy"))
assert all(e["rule"] == "p5002" for e in ev("rule"))
assert all(e["rule"] == "(default)" for e in ev("default"))
assert all(e["proto"] == "udp" for e in ev("udp-num"))
assert all(5002 in (e["sport"], e["dport"]) for e in ev("port"))
assert [key(e) for e in ev("combined")] == [("pod-a", "udp", 5002, "p5002", "drop")] * 2
# piped, each watcher got the same NDJSON lines as the unfiltered one
ids = {(e["ns"], e["id"]) for e in full}
for n in ("glob", "drop", "rule", "port", "addr"):
    assert {(e["ns"], e["id"]) for e in ev(n)} <= ids, n
PY
for name in "${!WPID[@]}"; do
	kill -INT "${WPID[$name]}"
	nt_expect_exit "${WPID[$name]}" 5000 0 "watch $name after SIGINT"
done
nt_ok

# ---------------------------------------------------------------- text, --count
nt_sub text-count
nt_spawn WT text "$CTL" --control "$CSOCK" watch -o text --ns pod-a --count 6
nt_spawn WJ json2 "$CTL" --control "$CSOCK" watch -o json --count 2
bk_wait_count 'event=watch_start ' $((${#WATCHERS[@]} + 2))
send "$NS_A" 5001 3 100
send "$NS_A" 5002 2 100
syn "$NS_A"
nt_expect_exit "$WT" 5000 0 "watch --count 6 (text)"
nt_expect_exit "$WJ" 5000 0 "watch --count 2 (json)"
T=$(nt_out text)
nt_assert_eq 6 "$(wc -l <"$T")" "text watch: 6 lines"
nt_assert_eq 2 "$(wc -l <"$(nt_out json2)")" "json watch --count 2: 2 lines"
TS='[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}'
nt_assert_lines "$T" "^$TS pod-a udp 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:5001 len 128 uid=0 gid=0 policy=web rule=p5001 verdict=accept\$" 3 "text: accepted udp"
nt_assert_lines "$T" "^$TS pod-a udp 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:5002 len 128 uid=0 gid=0 policy=web rule=p5002 verdict=drop\$" 2 "text: dropped udp"
nt_assert_lines "$T" "^$TS pod-a tcp 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:5003 flags \[S\] len [0-9]+ uid=0 gid=0 policy=web rule=t5003 verdict=accept\$" 1 "text: the SYN"
# on a terminal, text is the default
nt_run tty 5000 script -qec "$CTL --control $CSOCK watch --ns pod-b --count 1" /dev/null &
TTYPID=$!
bk_wait_count 'event=watch_start ' $((${#WATCHERS[@]} + 3))
send "$NS_B" 5001 1 100
wait "$TTYPID" || true
nt_assert_grep "$(nt_out tty)" "^$TS pod-b udp 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:5001 len 128 uid=0 gid=0 policy=open rule=\(default\) verdict=accept" \
	"watch on a terminal: text lines"
nt_ok

# ---------------------------------------------------------------- bad filters
nt_sub bad-filters
bad_filter() {   # NAME MESSAGE ARGS...
	local name=$1 msg=$2
	shift 2
	ctl "$name" watch "$@"
	nt_assert_eq 1 "$NT_RC" "watch $*: exit status"
	nt_assert_grep "$(nt_err "$name")" "^nfq-ctl: watch: $msg\$" "watch $*: the broker's message"
}
bad_filter b1 'bad "port" filter: "70000" is not a port \(0-65535\)' --port 70000
bad_filter b2 'bad "addr" filter: "10.0.0.300" is not an IPv4 or IPv6 address' --addr 10.0.0.300/8
bad_filter b3 'bad "addr" filter: "/33" is not a prefix length \(0-32\)' --addr 10.0.0.0/33
bad_filter b4 'bad "verdict" filter: "allow" is not a verdict \(accept, drop, repeat, queue\)' --verdict allow
bad_filter b5 'bad "proto" filter: "tcpp" is not a protocol \(tcp, udp, icmp, icmpv6, sctp, udplite, gre, esp, ah or 0-255\)' --proto tcpp
nt_assert_grep "$BK_LOG" 'event=control_request' "the broker logged the requests"
# nothing else harmed: the broker answers and still decides
ctl_ok after status
nt_assert_eq 0 "$(py "$(nt_out after)" 'json.loads(t)["watchers"]')" "no watcher left behind"
bk_expect_traffic "$NS_A" 5001 3 3 "pod-a after the bad filters"
nt_ok

# ---------------------------------------------------------------- the broker goes away
nt_sub broker-gone
nt_spawn WG gone "$CTL" --control "$CSOCK" watch
nt_spawn WR again "$CTL" --control "$CSOCK" watch --reconnect -o json
bk_wait_count 'event=watch_start ' $((${#WATCHERS[@]} + 5))
bk_stop
nt_expect_exit "$WG" 5000 1 "watch when the broker stops"
nt_assert_grep "$(nt_err gone)" "^nfq-ctl: watch: the broker closed the connection \($CSOCK\)\$" \
	"watch when the broker stops: message"
nt_wait_for 3000 "the reconnect message" nt__file_has "$(nt_err again)" 'reconnecting every second'
# no broker at all: the connect error alone, exit 1
ctl nobroker watch
nt_assert_eq 1 "$NT_RC" "watch without a broker: exit status"
nt_assert_eq "nfq-ctl: cannot connect to $CSOCK: no such socket (is the broker running?)" \
	"$(cat "$(nt_err nobroker)")" "watch without a broker: message"
kill -0 "$WR" 2>/dev/null || nt_fail "watch --reconnect exited when the broker stopped"
bk_start broker-again
nt_wait_for 5000 "watch --reconnect back" nt__file_has "$BK_LOG" 'event=watch_start '
ctl_agents
send "$NS_A" 5001 1 100
nt_wait_for 5000 "an event after reconnecting" lines_ge "$(nt_out again)" 1
kill -TERM "$WR"
nt_expect_exit "$WR" 5000 0 "watch --reconnect after SIGTERM"
nt_ok
