"""Run the fault tests N times and total their trials and losses per scenario.

    .venv/bin/python bench/reliability.py --runs 3

Each run starts its own stack (tests/test_faults.py); the figures each run records are
summed into one markdown table, the one bench/RELIABILITY.md shows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def run_once(figures: Path) -> int:
    env = {**os.environ, "RELIABILITY_FIGURES": str(figures)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_faults.py"],
                          cwd=PROJECT, env=env, timeout=900).returncode


def totals(figures: Path) -> dict[str, dict[str, int]]:
    summed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in figures.read_text().splitlines():
        for scenario, counts in json.loads(line).items():
            for name, value in counts.items():
                summed[scenario][name] += value
    return summed


def table(summed: dict[str, dict[str, int]]) -> str:
    rows = ["| scenario | trials | outcome |", "|---|---|---|"]
    for scenario, counts in summed.items():
        rest = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "trials")
        rows.append(f"| {scenario} | {counts['trials']} | {rest} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        figures = Path(scratch) / "figures.jsonl"
        failures = sum(run_once(figures) != 0 for _ in range(args.runs))
        print(table(totals(figures)))
        print(f"\n{args.runs} runs of tests/test_faults.py, {failures} failed")


if __name__ == "__main__":
    main()
