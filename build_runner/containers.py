"""The docker and podman backends: one throwaway container per command."""
from __future__ import annotations

import shutil
import subprocess


def engine_answers(engine: str) -> bool:
    """True when `engine` is installed and its daemon/runtime answers `info`."""
    if not shutil.which(engine):
        return False
    try:
        return subprocess.run([engine, "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
