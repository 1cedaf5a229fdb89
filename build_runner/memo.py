"""Memoized builds: a deployment whose build inputs equal those of an earlier deployed one reuses
that deployment's output instead of building (docs/DECISIONS.md#memoized-builds).

The inputs are everything a build reads that can differ between two deployments: the source tree
(every file's path, bytes and mode, from the source manifest) and, for git, the commit (the build
sees it in PERCEL_GIT_COMMIT_SHA); root_dir and the build options; the target (VERCEL_ENV); the
user's env values (only through an HMAC keyed with PERCEL_SECRET_KEY, so the key never holds a
guessable digest of a secret); who may share an output (the repository, or the token whose
upload it is); and the runner: its sandbox, image, network mode and its own code. A Node.js
major ("22") resolves to the newest release of the day: the memo lasts MEMO_SECONDS (a day), so
a reuse never spans more than that.
Not inputs: the deployment's own id and URL (PERCEL_URL, VERCEL_URL), which a reused output
carries from the deployment that built it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings

OPTIONS = ("install_command", "build_command", "output_dir", "node_version", "prebuilt")


@lru_cache(maxsize=1)
def runner_code() -> str:
    """A digest of the build runner's own source: a runner that builds differently is another
    input."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def inputs_key(settings: Settings, sandbox: str, record: dict[str, str], options: dict[str, Any],
               env: dict[str, str], source: dict[str, Any]) -> str | None:
    """The digest of a build's inputs; None when the deployment asked to build anyway
    (`force`) or its source manifest has no files list."""
    if options.get("force") or not isinstance(source.get("files"), dict):
        return None
    secret = settings.percel_secret_key.encode()
    material = {
        # Where a file is stored (its pack) is no input: only its bytes, path and mode are.
        "files": {path: {k: v for k, v in entry.items() if k != "pack"}
                  for path, entry in source["files"].items()},
        "commit": record.get("commit") or None,
        "root_dir": record.get("root_dir") or None,
        "options": {name: options.get(name) for name in OPTIONS},
        "target": record.get("target") or "production",
        "env": hmac.new(secret, _canonical(env), hashlib.sha256).hexdigest(),
        "owner": [record.get("repo_url") or None, record.get("uploader") or None],
        "runner": [sandbox, settings.build_image, settings.build_network, runner_code()],
    }
    return hashlib.sha256(_canonical(material)).hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
