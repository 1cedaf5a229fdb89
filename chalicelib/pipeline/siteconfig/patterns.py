"""Rule paths to anchored Python regexes, and the cost probe every user pattern passes.

Each source pattern is compiled here at build time, so the request handler
(chalicelib/serving/routing.py) only matches.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from chalicelib import safe_regex
from chalicelib.pipeline.siteconfig import path_to_regexp
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


# --- Vercel source patterns (path-to-regexp 6.1.0, as in vercel routing-utils) --------------

def vercel_pattern(source: str, where: str = "pattern") -> tuple[str, list[str]]:
    """Compile a vercel.json source (`/blog/:slug`, `/:path*`, `/(.*)`, `/a{-:b}?`) to an
    anchored regex and its group names (unnamed groups are "0", "1", ...)."""
    tokens = vercel_tokens(source, where)
    return vercel_regex(tokens, source, where), [k.name for k in path_to_regexp.keys(tokens)]


def vercel_tokens(source: str, where: str) -> list[path_to_regexp.Token]:
    """A source parsed as path-to-regexp 6.1.0 parses it (path_to_regexp.py)."""
    try:
        return path_to_regexp.parse(source)
    except path_to_regexp.PatternError as error:
        raise SiteConfigError(f"{where}: invalid source pattern {source!r}: {error}") from None


def vercel_regex(tokens: list[path_to_regexp.Token], source: str, where: str) -> str:
    """The anchored regex of a parsed source. Like `vercel dev`'s router (vercel/vercel
    packages/cli/src/util/dev/router.ts), a source is also tried against the path without its
    leading slash: `/:path*` matches `/`, and `404.html` names `/404.html`."""
    body = path_to_regexp.to_regex(tokens)
    try:
        if not source.startswith("/") or re.fullmatch(body, ""):
            body = f"/??(?:{body})"
        regex = re.compile(f"^{body}$").pattern
    except re.error as error:
        raise SiteConfigError(f"{where}: invalid regular expression in source {source!r}: "
                              f"{error}") from None
    return check_cost(regex, where, source)


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
