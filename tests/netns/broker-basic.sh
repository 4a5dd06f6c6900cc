#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-broker end to end: three namespaces served by one broker, agents
# started both ways (nsenter -n and --netns). Traffic in each namespace is
# decided by that namespace's policy; the broker's per-namespace counters
# and the iptables counters agree with what was sent. Also: the command
# line (--check, --version, --help, usage errors), the socket directory and
# mode, SIGHUP reload (valid and invalid), a second broker on the same
# socket, SIGTERM shutdown, and a hundred namespaces on one broker.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init broker-basic
bk_init

nt_ns_new NS_A a
nt_ns_new NS_B b
nt_ns_new NS_C c
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_B" 1 5001
bk_queue_rule "$NS_C" 2 5001
bk_queue_rule "$NS_C" 3 5002

policies() {   # ALLOW_B: verdict of pod-b's policy; WEB_5002: verdict for port 5002 in web-*
	cat <<EOF
  "policies": {
    "allow": { "default": "accept", "rules": [] },
    "deny":  { "default": "drop", "rules": [] },
    "web": {
      "default": "drop",
      "rules": [
        { "name": "p5001", "match": { "proto": "udp", "dport": 5001, "outdev": "lo" }, "verdict": "accept" },
        { "name": "p5002", "match": { "proto": "udp", "dport": [5002] }, "verdict": "$1" }
      ]
    }
  }
EOF
}

write_config() {   # POLICY_OF_POD_A VERDICT_5002
	bk_config "\"queue_defaults\": { \"max_len\": 256 },
  \"namespaces\": [
    { \"name\": \"pod-a\", \"netns\": \"$(nt_ns_path "$NS_A")\", \"queues\": [1], \"policy\": \"$1\" },
    { \"name\": \"pod-b\", \"queues\": [1], \"policy\": \"deny\" },
    { \"name\": \"web-*\", \"queues\": [2, 3], \"policy\": \"web\", \"queue\": { \"copy\": \"packet\", \"range\": 128 } },
    { \"name\": \"many-*\", \"queues\": [7], \"policy\": \"allow\" }
  ],
$(policies "$2")"
}

# ---------------------------------------------------------------- command line
nt_sub cli
write_config allow drop
nt_run version 5000 "$BK_BROKER" --version
nt_assert_eq 0 "$NT_RC" "--version exit status"
nt_assert_eq "nfq-broker 0.1.0" "$(cat "$(nt_out version)")" "--version output"
nt_run help 5000 "$BK_BROKER" --help
nt_assert_eq 0 "$NT_RC" "--help exit status"
nt_assert_grep "$(nt_out help)" '^Usage: nfq-broker \[--config FILE\]' "--help text"
# Without --config: /etc/nfq-broker/config.json, named when it is missing.
if [[ ! -e /etc/nfq-broker/config.json ]]; then
	nt_run noargs 5000 "$BK_BROKER" --check
	nt_assert_eq 2 "$NT_RC" "no --config, no default file: exit status"
	nt_assert_grep "$(nt_err noargs)" 'no --config FILE, and no /etc/nfq-broker/config.json' \
		"no --config, no default file: message"
fi
nt_run badopt 5000 "$BK_BROKER" --config "$BK_CONF" --frobnicate
nt_assert_eq 2 "$NT_RC" "unknown option: exit status"
nt_assert_grep "$(nt_err badopt)" "unknown option '--frobnicate'" "unknown option: message"
nt_run check 5000 "$BK_BROKER" --config "$BK_CONF" --check
nt_assert_eq 0 "$NT_RC" "--check on a valid file: exit status"
nt_assert_eq ok "$(cat "$(nt_out check)")" "--check on a valid file: output"
[[ ! -e "$NT_TMP/run" ]] || nt_fail "--check created the socket directory"
# every error, one per line, with its JSON path
sed -e 's/"queues": \[1\], "policy": "deny"/"queues": [1, 70000], "policy": "nope"/' \
    -e 's/"max_len": 256/"max_len": 0, "colour": 1/' "$BK_CONF" >"$NT_TMP/bad.json"
nt_run checkbad 5000 "$BK_BROKER" --config "$NT_TMP/bad.json" --check
nt_assert_eq 2 "$NT_RC" "--check on an invalid file: exit status"
nt_assert_lines "$(nt_out checkbad)" '.' 4 "--check: one line per error"
nt_assert_grep "$(nt_out checkbad)" '^queue_defaults\.colour: unknown key$' "--check error 1"
nt_assert_grep "$(nt_out checkbad)" '^queue_defaults\.max_len: max_len 0 out of range 1-4294967295$' "--check error 2"
nt_assert_grep "$(nt_out checkbad)" '^namespaces\[1\]\.queues\[1\]: queue 70000 out of range 0-65535$' "--check error 3"
nt_assert_grep "$(nt_out checkbad)" '^namespaces\[1\]\.policy: unknown policy "nope"$' "--check error 4"
# steering (docs/steering.md): the issue's minimal form passes, and a bad
# steer list gets every error with its path
cat >"$NT_TMP/steer-ok.json" <<'EOF'
{"namespaces": [{"name": "a", "queues": [1], "policy": "p",
  "steer": [{"hook": "output", "family": "inet", "match": {"proto": "udp", "dport": [8080, 9999]}, "queue": 1}]}],
 "policies": {"p": {"default": "accept", "rules": []}}}
EOF
nt_run checksteer 5000 "$BK_BROKER" --config "$NT_TMP/steer-ok.json" --check
nt_assert_eq 0 "$NT_RC" "--check on a steer list: exit status"
nt_assert_eq ok "$(cat "$(nt_out checksteer)")" "--check on a steer list: output"
cat >"$NT_TMP/steer-bad.json" <<'EOF'
{"steering": {"web": [{"hook": "input", "queue": "1-2"}]},
 "namespaces": [{"name": "a", "queues": [1], "policy": "p",
  "steer": [{"hook": "output", "match": {"dport": 53, "uid": 0}, "queue": 7}]},
  {"name": "b", "queues": [1], "policy": "p", "steer": "web"},
  {"name": "c", "queues": [1], "policy": "p", "steer": "wbe"}],
 "policies": {"p": {"default": "accept", "rules": []}}}
EOF
nt_run checksteerbad 5000 "$BK_BROKER" --config "$NT_TMP/steer-bad.json" --check
nt_assert_eq 2 "$NT_RC" "--check on bad steering: exit status"
nt_assert_lines "$(nt_out checksteerbad)" '.' 5 "--check on bad steering: one line per error"
nt_assert_grep "$(nt_out checksteerbad)" '^namespaces\[0\]\.steer\[0\]\.match\.uid: not available for steering' "--check steer error 1"
nt_assert_grep "$(nt_out checksteerbad)" '^namespaces\[0\]\.steer\[0\]\.match\.dport: ports need a "proto"' "--check steer error 2"
nt_assert_grep "$(nt_out checksteerbad)" '^namespaces\[0\]\.steer\[0\]\.queue: queue 7 is not one of namespaces\[0\]\.queues$' "--check steer error 3"
nt_assert_grep "$(nt_out checksteerbad)" '^namespaces\[1\]\.steer: queue 2 \(steering\.web\[0\]\.queue\) is not one of namespaces\[1\]\.queues$' "--check steer error 4"
nt_assert_grep "$(nt_out checksteerbad)" '^namespaces\[2\]\.steer: unknown steering list "wbe"$' "--check steer error 5"
nt_run checkmissing 5000 "$BK_BROKER" --config "$NT_TMP/nope.json" --check
nt_assert_eq 2 "$NT_RC" "--check on a missing file: exit status"
nt_assert_grep "$(nt_out checkmissing)" 'nope\.json: No such file or directory' "--check on a missing file: message"
# starting on an invalid file: exit 2, errors logged
nt_run startbad 5000 "$BK_BROKER" --config "$NT_TMP/bad.json"
nt_assert_eq 2 "$NT_RC" "start on an invalid file: exit status"
nt_assert_grep "$(nt_err startbad)" 'event=config_error error="namespaces\[1\]\.policy: unknown policy \\"nope\\""' \
	"start on an invalid file: logged error"
nt_ok

# ---------------------------------------------------------------- attach
nt_sub attach
bk_start
[[ -S "$BK_SOCK" ]] || nt_fail "no agent socket at $BK_SOCK"
nt_assert_eq 600 "$(stat -c %a "$BK_SOCK")" "agent socket mode"
nt_assert_eq 755 "$(stat -c %a "$(dirname "$BK_SOCK")")" "socket directory mode"
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_netns AG_B agent-b "$NS_B" pod-b
bk_agent_nsenter AG_C agent-c "$NS_C" web-1
for n in pod-a pod-b web-1; do
	bk_wait_attach "$n"
done
nt_assert_grep "$BK_LOG" "event=attach name=pod-a netns_inode=$(nt_ns_ino "$NS_A") agent_pid=$AG_A .*queues=1 " "attach line of pod-a"
nt_assert_grep "$BK_LOG" "event=attach name=pod-b netns_inode=$(nt_ns_ino "$NS_B") agent_pid=$AG_B .*policy=deny queues=1 " "attach line of pod-b"
nt_assert_grep "$BK_LOG" "event=attach name=web-1 netns_inode=$(nt_ns_ino "$NS_C") .*entry=namespaces\[2\] policy=web queues=2,3 " "attach line of web-1"
for q in "$NS_A 1" "$NS_B 1" "$NS_C 2" "$NS_C 3"; do
	# shellcheck disable=SC2086
	nt_wait_queue $q
done
# the broker applied the entry's queue options (copy range 128)
nt_assert_eq 128 "$(nt_kstat "$NS_C" 2 range)" "copy range of web-1's queue 2"
nt_assert_eq 65531 "$(nt_kstat "$NS_A" 1 range)" "copy range of pod-a's queue 1 (65535, capped by the kernel)"
nt_ok

# ---------------------------------------------------------------- verdicts
nt_sub verdicts
bk_expect_traffic "$NS_A" 5001 10 10 "pod-a (allow)"
bk_expect_traffic "$NS_B" 5001 10 0 "pod-b (deny)"
bk_expect_traffic "$NS_C" 5001 10 10 "web-1 port 5001 (rule p5001: accept)"
bk_expect_traffic "$NS_C" 5002 10 0 "web-1 port 5002 (rule p5002: drop)"
nt_ok

nt_sub counters
bk_expect_stats pod-a "after traffic" packets=10 accept=10 drop=0 errors=0
bk_expect_stats pod-b "after traffic" packets=10 accept=0 drop=10 errors=0
bk_expect_stats web-1 "after traffic" packets=20 accept=10 drop=10 errors=0
bk_expect_stats scope=total "after traffic" packets=40 accept=20 drop=20 namespaces=3
nt_assert_eq 10 "$(nt_ipt_count "$NS_A" OUTPUT bk-5001)" "iptables count in pod-a"
nt_assert_eq 10 "$(nt_ipt_count "$NS_B" OUTPUT bk-5001)" "iptables count in pod-b"
nt_assert_eq 10 "$(nt_ipt_count "$NS_C" OUTPUT bk-5002)" "iptables count for 5002 in web-1"
# byte counters: each datagram is 28 bytes of headers + the payload udp-tool sends
bytes=$(bk_stats pod-a bytes)
nt_assert_eq 0 $((bytes % 10)) "pod-a bytes ($bytes) are 10 equal datagrams"
nt_assert_ge 290 "$bytes" "pod-a bytes"
nt_ok

# ---------------------------------------------------------------- reload
nt_sub reload
write_config deny accept
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=true entries=4 policies=3 sessions=3 ended=0'
nt_assert_grep "$BK_LOG" 'event=policy_change name=pod-a from=allow to=deny' "policy change logged"
bk_expect_traffic "$NS_A" 5001 5 0 "pod-a after reload (now deny)"
bk_expect_traffic "$NS_C" 5002 5 5 "web-1 port 5002 after reload (now accept)"
bk_expect_traffic "$NS_B" 5001 5 0 "pod-b after reload (unchanged)"
# queues were never re-bound: the kernel's portids are the same
nt_assert_lines "$BK_LOG" 'event=attach ' 3 "no re-attach on reload"
# an invalid file is rejected and the old config stays in force
echo '{ "namespaces": [ { "name": "pod-a" } ], "policies": {} ' >"$BK_CONF"
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=false errors=1'
nt_assert_grep "$BK_LOG" 'event=config_error error=".*invalid JSON: unexpected end of file"' "reload: syntax error logged"
write_config allow ";;"
kill -HUP "$BK_PID"
bk_wait_count 'event=reload ok=false' 2
nt_assert_grep "$BK_LOG" 'error="policies\.web\.rules\[1\]\.verdict: .*' "reload: policy error logged with its path"
bk_expect_traffic "$NS_A" 5001 5 0 "pod-a after rejected reloads (still deny)"
bk_expect_traffic "$NS_C" 5002 5 5 "web-1 port 5002 after rejected reloads (still accept)"
nt_ok

# ---------------------------------------------------------------- second broker
nt_sub second-broker
write_config allow drop
nt_run second 5000 "$BK_BROKER" --config "$BK_CONF"
nt_assert_eq 1 "$NT_RC" "a second broker on a live socket: exit status"
nt_assert_grep "$(nt_err second)" 'another process \(a running broker\?\) listens on' "second broker: reason"
[[ -S "$BK_SOCK" ]] || nt_fail "the second broker removed the live socket"
bk_expect_traffic "$NS_A" 5001 3 0 "pod-a still served after the second broker gave up"
nt_ok

# ---------------------------------------------------------------- many namespaces
nt_sub many
MANY=100
declare -a MNS MPID
FDS0=$(bk_fd_count "$BK_PID")
for ((i = 0; i < MANY; i++)); do
	nt_ns_new "MNS[$i]" "m$i"
done
for ((i = 0; i < MANY; i++)); do
	bk_agent_netns "MPID[$i]" "agent-m$i" "${MNS[$i]}" "many-$i"
done
bk_wait_count 'event=attach name=many-' "$MANY" 30000
nt_assert_eq $((MANY + 3)) "$(bk_stats scope=total namespaces)" "namespaces served"
bk_queue_rule "${MNS[0]}" 7 5001
bk_queue_rule "${MNS[$((MANY - 1))]}" 7 5001
bk_expect_traffic "${MNS[0]}" 5001 4 4 "first of many"
bk_expect_traffic "${MNS[$((MANY - 1))]}" 5001 4 4 "last of many"
bk_expect_traffic "$NS_B" 5001 3 0 "pod-b among many"
for ((i = 0; i < MANY; i++)); do
	kill -TERM "${MPID[$i]}"
done
bk_wait_count 'event=release name=many-.* reason="agent said bye"' "$MANY" 30000
nt_assert_eq "$FDS0" "$(bk_fd_count "$BK_PID")" "broker fds after the many namespaces left"
nt_assert_eq 3 "$(bk_stats scope=total namespaces)" "namespaces served after the many left"
nt_ok

# ---------------------------------------------------------------- shutdown
nt_sub shutdown
bk_stop
nt_assert_grep "$BK_LOG" 'event=detach name=pod-a ' "detach logged"
[[ ! -e "$BK_SOCK" ]] || nt_fail "socket file left after a clean shutdown"
# the agents hold their sockets: the kernel keeps the queues bound
nt_queue_bound "$NS_A" 1 || nt_fail "queue 1 of pod-a unbound by the shutdown"
nt_queue_bound "$NS_C" 3 || nt_fail "queue 3 of web-1 unbound by the shutdown"
kill -0 "$AG_A" "$AG_B" "$AG_C" || nt_fail "an agent exited when the broker stopped"
nt_ok
