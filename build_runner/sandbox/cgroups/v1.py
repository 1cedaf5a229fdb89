"""cgroup v1: one hierarchy per controller, mounted at /sys/fs/cgroup/<controller>.

One build gets /sys/fs/cgroup/memory/percel/<name> and /sys/fs/cgroup/pids/percel/<name>.
Files and counters are the kernel's v1 interface: Documentation/admin-guide/cgroup-v1/
memory.rst and pids.rst. No delegation step: as root we may create groups anywhere.
"""
from __future__ import annotations

from pathlib import Path

from build_runner.sandbox.base import MiB
from build_runner.sandbox.cgroups.files import counter, kill_listed, limit_reached, remove_dirs, try_write

CONTROLLERS = ("memory", "pids")


class V1Hierarchy:
    version = 1

    def __init__(self, root: Path, parent: str) -> None:
        self.root = root
        self.parent = parent

    def prepare(self) -> str | None:
        """None when we can create per-build memory and pids cgroups here, else why not."""
        for controller in CONTROLLERS:
            base = self.root / controller
            if not (base / "cgroup.procs").exists():
                return f"cgroup v1 {controller} controller is not mounted at {base}"
            try:
                (base / self.parent).mkdir(exist_ok=True)
            except OSError as exc:
                return f"cannot create {base / self.parent}: {exc.strerror}"
        return None

    def group(self, name: str, *, memory_mb: int, max_pids: int) -> V1Cgroup:
        return V1Cgroup(self.root, self.parent, name, memory_mb=memory_mb, max_pids=max_pids)

    def group_names(self) -> list[str]:
        parent = self.root / "pids" / self.parent
        return [p.name for p in parent.iterdir() if p.is_dir()] if parent.exists() else []


class V1Cgroup:
    """The memory + pids cgroup pair of one sandboxed command."""

    def __init__(self, root: Path, parent: str, name: str, *, memory_mb: int, max_pids: int) -> None:
        self.memory_mb = memory_mb
        self.max_pids = max_pids
        self.memory = root / "memory" / parent / name
        self.pids = root / "pids" / parent / name
        self.location = self.pids

    def create(self) -> None:
        self.memory.mkdir(parents=True)
        self.pids.mkdir(parents=True)
        limit = str(self.memory_mb * MiB)
        (self.memory / "memory.limit_in_bytes").write_text(limit)
        # Without this, a host with swap would let the build swap past its limit.
        try_write(self.memory / "memory.memsw.limit_in_bytes", limit)
        (self.pids / "pids.max").write_text(str(self.max_pids))

    @property
    def procs_files(self) -> list[str]:
        """Where a process writes its pid to join both groups."""
        return [str(self.memory / "cgroup.procs"), str(self.pids / "cgroup.procs")]

    def limit_hit(self) -> str | None:
        return limit_reached(oom_kills=counter(self.memory / "memory.oom_control", "oom_kill"),
                             fork_refusals=counter(self.pids / "pids.events", "max"),
                             memory_mb=self.memory_mb, max_pids=self.max_pids)

    def kill_all(self, wait: float = 5.0) -> bool:
        """SIGKILL every process still in the group; True once the group is empty."""
        return kill_listed(self.pids / "cgroup.procs", wait)

    def remove(self) -> bool:
        """Delete both groups; False when one is still busy (a process survived kill_all)."""
        return remove_dirs(self.memory, self.pids)
