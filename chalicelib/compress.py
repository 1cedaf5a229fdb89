"""Precompression at upload time: serving then only picks a stored variant."""
from __future__ import annotations

import gzip

import brotli

# A variant is kept only when it saves at least this share of the bytes; below
# that, the cost of a Vary'd cache entry outweighs the gain (issue 3).
MIN_SAVING = 0.05
# Smaller bodies fit in one packet either way.
MIN_SIZE = 256


def variants(data: bytes) -> dict[str, bytes]:
    """br and gzip encodings of `data` that save at least MIN_SAVING."""
    if len(data) < MIN_SIZE:
        return {}
    limit = len(data) * (1 - MIN_SAVING)
    found = {}
    packed = brotli.compress(data, quality=11)
    if len(packed) <= limit:
        found["br"] = packed
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if len(packed) <= limit:
        found["gzip"] = packed
    return found
