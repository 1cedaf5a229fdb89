"""Netlify's reading of a `_redirects` line, and the rule compilers every Netlify-format source
shares (`_redirects` and `_headers` in either dialect, netlify.toml's [[redirects]] and [[headers]]).

Netlify's parser: netlify/build packages/redirect-parser/src/line_parser.js (a line) and
normalize.js (a rule however it was written); https://docs.netlify.com/routing/redirects/,
https://docs.netlify.com/routing/headers/. A function here raises SiteConfigError for a rule
Netlify reports; the file's reader (redirects_file.py, headers_file.py, rules.py) skips that rule
with a warning.
"""
from __future__ import annotations

import re
from typing import cast

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.patterns import check_cost, splat_pattern
from chalicelib.pipeline.siteconfig.shape import HeaderBlock
from chalicelib.schema import REDIRECT_CODES, NetlifyHeaderRule, NetlifyRedirectRule

URL_SCHEMES = ("http://", "https://")
_INTEGER = re.compile(r"\s*[+-]?\d+")   # what JavaScript's Number.parseInt reads (status.js)
# A token that only signs proxied requests (line_parser.js: `Sign`, and `signed` before it).
_SIGNING = ("Sign", "signed")


# --- a `_redirects` line ---------------------------------------------------------------------

def netlify_redirect_line(line: str, where: str, warnings: list[str]) -> NetlifyRedirectRule | None:
    """`from [key=value ...] [to] [status[!]] [Condition=value ...]`, an inline comment cut off.

    As line_parser.js reads it: a number right after `from` is a status with no destination (a
    forward rule); otherwise the destination is the first token starting with "/", http:// or
    https://, and the tokens before it match the query.
    """
    tokens = _before_comment(line.split())
    source, parts = tokens[0], tokens[1:]
    if not parts:
        raise SiteConfigError(f"{where}: no destination after {source!r}")
    destination: str | None = None
    query_parts: list[str] = []
    rest = parts
    if parse_int(parts[0]) is None:
        index = next((i for i, part in enumerate(parts) if part.startswith(("/", *URL_SCHEMES))), None)
        if index is None:
            raise SiteConfigError(f'{where}: the destination must start with "/", "http://" or "https://"')
        query_parts, destination, rest = parts[:index], parts[index], parts[index + 1:]
    status, force = _status_token(rest[0], where) if rest else (301, False)  # Netlify's default
    conditions = [token for token in rest[1:] if token.split("=")[0] not in _SIGNING]
    if conditions:
        # Country, Language, Role and Cookie need what percel does not have (geolocation,
        # Netlify Identity), and applying the rule to everyone is wrong.
        warnings.append(f"{where}: conditions ({' '.join(conditions)}) are not supported; rule ignored")
        return None
    destination = destination or forwarding_destination(source, status)
    if destination is None:
        raise SiteConfigError(f"{where}: no destination; only a 2xx rule whose path ends in /* "
                              "may leave it out")
    return redirect_rule(source, _pairs(query_parts), destination, status, force, where, warnings)


def _before_comment(tokens: list[str]) -> list[str]:
    """Tokens up to an inline comment: the first one starting with "#" (a destination's
    #fragment is inside its token, so `/b#top` stays whole)."""
    cut = next((i for i, token in enumerate(tokens) if token.startswith("#")), len(tokens))
    return tokens[:cut]


def parse_int(token: str) -> int | None:
    """The leading integer of `token` (`301!` is 301), None when it has none: Number.parseInt."""
    found = _INTEGER.match(token)
    return int(found.group()) if found else None


def _status_token(token: str, where: str) -> tuple[int, bool]:
    status = parse_int(token)
    if status is None:
        raise SiteConfigError(f"{where}: {token!r} is not a status code")
    return status, token.endswith("!")


def _pairs(tokens: list[str]) -> dict[str, str]:
    """`key=value` tokens; as line_parser.js's parsePair, a value ends at a second "="."""
    return {token.split("=")[0]: (token.split("=") + [""])[1] for token in tokens}


def forwarding_destination(source: str, status: int) -> str | None:
    """The destination of a rule written without one, None when it needs one: a 2xx rule from
    `/x/*` serves `/x/:splat`, the path itself, with its own status (Netlify's forward rule:
    `/admin/* 200` keeps those paths out of a later catch-all; normalize.js addForwardRule)."""
    if source.endswith("/*") and 200 <= status < 300:
        return source[:-2] + "/:splat"
    return None


# --- one rule, however it was written --------------------------------------------------------

def redirect_rule(source: str, query: dict[str, str], destination: str, status: int, force: bool,
                  where: str, warnings: list[str]) -> NetlifyRedirectRule | None:
    """A Netlify rule (a `_redirects` line, a netlify.toml [[redirects]] table): checked and
    compiled, or None when it is dropped with a warning."""
    if not _is_path_rule(source, where, warnings):
        return None
    if source.startswith("/.netlify"):
        raise SiteConfigError(f"{where}: paths starting with /.netlify are Netlify's own")
    check_status(status, where)
    if status not in REDIRECT_CODES and not destination.startswith("/"):
        warnings.append(f"{where}: proxying to {destination!r} is not supported; rule ignored")
        return None
    return compiled_redirect(source, query, destination, status, force, where)


def compiled_redirect(source: str, query: dict[str, str], destination: str, status: int,
                      force: bool, where: str) -> NetlifyRedirectRule:
    """The manifest's form of a rule both dialects accepted."""
    regex, names = splat_pattern(source)
    check_cost(regex, where, source)
    return {"regex": regex, "names": names, "query": query, "destination": destination,
            "status": status, "force": force}


def _is_path_rule(source: str, where: str, warnings: list[str]) -> bool:
    """Netlify also matches on a domain (`https://old.example.com/*`); percel serves one host
    per site, so such a rule is dropped with a warning."""
    if source.startswith("/"):
        return True
    warnings.append(f"{where}: only path rules are supported (not {source!r}); rule ignored")
    return False


def check_status(status: int, where: str) -> None:
    """200-599, and of the 3xx only the redirect codes: Netlify's parser takes any integer
    (status.js), but a 304 or 2000 rule has no answer to send."""
    if not (200 <= status <= 599) or (300 <= status < 400 and status not in REDIRECT_CODES):
        raise SiteConfigError(f"{where}: unsupported status {status}")


# --- a `_headers` block ----------------------------------------------------------------------

def header_block(path: str, where: str, warnings: list[str]) -> HeaderBlock:
    """A block for `path` (a `_headers` path line, a netlify.toml `for`), headers to follow; a
    host-specific block is kept only to be dropped, with a warning."""
    if path.startswith(URL_SCHEMES):
        # Cloudflare Pages allows host-specific blocks; percel serves one host per site.
        warnings.append(f"{where}: host-specific rules are not supported; block ignored")
        return {"regex": None, "headers": [], "detach": []}
    regex, names = splat_pattern(path)
    check_cost(regex, where, path)
    return {"regex": regex, "names": names, "headers": [], "detach": []}


def add_header(block: HeaderBlock, pair: list[str]) -> None:
    """A header line of a block; a name already set in the block gets the value appended after
    ", " (Netlify: headers-parser/src/line_parser.ts; Cloudflare: parseHeaders.ts, which
    lower-cases names first, so it joins names that differ in case too)."""
    for existing in block["headers"]:
        if existing[0] == pair[0]:
            existing[1] = f"{existing[1]}, {pair[1]}"
            return
    block["headers"].append(pair)


def header_rules(blocks: list[HeaderBlock]) -> list[NetlifyHeaderRule]:
    """The blocks to keep: an ignored block (no regex) or one that sets nothing is dropped."""
    return [cast(NetlifyHeaderRule, block) for block in blocks
            if block["regex"] is not None and (block["headers"] or block["detach"])]
