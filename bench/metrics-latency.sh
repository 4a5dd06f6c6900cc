#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/metrics-latency.sh BUILD NNS SCRAPERS - the broker's verdict latency
# (2000 UDP round trips through an NFQUEUE rule in the first of NNS
# namespaces, each namespace served by an agent) while SCRAPERS tight
# GET /metrics loops run. Prints p50/p90/p99/max in ms. Needs root; makes
# its namespaces and files under /tmp/latbench and removes them. Issue 9
# item 5: compare an old build with a new one, e.g.
#   bench/metrics-latency.sh build 41 0; bench/metrics-latency.sh build 41 2
set -euo pipefail
B=$1 N=$2 S=$3
mkdir -p /tmp/latbench
T=$(mktemp -d /tmp/latbench/run.XXXXXX)
PORT=$((19000 + RANDOM % 1000))
PIDS=()
NSS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
cat >"$T/b.json" <<EOF
{ "broker": { "listen": "$T/agent.sock", "control": "$T/control.sock",
              "metrics_listen": "127.0.0.1:$PORT" },
  "namespaces": [ { "name": "pod-*", "queues": [1], "policy": "open" } ],
  "policies": { "open": { "default": "accept", "rules": [] } } }
EOF
"$B/broker/nfq-broker" --config "$T/b.json" 2>"$T/broker.log" &
PIDS+=($!)
for i in $(seq 50); do [[ -S "$T/agent.sock" ]] && break; sleep 0.1; done
for i in $(seq "$N"); do
	n=latb-$$-$i
	ip netns add "$n"; NSS+=("$n")
	ip -n "$n" link set lo up
	ip netns exec "$n" iptables -A OUTPUT -o lo -p udp --dport 7000 -j NFQUEUE --queue-num 1
	"$B/agent/nfq-agent" --broker "$T/agent.sock" --name "pod-$i" --netns "/run/netns/$n" 2>"$T/agent-$i.log" &
	PIDS+=($!)
done
for i in $(seq 100); do
	(( $(grep -c 'event=attach ' "$T/broker.log" || true) >= N )) && break
	sleep 0.1
done
for _ in $(seq "$S"); do
	python3 -c '
import sys, urllib.request
while True:
    urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read()
' "$PORT" 2>/dev/null &
	PIDS+=($!)
done
sleep 1
ip netns exec "${NSS[0]}" python3 - <<'EOF'
import socket, threading, time
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 7000))
def echo():
    while True:
        d, a = srv.recvfrom(2048)
        srv.sendto(d, a)
threading.Thread(target=echo, daemon=True).start()
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(2)
rtt, lost = [], 0
for i in range(2000):
    t0 = time.perf_counter()
    c.sendto(b"x" * 64, ("127.0.0.1", 7000))
    try:
        c.recvfrom(2048)
        rtt.append((time.perf_counter() - t0) * 1000)
    except socket.timeout:
        lost += 1
    time.sleep(0.001)
rtt.sort()
q = lambda p: rtt[min(len(rtt) - 1, int(p * len(rtt)))]
print("n=%d lost=%d p50=%.3f p90=%.3f p99=%.3f max=%.3f ms" % (len(rtt), lost, q(.5), q(.9), q(.99), rtt[-1]))
EOF
if [[ "$S" -gt 0 ]]; then
	"$B/ctl/nfq-ctl" --control "$T/control.sock" status | python3 -c 'import json,sys; d=json.load(sys.stdin); print("broker status http:", d.get("http"))'
fi
