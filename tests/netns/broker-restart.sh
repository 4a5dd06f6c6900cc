#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Broker restarts (docs/interface.md §4): the agents keep their sockets, so the
# kernel keeps the queues and buffers packets while no broker runs; a new
# broker replaces the stale socket file, the agents re-attach by
# themselves, the new broker adopts the bound queues and every packet
# sent meanwhile is decided by the policy exactly once. Both a crash
# (SIGKILL) and a clean stop (SIGTERM) are covered, with agents of both
# kinds (nsenter -n and --netns).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init broker-restart
bk_init

nt_ns_new NS_A a
nt_ns_new NS_B b
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_B" 2 5001
nt_ns_new NS_R r
bk_queue_rule "$NS_R" 3 5001

bk_config '"queue_defaults": { "max_len": 256 },
  "namespaces": [
    { "name": "pod-a", "queues": [1], "policy": "allow" },
    { "name": "pod-b", "queues": [2], "policy": "deny" },
    { "name": "pod-r", "queues": [3], "policy": "allow" }
  ],
  "policies": {
    "allow": { "default": "accept", "rules": [] },
    "deny":  { "default": "drop", "rules": [] }
  }'

bk_start
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_netns AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-a
bk_wait_attach pod-b
nt_wait_queue "$NS_A" 1
nt_wait_queue "$NS_B" 2
bk_expect_traffic "$NS_A" 5001 3 3 "pod-a before any restart"
bk_expect_traffic "$NS_B" 5001 3 0 "pod-b before any restart"

queued_is() {   # NS QUEUE N
	[[ "$(nt_kstat "$1" "$2" queued)" == "$3" ]]
}

# while_down WHAT N - with no broker running, send N datagrams in each
# namespace: the kernel must hold them all in the still-bound queues.
# Starts receivers that wait (long enough) for what the policy lets pass.
while_down() {
	local what=$1 n=$2
	nt_queue_bound "$NS_A" 1 || nt_fail "$what: queue 1 of pod-a unbound while no broker runs"
	nt_queue_bound "$NS_B" 2 || nt_fail "$what: queue 2 of pod-b unbound while no broker runs"
	nt_udp_recv RA "recv-a-$what" "$NS_A" 127.0.0.1 5001 "$n" 20000
	nt_udp_recv RB "recv-b-$what" "$NS_B" 127.0.0.1 5001 "$n" 6000
	nt_udp_send "$NS_A" 127.0.0.1 5001 --count "$n"
	nt_udp_send "$NS_B" 127.0.0.1 5001 --count "$n"
	nt_wait_for 3000 "$n packets queued in pod-a's queue" queued_is "$NS_A" 1 "$n"
	nt_wait_for 3000 "$n packets queued in pod-b's queue" queued_is "$NS_B" 2 "$n"
	kill -0 "$AG_A" "$AG_B" || nt_fail "$what: an agent exited while the broker was down"
}

# back_up WHAT N ATTACHES - start a broker again; the agents re-attach
# (ATTACHES-th attach of each), the queues are adopted and the packets
# held meanwhile decided: all N pass in pod-a, none in pod-b.
back_up() {
	local what=$1 n=$2 k=$3
	bk_start "broker-$what"
	bk_wait_log 'event=attach name=pod-a .*adopted=1 ' 15000
	bk_wait_log 'event=attach name=pod-b .*adopted=1 ' 15000
	nt_wait_pid "$RA" 20000
	nt_wait_pid "$RB" 10000
	nt_assert_eq "$n" "$(nt_udp_summary "recv-a-$what" received)" "$what: pod-a datagrams held while down, then accepted"
	nt_assert_eq 0 "$(nt_udp_summary "recv-b-$what" received)" "$what: pod-b datagrams held while down, then dropped"
	nt_wait_for 3000 "pod-a's queue to empty" queued_is "$NS_A" 1 0
	nt_wait_for 3000 "pod-b's queue to empty" queued_is "$NS_B" 2 0
	# each packet decided once by the new broker
	bk_expect_stats pod-a "$what" packets="$n" accept="$n" drop=0
	bk_expect_stats pod-b "$what" packets="$n" accept=0 drop="$n"
	nt_assert_grep "$(nt_err "agent-a")" 'event=attached name=pod-a' "$what: agent of pod-a re-attached"
	nt_assert_eq "$k" "$(nt_count "$(nt_err agent-a)" 'event=attached name=pod-a')" "$what: attaches of agent a"
	nt_assert_eq "$k" "$(nt_count "$(nt_err agent-b)" 'event=attached name=pod-b')" "$what: attaches of agent b"
	bk_expect_traffic "$NS_A" 5001 4 4 "$what: pod-a traffic after the restart"
	bk_expect_traffic "$NS_B" 5001 4 0 "$what: pod-b traffic after the restart"
}

# ---------------------------------------------------------------- crash
nt_sub crash
kill -KILL "$BK_PID"
nt_wait_pid "$BK_PID" 5000
[[ -S "$BK_SOCK" ]] || nt_fail "expected the crashed broker's socket file to remain"
while_down crash 20
back_up crash 20 2
nt_assert_grep "$BK_LOG" "event=stale_socket path=$BK_SOCK removed=true" "stale socket replaced"
nt_ok

# ---------------------------------------------------------------- clean stop
nt_sub stop
bk_stop
[[ ! -e "$BK_SOCK" ]] || nt_fail "socket file left by a clean stop"
while_down stop 12
back_up stop 12 3
nt_assert_nogrep "$BK_LOG" 'event=stale_socket' "no stale socket after a clean stop"
nt_ok

# ---------------------------------------------------------------- crash with unread packets
# The broker stops reading (SIGSTOP) with packets in flight and is killed:
# the messages it never read stay in the agents' sockets for the next one.
nt_sub crash-stopped
kill -STOP "$BK_PID"
while_down stopped 8
kill -KILL "$BK_PID"
nt_wait_pid "$BK_PID" 5000
back_up stopped 8 4
bk_stop
nt_ok

# ---------------------------------------------------------------- crash after a takeover
# An agent restarted inside grace_ms comes with new sockets; the broker
# keeps the ones holding the queue and hands them back to it, so when the
# broker then crashes the new agent's copies still hold the queue: the
# kernel keeps queueing and the next broker adopts it, losing nothing.
nt_sub crash-after-takeover
bk_start broker-takeover
bk_wait_log 'event=attach name=pod-a .*adopted=1 ' 15000
bk_wait_log 'event=attach name=pod-b .*adopted=1 ' 15000
kill -KILL "$AG_A"
nt_wait_pid "$AG_A" 5000
bk_wait_log 'event=lease_lost name=pod-a '
bk_agent_nsenter AG_A agent-a3 "$NS_A" pod-a
bk_wait_log 'event=takeover name=pod-a '
nt_wait_file 10000 "$(nt_err agent-a3)" "event=attached name=pod-a .*sockets=broker's"
kill -KILL "$BK_PID"
nt_wait_pid "$BK_PID" 5000
while_down takeover 10
bk_start broker-after-takeover
bk_wait_log 'event=attach name=pod-a .*adopted=1 ' 15000
bk_wait_log 'event=attach name=pod-b .*adopted=1 ' 15000
nt_wait_pid "$RA" 20000
nt_wait_pid "$RB" 10000
nt_assert_eq 10 "$(nt_udp_summary recv-a-takeover received)" "pod-a datagrams held across the takeover and the crash"
nt_assert_eq 0 "$(nt_udp_summary recv-b-takeover received)" "pod-b datagrams held across the crash, then dropped"
bk_expect_stats pod-a "after the takeover and the crash" packets=10 accept=10 drop=0
bk_expect_traffic "$NS_A" 5001 3 3 "pod-a traffic after the takeover and the crash"
bk_stop
nt_ok

# ---------------------------------------------------------------- read, never decided
nt_sub undecided
# The fake takes the first agent that comes: let only pod-r's come.
kill -TERM "$AG_A" "$AG_B"
nt_expect_exit "$AG_A" 5000 0 "agent of pod-a"
nt_expect_exit "$AG_B" 5000 0 "agent of pod-b"
cat >"$NT_TMP/fake_broker.py" <<'EOF2'
# Takes an agent's hello, binds queue 3 on its netfilter socket, accepts,
# reads N packets without giving any verdict, then exits (as if crashed).
import os, select, socket, struct, sys

path, n, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
MAGIC, VERSION, ACCEPT = 0x4251464E, 1, 2

def out(line):
    with open(log, "a") as f:
        f.write(line + "\n")

def attr(t, data):
    a = struct.pack("=HH", 4 + len(data), t) + data
    return a + b"\0" * (-len(a) % 4)

def config(num, payload):
    body = struct.pack("=BBH", 0, 0, socket.htons(num)) + payload
    hdr = struct.pack("=IHHII", 16 + len(body), (3 << 8) | 2, 0x5, 1, 0)
    return hdr + body

srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(path)
srv.listen(4)
out("listening")
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 400, 4)
nf = socket.socket(fileno=fds[0])
nf.send(config(3, attr(1, struct.pack("=BBH", 1, 0, 0))))           # BIND
nf.send(config(3, attr(2, struct.pack(">IB", 0xffff, 2))))           # COPY_PACKET
acks, got = 0, 0
while got < n:
    r, _, _ = select.select([nf], [], [], 15)
    if not r:
        out("timeout acks=%d got=%d" % (acks, got))
        sys.exit(1)
    data = nf.recv(70000)
    while data:
        ln, typ = struct.unpack("=IH", data[:6])
        if typ == 2:
            acks += 1
            if struct.unpack("=i", data[16:20])[0] != 0:
                out("bind failed")
                sys.exit(1)
            if acks == 2:
                conn.send(struct.pack("=IHHQII", MAGIC, VERSION, ACCEPT, 0, 1, 0))
                out("bound")
        elif typ == (3 << 8) | 0:
            got += 1
        data = data[(ln + 3) & ~3:]
out("held %d" % got)
os.unlink(path)
EOF2
FLOG=$NT_TMP/fake.log
nt_spawn FAKE fake python3 "$NT_TMP/fake_broker.py" "$BK_SOCK" 5 "$FLOG"
nt_wait_file "$NT_WAIT_MS" "$FLOG" '^listening'
bk_agent_nsenter AG_R agent-r "$NS_R" pod-r
nt_wait_file "$NT_WAIT_MS" "$FLOG" '^bound'
nt_udp_recv RR recv-r "$NS_R" 127.0.0.1 5001 5 20000
nt_udp_send "$NS_R" 127.0.0.1 5001 --count 5
nt_wait_file 10000 "$FLOG" '^held 5'
nt_expect_exit "$FAKE" 5000 0 "fake broker"
# read by the fake and never decided: held by the kernel, nothing left to read
nt_wait_for 3000 "5 packets queued in pod-r's queue" queued_is "$NS_R" 3 5
bk_start broker-undecided
bk_wait_log 'event=attach name=pod-r .*adopted=1 ' 15000
bk_wait_log 'event=adopt name=pod-r queue=3 queued=5 id_seq=5 settled=repeat'
nt_wait_pid "$RR" 20000
nt_assert_eq 5 "$(nt_udp_summary recv-r received)" "pod-r datagrams the fake broker left undecided"
nt_wait_for 3000 "pod-r's queue to empty" queued_is "$NS_R" 3 0
bk_expect_stats pod-r "after settling" packets=5 accept=5
bk_expect_traffic "$NS_R" 5001 3 3 "pod-r traffic after the restart"
bk_stop
nt_ok
