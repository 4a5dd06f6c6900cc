#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-broker under systemd, with this test playing systemd
# (tests/netns/sd-manager.py): a notify socket receives READY=1, STATUS=
# as an agent attaches, RELOADING=1/READY=1 around a SIGHUP reload and an
# nfq-ctl reload, and
# STOPPING=1 at SIGTERM, in that order; log lines carry <N> priorities and
# no timestamps when stderr is the journal; the agent and control sockets are
# the manager's (LISTEN_FDS, named agent/control), an agent attaches
# through them and its traffic is decided, and the broker leaves their
# files alone at exit. An agent that reconnects while the broker restarts
# waits in the activated socket's backlog (no retry, no backoff) and is
# served by the next broker. Sockets that do not match the configuration
# are refused with a clear error and harm nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init systemd
bk_init
[[ "$("$BK_BROKER" --help)" == *"Under systemd"* ]] || nt_fail "nfq-broker --help: no systemd line"
grep -q NFQB_HAVE_SYSTEMD "$BUILD/build.ninja" ||
	nt_skip "nfq-broker built without libsystemd (-Dsystemd=disabled)"
command -v python3 >/dev/null || nt_skip "python3 not installed"
SDM=$SRC/tests/netns/sd-manager.py
CTL_BIN=$(nt_bin nfq-ctl)

nt_ns_new NS_A a
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_A" 1 5002
bk_config '"namespaces": [ { "name": "pod-a", "queues": [1], "policy": "web" } ],
  "policies": { "web": { "default": "drop", "rules": [
    { "name": "p5001", "match": { "proto": "udp", "dport": 5001 }, "verdict": "accept" } ] } }'
CTL=$NT_TMP/run/control.sock
NOTE=$NT_TMP/notify.log
PIDS=$NT_TMP/pids
mkdir -p "$NT_TMP/run"
: >"$PIDS"

sd_kill_all() {   # every broker the manager started
	local p
	while read -r p; do nt_kill "$p"; done <"$PIDS"
}
nt_defer sd_kill_all
broker_pid() { tail -n 1 "$PIDS"; }
gone() { ! kill -0 "$1" 2>/dev/null; }
note_has() { grep -qx -- "$1" "$NOTE" 2>/dev/null; }
ino() { stat -c %i "$1"; }

# ---------------------------------------------------------------- activated start
nt_sub activated
nt_spawn SD sdm python3 "$SDM" --notify "$NOTE" --pidfile "$PIDS" --journal \
	--listen "agent:seqpacket:$BK_SOCK" --listen "control:stream:$CTL" \
	--restarts 1 --trigger "$NT_TMP/restart" --timeout 50 -- \
	"$BK_BROKER" --config "$BK_CONF" --verbose
BK_PID=$SD
BK_LOG=$(nt_err sdm)
bk_wait_log 'event=start '
nt_assert_grep "$BK_LOG" "event=socket_activation name=agent fd=3 path=$BK_SOCK\$" "agent socket adopted"
nt_assert_grep "$BK_LOG" "event=socket_activation name=control fd=4 path=$CTL\$" "control socket adopted"
nt_assert_nogrep "$BK_LOG" 'event=stale_socket' "no socket replaced"
# stderr is the journal (JOURNAL_STREAM): priorities, and the journal's time.
nt_assert_grep "$BK_LOG" '^<6>level=info event=start version=' "journal priority prefix"
nt_assert_nogrep "$BK_LOG" '^ts=' "no timestamps to the journal"
AGENT_INO=$(ino "$BK_SOCK") CTL_INO=$(ino "$CTL")
nt_wait_for 5000 "READY=1" note_has "1 READY=1"
nt_assert_grep "$NOTE" '^1 STATUS=namespaces=0 agents=0 refusals=0$' "status with READY"

# The agent too, as nfq-agent@.service runs it.
: >"$(nt_err agent-a)"
export JOURNAL_STREAM=$(stat -c %d:%i "$(nt_err agent-a)")
bk_agent_netns AG_A agent-a "$NS_A" pod-a
unset JOURNAL_STREAM
bk_wait_attach pod-a
nt_wait_file 5000 "$(nt_err agent-a)" '^<6>level=info event=attached name=pod-a '
nt_wait_queue "$NS_A" 1
bk_expect_traffic "$NS_A" 5001 3 3 "activated broker, accepted port"
bk_expect_traffic "$NS_A" 5002 3 0 "activated broker, dropped port"
nt_wait_for 5000 "STATUS with the agent" note_has "1 STATUS=namespaces=1 agents=1 refusals=0"
nt_run ctl 5000 "$CTL_BIN" --control "$CTL" status
nt_assert_eq 0 "$NT_RC" "nfq-ctl status through the activated control socket"
nt_ok

# ---------------------------------------------------------------- reload, stop
nt_sub notify-order
kill -HUP "$(broker_pid)"
bk_wait_log 'event=reload ok=true'
nt_wait_for 5000 "READY=1 after the reload" bash -c "[[ \$(grep -c '^1 READY=1\$' '$NOTE') -ge 2 ]]"
nt_assert_grep "$NOTE" '^1 MONOTONIC_USEC=[0-9]+$' "reload carries MONOTONIC_USEC"
# nfq-ctl reload tells systemd the same
nt_run ctl-reload 5000 "$CTL_BIN" --control "$CTL" reload
nt_assert_eq 0 "$NT_RC" "nfq-ctl reload"
nt_wait_for 5000 "READY=1 after nfq-ctl reload" bash -c "[[ \$(grep -c '^1 READY=1\$' '$NOTE') -ge 3 ]]"
BPID=$(broker_pid)
kill -TERM "$BPID"
nt_wait_for 5000 "broker $BPID to exit" gone "$BPID"
nt_assert_grep "$NOTE" '^1 STOPPING=1$' "STOPPING=1"
order=$(grep -E '^1 (READY|RELOADING|STOPPING)=1$' "$NOTE" | cut -d' ' -f2 | tr '\n' ' ')
nt_assert_eq "READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1 " "$order" "notification order (SIGHUP, then nfq-ctl reload)"
# The files are the manager's: still there, the same ones.
[[ -S "$BK_SOCK" && -S "$CTL" ]] || nt_fail "the broker removed an activated socket file"
nt_assert_eq "$AGENT_INO $CTL_INO" "$(ino "$BK_SOCK") $(ino "$CTL")" "socket files untouched"
nt_ok

# ---------------------------------------------------------------- restart: the backlog
nt_sub backlog
AG_LOG=$(nt_err agent-a)
bk_wait_log 'event=lease_lost' "" "$AG_LOG"
backlog() { ss -xl | awk -v p="$BK_SOCK" '$5 == p { print $3 }'; }
# The agent's reconnect is queued on the listening socket nobody accepts.
nt_wait_for 5000 "a connection in the agent socket's backlog" bash -c \
	"[[ \$(ss -xl | awk -v p='$BK_SOCK' '\$5 == p { print \$3 }') -ge 1 ]]"
nt_assert_nogrep "$AG_LOG" 'event=retry' "the agent did not back off"
touch "$NT_TMP/restart"
nt_wait_for 5000 "the second broker" bash -c "[[ \$(wc -l <'$PIDS') -eq 2 ]]"
bk_wait_log 'event=(attach|takeover) name=pod-a ' 10000
nt_wait_for 5000 "the agent attached again" bash -c \
	"[[ \$(grep -c 'event=attached ' '$AG_LOG') -ge 2 ]]"
nt_assert_nogrep "$AG_LOG" 'event=retry' "the agent never retried"
nt_assert_grep "$AG_LOG" 'event=attached .* attempts=1 ' "re-attached on its first attempt"
nt_assert_eq 0 "$(backlog)" "backlog served"
bk_expect_traffic "$NS_A" 5001 3 3 "after the restart, accepted port"
bk_expect_traffic "$NS_A" 5002 3 0 "after the restart, dropped port"
nt_wait_for 5000 "READY=1 of the second run" note_has "2 READY=1"
nt_ok

# ---------------------------------------------------------------- bad sockets
nt_sub refusals
bad() {   # NAME WANT_REGEX --listen/--no-names args...
	local name=$1 want=$2
	shift 2
	nt_run "$name" 10000 python3 "$SDM" --timeout 8 "$@" -- "$BK_BROKER" --config "${CONF:-$BK_CONF}"
	nt_assert_eq 1 "$NT_RC" "$name: exit status"
	nt_assert_grep "$(nt_err "$name")" "$want" "$name: error"
	nt_assert_grep "$(nt_err "$name")" 'event=exit code=1$' "$name: exit logged"
	nt_assert_nogrep "$(nt_err "$name")" 'event=(control_listen|privileges) ' "$name: nothing set up"
	nt_assert_nogrep "$(nt_err "$name")" 'sd-manager: socket .* GONE' "$name: socket file left alone"
}
bad wrongpath "error=\"socket activation: the agent socket is bound at $NT_TMP/other.sock but broker.listen is $BK_SOCK\"" \
	--listen "agent:seqpacket:$NT_TMP/other.sock"
bad wrongtype 'error="socket activation: fd 3 \(agent\) is not a listening SOCK_SEQPACKET unix socket"' \
	--listen "agent:stream:$NT_TMP/stream.sock"
# Two control sockets, the first one right (another configuration names it).
sed -e "s|$CTL|$NT_TMP/s1.sock|" -e "s|$BK_SOCK|$NT_TMP/a1.sock|" "$BK_CONF" >"$NT_TMP/twice.json"
CONF=$NT_TMP/twice.json bad twice 'error="socket activation: two control sockets passed"' --no-names \
	--listen "x:stream:$NT_TMP/s1.sock" --listen "y:stream:$NT_TMP/s2.sock"
[[ ! -e "$NT_TMP/a1.sock" ]] || nt_fail "twice: the broker bound its own agent socket"
bad dgram 'is neither the agent \(SOCK_SEQPACKET\) nor the control \(SOCK_STREAM\)' --no-names \
	--listen "x:dgram:$NT_TMP/d.sock"
# The running broker served on, its sockets untouched.
nt_assert_eq "$AGENT_INO $CTL_INO" "$(ino "$BK_SOCK") $(ino "$CTL")" "activated sockets after the refusals"
bk_expect_traffic "$NS_A" 5001 3 3 "served on after the refusals"
nt_ok

# ---------------------------------------------------------------- end
nt_sub end
BPID=$(broker_pid)
kill -TERM "$BPID"
nt_expect_exit "$SD" 5000 0 "the manager after the broker's clean exit"
nt_assert_grep "$BK_LOG" "sd-manager: socket agent $BK_SOCK kept" "agent socket file kept"
nt_assert_grep "$BK_LOG" "sd-manager: socket control $CTL kept" "control socket file kept"
nt_assert_grep "$NOTE" '^2 STOPPING=1$' "second run: STOPPING=1"
nt_ok
