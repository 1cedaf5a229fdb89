"""Table tests for the pure resolver (chalicelib/serving/resolve.py and the modules it calls):
no I/O, no server.

Each row is a request a visitor makes and what they would notice: the status, the file served,
the headers, the redirect target, the byte range.
"""
from __future__ import annotations

import hashlib

import pytest

from chalicelib.pipeline import siteconfig
from chalicelib.serving.caching import IMMUTABLE, REVALIDATE, is_content_hashed
from chalicelib.serving.decision import BlobRef
from chalicelib.serving.files import NOT_MODIFIED_FIELDS
from chalicelib.serving.resolve import resolve
from chalicelib.storage import mediatypes

SIZE = 1000
COMPRESSED = ("index.html", "about.html", "assets/index-B1a2c3D4.js", "docs/index.html",
              "data.json", "static/js/main.1a2b3c4d.js")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(key: str) -> dict:
    item = {"sha256": digest(key), "size": SIZE, "type": mediatypes.content_type(key)}
    if key in COMPRESSED:
        item["encodings"] = {"br": {"sha256": digest(key + ".br"), "size": 300},
                             "gzip": {"sha256": digest(key + ".gz"), "size": 400}}
    return item


BASIC_FILES = ["index.html", "about.html", "docs/index.html", "docs/intro.html", "404.html",
               "blog/404.html", "assets/index-B1a2c3D4.js", "assets/logo-a1b2c3d4.png",
               "robots.txt", "data.json", "static/js/main.1a2b3c4d.js", "café.html",
               "a b.txt", "en/404.html", "products/7.html", "_redirects", "_headers",
               "_next/static/chunks/app.js"]
SPA_FILES = ["index.html", "assets/index-B1a2c3D4.js", "favicon.svg"]

VERCEL = {
    "cleanUrls": True, "trailingSlash": False,
    "redirects": [
        {"source": "/old", "destination": "/about"},
        {"source": "/blog/:slug", "destination": "/posts/:slug", "permanent": False},
        {"source": "/docs-old/:path*", "destination": "/docs/:path*", "statusCode": 301},
        {"source": "/ext/(.*)", "destination": "https://example.com/$1"},
        {"source": "/beta", "destination": "/about", "has": [{"type": "cookie", "key": "beta"}]},
        {"source": "/shop", "destination": "https://shop.example.com/", "has": [{"type": "host", "value": "www\\.example\\.com"}]},
        {"source": "/keepq", "destination": "/about?from=keepq"},
        {"source": "/go/(.*)", "destination": "/$1"},
        {"source": "/team", "destination": "/about#team"},
        {"source": "/menu", "destination": "/café"},
        {"source": "/split", "destination": "/about\r\nSet-Cookie: session=evil"},
    ],
    "rewrites": [
        {"source": "/app/:path*", "destination": "/index.html"},
        {"source": "/api/(.*)", "destination": "/data.json"},
        {"source": "/chain", "destination": "/missing"},
        {"source": "/missing", "destination": "/docs/intro"},
        {"source": "/js/(.*)", "destination": "/index.html"},
    ],
    "headers": [
        {"source": "/(.*)", "headers": [{"key": "X-Frame-Options", "value": "DENY"}]},
        {"source": "/assets/(.*)", "headers": [{"key": "Cache-Control", "value": "public, max-age=60"}]},
        {"source": "/about", "headers": [{"key": "X-Frame-Options", "value": "SAMEORIGIN"}]},
        {"source": "/robots.txt", "headers": [{"key": "Content-Type", "value": "text/plain; charset=us-ascii"}]},
    ],
}
REDIRECTS = """\
# Netlify-style rules
/home        /            301
/legacy/*    /docs/:splat 302
/news/:year/:month  /blog/:year-:month
/forced-about   /docs/intro   200!
/about       /docs/intro  200
/store id=:id  /products/:id 301
/shop id=:id   /products/:id 200
/en/*        /en/404.html 404
/spa/*       /index.html  200
/gone        /404.html    410
/robots.txt  /about       301!
/faq         /docs/intro#faq  301
"""
HEADERS = """\
/*
  X-Frame-Options: DENY
  Link: </a.css>; rel=preload
/assets/*
  Link: </b.js>; rel=preload
  ! X-Frame-Options
/data.json
  Cache-Control: no-store
"""


# A page and a folder page of one name: two different files.
BOTH_FILES = ["index.html", "both.html", "both/index.html"]


def manifest(files: list[str], config: dict | None) -> dict:
    return {"version": 1, "id": "x", "files": {key: entry(key) for key in files}, "config": config}


# Parameters filled into headers, and has captures: what a visitor's request may and may not
# set (vercel/vercel packages/routing-utils/test/superstatic.spec.ts convertHeaders).
VERCEL_PARAMS = {
    "headers": [
        {"source": "/docs/:page", "headers": [{"key": "X-Page", "value": "page :page"},
                                             {"key": "X-:page", "value": "1"}]},
        {"source": "/(.*)", "has": [{"type": "header", "key": "x-team", "value": "(?<team>[a-z]+)"}],
         "headers": [{"key": "X-Team", "value": ":team"}]},
    ],
    "redirects": [
        {"source": "/who", "destination": "/team/:team",
         "has": [{"type": "header", "key": "x-team", "value": "(?<team>[a-z]+)"}]},
    ],
}

SITES = {
    "plain": manifest(BASIC_FILES, None),
    "params": manifest(BASIC_FILES, siteconfig.compile_config(vercel=VERCEL_PARAMS)),
    "vercel": manifest(BASIC_FILES, siteconfig.compile_config(vercel=VERCEL)),
    "slash": manifest(BASIC_FILES, siteconfig.compile_config(vercel={"cleanUrls": True, "trailingSlash": True})),
    "netlify": manifest(BASIC_FILES, siteconfig.compile_config(redirects=REDIRECTS, headers=HEADERS)),
    "spa": manifest(SPA_FILES, siteconfig.compile_config(spa_default=True)),
    # A site deployed now with no config: auto-trailing-slash (docs/DECISIONS.md#html-handling).
    "default": manifest(BASIC_FILES, siteconfig.compile_config()),
    "cloudflare": manifest(BASIC_FILES, siteconfig.compile_config(
        redirects=REDIRECTS, headers=HEADERS, percel={"dialect": "cloudflare"}, has_404=True)),
    "both-clean": manifest(BOTH_FILES, siteconfig.compile_config(vercel={"cleanUrls": True})),
    "both-slash": manifest(BOTH_FILES, siteconfig.compile_config(vercel={"trailingSlash": True})),
    "spa-off": manifest(SPA_FILES, siteconfig.compile_config(spa_default=True, percel={"spa": False})),
}

ETAG_INDEX = f'"{digest("index.html")[:32]}"'
ETAG_INDEX_BR = f'"{digest("index.html.br")[:32]}"'
ETAG_ROBOTS = f'"{digest("robots.txt")[:32]}"'

# (id, site, method, path, query, request headers, status, file served, expected headers)
# Expected headers: name -> value, or None meaning "absent".
ROWS = [
    # --- index files and the filesystem
    ("root", "plain", "GET", "/", "", {}, 200, "index.html", {"Content-Type": "text/html; charset=utf-8"}),
    ("dir-slash", "plain", "GET", "/docs/", "", {}, 200, "docs/index.html", {}),
    ("dir-no-slash", "plain", "GET", "/docs", "", {}, 200, "docs/index.html", {}),
    ("html-file", "plain", "GET", "/about.html", "", {}, 200, "about.html", {}),
    ("html-ext-optional", "plain", "GET", "/about", "", {}, 200, "about.html", {}),
    ("nested-html", "plain", "GET", "/docs/intro", "", {}, 200, "docs/intro.html", {}),
    ("text-file", "plain", "GET", "/robots.txt", "", {}, 200, "robots.txt",
     {"Content-Type": "text/plain; charset=utf-8"}),
    ("percent-decoded-once", "plain", "GET", "/a%20b.txt", "", {}, 200, "a b.txt", {}),
    ("utf8-path", "plain", "GET", "/caf%C3%A9", "", {}, 200, "café.html", {}),
    ("index-html-direct", "plain", "GET", "/index.html", "", {}, 200, "index.html", {}),
    ("redirects-file-hidden", "plain", "GET", "/_redirects", "", {}, 404, "404.html", {}),
    ("headers-file-hidden", "plain", "GET", "/_headers", "", {}, 404, "404.html", {}),
    ("case-sensitive", "plain", "GET", "/ABOUT", "", {}, 404, "404.html", {}),
    # --- methods
    ("head-no-body", "plain", "HEAD", "/", "", {}, 200, "index.html", {"Content-Length": str(SIZE)}),
    ("post-405", "plain", "POST", "/", "", {}, 405, None, {"Allow": "GET, HEAD"}),
    ("put-405", "plain", "PUT", "/about", "", {}, 405, None, {"Allow": "GET, HEAD"}),
    ("options-405", "plain", "OPTIONS", "/", "", {}, 405, None, {"Allow": "GET, HEAD"}),
    # --- path safety: refused before any lookup
    ("dotdot", "plain", "GET", "/../etc/passwd", "", {}, 404, None, {}),
    ("dotdot-inner", "plain", "GET", "/docs/../about.html", "", {}, 404, None, {}),
    ("encoded-dotdot", "plain", "GET", "/%2e%2e/secret", "", {}, 404, None, {}),
    ("single-dot", "plain", "GET", "/./about.html", "", {}, 404, None, {}),
    ("encoded-slash", "plain", "GET", "/docs%2Fintro.html", "", {}, 400, None, {}),
    ("encoded-slash-lower", "plain", "GET", "/docs%2fintro.html", "", {}, 400, None, {}),
    ("encoded-backslash", "plain", "GET", "/docs%5Cintro.html", "", {}, 400, None, {}),
    ("backslash", "plain", "GET", "/docs\\intro.html", "", {}, 400, None, {}),
    ("nul", "plain", "GET", "/about%00.html", "", {}, 400, None, {}),
    ("control-char", "plain", "GET", "/about%0a", "", {}, 400, None, {}),
    ("bad-utf8", "plain", "GET", "/%ff%fe", "", {}, 400, None, {}),
    ("bad-escape", "plain", "GET", "/%zz", "", {}, 400, None, {}),
    ("overlong", "plain", "GET", "/" + "a" * 1024, "", {}, 400, None, {}),
    ("double-encoded-is-literal", "plain", "GET", "/%252e%252e/x", "", {}, 404, "404.html", {}),
    ("no-leading-slash", "plain", "GET", "about", "", {}, 400, None, {}),
    # --- custom 404 pages
    ("404-page", "plain", "GET", "/nope", "", {}, 404, "404.html", {"Cache-Control": REVALIDATE}),
    ("404-nearest", "plain", "GET", "/blog/missing", "", {}, 404, "blog/404.html", {}),
    ("404-nearest-deep", "plain", "GET", "/blog/a/b/c", "", {}, 404, "blog/404.html", {}),
    ("404-missing-asset", "plain", "GET", "/assets/gone-AbCd1234.js", "", {}, 404, "404.html", {}),
    ("404-plain", "spa-off", "GET", "/nope", "", {}, 404, None, {"Content-Type": "text/plain; charset=utf-8"}),
    ("404-no-conditional", "plain", "GET", "/nope", "", {"if-none-match": "*"}, 404, "404.html", {}),
    # --- SPA fallback
    ("spa-deep-link", "spa", "GET", "/dashboard/settings", "", {}, 200, "index.html", {"Cache-Control": REVALIDATE}),
    ("spa-deep-slash", "spa", "GET", "/users/42/", "", {}, 200, "index.html", {}),
    ("spa-html-path", "spa", "GET", "/page.html", "", {}, 200, "index.html", {}),
    ("spa-missing-js", "spa", "GET", "/assets/index-Old12345.js", "", {}, 404, None, {}),
    ("spa-missing-css", "spa", "GET", "/assets/x.css", "", {}, 404, None, {}),
    ("spa-missing-png", "spa", "GET", "/logo.png", "", {}, 404, None, {}),
    ("spa-dot-rule", "spa", "GET", "/files/report.v2", "", {}, 404, None, {}),
    ("spa-existing-asset", "spa", "GET", "/favicon.svg", "", {}, 200, "favicon.svg", {}),
    ("spa-switched-off", "spa-off", "GET", "/dashboard", "", {}, 404, None, {}),
    # --- vercel.json: cleanUrls, trailingSlash, redirects
    ("clean-html", "vercel", "GET", "/about.html", "", {}, 308, None, {"Location": "/about"}),
    ("clean-index", "vercel", "GET", "/docs/index", "", {}, 308, None, {"Location": "/docs"}),
    ("clean-index-html", "vercel", "GET", "/docs/index.html", "", {}, 308, None, {"Location": "/docs"}),
    ("clean-root-index", "vercel", "GET", "/index.html", "", {}, 308, None, {"Location": "/"}),
    ("clean-serves", "vercel", "GET", "/about", "", {}, 200, "about.html", {"X-Frame-Options": "SAMEORIGIN"}),
    ("clean-keeps-query", "vercel", "GET", "/about.html", "a=1&b=2", {}, 308, None, {"Location": "/about?a=1&b=2"}),
    ("clean-encodes", "vercel", "GET", "/caf%C3%A9.html", "", {}, 308, None, {"Location": "/caf%C3%A9"}),
    ("slash-false-strips", "vercel", "GET", "/docs/", "", {}, 308, None, {"Location": "/docs"}),
    ("slash-false-root", "vercel", "GET", "/", "", {}, 200, "index.html", {}),
    ("slash-no-open-redirect", "vercel", "GET", "//evil.example/", "", {}, 308, None, {"Location": "/evil.example"}),
    ("slash-true-adds", "slash", "GET", "/docs", "", {}, 308, None, {"Location": "/docs/"}),
    ("slash-true-serves", "slash", "GET", "/docs/", "", {}, 200, "docs/index.html", {}),
    ("slash-true-html-page", "slash", "GET", "/about/", "", {}, 200, "about.html", {}),
    ("slash-true-clean", "slash", "GET", "/about.html", "", {}, 308, None, {"Location": "/about/"}),
    ("slash-true-file-untouched", "slash", "GET", "/robots.txt", "", {}, 200, "robots.txt", {}),
    ("slash-true-file-unslashed", "slash", "GET", "/robots.txt/", "", {}, 308, None, {"Location": "/robots.txt"}),
    ("slash-true-well-known", "slash", "GET", "/.well-known/thing", "", {}, 404, "404.html", {}),
    ("redirect-default-308", "vercel", "GET", "/old", "", {}, 308, None, {"Location": "/about"}),
    ("redirect-query-kept", "vercel", "GET", "/old", "x=1", {}, 308, None, {"Location": "/about?x=1"}),
    # Vercel passes the request's query on and merges it with the destination's own
    # (https://vercel.com/guides/how-do-i-perform-vercel-redirects-based-on-query-strings).
    ("redirect-own-query", "vercel", "GET", "/keepq", "x=1", {}, 308, None, {"Location": "/about?from=keepq&x=1"}),
    ("redirect-own-query-wins", "vercel", "GET", "/keepq", "from=ad&x=1", {}, 308, None,
     {"Location": "/about?from=keepq&x=1"}),
    ("redirect-query-before-fragment", "vercel", "GET", "/team", "x=1", {}, 308, None,
     {"Location": "/about?x=1#team"}),
    ("redirect-non-ascii-encoded", "vercel", "GET", "/menu", "", {}, 308, None, {"Location": "/caf%C3%A9"}),
    ("redirect-crlf-no-header-split", "vercel", "GET", "/split", "", {}, 308, None,
     {"Location": "/about%0D%0ASet-Cookie:%20session=evil", "Set-Cookie": None}),
    ("redirect-absolute-keeps-query", "vercel", "GET", "/ext/a", "x=1", {}, 308, None,
     {"Location": "https://example.com/a?x=1"}),
    ("redirect-param-307", "vercel", "GET", "/blog/hello", "", {}, 307, None, {"Location": "/posts/hello"}),
    ("redirect-param-encoded", "vercel", "GET", "/blog/a%20b", "", {}, 307, None, {"Location": "/posts/a%20b"}),
    ("redirect-status-code", "vercel", "GET", "/docs-old/a/b", "", {}, 301, None, {"Location": "/docs/a/b"}),
    ("redirect-regex-group", "vercel", "GET", "/ext/x/y", "", {}, 308, None, {"Location": "https://example.com/x/y"}),
    ("redirect-has-cookie", "vercel", "GET", "/beta", "", {"cookie": "a=1; beta=yes"}, 308, None, {"Location": "/about"}),
    ("redirect-has-host", "vercel", "GET", "/shop", "", {"host": "www.example.com:8443"}, 308, None,
     {"Location": "https://shop.example.com/"}),
    ("redirect-has-host-any-case", "vercel", "GET", "/shop", "", {"host": "WWW.Example.COM."}, 308, None,
     {"Location": "https://shop.example.com/"}),
    ("redirect-has-host-other", "vercel", "GET", "/shop", "", {"host": "example.com"}, 404, "404.html", {}),
    ("redirect-has-missing", "vercel", "GET", "/beta", "", {}, 404, "404.html", {}),
    ("redirect-no-open-redirect", "vercel", "GET", "/go//evil.example", "", {}, 308, None, {"Location": "/evil.example"}),
    ("redirect-beats-file", "vercel", "GET", "/blog/404.html", "", {}, 308, None, {"Location": "/blog/404"}),
    # --- vercel.json: parameters in headers, has captures
    ("param-header-value", "params", "GET", "/docs/intro", "", {}, 200, "docs/intro.html",
     {"X-Page": "page intro", "X-intro": "1"}),
    ("param-header-non-ascii", "params", "GET", "/docs/caf%C3%A9", "", {}, 404, "404.html",
     {"X-Page": "page caf%C3%A9"}),
    ("param-header-name-reserved", "params", "GET", "/docs/location", "", {}, 404, "404.html",
     {"Location": None, "X-Page": "page location"}),
    ("param-header-name-invalid", "params", "GET", "/docs/a%20b", "", {}, 404, "404.html",
     {"X-a b": None, "X-Page": "page a b"}),
    ("has-capture-header", "params", "GET", "/", "", {"x-team": "blue"}, 200, "index.html",
     {"X-Team": "blue"}),
    ("has-capture-no-match", "params", "GET", "/", "", {"x-team": "Blue!"}, 200, "index.html",
     {"X-Team": None}),
    ("has-capture-redirect", "params", "GET", "/who", "", {"x-team": "red"}, 308, None,
     {"Location": "/team/red"}),
    # --- vercel.json: rewrites and headers
    ("rewrite-spa-area", "vercel", "GET", "/app/some/page", "", {}, 200, "index.html", {}),
    ("rewrite-regex", "vercel", "GET", "/api/users", "", {}, 200, "data.json", {}),
    ("rewrite-file-wins", "vercel", "GET", "/docs/intro", "", {}, 200, "docs/intro.html", {}),
    ("rewrite-chain", "vercel", "GET", "/chain", "", {}, 200, "docs/intro.html", {}),
    ("rewrite-never-html-for-js", "vercel", "GET", "/js/app.js", "", {}, 404, "404.html", {}),
    ("header-all", "vercel", "GET", "/", "", {}, 200, "index.html", {"X-Frame-Options": "DENY"}),
    ("header-later-wins", "vercel", "GET", "/about", "", {}, 200, "about.html", {"X-Frame-Options": "SAMEORIGIN"}),
    ("header-overrides-cache", "vercel", "GET", "/assets/index-B1a2c3D4.js", "", {}, 200,
     "assets/index-B1a2c3D4.js", {"Cache-Control": "public, max-age=60", "X-Frame-Options": "DENY"}),
    # Vercel, Netlify and Cloudflare Pages let a rule set Content-Type; a 304 repeats it.
    ("header-content-type", "vercel", "GET", "/robots.txt", "", {}, 200, "robots.txt",
     {"Content-Type": "text/plain; charset=us-ascii"}),
    ("header-content-type-304", "vercel", "GET", "/robots.txt", "", {"if-none-match": ETAG_ROBOTS}, 304,
     "robots.txt", {"Content-Type": "text/plain; charset=us-ascii"}),
    ("header-content-type-head", "vercel", "HEAD", "/robots.txt", "", {}, 200, "robots.txt",
     {"Content-Type": "text/plain; charset=us-ascii", "Content-Length": str(SIZE)}),
    ("header-on-404", "vercel", "GET", "/nope", "", {}, 404, "404.html", {"X-Frame-Options": "DENY"}),
    ("header-not-on-redirect", "vercel", "GET", "/old", "", {}, 308, None, {"X-Frame-Options": None}),
    # --- _redirects / _headers
    ("nl-default-301", "netlify", "GET", "/news/2024/05", "", {}, 301, None, {"Location": "/blog/2024-05"}),
    ("nl-splat", "netlify", "GET", "/legacy/a/b", "", {}, 302, None, {"Location": "/docs/a/b"}),
    ("nl-splat-bare", "netlify", "GET", "/legacy", "", {}, 302, None, {"Location": "/docs/"}),
    ("nl-trailing-slash", "netlify", "GET", "/home/", "", {}, 301, None, {"Location": "/"}),
    ("nl-query-kept", "netlify", "GET", "/home", "utm=1", {}, 301, None, {"Location": "/?utm=1"}),
    ("nl-query-before-fragment", "netlify", "GET", "/faq", "utm=1", {}, 301, None, {"Location": "/docs/intro?utm=1#faq"}),
    ("nl-query-match", "netlify", "GET", "/store", "id=7", {}, 301, None, {"Location": "/products/7?id=7"}),
    ("nl-query-absent", "netlify", "GET", "/store", "", {}, 404, "404.html", {}),
    ("nl-query-rewrite", "netlify", "GET", "/shop", "id=7", {}, 200, "products/7.html", {}),
    ("nl-forced-rewrite", "netlify", "GET", "/forced-about", "", {}, 200, "docs/intro.html", {}),
    ("nl-shadowed", "netlify", "GET", "/about", "", {}, 200, "about.html", {}),
    ("nl-forced-beats-file", "netlify", "GET", "/robots.txt", "", {}, 301, None, {"Location": "/about"}),
    ("nl-custom-404", "netlify", "GET", "/en/missing", "", {}, 404, "en/404.html", {}),
    ("nl-410", "netlify", "GET", "/gone", "", {}, 410, "404.html", {}),
    ("nl-spa-rule", "netlify", "GET", "/spa/deep/link", "", {}, 200, "index.html", {}),
    ("nl-spa-rule-not-for-assets", "netlify", "GET", "/spa/x.js", "", {}, 404, "404.html", {}),
    # Netlify: a later block's value of a name replaces an earlier one; Cloudflare joins them.
    ("nl-headers-later-wins", "netlify", "GET", "/assets/logo-a1b2c3d4.png", "", {}, 200,
     "assets/logo-a1b2c3d4.png", {"Link": "</b.js>; rel=preload", "X-Frame-Options": None}),
    ("cf-headers-joined", "cloudflare", "GET", "/assets/logo-a1b2c3d4.png", "", {}, 200,
     "assets/logo-a1b2c3d4.png",
     {"Link": "</a.css>; rel=preload, </b.js>; rel=preload", "X-Frame-Options": None}),
    ("cf-rule-beats-file", "cloudflare", "GET", "/about", "", {}, 200, "docs/intro.html", {}),
    ("cf-splat-needs-slash", "cloudflare", "GET", "/legacy", "", {}, 404, "404.html", {}),
    ("cf-headers-on-redirects", "cloudflare", "GET", "/home", "", {}, 301, None,
     {"Location": "/", "X-Frame-Options": "DENY"}),
    ("nl-case-insensitive", "netlify", "GET", "/HOME", "", {}, 301, None, {"Location": "/"}),
    ("cf-case-sensitive", "cloudflare", "GET", "/HOME", "", {}, 404, "404.html", {}),
    # --- HTML handling: a site deployed now without vercel.json's cleanUrls/trailingSlash
    ("default-dir-no-slash", "default", "GET", "/docs", "", {}, 308, None, {"Location": "/docs/"}),
    ("default-dir-slash", "default", "GET", "/docs/", "", {}, 200, "docs/index.html", {}),
    ("default-html-file", "default", "GET", "/about.html", "", {}, 308, None, {"Location": "/about"}),
    ("default-html-ext-optional", "default", "GET", "/about", "", {}, 200, "about.html", {}),
    ("default-index-html", "default", "GET", "/index.html", "", {}, 308, None, {"Location": "/"}),
    ("default-keeps-query", "default", "GET", "/about.html", "a=1", {}, 308, None,
     {"Location": "/about?a=1"}),
    ("default-page-slash-dropped", "default", "GET", "/about/", "", {}, 308, None, {"Location": "/about"}),
    ("default-asset-untouched", "default", "GET", "/robots.txt", "", {}, 200, "robots.txt", {}),
    # --- cleanUrls / trailingSlash never send a page to another file's address
    ("clean-keeps-another-file", "both-clean", "GET", "/both/index.html", "", {}, 200, "both/index.html", {}),
    ("clean-moves-same-file", "both-clean", "GET", "/both.html", "", {}, 308, None, {"Location": "/both"}),
    ("slash-keeps-another-file", "both-slash", "GET", "/both", "", {}, 200, "both.html", {}),
    ("slash-html-file-served", "both-slash", "GET", "/both.html", "", {}, 200, "both.html", {}),
    ("nl-headers-all", "netlify", "GET", "/docs/intro", "", {}, 200, "docs/intro.html", {"X-Frame-Options": "DENY"}),
    ("nl-headers-cache", "netlify", "GET", "/data.json", "", {}, 200, "data.json", {"Cache-Control": "no-store"}),
    # --- caching policy
    ("cache-vite-hashed", "plain", "GET", "/assets/index-B1a2c3D4.js", "", {}, 200, "assets/index-B1a2c3D4.js",
     {"Cache-Control": IMMUTABLE}),
    ("cache-cra-hashed", "plain", "GET", "/static/js/main.1a2b3c4d.js", "", {}, 200, "static/js/main.1a2b3c4d.js",
     {"Cache-Control": IMMUTABLE}),
    ("cache-next-static", "plain", "GET", "/_next/static/chunks/app.js", "", {}, 200, "_next/static/chunks/app.js",
     {"Cache-Control": IMMUTABLE}),
    ("cache-html", "plain", "GET", "/", "", {}, 200, "index.html", {"Cache-Control": REVALIDATE}),
    ("cache-unhashed", "plain", "GET", "/robots.txt", "", {}, 200, "robots.txt", {"Cache-Control": REVALIDATE}),
    ("cache-rewrite-to-hashed", "vercel", "GET", "/api/x", "", {}, 200, "data.json", {"Cache-Control": REVALIDATE}),
    # --- content negotiation
    ("br-preferred", "plain", "GET", "/", "", {"accept-encoding": "gzip, deflate, br"}, 200, "index.html",
     {"Content-Encoding": "br", "Vary": "Accept-Encoding", "Content-Length": "300", "ETag": ETAG_INDEX_BR}),
    ("gzip-only", "plain", "GET", "/", "", {"accept-encoding": "gzip"}, 200, "index.html",
     {"Content-Encoding": "gzip", "Content-Length": "400"}),
    ("br-refused", "plain", "GET", "/", "", {"accept-encoding": "br;q=0, gzip;q=0.5"}, 200, "index.html",
     {"Content-Encoding": "gzip"}),
    ("star", "plain", "GET", "/", "", {"accept-encoding": "*"}, 200, "index.html", {"Content-Encoding": "br"}),
    ("star-but-not-br", "plain", "GET", "/", "", {"accept-encoding": "br;q=0, *"}, 200, "index.html",
     {"Content-Encoding": "gzip"}),
    ("x-gzip", "plain", "GET", "/", "", {"accept-encoding": "x-gzip"}, 200, "index.html", {"Content-Encoding": "gzip"}),
    ("identity-only", "plain", "GET", "/", "", {"accept-encoding": "identity"}, 200, "index.html",
     {"Content-Encoding": None, "Vary": "Accept-Encoding", "ETag": ETAG_INDEX}),
    ("no-accept-encoding", "plain", "GET", "/", "", {}, 200, "index.html", {"Content-Encoding": None}),
    ("png-no-vary", "plain", "GET", "/assets/logo-a1b2c3d4.png", "", {"accept-encoding": "br"}, 200,
     "assets/logo-a1b2c3d4.png", {"Content-Encoding": None, "Vary": None}),
    ("small-text-vary", "plain", "GET", "/robots.txt", "", {"accept-encoding": "br"}, 200, "robots.txt",
     {"Content-Encoding": None, "Vary": "Accept-Encoding"}),
    # --- conditional requests (RFC 9110 §13.1.2, §15.4.5)
    ("304-etag", "plain", "GET", "/", "", {"if-none-match": ETAG_INDEX}, 304, "index.html",
     {"ETag": ETAG_INDEX, "Cache-Control": REVALIDATE, "Content-Type": "text/html; charset=utf-8",
      "Content-Length": None}),
    ("304-weak", "plain", "GET", "/", "", {"if-none-match": "W/" + ETAG_INDEX}, 304, "index.html", {}),
    ("304-list", "plain", "GET", "/", "", {"if-none-match": '"nope", ' + ETAG_INDEX}, 304, "index.html", {}),
    ("304-star", "plain", "GET", "/robots.txt", "", {"if-none-match": "*"}, 304, "robots.txt", {}),
    ("304-head", "plain", "HEAD", "/", "", {"if-none-match": ETAG_INDEX}, 304, "index.html", {}),
    ("304-br-variant", "plain", "GET", "/", "", {"if-none-match": ETAG_INDEX_BR, "accept-encoding": "br"}, 304,
     "index.html", {"Vary": "Accept-Encoding", "Content-Encoding": None}),
    ("200-variant-mismatch", "plain", "GET", "/", "", {"if-none-match": ETAG_INDEX, "accept-encoding": "br"}, 200,
     "index.html", {"Content-Encoding": "br"}),
    ("200-etag-mismatch", "plain", "GET", "/", "", {"if-none-match": '"other"'}, 200, "index.html", {}),
    ("304-drops-rule-headers", "vercel", "GET", "/about", "", {"if-none-match": f'"{digest("about.html")[:32]}"'},
     304, "about.html", {"X-Frame-Options": None}),
    ("304-spa", "spa", "GET", "/deep/link", "", {"if-none-match": ETAG_INDEX}, 304, "index.html", {}),
    # --- ranges (RFC 9110 §14)
    ("range-first", "plain", "GET", "/robots.txt", "", {"range": "bytes=0-9"}, 206, "robots.txt",
     {"Content-Range": "bytes 0-9/1000", "Content-Length": "10"}),
    ("range-open", "plain", "GET", "/robots.txt", "", {"range": "bytes=990-"}, 206, "robots.txt",
     {"Content-Range": "bytes 990-999/1000"}),
    ("range-suffix", "plain", "GET", "/robots.txt", "", {"range": "bytes=-10"}, 206, "robots.txt",
     {"Content-Range": "bytes 990-999/1000"}),
    ("range-clamped", "plain", "GET", "/robots.txt", "", {"range": "bytes=995-5000"}, 206, "robots.txt",
     {"Content-Range": "bytes 995-999/1000", "Content-Length": "5"}),
    ("range-unsatisfiable", "plain", "GET", "/robots.txt", "", {"range": "bytes=1000-"}, 416, "robots.txt",
     {"Content-Range": "bytes */1000"}),
    ("range-zero-suffix", "plain", "GET", "/robots.txt", "", {"range": "bytes=-0"}, 416, "robots.txt", {}),
    ("range-multiple-ignored", "plain", "GET", "/robots.txt", "", {"range": "bytes=0-1,5-6"}, 200, "robots.txt",
     {"Content-Range": None}),
    ("range-other-unit", "plain", "GET", "/robots.txt", "", {"range": "items=0-5"}, 200, "robots.txt", {}),
    ("range-reversed-ignored", "plain", "GET", "/robots.txt", "", {"range": "bytes=9-2"}, 200, "robots.txt", {}),
    ("range-identity-only", "plain", "GET", "/", "", {"range": "bytes=0-9", "accept-encoding": "br"}, 206,
     "index.html", {"Content-Encoding": None, "ETag": ETAG_INDEX}),
    ("range-if-range-match", "plain", "GET", "/robots.txt", "", {"range": "bytes=0-9", "if-range": ETAG_ROBOTS},
     206, "robots.txt", {}),
    ("range-if-range-stale", "plain", "GET", "/robots.txt", "", {"range": "bytes=0-9", "if-range": '"old"'},
     200, "robots.txt", {"Content-Range": None}),
    ("range-if-range-date", "plain", "GET", "/robots.txt", "",
     {"range": "bytes=0-9", "if-range": "Wed, 21 Oct 2015 07:28:00 GMT"}, 200, "robots.txt", {}),
    ("range-head", "plain", "HEAD", "/robots.txt", "", {"range": "bytes=0-9"}, 206, "robots.txt",
     {"Content-Length": "10"}),
    ("range-304-first", "plain", "GET", "/robots.txt", "", {"range": "bytes=0-9", "if-none-match": ETAG_ROBOTS},
     304, "robots.txt", {}),
    ("range-not-on-404", "plain", "GET", "/nope", "", {"range": "bytes=0-9"}, 404, "404.html",
     {"Content-Range": None}),
]


@pytest.mark.parametrize("site,method,path,query,headers,status,served,expected",
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_resolve(site, method, path, query, headers, status, served, expected):
    decision = resolve(method, path, headers, SITES[site], query)
    assert decision.status == status
    assert decision.file == served
    for name, value in expected.items():
        assert decision.header(name) == value, name


def test_at_least_80_rows():
    assert len(ROWS) >= 80
    assert len({row[0] for row in ROWS}) == len(ROWS)


def test_body_is_the_blob_to_fetch():
    decision = resolve("GET", "/", {"accept-encoding": "br"}, SITES["plain"])
    assert decision.body == BlobRef(digest("index.html.br"), 300, None)
    ranged = resolve("GET", "/robots.txt", {"range": "bytes=10-19"}, SITES["plain"])
    assert ranged.body == BlobRef(digest("robots.txt"), SIZE, (10, 19))
    assert ranged.body.length == 10


@pytest.mark.parametrize("status,headers", [(304, {"if-none-match": ETAG_INDEX}), (416, {"range": "bytes=5000-"}),
                                            (200, {})])
def test_head_and_bodiless_responses_send_nothing(status, headers):
    method = "HEAD" if status == 200 else "GET"
    path = "/" if status != 416 else "/robots.txt"
    decision = resolve(method, path, headers, SITES["plain"])
    assert decision.status == status
    assert decision.body is None and decision.inline == b""


def test_304_carries_only_rfc_9110_fields():
    decision = resolve("GET", "/", {"if-none-match": ETAG_INDEX, "accept-encoding": "gzip"},
                       SITES["vercel"])
    assert decision.status == 200  # a gzip request gets the gzip variant, whose ETag differs
    decision = resolve("GET", "/about", {"if-none-match": f'"{digest("about.html")[:32]}"'}, SITES["vercel"])
    assert {name.lower() for name, _ in decision.headers} <= NOT_MODIFIED_FIELDS


def test_plain_errors_have_a_small_body_but_not_on_head():
    assert resolve("GET", "/%zz", {}, SITES["plain"]).inline.startswith(b"400")
    assert resolve("HEAD", "/%zz", {}, SITES["plain"]).inline == b""
    missing = resolve("GET", "/nope", {}, SITES["spa-off"])
    assert missing.inline == b"404 Not Found\n"
    assert missing.header("Content-Length") == str(len(missing.inline))


def test_redirect_decision_has_location_field():
    decision = resolve("GET", "/old", {}, SITES["vercel"], "q=1")
    assert decision.location == "/about?q=1" and decision.body is None


@pytest.mark.parametrize("site,path,location", [
    ("vercel", "/old", "/about"),                 # vercel.json redirect
    ("vercel", "/about.html", "/about"),          # cleanUrls
    ("slash", "/docs", "/docs/"),                 # trailingSlash
    ("netlify", "/home", "/"),                    # _redirects
    ("vercel", "/menu", "/caf%C3%A9"),            # the note names the encoded Location
])
def test_redirects_carry_a_short_text_note_but_not_on_head(site, path, location):
    decision = resolve("GET", path, {}, SITES[site])
    assert decision.location == location
    assert decision.inline == f"Redirecting to {location}\n".encode()
    assert decision.header("Content-Type") == "text/plain; charset=utf-8"
    assert decision.header("Content-Length") == str(len(decision.inline))
    head = resolve("HEAD", path, {}, SITES[site])
    assert head.inline == b"" and head.headers == decision.headers


def test_already_decoded_paths_are_not_decoded_twice():
    assert resolve("GET", "/a b.txt", {}, SITES["plain"], decoded=True).file == "a b.txt"
    assert resolve("GET", "/%41", {}, SITES["plain"], decoded=True).status == 404
    assert resolve("GET", "/x/../y", {}, SITES["plain"], decoded=True).status == 404


def test_missing_config_is_a_plain_site():
    site = {"files": {"index.html": entry("index.html")}}
    assert resolve("GET", "/", {}, site).file == "index.html"
    assert resolve("GET", "/x", {}, site).status == 404


HASHED = [
    ("assets/index-B1a2c3D4.js", True),       # Vite
    ("assets/index-BjjlWVgM.css", True),      # Vite, letters only
    ("assets/vendor-Dz-0cIBc.js", True),      # Rollup base64url with "-"
    ("assets/index-BdQq_4o_.js", True),       # Rollup base64url with "_"
    ("static/js/main.1a2b3c4d.js", True),     # CRA
    ("static/js/787.8f3a2b1c.chunk.js", True),
    ("static/media/logo.6ce24c58023cc2f8fd88fe9d219db6c6.svg", True),
    ("main.3f2e1d0c9b8a7654.js", True),       # Angular (webpack)
    ("main-ABCD1234.js", True),               # Angular (esbuild)
    ("assets/js/runtime~main.1a2b3c4d.js", True),  # Docusaurus
    ("_astro/index.B1a2c3D4.css", True),      # Astro
    ("_next/static/chunks/main-app.js", True),
    ("_app/immutable/entry/start.js", True),  # SvelteKit
    ("index.html", False),
    ("assets/page-B1a2c3D4.html", False),
    ("favicon.ico", False),
    ("vite.svg", False),
    ("main.js", False),
    ("icon-1024x1024.png", False),
    ("android-chrome-512x512.png", False),
    ("report-20240101.pdf", False),
    ("UserList-Settings.js", False),
    ("theme-DarkMode.css", False),
    ("app-v2-final.js", False),
    ("jquery-3.6.0.min.js", False),
    ("my-component.js", False),
    ("deadbeef.js", False),
    ("static/logo.svg", False),
]


@pytest.mark.parametrize("key,hashed", HASHED, ids=[key for key, _ in HASHED])
def test_content_hash_detection(key, hashed):
    assert is_content_hashed(key) is hashed
