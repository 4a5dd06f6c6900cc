#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The control socket and nfq-ctl against a running broker with real agents
# and traffic in two namespaces: status, agents, rules, reload and watch
# report exactly what was sent and decided (compared with iptables' own
# counters and the kernel's queue stats); nfq-ctl's output forms, exit
# codes and error messages (broker not running, permission denied, no such
# socket); malformed, oversized and unknown requests get an error reply and
# the connection survives or is closed cleanly; a watcher that never reads
# does not slow the verdicts down, loses events and is told how many.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init control
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock

nt_ns_new NS_A a
nt_ns_new NS_B b
# pod-a: port 5001 accepted and 5002 dropped by rules; pod-b: all accepted.
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_A" 1 5002
bk_queue_rule "$NS_B" 1 5001

write_config() {   # VERDICT_OF_RULE_p5002
	BK_BROKER_EXTRA='"metrics_refresh_ms": 100' bk_config "\"queue_defaults\": { \"max_len\": 8192 },
  \"namespaces\": [
    { \"name\": \"pod-a\", \"netns\": \"$(nt_ns_path "$NS_A")\", \"queues\": [1], \"policy\": \"web\" },
    { \"name\": \"pod-b\", \"queues\": [1], \"policy\": \"open\" }
  ],
  \"policies\": {
    \"open\": { \"default\": \"accept\", \"rules\": [] },
    \"web\": {
      \"default\": \"drop\",
      \"rules\": [
        { \"name\": \"p5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" },
        { \"name\": \"p5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"verdict\": \"$1\" }
      ]
    }
  }"
}

# ctl NAME ARGS... - run nfq-ctl on the test's control socket (5 s at most).
ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" "$@"
}

# ctl_ok NAME ARGS... - ctl, expecting exit status 0.
ctl_ok() {
	ctl "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl $2: exit status $NT_RC, expected 0"
}

# jq_py FILE EXPR - evaluate the python expression EXPR on the JSON in FILE
# (bound to `d`) and print the result.
jq_py() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" ||
		nt_fail "cannot evaluate $2 on $1: $(head -c 300 "$1")"
}

# ipt_bytes NS COMMENT - byte counter of the OUTPUT rule tagged COMMENT.
ipt_bytes() {
	nt_x "$1" iptables -w 5 -L OUTPUT -v -x -n |
		awk -v c="/* $2 */" 'index($0, c) { print $2; exit }'
}

# lines_ge FILE N - FILE has at least N lines.
lines_ge() {
	(($(wc -l <"$1") >= $2))
}

# send NS PORT COUNT SIZE - datagrams through the queue (no receiver needed:
# the verdict happens on OUTPUT, before delivery).
send() {
	nt_udp_send "$1" 127.0.0.1 "$2" --count "$3" --size "$4"
}

# ---------------------------------------------------------------- nfq-ctl alone
nt_sub cli
nt_run version 5000 "$CTL" --version
nt_assert_eq 0 "$NT_RC" "--version exit status"
nt_assert_eq "nfq-ctl 0.1.0" "$(cat "$(nt_out version)")" "--version output"
nt_run help 5000 "$CTL" --help
nt_assert_eq 0 "$NT_RC" "--help exit status"
nt_assert_grep "$(nt_out help)" 'watch \[FILTERS\]' "--help text"
for args in "" "frobnicate" "status extra" "status --ns pod-a" "--bogus status" "watch --ns" \
	    "--control" "watch --ns="; do
	# shellcheck disable=SC2086 # word splitting wanted
	nt_run usage 5000 "$CTL" $args
	nt_assert_eq 2 "$NT_RC" "nfq-ctl $args: exit status"
	nt_assert_grep "$(nt_err usage)" "^nfq-ctl: .+" "nfq-ctl $args: message"
	nt_assert_grep "$(nt_err usage)" "Try 'nfq-ctl --help'" "nfq-ctl $args: hint"
done
nt_assert_grep "$(nt_err usage)" "empty namespace name" "nfq-ctl watch --ns=: message"
# no broker: each cause named, with the socket
ctl nosock status
nt_assert_eq 1 "$NT_RC" "no socket: exit status"
nt_assert_grep "$(nt_err nosock)" "^nfq-ctl: cannot connect to $CSOCK: no such socket" "no socket: message"
mkdir -p "$NT_TMP/run"
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$CSOCK"
ctl stale status
nt_assert_eq 1 "$NT_RC" "stale socket: exit status"
nt_assert_grep "$(nt_err stale)" "^nfq-ctl: cannot connect to $CSOCK: broker not running \(connection refused\)" \
	"stale socket: message"
nt_ok

# ---------------------------------------------------------------- broker up
nt_sub attach
write_config drop
bk_start
# the stale socket file was replaced, with mode 0600
nt_assert_grep "$BK_LOG" "event=control_listen path=$CSOCK mode=0600" "control socket logged"
[[ -S "$CSOCK" ]] || nt_fail "no control socket at $CSOCK"
nt_assert_eq 600 "$(stat -c %a "$CSOCK")" "control socket mode"
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_netns AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-a
bk_wait_attach pod-b
nt_wait_queue "$NS_A" 1
nt_wait_queue "$NS_B" 1
nt_ok

nt_sub permission
# Only root may talk to the broker: another user is told why.
if command -v setpriv >/dev/null; then
	chmod 0711 "$NT_TMP"
	nt_run perm 5000 setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" --control "$CSOCK" status
	chmod 0700 "$NT_TMP"
	nt_assert_eq 1 "$NT_RC" "another user: exit status"
	nt_assert_grep "$(nt_err perm)" "^nfq-ctl: cannot connect to $CSOCK: permission denied$" \
		"another user: message"
else
	nt_log "setpriv missing: permission check skipped"
fi
nt_ok

# ---------------------------------------------------------------- counters
nt_sub counters
send "$NS_A" 5001 7 100
send "$NS_A" 5002 4 100
send "$NS_B" 5001 5 200
ctl_ok status status
S=$(nt_out status)
nt_assert_eq 1 "$(wc -l <"$S")" "piped status is one line of compact JSON"
nt_assert_eq True "$(jq_py "$S" 'd["ok"]')" "status ok"
nt_assert_eq 0.1.0 "$(jq_py "$S" 'd["version"]')" "status version"
nt_assert_eq True "$(jq_py "$S" 'd["uptime_s"] >= 0')" "status uptime_s"
nt_assert_eq 2 "$(jq_py "$S" 'd["namespaces"]')" "status namespaces"
nt_assert_eq 16 "$(jq_py "$S" 'd["packets"]')" "status packets"
nt_assert_eq 12 "$(jq_py "$S" 'd["verdicts"]["accept"]')" "status accept"
nt_assert_eq 4 "$(jq_py "$S" 'd["verdicts"]["drop"]')" "status drop"
nt_assert_eq 0 "$(jq_py "$S" 'd["verdicts"]["error"]')" "status verdict errors"
nt_assert_eq 2 "$(jq_py "$S" 'd["attaches"]')" "status attaches"
BYTES_A=$(( $(ipt_bytes "$NS_A" bk-5001) + $(ipt_bytes "$NS_A" bk-5002) ))
BYTES_B=$(ipt_bytes "$NS_B" bk-5001)
nt_assert_eq $((11 * 128)) "$BYTES_A" "iptables bytes in pod-a (11 datagrams of 128 bytes)"
nt_assert_eq $((BYTES_A + BYTES_B)) "$(jq_py "$S" 'd["bytes"]')" "status bytes = iptables bytes"

# the kernel stats are a snapshot refreshed every metrics_refresh_ms (100
# here): wait for one taken after the traffic
kstats_after() {
	ctl_ok agents agents
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if all(a.get("kernel_age_ms", 1e9) < 100 and a["kernel"] and a["kernel"][0]["id_seq"] == n for a, n in zip(d["agents"], (11, 5))) else 1)' \
		"$(nt_out agents)"
}
nt_wait_for 3000 "kernel statistics read after the traffic" kstats_after
G=$(nt_out agents)
nt_assert_eq "['pod-a', 'pod-b']" "$(jq_py "$G" '[a["name"] for a in d["agents"]]')" "agents names"
nt_assert_eq "$(nt_ns_ino "$NS_A")" "$(jq_py "$G" 'd["agents"][0]["netns_inode"]')" "pod-a netns_inode"
nt_assert_eq "$(nt_ns_ino "$NS_B")" "$(jq_py "$G" 'd["agents"][1]["netns_inode"]')" "pod-b netns_inode"
nt_assert_eq "$AG_A" "$(jq_py "$G" 'd["agents"][0]["agent_pid"]')" "pod-a agent_pid"
nt_assert_eq "$AG_B" "$(jq_py "$G" 'd["agents"][1]["agent_pid"]')" "pod-b agent_pid"
nt_assert_eq "[1]" "$(jq_py "$G" 'd["agents"][0]["queues"]')" "pod-a queues"
nt_assert_eq attached "$(jq_py "$G" 'd["agents"][0]["state"]')" "pod-a state"
nt_assert_eq 11 "$(jq_py "$G" 'd["agents"][0]["packets"]')" "pod-a packets"
nt_assert_eq "$BYTES_A" "$(jq_py "$G" 'd["agents"][0]["bytes"]')" "pod-a bytes = iptables bytes"
nt_assert_eq "$BYTES_B" "$(jq_py "$G" 'd["agents"][1]["bytes"]')" "pod-b bytes = iptables bytes"
nt_assert_eq "7 4" "$(jq_py "$G" '"%d %d" % (d["agents"][0]["verdicts"]["accept"], d["agents"][0]["verdicts"]["drop"])')" "pod-a verdicts"
nt_assert_eq "5 0" "$(jq_py "$G" '"%d %d" % (d["agents"][1]["verdicts"]["accept"], d["agents"][1]["verdicts"]["drop"])')" "pod-b verdicts"
# kernel stats read from each namespace, equal to its own /proc file
for i in 0 1; do
	ns=$NS_A
	[[ $i == 1 ]] && ns=$NS_B
	nt_assert_eq 1 "$(jq_py "$G" "len(d['agents'][$i]['kernel'])")" "agent $i: one kernel queue entry"
	for k in queued dropped_full dropped_netlink id_seq; do
		nt_assert_eq "$(nt_kstat "$ns" 1 "$k")" "$(jq_py "$G" "d['agents'][$i]['kernel'][0]['$k']")" \
			"agent $i: kernel $k"
	done
done
nt_assert_eq 11 "$(jq_py "$G" 'd["agents"][0]["kernel"][0]["id_seq"]')" "pod-a kernel id_seq"

ctl_ok rules rules
R=$(nt_out rules)
rule() {   # POLICY RULE FIELD
	jq_py "$R" "[r['$3'] for r in d['rules'] if r['policy'] == '$1' and r['rule'] == '$2'][0]"
}
nt_assert_eq 4 "$(jq_py "$R" 'len(d["rules"])')" "rules: p5001, p5002, two defaults"
nt_assert_eq 7 "$(rule web p5001 packets)" "rule p5001 packets"
nt_assert_eq $((7 * 128)) "$(rule web p5001 bytes)" "rule p5001 bytes"
nt_assert_eq 4 "$(rule web p5002 packets)" "rule p5002 packets"
nt_assert_eq 0 "$(rule web '(default)' packets)" "web default packets"
nt_assert_eq 5 "$(rule open '(default)' packets)" "open default packets"
nt_assert_eq "$BYTES_B" "$(rule open '(default)' bytes)" "open default bytes"
nt_ok

# ---------------------------------------------------------------- output forms
nt_sub output
ctl_ok pretty status --pretty
nt_assert_ge 10 "$(wc -l <"$(nt_out pretty)")" "--pretty lines"
nt_assert_grep "$(nt_out pretty)" '^  "ok": true,$' "--pretty indentation"
if command -v script >/dev/null; then
	# On a terminal the default is a table (tests/netns/ctl-output.sh), --pretty JSON.
	nt_run tty 5000 script -qec "$CTL --control $CSOCK --pretty status" /dev/null
	nt_assert_eq 0 "$NT_RC" "status --pretty on a tty: exit status"
	nt_assert_grep "$(nt_out tty)" '^  "namespaces": 2,' "status --pretty on a tty is pretty"
	nt_run ttyc 5000 script -qec "$CTL --control $CSOCK --compact status" /dev/null
	nt_assert_lines "$(nt_out ttyc)" '^\{"ok":true' 1 "--compact on a tty"
fi
nt_ok

# ---------------------------------------------------------------- watch
nt_sub watch
nt_spawn W_A watch-a "$CTL" --control "$CSOCK" watch --ns pod-a
nt_spawn W_ALL watch-all "$CTL" --control "$CSOCK" watch
bk_wait_count 'event=watch_start ' 2
send "$NS_A" 5001 3 100
send "$NS_A" 5002 2 100
send "$NS_B" 5001 2 200
nt_wait_for 5000 "5 events in the pod-a watch" lines_ge "$(nt_out watch-a)" 5
nt_wait_for 5000 "7 events in the full watch" lines_ge "$(nt_out watch-all)" 7
sleep 0.2
nt_assert_lines "$(nt_out watch-a)" '.' 5 "pod-a watch: only pod-a's packets"
nt_assert_lines "$(nt_out watch-all)" '.' 7 "full watch: every packet"
python3 - "$(nt_out watch-a)" "$(nt_out watch-all)" <<'EOF' || nt_fail "watch events do not match the traffic"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
full = [json.loads(l) for l in open(sys.argv[2])]
want = {5001: ("p5001", "accept"), 5002: ("p5002", "drop")}
for e in a:
    assert e["ns"] == "pod-a", e
    assert (e["rule"], e["verdict"]) == want[e["dport"]], e
    assert e["policy"] == "web" and e["queue"] == 1 and e["hook"] == "output", e
    assert e["family"] == "ipv4" and e["proto"] == "udp", e
    assert e["src"] == "127.0.0.1" and e["dst"] == "127.0.0.1" and e["outdev"] == "lo", e
    assert e["len"] == 128 and e["mark"] == 0 and e["indev"] is None, e
    for k in ("id", "sport"):
        assert isinstance(e[k], int), e
assert [e["dport"] for e in a] == [5001] * 3 + [5002] * 2, a
assert len({e["id"] for e in a}) == 5, a
b = [e for e in full if e["ns"] == "pod-b"]
assert len(b) == 2 and all(e["rule"] == "(default)" and e["verdict"] == "accept"
                           and e["policy"] == "open" and e["len"] == 228 for e in b), b
assert [e for e in full if e["ns"] == "pod-a"] == a, (full, a)
EOF
ctl_ok wstatus status
nt_assert_eq 2 "$(jq_py "$(nt_out wstatus)" 'd["watchers"]')" "status: watchers"
kill -INT "$W_A"
nt_expect_exit "$W_A" 5000 0 "nfq-ctl watch after SIGINT"
kill -TERM "$W_ALL"
nt_expect_exit "$W_ALL" 5000 0 "nfq-ctl watch after SIGTERM"
bk_wait_count 'event=watch_end ' 2
# a watch request the broker refuses: exit 1 with the reason
python3 - "$CSOCK" <<'EOF' || nt_fail "watch with a non-string ns was not refused"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"watch","ns":["x"]}\n')
r = json.loads(s.makefile().readline())
assert r["ok"] is False and r["error"] == 'bad "ns" filter: not a string', r
EOF
nt_ok

# ---------------------------------------------------------------- reload
nt_sub reload
write_config accept
ctl_ok reload reload
nt_assert_eq True "$(jq_py "$(nt_out reload)" 'd["ok"]')" "reload ok"
bk_wait_log 'event=reload ok=true '
bk_expect_traffic "$NS_A" 5002 3 3 "pod-a port 5002 after reload (now accept)"
# an invalid config: exit 1, the errors with their paths, the old config kept
bk_config '"namespaces": [ { "name": "pod-a", "queues": [70000], "policy": "web" } ], "policies": {}'
ctl badreload reload
nt_assert_eq 1 "$NT_RC" "invalid reload: exit status"
nt_assert_eq False "$(jq_py "$(nt_out badreload)" 'd["ok"]')" "invalid reload: ok"
nt_assert_grep "$(nt_err badreload)" '^nfq-ctl: reload: the new config was rejected' "invalid reload: message"
nt_assert_grep "$(nt_err badreload)" '^  namespaces\[0\]\.queues\[0\]: queue 70000 out of range' "invalid reload: error path"
nt_assert_grep "$(nt_out badreload)" '"errors":\[' "invalid reload: errors in the reply"
bk_expect_traffic "$NS_A" 5002 2 2 "pod-a port 5002 after the rejected reload (still accept)"
write_config accept
nt_ok

# ---------------------------------------------------------------- bad requests
nt_sub bad-requests
python3 - "$CSOCK" <<'EOF' || nt_fail "bad requests were not handled as specified"
import json, select, socket, sys, time

path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX)
    # Blocking connect: it waits while the listen backlog is full.
    s.connect(path)
    s.settimeout(5)
    return s, s.makefile("rb")

def ask(s, f, raw):
    s.sendall(raw)
    line = f.readline()
    assert line.endswith(b"\n"), (raw, line)
    return json.loads(line)

s, f = conn()
cases = [
    (b"hello\n", "malformed request"),
    (b'{"cmd":"status"\n', "malformed request"),
    (b"[]\n", "a request is a JSON object"),
    (b'{"nocmd":1}\n', 'missing "cmd"'),
    (b'{"cmd":"launch"}\n', 'unknown command "launch"'),
    (b'{"cmd":"rules","verbose":true}\n', 'unknown key "verbose"'),
    (b"\x00\x01\x02\n", "malformed request"),
    (b"\xff\xfe{}\n", "malformed request"),
]
for raw, err in cases:
    r = ask(s, f, raw)
    assert r["ok"] is False and err in r["error"], (raw, r)
    # the connection survives: the next request is answered
    assert ask(s, f, b'{"cmd":"status"}\n')["ok"] is True, raw

# oversized: an error reply, then a clean close
big = b'{"cmd":"status","pad":"' + b"x" * 8000
s.sendall(big)
r = json.loads(f.readline())
assert r["ok"] is False and "request too long" in r["error"], r
assert f.readline() == b"", "still open after an oversized request"
f.close()
s.close()

# half a request then a hang-up; an immediate hang-up: nothing breaks
for raw in (b'{"cmd":"sta', b""):
    s, f = conn()
    s.sendall(raw)
    f.close()
    s.close()
s, f = conn()
assert ask(s, f, b'{"cmd":"status"}\n')["ok"] is True

# more clients than allowed: the extra ones are told and closed
many = [conn() for _ in range(70)]
time.sleep(0.3)
refused = 0
ready, _, _ = select.select([c for c, cf in many], [], [], 0)
for c, cf in many:
    if c not in ready:
        continue
    data = b""
    while not data.endswith(b"\n"):
        d = c.recv(4096)
        assert d, "closed without the refusal"
        data += d
    r = json.loads(data)
    assert r["ok"] is False and "too many control clients" in r["error"], r
    refused += 1
assert refused >= 7, refused
for c, cf in many:
    cf.close()   # the fd stays open while its file object lives
    c.close()
time.sleep(0.2)
s2, f2 = conn()
r = ask(s2, f2, b'{"cmd":"status"}\n')
assert r["ok"] is True and r["control_clients"] == 2, r
EOF
nt_assert_grep "$BK_LOG" 'event=control_drop .*reason="request too long"' "oversized request logged"
nt_assert_grep "$BK_LOG" 'event=control_refuse uid=0 pid=[0-9]+ reason="too many control clients of this uid" clients=16 max=64 per_uid=16' \
	"client limit logged"
nt_ok

# ---------------------------------------------------------------- stuck watcher
nt_sub stuck-watcher
# Baseline: how long 3000 packets take to be decided with nobody watching.
N=3000
decided() {   # packets decided in pod-b so far
	ctl_ok dec status >/dev/null
	jq_py "$(nt_out dec)" 'd["packets"]'
}
burst() {   # prints the milliseconds until N more packets are decided
	local before t0 t1
	before=$(decided)
	t0=$(nt_now_ms)
	nt_run burst 30000 nt_x "$NS_B" "$(nt_bin udp-tool)" send 127.0.0.1 5001 --count "$N" --size 300
	nt_wait_for 20000 "$N packets decided" bk__decided_ge $((before + N))
	t1=$(nt_now_ms)
	echo $((t1 - t0))
}
bk__decided_ge() {
	(($(decided) >= $1))
}
BASE_MS=$(burst)
cat >"$NT_TMP/stuck.py" <<'EOF'
# Watch pod-b, then read nothing until SIGUSR1; then count what arrived.
import json, signal, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"watch","ns":"pod-b"}\n')
time.sleep(0.2)
print("watching", flush=True)
go = []
signal.signal(signal.SIGUSR1, lambda *a: go.append(1))
events = lost = 0
buf = b""
for phase in ("phase1", "final"):
    while not go:
        time.sleep(0.05)
    go.clear()
    s.settimeout(1.0)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                print("closed", flush=True)
                break
            buf += d
    except socket.timeout:
        pass
    lines = buf.split(b"\n")
    buf = lines[-1]
    for l in lines[:-1]:
        o = json.loads(l)
        if "lost" in o:
            assert o["lost"] > 0, o
            lost += o["lost"]
        elif "ns" in o:
            assert o["ns"] == "pod-b", o
            events += 1
    print(phase, "events=%d lost=%d" % (events, lost), flush=True)
EOF
nt_spawn STUCK stuck python3 "$NT_TMP/stuck.py" "$CSOCK"
nt_wait_ready "$STUCK" "$(nt_out stuck)" '^watching'
STUCK_MS=$(burst)
nt_log "decided $N packets in ${BASE_MS} ms without a watcher, ${STUCK_MS} ms with a stuck one"
nt_assert_le $((3 * BASE_MS + 2000)) "$STUCK_MS" "ms to decide $N packets with a stuck watcher"
for k in dropped_full dropped_netlink queued; do
	nt_assert_eq 0 "$(nt_kstat "$NS_B" 1 "$k")" "pod-b kernel $k with a stuck watcher"
done
ctl_ok sstatus status
nt_assert_eq 1 "$(jq_py "$(nt_out sstatus)" 'd["watchers"]')" "the stuck watcher is still connected"
# It reads now: some events arrived, the rest were lost (counted)...
kill -USR1 "$STUCK"
nt_wait_ready "$STUCK" "$(nt_out stuck)" '^phase1 '
# ...and the count is told before the next event.
send "$NS_B" 5001 1 300
kill -USR1 "$STUCK"
nt_wait_ready "$STUCK" "$(nt_out stuck)" '^final '
EV=$(nt_field "$(nt_out stuck)" '^final ' events)
LOST=$(nt_field "$(nt_out stuck)" '^final ' lost)
nt_log "stuck watcher: $EV events delivered, $LOST lost"
nt_assert_ge 1 "$LOST" "events the stuck watcher lost"
nt_assert_ge 1 "$EV" "events the stuck watcher got"
nt_assert_eq $((N + 1)) $((EV + LOST)) "events delivered + lost"
nt_wait_pid "$STUCK" 5000
nt_ok

# ---------------------------------------------------------------- shutdown
nt_sub shutdown
bk_stop
[[ ! -e "$CSOCK" ]] || nt_fail "control socket left after a clean shutdown"
ctl down status
nt_assert_eq 1 "$NT_RC" "after shutdown: exit status"
nt_assert_grep "$(nt_err down)" "cannot connect to $CSOCK: no such socket" "after shutdown: message"
nt_ok
