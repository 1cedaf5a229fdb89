"""Which verified pack holds a file's bytes, so that a redeploy of files already packed uploads
nothing (docs/DECISIONS.md#packs).

Only a pack whose every segment was checked is ever recorded, and a reader checks the pack is
still stored before using it: a lost or expired entry only means the file is uploaded again.
"""
from __future__ import annotations

import redis

from chalicelib import keys

# Entries outlive any upload that could use them by far; a file not deployed for this long is
# uploaded again (about 150 bytes of Redis per file meanwhile).
PACK_INDEX_SECONDS = 30 * 86400
# MGET and pipelines in chunks of this many keys, as state/blobstamps.py does.
CHUNK = 1000


class PackIndex:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def locate(self, sha256s: list[str]) -> dict[str, tuple[str, int]]:
        """sha256 -> (pack sha256, offset) for the files a pack is known to hold."""
        found: dict[str, tuple[str, int]] = {}
        for start in range(0, len(sha256s), CHUNK):
            chunk = sha256s[start:start + CHUNK]
            for sha256, value in zip(chunk, self.redis.mget([keys.packed_file(h) for h in chunk]),
                                     strict=True):
                if value is not None:
                    text = value.decode() if isinstance(value, bytes) else str(value)
                    pack, _, offset = text.partition(":")
                    found[sha256] = (pack, int(offset))
        return found

    def record(self, pack: str, segments: dict[str, int]) -> None:
        """The checked pack `pack` holds each of these files (sha256 -> offset)."""
        items = list(segments.items())
        for start in range(0, len(items), CHUNK):
            with self.redis.pipeline(transaction=False) as pipe:
                for sha256, offset in items[start:start + CHUNK]:
                    pipe.set(keys.packed_file(sha256), f"{pack}:{offset}", ex=PACK_INDEX_SECONDS)
                pipe.execute()
