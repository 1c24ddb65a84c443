#!/usr/bin/env python3
"""Renders a fault-report file (JSON lines written by the fault-injection suite, see
Tests/EventHandlerTests/FaultReport.swift) as the "What it survives" table of docs/reliability.md."""
import json
import sys


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    print(f"<!-- from {path} -->")
    print("| fault | load held | events sent | answers not OK, retried | logins lost | logins applied twice | rows differing from the model | recovery |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        recovery = "n/a" if r.get("recoverySeconds") is None else f"{r['recoverySeconds']:.2f} s ({r['recoveredWhen']})"
        print(
            f"| {r['fault']} | {r['load']} | {r['eventsSent']:,} | {r['retried']:,} | {r['loginsLost']} "
            f"| {r['loginsDoubled']} | {r['rowsDiffering']} | {recovery} |"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fault-table.py bench/results/faults-<time>.jsonl")
    main(sys.argv[1])
