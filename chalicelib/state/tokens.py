"""API tokens: created once, stored only as a hash, looked up on every request.

A token reads `pcl_<id>_<secret>`: the id finds the record in one HGETALL, and the secret's
SHA-256 is compared with the stored one in constant time (docs/DECISIONS.md#tokens). Nothing
is cached, so a revoked token is refused by the very next request on every API process.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

import redis

from chalicelib import ids, keys
from chalicelib.state.records import now as stamp

PREFIX = "pcl_"
# 32 random bytes: 256 bits, so guessing is hopeless and a fast hash is enough at rest.
SECRET_BYTES = 32


class Role(str, Enum):
    READ = "read"
    DEPLOY = "deploy"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.READ: 0, Role.DEPLOY: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Token:
    """A token as stored and listed: never its secret."""
    id: str
    name: str
    role: Role
    # None: every deployment; a tuple: only deployments of these projects.
    projects: tuple[str, ...] | None
    created_at: float
    expires_at: float | None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role.value,
                "projects": list(self.projects) if self.projects is not None else None,
                "created_at": stamp(self.created_at),
                "expires_at": stamp(self.expires_at) if self.expires_at else None}

    def expired(self, at: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or time.time())


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time equality of two secrets (compares their digests, so lengths leak nothing)."""
    return hmac.compare_digest(digest(presented), digest(expected))


def split(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    token_id, _, secret = token[len(PREFIX):].partition("_")
    return (token_id, secret) if ids.is_valid_id(token_id) and secret else None


class Tokens:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def create(self, name: str, role: Role, projects: list[str] | None = None,
               expires_in_days: float | None = None) -> tuple[Token, str]:
        """A new token and its full value, which exists only in this return value."""
        token_id, secret = ids.new_id(), secrets.token_urlsafe(SECRET_BYTES)
        created = time.time()
        expires = created + expires_in_days * 86400 if expires_in_days else None
        record = Token(token_id, name, role, tuple(projects) if projects is not None else None,
                       created, expires)
        pipe = self.redis.pipeline()
        pipe.hset(keys.token(token_id), mapping={
            "name": name, "role": role.value, "digest": digest(secret), "created_at": created,
            "projects": json.dumps(projects), "expires_at": expires or ""})
        if expires:
            pipe.expireat(keys.token(token_id), int(expires) + 1)
        pipe.zadd(keys.TOKENS_INDEX, {token_id: created})
        pipe.execute()
        return record, f"{PREFIX}{token_id}_{secret}"

    def verify(self, token: str, at: float | None = None) -> Token | None:
        """The token's record when `token` is one we issued, unrevoked and unexpired; else None."""
        parts = split(token)
        if parts is None:
            return None
        record = self._load(parts[0])
        if record is None:
            return None
        found, stored_digest = record
        if not hmac.compare_digest(digest(parts[1]), stored_digest):
            return None
        return None if found.expired(at) else found

    def get(self, token_id: str) -> Token | None:
        record = self._load(token_id) if ids.is_valid_id(token_id) else None
        return record[0] if record else None

    def live(self) -> list[Token]:
        """Every live token, oldest first; ids whose record expired leave the index here."""
        found, gone = [], []
        for raw in cast("list[bytes]", self.redis.zrange(keys.TOKENS_INDEX, 0, -1)):
            token = self.get(raw.decode())
            if token is None or token.expired():
                gone.append(raw)
            else:
                found.append(token)
        if gone:
            self.redis.zrem(keys.TOKENS_INDEX, *gone)
        return found

    def revoke(self, token_id: str) -> bool:
        """Delete a token; False when there was none."""
        if not ids.is_valid_id(token_id):
            return False
        pipe = self.redis.pipeline()
        pipe.delete(keys.token(token_id))
        pipe.zrem(keys.TOKENS_INDEX, token_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    def _load(self, token_id: str) -> tuple[Token, str] | None:
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.token(token_id)))
        if not raw:
            return None
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        projects = json.loads(fields["projects"])
        token = Token(token_id, fields["name"], Role(fields["role"]),
                      tuple(projects) if projects is not None else None,
                      float(fields["created_at"]),
                      float(fields["expires_at"]) if fields["expires_at"] else None)
        return token, fields["digest"]
