"""Matching `_redirects` and `_headers` rules as the site's dialect reads them.

The build compiles each rule path once, Netlify's way (chalicelib/pipeline/siteconfig/
patterns.py `splat_pattern`: no trailing slash, `/x/*` also matching `/x`). Per deployment,
`adapt` turns that into the dialect's pattern (docs/DECISIONS.md#dialects):
- netlify: paths match whatever their case (Netlify lowercases a path before the rules);
- cloudflare: case-sensitive, and a trailing splat needs its slash: `/x/*` matches `/x/` and
  `/x/y` but not `/x` (workers-sdk packages/workers-shared/asset-worker/tests/rules-engine.test.ts).
Cloudflare compares rules with the percent-encoded path, so a rule written `/some%20page`
matches a request for the page `some page`; percel tries the decoded path first, then its
encoded form when the two differ.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote, unquote

from chalicelib.schema import Dialect, NetlifyHeaderRule, NetlifyRedirectRule, PatternRule
from chalicelib.serving.matching import PATH_SAFE, match_rule
from chalicelib.serving.request import Request

Rule = TypeVar("Rule", NetlifyRedirectRule, NetlifyHeaderRule)

# How splat_pattern ends a path written `/x/*`: the slash and the splat are optional together.
_OPTIONAL_TAIL = "(?:/(.*))?$"
_PLACEHOLDER = re.compile(r":([A-Za-z]\w*)")


@dataclass(frozen=True)
class SplatRule(Generic[Rule]):
    rule: Rule                # as the build compiled it
    pattern: PatternRule      # the regex this site's dialect matches with
    as_requested: bool        # match the path with its trailing slash, not without


def adapt(rule: Rule, dialect: Dialect) -> SplatRule[Rule]:
    """Once per deployment: the rule as `dialect` matches it."""
    regex, names = rule["regex"], rule.get("names", [])
    if dialect != "cloudflare":
        return SplatRule(rule, {"regex": "(?i)" + regex, "names": names}, False)
    as_requested = regex.endswith(_OPTIONAL_TAIL)
    if as_requested:
        regex = regex[:-len(_OPTIONAL_TAIL)] + "/(.*)$"
    return SplatRule(rule, {"regex": regex, "names": names}, as_requested)


def match_splat(entry: SplatRule[Rule], req: Request) -> dict[str, str] | None:
    """The rule's values for this request (decoded), or None."""
    if entry.as_requested:
        path, encoded = req.path, req.encoded_path
    else:
        path, encoded = req.netlify_path, req.encoded_netlify_path
    values = match_rule(entry.pattern, path)
    if values is not None or encoded == path:
        return values
    values = match_rule(entry.pattern, encoded)
    return None if values is None else {name: unquote(value) for name, value in values.items()}


def fill_header(value: str, values: dict[str, str]) -> str:
    """Cloudflare: `:name` and `:splat` in a `_headers` value take the matched path's values,
    percent-encoded (a header value must stay printable ASCII, RFC 9110 §5.5)."""
    if ":" not in value:
        return value

    def fill(ref: re.Match[str]) -> str:
        found = values.get(ref[1])
        return ref[0] if found is None else quote(found, safe=PATH_SAFE)
    return _PLACEHOLDER.sub(fill, value)
