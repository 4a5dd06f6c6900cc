# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Helpers for the nfq-broker integration tests (broker-*.sh), on top of
# lib.sh (source that first). A test writes its config with bk_config,
# starts the broker with bk_start and agents with bk_agent_nsenter (the
# `nsenter -n` way) or bk_agent_netns (the `--netns PATH` way), then sends
# UDP over each namespace's loopback through `iptables -j NFQUEUE` rules.
#
# Variables set by bk_init: BK_BROKER, BK_AGENT (binaries), BK_SOCK (agent
# socket), BK_CONF (config path), BK_LOG (broker stderr of the latest start).

BK_BROKER=""
BK_AGENT=""
BK_SOCK=""
BK_CONF=""
BK_LOG=""
BK_PID=""
BK__STARTS=0

# bk_init - binaries and paths; call after nt_init.
bk_init() {
	BK_BROKER=$(nt_bin nfq-broker)
	BK_AGENT=$(nt_bin nfq-agent)
	nt_bin udp-tool >/dev/null
	# A directory that does not exist yet: the broker creates it.
	BK_SOCK=$NT_TMP/run/agent.sock
	BK_CONF=$NT_TMP/broker.json
}

# bk_config JSON_BODY - write the config: a "broker" object with the test's
# socket paths and any extra broker keys given in $BK_BROKER_EXTRA, then
# JSON_BODY (the rest of the top-level object: namespaces, policies...).
bk_config() {
	cat >"$BK_CONF.new" <<EOF
{
  "broker": {
    "listen": "$BK_SOCK",
    "control": "$NT_TMP/run/control.sock"${BK_BROKER_EXTRA:+,
    $BK_BROKER_EXTRA}
  },
  $1
}
EOF
	mv "$BK_CONF.new" "$BK_CONF"
}

# bk_start [NAME] - start nfq-broker --verbose on $BK_CONF, wait until it
# listens. BK_PID and BK_LOG point at it.
bk_start() {
	local name=${1:-broker$BK__STARTS}
	BK__STARTS=$((BK__STARTS + 1))
	nt_spawn BK_PID "$name" "$BK_BROKER" --config "$BK_CONF" --verbose
	BK_LOG=$(nt_err "$name")
	nt_wait_ready "$BK_PID" "$BK_LOG" 'event=start '
}

# bk_stop - SIGTERM the broker, expect exit 0 within 5 s.
bk_stop() {
	kill -TERM "$BK_PID"
	nt_expect_exit "$BK_PID" 5000 0 "nfq-broker after SIGTERM"
}

# bk_wait_log REGEX [MS] [FILE] - wait until the broker log has a line
# matching REGEX (fails the test at the timeout, or if the broker died).
bk_wait_log() {
	nt_wait_ready "$BK_PID" "${3:-$BK_LOG}" "$1" "${2:-$NT_WAIT_MS}"
}

# bk_wait_count REGEX N [MS] - wait until N lines of the broker log match.
bk_wait_count() {
	nt_wait_for "${3:-$NT_WAIT_MS}" "$2 lines matching '$1' in $BK_LOG" \
		bk__count_ge "$1" "$2"
}

bk__count_ge() {
	(($(nt_count "$BK_LOG" "$1") >= $2))
}

# bk_agent_nsenter VAR LOGNAME NS AGENT_NAME [agent options] - start an
# agent inside NS with `nsenter -n` (it opens the sockets in the namespace
# it runs in). Does not wait for the attach (see bk_wait_attach).
bk_agent_nsenter() {
	local _bk_var=$1 log=$2 ns=$3 name=$4
	shift 4
	nt_spawn "$_bk_var" "$log" nsenter --net="$(nt_ns_path "$ns")" \
		"$BK_AGENT" --broker "$BK_SOCK" --name "$name" --verbose "$@"
}

# bk_agent_netns VAR LOGNAME NS AGENT_NAME [agent options] - start an agent
# in this namespace that opens its sockets in NS (--netns /run/netns/NS).
bk_agent_netns() {
	local _bk_var=$1 log=$2 ns=$3 name=$4
	shift 4
	nt_spawn "$_bk_var" "$log" "$BK_AGENT" --broker "$BK_SOCK" --name "$name" \
		--netns "$(nt_ns_path "$ns")" --verbose "$@"
}

# bk_wait_attach AGENT_NAME [N] [MS] - wait for the broker's N-th (default:
# first) attach or takeover of AGENT_NAME.
bk_wait_attach() {
	bk_wait_count "event=(attach|takeover) name=$1 " "${2:-1}" "${3:-$NT_WAIT_MS}"
}

# bk_queue_rule NS QUEUE PORT - send UDP to 127.0.0.1:PORT inside NS
# through NFQUEUE QUEUE (OUTPUT hook), the rule tagged "bk-PORT".
bk_queue_rule() {
	nt_ipt "$1" -A OUTPUT -o lo -p udp --dport "$3" -m comment --comment "bk-$3" \
		-j NFQUEUE --queue-num "$2"
}

# bk_traffic NS PORT COUNT - send COUNT datagrams to 127.0.0.1:PORT in NS
# with a receiver there; BK_GOT is how many arrived.
BK_GOT=""
bk_traffic() {
	local ns=$1 port=$2 count=$3 rpid name
	BK__STARTS=$((BK__STARTS + 1))
	name="recv-$port-$BK__STARTS"
	nt_udp_recv rpid "$name" "$ns" 127.0.0.1 "$port" "$count" 1500
	nt_udp_send "$ns" 127.0.0.1 "$port" --count "$count"
	nt_wait_pid "$rpid" 5000
	BK_GOT=$(nt_udp_summary "$name" received)
}

# bk_expect_traffic NS PORT COUNT EXPECTED WHAT - bk_traffic, asserted.
bk_expect_traffic() {
	bk_traffic "$1" "$2" "$3"
	nt_assert_eq "$4" "$BK_GOT" "$5: datagrams received in $1 on port $2"
}

# bk_stats AGENT_NAME FIELD - ask the broker for its counters (SIGUSR1)
# and print FIELD (packets, bytes, accept, drop, ...) of AGENT_NAME's newest
# stats line; "scope=total" as AGENT_NAME gives the totals.
bk_stats() {
	local sel="name=$1" before
	[[ "$1" == scope=* ]] && sel=$1
	before=$(nt_count "$BK_LOG" "event=stats scope=total ")
	kill -USR1 "$BK_PID"
	bk_wait_count "event=stats scope=total " $((before + 1)) >&2
	grep -E -- "event=stats $sel " "$BK_LOG" | tail -n 1 |
		tr ' ' '\n' | awk -v k="$2" -F= '$1 == k { sub(/^[^=]*=/, ""); print; exit }'
}

# bk_expect_stats AGENT_NAME WHAT FIELD=VALUE... - assert several counters.
bk_expect_stats() {
	local name=$1 what=$2 kv got
	shift 2
	for kv in "$@"; do
		got=$(bk_stats "$name" "${kv%%=*}")
		nt_assert_eq "${kv#*=}" "$got" "$what: broker counter ${kv%%=*} of $name"
	done
}

# bk_ns_fds PID NS - how many fds of process PID are netlink sockets that
# live in namespace NS (socket inodes of /proc/PID/fd against the inode
# column of NS's /proc/net/netlink).
bk_ns_fds() {
	local pid=$1 ns=$2 inodes
	inodes=$(nt_x "$ns" awk 'NR > 1 { print $NF }' /proc/net/netlink) || return 1
	find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
		sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' |
		grep -cxF -f <(echo "$inodes") || true
}

# bk_fd_count PID - number of open fds of PID.
bk_fd_count() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

bk__ns_fds_eq() {
	[[ "$(bk_ns_fds "$1" "$2")" == "$3" ]]
}

# bk_wait_ns_fds PID NS N [MS] - wait until PID holds N sockets of NS.
bk_wait_ns_fds() {
	nt_wait_for "${4:-$NT_WAIT_MS}" "process $1 to hold $3 sockets of $2" \
		bk__ns_fds_eq "$1" "$2" "$3"
}

# bk_agent_expect_refusal LOGNAME PID REASON_REGEX - the agent exits 1 and
# prints the broker's reason.
bk_agent_expect_refusal() {
	nt_expect_exit "$2" 10000 1 "refused agent $1"
	nt_assert_grep "$(nt_err "$1")" "$3" "reason printed by refused agent $1"
}

# bk_kill_recorded_agents DIR - SIGKILL every agent whose pid a state file
# DIR/*.json records (nfq-cni's and nfq-holder's state dirs): a failing
# test must not leave agents behind, and the holder leaves them by design.
bk_kill_recorded_agents() {
	local f pid
	for f in "$1"/*.json; do
		[[ -f "$f" ]] || continue
		pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$f")
		[[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

# bk_runtime_cgroup NAME - a new cgroup NAME standing in for a container
# runtime's (the v1 pids hierarchy here, v2 where that is all), its path in
# CG; emptied with SIGKILL and removed at exit. Status 1 when none can be made.
bk_runtime_cgroup() {
	local base
	CG=""
	for base in /sys/fs/cgroup/pids /sys/fs/cgroup; do
		if [[ -w "$base/cgroup.procs" ]] && mkdir "$base/$1" 2>/dev/null; then
			CG=$base/$1
			nt_defer "bk_cgroup_kill_all $(printf %q "$CG"); rmdir $(printf %q "$CG")"
			return 0
		fi
	done
	return 1
}

# bk_cgroup_kill_all DIR - SIGKILL every process of cgroup DIR until it is
# empty, as a service manager restarting the runtime does (bounded: 5 s).
bk_cgroup_kill_all() {
	local i p
	for ((i = 0; i < 50; i++)); do
		[[ -n "$(cat "$1/cgroup.procs")" ]] || return 0
		while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$1/cgroup.procs"
		sleep 0.1
	done
	return 1
}
