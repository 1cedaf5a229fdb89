"""The `_redirects` and `_headers` dialect, shared by Netlify and Cloudflare Pages.

`redirect_rule`, `header_block` and `header_rules` compile one rule however it was written;
netlify_toml.py reuses them for netlify.toml's [[redirects]] and [[headers]].

https://docs.netlify.com/routing/redirects/, https://docs.netlify.com/routing/headers/,
https://developers.cloudflare.com/pages/configuration/redirects/
"""
from __future__ import annotations

import re
from typing import cast

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.headers import header_pair
from chalicelib.pipeline.siteconfig.limits import MAX_LINE, MAX_RULES
from chalicelib.pipeline.siteconfig.patterns import check_cost, splat_pattern
from chalicelib.pipeline.siteconfig.shape import HeaderBlock
from chalicelib.schema import REDIRECT_CODES, NetlifyHeaderRule, NetlifyRedirectRule

# --- _redirects ------------------------------------------------------------------------------

_STATUS = re.compile(r"^(\d{3})(!?)$")
_CONDITION_KEYS = ("country=", "language=", "role=", "cookie=")


def parse_redirects_file(text: str, warnings: list[str]) -> list[NetlifyRedirectRule]:
    """Parse `_redirects`: `from [query=:param ...] to [status][!] [Condition=...]`, first match wins."""
    rules: list[NetlifyRedirectRule] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"_redirects line {number}"
        if len(line) > MAX_LINE:
            raise SiteConfigError(f"{where}: longer than {MAX_LINE} characters")
        rule = _redirect_line(line.split(), where, warnings)
        if rule is not None:
            rules.append(rule)
        if len(rules) > MAX_RULES:
            raise SiteConfigError(f"_redirects: more than {MAX_RULES} rules")
    return rules


def _redirect_line(tokens: list[str], where: str, warnings: list[str]) -> NetlifyRedirectRule | None:
    source, rest = tokens[0], tokens[1:]
    if not _is_path_rule(source, where, warnings):
        return None
    query, rest = _leading_query(rest)
    if not rest:
        raise SiteConfigError(f"{where}: expected `from to [status]`, got only {source!r}")
    # `/app/* 200`: a status right after `from` is a rule without a destination.
    destination, rest = (None, rest) if _STATUS.match(rest[0]) else (rest[0], rest[1:])
    status, force, rest = _status_token(rest, where)
    if rest and any(token.lower().startswith(_CONDITION_KEYS) for token in rest):
        warnings.append(f"{where}: Country/Language/Role/Cookie conditions are not supported; rule ignored")
        return None
    if rest:
        raise SiteConfigError(f"{where}: unexpected {' '.join(rest)!r} after the status")
    destination = destination or forwarding_destination(source, status)
    if destination is None:
        raise SiteConfigError(f"{where}: no destination; only a 2xx rule whose path ends in /* "
                              "may leave it out")
    return redirect_rule(source, query, destination, status, force, where, warnings)


def forwarding_destination(source: str, status: int) -> str | None:
    """The destination of a rule written without one, None when it needs one: a 2xx rule from
    `/x/*` serves `/x/:splat`, the path itself, with its own status (Netlify's forwarding rule:
    `/admin/* 200` keeps those paths out of a later catch-all)."""
    if source.endswith("/*") and 200 <= status < 300:
        return source[:-1] + ":splat"
    return None


def redirect_rule(source: str, query: dict[str, str], destination: str, status: int, force: bool,
                  where: str, warnings: list[str]) -> NetlifyRedirectRule | None:
    """One rule, however it was written (a `_redirects` line, a netlify.toml [[redirects]]
    table): checked and compiled, or None when it is dropped with a warning."""
    if not _is_path_rule(source, where, warnings):
        return None
    check_status(status, where)
    if status not in REDIRECT_CODES and not destination.startswith("/"):
        warnings.append(f"{where}: proxying to {destination!r} is not supported; rule ignored")
        return None
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
    """200-599, and of the 3xx only the redirect codes (a 304 rule would make no sense)."""
    if not (200 <= status <= 599) or (300 <= status < 400 and status not in REDIRECT_CODES):
        raise SiteConfigError(f"{where}: unsupported status {status}")


def _leading_query(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """Netlify query matching: `key=value` tokens between `from` and `to`."""
    query = {}
    while tokens and "=" in tokens[0] and not tokens[0].startswith(("/", "http://", "https://")):
        key, _, value = tokens[0].partition("=")
        query[key] = value
        tokens = tokens[1:]
    return query, tokens


def _status_token(tokens: list[str], where: str) -> tuple[int, bool, list[str]]:
    if not tokens:
        return 301, False, tokens  # Netlify's default status
    match = _STATUS.match(tokens[0])
    if not match:
        if tokens[0] == "!":
            return 301, True, tokens[1:]
        if "=" in tokens[0]:
            return 301, False, tokens
        raise SiteConfigError(f"{where}: {tokens[0]!r} is not a status code")
    status = int(match.group(1))
    check_status(status, where)
    return status, bool(match.group(2)), tokens[1:]


# --- _headers --------------------------------------------------------------------------------

def parse_headers_file(text: str, warnings: list[str]) -> list[NetlifyHeaderRule]:
    """Parse `_headers`: a path line, then indented `Name: value` lines (`! Name` detaches, as on
    Cloudflare Pages). Every matching block applies; the resolver merges them."""
    rules: list[HeaderBlock] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"_headers line {number}"
        if raw[0] not in " \t":
            rules.append(header_block(line, where, warnings))
            if len(rules) > MAX_RULES:
                raise SiteConfigError(f"_headers: more than {MAX_RULES} rules")
        elif not rules:
            raise SiteConfigError(f"{where}: a header line must follow a path line")
        else:
            _header_line(rules[-1], line, where)
    return header_rules(rules)


def header_rules(blocks: list[HeaderBlock]) -> list[NetlifyHeaderRule]:
    """The blocks to keep: an ignored block (no regex) is dropped, every other one is a rule."""
    return [cast(NetlifyHeaderRule, block) for block in blocks if block["regex"] is not None]


def header_block(line: str, where: str, warnings: list[str]) -> HeaderBlock:
    """A block for the path `line` (a `_headers` path line, a netlify.toml `for`), headers to
    follow; a host-specific block is kept only to be dropped, with a warning."""
    if line.startswith(("http://", "https://")):
        # Cloudflare Pages allows host-specific blocks; percel serves one host per site.
        warnings.append(f"{where}: host-specific rules are not supported; block ignored")
        return {"regex": None, "headers": [], "detach": []}
    if not line.startswith("/"):
        raise SiteConfigError(f"{where}: {line!r} is not a path (paths start with \"/\"; "
                              "header lines must be indented)")
    regex, names = splat_pattern(line)
    check_cost(regex, where, line)
    return {"regex": regex, "names": names, "headers": [], "detach": []}


def _header_line(rule: HeaderBlock, line: str, where: str) -> None:
    if line.startswith("!"):
        rule["detach"].append(line[1:].strip().lower())
        return
    name, colon, value = line.partition(":")
    if not colon:
        raise SiteConfigError(f"{where}: expected `Name: value`, got {line!r}")
    rule["headers"].append(header_pair(name.strip(), value, where))
