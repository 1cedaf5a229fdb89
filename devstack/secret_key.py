"""The local stack's secrets kept in its state dir: PERCEL_SECRET_KEY (here) and the admin token
(services.admin_token), each the operator's when set, else made once and reused on every start.

Reused, so the env of deployments queued before a restart still opens and the printed token
keeps working; mode 0600, as the key unlocks every build env in this stack's Redis
(docs/DECISIONS.md#secrets-at-rest) and the token every route (docs/DECISIONS.md#tokens).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from chalicelib.state.secrets import new_key

FILE_NAME = "secret-key"


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, written there by `make` on first use, readable by its owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL with 0600 from the start: the secret is never readable by others, not even briefly.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(make() + "\n")
    path.chmod(0o600)
    return path.read_text().strip()


def secret_key(state_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """PERCEL_SECRET_KEY from `environ` when set, else the state dir's key, made on first use."""
    given = (os.environ if environ is None else environ).get("PERCEL_SECRET_KEY")
    return given or kept_secret(state_dir / FILE_NAME, new_key)
