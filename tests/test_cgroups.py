"""Build cgroups on the real cgroup v1 hierarchy (as root): limits, and the sweep of leftovers."""
import os
import subprocess

from build_runner.sandbox.cgroups import CGROUP_ROOT, PARENT, BuildCgroup, sweep_abandoned


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_cgroups_of_dead_runners_are_swept_and_live_ones_kept():
    orphan = BuildCgroup(f"{dead_pid()}-sweeptest", memory_mb=64, max_pids=16)
    mine = BuildCgroup(f"{os.getpid()}-sweeptest", memory_mb=64, max_pids=16)
    orphan.create()
    mine.create()
    try:
        assert sweep_abandoned() >= 1
        assert not orphan.pids.exists() and not orphan.memory.exists()
        assert mine.pids.exists() and mine.memory.exists()
        assert (CGROUP_ROOT / "pids" / PARENT).exists()
    finally:
        for group in (orphan, mine):
            group.kill_all(wait=1.0)
            group.remove()
