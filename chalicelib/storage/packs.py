"""Packs: many small files uploaded as one blob (docs/DECISIONS.md#packs).

A pack is the files' bytes one after the other, stored as `blobs/<sha256 of the pack>` like any
blob, so the sweep, the grace period's re-stamps and the blob stamps treat it as one. A manifest
entry names a packed file's own sha256 and where its bytes are (`{"pack": {"sha256", "offset"}}`).
The rules here are pure: which files go in which pack, and whether a pack's bytes are what its
layout claims.
"""
from __future__ import annotations

import hashlib

# A file this size or smaller is packed. One request per file is what costs (1,000 PUTs take
# 2.0-2.6 s on a local endpoint: bench/README.md "Folder uploads"), not the bytes; and a packed
# file is always served inline, so this stays far below MAX_INLINE_BYTES (4 MiB).
PACK_FILE_BYTES = 256 * 1024
# A pack holds at most this many bytes: the API reads a pack whole to check it (Lambda memory),
# and a few packs of a large upload go up in parallel.
PACK_BYTES = 8 * 1024 * 1024


def plan(sizes: dict[str, int]) -> list[list[str]]:
    """The packs for these missing blobs (sha256 -> size, in the order they were listed): the
    small ones, in that order, cut where the next would pass PACK_BYTES. Large ones are left out:
    each stays its own blob."""
    packs: list[list[str]] = []
    filled = PACK_BYTES + 1
    for sha256, size in sizes.items():
        if size > PACK_FILE_BYTES:
            continue
        if filled + size > PACK_BYTES:
            packs.append([])
            filled = 0
        packs[-1].append(sha256)
        filled += size
    return packs


def offsets(segments: list[str], sizes: dict[str, int]) -> list[int]:
    """Where each segment starts in its pack."""
    starts, at = [], 0
    for sha256 in segments:
        starts.append(at)
        at += sizes[sha256]
    return starts


def lying(data: bytes, segments: list[str], sizes: dict[str, int]) -> list[str]:
    """The segments whose bytes in `data` do not hash to their sha256; all of them when `data`
    is not exactly as long as the layout says."""
    if len(data) != sum(sizes[sha256] for sha256 in segments):
        return list(segments)
    view = memoryview(data)
    return [sha256 for sha256, start in zip(segments, offsets(segments, sizes), strict=True)
            if hashlib.sha256(view[start:start + sizes[sha256]]).hexdigest() != sha256]
