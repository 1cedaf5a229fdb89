"""Cloudflare Pages at request time: HTML handling, `_redirects` and `_headers` matching, case
for case. Every case sets percel.json's `"dialect": "cloudflare"`.

Each group below names the upstream file its facts are re-expressed from.
"""
from __future__ import annotations

import json

from tests.conformance.harness import Case, Expect, with_404_page


def _percel(html_handling: str | None = None) -> str:
    settings = {"dialect": "cloudflare"}
    if html_handling:
        settings["html_handling"] = html_handling
    return json.dumps(settings)


# --- HTML handling ----------------------------------------------------------------------------
# Which address serves which file, and which addresses redirect, in each of the four modes, for
# five sets of output files. The moves are from workers-sdk's asset-config fixture (run against
# the workers-shared asset worker); the status, 308, is what Pages' own asset server sends for
# these moves (packages/pages-shared/asset-server/handler.ts uses a permanent redirect; the
# Workers asset worker sends 307 instead).
HTML = ("cloudflare/workers-sdk: fixtures/workers-shared-asset-config/test-cases/"
        "html-handling-test-cases.ts; packages/pages-shared/asset-server/handler.ts")

_FILES = {
    "root": ("index.html",),
    "both": ("both.html", "both/index.html"),
    "file": ("file.html",),
    "folder": ("folder/index.html",),
    "bin": ("file-bin", "file-bin.html"),
}

# mode -> file set -> (request, answer): "=key" serves key with 200, "/x" is a 308 to /x,
# "404" finds nothing.
_HTML_TABLE: dict[str, dict[str, list[tuple[str, str]]]] = {
    "auto-trailing-slash": {
        "root": [("/", "=index.html"), ("/index", "/"), ("/index.html", "/")],
        "both": [("/both", "=both.html"), ("/both.html", "/both"), ("/both/", "=both/index.html"),
                 ("/both/index.html", "/both/"), ("/both/index", "/both/")],
        "file": [("/file", "=file.html"), ("/file.html", "/file"), ("/file/", "/file"),
                 ("/file/index", "/file"), ("/file/index.html", "/file")],
        "folder": [("/folder", "/folder/"), ("/folder.html", "/folder/"),
                   ("/folder/", "=folder/index.html"), ("/folder/index", "/folder/"),
                   ("/folder/index.html", "/folder/")],
        "bin": [("/file-bin", "=file-bin"), ("/file-bin.html", "=file-bin.html"),
                ("/file-bin/", "404"), ("/file-bin/index", "404"), ("/file-bin/index.html", "404")],
    },
    "drop-trailing-slash": {
        "root": [("/", "=index.html"), ("/index", "/"), ("/index.html", "/")],
        "both": [("/both", "=both.html"), ("/both.html", "/both"), ("/both/", "/both"),
                 ("/both/index", "/both"), ("/both/index.html", "=both/index.html")],
        "file": [("/file", "=file.html"), ("/file.html", "/file"), ("/file/", "/file"),
                 ("/file/index", "/file"), ("/file/index.html", "/file")],
        "folder": [("/folder", "=folder/index.html"), ("/folder.html", "/folder"),
                   ("/folder/", "/folder"), ("/folder/index", "/folder"),
                   ("/folder/index.html", "/folder")],
        "bin": [("/file-bin", "=file-bin"), ("/file-bin.html", "=file-bin.html"),
                ("/file-bin/", "404"), ("/file-bin/index", "404"), ("/file-bin/index.html", "404")],
    },
    "force-trailing-slash": {
        "root": [("/", "=index.html"), ("/index", "/"), ("/index.html", "/")],
        "both": [("/both", "/both/"), ("/both.html", "=both.html"), ("/both/", "=both/index.html"),
                 ("/both/index", "/both/"), ("/both/index.html", "/both/")],
        "file": [("/file", "/file/"), ("/file.html", "/file/"), ("/file/", "=file.html"),
                 ("/file/index", "/file/"), ("/file/index.html", "/file/")],
        "folder": [("/folder", "/folder/"), ("/folder.html", "/folder/"),
                   ("/folder/", "=folder/index.html"), ("/folder/index", "/folder/"),
                   ("/folder/index.html", "/folder/")],
        "bin": [("/file-bin", "=file-bin"), ("/file-bin.html", "/file-bin/"),
                ("/file-bin/", "=file-bin.html"), ("/file-bin/index", "/file-bin/"),
                ("/file-bin/index.html", "/file-bin/")],
    },
    "none": {
        "root": [("/index.html", "=index.html")],
        "both": [("/both.html", "=both.html"), ("/both/index.html", "=both/index.html")],
        "file": [("/file/index.html", "404")],
        "folder": [("/folder.html", "404")],
        "bin": [("/file-bin", "=file-bin"), ("/file-bin.html", "=file-bin.html"),
                ("/file-bin/index", "404"), ("/file-bin/index.html", "404")],
    },
}

# In "none" Cloudflare serves only exact file names. percel's "none" means "no HTML-handling
# redirects": a page is still found at `/x`, `/x.html` and `/x/` as before the modes existed,
# so a manifest written before them behaves as it did (docs/DECISIONS.md#html-handling).
_NONE_LOOKUP = ("percel's \"none\" keeps the lookup every address had before the modes existed "
                "(exact, .html, /index.html) and only drops the redirects "
                "(docs/DECISIONS.md#html-handling)")
_NONE_DIFFERS: list[tuple[str, str, str, str]] = [
    # (file set, request, Cloudflare's answer, percel's)
    ("root", "/", "404", "=index.html"),
    ("root", "/index", "404", "=index.html"),
    ("both", "/both", "404", "=both.html"),
    ("both", "/both/", "404", "=both/index.html"),
    ("file", "/file", "404", "=file.html"),
    ("folder", "/folder/", "404", "=folder/index.html"),
    ("bin", "/file-bin/", "404", "=file-bin.html"),
]


def _answer(answer: str) -> Expect:
    if answer.startswith("="):
        return Expect(status=200, file=answer[1:])
    if answer == "404":
        return Expect(status=404)
    return Expect(status=308, location=answer)


def _slug(path: str) -> str:
    name = path.strip("/").replace("/", "-").replace(".", "-") or "root"
    return name + "-slash" if path.endswith("/") and path != "/" else name


def _html_cases() -> list[Case]:
    cases = []
    for mode, groups in _HTML_TABLE.items():
        for group, rows in groups.items():
            for path, answer in rows:
                cases.append(Case(f"cloudflare-html-{mode}-{group}-{_slug(path)}", "cloudflare", HTML,
                                  {"percel.json": _percel(mode)}, _answer(answer), path=path,
                                  files=_FILES[group]))
    for group, path, theirs, ours in _NONE_DIFFERS:
        cases.append(Case(f"cloudflare-html-none-{group}-{_slug(path)}", "cloudflare", HTML,
                          {"percel.json": _percel("none")}, _answer(theirs), path=path,
                          files=_FILES[group], differs=_NONE_LOOKUP, percel=_answer(ours)))
    return cases


HTML_EXTRA: list[Case] = [
    # The query survives the move (handler.ts appends the request's search).
    Case("cloudflare-html-keeps-query", "cloudflare", HTML, {"percel.json": _percel()},
         Expect(status=308, location="/file?utm=1"), path="/file.html?utm=1", files=_FILES["file"]),
    # auto-trailing-slash is the default mode.
    Case("cloudflare-html-default-is-auto", "cloudflare", HTML, {"percel.json": _percel()},
         Expect(status=308, location="/folder/"), path="/folder", files=_FILES["folder"]),
    # A file name that hides an encoded slash is refused outright by percel (a path with %2F
    # is a 400 before any lookup); Cloudflare redirects it to the folder.
    Case("cloudflare-html-encoded-slash", "cloudflare", HTML, {"percel.json": _percel()},
         Expect(status=308, location="/bin/"), path="/bin%2F", files=("bin/index.html",),
         differs="percel refuses %2F, %5C and %00 in a path with 400 (chalicelib/serving/"
                 "request.py): an encoded separator must never reach a file name",
         percel=Expect(status=400)),
]

# --- the rules engine: how `_redirects` and `_headers` paths match ------------------------------
# cloudflare/workers-sdk packages/workers-shared/asset-worker/tests/rules-engine.test.ts
# (generateRulesMatcher and replacer): a splat needs the slash before it, placeholders stop
# at "/", rules are case-sensitive, and rule paths are compared with the encoded pathname.
RULES = "cloudflare/workers-sdk: packages/workers-shared/asset-worker/tests/rules-engine.test.ts"
_SPLATS = "/foo/test/* /one/:splat 302\n/foo/* /two/:splat 302\n/blog/:code/:name /three/:name/:code 302\n"


RULES_CASES: list[Case] = [
    Case("cloudflare-rules-more-specific-splat-first", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": _SPLATS},
         Expect(status=302, location="/one/yes"), path="/foo/test/yes"),
    Case("cloudflare-rules-splat-needs-its-slash", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": _SPLATS},
         Expect(status=302, location="/two/test"), path="/foo/test"),
    Case("cloudflare-rules-splat-may-be-empty", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": _SPLATS},
         Expect(status=302, location="/two/"), path="/foo/"),
    Case("cloudflare-rules-splat-keeps-trailing-slash", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": _SPLATS},
         Expect(status=302, location="/one/"), path="/foo/test/"),
    Case("cloudflare-rules-splat-not-the-bare-folder", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": _SPLATS},
         Expect(status=404), path="/foo"),
    Case("cloudflare-rules-placeholders-swap", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": _SPLATS},
         Expect(status=302, location="/three/tricycle/123"), path="/blog/123/tricycle"),
    Case("cloudflare-rules-case-sensitive", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": "/About /team 302\n"},
         Expect(status=404), path="/about"),
    Case("cloudflare-rules-case-sensitive-exact", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": "/About /team 302\n"},
         Expect(status=302, location="/team"), path="/About"),
    Case("cloudflare-rules-encoded-rule-encoded-request", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": "/some%20page /found 302\n"},
         Expect(status=302, location="/found"), path="/some%20page"),
    Case("cloudflare-rules-encoded-rule-non-ascii", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": "/caf%C3%A9 /found 302\n"},
         Expect(status=302, location="/found"), path="/caf%C3%A9"),
    Case("cloudflare-rules-funky-characters-are-literal", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": "/$~.%20/!+-/[bo|%7Bo%7D]...() /found 302\n"},
         Expect(status=302, location="/found"), path="/$~.%20/!+-/[bo|%7Bo%7D]...()"),
    Case("cloudflare-rules-exact-rule-not-slashed-request", "cloudflare", RULES,
         {"percel.json": _percel(), "_redirects": "/test /found 302\n"},
         Expect(status=404), path="/test/",
         differs="percel compares rules without a splat on the path without its trailing slash "
                 "in both dialects: the compiled rule does not keep whether it was written "
                 "with one, and HTML handling already sends one of the two addresses to the other",
         percel=Expect(status=302, location="/found")),
]

# --- Pages' asset server: order, statuses, headers ---------------------------------------------
# cloudflare/workers-sdk packages/pages-shared/asset-server/handler.ts: `_redirects` are looked
# at before any file; the request's query is kept unless the destination has its own; `_headers`
# are attached to every response, redirects included; a header set by two matching blocks is
# sent with both values; `! Name` removes what an earlier block set; `:name` and `:splat` from the
# path fill header values.
SERVER = "cloudflare/workers-sdk: packages/pages-shared/asset-server/handler.ts"
HEADERS_DOCS = "https://developers.cloudflare.com/pages/configuration/headers/ (splats, placeholders)"

SERVER_CASES: list[Case] = [
    Case("cloudflare-server-redirect-beats-existing-file", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/old /new 301\n"},
         Expect(status=301, location="/new"), path="/old", files=("old.html", "new.html")),
    Case("cloudflare-server-rewrite-beats-existing-file", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/a /b 200\n"},
         Expect(status=200, file="b.html"), path="/a", files=("a.html", "b.html")),
    Case("cloudflare-server-redirect-keeps-query", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/a /b 301\n"},
         Expect(status=301, location="/b?x=1"), path="/a?x=1"),
    Case("cloudflare-server-destination-query-wins", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/a /b?y=2 301\n"},
         Expect(status=301, location="/b?y=2"), path="/a?x=1"),
    Case("cloudflare-server-redirect-fragment", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/a /b#top 301\n"},
         Expect(status=301, location="/b?x=1#top"), path="/a?x=1"),
    Case("cloudflare-server-status-303", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/a /b 303\n"},
         Expect(status=303, location="/b"), path="/a"),
    Case("cloudflare-server-status-307", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/a /b 307\n"},
         Expect(status=307, location="/b"), path="/a"),
    Case("cloudflare-server-headers-on-redirects", "cloudflare", SERVER,
         {"percel.json": _percel(), "_redirects": "/old /new 301\n",
          "_headers": "/old\n  X-Moved: yes\n"},
         Expect(status=301, location="/new", headers={"X-Moved": "yes"}), path="/old"),
    Case("cloudflare-server-headers-on-html-handling-redirects", "cloudflare", SERVER,
         {"percel.json": _percel(), "_headers": "/*\n  X-Frame-Options: DENY\n"},
         Expect(status=308, location="/file", headers={"X-Frame-Options": "DENY"}),
         path="/file.html", files=_FILES["file"]),
    Case("cloudflare-server-headers-joined", "cloudflare", SERVER,
         {"percel.json": _percel(), "_headers": "/*\n  X-A: one\n/page\n  X-A: two\n"},
         Expect(status=200, headers={"X-A": "one, two"}), path="/page", files=("page.html",)),
    Case("cloudflare-server-header-overrides-default", "cloudflare", SERVER,
         {"percel.json": _percel(), "_headers": "/page\n  Cache-Control: max-age=60\n"},
         Expect(status=200, headers={"Cache-Control": "max-age=60"}), path="/page",
         files=("page.html",)),
    Case("cloudflare-server-detach", "cloudflare", SERVER,
         {"percel.json": _percel(),
          "_headers": "/*\n  X-Robots-Tag: noindex\n/public/*\n  ! X-Robots-Tag\n"},
         Expect(status=200, headers={"X-Robots-Tag": None}), path="/public/a",
         files=("public/a.html",)),
    Case("cloudflare-server-detach-then-set-again", "cloudflare", SERVER,
         {"percel.json": _percel(),
          "_headers": "/*\n  X-A: one\n/p/*\n  ! X-A\n/p/q\n  X-A: two\n"},
         Expect(status=200, headers={"X-A": "two"}), path="/p/q", files=("p/q.html",)),
    Case("cloudflare-server-splat-in-header-value", "cloudflare", HEADERS_DOCS,
         {"percel.json": _percel(), "_headers": "/files/*\n  X-Name: :splat\n"},
         Expect(status=200, headers={"X-Name": "a/b.txt"}), path="/files/a/b.txt",
         files=("files/a/b.txt",)),
    Case("cloudflare-server-placeholder-every-occurrence", "cloudflare", RULES,
         {"percel.json": _percel(),
          "_headers": "/pre/:value\n  Link: </assets/:value/main.js>; rel=preload, "
                      "</assets/:value/lang.js>; rel=preload\n"},
         Expect(status=404, headers={
             "Link": "</assets/js/main.js>; rel=preload, </assets/js/lang.js>; rel=preload"}),
         path="/pre/js"),
    Case("cloudflare-server-placeholder-value-encoded", "cloudflare", HEADERS_DOCS,
         {"percel.json": _percel(), "_headers": "/u/:name\n  X-User: :name\n"},
         Expect(status=404, headers={"X-User": "a%20b"}), path="/u/a%20b"),
    Case("cloudflare-server-headers-match-encoded-path", "cloudflare", RULES,
         {"percel.json": _percel(), "_headers": "/some%20page\n  X-Found: yes\n"},
         Expect(status=200, headers={"X-Found": "yes"}), path="/some%20page",
         files=("some page.html",)),
    Case("cloudflare-server-headers-case-sensitive", "cloudflare", RULES,
         {"percel.json": _percel(), "_headers": "/Page\n  X-Found: yes\n"},
         Expect(status=200, headers={"X-Found": None}), path="/page", files=("page.html",)),
    Case("cloudflare-server-headers-splat-needs-slash", "cloudflare", RULES,
         {"percel.json": _percel(), "_headers": "/docs/*\n  X-Docs: yes\n"},
         Expect(status=200, headers={"X-Docs": None}), path="/docs", files=("docs.html",)),
]

# --- A site without a 404.html is a single-page app ---------------------------------------------
# https://developers.cloudflare.com/pages/configuration/serving-pages/ ("Single-page application
# (SPA) rendering"): with no top-level 404.html, Pages answers a path that matches no file with
# index.html and a 200; with one, that page and a 404.
SPA_DOCS = "https://developers.cloudflare.com/pages/configuration/serving-pages/ (SPA rendering)"
SPA_CASES: list[Case] = [
    Case("cloudflare-spa-without-404-page", "cloudflare", SPA_DOCS, {"percel.json": _percel()},
         Expect(status=200, file="index.html"), path="/dashboard/settings"),
    Case("cloudflare-spa-off-with-404-page", "cloudflare", SPA_DOCS, {"percel.json": _percel()},
         Expect(status=404, file="404.html"), path="/dashboard/settings",
         files=("index.html", "404.html")),
    Case("cloudflare-spa-files-still-served", "cloudflare", SPA_DOCS, {"percel.json": _percel()},
         Expect(status=200, file="about.html"), path="/about", files=("index.html", "about.html")),
]

CASES: list[Case] = with_404_page(
    _html_cases() + HTML_EXTRA + RULES_CASES + SERVER_CASES) + SPA_CASES
