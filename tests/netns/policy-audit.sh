#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Safer rollout (docs/policy.md "Audit mode", "Logging") with real traffic:
# pod-a's policy has "mode": "audit", pod-b's entry "audit": true over an
# enforcing policy. A rule that drops port 5002 lets every datagram
# through in both and counts them as would_drop (per rule in nfq-ctl rules,
# per namespace in the stats line), each logged with audit=drop and the
# rule's comment; a set_mark on an audited drop is not applied (an iptables
# mark counter stays 0); pod-b's default {"verdict": "drop", "log": true}
# is audited and logged as rule=(default). A rate-limited "log" holds lines
# back and reports them as suppressed=K on its next line. A reload to
# enforce (both ways) then drops port 5002 for real; counters carry over.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init policy-audit
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock

nt_ns_new NS_A a
nt_ns_new NS_B b
for ns in "$NS_A" "$NS_B"; do
	nt_ipt "$ns" -A OUTPUT -o lo -p udp -m comment --comment q-udp -j NFQUEUE --queue-num 1
	nt_ipt "$ns" -A INPUT -i lo -p udp -m mark --mark 42 -m comment --comment mark42-in
done

# write_config MODE_OF_pa AUDIT_OF_pod-b
write_config() {
	bk_config "\"namespaces\": [
    { \"name\": \"pod-a\", \"netns\": \"$(nt_ns_path "$NS_A")\", \"queues\": [1], \"policy\": \"pa\" },
    { \"name\": \"pod-b\", \"netns\": \"$(nt_ns_path "$NS_B")\", \"queues\": [1], \"policy\": \"pb\",
      \"audit\": $2 }
  ],
  \"policies\": {
    \"pa\": {
      \"mode\": \"$1\",
      \"default\": \"accept\",
      \"rules\": [
        { \"name\": \"no-5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 },
          \"verdict\": \"drop\", \"comment\": \"no 5002 here\" },
        { \"name\": \"mark-5005\", \"match\": { \"proto\": \"udp\", \"dport\": 5005 },
          \"verdict\": \"drop\", \"set_mark\": 42 },
        { \"name\": \"limited\", \"match\": { \"proto\": \"udp\", \"dport\": 5003 },
          \"verdict\": \"accept\", \"log\": { \"rate\": \"2/second\", \"burst\": 1 } }
      ]
    },
    \"pb\": {
      \"default\": { \"verdict\": \"drop\", \"log\": true },
      \"rules\": [
        { \"name\": \"ok-5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" },
        { \"name\": \"no-5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 },
          \"verdict\": \"drop\", \"comment\": \"no 5002 here\" }
      ]
    }
  }"
}

ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" --compact "$@"
	nt_assert_eq 0 "$NT_RC" "nfq-ctl $*: exit status"
}

# rule_field FILE POLICY RULE FIELD - from the reply of nfq-ctl rules.
rule_field() {
	python3 - "$@" <<'EOF'
import json, sys
f, pol, rule, field = sys.argv[1:]
d = json.load(open(f))
hits = [r.get(field, "absent") for r in d["rules"] if r["policy"] == pol and r["rule"] == rule]
print(hits[0] if len(hits) == 1 else "missing" if not hits else "duplicate")
EOF
}

# ---------------------------------------------------------------- audit
nt_sub audit
write_config audit true
bk_start broker
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_nsenter AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-a
bk_wait_attach pod-b
nt_wait_queue "$NS_A" 1
nt_wait_queue "$NS_B" 1
nt_assert_grep "$BK_LOG" 'event=attach name=pod-a .* audit=true' "pod-a's attach line says audit"
nt_assert_grep "$BK_LOG" 'event=attach name=pod-b .* audit=true' "pod-b's attach line says audit"

bk_expect_traffic "$NS_A" 5002 5 5 "pod-a (policy in audit mode): the dropping rule lets everything through"
bk_expect_traffic "$NS_B" 5002 5 5 "pod-b (entry in audit mode): the dropping rule lets everything through"
bk_expect_traffic "$NS_B" 5004 3 3 "pod-b: the default (drop) lets everything through"
bk_expect_traffic "$NS_B" 5001 2 2 "pod-b: an accepting rule"
bk_expect_traffic "$NS_A" 5005 4 4 "pod-a: an audited drop with set_mark"
nt_assert_eq 0 "$(nt_ipt_count "$NS_A" INPUT mark42-in)" "pod-a: set_mark of an audited drop is not applied"

bk_expect_stats pod-a "pod-a in audit" packets=9 accept=9 drop=0 would_drop=9
bk_expect_stats pod-b "pod-b in audit" packets=10 accept=10 drop=0 would_drop=8
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-a .* rule=no-5002 .* dport=5002 .* verdict=accept audit=drop comment="no 5002 here"' \
	5 "pod-a: one log line per audited drop, with the rule's comment"
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-b .* rule=no-5002 .* verdict=accept audit=drop comment=' \
	5 "pod-b: one log line per audited drop"
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-b .* rule=\(default\) .* dport=5004 .* verdict=accept audit=drop' \
	3 "pod-b: the loggable default, audited"
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-b .* rule=ok-5001 ' 0 "no line for an accepting rule without log"

ctl rules1 rules
R=$(nt_out rules1)
nt_assert_eq 5 "$(rule_field "$R" pa no-5002 would_drop)" "nfq-ctl rules: would_drop of pa/no-5002"
nt_assert_eq 5 "$(rule_field "$R" pa no-5002 packets)" "nfq-ctl rules: packets of pa/no-5002"
nt_assert_eq 4 "$(rule_field "$R" pa mark-5005 would_drop)" "nfq-ctl rules: would_drop of pa/mark-5005"
nt_assert_eq audit "$(rule_field "$R" pa no-5002 mode)" "nfq-ctl rules: mode of pa"
nt_assert_eq enforce "$(rule_field "$R" pb no-5002 mode)" "nfq-ctl rules: mode of pb (the entry audits)"
nt_assert_eq 5 "$(rule_field "$R" pb no-5002 would_drop)" "nfq-ctl rules: would_drop of pb/no-5002"
nt_assert_eq 3 "$(rule_field "$R" pb "(default)" would_drop)" "nfq-ctl rules: would_drop of pb's default"
nt_assert_eq 0 "$(rule_field "$R" pb ok-5001 would_drop)" "nfq-ctl rules: would_drop of an accepting rule"
nt_assert_eq "no 5002 here" "$(rule_field "$R" pa no-5002 comment)" "nfq-ctl rules: the comment"
nt_assert_eq absent "$(rule_field "$R" pb ok-5001 comment)" "nfq-ctl rules: no comment, no key"
ctl agents1 agents
python3 - "$(nt_out agents1)" >"$NT_TMP/modes" <<'EOF2'
import json, sys
for a in json.load(open(sys.argv[1]))["agents"]:
    print(a["name"], a["mode"], a["verdicts"]["would_drop"])
EOF2
nt_assert_grep "$NT_TMP/modes" '^pod-a audit 9$' "nfq-ctl agents: pod-a audits (its policy), would_drop"
nt_assert_grep "$NT_TMP/modes" '^pod-b audit 8$' "nfq-ctl agents: pod-b audits (its entry), would_drop"
# The same figures in the metrics (nfq-ctl metrics prints the exposition).
nt_run metrics1 5000 "$CTL" --control "$CSOCK" metrics
nt_assert_eq 0 "$NT_RC" "nfq-ctl metrics: exit status"
M=$(nt_out metrics1)
nt_assert_grep "$M" '^nfqb_rule_would_drop_total\{policy="pa",rule="no-5002"\} 5$' "metrics: would_drop of pa/no-5002"
nt_assert_grep "$M" '^nfqb_rule_would_drop_total\{policy="pb",rule="\(default\)"\} 3$' "metrics: would_drop of pb's default"
nt_assert_grep "$M" '^nfqb_verdicts_total\{ns="pod-a",verdict="would_drop"\} 9$' "metrics: pod-a's would_drop"
nt_assert_grep "$M" '^nfqb_verdicts_total\{ns="pod-b",verdict="would_drop"\} 8$' "metrics: pod-b's would_drop"
nt_assert_grep "$M" '^nfqb_verdicts_total\{ns="pod-a",verdict="drop"\} 0$' "metrics: pod-a dropped nothing"
nt_ok

# ---------------------------------------------------------------- watch
nt_sub watch-shows-audit
# a watcher sees the verdict sent (accept) and what the policy would have done
nt_spawn W watch1 "$CTL" --control "$CSOCK" -o json watch --ns pod-b --count 2
sleep 0.3
bk_expect_traffic "$NS_B" 5002 2 2 "pod-b while watched"
nt_wait_pid "$W" 5000
nt_assert_lines "$(nt_out watch1)" '"verdict":"accept".*"audit":"drop"' 2 "watch: accept sent, drop audited"
nt_ok

# ---------------------------------------------------------------- log limit
nt_sub log-rate-limit
# 2/second, burst 1: of 4 datagrams sent at once one is logged.
bk_expect_traffic "$NS_A" 5003 4 4 "pod-a: the rate-limited rule accepts"
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-a .* rule=limited ' 1 "rate limit: 1 line of 4 packets"
nt_assert_nogrep "$BK_LOG" 'rule=limited .*suppressed=' "the first line has no suppressed="
sleep 0.6    # one token back (500 ms)
bk_expect_traffic "$NS_A" 5003 1 1 "pod-a: one more after the pause"
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-a .* rule=limited .* verdict=accept suppressed=3$' 1 \
	"the next line reports the 3 held back"
ctl rules2 rules
nt_assert_eq 3 "$(rule_field "$(nt_out rules2)" pa limited log_suppressed)" "nfq-ctl rules: log_suppressed"
nt_ok

# ---------------------------------------------------------------- enforce
nt_sub enforce-by-reload
write_config enforce false
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=true '
bk_expect_traffic "$NS_A" 5002 5 0 "pod-a after the reload to enforce: port 5002 dropped"
bk_expect_traffic "$NS_B" 5002 5 0 "pod-b after the reload without audit: port 5002 dropped"
bk_expect_traffic "$NS_B" 5004 2 0 "pod-b: the default drops"
bk_expect_traffic "$NS_B" 5001 2 2 "pod-b: the accepting rule still accepts"
bk_expect_traffic "$NS_A" 5005 2 0 "pod-a: mark-5005 drops (marked packets go nowhere)"
bk_expect_stats pod-a "pod-a enforcing" drop=7 would_drop=9
bk_expect_stats pod-b "pod-b enforcing" drop=7 would_drop=10   # 8 audited, 2 while watched
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-b .* rule=\(default\) .* verdict=drop$' \
	2 "pod-b: the default logs its real drops"
nt_assert_lines "$BK_LOG" 'event=packet ns=pod-a .* rule=no-5002 .* verdict=drop' 0 \
	"enforcing: a rule without log writes no lines"
ctl rules3 rules
R=$(nt_out rules3)
nt_assert_eq 5 "$(rule_field "$R" pa no-5002 would_drop)" "would_drop carried over the reload"
nt_assert_eq 10 "$(rule_field "$R" pa no-5002 packets)" "packets of pa/no-5002 (carried + new)"
nt_assert_eq enforce "$(rule_field "$R" pa no-5002 mode)" "nfq-ctl rules: mode of pa after the reload"
ctl agents2 agents
nt_assert_grep "$(nt_out agents2)" '"name":"pod-b",[^}]*"mode":"enforce"' "nfq-ctl agents: pod-b enforces after the reload"
nt_ok

nt_sub teardown
kill "$AG_A" "$AG_B"
bk_stop
nt_ok
