"""Reading and writing cgroup interface files, the same on both hierarchies.

`cgroup.procs` (one pid a line) and flat-keyed stats files ("key value" lines:
pids.events, memory.events, v1's memory.oom_control) have one format in v1 and v2
(Documentation/admin-guide/cgroup-v2.rst, "Interface Files").
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def read_pids(procs: Path) -> list[int]:
    try:
        return [int(line) for line in procs.read_text().split()]
    except FileNotFoundError:
        return []


def counter(path: Path, key: str) -> int:
    """The value of a "key value" line of a flat-keyed stats file, 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (FileNotFoundError, ValueError):
        pass
    return 0


def limit_reached(*, oom_kills: int, fork_refusals: int, memory_mb: int, max_pids: int) -> str | None:
    """Which limit a build ran into, in words (the same on both hierarchies), or None."""
    if oom_kills > 0:
        return f"out of memory (limit {memory_mb} MiB)"
    if fork_refusals > 0:
        return f"process limit reached ({max_pids} processes)"
    return None


def try_write(path: Path, value: str) -> None:
    """Write an optional knob: swap accounting is off (swapaccount=0) or absent on many hosts."""
    try:
        path.write_text(value)
    except OSError:
        pass


def kill_listed(procs: Path, wait: float) -> bool:
    """SIGKILL every pid in `procs` until it stays empty; True once it is.

    Looping is needed because a fork bomb can fork between our read and our kill.
    """
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pids = read_pids(procs)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    return not read_pids(procs)


def remove_dirs(*paths: Path) -> bool:
    """rmdir each cgroup; False when one is still busy (a process survived)."""
    removed = True
    for path in paths:
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            removed = False
    return removed
