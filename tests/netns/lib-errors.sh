#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Bad input to libnfqb against the real kernel: each case must give a clear
# negative errno (and message), never a crash, and leave everything else
# working: a queue bound by another socket (EBUSY) keeps serving its owner,
# wrong fds for open_fd (ENOTSOCK, EAFNOSUPPORT, EPROTONOSUPPORT, EBADF),
# bad options (EINVAL), no CAP_NET_ADMIN (EPERM), set_payload too large
# (EMSGSIZE), a second verdict (EALREADY), touching a packet after its
# callback without retain (ESTALE), retain twice (EALREADY). Packets
# involved in a failed call still pass unchanged.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init lib-errors

nt_ns_new CLI cli
nt_ns_new SRV srv
nt_veth "$CLI" c0 10.81.0.1/24 "$SRV" s0 10.81.0.2/24
for q in 61 63 64 65 66; do
	nt_ipt "$SRV" -A INPUT -p udp --dport $((9000 + q)) -j NFQUEUE --queue-num "$q"
done
PROBE=$(nt_bin nfqb-probe)

# fails NAME RC ERRNO REGEX CMD...: CMD ends with RC, stderr names ERRNO
# and matches REGEX.
fails() {
	local name=$1 rc=$2 errno=$3 re=$4
	shift 4
	nt_run "$name" 10000 "$@"
	nt_assert_eq "$rc" "$NT_RC" "$name: exit status"
	[[ -z "$errno" ]] || nt_assert_grep "$(nt_err "$name")" "$errno" "$name: error code"
	[[ -z "$re" ]] || nt_assert_grep "$(nt_err "$name")" "$re" "$name: error message"
}

# ---------------------------------------------------------------- EBUSY
nt_sub busy-other-socket
nt_probe P probe-owner "$SRV" --queue 61 --count 2 --print
owner=$(nt_kstat "$SRV" 61 portid)
fails busy 1 EBUSY 'queue 61: already bound by another socket' \
	nt_x "$SRV" "$PROBE" --queue 61 --count 1
nt_assert_eq "$owner" "$(nt_kstat "$SRV" 61 portid)" "queue 61 still bound to its owner"
nt_udp_recv R recv-busy "$SRV" 10.81.0.2 9061 2 5000
nt_udp_send "$CLI" 10.81.0.2 9061 --count 2
nt_expect_exit "$P" 10000 0 "the owner keeps serving"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out probe-owner)" '^id=' 2 "packets reaching the owner"
nt_assert_eq 2 "$(nt_udp_summary recv-busy received)" "datagrams received"
nt_ok

nt_sub busy-same-object
fails busy-self 1 EBUSY 'queue 62: already bound on this queue object' \
	nt_x "$SRV" "$PROBE" --queue 62 --queue 62
nt_queue_bound "$SRV" 62 && nt_fail "queue 62 left bound after the failed run"
nt_ok

# ---------------------------------------------------------------- open_fd
nt_sub open-fd-wrong-kind
fails fd-file 1 ENOTSOCK '' nt_x "$SRV" "$PROBE" --fd-kind file
fails fd-udp 1 EAFNOSUPPORT '' nt_x "$SRV" "$PROBE" --fd-kind udp
fails fd-route 1 EPROTONOSUPPORT '' nt_x "$SRV" "$PROBE" --fd-kind route
fails fd-closed 1 EBADF '' nt_x "$SRV" "$PROBE" --fd-kind closed
nt_ok

# ---------------------------------------------------------------- options
nt_sub bad-options
fails range0 1 EINVAL 'queue 62: range 0 with COPY_PACKET copies nothing' \
	nt_x "$SRV" "$PROBE" --queue 62 --range 0
fails range-big 1 EINVAL 'queue 62: range above 65535' \
	nt_x "$SRV" "$PROBE" --queue 62 --range 65536
fails maxlen0 1 EINVAL 'queue 62: max_len must be at least 1' \
	nt_x "$SRV" "$PROBE" --queue 62 --max-len 0
fails socklen-big 1 EINVAL 'queue 62: sock_len above 1 GiB' \
	nt_x "$SRV" "$PROBE" --queue 62 --sock-len 2147483648
fails flag-unknown 2 '' "unknown flag 'bogus'" \
	nt_x "$SRV" "$PROBE" --queue 62 --flags bogus
nt_queue_bound "$SRV" 62 && nt_fail "queue 62 bound after the failed binds"
# range 0 is fine when no payload is copied
nt_run range0-meta 10000 nt_x "$SRV" "$PROBE" --queue 62 --range 0 --mode meta --timeout-ms 200
nt_assert_eq 0 "$NT_RC" "range 0 with COPY_META"
nt_ok

# ---------------------------------------------------------------- EPERM
nt_sub no-cap-net-admin
command -v setpriv >/dev/null || nt_fail "setpriv (util-linux) is needed"
bindir="$NT_TMP/bin"
mkdir -p "$bindir"
cp "$PROBE" "$bindir/"
chmod 755 "$NT_TMP" "$bindir" "$bindir/nfqb-probe"
fails eperm 1 EPERM 'queue 62' \
	nt_x "$SRV" setpriv --reuid=1234 --regid=1234 --clear-groups "$bindir/nfqb-probe" --queue 62
nt_ok

# ---------------------------------------------------------------- packets
# check NAME QUEUE ACTION COUNT TEXT: run a check-* action on COUNT real
# packets carrying TEXT; every datagram must arrive with TEXT unchanged.
check() {
	local name=$1 q=$2 action=$3 count=$4 text=$5 P R
	nt_probe P "probe-$name" "$SRV" --queue "$q" --count "$count" --action "$action" --print
	nt_udp_recv R "recv-$name" "$SRV" 10.81.0.2 $((9000 + q)) "$count" 5000
	nt_udp_send "$CLI" 10.81.0.2 $((9000 + q)) --count "$count" --text "$text"
	nt_expect_exit "$P" 10000 0 "$name: nfqb-probe"
	nt_expect_exit "$R" 10000 0 "$name: udp-tool recv"
	nt_assert_lines "$(nt_out "recv-$name")" "^recv .* text=$text intact=1\$" "$count" \
		"$name: datagrams passed unchanged"
}

# expect NAME CHECK ERR: every "check name=CHECK" line of NAME's probe has err=ERR.
expect() {
	local out n
	out=$(nt_out "probe-$1")
	n=$(nt_count "$out" "^check name=$2 ")
	nt_assert_ge 1 "$n" "$1: lines for check $2"
	nt_assert_lines "$out" "^check name=$2 .* err=$3\$" "$n" "$1: $2"
}

nt_sub set-payload-too-large
check oversize 63 check-oversize 2 keep-me
expect oversize set_payload_65532 EMSGSIZE
expect oversize set_payload_oversize EMSGSIZE
expect oversize set_payload_null EINVAL
nt_ok

nt_sub second-verdict
check double 64 check-double 2 twice
expect double first_accept 0
for c in second_accept drop_after_accept repeat_after_accept set_mark_after_accept \
	 set_payload_after_accept retain_after_accept; do
	expect double "$c" EALREADY
done
nt_assert_lines "$(nt_out probe-double)" '^check name=decided ret=1 ' 2 "decided after the first verdict"
nt_ok

nt_sub stale-after-callback
check stale 65 check-stale 2 stale
for c in stale_payload stale_payload_len stale_set_payload stale_accept stale_set_mark stale_retain; do
	expect stale "$c" ESTALE
done
nt_ok

nt_sub retain-twice
check retain 66 check-retain 2 kept
expect retain retain 0
expect retain retain_twice EALREADY
expect retain accept_original 0
expect retain accept_copy EALREADY
nt_assert_lines "$(nt_out probe-retain)" '^check name=copy_decided ret=1 ' 2 "the copy shares the verdict"
nt_assert_lines "$(nt_out probe-retain)" '^check name=copy_payload_len ret=1 ' 2 "the copy has the payload"
nt_ok

# Nothing above may have left a queue bound.
for q in 61 62 63 64 65 66; do
	nt_queue_bound "$SRV" "$q" && nt_fail "queue $q still bound at the end"
done

nt_log "all passed"
