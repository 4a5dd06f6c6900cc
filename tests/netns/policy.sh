#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The broker's JSON verdict policy (docs/policy.md) against real traffic:
# two namespaces served by one broker on the same queue number get
# different policies, and what real receivers see follows each policy's
# rules, for UDP and TCP, IPv4 and IPv6. Covered match keys: proto, dport
# (number, range, list), src (v4 and v6 CIDRs, a list mixing both), dst
# (v6 CIDR), family, hook, indev, outdev, length; actions: accept, drop,
# set_mark (seen by iptables `-m mark` counters in a later hook, v4 and v6)
# and log (one key=value line per packet in the broker's log). First match
# wins (a later rule that would also match never counts). The per-rule
# counters (nfq-ctl rules) and per-namespace counters (SIGUSR1) agree with
# what was sent.
#
# Topology: pod-a (policy "pa", default drop) with veth a0 to a peer
# namespace p0 (traffic out through a0 at OUTPUT, in from p0 at INPUT);
# pod-b (policy "pb", default accept) on its loopback only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init policy
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock
RX_MS=5000          # how long every receiver listens (they run in parallel)

nt_ns_new NS_A a
nt_ns_new NS_B b
nt_ns_new NS_P peer
nt_veth "$NS_A" a0 10.77.0.1/24,fd77::1/64 "$NS_P" p0 10.77.0.2/24,fd77::2/64
# Second addresses, reached through routes with a source hint, so the peer
# sends from an address outside the "peer-in" rule's src list.
ip -n "$NS_A" addr add 10.77.9.1/32 dev a0
ip -n "$NS_A" -6 addr add fd77::9:1/128 dev a0 nodad
ip -n "$NS_P" addr add 10.77.0.6/24 dev p0
ip -n "$NS_P" -6 addr add fd77::6/64 dev p0 nodad
ip -n "$NS_P" route add 10.77.9.1/32 dev p0 src 10.77.0.6
ip -n "$NS_P" -6 route add fd77::9:1/128 dev p0 src fd77::6
# ... and the first addresses for the rest (source selection would not).
ip -n "$NS_P" route add 10.77.0.1/32 dev p0 src 10.77.0.2
ip -n "$NS_P" -6 route add fd77::1/128 dev p0 src fd77::2

# Queue rules: queue 1 in both pods. UDP and TCP to ports 6001/6002 over lo
# (OUTPUT), UDP out through a0 (OUTPUT) and in from a0 (INPUT), v4 and v6.
for ns in "$NS_A" "$NS_B"; do
	for ipt in nt_ipt nt_ip6t; do
		$ipt "$ns" -A OUTPUT -o lo -p udp -m comment --comment q-lo-udp \
			-j NFQUEUE --queue-num 1
		$ipt "$ns" -A OUTPUT -o lo -p tcp -m multiport --dports 6001,6002 \
			-m comment --comment q-lo-tcp -j NFQUEUE --queue-num 1
		# The mark set with the verdict, seen by a later hook.
		$ipt "$ns" -t mangle -A POSTROUTING -o lo -p udp -m mark --mark 42 \
			-m comment --comment mark42-out
		$ipt "$ns" -A INPUT -i lo -p udp -m mark --mark 42 -m comment --comment mark42-in
	done
done
for ipt in nt_ipt nt_ip6t; do
	$ipt "$NS_A" -A OUTPUT -o a0 -p udp -m comment --comment q-a0-out -j NFQUEUE --queue-num 1
	$ipt "$NS_A" -A INPUT -i a0 -p udp -m comment --comment q-a0-in -j NFQUEUE --queue-num 1
done

write_config() {
	bk_config "\"namespaces\": [
    { \"name\": \"pod-a\", \"netns\": \"$(nt_ns_path "$NS_A")\", \"queues\": [1], \"policy\": \"pa\" },
    { \"name\": \"pod-b\", \"netns\": \"$(nt_ns_path "$NS_B")\", \"queues\": [1], \"policy\": \"pb\" }
  ],
  \"policies\": {
    \"pa\": {
      \"default\": \"drop\",
      \"rules\": [
        { \"name\": \"udp-5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" },
        { \"name\": \"udp-5002-log\", \"match\": { \"proto\": \"udp\", \"dport\": \"5002-5002\" },
          \"verdict\": \"drop\", \"log\": true },
        { \"name\": \"mark-5003\", \"match\": { \"proto\": 17, \"dport\": [5003] },
          \"verdict\": \"accept\", \"set_mark\": 42 },
        { \"name\": \"len-5005\", \"match\": { \"proto\": \"udp\", \"dport\": 5005, \"length\": \"1000-2000\" },
          \"verdict\": \"accept\" },
        { \"name\": \"out-a0\", \"match\": { \"hook\": \"output\", \"outdev\": \"a0\", \"proto\": \"udp\", \"dport\": 5006 },
          \"verdict\": \"accept\" },
        { \"name\": \"v6-net\", \"match\": { \"family\": \"ipv6\", \"proto\": \"udp\", \"dst\": \"fd77::/64\", \"dport\": 5007 },
          \"verdict\": \"accept\" },
        { \"name\": \"peer-in\", \"match\": { \"hook\": [\"input\"], \"indev\": \"a0\", \"proto\": \"udp\", \"dport\": 5101,
                                        \"src\": [\"10.77.0.0/30\", \"fd77::2\"] },
          \"verdict\": \"accept\" },
        { \"name\": \"tcp-6001\", \"match\": { \"proto\": \"tcp\", \"dport\": 6001 }, \"verdict\": \"accept\" },
        { \"name\": \"shadowed\", \"match\": { \"proto\": \"udp\", \"dport\": [5001, \"5003-5003\"] },
          \"verdict\": \"drop\", \"log\": true }
      ]
    },
    \"pb\": {
      \"default\": \"accept\",
      \"rules\": [
        { \"name\": \"no-5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"drop\" }
      ]
    }
  }"
}

# ---------------------------------------------------------------- flows
# A flow: COUNT datagrams from SEND_NS to ADDR:PORT, a receiver in RECV_NS
# that must see exactly EXPECT of them (it waits for one more, so a
# duplicate would show), decided by namespace DECIDER (for its counters).
FL_WHAT=() FL_NAME=() FL_PID=() FL_EXP=() FL_SEND=() FL_ADDR=() FL_PORT=() FL_COUNT=() FL_OPTS=()
declare -A SENT=() ACC=() DROP=()
FL_T0=0

# flow WHAT RECV_NS ADDR PORT SEND_NS COUNT EXPECT DECIDER [udp-tool send options]
flow() {
	local what=$1 rns=$2 addr=$3 port=$4 sns=$5 count=$6 exp=$7 decider=$8 pid name
	shift 8
	local i=${#FL_WHAT[@]}
	((i > 0)) || FL_T0=$(nt_now_ms)
	name="rx$i-${addr//:/_}-$port"
	nt_udp_recv pid "$name" "$rns" "$addr" "$port" $((exp + 1)) "$RX_MS"
	FL_WHAT[i]=$what FL_NAME[i]=$name FL_PID[i]=$pid FL_EXP[i]=$exp
	FL_SEND[i]=$sns FL_ADDR[i]=$addr FL_PORT[i]=$port FL_COUNT[i]=$count FL_OPTS[i]="$*"
	SENT[$decider]=$((${SENT[$decider]:-0} + count))
	ACC[$decider]=$((${ACC[$decider]:-0} + exp))
	DROP[$decider]=$((${DROP[$decider]:-0} + count - exp))
}

# flows_run - send every flow's datagrams, then check every receiver.
flows_run() {
	local i got bad dups took
	for i in "${!FL_WHAT[@]}"; do
		# shellcheck disable=SC2086 # FL_OPTS are separate words
		nt_udp_send "${FL_SEND[$i]}" "${FL_ADDR[$i]}" "${FL_PORT[$i]}" \
			--count "${FL_COUNT[$i]}" ${FL_OPTS[$i]}
	done
	took=$(($(nt_now_ms) - FL_T0))
	# Datagrams sent after a receiver's deadline would look dropped.
	((took < RX_MS - 1500)) ||
		nt_fail "starting receivers and sending took $took ms: too slow for the $RX_MS ms receivers"
	for i in "${!FL_WHAT[@]}"; do
		nt_wait_pid "${FL_PID[$i]}" $((RX_MS + 5000))
		nt_assert_eq 0 "$NT_RC" "receiver of ${FL_WHAT[$i]}: exit status"
		got=$(nt_udp_summary "${FL_NAME[$i]}" received)
		nt_assert_eq "${FL_EXP[$i]}" "$got" \
			"${FL_WHAT[$i]}: datagrams received (of ${FL_COUNT[$i]} sent to ${FL_ADDR[$i]} port ${FL_PORT[$i]})"
		bad=$(nt_udp_summary "${FL_NAME[$i]}" bad)
		nt_assert_eq 0 "$bad" "${FL_WHAT[$i]}: damaged datagrams"
		dups=$(nt_udp_summary "${FL_NAME[$i]}" order | tr , '\n' | sort | uniq -d)
		[[ -z "$dups" ]] || nt_fail "${FL_WHAT[$i]}: datagrams received twice: $dups"
	done
	FL_WHAT=() FL_NAME=() FL_PID=() FL_EXP=() FL_SEND=() FL_ADDR=() FL_PORT=() FL_COUNT=() FL_OPTS=()
}

# ---------------------------------------------------------------- helpers

# ctl_json NAME CMD - nfq-ctl CMD on the test's broker into $(nt_out NAME).
ctl_json() {
	nt_run "$1" 5000 "$CTL" --control "$CSOCK" --compact "$2"
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl $2: exit status $NT_RC"
}

# rule_counter FILE POLICY RULE FIELD - packets/bytes of one rule in the
# reply of nfq-ctl rules ("missing" when the rule is not listed).
rule_counter() {
	python3 - "$@" <<'EOF'
import json, sys
f, pol, rule, field = sys.argv[1:]
d = json.load(open(f))
hits = [r[field] for r in d["rules"] if r["policy"] == pol and r["rule"] == rule]
print(hits[0] if len(hits) == 1 else "missing" if not hits else "duplicate")
EOF
}

# expect_rules FILE POLICY RULE PACKETS BYTES ...
expect_rules() {
	local f=$1
	shift
	while (($# >= 4)); do
		nt_assert_eq "$3" "$(rule_counter "$f" "$1" "$2" packets)" "nfq-ctl rules: packets of $1/$2"
		nt_assert_eq "$4" "$(rule_counter "$f" "$1" "$2" bytes)" "nfq-ctl rules: bytes of $1/$2"
		shift 4
	done
}

cat >"$NT_TMP/tcp-server.py" <<'EOF'
# tcp-server.py READY_FILE LIFETIME_S ADDR PORT [ADDR PORT...]: answer every
# connection's first message with "pong:" + message, one line per connection.
import select, socket, sys, time
ready, life, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
socks = {}
for i in range(0, len(args), 2):
    addr, port = args[i], int(args[i + 1])
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    socks[s] = "%s/%d" % (addr, port)
open(ready, "w").write("ready\n")
end = time.monotonic() + life
while (left := end - time.monotonic()) > 0:
    for s in select.select(list(socks), [], [], left)[0]:
        c = s.accept()[0]
        c.settimeout(3)
        try:
            data = c.recv(100)
            c.sendall(b"pong:" + data)
            print("conn at=%s data=%s" % (socks[s], data.decode()), flush=True)
        except OSError as e:
            print("error at=%s err=%s" % (socks[s], e), flush=True)
        c.close()
EOF
cat >"$NT_TMP/tcp-client.py" <<'EOF'
# tcp-client.py ADDR PORT: exit 0 after a full exchange, 3 on a connect
# timeout, 4 on any other error.
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
msg = ("ping-%d" % port).encode()
try:
    s = socket.create_connection((addr, port), timeout=2)
    s.settimeout(3)
    s.sendall(msg)
    r = s.recv(100)
except socket.timeout:
    print("timeout")
    sys.exit(3)
except OSError as e:
    print("error %s" % e)
    sys.exit(4)
print("reply %s" % r.decode())
sys.exit(0 if r == b"pong:" + msg else 4)
EOF

# ---------------------------------------------------------------- config
nt_sub config
write_config
nt_run check 5000 "$BK_BROKER" --config "$BK_CONF" --check
nt_assert_eq 0 "$NT_RC" "--check on the test's policy: exit status"
nt_assert_eq ok "$(cat "$(nt_out check)")" "--check on the test's policy: output"
nt_ok

# ---------------------------------------------------------------- attach
nt_sub attach
bk_start broker
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_netns AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-a
bk_wait_attach pod-b
nt_assert_grep "$BK_LOG" "event=attach name=pod-a .*policy=pa queues=1 " "pod-a attached with policy pa"
nt_assert_grep "$BK_LOG" "event=attach name=pod-b .*policy=pb queues=1 " "pod-b attached with policy pb"
nt_wait_queue "$NS_A" 1
nt_wait_queue "$NS_B" 1
nt_ok

# ---------------------------------------------------------------- udp
nt_sub udp
N=5
# pod-a, loopback, IPv4
flow "pa v4 5001 (udp-5001: accept)"       "$NS_A" 127.0.0.1 5001 "$NS_A" $N $N pod-a
flow "pa v4 5002 (udp-5002-log: drop)"     "$NS_A" 127.0.0.1 5002 "$NS_A" $N 0 pod-a
flow "pa v4 5003 (mark-5003: accept)"      "$NS_A" 127.0.0.1 5003 "$NS_A" $N $N pod-a
flow "pa v4 5004 (default: drop)"          "$NS_A" 127.0.0.1 5004 "$NS_A" $N 0 pod-a
flow "pa v4 5005 (len-5005: 1228 bytes accepted, 128 dropped)" \
	"$NS_A" 127.0.0.1 5005 "$NS_A" $N $N pod-a --size 1200
RX5005=$(nt_out "${FL_NAME[-1]}")
flow "pa v4 5006 over lo (out-a0 wants a0: default drop)" "$NS_A" 127.0.0.1 5006 "$NS_A" $N 0 pod-a
# pod-a out through a0 to the peer, IPv4 and IPv6
flow "pa v4 5006 out a0 (out-a0: accept)"  "$NS_P" 10.77.0.2 5006 "$NS_A" $N $N pod-a
flow "pa v4 5007 out a0 (v6-net wants ipv6: default drop)" "$NS_P" 10.77.0.2 5007 "$NS_A" $N 0 pod-a
flow "pa v6 5007 out a0 (v6-net: accept)"  "$NS_P" fd77::2 5007 "$NS_A" $N $N pod-a
# pod-a, loopback, IPv6
flow "pa v6 5001 (udp-5001: accept)"       "$NS_A" ::1 5001 "$NS_A" $N $N pod-a
flow "pa v6 5003 (mark-5003: accept)"      "$NS_A" ::1 5003 "$NS_A" $N $N pod-a
flow "pa v6 5007 to ::1 (v6-net wants fd77::/64: default drop)" "$NS_A" ::1 5007 "$NS_A" $N 0 pod-a
# pod-a in from the peer through a0: source inside / outside peer-in's list
flow "pa v4 5101 in a0 from 10.77.0.2 (peer-in: accept)" "$NS_A" 10.77.0.1 5101 "$NS_P" $N $N pod-a
flow "pa v4 5101 in a0 from 10.77.0.6 (default: drop)"   "$NS_A" 10.77.9.1 5101 "$NS_P" $N 0 pod-a
flow "pa v6 5101 in a0 from fd77::2 (peer-in: accept)"    "$NS_A" fd77::1 5101 "$NS_P" $N $N pod-a
flow "pa v6 5101 in a0 from fd77::6 (default: drop)"      "$NS_A" fd77::9:1 5101 "$NS_P" $N 0 pod-a
# pod-b: the opposite on the same queue number
flow "pb v4 5001 (no-5001: drop)"          "$NS_B" 127.0.0.1 5001 "$NS_B" $N 0 pod-b
flow "pb v4 5002 (default: accept)"        "$NS_B" 127.0.0.1 5002 "$NS_B" $N $N pod-b
flow "pb v4 5003 (default: accept)"        "$NS_B" 127.0.0.1 5003 "$NS_B" $N $N pod-b
flow "pb v4 5004 (default: accept)"        "$NS_B" 127.0.0.1 5004 "$NS_B" $N $N pod-b
flow "pb v6 5001 (no-5001: drop)"          "$NS_B" ::1 5001 "$NS_B" $N 0 pod-b
flow "pb v6 5003 (default: accept)"        "$NS_B" ::1 5003 "$NS_B" $N $N pod-b
# the 128-byte datagrams to 5005, which len-5005 does not take
nt_udp_send "$NS_A" 127.0.0.1 5005 --count $N --size 100
SENT[pod-a]=$((SENT[pod-a] + N)) DROP[pod-a]=$((DROP[pod-a] + N))
flows_run
nt_assert_lines "$RX5005" '^recv .* len=1200 .*intact=1' $N "pa v4 5005: only the 1200-byte datagrams arrive"
nt_ok

# ---------------------------------------------------------------- marks
nt_sub marks
nt_assert_eq $N "$(nt_ipt_count "$NS_A" -t mangle POSTROUTING mark42-out)" "pa: v4 datagrams with mark 42 at POSTROUTING"
nt_assert_eq $N "$(nt_ipt_count "$NS_A" -6 -t mangle POSTROUTING mark42-out)" "pa: v6 datagrams with mark 42 at POSTROUTING"
nt_assert_eq $N "$(nt_ipt_count "$NS_A" INPUT mark42-in)" "pa: v4 datagrams with mark 42 at INPUT"
nt_assert_eq $N "$(nt_ipt_count "$NS_A" -6 INPUT mark42-in)" "pa: v6 datagrams with mark 42 at INPUT"
for t in "-t mangle POSTROUTING mark42-out" "INPUT mark42-in"; do
	# shellcheck disable=SC2086
	nt_assert_eq 0 "$(nt_ipt_count "$NS_B" $t)" "pb (no set_mark): v4 datagrams with mark 42 ($t)"
	# shellcheck disable=SC2086
	nt_assert_eq 0 "$(nt_ipt_count "$NS_B" -6 $t)" "pb (no set_mark): v6 datagrams with mark 42 ($t)"
done
nt_ok

# ---------------------------------------------------------------- log
nt_sub log
bk_wait_count 'event=packet ' $N
nt_assert_lines "$BK_LOG" 'event=packet ' $N "packet log lines (only udp-5002-log logs; shadowed never matches)"
nt_assert_lines "$BK_LOG" \
	"level=info event=packet ns=pod-a queue=1 id=[0-9]+ policy=pa rule=udp-5002-log family=ipv4 proto=udp src=127\.0\.0\.1 dst=127\.0\.0\.1 sport=[0-9]+ dport=5002 len=42 verdict=drop$" \
	$N "packet log line of udp-5002-log"
nt_ok

# ---------------------------------------------------------------- counters
nt_sub counters
ctl_json rules rules
R=$(nt_out rules)
# v4 datagrams udp-tool sends by default are 42 bytes, v6 62.
expect_rules "$R" \
	pa udp-5001 10 520   pa udp-5002-log 5 210   pa mark-5003 10 520 \
	pa len-5005 5 6140   pa out-a0 5 210         pa v6-net 5 310 \
	pa peer-in 10 520    pa tcp-6001 0 0         pa shadowed 0 0 \
	pa "(default)" 35 2100 \
	pb no-5001 10 520    pb "(default)" 20 940
for ns in pod-a pod-b; do
	bk_expect_stats "$ns" "after the UDP flows" packets="${SENT[$ns]}" \
		accept="${ACC[$ns]}" drop="${DROP[$ns]}" errors=0
done
# iptables saw as many as were sent: nothing bypassed the queue
nt_assert_eq 35 "$(nt_ipt_count "$NS_A" OUTPUT q-lo-udp)" "pa: v4 datagrams queued at OUTPUT lo"
nt_assert_eq 15 "$(nt_ipt_count "$NS_A" -6 OUTPUT q-lo-udp)" "pa: v6 datagrams queued at OUTPUT lo"
nt_assert_eq 10 "$(nt_ipt_count "$NS_A" OUTPUT q-a0-out)" "pa: v4 datagrams queued at OUTPUT a0"
nt_assert_eq 5 "$(nt_ipt_count "$NS_A" -6 OUTPUT q-a0-out)" "pa: v6 datagrams queued at OUTPUT a0"
nt_assert_eq 10 "$(nt_ipt_count "$NS_A" INPUT q-a0-in)" "pa: v4 datagrams queued at INPUT a0"
nt_assert_eq 10 "$(nt_ipt_count "$NS_A" -6 INPUT q-a0-in)" "pa: v6 datagrams queued at INPUT a0"
nt_ok

# ---------------------------------------------------------------- tcp
nt_sub tcp
for ns in "$NS_A" "$NS_B"; do
	tag=${ns##*-}
	rm -f "$NT_TMP/tcp-$tag.ready"
	nt_spawn SRV "tcp-server-$tag" nt_x "$ns" python3 "$NT_TMP/tcp-server.py" \
		"$NT_TMP/tcp-$tag.ready" 60 127.0.0.1 6001 127.0.0.1 6002 ::1 6001 ::1 6002
	nt_wait_ready "$SRV" "$NT_TMP/tcp-$tag.ready" ready
done
declare -A TCP_PID=() TCP_EXP=()
# pod-a: tcp-6001 accepts, the default drops 6002; pod-b accepts both.
for c in "a 127.0.0.1 6001 0" "a 127.0.0.1 6002 3" "a ::1 6001 0" "a ::1 6002 3" \
	 "b 127.0.0.1 6001 0" "b 127.0.0.1 6002 0" "b ::1 6001 0" "b ::1 6002 0"; do
	read -r tag addr port rc <<<"$c"
	[[ $tag == a ]] && ns=$NS_A || ns=$NS_B
	key="$tag-${addr//:/_}-$port"
	nt_spawn "TCP_PID[$key]" "tcp-client-$key" nt_x "$ns" timeout -k 1 8 \
		python3 "$NT_TMP/tcp-client.py" "$addr" "$port"
	TCP_EXP[$key]=$rc
done
for key in "${!TCP_PID[@]}"; do
	nt_wait_pid "${TCP_PID[$key]}" 10000
	nt_assert_eq "${TCP_EXP[$key]}" "$NT_RC" \
		"tcp client $key (0: exchange done, 3: connect timed out): exit status"
done
# The servers saw exactly the connections the policies let through.
srv_a=$(nt_out tcp-server-a) srv_b=$(nt_out tcp-server-b)
for at in 127.0.0.1/6001 ::1/6001; do
	nt_assert_lines "$srv_a" "^conn at=$at data=ping-6001$" 1 "pa: connections served at $at"
done
nt_assert_lines "$srv_a" '^conn at=.*/6002 ' 0 "pa: connections served on 6002 (the SYNs were dropped)"
for at in 127.0.0.1/6001 127.0.0.1/6002 ::1/6001 ::1/6002; do
	nt_assert_lines "$srv_b" "^conn at=$at data=ping-${at#*/}$" 1 "pb: connections served at $at"
done
nt_assert_lines "$srv_a" '^error ' 0 "pa: server errors"
nt_assert_lines "$srv_b" '^error ' 0 "pb: server errors"
ctl_json rules2 rules
R=$(nt_out rules2)
# each accepted connection's client half: SYN, ACK, data, FIN... at least 3
n=$(rule_counter "$R" pa tcp-6001 packets)
nt_assert_ge 6 "$n" "nfq-ctl rules: packets of pa/tcp-6001 (two connections)"
# the dropped SYNs of 6002 (retransmitted once within the 2 s timeout)
n=$(rule_counter "$R" pa "(default)" packets)
nt_assert_ge $((35 + 4)) "$n" "nfq-ctl rules: packets of pa/(default) after the dropped SYNs"
nt_assert_eq 0 "$(bk_stats pod-a errors)" "pod-a: verdict errors"
nt_assert_eq "${DROP[pod-b]}" "$(bk_stats pod-b drop)" "pod-b: drops after TCP (all accepted)"
nt_ok

# ---------------------------------------------------------------- shutdown
nt_sub shutdown
bk_stop
nt_assert_nogrep "$BK_LOG" 'level=(warn|error)|runtime error|Sanitizer' "warnings, errors or sanitizer reports in the broker log"
nt_ok
