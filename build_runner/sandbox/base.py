"""Run one untrusted build command (install or build) in a sandbox.

Every build runs code from someone else's repository (issue 4). `make_sandbox`
picks a backend from `settings.build_sandbox`:

- bwrap: bubblewrap namespaces + cgroup v1 limits + an allow-list proxy for the
  install step (build_runner/bwrap.py). The default here and inside the runner image.
- docker / podman: a throwaway container per command (build_runner/containers.py).
- none: a plain subprocess, for development only; refused unless named explicitly.

All backends share one contract: `run()` runs `sh -c <command>` in `workdir`,
streams merged stdout+stderr line by line to `on_line`, enforces a wall-clock
timeout on the whole process tree and never passes the runner's own environment
(AWS_*, REDIS_URL, ...) to the child.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from chalicelib.settings import Settings

# The CA bundle holds the TLS-intercepting egress proxy's CA on this machine
# (DESIGN.md, sandbox facts); Node ignores the system store unless told.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A line longer than this is cut into pieces so a build printing megabytes
# without a newline cannot grow the runner's memory.
MAX_LINE_BYTES = 64 * 1024
# After the main process exits, output still buffered in the pipe is read for this long.
DRAIN_SECONDS = 1.0

OnLine = Callable[[str], None]


class Cancel(Protocol):
    """Anything with is_set(), e.g. a threading.Event the runner sets when a user cancels."""

    def is_set(self) -> bool: ...


class SandboxUnavailable(RuntimeError):
    """The configured sandbox backend cannot run on this machine."""


@dataclass
class RunResult:
    exit_code: int | None  # None when killed
    timed_out: bool
    reason: str | None  # human text when killed/limited, e.g. "timed out after 900 s"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Sandbox(Protocol):
    name: str

    def run(self, command: str, *, workdir: Path, home: Path, env: dict[str, str], network: bool,
            timeout: float, on_line: OnLine, cancel: Cancel | None = None) -> RunResult: ...


def base_env(home: str, env: dict[str, str], *, path: str = SANDBOX_PATH) -> dict[str, str]:
    """The child's whole environment: the caller's build env plus what every build needs.

    Built from scratch, never from os.environ, so the runner's secrets cannot leak.
    The sandbox's own keys win: a user env must not move HOME out of the private home.
    """
    child = dict(env)
    child.update(PATH=path, HOME=home, LANG="C.UTF-8")
    if os.path.exists(CA_BUNDLE):
        child.update(NODE_EXTRA_CA_CERTS=CA_BUNDLE, SSL_CERT_FILE=CA_BUNDLE)
    return child


class LineSplitter:
    """Turns a byte stream into decoded lines for on_line, with no trailing newline."""

    def __init__(self, on_line: OnLine) -> None:
        self._on_line = on_line
        self._pending = b""

    def feed(self, data: bytes) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._pending) > MAX_LINE_BYTES:
            self._emit(self._pending[:MAX_LINE_BYTES])
            self._pending = self._pending[MAX_LINE_BYTES:]

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def _emit(self, line: bytes) -> None:
        self._on_line(line.rstrip(b"\r").decode("utf-8", errors="replace"))


def pump(proc: subprocess.Popen, on_line: OnLine, timeout: float,
         cancel: Cancel | None = None) -> bool:
    """Stream proc's stdout to on_line until EOF, the deadline or a cancel; True when the
    deadline hit or the run was cancelled (the caller then kills everything).

    select() on the raw fd instead of a reader thread: a process that escaped the
    process tree can hold the pipe open forever, and a blocked read cannot be cancelled.
    """
    fd = proc.stdout.fileno()
    splitter = LineSplitter(on_line)
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > DRAIN_SECONDS:
                return False
            if now >= deadline or (cancel is not None and cancel.is_set()):
                return exited_at is None
            ready, _, _ = select.select([fd], [], [], min(deadline - now, 0.2))
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    return False
                splitter.feed(data)
    finally:
        splitter.close()


def supervise(proc: subprocess.Popen, on_line: OnLine, timeout: float, cancel: Cancel | None,
              stop: Callable[[], None]) -> bool:
    """pump() the process's output, then `stop` whatever is left of it (every backend kills
    differently), close the pipe and reap the process. True when the deadline or a cancel
    ended the run."""
    try:
        return pump(proc, on_line, timeout, cancel)
    finally:
        stop()
        proc.stdout.close()
        proc.wait()


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def describe_exit(returncode: int) -> tuple[int | None, str | None]:
    """Popen's returncode -> (exit_code, reason): a negative code means a signal killed it."""
    if returncode >= 0:
        return returncode, None
    sig = -returncode
    if sig == signal.SIGXFSZ:
        return None, "file size limit exceeded"
    return None, f"killed by signal {signal.Signals(sig).name}"


def spawn(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start argv in its own session so that one killpg reaches the whole group."""
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)


def format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def stopped(timeout: float, cancel: Cancel | None) -> RunResult:
    """The result of a run that was killed at its deadline or by a cancel."""
    if cancel is not None and cancel.is_set():
        return RunResult(None, False, "cancelled")
    return RunResult(None, True, f"timed out after {format_seconds(timeout)}")


class NoneSandbox:
    """No isolation at all: a plain subprocess with a clean environment and a timeout.

    For development on machines without bubblewrap or a container engine. The
    build can read the runner's files and reach its network; a daemon that calls
    setsid() escapes the process-group kill. Only used when BUILD_SANDBOX=none.
    """

    name = "none"

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logging.getLogger(__name__)

    def run(self, command: str, *, workdir: Path, home: Path, env: dict[str, str], network: bool,
            timeout: float, on_line: OnLine, cancel: Cancel | None = None) -> RunResult:
        self._log.warning("BUILD_SANDBOX=none: running %r without isolation", command)
        # The runner's PATH, not the sandbox's: unsandboxed, node may live anywhere (nvm, pyenv).
        child_env = base_env(str(home), env, path=os.environ.get("PATH", SANDBOX_PATH))
        proc = spawn(["sh", "-c", command], cwd=workdir, env=child_env)
        # Kill the group's leftovers, also after a normal exit.
        timed_out = supervise(proc, on_line, timeout, cancel, lambda: kill_group(proc.pid))
        if timed_out:
            return stopped(timeout, cancel)
        return _result(proc.returncode)


def _result(returncode: int) -> RunResult:
    exit_code, reason = describe_exit(returncode)
    return RunResult(exit_code=exit_code, timed_out=False, reason=reason)


def make_sandbox(settings: Settings, *, log: logging.Logger | None = None) -> Sandbox:
    """The backend named by settings.build_sandbox; "auto" picks the strongest that works here."""
    log = log or logging.getLogger(__name__)
    choice = settings.build_sandbox.strip().lower()
    if choice == "none":
        log.warning("BUILD_SANDBOX=none: builds run WITHOUT isolation; never use this with untrusted repositories")
        return NoneSandbox(log)
    if choice == "auto":
        return _auto(settings, log)
    if choice == "bwrap":
        from build_runner.sandbox.bwrap import BwrapSandbox, bwrap_problem

        problem = bwrap_problem()
        if problem:
            raise SandboxUnavailable(f"BUILD_SANDBOX=bwrap but bubblewrap does not work here: {problem}")
        return BwrapSandbox(settings, log=log)
    if choice in ("docker", "podman"):
        from build_runner.sandbox.containers import ContainerSandbox, engine_answers

        if not engine_answers(choice):
            raise SandboxUnavailable(f"BUILD_SANDBOX={choice} but `{choice} info` fails: "
                                     f"is {choice} installed and its engine running?")
        return ContainerSandbox(settings, engine=choice, log=log)
    raise SandboxUnavailable(f"unknown BUILD_SANDBOX={settings.build_sandbox!r}: use auto, bwrap, docker, podman or none")


def _auto(settings: Settings, log: logging.Logger) -> Sandbox:
    from build_runner.sandbox.bwrap import BwrapSandbox, bwrap_problem

    problem = bwrap_problem()
    if problem is None:
        return BwrapSandbox(settings, log=log)
    from build_runner.sandbox.containers import ContainerSandbox, engine_answers

    for engine in ("podman", "docker"):
        if engine_answers(engine):
            log.info("bubblewrap unusable (%s); using %s", problem, engine)
            return ContainerSandbox(settings, engine=engine, log=log)
    raise SandboxUnavailable(
        "BUILD_SANDBOX=auto found no sandbox: bubblewrap does not work here "
        f"({problem}) and neither podman nor docker answers. Install bubblewrap (see "
        "build_runner/README.md for the privileges it needs in a container) or set "
        "BUILD_SANDBOX=none to run builds unisolated, on a development machine only.")
