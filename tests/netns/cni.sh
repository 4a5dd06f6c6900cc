#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nfq-cni, called exactly as a container runtime calls a chained plugin: a
# clean environment with the CNI_* variables, the netconf (with a
# prevResult) on stdin, the result or error object read from stdout. A
# real broker serves "kube-system/*" names; traffic in the pod namespace is
# decided by it once ADD returned. Checked: VERSION, ADD passing prevResult
# through unchanged, the agent detached from the runtime's pipes, readiness
# from its status file, CHECK (also while the broker is away and after it
# came back), two networks on one container (DEL of one keeps the other
# served), 0.3.1 and STATUS, DEL ending the lease (idempotent) and keeping
# the agent's log, GC, exclusions, the container-id name rule, the agent
# found through CNI_PATH, beside a symlinked plugin and in PATH, and every
# error class (no broker, refusal, bad netns, bad JSON, bad version, bad
# environment, bad keys) leaving no agent and no state behind.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init cni
bk_init

CNI=$(nt_bin nfq-cni)
command -v python3 >/dev/null || nt_skip "python3 not installed"
STATE=$NT_TMP/state
RUNTIME_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
POD=web-$NT_ID
K8S_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=$POD;K8S_POD_INFRA_CONTAINER_ID=x"
CID=c${NT_ID//-/}a
CID2=c${NT_ID//-/}b

nt_ns_new NS_A pod
nt_ns_new NS_B cid
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_A" 1 5002
bk_queue_rule "$NS_B" 2 5001

bk_config '"namespaces": [
    { "name": "kube-system/*", "queues": [1], "policy": "web" },
    { "name": "c*", "queues": [2], "policy": "allow" }
  ],
  "policies": {
    "allow": { "default": "accept", "rules": [] },
    "web": { "default": "drop",
             "rules": [ { "name": "p5001", "match": { "proto": "udp", "dport": 5001 }, "verdict": "accept" } ] }
  }'

# What the bridge plugin before us would have returned.
PREV='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:01","sandbox":"/run/netns/x"}],"ips":[{"address":"10.22.0.5/24","gateway":"10.22.0.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.96.0.10"]}}'

# netconf [EXTRA_KEYS] - a chained plugin's netconf as libcni passes it.
netconf() {
	printf '{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"nfq-cni","broker":"%s","agent":"%s","state_dir":"%s","attach_timeout_ms":5000,"runtimeConfig":{},"prevResult":%s%s}' \
		"$BK_SOCK" "$BK_AGENT" "$STATE" "$PREV" "${1:+,$1}"
}

# cni NAME NETCONF VAR=VALUE... - run the plugin with only VAR=VALUE (and
# PATH) in its environment and NETCONF on stdin; stdout through a pipe
# that must reach EOF (an agent holding it would hang the runtime).
# NT_RC is the plugin's exit status; output in $(nt_out NAME).
cni() {
	local name=$1 conf=$2
	shift 2
	nt__addlog "$NT_TMP/$name.out"
	nt__addlog "$NT_TMP/$name.err"
	rm -f "$NT_TMP/$name.rc"
	if ! printf '%s' "$conf" | {
		rc=0
		env -i PATH="$RUNTIME_PATH" "$@" timeout -k 1 30 "$CNI" 2>"$NT_TMP/$name.err" || rc=$?
		echo "$rc" >"$NT_TMP/$name.rc"
	} | timeout 20 cat >"$NT_TMP/$name.out"; then
		nt_fail "$name: stdout of nfq-cni not closed within 20 s (an agent holds it?)"
	fi
	NT_RC=$(cat "$NT_TMP/$name.rc")
}

# cni_env CMD CID [NETNS] [ARGS] - the runtime's variables for one call.
cni_env() {
	CNI_ENV=("CNI_COMMAND=$1" "CNI_CONTAINERID=$2" "CNI_IFNAME=eth0" "CNI_PATH=/opt/cni/bin")
	[[ -n "${3:-}" ]] && CNI_ENV+=("CNI_NETNS=$3")
	[[ -n "${4:-}" ]] && CNI_ENV+=("CNI_ARGS=$4")
	return 0
}

# json_get FILE KEY - a top-level value of a JSON file (strings unquoted).
json_get() {
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}

# json_same FILE JSON - same keys, same order, same values.
json_same() {
	python3 -c '
import json, sys
a = json.load(open(sys.argv[1]), object_pairs_hook=list)
b = json.loads(sys.argv[2], object_pairs_hook=list)
sys.exit(0 if a == b else 1)' "$1" "$2"
}

# expect_error NAME CODE MSG_REGEX [VERSION] - the call failed with a CNI
# error object in VERSION (default 1.0.0, the netconf's).
expect_error() {
	local out
	out=$(nt_out "$1")
	nt_assert_eq 1 "$NT_RC" "$1: exit status"
	nt_assert_lines "$out" '.' 1 "$1: one line on stdout"
	nt_assert_eq "$2" "$(json_get "$out" code)" "$1: error code ($(cat "$out"))"
	nt_assert_eq "${4:-1.0.0}" "$(json_get "$out" cniVersion)" "$1: cniVersion of the error"
	[[ "$(json_get "$out" msg)" =~ $3 ]] || nt_fail "$1: msg '$(json_get "$out" msg)' does not match '$3'"
}

# agents_named NAME - pids of processes whose argv has "--name NAME".
agents_named() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$1" &&
			tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "--name $1 " &&
			echo "${p#/proc/}"
	done
	return 0
}

expect_no_agent() {
	local left
	left=$(agents_named "$1")
	[[ -z "$left" ]] || nt_fail "$2: agent(s) named $1 still running: $left"
}

expect_no_state() {
	local left
	left=$(find "$STATE" -mindepth 1 -maxdepth 1 -name "$1*" 2>/dev/null)
	[[ -z "$left" ]] || nt_fail "$2: state left behind: $left"
}

# pid_gone PID - PID exited (a zombie waiting for init to reap it counts).
pid_gone() {
	local st
	st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[[ -z "$st" || "$st" == Z ]]
}

state_pid() {
	json_get "$STATE/$1.json" pid
}

# Kill whatever agent a failing test leaves (its pid is in the state dir).
nt_defer "bk_kill_recorded_agents $(printf %q "$STATE")"

# ---------------------------------------------------------------- version
nt_sub version
cni version "" CNI_COMMAND=VERSION
nt_assert_eq 0 "$NT_RC" "VERSION: exit status"
nt_assert_eq '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}' "$(cat "$(nt_out version)")" "VERSION output"
cni version031 '{"cniVersion":"0.3.1","name":"n","type":"nfq-cni"}' CNI_COMMAND=VERSION
nt_assert_eq '{"cniVersion":"0.3.1","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}' "$(cat "$(nt_out version031)")" "VERSION answers in the netconf's version"
nt_run cliversion 5000 "$CNI" --version
nt_assert_eq "nfq-cni 0.1.0" "$(cat "$(nt_out cliversion)")" "--version output"
nt_run clihelp 5000 "$CNI" --help
nt_assert_eq 0 "$NT_RC" "--help exit status"
nt_assert_grep "$(nt_out clihelp)" '^Usage: nfq-cni' "--help text"
nt_ok

# ---------------------------------------------------------------- bad input
nt_sub bad-input
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni nocmd "$(netconf)" "${CNI_ENV[@]:1}"
expect_error nocmd 4 '^CNI_COMMAND is not set$'
cni badcmd "$(netconf)" CNI_COMMAND=FROB "${CNI_ENV[@]:1}"
expect_error badcmd 4 'unknown command "FROB"'
cni badjson '{"cniVersion":"1.0.0", "name": ' "${CNI_ENV[@]}"
expect_error badjson 6 '^netconf: invalid JSON: ' 1.1.0
cni trailing "$(netconf) {}" "${CNI_ENV[@]}"
expect_error trailing 6 'trailing data' 1.1.0
cni notobj '[1,2]' "${CNI_ENV[@]}"
expect_error notobj 6 'not a JSON object' 1.1.0
cni oldver '{"cniVersion":"0.2.0","name":"n","type":"nfq-cni"}' "${CNI_ENV[@]}"
expect_error oldver 1 'version "0.2.0" not supported' 1.1.0
cni nover '{"name":"n","type":"nfq-cni"}' "${CNI_ENV[@]}"
expect_error nover 7 'cniVersion: missing' 1.1.0
cni brokertype "$(netconf '"broker":5' | sed 's/"broker":"[^"]*",//')" "${CNI_ENV[@]}"
expect_error brokertype 7 '^netconf\.broker: must be a string$'
cni brokerrel "$(netconf | sed 's|"broker":"[^"]*"|"broker":"agent.sock"|')" "${CNI_ENV[@]}"
expect_error brokerrel 7 'netconf\.broker: "agent.sock" is not an absolute path'
cni noagent "$(netconf | sed "s|\"agent\":\"[^\"]*\"|\"agent\":\"$NT_TMP/no-such-agent\"|")" "${CNI_ENV[@]}"
expect_error noagent 7 "netconf\\.agent: .*no-such-agent: No such file or directory"
cni badtimeout "$(netconf '"attach_timeout_ms":"soon"' | sed 's/"attach_timeout_ms":5000,//')" "${CNI_ENV[@]}"
expect_error badtimeout 7 'attach_timeout_ms: must be an integer'
cni badprev "$(netconf | sed 's/"prevResult":{.*}}$/"prevResult":[1]}/')" "${CNI_ENV[@]}"
expect_error badprev 7 'prevResult: must be an object'
cni nonetns "$(netconf)" CNI_COMMAND=ADD CNI_CONTAINERID="$CID" CNI_IFNAME=eth0
expect_error nonetns 4 '^CNI_NETNS is not set$'
cni nocid "$(netconf)" CNI_COMMAND=ADD CNI_NETNS="$(nt_ns_path "$NS_A")" CNI_IFNAME=eth0
expect_error nocid 4 '^CNI_CONTAINERID is not set$'
cni badcid "$(netconf)" CNI_COMMAND=ADD CNI_CONTAINERID=../../etc CNI_NETNS="$(nt_ns_path "$NS_A")" CNI_IFNAME=eth0
expect_error badcid 4 'not a valid container id'
cni badargs "$(netconf)" "${CNI_ENV[@]:0:5}" "CNI_ARGS=K8S_POD_NAME"
expect_error badargs 4 'CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE'
cni badname "$(netconf)" "${CNI_ENV[@]:0:5}" "CNI_ARGS=K8S_POD_NAMESPACE=$(printf 'n%.0s' {1..200});K8S_POD_NAME=$(printf 'x%.0s' {1..200})"
expect_error badname 4 'K8S_POD_NAMESPACE/K8S_POD_NAME: longer than'
cni noname "$(netconf | sed 's/"name":"k8s-pod-network",//')" "${CNI_ENV[@]}"
expect_error noname 7 '^netconf\.name: missing$'
cni badnetns "$(netconf)" CNI_COMMAND=ADD CNI_CONTAINERID="$CID" CNI_NETNS="$NT_TMP/no-such-netns" \
	CNI_IFNAME=eth0 CNI_ARGS="$K8S_ARGS"
expect_error badnetns 1000 'nfq-agent .* exited with status 1'
[[ "$(json_get "$(nt_out badnetns)" details)" == *'no-such-netns'* ]] ||
	nt_fail "badnetns: details do not name the namespace: $(cat "$(nt_out badnetns)")"
expect_no_agent "kube-system/$POD" "after the bad input"
expect_no_state "$CID" "after the bad input"
nt_ok

# ---------------------------------------------------------------- no broker
nt_sub no-broker
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni nobroker "$(netconf | sed 's/"attach_timeout_ms":5000/"attach_timeout_ms":1500/')" "${CNI_ENV[@]}"
expect_error nobroker 11 "^broker not reachable at ${BK_SOCK//./\\.}: waited 1500 ms, the agent made [1-9][0-9]* attempts?$"
nt_assert_grep "$(nt_out nobroker)" '"details":"no broker socket at ' "no broker: the agent's last error as details"
cni_env STATUS "$CID"
cni statusdown "$(netconf | sed 's/"cniVersion":"1.0.0"/"cniVersion":"1.1.0"/')" "${CNI_ENV[@]:0:1}"
expect_error statusdown 50 "^broker not reachable at ${BK_SOCK//./\\.}: " 1.1.0
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
expect_no_agent "kube-system/$POD" "after ADD without a broker"
expect_no_state "$CID" "after ADD without a broker"
nt_ok

# ---------------------------------------------------------------- add
nt_sub add
bk_start broker1
cni add "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD: exit status ($(cat "$(nt_out add)"))"
nt_assert_lines "$(nt_out add)" '.' 1 "ADD: one line on stdout"
json_same "$(nt_out add)" "$PREV" || nt_fail "ADD did not print the prevResult unchanged: $(cat "$(nt_out add)")"
[[ -s "$(nt_err add)" ]] && nt_fail "ADD wrote to stderr: $(cat "$(nt_err add)")"
[[ -f "$STATE/$CID.json" ]] || nt_fail "no state file $STATE/$CID.json"
AGENT=$(state_pid "$CID")
nt_assert_eq "kube-system/$POD" "$(json_get "$STATE/$CID.json" name)" "name in the state file"
nt_assert_grep "$BK_LOG" "event=attach name=kube-system/$POD netns_inode=$(nt_ns_ino "$NS_A") agent_pid=$AGENT .*policy=web queues=1 " \
	"broker attach line"
nt_assert_eq "$AGENT" "$(agents_named "kube-system/$POD")" "the one agent running"
# detached from the runtime: own session, no fd of the plugin's caller
nt_assert_eq /dev/null "$(readlink "/proc/$AGENT/fd/0")" "agent stdin"
nt_assert_eq /dev/null "$(readlink "/proc/$AGENT/fd/1")" "agent stdout"
nt_assert_eq "$STATE/$CID.log" "$(readlink "/proc/$AGENT/fd/2")" "agent stderr"
nt_assert_eq "$AGENT" "$(awk '{ sub(/.*\) /, ""); print $4 }' "/proc/$AGENT/stat")" "agent session id"
nt_assert_ne "$$" "$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$AGENT/stat")" "agent parent"
nt_ok

nt_sub verdicts
nt_wait_queue "$NS_A" 1
bk_expect_traffic "$NS_A" 5001 10 10 "pod port 5001 (rule p5001: accept)"
bk_expect_traffic "$NS_A" 5002 10 0 "pod port 5002 (policy web default: drop)"
bk_expect_stats "kube-system/$POD" "after traffic" packets=20 accept=10 drop=10
nt_ok

# ---------------------------------------------------------------- check
nt_sub check
cni_env CHECK "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni check "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "CHECK: exit status ($(cat "$(nt_out check)"))"
[[ -s "$(nt_out check)" ]] && nt_fail "CHECK printed something: $(cat "$(nt_out check)")"
cni_env CHECK "$CID" "$(nt_ns_path "$NS_B")" "$K8S_ARGS"
cni checkns "$(netconf)" "${CNI_ENV[@]}"
expect_error checkns 1002 "serves .*, not CNI_NETNS "
cni_env CHECK "unknown$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni checkunknown "$(netconf)" "${CNI_ENV[@]}"
expect_error checkunknown 1002 "^no agent recorded for container unknown$CID$"
# a repeated ADD reuses the running agent
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni add2 "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "second ADD: exit status ($(cat "$(nt_out add2)"))"
json_same "$(nt_out add2)" "$PREV" || nt_fail "second ADD output: $(cat "$(nt_out add2)")"
nt_assert_eq "$AGENT" "$(state_pid "$CID")" "agent pid after a second ADD"
nt_assert_lines "$BK_LOG" "event=attach name=kube-system/$POD " 1 "attaches after a second ADD"
nt_ok

# ---------------------------------------------------------------- two networks, versions, STATUS
# One container on two networks: one agent, two attachments; DEL of one
# keeps the other served. Readiness came from the agent's status file.
nt_sub two-networks
nt_assert_grep "$STATE/$CID.status" '^state=attached$' "the agent's status file"
netconf2() { netconf | sed 's/"name":"k8s-pod-network"/"name":"second-net"/'; }
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
CNI_ENV[2]=CNI_IFNAME=eth1
cni addnet2 "$(netconf2)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD on a second network: exit status ($(cat "$(nt_out addnet2)"))"
nt_assert_eq "$AGENT" "$(state_pid "$CID")" "one agent for both networks"
nt_assert_eq 2 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["attachments"]))' "$STATE/$CID.json")" "attachments recorded"
CNI_ENV[0]=CNI_COMMAND=DEL
cni delnet2 "$(netconf2)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "DEL of the second network: exit status ($(cat "$(nt_out delnet2)"))"
kill -0 "$AGENT" || nt_fail "DEL of one network ended the agent serving the other"
CNI_ENV[0]=CNI_COMMAND=CHECK
cni checknet2 "$(netconf2)" "${CNI_ENV[@]}"
expect_error checknet2 1002 "^container $CID has no attachment on network second-net interface eth1$"
cni_env CHECK "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni checknet1 "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "CHECK of the first network after the second's DEL ($(cat "$(nt_out checknet1)"))"
bk_expect_traffic "$NS_A" 5001 5 5 "pod port 5001 after the second network's DEL"
nt_assert_lines "$BK_LOG" "event=release name=kube-system/$POD " 0 "releases after one network's DEL"
nt_ok

nt_sub versions
cni check031 "$(netconf | sed 's/"cniVersion":"1.0.0"/"cniVersion":"0.3.1"/')" "${CNI_ENV[@]}"
expect_error check031 1 '^CHECK needs cniVersion 0.4.0 or later, the netconf has 0.3.1$' 0.3.1
cni_env ADD "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni add031 "$(netconf | sed 's/"cniVersion":"1.0.0"/"cniVersion":"0.3.1"/')" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD with 0.3.1: exit status ($(cat "$(nt_out add031)"))"
nt_assert_eq 0.3.1 "$(json_get "$(nt_out add031)" cniVersion)" "ADD 0.3.1: result version"
nt_assert_eq 4 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["version"])' "$(nt_out add031)")" "ADD 0.3.1: ips[].version of a 0.3.x result"
nt_assert_eq "$AGENT" "$(state_pid "$CID")" "agent pid after an ADD in 0.3.1"
cni_env STATUS "$CID"
cni statusup "$(netconf | sed 's/"cniVersion":"1.0.0"/"cniVersion":"1.1.0"/')" "${CNI_ENV[@]:0:1}"
nt_assert_eq 0 "$NT_RC" "STATUS with the broker up ($(cat "$(nt_out statusup)"))"
[[ -s "$(nt_out statusup)" ]] && nt_fail "STATUS printed something: $(cat "$(nt_out statusup)")"
nt_ok

# ---------------------------------------------------------------- broker away
nt_sub broker-away
bk_stop
cni_env CHECK "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
check_fails() {
	cni checkaway "$(netconf)" "${CNI_ENV[@]}"
	[[ "$NT_RC" != 0 ]]
}
nt_wait_for 5000 "CHECK to fail with the broker gone" check_fails
expect_error checkaway 1002 "\\(pid $AGENT\\) is not attached to the broker"
bk_start broker2
bk_wait_attach "kube-system/$POD" 1 10000
check_ok() {
	cni checkback "$(netconf)" "${CNI_ENV[@]}"
	[[ "$NT_RC" == 0 ]]
}
nt_wait_for 5000 "CHECK to pass after the broker came back" check_ok
nt_assert_eq "$AGENT" "$(state_pid "$CID")" "agent pid after the broker came back"
nt_wait_queue "$NS_A" 1
bk_expect_traffic "$NS_A" 5002 5 0 "pod port 5002 after the broker came back"
bk_expect_traffic "$NS_A" 5001 5 5 "pod port 5001 after the broker came back"
nt_ok

# ---------------------------------------------------------------- refused
nt_sub refused
cni_env ADD "$CID2" "$(nt_ns_path "$NS_B")" "K8S_POD_NAMESPACE=other;K8S_POD_NAME=$POD"
cni refused "$(netconf)" "${CNI_ENV[@]}"
expect_error refused 999 "^broker refused the agent: no namespaces entry matches name \"other/$POD\"$"
expect_no_agent "other/$POD" "after a refusal"
expect_no_state "$CID2" "after a refusal"
kill -0 "$AGENT" || nt_fail "the first agent died during a refusal"
nt_ok

# ---------------------------------------------------------------- container id name, PATH lookup
nt_sub cid-name
cni_env ADD "$CID2" "$(nt_ns_path "$NS_B")"
cni addcid "$(netconf | sed 's|"agent":"[^"]*",||')" PATH="$(dirname "$BK_AGENT"):$RUNTIME_PATH" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD named by container id, agent from PATH: exit status ($(cat "$(nt_out addcid)"))"
AGENT2=$(state_pid "$CID2")
nt_assert_grep "$BK_LOG" "event=attach name=$CID2 .*agent_pid=$AGENT2 .*policy=allow queues=2 " "attach named by container id"
nt_wait_queue "$NS_B" 2
bk_expect_traffic "$NS_B" 5001 5 5 "container-id-named namespace"
# DEL without CNI_NETNS (the namespace may be gone by then)
cni_env DEL "$CID2"
cni delcid "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "DEL without CNI_NETNS: exit status ($(cat "$(nt_out delcid)"))"
bk_wait_log "event=release name=$CID2 .*reason=\"agent said bye\""
pid_gone "$AGENT2" || nt_fail "agent $AGENT2 still runs after DEL"
expect_no_state "$CID2" "after DEL"
nt_ok

# ---------------------------------------------------------------- agent lookup
# Without "agent": CNI_PATH first, then beside the plugin's real file (the
# plugin reached through a symlink, as in /opt/cni/bin).
nt_sub lookup
REAL=$NT_TMP/real LINKS=$NT_TMP/cnibin CNIDIR=$NT_TMP/cnipath
mkdir -p "$REAL" "$LINKS" "$CNIDIR"
cp "$CNI" "$REAL/nfq-cni"
ln -s "$BK_AGENT" "$REAL/nfq-agent"
ln -s "$REAL/nfq-cni" "$LINKS/nfq-cni"
ln -s "$BK_AGENT" "$CNIDIR/nfq-agent"
argv0() { tr '\0' '\n' <"/proc/$1/cmdline" | head -n 1; }
lookup_add() { # NAME CNI_PATH PLUGIN - ADD and DEL; prints the agent's argv[0]
	local saved=$CNI
	cni_env ADD "$CID2" "$(nt_ns_path "$NS_B")"
	CNI_ENV[3]="CNI_PATH=$2"
	CNI=$3
	cni "$1" "$(netconf | sed 's|"agent":"[^"]*",||')" "${CNI_ENV[@]}"
	CNI=$saved
	nt_assert_eq 0 "$NT_RC" "$1: exit status ($(cat "$(nt_out "$1")"))"
	LOOKUP_ARGV0=$(argv0 "$(state_pid "$CID2")")
	CNI_ENV[0]=CNI_COMMAND=DEL
	cni "$1-del" "$(netconf)" "${CNI_ENV[@]}"
	nt_assert_eq 0 "$NT_RC" "$1: DEL"
}
lookup_add addlink /nonexistent "$LINKS/nfq-cni"
nt_assert_eq "$REAL/nfq-agent" "$LOOKUP_ARGV0" "agent beside the symlinked plugin's real file"
lookup_add addcnipath "/nonexistent:$CNIDIR" "$LINKS/nfq-cni"
nt_assert_eq "$CNIDIR/nfq-agent" "$LOOKUP_ARGV0" "agent from CNI_PATH before the plugin's directory"
expect_no_state "$CID2" "after the lookups"
nt_ok

# ---------------------------------------------------------------- exclusions
nt_sub exclusions
CID3=c${NT_ID//-/}x
cni_env ADD "$CID3" "$(nt_ns_path "$NS_B")" "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=skip-$NT_ID"
cni exclns "$(netconf '"exclude_namespaces":["kube-system"]')" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD of an excluded namespace: exit status ($(cat "$(nt_out exclns)"))"
json_same "$(nt_out exclns)" "$PREV" || nt_fail "excluded ADD did not pass prevResult: $(cat "$(nt_out exclns)")"
expect_no_agent "kube-system/skip-$NT_ID" "after an excluded ADD"
expect_no_state "$CID3" "after an excluded ADD"
cni_env ADD "$CID3" "$(nt_ns_path "$NS_B")" "K8S_POD_NAME=skip-$NT_ID"
cni exclpod "$(netconf '"exclude_pods":["skip-*"]')" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD of an excluded pod (K8S_POD_NAME only): exit status ($(cat "$(nt_out exclpod)"))"
expect_no_agent "skip-$NT_ID" "after an excluded pod's ADD"
expect_no_state "$CID3" "after an excluded pod's ADD"
CNI_ENV[0]=CNI_COMMAND=CHECK
cni exclcheck "$(netconf '"exclude_pods":["skip-*"]')" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "CHECK of an excluded pod ($(cat "$(nt_out exclcheck)"))"
CNI_ENV[0]=CNI_COMMAND=DEL
cni excldel "$(netconf '"exclude_pods":["skip-*"]')" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "DEL of an excluded pod ($(cat "$(nt_out excldel)"))"
kill -0 "$AGENT" || nt_fail "the first agent died during the exclusions"
nt_ok

# ---------------------------------------------------------------- gc
# GC (1.1.0) releases what cni.dev/valid-attachments does not list, and
# only that: the pod it lists keeps its agent.
nt_sub gc
cni_env ADD "$CID2" "$(nt_ns_path "$NS_B")"
cni addgc "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "ADD before GC ($(cat "$(nt_out addgc)"))"
AGENT2=$(state_pid "$CID2")
cni_env GC "$CID2"
cni gc "$(netconf "\"cni.dev/valid-attachments\":[{\"containerID\":\"$CID\",\"ifname\":\"eth0\"}]" | sed 's/"cniVersion":"1.0.0"/"cniVersion":"1.1.0"/')" "${CNI_ENV[@]:0:1}"
nt_assert_eq 0 "$NT_RC" "GC: exit status ($(cat "$(nt_out gc)"))"
bk_wait_log "event=release name=$CID2 .*reason=\"agent said bye\""
pid_gone "$AGENT2" || nt_fail "agent $AGENT2 still runs after GC"
expect_no_state "$CID2" "after GC"
kill -0 "$AGENT" || nt_fail "GC ended the agent of a valid attachment"
nt_assert_lines "$BK_LOG" "event=release name=kube-system/$POD " 0 "releases of the valid pod after GC"
nt_ok

# ---------------------------------------------------------------- del
nt_sub del
cni_env DEL "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni del "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "DEL: exit status ($(cat "$(nt_out del)"))"
[[ -s "$(nt_out del)" ]] && nt_fail "DEL printed something: $(cat "$(nt_out del)")"
bk_wait_log "event=release name=kube-system/$POD .*reason=\"agent said bye\""
pid_gone "$AGENT" || nt_fail "agent $AGENT still runs after DEL"
expect_no_agent "kube-system/$POD" "after DEL"
expect_no_state "$CID" "after DEL"
nt_assert_grep "$STATE/logs/kube-system_$POD.1.log" "event=attached name=kube-system/$POD " "the agent's log kept after DEL"
queue_gone() { ! nt_queue_bound "$NS_A" 1; }
nt_wait_for 5000 "queue 1 of the pod unbound after DEL" queue_gone
cni del2 "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "second DEL: exit status ($(cat "$(nt_out del2)"))"
cni_env DEL "never$CID"
cni delunknown "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "DEL of an unknown container: exit status ($(cat "$(nt_out delunknown)"))"
cni_env CHECK "$CID" "$(nt_ns_path "$NS_A")" "$K8S_ARGS"
cni checkgone "$(netconf)" "${CNI_ENV[@]}"
expect_error checkgone 1002 "^no agent recorded for container $CID$"
# a stale record (dead pid) is dropped by DEL
echo '{"pid":999999999,"starttime":1,"name":"x","netns":"/x","ifname":"eth0"}' >"$STATE/$CID.json"
cni_env DEL "$CID"
cni delstale "$(netconf)" "${CNI_ENV[@]}"
nt_assert_eq 0 "$NT_RC" "DEL of a stale record: exit status"
expect_no_state "$CID" "after DEL of a stale record"
kill -0 "$BK_PID" || nt_fail "the broker died"
nt_ok
