#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py RESULTS.jsonl OUT.json KEY=VALUE... - scripts/bench's summary:
medians over the runs, ratios against the reference taken run by run (each
run's figure over the same run's reference, then the median of those), one
table on stdout, and OUT.json with the machine info (KEY=VALUE), the
summary and every raw measurement."""
import json
import statistics
import sys

LABELS = {
    "ref": "reference (libmnl, batch 64)",
    "refmmsg": "reference, libnfqb's receive",
    "libnfqb": "libnfqb (nfqb-accept)",
    "python": "Python module (ours, libnfqb)",
    "pyup": "python-netfilterqueue 1.1.0",
    "broker20": "broker, 20 rules",
    "broker10k": "broker, 10,000 rules",
    "workers1": "broker --workers 1, 2 ns",
    "workers2": "broker --workers 2, 2 ns",
    "none": "no queue",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def drain(rows, out):
    by = {}
    for r in rows:
        if "pps" in r:
            by.setdefault((r["size"], r["consumer"]), {})[r["run"]] = r
    notes = [r for r in rows if "note" in r]
    summary = []
    for size in sorted({k[0] for k in by}):
        ref = by.get((size, "ref"), {})
        out.append("")
        out.append("drain, %d B payload: consumer stopped, queue filled, resumed alone "
                   "(medians; x = ratio to the reference, run by run)" % size)
        out.append("  %-32s %10s %7s %12s %7s %6s" % ("consumer", "pkt/s", "x ref",
                                                     "CPU ns/pkt", "x ref", "cores"))
        for c in ("ref", "libnfqb", "python", "pyup", "broker20", "broker10k", "workers1",
                  "workers2"):
            runs = by.get((size, c))
            if not runs:
                continue
            pps = med([r["pps"] for r in runs.values()])
            cpu = med([r["cpu_ns_per_pkt"] for r in runs.values()])
            rx = med([r["pps"] / ref[i]["pps"] for i, r in runs.items() if i in ref])
            cx = med([r["cpu_ns_per_pkt"] / ref[i]["cpu_ns_per_pkt"]
                      for i, r in runs.items() if i in ref])
            busy = med([r.get("cores_busy") for r in runs.values()])
            s = {"size": size, "consumer": c, "runs": len(runs), "pps": pps,
                 "cpu_ns_per_pkt": cpu, "pps_x_ref": rx, "cpu_x_ref": cx, "cores_busy": busy}
            line = "  %-32s %10s %7s %12s %7s %6s" % (LABELS[c], fmt(pps, ".0f"), fmt(rx, ".2f"),
                                                     fmt(cpu, ".0f"), fmt(cx, ".2f"),
                                                     fmt(busy, ".2f"))
            w1 = by.get((size, "workers1"), {})
            if c == "workers2" and w1:
                s["x_workers1"] = med([r["pps"] / w1[i]["pps"] for i, r in runs.items()
                                       if i in w1])
                line += "  %s x --workers 1" % fmt(s["x_workers1"], ".2f")
            if c == "broker10k" and by.get((size, "broker20")):
                b20 = by[(size, "broker20")]
                s["x_broker20"] = med([r["pps"] / b20[i]["pps"] for i, r in runs.items()
                                       if i in b20])
                line += "  %s x 20 rules" % fmt(s["x_broker20"], ".2f")
            out.append(line)
            summary.append(s)
    for n in notes:
        out.append("  %-32s %s" % ("broker --workers 2 vs 1", n["note"]))
        summary.append({"consumer": "workers", "note": n["note"]})
    return summary


def per_trip(r):
    """The consumer's CPU time (all threads, user and system) per round
    trip in us; None when the run did not record it."""
    if not r.get("trips") or r.get("cpu_ns") is None:
        return None
    return r["cpu_ns"] / 1000.0 / r["trips"]


def latency(rows, out):
    by = {}
    for r in rows:
        by.setdefault(r["path"], {})[r["run"]] = r
    if not by:
        return []
    none = by.get("none", {})
    ref = by.get("ref", {})
    out.append("")
    out.append("latency: UDP ping-pong over a veth, queue on the server's INPUT (medians, us)")
    out.append("  %-32s %8s %6s %8s %9s %9s %9s %8s %8s" % (
        "path", "p50", "x ref", "p99", "added", "x ref add", "invol/100", "cpu/trip",
        "cpu-ref"))
    summary = []
    for p in ("none", "ref", "refmmsg", "broker20", "python", "pyup"):
        runs = by.get(p)
        if not runs:
            continue
        p50 = med([r["p50_us"] for r in runs.values()])
        p99 = med([r["p99_us"] for r in runs.values()])
        added = med([r["p50_us"] - none[i]["p50_us"] for i, r in runs.items() if i in none])
        ref_added = med([ref[i]["p50_us"] - none[i]["p50_us"] for i in ref if i in none])
        ax = added / ref_added if added is not None and ref_added else None
        px = med([r["p50_us"] / ref[i]["p50_us"] for i, r in runs.items() if i in ref])
        # involuntary context switches of the consumer's threads per 100
        # round trips (bench/README.md, "What limits the latency")
        pre = med([100.0 * r["ivcsw"] / r["trips"] for r in runs.values()
                   if r.get("trips") and r.get("ivcsw") is not None])
        # the consumer's CPU time per round trip, and its excess over the
        # reference's in the same run
        cpu = med([per_trip(r) for r in runs.values()])
        cpu_x = med([per_trip(r) - per_trip(ref[i]) for i, r in runs.items()
                     if i in ref and per_trip(r) is not None
                     and per_trip(ref[i]) is not None])
        if p == "none":
            added = ax = pre = cpu = cpu_x = None
        summary.append({"path": p, "runs": len(runs), "p50_us": p50, "p50_x_ref": px,
                        "p99_us": p99, "added_p50_us": added, "added_x_ref": ax,
                        "involuntary_per_100_trips": pre, "cpu_us_per_trip": cpu,
                        "cpu_us_over_ref": cpu_x})
        out.append("  %-32s %8s %6s %8s %9s %9s %9s %8s %8s" % (
            LABELS[p], fmt(p50, ".1f"), fmt(px, ".2f"), fmt(p99, ".1f"), fmt(added, "+.1f"),
            fmt(ax, ".2f"), fmt(pre, ".0f"), fmt(cpu, ".2f"), fmt(cpu_x, "+.2f")))
    return summary


def scale(rows, out):
    if not rows:
        return []
    out.append("")
    out.append("scale: namespaces attached one after another to one broker")
    out.append("  %6s %5s %9s %9s %9s %6s %8s %8s %7s %6s %s" % (
        "ns", "steer", "attach50", "attach99", "floor50", "x fl", "RSS MiB", "total s",
        "idle/s", "idle%",
        "fds before/attached/after, traffic ok/bad, left agents/ns"))
    for r in rows:
        # the reference: a process that only writes its status file
        fl = r.get("floor_p50_ms")
        fl = fl if isinstance(fl, (int, float)) and fl > 0 else None   # FLOOR_N=0: "none"
        r["attach_x_floor"] = r["attach_p50_ms"] / fl if fl else None
        # the idle broker: wakeups per second and CPU, N namespaces attached
        icpu = r.get("idle_cpu_pct")
        icpu = icpu if isinstance(icpu, (int, float)) else None
        out.append("  %6d %5s %7.2fms %7.2fms %9s %6s %8.1f %8.1f %7s %6s %d/%d/%d, %d/%d, %d/%d" % (
            r["namespaces"], r["steer"], r["attach_p50_ms"], r["attach_p99_ms"],
            fmt(fl, ".2f") + "ms" if fl else "-", fmt(r["attach_x_floor"], ".2f"),
            r["rss_mib"], r["attach_total_s"], fmt(r.get("idle_wakeups_per_s"), "d"),
            fmt(icpu, ".2f"), r["fds_before"], r["fds_attached"],
            r["fds_after"], r["traffic_ok"], r["traffic_bad"], r["agents_left"],
            r["namespaces_left"]))
    return rows


def reload(rows, out):
    times = [r["reload_ms"] for r in rows if "reload_ms" in r]
    flow = [r for r in rows if "sent" in r]
    if not times and not flow:
        return {}
    s = {"reloads": len(times), "reload_ms_median": med(times),
         "reload_ms_max": max(times) if times else None}
    out.append("")
    out.append("reload of the 10,000-rule policy under traffic (nfq-ctl reload)")
    out.append("  reload time: median %s ms, max %s ms over %d reloads" % (
        fmt(s["reload_ms_median"], ".1f"), fmt(s["reload_ms_max"], ".1f"), len(times)))
    if flow:
        f = flow[0]
        s.update({k: v for k, v in f.items() if k not in ("section", "run")})
        try:
            s["lost"] = f["sent"] - f["received"] - int(f["decided_dropped"])
        except (TypeError, ValueError):
            s["lost"] = None
        out.append("  traffic: sent %s, received %s, decided dropped %s, lost %s; broker decided "
                   "%s, %s reloads ok (kernel dropped_full %s, dropped_netlink %s)" % (
                       f["sent"], f["received"], f["decided_dropped"], s["lost"],
                       f.get("broker_packets"), f.get("reloads_ok"),
                       f.get("kernel_dropped_full"), f.get("kernel_dropped_netlink")))
    return s


def pick(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def targets(summary, out):
    """Issue 13's targets against this run's figures (64 B drains)."""
    d, lat, sc = summary["drain"], summary["latency"], summary["scale"]
    checks = []

    def add(what, value, goal, ok):
        checks.append({"target": what, "value": value, "goal": goal, "met": ok})

    lib = pick(d, size=64, consumer="libnfqb")
    b20 = pick(d, size=64, consumer="broker20")
    b10k = pick(d, size=64, consumer="broker10k")
    w2 = pick(d, size=64, consumer="workers2")
    if lib and lib["pps_x_ref"] is not None:
        add("libnfqb drain x ref", lib["pps_x_ref"], ">= 1.00", lib["pps_x_ref"] >= 1.0)
        add("libnfqb CPU/pkt x ref", lib["cpu_x_ref"], "<= 1.00", lib["cpu_x_ref"] <= 1.0)
    if b20 and b20["pps_x_ref"] is not None:
        add("broker 20 rules drain x ref", b20["pps_x_ref"], ">= 0.90", b20["pps_x_ref"] >= 0.9)
        add("broker CPU/pkt x ref", b20["cpu_x_ref"], "<= 1.05", b20["cpu_x_ref"] <= 1.05)
    if b10k and b10k.get("x_broker20") is not None:
        add("10,000 rules x 20 rules", b10k["x_broker20"], ">= 0.80", b10k["x_broker20"] >= 0.8)
    if w2 and w2.get("x_workers1") is not None:
        add("2 workers x 1 worker", w2["x_workers1"], ">= 1.70", w2["x_workers1"] >= 1.7)
    lb = pick(lat, path="broker20")
    if lb and lb["added_x_ref"] is not None:
        add("broker added latency x ref", lb["added_x_ref"], "<= 1.10", lb["added_x_ref"] <= 1.1)
    # "below the Python module's": python-netfilterqueue itself; ours
    # (on libnfqb) when upstream could not be built
    for path, what in (("pyup", "upstream Python's"), ("python", "our Python's")):
        lp = pick(lat, path=path)
        if lb and lp and lb["added_p50_us"] is not None and lp["added_p50_us"] is not None:
            add("broker added latency - %s (us)" % what, lb["added_p50_us"] - lp["added_p50_us"],
                "< 0", lb["added_p50_us"] < lp["added_p50_us"])
            break
    for r in sc:
        if r["namespaces"] == 1000:
            add("1,000 ns attach p50 (ms)", r["attach_p50_ms"], "<= 2", r["attach_p50_ms"] <= 2)
            add("1,000 ns broker RSS (MiB)", r["rss_mib"], "<= 32", r["rss_mib"] <= 32)
        if r["namespaces"] >= 5000:
            add("%d ns attach without error" % r["namespaces"], r["traffic_bad"], "0 bad",
                r["traffic_bad"] == 0)
    if not checks:
        return checks
    out.append("")
    out.append("issue 13 targets, this run (noise +-15 %: one run decides nothing)")
    for c in checks:
        out.append("  %-46s %9.2f  goal %-8s %s" % (c["target"], c["value"], c["goal"],
                                                   "met" if c["met"] else "NOT met"))
    return checks


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    meta = dict(a.split("=", 1) for a in sys.argv[3:])
    sec = {}
    for r in rows:
        sec.setdefault(r["section"], []).append(r)
    out = ["nfq-broker bench: commit %s, %s CPUs, kernel %s, %s runs, %s s" % (
        meta.get("commit"), meta.get("nproc"), meta.get("kernel"), meta.get("runs"),
        meta.get("elapsed_s"))]
    summary = {
        "drain": drain(sec.get("drain", []), out),
        "latency": latency(sec.get("latency", []), out),
        "scale": scale(sec.get("scale", []), out),
        "reload": reload(sec.get("reload", []), out),
    }
    summary["targets"] = targets(summary, out)
    print("\n".join(out))
    with open(sys.argv[2], "w") as f:
        json.dump({"machine": meta, "summary": summary, "raw": rows}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
