"""Benchmark: how long `POST /api/deployments` keeps the client for a 1,000-file repository (request
-> 202), next to how long the clone + source upload that used to run inside it take now that a
source worker runs them (POST -> `queued`), and POST -> `deployed`, in the same run.

Run: `.venv/bin/python bench/post_latency.py [--rounds N] [--files N] [--code DIR]`.

`--code DIR` starts the stack from another checkout of percel (its devstack, API and workers), e.g.
the code before the source step left the request: `git archive <commit> | tar -x -C DIR`.

One stack (the processes `make run` starts, on free ports: gunicorn API, one build runner, the
source worker, redis-server, moto's S3). One git repository; per round every file gets new bytes
(random, 300 B to 4 KB) and is committed, so each round clones and uploads all of them. Then the
same commit is deployed again (its source reused: no clone). The record is polled every 20 ms.
Medians of the rounds, in JSON.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.memo_bench import report  # noqa: E402

POLL = 0.02


def write_round(repo: Path, files: int, round_: int) -> None:
    rng = random.Random(round_)
    for n in range(files):
        path = repo / "pages" / f"{n:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(rng.randint(300, 4096)))
    (repo / "index.html").write_text(f"<h1>round {round_}</h1>")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    if not (repo / ".git").exists():
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", f"round {round_}"], cwd=repo, check=True)


def timed_deploy(services: ModuleType, stack: Any, body: dict) -> dict[str, float]:
    """Seconds from the POST to its 202, to the first `queued` (or later) status, to `deployed`."""
    token = stack.admin_token
    started = time.perf_counter()
    created = services.api(stack.api_url, "POST", "/api/deployments", body, token=token)
    answered = time.perf_counter() - started
    assert created["status"] in ("uploading", "queued"), created
    queued = math.nan
    while True:
        record = services.api(stack.api_url, "GET", f"/api/deployments/{created['id']}", token=token)
        if math.isnan(queued) and record["status"] not in ("uploading",):
            queued = time.perf_counter() - started
        if record["status"] not in ("uploading", "queued", "building"):
            break
        time.sleep(POLL)
    assert record["status"] == "deployed", record.get("error")
    return {"post": answered, "queued": queued, "deployed": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--code", help="start the stack from this percel checkout instead")
    args = parser.parse_args()
    if args.code:  # before this checkout's devstack and chalicelib (memo_bench imported them)
        sys.path.insert(0, str(Path(args.code).resolve()))
        for name in [n for n in sys.modules if n.partition(".")[0] in ("devstack", "chalicelib")]:
            del sys.modules[name]
    services = importlib.import_module("devstack.services")
    print(f"stack code: {Path(services.__file__).resolve().parent.parent}", file=sys.stderr)
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="post-bench-") as scratch:
        root = Path(scratch)
        repo = root / "repo"
        repo.mkdir()
        stack = services.start_stack(root / "stack", services.free_port())
        try:
            for round_ in range(args.rounds):
                write_round(repo, args.files, round_)
                body = {"repo_url": f"file://{repo}"}
                for kind in ("new", "same_commit"):
                    for phase, seconds in timed_deploy(services, stack, body).items():
                        figures.setdefault(f"{kind}_{phase}", []).append(seconds)
                print(json.dumps({name: round(values[-1], 3) for name, values in figures.items()}),
                      file=sys.stderr, flush=True)
        finally:
            stack.stop()
    print(report(figures, files=args.files, rounds=args.rounds))


if __name__ == "__main__":
    main()
