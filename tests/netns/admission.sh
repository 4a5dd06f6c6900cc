#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Admission of untrusted agents (issue 9), with real processes:
#  - a reload re-checks netns pins: an agent let in by the catch-all entry
#    is ended (the reason on its lease, then released) when the operator
#    adds a pinned entry for its name whose pin is another namespace; the
#    legitimately pinned agent stays, its traffic decided;
#  - a flood of connections by a uid not in allow_uids (nobody, through
#    setpriv), that never reads what the broker sends, takes no pending
#    slot and stalls nothing: a legitimate agent attaches within ~1 s
#    meanwhile, and the broker logs a few lines plus suppressed= summaries;
#  - broker.max_pending_per_uid: silent connections of one allowed uid
#    beyond the cap are refused as retryable, and an agent of that uid
#    retries (instead of exiting) and attaches once they are gone;
#  - broker.max_sessions_per_uid: one more namespace of a uid at the cap is
#    refused with the reason, the others are still served.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init admission
command -v python3 >/dev/null || nt_skip "needs python3"
command -v setpriv >/dev/null || nt_skip "needs setpriv"
bk_init
# A python3 that nobody may run (a per-user shim may not be).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
PY_NOBODY=""
for py in "$(command -v python3)" /usr/bin/python3; do
	if as_nobody "$py" -c pass 2>/dev/null; then PY_NOBODY=$py; break; fi
done
[[ -n $PY_NOBODY ]] || nt_skip "no python3 that uid 65534 can run"

nt_ns_new NS_X x        # agent "pod-x", first served by the catch-all
nt_ns_new NS_P pinned   # agent "pod-p", pinned to its own namespace
nt_ns_new NS_O other    # the pin a reload gives "pod-x": not its namespace
nt_ns_new NS_B b        # the legitimate agent during the flood
nt_ns_new NS_C c        # the agent that meets the pending cap
nt_ns_new NS_D d        # the agent that meets the sessions cap
bk_queue_rule "$NS_P" 1 5001

# The flood connects as nobody: the socket and its directories must be
# reachable, so only SO_PEERCRED stands in the way.
chmod 755 "$NT_TMP"
BASE_EXTRA='"listen_mode": "0666", "allow_uids": [0]'

# write_config [EXTRA_ENTRY] - pod-p pinned, "*" for everyone else.
write_config() {
	bk_config "\"namespaces\": [ ${1:-}
    { \"name\": \"pod-p\", \"netns\": \"$(nt_ns_path "$NS_P")\", \"queues\": [1], \"policy\": \"lax\" },
    { \"name\": \"*\", \"queues\": [2], \"policy\": \"strict\" }
  ],
  \"policies\": {
    \"lax\": { \"default\": \"accept\", \"rules\": [] },
    \"strict\": { \"default\": \"drop\", \"rules\": [] }
  }"
}

reloads=0
reload() {
	reloads=$((reloads + 1))
	kill -HUP "$BK_PID"
	bk_wait_count "event=reload ok=true" "$reloads"
}

BK_BROKER_EXTRA=$BASE_EXTRA
write_config
bk_start
bk_agent_nsenter AG_P agent-p "$NS_P" pod-p
bk_agent_nsenter AG_X agent-x "$NS_X" pod-x
bk_wait_attach pod-p
bk_wait_attach pod-x
nt_assert_grep "$BK_LOG" "event=attach name=pod-x .*policy=strict" "pod-x under the catch-all"

nt_sub "reload: a new entry's netns pin is checked against served namespaces"
write_config "{ \"name\": \"pod-x\", \"netns\": \"$(nt_ns_path "$NS_O")\", \"queues\": [2], \"policy\": \"lax\" },"
reload
why="after a reload: the sockets live in network namespace inode $(nt_ns_ino "$NS_X"), not in $(nt_ns_path "$NS_O") \\(inode $(nt_ns_ino "$NS_O")\\) that namespaces\\[0\\] pins"
bk_wait_log "event=release name=pod-x .*reason=\"$why\""
bk_agent_expect_refusal agent-x "$AG_X" "refused: $why"
nt_assert_nogrep "$BK_LOG" "event=policy_change name=pod-x" "pod-x never got the pinned entry's policy"
nt_assert_grep "$BK_LOG" "event=reload ok=true .*sessions=1 ended=1" "one session ended by the reload"
kill -0 "$AG_P" || nt_fail "the legitimately pinned agent died"
bk_expect_traffic "$NS_P" 5001 20 20 "pinned namespace after the reload"
nt_ok

nt_sub "a flood by a uid not allowed stalls nothing and logs little"
cat >"$NT_TMP/flood.py" <<'PY'
# Connect again and again for SECONDS, never reading; keep many open.
import socket, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
end, conns, n, busy = time.monotonic() + secs, [], 0, 0
while time.monotonic() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setblocking(False)
    try:
        s.connect(path)
    except OSError:
        busy += 1
        s.close()
        time.sleep(0.001)
        continue
    n += 1
    conns.append(s)
    if len(conns) > 600:
        conns.pop(0).close()
print("connections=%d busy=%d" % (n, busy), flush=True)
PY
FLOOD_S=3
log_before=$(wc -l <"$BK_LOG")
nt_spawn FLOOD flood setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$PY_NOBODY" "$NT_TMP/flood.py" "$BK_SOCK" "$FLOOD_S"
sleep 0.7
kill -0 "$FLOOD" || nt_fail "the flood ended early: $(cat "$(nt_err flood)")"
t0=$(nt_now_ms)
bk_agent_nsenter AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-b 1 5000
t_attach=$(($(nt_now_ms) - t0))
kill -0 "$FLOOD" || nt_fail "the flood was over before pod-b attached"
nt_log "pod-b attached ${t_attach} ms after its start, during the flood"
nt_assert_le 1500 "$t_attach" "ms for an agent to attach during the flood"
nt_expect_exit "$FLOOD" 10000 0 "the flood"
conns=$(sed -n 's/^connections=\([0-9]*\) .*/\1/p' "$(nt_out flood)")
nt_log "flood: $(cat "$(nt_out flood)")"
nt_assert_ge 500 "$conns" "connections by the flood"
# Every connection was refused: logged, or counted in a suppressed= line
# (the last one comes once the broker has drained its backlog).
flood_refusals() {
	tail -n +"$((log_before + 1))" "$BK_LOG" >"$NT_TMP/flood.log"
	lines=$(nt_count "$NT_TMP/flood.log" "event=refuse .*uid=65534")
	suppressed=$(grep -oE 'class=uid suppressed=[0-9]+' "$NT_TMP/flood.log" |
		awk -F= '{ s += $3 } END { print s + 0 }')
	((lines + suppressed == conns))
}
nt_wait_for 15000 "$conns refusals of uid 65534 (logged + suppressed=)" flood_refusals
total=$(wc -l <"$NT_TMP/flood.log")
nt_log "broker log: $lines refusal lines, $suppressed suppressed, $total lines in all"
# 20 a second (ATTACH_LOG_PER_SEC) over the seconds the broker took to
# refuse them all (longer than the flood on a loaded machine: the backlog
# drains after it), one more for the window's edge.
span_s=$(grep -E 'event=refuse .*uid=65534' "$NT_TMP/flood.log" |
	sed -n 's/^ts=[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z .*/\1 \2 \3/p' |
	awk 'NR == 1 { f = $1 * 3600 + $2 * 60 + $3 } { l = $1 * 3600 + $2 * 60 + $3 }
	     END { d = l - f; if (d < 0) d += 86400; print int(d) + 1 }')
nt_log "refusal lines span ${span_s} s"
nt_assert_le $((20 * (span_s + 1))) "$lines" "refusal lines about the flood"
nt_assert_le $((30 * (span_s + 1))) "$total" "broker log lines during the flood"
nt_assert_ge 1 "$(nt_count "$NT_TMP/flood.log" 'event=refuse .*uid=65534 reason="uid 65534 is not in broker.allow_uids"')" \
	"a refusal of the flood logged with its reason"
kill -0 "$AG_P" || nt_fail "agent pod-p died during the flood"
bk_expect_traffic "$NS_P" 5001 20 20 "pinned namespace after the flood"
nt_log "flood of $conns connections: pod-b attached in $t_attach ms, $lines log lines"; nt_ok

nt_sub "broker.max_pending_per_uid: a retryable refusal, the agent retries"
cat >"$NT_TMP/silent.py" <<'PY'
# Hold N connections that never say hello for SECONDS, then one more
# that reads and prints the broker's answer.
import socket, struct, sys, time
path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    conns.append(s)
time.sleep(0.3)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
s.settimeout(5)
data = s.recv(512)
if len(data) == 264 and struct.unpack("=IHH", data[:8])[2] == 3:
    flags = struct.unpack("=I", data[260:264])[0]
    print("refused: %s flags=%d" % (data[8:260].split(b"\0")[0].decode(), flags), flush=True)
else:
    print("answer of %d bytes" % len(data), flush=True)
print("ready", flush=True)
time.sleep(secs)
PY
nt_spawn SILENT silent python3 "$NT_TMP/silent.py" "$BK_SOCK" 8 2.5
nt_wait_ready "$SILENT" "$(nt_out silent)" "^ready"
nt_assert_grep "$(nt_out silent)" \
	"^refused: uid 0 has 8 connections waiting for their hello \(broker.max_pending_per_uid\) flags=1$" \
	"the connection beyond the cap"
bk_agent_nsenter AG_C agent-c "$NS_C" pod-c
nt_wait_ready "$AG_C" "$(nt_err agent-c)" "event=retry name=pod-c .*uid 0 has 8 connections waiting"
nt_expect_exit "$SILENT" 10000 0 "the silent connections"
bk_wait_attach pod-c 1 10000
nt_assert_nogrep "$(nt_err agent-c)" "nfq-agent: refused" "pod-c was never refused for good"
kill -0 "$AG_C" || nt_fail "agent pod-c exited"
nt_ok

nt_sub "broker.max_sessions_per_uid: one more namespace is refused"
nsess=$(($(nt_count "$BK_LOG" "event=attach name=") - $(nt_count "$BK_LOG" "event=release name=")))
nt_assert_eq 3 "$nsess" "sessions of uid 0 (pod-p, pod-b, pod-c)"
BK_BROKER_EXTRA="$BASE_EXTRA, \"max_sessions_per_uid\": 3"
write_config
reload
bk_agent_nsenter AG_D agent-d "$NS_D" pod-d
bk_agent_expect_refusal agent-d "$AG_D" \
	"refused: uid 0 holds 3 sessions already \(broker.max_sessions_per_uid\)"
bk_wait_log 'event=refuse name=pod-d .*reason="uid 0 holds 3 sessions already'
for a in "$AG_P" "$AG_B" "$AG_C"; do
	kill -0 "$a" || nt_fail "agent $a died"
done
bk_expect_traffic "$NS_P" 5001 20 20 "pinned namespace after the sessions cap"
nt_ok

# A namespace in its grace period, last held by another uid, is not a
# way past the cap: taking it over would give uid 0 a fourth session.
nt_sub "broker.max_sessions_per_uid: no takeover of another uid's namespace past the cap"
nt_ns_new NS_E e
BK_BROKER_EXTRA='"listen_mode": "0666", "allow_uids": [0, 65534], "max_sessions_per_uid": 3'
write_config
reload
bk_agent_netns AG_E agent-e "$NS_E" pod-e --user nobody
bk_wait_log 'event=attach name=pod-e .* uid=65534 '
kill -KILL "$AG_E"
bk_wait_log 'event=lease_lost name=pod-e '
bk_agent_netns AG_E2 agent-e2 "$NS_E" pod-e
bk_agent_expect_refusal agent-e2 "$AG_E2" \
	"refused: uid 0 holds 3 sessions already \(broker.max_sessions_per_uid\)"
nt_assert_nogrep "$BK_LOG" 'event=takeover name=pod-e ' "pod-e taken over by uid 0 past its cap"
nt_ok

bk_stop

