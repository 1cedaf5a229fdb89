"""The bubblewrap backend: namespaces, a read-only system, cgroup limits, no network.

One `run()` = one `bwrap` process tree:
- --unshare-all + --unshare-user: own PID, IPC, UTS, cgroup, network and user
  namespaces; uid/gid 1000 inside, every capability dropped, no nested user
  namespaces (--disable-userns).
- a read-only /usr (+ the /bin, /lib* links), a synthesized /etc with only what
  builds read (CA bundle, passwd/group/hosts), a size-bounded tmpfs /tmp; only
  the work directory and the private home are writable.
- the network namespace is empty except loopback: the host's loopback (our Redis)
  is unreachable, and so is everything else. For install, an allow-list proxy
  listens on a UNIX socket bind-mounted into the sandbox (build_runner/netproxy.py).
- killing bwrap's pid-namespace init (pid 1 inside) makes the kernel kill every
  process of the namespace, setsid and double-forked daemons included
  (pid_namespaces(7)); --die-with-parent ties that init to the runner.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from build_runner.sandbox import (OnLine, RunResult, base_env, format_seconds, kill_group, pump,
                                  spawn)
from chalicelib.settings import Settings

BWRAP = "/usr/bin/bwrap"
SANDBOX_UID = 1000
SANDBOX_GID = 1000
# The top-level system directories a build may read. On merged-/usr systems the
# last four are symlinks into /usr and are recreated as symlinks.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# /etc pieces copied read-only: TLS trust (the egress proxy's CA lives in the
# bundle, DESIGN.md) and the npm/node globals some images keep under /etc.
ETC_READ_ONLY = ("/etc/ssl", "/etc/ca-certificates", "/etc/alternatives", "/etc/npmrc",
                 "/etc/localtime", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                 "/etc/nsswitch.conf", "/etc/mime.types")


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap can create the namespaces we need here, else why not."""
    if not os.access(BWRAP, os.X_OK):
        return f"{BWRAP} not found"
    argv = [BWRAP, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
            "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *system_mounts(), "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit code {done.returncode}")


def system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def etc_mounts(private: Path) -> list[str]:
    """A minimal /etc: the host's user database is replaced by one build user."""
    (private / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                    f"build:x:{SANDBOX_UID}:{SANDBOX_GID}:build:/home/build:/bin/sh\n"
                                    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    (private / "group").write_text(f"root:x:0:\nbuild:x:{SANDBOX_GID}:\nnogroup:x:65534:\n")
    (private / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    args = ["--dir", "/etc"]
    for name in ("passwd", "group", "hosts"):
        args += ["--ro-bind", str(private / name), f"/etc/{name}"]
    for path in ETC_READ_ONLY:
        args += ["--ro-bind-try", path, path]
    return args


class BwrapSandbox:
    name = "bwrap"

    def __init__(self, settings: Settings, *, log: logging.Logger | None = None) -> None:
        self._settings = settings
        self._log = log or logging.getLogger(__name__)

    def run(self, command: str, *, workdir: Path, home: Path, env: dict[str, str], network: bool,
            timeout: float, on_line: OnLine) -> RunResult:
        private = Path(tempfile.mkdtemp(prefix="percel-sandbox-"))
        try:
            argv = self.argv(command, workdir=workdir, home=home, private=private)
            proc = spawn(argv, cwd=workdir, env=base_env(str(home), env))
            try:
                timed_out = pump(proc, on_line, timeout)
            finally:
                kill_group(proc.pid)
                proc.stdout.close()
                proc.wait()
        finally:
            shutil.rmtree(private, ignore_errors=True)
        if timed_out:
            return RunResult(None, True, f"timed out after {format_seconds(timeout)}")
        return RunResult(proc.returncode, False, None)

    def argv(self, command: str, *, workdir: Path, home: Path, private: Path) -> list[str]:
        tmp_bytes = self._settings_int("build_tmp_mb", 512) * 1024 * 1024
        return [BWRAP, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
                "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "percel-build",
                *system_mounts(), *etc_mounts(private),
                "--proc", "/proc", "--dev", "/dev",
                "--size", str(tmp_bytes), "--tmpfs", "/tmp",
                "--bind", str(home), str(home), "--bind", str(workdir), str(workdir),
                "--chdir", str(workdir), "--", "/bin/sh", "-c", command]

    def _settings_int(self, name: str, default: int) -> int:
        return int(getattr(self._settings, name, default))
