#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# libnfqb verdicts against the real kernel: accept (v4, v6), drop, set_mark
# seen by a later iptables rule, repeat re-entering the hook with the new
# mark, retained packets accepted in reverse order, requeue to another
# queue, interface names, uid/gid of locally sent traffic.
#
# Two namespaces joined by a veth pair; the probe (tests/netns/nfqb-probe)
# runs inside the namespace whose rules queue the packets.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init lib-verdicts

nt_ns_new CLI cli
nt_ns_new SRV srv
nt_veth "$CLI" c0 10.77.0.1/24,fd77::1/64 "$SRV" s0 10.77.0.2/24,fd77::2/64

# wait_done PROBE_PID RECV_PID [PROBE_RC] - both must finish in time.
wait_done() {
	nt_expect_exit "$1" 10000 "${3:-0}" "nfqb-probe"
	nt_expect_exit "$2" 10000 0 "udp-tool recv"
}

# ---------------------------------------------------------------- accept v4
nt_sub accept-v4
nt_ipt "$SRV" -A INPUT -p udp --dport 6001 -m comment --comment q-accept \
	-j NFQUEUE --queue-num 11
nt_probe P probe-accept "$SRV" --queue 11 --count 5 --action accept --print
nt_udp_recv R recv-accept "$SRV" 10.77.0.2 6001 5 5000
nt_udp_send "$CLI" 10.77.0.2 6001 --count 5 --size 200
wait_done "$P" "$R"
nt_assert_eq 5 "$(nt_udp_summary recv-accept received)" "datagrams received"
nt_assert_eq 0,1,2,3,4 "$(nt_udp_summary recv-accept order)" "arrival order"
nt_assert_eq 0 "$(nt_udp_summary recv-accept bad)" "damaged datagrams"
out=$(nt_out probe-accept)
nt_assert_lines "$out" '^id=' 5 "packets seen by the probe"
nt_assert_lines "$out" '^id=.* hook=input len=228 cap_len=228 payload_len=228 ' 5 "input hook, full copy"
# The probe runs inside the namespace: ifindex -> name resolves there.
nt_assert_lines "$out" ' indev=s0 outdev=- ' 5 "interface names"
nt_assert_lines "$out" ' hw_protocol=0x0800 queue=11 proto=17 ' 5 "IPv4/UDP on queue 11"
nt_assert_lines "$out" ' uid=- gid=- ' 5 "no uid/gid without the flag"
for i in 0 1 2 3 4; do
	nt_assert_grep "$out" " idx=$i\$" "probe saw datagram $i"
done
nt_assert_eq 5 "$(nt_ipt_count "$SRV" INPUT q-accept)" "NFQUEUE rule counter"
nt_queue_bound "$SRV" 11 && nt_fail "queue 11 still bound after the probe closed it"
nt_ok

# ---------------------------------------------------------------- accept v6
nt_sub accept-v6
nt_ip6t "$SRV" -A INPUT -p udp --dport 6001 -m comment --comment q6-accept \
	-j NFQUEUE --queue-num 21
nt_probe P probe-accept6 "$SRV" --queue 21 --count 3 --action accept --print
nt_udp_recv R recv-accept6 "$SRV" fd77::2 6001 3 5000
nt_udp_send "$CLI" fd77::2 6001 --count 3 --size 300
wait_done "$P" "$R"
nt_assert_eq 3 "$(nt_udp_summary recv-accept6 received)" "datagrams received"
nt_assert_eq 0 "$(nt_udp_summary recv-accept6 bad)" "damaged datagrams"
out=$(nt_out probe-accept6)
nt_assert_lines "$out" '^id=.* hook=input len=348 cap_len=348 payload_len=348 .* hw_protocol=0x86dd queue=21 proto=17 ' 3 "IPv6 packets"
nt_assert_eq 3 "$(nt_ipt_count "$SRV" -6 INPUT q6-accept)" "ip6tables NFQUEUE counter"
nt_ok

# ---------------------------------------------------------------- drop
nt_sub drop
nt_ipt "$SRV" -A INPUT -p udp --dport 6002 -m comment --comment q-drop \
	-j NFQUEUE --queue-num 12
nt_probe P probe-drop "$SRV" --queue 12 --count 3 --action drop --print
nt_udp_recv R recv-drop "$SRV" 10.77.0.2 6002 3 1500
nt_udp_send "$CLI" 10.77.0.2 6002 --count 3
wait_done "$P" "$R"
nt_assert_lines "$(nt_out probe-drop)" '^id=' 3 "packets seen by the probe"
nt_assert_eq 3 "$(nt_ipt_count "$SRV" INPUT q-drop)" "NFQUEUE rule counter"
nt_assert_eq 0 "$(nt_udp_summary recv-drop received)" "datagrams received after drop"
nt_ok

# ---------------------------------------------------------------- set_mark
# accept ends the mangle table's traversal; filter/INPUT comes after it and
# counts the packets by the mark the verdict carried. A MARK rule in front
# of the queue shows nfqb_packet_mark() reports the arrival mark.
nt_sub set-mark
nt_ipt "$SRV" -t mangle -A INPUT -p udp --dport 6003 -j MARK --set-mark 5
nt_ipt "$SRV" -t mangle -A INPUT -p udp --dport 6003 -m comment --comment q-mark \
	-j NFQUEUE --queue-num 13
nt_ipt "$SRV" -A INPUT -p udp --dport 6003 -m mark --mark 77 -m comment --comment mark-hit
nt_ipt "$SRV" -A INPUT -p udp --dport 6003 -m mark ! --mark 77 -m comment --comment mark-miss
nt_probe P probe-mark "$SRV" --queue 13 --count 4 --action mark:77 --print
nt_udp_recv R recv-mark "$SRV" 10.77.0.2 6003 4 5000
nt_udp_send "$CLI" 10.77.0.2 6003 --count 4
wait_done "$P" "$R"
nt_assert_lines "$(nt_out probe-mark)" '^id=.* mark=5 ' 4 "arrival mark seen by the probe"
nt_assert_eq 4 "$(nt_udp_summary recv-mark received)" "datagrams received"
nt_assert_eq 4 "$(nt_ipt_count "$SRV" -t mangle INPUT q-mark)" "NFQUEUE rule counter"
nt_assert_eq 4 "$(nt_ipt_count "$SRV" INPUT mark-hit)" "packets carrying mark 77"
nt_assert_eq 0 "$(nt_ipt_count "$SRV" INPUT mark-miss)" "packets without mark 77"
nt_ok

# ---------------------------------------------------------------- repeat
# NF_REPEAT runs the same table again from its first rule: the queue rule
# now skips the packet (it carries the mark) and the next rule counts it.
nt_sub repeat
nt_ipt "$SRV" -A INPUT -p udp --dport 6004 -m mark ! --mark 88 -m comment --comment rep-q \
	-j NFQUEUE --queue-num 14
nt_ipt "$SRV" -A INPUT -p udp --dport 6004 -m mark --mark 88 -m comment --comment rep-seen
nt_probe P probe-repeat "$SRV" --queue 14 --count 3 --action repeat-mark:88 --print
nt_udp_recv R recv-repeat "$SRV" 10.77.0.2 6004 3 5000
nt_udp_send "$CLI" 10.77.0.2 6004 --count 3
wait_done "$P" "$R"
nt_assert_lines "$(nt_out probe-repeat)" '^id=.* mark=0 ' 3 "first passes (unmarked)"
nt_assert_eq 3 "$(nt_ipt_count "$SRV" INPUT rep-q)" "packets queued (each exactly once)"
nt_assert_eq 3 "$(nt_ipt_count "$SRV" INPUT rep-seen)" "packets re-entering with mark 88"
nt_assert_eq 3 "$(nt_udp_summary recv-repeat received)" "datagrams received"
nt_ok

# ---------------------------------------------------------------- hold
for k in 2 3; do
	nt_sub "hold-reverse-$k"
	port=$((6100 + k))
	nt_ipt "$SRV" -A INPUT -p udp --dport "$port" -j NFQUEUE --queue-num "$port"
	nt_probe P "probe-hold$k" "$SRV" --queue "$port" --count "$k" --action "hold-reverse:$k" --print
	nt_udp_recv R "recv-hold$k" "$SRV" 10.77.0.2 "$port" "$k" 5000
	nt_udp_send "$CLI" 10.77.0.2 "$port" --count "$k" --interval-ms 30
	wait_done "$P" "$R"
	want=$(seq $((k - 1)) -1 0 | paste -sd,)
	nt_assert_eq "$(seq 0 $((k - 1)) | paste -sd,)" \
		"$(grep '^id=' "$(nt_out "probe-hold$k")" | sed 's/.* idx=//' | paste -sd,)" \
		"order the probe received them in"
	nt_assert_eq "$want" "$(nt_udp_summary "recv-hold$k" order)" "arrival order after reverse accepts"
	nt_ok
done

# ---------------------------------------------------------------- requeue
nt_sub requeue
nt_ipt "$SRV" -A INPUT -p udp --dport 6006 -j NFQUEUE --queue-num 16
nt_probe P probe-requeue "$SRV" --queue 16 --queue 17 --count 4 --action requeue:17 --print
nt_udp_recv R recv-requeue "$SRV" 10.77.0.2 6006 2 5000
nt_udp_send "$CLI" 10.77.0.2 6006 --count 2 --interval-ms 20
wait_done "$P" "$R"
nt_assert_lines "$(nt_out probe-requeue)" '^id=.* queue=16 ' 2 "packets on queue 16"
nt_assert_lines "$(nt_out probe-requeue)" '^id=.* queue=17 ' 2 "packets requeued to 17"
nt_assert_eq 2 "$(nt_udp_summary recv-requeue received)" "datagrams received"
nt_ok

# ---------------------------------------------------------------- uid/gid
# OUTPUT hook in the sending namespace; the sender runs as uid/gid 1234.
nt_sub uid-gid
command -v setpriv >/dev/null || nt_fail "setpriv (util-linux) is needed"
# A copy the unprivileged user can surely execute (the build tree may not
# be reachable for it).
bindir="$NT_TMP/bin"
mkdir -p "$bindir"
cp "$(nt_bin udp-tool)" "$bindir/"
chmod 755 "$NT_TMP" "$bindir" "$bindir/udp-tool"
nt_ipt "$CLI" -A OUTPUT -p udp --dport 6007 -j NFQUEUE --queue-num 18
nt_probe P probe-uid "$CLI" --queue 18 --count 2 --flags uid_gid,gso --print
nt_udp_recv R recv-uid "$SRV" 10.77.0.2 6007 2 5000
nt_run send-1234 10000 nt_x "$CLI" setpriv --reuid=1234 --regid=1234 --clear-groups \
	"$bindir/udp-tool" send 10.77.0.2 6007
nt_assert_eq 0 "$NT_RC" "udp-tool send as uid 1234"
nt_udp_send "$CLI" 10.77.0.2 6007 --count 1
wait_done "$P" "$R"
out=$(nt_out probe-uid)
nt_assert_lines "$out" '^id=.* hook=output .* indev=- outdev=c0 uid=1234 gid=1234 .* idx=0$' 1 "packet sent by uid 1234"
nt_assert_lines "$out" '^id=.* hook=output .* outdev=c0 uid=0 gid=0 ' 1 "packet sent by root"
nt_assert_eq 2 "$(nt_udp_summary recv-uid received)" "datagrams received"
nt_ok

nt_log "all passed"
