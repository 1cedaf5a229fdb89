"""The `none` backend: a plain subprocess, for development only."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from build_runner.sandbox.base import (
    SANDBOX_PATH,
    Cancel,
    OnLine,
    RunResult,
    base_env,
    exited,
    kill_group,
    spawn,
    stopped,
    supervise,
    tool_path,
)


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
            timeout: float, on_line: OnLine, cancel: Cancel | None = None,
            tools: Sequence[Path] = ()) -> RunResult:
        self._log.warning("BUILD_SANDBOX=none: running %r without isolation", command)
        # The runner's PATH, not the sandbox's: unsandboxed, node may live anywhere (nvm, pyenv).
        child_env = base_env(str(home), env, path=tool_path(tools, os.environ.get("PATH", SANDBOX_PATH)))
        proc = spawn(["sh", "-c", command], cwd=workdir, env=child_env)
        # Kill the group's leftovers, also after a normal exit.
        timed_out = supervise(proc, on_line, timeout, cancel, lambda: kill_group(proc.pid))
        if timed_out:
            return stopped(timeout, cancel)
        return exited(proc.returncode)
