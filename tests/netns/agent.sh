#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-agent against a fake broker (Python, speaking wire protocol v1):
# sockets opened in the --netns namespace and handed over, every capability
# dropped, the same sockets handed over again after a broker crash, a
# broker that is not there yet, SIGTERM (BYE, exit 0), a refusal (exit 1,
# reason printed), and command-line errors (exit 2, naming the problem).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init agent
command -v python3 >/dev/null || nt_skip "needs python3"

AGENT=$(nt_bin nfq-agent)
SOCK=$NT_TMP/agent.sock
BLOG=$NT_TMP/broker.log
BPID=
NT__LOGS+=("$BLOG")

cat >"$NT_TMP/fake_broker.py" <<'EOF'
import fcntl, os, socket, struct, sys

path, mode, log = sys.argv[1], sys.argv[2], sys.argv[3]
reason = sys.argv[4] if len(sys.argv) > 4 else ""
MAGIC, VERSION = 0x4251464E, 1
HELLO, ACCEPT, REFUSE, BYE = 1, 2, 3, 4
HELLO_FMT = "=IHHIHH320s"          # struct wire_hello, 336 bytes
SIOCGSKNS = 0x894C

def out(line):
    with open(log, "a") as f:
        f.write(line + "\n")

try:
    os.unlink(path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(path)
srv.listen(4)
out("listening pid=%d" % os.getpid())
while True:
    conn, _ = srv.accept()
    msg, fds, flags, _ = socket.recv_fds(conn, 337, 4)
    if len(msg) != struct.calcsize(HELLO_FMT):
        out("bad-hello size=%d" % len(msg))
        conn.close()
        continue
    magic, ver, typ, pid, nfds, fl, name = struct.unpack(HELLO_FMT, msg)
    socks, inos = [], []
    for fd in fds:
        nsfd = fcntl.ioctl(fd, SIOCGSKNS)
        inos.append(str(os.fstat(nsfd).st_ino))
        os.close(nsfd)
        socks.append(socket.socket(fileno=fd))
    out("hello name=%s nfds=%d fds=%d ino=%s proto=%s port=%s groups=%s" % (
        name.rstrip(b"\0").decode(), nfds, len(fds), ",".join(inos),
        ",".join(str(s.proto) for s in socks),
        ",".join(str(s.getsockname()[0]) for s in socks),
        ",".join(str(s.getsockname()[1]) for s in socks)))
    if mode == "refuse":
        conn.send(struct.pack("=IHH256s", MAGIC, VERSION, REFUSE, reason.encode()))
        out("refused")
    else:
        conn.send(struct.pack("=IHHQII", MAGIC, VERSION, ACCEPT, int(inos[0]), 1, 0))
        data = conn.recv(400)
        if len(data) == 8 and struct.unpack("=IHH", data)[2] == BYE:
            out("bye")
        else:
            out("eof len=%d" % len(data))
    for s in socks:
        s.close()
    conn.close()
EOF

# start_broker accept|refuse [REASON] - (re)start the fake broker; it
# replaces a stale socket file, as nfq-broker does.
start_broker() {
	nt_spawn BPID broker python3 "$NT_TMP/fake_broker.py" "$SOCK" "$1" "$BLOG" "${2:-}"
	nt_wait_file "$NT_WAIT_MS" "$BLOG" "^listening pid=$BPID\$"
}

# crash_broker - SIGKILL: the socket file stays behind, nobody listens.
crash_broker() {
	kill -KILL "$BPID"
	wait "$BPID" 2>/dev/null || true
	BPID=
}

# wait_lines FILE REGEX N - until N lines of FILE match.
wait_lines() {
	nt_wait_for "$NT_WAIT_MS" "$3 line(s) '$2' in $1" nt__has_lines "$1" "$2" "$3"
}

nt__has_lines() {
	(($(nt_count "$1" "$2") >= $3))
}

# hello N KEY - KEY of the fake broker's Nth hello line.
hello() {
	grep -E '^hello ' "$BLOG" | sed -n "$1p" |
		tr ' ' '\n' | awk -v k="$2" -F= '$1 == k { sub(/^[^=]*=/, ""); print; exit }'
}

# ---- command line: usage errors exit 2 and name the problem ----
nt_sub cli
cli() { # cli WANT_RC WANT_TEXT ARGS...
	local want=$1 text=$2
	shift 2
	nt_run cli 5000 "$AGENT" "$@"
	nt_assert_eq "$want" "$NT_RC" "exit status of nfq-agent $*"
	grep -qF -- "$text" "$(nt_out cli)" "$(nt_err cli)" ||
		nt_fail "nfq-agent $* did not say '$text': $(cat "$(nt_out cli)" "$(nt_err cli)")"
}
cli 2 "missing --name"
cli 2 "missing --name" --broker "$SOCK"
cli 2 "unknown option '--bogus'" --broker "$SOCK" --name x --bogus
cli 2 "option '--broker' needs an argument" --name x --broker
cli 2 "--name: name is empty" --broker "$SOCK" --name ""
cli 2 "--name: name has invalid character 0x20" --broker "$SOCK" --name "a b"
cli 2 "--name: name has invalid character 0x3d" --broker "$SOCK" --name "a=b"
cli 2 "--broker: empty path" --broker "" --name x
cli 2 "unexpected argument 'extra'" --broker "$SOCK" --name x extra
cli 0 "nfq-agent 0.1.0" --version
cli 0 "Usage: nfq-agent --name NAME [--broker SOCKET]" --help
# a runtime failure (the namespace path is missing) is exit 1, not 2
cli 1 "op=open_sockets" --broker "$SOCK" --name x --netns "$NT_TMP/no-such-netns"
[[ ! -e "$SOCK" ]] || nt_fail "a failed agent created $SOCK"
nt_ok

# ---- --netns: the sockets live in that namespace, capabilities are gone ----
nt_sub netns
nt_ns_new NS pod
NSINO=$(nt_ns_ino "$NS")
MYINO=$(stat -L -c %i /proc/self/ns/net)
nt_assert_ne "$MYINO" "$NSINO" "inode of the test namespace"
start_broker accept
nt_spawn APID agent1 "$AGENT" --broker "$SOCK" --name test/pod-a \
	--netns "$(nt_ns_path "$NS")" --verbose
wait_lines "$BLOG" '^hello ' 1
wait_lines "$(nt_err agent1)" ' event=attached ' 1
nt_assert_eq test/pod-a "$(hello 1 name)" "name in the hello"
nt_assert_eq 2 "$(hello 1 nfds)" "nfds in the hello"
nt_assert_eq 2 "$(hello 1 fds)" "fds received"
nt_assert_eq "$NSINO,$NSINO" "$(hello 1 ino)" "namespace behind the received sockets"
nt_assert_eq "12,0" "$(hello 1 proto)" "protocols of the received sockets"
nt_assert_eq "0,1" "$(hello 1 groups)" "multicast groups (RTMGRP_LINK on the rtnl socket)"
nt_assert_grep "$(nt_err agent1)" " event=attached name=test/pod-a netns_inode=$NSINO " \
	"attach logged with the namespace inode"
# the agent itself is back in (never left) our namespace
nt_assert_eq "$MYINO" "$(stat -L -c %i "/proc/$APID/ns/net")" "agent's own namespace"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
	nt_assert_eq 0000000000000000 \
		"$(awk -v k="$cap:" '$1 == k { print $2 }' "/proc/$APID/status")" "$cap of the agent"
done
nt_assert_eq 1 "$(awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$APID/status")" \
	"NoNewPrivs of the agent"
nt_ok

# ---- broker crash: the agent retries and hands over the same sockets ----
nt_sub restart
crash_broker
wait_lines "$(nt_err agent1)" ' event=lease_lost ' 1
wait_lines "$(nt_err agent1)" ' event=retry .*no broker listening at' 1
kill -0 "$APID" || nt_fail "agent died while the broker was away"
start_broker accept
wait_lines "$BLOG" '^hello ' 2
wait_lines "$(nt_err agent1)" ' event=attached ' 2
nt_assert_eq "$NSINO,$NSINO" "$(hello 2 ino)" "namespace after re-attach"
# same netlink port ids: the very same sockets, not new ones
nt_assert_eq "$(hello 1 port)" "$(hello 2 port)" "port ids after re-attach"
nt_ok

# ---- SIGTERM: BYE, exit 0 ----
nt_sub sigterm
kill -TERM "$APID"
nt_expect_exit "$APID" 5000 0 "agent after SIGTERM"
wait_lines "$BLOG" '^bye$' 1
nt_assert_grep "$(nt_err agent1)" ' event=detached name=test/pod-a' "detach logged"
crash_broker
nt_ok

# ---- no broker yet: retry until it appears; current namespace; --no-rtnl ----
nt_sub late-broker
rm -f "$SOCK"
nt_spawn APID agent2 "$AGENT" --broker "$SOCK" --name test/pod-a --no-rtnl
wait_lines "$(nt_err agent2)" ' event=retry .*no broker socket at' 1
sleep 0.3
kill -0 "$APID" || nt_fail "agent gave up while no broker was there"
start_broker accept
wait_lines "$BLOG" '^hello ' 3
wait_lines "$(nt_err agent2)" ' event=attached ' 1
nt_assert_eq 1 "$(hello 3 nfds)" "nfds with --no-rtnl"
nt_assert_eq 1 "$(hello 3 fds)" "fds received with --no-rtnl"
nt_assert_eq 12 "$(hello 3 proto)" "protocol with --no-rtnl"
nt_assert_eq "$MYINO" "$(hello 3 ino)" "namespace without --netns"
kill -TERM "$APID"
nt_expect_exit "$APID" 5000 0 "agent after SIGTERM"
wait_lines "$BLOG" '^bye$' 2
crash_broker
nt_ok

# ---- SIGTERM while waiting for a broker: exit 0 ----
nt_sub sigterm-waiting
rm -f "$SOCK"
nt_spawn APID agent3 "$AGENT" --broker "$SOCK" --name test/pod-a
wait_lines "$(nt_err agent3)" ' event=retry ' 1
kill -TERM "$APID"
nt_expect_exit "$APID" 5000 0 "waiting agent after SIGTERM"
nt_ok

# ---- refusal: the reason printed, exit 1 ----
nt_sub refusal
REASON="namespace test/pod-b is not allowed here"
start_broker refuse "$REASON"
nt_run agent4 10000 "$AGENT" --broker "$SOCK" --name test/pod-b
nt_assert_eq 1 "$NT_RC" "exit status of a refused agent"
nt_assert_grep "$(nt_err agent4)" "^nfq-agent: refused: $REASON\$" "refusal reason printed"
wait_lines "$BLOG" '^refused$' 1
nt_ok
