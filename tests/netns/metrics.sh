#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Prometheus metrics of a running broker with real agents and traffic in
# two namespaces: `nfq-ctl metrics` and the HTTP scrape (broker.metrics_listen)
# both parse with a strict text-format parser (and `promtool check metrics`
# when installed), and every counter equals what was sent and decided —
# per namespace, per verdict, per rule, and the kernel's own queue stats.
# Also: receive-buffer overruns (ENOBUFS) are logged and counted; a stuck
# HTTP client does not hold up verdicts; metrics_listen must be loopback
# (config error with its path) and a port already taken fails the start.
# Issue 15: the latency and loop-lag histograms (cumulative buckets, _count
# equal to the packets decided), reload status after a rejected and a good
# SIGHUP, refusals by reason, process_* fds, /healthz and /readyz, idle
# connections at the HTTP limit (taken over, refused with a log line and a
# count), and metrics_public in a namespace of the test's own (warning).
set -euo pipefail
# The scrape server needs libmicrohttpd at build time (scripts/test installs
# it); a broker built without it cannot serve this test's half.
if ! pkg-config --exists libmicrohttpd; then
	echo "SKIP: built without libmicrohttpd (apt-get install libmicrohttpd-dev)"
	exit 77
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-lib.sh"
nt_init metrics
command -v python3 >/dev/null || nt_skip "needs python3"
bk_init
CTL=$(nt_bin nfq-ctl)
CSOCK=$NT_TMP/run/control.sock

nt_ns_new NS_A a
nt_ns_new NS_B b
bk_queue_rule "$NS_A" 1 5001
bk_queue_rule "$NS_A" 1 5002
bk_queue_rule "$NS_B" 4 5001

# A strict parser of the text exposition format 0.0.4: prints the samples
# as JSON {"name{labels}": value} or exits 1 naming the offending line.
cat >"$NT_TMP/promparse.py" <<'EOF'
import json, math, re, sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

def fail(n, line, why):
    sys.exit("line %d: %s: %r" % (n, why, line))

def value(n, line, s):
    if s in ("NaN", "+Inf", "-Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        fail(n, line, "bad value")
    return float(s)

def labels(n, line, s, i):
    """Parse {a="b",...} at s[i]; return (canonical label text, index after)."""
    out = []
    i += 1
    while True:
        if s[i] == "}":
            return ",".join(out), i + 1
        m = LABEL.match(s, i)
        if not m or m.group(0).startswith("__"):
            fail(n, line, "bad label name")
        i = m.end()
        if s[i:i + 2] != '="':
            fail(n, line, "label without =\"")
        i += 2
        v = ""
        while s[i] != '"':
            if s[i] == "\\":
                if s[i + 1] not in '\\"n':
                    fail(n, line, "bad escape in a label value")
                v += {"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]]
                i += 2
            else:
                v += s[i]
                i += 1
        i += 1
        out.append("%s=%s" % (m.group(0), json.dumps(v)))
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            fail(n, line, "expected , or }")

text = sys.stdin.read()
if not text.endswith("\n"):
    sys.exit("the text does not end with a newline")
families, done, samples = {}, set(), {}
current = None
for n, line in enumerate(text[:-1].split("\n"), 1):
    try:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _, arg = rest.partition(" ")
            if not NAME.fullmatch(name):
                fail(n, line, "bad metric name")
            fam = families.setdefault(name, {})
            if kind in fam:
                fail(n, line, "second " + kind)
            if name in done or (current and current != name and fam.get("samples")):
                fail(n, line, "family split")
            if kind == "TYPE" and arg not in TYPES:
                fail(n, line, "bad type")
            if kind == "TYPE" and fam.get("samples"):
                fail(n, line, "TYPE after samples")
            fam[kind] = arg
            if current and current != name:
                done.add(current)
            current = name
            continue
        if line.startswith("#") or not line.strip():
            fail(n, line, "unexpected comment or blank line")
        m = NAME.match(line)
        if not m:
            fail(n, line, "bad metric name")
        name, i = m.group(0), m.end()
        sample_name = name
        # a histogram's samples are its _bucket, _sum and _count series
        for sfx in ("_bucket", "_sum", "_count"):
            base = name[:-len(sfx)]
            if name.endswith(sfx) and families.get(base, {}).get("TYPE") == "histogram":
                name = base
        if families.get(name, {}).get("TYPE") == "histogram" and sample_name == name:
            fail(n, line, "a histogram's sample without _bucket, _sum or _count")
        lab = ""
        if i < len(line) and line[i] == "{":
            lab, i = labels(n, line, line, i)
        if line[i] != " ":
            fail(n, line, "no space before the value")
        parts = line[i + 1:].split(" ")
        if len(parts) not in (1, 2):
            fail(n, line, "bad value/timestamp")
        v = value(n, line, parts[0])
        if name != current:
            if name in done or name in families:
                fail(n, line, "samples of a family not together")
            if current:
                done.add(current)
            current = name
        fam = families.setdefault(name, {})
        if "TYPE" not in fam or "HELP" not in fam:
            fail(n, line, "sample without HELP and TYPE before it")
        if fam["TYPE"] == "counter" and (not name.endswith("_total") or v < 0 or math.isnan(v)):
            fail(n, line, "counter not named _total or negative")
        fam["samples"] = True
        if sample_name.endswith("_bucket") and name != sample_name and "le=" not in lab:
            fail(n, line, "a bucket without le")
        key = sample_name + ("{" + lab + "}" if lab else "")
        if key in samples:
            fail(n, line, "series twice")
        samples[key] = v
    except IndexError:
        fail(n, line, "line ends early")
print(json.dumps(samples))
EOF

# Every histogram of a text exposition: per series (labels without le),
# buckets in ascending le, cumulative (never decreasing), +Inf last and
# equal to _count. Prints the number of histogram series checked.
cat >"$NT_TMP/histcheck.py" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
hists = set(re.findall(r"^# TYPE (\S+) histogram$", text, re.M))
series = {}
for line in text.splitlines():
    if line.startswith("#"):
        continue
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
    name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
    for h in hists:
        if name in (h + "_bucket", h + "_count", h + "_sum"):
            le = re.search(r'le="([^"]*)"', labels)
            rest = re.sub(r',?le="[^"]*"', "", labels).replace("{,", "{").replace("{}", "")
            s = series.setdefault((h, rest), {"b": []})
            if le:
                s["b"].append((float(le.group(1).replace("+Inf", "inf")), value))
            else:
                s[name[len(h) + 1:]] = value
for (h, labels), s in series.items():
    les = [b[0] for b in s["b"]]
    vals = [b[1] for b in s["b"]]
    what = h + labels
    assert les == sorted(les) and les[-1] == float("inf"), what + ": le order " + str(les)
    assert all(a <= b for a, b in zip(vals, vals[1:])), what + ": not cumulative " + str(vals)
    assert vals[-1] == s["count"], what + ": +Inf %s != _count %s" % (vals[-1], s["count"])
    assert s["sum"] >= 0, what + ": _sum"
print(len(series))
EOF

# hists FILE MIN - every histogram of FILE is sound (histcheck.py), at least MIN series.
hists() {
	local n
	n=$(python3 "$NT_TMP/histcheck.py" "$1" 2>"$NT_TMP/histcheck.err") ||
		nt_fail "histograms of $1: $(tail -n 3 "$NT_TMP/histcheck.err")"
	nt_assert_ge "$2" "$n" "histogram series in $1"
}

# parse FILE OUT - strict-parse FILE into OUT (JSON), promtool too if there.
parse() {
	python3 "$NT_TMP/promparse.py" <"$1" >"$2" 2>"$2.err" ||
		nt_fail "$1 is not valid Prometheus text: $(cat "$2.err")"
	if command -v promtool >/dev/null; then
		promtool check metrics <"$1" >"$2.promtool" 2>&1 ||
			nt_fail "promtool check metrics: $(cat "$2.promtool")"
	fi
}

# val JSON SERIES - the value of SERIES (name{label="v",...}) as an integer.
val() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(int(d[sys.argv[2]]) if sys.argv[2] in d else "absent")' "$1" "$2"
}

ctl() {
	local name=$1
	shift
	nt_run "$name" 5000 "$CTL" --control "$CSOCK" "$@"
	[[ "$NT_RC" == 0 ]] || nt_fail "nfq-ctl $1: exit status $NT_RC, expected 0"
}

write_config() {   # METRICS_LISTEN [SOCK_LEN_OF_POD_A]
	BK_BROKER_EXTRA="\"metrics_listen\": \"$1\", \"metrics_refresh_ms\": 100" bk_config "\"queue_defaults\": { \"max_len\": 8192 },
  \"namespaces\": [
    { \"name\": \"pod-a\", \"queues\": [1], \"policy\": \"web\", \"queue\": { \"sock_len\": ${2:-4194304} } },
    { \"name\": \"pod-b\", \"queues\": [4], \"policy\": \"open\" }
  ],
  \"policies\": {
    \"open\": { \"default\": \"accept\", \"rules\": [] },
    \"web\": {
      \"default\": \"drop\",
      \"rules\": [
        { \"name\": \"p5001\", \"match\": { \"proto\": \"udp\", \"dport\": 5001 }, \"verdict\": \"accept\" },
        { \"name\": \"p5002\", \"match\": { \"proto\": \"udp\", \"dport\": 5002 }, \"verdict\": \"drop\" }
      ]
    }
  }"
}

# The kernel's queue statistics are a snapshot the broker refreshes on a
# tick (every metrics_refresh_ms, 100 here), never per scrape. Before
# comparing them with /proc: wait for two more rounds of reads.
kstats_reads() {
	"$CTL" --control "$CSOCK" metrics | awk '$1 == "nfqb_kstats_refresh_total" { print $2 }'
}
kstats__ge() {
	(($(kstats_reads) >= $1))
}
kstats_fresh() {
	local r0
	r0=$(kstats_reads)
	nt_wait_for 3000 "two rounds of kernel statistics reads" kstats__ge $((r0 + 4))
}

send() {   # NS PORT COUNT SIZE
	nt_udp_send "$1" 127.0.0.1 "$2" --count "$3" --size "$4"
}

# ---------------------------------------------------------------- config
nt_sub config
for bad in 0.0.0.0:9101 10.1.2.3:80 "[::]:9101" "127.0.0.1:99999" "localhost:9101"; do
	write_config "$bad"
	nt_run check 5000 "$BK_BROKER" --config "$BK_CONF" --check
	nt_assert_eq 2 "$NT_RC" "--check with metrics_listen $bad: exit status"
	nt_assert_grep "$(nt_out check)" '^broker\.metrics_listen: ' "--check with metrics_listen $bad: path"
done
nt_assert_grep "$(nt_out check)" 'is not an IPv4 address' "--check with localhost: reason"
write_config 10.1.2.3:80
nt_run check 5000 "$BK_BROKER" --config "$BK_CONF" --check
nt_assert_eq "broker.metrics_listen: 10.1.2.3 is not a loopback address (127.0.0.0/8 or [::1]; broker.metrics_public allows it)" \
	"$(cat "$(nt_out check)")" "--check: non-loopback message"
# a port already in use: the start fails and says where
python3 - "$NT_TMP/port" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(30)
EOF
HOLDER=$!
nt_defer "nt_kill $HOLDER"
nt_wait_file 5000 "$NT_TMP/port"
write_config "127.0.0.1:$(cat "$NT_TMP/port")"
nt_run taken 5000 "$BK_BROKER" --config "$BK_CONF"
nt_assert_eq 1 "$NT_RC" "metrics port in use: exit status"
nt_assert_grep "$(nt_err taken)" "event=start error=\"cannot serve metrics on 127\.0\.0\.1:$(cat "$NT_TMP/port"): " \
	"metrics port in use: message"
[[ ! -e "$CSOCK" && ! -e "$BK_SOCK" ]] || nt_fail "sockets left by the failed start"
nt_kill "$HOLDER"
nt_ok

# ---------------------------------------------------------------- traffic
nt_sub traffic
write_config 127.0.0.1:0 65536
bk_start
bk_wait_log 'event=http_listen addr=127\.0\.0\.1:[0-9]+ '
ADDR=$(nt_field "$BK_LOG" 'event=http_listen ' addr)
[[ "$ADDR" =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]] || nt_fail "bad http_listen address '$ADDR'"
bk_agent_nsenter AG_A agent-a "$NS_A" pod-a
bk_agent_netns AG_B agent-b "$NS_B" pod-b
bk_wait_attach pod-a
bk_wait_attach pod-b
nt_wait_queue "$NS_A" 1
nt_wait_queue "$NS_B" 4
send "$NS_A" 5001 6 100
send "$NS_A" 5002 3 100
send "$NS_B" 5001 8 50
nt_ok

check_values() {   # JSON WHAT
	local j=$1 w=$2
	nt_assert_eq 1 "$(val "$j" 'nfqb_up')" "$w: nfqb_up"
	nt_assert_eq 2 "$(val "$j" 'nfqb_namespaces')" "$w: nfqb_namespaces"
	nt_assert_eq 2 "$(val "$j" 'nfqb_agent_attaches_total')" "$w: attaches"
	nt_assert_eq 0 "$(val "$j" 'nfqb_agent_refusals_total')" "$w: refusals"
	nt_assert_eq 17 "$(val "$j" 'nfqb_broker_packets_total')" "$w: broker packets"
	nt_assert_eq 9 "$(val "$j" 'nfqb_packets_total{ns="pod-a"}')" "$w: pod-a packets"
	nt_assert_eq 8 "$(val "$j" 'nfqb_packets_total{ns="pod-b"}')" "$w: pod-b packets"
	nt_assert_eq $((9 * 128)) "$(val "$j" 'nfqb_bytes_total{ns="pod-a"}')" "$w: pod-a bytes"
	nt_assert_eq $((8 * 78)) "$(val "$j" 'nfqb_bytes_total{ns="pod-b"}')" "$w: pod-b bytes"
	nt_assert_eq 6 "$(val "$j" 'nfqb_verdicts_total{ns="pod-a",verdict="accept"}')" "$w: pod-a accept"
	nt_assert_eq 3 "$(val "$j" 'nfqb_verdicts_total{ns="pod-a",verdict="drop"}')" "$w: pod-a drop"
	nt_assert_eq 8 "$(val "$j" 'nfqb_verdicts_total{ns="pod-b",verdict="accept"}')" "$w: pod-b accept"
	nt_assert_eq 0 "$(val "$j" 'nfqb_verdicts_total{ns="pod-b",verdict="error"}')" "$w: pod-b errors"
	nt_assert_eq 14 "$(val "$j" 'nfqb_broker_verdicts_total{verdict="accept"}')" "$w: broker accept"
	nt_assert_eq 6 "$(val "$j" 'nfqb_rule_hits_total{policy="web",rule="p5001"}')" "$w: p5001 hits"
	nt_assert_eq 3 "$(val "$j" 'nfqb_rule_hits_total{policy="web",rule="p5002"}')" "$w: p5002 hits"
	nt_assert_eq 0 "$(val "$j" 'nfqb_rule_hits_total{policy="web",rule="(default)"}')" "$w: web default hits"
	nt_assert_eq 8 "$(val "$j" 'nfqb_rule_hits_total{policy="open",rule="(default)"}')" "$w: open default hits"
	nt_assert_eq $((6 * 128)) "$(val "$j" 'nfqb_rule_bytes_total{policy="web",rule="p5001"}')" "$w: p5001 bytes"
	nt_assert_eq 1 "$(val "$j" 'nfqb_namespace_info{ns="pod-b",state="attached",policy="open"}')" "$w: pod-b info"
	# the kernel's statistics, read from inside each namespace
	nt_assert_eq "$(nt_kstat "$NS_A" 1 queued)" "$(val "$j" 'nfqb_queue_depth{ns="pod-a",queue="1"}')" "$w: pod-a depth"
	nt_assert_eq "$(nt_kstat "$NS_B" 4 queued)" "$(val "$j" 'nfqb_queue_depth{ns="pod-b",queue="4"}')" "$w: pod-b depth"
	nt_assert_eq 9 "$(val "$j" 'nfqb_queue_enqueued_total{ns="pod-a",queue="1"}')" "$w: pod-a enqueued"
	nt_assert_eq 8 "$(val "$j" 'nfqb_queue_enqueued_total{ns="pod-b",queue="4"}')" "$w: pod-b enqueued"
	nt_assert_eq 0 "$(val "$j" 'nfqb_queue_dropped_total{ns="pod-a",queue="1",reason="full"}')" "$w: pod-a dropped full"
	nt_assert_eq 0 "$(val "$j" 'nfqb_queue_dropped_total{ns="pod-b",queue="4",reason="netlink"}')" "$w: pod-b dropped netlink"
	nt_assert_eq 0 "$(val "$j" 'nfqb_socket_overruns_total{ns="pod-a"}')" "$w: pod-a overruns"
	# every packet decided is one latency observation, in its namespace and in all
	nt_assert_eq 9 "$(val "$j" 'nfqb_verdict_latency_seconds_count{ns="pod-a"}')" "$w: pod-a latency count"
	nt_assert_eq 8 "$(val "$j" 'nfqb_verdict_latency_seconds_count{ns="pod-b"}')" "$w: pod-b latency count"
	nt_assert_eq 17 "$(val "$j" 'nfqb_broker_verdict_latency_seconds_count')" "$w: latency count"
	nt_assert_eq 17 "$(val "$j" 'nfqb_broker_verdict_latency_seconds_bucket{le="+Inf"}')" "$w: latency +Inf"
	nt_assert_ge 1 "$(val "$j" 'nfqb_loop_lag_seconds_count')" "$w: loop lag observed"
	nt_assert_eq 1 "$(val "$j" 'nfqb_ready')" "$w: ready"
	nt_assert_eq 1 "$(val "$j" 'nfqb_config_last_reload_successful')" "$w: config loaded"
	nt_assert_eq 0 "$(val "$j" 'nfqb_config_reloads_total{result="failure"}')" "$w: no failed reload"
	nt_assert_eq 0 "$(val "$j" 'nfqb_refusals_total{listener="agent",reason="no_match"}')" "$w: no refusal"
}

# ---------------------------------------------------------------- nfq-ctl
nt_sub ctl
kstats_fresh
nt_assert_eq $((9 * 128)) $(( $(nt_x "$NS_A" iptables -w 5 -L OUTPUT -v -x -n | awk '/bk-500[12]/ { s += $2 } END { print s }') )) \
	"iptables bytes in pod-a"
ctl metrics metrics
parse "$(nt_out metrics)" "$NT_TMP/ctl.json"
check_values "$NT_TMP/ctl.json" "nfq-ctl metrics"
hists "$(nt_out metrics)" 4
# process_*: the broker's own fds and limit, its start within its uptime
FDS=$(val "$NT_TMP/ctl.json" process_open_fds)
NOW_FDS=$(find "/proc/$BK_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
(( FDS >= NOW_FDS - 2 && FDS <= NOW_FDS + 2 )) || nt_fail "process_open_fds $FDS, /proc says $NOW_FDS"
nt_assert_eq "$(awk '/^Max open files/ { print $4 }' "/proc/$BK_PID/limits")" \
	"$(val "$NT_TMP/ctl.json" process_max_fds)" "process_max_fds"
START=$(val "$NT_TMP/ctl.json" process_start_time_seconds)
(( START <= $(date +%s) && START >= $(date +%s) - 60 )) || nt_fail "process_start_time_seconds $START"
nt_assert_grep "$(nt_out metrics)" '^# TYPE nfqb_queue_depth gauge$' "queue depth is a gauge"
nt_assert_grep "$(nt_out metrics)" '^# TYPE nfqb_packets_total counter$' "packets is a counter"
nt_ok

# ---------------------------------------------------------------- http
nt_sub http
python3 - "$ADDR" "$NT_TMP/http.txt" <<'EOF' || nt_fail "HTTP scrape failed"
import sys, urllib.error, urllib.request
base = "http://%s" % sys.argv[1]
r = urllib.request.urlopen(base + "/metrics", timeout=5)
assert r.status == 200, r.status
assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", r.headers
open(sys.argv[2], "wb").write(r.read())
for path, method, code in (("/", "GET", 404), ("/metricsx", "GET", 404), ("/metrics", "POST", 405)):
    try:
        urllib.request.urlopen(urllib.request.Request(base + path, method=method,
                                                      data=b"x" if method == "POST" else None),
                               timeout=5)
        raise SystemExit("%s %s: no error" % (method, path))
    except urllib.error.HTTPError as e:
        assert e.code == code, (path, e.code)
EOF
parse "$NT_TMP/http.txt" "$NT_TMP/http.json"
check_values "$NT_TMP/http.json" "HTTP scrape"
hists "$NT_TMP/http.txt" 4
# the examples' alert rules and dashboard name only series this scrape has
SRC=$(cd "$(dirname "$0")/../.." && pwd) nt_run examples 20000 bash "$(dirname "$0")/../examples/metrics-examples.sh" "$NT_TMP/http.txt"
[[ "$NT_RC" == 0 || "$NT_RC" == 77 ]] || nt_fail "examples against a real scrape: $(cat "$(nt_err examples)")"
nt_assert_grep "$(nt_out examples)" "metric names used by the examples, all in the scrape" "examples checked"
# the probes: served, from the loop
python3 - "$ADDR" <<'EOF' || nt_fail "/healthz or /readyz"
import sys, urllib.request
for path, body in (("/healthz", b"ok\n"), ("/readyz", b"ready\n")):
    r = urllib.request.urlopen("http://%s%s" % (sys.argv[1], path), timeout=5)
    assert r.status == 200 and r.read() == body, path
EOF
# A client that connects and never finishes its request holds nothing up.
python3 - "$ADDR" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /metr")
time.sleep(20)
EOF
SLOW=$!
nt_defer "nt_kill $SLOW"
sleep 0.3
bk_expect_traffic "$NS_B" 5001 5 5 "pod-b with a half-open HTTP client"
ctl status2 status
nt_assert_grep "$(nt_out status2)" '"packets":22,' "status with a half-open HTTP client"
python3 -c 'import sys, urllib.request; assert b"nfqb_up 1" in urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5).read()' "$ADDR" ||
	nt_fail "second scrape with a half-open HTTP client"
nt_kill "$SLOW"
nt_ok

# ---------------------------------------------------------------- idle HTTP
nt_sub idle
# 16 connections that never send a byte take every slot. They used to
# stall scrapes silently: now a scrape takes the oldest one's slot over
# (held > 250 ms) and is answered; a newcomer while every slot is young
# is refused, logged (rate-limited) and counted.
python3 - "$ADDR" "$NT_TMP/idle.out" <<'EOF' || nt_fail "idle connections: $(cat "$NT_TMP/idle.out" 2>/dev/null)"
import socket, sys, time, urllib.request
host, port = sys.argv[1].rsplit(":", 1)
out = open(sys.argv[2], "w")
idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(16)]
time.sleep(0.5)
t0 = time.monotonic()
body = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5).read()
assert b"nfqb_up 1" in body
out.write("scrape with 16 idle: %.3f s\n" % (time.monotonic() - t0))
out.flush()
assert time.monotonic() - t0 < 2, "scrape stalled"
for s in idle:
    s.close()
time.sleep(0.3)
# 16 fresh ones, then one more at once: no slot is old enough to give up
fresh = [socket.create_connection((host, int(port)), timeout=5) for _ in range(16)]
time.sleep(0.05)
extra = socket.create_connection((host, int(port)), timeout=5)
extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
extra.settimeout(2)
try:
    got = extra.recv(100)
except (ConnectionResetError, socket.timeout):
    got = b""
out.write("17th connection got %r\n" % got)
assert got == b"", "the 17th connection was answered"
for s in fresh:
    s.close()
EOF
bk_wait_log 'level=warn event=http_refuse reason="connection limit: no slot held long enough to be taken over" max=16 ' 3000
nt_assert_grep "$BK_LOG" 'event=http_drop reason="connection limit: the oldest slot' "idle slot taken over"
ctl metrics3 metrics
parse "$(nt_out metrics3)" "$NT_TMP/ctl3.json"
nt_assert_ge 1 "$(val "$NT_TMP/ctl3.json" 'nfqb_refusals_total{listener="http",reason="limit"}')" \
	"HTTP refusals counted"
nt_ok

# ---------------------------------------------------------------- reloads
nt_sub reload
T0=$(date +%s)
cp "$BK_CONF" "$NT_TMP/good.json"
echo '{ "broker": ' >"$BK_CONF"
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=false '
ctl metrics4 metrics
parse "$(nt_out metrics4)" "$NT_TMP/ctl4.json"
nt_assert_eq 0 "$(val "$NT_TMP/ctl4.json" nfqb_config_last_reload_successful)" "after a rejected reload"
nt_assert_eq 1 "$(val "$NT_TMP/ctl4.json" 'nfqb_config_reloads_total{result="failure"}')" "failed reloads"
nt_assert_eq 0 "$(val "$NT_TMP/ctl4.json" 'nfqb_config_reloads_total{result="success"}')" "good reloads"
# the start's load is the last success so far
nt_assert_eq "$(val "$NT_TMP/ctl4.json" process_start_time_seconds)" \
	"$(val "$NT_TMP/ctl4.json" nfqb_config_last_reload_success_timestamp_seconds)" "last success: the start"
# the old config still serves
bk_expect_traffic "$NS_B" 5001 2 2 "pod-b after a rejected reload"
sleep 1    # a success timestamp that must be later than T0
cp "$NT_TMP/good.json" "$BK_CONF"
kill -HUP "$BK_PID"
bk_wait_log 'event=reload ok=true '
ctl metrics5 metrics
parse "$(nt_out metrics5)" "$NT_TMP/ctl5.json"
nt_assert_eq 1 "$(val "$NT_TMP/ctl5.json" nfqb_config_last_reload_successful)" "after a good reload"
nt_assert_eq 1 "$(val "$NT_TMP/ctl5.json" 'nfqb_config_reloads_total{result="success"}')" "good reloads"
nt_assert_ge $((T0 + 1)) "$(val "$NT_TMP/ctl5.json" nfqb_config_last_reload_success_timestamp_seconds)" \
	"last success timestamp"
# the latency count still equals the packets decided (2 more to pod-b)
nt_assert_eq "$(val "$NT_TMP/ctl5.json" 'nfqb_packets_total{ns="pod-b"}')" \
	"$(val "$NT_TMP/ctl5.json" 'nfqb_verdict_latency_seconds_count{ns="pod-b"}')" "pod-b latency count"
nt_assert_eq "$(val "$NT_TMP/ctl5.json" nfqb_broker_packets_total)" \
	"$(val "$NT_TMP/ctl5.json" nfqb_broker_verdict_latency_seconds_count)" "broker latency count"
hists "$(nt_out metrics5)" 4
nt_ok

# ---------------------------------------------------------------- refusals
nt_sub refusals
# an agent whose name no entry matches: refused, counted by reason; pod-b unharmed
nt_ns_new NS_C c
bk_agent_netns AG_C agent-c "$NS_C" nomatch-c
bk_agent_expect_refusal agent-c "$AG_C" 'no namespaces entry matches'
ctl metrics6 metrics
parse "$(nt_out metrics6)" "$NT_TMP/ctl6.json"
nt_assert_eq 1 "$(val "$NT_TMP/ctl6.json" 'nfqb_refusals_total{listener="agent",reason="no_match"}')" \
	"no_match refusals"
nt_assert_eq 1 "$(val "$NT_TMP/ctl6.json" nfqb_agent_refusals_total)" "agent refusals"
nt_assert_eq 0 "$(val "$NT_TMP/ctl6.json" 'nfqb_refusals_total{listener="agent",reason="uid"}')" "uid refusals"
bk_expect_traffic "$NS_B" 5001 2 2 "pod-b after a refused agent"
nt_ok

# ---------------------------------------------------------------- overruns
nt_sub enobufs
# pod-a's socket has a small receive buffer (sock_len 65536): with the
# broker stopped, the kernel overruns it and drops what does not fit.
kill -STOP "$BK_PID"
send "$NS_A" 5001 400 1400
kill -CONT "$BK_PID"
bk_wait_log 'level=warn event=enobufs name=pod-a overruns=[1-9]' 5000
kstats_fresh
ctl metrics2 metrics
parse "$(nt_out metrics2)" "$NT_TMP/ctl2.json"
nt_assert_ge 1 "$(val "$NT_TMP/ctl2.json" 'nfqb_socket_overruns_total{ns="pod-a"}')" "pod-a overruns counted"
DROPPED=$(nt_kstat "$NS_A" 1 dropped_netlink)
nt_assert_ge 1 "$DROPPED" "kernel dropped_netlink in pod-a"
nt_assert_eq "$DROPPED" "$(val "$NT_TMP/ctl2.json" 'nfqb_queue_dropped_total{ns="pod-a",queue="1",reason="netlink"}')" \
	"dropped_netlink in the metrics"
nt_assert_eq 0 "$(val "$NT_TMP/ctl2.json" 'nfqb_socket_overruns_total{ns="pod-b"}')" "pod-b overruns"
# decided + dropped by the kernel = sent
DECIDED=$(( $(val "$NT_TMP/ctl2.json" 'nfqb_packets_total{ns="pod-a"}') - 9 ))
nt_assert_eq 400 $((DECIDED + DROPPED)) "pod-a: decided + dropped_netlink"
nt_ok

# ---------------------------------------------------------------- public
nt_sub public
# metrics_public: a wildcard address, in a namespace of the test's own
# (so nothing is exposed on the host): accepted, warned about, served.
mkdir -p "$NT_TMP/pub"
cat >"$NT_TMP/public.json" <<EOF
{ "broker": { "listen": "$NT_TMP/pub/agent.sock", "control": "$NT_TMP/pub/control.sock",
              "metrics_listen": "0.0.0.0:0", "metrics_public": true },
  "namespaces": [ { "name": "x", "queues": [9], "policy": "open" } ],
  "policies": { "open": { "default": "accept", "rules": [] } } }
EOF
nt_x "$NS_C" ip link set lo up
nt_spawn PUB public nt_x "$NS_C" "$BK_BROKER" --config "$NT_TMP/public.json"
nt_wait_ready "$PUB" "$(nt_err public)" 'event=start '
nt_assert_grep "$(nt_err public)" \
	'level=warn event=http_listen addr=0\.0\.0\.0:[0-9]+ warning="metrics exposed on a non-loopback address"' \
	"non-loopback warning"
PADDR=$(nt_field "$(nt_err public)" 'event=http_listen .*path=' addr)
nt_x "$NS_C" python3 -c 'import sys, urllib.request
assert urllib.request.urlopen("http://127.0.0.1:%s/readyz" % sys.argv[1], timeout=5).read() == b"ready\n"' \
	"${PADDR##*:}" || nt_fail "public endpoint /readyz"
# the same without metrics_public: a config error naming the key
sed -i 's/"metrics_public": true/"metrics_public": false/' "$NT_TMP/public.json"
nt_run pubcheck 5000 "$BK_BROKER" --config "$NT_TMP/public.json" --check
nt_assert_eq 2 "$NT_RC" "--check without metrics_public"
nt_assert_eq "broker.metrics_listen: 0.0.0.0 is not a loopback address (127.0.0.0/8 or [::1]; broker.metrics_public allows it)" \
	"$(cat "$(nt_out pubcheck)")" "--check without metrics_public: message"
kill -TERM "$PUB"
nt_expect_exit "$PUB" 5000 0 "public broker after SIGTERM"
nt_ok

nt_sub shutdown
bk_stop
python3 -c 'import socket, sys; h, p = sys.argv[1].rsplit(":", 1); socket.create_connection((h, int(p)), timeout=2)' "$ADDR" 2>/dev/null &&
	nt_fail "the HTTP port still answers after shutdown"
nt_ok
