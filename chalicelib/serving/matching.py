"""Matching compiled rules: the pattern, Vercel's `has`/`missing` conditions, and filling
the matched values into a destination."""
from __future__ import annotations

import re
from urllib.parse import quote

from chalicelib import safe_regex
from chalicelib.schema import Condition, ConditionalRule, PatternRule
from chalicelib.serving.request import Request, host_name

# Characters kept as they are when a decoded path goes back into a Location (RFC 3986 pchar).
PATH_SAFE = "/!$&'()*+,;=:@~"
# `:path*` / `:path+` in a destination are the parameter itself (path-to-regexp compile).
_REFERENCE = re.compile(r"\$(\d+)|[:$]([A-Za-z_][A-Za-z0-9_]*)[*+]?")


def match_rule(rule: PatternRule, path: str) -> dict[str, str] | None:
    """Match a compiled rule; the values by name, plus "$1".. by position."""
    found = safe_regex.match(rule["regex"], path)
    if found is None:
        return None
    groups = [value or "" for value in found.groups()]
    values = {f"${number}": value for number, value in enumerate(groups, start=1)}
    values.update(zip(rule.get("names", ()), groups, strict=False))
    return values


def conditions_hold(rule: ConditionalRule, req: Request) -> bool:
    """Vercel `has` / `missing` (https://vercel.com/docs/project-configuration#redirects)."""
    return (all(_condition(item, req) for item in rule.get("has", ()))
            and not any(_condition(item, req) for item in rule.get("missing", ())))


def _condition(item: Condition, req: Request) -> bool:
    actual = _condition_value(item, req)
    if actual is None:
        return False
    wanted = item.get("value")
    return wanted is None or safe_regex.match(wanted, actual, full=True) is not None


def _condition_value(item: Condition, req: Request) -> str | None:
    kind, key = item["type"], (item.get("key") or "")
    if kind == "header":
        return req.headers.get(key.lower())
    if kind == "host":
        # Host names are case-insensitive (RFC 9110 §4.2.3); Next.js matchHas lower-cases too.
        return host_name(req.headers.get("host", "")) or None
    if kind == "query":
        given = req.params.get(key)
        return given[0] if given else None
    return _cookies(req.headers.get("cookie", "")).get(key)


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in header.split(";") if "=" in part)
    return {name: value for name, _, value in pairs}


def substitute(template: str, values: dict[str, str], encode: bool) -> str:
    """Fill `:name`, `$name` and `$1` in a destination; unknown references stay as written.

    Values are percent-encoded for a Location (encode=True) and kept raw for a rewrite.
    """
    def fill(ref: re.Match[str]) -> str:
        name = f"${ref[1]}" if ref[1] else ref[2]
        if name not in values:
            return ref[0]
        return quote(values[name], safe=PATH_SAFE) if encode else values[name]
    return _REFERENCE.sub(fill, template)
