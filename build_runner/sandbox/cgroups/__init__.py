"""Per-build memory and process-count limits, on cgroup v1 or v2, as root.

`hierarchy()` reads which one this host mounts at /sys/fs/cgroup: v2 when the mount
point itself holds cgroup.controllers (the unified hierarchy, runc's docs/cgroup-v2.md
test), else v1's per-controller mounts (hybrid hosts included: there the memory and pids
controllers are bound to v1, and the unified mount at /sys/fs/cgroup/unified has none).
Either way one build gets one `BuildCgroup`; its first process joins the group(s) before
it execs bwrap, so every process of the build is counted and limited from the start.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from build_runner.sandbox.cgroups.v1 import V1Hierarchy
from build_runner.sandbox.cgroups.v2 import V2Hierarchy

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "percel"


class BuildCgroup(Protocol):
    memory_mb: int
    max_pids: int
    location: Path  # where to look when something is left behind

    def create(self) -> None: ...
    @property
    def procs_files(self) -> list[str]: ...  # where a process writes its pid to join
    def limit_hit(self) -> str | None: ...
    def kill_all(self, wait: float = 5.0) -> bool: ...
    def remove(self) -> bool: ...


class Hierarchy(Protocol):
    version: int

    def prepare(self) -> str | None: ...
    def group(self, name: str, *, memory_mb: int, max_pids: int) -> BuildCgroup: ...
    def group_names(self) -> list[str]: ...


def hierarchy(root: Path = CGROUP_ROOT) -> Hierarchy:
    if (root / "cgroup.controllers").exists():
        return V2Hierarchy(root, PARENT)
    return V1Hierarchy(root, PARENT)


def cgroup_problem(cgroups: Hierarchy | None = None) -> str | None:
    """None when per-build memory and pids cgroups can be made here (delegating them on v2)."""
    return (cgroups or hierarchy()).prepare()


def sweep_abandoned(cgroups: Hierarchy | None = None) -> int:
    """Remove the build cgroups of runners that no longer exist; returns how many.

    A runner killed mid-build (kill -9, OOM) never removes its cgroups. They are named
    `<runner pid>-<random>`: a group whose runner pid is gone is killed empty and removed.
    """
    cgroups = cgroups or hierarchy()
    removed = 0
    for name in cgroups.group_names():
        owner = name.split("-", 1)[0]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        group = cgroups.group(name, memory_mb=0, max_pids=0)
        if group.kill_all(wait=1.0) and group.remove():
            removed += 1
    return removed
