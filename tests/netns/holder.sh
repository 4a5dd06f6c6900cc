#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-holder behind nfq-cni ("holder" in the netconf): `ip netns`
# namespaces stand in for pods, the plugin runs as a runtime runs it, in a
# test cgroup (the runtime's). A real broker serves "kube-system/*" with a
# policy that accepts UDP 5001 and drops 5002. Checked: ADD through the
# holder (the agent its child, outside the runtime's cgroup), two networks
# and one DEL, CHECK, the agent killed (restarted, traffic still decided),
# the holder stopped or killed (agents live on, adopted by the next holder,
# which also restarts one that died meanwhile), every process of the
# runtime's cgroup killed (pods still served; a direct-mode agent beside
# them dies), the broker killed (datagrams queued meanwhile delivered after
# its restart), refusals and bad namespaces (no agent, no state left), a
# bad request on the socket (refused, the holder keeps serving), the
# holder away (ADD says so), DEL ending the agent with its log kept, and
# no fd growth in the holder over ADD/DEL cycles.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init holder
bk_init

CNI=$(nt_bin nfq-cni)
HOLDER=$BUILD/holder/nfq-holder
[[ -x "$HOLDER" ]] || nt_fail "nfq-holder not built at $HOLDER"
command -v python3 >/dev/null || nt_skip "python3 not installed"
HSTATE=$NT_TMP/holder-state
HSOCK=$NT_TMP/run/holder.sock
RUNTIME_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
POD=web-$NT_ID
CID=h${NT_ID//-/}a
CID2=h${NT_ID//-/}b
CID3=h${NT_ID//-/}c

# The runtime's cgroup: the v1 pids hierarchy here, v2 where that is all.
bk_runtime_cgroup "nt-holder-$NT_ID" || nt_skip "cannot create a cgroup for the runtime"

nt_ns_new NS_A pod
nt_ns_new NS_B pod2
nt_ns_new NS_C pod3
nt_ns_new NS_D direct
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_A" 1 5002
bk_queue_rule "$NS_B" 2 5001
bk_queue_rule "$NS_B" 2 5002
bk_config '"namespaces": [
    { "name": "kube-system/*", "queues": [1], "policy": "web" },
    { "name": "other/*", "queues": [2], "policy": "web" }
  ],
  "policies": {
    "web": { "default": "drop",
             "rules": [ { "name": "p5001", "match": { "proto": "udp", "dport": 5001 }, "verdict": "accept" } ] }
  }'

PREV='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"address":"10.22.0.5/24","interface":0}]}'
netconf() { # [NAME]
	printf '{"cniVersion":"1.0.0","name":"%s","type":"nfq-cni","broker":"%s","holder":"%s","attach_timeout_ms":5000,"prevResult":%s}' \
		"${1:-net1}" "$BK_SOCK" "$HSOCK" "$PREV"
}

# cni NAME NETCONF VAR=VALUE... - the plugin as the runtime runs it: a clean
# environment, inside the runtime's cgroup, stdout through a pipe that must
# close. NT_RC is its exit status.
cni() {
	local name=$1 conf=$2
	shift 2
	nt__addlog "$NT_TMP/$name.out"
	nt__addlog "$NT_TMP/$name.err"
	if ! printf '%s' "$conf" | {
		rc=0
		env -i PATH="$RUNTIME_PATH" "$@" timeout -k 1 30 sh -c 'echo $$ >"$0/cgroup.procs" && exec "$1"' "$CG" "$CNI" \
			2>"$NT_TMP/$name.err" || rc=$?
		echo "$rc" >"$NT_TMP/$name.rc"
	} | timeout 20 cat >"$NT_TMP/$name.out"; then
		nt_fail "$name: stdout of nfq-cni not closed within 20 s"
	fi
	NT_RC=$(cat "$NT_TMP/$name.rc")
}
cni_env() { # CMD CID NETNS [IFNAME] [ARGS]
	CNI_ENV=("CNI_COMMAND=$1" "CNI_CONTAINERID=$2" "CNI_IFNAME=${4:-eth0}" "CNI_PATH=/opt/cni/bin")
	[[ -n "$3" ]] && CNI_ENV+=("CNI_NETNS=$3")
	CNI_ENV+=("CNI_ARGS=${5:-K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=$POD}")
	return 0
}
json_get() {
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}
expect_ok() { # NAME WHAT
	[[ "$NT_RC" == 0 ]] || nt_fail "$2: exit status $NT_RC: $(cat "$(nt_out "$1")")"
}
expect_error() { # NAME CODE MSG_REGEX
	nt_assert_eq 1 "$NT_RC" "$1: exit status"
	nt_assert_eq "$2" "$(json_get "$(nt_out "$1")" code)" "$1: error code ($(cat "$(nt_out "$1")"))"
	[[ "$(json_get "$(nt_out "$1")" msg)" =~ $3 ]] || nt_fail "$1: msg '$(json_get "$(nt_out "$1")" msg)' does not match '$3'"
}
agent_of() { json_get "$HSTATE/$1.json" pid; }
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && [[ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat")" != Z ]]; }
new_agent() { # CID OLD_PID - a running agent other than OLD_PID is recorded
	local p
	p=$(agent_of "$1" 2>/dev/null) || return 1
	[[ -n "$p" && "$p" != "$2" ]] && alive "$p"
}
holder_start() { # NAME
	nt_spawn HPID "$1" "$HOLDER" --socket "$HSOCK" --state-dir "$HSTATE" --agent "$BK_AGENT" --verbose
	HLOG=$(nt_err "$1")
	nt_wait_ready "$HPID" "$HLOG" 'event=started '
}
# Kill whatever agent a failing test leaves (the holder leaves them by design).
nt_defer "bk_kill_recorded_agents $(printf %q "$HSTATE")"
traffic() { # NS WHAT - 5001 accepted, 5002 dropped
	bk_expect_traffic "$1" 5001 5 5 "$2: port 5001 (accept)"
	bk_expect_traffic "$1" 5002 5 0 "$2: port 5002 (policy default: drop)"
}

# ---------------------------------------------------------------- holder away
nt_sub holder-away
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")"
cni away "$(netconf)" "${CNI_ENV[@]}"
expect_error away 11 "^nfq-holder not reachable at ${HSOCK//./\\.}: "
nt_ok

# ---------------------------------------------------------------- add
nt_sub add
bk_start broker1
holder_start holder1
cni add "$(netconf)" "${CNI_ENV[@]}"
expect_ok add "ADD through the holder"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.loads(sys.argv[2]); sys.exit(a!=b)' "$(nt_out add)" "$PREV" ||
	nt_fail "ADD did not pass the prevResult through: $(cat "$(nt_out add)")"
AGENT=$(agent_of "$CID")
alive "$AGENT" || nt_fail "no agent recorded after ADD"
nt_assert_eq "$HPID" "$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$AGENT/stat")" "the agent's parent is the holder"
grep -q "$AGENT" "$CG/cgroup.procs" && nt_fail "the agent lives in the runtime's cgroup"
nt_assert_eq "$HSTATE/$CID.log" "$(readlink "/proc/$AGENT/fd/2")" "agent stderr"
nt_assert_eq "$BK_SOCK" "$(json_get "$HSTATE/$CID.json" broker)" "broker in the state file"
nt_assert_grep "$BK_LOG" "event=attach name=kube-system/$POD .*agent_pid=$AGENT " "broker attach"
nt_wait_queue "$NS_A" 1
traffic "$NS_A" "after ADD"
cni_env CHECK "$CID" "$(nt_ns_path "$NS_A")"
cni check "$(netconf)" "${CNI_ENV[@]}"
expect_ok check "CHECK"
cni_env CHECK "$CID" "$(nt_ns_path "$NS_B")"
cni checkns "$(netconf)" "${CNI_ENV[@]}"
expect_error checkns 1002 "serves .*, not CNI_NETNS "
nt_ok

# ---------------------------------------------------------------- two networks
nt_sub two-networks
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" eth1
cni add2 "$(netconf net2)" "${CNI_ENV[@]}"
expect_ok add2 "ADD on a second network"
nt_assert_eq "$AGENT" "$(agent_of "$CID")" "one agent for both networks"
CNI_ENV[0]=CNI_COMMAND=DEL
cni del2 "$(netconf net2)" "${CNI_ENV[@]}"
expect_ok del2 "DEL of the second network"
alive "$AGENT" || nt_fail "DEL of one network ended the agent serving the other"
cni_env CHECK "$CID" "$(nt_ns_path "$NS_A")" eth1
cni checkn2 "$(netconf net2)" "${CNI_ENV[@]}"
expect_error checkn2 1002 "^container $CID has no attachment on network net2 interface eth1$"
traffic "$NS_A" "after the second network's DEL"
nt_ok

# ---------------------------------------------------------------- agent killed
nt_sub agent-kill
kill -KILL "$AGENT"
nt_wait_for 5000 "the holder to restart the agent" new_agent "$CID" "$AGENT"
nt_assert_grep "$HLOG" "event=agent_exited cid=$CID .*pid=$AGENT status=signal=9 " "exit logged"
nt_assert_grep "$HLOG" "event=agent_restart_planned cid=$CID .*in_ms=100" "backoff logged"
AGENT=$(agent_of "$CID")
bk_wait_attach "kube-system/$POD" 2
nt_wait_queue "$NS_A" 1
traffic "$NS_A" "after the agent was killed"
nt_ok

# ---------------------------------------------------------------- holder stopped, killed
nt_sub holder-kill
# a clean stop leaves the agents to the next holder
kill -TERM "$HPID"
nt_expect_exit "$HPID" 5000 0 "nfq-holder after SIGTERM"
alive "$AGENT" || nt_fail "the agent ended with the holder's SIGTERM"
holder_start holder1b
nt_assert_grep "$HLOG" "event=agent_adopted cid=$CID .*pid=$AGENT$" "the agent adopted after a clean stop"
kill -KILL "$HPID"
wait "$HPID" 2>/dev/null || true
sleep 0.2
alive "$AGENT" || nt_fail "the agent died with the holder"
traffic "$NS_A" "while no holder runs"
holder_start holder2
nt_assert_grep "$HLOG" "event=agent_adopted cid=$CID .*pid=$AGENT$" "the agent adopted"
nt_assert_grep "$HLOG" "event=started .*held=1$" "one namespace held"
# the adopted agent is watched like a child
kill -KILL "$AGENT"
nt_wait_for 5000 "the new holder to restart the adopted agent" new_agent "$CID" "$AGENT"
AGENT=$(agent_of "$CID")
# both gone at once: the next holder starts the agent again (once the
# agent has died: SIGKILL takes effect when it next runs, and a holder
# started before that adopts it, then restarts it when it exits)
kill -KILL "$HPID" "$AGENT"
wait "$HPID" 2>/dev/null || true
dead() { ! alive "$1"; }
nt_wait_for 5000 "the killed agent gone" dead "$AGENT"
holder_start holder3
nt_assert_grep "$HLOG" "event=agent_missing cid=$CID " "the dead agent found"
nt_wait_for 5000 "the agent started again" new_agent "$CID" "$AGENT"
AGENT=$(agent_of "$CID")
nt_wait_for 5000 "attached again" nt__file_has "$HSTATE/$CID.status" '^state=attached$'
nt_wait_queue "$NS_A" 1
traffic "$NS_A" "after the holder and the agent were killed"
nt_ok

# ---------------------------------------------------------------- runtime restart
nt_sub runtime-cgroup
sleep 300 &   # the runtime, in its cgroup
RT=$!
echo "$RT" >"$CG/cgroup.procs"
cni_env ADD "$CID2" "$(nt_ns_path "$NS_B")" eth0 "K8S_POD_NAMESPACE=other;K8S_POD_NAME=$POD"
cni addb "$(netconf)" "${CNI_ENV[@]}"
expect_ok addb "ADD of a second pod"
AGENT2=$(agent_of "$CID2")
# The same ADD without "holder" (direct mode): its agent is left in the
# runtime's cgroup, and dies with it. What the holder is for.
cni_env ADD "$CID3" "$(nt_ns_path "$NS_D")" eth0 "K8S_POD_NAMESPACE=other;K8S_POD_NAME=direct"
cni direct "$(netconf | sed "s|\"holder\":\"[^\"]*\"|\"agent\":\"$BK_AGENT\",\"state_dir\":\"$NT_TMP/direct\"|")" "${CNI_ENV[@]}"
expect_ok direct "ADD in direct mode"
DIRECT=$(json_get "$NT_TMP/direct/$CID3.json" pid)
grep -qx "$DIRECT" "$CG/cgroup.procs" || nt_fail "the direct-mode agent is not in the runtime's cgroup"
bk_cgroup_kill_all "$CG" || nt_fail "the runtime's cgroup did not empty"
wait "$RT" 2>/dev/null || true
alive "$DIRECT" && nt_fail "the direct-mode agent survived the runtime's cgroup"
alive "$AGENT" && alive "$AGENT2" || nt_fail "an agent died with the runtime's cgroup"
nt_wait_queue "$NS_B" 2
traffic "$NS_A" "pod 1 after the runtime's cgroup was killed"
traffic "$NS_B" "pod 2 after the runtime's cgroup was killed"
nt_ok

# ---------------------------------------------------------------- broker killed
# The agent keeps its copy of the queue socket: what is queued while no
# broker runs waits in the kernel and is decided by the next one.
nt_sub broker-kill
kill -KILL "$BK_PID"
wait "$BK_PID" 2>/dev/null || true
nt_udp_recv RPID queued "$NS_A" 127.0.0.1 5001 5 15000
nt_udp_send "$NS_A" 127.0.0.1 5001 --count 5
nt_udp_send "$NS_A" 127.0.0.1 5002 --count 5
bk_start broker2
bk_wait_attach "kube-system/$POD"
nt_wait_pid "$RPID" 15000
nt_assert_eq 5 "$(nt_udp_summary queued received)" "datagrams queued while the broker was down, accepted after"
nt_assert_eq "$AGENT" "$(agent_of "$CID")" "the same agent after the broker's restart"
traffic "$NS_A" "after the broker's restart"
nt_ok

# ---------------------------------------------------------------- refusals and bad input
nt_sub refused
fds_before=$(ls "/proc/$HPID/fd" | wc -l)
cni_env ADD "$CID3" "$(nt_ns_path "$NS_B")" eth0 "K8S_POD_NAMESPACE=nobody;K8S_POD_NAME=$POD"
cni refused "$(netconf)" "${CNI_ENV[@]}"
expect_error refused 999 "^broker refused the agent: no namespaces entry matches name \"nobody/$POD\"$"
[[ -e "$HSTATE/$CID3.json" ]] && nt_fail "state left after a refusal"
cni_env ADD "$CID3" "$NT_TMP/no-such-netns"
cni badns "$(netconf)" "${CNI_ENV[@]}"
expect_error badns 1000 '^nfq-agent exited with status 1$'
[[ "$(json_get "$(nt_out badns)" details)" == *no-such-netns* ]] || nt_fail "badns: details: $(cat "$(nt_out badns)")"
[[ -e "$HSTATE/$CID3.json" ]] && nt_fail "state left after a bad namespace"
# a bad request straight on the socket: refused with the reason
python3 - "$HSOCK" >"$NT_TMP/raw.out" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(b"HOLD\ncid=../etc\nnet=n\nifname=eth0\nname=x\nnetns=/x\nbroker=/y\n")
s.settimeout(5)
print(s.recv(4096).decode())
PY
nt_assert_grep "$NT_TMP/raw.out" '^msg=nfq-holder: bad request: cid: "\.\./etc" is not a valid container id$' "bad request answer"
nt_assert_grep "$NT_TMP/raw.out" '^code=6$' "bad request code"
alive "$AGENT" || nt_fail "pod 1's agent died during the bad input"
traffic "$NS_A" "after the bad input"
nt_assert_eq "$fds_before" "$(ls "/proc/$HPID/fd" | wc -l)" "holder fds after the failures"
nt_ok

# ---------------------------------------------------------------- del
nt_sub del
for i in 1 2 3 4 5; do
	cni_env ADD "$CID3" "$(nt_ns_path "$NS_C")" eth1 "K8S_POD_NAMESPACE=other;K8S_POD_NAME=cycle"
	cni cyc "$(netconf net3)" "${CNI_ENV[@]}"
	expect_ok cyc "ADD cycle $i"
	CNI_ENV[0]=CNI_COMMAND=DEL
	cni cycdel "$(netconf net3)" "${CNI_ENV[@]}"
	expect_ok cycdel "DEL cycle $i"
done
nt_assert_eq "$fds_before" "$(ls "/proc/$HPID/fd" | wc -l)" "holder fds after 5 ADD/DEL cycles"
for c in "$CID" "$CID2"; do
	p=$(agent_of "$c")
	cni_env DEL "$c" ""
	cni "del-$c" "$(netconf)" "${CNI_ENV[@]}"
	expect_ok "del-$c" "DEL of $c"
	alive "$p" && nt_fail "agent $p runs after the last DEL"
	[[ -e "$HSTATE/$c.json" || -e "$HSTATE/$c.status" || -e "$HSTATE/$c.log" ]] && nt_fail "state of $c left after DEL"
done
bk_wait_log "event=release name=kube-system/$POD .*reason=\"agent said bye\""
ls "$HSTATE/logs/kube-system_$POD.1.log" >/dev/null || nt_fail "the agent's log was not kept"
cni_env DEL "$CID" ""
cni delagain "$(netconf)" "${CNI_ENV[@]}"
expect_ok delagain "a repeated DEL"
[[ -z "$(ls "$HSTATE"/*.json 2>/dev/null)" ]] || nt_fail "state files left: $(ls "$HSTATE")"
kill -TERM "$HPID"
nt_expect_exit "$HPID" 5000 0 "nfq-holder after SIGTERM"
[[ -e "$HSOCK" ]] && nt_fail "the holder left its socket"
nt_ok
