"""How much memory an app's install (and build) needs in percel's bwrap sandbox.

Run: `.venv/bin/python bench/memory_probe.py <app dir> --limits 2048,4096 [--steps install,build]`
(as root, on a cgroup v1 host, like the runner). For each BUILD_MEMORY_MB value the app is
copied to a scratch folder with a fresh home, gets the toolchain percel would give it, and runs
its detected install (and build) command in the sandbox, while a thread samples the build's
cgroup (`/sys/fs/cgroup/memory/percel/<this pid>-*`, build_runner/README.md "Limits") every
0.2 s: `memory.max_usage_in_bytes` (page cache included) and the peak of `memory.stat`
total_rss + total_shmem (shmem: the tmpfs /tmp). Figures and the reading: bench/README.md, "Memory".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_runner import frameworks
from build_runner.sandbox import make_sandbox
from build_runner.toolchain import Toolchains
from chalicelib.settings import Settings
from devstack.services import registry_allowance

CGROUPS = Path("/sys/fs/cgroup/memory/percel")
MIB = 1024 * 1024


class Sampler(threading.Thread):
    """The peaks of this process's build cgroups while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"max_usage": 0, "rss+shmem": 0, "shmem": 0}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for cgroup in CGROUPS.glob(f"{os.getpid()}-*"):
                try:
                    usage = int((cgroup / "memory.max_usage_in_bytes").read_text())
                    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
                except (OSError, ValueError):
                    continue  # the cgroup went away between glob and read
                self.peak["max_usage"] = max(self.peak["max_usage"], usage)
                self.peak["rss+shmem"] = max(self.peak["rss+shmem"],
                                             int(stat["total_rss"]) + int(stat["total_shmem"]))
                self.peak["shmem"] = max(self.peak["shmem"], int(stat["total_shmem"]))
            time.sleep(0.2)


def probe(app: Path, scratch: Path, limit_mb: int, steps: list[str]) -> None:
    settings = Settings(build_sandbox="bwrap", build_memory_mb=limit_mb, work_dir=str(scratch),
                        build_proxy_allow_cidrs=registry_allowance())
    sandbox = make_sandbox(settings)
    project, home = scratch / f"m{limit_mb}" / "src", scratch / f"m{limit_mb}" / "home"
    shutil.copytree(app, project, ignore=shutil.ignore_patterns("node_modules", ".git"))
    home.mkdir(parents=True)
    plan = frameworks.detect(project)
    toolchain = Toolchains.from_settings(settings).prepare(project, plan.package_manager, None)
    try:
        for step in steps:
            command = plan.install_command if step == "install" else plan.build_command
            sampler, lines = Sampler(), []
            sampler.start()
            started = time.perf_counter()
            result = sandbox.run(command, workdir=project, home=home, env={"CI": "1"}, network=True,
                                 timeout=900, on_line=lines.append, tools=toolchain.dirs)
            sampler.done.set()
            sampler.join()
            print(json.dumps({"limit_mb": limit_mb, "step": step, "command": command, "ok": result.ok,
                              "reason": result.reason, "seconds": round(time.perf_counter() - started, 1),
                              **{f"{k}_mib": v // MIB for k, v in sampler.peak.items()}}), flush=True)
            if not result.ok:
                print("\n".join(lines[-8:]), flush=True)
                return
    finally:
        toolchain.release()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("app", type=Path, help="the app's folder (with its lockfile)")
    parser.add_argument("--limits", default="2048,4096", help="BUILD_MEMORY_MB values, comma-separated")
    parser.add_argument("--steps", default="install", help="install, or install,build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="percel-memory-") as scratch:
        for limit in args.limits.split(","):
            probe(args.app.resolve(), Path(scratch), int(limit), args.steps.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
