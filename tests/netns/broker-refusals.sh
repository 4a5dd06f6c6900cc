#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Every refusal of nfq-broker: each is checked for its reason (as the agent
# received it and as the broker logged it), for the broker having closed
# every fd it received (its fd count and the refused namespace's netlink
# sockets), and for the broker still serving another namespace (traffic
# decided, agent alive, counters right).
#
# Real nfq-agent processes cover what a well-behaved agent can run into
# (no matching entry, netns pin mismatch or missing, namespace already
# served, queue already bound); a raw client (Python) covers what only a
# broken or hostile peer sends (bad sizes, magic, version, type, flags,
# names, fd counts, fd kinds, fds of two namespaces, truncated control
# data, silence, a uid not allowed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init broker-refusals
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init

nt_ns_new NS_A a        # served all along
nt_ns_new NS_P pinned   # the netns pin of entry "pinned"
nt_ns_new NS_Q other    # a namespace no pin matches; queue 4 busy there
nt_ns_new NS_R raw      # where the raw client opens its sockets
bk_queue_rule "$NS_A" 1 5001

# The uid case connects as nobody: the socket and its directories must be
# reachable, so only SO_PEERCRED stands in the way.
chmod 755 "$NT_TMP"
BK_BROKER_EXTRA='"listen_mode": "0666", "allow_uids": [0]'
bk_config "\"namespaces\": [
    { \"name\": \"pod-a\", \"queues\": [1], \"policy\": \"allow\" },
    { \"name\": \"pinned\", \"netns\": \"$(nt_ns_path "$NS_P")\", \"queues\": [1], \"policy\": \"allow\" },
    { \"name\": \"ghost\", \"netns\": \"$NT_TMP/no-such-netns\", \"queues\": [1], \"policy\": \"allow\" },
    { \"name\": \"dup-*\", \"queues\": [9], \"policy\": \"allow\" },
    { \"name\": \"busy\", \"queues\": [4], \"policy\": \"allow\" },
    { \"name\": \"raw-*\", \"queues\": [1], \"policy\": \"allow\" }
  ],
  \"policies\": { \"allow\": { \"default\": \"accept\", \"rules\": [] } }"

cat >"$NT_TMP/client.py" <<'EOF'
# Raw wire-protocol client: sends one crafted hello, prints the answer.
import ctypes, os, socket, struct, sys

path, case = sys.argv[1], sys.argv[2]
other = sys.argv[3] if len(sys.argv) > 3 else None
MAGIC, VERSION = 0x4251464E, 1
HELLO_FMT = "=IHHIHH320s"                  # struct wire_hello, 336 bytes
NF, RT = 12, 0
libc = ctypes.CDLL(None, use_errno=True)

def hello(nfds, name="raw-1", magic=MAGIC, ver=VERSION, typ=1, flags=0):
    return struct.pack(HELLO_FMT, magic, ver, typ, os.getpid(), nfds, flags,
                       name.encode())

def nl(proto):
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)

def in_netns(ns_path, fn):
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fd = os.open(ns_path, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    try:
        return fn()
    finally:
        libc.setns(home, 0x40000000)
        os.close(fd)
        os.close(home)

msg, fds, uid = hello(1), None, None
if case == "short":
    msg = hello(1)[:100]
elif case == "long":
    msg = hello(1) + b"x" * 1000
elif case == "magic":
    msg = hello(1, magic=0xDEADBEEF)
elif case == "version":
    msg = hello(1, ver=2)
elif case == "type":
    msg = hello(1, typ=4)
elif case == "flags":
    msg = hello(1, flags=1)
elif case == "badname":
    msg = hello(1, name="a b")
elif case == "emptyname":
    msg = hello(1, name="")
elif case == "nfds":
    msg = hello(2)
elif case == "nofds":
    fds = []
elif case == "threefds":
    msg, fds = hello(2), [nl(NF), nl(RT), nl(RT)]
elif case == "manyfds":
    s = nl(NF)
    fds = [s] * 200
elif case == "pipe":
    fds = [os.pipe()[0]]
elif case == "udp":
    fds = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
elif case == "route0":
    fds = [nl(RT)]
elif case == "nf1":
    msg, fds = hello(2), [nl(NF), nl(NF)]
elif case == "twons":
    msg, fds = hello(2), [nl(NF), in_netns(other, lambda: nl(RT))]
elif case == "garbage":
    msg, fds = b"\x01\x02garbage", []
elif case == "silence":
    msg = None
elif case == "uid":
    uid = 65534
else:
    sys.exit("unknown case " + case)
if fds is None:
    fds = [nl(NF)]

if uid is not None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
conn.connect(path)
try:
    if msg is not None:
        nums = [f if isinstance(f, int) else f.fileno() for f in fds]
        if nums:
            socket.send_fds(conn, [msg], nums)
        else:
            conn.send(msg)
except (BrokenPipeError, ConnectionResetError):
    pass    # refused at accept(), before our hello: the answer is there
conn.settimeout(10)
try:
    data = conn.recv(512)
except ConnectionResetError:
    data = conn.recv(512)   # closed with our hello unread: answer after the reset
if not data:
    print("closed")
elif struct.unpack("=IHH", data[:8])[2] == 3:
    print("refused: " + data[8:].split(b"\0")[0].decode())
else:
    print("answer type %d" % struct.unpack("=IHH", data[:8])[2])
EOF

bk_start
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_wait_attach pod-a
nt_wait_queue "$NS_A" 1
bk_expect_traffic "$NS_A" 5001 3 3 "pod-a before any refusal"
BASE_FDS=$(bk_fd_count "$BK_PID")
SENT_A=3

bk__fds_back() {
	[[ "$(bk_fd_count "$BK_PID")" == "$BASE_FDS" ]]
}

# still_serving WHAT - the broker holds exactly its baseline fds again,
# keeps pod-a's agent and decides its traffic.
still_serving() {
	nt_wait_for 3000 "broker fd count back to $BASE_FDS after $1 (now $(bk_fd_count "$BK_PID"))" bk__fds_back
	kill -0 "$BK_PID" 2>/dev/null || nt_fail "broker died after $1"
	kill -0 "$AG_A" 2>/dev/null || nt_fail "pod-a's agent died after $1"
	bk_expect_traffic "$NS_A" 5001 2 2 "pod-a after $1"
	SENT_A=$((SENT_A + 2))
}

# expect_logged REASON_REGEX - the newest refuse line carries the reason.
expect_logged() {
	local last
	last=$(grep 'event=refuse ' "$BK_LOG" | tail -n 1)
	[[ "$last" =~ $1 ]] || nt_fail "broker log: newest refusal '$last' does not match '$1'"
}

# raw CASE REASON_REGEX [ARG] - run the raw client in NS_R.
raw() {
	local case=$1 want=$2 got before
	before=$(nt_count "$BK_LOG" 'event=refuse ')
	nt_run "raw-$case" 15000 nt_x "$NS_R" python3 "$NT_TMP/client.py" "$BK_SOCK" "$case" "${3:-}"
	nt_assert_eq 0 "$NT_RC" "raw client ($case): exit status"
	got=$(cat "$(nt_out "raw-$case")")
	[[ "$got" =~ ^refused:\ $want$ ]] || nt_fail "raw client ($case): answer '$got' does not match 'refused: $want'"
	bk_wait_count 'event=refuse ' $((before + 1))
	expect_logged "reason=\"$want\""
	nt_assert_eq 0 "$(bk_ns_fds "$BK_PID" "$NS_R")" "sockets of the raw client's namespace held by the broker ($case)"
	still_serving "raw case $case"
}

# ---------------------------------------------------------------- agents
nt_sub no-entry
bk_agent_netns P agent-nomatch "$NS_Q" nomatch
bk_agent_expect_refusal agent-nomatch "$P" 'no namespaces entry matches name "nomatch"'
expect_logged 'name=nomatch .*reason="no namespaces entry matches name \\"nomatch\\""'
still_serving "no matching entry"
nt_ok

nt_sub pin-mismatch
bk_agent_netns P agent-pin "$NS_Q" pinned
want="the sockets live in network namespace inode $(nt_ns_ino "$NS_Q"), not in $(nt_ns_path "$NS_P") \\(inode $(nt_ns_ino "$NS_P")\\) that namespaces\\[1\\] pins"
bk_agent_expect_refusal agent-pin "$P" "$want"
expect_logged "name=pinned .*reason=\"$want\""
nt_assert_eq 0 "$(bk_ns_fds "$BK_PID" "$NS_Q")" "sockets of $NS_Q held after the pin refusal"
still_serving "netns pin mismatch"
nt_ok

nt_sub pin-missing
bk_agent_netns P agent-ghost "$NS_Q" ghost
bk_agent_expect_refusal agent-ghost "$P" "namespaces\\[2\\]\\.netns $NT_TMP/no-such-netns: No such file or directory"
expect_logged 'name=ghost .*No such file or directory'
still_serving "netns pin path missing"
nt_ok

nt_sub pin-ok-then-served
bk_agent_netns AG_P agent-pinned "$NS_P" pinned
bk_wait_attach pinned
nt_assert_eq 2 "$(bk_ns_fds "$BK_PID" "$NS_P")" "sockets of the pinned namespace held (netfilter and route)"
BASE_FDS=$(bk_fd_count "$BK_PID")
bk_agent_netns P agent-pinned2 "$NS_P" pinned
want="namespace pinned \\(inode $(nt_ns_ino "$NS_P")\\) already served by agent pid $AG_P"
bk_agent_expect_refusal agent-pinned2 "$P" "$want"
expect_logged "reason=\"$want\""
# another name matching another entry, in a namespace already served
bk_agent_nsenter P agent-dup "$NS_A" dup-1
want="namespace pod-a \\(inode $(nt_ns_ino "$NS_A")\\) already served by agent pid $AG_A"
bk_agent_expect_refusal agent-dup "$P" "$want"
expect_logged "name=dup-1 .*reason=\"$want\""
kill -0 "$AG_P" || nt_fail "the pinned namespace's agent died"
still_serving "namespace already served"
nt_ok

nt_sub queue-busy
nt_probe PROBE probe "$NS_Q" --queue 4 --timeout-ms 20000
bk_agent_netns P agent-busy "$NS_Q" busy
bk_agent_expect_refusal agent-busy "$P" 'queue 4: already bound by another socket'
expect_logged 'name=busy .*reason="queue 4: already bound by another socket"'
nt_assert_eq 0 "$(bk_ns_fds "$BK_PID" "$NS_Q")" "sockets of $NS_Q held after the bind refusal"
nt_assert_eq "$(nt_kstat "$NS_Q" 4 portid)" "$(grep -o 'portid=[0-9]*' "$(nt_err probe)" | cut -d= -f2)" \
	"queue 4 still bound to the probe's socket"
nt_kill "$PROBE"
still_serving "queue already bound"
nt_ok

# ---------------------------------------------------------------- raw peers
nt_sub raw-messages
raw short 'hello is 100 bytes, expected 336'
raw long 'message or its fds truncated, or more than 2 fds'
raw magic 'bad magic 0xdeadbeef'
raw version 'protocol version 2 not supported \(broker speaks 1\)'
raw type 'expected hello \(type 1\), got type 4'
raw flags 'hello has unknown flags 0x0001'
raw badname 'name has invalid character 0x20 at offset 1'
raw emptyname 'name is empty'
raw garbage 'bad magic 0x[0-9a-f]+'
nt_ok

nt_sub raw-fds
raw nfds 'hello announces 2 fds but 1 arrived'
raw nofds 'hello announces 1 fds but 0 arrived'
raw threefds 'message or its fds truncated, or more than 2 fds'
raw manyfds 'message or its fds truncated, or more than 2 fds'
raw pipe 'fd 0: not a socket'
raw udp 'fd 0: socket family 2 is not AF_NETLINK'
raw route0 'fd 0: netlink protocol 0 is not NETLINK_NETFILTER \(12\)'
raw nf1 'fd 1: netlink protocol 12 is not NETLINK_ROUTE \(0\)'
raw twons "the sockets live in different network namespaces \\(inodes $(nt_ns_ino "$NS_R") and $(nt_ns_ino "$NS_P")\\)" \
	"$(nt_ns_path "$NS_P")"
nt_ok

nt_sub raw-peer
raw uid 'uid 65534 is not in broker.allow_uids'
raw silence 'no hello within 5 s'
nt_ok

nt_sub counters
bk_expect_stats pod-a "after every refusal" packets="$SENT_A" accept="$SENT_A" drop=0
nt_assert_grep "$BK_LOG" "event=attach name=pod-a " "pod-a attached"
nt_assert_lines "$BK_LOG" 'event=(attach|takeover) ' 2 "attaches: pod-a and pinned only"
nt_assert_nogrep "$BK_LOG" 'event=(lease_lost|release) ' "no session lost to a refusal"
nt_ok
