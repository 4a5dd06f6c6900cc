#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The real daemon's reload cost for a policy of N rules (default 20000):
# wall time of `nfq-broker --check`, and of a SIGHUP reload, from the
# signal to the broker's event=reload line (its ts= field, in ms), best of
# 3. Give two binaries to compare them (e.g. an older build first).
# Usage: bench/bench-reload.sh [-n RULES] BROKER [BROKER...]
# Needs no root: the broker listens in a scratch directory. Never run by tests.
set -euo pipefail

n=20000
if [[ ${1:-} == -n ]]; then n=$2; shift 2; fi
(($# >= 1)) || { echo "usage: $0 [-n RULES] BROKER [BROKER...]" >&2; exit 2; }

tmp=$(mktemp -d /tmp/bench-reload.XXXXXX)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

{
	printf '{"broker": {"listen": "%s/agent.sock", "control": "%s/control.sock"},\n' "$tmp" "$tmp"
	printf ' "namespaces": [{"name": "*", "queues": [1], "policy": "big"}],\n'
	printf ' "policies": {"big": {"default": "drop", "rules": [\n'
	for ((i = 0; i < n; i++)); do
		((i)) && printf ','
		printf '{"name": "rule-%d", "match": {"proto": "tcp", "dst": "10.%d.%d.0/24", "dport": %d}, "verdict": "accept"}\n' \
			"$i" $(((i >> 8) & 255)) $((i & 255)) $((i % 65535 + 1))
	done
	printf ']}}}\n'
} >"$tmp/big.json"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Milliseconds from the epoch of a log line's ts=YYYY-MM-DDTHH:MM:SS.mmmZ.
ts_ms() {
	local ts
	ts=$(sed -n 's/^ts=\([^ ]*\)Z .*/\1/p' <<<"$1")
	echo $(($(date -ud "${ts%.*}" +%s) * 1000 + 10#${ts##*.}))
}

for broker in "$@"; do
	best_check="" best_reload=""
	for run in 1 2 3; do
		t0=$(now_ms)
		"$broker" --config "$tmp/big.json" --check >/dev/null
		t=$(($(now_ms) - t0))
		[[ -z $best_check || $t -lt $best_check ]] && best_check=$t
	done
	"$broker" --config "$tmp/big.json" 2>"$tmp/log" &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		grep -q 'event=start ' "$tmp/log" && break
		sleep 0.05
	done
	for run in 1 2 3; do
		before=$(grep -c 'event=reload ok=true' "$tmp/log" || true)
		t0=$(now_ms)
		kill -HUP "$pid"
		for ((i = 0; i < 600; i++)); do
			(($(grep -c 'event=reload ok=true' "$tmp/log" || true) > before)) && break
			sleep 0.05
		done
		line=$(grep 'event=reload ok=true' "$tmp/log" | tail -n 1)
		t=$(($(ts_ms "$line") - t0))
		[[ -z $best_reload || $t -lt $best_reload ]] && best_reload=$t
	done
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
	printf '%s rules=%d check_ms=%d reload_ms=%d\n' "$broker" "$n" "$best_check" "$best_reload"
done
