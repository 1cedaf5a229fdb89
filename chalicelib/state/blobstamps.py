"""Blobs' LastModified times as the bucket last showed them, so that a redeploy of unchanged
files asks the bucket nothing (storage/store.py StampCache; docs/DECISIONS.md#blob-stamps).

Each stamp expires when the Store would stop trusting it (`trust_seconds` after the time it
records), so only stamps the GC cannot have outlived are ever read back.
"""
from __future__ import annotations

import time

import redis

from chalicelib import keys

# MGET and pipelines in chunks of this many keys: one round trip each, none too large a reply.
CHUNK = 1000


class BlobStamps:
    def __init__(self, client: redis.Redis, trust_seconds: float):
        self.redis = client
        self.trust_seconds = trust_seconds

    def known(self, sha256s: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for start in range(0, len(sha256s), CHUNK):
            chunk = sha256s[start:start + CHUNK]
            values = self.redis.mget([keys.blob_stamp(h) for h in chunk])
            found.update({h: float(v) for h, v in zip(chunk, values, strict=True) if v is not None})
        return found

    def remember(self, stamps: dict[str, float]) -> None:
        now = time.time()
        items = [(h, stamp) for h, stamp in stamps.items() if stamp + self.trust_seconds > now]
        for start in range(0, len(items), CHUNK):
            with self.redis.pipeline(transaction=False) as pipe:
                for sha256, stamp in items[start:start + CHUNK]:
                    # PXAT: gone the moment the Store would distrust it (Redis >= 6.2).
                    pipe.set(keys.blob_stamp(sha256), repr(stamp),
                             pxat=int((stamp + self.trust_seconds) * 1000))
                pipe.execute()

    def forget(self, sha256s: list[str]) -> None:
        for start in range(0, len(sha256s), CHUNK):
            self.redis.delete(*[keys.blob_stamp(h) for h in sha256s[start:start + CHUNK]])
