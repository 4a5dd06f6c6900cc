#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-ctl top under tmux while traffic flows: the busiest namespace is at
# the top with a nonzero rate, the sort keys change the order, q quits
# with the terminal restored (normal screen, cursor shown, canonical mode
# and echo back), and so does SIGTERM; --once prints one frame over a
# pipe; without a terminal (and without --once) it refuses.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
. "$(dirname "$0")/ctl-lib.sh"
nt_init ctl-top
command -v tmux >/dev/null || nt_skip "needs tmux (apt-get install tmux)"
bk_init

nt_sub setup
ctl_setup
# pod-b busy (about 500 datagrams/s), pod-a slow (about 20/s), for 30 s at most
nt_spawn TB traffic-b nt_x "$NS_B" "$(nt_bin udp-tool)" send 127.0.0.1 5001 --count 15000 --interval-ms 2
nt_spawn TA traffic-a nt_x "$NS_A" "$(nt_bin udp-tool)" send 127.0.0.1 5001 --count 600 --interval-ms 50
nt_ok

nt_sub once
nt_run once 10000 "$CTL" --control "$CSOCK" top --once -d 0.5
nt_assert_eq 0 "$NT_RC" "top --once: exit status"
O=$(nt_out once)
nt_assert_grep "$O" '^NAMESPACE +PKT/S +BYTES/S +DROP/S +ERR/S +QUEUED +KDROP/S +PACKETS +DROPS$' "top --once: header"
# the first row is the busiest: pod-b, at a rate well above pod-a's
nt_assert_eq pod-b "$(awk '/^NAMESPACE/ { getline; print $1; exit }' "$O")" "top --once: busiest first"
nt_assert_grep "$O" '^pod-b +([1-9][0-9.]*k?|[0-9]\.[1-9]) ' "top --once: pod-b's rate is nonzero"
nt_assert_grep "$O" '^POLICY/RULE +PKT/S +BYTES/S +PACKETS +BYTES$' "top --once: rules table"
nt_assert_grep "$O" '^open/\(default\) +[1-9]' "top --once: the busiest rule first"
nt_run notty 5000 "$CTL" --control "$CSOCK" top
nt_assert_eq 1 "$NT_RC" "top without a terminal: exit status"
nt_assert_grep "$(nt_err notty)" '^nfq-ctl: top needs a terminal \(use --once for one frame\)$' "top without a terminal: message"
nt_ok

nt_sub tmux
TSOCK=$NT_TMP/tmux.sock
T() { tmux -S "$TSOCK" "$@"; }
nt_defer "tmux -S '$TSOCK' kill-server 2>/dev/null || true"
T -f /dev/null new-session -d -s top -x 150 -y 40 "env PS1='$ ' bash --norc --noprofile"
pane() { T capture-pane -p -t top; }
pane_has() { pane | grep -qE -- "$1"; }
# state: alternate screen on/off, cursor shown
term_state() { T display-message -p -t top '#{alternate_on} #{cursor_flag}'; }
T send-keys -t top "$CTL --control $CSOCK top -d 0.5; echo top-exit=\$?" Enter
nt_wait_for 5000 "top's screen" pane_has '^NAMESPACE +PKT/S'
nt_assert_eq "1 0" "$(term_state)" "top: alternate screen, cursor hidden"
first_row() { pane | awk '/^NAMESPACE/ { getline; print $1; exit }'; }
busiest_first() { [[ "$(first_row)" == pod-b ]] && pane_has '^pod-b +[1-9]'; }
nt_wait_for 5000 "pod-b first with a nonzero rate" busiest_first
pane >"$NT_TMP/pane-packets.txt"
nt_assert_grep "$NT_TMP/pane-packets.txt" 'sort: packets/s' "top: sorted by packets/s"
T send-keys -t top n
name_first() { [[ "$(first_row)" == pod-a ]] && pane_has 'sort: name'; }
nt_wait_for 3000 "pod-a first when sorted by name" name_first
T send-keys -t top b
nt_wait_for 3000 "pod-b first when sorted by bytes" busiest_first
pane_has 'sort: bytes/s' || nt_fail "top: sorted by bytes/s"
T send-keys -t top q
nt_wait_for 3000 "top quits on q" pane_has '^top-exit=0$'
nt_assert_eq "0 1" "$(term_state)" "after q: normal screen, cursor shown"
T send-keys -t top "stty -a | tr ' ;' '\n\n' | grep -xE -- '-?(icanon|echo)' | tr '\n' ' '; echo" Enter
nt_wait_for 3000 "stty output" pane_has '^icanon echo ?$'
# SIGTERM restores the terminal too
T send-keys -t top "clear; $CTL --control $CSOCK top -d 0.5; echo top-exit=\$?" Enter
nt_wait_for 5000 "top's screen again" pane_has '^NAMESPACE +PKT/S'
SHELL_PID=$(T display-message -p -t top '#{pane_pid}')
TOP_PID=$(pgrep -P "$SHELL_PID" -x nfq-ctl)
kill -TERM "$TOP_PID"
nt_wait_for 3000 "top exits on SIGTERM" pane_has '^top-exit=0$'
nt_assert_eq "0 1" "$(term_state)" "after SIGTERM: normal screen, cursor shown"
nt_ok
