"""The local stack's PERCEL_SECRET_KEY: the operator's when set, else one kept in the state dir.

Generated once and reused on every start, so the env of deployments queued before a restart
still opens; mode 0600, as it unlocks every build env in this stack's Redis
(docs/DECISIONS.md#secrets-at-rest).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from chalicelib.state.secrets import new_key

FILE_NAME = "secret-key"


def secret_key(state_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """PERCEL_SECRET_KEY from `environ` when set, else the state dir's key, made on first use."""
    given = (os.environ if environ is None else environ).get("PERCEL_SECRET_KEY")
    if given:
        return given
    path = state_dir / FILE_NAME
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    # O_EXCL with 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key() + "\n")
    return path.read_text().strip()
