#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# NFQB_F_FAIL_OPEN against the real kernel: with max_len 1 and a consumer
# that does not read (nfqb-probe --stall-ms), the queue fills after one
# packet. With fail_open the kernel lets the rest through at once (and
# counts no drops); without it the kernel drops them and counts them in
# dropped_full (/proc/net/netfilter/nfnetlink_queue inside the namespace).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init lib-failopen

nt_ns_new CLI cli
nt_ns_new SRV srv
nt_veth "$CLI" c0 10.80.0.1/24 "$SRV" s0 10.80.0.2/24
nt_ipt "$SRV" -A INPUT -p udp --dport 8101 -j NFQUEUE --queue-num 51

N=10          # datagrams sent while the probe stalls
STALL=2500    # ms; sending N takes a fraction of it

# run NAME FLAGS - stall with max_len 1 while N datagrams arrive; leaves
# the kernel's counters, read during the stall, in KQUEUED and KDROPPED.
run() {
	local name=$1 flags=$2 P R
	nt_probe P "probe-$name" "$SRV" --queue 51 --max-len 1 --flags "$flags" \
		--stall-ms "$STALL" --count 1 --print --timeout-ms $((STALL + 5000))
	nt_udp_recv R "recv-$name" "$SRV" 10.80.0.2 8101 "$N" $((STALL + 2000))
	nt_udp_send "$CLI" 10.80.0.2 8101 --count "$N" --interval-ms 10
	# Still stalled: the one queued packet waits, the rest was decided
	# by the kernel alone.
	nt_poll 1000 test "$(nt_kstat "$SRV" 51 queued)" = 1 || true
	KQUEUED=$(nt_kstat "$SRV" 51 queued)
	KDROPPED=$(nt_kstat "$SRV" 51 dropped_full)
	nt_wait_pid "$P" $((STALL + 10000))
	[[ "$NT_RC" == 0 ]] || nt_fail "$name: probe exit status $NT_RC (stall longer than the test expects?)"
	nt_expect_exit "$R" $((STALL + 5000)) 0 "$name: udp-tool recv"
	nt_assert_eq 1 "$KQUEUED" "$name: packets waiting in the full queue during the stall"
	nt_assert_lines "$(nt_out "probe-$name")" '^id=.* idx=0$' 1 "$name: the first datagram reached the probe"
	nt_assert_lines "$(nt_out "probe-$name")" '^id=' 1 "$name: packets reaching the probe"
}

nt_sub fail-open
run open fail_open,gso
nt_assert_eq 0 "$KDROPPED" "dropped_full with fail_open"
nt_assert_eq "$N" "$(nt_udp_summary recv-open received)" "datagrams through a full fail-open queue"
# the bypassing ones arrive during the stall, the queued one after it
nt_assert_eq "$(seq -s, 1 $((N - 1))),0" "$(nt_udp_summary recv-open order)" "arrival order"
nt_ok

nt_sub fail-closed
run closed gso
nt_assert_eq $((N - 1)) "$KDROPPED" "dropped_full without fail_open"
nt_assert_eq 1 "$(nt_udp_summary recv-closed received)" "datagrams through a full queue"
nt_assert_eq 0 "$(nt_udp_summary recv-closed order)" "the one that got through"
nt_ok

nt_log "all passed"
