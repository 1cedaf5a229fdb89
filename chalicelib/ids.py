"""Deployment ids: random, lowercase, DNS-label safe and unguessable."""
from __future__ import annotations

import re
import secrets

# 16 characters of base-36 carry ~82 bits: unguessable, and short enough for a DNS label.
ID_LENGTH = 16
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_PATTERN = "^[a-z][a-z0-9]{%d}$" % (ID_LENGTH - 1)
_ID_RE = re.compile(ID_PATTERN)


def new_id() -> str:
    # Starting with a letter keeps the label valid wherever a leading digit is frowned upon.
    return secrets.choice(_ALPHABET[:26]) + "".join(
        secrets.choice(_ALPHABET) for _ in range(ID_LENGTH - 1))


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value or ""))
