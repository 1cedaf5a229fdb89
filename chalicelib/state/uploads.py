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
             seconds: int, packs: list[list[str]] | None = None) -> None:
        """Keep an upload's files, the packs it was asked to send (each a list of sha256s, in
        their order in the pack: docs/DECISIONS.md#packs) and the token that made it for `seconds`."""
        document = json.dumps({"token": token_id, "files": files, "packs": packs or []},
                              separators=(",", ":"))
        self.redis.set(keys.upload(upload_id), document, ex=seconds)

    def get(self, upload_id: str, token_id: str
            ) -> tuple[dict[str, dict[str, Any]], list[list[str]]] | None:
        """The upload's files and packs; None when it is unknown, expired or another token's."""
        raw = self.redis.get(keys.upload(upload_id))
        if raw is None:
            return None
        document = json.loads(raw)
        if document.get("token") != token_id:
            return None
        return document["files"], document.get("packs") or []
