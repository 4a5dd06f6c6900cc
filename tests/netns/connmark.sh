#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Connection-level verdicts (docs/policy.md "Connection-level verdicts")
# with real traffic and the kernel's own conntrack: a rule with
# set_connmark marks the packet, a CONNMARK --save-mark rule in a later
# hook copies the bit to the flow, and a -m connmark bypass rule before
# the NFQUEUE rule keeps the flow's later packets out of the queue. The
# first datagram of a UDP flow is decided by the broker, the rest bypass
# it (the broker's counters stop growing while the receiver gets every
# datagram); a flow of a rule without set_connmark stays queued. The
# broker logs the iptables rules the pattern needs when the agent attaches.
#
# The connmark match and the queue flag conntrack: a policy matching
# connmark for an entry without the flag is refused at load (--check and
# a reload, the old config staying in force); with the flag, this kernel
# (no CONFIG_NETFILTER_NETLINK_GLUE_CT) refuses the bind, and the agent
# gets that reason while the other namespace keeps being served. That the
# match reads the mark from NFQA_CT is a unit test (tests/test-pktmeta.c,
# tests/test-policy.c) with synthetic attributes: this kernel never sends
# NFQA_CT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init connmark
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock
N=20

nt_ns_new NS_R r
nt_ns_new NS_C c
# Loopback traffic passes PREROUTING and INPUT after OUTPUT: queue it at
# PREROUTING, save the mark at INPUT.
for port in 9000 9001; do
	nt_ipt "$NS_R" -t mangle -A PREROUTING -i lo -p udp --dport $port -m connmark --mark 0x1/0x1 \
		-m comment --comment bypass-$port -j ACCEPT
	nt_ipt "$NS_R" -t mangle -A PREROUTING -i lo -p udp --dport $port \
		-m comment --comment queue-$port -j NFQUEUE --queue-num 1
	nt_ipt "$NS_R" -t mangle -A INPUT -i lo -p udp --dport $port -m mark --mark 0x1/0x1 \
		-m comment --comment save-$port -j CONNMARK --save-mark --mask 0x1
done

# write_config [EXTRA_ENTRY] [EXTRA_POLICY]
write_config() {
	bk_config "\"namespaces\": [
    { \"name\": \"pod-r\", \"netns\": \"$(nt_ns_path "$NS_R")\", \"queues\": [1], \"policy\": \"flows\" }${1:+,
    $1}
  ],
  \"policies\": {
    \"flows\": {
      \"default\": \"accept\",
      \"rules\": [
        { \"name\": \"once\", \"match\": { \"proto\": \"udp\", \"dport\": 9000 },
          \"verdict\": \"accept\", \"set_connmark\": 1, \"comment\": \"first packet only\" },
        { \"name\": \"every\", \"match\": { \"proto\": \"udp\", \"dport\": 9001 }, \"verdict\": \"accept\" }
      ]
    }${2:+,
    $2}
  }"
}
CT_POLICY='"byct": { "default": "accept", "rules": [ { "name": "ct", "match": { "connmark": "0x1/0x1" }, "verdict": "drop" } ] }'
CT_ERR='namespaces\[1\]\.policy: policy "byct" matches connmark, which needs the queue flag conntrack'

ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" --compact "$@"
	nt_assert_eq 0 "$NT_RC" "nfq-ctl $*: exit status"
}

rule_packets() {
	python3 - "$(nt_out "$1")" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print([r["packets"] for r in d["rules"] if r["policy"] == "flows" and r["rule"] == sys.argv[2]][0])
EOF
}

# flow PORT - N datagrams from one socket (one conntrack flow), 20 ms apart.
flow() {
	local port=$1 rpid name="rx-$1"
	nt_udp_recv rpid "$name" "$NS_R" 127.0.0.1 "$port" "$N" 5000
	nt_udp_send "$NS_R" 127.0.0.1 "$port" --count "$N" --interval-ms 20
	nt_wait_pid "$rpid" 6000
	nt_assert_eq "$N" "$(nt_udp_summary "$name" received)" "port $port: datagrams received of $N"
}

# ---------------------------------------------------------------- bypass
nt_sub bypass-after-first-packet
write_config
bk_start broker
bk_agent_nsenter AG_R agent-r "$NS_R" pod-r
bk_wait_attach pod-r
nt_wait_queue "$NS_R" 1
nt_assert_grep "$BK_LOG" 'event=connmark_rules name=pod-r policy=flows note=".*CONNMARK --save-mark' \
	"the attach names the iptables rules set_connmark needs"

flow 9000
ctl rules1 rules
nt_assert_eq 1 "$(rule_packets rules1 once)" "set_connmark flow: packets the broker decided"
nt_assert_eq 1 "$(nt_ipt_count "$NS_R" -t mangle PREROUTING queue-9000)" "set_connmark flow: packets queued"
nt_assert_eq $((N - 1)) "$(nt_ipt_count "$NS_R" -t mangle PREROUTING bypass-9000)" \
	"set_connmark flow: packets that bypassed the queue"
nt_assert_eq 1 "$(nt_ipt_count "$NS_R" -t mangle INPUT save-9000)" "set_connmark flow: marks saved"
# The flow's conntrack entry carries the mark (conntrack(8) when present).
if command -v conntrack >/dev/null; then
	nt_x "$NS_R" conntrack -L -p udp --dport 9000 >"$NT_TMP/ct.txt" 2>/dev/null || true
	nt_assert_grep "$NT_TMP/ct.txt" 'dport=9000 .*mark=1 ' "conntrack entry of the flow has mark 1"
fi
# A second flow on the same port (another socket, another source port) is
# decided once more, and then bypasses too.
flow 9000
ctl rules2 rules
nt_assert_eq 2 "$(rule_packets rules2 once)" "a second flow: its first packet decided"

flow 9001
ctl rules3 rules
nt_assert_eq "$N" "$(rule_packets rules3 every)" "without set_connmark: every packet decided"
nt_assert_eq 0 "$(nt_ipt_count "$NS_R" -t mangle PREROUTING bypass-9001)" "without set_connmark: no bypass"
nt_ok

# ---------------------------------------------------------------- connmark match
nt_sub connmark-match-needs-conntrack-flag
# At load: an entry without the flag.
write_config "{ \"name\": \"pod-c\", \"queues\": [2], \"policy\": \"byct\" }" "$CT_POLICY"
nt_run check 5000 "$BK_BROKER" --config "$BK_CONF" --check
nt_assert_eq 2 "$NT_RC" "--check: connmark without the conntrack flag"
nt_assert_grep "$(nt_out check)" "^$CT_ERR" "--check: the error names the entry and the flag"
nt_assert_grep "$(nt_out check)" 'CONNMARK --restore-mark' "--check: the error says what works instead"
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=false '
nt_assert_grep "$BK_LOG" 'event=config_error error="namespaces\[1\]\.policy: policy \\"byct\\" matches connmark, which needs the queue flag conntrack' \
	"reload refused with the same error"

# With the flag: valid config; this kernel refuses the flag at bind time.
write_config "{ \"name\": \"pod-c\", \"queues\": [2], \"policy\": \"byct\", \"queue\": { \"conntrack\": true } }" \
	"$CT_POLICY"
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=true '
before=$(nt_count "$BK_LOG" 'event=(refuse|attach) name=pod-c ')
bk_agent_nsenter AG_C agent-c "$NS_C" pod-c
bk_wait_count 'event=(refuse|attach) name=pod-c ' $((before + 1))
if grep -q 'event=attach name=pod-c ' "$BK_LOG"; then
	nt_log "this kernel accepts the queue flag conntrack: the refusal is not tested here"
else
	nt_assert_grep "$BK_LOG" 'event=refuse name=pod-c .*kernel does not support flag conntrack' \
		"the kernel's refusal of the conntrack flag reaches the log"
	nt_expect_exit "$AG_C" 5000 1 "agent of pod-c (refused)"
	nt_assert_grep "$(nt_err agent-c)" 'conntrack' "agent of pod-c: the reason"
fi
# Nothing else harmed: pod-r's flows still work as before.
flow 9000
ctl rules4 rules
nt_assert_eq 3 "$(rule_packets rules4 once)" "pod-r still served after pod-c's refusal"
nt_ok

# ---------------------------------------------------------------- kernel
nt_sub kernel-conntrack-glue
# Why the mark pattern: what this kernel does with a verdict carrying
# NFQA_CT {CTA_MARK} (tests/netns/ct-verdict.c sends it; libnfqb cannot).
# Without the glue the flag is refused, packets come without NFQA_CT and
# the verdict's NFQA_CT is ignored: the flow's mark stays 0.
nt_ns_new NS_K k
nt_ipt "$NS_K" -A OUTPUT -o lo -p udp --dport 9100 -j NFQUEUE --queue-num 7
nt_ipt "$NS_K" -t mangle -A INPUT -i lo -p udp --dport 9100 -m connmark --mark 5 \
	-m comment --comment ctmark5
nt_spawn CTV ctv nt_x "$NS_K" "$(nt_bin ct-verdict)" 7 5 3 5000
nt_wait_ready "$CTV" "$(nt_err ctv)" '^ready$'
nt_udp_recv RXK rx-k "$NS_K" 127.0.0.1 9100 3 5000
nt_udp_send "$NS_K" 127.0.0.1 9100 --count 3 --interval-ms 20
nt_expect_exit "$CTV" 8000 0 "ct-verdict"
nt_wait_pid "$RXK" 6000
nt_assert_eq 3 "$(nt_udp_summary rx-k received)" "datagrams accepted by the NFQA_CT verdicts"
nt_assert_lines "$(nt_out ctv)" '^verdict_error=' 0 "the kernel took every verdict"
if grep -q '^conntrack_flag=refused$' "$(nt_out ctv)"; then
	nt_assert_lines "$(nt_out ctv)" '^packet ct=no$' 3 "no glue: packets come without NFQA_CT"
	nt_assert_eq 0 "$(nt_ipt_count "$NS_K" -t mangle INPUT ctmark5)" \
		"no glue: the verdict's CTA_MARK is ignored (conntrack mark stays 0)"
else
	nt_log "this kernel has the conntrack glue: NFQA_CT verdicts work"
	nt_assert_lines "$(nt_out ctv)" '^packet ct=yes$' 3 "glue: packets come with NFQA_CT"
	nt_assert_eq 3 "$(nt_ipt_count "$NS_K" -t mangle INPUT ctmark5)" \
		"glue: the verdict sets the conntrack mark"
fi
nt_ok

nt_sub teardown
kill "$AG_R"
bk_stop
nt_ok
