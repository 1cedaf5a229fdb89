"""Netlify at request time: how `_redirects` and `_headers` rules match and combine, case for
case. These sites bring no percel.json: "netlify" is the default dialect.

Each group below names the upstream file its facts are re-expressed from.
"""
from __future__ import annotations

from tests.conformance.harness import Case, Expect

# Redirect options: placeholders, splats, query parameters, shadowing, forcing, status codes.
OPTIONS = "netlify/docs: docs/routing/redirects/redirect-options.md; docs/routing/redirects/rewrites-proxies.md"
# Paths match whatever their case: Netlify lowercases a path before it looks at the rules (a
# maintainer's answer in BabylonJS/OldDocumentationSite#649; mdn/yari#35 shows the lowercasing).
CASE = "BabylonJS/OldDocumentationSite#649 (Netlify lowercases paths before matching rules)"
# A rule matches a path with or without its trailing slash (gatsby-plugin-remove-trailing-slashes'
# README, "Netlify Trailing Slashes"; Netlify normalises URLs before the rules).
SLASH = "gatsbyjs/gatsby: packages/gatsby-plugin-remove-trailing-slashes/README.md"
# Headers of every matching rule are merged into one object, a later rule's value of a name
# replacing an earlier one (netlify/primitives packages/headers/src/lib/headersForPath.ts; the
# same in netlify/cli src/utils/headers.ts); between `_headers` and netlify.toml, netlify.toml's
# value of a name wins (netlify/build packages/headers-parser/src/merge.ts).
HEADERS = "netlify/primitives: packages/headers/src/lib/headersForPath.ts"
MERGE = "netlify/build: packages/headers-parser/src/merge.ts"
# Custom headers apply only to files Netlify serves itself (docs "Custom headers", Limitations).
HEADERS_DOCS = "netlify/docs: docs/routing/headers.md (Limitations)"

CASES: list[Case] = [
    Case("netlify-runtime-placeholders", "netlify", OPTIONS,
         {"_redirects": "/news/:year/:month/:slug /blog/:year/:month/:slug 301\n"},
         Expect(status=301, location="/blog/2004/02/my-story"), path="/news/2004/02/my-story"),
    Case("netlify-runtime-splat", "netlify", OPTIONS, {"_redirects": "/news/* /blog/:splat\n"},
         Expect(status=301, location="/blog/2004/01/my-story"), path="/news/2004/01/my-story"),
    Case("netlify-runtime-splat-matches-the-folder", "netlify", OPTIONS,
         {"_redirects": "/news/* /blog/:splat\n"},
         Expect(status=301, location="/blog/"), path="/news"),
    Case("netlify-runtime-splat-in-the-middle-of-many", "netlify", OPTIONS,
         {"_redirects": "/a/b/* /one/:splat 302\n/a/* /two/:splat 302\n"},
         Expect(status=302, location="/two/c"), path="/a/c"),
    Case("netlify-runtime-first-match-wins", "netlify", OPTIONS,
         {"_redirects": "/a /first 302\n/a /second 302\n"},
         Expect(status=302, location="/first"), path="/a"),
    Case("netlify-runtime-case-insensitive-rule", "netlify", CASE,
         {"_redirects": "/About /team 301\n"}, Expect(status=301, location="/team"), path="/about"),
    Case("netlify-runtime-case-insensitive-request", "netlify", CASE,
         {"_redirects": "/about /team 301\n"}, Expect(status=301, location="/team"), path="/ABOUT"),
    Case("netlify-runtime-case-insensitive-splat", "netlify", CASE,
         {"_redirects": "/Docs/* /guide/:splat 301\n"},
         Expect(status=301, location="/guide/intro"), path="/docs/intro"),
    Case("netlify-runtime-trailing-slash-request", "netlify", SLASH,
         {"_redirects": "/about /team 301\n"}, Expect(status=301, location="/team"), path="/about/"),
    Case("netlify-runtime-trailing-slash-rule", "netlify", SLASH,
         {"_redirects": "/about/ /team 301\n"}, Expect(status=301, location="/team"), path="/about"),
    Case("netlify-runtime-file-shadows-rule", "netlify", OPTIONS,
         {"_redirects": "/old /new 301\n"}, Expect(status=200, file="old.html"), path="/old",
         files=("old.html", "new.html")),
    Case("netlify-runtime-force-beats-file", "netlify", OPTIONS,
         {"_redirects": "/old /new 301!\n"}, Expect(status=301, location="/new"), path="/old",
         files=("old.html", "new.html")),
    Case("netlify-runtime-splat-rewrite-leaves-files", "netlify", OPTIONS,
         {"_redirects": "/* /index.html 200\n"}, Expect(status=200, file="app/page.html"),
         path="/app/page", files=("index.html", "app/page.html")),
    Case("netlify-runtime-splat-rewrite-serves-missing", "netlify", OPTIONS,
         {"_redirects": "/* /index.html 200\n"}, Expect(status=200, file="index.html"),
         path="/app/missing"),
    Case("netlify-runtime-404-rule", "netlify", OPTIONS,
         {"_redirects": "/ecommerce /store-closed 404\n"},
         Expect(status=404, file="store-closed.html"), path="/ecommerce",
         files=("index.html", "store-closed.html")),
    Case("netlify-runtime-query-parameter", "netlify", OPTIONS,
         {"_redirects": "/store id=:id /blog/:id 301\n"},
         Expect(status=301), path="/store?id=my-post"),
    Case("netlify-runtime-query-parameter-missing", "netlify", OPTIONS,
         {"_redirects": "/store id=:id /blog/:id 301\n"}, Expect(status=404), path="/store"),
    Case("netlify-runtime-302", "netlify", OPTIONS, {"_redirects": "/my-redirect / 302\n"},
         Expect(status=302, location="/"), path="/my-redirect"),
    Case("netlify-runtime-later-header-wins", "netlify", HEADERS,
         {"_headers": "/*\n  X-A: one\n/page\n  X-A: two\n"},
         Expect(status=200, headers={"X-A": "two"}), path="/page", files=("page.html",)),
    Case("netlify-runtime-headers-from-every-rule", "netlify", HEADERS,
         {"_headers": "/*\n  X-A: one\n/page\n  X-B: two\n"},
         Expect(status=200, headers={"X-A": "one", "X-B": "two"}), path="/page",
         files=("page.html",)),
    Case("netlify-runtime-header-case-insensitive-path", "netlify", CASE,
         {"_headers": "/Page\n  X-A: one\n"},
         Expect(status=200, headers={"X-A": "one"}), path="/page", files=("page.html",)),
    Case("netlify-runtime-header-splat-matches-folder", "netlify", HEADERS,
         {"_headers": "/docs/*\n  X-Docs: yes\n"},
         Expect(status=200, headers={"X-Docs": "yes"}), path="/docs", files=("docs.html",)),
    Case("netlify-runtime-toml-header-wins", "netlify", MERGE,
         {"_headers": "/*\n  X-A: file\n",
          "netlify.toml": '[[headers]]\nfor = "/*"\n[headers.values]\nX-A = "toml"\n'},
         Expect(status=200, headers={"X-A": "toml"}), path="/"),
    Case("netlify-runtime-no-headers-on-redirects", "netlify", HEADERS_DOCS,
         {"_redirects": "/old /new 301\n", "_headers": "/old\n  X-Moved: yes\n"},
         Expect(status=301, location="/new", headers={"X-Moved": None}), path="/old"),
    Case("netlify-runtime-header-value-as-written", "netlify", HEADERS,
         {"_headers": "/files/*\n  X-Name: :splat\n"},
         Expect(status=200, headers={"X-Name": ":splat"}), path="/files/a.txt",
         files=("files/a.txt",)),
]
