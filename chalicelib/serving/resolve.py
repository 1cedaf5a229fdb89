"""The request handler's pure logic: (request, compiled site) -> Decision. No I/O.

The adapter (chalicelib/serving/site.py) calls `resolve` and then does what the Decision says:
send the status and headers, and fetch `body` (a blob, maybe a byte range of it) or send `inline`.

Order of evaluation (Vercel's, https://vercel.com/docs/project-configuration, then the Netlify
rules at the point Netlify applies them):
  1. method (GET/HEAD) and path safety (request.py);
  2. cleanUrls redirect, trailingSlash redirect, vercel.json redirects (redirects.py);
  3. `_redirects` rules, then netlify.toml's [[redirects]]: first match wins; a rule does not
     shadow an existing file unless forced with `!` / `force = true`
     (https://docs.netlify.com/routing/redirects/rewrites-proxies/#shadowing);
  4. headers (vercel.json `headers`, then `_headers` and [[headers]]), matched on the request path
     (header_rules.py);
  5. the filesystem: exact file, `<path>.html`, `<path>/index.html` (compiled.py);
  6. vercel.json rewrites (only when no file matched);
  7. SPA fallback to /index.html (never for asset-like paths), then the nearest 404.html.
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from chalicelib.schema import REDIRECT_CODES, OutputManifest
from chalicelib.serving.compiled import CompiledSite, looks_like_asset
from chalicelib.serving.decision import Decision, Headers, plain
from chalicelib.serving.files import serve_file
from chalicelib.serving.header_rules import rule_headers
from chalicelib.serving.matching import PATH_SAFE, match_vercel, substitute
from chalicelib.serving.redirects import (
    NetlifyHit,
    netlify_match,
    redirect,
    redirect_phase,
)
from chalicelib.serving.request import Request, check_path

ALLOWED_METHODS = "GET, HEAD"


def resolve(method: str, path: str, headers: Mapping[str, str],
            site: CompiledSite | OutputManifest, query: str = "", *,
            decoded: bool = False) -> Decision:
    """Decide the response to a request for a site.

    path: the request path as received, still percent-encoded, without the query string
          (pass decoded=True only if the front end already decoded it once; it is then
          checked but not decoded again).
    query: the raw query string without "?", used for redirects and query-matching rules.
    headers: request headers with lower-case names.
    site: the deployment compiled once (the handler's), or its output manifest (compiled here).
    """
    if method not in ("GET", "HEAD"):
        return plain(405, method, [("Allow", ALLOWED_METHODS)])
    safe = check_path(path, decoded)
    if isinstance(safe, int):
        return plain(safe, method)
    compiled = site if isinstance(site, CompiledSite) else CompiledSite(site)
    return _route(Request(method, safe, query, headers), compiled)


def _route(req: Request, site: CompiledSite) -> Decision:
    redirected = redirect_phase(req, site)
    if redirected is not None:
        return redirected
    page = site.page(req.path)
    # Netlify: a file shadows unforced rules; Cloudflare Pages applies `_redirects` first.
    hit = netlify_match(req, site, shadowed=page is not None and site.dialect == "netlify")
    extra = rule_headers(req, site)
    if hit is not None:
        decision = _apply_netlify(req, site, hit, extra)
        if decision is not None:
            return decision
    if page is not None and page.location is not None:
        return redirect(req, quote(page.location, safe=PATH_SAFE), 308, extra=_on_redirects(site, extra))
    if page is not None and page.key is not None:
        return _serve(req, site, page.key, 200, extra)
    return _rewrite_phase(req, site, extra) or _fallback(req, site, extra)


def _on_redirects(site: CompiledSite, extra: Headers) -> Headers:
    """Cloudflare Pages attaches `_headers` to every response, redirects included
    (workers-sdk packages/pages-shared/asset-server/handler.ts); Netlify's custom headers
    apply only to the files it serves (https://docs.netlify.com/routing/headers/)."""
    return extra if site.dialect == "cloudflare" else []


def _serve(req: Request, site: CompiledSite, key: str, status: int, extra: Headers) -> Decision:
    return serve_file(req, key, site.files[key], status, extra)


def _apply_netlify(req: Request, site: CompiledSite, hit: NetlifyHit,
                   extra: Headers) -> Decision | None:
    rule, values = hit
    if rule["status"] in REDIRECT_CODES:
        return redirect(req, substitute(rule["destination"], values, True), rule["status"],
                        extra=_on_redirects(site, extra))
    target = substitute(rule["destination"], values, False).split("?", 1)[0]
    key = site.lookup(target)
    if key is None or (rule["status"] == 200 and _html_for_asset(req.path, key)):
        return None
    return _serve(req, site, key, rule["status"], extra)


def _html_for_asset(request_path: str, key: str) -> bool:
    """A rewrite must not answer a missing script or image with HTML: after a deploy, a
    browser holding the old page asks for the old hashed bundle, and HTML there breaks the app
    where a 404 lets it reload."""
    return looks_like_asset(request_path) and key.endswith((".html", ".htm"))


def _rewrite_phase(req: Request, site: CompiledSite, extra: Headers) -> Decision | None:
    """vercel.json rewrites, only reached when no file matched. Like Vercel's `check: true`,
    a destination that is not a file carries on to the next rule with the rewritten path."""
    path = req.path
    for rule in site.rewrites:
        values = match_vercel(rule, req, path)
        if values is None:
            continue
        path = substitute(rule["destination"], values, False).split("?", 1)[0]
        key = site.lookup(path)
        if key is not None and not _html_for_asset(req.path, key):
            return _serve(req, site, key, rule.get("status", 200), extra)
    return None


def _fallback(req: Request, site: CompiledSite, extra: Headers) -> Decision:
    """SPA fallback for page-like paths, else the nearest 404.html (Cloudflare Pages), else plain."""
    if site.spa and not looks_like_asset(req.path) and "index.html" in site.files:
        return _serve(req, site, "index.html", 200, extra)
    key = site.nearest_404(req.path)
    if key is not None:
        return _serve(req, site, key, 404, extra)
    return plain(404, req.method, extra)
