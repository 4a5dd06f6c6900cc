# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Shared helpers for the netns integration tests (tests/netns/*.sh).
# Source it first thing:
#
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"
#   nt_init libverdicts          # root check, temp dir, cleanup trap
#   nt_ns_new NS_A a             # NS_A=<unique name>, torn down on exit
#
# Conventions:
# - Everything a test creates is registered with nt_defer (or created by a
#   helper that registers it); the EXIT trap undoes it in reverse order,
#   on success and on failure alike. INT/TERM/HUP exit and so run it too.
# - Names are unique per run: nt-<tag>-<pid>-<random>-<what>. Interfaces are
#   created directly inside the test's namespaces, so their (short, fixed)
#   names never meet another test's.
# - Every wait is bounded (milliseconds given explicitly or NT_WAIT_MS).
# - Assertions print what was expected, what was seen and (when given) the
#   log files of the processes involved, then exit 1.
# - Exit 77 means "skipped" to meson (not root, no netns support).
#
# Environment: BUILD and SRC (set by meson) are the build and source roots.

# shellcheck disable=SC2034 # variables here are used by the sourcing tests

NT_TAG=${NT_TAG:-t}
NT_ID=""
NT_TMP=""
NT_WAIT_MS=${NT_WAIT_MS:-5000}
NT_FAILED=0
NT_CURRENT=""          # name of the running sub-test, for messages
NT__DEFER=()           # cleanup commands, run last-in first-out
NT__LOGS=()            # files dumped when the test fails
NT__SEQ=0              # counter for unique names

nt__addlog() {
	local f
	for f in "${NT__LOGS[@]}"; do
		[[ "$f" == "$1" ]] && return 0
	done
	NT__LOGS+=("$1")
}

BUILD=${BUILD:-}
SRC=${SRC:-}

# ------------------------------------------------------------------ output

# nt_log MSG... - progress line on stderr, prefixed with the test tag.
nt_log() {
	echo "[$NT_TAG${NT_CURRENT:+/$NT_CURRENT}] $*" >&2
}

# nt_dump_logs - print every registered log file (after a failure).
nt_dump_logs() {
	local f
	for f in "${NT__LOGS[@]}"; do
		[[ -f "$f" ]] || continue
		echo "----- $f" >&2
		tail -n 60 "$f" >&2 || true
	done
	[[ ${#NT__LOGS[@]} -gt 0 ]] && echo "-----" >&2
	return 0
}

# nt_fail MSG... - report a failed check and end the test (exit 1).
nt_fail() {
	NT_FAILED=1
	echo "FAIL [$NT_TAG${NT_CURRENT:+/$NT_CURRENT}]: $*" >&2
	nt_dump_logs
	exit 1
}

# nt_skip MSG... - end the test as skipped (meson exit code 77).
nt_skip() {
	echo "SKIP [$NT_TAG]: $*" >&2
	exit 77
}

# nt_sub NAME - start a named sub-test (only affects messages).
nt_sub() {
	NT_CURRENT=$1
	nt_log "start"
}

# nt_ok - mark the running sub-test as passed.
nt_ok() {
	nt_log "ok"
	NT_CURRENT=""
}

# ------------------------------------------------------------------ cleanup

# nt_defer CMD... - run CMD (one string, eval'd) at exit, before anything
# deferred earlier. Failures of deferred commands are ignored.
nt_defer() {
	NT__DEFER+=("$*")
}

nt__cleanup() {
	local rc=$? i
	trap - EXIT ERR
	trap '' INT TERM HUP     # a second signal must not cut the cleanup short
	set +e
	if [[ $rc -ne 0 && $rc -ne 77 && $NT_FAILED -eq 0 ]]; then
		echo "FAIL [$NT_TAG${NT_CURRENT:+/$NT_CURRENT}]: exited with status $rc" >&2
		nt_dump_logs
	fi
	for ((i = ${#NT__DEFER[@]} - 1; i >= 0; i--)); do
		eval "${NT__DEFER[$i]}" >/dev/null 2>&1
	done
	if [[ -n "$NT_TMP" && -d "$NT_TMP" && -z "${NT_KEEP_TMP:-}" ]]; then
		rm -rf "$NT_TMP"
	fi
	exit "$rc"
}

nt__on_err() {
	# set -e is about to end the script: say where and what.
	echo "ERROR [$NT_TAG${NT_CURRENT:+/$NT_CURRENT}]: line $1: command failed" \
	     "(status $2): $3" >&2
}

# nt_init TAG - common start: root and netns checks (skip otherwise),
# unique id, temp dir, traps. Call once, before creating anything.
nt_init() {
	NT_TAG=$1
	NT_ID="$$-$RANDOM"
	trap nt__cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	set -E
	trap 'nt__on_err "$LINENO" "$?" "$BASH_COMMAND"' ERR
	[[ $EUID -eq 0 ]] || nt_skip "needs root"
	command -v ip >/dev/null || nt_skip "iproute2 (ip) not installed"
	command -v iptables >/dev/null || nt_skip "iptables not installed"
	NT_TMP=$(mktemp -d "/tmp/nt-$NT_TAG-XXXXXX")
	if [[ -z "$BUILD" ]]; then
		BUILD=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build
	fi
	if [[ -z "$SRC" ]]; then
		SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	fi
	# Both are built in, or loadable as modules: harmless when present.
	modprobe nfnetlink_queue >/dev/null 2>&1 || true
	modprobe xt_NFQUEUE >/dev/null 2>&1 || true
}

# nt_uniq VAR WHAT - set VAR to a name unique to this run:
# nt-<tag>-<id>-<n>-<what>.
nt_uniq() {
	NT__SEQ=$((NT__SEQ + 1))
	printf -v "$1" '%s' "nt-$NT_TAG-$NT_ID-$NT__SEQ-$2"
}

# ------------------------------------------------------------------ binaries

# nt_bin NAME - path of a program built by meson (tests/netns, examples,
# agent, broker, ctl, ...); fails the test when it was not built.
nt_bin() {
	local d
	for d in tests/netns examples agent broker ctl cni bench .; do
		if [[ -x "$BUILD/$d/$1" ]]; then
			echo "$BUILD/$d/$1"
			return 0
		fi
	done
	nt_fail "program $1 not found under $BUILD (not built?)"
}

# ------------------------------------------------------------------ namespaces

# nt_ns_new VAR [WHAT] - create a network namespace with a unique name,
# bring lo up, store the name in VAR and delete the namespace at exit
# (after killing what still runs inside it).
nt_ns_new() {
	local _nt_var=$1 _nt_name
	nt_uniq _nt_name "${2:-ns}"
	ip netns add "$_nt_name" || nt_fail "ip netns add $_nt_name failed"
	nt_defer "nt_ns_del $_nt_name"
	ip -n "$_nt_name" link set lo up
	printf -v "$_nt_var" '%s' "$_nt_name"
}

# nt_ns_del NAME - kill every process left in namespace NAME, delete it.
nt_ns_del() {
	local pids
	pids=$(ip netns pids "$1" 2>/dev/null || true)
	if [[ -n "$pids" ]]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
	fi
	ip netns del "$1" 2>/dev/null || true
}

# nt_ns_path NAME - the namespace's bind mount (/run/netns/NAME).
nt_ns_path() {
	echo "/run/netns/$1"
}

# nt_ns_ino NAME - inode of the namespace (what SIOCGSKNS/stat report).
nt_ns_ino() {
	stat -L -c %i "/run/netns/$1"
}

# nt_x NS CMD... - run CMD inside namespace NS.
nt_x() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# nt_veth NS_A DEV_A ADDRS_A NS_B DEV_B ADDRS_B [MTU]
# Create a veth pair with one end in each namespace (created there
# directly: the names never exist in the caller's namespace), assign the
# addresses (comma separated, with prefix length, v4 and/or v6; v6 without
# duplicate address detection) and bring both ends up.
nt_veth() {
	local na=$1 da=$2 aa=$3 nb=$4 db=$5 ab=$6 mtu=${7:-}
	ip link add "$da" netns "$na" type veth peer name "$db" netns "$nb" ||
		nt_fail "creating veth $na/$da <-> $nb/$db failed"
	nt__addrs "$na" "$da" "$aa"
	nt__addrs "$nb" "$db" "$ab"
	if [[ -n "$mtu" ]]; then
		ip -n "$na" link set "$da" mtu "$mtu"
		ip -n "$nb" link set "$db" mtu "$mtu"
	fi
	ip -n "$na" link set "$da" up
	ip -n "$nb" link set "$db" up
}

nt__addrs() {
	local ns=$1 dev=$2 a
	local IFS=,
	for a in $3; do
		if [[ "$a" == *:* ]]; then
			ip -n "$ns" -6 addr add "$a" dev "$dev" nodad
		else
			ip -n "$ns" addr add "$a" dev "$dev"
		fi
	done
}

# nt_ifindex NS DEV - interface index of DEV inside NS.
nt_ifindex() {
	ip netns exec "$1" cat "/sys/class/net/$2/ifindex"
}

# ------------------------------------------------------------------ iptables

# nt_ipt NS ARGS... - iptables inside NS (use nt_ip6t for ip6tables).
nt_ipt() {
	local ns=$1
	shift
	ip netns exec "$ns" iptables -w 5 "$@" ||
		nt_fail "iptables $* (in $ns) failed"
}

nt_ip6t() {
	local ns=$1
	shift
	ip netns exec "$ns" ip6tables -w 5 "$@" ||
		nt_fail "ip6tables $* (in $ns) failed"
}

# nt_ipt_count NS [-6] [-t TABLE] CHAIN COMMENT - packet counter of the rule
# in CHAIN that carries `-m comment --comment COMMENT`. Prints 0 when the
# rule exists with no hits; fails the test when no such rule exists.
nt_ipt_count() {
	local ns=$1 cmd=iptables table=filter out n
	shift
	if [[ "$1" == -6 ]]; then
		cmd=ip6tables
		shift
	fi
	if [[ "$1" == -t ]]; then
		table=$2
		shift 2
	fi
	local chain=$1 comment=$2
	out=$(ip netns exec "$ns" "$cmd" -w 5 -t "$table" -L "$chain" -v -x -n) ||
		nt_fail "$cmd -t $table -L $chain (in $ns) failed"
	n=$(awk -v c="/* $comment */" 'index($0, c) { print $1; exit }' <<<"$out")
	[[ -n "$n" ]] || nt_fail "no rule with comment '$comment' in $table/$chain of $ns:"$'\n'"$out"
	echo "$n"
}

# ------------------------------------------------------------------ nfqueue

# nt_kstat NS QUEUE FIELD - one field of QUEUE's line in NS's
# /proc/net/netfilter/nfnetlink_queue: portid, queued, copy_mode, range,
# dropped_full, dropped_netlink, id_seq. Empty when the queue is not bound.
nt_kstat() {
	local col
	case "$3" in
	portid) col=2 ;; queued) col=3 ;; copy_mode) col=4 ;; range) col=5 ;;
	dropped_full) col=6 ;; dropped_netlink) col=7 ;; id_seq) col=8 ;;
	*) nt_fail "nt_kstat: unknown field $3" ;;
	esac
	ip netns exec "$1" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
		awk -v q="$2" -v c="$col" '$1 == q { print $c; exit }'
}

# nt_queue_bound NS QUEUE - true when QUEUE is bound in NS.
nt_queue_bound() {
	[[ -n "$(nt_kstat "$1" "$2" portid)" ]]
}

# nt_wait_queue NS QUEUE [MS] - wait until QUEUE is bound in NS.
nt_wait_queue() {
	nt_wait_for "${3:-$NT_WAIT_MS}" "queue $2 bound in $1" nt_queue_bound "$1" "$2"
}

# ------------------------------------------------------------------ waiting

# nt_now_ms - milliseconds since the epoch (no fork).
nt_now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# nt_poll MS CMD... - run CMD every 50 ms until it succeeds (return 0) or
# MS milliseconds passed (return 1). Never fails the test by itself.
nt_poll() {
	local ms=$1 end now
	shift
	now=${EPOCHREALTIME/[.,]/}
	end=$((now / 1000 + ms))
	while :; do
		"$@" && return 0
		now=${EPOCHREALTIME/[.,]/}
		((now / 1000 >= end)) && return 1
		sleep 0.05
	done
}

# nt_wait_for MS WHAT CMD... - like nt_poll, but a timeout fails the test
# with "timed out after MS ms waiting for WHAT".
nt_wait_for() {
	local ms=$1 what=$2
	shift 2
	nt_poll "$ms" "$@" || nt_fail "timed out after $ms ms waiting for $what"
}

nt__file_has() {
	[[ -f "$1" ]] && grep -qE -- "$2" "$1"
}

# nt_wait_file MS FILE [REGEX] - wait until FILE exists (and has a line
# matching the extended REGEX).
nt_wait_file() {
	# shellcheck disable=SC2016 # the quotes are part of the message
	nt_wait_for "$1" "${3:+'$3' in }$2" nt__file_has "$2" "${3:-.?}"
}

# ------------------------------------------------------------------ processes

# nt_spawn VAR NAME [nt_x NS] CMD... - start CMD in the background with
# stdout in $NT_TMP/NAME.out and stderr in $NT_TMP/NAME.err (both dumped
# when the test fails), store its pid in VAR, kill it at exit if still
# running. Use `nt_x NS cmd...` as CMD to run it in a namespace: the pid is
# then the command's own (ip netns exec execs it).
nt_spawn() {
	local _nt_var=$1 _nt_name=$2 _nt_pid
	shift 2
	# A shell function in the background would run in a subshell whose
	# pid is not the command's: expand nt_x here.
	if [[ "$1" == nt_x ]]; then
		shift
		set -- ip netns exec "$@"
	fi
	: >"$NT_TMP/$_nt_name.out"
	: >"$NT_TMP/$_nt_name.err"
	nt__addlog "$NT_TMP/$_nt_name.out"
	nt__addlog "$NT_TMP/$_nt_name.err"
	"$@" >"$NT_TMP/$_nt_name.out" 2>"$NT_TMP/$_nt_name.err" &
	_nt_pid=$!
	nt_defer "nt_kill $_nt_pid"
	printf -v "$_nt_var" '%s' "$_nt_pid"
}

# nt_out NAME / nt_err NAME - the log files of a spawned (or nt_run) process.
nt_out() { echo "$NT_TMP/$1.out"; }
nt_err() { echo "$NT_TMP/$1.err"; }

# nt_kill PID - TERM, then KILL after 1 s; reaps it. Never fails.
nt_kill() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return 0
}

# nt_wait_pid PID MS - wait at most MS ms for PID (a child of this shell,
# so never call it in $(...)) to exit; set NT_RC to its exit status (124
# after killing it on timeout).
NT_RC=0
nt_wait_pid() {
	local pid=$1 ms=$2
	NT_RC=0
	if ! nt_poll "$ms" nt__dead "$pid"; then
		nt_kill "$pid"
		NT_RC=124
		return 0
	fi
	wait "$pid" || NT_RC=$?
	return 0
}

nt__dead() {
	! kill -0 "$1" 2>/dev/null
}

# nt_expect_exit PID MS RC WHAT - wait for PID and fail unless it exited
# with RC (a crash, e.g. status >= 128, never passes).
nt_expect_exit() {
	nt_wait_pid "$1" "$2"
	[[ "$NT_RC" == "$3" ]] || nt_fail "$4: exit status $NT_RC, expected $3"
}

# nt_run NAME MS CMD... - run CMD (a program, or nt_x NS program) in the
# foreground for at most MS ms with output in $NT_TMP/NAME.{out,err}; set
# NT_RC to its exit status (124 on timeout). Never fails by itself.
nt_run() {
	local name=$1 ms=$2
	shift 2
	if [[ "$1" == nt_x ]]; then
		shift
		set -- ip netns exec "$@"
	fi
	nt__addlog "$NT_TMP/$name.out"
	nt__addlog "$NT_TMP/$name.err"
	NT_RC=0
	timeout -k 1 "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))" \
		"$@" >"$NT_TMP/$name.out" 2>"$NT_TMP/$name.err" || NT_RC=$?
	return 0
}

# nt_run_ok NAME MS CMD... - nt_run, failing the test unless it exits 0.
nt_run_ok() {
	local name=$1
	nt_run "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "$name ($3 ...): exit status $NT_RC, expected 0"
}

# ------------------------------------------------------------------ asserts

# nt_assert_eq EXPECTED ACTUAL WHAT
nt_assert_eq() {
	[[ "$1" == "$2" ]] || nt_fail "$3: expected '$1', got '$2'"
}

# nt_assert_ne UNEXPECTED ACTUAL WHAT
nt_assert_ne() {
	[[ "$1" != "$2" ]] || nt_fail "$3: got '$2', which it must not be"
}

# nt_assert_ge MIN ACTUAL WHAT / nt_assert_le MAX ACTUAL WHAT (integers)
nt_assert_ge() {
	[[ "$2" =~ ^-?[0-9]+$ ]] || nt_fail "$3: '$2' is not a number"
	((${2} >= ${1})) || nt_fail "$3: expected at least $1, got $2"
}

nt_assert_le() {
	[[ "$2" =~ ^-?[0-9]+$ ]] || nt_fail "$3: '$2' is not a number"
	((${2} <= ${1})) || nt_fail "$3: expected at most $1, got $2"
}

# nt_assert_grep FILE REGEX WHAT - FILE has a line matching extended REGEX.
nt_assert_grep() {
	grep -qE -- "$2" "$1" 2>/dev/null ||
		nt_fail "$3: no line matching '$2' in $1:"$'\n'"$(tail -n 30 "$1" 2>/dev/null)"
}

# nt_assert_nogrep FILE REGEX WHAT - no line of FILE matches REGEX.
nt_assert_nogrep() {
	local hit
	hit=$(grep -E -m 3 -- "$2" "$1" 2>/dev/null || true)
	[[ -z "$hit" ]] || nt_fail "$3: unexpected line(s) matching '$2' in $1:"$'\n'"$hit"
}

# nt_count FILE REGEX - number of lines of FILE matching REGEX.
nt_count() {
	local n
	n=$(grep -cE -- "$2" "$1" 2>/dev/null) || true
	echo "${n:-0}"
}

# nt_assert_lines FILE REGEX N WHAT - exactly N lines match.
nt_assert_lines() {
	local n
	n=$(nt_count "$1" "$2")
	[[ "$n" == "$3" ]] ||
		nt_fail "$4: $n line(s) matching '$2' in $1, expected $3:"$'\n'"$(tail -n 30 "$1" 2>/dev/null)"
}

# nt_field FILE REGEX KEY - value of KEY=... on the first line of FILE
# matching REGEX (empty when absent).
nt_field() {
	grep -E -m 1 -- "$2" "$1" 2>/dev/null |
		tr ' ' '\n' | awk -v k="$3" -F= '!done && $1 == k { sub(/^[^=]*=/, ""); print; done = 1 }'
	# awk reads to the end: exiting early would SIGPIPE tr on long lines
	# and fail the caller under pipefail.
}

# ------------------------------------------------------------------ traffic
# Wrappers around tests/netns/udp-tool (see its header for the format).

nt__ready_or_dead() {   # PID FILE REGEX
	grep -qE -- "$3" "$2" 2>/dev/null && return 0
	kill -0 "$1" 2>/dev/null || return 0
	return 1
}

# nt_wait_ready PID FILE REGEX [MS] - wait until FILE (a spawned process's
# log) has a line matching REGEX; fail at once if PID exits first.
nt_wait_ready() {
	local ms=${4:-$NT_WAIT_MS}
	nt_poll "$ms" nt__ready_or_dead "$1" "$2" "$3" ||
		nt_fail "timed out after $ms ms waiting for '$3' in $2"
	grep -qE -- "$3" "$2" 2>/dev/null ||
		nt_fail "process $1 ended before writing '$3' to $2"
}

# nt_udp_recv VAR NAME NS ADDR PORT COUNT TIMEOUT_MS - start a receiver in
# NS bound to ADDR:PORT, wait until it is bound, store its pid in VAR. Its
# output goes to $(nt_out NAME).
nt_udp_recv() {
	local _nt_var=$1 name=$2 ns=$3 addr=$4 port=$5 count=$6 ms=$7 _nt_p
	local ready="$NT_TMP/$name.ready"
	rm -f "$ready"
	nt_spawn _nt_p "$name" nt_x "$ns" "$(nt_bin udp-tool)" recv "$addr" "$port" \
		--count "$count" --timeout-ms "$ms" --ready-file "$ready"
	nt_poll "$NT_WAIT_MS" test -e "$ready" ||
		nt_fail "receiver $name ($addr port $port in $ns) did not start"
	printf -v "$_nt_var" '%s' "$_nt_p"
}

# nt_udp_send NS ADDR PORT [udp-tool send options...] - send and wait
# (bounded); fails the test when udp-tool fails. Output in $(nt_out send).
nt_udp_send() {
	local ns=$1 addr=$2 port=$3
	shift 3
	nt_run send 20000 nt_x "$ns" "$(nt_bin udp-tool)" send "$addr" "$port" "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "udp-tool send $addr $port $* (in $ns): exit status $NT_RC"
}

# nt_udp_summary NAME KEY - received / order / bad from a finished receiver.
nt_udp_summary() {
	nt_field "$(nt_out "$1")" '^summary ' "$2"
}

# ------------------------------------------------------------------ probe

# nt_probe VAR NAME NS|- [nfqb-probe options...] - start tests/netns/nfqb-probe
# in namespace NS (or here with "-"), wait until it has bound its queues
# ("ready" on stderr), store its pid in VAR. Output: $(nt_out NAME),
# errors and the ready line: $(nt_err NAME).
nt_probe() {
	local _nt_var=$1 name=$2 ns=$3 _nt_p
	shift 3
	if [[ "$ns" == - ]]; then
		nt_spawn _nt_p "$name" "$(nt_bin nfqb-probe)" "$@"
	else
		nt_spawn _nt_p "$name" nt_x "$ns" "$(nt_bin nfqb-probe)" "$@"
	fi
	nt_wait_ready "$_nt_p" "$(nt_err "$name")" '^ready '
	printf -v "$_nt_var" '%s' "$_nt_p"
}
