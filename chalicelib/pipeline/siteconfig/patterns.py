"""Rule paths to anchored Python regexes, and the cost probe every user pattern passes.

Each source pattern is compiled here at build time, so the request handler
(chalicelib/serving/routing.py) only matches.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from chalicelib import safe_regex
from chalicelib.pipeline.siteconfig.errors import SiteConfigError


def check_regex(value: object, where: str) -> None:
    """A user's regular expression (a `has` value, a `(group)`): it compiles and is cheap."""
    if not isinstance(value, str):
        raise SiteConfigError(f"{where}: value must be a string")
    try:
        re.compile(value)
    except re.error as error:
        raise SiteConfigError(f"{where}: invalid regular expression {value!r}: {error}") from None
    check_cost(value, where, value)


def check_cost(regex: str, where: str, shown: str) -> str:
    """Refuse a pattern that backtracks catastrophically (see chalicelib/safe_regex.py)."""
    if safe_regex.too_slow(regex):
        raise SiteConfigError(f"{where}: {shown!r} is too expensive to match (its regular "
                              "expression backtracks catastrophically); simplify it")
    return regex


# --- Vercel source patterns (path-to-regexp style, as in vercel routing-utils) ---------------

_PARAM = re.compile(r":([A-Za-z0-9_]+)")
_DEFAULT_SEGMENT = "[^/#?]+?"


def vercel_pattern(source: str, where: str = "pattern") -> tuple[str, list[str]]:
    """Compile a path-to-regexp source (`/blog/:slug`, `/:path*`, `/(.*)`) to an anchored regex.

    Like path-to-regexp with {strict: true, sensitive: true}, which Vercel's routing-utils uses:
    no optional trailing slash, case-sensitive. Unnamed groups are named "0", "1", ...
    A `/` before a parameter is its prefix, optional together with `?` and `*` parameters.
    """
    parts: list[str] = []
    names: list[str] = []
    index = 0
    while index < len(source):
        index = _pattern_token(source, index, parts, names, where)
    body = "".join(parts)
    if re.fullmatch(body, ""):
        body = f"(?:{body}|/)"   # `/:path*` is the catch-all: it matches the root `/` as well
    return "^" + body + "$", names


def _pattern_token(source: str, index: int, parts: list[str], names: list[str], where: str) -> int:
    char = source[index]
    if char == "\\" and index + 1 < len(source):
        parts.append(re.escape(source[index + 1]))
        return index + 2
    name_match = _PARAM.match(source, index) if char == ":" else None
    if name_match or char == "(":
        name = name_match.group(1) if name_match else str(sum(n.isdigit() for n in names))
        index = name_match.end() if name_match else index
        pattern, index = _group_pattern(source, index, where)
        modifier = source[index] if index < len(source) and source[index] in "?*+" else ""
        prefix = parts.pop() if parts and parts[-1] == "/" else ""
        parts.append(_param_regex(prefix, pattern, modifier))
        names.append(name)
        return index + len(modifier)
    if char in "{}":
        raise SiteConfigError(f"{where}: {{...}} groups in source patterns are not supported")
    if char in "*+?":  # path-to-regexp: a modifier must follow a parameter
        raise SiteConfigError(f"{where}: {char!r} must follow a parameter in {source!r}; "
                              "write /:path* or /(.*)")
    parts.append("/" if char == "/" else re.escape(char))
    return index + 1


def _group_pattern(source: str, index: int, where: str) -> tuple[str, int]:
    """Read an optional `(regex)` at index; path-to-regexp refuses capturing groups inside it."""
    if index >= len(source) or source[index] != "(":
        return _DEFAULT_SEGMENT, index
    depth, end = 0, index
    while end < len(source):
        if source[end] == "\\":
            end += 2
            continue
        depth += {"(": 1, ")": -1}.get(source[end], 0)
        if depth == 0:
            break
        end += 1
    if depth != 0:
        raise SiteConfigError(f"{where}: unbalanced parenthesis in {source!r}")
    pattern = source[index + 1:end]
    if re.search(r"(?<!\\)\((?!\?)", pattern):
        raise SiteConfigError(f"{where}: capturing groups are not allowed inside ({pattern}); use (?:...)")
    check_regex(pattern, where)
    return pattern, end + 1


def _param_regex(prefix: str, pattern: str, modifier: str) -> str:
    prefix = re.escape(prefix) if prefix else ""
    if modifier in ("+", "*"):
        body = f"{prefix}((?:{pattern})(?:{prefix}(?:{pattern}))*)"
        return body if modifier == "+" else f"(?:{body})?"
    if modifier == "?":
        return f"(?:{prefix}({pattern}))?"
    return f"{prefix}({pattern})"


# --- Netlify / Cloudflare Pages patterns ------------------------------------------------------

def splat_pattern(source: str) -> tuple[str, list[str]]:
    """Compile a `_redirects`/`_headers` path: `*` is the splat, `:name` a whole segment.

    A trailing slash is not significant (Netlify normalises URLs before matching), and
    `/news/*` also matches `/news` itself; the resolver strips the request's trailing slash.
    Literal text is matched decoded (see `decoded_text`), as the resolver decodes requests once.
    """
    body = source.rstrip("/") or "/"
    names: list[str] = []
    parts: list[str] = []
    if body.endswith("/*"):
        body, tail = body[:-2], "(?:/(.*))?"
    else:
        tail = ""
    for segment in body.split("/")[1:] if body != "/" else []:
        parts.append("/" + _splat_segment(segment, names))
    if tail:
        names.append("splat")
    regex = "".join(parts) + tail
    return "^" + (regex or "/") + "$", names


def _splat_segment(segment: str, names: list[str]) -> str:
    if segment.startswith(":") and re.fullmatch(r":[A-Za-z_][A-Za-z0-9_]*", segment):
        names.append(segment[1:])
        return "([^/]+)"
    pieces = segment.split("*")
    for _ in pieces[1:]:
        names.append("splat")  # Cloudflare Pages allows a splat inside a segment too
    return "(.*)".join(re.escape(decoded_text(piece)) for piece in pieces)


_ENCODED_SEPARATOR = re.compile(r"(%2[fF]|%5[cC])")


def decoded_text(literal: str) -> str:
    """Literal text of a rule path with its percent-escapes decoded: `/some%20page` is the page
    a request for `/some%20page` (decoded once to `/some page`) reaches, as on Cloudflare Pages
    (workers-sdk packages/workers-shared/utils/tests/parseRedirects.invalid.test.ts keeps
    `/some%20page` and matches it against the encoded request path). Decoded after the `*` and
    `:name` are found, so `%2A` is a literal "*"; an encoded "/" or "\\" stays encoded: decoding
    it would split a segment, and the resolver refuses such requests.
    """
    if "%" not in literal:
        return literal
    pieces = _ENCODED_SEPARATOR.split(literal)
    return "".join(piece if index % 2 else unquote(piece) for index, piece in enumerate(pieces))
