"""Per-build memory and process-count limits with cgroup v1, as root.

One build gets /sys/fs/cgroup/memory/percel/<name> and /sys/fs/cgroup/pids/percel/<name>.
The sandbox's first process joins both before it execs bwrap, so every process of the
build is counted and limited from the start. Files and counters are the kernel's cgroup v1
interface: Documentation/admin-guide/cgroup-v1/memory.rst and pids.rst.

cgroup v2 is not handled: this machine mounts only v1 controllers, so v2 code could not
be tested here (see build_runner/README.md).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from build_runner.sandbox.base import MiB

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "percel"


def cgroup_problem(root: Path = CGROUP_ROOT) -> str | None:
    """None when we can create per-build memory and pids cgroups here, else why not."""
    for controller in ("memory", "pids"):
        base = root / controller
        if not (base / "cgroup.procs").exists():
            return f"cgroup v1 {controller} controller is not mounted at {base}"
        try:
            (base / PARENT).mkdir(exist_ok=True)
        except OSError as exc:
            return f"cannot create {base / PARENT}: {exc.strerror}"
    return None


class BuildCgroup:
    """The memory + pids cgroup pair of one sandboxed command."""

    def __init__(self, name: str, *, memory_mb: int, max_pids: int, root: Path = CGROUP_ROOT) -> None:
        self.memory_mb = memory_mb
        self.max_pids = max_pids
        self.memory = root / "memory" / PARENT / name
        self.pids = root / "pids" / PARENT / name

    def create(self) -> None:
        self.memory.mkdir(parents=True)
        self.pids.mkdir(parents=True)
        limit = str(self.memory_mb * MiB)
        (self.memory / "memory.limit_in_bytes").write_text(limit)
        # Without this, a host with swap would let the build swap past its limit.
        _try_write(self.memory / "memory.memsw.limit_in_bytes", limit)
        (self.pids / "pids.max").write_text(str(self.max_pids))

    @property
    def procs_files(self) -> list[str]:
        """Where a process writes its pid to join both groups."""
        return [str(self.memory / "cgroup.procs"), str(self.pids / "cgroup.procs")]

    def limit_hit(self) -> str | None:
        """Which limit the build ran into, in words, or None."""
        if _counter(self.memory / "memory.oom_control", "oom_kill") > 0:
            return f"out of memory (limit {self.memory_mb} MiB)"
        if _counter(self.pids / "pids.events", "max") > 0:
            return f"process limit reached ({self.max_pids} processes)"
        return None

    def kill_all(self, wait: float = 5.0) -> bool:
        """SIGKILL every process still in the group; True once the group is empty.

        Looping is needed because a fork bomb can fork between our read and our kill.
        """
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = _read_pids(self.pids / "cgroup.procs")
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        return not _read_pids(self.pids / "cgroup.procs")

    def remove(self) -> bool:
        """Delete both groups; False when one is still busy (a process survived kill_all)."""
        removed = True
        for path in (self.memory, self.pids):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                removed = False
        return removed


def sweep_abandoned(root: Path = CGROUP_ROOT) -> int:
    """Remove the build cgroups of runners that no longer exist; returns how many.

    A runner killed mid-build (kill -9, OOM) never removes its cgroups. They are named
    `<runner pid>-<random>`: a group whose runner pid is gone is killed empty and removed.
    """
    removed = 0
    parent = root / "pids" / PARENT
    names = [p.name for p in parent.iterdir() if p.is_dir()] if parent.exists() else []
    for name in names:
        owner = name.split("-", 1)[0]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        group = BuildCgroup(name, memory_mb=0, max_pids=0, root=root)
        if group.kill_all(wait=1.0) and group.remove():
            removed += 1
    return removed


def _read_pids(procs: Path) -> list[int]:
    try:
        return [int(line) for line in procs.read_text().split()]
    except FileNotFoundError:
        return []


def _counter(path: Path, key: str) -> int:
    """A "key value" line from a cgroup v1 stats file (memory.oom_control, pids.events)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (FileNotFoundError, ValueError):
        pass
    return 0


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass  # memsw accounting is off (swapaccount=0) or absent: nothing to bound
