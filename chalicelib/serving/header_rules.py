"""Headers that config rules add: vercel.json `headers`, then `_headers` blocks."""
from __future__ import annotations

from chalicelib.serving.compiled import CompiledSite
from chalicelib.serving.decision import Headers
from chalicelib.serving.matching import conditions_hold, match_rule
from chalicelib.serving.request import Request
from chalicelib.serving.splat_rules import fill_header, match_splat

# lower-case name -> (name as written, value)
_Merged = dict[str, tuple[str, str]]


def rule_headers(req: Request, site: CompiledSite) -> Headers:
    """vercel.json headers (a later rule overrides a name), then `_headers` blocks in order."""
    merged: _Merged = {}
    for rule in site.headers:
        if match_rule(rule, req.path) is not None and conditions_hold(rule, req):
            merged.update((name.lower(), (name, value)) for name, value in rule["headers"])
    _merge_netlify_headers(req, site, merged)
    return list(merged.values())


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
