#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Drain comparison of --workers N (a measurement, not a test: not in
# meson.build). Two namespaces, UDP to 127.0.0.1:5001 queued to queue 1 in
# each; per run: SIGSTOP the broker, queue N 64-byte datagrams in each
# namespace (the senders raise SO_SNDBUF: queued packets hold their send
# buffer), SIGCONT, and time until both kernel queues are empty (polled
# every ms from /proc/PID/net of a process in each namespace).
#
#   sudo bench/workers-drain.sh BUILD_DIR WORKERS N RUNS
#   e.g. bench/workers-drain.sh build 1 60000 5; ... build 2 60000 5
#
# Prints one line per run: queued=A+B drain_ms=T rate_kpps=R.
set -euo pipefail
B=$(realpath "$1") W=$2 N=$3 RUNS=${4:-5}
T=$(mktemp -d /tmp/drain.XXXXXX)
NS=(drainA$$ drainB$$)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
for n in "${NS[@]}"; do
	ip netns add "$n"
	ip -n "$n" link set lo up
	ip netns exec "$n" iptables -A OUTPUT -o lo -p udp --dport 5001 -j NFQUEUE --queue-num 1
done
cat > "$T/c.json" <<J
{ "broker": { "listen": "$T/a.sock", "control": "$T/c.sock" },
  "queue_defaults": { "max_len": 65536, "sock_len": 67108864, "range": 128 },
  "namespaces": [ { "name": "*", "queues": [1], "policy": "p" } ],
  "policies": { "p": { "default": "drop", "rules": [
     { "name": "open", "match": { "proto": "udp", "dport": 5001 }, "verdict": "accept" } ] } } }
J
"$B/broker/nfq-broker" --config "$T/c.json" --workers "$W" 2>"$T/broker.log" &
BP=$!; PIDS+=("$BP")
for i in $(seq 100); do grep -q 'event=start ' "$T/broker.log" && break; sleep 0.05; done
k=0
for n in "${NS[@]}"; do
	nsenter --net=/run/netns/$n "$B/agent/nfq-agent" --broker "$T/a.sock" --name "$n" 2>"$T/agent$k.log" &
	PIDS+=("$!"); k=$((k+1))
	# a process in the namespace whose /proc/PID/net we read
	ip netns exec "$n" sleep 1000 & PIDS+=("$!"); eval "SP$((k-1))=$!"
done
for i in $(seq 200); do [[ $(grep -c 'event=attach ' "$T/broker.log") == 2 ]] && break; sleep 0.05; done
for r in $(seq "$RUNS"); do
	kill -STOP "$BP"
	for n in "${NS[@]}"; do
		ip netns exec "$n" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 32, 1 << 28)   # SO_SNDBUFFORCE: queued packets hold send buffer
d = b"x" * 36                                    # 64 B IPv4 packets
for i in range(int(sys.argv[1])):
    s.sendto(d, ("127.0.0.1", 5001))
' "$N" &
	done
	wait $(jobs -p | tail -2) 2>/dev/null || true
	python3 - "$BP" "$SP0" "$SP1" "$N" <<'PY'
import sys, time, os, signal
bp, a, b, n = map(int, sys.argv[1:])
def queued(pid):
    with open(f"/proc/{pid}/net/netfilter/nfnetlink_queue") as f:
        return sum(int(l.split()[2]) for l in f if l.split()[0] == "1")
for _ in range(500):
    if queued(a) >= n and queued(b) >= n: break
    time.sleep(0.01)
qa, qb = queued(a), queued(b)
t0 = time.monotonic()
os.kill(bp, signal.SIGCONT)
while True:
    if queued(a) == 0 and queued(b) == 0: break
    if time.monotonic() - t0 > 30: print("timeout"); break
    time.sleep(0.001)
dt = time.monotonic() - t0
print(f"queued={qa}+{qb} drain_ms={dt*1000:.1f} rate_kpps={(qa+qb)/dt/1000:.0f}")
PY
	sleep 0.3
done
kill -TERM "$BP"; wait "$BP" || true
