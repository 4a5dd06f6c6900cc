#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The monitoring examples cannot drift from the broker: the alert rules
# pass `promtool check rules` and their unit tests (`promtool test rules`:
# each alert fires on the series meant to fire it), the Grafana dashboard
# is valid JSON with a query in every panel, and every metric name either
# file uses is one the broker exports — taken from broker/metrics.c's
# table, or, given a scrape (tests/netns/metrics.sh passes a real one),
# from the series actually served.
#
# Usage: metrics-examples.sh [SCRAPE_FILE]   (SRC: the source tree)
set -euo pipefail
SRC=${SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
RULES=$SRC/examples/prometheus/nfq-broker-alerts.yml
TESTS=$SRC/examples/prometheus/nfq-broker-alerts.test.yml
DASH=$SRC/examples/grafana/nfq-broker.json
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit 77; }
python3 -m json.tool "$DASH" >/dev/null || fail "$DASH is not valid JSON"
if command -v promtool >/dev/null; then
	promtool check rules "$RULES" >/dev/null || fail "promtool check rules $RULES: $(promtool check rules "$RULES" 2>&1)"
	(cd "$(dirname "$TESTS")" && promtool test rules "$(basename "$TESTS")") >/dev/null 2>&1 ||
		fail "promtool test rules: $(cd "$(dirname "$TESTS")" && promtool test rules "$(basename "$TESTS")" 2>&1 | tail -n 30)"
	PROMTOOL=yes
else
	PROMTOOL=no
fi

python3 - "$SRC/broker/metrics.c" "$RULES" "$DASH" "${1:-}" <<'PY' || exit 1
import json, re, sys
src, rules, dash, scrape = sys.argv[1:5]
NAME = re.compile(r"\b(?:nfqb|process)_[a-zA-Z0-9_]+")

if scrape:
    what = "the scrape " + scrape
    text = open(scrape).read()
    known = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    # a family with no sample in this scrape (nfqb_steer_installed without
    # steered namespaces) is still exported: its TYPE line says so
    for name, typ in re.findall(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)", text, re.M):
        known.add(name)
        if typ == "histogram":
            known.update(name + s for s in ("_bucket", "_sum", "_count"))
else:
    what = src
    known = set()
    for name, typ in re.findall(r'\{ "([a-z_]+)", "(counter|gauge|histogram)"', open(src).read()):
        known.add(name)
        if typ == "histogram":
            known.update(name + s for s in ("_bucket", "_sum", "_count"))
if len(known) < 20:
    sys.exit("FAIL: only %d metric names found in %s" % (len(known), what))

used = {}
try:
    import yaml
    exprs = [r["expr"] for g in yaml.safe_load(open(rules))["groups"] for r in g["rules"]]
except ImportError:
    # without PyYAML: the expr lines and their continuation lines
    exprs = [l for l in open(rules) if re.match(r"\s*expr:", l) or l.startswith(" " * 12)]
for e in exprs:
    for n in NAME.findall(e):
        used.setdefault(n, "rules")
d = json.load(open(dash))
panels = d["panels"]
if not panels:
    sys.exit("FAIL: the dashboard has no panels")
for p in panels:
    if not p.get("targets") or not all(t.get("expr") for t in p["targets"]):
        sys.exit("FAIL: dashboard panel %r has no query" % p.get("title"))
    for t in p["targets"]:
        for n in NAME.findall(t["expr"]):
            used.setdefault(n, "dashboard")
for v in d["templating"]["list"]:
    q = v.get("query")
    for n in NAME.findall(q["query"] if isinstance(q, dict) else str(q or "")):
        used.setdefault(n, "dashboard variables")
if len(used) < 10:
    sys.exit("FAIL: only %d metric names used by the examples?" % len(used))
bad = sorted("%s (%s)" % (n, w) for n, w in used.items() if n not in known)
if bad:
    sys.exit("FAIL: not exported by the broker (%s): %s" % (what, ", ".join(bad)))
print("%d metric names used by the examples, all in %s" % (len(used), what))
PY
echo "promtool: $PROMTOOL"
if [[ $PROMTOOL == no ]]; then
	echo "SKIP: promtool not installed (apt-get install prometheus): rules not checked"
	exit 77
fi
