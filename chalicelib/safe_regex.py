"""Regular expressions from users' config files, matched with a time budget.

vercel.json sources may embed raw regex groups and `has` values, and `_redirects`
rules may chain splats: a pattern such as `/((?:a|a)*)b` backtracks exponentially
(measured here: 16 s for a 29-character path), which would stall the request
handler for every site it serves. Two defences: a build-time probe refuses a
pattern that is slow on adversarial inputs (the build fails with the reason), and
every match at request time runs under a timeout (the `regex` module supports
one; `re` does not), treating a timeout as "no match".
"""
from __future__ import annotations

from functools import lru_cache

import regex

# Per match at request time: far above a sane pattern's microseconds.
MATCH_TIMEOUT = 0.01
# Per probe at build time.
PROBE_TIMEOUT = 0.05
# Inputs that make ambiguous patterns backtrack: long runs of one character class, with
# separators, ending in a character that forces a failure.
_PROBES = tuple(prefix + body * 120 + tail
                for prefix in ("/", "")
                for body in ("a", "a/", "a-", "a.", "1", "/")
                for tail in ("!", "/!", "\x00"))


@lru_cache(maxsize=8192)
def compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern, flags=regex.VERSION0)


def match(pattern: str, text: str, *, full: bool = False) -> regex.Match | None:
    """`re.match` / `re.fullmatch` semantics, but None when the time budget runs out."""
    compiled_pattern = compiled(pattern)
    try:
        if full:
            return compiled_pattern.fullmatch(text, timeout=MATCH_TIMEOUT)
        return compiled_pattern.match(text, timeout=MATCH_TIMEOUT)
    except TimeoutError:
        return None


def too_slow(pattern: str) -> bool:
    """True when the pattern needs more than PROBE_TIMEOUT on one of the adversarial probes."""
    compiled_pattern = compiled(pattern)
    for probe in _PROBES:
        try:
            compiled_pattern.search(probe, timeout=PROBE_TIMEOUT)
        except TimeoutError:
            return True
    return False
