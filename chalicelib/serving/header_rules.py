"""Headers that config rules add: vercel.json `headers`, then `_headers` blocks."""
from __future__ import annotations

from collections.abc import Iterator

from chalicelib.schema import HEADER_NAME, RESERVED_HEADERS, HeaderRule
from chalicelib.serving.compiled import CompiledSite
from chalicelib.serving.decision import Headers
from chalicelib.serving.matching import HEADER_SAFE, match_vercel, substitute
from chalicelib.serving.request import Request
from chalicelib.serving.splat_rules import fill_header, match_splat

# lower-case name -> (name as written, value)
_Merged = dict[str, tuple[str, str]]


def rule_headers(req: Request, site: CompiledSite) -> Headers:
    """vercel.json headers (a later rule overrides a name), then `_headers` blocks in order."""
    merged: _Merged = {}
    for rule in site.headers:
        values = match_vercel(rule, req)
        if values is not None:
            merged.update((name.lower(), (name, value)) for name, value in _filled(rule, values))
    _merge_netlify_headers(req, site, merged)
    return list(merged.values())


def _filled(rule: HeaderRule, values: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A vercel.json rule's headers with their `$1` / `$name` references filled in
    (routing-utils compiles `:path` in names and values to those). A name that comes out as no
    valid or a reserved header name is dropped, so a request path never sets Location
    (docs/DECISIONS.md#vercel-json)."""
    for written, template in rule["headers"]:
        name = substitute(written, values, False)
        if name != written and (not HEADER_NAME.fullmatch(name) or name.lower() in RESERVED_HEADERS):
            continue
        yield name, substitute(template, values, True, HEADER_SAFE)


def _merge_netlify_headers(req: Request, site: CompiledSite, merged: _Merged) -> None:
    """Every matching block applies in file order (docs/DECISIONS.md#dialects):
    - netlify: a later block's value of a name replaces an earlier one (netlify/primitives
      packages/headers/src/lib/headersForPath.ts merges the matching blocks into one object);
    - cloudflare: values of one name from several blocks are joined with ", ", `! Name`
      removes what came before, and `:name`/`:splat` fill values (workers-sdk
      packages/pages-shared/asset-server/handler.ts, attachHeaders)."""
    cloudflare = site.dialect == "cloudflare"
    joined: set[str] = set()
    for entry in site.netlify_headers:
        values = match_splat(entry, req)
        if values is None:
            continue
        for lower in entry.rule.get("detach", ()):
            merged.pop(lower, None)
            joined.discard(lower)
        for name, value in entry.rule["headers"]:
            lower = name.lower()
            if cloudflare:
                value = fill_header(value, values)
                if lower in joined:
                    value = f"{merged[lower][1]}, {value}"
            merged[lower] = (name, value)
            joined.add(lower)
