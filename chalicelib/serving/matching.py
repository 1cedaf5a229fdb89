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
# What a header value keeps when a value is filled in: printable ASCII. The rest (a decoded
# path's non-ASCII letters) is percent-encoded, as the path was on the wire (RFC 9110 §5.5).
HEADER_SAFE = "".join(chr(code) for code in range(0x20, 0x7f))
# `:path*` / `:path+` in a destination are the parameter itself (path-to-regexp compile).
_REFERENCE = re.compile(r"\$(\d+)|[:$]([A-Za-z_][A-Za-z0-9_]*)[*+]?")


# A decimal number as JavaScript's Number() reads one (surrounding spaces allowed).
_DECIMAL = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")


def match_vercel(rule: ConditionalRule, req: Request, path: str | None = None) -> dict[str, str] | None:
    """A vercel.json rule's values when its source matches `path` (the request's by default)
    and its conditions hold: the source's groups, then what `has` binds (which wins a shared
    name, as in routing-utils)."""
    values = match_rule(rule, req.path if path is None else path)
    if values is None:
        return None
    bound = bound_values(rule, req)
    if bound is None:
        return None
    values.update(bound)
    return values


def match_rule(rule: PatternRule, path: str) -> dict[str, str] | None:
    """Match a compiled rule; the values by name, plus "$1".. by position."""
    found = safe_regex.match(rule["regex"], path)
    if found is None:
        return None
    groups = [value or "" for value in found.groups()]
    values = {f"${number}": value for number, value in enumerate(groups, start=1)}
    values.update(zip(rule.get("names", ()), groups, strict=False))
    return values


def bound_values(rule: ConditionalRule, req: Request) -> dict[str, str] | None:
    """Vercel `has` / `missing` (https://vercel.com/docs/project-configuration#redirects):
    the values a rule's `has` items bind when every one holds and no `missing` item does;
    None otherwise. As in Next.js matchHas (vercel/next.js packages/next/src/shared/lib/router/
    utils/prepare-destination.ts): a key without a value binds its value to the key's name, a
    value's named groups bind their names, a host value without groups binds `host`; an empty
    value holds nothing."""
    bound: dict[str, str] = {}
    for item in rule.get("has", ()):
        if not _condition(item, req, bound):
            return None
    if any(_condition(item, req, {}) for item in rule.get("missing", ())):
        return None
    return bound


def _condition(item: Condition, req: Request, bound: dict[str, str]) -> bool:
    actual = _condition_value(item, req)
    if not actual or not all(_compare(op, actual, operand) for op, operand in item.get("compare", ())):
        return False
    wanted = item.get("value")
    if wanted is None:
        bound[item.get("key") or ""] = actual
        return True
    # The whole value must match (docs/DECISIONS.md#vercel-json).
    found = safe_regex.match(wanted, actual, full=True)
    if found is None:
        return False
    groups = found.groupdict()
    bound.update((name, value or "") for name, value in groups.items())
    if not groups and item["type"] == "host":
        bound["host"] = actual
    return True


def _compare(operator: str, actual: str, operand: float) -> bool:
    """vercel.json gt/gte/lt/lte: the value read as a number (JavaScript's Number(); a value
    that is not one compares false)."""
    if not _DECIMAL.fullmatch(actual):
        return False
    number = float(actual)
    return {"gt": number > operand, "gte": number >= operand, "lt": number < operand,
            "lte": number <= operand}.get(operator, False)


def _condition_value(item: Condition, req: Request) -> str | None:
    kind, key = item["type"], (item.get("key") or "")
    if kind == "header":
        return req.headers.get(key.lower())
    if kind == "host":
        # Host names are case-insensitive (RFC 9110 §4.2.3); Next.js matchHas lower-cases too.
        return host_name(req.headers.get("host", ""))
    if kind == "query":
        given = req.params.get(key)
        return given[-1] if given else None      # matchHas tests a repeated parameter's last
    return req.cookies.get(key)


def substitute(template: str, values: dict[str, str], encode: bool, safe: str = PATH_SAFE) -> str:
    """Fill `:name`, `$name` and `$1` in a destination; unknown references stay as written.

    vercel.json templates use `$1` / `$name` (compiled at build time); `_redirects` ones
    `:name`. Values are percent-encoded for a Location or header (encode=True, keeping
    `safe`) and kept raw for a rewrite.
    """
    if "$" not in template and ":" not in template:
        return template
    def fill(ref: re.Match[str]) -> str:
        name = f"${ref[1]}" if ref[1] else ref[2]
        if name not in values:
            return ref[0]
        return quote(values[name], safe=safe) if encode else values[name]
    return _REFERENCE.sub(fill, template)
