"""Benchmark: POST -> `deployed` for an unchanged redeploy of the Vite React template (its build
reused: docs/DECISIONS.md#memoized-builds), next to a new commit's deploy and a forced rebuild of the
same commit in the same run.

Run: `.venv/bin/python bench/memo_bench.py [--rounds N]`.

One stack (the processes `make run` starts, on free ports); the official Vite React template
scaffolded once and committed. Per round: a deploy of a fresh commit (a new line in
README.md, so nothing is reused), then an unchanged redeploy of that commit (reused), then
`"force": true` (built again, with the dependency cache warm). Medians of the rounds, in JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.deploy_vs_manual import scaffold, sh  # noqa: E402
from devstack import services  # noqa: E402


def timed(stack: services.Stack, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    record = services.deploy_and_wait(stack, body, math.inf, poll=0.02)
    elapsed = time.perf_counter() - started
    assert record["status"] == "deployed", record.get("error")
    return elapsed, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"new_commit": [], "unchanged": [], "forced": []}
    with tempfile.TemporaryDirectory(prefix="memo-bench-") as scratch:
        root = Path(scratch)
        app = scaffold(root)
        stack = services.start_stack(root / "stack", services.free_port())
        try:
            for round_ in range(args.rounds):
                with open(app / "README.md", "a") as readme:
                    readme.write(f"\nround {round_}\n")
                sh("git -c user.name=b -c user.email=b@b commit -qam round", app)
                body = {"repo_url": f"file://{app}"}
                for name, extra in (("new_commit", {}), ("unchanged", {}), ("forced", {"force": True})):
                    seconds, _ = timed(stack, {**body, **extra})
                    figures[name].append(seconds)
                print(json.dumps({name: round(values[-1], 3) for name, values in figures.items()}),
                      file=sys.stderr, flush=True)
        finally:
            stack.stop()
    print(report(figures, rounds=args.rounds))


def report(figures: dict[str, list[float]], **extra: object) -> str:
    """`extra`, then the median and every round's figure of each timing, as JSON."""
    return json.dumps({**extra,
                       "median_seconds": {name: round(statistics.median(values), 3)
                                          for name, values in figures.items()},
                       "all_seconds": {name: [round(v, 3) for v in values]
                                       for name, values in figures.items()}}, indent=2)


if __name__ == "__main__":
    main()
