"""cgroup v2: one unified hierarchy, limits on a delegated subtree.

Documentation/admin-guide/cgroup-v2.rst is the reference for every rule used here:
- A process's cgroup is the "0::<path>" line of /proc/self/cgroup; inside a cgroup
  namespace (Docker and Kubernetes on v2) the path is "/" and the mount shows only the
  container's own subtree.
- A controller can be used in a child only if the parent lists it in cgroup.controllers
  (what was delegated to us) and enables it in cgroup.subtree_control.
- "No internal processes": a cgroup other than the root that enables a domain controller
  (memory, pids) in subtree_control may hold no process itself, so the write fails with
  EBUSY while the runner sits there. The runner then moves every process of its cgroup
  into a leaf (`RUNNER_LEAF`) and enables the controllers again. In a container or a
  systemd unit with Delegate=yes every process there is ours.

The layout, with <base> the runner's own cgroup:
    <base>/                      subtree_control: memory pids
      percel-runner/             the runner's processes (and their non-build children)
      percel/                    subtree_control: memory pids
        <runner pid>-<random>/   one build: memory.max, memory.swap.max, pids.max
"""
from __future__ import annotations

import errno
from pathlib import Path

from build_runner.sandbox.base import MiB
from build_runner.sandbox.cgroups.files import counter, kill_listed, limit_reached, read_pids, remove_dirs, try_write

CONTROLLERS = ("memory", "pids")
RUNNER_LEAF = "percel-runner"
# Tries of "move our cgroup's processes to the leaf, enable the controllers": a process
# may fork into the base between the two steps (another runner starting beside us).
ENABLE_TRIES = 5


def own_cgroup(proc_file: Path = Path("/proc/self/cgroup")) -> str:
    """This process's path in the unified hierarchy ("/" at the root or a namespace's root)."""
    for line in proc_file.read_text().splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return "/"


class V2Hierarchy:
    version = 2

    def __init__(self, mount: Path, parent: str, *, controllers: tuple[str, ...] = CONTROLLERS,
                 own: str | None = None) -> None:
        base = mount / (own if own is not None else own_cgroup()).lstrip("/")
        # An earlier prepare() (this process, or the runner that forked us) already moved us.
        self.base = base.parent if base.name == RUNNER_LEAF else base
        self.builds = self.base / parent
        self.controllers = controllers

    def prepare(self) -> str | None:
        """Enable the controllers for per-build groups; None when ready, else why not."""
        offered = _words(self.base / "cgroup.controllers")
        missing = [name for name in self.controllers if name not in offered]
        if missing:
            return (f"cgroup v2: the {' and '.join(missing)} controller(s) are not delegated to {self.base} "
                    f"(its cgroup.controllers: {' '.join(offered) or 'none'})")
        problem = self._enable(self.base, move_processes=True)
        if problem:
            return problem
        try:
            self.builds.mkdir(exist_ok=True)
        except OSError as exc:
            return _refusal(f"cannot create {self.builds}", exc)
        return self._enable(self.builds, move_processes=False)

    def _enable(self, group: Path, *, move_processes: bool) -> str | None:
        control = group / "cgroup.subtree_control"
        for _ in range(ENABLE_TRIES):
            if set(self.controllers) <= set(_words(control)):
                return None
            try:
                control.write_text(" ".join(f"+{name}" for name in self.controllers))
                return None
            except OSError as exc:
                if exc.errno != errno.EBUSY or not move_processes:
                    return _refusal(f"cannot enable {' '.join(self.controllers)} in {control}", exc)
            problem = self._move_processes_to_leaf()
            if problem:
                return problem
        return f"{group} keeps getting new processes: cannot enable {' '.join(self.controllers)} in it"

    def _move_processes_to_leaf(self) -> str | None:
        leaf = self.base / RUNNER_LEAF
        try:
            leaf.mkdir(exist_ok=True)
        except OSError as exc:
            return _refusal(f"cannot create {leaf}", exc)
        for pid in read_pids(self.base / "cgroup.procs"):
            try:
                (leaf / "cgroup.procs").write_text(str(pid))
            except ProcessLookupError:
                pass  # it exited meanwhile
            except OSError as exc:
                return _refusal(f"cannot move process {pid} into {leaf}", exc)
        return None

    def group(self, name: str, *, memory_mb: int, max_pids: int) -> V2Cgroup:
        return V2Cgroup(self.builds / name, memory_mb=memory_mb, max_pids=max_pids)

    def group_names(self) -> list[str]:
        return [p.name for p in self.builds.iterdir() if p.is_dir()] if self.builds.exists() else []


class V2Cgroup:
    """The one cgroup of one sandboxed command, with its memory and process limits."""

    def __init__(self, path: Path, *, memory_mb: int, max_pids: int) -> None:
        self.memory_mb = memory_mb
        self.max_pids = max_pids
        self.location = path

    def create(self) -> None:
        self.location.mkdir()
        (self.location / "memory.max").write_text(str(self.memory_mb * MiB))
        # v2 counts swap apart from memory (v1's memsw counted both): no swap at all keeps
        # the build within memory.max. Absent when the kernel has no swap accounting.
        try_write(self.location / "memory.swap.max", "0")
        (self.location / "pids.max").write_text(str(self.max_pids))

    @property
    def procs_files(self) -> list[str]:
        return [str(self.location / "cgroup.procs")]

    def limit_hit(self) -> str | None:
        return limit_reached(oom_kills=counter(self.location / "memory.events", "oom_kill"),
                             fork_refusals=counter(self.location / "pids.events", "max"),
                             memory_mb=self.memory_mb, max_pids=self.max_pids)

    def kill_all(self, wait: float = 5.0) -> bool:
        """Kill every process in the group; True once it is empty.

        cgroup.kill (Linux 5.14) kills the whole group at once, so a fork bomb cannot
        outrun it; older kernels get the SIGKILL loop v1 uses.
        """
        try:
            (self.location / "cgroup.kill").write_text("1")
        except OSError:
            pass  # the kernel predates cgroup.kill (or the group is gone already)
        return kill_listed(self.location / "cgroup.procs", wait)

    def remove(self) -> bool:
        return remove_dirs(self.location)


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _refusal(what: str, exc: OSError) -> str:
    if exc.errno == errno.EROFS:  # moby/moby#46763: Docker mounts it read-only unless --privileged
        return (f"{what}: /sys/fs/cgroup is mounted read-only "
                "(build_runner/README.md, privileges per host type)")
    return f"{what}: {exc.strerror}"
