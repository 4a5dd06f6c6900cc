#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The control socket and /metrics under hostile local users (issue 9): with
# control_mode widened to 0666, a uid not in broker.control_allow_uids is
# refused at connect with the reason; a read-only uid may ask but not
# reload or watch; 70 idle clients of one uid neither lock out root's
# `nfq-ctl status` (answered within 1 s) nor stay past control_idle_ms; 20
# slowloris HTTP clients do not lock out a scrape (answered within 1 s) and
# are closed at their 5 s deadline; a tight scrape loop does not read the
# kernel statistics per scrape (nfqb_kstats_refresh_total follows the tick)
# while every namespace's traffic keeps being decided.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init control-auth
command -v python3 >/dev/null || nt_skip "needs python3"
command -v setpriv >/dev/null || nt_skip "needs setpriv"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# nobody must reach the socket: that is what a wider control_mode is for
chmod 0711 "$NT_TMP"
# a python nobody may run (a per-user install in /root is out of its reach)
PY_NOBODY=""
for py in python3 /usr/bin/python3; do
	if (cd / && "${NOBODY[@]}" "$py" -c '' 2>/dev/null); then
		PY_NOBODY=$py
		break
	fi
done
[[ -n "$PY_NOBODY" ]] || nt_skip "no python3 that uid 65534 can run"

NSS=()
for n in a b c; do
	nt_ns_new NS "$n"
	NSS+=("$NS")
	bk_queue_rule "$NS" 1 5001
done

write_config() {   # EXTRA_BROKER_KEYS
	BK_BROKER_EXTRA="\"control_mode\": \"0666\", \"metrics_listen\": \"127.0.0.1:0\",
    \"control_idle_ms\": 1000${1:+, $1}" bk_config "\"queue_defaults\": { \"max_len\": 8192 },
  \"namespaces\": [ { \"name\": \"pod-*\", \"queues\": [1], \"policy\": \"open\" } ],
  \"policies\": { \"open\": { \"default\": \"accept\", \"rules\": [] } }"
}

# ctl NAME [--as-nobody] ARGS... - nfq-ctl on the test's socket (5 s at most).
ctl() {
	local name=$1 who=()
	shift
	if [[ "${1:-}" == --as-nobody ]]; then
		who=("${NOBODY[@]}")
		shift
	fi
	nt_run "$name" 5000 "${who[@]}" "$CTL" --control "$CSOCK" "$@"
}

ctl_ok() {
	ctl "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl $*: exit status $NT_RC, expected 0: $(cat "$(nt_err "$1")")"
}

# metric NAME - its value in a fresh `nfq-ctl metrics` (as root)
metric() {
	ctl_ok metric metrics
	awk -v n="$1" '$1 == n { print $2 }' "$(nt_out metric)"
}

# ---------------------------------------------------------------- start
nt_sub start
write_config ""
bk_start
nt_assert_grep "$BK_LOG" "event=control_listen path=$CSOCK mode=0666" "control socket mode logged"
ADDR=$(nt_field "$BK_LOG" 'event=http_listen ' addr)
i=0
for ns in "${NSS[@]}"; do
	i=$((i + 1))
	bk_agent_netns AG "agent-$i" "$ns" "pod-$i"
	bk_wait_attach "pod-$i"
	nt_wait_queue "$ns" 1
done
nt_ok

# ---------------------------------------------------------------- refused
nt_sub refused
# the default: root only. nobody can connect (0666) but is told no.
ctl nobody-status --as-nobody status
nt_assert_eq 1 "$NT_RC" "nobody: exit status"
nt_assert_eq "nfq-ctl: status: uid 65534 is not allowed on the control socket" \
	"$(cat "$(nt_err nobody-status)")" "nobody: message"
nt_assert_grep "$(nt_out nobody-status)" '"ok":false' "nobody: the reply printed"
for cmd in reload watch metrics; do
	ctl "nobody-$cmd" --as-nobody "$cmd"
	nt_assert_eq 1 "$NT_RC" "nobody $cmd: exit status"
	nt_assert_grep "$(nt_err "nobody-$cmd")" "uid 65534 is not allowed on the control socket" \
		"nobody $cmd: message"
done
nt_assert_grep "$BK_LOG" 'level=warn event=control_refuse uid=65534 pid=[0-9]+ reason="not in broker.control_allow_uids"' \
	"refusal logged"
nt_assert_nogrep "$BK_LOG" 'event=(reload_start|watch_start)' "nothing reloaded or watched"
ctl_ok root-status status
nt_assert_eq 4 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control_refused"])' "$(nt_out root-status)")" \
	"refusals counted"
bk_expect_traffic "${NSS[0]}" 5001 5 5 "pod-1 after the refusals"
nt_ok

# ---------------------------------------------------------------- read-only
nt_sub read-only
write_config '"control_allow_uids": [65534]'
ctl_ok reload reload
for cmd in status agents rules metrics; do
	ctl_ok "ro-$cmd" --as-nobody "$cmd"
done
nt_assert_grep "$(nt_out ro-status)" '"access":"read-only"' "nobody is read-only"
nt_assert_grep "$(nt_out ro-metrics)" '^nfqb_up 1$' "nobody reads the metrics"
for cmd in reload watch; do
	ctl "ro-$cmd" --as-nobody "$cmd"
	nt_assert_eq 1 "$NT_RC" "read-only $cmd: exit status"
	nt_assert_eq "nfq-ctl: $cmd: $cmd needs an admin uid (broker.control_admin_uids)" \
		"$(cat "$(nt_err "ro-$cmd")")" "read-only $cmd: message"
done
ctl ro-watch-ns --as-nobody watch --ns pod-1
nt_assert_eq 1 "$NT_RC" "read-only watch --ns: exit status"
nt_assert_eq 1 "$(nt_count "$BK_LOG" 'event=reload_start')" "only root's reload happened"
nt_assert_nogrep "$BK_LOG" 'event=watch_start' "nobody watched nothing"
nt_assert_eq 3 "$(nt_count "$BK_LOG" 'event=control_deny client=[0-9]+ pid=[0-9]+ uid=65534 cmd=(reload|watch)$')" \
	"denials logged"
ctl_ok root-status2 status
nt_assert_grep "$(nt_out root-status2)" '"access":"admin"' "root is admin"
bk_expect_traffic "${NSS[1]}" 5001 5 5 "pod-2 after the denials"
nt_ok

# ---------------------------------------------------------------- idle clients
nt_sub idle
# root watches meanwhile: a streaming watcher is not idle
nt_spawn WATCH watch "$CTL" --control "$CSOCK" watch --ns pod-3
bk_wait_log 'event=watch_start client=[0-9]+ pid=[0-9]+ ns=pod-3'
timeout 20 "${NOBODY[@]}" "$PY_NOBODY" - "$CSOCK" >"$NT_TMP/idle.out" <<'EOF' &
import json, select, socket, sys, time
conns, refused, accepted = [], 0, []
for _ in range(70):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    conns.append(s)
time.sleep(0.3)
t0 = time.monotonic()
for s in conns:
    s.setblocking(False)
    try:
        d = s.recv(4096)
    except BlockingIOError:
        accepted.append(s)
        continue
    r = json.loads(d)
    assert r["ok"] is False and "too many control clients of this uid" in r["error"], r
    refused += 1
print("accepted=%d refused=%d" % (len(accepted), refused), flush=True)
# the accepted ones, never asking anything, are dropped after control_idle_ms
left, closed_at = list(accepted), []
while left and time.monotonic() - t0 < 5:
    r, _, _ = select.select(left, [], [], 0.1)
    for s in r:
        if s.recv(4096) == b"":
            closed_at.append(time.monotonic() - t0)
            left.remove(s)
print("closed=%d open=%d last_ms=%d" % (len(closed_at), len(left),
      1000 * max(closed_at) if closed_at else -1), flush=True)
EOF
IDLE=$!
nt_defer "kill $IDLE 2>/dev/null || true"
nt_wait_file 5000 "$NT_TMP/idle.out"
nt_wait_for 5000 "the idle clients to connect" nt__file_has "$NT_TMP/idle.out" '^accepted='
# root's liveness probe is not locked out
T0=$(nt_now_ms)
ctl_ok probe status
T1=$(nt_now_ms)
nt_assert_le 1000 $((T1 - T0)) "nfq-ctl status with 70 idle clients of nobody (ms)"
nt_assert_grep "$(nt_out probe)" '"control_clients":18,' "16 idle + watcher + the probe"
nt_wait_pid "$IDLE" 10000
nt_assert_eq 0 "$NT_RC" "idle client script"
nt_assert_eq "16 54" "$(nt_field "$NT_TMP/idle.out" '^accepted=' accepted) $(nt_field "$NT_TMP/idle.out" '^accepted=' refused)" \
	"idle clients accepted/refused (16 per uid)"
nt_assert_eq "16 0" "$(nt_field "$NT_TMP/idle.out" '^closed=' closed) $(nt_field "$NT_TMP/idle.out" '^closed=' open)" \
	"idle clients dropped"
nt_assert_le 2500 "$(nt_field "$NT_TMP/idle.out" '^closed=' last_ms)" "last idle client dropped (ms)"
nt_assert_eq 16 "$(nt_count "$BK_LOG" 'event=control_drop .*reason="idle: no request for 1000 ms"')" \
	"idle drops logged"
nt_assert_grep "$BK_LOG" 'event=control_refuse uid=65534 pid=[0-9]+ reason="too many control clients of this uid" clients=[0-9]+ max=64 per_uid=16 suppressed=[0-9]+' \
	"limit refusal logged"
nt_assert_le 3 "$(nt_count "$BK_LOG" 'event=control_refuse uid=65534 pid=[0-9]+ reason="too many')" \
	"limit refusals rate-limited"
# the watcher outlived the idle limit and still streams
bk_expect_traffic "${NSS[2]}" 5001 3 3 "pod-3 while watched"
nt_wait_for 3000 "watch events" nt__file_has "$(nt_out watch)" '"ns":"pod-3"'
kill -0 "$WATCH" 2>/dev/null || nt_fail "the watcher was dropped"
nt_kill "$WATCH"
nt_ok

# ---------------------------------------------------------------- slowloris
nt_sub slowloris
timeout 20 python3 - "$ADDR" >"$NT_TMP/slow.out" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
conns = []
for _ in range(20):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    conns.append(s)
t0 = time.monotonic()
print("open", flush=True)
ended = {}
# one header byte a second from each: activity, never a complete request
while len(ended) < len(conns) and time.monotonic() - t0 < 9:
    for i, s in enumerate(conns):
        if i in ended:
            continue
        s.setblocking(False)
        try:
            d = s.recv(4096)
            if d == b"":
                ended[i] = time.monotonic() - t0
                continue
        except BlockingIOError:
            pass
        except ConnectionResetError:
            ended[i] = time.monotonic() - t0
            continue
        try:
            s.send(b"X")
        except OSError:
            ended[i] = time.monotonic() - t0
    time.sleep(0.2)
print("ended=%d max_ms=%d" % (len(ended), 1000 * max(ended.values()) if ended else -1), flush=True)
EOF
SLOW=$!
nt_defer "kill $SLOW 2>/dev/null || true"
nt_wait_for 5000 "the slowloris clients" nt__file_has "$NT_TMP/slow.out" '^open'
sleep 0.5
python3 - "$ADDR" >"$NT_TMP/scrape.out" <<'EOF' || nt_fail "scrape with 20 slowloris clients"
import sys, time, urllib.request
t0 = time.monotonic()
body = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5).read()
assert b"\nnfqb_up 1\n" in body
print("ms=%d" % (1000 * (time.monotonic() - t0)))
EOF
nt_assert_le 1000 "$(nt_field "$NT_TMP/scrape.out" '^ms=' ms)" "scrape with 20 slowloris clients (ms)"
nt_wait_pid "$SLOW" 15000
nt_assert_eq 0 "$NT_RC" "slowloris script"
nt_assert_eq 20 "$(nt_field "$NT_TMP/slow.out" '^ended=' ended)" "every slowloris connection ended"
nt_assert_le 7000 "$(nt_field "$NT_TMP/slow.out" '^ended=' max_ms)" "slowloris cut by the 5 s deadline (ms)"
nt_assert_grep "$BK_LOG" 'event=http_drop reason="no complete request within 5000 ms"' "deadline logged"
nt_assert_grep "$BK_LOG" 'level=warn event=http_refuse reason="connection limit' "limit refusal logged"
nt_ok

# ---------------------------------------------------------------- scrape loop
nt_sub scrape-loop
R0=$(metric nfqb_kstats_refresh_total)
timeout 20 python3 - "$ADDR" >"$NT_TMP/loop.out" <<'EOF' &
import sys, time, urllib.request
n, t0, bodies = 0, time.monotonic(), set()
while time.monotonic() - t0 < 3:
    body = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5).read()
    assert b"\nnfqb_up 1\n" in body
    bodies.add(body)
    n += 1
print("scrapes=%d distinct=%d" % (n, len(bodies)), flush=True)
EOF
LOOP=$!
nt_defer "kill $LOOP 2>/dev/null || true"
# the verdicts go on in every namespace
for ns in "${NSS[@]}"; do
	bk_expect_traffic "$ns" 5001 200 200 "$ns during a scrape loop"
done
nt_wait_pid "$LOOP" 10000
nt_assert_eq 0 "$NT_RC" "scrape loop"
R1=$(metric nfqb_kstats_refresh_total)
SCRAPES=$(nt_field "$NT_TMP/loop.out" '^scrapes=' scrapes)
nt_log "scrapes=$SCRAPES distinct bodies=$(nt_field "$NT_TMP/loop.out" '^scrapes=' distinct) kernel stats reads=$((R1 - R0))"
nt_assert_ge 100 "$SCRAPES" "scrapes in 3 s"
# 3 namespaces read every 5 s: a few reads, not one per scrape
nt_assert_le 9 $((R1 - R0)) "kernel statistics reads during $SCRAPES scrapes"
# at most 5 renders a second: the rest got the last text
nt_assert_le 25 "$(nt_field "$NT_TMP/loop.out" '^scrapes=' distinct)" "distinct bodies in 3 s"
nt_ok

nt_sub shutdown
bk_stop
nt_ok
