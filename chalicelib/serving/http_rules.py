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


# DIGIT is ASCII (RFC 9110 §14.1.1 uses RFC 5234's core rules); `\d` would take any Unicode digit.
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")


def _position(digits: str, size: int) -> int:
    """A byte position, capped at `size`: int() refuses more than 4,300 digits (Python's
    int_max_str_digits), and RFC 9110 §14.1.1 sets no length on 1*DIGIT, so
    `bytes=<5000 digits>-` is a valid range that starts past any file."""
    length, digits = _magnitude(digits)
    return size if length > len(str(size)) else min(int(digits or "0"), size)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One byte range (RFC 9110 §14.1.2) -> (first, last) or "unsatisfiable".

    None means serve the whole file: no Range, another unit, bad syntax or several ranges
    (a server may ignore Range, §14.2). A first position at or past the end is unsatisfiable
    however many digits it has (416, §15.5.17); a last position past the end means the end.
    """
    found = _RANGE.match(header.strip()) if header else None
    if found is None or not (found[1] or found[2]):
        return None
    if not found[1]:
        suffix = _position(found[2], size)
        return (size - suffix, size - 1) if suffix and size else "unsatisfiable"
    if found[2] and _magnitude(found[2]) < _magnitude(found[1]):
        return None    # last before first: invalid (§14.1.1), so ignored
    first = _position(found[1], size)
    if first >= size:
        return "unsatisfiable"
    return first, min(_position(found[2], size) if found[2] else size - 1, size - 1)


def _magnitude(digits: str) -> tuple[int, str]:
    """Orders digit strings as the numbers they spell, without int()."""
    digits = digits.lstrip("0")
    return len(digits), digits
