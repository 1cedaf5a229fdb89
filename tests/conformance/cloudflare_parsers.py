"""Cloudflare Pages' `_redirects` and `_headers` parsers, case for case.

Facts re-expressed from cloudflare/workers-sdk packages/workers-shared/utils/ (the parsers in
configuration/, their tests in tests/). Cloudflare skips a line it cannot read with a warning
and deploys the rest; `warnings` counts percel's warnings, one per skipped line or block (one
for the whole remainder when a cap is reached). Every case deploys with percel.json's
`"dialect": "cloudflare"`, where percel reads these files as Cloudflare does.
"""
from __future__ import annotations

from tests.conformance.harness import Case, Expect, with_404_page

CF = '{"dialect": "cloudflare"}'
CF_NONE = '{"dialect": "cloudflare", "html_handling": "none"}'
CF_AUTO = '{"dialect": "cloudflare", "html_handling": "auto-trailing-slash"}'


def redirects(text: str, percel: str = CF) -> dict[str, str]:
    return {"_redirects": text, "percel.json": percel}


def headers(text: str) -> dict[str, str]:
    return {"_headers": text, "percel.json": CF}


# --- _redirects lines Cloudflare reads ----------------------------------------------------------
# parseRedirects.valid.test.ts: blank lines, indentation and comments (whole-line, and inline
# after whitespace, with or without a space after "#") are ignored; a "#" inside the destination
# is its fragment; the default status is 302; a query on the destination is kept, one on the
# source is dropped; an https destination may carry a port, and gets "/" as its path when it has
# none; 200 rewrites.
VALID = "cloudflare/workers-sdk: packages/workers-shared/utils/tests/parseRedirects.valid.test.ts"
CASES: list[Case] = [
    Case("cloudflare-redirects-single-rule", "cloudflare", VALID, redirects("/a /b 301"),
         Expect(status=301, location="/b", warnings=0), path="/a"),
    Case("cloudflare-redirects-indented", "cloudflare", VALID, redirects("\n  /a /b 301\n"),
         Expect(status=301, location="/b", warnings=0), path="/a"),
    Case("cloudflare-redirects-comments", "cloudflare", VALID,
         redirects("# First\n  # Indented\n/a /b 301\n# After\n/c /d\n"),
         Expect(status=302, location="/d", warnings=0), path="/c"),
    Case("cloudflare-redirects-default-302", "cloudflare", VALID, redirects("/c /d\n"),
         Expect(status=302, location="/d", warnings=0), path="/c"),
    Case("cloudflare-redirects-inline-comment", "cloudflare", VALID,
         redirects("/a /b 301 # redirect a to b\n"),
         Expect(status=301, location="/b", warnings=0), path="/a"),
    Case("cloudflare-redirects-inline-comment-no-status", "cloudflare", VALID,
         redirects("/a /b # redirect with default status\n"),
         Expect(status=302, location="/b", warnings=0), path="/a"),
    Case("cloudflare-redirects-inline-comment-after-fragment", "cloudflare", VALID,
         redirects("/a /b#section 301 # redirect to section\n"),
         Expect(status=301, location="/b#section", warnings=0), path="/a"),
    Case("cloudflare-redirects-inline-comment-no-space", "cloudflare", VALID,
         redirects("/a /b 301 #no space comment\n"),
         Expect(status=301, location="/b", warnings=0), path="/a"),
    Case("cloudflare-redirects-fragment-with-hash", "cloudflare", VALID,
         redirects("/a /b##blah-1 302\n"),
         Expect(status=302, location="/b##blah-1", warnings=0), path="/a"),
    Case("cloudflare-redirects-destination-query-kept", "cloudflare", VALID,
         redirects("/a /b?query=string 302\n"),
         Expect(status=302, location="/b?query=string", warnings=0), path="/a"),
    Case("cloudflare-redirects-source-query-dropped", "cloudflare", VALID,
         redirects("/c?this=rejected /d 301\n"),
         Expect(status=301, location="/d", warnings=0), path="/c"),
    Case("cloudflare-redirects-destination-with-port", "cloudflare", VALID,
         redirects("/dog https://dog.com:12345\n"),
         Expect(status=302, location="https://dog.com:12345/", warnings=0), path="/dog"),
    Case("cloudflare-redirects-absolute-destination", "cloudflare", VALID,
         redirects("/ext https://some.domain:1234/route?q=string#anchor\n"),
         Expect(status=302, location="https://some.domain:1234/route?q=string#anchor", warnings=0),
         path="/ext"),
    Case("cloudflare-redirects-200-rewrite", "cloudflare", VALID, redirects("/a /b 200\n"),
         Expect(status=200, file="b.html", warnings=0), path="/a", files=("index.html", "b.html")),
    Case("cloudflare-redirects-splat-rewrite", "cloudflare", VALID, redirects("/* /foo 200\n"),
         Expect(status=200, file="foo.html", warnings=0), path="/anything",
         files=("index.html", "foo.html")),
    Case("cloudflare-redirects-statuses-303-307-308", "cloudflare", VALID,
         redirects("/a /b 303\n/c /d 307\n/e /f 308\n"),
         Expect(status=307, location="/d", warnings=0), path="/c"),
]

# --- _redirects lines Cloudflare skips ----------------------------------------------------------
# parseRedirects.invalid.test.ts: a line of 1 or 4+ tokens (so no query conditions and no
# Netlify-style trailing conditions), a status outside 200/301/302/303/307/308, a source seen
# before, a line over 2,000 characters, an absolute source, a 200 to another host, `/*` (or `/`
# with HTML handling on) to /index(.html) (a redirect loop), and past 2,000 static or 100
# dynamic rules.
INVALID = "cloudflare/workers-sdk: packages/workers-shared/utils/tests/parseRedirects.invalid.test.ts"
CASES += [
    Case("cloudflare-redirects-one-token", "cloudflare", INVALID, redirects("/c\n/a /b 301\n"),
         Expect(status=301, location="/b", warnings=1), path="/a"),
    Case("cloudflare-redirects-four-tokens", "cloudflare", INVALID,
         redirects("/d /e 302 !important\n"),
         Expect(status=404, warnings=1), path="/d"),
    Case("cloudflare-redirects-status-418", "cloudflare", INVALID,
         redirects("/a /b 301\n/c /d.html 418\n"),
         Expect(status=404, warnings=1), path="/c", files=("index.html", "d.html")),
    Case("cloudflare-redirects-status-404", "cloudflare", INVALID,
         redirects("/c /d.html 404\n"),
         Expect(status=404, warnings=1), path="/c", files=("index.html", "d.html", "404.html")),
    Case("cloudflare-redirects-duplicate-source", "cloudflare", INVALID,
         redirects("/a /b\n/b /a\n/a /c\n"),
         Expect(status=302, location="/b", warnings=1), path="/a"),
    Case("cloudflare-redirects-line-too-long", "cloudflare", INVALID,
         redirects("/a /b\n" + "#" * 2001 + "\n/" + "a" * 2000 + " /" + "b" * 2000 + " 301\n"),
         Expect(status=302, location="/b", warnings=1), path="/a"),
    Case("cloudflare-redirects-spaces-in-path", "cloudflare", INVALID,
         redirects("/some page /somewhere else\n"),
         Expect(status=404, warnings=1), path="/some%20page"),
    Case("cloudflare-redirects-percent-encoded-source", "cloudflare", INVALID,
         redirects("/some%20page /somewhere%20else\n"),
         Expect(status=302, location="/somewhere%20else", warnings=0), path="/some%20page"),
    Case("cloudflare-redirects-absolute-source", "cloudflare", INVALID,
         redirects("https://yeah.com https://nah.com\n/nah https://yeah.com\n"),
         Expect(status=302, location="https://yeah.com/", warnings=1), path="/nah"),
    Case("cloudflare-redirects-source-without-slash", "cloudflare", INVALID,
         redirects("yeah.com https://nah.com\n"),
         Expect(status=302, location="https://nah.com/", warnings=0), path="/yeah.com"),
    Case("cloudflare-redirects-proxy-to-another-host", "cloudflare", INVALID,
         redirects("/a https://example.com/b 200\n"),
         Expect(status=404, warnings=1), path="/a"),
    Case("cloudflare-redirects-splat-to-index-html", "cloudflare", INVALID,
         redirects("/* /index.html 200\n"),
         Expect(status=404, warnings=1), path="/missing/page"),
    Case("cloudflare-redirects-splat-to-index", "cloudflare", INVALID,
         redirects("/* /index 200\n"),
         Expect(status=404, warnings=1), path="/missing/page"),
    Case("cloudflare-redirects-root-to-index-with-html-handling", "cloudflare", INVALID,
         redirects("/ /index.html\n", CF_AUTO),
         Expect(status=200, file="index.html", warnings=1), path="/"),
    Case("cloudflare-redirects-root-to-index-without-html-handling", "cloudflare", INVALID,
         redirects("/ /index.html\n/ /index\n", CF_NONE),
         Expect(status=302, location="/index.html", warnings=1), path="/"),
    Case("cloudflare-redirects-dynamic-cap", "cloudflare", INVALID,
         redirects("".join(f"/a/{i}/* /b/{i}/:splat\n" for i in range(150))),
         Expect(status=404, warnings=1), path="/a/120/x"),
    Case("cloudflare-redirects-dynamic-cap-keeps-the-first-100", "cloudflare", INVALID,
         redirects("".join(f"/a/{i}/* /b/{i}/:splat\n" for i in range(150))),
         Expect(status=302, location="/b/99/x", warnings=1), path="/a/99/x"),
    Case("cloudflare-redirects-static-cap", "cloudflare", INVALID,
         redirects("".join(f"/a/{i} /b/{i}\n" for i in range(2050))),
         Expect(status=404, warnings=50), path="/a/2010"),
    Case("cloudflare-redirects-static-then-dynamic-caps", "cloudflare", INVALID,
         redirects("".join(f"/a/{i} /b/{i}\n" for i in range(2050))
                   + "".join(f"/a/{i}/* /b/{i}/:splat\n" for i in range(150))),
         Expect(status=302, location="/b/1999", warnings=51), path="/a/1999"),
]

# --- what Cloudflare's `_redirects` does not have -----------------------------------------------
# configuration/parseRedirects.ts and validateURL.ts: statuses are read with Number() (so `301!`
# is not a status: no force), a destination is a "/" path or an https:// URL (not http://), and
# the second token is always the destination (no query conditions).
SOURCE = "cloudflare/workers-sdk: packages/workers-shared/utils/configuration/parseRedirects.ts"
URLS = "cloudflare/workers-sdk: packages/workers-shared/utils/configuration/validateURL.ts"
CASES += [
    Case("cloudflare-redirects-no-force-mark", "cloudflare", SOURCE, redirects("/a /b 301!\n"),
         Expect(status=404, warnings=1), path="/a"),
    Case("cloudflare-redirects-no-query-conditions", "cloudflare", SOURCE,
         redirects("/a id=1 /b\n"),
         Expect(status=404, warnings=1), path="/a?id=1"),
    Case("cloudflare-redirects-http-destination", "cloudflare", URLS,
         redirects("/a http://example.com/b\n"),
         Expect(status=404, warnings=1), path="/a"),
    Case("cloudflare-redirects-netlify-conditions", "cloudflare", SOURCE,
         redirects("/ /china 302 Country=ch\n"),
         Expect(status=200, file="index.html", warnings=1), path="/"),
    Case("cloudflare-redirects-no-forward-rule", "cloudflare", SOURCE,
         redirects("/admin/* 200\n"),
         Expect(status=404, warnings=1), path="/admin/x"),
]

# --- _headers blocks Cloudflare reads -----------------------------------------------------------
# parseHeaders.valid.test.ts: a line starting with "/" (or scheme://) opens a block, any other
# line with a colon is a header whatever its indentation; names are case-insensitive and the
# same name twice joins with ", "; `! Name` removes a header set by another block.
HEADERS_VALID = "cloudflare/workers-sdk: packages/workers-shared/utils/tests/parseHeaders.valid.test.ts"
HEADERS_INVALID = ("cloudflare/workers-sdk: "
                   "packages/workers-shared/utils/tests/parseHeaders.invalid.test.ts")
CASES += [
    Case("cloudflare-headers-single-rule", "cloudflare", HEADERS_VALID,
         headers("/a\n  Name: Value\n"),
         Expect(headers={"name": "Value"}, warnings=0), path="/a", files=("index.html", "a.html")),
    Case("cloudflare-headers-not-indented", "cloudflare", HEADERS_VALID,
         headers("/a\nName: Value\n"),
         Expect(headers={"name": "Value"}, warnings=0), path="/a", files=("index.html", "a.html")),
    Case("cloudflare-headers-exclamation-in-value", "cloudflare", HEADERS_VALID,
         headers("/a\n  Name: Value!!!\n"),
         Expect(headers={"name": "Value!!!"}, warnings=0), path="/a", files=("index.html", "a.html")),
    Case("cloudflare-headers-combined", "cloudflare", HEADERS_VALID,
         headers("/a\n  Set-Cookie: a=1\n  set-cookie: b=2\n"),
         Expect(headers={"set-cookie": "a=1, b=2"}, warnings=0), path="/a",
         files=("index.html", "a.html")),
    Case("cloudflare-headers-unset", "cloudflare", HEADERS_VALID,
         headers("/*\n  X-Robots-Tag: noindex\n/a\n  ! X-Robots-Tag\n"),
         Expect(headers={"x-robots-tag": None}, warnings=0), path="/a",
         files=("index.html", "a.html")),
    Case("cloudflare-headers-percent-encoded-path", "cloudflare", HEADERS_INVALID,
         headers("/some%20page\n  valid: yup\n"),
         Expect(headers={"valid": "yup"}, warnings=0), path="/some%20page",
         files=("index.html", "some page.html")),
    Case("cloudflare-headers-other-host", "cloudflare", HEADERS_INVALID,
         headers("https://yeah.com\n  valid: yup\n/*\n  other: yes\n"),
         Expect(headers={"valid": None, "other": "yes"}), path="/",
         differs="a block for another host never matches percel's one host per site; it is "
                 "skipped with a warning",
         percel=Expect(headers={"valid": None, "other": "yes"}, warnings=1)),
]

# --- _headers lines and blocks Cloudflare skips -------------------------------------------------
# parseHeaders.invalid.test.ts: a line that is neither a path nor `name: value` (nor `! name`),
# a header before any path, a name with a space, an empty name or value, a line over 2,000
# characters, a path with two wildcards or a wildcard and :splat (its block skipped), an http://
# or port-carrying URL, a block with no headers, and every block past the 100th.
CASES += [
    Case("cloudflare-headers-token-before-path", "cloudflare", HEADERS_INVALID,
         headers("c\nAccess-Control-Allow-Origin: *\n/a\n  x: 1\n"),
         Expect(headers={"x": "1", "access-control-allow-origin": None}, warnings=2), path="/a",
         files=("index.html", "a.html")),
    Case("cloudflare-headers-invalid-lines", "cloudflare", HEADERS_INVALID,
         headers("/a\n  Name:       Value\n#\n/b\n  I'm invalid!\n  !x-content-type\n"
                 "  But: I'm okay!\n  ! Content-Type: application/json\n"),
         Expect(headers={"but": "I'm okay!"}, warnings=3), path="/b",
         files=("index.html", "b.html")),
    Case("cloudflare-headers-line-too-long", "cloudflare", HEADERS_INVALID,
         headers("/b\n  Name: Value\n  " + "a" * 1001 + ": " + "b" * 1001 + "\n"),
         Expect(headers={"name": "Value"}, warnings=1), path="/b", files=("index.html", "b.html")),
    Case("cloudflare-headers-rule-cap", "cloudflare", HEADERS_INVALID,
         headers("".join(f"/a/{i}\nx-index: {i}\n" for i in range(150))),
         Expect(headers={"x-index": None}, warnings=1), path="/a/120"),
    Case("cloudflare-headers-rule-cap-keeps-101", "cloudflare", HEADERS_INVALID,
         headers("".join(f"/a/{i}\nx-index: {i}\n" for i in range(150))),
         Expect(headers={"x-index": "100"}, warnings=1), path="/a/100"),
    Case("cloudflare-headers-two-wildcards", "cloudflare", HEADERS_INVALID,
         headers("/blog/*/posts/*\n  x-custom: value\n/blog/*\n  x-other: value\n"),
         Expect(headers={"x-custom": None, "x-other": "value"}, warnings=1),
         path="/blog/2024/posts/hello"),
    Case("cloudflare-headers-wildcard-and-splat", "cloudflare", HEADERS_INVALID,
         headers("/blog/*/:splat\n  x-custom: value\n"),
         Expect(headers={"x-custom": None}, warnings=1), path="/blog/a/b"),
    Case("cloudflare-headers-splat-placeholder-alone", "cloudflare", HEADERS_INVALID,
         headers("/blog/:splat\n  x-custom: value\n"),
         Expect(headers={"x-custom": "value"}, warnings=0), path="/blog/a"),
    Case("cloudflare-headers-http-url", "cloudflare", HEADERS_INVALID,
         headers("http://nah.com/blog\n  invalid: things\n/*\n  x: 1\n"),
         Expect(headers={"invalid": None, "x": "1"}, warnings=1), path="/blog"),
    Case("cloudflare-headers-url-with-port", "cloudflare", HEADERS_INVALID,
         headers("https://nah.com:8080/blog\n  invalid: 2\n/*\n  x: 1\n"),
         Expect(headers={"invalid": None, "x": "1"}, warnings=1), path="/blog"),
    Case("cloudflare-headers-standalone-lines", "cloudflare", HEADERS_INVALID,
         headers("/yeah\n  valid: yup\nnah.com\n:\ntest:\n"),
         Expect(headers={"valid": "yup", "test": None}, warnings=3), path="/yeah",
         files=("index.html", "yeah.html")),
    Case("cloudflare-headers-scheme-start-is-a-path", "cloudflare",
         "cloudflare/workers-sdk: packages/workers-shared/utils/configuration/parseHeaders.ts",
         headers("/*\n  X-Url:https://a.example\n  X-Ok: 1\n"),
         Expect(headers={"x-url": None, "x-ok": None}, warnings=2), path="/"),
    Case("cloudflare-headers-block-without-headers", "cloudflare", HEADERS_INVALID,
         headers("/a\n/b\n  x: 1\n"),
         Expect(headers={"x": "1"}, warnings=1), path="/b", files=("index.html", "b.html")),
]

# --- where the dialect changes the answer for the same files -----------------------------------
# The same `_redirects` without percel.json is read as Netlify does (301 default, tests in
# tests/conformance/netlify.py); with the Cloudflare dialect, Cloudflare's rules apply.
CASES += [
    Case("cloudflare-redirects-rules-apply-over-files", "cloudflare",
         "cloudflare/workers-sdk: packages/workers-shared/asset-worker/src/handler.ts",
         redirects("/old /new 301\n"),
         Expect(status=301, location="/new"), path="/old", files=("index.html", "old.html")),
]

# Every case above expecting a 404 gets the 404.html its upstream site has (harness.with_404_page).
CASES = with_404_page(CASES)
