"""Benchmark: POST -> `deployed` for a Vite React app, against the same work done by hand.

Run: `make bench` (or `.venv/bin/python bench/deploy_vs_manual.py [--rounds N]`).

Both sides start from the same committed repository and a cold npm cache; each later round
deploys a new commit of it (an empty commit: the same files), with both sides' caches warm (npm's
cache by hand; percel's dependency and toolchain caches), so no round is a memoized redeploy:
- percel: the local stack (the processes `make run` starts, on free ports),
  timed from the POST until the status reads `deployed`;
- by hand: `git clone --depth 1`, `npm install`, `npm run build` in a temp dir.
The ratio percel / by-hand is the platform's overhead (clone + upload + queue +
sandbox + output upload + precompression). Each percel round is also split into phases by the
times of its build log's lines (Redis stream ids are millisecond timestamps), printed per round
and as medians, so the platform's share of the time can be read phase by phase.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from chalicelib import keys
from devstack import services

# (phase, the log line that ends it): each phase runs from the previous marker (or the POST) to
# the first line containing its marker, in the order the pipeline writes them.
PHASES = (
    ("POST -> clone starts (API, source worker pick-up)", "percel: cloning "),
    ("clone + source upload", "percel: source uploaded"),
    ("queue, claim, source download, detect", "percel: framework "),
    ("toolchain + dependency cache restore", "percel: install: "),
    ("install (npm, in the sandbox)", "percel: install finished"),
    ("between install and build", "percel: build: "),
    ("build (in the sandbox)", "percel: build finished"),
    ("dependency cache save, scan, compress, upload", "percel: uploaded "),
    ("publish's end -> deployed", "percel: deployed at "),
)


def sh(command: str, cwd: Path, env: dict | None = None) -> None:
    subprocess.run(command, shell=True, cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, **(env or {})})


def scaffold(root: Path) -> Path:
    sh("npm create --yes vite@latest app -- --template react --no-interactive", root,
       {"CI": "1"})
    app = root / "app"
    sh("git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b "
       "commit -qm app", app)
    return app


def by_hand(repo: Path, scratch: Path, cache: Path) -> float:
    started = time.perf_counter()
    sh(f"git clone -q --depth 1 file://{repo} work", scratch)
    sh("npm install --no-audit --no-fund && npm run build", scratch / "work",
       {"npm_config_cache": str(cache), "CI": "1"})
    return time.perf_counter() - started


def via_percel(stack: services.Stack, repo: Path) -> tuple[float, dict, dict[str, float]]:
    posted, started = time.time(), time.perf_counter()
    record = services.deploy_and_wait(stack, {"repo_url": f"file://{repo}"}, math.inf, poll=0.1)
    seconds = time.perf_counter() - started
    return seconds, record, phases(stack, record["id"], posted, posted + seconds)


def phases(stack: services.Stack, deployment_id: str, posted: float, seen: float) -> dict[str, float]:
    """Seconds per phase (PHASES), from the log's line times; the rest until the poll saw
    `deployed` is the last entry."""
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    lines = [(int(entry_id.split(b"-")[0]) / 1000, fields[b"l"].decode("utf-8", "replace"))
             for entry_id, fields in client.xrange(keys.build_log(deployment_id))]
    result, last = {}, posted
    for name, marker in PHASES:
        at = next((t for t, line in lines if marker in line and t >= last), None)
        if at is None:
            continue  # a phase this deployment skipped (e.g. no install)
        result[name] = at - last
        last = at
    result["deployed -> the poll sees it"] = seen - last
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-bench-"))
    stack = services.start_stack(root / "state", services.free_port(), runners=1,
                                 extra_env={"WORK_DIR": str(root / "work")})
    try:
        # A runner that has been up a while holds the default toolchain (TOOLCHAIN_PREFETCH):
        # wait for it, so its download competes with neither side's measured time.
        wait_for_toolchain(stack)
        repo = scaffold(root)
        manual, percel, split = [], [], []
        for round_ in range(args.rounds):
            if round_:  # a new commit each round: percel's memo would otherwise reuse the build
                sh(f"git -c user.name=b -c user.email=b@b commit -q --allow-empty -m round-{round_}", repo)
            scratch = root / f"hand-{round_}"
            scratch.mkdir()
            manual.append(by_hand(repo, scratch, root / "npm-cache"))
            shutil.rmtree(scratch)
            seconds, record, parts = via_percel(stack, repo)
            assert record["status"] == "deployed", record
            percel.append(seconds)
            split.append(parts)
            print(f"round {round_ + 1}: by hand {manual[-1]:.1f} s, percel {seconds:.1f} s: "
                  + ", ".join(f"{name} {value:.2f}" for name, value in parts.items()), flush=True)
        report(manual, percel)
        report_phases(split)
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for_toolchain(stack: services.Stack, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    logs = [runner.log_path for runner in stack.runners()]
    while not all("toolchain ready" in Path(log).read_text(errors="replace") for log in logs):
        if time.monotonic() > deadline:
            raise SystemExit("the runner did not prefetch its toolchain (see its log)")
        time.sleep(0.5)


def report(manual: list[float], percel: list[float]) -> None:
    first_m, first_p = manual[0], percel[0]
    print(f"\nfirst (cold) deploy: percel {first_p:.1f} s vs by hand {first_m:.1f} s "
          f"-> ratio {first_p / first_m:.2f}")
    m, p = statistics.median(manual), statistics.median(percel)
    print(f"every round (median of {len(percel)}): percel {p:.1f} s vs by hand {m:.1f} s "
          f"-> ratio {p / m:.2f}")
    if len(percel) > 1:
        m, p = statistics.median(manual[1:]), statistics.median(percel[1:])
        print(f"repeat deploys (median of {len(percel) - 1}): percel {p:.1f} s vs by hand "
              f"{m:.1f} s -> ratio {p / m:.2f}")



def report_phases(split: list[dict[str, float]]) -> None:
    """The first round's phases, and the medians of the later rounds', in seconds."""
    print("\n| phase | first (s) | repeats, median (s) |\n|---|---:|---:|")
    for name in split[0]:
        later = [parts[name] for parts in split[1:] if name in parts]
        median = f"{statistics.median(later):.2f}" if later else "-"
        print(f"| {name} | {split[0][name]:.2f} | {median} |")


if __name__ == "__main__":
    main()
