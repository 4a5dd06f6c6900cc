#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Steering (docs/steering.md): a namespace with no NFQUEUE rule of its own
# gets its traffic queued only because its config entry has a "steer" list.
# The broker installs the rules in its own table ("inet nfq_broker") with one
# nf_tables batch, after its queues are bound; a user's own nft table and
# iptables rule in the same namespace stay untouched and keep working;
# nfq-ctl agents shows the rules, the backend and the kernel's counters.
# A namespace whose install the kernel refuses (a table of that name owned
# by another process: EPERM) is served unsteered with the kernel's reason,
# and the other namespace is not harmed. Releasing the namespace (agent
# bye) removes the table, so nothing is left queueing to nobody.
#
# This kernel has no nft_queue: the xtables-compat NFQUEUE target is the
# path exercised here (the native one is checked in tests/test-steer.c).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init steer
command -v nft >/dev/null || nt_skip "needs nft (Debian package nftables)"
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock

nt_ns_new NS_S s
nt_ns_new NS_O o

# The user's own rules, there before the broker: an nft table counting
# port 5003 and an iptables rule counting port 5004 (neither queues).
nt_x "$NS_S" nft add table inet usertab
nt_x "$NS_S" nft add chain inet usertab out '{ type filter hook output priority 10; }'
nt_x "$NS_S" nft add rule inet usertab out udp dport 5003 counter
nt_ipt "$NS_S" -A OUTPUT -o lo -p udp --dport 5004 -m comment --comment user-5004

# pod-o: a table named like the broker's, owned by another process (an
# nft -i session the test keeps open): the kernel refuses the broker's batch.
OWNER_FIFO=$NT_TMP/owner.fifo
mkfifo "$OWNER_FIFO"
# read-write: opening a fifo so never waits for the other end
exec {OWNER_FD}<>"$OWNER_FIFO"
nt_defer "exec $OWNER_FD>&-"
# (a background job's stdin is /dev/null unless its own command redirects it)
nt_spawn OWNER nft-owner bash -c 'exec ip netns exec "$1" nft -i <"$2"' - "$NS_O" "$OWNER_FIFO"
echo 'add table inet nfq_broker { flags owner; }' >&"$OWNER_FD"
owner_table() { nt_x "$NS_O" nft list tables 2>/dev/null | grep -q 'inet nfq_broker'; }
nt_wait_for 5000 "the owner's table in pod-o" owner_table

STEER='"steer": [ { "hook": "output", "family": "inet",
                   "match": { "proto": "udp", "dport": [5001, 5002], "outdev": "lo" },
                   "queue": 1 },
                 { "hook": "output", "family": "inet",
                   "match": { "proto": "udp", "dport": 5008, "dst": ["127.0.0.1", "::1"] },
                   "queue": 1 },
                 { "hook": "output", "family": "ip", "priority": -5,
                   "match": { "proto": "udp", "dport": "5006-5007", "dst": "127.0.0.0/8" },
                   "queue": "1-2", "bypass": true } ]'
bk_config "\"namespaces\": [
    { \"name\": \"pod-s\", \"queues\": [1, 2], \"policy\": \"web\", $STEER },
    { \"name\": \"pod-o\", \"queues\": [1, 2], \"policy\": \"web\", $STEER }
  ],
  \"policies\": {
    \"web\": { \"default\": \"accept\", \"rules\": [
      { \"name\": \"no-5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"verdict\": \"drop\" } ] }
  }"

ctl() {     # NAME ARGS... - nfq-ctl on the test's broker, NT_RC set
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" --compact "$@"
}

# agent_steer NAME EXPR - a Python expression on the "steer" object of
# agent NAME in `nfq-ctl agents` (s), printed.
agent_steer() {
	local out=agents-$BASHPID-$RANDOM
	ctl "$out" agents
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl agents: exit status $NT_RC"
	python3 - "$(nt_out "$out")" "$1" "$2" <<'EOF'
import json, sys
f, name, expr = sys.argv[1:]
d = json.load(open(f))
a = [x for x in d["agents"] if x["name"] == name]
s = a[0].get("steer") if a else "no such agent"
print(eval(expr, {"s": s}))
EOF
}

tables() {  # NS - the nfq_broker tables in it, one per line
	nt_x "$1" nft list tables 2>/dev/null | grep nfq_broker || true
}

# ---------------------------------------------------------------- install
nt_sub install
bk_start broker
bk_agent_nsenter AG_S agent-s "$NS_S" pod-s
bk_wait_attach pod-s
nt_wait_queue "$NS_S" 1
# the steering thread installs after the queues are bound, ACCEPT not waiting
bk_wait_log 'event=steer_install name=pod-s rules=3 backend=xt-NFQUEUE ' 5000
nt_assert_grep "$BK_LOG" 'event=steer_backend backend=xt-NFQUEUE ' "backend found and logged"
nt_assert_eq "table inet nfq_broker
table ip nfq_broker" "$(tables "$NS_S")" "pod-s: the broker's tables, one per family used"
nt_x "$NS_S" nft list table inet nfq_broker >"$NT_TMP/ruleset-s" 2>/dev/null
nt_assert_grep "$NT_TMP/ruleset-s" 'oifname "lo" udp dport \{ 5001-5002 \} counter .* queue num 1' "the rule as nft shows it (adjacent ports merged)"
# the inet item with IPv4 and IPv6 addresses: one rule per family
nt_assert_grep "$NT_TMP/ruleset-s" 'ip daddr 127.0.0.1 udp dport 5008 counter .* queue num 1 comment "nfq-broker steer\[1\]"' "the item's IPv4 rule"
nt_assert_grep "$NT_TMP/ruleset-s" 'ip6 daddr ::1 udp dport 5008 counter .* queue num 1 comment "nfq-broker steer\[1\]"' "the item's IPv6 rule"
nt_x "$NS_S" nft list table ip nfq_broker >"$NT_TMP/ruleset-s-ip" 2>/dev/null
nt_assert_grep "$NT_TMP/ruleset-s-ip" 'hook output priority filter - 5' "the ip item's chain and priority"
nt_assert_grep "$NT_TMP/ruleset-s-ip" 'ip daddr 127.0.0.0/8 udp dport 5006-5007 counter .* queue num 1-2 bypass' "a queue range with bypass, as nft shows it"
nt_ok

# ---------------------------------------------------------------- traffic
nt_sub traffic
bk_expect_traffic "$NS_S" 5001 5 5 "steered, policy accepts"
bk_expect_traffic "$NS_S" 5002 5 0 "steered, policy drops"
bk_expect_traffic "$NS_S" 5003 5 5 "not steered (the user's nft table counts it)"
bk_expect_traffic "$NS_S" 5004 5 5 "not steered (the user's iptables rule counts it)"
bk_expect_traffic "$NS_S" 5006 5 5 "steered to the queue range 1-2, policy accepts"
bk_expect_traffic "$NS_S" 5008 4 4 "IPv4 to 5008, steered by the inet item's IPv4 rule"
nt_udp_recv R6 recv6-5008 "$NS_S" ::1 5008 4 1500
nt_udp_send "$NS_S" ::1 5008 --count 4
nt_wait_pid "$R6" 5000
nt_assert_eq 4 "$(nt_udp_summary recv6-5008 received)" "IPv6 to 5008, steered by its IPv6 rule, accepted"
bk_expect_stats pod-s traffic packets=23 accept=18 drop=5
nt_ok

# ---------------------------------------------------------------- the user's rules
nt_sub user-rules-untouched
nt_x "$NS_S" nft list table inet usertab >"$NT_TMP/usertab" 2>&1 || nt_fail "the user's table is gone"
nt_assert_grep "$NT_TMP/usertab" 'udp dport 5003 counter packets 5 ' "the user's nft rule counted its 5 packets"
nt_assert_eq 5 "$(nt_ipt_count "$NS_S" OUTPUT user-5004)" "the user's iptables rule counted its 5 packets"
nt_ok

# ---------------------------------------------------------------- nfq-ctl agents
nt_sub visibility
nt_assert_eq True "$(agent_steer pod-s 's["installed"]')" "agents: installed"
nt_assert_eq xt-NFQUEUE "$(agent_steer pod-s 's["backend"]')" "agents: backend"
nt_assert_eq "output ip 1-2 1" "$(agent_steer pod-s '" ".join(str(x) for x in (s["rules"][2]["hook"], s["rules"][2]["family"], s["rules"][2]["queue"], s["rules"][2]["kernel_rules"]))')" "agents: the range rule"
nt_assert_eq 5 "$(agent_steer pod-s 's["rules"][2]["packets"]')" "agents: the range rule's counter"
nt_assert_eq "2 8" "$(agent_steer pod-s '"%d %d" % (s["rules"][1]["kernel_rules"], s["rules"][1]["packets"])')" "agents: the inet item's two rules, counters summed"
nt_assert_eq False "$(agent_steer pod-s 's["pending"]')" "agents: nothing pending"
nt_assert_eq "output inet 1 1" "$(agent_steer pod-s '" ".join(str(x) for x in (s["rules"][0]["hook"], s["rules"][0]["family"], s["rules"][0]["queue"], s["rules"][0]["kernel_rules"]))')" "agents: the rule"
nt_assert_eq 10 "$(agent_steer pod-s 's["rules"][0]["packets"]')" "agents: the rule's kernel counter"
nt_assert_eq None "$(agent_steer pod-s 's["error"]')" "agents: no error"
nt_ok

# ---------------------------------------------------------------- refused by the kernel
nt_sub kernel-refuses
bk_agent_nsenter AG_O agent-o "$NS_O" pod-o
bk_wait_attach pod-o
bk_wait_log 'event=steer_error name=pod-o during=steer_install error="kernel refused the table: Operation not permitted' 5000
nt_assert_grep "$BK_LOG" 'event=steer_unsteered name=pod-o ' "served unsteered, logged"
nt_assert_eq False "$(agent_steer pod-o 's["installed"]')" "agents: pod-o not installed"
nt_assert_eq True "$(agent_steer pod-o '"Operation not permitted" in s["error"]')" "agents: pod-o's error"
bk_expect_traffic "$NS_O" 5002 3 3 "pod-o unsteered: port 5002 not queued, so not dropped"
ctl metrics-refused metrics
nt_assert_grep "$(nt_out metrics-refused)" '^nfqb_steer_installed\{ns="pod-o"\} 0$' "metrics: pod-o not steered"
nt_assert_grep "$(nt_out metrics-refused)" '^nfqb_steer_failures_total\{ns="pod-o"\} 1$' "metrics: pod-o's failure counted"
nt_assert_grep "$(nt_out metrics-refused)" '^nfqb_steer_installed\{ns="pod-s"\} 1$' "metrics: pod-s steered"
bk_expect_stats pod-o unsteered packets=0
# pod-s did not notice
bk_expect_traffic "$NS_S" 5002 3 0 "pod-s still steered"
nt_assert_eq "table inet nfq_broker
table ip nfq_broker" "$(tables "$NS_S")" "pod-s: still its tables, once each"
# once the owner is gone, a reload retries the failed install
kill "$OWNER"
nt_wait_pid "$OWNER" 5000
owner_gone() { ! owner_table; }
nt_wait_for 5000 "the owner's table to go" owner_gone
kill -HUP "$BK_PID"
bk_wait_log 'event=steer_replace name=pod-o rules=3 ' 5000
bk_expect_traffic "$NS_O" 5002 3 0 "pod-o steered after the reload"
nt_ok

# ---------------------------------------------------------------- release
nt_sub release-bye
kill -TERM "$AG_S"
nt_expect_exit "$AG_S" 5000 0 "agent of pod-s (bye)"
bk_wait_log 'event=release name=pod-s ' 5000
bk_wait_log 'event=steer_remove name=pod-s rules=0 ' 5000
nt_assert_eq "" "$(tables "$NS_S")" "pod-s: the broker's table is gone"
bk_expect_traffic "$NS_S" 5002 3 3 "pod-s released: nothing queued to nobody"
nt_x "$NS_S" nft list table inet usertab >/dev/null 2>&1 || nt_fail "the user's table went with the broker's"
nt_ok

kill -0 "$BK_PID" || nt_fail "the broker died"
