#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# libnfqb payload handling against the real kernel: COPY_META/COPY_NONE
# carry no payload (and the kernel sends no NFQA_CAP_LEN then: it does so
# only when a COPY_PACKET copy was truncated), a copy range truncates while
# cap_len keeps the original length, packets larger than 4096 bytes (9000
# over a veth with mtu 9000, 40000 and 65535 over loopback) arrive whole,
# and set_payload bytes (same, longer, shorter; IPv4 and IPv6; INPUT and
# OUTPUT; small and 40 KiB) reach the receiver with valid checksums (a bad
# UDP checksum would make the receiving socket drop the datagram).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init lib-payload

nt_ns_new CLI cli
nt_ns_new SRV srv
nt_veth "$CLI" c0 10.78.0.1/24,fd78::1/64 "$SRV" s0 10.78.0.2/24,fd78::2/64 9000

# flow NAME NS_PROBE QUEUE PROBE_ARGS -- RECV_NS ADDR PORT COUNT SEND_NS [SEND_ARGS...]
# Start the probe and a receiver, send, wait for both (bounded).
flow() {
	local name=$1 pns=$2 queue=$3 pargs=() P R
	shift 3
	while [[ "$1" != -- ]]; do
		pargs+=("$1")
		shift
	done
	shift
	local rns=$1 addr=$2 port=$3 count=$4 sns=$5
	shift 5
	nt_probe P "probe-$name" "$pns" --queue "$queue" --count "$count" --print "${pargs[@]}"
	nt_udp_recv R "recv-$name" "$rns" "$addr" "$port" "$count" 5000
	nt_udp_send "$sns" "$addr" "$port" --count "$count" "$@"
	nt_expect_exit "$P" 10000 0 "nfqb-probe ($name)"
	nt_expect_exit "$R" 10000 0 "udp-tool recv ($name)"
	nt_assert_eq "$count" "$(nt_udp_summary "recv-$name" received)" "$name: datagrams received"
	nt_assert_eq 0 "$(nt_udp_summary "recv-$name" bad)" "$name: damaged datagrams"
}

# ---------------------------------------------------------------- copy modes
nt_ipt "$SRV" -A INPUT -p udp --dport 7001 -j NFQUEUE --queue-num 31
nt_sub copy-meta
flow meta "$SRV" 31 --mode meta -- "$SRV" 10.78.0.2 7001 2 "$CLI" --size 500
# cap_len: the kernel reports no length without a payload; accept the real
# size too in case a later kernel or library supplies it.
nt_assert_lines "$(nt_out probe-meta)" '^id=.* len=0 cap_len=(0|528) payload_len=0 ' 2 \
	"COPY_META: no payload"
nt_ok

# COPY_NONE: the kernel refuses to queue at all (nfqnl_enqueue_packet
# returns -EINVAL), so the packets are dropped and never reach user space.
nt_sub copy-none
nt_probe P probe-none "$SRV" --queue 31 --count 1 --mode none --print --timeout-ms 1500
nt_udp_recv R recv-none "$SRV" 10.78.0.2 7001 2 1500
nt_udp_send "$CLI" 10.78.0.2 7001 --count 2
nt_expect_exit "$P" 10000 3 "nfqb-probe --mode none (timeout expected)"
nt_expect_exit "$R" 10000 0 "udp-tool recv"
nt_assert_lines "$(nt_out probe-none)" '^summary packets=0 ' 1 "COPY_NONE delivers nothing"
nt_assert_eq 0 "$(nt_udp_summary recv-none received)" "datagrams received with COPY_NONE"
nt_ok

# The smallest copy that still tells the real length: range 1.
nt_sub range-1
flow range1 "$SRV" 31 --range 1 -- "$SRV" 10.78.0.2 7001 2 "$CLI" --size 500
nt_assert_lines "$(nt_out probe-range1)" '^id=.* cap_len=528 payload_len=1 ' 2 \
	"range 1: one byte copied, cap_len is the real size"
nt_ok

# ---------------------------------------------------------------- large
nt_sub large-veth-9000
flow big9000 "$SRV" 31 -- "$SRV" 10.78.0.2 7001 2 "$CLI" --size 8972
nt_assert_lines "$(nt_out probe-big9000)" '^id=.* len=9000 cap_len=9000 payload_len=9000 ' 2 \
	"a 9000-byte packet arrives whole"
nt_assert_lines "$(nt_out recv-big9000)" '^recv .* len=8972 .* intact=1$' 2 "9000-byte datagrams delivered intact"
nt_ok

nt_ipt "$SRV" -A OUTPUT -o lo -p udp --dport 7005 -j NFQUEUE --queue-num 35
nt_ip6t "$SRV" -A OUTPUT -o lo -p udp --dport 7005 -j NFQUEUE --queue-num 35
# The kernel copies at most 65531 bytes (NFQNL_MAX_COPY_RANGE: 0xffff minus
# the attribute header): larger packets come truncated, cap_len tells.
for case in "127.0.0.1 40000 40028 40028" "127.0.0.1 65503 65531 65531" \
	    "127.0.0.1 65507 65535 65531" "::1 40000 40048 40048"; do
	read -r addr size iplen copied <<<"$case"
	nt_sub "large-lo-$size-${addr//[:.]/}"
	flow "lo$size" "$SRV" 35 -- "$SRV" "$addr" 7005 1 "$SRV" --size "$size"
	nt_assert_lines "$(nt_out "probe-lo$size")" \
		"^id=.* hook=output len=$iplen cap_len=$iplen payload_len=$copied .* outdev=lo " 1 \
		"a $iplen-byte packet arrives ($copied bytes copied)"
	nt_assert_lines "$(nt_out "recv-lo$size")" "^recv .* len=$size .* intact=1\$" 1 \
		"$size-byte datagram delivered intact"
	nt_ok
done

# ---------------------------------------------------------------- set_payload
nt_sub set-payload-same-length-v4
flow same "$SRV" 31 --action payload-replace:hello:HOWDY -- \
	"$SRV" 10.78.0.2 7001 3 "$CLI" --text say-hello-there --size 300
nt_assert_lines "$(nt_out probe-same)" '^replaced id=.* len=328$' 3 "packets rewritten"
nt_assert_lines "$(nt_out recv-same)" '^recv .* len=300 text=say-HOWDY-there intact=1$' 3 \
	"new bytes reached the receiver"
nt_ok

nt_sub set-payload-longer-v4
flow longer "$SRV" 31 --action payload-replace:hello:greetings-from-nfqb -- \
	"$SRV" 10.78.0.2 7001 2 "$CLI" --text hello --size 100
nt_assert_lines "$(nt_out recv-longer)" '^recv .* len=114 text=greetings-from-nfqb intact=1$' 2 \
	"longer payload reached the receiver"
nt_ok

nt_ip6t "$SRV" -A INPUT -p udp --dport 7001 -j NFQUEUE --queue-num 31
nt_sub set-payload-shorter-v6
flow shorter6 "$SRV" 31 --action payload-replace:hello:hi -- \
	"$SRV" fd78::2 7001 2 "$CLI" --text hello-v6 --size 120
nt_assert_lines "$(nt_out probe-shorter6)" '^id=.* hw_protocol=0x86dd ' 2 "IPv6 packets"
nt_assert_lines "$(nt_out recv-shorter6)" '^recv .* len=117 text=hi-v6 intact=1$' 2 \
	"shorter payload reached the receiver (IPv6 checksum valid)"
nt_ok

# Locally sent packets are queued before their checksum is complete
# (CHECKSUM_PARTIAL): the probe's full recomputation must still be right.
nt_sub set-payload-output-hook
nt_ipt "$CLI" -A OUTPUT -p udp --dport 7002 -j NFQUEUE --queue-num 32
flow outhook "$CLI" 32 --action payload-replace:abc:XYZW -- \
	"$SRV" 10.78.0.2 7002 2 "$CLI" --text abc --size 64
nt_assert_lines "$(nt_out probe-outhook)" '^id=.* hook=output ' 2 "queued from OUTPUT"
nt_assert_lines "$(nt_out recv-outhook)" '^recv .* len=65 text=XYZW intact=1$' 2 \
	"rewritten on OUTPUT, received intact"
nt_ok

nt_sub set-payload-40k-lo
flow big-mangle "$SRV" 35 --action payload-replace:hello:HOWDY-HOWDY -- \
	"$SRV" 127.0.0.1 7005 1 "$SRV" --text hello --size 40000
nt_assert_lines "$(nt_out recv-big-mangle)" '^recv .* len=40006 text=HOWDY-HOWDY intact=1$' 1 \
	"a 40 KiB replacement reached the receiver"
nt_ok

nt_log "all passed"
