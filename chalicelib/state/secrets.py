"""A deployment's build env, sealed before it reaches the record and opened only by the runner.

The env is where users put tokens, and Redis is read by every API process, every runner and
whoever holds a dump or an AOF file of it: its values are kept as one Fernet token (AES-128-CBC
plus HMAC-SHA256, cryptography.io/en/latest/fernet/) in the record's `env` field
(docs/DECISIONS.md#secrets-at-rest). `PERCEL_SECRET_KEY` holds one or more comma-separated keys:
the first seals, any of them opens (MultiFernet), so a key is rotated by putting a new one first
and dropping the old one once the records it sealed are gone.
"""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# The record field holding the sealed env (the public view never shows it: records.FIELDS).
FIELD = "env"


class SecretsUnavailable(Exception):
    """The env cannot be sealed or opened: no key, or none of the keys opens it."""


def new_key() -> str:
    """A fresh key, in the form PERCEL_SECRET_KEY takes (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


class EnvBox:
    def __init__(self, keys: str):
        """`keys`: PERCEL_SECRET_KEY as set, comma-separated, newest first; may be empty."""
        names = [key.strip() for key in keys.split(",") if key.strip()]
        try:
            self._fernet = MultiFernet([Fernet(key) for key in names]) if names else None
        except ValueError:  # Fernet's own message would quote the key
            raise ValueError("PERCEL_SECRET_KEY must be Fernet keys (url-safe base64 of 32 bytes), "
                             "comma-separated") from None

    def seal(self, env: dict[str, str]) -> str:
        """The env as the record stores it; an empty env needs no key and seals to ""."""
        if not env:
            return ""
        if self._fernet is None:
            raise SecretsUnavailable("PERCEL_SECRET_KEY is not set, so a build env cannot be "
                                     "stored; deploy without env or ask the operator to set it")
        return self._fernet.encrypt(json.dumps(env).encode()).decode()

    def open(self, sealed: str) -> dict[str, str]:
        """The env back from a record's `env` field."""
        if not sealed:
            return {}
        if self._fernet is None:
            raise SecretsUnavailable("this deployment's env is encrypted and the build runner "
                                     "has no PERCEL_SECRET_KEY to open it")
        try:
            env: dict[str, str] = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretsUnavailable("this deployment's env was encrypted with a key the build "
                                     "runner's PERCEL_SECRET_KEY does not hold") from None
        return env
