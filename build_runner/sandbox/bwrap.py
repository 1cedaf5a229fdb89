"""The bubblewrap backend: namespaces, a read-only system, cgroup limits, a filtered network.

One `run()` = one `bwrap` process tree:
- --unshare-all + --unshare-user: own PID, IPC, UTS, cgroup, network and user
  namespaces; uid/gid 1000 inside, every capability dropped, no nested user
  namespaces (--disable-userns).
- a read-only /usr (+ the /bin, /lib* links), a synthesized /etc with only what
  builds read (CA bundle, passwd/group/hosts), a size-bounded tmpfs /tmp; only
  the work directory and the private home are writable. When they are the only two
  entries of one job directory, that directory is bound once (one mount, so pnpm can
  hard-link from its store) and made unwritable to the build (job_mounts).
- its own network namespace, so the host's loopback (our Redis) is never reachable.
  BUILD_NETWORK=public: the runner attaches slirp4netns and an nftables filter to it
  before the command starts (public_network.py). BUILD_NETWORK=registries: it stays
  empty except loopback, and for install an allow-list proxy listens on a UNIX socket
  bind-mounted into the sandbox (network.py).
- killing bwrap's pid-namespace init (pid 1 inside) makes the kernel kill every
  process of the namespace, setsid and double-forked daemons included
  (pid_namespaces(7)); --die-with-parent ties that init to the runner.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from build_runner.sandbox.base import (
    POPEN_SIGNALS,
    SANDBOX_GID,
    SANDBOX_UID,
    SHELL_SIGNALS,
    Cancel,
    MiB,
    OnLine,
    RunResult,
    base_env,
    exited,
    kill_group,
    serialized,
    spawn,
    stopped,
    supervise,
    tool_path,
)
from build_runner.sandbox.cgroups import BuildCgroup, Hierarchy, cgroup_problem, hierarchy, sweep_abandoned
from build_runner.sandbox.network import (
    FORWARDER,
    FORWARDER_MOUNT,
    SOCKET_DIR,
    InstallNetwork,
    forwarder_argv,
    proxy_env,
)
from build_runner.sandbox.public_network import Gate, NetworkSetupFailed, PublicNetwork, resolv_conf
from chalicelib.settings import Settings

BWRAP = "/usr/bin/bwrap"
PRLIMIT = "/usr/bin/prlimit"
# bwrap exits with its child's status, and the child is a shell (or the forwarder, which
# keeps the shell's convention): a signal is 128 + its number, or -N when bwrap itself died.
BWRAP_SIGNALS = frozenset(POPEN_SIGNALS) | frozenset(SHELL_SIGNALS)
# The top-level system directories a build may read. On merged-/usr systems the
# last four are symlinks into /usr and are recreated as symlinks.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# /etc pieces copied read-only: TLS trust (an intercepting egress proxy's CA lives in
# the bundle, see base.CA_BUNDLE) and the npm/node globals some images keep under /etc.
ETC_READ_ONLY = ("/etc/ssl", "/etc/ca-certificates", "/etc/alternatives", "/etc/npmrc",
                 "/etc/localtime", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                 "/etc/nsswitch.conf", "/etc/mime.types")


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap can create the namespaces we need here, else why not."""
    if not os.access(BWRAP, os.X_OK):
        return f"{BWRAP} not found"
    if not os.access(PRLIMIT, os.X_OK):
        return f"{PRLIMIT} (util-linux) not found: it sets the file size limit"
    problem = cgroup_problem()
    if problem:
        return f"no memory/process limits: {problem}"
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


def etc_mounts(private: Path, *, resolver: bool = False) -> list[str]:
    """A minimal /etc: the host's user database is replaced by one build user; with
    `resolver`, resolv.conf names the public network's DNS forwarder."""
    (private / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                    f"build:x:{SANDBOX_UID}:{SANDBOX_GID}:build:/home/build:/bin/sh\n"
                                    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    (private / "group").write_text(f"root:x:0:\nbuild:x:{SANDBOX_GID}:\nnogroup:x:65534:\n")
    (private / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    names = ["passwd", "group", "hosts"]
    if resolver:
        (private / "resolv.conf").write_text(resolv_conf())
        names.append("resolv.conf")
    args = ["--dir", "/etc"]
    for name in names:
        args += ["--ro-bind", str(private / name), f"/etc/{name}"]
    for path in ETC_READ_ONLY:
        args += ["--ro-bind-try", path, path]
    return args


# The owner the job directory gets when it is bound whole (job_mounts): a host uid the
# sandbox's user namespace does not map (it maps only SANDBOX_UID, to the runner's uid), so
# inside it reads as nobody's, and without capabilities the build cannot add, rename or
# remove its entries.
JOB_DIR_OWNER = 65534


def job_mounts(workdir: Path, home: Path) -> list[str]:
    """The writable binds: the job directory once when it holds exactly `home` and `workdir`,
    else each of them.

    Two bind mounts are two mounts even on one filesystem, and link(2) across mounts fails
    with EXDEV: pnpm then copies every file from its store (in HOME) into node_modules
    instead of hard-linking it (docs/DECISIONS.md#sandbox-job-dir, bench/BUILD.md (c)).
    The job directory itself is given to JOB_DIR_OWNER, so the build can still write only
    in `home` and `workdir`; anything else in the directory (a checkout above a root_dir
    `workdir`, another file) means two binds, as before.
    """
    separate = ["--bind", str(home), str(home), "--bind", str(workdir), str(workdir)]
    job = home.parent
    if workdir.parent != job or workdir == home or os.geteuid() == JOB_DIR_OWNER:
        return separate
    if sorted(entry.name for entry in job.iterdir()) != sorted((home.name, workdir.name)):
        return separate
    try:
        os.chown(job, JOB_DIR_OWNER, JOB_DIR_OWNER)
        os.chmod(job, 0o755)
    except OSError:  # the runner is not root: it cannot seal the directory
        return separate
    return ["--bind", str(job), str(job)]


class BwrapSandbox:
    name = "bwrap"

    def __init__(self, settings: Settings, *, log: logging.Logger | None = None) -> None:
        self._settings = settings
        self._log = log or logging.getLogger(__name__)
        self._network = InstallNetwork(settings)
        # BUILD_NETWORK=public: both steps get the filtered public network (public_network.py).
        self._public = PublicNetwork(self._network.allow_cidrs) if settings.build_network == "public" else None
        self._cgroups: Hierarchy = hierarchy()  # prepared by bwrap_problem(), which make_sandbox checks
        swept = sweep_abandoned(self._cgroups)
        if swept:
            self._log.info("removed %d build cgroups left by runners that died", swept)

    def run(self, command: str, *, workdir: Path, home: Path, env: dict[str, str], network: bool,
            timeout: float, on_line: OnLine, cancel: Cancel | None = None,
            tools: Sequence[Path] = ()) -> RunResult:
        on_line = serialized(on_line)  # the proxy thread reports refusals concurrently
        private = Path(tempfile.mkdtemp(prefix="percel-sandbox-"))
        cgroup = self._cgroups.group(f"{os.getpid()}-{uuid.uuid4().hex[:12]}",
                                     memory_mb=self._settings.build_memory_mb,
                                     max_pids=self._settings.build_max_pids)
        cgroup.create()
        try:
            with contextlib.ExitStack() as stack:
                child_env = base_env(str(home), env, path=tool_path(tools))
                # In public mode the install step still gets the proxy when the runner itself
                # reaches the registry only through one (HTTPS_PROXY).
                use_proxy = network and (self._public is None or self._network.has_upstream)
                if use_proxy:
                    stack.enter_context(self._network.proxy(private / "net", on_line))
                    child_env.update(proxy_env())
                gate = stack.enter_context(contextlib.closing(Gate())) if self._public else None
                argv = self.launcher(cgroup) + self.argv(command, workdir=workdir, home=home, private=private,
                                                         network=use_proxy, gate=gate, tools=tools)
                returncode, timed_out = self._execute(argv, workdir, child_env, timeout, on_line, cgroup,
                                                      cancel, gate)
            limit = cgroup.limit_hit()
        except NetworkSetupFailed as exc:  # the command never ran
            return RunResult(None, False, f"the build network could not be set up: {exc}")
        finally:
            if not (cgroup.kill_all() and cgroup.remove()):
                self._log.error("build processes survived in %s; cgroup left in place", cgroup.location)
            shutil.rmtree(private, ignore_errors=True)
        if timed_out:
            return stopped(timeout, cancel)
        return exited(returncode, signals=BWRAP_SIGNALS, limit=limit,
                      file_limit_mb=self._settings.build_max_file_mb)

    def _execute(self, argv: list[str], workdir: Path, env: dict[str, str], timeout: float,
                 on_line: OnLine, cgroup: BuildCgroup, cancel: Cancel | None = None,
                 gate: Gate | None = None) -> tuple[int, bool]:
        proc = spawn(argv, cwd=workdir, env=env, pass_fds=gate.child_fds if gate else ())

        def stop() -> None:
            # Killing bwrap takes its pid namespace down (--die-with-parent on the inner init);
            # sweeping the cgroup as well covers anything that raced the kill.
            kill_group(proc.pid)
            cgroup.kill_all()
        if gate is None or self._public is None:
            timed_out = supervise(proc, on_line, timeout, cancel, stop)
            return proc.returncode, timed_out
        try:
            attachment = gate.open(self._public, on_line)
        except NetworkSetupFailed:
            stop()
            proc.wait()
            raise
        with contextlib.closing(attachment) if attachment else contextlib.nullcontext():
            timed_out = supervise(proc, on_line, timeout, cancel, stop)
            if attachment:
                attachment.report_refusals()
        return proc.returncode, timed_out

    def launcher(self, cgroup: BuildCgroup) -> list[str]:
        """Join the build's cgroups (two on v1, one on v2), set the file size limit, then exec
        bwrap: all before any child exists."""
        join = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
        files = cgroup.procs_files
        return ["/bin/sh", "-c", join, "percel-sandbox", str(len(files)), *files,
                PRLIMIT, f"--fsize={self._settings.build_max_file_mb * MiB}", "--"]

    def argv(self, command: str, *, workdir: Path, home: Path, private: Path, network: bool = False,
             gate: Gate | None = None, tools: Sequence[Path] = ()) -> list[str]:
        tmp_bytes = self._settings.build_tmp_mb * MiB
        argv = [BWRAP, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
                "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "percel-build",
                *system_mounts(), *etc_mounts(private, resolver=gate is not None),
                "--proc", "/proc", "--dev", "/dev",
                "--size", str(tmp_bytes), "--tmpfs", "/tmp", *job_mounts(workdir, home)]
        for tool in tools:  # after /tmp's tmpfs and the binds: WORK_DIR may lie under /tmp
            argv += ["--ro-bind", str(tool), str(tool)]
        if network:
            argv += ["--dir", "/run", "--ro-bind", str(private / "net"), SOCKET_DIR,
                     "--ro-bind", str(FORWARDER), FORWARDER_MOUNT]
        if gate is not None:  # held before the command until the public network is attached
            argv += gate.bwrap_args()
        # bwrap builds the root in a tmpfs; freeze it so /etc, /run and / itself are read-only too.
        argv += ["--remount-ro", "/", "--chdir", str(workdir), "--"]
        if not network:
            return argv + ["/bin/sh", "-c", command]
        return argv + forwarder_argv(command)

