"""Versions and the range forms people write in engines.node, .nvmrc and packageManager.

Pure. A range becomes a union of half-open intervals [low, high) over (major, minor,
patch), following node-semver's desugaring (github.com/npm/node-semver#advanced-range-syntax):
`^20` is [20.0.0, 21.0.0), `>=18 <23` is [18.0.0, 23.0.0), `18 || 20` two intervals.
Pre-release tags are dropped: a toolchain is only ever chosen among releases.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]
ZERO: Version = (0, 0, 0)

_PART = r"(?:0|[1-9]\d*|[xX*])"
_PARTIAL = re.compile(rf"^[=v]*({_PART})(?:\.({_PART})(?:\.({_PART})(?:-[0-9A-Za-z.-]+)?)?)?"
                      r"(?:\+[0-9A-Za-z.-]+)?$")
_RELEASE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_OPERATOR = re.compile(r"^(>=|<=|>|<|=|\^|~>?)?(.*)$")


def parse_version(text: str) -> Version | None:
    """A release version ("22.11.0", "v22.11.0"); None for anything else, pre-releases included."""
    match = _RELEASE.match(text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@dataclass(frozen=True)
class Range:
    intervals: tuple[tuple[Version, Version | None], ...]  # [low, high); high None = unbounded

    def allows(self, version: Version) -> bool:
        return any(low <= version and (high is None or version < high) for low, high in self.intervals)

    def allows_major(self, major: int) -> bool:
        """Whether some release of this major satisfies the range."""
        return self.overlaps((major, 0, 0), (major + 1, 0, 0))

    def overlaps(self, low: Version, high: Version) -> bool:
        return any(max(low, a) < (high if b is None else min(high, b)) for a, b in self.intervals)


def parse_range(text: str) -> Range:
    """`>=18`, `^20`, `~20.5`, `20.x`, `20`, `18 || 20`, `>=18 <23`, `18 - 22`, `*`, exact.

    Raises ValueError naming the part that is not understood.
    """
    intervals = []
    for alternative in text.split("||"):
        low, high = _conjunction(alternative)
        if high is None or low < high:
            intervals.append((low, high))
    return Range(tuple(intervals))


def newest(versions: list[str], wanted: Range) -> str | None:
    """The newest release in `versions` that the range allows."""
    releases = [(v, text) for text in versions if (v := parse_version(text)) is not None]
    allowed = [(v, text) for v, text in releases if wanted.allows(v)]
    return max(allowed)[1] if allowed else None


def _conjunction(text: str) -> tuple[Version, Version | None]:
    text = re.sub(r"(>=|<=|>|<|=|\^|~>?)\s+", r"\1", text.strip())
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen:
        return _floor(_partial(hyphen[1])), _ceiling(_partial(hyphen[2]))
    low, high = ZERO, None
    for token in text.split():
        a, b = _comparator(token)
        low = max(low, a)
        high = b if high is None else high if b is None else min(high, b)
    return low, high


def _comparator(token: str) -> tuple[Version, Version | None]:
    match = _OPERATOR.match(token)
    assert match is not None  # the pattern matches any string
    operator, parts = match[1] or "=", _partial(match[2])
    if operator == ">=":
        return _floor(parts), None
    if operator == ">":
        above = _ceiling(parts)
        return (above, None) if above is not None else (ZERO, ZERO)  # `>*` allows nothing
    if operator == "<":
        return ZERO, _floor(parts) if parts else ZERO
    if operator == "<=":
        return ZERO, _ceiling(parts)
    if operator.startswith("~"):
        return _floor(parts), _ceiling(parts[:2]) if len(parts) > 1 else _ceiling(parts)
    if operator == "^":
        return _floor(parts), _caret_ceiling(parts)
    return _floor(parts), _ceiling(parts)


def _partial(text: str) -> list[int]:
    """The numbers of a partial version, up to its first wildcard: "20.x" -> [20]."""
    if text in ("", "*", "x", "X"):
        return []
    match = _PARTIAL.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a version")
    numbers: list[int] = []
    for part in match.groups():
        if part is None or part in ("x", "X", "*"):
            break
        numbers.append(int(part))
    return numbers


def _floor(parts: list[int]) -> Version:
    padded = (parts + [0, 0, 0])[:3]
    return padded[0], padded[1], padded[2]


def _ceiling(parts: list[int]) -> Version | None:
    """The smallest version above every version the partial matches (None: no bound)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0] + 1, 0, 0
    if len(parts) == 2:
        return parts[0], parts[1] + 1, 0
    return parts[0], parts[1], parts[2] + 1


def _caret_ceiling(parts: list[int]) -> Version | None:
    """`^` allows changes that keep the leftmost non-zero part: ^20.1 < 21, ^0.3 < 0.4."""
    for index, part in enumerate(parts):
        if part != 0:
            return _ceiling(parts[:index + 1])
    return _ceiling(parts)
