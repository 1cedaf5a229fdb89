"""Where the API address and token live: the user's config file, overridden by the environment."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

FILE_MODE = 0o600  # the token is a credential: readable by its owner only
DIR_MODE = 0o700


class Credentials(NamedTuple):
    api: str | None
    token: str | None
    source: str  # where they came from, for `percel whoami`


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CONFIG_HOME/percel/config.json, or ~/.config/percel/config.json (XDG Base Directory)."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "percel" / "config.json"


def load(env: Mapping[str, str] = os.environ) -> Credentials:
    """PERCEL_API and PERCEL_TOKEN win over the file, each on its own."""
    path = config_path(env)
    stored: dict[str, str] = {}
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    api = env.get("PERCEL_API") or stored.get("api")
    token = env.get("PERCEL_TOKEN") or stored.get("token")
    source = "environment" if env.get("PERCEL_API") or env.get("PERCEL_TOKEN") else str(path)
    return Credentials(api, token, source)


def save(api: str, token: str, env: Mapping[str, str] = os.environ) -> Path:
    """Write the file with mode 0600 from its first byte: it is created with that mode, never
    chmod-ed after the token is in it."""
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path.parent, DIR_MODE)
    temp = path.with_name(path.name + ".tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        json.dump({"api": api.rstrip("/"), "token": token}, handle, indent=2)
        handle.write("\n")
    os.replace(temp, path)
    return path


def forget(env: Mapping[str, str] = os.environ) -> bool:
    """Remove the file; True when there was one."""
    try:
        config_path(env).unlink()
        return True
    except FileNotFoundError:
        return False
