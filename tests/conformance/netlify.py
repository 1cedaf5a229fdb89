"""Netlify's `_redirects`, `_headers` and netlify.toml, case for case.

Each group below names the upstream file its facts are re-expressed from. Netlify's build reports
the lines its parsers cannot read as a warning and deploys the rest
(netlify/build packages/config/src/log/messages.js, warnRedirectsParsing / warnHeadersParsing):
`warnings` here counts percel's warnings, one per skipped line or rule.
"""
from __future__ import annotations

from tests.conformance.harness import Case, Expect

# https://docs.netlify.com/routing/redirects/ (docs/routing/redirects.md in netlify/docs):
# a rule without a status is a 301; `200` rewrites.
DOCS = "netlify/docs: docs/routing/redirects.md"

CASES: list[Case] = [
    Case("netlify-docs-default-301", "netlify", DOCS, {"_redirects": "/old /new\n"},
         Expect(status=301, location="/new"), path="/old"),
    Case("netlify-docs-200-rewrite", "netlify", DOCS, {"_redirects": "/app/* /index.html 200\n"},
         Expect(status=200, file="index.html"), path="/app/settings"),
]

# --- _redirects lines Netlify reads -------------------------------------------------------------
# netlify/build packages/redirect-parser/tests/line-parser.test.ts (and its fixtures/redirects_file):
# comments (whole-line and after a rule), blank lines and indentation are ignored; a destination
# keeps its #fragment; `key=value` tokens between from and to match the query; a status may carry
# `!`; a 2xx rule from `/x/*` may leave out its destination ("forward" rule).
LINES = "netlify/build: packages/redirect-parser/tests/line-parser.test.ts"
CASES += [
    Case("netlify-redirects-comment-line", "netlify", LINES,
         {"_redirects": "# an old leftover\n/blog/my-post.php  /blog/my-post\n"},
         Expect(status=301, location="/blog/my-post", warnings=0), path="/blog/my-post.php"),
    Case("netlify-redirects-inline-comment", "netlify", LINES,
         {"_redirects": "/blog/my-post.php  /blog/my-post # an old leftover\n"},
         Expect(status=301, location="/blog/my-post", warnings=0), path="/blog/my-post.php"),
    Case("netlify-redirects-inline-comment-no-space", "netlify", LINES,
         {"_redirects": "/a /b 302 #note\n"},
         Expect(status=302, location="/b", warnings=0), path="/a"),
    Case("netlify-redirects-fragment-then-comment", "netlify", LINES,
         {"_redirects": "/blog/my-post-ads.php  /blog/my-post#ads # a valid anchor\n"},
         Expect(status=301, location="/blog/my-post#ads", warnings=0), path="/blog/my-post-ads.php"),
    Case("netlify-redirects-indented-line", "netlify", LINES,
         {"_redirects": "  /home              /\n"},
         Expect(status=301, location="/", warnings=0), path="/home"),
    Case("netlify-redirects-blank-lines-between", "netlify", LINES,
         {"_redirects": "/one.php  /one\n\n/two.php  /two\n"},
         Expect(status=301, location="/two", warnings=0), path="/two.php"),
    Case("netlify-redirects-absolute-destination", "netlify", LINES,
         {"_redirects": "/10thmagnitude   http://www.10thmagnitude.com/   301\n"
                        "/bananastand     http://eepurl.com/Lgde5         301\n"},
         Expect(status=301, location="http://eepurl.com/Lgde5"), path="/bananastand"),
    Case("netlify-redirects-destination-with-equals", "netlify", LINES,
         {"_redirects": "/test https://www.example.com/test=hello 301\n"},
         Expect(status=301, location="https://www.example.com/test=hello"), path="/test"),
    Case("netlify-redirects-splat-to-url", "netlify", LINES,
         {"_redirects": "/*  https://www.example.com/:splat 301\n"},
         Expect(status=301, location="https://www.example.com/a/b"), path="/a/b"),
    Case("netlify-redirects-force-shadows-a-file", "netlify", LINES,
         {"_redirects": "/test https://www.example.com/test=hello 301!\n"},
         Expect(status=301, location="https://www.example.com/test=hello"), path="/test",
         files=("index.html", "test.html")),
    Case("netlify-redirects-query-match", "netlify", LINES,
         {"_redirects": "/blog  post=:post_id  /blog/:post_id\n"},
         Expect(status=301), path="/blog?post=42"),
    Case("netlify-redirects-query-missing-no-match", "netlify", LINES,
         {"_redirects": "/home      page=news      /news\n"},
         Expect(status=404), path="/home"),
    Case("netlify-redirects-query-value-with-slash", "netlify", LINES,
         {"_redirects": "/home      _escaped_fragment_=/about    /about\n"},
         Expect(status=301, warnings=0), path="/home?_escaped_fragment_=/about"),
    Case("netlify-redirects-forward-rule", "netlify", LINES,
         {"_redirects": "/admin/* 200\n/* /index.html 200\n"},
         Expect(status=200, file="admin/users.html", warnings=0), path="/admin/users",
         files=("index.html", "admin/users.html")),
    Case("netlify-redirects-forward-rule-keeps-catch-all-out", "netlify", LINES,
         {"_redirects": "/admin/* 200\n/* /index.html 200\n"},
         Expect(status=404, warnings=0), path="/admin/missing"),
    Case("netlify-redirects-forward-rule-forced", "netlify", LINES,
         {"_redirects": "/admin/* 200!\n"},
         Expect(status=200, file="admin/users.html", warnings=0), path="/admin/users",
         files=("index.html", "admin/users.html")),
    Case("netlify-redirects-country-condition", "netlify", LINES,
         {"_redirects": "/  /china 302 Country=ch,tw\n"},
         Expect(status=200, file="index.html"), path="/",
         differs="Country conditions need geolocation percel does not have; the rule is skipped "
                 "with a warning instead of applying to every visitor",
         percel=Expect(status=200, file="index.html", warnings=1)),
    Case("netlify-redirects-proxy", "netlify", LINES,
         {"_redirects": "/api/*  https://api.example.com/:splat  200\n"},
         Expect(status=200), path="/api/users",
         differs="percel serves static files and does not proxy; a 200 rule to another host is "
                 "skipped with a warning",
         percel=Expect(status=404, warnings=1)),
    Case("netlify-redirects-signed-proxy", "netlify", LINES,
         {"_redirects": "/api/*   https://api.example.com/:splat   200!  Sign=API_SECRET\n"},
         Expect(status=200), path="/api/users",
         differs="percel does not proxy (signed proxy rules included); skipped with a warning",
         percel=Expect(status=404, warnings=1)),
    Case("netlify-redirects-host-rule", "netlify", LINES,
         {"_redirects": "http://hello.example.org/* http://www.hello.com/:splat\n"},
         Expect(status=200, file="index.html"), path="/",
         differs="a rule for another host never matches percel's one host per site; it is "
                 "skipped with a warning",
         percel=Expect(status=200, file="index.html", warnings=1)),
]

# --- _redirects lines Netlify cannot read: reported, never applied, the rest deploys ------------
# Same test file, "Validate syntax errors": a line with only a path, a status but no destination
# (unless it is a 2xx forward rule from /x/*), no token starting with "/" or http(s):// after the
# query, a status that is not a number, a path under /.netlify, an unparsable URL.
CASES += [
    # html_handling none: the request is for the .html address itself, which percel's default
    # would send to /swfobject (docs/DECISIONS.md#html-handling); this case is about the line.
    Case("netlify-redirects-status-without-destination", "netlify", LINES,
         {"_redirects": "/swfobject.html?detectflash=false 301\n/a /b\n",
          "percel.json": '{"html_handling": "none"}'},
         Expect(status=200, file="swfobject.html", warnings=1), path="/swfobject.html",
         files=("index.html", "swfobject.html")),
    Case("netlify-redirects-status-without-destination-rest-applies", "netlify", LINES,
         {"_redirects": "/swfobject.html?detectflash=false 301\n/a /b\n"},
         Expect(status=301, location="/b", warnings=1), path="/a"),
    Case("netlify-redirects-only-a-path", "netlify", LINES,
         {"_redirects": "/m/scge/legal\n"},
         Expect(status=404, warnings=1), path="/m/scge/legal"),
    Case("netlify-redirects-query-without-destination", "netlify", LINES,
         {"_redirects": "/m/scge/legal source=:source\n"},
         Expect(status=404, warnings=1), path="/m/scge/legal?source=x"),
    Case("netlify-redirects-destination-without-slash", "netlify", LINES,
         {"_redirects": "/\tindex.html\n/blog\tblog.html\n/therapy\ttherapy.html\n"},
         Expect(status=200, file="index.html", warnings=3), path="/"),
    Case("netlify-redirects-status-not-a-number", "netlify", LINES,
         {"_redirects": "/from /to not_a_status\n"},
         Expect(status=404, warnings=1), path="/from"),
    Case("netlify-redirects-headers-written-in-redirects", "netlify", LINES,
         {"_redirects": "# Protect backups\n/backup/*\n    Basic-Auth: someone:secret\n"},
         Expect(status=404, warnings=2), path="/backup/db.sql"),
    Case("netlify-redirects-dot-netlify-path", "netlify", LINES,
         {"_redirects": "/.netlify/from /to\n"},
         Expect(status=404, warnings=1), path="/.netlify/from"),
    Case("netlify-redirects-bare-scheme", "netlify", LINES,
         {"_redirects": "http:// /to\n"},
         Expect(status=200, file="index.html", warnings=1), path="/"),
    Case("netlify-redirects-conditions-need-a-status", "netlify",
         "netlify/build: packages/redirect-parser/src/line_parser.js",
         {"_redirects": "/a /b Country=us\n"},
         Expect(status=404, warnings=1), path="/a"),
    Case("netlify-redirects-bang-alone-is-not-a-status", "netlify",
         "netlify/build: packages/redirect-parser/src/line_parser.js",
         {"_redirects": "/a /b !\n"},
         Expect(status=404, warnings=1), path="/a"),
]

# --- statuses -----------------------------------------------------------------------------------
# packages/redirect-parser/src/status.js: any integer is a status; docs/routing/redirects.md:
# 404 answers with the destination's content and that status.
STATUS = "netlify/build: packages/redirect-parser/src/status.js"
CASES += [
    Case("netlify-redirects-status-302", "netlify", STATUS, {"_redirects": "/a /b 302\n"},
         Expect(status=302, location="/b"), path="/a"),
    Case("netlify-redirects-custom-404", "netlify", DOCS,
         {"_redirects": "/special-offer /gone.html 404\n"},
         Expect(status=404, file="gone.html"), path="/special-offer",
         files=("index.html", "gone.html")),
    # Netlify's earlier redirects page (netlify-home-site.netlify.app/docs/redirects): 301, 302
    # and 303 redirect; any other status renders the destination with that status.
    Case("netlify-redirects-status-418", "netlify", "netlify-home-site.netlify.app: docs/redirects",
         {"_redirects": "/teapot /index.html 418\n"},
         Expect(status=418, file="index.html", warnings=0), path="/teapot"),
    Case("netlify-redirects-status-410", "netlify", "netlify-home-site.netlify.app: docs/redirects",
         {"_redirects": "/old-page /gone.html 410\n"},
         Expect(status=410, file="gone.html"), path="/old-page", files=("index.html", "gone.html")),
    Case("netlify-redirects-status-out-of-range", "netlify", STATUS,
         {"_redirects": "/a /b 2000\n"},
         Expect(status=404), path="/a",
         differs="Netlify's parser accepts any integer; a status HTTP cannot send is skipped "
                 "with a warning",
         percel=Expect(status=404, warnings=1)),
    Case("netlify-redirects-past-2048-rules", "netlify",
         "netlify/build: packages/redirect-parser/tests/merge.bench.ts",
         {"_redirects": "".join(f"/a/{i} /b/{i}\n" for i in range(2050))},
         Expect(status=301, location="/b/2049"), path="/a/2049",
         differs="percel keeps 2,048 rules per file, Vercel's cap (docs/DECISIONS.md#dialects); "
                 "the rest are skipped with one warning",
         percel=Expect(status=404, warnings=1)),
    Case("netlify-redirects-default-301-without-dialect", "netlify", DOCS,
         {"_redirects": "/c /d\n", "percel.json": '{"dialect": "netlify"}'},
         Expect(status=301, location="/d"), path="/c"),
]

# --- netlify.toml [[redirects]] -----------------------------------------------------------------
# netlify/build packages/redirect-parser/tests/netlify-config-parser.test.ts (fixtures/netlify_config):
# old key names still work (origin, destination, params, parameters), a status may be a string,
# a 2xx rule from /x/* may leave out `to`; a rule Netlify cannot read is reported and skipped.
TOML = "netlify/build: packages/redirect-parser/tests/netlify-config-parser.test.ts"
CASES += [
    Case("netlify-toml-origin-alias", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  origin = "/old-path"\n  to = "/new-path"\n'},
         Expect(status=301, location="/new-path", warnings=0), path="/old-path"),
    Case("netlify-toml-destination-alias", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  destination = "/new-path"\n'},
         Expect(status=301, location="/new-path", warnings=0), path="/old-path"),
    Case("netlify-toml-params-alias", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  to = "/new-path"\n'
                          '  [redirects.params]\n  path = ":path"\n'},
         Expect(status=301, warnings=0), path="/old-path?path=x"),
    Case("netlify-toml-parameters-alias-needs-the-query", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  to = "/new-path"\n'
                          '  [redirects.parameters]\n  path = ":path"\n'},
         Expect(status=404, warnings=0), path="/old-path"),
    Case("netlify-toml-status-string", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  to = "/new.html"\n'
                          '  status = "200"\n'},
         Expect(status=200, file="new.html", warnings=0), path="/old-path",
         files=("index.html", "new.html")),
    Case("netlify-toml-forward-rule", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path/*"\n  status = 200\n'},
         Expect(status=200, file="old-path/page.html", warnings=0), path="/old-path/page",
         files=("index.html", "old-path/page.html")),
    Case("netlify-toml-no-to", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n\n'
                          '[[redirects]]\n  from = "/a"\n  to = "/b"\n'},
         Expect(status=301, location="/b", warnings=1), path="/a"),
    Case("netlify-toml-no-from", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  to = "/new-path"\n'},
         Expect(status=200, file="index.html", warnings=1), path="/"),
    Case("netlify-toml-status-not-a-number", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  to = "/new-path"\n'
                          '  status = "not_a_status"\n'},
         Expect(status=404, warnings=1), path="/old-path"),
    Case("netlify-toml-status-empty", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  to = "/new-path"\n'
                          '  status = ""\n'},
         Expect(status=404, warnings=1), path="/old-path"),
    Case("netlify-toml-forward-needs-2xx", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path/*"\n  status = 300\n'},
         Expect(status=404, warnings=1), path="/old-path/x"),
    Case("netlify-toml-rules-not-tables", "netlify", TOML,
         {"netlify.toml": 'redirects = ["/old-path"]\n'},
         Expect(status=200, file="index.html", warnings=1), path="/"),
    Case("netlify-toml-redirects-not-an-array", "netlify", TOML,
         {"netlify.toml": '[redirects]\n  from = "/old-path"\n'},
         Expect(status=200, file="index.html", warnings=1), path="/"),
    Case("netlify-toml-dot-netlify-path", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/.netlify/from"\n  to = "/new-path"\n'},
         Expect(status=404, warnings=1), path="/.netlify/from"),
    Case("netlify-toml-headers-array-of-tables", "netlify", TOML,
         {"netlify.toml": '[[redirects]]\n  from = "/old-path"\n  to = "/new-path"\n'
                          '  [[redirects.headers]]\n  example = "value"\n'},
         Expect(status=404, warnings=1), path="/old-path"),
    # The parser test reports invalid TOML; @netlify/config cannot load the file at all and the
    # build stops (packages/config/src/parse.ts).
    Case("netlify-toml-invalid-toml", "netlify", TOML, {"netlify.toml": "{{}}\n"},
         Expect(build_error=True)),
]

# --- _headers -----------------------------------------------------------------------------------
# netlify/build packages/headers-parser/tests/line-parser.test.ts (fixtures/headers_file): a line
# starting with "/" is a path, any line with a colon is a header of the current path whatever its
# indentation; a name or value left empty, or a header before any path, is reported; a line with
# no colon is ignored; the same name twice in a block joins its values with ", ".
HEADERS = "netlify/build: packages/headers-parser/tests/line-parser.test.ts"
CASES += [
    Case("netlify-headers-indented", "netlify", HEADERS, {"_headers": "/path\n  test: one\n"},
         Expect(status=200, headers={"test": "one"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-not-indented", "netlify", HEADERS, {"_headers": "/path\ntest: one\n"},
         Expect(status=200, headers={"test": "one"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-indented-path-alone", "netlify", HEADERS, {"_headers": "  /path\n"},
         Expect(status=200, file="index.html", warnings=0), path="/"),
    Case("netlify-headers-comment-in-block", "netlify", HEADERS,
         {"_headers": "/path\n  # comment\n  test: one\n"},
         Expect(status=200, headers={"test": "one"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-blank-line-in-block", "netlify", HEADERS,
         {"_headers": "/path\n\n  test: one\n"},
         Expect(status=200, headers={"test": "one"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-space-before-colon", "netlify", HEADERS,
         {"_headers": "/path\n  test : one\n"},
         Expect(headers={"test": "one"}, warnings=0), path="/path", files=("index.html", "path.html")),
    Case("netlify-headers-spaces-after-colon", "netlify", HEADERS,
         {"_headers": "/path\n  test:   one\n"},
         Expect(headers={"test": "one"}, warnings=0), path="/path", files=("index.html", "path.html")),
    Case("netlify-headers-same-name-joined", "netlify", HEADERS,
         {"_headers": "/path\n  test: one\n  test: two\n"},
         Expect(headers={"test": "one, two"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-value-with-colons", "netlify", HEADERS,
         {"_headers": "/*\n  Link: <https://cdn.example.com/a.css>; rel=preload\n"},
         Expect(headers={"link": "<https://cdn.example.com/a.css>; rel=preload"}, warnings=0),
         path="/"),
    Case("netlify-headers-no-colon-ignored", "netlify", HEADERS,
         {"_headers": "/path\n  test = one\n"},
         Expect(status=200, headers={"test": None}, warnings=0), path="/path",
         files=("index.html", "path.html"),
         differs="Netlify ignores a header line without a colon silently; percel says so in a "
                 "warning, since such a line is always a typo",
         percel=Expect(status=200, headers={"test": None}, warnings=1)),
    Case("netlify-headers-empty-name", "netlify", HEADERS,
         {"_headers": "/path\n  : one\n"},
         Expect(status=200, warnings=1), path="/path", files=("index.html", "path.html")),
    Case("netlify-headers-empty-value", "netlify", HEADERS,
         {"_headers": "/path\n  test:\n  other: two\n"},
         Expect(status=200, headers={"test": None, "other": "two"}, warnings=1), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-header-before-path", "netlify", HEADERS,
         {"_headers": "  test: one\n/path\n  other: two\n"},
         Expect(status=200, headers={"test": None, "other": "two"}, warnings=1), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-headers-url-value-without-space", "netlify",
         "netlify/build: packages/headers-parser/src/line_parser.ts",
         {"_headers": "/*\n  X-Url:https://a.example\n"},
         Expect(headers={"x-url": "https://a.example"}, warnings=0), path="/"),
    Case("netlify-headers-bang-line-ignored", "netlify", HEADERS,
         {"_headers": "/*\n  X-Robots-Tag: noindex\n/a\n  ! X-Robots-Tag\n"},
         Expect(headers={"x-robots-tag": "noindex"}, warnings=0), path="/a",
         files=("index.html", "a.html"),
         differs="`! Name` has no colon, so Netlify ignores the line; percel reads it as "
                 "Cloudflare Pages does and removes the header (docs/DECISIONS.md#dialects)",
         percel=Expect(headers={"x-robots-tag": None}, warnings=0)),
    Case("netlify-headers-two-wildcards", "netlify",
         "netlify/build: packages/headers-parser/src/for_regexp.ts",
         {"_headers": "/blog/*/posts/*\n  x-custom: value\n"},
         Expect(headers={"x-custom": "value"}, warnings=0), path="/blog/2024/posts/hello"),
]

# --- netlify.toml [[headers]] -------------------------------------------------------------------
# netlify/build packages/headers-parser/tests/netlify-config-parser.test.ts: a multi-line value or
# an array joins into one comma-separated value; a rule without values is dropped silently;
# `for` without a leading slash matches the same path as with it (src/for_regexp.ts splits on
# "/"); an empty header name or a non-string value is reported and the rule skipped.
TOML_HEADERS = "netlify/build: packages/headers-parser/tests/netlify-config-parser.test.ts"
CASES += [
    Case("netlify-toml-headers-multi-line-value", "netlify", TOML_HEADERS,
         {"netlify.toml": "[[headers]]\nfor = \"/path\"\n  [headers.values]\n"
                          "  test = '''\n  one,\n  two\n  '''\n"},
         Expect(headers={"test": "one, two"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-toml-headers-array-value", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = "/path"\n  [headers.values]\n'
                          '  test = [" one ", " two "]\n'},
         Expect(headers={"test": "one, two"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-toml-headers-no-values", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = "/path"\n'},
         Expect(status=200, warnings=0), path="/path", files=("index.html", "path.html")),
    Case("netlify-toml-headers-for-without-slash", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = "path"\n  [headers.values]\n  test = "one"\n'},
         Expect(headers={"test": "one"}, warnings=0), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-toml-headers-empty-name", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = "/path"\n  [headers.values]\n  "" = "one"\n'},
         Expect(status=200, warnings=1), path="/path", files=("index.html", "path.html")),
    Case("netlify-toml-headers-value-not-a-string", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = "/path"\n  [headers.values]\n  test = [true]\n'},
         Expect(status=200, headers={"test": None}, warnings=1), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-toml-headers-values-array-of-tables", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = "/path"\n  [[headers.values]]\n  test = "one"\n'},
         Expect(status=200, headers={"test": None}, warnings=1), path="/path",
         files=("index.html", "path.html")),
    Case("netlify-toml-headers-for-not-a-string", "netlify", TOML_HEADERS,
         {"netlify.toml": '[[headers]]\nfor = true\n  [headers.values]\n  test = "one"\n'},
         Expect(status=200, warnings=1), path="/", ),
]
