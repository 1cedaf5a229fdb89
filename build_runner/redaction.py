"""Hides the user's build env values in the build log, in clear and in the forms a tool prints
them cheaply: base64 (standard and url-safe, at each of the three byte alignments), hex (lower
and upper case), URL-encoding and reversed. The env is where users put tokens, and logs are
readable by anyone who may read the deployment.

What no redaction can catch (README "Build environment"): a value printed a few characters per
line, encrypted, hashed, compressed or otherwise transformed, or sent elsewhere by the build.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values ("1", "true") would shred the log and are no secret.
MIN_VALUE_CHARS = 4

Span = tuple[int, int]


def forms(value: str) -> set[str]:
    """`value` and the transformed forms of it the log is searched for."""
    raw = value.encode()
    found = {value, value[::-1], raw.hex(), raw.hex().upper()}
    # Percent-encoding: Python's quote and quote_plus, JavaScript's encodeURIComponent (which
    # keeps !~*'()), each with upper- and lower-case hex digits (RFC 3986 section 2.1: both
    # are valid, uppercase is only recommended).
    for encoded in (quote(value, safe=""), quote_plus(value), quote(value, safe="!~*'()")):
        found |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        found |= {_base64_core(raw, shift, encode) for shift in range(3)}
    return {form for form in found if len(form) >= MIN_VALUE_CHARS}


def _base64_core(raw: bytes, shift: int, encode: Callable[[bytes], bytes]) -> str:
    """The base64 characters that depend on `raw` alone when it starts `shift` bytes into a
    3-byte group (RFC 4648 section 4): they appear in the encoding of any text holding `raw`
    at that alignment, whatever comes before or after it."""
    encoded = encode(bytes(shift) + raw).decode()
    first = -(-8 * shift // 6)  # the first character made only of raw's bits
    end = 8 * (shift + len(raw)) // 6  # characters past this also hold the next byte's bits
    return encoded[first:end]


class Redactor:
    """Masks every form of the values in one line (`__call__`), or in a stream of lines where a
    line of `cut_bytes` or more may have been cut off its continuation (`feed` and `flush`): such
    a line is held until the next one arrives, so a value straddling the cut is masked on both
    sides (build_runner/sandbox/base.py cuts lines at MAX_LINE_BYTES)."""

    def __init__(self, secrets: dict[str, str], cut_bytes: int | None = None):
        patterns = {form for value in secrets.values() if len(value) >= MIN_VALUE_CHARS
                    for form in forms(value)}
        # Longest first: a form that contains another is masked whole.
        ordered = sorted(patterns, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._cut_bytes = cut_bytes
        self._held: tuple[str, list[Span]] | None = None

    def __call__(self, line: str) -> str:
        return _mask(line, self._spans(line))

    def feed(self, line: str) -> list[str]:
        """The lines to log now, masked: none while `line` is held, or the held one and this."""
        held, carried = self._held or ("", [])
        self._held = None
        text = held + line
        spans = carried + self._spans(text)
        ready = [_mask(held, _clip(spans, 0, len(held)))] if held else []
        rest = _clip(spans, len(held), len(text))
        if self._cut_bytes is not None and len(line.encode()) >= self._cut_bytes - 1:
            # -1: the splitter strips a trailing "\r" from every piece.
            self._held = (line, rest)
        else:
            ready.append(_mask(line, rest))
        return ready

    def flush(self) -> list[str]:
        """The held line, if any, masked."""
        if self._held is None:
            return []
        line, spans = self._held
        self._held = None
        return [_mask(line, spans)]

    def _spans(self, text: str) -> list[Span]:
        if self._pattern is None:
            return []
        return [match.span() for match in self._pattern.finditer(text)]


def _clip(spans: Iterable[Span], start: int, end: int) -> list[Span]:
    """The parts of `spans` inside [start, end), relative to start."""
    return [(max(a, start) - start, min(b, end) - start) for a, b in spans if a < end and b > start]


def _mask(text: str, spans: Iterable[Span]) -> str:
    """`text` with each span, merged where they overlap, replaced by MASK."""
    pieces, position = [], 0
    for start, end in sorted(spans):
        if end <= position:
            continue
        if start >= position:
            pieces += [text[position:start], MASK]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
