# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Shared setup of the nfq-ctl tests (ctl-*.sh), on top of lib.sh and
# broker-lib.sh: a broker with two namespaces, pod-a (policy "web": udp
# 5001 accepted by rule p5001, udp 5002 dropped by p5002, tcp 5003
# accepted by t5003, the rest dropped) and pod-b (policy "open": all
# accepted by its default), one agent each, UDP/TCP to 127.0.0.1 through
# NFQUEUE 1 on OUTPUT; the queues ask for the sender's uid/gid.

CTL=""
CSOCK=""
NS_A=""
NS_B=""

# ctl_setup - namespaces, rules, config, broker, agents (waits for both).
ctl_setup() {
	CTL=$(nt_bin nfq-ctl)
	CSOCK=$NT_TMP/run/control.sock
	nt_ns_new NS_A a
	nt_ns_new NS_B b
	bk_queue_rule "$NS_A" 1 5001
	bk_queue_rule "$NS_A" 1 5002
	bk_queue_rule "$NS_B" 1 5001
	nt_ipt "$NS_A" -A OUTPUT -o lo -p tcp --dport 5003 --syn -j NFQUEUE --queue-num 1
	BK_BROKER_EXTRA='"metrics_refresh_ms": 100' bk_config "
  \"queue_defaults\": { \"uid_gid\": true },
  \"namespaces\": [
    { \"name\": \"pod-a\", \"queues\": [1], \"policy\": \"web\" },
    { \"name\": \"pod-b\", \"queues\": [1], \"policy\": \"open\" }
  ],
  \"policies\": {
    \"open\": { \"default\": \"accept\", \"rules\": [] },
    \"web\": {
      \"default\": \"drop\",
      \"rules\": [
        { \"name\": \"p5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" },
        { \"name\": \"p5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"verdict\": \"drop\" },
        { \"name\": \"t5003\", \"match\": { \"proto\": \"tcp\", \"dport\": 5003 }, \"verdict\": \"accept\" }
      ]
    }
  }"
	bk_start
	ctl_agents
}

# ctl_agents - start both agents and wait until their queues are bound.
ctl_agents() {
	bk_agent_netns AG_A "agent-a$BK__STARTS" "$NS_A" pod-a
	bk_agent_netns AG_B "agent-b$BK__STARTS" "$NS_B" pod-b
	bk_wait_attach pod-a
	bk_wait_attach pod-b
	nt_wait_queue "$NS_A" 1
	nt_wait_queue "$NS_B" 1
}

# ctl NAME ARGS... - nfq-ctl on the test's socket (5 s at most), NT_RC set.
ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" "$@"
}

# ctl_ok NAME ARGS... - ctl, expecting exit status 0.
ctl_ok() {
	ctl "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl ${*:2}: exit status $NT_RC, expected 0: $(head -c 300 "$(nt_err "$1")")"
}

# ctl_usage NAME MESSAGE ARGS... - nfq-ctl ARGS is a usage error: exit 2,
# "nfq-ctl: MESSAGE" (a regex) and the hint on stderr, nothing on stdout.
ctl_usage() {
	local name=$1 msg=$2
	shift 2
	nt_run "$name" 5000 "$CTL" "$@"
	nt_assert_eq 2 "$NT_RC" "nfq-ctl $*: exit status"
	nt_assert_grep "$(nt_err "$name")" "^nfq-ctl: $msg\$" "nfq-ctl $*: message"
	nt_assert_grep "$(nt_err "$name")" "^Try 'nfq-ctl --help'.\$" "nfq-ctl $*: hint"
	nt_assert_eq 0 "$(wc -c <"$(nt_out "$name")")" "nfq-ctl $*: nothing on stdout"
}

# send NS PORT COUNT [SIZE] - datagrams through the queue (decided on
# OUTPUT; no receiver needed).
send() {
	nt_udp_send "$1" 127.0.0.1 "$2" --count "$3" --size "${4:-100}"
}

# syn NS - one TCP connection attempt to 127.0.0.1:5003 (its SYN is queued).
syn() {
	nt_x "$1" timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5003' 2>/dev/null || true
}

# on_tty NAME CMDLINE - run CMDLINE (a string) with stdout on a terminal.
on_tty() {
	nt_run "$1" 5000 script -qec "$2" /dev/null
}

# lines_ge FILE N - FILE has at least N lines.
lines_ge() {
	(($(wc -l <"$1") >= $2))
}

# py FILE EXPR - the python expression EXPR on FILE's text (bound to `t`,
# its lines to `L`).
py() {
	python3 -c 'import json, sys; t = open(sys.argv[1]).read(); L = t.splitlines(); print(eval(sys.argv[2]))' "$1" "$2" ||
		nt_fail "cannot evaluate $2 on $1: $(head -c 300 "$1")"
}
