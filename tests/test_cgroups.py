"""Build cgroups on the real kernel, as root: the v1 hierarchy, and the parts of v2 this
host's unified hierarchy allows.

This development machine is a hybrid host: memory and pids are bound to v1, and the
cgroup2 mount (/sys/fs/cgroup/unified) offers only hugetlb. So the v2 tests below run the
delegation steps (the no-internal-processes rule, the runner's leaf, the sweep,
cgroup.kill) on the real kernel with whatever domain controller the unified hierarchy
offers; memory.max and pids.max themselves could not be exercised here
(build_runner/README.md, "cgroup v2").
"""
import errno
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from build_runner.sandbox.cgroups import PARENT, hierarchy, sweep_abandoned
from build_runner.sandbox.cgroups.v1 import V1Hierarchy
from build_runner.sandbox.cgroups.v2 import RUNNER_LEAF, V2Hierarchy, own_cgroup
from tests.vm import cgroup2_vm

CGROUP_ROOT = Path("/sys/fs/cgroup")


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def unified_mount() -> Path:
    """Where this host mounts cgroup2: /sys/fs/cgroup on v2 hosts, .../unified on hybrid ones."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if fields[1].split()[0] == "cgroup2":
            return Path(fields[0].split()[4])
    pytest.fail("no cgroup2 mount on this host")


@pytest.fixture
def scratch():
    """A cgroup of our own in the unified hierarchy, removed afterwards with everything in it."""
    root = unified_mount() / f"percel-test-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    yield root
    for group in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [root]:
        try:
            (group / "cgroup.kill").write_text("1")
        except OSError:
            pass
        for _ in range(100):
            try:
                group.rmdir()
                break
            except OSError:
                subprocess.run(["sleep", "0.02"])


def domain_controllers(group: Path) -> tuple[str, ...]:
    """The runner's controllers where the kernel offers them, else one it does offer here
    (hybrid host: hugetlb), so the delegation rules still run for real."""
    offered = (group / "cgroup.controllers").read_text().split()
    if not offered:
        # A fresh hybrid host enables nothing below the unified root: hand `group` what the root
        # offers (hugetlb here), as a delegating manager would. Tests that ran earlier on the
        # same boot may already have, so this cannot depend on it.
        delegate(group.parent, tuple(name for name in ("hugetlb", "io", "rdma", "misc")
                                     if name in (group.parent / "cgroup.controllers").read_text().split()))
        offered = (group / "cgroup.controllers").read_text().split()
    if "memory" in offered and "pids" in offered:
        return ("memory", "pids")
    usable = [name for name in ("hugetlb", "io", "rdma", "misc") if name in offered]
    if not usable:
        pytest.fail(f"the unified hierarchy offers no domain controller here: {offered}")
    return (usable[0],)


def delegate(parent: Path, controllers: tuple[str, ...]) -> None:
    (parent / "cgroup.subtree_control").write_text(" ".join(f"+{name}" for name in controllers))


def sleeper_in(group: Path) -> subprocess.Popen:
    process = subprocess.Popen(["sleep", "300"])
    (group / "cgroup.procs").write_text(str(process.pid))
    return process


def cgroup_of(pid: int) -> str:
    return own_cgroup(Path(f"/proc/{pid}/cgroup"))


def relative(group: Path) -> str:
    return "/" + str(group.relative_to(unified_mount()))


# --- v1 --------------------------------------------------------------------------

@pytest.mark.skipif(not (CGROUP_ROOT / "pids" / "cgroup.procs").exists(), reason="no cgroup v1 on this host")
def test_v1_cgroups_of_dead_runners_are_swept_and_live_ones_kept():
    cgroups = V1Hierarchy(CGROUP_ROOT, PARENT)
    assert cgroups.prepare() is None
    orphan = cgroups.group(f"{dead_pid()}-sweeptest", memory_mb=64, max_pids=16)
    mine = cgroups.group(f"{os.getpid()}-sweeptest", memory_mb=64, max_pids=16)
    orphan.create()
    mine.create()
    try:
        assert sweep_abandoned(cgroups) >= 1
        assert not orphan.pids.exists() and not orphan.memory.exists()
        assert mine.pids.exists() and mine.memory.exists()
        assert (CGROUP_ROOT / "pids" / PARENT).exists()
    finally:
        for group in (orphan, mine):
            group.kill_all(wait=1.0)
            group.remove()


def test_the_hierarchy_in_use_is_the_one_mounted_at_sys_fs_cgroup():
    v2_host = (CGROUP_ROOT / "cgroup.controllers").exists()
    assert hierarchy().version == (2 if v2_host else 1)


# --- v2 --------------------------------------------------------------------------

def test_v2_refuses_without_delegated_memory_and_pids(scratch):
    """A runner whose cgroup was given no controllers says so instead of running unlimited builds."""
    undelegated = scratch / "runner"
    undelegated.mkdir()
    problem = V2Hierarchy(unified_mount(), PARENT, own=relative(undelegated)).prepare()
    assert problem is not None
    assert "memory and pids" in problem and "not delegated" in problem and str(undelegated) in problem


def test_v2_runner_moves_into_a_leaf_to_enable_controllers(scratch):
    """The runner sits in its delegated cgroup (as in a container): the kernel refuses to
    enable controllers there until it has moved into a leaf, which prepare() does."""
    controllers = domain_controllers(scratch)
    delegate(scratch, controllers)
    base = scratch / "container"
    base.mkdir()
    runner = sleeper_in(base)
    try:
        with pytest.raises(OSError) as refused:  # the no-internal-processes rule, for real
            delegate(base, controllers)
        assert refused.value.errno == errno.EBUSY

        cgroups = V2Hierarchy(unified_mount(), PARENT, controllers=controllers, own=relative(base))
        assert cgroups.prepare() is None
        assert cgroup_of(runner.pid) == relative(base / RUNNER_LEAF)
        assert set(controllers) <= set((base / "cgroup.subtree_control").read_text().split())
        assert set(controllers) <= set((base / PARENT / "cgroup.subtree_control").read_text().split())
        # Started again from inside its leaf, the runner finds the same base, and nothing moves.
        again = V2Hierarchy(unified_mount(), PARENT, controllers=controllers, own=relative(base / RUNNER_LEAF))
        assert again.builds == base / PARENT and again.prepare() is None
    finally:
        runner.kill()
        runner.wait()


def test_v2_sweep_kills_and_removes_groups_of_dead_runners_only(scratch):
    controllers = domain_controllers(scratch)
    delegate(scratch, controllers)
    cgroups = V2Hierarchy(unified_mount(), PARENT, controllers=controllers, own=relative(scratch / "runner"))
    (scratch / "runner").mkdir()
    assert cgroups.prepare() is None
    orphan, mine = cgroups.builds / f"{dead_pid()}-sweeptest", cgroups.builds / f"{os.getpid()}-sweeptest"
    orphan.mkdir()
    mine.mkdir()
    left_behind = [sleeper_in(orphan) for _ in range(3)]  # a build whose runner was kill -9'd
    try:
        assert sweep_abandoned(cgroups) == 1
        assert not orphan.exists() and mine.exists()
        for process in left_behind:
            assert process.wait(timeout=5) == -9
    finally:
        for process in left_behind:
            process.kill()
            process.wait()


# --- v2 limits, in a cgroup-v2-only VM -------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(600)
def test_v2_limits_stop_builds_in_a_cgroup_v2_only_vm(tmp_path):
    """The real bwrap sandbox in a guest kernel with only the unified hierarchy (this host's
    kernel binds memory and pids to v1): a fork bomb stops at pids.max, a memory hog is
    OOM-killed at memory.max, each reported as the runner reports it, and nothing is left."""
    lacking = cgroup2_vm.missing()
    if lacking:
        pytest.skip(f"cannot boot the cgroup v2 VM without {lacking} (make install installs it)")
    report, console = cgroup2_vm.run_guest(Path(cgroup2_vm.__file__).with_name("cgroup2_guest.py"), tmp_path)
    assert report["version"] == 2, console
    # The runner started in the container's cgroup and moved itself into the leaf.
    assert report["runner_cgroup"] == f"0::/container/{RUNNER_LEAF}"
    assert report["hello"] == {"exit_code": 0, "reason": None, "lines": ["hello"]}
    assert report["fork"]["reason"] == "process limit reached (32 processes)"
    assert report["fork"]["exit_code"] != 0
    assert report["memory"] == {"exit_code": None, "reason": "out of memory (limit 64 MiB)", "lines": []}
    assert report["left_over_groups"] == []
