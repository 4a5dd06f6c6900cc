#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The library examples (examples/print_and_accept, own_loop, mangle) run
# against real traffic in a namespace and print what they should; their
# --help, usage errors (exit 2), timeouts (exit 1), signals (exit 0, queue
# unbound) and bind failures (exit 1) behave as documented.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init examples

PA=$(nt_bin print_and_accept)
OL=$(nt_bin own_loop)
MG=$(nt_bin mangle)

nt_ns_new CLI cli
nt_ns_new SRV srv
nt_veth "$CLI" c0 10.82.0.1/24,fd82::1/64 "$SRV" s0 10.82.0.2/24,fd82::2/64
nt_ipt "$SRV" -A INPUT -p udp --dport 9101 -j NFQUEUE --queue-num 71
nt_ipt "$SRV" -A INPUT -p udp --dport 9102 -j NFQUEUE --queue-num 72
nt_ipt "$SRV" -A INPUT -p udp --dport 9103 -j NFQUEUE --queue-num 73
nt_ip6t "$SRV" -A INPUT -p udp --dport 9103 -j NFQUEUE --queue-num 73

# start VAR NAME QUEUE CMD...: run an example in SRV, wait until it bound QUEUE.
start() {
	local _v=$1 name=$2 q=$3 _p
	shift 3
	nt_spawn _p "$name" nt_x "$SRV" "$@"
	nt_poll "$NT_WAIT_MS" nt_queue_bound "$SRV" "$q" ||
		nt_fail "$name did not bind queue $q"
	printf -v "$_v" '%s' "$_p"
}

# ---------------------------------------------------------------- usage
nt_sub usage
for prog in "$PA" "$OL" "$MG"; do
	n=$(basename "$prog")
	nt_run "help-$n" 5000 "$prog" --help
	nt_assert_eq 0 "$NT_RC" "$n --help"
	nt_assert_grep "$(nt_out "help-$n")" '^usage: ' "$n --help prints usage"
	nt_run "noargs-$n" 5000 "$prog"
	nt_assert_eq 2 "$NT_RC" "$n without arguments"
	nt_run "badopt-$n" 5000 "$prog" --bogus 1 a b
	nt_assert_eq 2 "$NT_RC" "$n with an unknown option"
	nt_run "badcount-$n" 5000 "$prog" --count x 1 a b
	nt_assert_eq 2 "$NT_RC" "$n --count x"
	nt_assert_grep "$(nt_err "badcount-$n")" "'x'" "$n names the bad value"
done
nt_run badq-pa 5000 "$PA" 70000
nt_assert_eq 2 "$NT_RC" "print_and_accept 70000"
nt_assert_grep "$(nt_err badq-pa)" "'70000' is not a number 0-65535" "queue range message"
nt_run badq-ol 5000 "$OL" -- -1
nt_assert_eq 2 "$NT_RC" "own_loop -1"
nt_run badq-mg 5000 "$MG" 3 hello
nt_assert_eq 2 "$NT_RC" "mangle without NEW"
nt_assert_grep "$(nt_err badq-mg)" 'expected QUEUE OLD NEW' "mangle names what is missing"
nt_ok

# ---------------------------------------------------------------- print_and_accept
nt_sub print_and_accept
start P pa 71 "$PA" --count 3 --timeout 10 71
nt_udp_recv R recv-pa "$SRV" 10.82.0.2 9101 3 5000
nt_udp_send "$CLI" 10.82.0.2 9101 --count 3 --size 100
nt_expect_exit "$P" 15000 0 "print_and_accept --count 3"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out pa)" '^UDP packet, 128 bytes$' 3 "one line per packet, python style"
nt_assert_eq 3 "$(nt_udp_summary recv-pa received)" "datagrams accepted"
nt_queue_bound "$SRV" 71 && nt_fail "queue 71 still bound after print_and_accept ended"
nt_ok

nt_sub print_and_accept-sigint
start P pa-int 71 "$PA" --timeout 20 71
kill -INT "$P"
nt_expect_exit "$P" 5000 0 "print_and_accept after SIGINT"
nt_queue_bound "$SRV" 71 && nt_fail "queue 71 still bound after SIGINT"
nt_ok

# ---------------------------------------------------------------- own_loop
nt_sub own_loop
start P ol 72 "$OL" --count 4 --timeout 10 72
nt_udp_recv R recv-ol "$SRV" 10.82.0.2 9102 4 5000
nt_udp_send "$CLI" 10.82.0.2 9102 --count 4 --size 50
nt_expect_exit "$P" 15000 0 "own_loop --count 4"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out ol)" '^packet id=[0-9]+ queue=72 hook=input proto=17 len=78 mark=0$' 4 \
	"one line per packet"
nt_assert_grep "$(nt_out ol)" '^done packets=4 verdicts=4 ' "final summary"
nt_assert_eq 4 "$(nt_udp_summary recv-ol received)" "datagrams accepted"
nt_ok

nt_sub own_loop-sigterm
start P ol-term 72 "$OL" --timeout 20 72
kill -TERM "$P"
nt_expect_exit "$P" 5000 0 "own_loop after SIGTERM"
nt_assert_grep "$(nt_out ol-term)" '^done packets=0 ' "clean stop"
nt_queue_bound "$SRV" 72 && nt_fail "queue 72 still bound after SIGTERM"
nt_ok

# ---------------------------------------------------------------- mangle
nt_sub mangle-v4
start P mg 73 "$MG" 73 hello HOWDY --count 2 --timeout 10
nt_udp_recv R recv-mg "$SRV" 10.82.0.2 9103 2 5000
nt_udp_send "$CLI" 10.82.0.2 9103 --count 2 --text say-hello --size 80
nt_expect_exit "$P" 15000 0 "mangle --count 2"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out mg)" '^mangled id=[0-9]+ replaced=1 len=108$' 2 "packets rewritten"
nt_assert_lines "$(nt_out recv-mg)" '^recv .* len=80 text=say-HOWDY intact=1$' 2 \
	"receiver got the new bytes (checksum valid)"
nt_ok

nt_sub mangle-v6-longer
start P mg6 73 "$MG" 73 QQ "a longer text" --count 2 --timeout 10
nt_udp_recv R recv-mg6 "$SRV" fd82::2 9103 2 5000
nt_udp_send "$CLI" fd82::2 9103 --count 2 --text QQ-QQ --size 60
nt_expect_exit "$P" 15000 0 "mangle (IPv6) --count 2"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
# both occurrences replaced: 2 x 11 more bytes
nt_assert_lines "$(nt_out mg6)" '^mangled id=[0-9]+ replaced=2 len=130$' 2 "packets rewritten"
nt_assert_lines "$(nt_out recv-mg6)" '^recv .* len=82 text=a longer text-a longer text intact=1$' 2 \
	"receiver got the longer payload (IPv6 checksum valid)"
nt_ok

nt_sub mangle-no-match
start P mg-none 73 "$MG" 73 absent present --count 1 --timeout 10
nt_udp_recv R recv-mg-none "$SRV" 10.82.0.2 9103 1 5000
nt_udp_send "$CLI" 10.82.0.2 9103 --text unrelated
nt_expect_exit "$P" 15000 0 "mangle without a match"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out mg-none)" '^unchanged id=' 1 "packet left alone"
nt_assert_lines "$(nt_out recv-mg-none)" '^recv .* text=unrelated intact=1$' 1 "datagram unchanged"
nt_ok

# ---------------------------------------------------------------- failures
nt_sub timeout
for ex in "$PA 71" "$OL 72" "$MG 73 x y"; do
	read -r prog args <<<"$ex"
	n=$(basename "$prog")
	# shellcheck disable=SC2086
	nt_run "timeout-$n" 10000 nt_x "$SRV" "$prog" --count 1 --timeout 1 $args
	nt_assert_eq 1 "$NT_RC" "$n: --timeout before --count"
	nt_assert_grep "$(nt_err "timeout-$n")" 'timeout after 0 of 1 packets' "$n: timeout message"
	# shellcheck disable=SC2086
	nt_run "timeout-nocount-$n" 10000 nt_x "$SRV" "$prog" --timeout 1 $args
	nt_assert_eq 0 "$NT_RC" "$n: --timeout without --count"
done
nt_ok

nt_sub bind-conflict
nt_probe P holder "$SRV" --queue 71 --timeout-ms 20000
nt_run conflict 10000 nt_x "$SRV" "$PA" --timeout 2 71
nt_assert_eq 1 "$NT_RC" "print_and_accept on a queue bound elsewhere"
nt_assert_grep "$(nt_err conflict)" 'queue 71: already bound by another socket' "bind error message"
nt_ok

nt_log "all passed"
