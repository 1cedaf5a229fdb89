"""What the dulwich client (docs/DECISIONS.md#gitless) costs next to the git binary: the median
time of `resolve_ref` and of a depth-1 `clone` of a small file:// repository, per client.

    .venv/bin/python bench/clone_clients.py --rounds 10 --files 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.pipeline.clone import CloneLimits, clone, resolve_ref  # noqa: E402


def make_origin(root: Path, files: int) -> str:
    root.mkdir()
    for i in range(files):
        (root / f"f{i}.txt").write_text(f"file {i}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *command], cwd=root, env=env, check=True)
    return f"file://{root}"


def measure(url: str, work: Path, rounds: int) -> tuple[float, float]:
    resolved, cloned = [], []
    limits = CloneLimits(timeout=60, max_files=100_000, max_bytes=512 * 1024 * 1024)
    for i in range(rounds):
        start = time.perf_counter()
        resolve_ref(url, "main", 60)
        resolved.append(time.perf_counter() - start)
        start = time.perf_counter()
        clone(url, "main", work / f"c{os.environ.get('GIT_CLIENT', 'git')}{i}", limits)
        cloned.append(time.perf_counter() - start)
    return statistics.median(resolved), statistics.median(cloned)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--files", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        url = make_origin(work / "origin", args.files)
        for client in ("git", "dulwich"):
            if client == "dulwich":
                os.environ["GIT_CLIENT"] = "dulwich"
            else:
                os.environ.pop("GIT_CLIENT", None)
            resolved, cloned = measure(url, work, args.rounds)
            print(f"{client:8} resolve_ref {resolved:.3f} s  clone {cloned:.3f} s  ({args.files} files)")


if __name__ == "__main__":
    main()
