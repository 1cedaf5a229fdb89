"""RFC 9110 rules the resolver applies to a file: content coding, validators, ranges. Pure."""
from __future__ import annotations

import re

from chalicelib.schema import FileEntry


def _accept_qualities(header: str) -> dict[str, float]:
    qualities: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        coding = coding.strip().lower()
        qualities["gzip" if coding == "x-gzip" else coding] = quality  # RFC 9110 §8.4.1.3
    return qualities


def pick_encoding(header: str | None, entry: FileEntry) -> str | None:
    """br, then gzip, among the stored variants, unless refused with q=0 (RFC 9110 §12.5.3)."""
    encodings = entry.get("encodings")
    if not encodings or not header:
        return None
    qualities = _accept_qualities(header)
    for coding in ("br", "gzip"):
        if coding in encodings and qualities.get(coding, qualities.get("*", 0.0)) > 0:
            return coding
    return None


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2); `*` matches any file."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One byte range (RFC 9110 §14.1.2) -> (first, last) or "unsatisfiable".

    None means serve the whole file: no Range, another unit, bad syntax or several ranges
    (a server may ignore Range, §14.2).
    """
    found = _RANGE.match(header.strip()) if header else None
    if found is None or not (found[1] or found[2]):
        return None
    if not found[1]:
        suffix = int(found[2])
        return (max(0, size - suffix), size - 1) if suffix and size else "unsatisfiable"
    first = int(found[1])
    if found[2] and int(found[2]) < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(int(found[2]) if found[2] else size - 1, size - 1)
