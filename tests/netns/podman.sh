#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The real runtime: podman (CNI backend, runc) runs busybox containers
# from a local rootfs on two test networks whose conflists chain bridge +
# host-local → nfq-cni with "holder". A real nfq-broker decides UDP sent
# from the host to the container: port 5001 accepted, 5002 dropped by the
# policy (iptables -j NFQUEUE in the container's namespace). Checked: a
# container served after `podman run`; one on two networks, one of them
# disconnected (the other still served, the same agent); the agent killed
# (restarted by the holder); the broker killed and restarted (datagrams
# sent meanwhile delivered); the holder killed and restarted (agents
# adopted); the runtime's cgroup (podman running attached) emptied with
# SIGKILL (pods still served); `podman rm` ending the agent; and 20
# create/remove cycles leaking nothing (processes, state files, fds of
# broker and holder, namespaces, iptables rules).
# Everything podman uses is test-owned: containers.conf (CONTAINERS_CONF),
# storage (CONTAINERS_STORAGE_CONF), network configs and plugin dirs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init podman
bk_init

command -v podman >/dev/null || nt_skip "podman not installed (apt-get install podman)"
command -v runc >/dev/null || nt_skip "runc not installed (apt-get install runc)"
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || nt_skip "busybox-static not installed"
for p in bridge host-local; do
	[[ -x /usr/lib/cni/$p ]] || nt_skip "/usr/lib/cni/$p missing (apt-get install containernetworking-plugins)"
done
command -v python3 >/dev/null || nt_skip "python3 not installed"
CNI=$(nt_bin nfq-cni)
HOLDER=$BUILD/holder/nfq-holder
[[ -x "$HOLDER" ]] || nt_fail "nfq-holder not built at $HOLDER"
UDP=$(nt_bin udp-tool)

T=$NT_TMP/podman
S=$(($$ % 100000))
PFX=nfqp$S               # container names, bridges (<= 15 bytes with a suffix)
NET1=$PFX-net1 NET2=$PFX-net2
HSTATE=$T/holder-state
HSOCK=$NT_TMP/run/holder.sock
ROOTFS=$T/rootfs
mkdir -p "$T"/{cnibin,net.d,root,runroot,tmp} "$ROOTFS"/{bin,proc,sys,dev,etc,tmp}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
ln -s busybox "$ROOTFS/bin/sleep"
ln -s busybox "$ROOTFS/bin/sh"
ln -s busybox "$ROOTFS/bin/true"
ln -s "$CNI" "$T/cnibin/nfq-cni"

# Two /24s no route of this machine uses.
subnet_free() { ! ip -4 route show | grep -q "^$1\\."; }
SUB=()
for ((i = 0; i < 200 && ${#SUB[@]} < 2; i++)); do
	c=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
	subnet_free "$c" && SUB+=("$c")
done
((${#SUB[@]} == 2)) || nt_fail "no free 10.x.y.0/24 found"

cat >"$T/containers.conf" <<EOC
[containers]
default_ulimits = ["nofile=4096:8192","nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/tmp"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$T/cnibin", "/usr/lib/cni"]
network_config_dir = "$T/net.d"
EOC
cat >"$T/storage.conf" <<EOC
[storage]
driver = "vfs"
graphroot = "$T/root"
runroot = "$T/runroot"
EOC
export CONTAINERS_CONF=$T/containers.conf CONTAINERS_STORAGE_CONF=$T/storage.conf
netconf() { # NAME BRIDGE SUBNET
	cat >"$T/net.d/$1.conflist" <<EOC
{ "cniVersion": "1.0.0", "name": "$1", "plugins": [
  { "type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false,
    "ipam": { "type": "host-local", "ranges": [ [ { "subnet": "$3.0/24" } ] ], "dataDir": "$T/ipam" } },
  { "type": "nfq-cni", "broker": "$BK_SOCK", "holder": "$HSOCK", "attach_timeout_ms": 8000 }
] }
EOC
}
netconf "$NET1" "${PFX}a" "${SUB[0]}"
netconf "$NET2" "${PFX}b" "${SUB[1]}"

pm() { timeout -k 5 60 podman "$@"; }
teardown() {
	local ids m
	ids=$(podman ps -aq --filter "name=^$PFX" 2>/dev/null) || true
	# shellcheck disable=SC2086
	[[ -n "$ids" ]] && timeout 60 podman rm -f -t 0 $ids
	ip link del "${PFX}a" 2>/dev/null
	ip link del "${PFX}b" 2>/dev/null
	rm -rf "/var/lib/cni/networks/$NET1" "/var/lib/cni/networks/$NET2"
	for m in $(findmnt -rn -o TARGET | grep "^$T/" | sort -r); do umount -l "$m"; done
	return 0
}
nt_defer teardown

# Kill agents a failing test leaves (the holder leaves them by design).
nt_defer "bk_kill_recorded_agents $(printf %q "$HSTATE")"

# Can podman run a container here at all? Otherwise skip, saying why.
if ! pm run --rm --network none --rootfs "$ROOTFS" /bin/true >"$NT_TMP/probe.out" 2>&1; then
	nt_skip "podman cannot run a container here: $(tail -n 3 "$NT_TMP/probe.out" | tr '\n' ' ')"
fi

bk_config "\"namespaces\": [ { \"name\": \"$PFX-*\", \"queues\": [3], \"policy\": \"web\" } ],
  \"policies\": { \"web\": { \"default\": \"drop\",
    \"rules\": [ { \"name\": \"p5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" } ] } }"
holder_start() { # NAME
	nt_spawn HPID "$1" "$HOLDER" --socket "$HSOCK" --state-dir "$HSTATE" --agent "$BK_AGENT" --verbose
	HLOG=$(nt_err "$1")
	nt_wait_ready "$HPID" "$HLOG" 'event=started '
}

json_get() {
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && [[ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat")" != Z ]]; }
cid_of() { pm inspect -f '{{.Id}}' "$1"; }
agent_of() { json_get "$HSTATE/$(cid_of "$1").json" pid; }
ns_of() { basename "$(pm inspect -f '{{.NetworkSettings.SandboxKey}}' "$1")"; }
ip_of() { pm inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$1"; }
new_agent() { # CTR OLD_PID
	local p
	p=$(agent_of "$1" 2>/dev/null) || return 1
	[[ -n "$p" && "$p" != "$2" ]] && alive "$p"
}

# ctr_run NAME NETWORKS [podman run options] - a detached busybox whose
# namespace queues UDP 5001/5002 to the broker.
ctr_run() {
	local name=$1 nets=$2 ns
	shift 2
	pm run -d --name "$name" --network "$nets" "$@" --rootfs "$ROOTFS" /bin/sleep 600 >/dev/null ||
		nt_fail "podman run $name failed"
	ns=$(ns_of "$name")
	nt_ipt "$ns" -A INPUT -p udp --dport 5001 -j NFQUEUE --queue-num 3
	nt_ipt "$ns" -A INPUT -p udp --dport 5002 -j NFQUEUE --queue-num 3
}
N=0
# expect_udp CTR NET PORT EXPECTED WHAT - 5 datagrams from the host to the
# container's address on NET.
expect_udp() {
	local ns ip rp
	ns=$(ns_of "$1")
	ip=$(ip_of "$1" "$2")
	N=$((N + 1))
	nt_udp_recv rp "recv$N" "$ns" "$ip" "$3" 5 1500
	nt_run_ok "send$N" 20000 "$UDP" send "$ip" "$3" --count 5
	nt_wait_pid "$rp" 5000
	nt_assert_eq "$4" "$(nt_udp_summary "recv$N" received)" "$5: datagrams to $1 ($ip) port $3"
}
served() { # CTR NET WHAT
	expect_udp "$1" "$2" 5001 5 "$3 (p5001: accept)"
	expect_udp "$1" "$2" 5002 0 "$3 (default: drop)"
}

nt_sub start
bk_start broker1
holder_start holder1
ctr_run "$PFX-a" "$NET1"
A=$(agent_of "$PFX-a")
alive "$A" || nt_fail "no agent for $PFX-a"
nt_assert_eq "$HPID" "$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$A/stat")" "the agent's parent is the holder"
nt_assert_grep "$BK_LOG" "event=attach name=$PFX-a .*agent_pid=$A .*policy=web queues=3 " "attach named by the container name"
served "$PFX-a" "$NET1" "after podman run"
nt_ok

nt_sub two-networks
ctr_run "$PFX-b" "$NET1,$NET2"
B=$(agent_of "$PFX-b")
nt_assert_eq 2 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["attachments"]))' "$HSTATE/$(cid_of "$PFX-b").json")" "attachments of $PFX-b"
served "$PFX-b" "$NET2" "on the second network"
pm network disconnect "$NET2" "$PFX-b" || nt_fail "podman network disconnect failed"
alive "$B" || nt_fail "disconnecting one network ended the agent serving the other"
nt_assert_eq "$B" "$(agent_of "$PFX-b")" "the same agent after the disconnect"
served "$PFX-b" "$NET1" "on the first network after the second was disconnected"
nt_ok

nt_sub agent-kill
kill -KILL "$A"
nt_wait_for 5000 "the holder to restart the agent" new_agent "$PFX-a" "$A"
A=$(agent_of "$PFX-a")
bk_wait_attach "$PFX-a" 2
served "$PFX-a" "$NET1" "after the agent was killed"
nt_ok

nt_sub broker-kill
kill -KILL "$BK_PID"
wait "$BK_PID" 2>/dev/null || true
nsa=$(ns_of "$PFX-a") ipa=$(ip_of "$PFX-a" "$NET1")
nt_udp_recv RP queued "$nsa" "$ipa" 5001 5 15000
nt_run_ok sendq 20000 "$UDP" send "$ipa" 5001 --count 5
bk_start broker2
bk_wait_attach "$PFX-a"
nt_wait_pid "$RP" 15000
nt_assert_eq 5 "$(nt_udp_summary queued received)" "datagrams sent while the broker was down, accepted after its restart"
nt_assert_eq "$A" "$(agent_of "$PFX-a")" "the same agent after the broker's restart"
served "$PFX-b" "$NET1" "the other container after the broker's restart"
nt_ok

nt_sub holder-kill
kill -KILL "$HPID"
wait "$HPID" 2>/dev/null || true
alive "$A" && alive "$B" || nt_fail "an agent died with the holder"
holder_start holder2
nt_assert_grep "$HLOG" "event=agent_adopted cid=$(cid_of "$PFX-a") .*pid=$A$" "agent of $PFX-a adopted"
nt_assert_grep "$HLOG" "event=agent_adopted cid=$(cid_of "$PFX-b") .*pid=$B$" "agent of $PFX-b adopted"
served "$PFX-a" "$NET1" "after the holder's restart"
nt_ok

# The runtime restarted: podman (attached, so it stays) runs in a cgroup
# that is then emptied with SIGKILL, as a service manager restarting the
# runtime does. Nothing of the pod's lives there.
nt_sub runtime-cgroup
bk_runtime_cgroup "nt-podman-$NT_ID" || nt_fail "cannot create a cgroup for the runtime"
sh -c 'echo $$ >"$1/cgroup.procs" && exec timeout -k 5 120 podman run --name "$2" --network "$3" --rootfs "$4" /bin/sleep 600' \
	sh "$CG" "$PFX-c" "$NET1" "$ROOTFS" >"$NT_TMP/podman-c.out" 2>&1 &
RT=$!
running() { [[ "$(pm inspect -f '{{.State.Running}}' "$PFX-c" 2>/dev/null)" == true ]] && [[ -e "$HSTATE/$(cid_of "$PFX-c").json" ]]; }
nt_wait_for 30000 "$PFX-c running" running
C=$(agent_of "$PFX-c")
nt_wait_for 5000 "$PFX-c's agent attached" nt__file_has "$HSTATE/$(cid_of "$PFX-c").status" '^state=attached$'
grep -qx "$C" "$CG/cgroup.procs" && nt_fail "the agent lives in the runtime's cgroup"
nsc=$(ns_of "$PFX-c")
nt_ipt "$nsc" -A INPUT -p udp --dport 5001 -j NFQUEUE --queue-num 3
nt_ipt "$nsc" -A INPUT -p udp --dport 5002 -j NFQUEUE --queue-num 3
[[ -n "$(cat "$CG/cgroup.procs")" ]] || nt_fail "podman is not in the runtime's cgroup"
bk_cgroup_kill_all "$CG" || nt_fail "the runtime's cgroup did not empty"
wait "$RT" 2>/dev/null || true
alive "$A" && alive "$B" && alive "$C" || nt_fail "an agent died with the runtime's cgroup"
served "$PFX-c" "$NET1" "the container started by the killed runtime"
served "$PFX-a" "$NET1" "an older container after the runtime was killed"
nt_ok

nt_sub remove
for c in a b c; do
	cid=$(cid_of "$PFX-$c")
	p=$(agent_of "$PFX-$c")
	pm rm -f -t 0 "$PFX-$c" >/dev/null || nt_fail "podman rm $PFX-$c failed"
	nt_wait_for 5000 "agent $p of $PFX-$c to exit" nt__dead "$p"
	[[ -e "$HSTATE/$cid.json" ]] && nt_fail "state of $PFX-$c left after podman rm"
done
bk_wait_log "event=release name=$PFX-a .*reason=\"agent said bye\""
nt_ok

# 20 create/remove cycles: nothing grows.
nt_sub cycles
agents() { { pgrep -f -- "--broker $BK_SOCK " || true; } | wc -l; }
snapshot() {
	echo "agents=$(agents) holder_fds=$(ls "/proc/$HPID/fd" | wc -l) broker_fds=$(ls "/proc/$BK_PID/fd" | wc -l)" \
		"state=$(find "$HSTATE" -maxdepth 1 -type f | wc -l) netns=$(ip netns list | grep -c '^netns-' || true)" \
		"ipt=$(iptables-save | grep -v '^[#:]' | grep -c "$PFX\|${SUB[0]}\|${SUB[1]}" || true)"
}
before=$(snapshot)
nt_log "before: $before"
for i in $(seq 1 20); do
	pm run -d --name "$PFX-cyc" --network "$NET1" --rootfs "$ROOTFS" /bin/sleep 600 >/dev/null ||
		nt_fail "cycle $i: podman run failed"
	[[ $i == 1 ]] && { p=$(agent_of "$PFX-cyc"); alive "$p" || nt_fail "cycle 1: no agent"; }
	pm rm -f -t 0 "$PFX-cyc" >/dev/null || nt_fail "cycle $i: podman rm failed"
done
nt_wait_for 5000 "every cycle's agent to exit" test "$(agents)" -eq 0
nt_assert_eq "$before" "$(snapshot)" "processes, fds, state files, namespaces, iptables rules after 20 cycles"
[[ -z "$(ls "$T/ipam/$NET1" 2>/dev/null | grep -v '^last_reserved_ip\|^lock$')" ]] ||
	nt_fail "addresses still reserved after the cycles: $(ls "$T/ipam/$NET1")"
[[ -z "$(ls /var/lib/cni/results 2>/dev/null | grep -F "$PFX-")" ]] ||
	nt_fail "libcni's cached results left: $(ls /var/lib/cni/results | grep -F "$PFX-")"
nt_ok
