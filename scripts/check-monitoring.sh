#!/usr/bin/env bash
# Checks the monitoring artefacts in deploy/: the Prometheus alert rules and their unit tests, the
# Prometheus configuration and the Grafana dashboard. Needs promtool (Debian package `prometheus`),
# python3 and its yaml module (Debian package `python3-yaml`). Runs from any directory.
#
#   promtool check rules   deploy/prometheus/alerts.yml
#   promtool test rules    deploy/prometheus/alerts.test.yml
#   promtool check config  deploy/prometheus/prometheus.yml
#   dashboard + metric names: the dashboard is valid JSON, every panel has a query, every query
#     parses as PromQL, and every metric and label used by the dashboard, the rules and the tests
#     is one the service exports (deploy/prometheus/metrics.txt); every alert has a firing and a quiet test.
#
# Prints each check and exits non-zero if any failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prom_dir=$root/deploy/prometheus
dashboard=$root/deploy/grafana/event-handler.json

if ! command -v promtool >/dev/null 2>&1; then
  echo "error: promtool not found in PATH." >&2
  echo "       Install the Debian package 'prometheus' (sudo apt-get install prometheus), which provides /usr/bin/promtool." >&2
  exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 not found in PATH; install the Debian package 'python3'." >&2
  exit 2
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "error: the python3 yaml module is missing; install the Debian package 'python3-yaml'." >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
step() {
  local title=$1
  shift
  echo "=== $title"
  if "$@"; then
    echo "--- ok: $title"
  else
    echo "--- FAILED: $title"
    failures=$((failures + 1))
  fi
  echo
}

echo "promtool: $(promtool --version 2>&1 | head -n 1)"
echo "checking $root/deploy"
echo

# promtool resolves rule_files relative to the file that names them; run from that folder anyway so
# that the paths it prints are short.
step "promtool check rules alerts.yml" \
  bash -c 'cd "$1" && promtool check rules alerts.yml' _ "$prom_dir"
step "promtool test rules alerts.test.yml" \
  bash -c 'cd "$1" && promtool test rules alerts.test.yml' _ "$prom_dir"
step "promtool check config prometheus.yml" \
  bash -c 'cd "$1" && promtool check config prometheus.yml' _ "$prom_dir"

# The dashboard and metric-name checks. Also writes every dashboard query, with the Grafana
# variables substituted, as a recording rule to $tmp/dashboard-queries.yml so that promtool can
# parse them.
check_names() {
  python3 - "$prom_dir/alerts.yml" "$prom_dir/alerts.test.yml" "$dashboard" "$tmp/dashboard-queries.yml" \
    "$prom_dir/metrics.txt" <<'PY'
import json
import re
import sys

import yaml

alerts_path, tests_path, dashboard_path, queries_out, metrics_path = sys.argv[1:6]

# ---- What the service exports: deploy/prometheus/metrics.txt, the list the Swift end-to-end
# test also holds the running service to. ---------------------------------------------------
# metric -> (kind, {label: allowed values, or None for any value})
METRICS = {}
with open(metrics_path) as f:
    for line in f:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, kind, *labels = line.split()
        allowed = {}
        for label in labels:
            key, values = label.split("=", 1)
            allowed[key] = None if values == "*" else set(values.split("|"))
        METRICS[name] = (kind, allowed)
TARGET_LABELS = {"instance": None, "job": None}  # added by the scrape

SERIES = {}  # series name -> allowed labels
for name, (kind, labels) in METRICS.items():
    labels = {**TARGET_LABELS, **labels}
    if kind == "histogram":
        SERIES[name + "_bucket"] = {**labels, "le": None}
        SERIES[name + "_sum"] = labels
        SERIES[name + "_count"] = labels
    else:
        SERIES[name] = labels
ALL_LABELS = set().union(*SERIES.values())
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}

errors = []
used = set()


def err(where, msg):
    errors.append(f"{where}: {msg}")
    print(f"error: {where}: {msg}")


reported = [0]


def report(what, ok_text):
    """Prints the result of one section: what was checked, or how many problems it found."""
    found = len(errors) - reported[0]
    reported[0] = len(errors)
    print(f"{what}: {ok_text}" if not found else f"{what}: {found} problem(s), see above")


MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def check_matchers(where, metric, body):
    allowed = SERIES.get(metric) if metric else None
    pos = 0
    while body[pos:].strip():
        m = MATCHER.match(body, pos)
        if not m:
            err(where, f"cannot read label matchers {{{body}}}")
            return
        label, op, value = m.groups()
        pos = m.end()
        if label == "__name__":
            continue
        if label not in ALL_LABELS:
            err(where, f"unknown label {label!r}")
        elif allowed is not None and label not in allowed:
            err(where, f"{metric} has no label {label!r}")
        elif allowed is not None and op in ("=", "!=") and "$" not in value:
            values = allowed.get(label)
            if values is not None and value not in values:
                err(where, f"{metric}{{{label}}} never has the value {value!r} (known: {', '.join(sorted(values))})")


def check_expr(where, expr):
    """Checks every metric and label name of a PromQL expression against the list above."""
    e = expr
    # Selectors with label matchers: check them, then drop the braces.
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", e):
        check_matchers(where, m.group(1), m.group(2))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', " ", e)  # strings
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        for label in filter(None, (l.strip() for l in m.group(2).split(","))):
            if label not in ALL_LABELS:
                err(where, f"grouping by unknown label {label!r}")
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\b(group_left|group_right)\b", " ", e)
    names = re.findall(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(?!\s*\(|[\w:])", e)
    metrics = [n for n in names if n not in KEYWORDS]
    if not metrics:
        err(where, f"no metric in {expr!r}")
    for n in metrics:
        if n in SERIES:
            used.add(n)
        elif n in METRICS:
            err(where, f"{n} is a histogram: use {n}_bucket, {n}_sum or {n}_count")
        else:
            err(where, f"unknown metric {n!r}")


# ---- alerts.yml ---------------------------------------------------------------------------
with open(alerts_path) as f:
    rules_doc = yaml.safe_load(f)
groups = rules_doc.get("groups") or []
if [g.get("name") for g in groups] != ["event-handler"]:
    err("alerts.yml", "expected exactly one group, named event-handler")
alert_names = []
for g in groups:
    for r in g.get("rules") or []:
        name = r.get("alert") or r.get("record")
        where = f"alerts.yml {name}"
        check_expr(where, str(r.get("expr", "")))
        if "alert" not in r:
            continue
        alert_names.append(name)
        if not r.get("for"):
            err(where, "no 'for' duration")
        if (r.get("labels") or {}).get("severity") not in ("warning", "critical"):
            err(where, "labels.severity must be warning or critical")
        for a in ("summary", "description", "runbook"):
            if not str((r.get("annotations") or {}).get(a, "")).strip():
                err(where, f"annotation {a!r} missing or empty")
report("alerts.yml", f"{len(alert_names)} alerts with for, severity, summary, description and runbook; metric and label names known")

# ---- alerts.test.yml: inputs use real series; every alert has a firing and a quiet case -----
with open(tests_path) as f:
    tests_doc = yaml.safe_load(f)
fires, quiet = set(), set()
n_series = 0
for t in tests_doc.get("tests") or []:
    for s in t.get("input_series") or []:
        n_series += 1
        check_expr(f"alerts.test.yml {t.get('name')!r}", s.get("series", ""))
    for a in t.get("alert_rule_test") or []:
        (fires if a.get("exp_alerts") else quiet).add(a.get("alertname"))
for name in alert_names:
    if name not in fires:
        err("alerts.test.yml", f"no test where {name} fires")
    if name not in quiet:
        err("alerts.test.yml", f"no test where {name} stays quiet")
for name in (fires | quiet) - set(alert_names):
    err("alerts.test.yml", f"tests an alert alerts.yml does not define: {name}")
report("alerts.test.yml", f"{n_series} input series of known metrics; every alert has a firing and a quiet case")

# ---- the Grafana dashboard ---------------------------------------------------------------
try:
    with open(dashboard_path) as f:
        dash = json.load(f)
except ValueError as e:
    print(f"error: event-handler.json: not valid JSON: {e}")
    sys.exit(1)


def panels_of(items):
    for p in items:
        yield p
        yield from panels_of(p.get("panels") or [])


variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
if (variables.get("DS_PROMETHEUS") or {}).get("type") != "datasource":
    err("dashboard", "no datasource variable DS_PROMETHEUS")
if (variables.get("instance") or {}).get("type") != "query":
    err("dashboard", "no query variable instance")
if not isinstance(dash.get("schemaVersion"), int):
    err("dashboard", "no schemaVersion")

queries = []  # (where, expr)
for name, v in variables.items():
    if v.get("type") != "query":
        continue
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else str(q or "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_]\w*)\s*\)\s*", q)
    if not m:
        err(f"dashboard variable {name}", f"expected label_values(selector, label), got {q!r}")
        continue
    if m.group(2) not in ALL_LABELS:
        err(f"dashboard variable {name}", f"unknown label {m.group(2)!r}")
    queries.append((f"dashboard variable {name}", m.group(1)))

ids = set()
n_panels = 0
for p in panels_of(dash.get("panels") or []):
    if p.get("type") == "row":
        continue
    n_panels += 1
    where = f"dashboard panel {p.get('title')!r}"
    if p.get("id") in ids:
        err(where, f"duplicate panel id {p.get('id')}")
    ids.add(p.get("id"))
    if not all(k in (p.get("gridPos") or {}) for k in ("h", "w", "x", "y")):
        err(where, "no gridPos")
    targets = p.get("targets") or []
    if not targets:
        err(where, "has no target")
    for ds in [p.get("datasource")] + [t.get("datasource") for t in targets]:
        if (ds or {}).get("uid") != "${DS_PROMETHEUS}":
            err(where, "datasource is not ${DS_PROMETHEUS}")
    for t in targets:
        expr = t.get("expr", "")
        if not expr.strip():
            err(where, f"target {t.get('refId')} has no expr")
        else:
            queries.append((where, expr))

rules = []
for i, (where, expr) in enumerate(queries):
    check_expr(where, expr)
    # Grafana variables -> something promtool can parse.
    e = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
    e = re.sub(r"\$\{?[A-Za-z_]\w*\}?", ".*", e)
    rules.append({"record": f"dashboard:query_{i}", "expr": e})
with open(queries_out, "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f, width=1000)
report("event-handler.json", f"valid JSON, {n_panels} panels each with a target, {len(queries)} queries of known metrics and labels")

unused = sorted(n for n in METRICS if not any(s == n or s.startswith(n + "_") for s in used))
if unused:
    print("note: not used by the dashboard or the rules: " + ", ".join(unused))

sys.exit(1 if errors else 0)
PY
}
step "dashboard JSON and metric names (dashboard, alerts.yml, alerts.test.yml)" check_names

if [ -f "$tmp/dashboard-queries.yml" ]; then
  step "promtool parses every dashboard query" promtool check rules "$tmp/dashboard-queries.yml"
fi

if [ "$failures" -ne 0 ]; then
  echo "FAILED: $failures check(s) failed"
  exit 1
fi
echo "OK: all monitoring checks passed"
