"""Runs inside the cgroup-v2-only VM that tests/vm/cgroup2_vm.py boots: the real bwrap
sandbox, as the runner would use it, with small limits. Prints one JSON line.

The VM's init put this process in /sys/fs/cgroup/container with memory and pids
delegated to it, as a container engine does, so prepare() meets the no-internal-processes
rule for real.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from build_runner.sandbox import make_sandbox
from build_runner.sandbox.cgroups import hierarchy
from chalicelib.settings import Settings

MARKER = "PERCEL-VM-RESULT "
MEMORY_MB, MAX_PIDS = 64, 32
COMMANDS = {
    "hello": "echo hello",
    # 100 background sleeps against a limit of 32 processes.
    "fork": "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; wait",
    # A string doubled until it no longer fits in 64 MiB.
    "memory": "awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
}


def main() -> None:
    settings = Settings(build_sandbox="bwrap", build_network="registries", build_memory_mb=MEMORY_MB,
                        build_max_pids=MAX_PIDS, build_tmp_mb=16)
    sandbox = make_sandbox(settings)
    report: dict[str, object] = {
        "version": hierarchy().version,
        "runner_cgroup": Path("/proc/self/cgroup").read_text().strip(),
    }
    for name, command in COMMANDS.items():
        job = Path(tempfile.mkdtemp(prefix="job-"))
        (job / "work").mkdir()
        (job / "home").mkdir()
        lines: list[str] = []
        result = sandbox.run(command, workdir=job / "work", home=job / "home", env={"CI": "1"},
                             network=False, timeout=60, on_line=lines.append)
        report[name] = {"exit_code": result.exit_code, "reason": result.reason, "lines": lines[-5:]}
    report["left_over_groups"] = hierarchy().group_names()
    print(MARKER + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
