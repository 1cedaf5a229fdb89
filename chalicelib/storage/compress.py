"""Precompression at upload time: serving then only picks a stored variant."""
from __future__ import annotations

import gzip

import brotli

from chalicelib.lru import LRU

# A variant is kept only when it saves at least this share of the bytes; below
# that, the cost of a Vary'd cache entry outweighs the gain (docs/DECISIONS.md#precompression).
MIN_SAVING = 0.05
# Smaller bodies fit in one packet either way.
MIN_SIZE = 256


# Variants of recently compressed contents, by sha256: a redeploy of unchanged files
# on the same runner skips brotli's slowest level (~0.5 s of a 2 s warm Vite build,
# bench/BUILD.md). Bounded by the bytes it holds.
MEMO_BYTES = 64 * 1024 * 1024
_memo = LRU(MEMO_BYTES, max_item_share=1 / 4)


def variants(data: bytes, sha256: str | None = None) -> dict[str, bytes]:
    """br and gzip encodings of `data` that save at least MIN_SAVING (memoised by sha256)."""
    if len(data) < MIN_SIZE:
        return {}
    if sha256 is None:
        return _compress(data)
    found = _memo.get(sha256)
    if found is None:
        found = _compress(data)
        _memo.put(sha256, found, sum(len(v) for v in found.values()))
    return found


def _compress(data: bytes) -> dict[str, bytes]:
    limit = len(data) * (1 - MIN_SAVING)
    found = {}
    packed = brotli.compress(data, quality=11)
    if len(packed) <= limit:
        found["br"] = packed
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if len(packed) <= limit:
        found["gzip"] = packed
    return found
