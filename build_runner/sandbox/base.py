"""What every sandbox backend shares: the contract, process plumbing and exit statuses.

Every build runs code from someone else's repository, so every install and build
command goes through a `Sandbox`. All backends share one contract: `run()` runs
`sh -c <command>` in `workdir`, streams merged stdout+stderr line by line to `on_line`,
enforces a wall-clock timeout on the whole process tree and never passes the runner's
own environment (AWS_*, REDIS_URL, ...) to the child. The backends (bwrap.py,
containers.py, plain.py) build on this module; factory.py picks one.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

# The host's CA bundle, given to every build: where an egress proxy intercepts TLS (as on
# the development machine, for the npm registry) its CA is in this bundle, and Node
# ignores the system store unless told (NODE_EXTRA_CA_CERTS).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A line longer than this is cut into pieces so a build printing megabytes
# without a newline cannot grow the runner's memory.
MAX_LINE_BYTES = 64 * 1024
# After the main process exits, output still buffered in the pipe is read for this long.
DRAIN_SECONDS = 1.0
# The build user inside every backend (bwrap's --uid, the containers' --user).
SANDBOX_UID = 1000
SANDBOX_GID = 1000
MiB = 1024 * 1024

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
            timeout: float, on_line: OnLine, cancel: Cancel | None = None,
            tools: Sequence[Path] = ()) -> RunResult:
        """`tools`: directories mounted read-only at the same path, each one's `bin/` put on
        PATH ahead of the system's, first one first (the build's Node.js and package manager)."""
        ...


def tool_path(tools: Sequence[Path], path: str = SANDBOX_PATH) -> str:
    """PATH with the tools' bin directories first."""
    return ":".join([*(str(Path(tool) / "bin") for tool in tools), path])


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
    assert proc.stdout is not None, "spawn() always pipes stdout"
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
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# How a backend's exit status says "killed by signal N": Popen reports -N for the process
# it waited for; a shell (and docker, for a container's main process) exits with 128 + N.
POPEN_SIGNALS = range(-signal.NSIG + 1, 0)
SHELL_SIGNALS = range(129, 256)


def describe_exit(returncode: int, *, signals: Container[int] = POPEN_SIGNALS, limit: str | None = None,
                  file_limit_mb: int | None = None) -> tuple[int | None, str | None]:
    """An exit status -> (exit_code, reason), for every backend.

    `signals`: the statuses this backend's process uses for a signal (see above).
    `limit`: a resource limit the backend saw fire (cgroup, OOM killer), in words.
    `file_limit_mb`: the file size limit, named in the SIGXFSZ reason when set.
    """
    signum = 0
    if returncode in signals:
        signum = -returncode if returncode < 0 else returncode - 128
    if signum == signal.SIGXFSZ:
        limit_mb = f" (limit {file_limit_mb} MiB)" if file_limit_mb is not None else ""
        return None, f"file size limit exceeded{limit_mb}"
    if limit:
        # Reported even when the command exited 0: a fork that failed or a worker the
        # OOM killer took may have left the output incomplete, so the build must not pass.
        return (None if signum == signal.SIGKILL else returncode), limit
    if signum:
        return None, f"killed by signal {signal_name(signum)}"
    return returncode, None


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # the real-time signals between SIGRTMIN and SIGRTMAX have no name
        return str(signum)


def spawn(argv: list[str], *, cwd: Path, env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start argv in its own session so that one killpg reaches the whole group."""
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                            pass_fds=pass_fds)


def format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def stopped(timeout: float, cancel: Cancel | None) -> RunResult:
    """The result of a run that was killed at its deadline or by a cancel."""
    if cancel is not None and cancel.is_set():
        return RunResult(None, False, "cancelled")
    return RunResult(None, True, f"timed out after {format_seconds(timeout)}")


def exited(returncode: int, *, signals: Container[int] = POPEN_SIGNALS, limit: str | None = None,
           file_limit_mb: int | None = None) -> RunResult:
    """The result of a run that ended by itself (see describe_exit)."""
    exit_code, reason = describe_exit(returncode, signals=signals, limit=limit, file_limit_mb=file_limit_mb)
    return RunResult(exit_code, False, reason)


def serialized(on_line: OnLine) -> OnLine:
    """on_line behind a lock, for a backend whose proxy thread reports refusals concurrently."""
    lock = threading.Lock()

    def emit(line: str) -> None:
        with lock:
            on_line(line)
    return emit
