#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-ctl for people and scripts: agents, rules and status as tables (-o
# table, the default on a terminal), wide tables and JSON (the default when
# piped), checked against the traffic sent (human units, aligned columns);
# NFQ_CTL_SOCKET and -c winning over it; every command's --help; usage
# errors (exit 2, the message, the hint); the bash completion.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
. "$(dirname "$0")/ctl-lib.sh"
nt_init ctl-output
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init

# ---------------------------------------------------------------- no broker needed
nt_sub help
CTL=$(nt_bin nfq-ctl)
for cmd in status agents rules reload watch metrics top; do
	nt_run "help-$cmd" 5000 "$CTL" "$cmd" --help
	nt_assert_eq 0 "$NT_RC" "nfq-ctl $cmd --help: exit status"
	nt_assert_grep "$(nt_out "help-$cmd")" "^Usage: nfq-ctl \[OPTIONS\] $cmd( |\$)" "nfq-ctl $cmd --help: usage line"
	nt_assert_grep "$(nt_out "help-$cmd")" '^  -c, --control SOCKET' "nfq-ctl $cmd --help: -c"
done
nt_assert_grep "$(nt_out help-watch)" '^      --verdict V ' "watch --help lists the filters"
nt_assert_grep "$(nt_out help-watch)" '^      --count N ' "watch --help lists --count"
nt_assert_nogrep "$(nt_out help-agents)" 'verdict' "agents --help: no watch filters"
nt_assert_grep "$(nt_out help-agents)" '^  -o, --output FORMAT   table or wide' "agents --help: -o"
nt_assert_grep "$(nt_out help-top)" '^  -d, --delay SECONDS' "top --help: -d"
nt_run help-h 5000 "$CTL" -h rules
nt_assert_grep "$(nt_out help-h)" '^Usage: nfq-ctl \[OPTIONS\] rules$' "-h before the command"
nt_ok

nt_sub usage
ctl_usage u1 "-o text applies to watch only" agents -o text
ctl_usage u2 "-o table applies to agents, rules, status only" watch -o table
ctl_usage u3 "--output: unknown format 'yaml' \(json, table, wide, text\)" status -o yaml
ctl_usage u4 "--verdict applies to watch only" status --verdict drop
ctl_usage u5 "--count: '0' is not a positive number" watch --count 0
ctl_usage u6 "--delay: '0' is not a number of seconds \(0.1-3600\)" top -d 0
ctl_usage u7 "--once applies to top only" agents --once
ctl_usage u8 "top has no --output: it draws a screen \(--once prints one frame\)" top -o json
ctl_usage u9 "--pretty is JSON output: not with -o table" agents -o table -p
ctl_usage u10 "unknown command 'stats' \(status, agents, rules, reload, watch, metrics, top\)" stats
ctl_usage u11 "--reconnect applies to watch only" rules --reconnect
ctl_usage u12 "--port: empty value" watch --port=
nt_ok

nt_sub completion
COMPL=$SRC/ctl/nfq-ctl.bash
complete_words() {   # WORDS... - what the completion offers for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _nfq_ctl; echo "${COMPREPLY[*]}"' \
		_ "$COMPL" "$@"
}
nt_assert_eq "watch" "$(complete_words nfq-ctl wa)" "completion: a command"
nt_assert_eq "status agents rules reload watch metrics top" "$(complete_words nfq-ctl '')" \
	"completion: every command"
nt_assert_eq "--verdict" "$(complete_words nfq-ctl watch --ver)" "completion: a watch option"
nt_assert_eq "drop" "$(complete_words nfq-ctl watch --verdict dr)" "completion: a verdict"
nt_assert_eq "table" "$(complete_words nfq-ctl agents -o ta)" "completion: an output format"
nt_assert_eq "" "$(complete_words nfq-ctl agents --ver)" "completion: no watch option for agents"
nt_ok

# ---------------------------------------------------------------- broker up
nt_sub setup
ctl_setup
send "$NS_A" 5001 1234 100
send "$NS_A" 5002 4 100
send "$NS_B" 5001 5 200
nt_ok

nt_sub json
ctl_ok agents agents
nt_assert_eq 1 "$(wc -l <"$(nt_out agents)")" "piped agents: one line of JSON"
nt_assert_eq "1234 4" "$(py "$(nt_out agents)" '"%d %d" % (json.loads(t)["agents"][0]["verdicts"]["accept"], json.loads(t)["agents"][0]["verdicts"]["drop"])')" "agents JSON counters"
ctl_ok agents-o agents -o json
nt_assert_eq "$(py "$(nt_out agents)" 'sorted(json.loads(t))')" "$(py "$(nt_out agents-o)" 'sorted(json.loads(t))')" "-o json = the piped default"
on_tty tty-json "$CTL --control $CSOCK -o json rules"
nt_assert_grep "$(nt_out tty-json)" '^  "rules": \[' "-o json on a terminal is pretty JSON"
nt_ok

nt_sub tables
# agents: piped -o table; on a terminal the same table by default
ctl_ok agents-t agents -o table
T=$(nt_out agents-t)
nt_assert_grep "$T" '^NAME +STATE +POLICY +QUEUES +PACKETS +BYTES +DROPS +ERRORS +KDROPS +AGE$' "agents table header"
# pod-a: 1238 packets of 128 bytes (IP+UDP headers) -> 1.2k, 154 KiB; 4 drops
nt_assert_grep "$T" '^pod-a +attached +web +1 +1\.2k +154 KiB +4 +0 +0 +[0-9]+s$' "agents table: pod-a row"
nt_assert_grep "$T" '^pod-b +attached +open +1 +5 +1\.1 KiB +0 +0 +0 +[0-9]+s$' "agents table: pod-b row"
# aligned: every right-aligned column ends where its header ends
nt_assert_eq True "$(py "$T" 'all(len(l) == len(L[0]) for l in L)')" "agents table: rows as wide as the header"
nt_assert_eq True "$(py "$T" 'all(l[L[0].index("PACKETS") + 7] == " " and l[L[0].index("PACKETS") + 6] != " " for l in L)')" \
	"agents table: PACKETS right-aligned"
on_tty agents-tty "$CTL --control $CSOCK agents"
nt_assert_eq 0 "$NT_RC" "agents on a terminal: exit status"
nt_assert_grep "$(nt_out agents-tty)" '^NAME +STATE +POLICY' "agents on a terminal: a table"
nt_assert_grep "$(nt_out agents-tty)" '^pod-a +attached +web +1 +1\.2k' "agents on a terminal: pod-a"
# wide: more columns, the netns inode and agent pid among them
ctl_ok agents-w agents -o wide
W=$(nt_out agents-w)
nt_assert_grep "$W" '^NAME .* AGE +PID +UID +NETNS +ACCEPT +REPEAT +KQUEUED +OVERRUNS +TAKEOVERS +WORKER +STEER$' "agents wide header"
# WORKER: what the JSON says (pod-a and pod-b each alone on a worker when
# the broker has two or more: "N solo")
WK=$(py "$(nt_out agents)" '(lambda a: "%d%s" % (a["worker"], " solo" if a["solo"] else ""))(next(x for x in json.loads(t)["agents"] if x["name"] == "pod-a"))')
nt_assert_grep "$W" "^pod-a .* $AG_A +0 +$(nt_ns_ino "$NS_A") +1\.2k +0 +0 +0 +0 +$WK +[^ ]+\$" "agents wide: pod-a's pid, uid, netns, worker"

ctl_ok rules-t rules -o table
R=$(nt_out rules-t)
nt_assert_grep "$R" '^POLICY +RULE +PACKETS +BYTES$' "rules table header"
nt_assert_grep "$R" '^web +p5001 +1\.2k +154 KiB$' "rules table: p5001"
nt_assert_grep "$R" '^web +p5002 +4 +512 B$' "rules table: p5002"
nt_assert_grep "$R" '^open +\(default\) +5 +1\.1 KiB$' "rules table: open's default"
nt_assert_eq 6 "$(wc -l <"$R")" "rules table: header + 5 rules"
ctl_ok rules-w rules -o wide
nt_assert_grep "$(nt_out rules-w)" '^POLICY +RULE +PACKETS +BYTES +AVGLEN +SHARE$' "rules wide header"
nt_assert_grep "$(nt_out rules-w)" '^web +p5001 +1\.2k +154 KiB +128 +99\.7%$' "rules wide: average length, share"

ctl_ok status-t status -o table
S=$(nt_out status-t)
nt_assert_grep "$S" '^namespaces: +2$' "status table: namespaces"
nt_assert_grep "$S" '^packets: +1\.2k \(155 KiB\)$' "status table: packets and bytes"
nt_assert_grep "$S" '^verdicts: +accept 1\.2k, drop 4, ' "status table: verdicts"
nt_assert_grep "$S" '^uptime: +[0-9]+s$' "status table: uptime"
nt_assert_nogrep "$S" '^config:' "status table: config only in wide"
nt_assert_grep "$S" '^ready: +yes$' "status table: ready"
nt_assert_grep "$S" '^reload: +last load ok, last good one [0-9]+s ago; reloads 0 ok, 0 failed$' "status table: reload state"
ctl_ok status-w status -o wide
nt_assert_grep "$(nt_out status-w)" "^config: +$BK_CONF\$" "status wide: config"
# a command without a table prints JSON on a terminal, as before
on_tty metrics-tty "$CTL --control $CSOCK metrics"
nt_assert_grep "$(nt_out metrics-tty)" '^nfqb_up 1' "metrics on a terminal: the text"
nt_ok

nt_sub socket-env
NFQ_CTL_SOCKET=$CSOCK nt_run env 5000 "$CTL" status
nt_assert_eq 0 "$NT_RC" "NFQ_CTL_SOCKET: exit status"
nt_assert_eq 2 "$(py "$(nt_out env)" 'json.loads(t)["namespaces"]')" "NFQ_CTL_SOCKET: the broker's reply"
NFQ_CTL_SOCKET=$NT_TMP/nowhere.sock nt_run env-c 5000 "$CTL" -c "$CSOCK" status
nt_assert_eq 0 "$NT_RC" "-c wins over NFQ_CTL_SOCKET"
NFQ_CTL_SOCKET=$NT_TMP/nowhere.sock nt_run env-bad 5000 "$CTL" status
nt_assert_eq 1 "$NT_RC" "a wrong NFQ_CTL_SOCKET: exit status"
nt_assert_grep "$(nt_err env-bad)" "^nfq-ctl: cannot connect to $NT_TMP/nowhere.sock: no such socket" \
	"a wrong NFQ_CTL_SOCKET: message names it"
NFQ_CTL_SOCKET='' nt_run env-empty 5000 "$CTL" status
nt_assert_grep "$(nt_err env-empty)" "^nfq-ctl: cannot connect to /run/nfq-broker/control.sock" \
	"an empty NFQ_CTL_SOCKET: the default"
nt_ok
