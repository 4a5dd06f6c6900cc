#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The core trick: a NETLINK_NETFILTER socket opened inside namespace X (by a
# short-lived child that entered X) and used through nfqb_queue_open_fd() by
# a process OUTSIDE X intercepts X's traffic: it binds X's queues, sees X's
# packets, and its verdicts decide them. Interface names resolve inside X
# through a NETLINK_ROUTE socket handed over the same way.
#
# Control: a process in another namespace binding the same queue number on
# its own socket sees nothing of X's traffic (queues are per namespace).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init lib-foreign-ns

nt_ns_new X x       # the "container"
nt_ns_new Y y       # its peer, and the control's namespace
nt_ns_new Z z       # a third namespace to run the foreign probe from
nt_veth "$X" x0 10.79.0.1/24 "$Y" y0 10.79.0.2/24
nt_ipt "$X" -A OUTPUT -p udp --dport 8001 -m comment --comment q41 -j NFQUEUE --queue-num 41

x_ino=$(nt_ns_ino "$X")
self_ino=$(stat -L -c %i /proc/self/ns/net)
nt_assert_ne "$self_ino" "$x_ino" "X must not be the test's own namespace"

# ---------------------------------------------------------------- control
nt_sub control-other-namespace
nt_probe P probe-ctl "$Y" --queue 41 --count 1 --print --timeout-ms 1500
nt_queue_bound "$X" 41 && nt_fail "queue 41 is bound in X by a socket of another namespace"
nt_udp_recv R recv-ctl "$Y" 10.79.0.2 8001 2 1500
nt_udp_send "$X" 10.79.0.2 8001 --count 2
nt_expect_exit "$P" 10000 3 "probe in Y (must time out: it sees nothing of X)"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out probe-ctl)" '^summary packets=0 ' 1 "packets of X seen from Y's own socket"
nt_assert_eq 0 "$(nt_udp_summary recv-ctl received)" "datagrams through X's unbound queue"
nt_ok

# ---------------------------------------------------------------- foreign
# run_foreign NAME WHERE ACTION COUNT: probe in WHERE (- = the test's own
# namespace) with sockets from X; X sends COUNT datagrams to Y.
run_foreign() {
	local name=$1 where=$2 action=$3 count=$4 P R portid
	nt_probe P "probe-$name" "$where" --fd-from-netns "$X" --rtnl --queue 41 \
		--count "$count" --action "$action" --print
	# The kernel sees the queue bound in X, by the port id the probe reports.
	portid=$(nt_field "$(nt_err "probe-$name")" '^ready ' portid)
	nt_assert_eq "$portid" "$(nt_kstat "$X" 41 portid)" "$name: port id bound to queue 41 in X"
	nt_assert_eq "$x_ino" "$(nt_field "$(nt_err "probe-$name")" '^ready ' netns_ino)" \
		"$name: the socket's namespace (SIOCGSKNS) is X"
	nt_udp_recv R "recv-$name" "$Y" 10.79.0.2 8001 "$count" 2000
	nt_udp_send "$X" 10.79.0.2 8001 --count "$count"
	nt_expect_exit "$P" 10000 0 "$name: nfqb-probe"
	nt_expect_exit "$R" 10000 0 "$name: udp-tool recv"
	nt_assert_lines "$(nt_out "probe-$name")" '^id=.* hook=output .* outdev=x0 .* queue=41 proto=17 ' \
		"$count" "$name: X's packets seen outside X, outdev named inside X"
	nt_queue_bound "$X" 41 && nt_fail "$name: queue 41 still bound in X after the probe closed"
	return 0
}

nt_sub accept-from-outside
before=$(nt_ipt_count "$X" OUTPUT q41)
run_foreign out-accept - accept 3
nt_assert_eq 3 "$(nt_udp_summary recv-out-accept received)" "datagrams accepted from outside X"
nt_assert_eq 0,1,2 "$(nt_udp_summary recv-out-accept order)" "arrival order"
nt_assert_eq $((before + 3)) "$(nt_ipt_count "$X" OUTPUT q41)" "X's queue rule counter"
nt_ok

nt_sub drop-from-outside
run_foreign out-drop - drop 2
nt_assert_eq 0 "$(nt_udp_summary recv-out-drop received)" "datagrams dropped from outside X"
nt_ok

nt_sub accept-from-third-namespace
run_foreign z-accept "$Z" accept 2
nt_assert_eq 2 "$(nt_udp_summary recv-z-accept received)" "datagrams accepted from namespace Z"
nt_ok

# Retained packets and set_mark through the foreign socket as well: the
# mark is counted by a rule in X.
nt_sub mark-from-outside
nt_ipt "$X" -A POSTROUTING -t mangle -p udp --dport 8001 -m mark --mark 99 -m comment --comment m99
run_foreign out-mark - mark:99 2
nt_assert_eq 2 "$(nt_udp_summary recv-out-mark received)" "datagrams received"
nt_assert_eq 2 "$(nt_ipt_count "$X" -t mangle POSTROUTING m99)" "packets leaving X with mark 99"
nt_ok

nt_sub bad-namespace
nt_run probe-badns 5000 "$(nt_bin nfqb-probe)" --fd-from-netns "$X-missing" --queue 41
nt_assert_eq 1 "$NT_RC" "probe with a namespace that does not exist"
nt_assert_grep "$(nt_err probe-badns)" "$X-missing" "the error names the namespace"
nt_ok

nt_log "all passed"
