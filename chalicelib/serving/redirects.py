"""Redirects: cleanUrls, trailingSlash, vercel.json `redirects` and `_redirects` matching, and
the Location they send (the request's query carried over, percent-encoded for a header)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote_plus

from chalicelib.schema import NetlifyRedirectRule
from chalicelib.serving.caching import REVALIDATE
from chalicelib.serving.compiled import CompiledSite
from chalicelib.serving.decision import TEXT_PLAIN, Decision, Headers, override, redirect_note
from chalicelib.serving.matching import (
    PATH_SAFE,
    match_vercel,
    substitute,
)
from chalicelib.serving.request import Request
from chalicelib.serving.splat_rules import match_splat

# What a finished Location keeps as it is: RFC 3986 reserved and unreserved characters, and "%"
# (escapes already made). The rest is percent-encoded: a CR or LF from a config destination
# would start a new header (response splitting), and a field value outside ASCII is not sent
# at all (http.server fails on it; RFC 9110 §5.5 makes non-ASCII obsolete in fields).
_LOCATION_SAFE = "!#$%&'()*+,/:;=?@[]~"

_CLEAN_INDEX = re.compile(r"^/(?:(.+)/)?index(?:\.html)?/?$")
_CLEAN_HTML = re.compile(r"^/(.*)\.html/?$")
_SLASHLESS_PAGE = re.compile(r"^/((?:[^/]+/)*[^/.]+)$")
_SLASHED_FILE = re.compile(r"^/((?:[^/]+/)*[^/]+\.\w+)/$")

NetlifyHit = tuple[NetlifyRedirectRule, dict[str, str]]


def redirect_phase(req: Request, site: CompiledSite) -> Decision | None:
    """cleanUrls, then trailingSlash, then vercel.json redirects (Vercel's order)."""
    target = clean_urls_target(req.path, site) or slash_target(req.path, site)
    if target is not None and _same_page(req.path, target, site):
        return redirect(req, quote(target, safe=PATH_SAFE), 308)
    for rule in site.redirects:
        values = match_vercel(rule, req)
        if values is not None:
            destination = substitute(rule["destination"], values, True)
            return redirect(req, destination, rule["status"], merge_query=True)
    return None


def clean_urls_target(path: str, site: CompiledSite) -> str | None:
    """cleanUrls: `/x/index(.html)` -> `/x`, `/x.html` -> `/x` (Vercel routing-utils, 308)."""
    if not site.clean_urls:
        return None
    found = _CLEAN_INDEX.match(path) or _CLEAN_HTML.match(path)
    if found is None:
        return None
    clean = "/" + (found[1] or "")
    return clean + "/" if site.trailing_slash and clean != "/" else clean


def _same_page(path: str, target: str, site: CompiledSite) -> bool:
    """cleanUrls / trailingSlash move a page only to an address serving that same file:
    `/both/index.html` stays put when `/both` is `both.html`, another file. An address
    serving nothing moves as Vercel moves it (its 404 is then at the canonical address)."""
    served = site.lookup(path)
    return served is None or site.lookup(target) == served


def slash_target(path: str, site: CompiledSite) -> str | None:
    """trailingSlash: true adds a slash to pages (not files, not /.well-known); false removes it."""
    setting = site.trailing_slash
    if setting is True and not (path + "/").startswith("/.well-known/"):
        if _SLASHLESS_PAGE.match(path):
            return path + "/"
        if _SLASHED_FILE.match(path):
            return path[:-1]
    if setting is False and path != "/" and path.endswith("/"):
        return path[:-1]
    return None


def redirect(req: Request, destination: str, status: int, merge_query: bool = False,
             extra: Headers | None = None) -> Decision:
    """A redirect that carries the request's query (Vercel, Netlify), percent-encoded for a
    header, with a short text body naming the target (headers only on HEAD). `extra`: rule
    headers, which Cloudflare Pages attaches to redirects too."""
    if destination.startswith("/"):
        # `//evil.example` would be a protocol-relative URL: an open redirect.
        destination = "/" + destination.lstrip("/\\")
    destination = quote(with_query(destination, req.query, merge_query), safe=_LOCATION_SAFE)
    body = redirect_note(destination)
    headers = override([("Location", destination), ("Content-Type", TEXT_PLAIN),
                        ("Cache-Control", REVALIDATE)], extra or [])
    headers.append(("Content-Length", str(len(body))))
    return Decision(status, headers, inline=b"" if req.method == "HEAD" else body,
                    location=destination)


def with_query(destination: str, query: str, merge: bool) -> str:
    """Put the request's query before the destination's #fragment (RFC 3986 §3.5).

    A destination with a query of its own keeps it; with merge (vercel.json redirects) the
    request's other parameters follow it: `/?baz=10` -> `/lol/?path=foo&baz=10`
    (https://vercel.com/guides/how-do-i-perform-vercel-redirects-based-on-query-strings; a
    parameter both name takes the destination's value, as in Next.js prepareDestination).
    """
    if not query:
        return destination
    base, hash_mark, fragment = destination.partition("#")
    path, question, own = base.partition("?")
    if question and not merge:
        return destination
    named = {name for name, _ in parse_qsl(own, keep_blank_values=True)}
    kept = [pair for pair in query.split("&") if unquote_plus(pair.partition("=")[0]) not in named]
    joined = "&".join(part for part in (own, *kept) if part)
    return f"{path}?{joined}{hash_mark}{fragment}" if joined else f"{path}{hash_mark}{fragment}"


def netlify_match(req: Request, site: CompiledSite, shadowed: bool) -> NetlifyHit | None:
    """The first matching `_redirects` rule; when a file exists only forced (`!`) rules may
    apply (https://docs.netlify.com/routing/redirects/rewrites-proxies/#shadowing)."""
    for entry in site.netlify_redirects:
        rule = entry.rule
        if shadowed and not rule.get("force"):
            continue
        values = match_splat(entry, req)
        if values is None:
            continue
        bound = _query_values(rule.get("query") or {}, req)
        if bound is not None:
            values.update(bound)
            return rule, values
    return None


def _query_values(wanted: dict[str, str], req: Request) -> dict[str, str] | None:
    """Netlify query matching: every listed parameter must be present; `:name` binds its value."""
    bound = {}
    for name, expected in wanted.items():
        actual = req.params.get(name)
        if actual is None:
            return None
        if expected.startswith(":"):
            bound[expected[1:]] = actual[0]
        elif expected and actual[0] != expected:
            return None
    return bound
