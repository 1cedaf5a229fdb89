"""Headers that config rules add: vercel.json `headers`, then `_headers` blocks."""
from __future__ import annotations

from chalicelib.serving.compiled import CompiledSite
from chalicelib.serving.decision import Headers
from chalicelib.serving.matching import conditions_hold, match_rule
from chalicelib.serving.request import Request

# lower-case name -> (name as written, value)
_Merged = dict[str, tuple[str, str]]


def rule_headers(req: Request, site: CompiledSite) -> Headers:
    """vercel.json headers (a later rule overrides a name), then `_headers` (values of one name
    from several blocks are joined with ", ", as Netlify and Cloudflare Pages do; `! Name`
    detaches)."""
    merged: _Merged = {}
    for rule in site.headers:
        if match_rule(rule, req.path) is not None and conditions_hold(rule, req):
            merged.update((name.lower(), (name, value)) for name, value in rule["headers"])
    _merge_netlify_headers(req, site, merged)
    return list(merged.values())


def _merge_netlify_headers(req: Request, site: CompiledSite, merged: _Merged) -> None:
    path = req.netlify_path
    joined: set[str] = set()
    detached: set[str] = set()
    for rule in site.netlify_headers:
        if match_rule(rule, path) is None:
            continue
        detached.update(rule.get("detach", ()))
        for name, value in rule["headers"]:
            lower = name.lower()
            if lower in joined:
                value = f"{merged[lower][1]}, {value}"
            merged[lower] = (name, value)
            joined.add(lower)
    for lower in detached:
        merged.pop(lower, None)
