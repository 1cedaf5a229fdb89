"""Uploads (POST /api/uploads): a client's file list, kept for UPLOAD_SECONDS so that a
deployment can be made from it once its blobs are in the bucket (docs/DECISIONS.md#uploads)."""
from __future__ import annotations

import json
from typing import Any

import redis

from chalicelib import keys


class Uploads:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def save(self, upload_id: str, token_id: str, files: dict[str, dict[str, Any]],
             seconds: int) -> None:
        """Keep an upload's files and the token that made it for `seconds`."""
        document = json.dumps({"token": token_id, "files": files}, separators=(",", ":"))
        self.redis.set(keys.upload(upload_id), document, ex=seconds)

    def files_of(self, upload_id: str, token_id: str) -> dict[str, dict[str, Any]] | None:
        """The upload's files; None when it is unknown, expired or another token's."""
        raw = self.redis.get(keys.upload(upload_id))
        if raw is None:
            return None
        document = json.loads(raw)
        return document["files"] if document.get("token") == token_id else None
