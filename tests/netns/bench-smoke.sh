#!/bin/bash
# SPDX-License-Identifier: MIT
#
# scripts/bench still works: its quick drain with the fewest datagrams
# (every consumer it knows, one run) must finish, print the table with a
# rate for the reference, the broker and python-netfilterqueue, and write
# its JSON; then its scale section with 4 namespaces. Asserts that the
# harness runs, never a figure. About 15 s, and about 10 more for the
# first build of python-netfilterqueue.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
nt_init benchsmoke

nt_bin bench-udp >/dev/null
nt_sub quick-drain
nt_run bench 60000 env BENCH_NO_BUILD=1 RUNS=1 COUNT=2000 RESULTS="$NT_TMP/results" \
	LIMIT_S=55 "$SRC/scripts/bench" --quick drain
[[ $NT_RC == 0 ]] || nt_fail "scripts/bench --quick drain: exit status $NT_RC"
out=$(nt_out bench)
nt_assert_grep "$out" '^  reference \(libmnl, batch 64\) +[0-9]+ +1\.00 ' "reference row"
nt_assert_grep "$out" '^  libnfqb \(nfqb-accept\) +[0-9]+ +[0-9.]+ ' "libnfqb row"
nt_assert_grep "$out" '^  broker, 20 rules +[0-9]+ +[0-9.]+ ' "broker row"
nt_assert_grep "$out" '^  broker, 10,000 rules +[0-9]+ +[0-9.]+ ' "10,000-rule row"
nt_assert_grep "$out" '^  broker --workers 2, 2 ns +[0-9]+ +[0-9.]+ ' "2-worker row"
# python-netfilterqueue itself, built from bench/upstream/ (scripts/test
# installs what it needs): its row is there and it is upstream's module
# that ran. build.sh exits 3 when something it needs is missing.
nt_run upstream 120000 "$SRC/bench/upstream/build.sh" "$BUILD/bench/upstream-nfq"
if [[ $NT_RC == 0 ]]; then
	nt_assert_grep "$out" '^  python-netfilterqueue 1\.1\.0 +[0-9]+ +[0-9.]+ ' \
		"python-netfilterqueue row"
	nt_assert_grep "$(nt_err bench)" \
		'python-netfilterqueue: ready queue=1 module=.*/upstream-nfq/netfilterqueue/__init__\.py' \
		"upstream's module loaded"
elif [[ $NT_RC == 3 ]]; then
	nt_log "python-netfilterqueue not checked: $(tail -n 1 "$(nt_err upstream)")"
else
	nt_fail "bench/upstream/build.sh failed: $(tail -n 5 "$(nt_err upstream)")"
fi
json=$(find "$NT_TMP/results" -name '*.json')
[[ -n $json ]] || nt_fail "no JSON written under $NT_TMP/results"
nt_run json 5000 "${PYTHON:-python3}" -c '
import json, sys
d = json.load(open(sys.argv[1]))
rows = [r for r in d["raw"] if r.get("packets")]
assert d["machine"]["nproc"] and rows, d
# the --workers rows drain two namespaces, 2000 datagrams each
assert all(r["packets"] == 2000 * (2 if r["consumer"].startswith("workers") else 1)
           for r in rows), rows
' "$json"
[[ $NT_RC == 0 ]] || nt_fail "bad JSON $json: $(cat "$(nt_err json)")"
# the scale section with a handful of namespaces: its row has the attach
# figures, the floor and the idle broker, every namespace attached, traffic
# right, fds back, nothing left
nt_sub quick-scale
nt_run scale 120000 env BENCH_NO_BUILD=1 RUNS=1 N=4 FLOOR_N=3 IDLE_MS=300 \
	RESULTS="$NT_TMP/results-scale" LIMIT_S=100 "$SRC/scripts/bench" --quick scale
[[ $NT_RC == 0 ]] || nt_fail "scripts/bench --quick scale: exit status $NT_RC"
nt_assert_grep "$(nt_out scale)" \
	'^ +4 +0 +[0-9.]+ms +[0-9.]+ms +[0-9.]+ms +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ ([0-9]+)/[0-9]+/\1, 8/0, 0/0$' \
	"scale row (idle figures, fds back, traffic right, nothing left)"

# nothing of the bench is left behind
left=$(ip netns list | grep -c '^nt-bench-' || true)
nt_assert_eq 0 "$left" "namespaces of scripts/bench left"
nt_ok
