"""Boot a cgroup-v2-only Linux VM (qemu, emulated) that runs one Python script.

This development machine mounts memory and pids as cgroup v1, so the kernel here cannot
enforce memory.max or pids.max; a guest kernel with only the unified hierarchy can. The
guest is Debian's cloud kernel (linux-image-cloud-amd64) with an initramfs made here: busybox,
bwrap and prlimit, this interpreter's standard library, and our chalicelib and build_runner.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"  # busybox-static: no libraries needed
TOOLS = ("/usr/bin/bwrap", "/usr/bin/prlimit")
STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo",
               "__pycache__", "unittest", "pydoc_data", "config-3.11-x86_64-linux-gnu"}
# bwrap's pivot_root fails on the initramfs itself (rootfs cannot be unmounted), so the
# first stage moves everything onto a tmpfs and switches root to it.
INIT = """#!/usr/bin/busybox sh
mount -t tmpfs -o size=600m root /mnt
for entry in /*; do case $entry in /proc|/sys|/dev|/mnt) ;; *) cp -a $entry /mnt/ ;; esac; done
mkdir -p /mnt/proc /mnt/sys /mnt/dev /mnt/tmp
exec switch_root /mnt /stage2
"""
STAGE2 = """#!/usr/bin/busybox sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp; mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/container && echo $$ > /sys/fs/cgroup/container/cgroup.procs
cd /app && PYTHONPATH=/app {python} -B /app/guest.py
poweroff -f
"""


def kernel() -> Path | None:
    """Debian's link to the newest installed kernel, else the newest in /boot."""
    if Path("/vmlinuz").exists():
        return Path("/vmlinuz")
    found = sorted(Path("/boot").glob("vmlinuz-*"))
    return found[-1] if found else None


def missing() -> str | None:
    """What this host lacks to boot the VM, or None."""
    for need, what in ((shutil.which(QEMU), "qemu-system-x86 (qemu-system-x86_64)"),
                       (kernel(), "a kernel in /boot (linux-image-cloud-amd64)"),
                       (os.access(BUSYBOX, os.X_OK), "busybox-static"),
                       (shutil.which("cpio"), "cpio")):
        if not need:
            return what
    return None


def _copy(source: Path, root: Path) -> None:
    target = root / source.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target, follow_symlinks=True)


def _libraries(binaries: list[Path]) -> set[Path]:
    found = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0] if parts else ""
            if path.startswith("/"):
                found.add(Path(path))
    return found


def build_initramfs(guest: Path, work: Path) -> Path:
    root = work / "root"
    for name in ("proc", "sys", "dev", "tmp", "mnt", "app", "etc", "usr/bin", "usr/lib", "usr/lib64"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        (root / link).symlink_to(target)
    shutil.copy2(BUSYBOX, root / "usr/bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        if not (root / "usr/bin" / applet).exists():
            (root / "usr/bin" / applet).symlink_to("busybox")
    python = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = stdlib / "lib-dynload"
    binaries = [python, *map(Path, TOOLS), *dynload.glob("*.so")]
    for path in [python, *map(Path, TOOLS), *_libraries(binaries)]:
        _copy(path, root)
    for folder, dirs, files in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in STDLIB_SKIP]
        for name in files:
            if not name.endswith(".pyc"):
                _copy(Path(folder) / name, root)
    for package in ("chalicelib", "build_runner"):
        shutil.copytree(ROOT / package, root / "app" / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(guest, root / "app/guest.py")
    for name, script in (("init", INIT), ("stage2", STAGE2.format(python=python))):
        (root / name).write_text(script)
        (root / name).chmod(0o755)
    image = work / "initramfs.cpio"
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
    with image.open("wb") as out:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=names.encode(), stdout=out,
                       check=True)
    return image


def run_guest(guest: Path, work: Path, *, timeout: float = 300) -> tuple[dict, str]:
    """Boot the VM with `guest` as its program; (the JSON it printed, the whole console)."""
    image = build_initramfs(guest, work)
    # Emulated, not KVM: on this machine (itself a VM) a nested KVM guest hung at boot, and
    # with -cpu host qemu failed on MSR 0x10a. The emulated guest boots and runs in ~15 s.
    # cgroup_no_v1=all: no controller may be bound to v1, as on a current distribution.
    argv = [QEMU, "-accel", "tcg", "-m", "768", "-smp", "1", "-nodefaults", "-no-reboot", "-display", "none",
            "-serial", "stdio", "-kernel", str(kernel()), "-initrd", str(image),
            "-append", "console=ttyS0 panic=-1 cgroup_no_v1=all quiet"]
    console = subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout
    for line in console.splitlines():
        if line.startswith("PERCEL-VM-RESULT "):
            return json.loads(line.split(" ", 1)[1]), console
    raise AssertionError(f"the VM printed no result:\n{console[-4000:]}")
