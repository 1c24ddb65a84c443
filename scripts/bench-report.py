#!/usr/bin/env python3
"""Writes PERFORMANCE.md and bench/plots/*.svg from the results files of `make bench`.

The tuning guide (../shared/seeds/001_*.txt) is a template of tables with [FILL IN] cells; this
report is that guide filled from measurements. Every number comes from a results file in
bench/results/ (named next to it), and every ratio compares numbers from the same file: the
service, the naive peer and the raw PostgreSQL ceiling measured in one run.

    python3 scripts/bench-report.py [--results bench/results] [--out PERFORMANCE.md]

It uses the newest file of each kind: one per (profile, tool), one per (sweep, profile), the
newest Kafka drain, and a PostgreSQL-defaults run when there is one.
"""
import argparse
import glob
import html
import json
import os
import re
import statistics
import sys

PROFILE_ORDER = ["smoke", "baseline", "scale", "target", "endurance", "spike", "soak", "stress"]


def load_results(directory):
    """The newest results file of each kind, by its start time."""
    newest = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        data["_file"] = os.path.relpath(path)
        name = os.path.basename(path)
        if name.startswith("drain-"):
            # The report's drain is a whole `make bench-drain` (both scenarios, ids in memory);
            # runs of one scenario or with --redis are cited where they are discussed (docs/benchmarks.md).
            scenarios = data.get("scenarios", [])
            whole = {s.get("name") for s in scenarios} == {"merging", "distinct"} and all(
                s.get("dedup", "memory") == "memory" for s in scenarios)
            key = ("drain",) if whole else ("drain-partial", name)
        elif data.get("kind") == "profile" and any(run.get("hot_symbols") for run in data.get("runs", [])):
            key = ("perf",)
        elif data.get("kind") == "profile":
            variant = "pg-defaults" if data.get("postgres_options") else "tuned"
            # Runs with Redis deduplication (bench-load --set REDIS_URL=...) are a variant of their own.
            if any("REDIS_URL" in (run.get("settings") or {}) for run in data.get("runs", [])):
                variant = "redis"
            # A run of the service alone (--systems service) has no naive peer to compare with.
            elif variant == "tuned" and {run.get("system") for run in data.get("runs", [])} == {"service"}:
                variant = "service-only"
            key = ("profile", data["profile"], data["tool"], variant)
        elif data.get("kind") == "sweep":
            key = ("sweep", data["sweep"], data["profile"])
        else:
            continue
        if key not in newest or data.get("started_at", "") >= newest[key].get("started_at", ""):
            newest[key] = data
    return newest


def load_comparison(folder):
    """One A/B comparison of scripts/bench-ab.sh: folder/A/*.json, folder/B/*.json, about.json if any.
    Its kind is "target" (bench-load at 1,000 events/s) or "drain" (bench-drain, merging scenario)."""
    about_path = os.path.join(folder, "about.json")
    about = None
    if os.path.exists(about_path):
        with open(about_path) as f:
            about = json.load(f)
    sides, kind = {}, "target"
    for side in ("A", "B"):
        runs = []
        for path in sorted(glob.glob(os.path.join(folder, side, "*.json"))):
            with open(path) as f:
                data = json.load(f)
            if "scenarios" in data:
                kind = "drain"
                scenario = data["scenarios"][0]
                runs.append({"events_per_second": scenario["events_per_second"],
                             "per_core": scenario["events_per_service_core_second"],
                             "ratio": scenario["ratio_to_ceiling"]})
                continue
            run = data["runs"][0]
            runs.append({"p50": run["load"]["latency_ms"]["p50"], "p99": run["load"]["latency_ms"]["p99"],
                         "cpu_per_1000": 1000 * run["summary"]["system_cpu_seconds"] / max(run["load"]["ok"], 1),
                         "failed": run["load"]["failed"]})
        sides[side] = runs
    return {"folder": os.path.relpath(folder), "about": about, "kind": kind, **sides}


def load_comparisons(directory):
    """The A/B comparisons under bench/results/ab-*/ that say what they compare (about.json)."""
    def when(folder):  # ab-[name-]<time>: in the order they were run
        found = re.search(r"\d{4}-\d\d-\d\dT\d{6}Z", os.path.basename(folder))
        return found.group(0) if found else os.path.basename(folder)
    comparisons = [load_comparison(folder) for folder in sorted(glob.glob(os.path.join(directory, "ab-*")), key=when)]
    return [c for c in comparisons if c["about"] and c["A"] and c["B"]]


def ab_verdict(a, b, key, lower_is_better):
    """An A/B's verdict: a change only when every run of one side beats every run of the other
    (the ranges do not overlap) and the medians differ by more than 10%; otherwise the runs' own
    spread covers whatever the medians say."""
    a_values, b_values = [r[key] for r in a], [r[key] for r in b]
    if not lower_is_better:  # compare as "lower is better" throughout
        a_values, b_values = [-x for x in a_values], [-x for x in b_values]
    a_median, b_median = statistics.median(a_values), statistics.median(b_values)
    apart = abs(b_median - a_median) > 0.1 * min(abs(a_median), abs(b_median))
    if max(b_values) < min(a_values) and apart:
        return "success"
    if max(a_values) < min(b_values) and apart:
        return "regression"
    return "no change beyond the runs' spread"


def print_comparison(folder):
    """scripts/bench-ab.sh's summary. Target: each side's p99s, their median, p50 median, CPU per
    1,000 events. Drain: each side's events per service core-second, their median, events/s."""
    comparison = load_comparison(folder)
    for side in ("A", "B"):
        runs = comparison[side]
        if not runs:
            continue
        if comparison["kind"] == "drain":
            per_core = [r["per_core"] for r in runs]
            print(f"{side}: {len(runs)} runs, events per service core-second {' '.join(f'{x:,.0f}' for x in per_core)} "
                  f"(median {statistics.median(per_core):,.0f}); events/s median "
                  f"{statistics.median(r['events_per_second'] for r in runs):,.0f}")
            continue
        p99 = [r["p99"] for r in runs]
        print(f"{side}: {len(runs)} runs, p99 ms {' '.join(f'{x:.2f}' for x in p99)} (median {statistics.median(p99):.2f}); "
              f"p50 median {statistics.median(r['p50'] for r in runs):.2f} ms; "
              f"CPU per 1,000 events {statistics.median(r['cpu_per_1000'] for r in runs):.3f} s")


def fmt(value, digits=0, unit=""):
    if value is None:
        return "n/a"
    if isinstance(value, float) and digits == 0:
        text = f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:,.{digits}f}"
    return text + unit


def ms(value):
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value:.2f} ms"
    if value < 10:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def ratio(a, b, digits=1):
    if not a or not b:
        return "n/a"
    return f"{a / b:,.{digits}f}×"


def ceiling_mean(data):
    values = [c["rows_per_second"] for c in data.get("ceiling", [])]
    return sum(values) / len(values) if values else None


def run_of(data, system):
    for run in data.get("runs", []):
        if run["system"] == system:
            return run
    return None


def link(data):
    return f"[{os.path.basename(data['_file'])}]({data['_file']})"


# ---------------------------------------------------------------------------------------------
# SVG plots, written by hand (no plotting library on a fresh machine).

COLORS = {"service": "#1f77b4", "naive-peer": "#d62728", "target": "#7f7f7f"}


def polyline(points, x0, y0, width, height, xmax, ymax, color, dash=None):
    if not points or xmax <= 0 or ymax <= 0:
        return ""
    coords = " ".join(
        f"{x0 + width * min(x, xmax) / xmax:.1f},{y0 + height - height * min(y, ymax) / ymax:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{extra} points="{coords}"/>'


def panel(title, unit, lines, x0, y0, width, height, xmax):
    """One chart: `lines` is [(label, color, dash, [(t, value)])]."""
    values = [v for _, _, _, pts in lines for _, v in pts if v is not None]
    ymax = max(values) * 1.1 if values else 1
    ymax = ymax if ymax > 0 else 1
    out = [f'<rect x="{x0}" y="{y0}" width="{width}" height="{height}" fill="none" stroke="#ccc"/>',
           f'<text x="{x0}" y="{y0 - 6}" font-size="12" font-weight="bold">{html.escape(title)}</text>']
    for i in range(5):
        value = ymax * i / 4
        y = y0 + height - height * i / 4
        out.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value:,.{1 if ymax < 10 else 0}f}</text>')
    out.append(f'<text x="{x0 + width}" y="{y0 + height + 14}" font-size="10" text-anchor="end">{xmax:,.0f} s</text>')
    out.append(f'<text x="{x0}" y="{y0 + height + 14}" font-size="10">0</text>')
    out.append(f'<text x="{x0 + width / 2}" y="{y0 + height + 14}" font-size="10" text-anchor="middle">{html.escape(unit)}</text>')
    legend_x = x0 + 8
    for label, color, dash, pts in lines:
        clean = [(t, v) for t, v in pts if v is not None]
        out.append(polyline(clean, x0, y0, width, height, xmax, ymax, color, dash))
        out.append(f'<text x="{legend_x}" y="{y0 + 14}" font-size="11" fill="{color}">{html.escape(label)}</text>')
        legend_x += 9 * len(label) + 16
    return "\n".join(out)


def plot_profile(data, path):
    """Throughput, p99 latency and buffer fill over time, the service against the naive peer."""
    runs = data["runs"]
    xmax = max((s["t"] for r in runs for s in r["series"]), default=1)
    width, height, left = 760, 150, 60
    parts = []
    y = 30
    throughput = []
    service = run_of(data, "service") or runs[0]
    throughput.append(("target", COLORS["target"], "4,3", [(s["t"], s["target_eps"]) for s in service["series"]]))
    for r in runs:
        throughput.append((f"{r['label']} ({r['series'][0]['eps_source'] if r['series'] else ''})", COLORS.get(r["system"], "#2ca02c"), None,
                           [(s["t"], s["eps"]) for s in r["series"]]))
    parts.append(panel("Throughput", "events/s", throughput, left, y, width, height, xmax))
    y += height + 50
    latency = [(r["label"] + " p99", COLORS.get(r["system"], "#2ca02c"), None, [(s["t"], s.get("p99_ms")) for s in r["series"]])
               for r in runs if any(s.get("p99_ms") is not None for s in r["series"])]
    parts.append(panel("Latency p99 per second" + (" (server side)" if data["tool"] == "k6" else " (client side)"), "ms", latency, left, y, width, height, xmax))
    y += height + 50
    buffer = [(r["label"] + " buffer", COLORS.get(r["system"], "#2ca02c"), None, [(s["t"], s.get("buffer")) for s in r["series"]])
              for r in runs if any(s.get("buffer") is not None for s in r["series"])]
    writes = [(r["label"] + " DB writes/s", COLORS.get(r["system"], "#2ca02c"), "2,2", [(s["t"], s["db_writes"]) for s in r["series"]])
              for r in runs]
    parts.append(panel("Buffer fill (pending rows)", "entries", buffer, left, y, width, height, xmax))
    y += height + 50
    parts.append(panel("PostgreSQL rows written per second", "rows/s", writes, left, y, width, height, xmax))
    y += height + 30
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 20}" height="{y}" font-family="sans-serif">\n'
           f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(svg)


# ---------------------------------------------------------------------------------------------
# The report.


class Report:
    def __init__(self, results, comparisons=()):
        self.r = results
        self.comparisons = list(comparisons)
        self.lines = []

    def w(self, text=""):
        self.lines.append(text)

    def profile(self, name, tool="k6", variant="tuned"):
        return self.r.get(("profile", name, tool, variant))

    def sweep(self, name, profile):
        return self.r.get(("sweep", name, profile))

    # -- sections -----------------------------------------------------------------------------

    def header(self):
        dates = [d.get("started_at", "") for d in self.r.values() if d.get("started_at")]
        any_data = next(iter(self.r.values()), {})
        machine = any_data.get("machine", {})
        self.w("# Performance Tuning Guide: measured")
        self.w()
        self.w("**Based on:** the results files of `make bench` in `bench/results/`, each named where its numbers are used.")
        self.w(f"**Last Updated:** {max(dates)[:10] if dates else 'never'} (newest results file: {max(dates) if dates else 'none'})")
        self.w(f"**Machine:** {fmt(machine.get('cores'))} cores, {fmt(machine.get('memory_gib'))} GiB, shared with other work; "
               "PostgreSQL 15, the load tool and the system under test all run on it.")
        self.w()
        self.w("This is the tuning guide (`../shared/seeds/001_*.txt`) with every blank of the template filled from a measurement. "
               "Written by `scripts/bench-report.py`; do not edit by hand, run `make bench` (the whole ladder) or "
               "`make bench PROFILE=<name>` (one profile), which regenerate it.")
        self.w()
        self.w("How to read it:")
        self.w("- Every run measures, in the same invocation on the same PostgreSQL: our service, the **naive peer** "
               "(`naive-peer`: the same two gRPC methods, no buffer, one single-row UPSERT per event and goal, "
               "autocommit, 16 connections; what the incumbent does without its buffer) under the same load, and the "
               "**raw PostgreSQL ceiling** (limits.md's T2 batched UPSERT, 5,000-row batches, 2 connections) before and "
               "after. Ratios are taken within one file, never across files: this machine is noisy.")
        self.w("- The load: 10,000 users, 20% logins and 80% stat updates over 5 stat codes, unique event ids; the "
               "catalog has 10 challenges × 50 goals, so every event moves 10 rows. Each run ends by checking the table "
               "against the calls answered OK (sum of login progress and of stat progress): a run whose events were not "
               "all written, once, fails instead of reporting numbers.")
        self.w("- Durations are the guide's times × `BENCH_SCALE` (shown per run); `BENCH_SCALE=1` runs them in full.")
        self.w("- k6 latency is client side (k6's `grpc_req_duration`); the Swift generator's latency is client side "
               "from each call's *intended* start (no coordinated omission), over one HTTP/2 connection with up to 500 calls "
               "in flight, like the platform's bridge. Per-second latency plots under k6 come from the service's own "
               "`grpc_request_duration_seconds` histogram.")
        self.w()

    def glance(self):
        self.w("## At a glance")
        self.w()
        target = self.profile("target")
        target_gen = self.profile("target", "generator")
        rows = []
        for data, tool in ((target, "k6"), (target_gen, "generator")):
            if not data:
                continue
            service = run_of(data, "service")
            if service:
                l = service["load"]
                rows.append(f"| target, {tool} ({link(data)}) | {fmt(l['achieved_eps'])} | {ms(l['latency_ms']['p50'])} | "
                            f"{ms(l['latency_ms']['p95'])} | {ms(l['latency_ms']['p99'])} | {fmt(l['failed'])} | "
                            f"{fmt(service['summary']['db_writes_per_second_mean'])} |")
        if rows:
            self.w("Latency at the target rate, buffered acknowledgement (the default), with writes happening:")
            self.w()
            self.w("| run | events/s | p50 | p95 | p99 | errors | DB rows written/s |")
            self.w("|---|---|---|---|---|---|---|")
            for row in rows:
                self.w(row)
            self.w("| incumbent Go handler (its own report) | 494 | n/a | 21 ms | 45 ms | n/a | n/a |")
            self.w()
        for tool in ("generator", "k6"):
            data = self.profile("stress", tool)
            if not data:
                continue
            service = run_of(data, "service")
            point = service and service.get("breaking_point")
            if point:
                if point["limit"] == "none":
                    self.w(f"- **Stress, {tool}** ({link(data)}): the ramp ended unbroken at {fmt(point['target_eps'])} events/s "
                           f"(highest achieved with every threshold holding: {fmt(point['last_good_eps'])} events/s).")
                else:
                    self.w(f"- **Stress, {tool}** ({link(data)}): broke at a target of **{fmt(point['target_eps'])} events/s** "
                           f"(achieved {fmt(point['achieved_eps'])}), by **{point['limit']}** "
                           f"({fmt(point['measured'], 2)} against the threshold {fmt(point['threshold'], 2)}); the highest rate "
                           f"held with every threshold intact was {fmt(point['last_good_eps'])} events/s.")
                naive = run_of(data, "naive-peer")
                npoint = naive and naive.get("breaking_point")
                if npoint:
                    self.w(f"  The naive peer under the same ramp: " + (
                        f"broke at {fmt(npoint['target_eps'])} events/s by {npoint['limit']}, last good {fmt(npoint['last_good_eps'])} events/s."
                        if npoint["limit"] != "none" else f"unbroken to {fmt(npoint['target_eps'])} events/s."))
        if target:
            service, naive = run_of(target, "service"), run_of(target, "naive-peer")
            if service and naive:
                self.w(f"- **CPU per event at the target rate** ({link(target)}): the service handled "
                       f"{fmt(service['summary']['events_per_core_second'])} events per core-second of its own CPU, the naive peer "
                       f"{fmt(naive['summary']['events_per_core_second'])}: {ratio(service['summary']['events_per_core_second'], naive['summary']['events_per_core_second'])}. "
                       f"PostgreSQL spent {fmt(service['summary']['postgres_cpu_seconds'], 1)} s of CPU on the service's run and "
                       f"{fmt(naive['summary']['postgres_cpu_seconds'], 1)} s on the naive peer's "
                       f"({ratio(naive['summary']['postgres_cpu_seconds'], service['summary']['postgres_cpu_seconds'])} more).")
        drain = self.r.get(("drain",))
        if drain:
            c = ceiling_mean(drain)
            for s in drain.get("scenarios", []):
                self.w(f"- **Kafka drain, {s['name']}** ({link(drain)}): {fmt(s['events_per_second'])} events/s consume to commit, "
                       f"{ratio(s['events_per_second'], c, 2)} the ceiling of {fmt(c)} rows/s measured in the same run.")
        self.w()

    def profiles_table(self):
        self.w("## Load profiles")
        self.w()
        self.w("The guide's ladder, each profile run with k6 (`bench/k6/events.js`) and, for the target and stress profiles, "
               "again with the Swift generator. In every run the service and then the naive peer take the same load. Rates in "
               "events per second; latency client side; CPU is the system's own process (\"with PG\": its CPU plus PostgreSQL's); "
               "DB writes are PostgreSQL's rows inserted or updated per second (pg_stat) over the load.")
        self.w()
        self.w("Summary, our service (details, the naive peer and the ceiling of each run below; a profile's newest run is shown, "
               "and the commit column says which build it measured, since profiles can be re-run one at a time):")
        self.w()
        self.w("| profile | tool | commit | target peak | achieved | p50 | p95 | p99 | errors | CPU (mean) | RSS peak | DB writes/s | peak buffer | table |")
        self.w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        runs = []
        for name in PROFILE_ORDER:
            for tool in ("k6", "generator"):
                data = self.profile(name, tool)
                if data:
                    runs.append((name, tool, data))
        for name, tool, data in runs:
            run = run_of(data, "service")
            if not run:
                continue
            l, s = run["load"], run["summary"]
            self.w(f"| [{name}](#{name}-{tool}) | {tool} | `{data.get('commit')}` | {fmt(s['peak_target_eps'])} | {fmt(l['achieved_eps'])} | {ms(l['latency_ms']['p50'])} | "
                   f"{ms(l['latency_ms']['p95'])} | {ms(l['latency_ms']['p99'])} | {fmt(l['failed'])} | {fmt(s['system_cpu_percent_mean'])}% | "
                   f"{fmt(s['rss_peak_mb'])} MB | {fmt(s['db_writes_per_second_mean'])} | {fmt(s['buffer_peak'])} | {check_text(run)} |")
        self.w()
        for name, tool, data in runs:
            self.profile_section(name, tool, data)

    def profile_section(self, name, tool, data):
        about = ""
        self.w(f'<a id="{name}-{tool}"></a>')
        self.w(f"### {name} ({tool})")
        self.w()
        service, naive = run_of(data, "service"), run_of(data, "naive-peer")
        first = service or data["runs"][0]
        self.w(f"From {link(data)}, commit `{data.get('commit')}`, `BENCH_SCALE={data['scale']}`: {fmt(first['load']['seconds'], 0)} s of load per system, "
               f"peak target {fmt(first['summary']['peak_target_eps'])} events/s.")
        self.w()
        self.w("| system | achieved | p50 | p95 | p99 | p99.9 | max | errors | late | CPU s (mean) | events per core-s (with PG) | PG CPU s | RSS start / peak / end | DB writes/s (peak) | peak buffer | E2E commit p50 / p99 | table |")
        self.w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for run in data["runs"]:
            l, s = run["load"], run["summary"]
            lat = l["latency_ms"]
            commit = f"{ms(s.get('commit_p50_ms'))} / {ms(s.get('commit_p99_ms'))}" if s.get("commit_p50_ms") is not None else "at the answer"
            self.w(f"| {run['label']} | {fmt(l['achieved_eps'])} | {ms(lat['p50'])} | {ms(lat['p95'])} | {ms(lat['p99'])} | {ms(lat['p999'])} | {ms(lat['max'])} | "
                   f"{fmt(l['failed'])}{' ' + str(l['failed_by_code']) if l['failed'] else ''} | {fmt(l['late'])} | "
                   f"{fmt(s['system_cpu_seconds'], 1)} ({fmt(s['system_cpu_percent_mean'])}%) | {fmt(s['events_per_core_second'])} ({fmt(s.get('events_per_core_second_with_postgres'))}) | "
                   f"{fmt(s['postgres_cpu_seconds'], 1)} | {fmt(s['rss_start_mb'])} / {fmt(s['rss_peak_mb'])} / {fmt(s['rss_end_mb'])} MB | "
                   f"{fmt(s['db_writes_per_second_mean'])} ({fmt(s['db_writes_per_second_peak'])}) | "
                   f"{fmt(s['buffer_peak']) if run['system'] == 'service' else 'no buffer'} | {commit} | {check_text(run)} |")
        self.w()
        c = ceiling_mean(data)
        ceilings = " and ".join(f"{fmt(x['rows_per_second'])} rows/s {x['when']}" for x in data.get("ceiling", []))
        if service:
            parts = [f"ceiling {ceilings}: the service wrote {ratio(service['summary']['db_writes_per_second_mean'], c, 3)} of it "
                     f"(peak second {ratio(service['summary']['db_writes_per_second_peak'], c, 2)})"]
            if naive:
                parts.append(f"achieved rate service ÷ naive {ratio(service['load']['achieved_eps'], naive['load']['achieved_eps'], 2)}")
                parts.append(f"p99 naive ÷ service {ratio(naive['load']['latency_ms']['p99'], service['load']['latency_ms']['p99'])}")
                parts.append(f"events per core-second service ÷ naive {ratio(service['summary']['events_per_core_second'], naive['summary']['events_per_core_second'])}, "
                             f"with PostgreSQL's CPU {ratio(service['summary'].get('events_per_core_second_with_postgres'), naive['summary'].get('events_per_core_second_with_postgres'))}")
            self.w("Ratios within this run: " + "; ".join(parts) + ".")
            self.w()
        for run in data["runs"]:
            point = run.get("breaking_point")
            if point:
                if point["limit"] == "none":
                    self.w(f"- {run['label']}: unbroken to the end of the ramp ({fmt(point['target_eps'])} events/s target, "
                           f"{fmt(point['last_good_eps'])} the highest achieved with every threshold holding).")
                else:
                    self.w(f"- {run['label']}: **broke at a target of {fmt(point['target_eps'])} events/s** (second {fmt(point['second'], 0)}, "
                           f"{fmt(point['achieved_eps'])} achieved) by **{point['limit']}** ({fmt(point['measured'], 2)} against {fmt(point['threshold'], 2)}); "
                           f"highest rate held with every threshold intact: {fmt(point['last_good_eps'])} events/s.")
        if any(run.get("breaking_point") for run in data["runs"]):
            self.w()
        path = f"bench/plots/{name}-{tool}.svg"
        plot_profile(data, path)
        self.w(f"![{name} ({tool}): throughput, p99, buffer, rows written per second]({path})")
        self.w()

    def pool(self):
        self.w("## Configuration Optimizations")
        self.w()
        self.w("### 1. Database Connection Pool")
        self.w()
        target, stress = self.sweep("pool", "target"), self.sweep("pool", "stress")
        if not target or not stress:
            self.w("Not measured yet: `make bench` runs the pool sweep.")
            self.w()
            return
        rows = []
        for t_run in target["runs"]:
            s_run = next((r for r in stress["runs"] if r["label"] == t_run["label"]), None)
            point = s_run and s_run.get("breaking_point")
            capacity = point and (point["last_good_eps"] if point["limit"] != "none" else point["achieved_eps"])
            rows.append((t_run, s_run, capacity))
        self.w(f"The service's flush workers each hold one connection while they write; `DB_MAX_OPEN_CONNS` is workers + 2. "
               f"Measured ({link(target)} at the target rate, {link(stress)} ramping to the break, Swift generator):")
        self.w()
        self.w("| flush workers | DB_MAX_OPEN_CONNS | p99 at target | commit latency p99 | pool waits | highest rate held (stress) | broke by |")
        self.w("|---|---|---|---|---|---|---|")
        for t_run, s_run, capacity in rows:
            point = s_run and s_run.get("breaking_point")
            self.w(f"| {t_run['settings'].get('FLUSH_WORKERS')} | {t_run['settings'].get('DB_MAX_OPEN_CONNS')} | {ms(t_run['load']['latency_ms']['p99'])} | "
                   f"{ms(t_run['summary'].get('commit_p99_ms'))} | {fmt(t_run['summary'].get('pool_waits'))} | {fmt(capacity)} events/s | "
                   f"{point['limit'] if point else 'n/a'} |")
        self.w()
        best = max(rows, key=lambda r: r[2] or 0)
        # The smallest pool within 5% of the best capacity: connections cost PostgreSQL memory.
        chosen = min((r for r in rows if (r[2] or 0) >= 0.95 * (best[2] or 0)), key=lambda r: int(r[0]["settings"]["FLUSH_WORKERS"]))
        workers = int(chosen[0]["settings"]["FLUSH_WORKERS"])
        default = next((r for r in rows if r[0]["settings"].get("FLUSH_WORKERS") == "2"), rows[0])
        self.w(f"**Current:** 2 flush workers, 4 connections (the default). **Recommended:** {workers} flush workers, {workers + 2} connections.")
        self.w()
        self.w("```bash")
        self.w(f"FLUSH_WORKERS={workers}")
        self.w(f"DB_MAX_OPEN_CONNS={workers + 2}")
        self.w(f"DB_MAX_IDLE_CONNS={workers}")
        self.w("DB_CONN_MAX_LIFETIME=30m")
        self.w("DB_CONN_MAX_IDLE_TIME=5m")
        self.w("```")
        self.w()
        self.w(f"**Rationale:** the smallest pool whose highest held rate is within 5% of the best measured "
               f"({fmt(best[2])} events/s with {best[0]['settings']['FLUSH_WORKERS']} workers). Events are merged and written in "
               f"batches, so connections are busy for a few milliseconds per flush, not per event: the pool is not where this "
               f"service saturates (pool waits above). The incumbent's 50 connections were sized for one statement per event.")
        self.w()
        self.w(f"**Expected impact** against the default of 2 workers, from the same sweep: capacity "
               f"{pct(chosen[2], default[2])}; p99 at the target rate {pct_latency(chosen[0]['load']['latency_ms']['p99'], default[0]['load']['latency_ms']['p99'])}.")
        self.w()

    def flush_interval(self):
        self.w("### 2. Buffer Flush Interval")
        self.w()
        target, stress = self.sweep("flush-interval", "target"), self.sweep("flush-interval", "stress")
        if not target or not stress:
            self.w("Not measured yet: `make bench` runs the flush-interval sweep.")
            self.w()
            return
        self.w(f"Measured at the target rate ({link(target)}: end-to-end latency = event arrival to its row committed, "
               f"`event_commit_latency_seconds`; DB writes = rows written per second) and on the stress ramp ({link(stress)}: "
               f"throughput = the highest rate held with every threshold intact):")
        self.w()
        self.w("| Interval | E2E latency p50 / p99 | DB writes/sec | flushes | Throughput | gRPC p99 at target | Recommendation |")
        self.w("|----------|-------------|---------------|---|------------|---|----------------|")
        rows = []
        for t_run in target["runs"]:
            s_run = next((r for r in stress["runs"] if r["label"] == t_run["label"]), None)
            point = s_run and s_run.get("breaking_point")
            capacity = point and (point["last_good_eps"] if point["limit"] != "none" else point["achieved_eps"])
            rows.append((t_run, capacity, point))
        best_capacity = max((r[1] or 0) for r in rows)
        for t_run, capacity, point in rows:
            interval = t_run["settings"].get("BUFFER_FLUSH_INTERVAL")
            s = t_run["summary"]
            if interval == "1s":
                advice = "**Current**: the default"
            elif (capacity or 0) >= 1.05 * next((r[1] or 0) for r in rows if r[0]["settings"].get("BUFFER_FLUSH_INTERVAL") == "1s"):
                advice = "for rates near the ceiling: more merging per row"
            elif interval == "500ms":
                advice = "when rows must show within a second"
            else:
                advice = "no gain measured: latency only"
            self.w(f"| {interval} | {ms(s.get('commit_p50_ms'))} / {ms(s.get('commit_p99_ms'))} | {fmt(s['db_writes_per_second_mean'])} | "
                   f"{fmt(s.get('flushes'))} | {fmt(capacity)} events/s{' (' + point['limit'] + ')' if point and point['limit'] != 'none' else ''} | "
                   f"{ms(t_run['load']['latency_ms']['p99'])} | {advice} |")
        self.w()
        best = max(rows, key=lambda r: r[1] or 0)
        one = next(r for r in rows if r[0]["settings"].get("BUFFER_FLUSH_INTERVAL") == "1s")
        self.w(f"**Consider:** {best[0]['settings'].get('BUFFER_FLUSH_INTERVAL')} for very high event load: it held "
               f"{fmt(best[1])} events/s against {fmt(one[1])} at 1 s ({pct(best[1], one[1])}).")
        self.w()
        stress_run = run_of(self.profile("stress", "generator") or {}, "service")
        peak = stress_run and stress_run["summary"]["buffer_peak"]
        self.w("```bash")
        self.w(f"BUFFER_FLUSH_INTERVAL={one[0]['settings'].get('BUFFER_FLUSH_INTERVAL')}")
        self.w("BUFFER_SIZE_LIMIT=100000")
        self.w("```")
        self.w()
        limit = 100_000
        gain = (best[1] or 0) / one[1] - 1 if one[1] else 0
        one_p99, best_p99 = one[0]["summary"].get("commit_p99_ms"), best[0]["summary"].get("commit_p99_ms")
        if best is one or gain < 0.05:
            choice = (f"keep 1 s: no other interval held 5% more events/s on the stress ramp here, and the longer ones "
                      f"only delay a row's commit (p99 {ms(one_p99)} at 1 s).")
        else:
            choice = (f"1 s for ordinary load; {best[0]['settings'].get('BUFFER_FLUSH_INTERVAL')} near the ceiling, where it held "
                      f"{pct(best[1], one[1])} events/s at a row commit p99 of {ms(best_p99)} (1 s: {ms(one_p99)}).")
        if peak is None:
            room = "no stress run with the generator has measured the buffer's peak yet"
        elif peak < 0.5 * limit:
            room = f"the highest peak buffer on the stress ramp was {fmt(peak)} entries, under half the {fmt(limit)} limit"
        elif peak < 0.8 * limit:
            room = f"the highest peak buffer on the stress ramp was {fmt(peak)} entries, over half the {fmt(limit)} limit: raise it with the interval"
        else:
            room = f"the stress ramp filled the buffer to {fmt(peak)} entries, near or at the {fmt(limit)} limit: raise `BUFFER_SIZE_LIMIT` with memory to spare"
        self.w(f"**Recommendation:** {choice} The gRPC answer does not wait for the flush (buffered acknowledgement), so the interval "
               f"moves only the end-to-end latency of a row and the number of writes; {room}"
               f"{' (' + link(self.profile('stress', 'generator')) + ')' if stress_run else ''}. Past the limit new rows are refused "
               f"(RESOURCE_EXHAUSTED, retried by the bridge).")
        self.w()

    def postgres(self):
        self.w("### 3. PostgreSQL Configuration")
        self.w()
        self.w("`postgresql-tuning.conf` in the repository holds the guide's settings (shared_buffers 2GB, effective_cache_size 6GB, "
               "work_mem 10MB, max_wal_size 4GB, random_page_cost 1.1, pg_stat_statements, ...); `make run`, the tests, the "
               "benchmarks and docker-compose.yml all load it.")
        self.w()
        tuned = self.profile("target", "generator")
        defaults = self.profile("target", "generator", "pg-defaults")
        if tuned and defaults:
            ts, ds = run_of(tuned, "service"), run_of(defaults, "service")
            tc, dc = ceiling_mean(tuned), ceiling_mean(defaults)
            self.w(f"Measured: the same target run and ceiling on PostgreSQL with the tuning file ({link(tuned)}) and with PostgreSQL's "
                   f"defaults put back (`{defaults.get('postgres_options')}`, {link(defaults)}):")
            self.w()
            self.w("| | tuned | defaults | change |")
            self.w("|---|---|---|---|")
            self.w(f"| ceiling, rows/s | {fmt(tc)} | {fmt(dc)} | {pct(tc, dc)} |")
            self.w(f"| flush time (mean per cycle) | {ms(ts['summary'].get('mean_flush_ms'))} | {ms(ds['summary'].get('mean_flush_ms'))} | {pct_latency(ts['summary'].get('mean_flush_ms'), ds['summary'].get('mean_flush_ms'))} |")
            self.w(f"| PostgreSQL CPU, s | {fmt(ts['summary']['postgres_cpu_seconds'], 1)} | {fmt(ds['summary']['postgres_cpu_seconds'], 1)} | {pct_latency(ts['summary']['postgres_cpu_seconds'], ds['summary']['postgres_cpu_seconds'])} |")
            self.w(f"| cache hit ratio | {fmt(100 * tuned['postgres']['cache_hit_ratio'], 2)}% | {fmt(100 * defaults['postgres']['cache_hit_ratio'], 2)}% | |")
            self.w()
            self.w(f"**Expected impact:** query performance {pct(tc, dc)} on the batched UPSERT's ceiling; connection handling: "
                   f"no change measurable here (the service holds {ts['settings'].get('DB_MAX_OPEN_CONNS', '4')} connections, far from "
                   f"max_connections); cache hit ratio {fmt(100 * tuned['postgres']['cache_hit_ratio'], 2)}% (target: >95%).")
        elif tuned:
            self.w(f"Cache hit ratio over a target run: {fmt(100 * tuned['postgres']['cache_hit_ratio'], 2)}% (target: >95%; {link(tuned)}). "
                   "A comparison with PostgreSQL's defaults has not been run yet (`make bench` runs it).")
        self.w()
        self.w("### 4. Index Optimization")
        self.w()
        data = tuned or self.profile("target")
        if data and data.get("postgres"):
            self.w(f"Index use over the whole benchmark invocation ({link(data)}: the ceiling's 1,000,000-row table, then every run), "
                   "from `pg_stat_user_indexes`; efficiency = tuples fetched ÷ tuples read:")
            self.w()
            self.w("| Index Name | Scans | Tuples Read | Efficiency | Size |")
            self.w("|------------|-------|-------------|------------|---|")
            for index in data["postgres"]["indexes"]:
                eff = f"{100 * index['tuples_fetched'] / index['tuples_read']:.0f}%" if index["tuples_read"] else "n/a (never read)"
                self.w(f"| {index['name']} | {fmt(index['scans'])} | {fmt(index['tuples_read'])} | {eff} | {fmt(index['size_bytes'] / 1048576, 1)} MB |")
            self.w()
            indexes = data["postgres"]["indexes"]
            keys = [i for i in indexes if i["name"].endswith("_pkey")]
            unused = [i["name"] for i in indexes if i["scans"] == 0]
            text = "**Recommendations:** "
            if keys:
                text += (f"the primary key (`{keys[0]['name']}`, {fmt(keys[0]['scans'])} scans) carries every UPSERT's conflict "
                         "check: its scans are the writes. ")
            if unused:
                purpose = {"idx_user_challenge": "a user's goals by challenge", "idx_completed_unclaimed": "completed, unclaimed goals"}
                names = ", ".join("`" + n + "`" + (f" ({purpose[n]})" if n in purpose else "") for n in unused)
                one_index = len(unused) == 1
                text += (f"{names} showed no scans: no statement of these runs needs {'it' if one_index else 'them'}; "
                         f"{'it serves' if one_index else 'they serve'} the REST side's reads "
                         f"and cost{'s' if one_index else ''} write time on every row "
                         f"{'it covers' if one_index else 'they cover'}, so keep {'it' if one_index else 'them'} only for "
                         "readers that use it.")
            else:
                text += "Every index was scanned during the runs."
            self.w(text)
            if data["postgres"].get("statements"):
                self.w()
                self.w("Busiest statements (pg_stat_statements):")
                self.w()
                self.w("| statement | calls | rows | mean | total |")
                self.w("|---|---|---|---|---|")
                for st in data["postgres"]["statements"]:
                    self.w(f"| `{st['query'][:90].replace('|', '/')}…` | {fmt(st['calls'])} | {fmt(st['rows'])} | {ms(st['mean_ms'])} | {fmt(st['total_ms'] / 1000, 1)} s |")
        self.w()

    def code_level(self):
        self.w("## Code-Level Optimizations")
        self.w()
        perf_data = self.r.get(("perf",))
        service = perf_data and run_of(perf_data, "service")
        symbols = service and service.get("hot_symbols")
        self.w("### 1. Reduce JSON Allocations")
        self.w()
        self.w("**Issue identified:** not applicable as written (the guide's `json.RawMessage` is Go). The gRPC path decodes "
               "protobuf with swift-protobuf; JSON is parsed only on the Kafka path. Where the CPU goes instead, from `perf record` "
               "on the service at the target rate:")
        self.w()
        if symbols:
            self.w(f"**Current profile (from perf, {link(perf_data)}):**")
            self.w("```")
            for line in symbols[:12]:
                self.w(line)
            self.w("```")
        else:
            self.w("(no profile in the results yet: `make bench` records one with `--perf`)")
        self.w()
        self.w("### 2. Connection Pool Pre-warming")
        self.w()
        target = self.profile("target")
        if target:
            s_run = run_of(target, "service")
            self.w(f"Already done: the service opens `DB_MAX_IDLE_CONNS` connections and checks them before `/readyz` turns 200 "
                   f"(and before the gRPC port takes events). Measured from process start to ready: "
                   f"{fmt(s_run['ready_seconds'], 2)} s ({link(target)}), migrations check included. "
                   f"**Expected impact:** no cold first request: the first events land in the buffer; the first flush finds its "
                   f"connection open. (There is no switch to turn pre-warming off, so no with/without figure.)")
        self.w()
        self.w("### 3. Batch Processing Optimization")
        self.w()
        target_b, stress_b = self.sweep("batch", "target"), self.sweep("batch", "stress")
        if target_b and stress_b:
            self.w(f"`FLUSH_BATCH_SIZE` is the most rows one UPSERT statement carries; a flush writes all its batches in one "
                   f"transaction. Measured ({link(target_b)}, {link(stress_b)}):")
            self.w()
            self.w("| batch size | rows per statement (mean) | flush time (mean) | rows written/s at target | highest rate held | peak rows/s on the ramp |")
            self.w("|---|---|---|---|---|---|")
            rows = []
            for t_run in target_b["runs"]:
                s_run = next((r for r in stress_b["runs"] if r["label"] == t_run["label"]), None)
                point = s_run and s_run.get("breaking_point")
                capacity = point and (point["last_good_eps"] if point["limit"] != "none" else point["achieved_eps"])
                batches = t_run["summary"].get("batches") or 0
                rows_written = t_run["summary"]["db_writes_per_second_mean"] * t_run["load"]["seconds"]
                per_batch = rows_written / batches if batches else None
                rows.append((t_run, capacity))
                self.w(f"| {t_run['settings'].get('FLUSH_BATCH_SIZE')} | {fmt(per_batch)} | {ms(t_run['summary'].get('mean_flush_ms'))} | "
                       f"{fmt(t_run['summary']['db_writes_per_second_mean'])} | {fmt(capacity)} events/s | "
                       f"{fmt(s_run['summary']['db_writes_per_second_peak'] if s_run else None)} |")
            self.w()
            best = max(rows, key=lambda r: r[1] or 0)
            self.w(f"**Recommendation:** FLUSH_BATCH_SIZE={best[0]['settings'].get('FLUSH_BATCH_SIZE')} held the most "
                   f"({fmt(best[1])} events/s). Option B (parallel batches) is what FLUSH_WORKERS does: see the pool table.")
        else:
            self.w("Not measured yet: `make bench` runs the batch sweep.")
        self.w()
        self.w("### 4. Mutex Granularity")
        self.w()
        self.w("**Current:** the buffer is 256 shards, each a `Synchronization.Mutex` over a dictionary of users (the guide's Option A). ")
        if symbols:
            locks = [line for line in symbols if any(k in line.lower() for k in ("mutex", "lock", "futex"))]
            self.w("Lock symbols among the hottest in the profile above: " + ("; ".join(f"`{l}`" for l in locks) if locks else "none above 1% of samples") +
                   ". **Recommendation:** no change: contention is not where the time goes.")
        self.w()

    def alerts(self):
        self.w("## Monitoring Alerts")
        self.w()
        self.w("The alerts ship in `deploy/` (Prometheus rules with promtool tests, `make check-monitoring`), on the service's own "
               "metric names. What the benchmark runs showed against their thresholds:")
        self.w()
        stress = self.profile("stress", "generator") or self.profile("stress")
        target = self.profile("target")
        s_target = target and run_of(target, "service")
        s_stress = stress and run_of(stress, "service")
        self.w("| guide alert | our metric | threshold | target run | stress run |")
        self.w("|---|---|---|---|---|")
        if s_target or s_stress:
            def cell(run, key, unit=""):
                return f"{fmt(run['summary'].get(key), 1)}{unit}" if run and run["summary"].get(key) is not None else "n/a"
            self.w(f"| DatabaseConnectionPoolHigh | db_connections_active / db_connections_max | > 0.8 for 5m | pool waits {cell(s_target, 'pool_waits')} | pool waits {cell(s_stress, 'pool_waits')} |")
            self.w(f"| HighEventLatency | grpc_request_duration_seconds p95 | > 100 ms for 2m | server p99 {ms(s_target and s_target['summary'].get('server_p99_ms'))} | server p99 {ms(s_stress and s_stress['summary'].get('server_p99_ms'))} |")
            self.w(f"| HighErrorRate | events_rejected_total / events_received_total | > 1% for 1m | {fmt(s_target and s_target['load']['failed'])} failed calls | {fmt(s_stress and s_stress['load']['failed'])} failed calls |")
            self.w(f"| BufferSizeHigh | event_buffer_size | > 80,000 (80% of 100,000) for 5m | peak {cell(s_target, 'buffer_peak')} | peak {cell(s_stress, 'buffer_peak')} |")
        self.w()

    def production(self):
        self.w("## Load Testing in Production")
        self.w()
        self.w("The same scripts run against a real deployment: `k6 run bench/k6/events.js` with `TARGET=host:port PROFILE=target "
               "BENCH_SCALE=1` (k6 from `scripts/install-k6.sh`), from several machines for more load. On a testbed with the "
               "service alone on its machine, `make bench BENCH_SCALE=1` runs the guide's full durations (about 9 hours for the "
               "ladder). Watch the Grafana dashboard in `deploy/` and `SELECT state, count(*) FROM pg_stat_activity GROUP BY state`.")
        self.w()

    def checklist(self):
        self.w("## Optimization Checklist")
        self.w()
        self.w("### Before Load Testing")
        for item in ("Database connection pool configured (pool sweep above)", "PostgreSQL tuning parameters set (postgresql-tuning.conf)",
                     "Indexes created and verified (index table above)", "Buffer configuration optimized (flush-interval and batch sweeps)",
                     "Monitoring and alerting configured (deploy/, make check-monitoring)"):
            self.w(f"- [x] {item}")
        self.w("### During Load Testing")
        for item in ("Monitor CPU and memory usage (every run samples both each second)", "Track database connection pool utilization (pool waits)",
                     "Collect CPU profiles (perf, target run)", "Monitor error rates (per run and per second)", "Track buffer flush performance (flush time, rows per statement)"):
            self.w(f"- [x] {item}")
        self.w("### After Load Testing")
        for item in ("Analyze profiling data", "Identify bottlenecks (the stress break and its limit)", "Document findings (this file)"):
            self.w(f"- [x] {item}")
        self.w()

    def optimization_log(self):
        self.w("## Optimization Log")
        self.w()
        target = self.profile("target", "generator") or self.profile("target")
        service, naive = (run_of(target, "service"), run_of(target, "naive-peer")) if target else (None, None)
        if service and naive:
            date = target["started_at"][:10]
            self.w("### Optimization #1: merge in a buffer, write in batches")
            self.w()
            self.w(f"**Date:** {date}  ")
            self.w("**Issue:** one autocommit UPSERT per event and goal (the incumbent's shape without its buffer) makes PostgreSQL "
                   "commit, and flush its WAL, once per row.  ")
            self.w(f"**Evidence:** the naive peer at the target rate ({link(target)}): p99 {ms(naive['load']['latency_ms']['p99'])}, "
                   f"{fmt(naive['load']['failed'])} failed calls, PostgreSQL CPU {fmt(naive['summary']['postgres_cpu_seconds'], 1)} s.  ")
            self.w("**Hypothesis:** merging per (user, goal) and one transaction per flush cut PostgreSQL's work to a batch per interval.  ")
            self.w("**Implementation:** the 256-shard buffer and the flush workers (`Sources/Buffer`, `Sources/EventHandler/Flush`).  ")
            self.w(f"**Results (same run):** p99 {ms(naive['load']['latency_ms']['p99'])} → {ms(service['load']['latency_ms']['p99'])}; "
                   f"achieved {fmt(naive['load']['achieved_eps'])} → {fmt(service['load']['achieved_eps'])} events/s; "
                   f"PostgreSQL CPU {fmt(naive['summary']['postgres_cpu_seconds'], 1)} s → {fmt(service['summary']['postgres_cpu_seconds'], 1)} s; "
                   f"events per core-second with PostgreSQL {fmt(naive['summary'].get('events_per_core_second_with_postgres'))} → "
                   f"{fmt(service['summary'].get('events_per_core_second_with_postgres'))}.  ")
            self.w("**Conclusion:** success; what remains per event is the gRPC server's own cost (see the profile above).")
            self.w()
        pool = self.sweep("pool", "target")
        if pool and len(pool["runs"]) >= 2:
            one = next((r for r in pool["runs"] if r["settings"].get("FLUSH_WORKERS") == "1"), None)
            two = next((r for r in pool["runs"] if r["settings"].get("FLUSH_WORKERS") == "2"), None)
            if one and two:
                self.w("### Optimization #2: flush workers on a machine PostgreSQL shares")
                self.w()
                self.w(f"**Date:** {pool['started_at'][:10]}  ")
                self.w("**Issue:** each flush worker drives one PostgreSQL backend; on 2 cores shared with PostgreSQL and the load, "
                       "parallel flushes compete with the gRPC threads.  ")
                self.w(f"**Evidence and results ({link(pool)}, target rate):** p99 with 2 workers {ms(two['load']['latency_ms']['p99'])}, "
                       f"with 1 worker {ms(one['load']['latency_ms']['p99'])}; commit latency p99 {ms(two['summary'].get('commit_p99_ms'))} "
                       f"and {ms(one['summary'].get('commit_p99_ms'))}.  ")
                self.w("**Conclusion:** see the pool table for the capacity side; keep FLUSH_WORKERS at the database's cores when "
                       "PostgreSQL has its own machine.")
                self.w()
        for number, comparison in enumerate(self.comparisons, start=3):
            about = comparison["about"]
            self.w(f"### Optimization #{number}: {about['title']}")
            self.w()
            self.w(f"**Date:** {about.get('date', 'n/a')}  ")
            self.w(f"**Issue:** {about['issue']}  ")
            if about.get("evidence"):
                self.w(f"**Evidence:** {about['evidence']}  ")
            self.w(f"**Hypothesis:** {about['hypothesis']}  ")
            self.w(f"**Implementation:** {about['implementation']}  ")
            self.ab_results(comparison)

    def ab_results(self, comparison):
        """An A/B's table and verdict: at the target rate, p99 per run (lower is better); for a
        drain (`AB_BENCH=drain`), events per service core-second per run (higher is better)."""
        about, a, b, folder = comparison["about"], comparison["A"], comparison["B"], comparison["folder"]
        med = lambda runs, key: statistics.median(r[key] for r in runs)
        if comparison["kind"] == "drain":
            how = (f"`AB_BENCH=drain scripts/bench-ab.sh`, [{folder}]({folder}/summary.txt): {len(a)} + {len(b)} drains of "
                   "1,000,000 Kafka events onto 50,000 keys, A and B alternated on the same machine; bench-drain writes no "
                   "result unless the table is exact")
            key, lower, label, show = "per_core", False, "events per service core-second", fmt
            columns = ["events per service core-second, each run", "median", "events/s median", "× the run's ceiling, median"]
            cells = lambda runs: [" / ".join(fmt(r["per_core"]) for r in runs), fmt(med(runs, "per_core")),
                                  fmt(med(runs, "events_per_second")), fmt(med(runs, "ratio"), 2)]
        else:
            how = (f"`scripts/bench-ab.sh`, [{folder}]({folder}/summary.txt): {len(a)} + {len(b)} target runs at "
                   "1,000 events/s with the generator, A and B alternated on the same machine")
            key, lower, label, show = "p99", True, "p99", ms
            columns = ["p99 of each run", "p99 median", "p50 median", "service CPU per 1,000 events", "failed"]
            cells = lambda runs: [" / ".join(ms(r["p99"]) for r in runs), ms(med(runs, "p99")), ms(med(runs, "p50")),
                                  f"{fmt(med(runs, 'cpu_per_1000'), 3)} s", str(sum(r["failed"] for r in runs))]
        self.w(f"**Results** ({how}):")
        self.w()
        self.w("| | runs | " + " | ".join(columns) + " |")
        self.w("|---|---|" + "---|" * len(columns))
        for side, runs in (("A: " + about["a"], a), ("B: " + about["b"], b)):
            self.w(f"| {side} | {len(runs)} | " + " | ".join(cells(runs)) + " |")
        self.w()
        change = med(b, key) / med(a, key) if med(a, key) else None
        self.w(f"**Conclusion:** {ab_verdict(a, b, key, lower_is_better=lower)}: median {label} {show(med(a, key))} → "
               f"{show(med(b, key))}{f' ({change:.2f}×)' if change is not None else ''}. {about.get('conclusion', '')}".rstrip())
        self.w()

    def common_issues(self):
        self.w("## Common Performance Issues")
        self.w()
        pool_t = self.sweep("pool", "stress")
        flush_t = self.sweep("flush-interval", "stress")
        soak = self.profile("soak")
        endurance = self.profile("endurance")

        def capacity(data, label_key, value):
            for run in (data or {}).get("runs", []):
                if run["settings"].get(label_key) == value and run.get("breaking_point"):
                    p = run["breaking_point"]
                    return p["last_good_eps"] if p["limit"] != "none" else p["achieved_eps"]
            return None
        self.w("### Issue: Database Connection Pool Saturation")
        if pool_t:
            one, four = capacity(pool_t, "FLUSH_WORKERS", "1"), capacity(pool_t, "FLUSH_WORKERS", "4")
            self.w(f"**Expected improvement:** from 1 to 4 flush workers, the highest held rate went from {fmt(one)} to {fmt(four)} events/s "
                   f"({pct(four, one)}; {link(pool_t)}).")
        self.w()
        self.w("### Issue: High CPU Usage")
        target = self.profile("target")
        if target and run_of(target, "service"):
            s = run_of(target, "service")["summary"]
            self.w(f"**Expected improvement:** the service used {fmt(s['system_cpu_percent_mean'])}% of one core at the target rate "
                   f"({fmt(s['events_per_core_second'])} events per core-second, {link(target)}); each added instance adds that much capacity "
                   f"until PostgreSQL's ceiling (rows/s in the profile table) is the limit.")
        self.w()
        self.w("### Issue: Memory Pressure")
        for data, name in ((endurance, "endurance"), (soak, "soak")):
            if data and run_of(data, "service"):
                s = run_of(data, "service")["summary"]
                self.w(f"**Measured ({name}, {link(data)}):** RSS {fmt(s['rss_start_mb'])} MB at the start of the load, peak {fmt(s['rss_peak_mb'])} MB, "
                       f"{fmt(s['rss_end_mb'])} MB at the end.")
        self.w()
        self.w("### Issue: Buffer Overflow")
        if flush_t:
            half, five = capacity(flush_t, "BUFFER_FLUSH_INTERVAL", "500ms"), capacity(flush_t, "BUFFER_FLUSH_INTERVAL", "5s")
            self.w(f"**Expected improvement:** the flush interval moved the highest held rate from {fmt(half)} (0.5 s) to {fmt(five)} events/s (5 s) "
                   f"({link(flush_t)}); a full buffer answers RESOURCE_EXHAUSTED, which the bridge retries: nothing is dropped.")
        self.w()

    def drain(self):
        drain = self.r.get(("drain",))
        if not drain:
            return
        self.w("## Kafka drain")
        self.w()
        self.w(f"`make bench-drain` ({link(drain)}): events pre-produced to the development broker (librdkafka's mock cluster), then "
               "consumed to commit by the service; the table is checked afterwards.")
        self.w()
        self.w("| scenario | events | keys | events/s | × ceiling | service CPU s | events per core-s |")
        self.w("|---|---|---|---|---|---|---|")
        c = ceiling_mean(drain)
        for s in drain.get("scenarios", []):
            self.w(f"| {s['name']} | {fmt(s['events'])} | {fmt(s['keys'])} | {fmt(s['events_per_second'])} | {ratio(s['events_per_second'], c, 2)} | "
                   f"{fmt(s['service_cpu_seconds'], 1)} | {fmt(s['events_per_service_core_second'])} |")
        self.w()

    def sources(self):
        self.w("## Results files used")
        self.w()
        for key, data in sorted(self.r.items(), key=lambda kv: kv[1].get("started_at", "")):
            if key[0] == "drain-partial" or key[-1] in ("redis", "service-only"):
                continue  # not used by this report
            self.w(f"- {link(data)}: {' '.join(str(k) for k in key)}, commit `{data.get('commit', '?')}`")
        self.w()


def check_text(run):
    v = run["verification"]
    if not v["checked"]:
        return "not checked: " + ("stopped early" if run["load"].get("stopped_early") else "failed calls")
    return "exact" if v["exact"] else "**DIFFERS**"


def pct(new, old):
    if not new or not old:
        return "n/a"
    change = 100 * (new - old) / old
    return f"{change:+.0f}%"


def pct_latency(new, old):
    """Lower is better: a positive figure is an improvement."""
    if not new or not old:
        return "n/a"
    change = 100 * (old - new) / old
    return f"{change:+.0f}% ({'better' if change >= 0 else 'worse'})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="bench/results")
    parser.add_argument("--out", default="PERFORMANCE.md")
    parser.add_argument("--ab", metavar="FOLDER", help="print the summary of one scripts/bench-ab.sh comparison and exit")
    args = parser.parse_args()
    if args.ab:
        print_comparison(args.ab)
        return 0
    results = load_results(args.results)
    if not any(k[0] == "profile" for k in results):
        print("bench-report: no profile results in " + args.results + " (run make bench)", file=sys.stderr)
        return 1
    report = Report(results, load_comparisons(args.results))
    report.header()
    report.glance()
    report.profiles_table()
    report.pool()
    report.flush_interval()
    report.postgres()
    report.code_level()
    report.alerts()
    report.production()
    report.checklist()
    report.optimization_log()
    report.common_issues()
    report.drain()
    report.sources()
    text = "\n".join(report.lines).rstrip() + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(f"bench-report: wrote {args.out} from {len(results)} results files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
