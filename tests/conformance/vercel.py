"""Vercel's vercel.json (cleanUrls, trailingSlash, redirects, rewrites, headers, has/missing),
case for case.

Vercel turns vercel.json into low-level routes with packages/routing-utils (path-to-regexp
6.1.0 with {strict, sensitive, delimiter "/"}); its tests pin down which sources match which
paths and what each destination compiles to. Each group below names the upstream file its
facts are re-expressed from; the requests and answers are our own.
"""
from __future__ import annotations

import json

from tests.conformance.harness import Case, Expect

# vercel/vercel packages/routing-utils/test/superstatic.spec.ts: sources -> regexes (paths that
# must and must not match), destinations and header values -> compiled routes.
SUPERSTATIC = "vercel/vercel: packages/routing-utils/test/superstatic.spec.ts"
# vercel/vercel packages/routing-utils/test/index.spec.ts: which vercel.json fails the deploy.
INDEX_SPEC = "vercel/vercel: packages/routing-utils/test/index.spec.ts"
# vercel/vercel packages/routing-utils/src/schemas.ts: the vercel.json schema the CLI validates.
SCHEMAS = "vercel/vercel: packages/routing-utils/src/schemas.ts"
# vercel/vercel packages/cli/src/util/dev/router.ts: `vercel dev`'s router; a source is also
# tried against the path without its leading slash.
DEV_ROUTER = "vercel/vercel: packages/cli/src/util/dev/router.ts"
# vercel/vercel packages/cli/src/util/dev/server.ts: routes are case-sensitive once vercel.json
# uses redirects/rewrites/headers/cleanUrls/trailingSlash.
DEV_SERVER = "vercel/vercel: packages/cli/src/util/dev/server.ts"
# vercel/next.js packages/next/src/shared/lib/router/utils/prepare-destination.ts (matchHas): how
# a `has` item binds values; the reference Vercel's docs point to for has/missing.
MATCH_HAS = "vercel/next.js: packages/next/src/shared/lib/router/utils/prepare-destination.ts"
# vercel/serve-handler test/integration.test.js: cleanUrls/trailingSlash/redirect interplay.
SERVE_HANDLER = "vercel/serve-handler: test/integration.test.js"
# https://vercel.com/docs/redirects/configuration-redirects
DOCS_REDIRECTS = "vercel.com/docs/redirects/configuration-redirects"


def vercel(**config: object) -> dict[str, str]:
    return {"vercel.json": json.dumps(config)}


def redirect(source: str, destination: str, **rule: object) -> dict[str, str]:
    return vercel(redirects=[{"source": source, "destination": destination, **rule}])


def rewrite(source: str, destination: str, **rule: object) -> dict[str, str]:
    return vercel(rewrites=[{"source": source, "destination": destination, **rule}])


def header(source: str, pairs: dict[str, str], **rule: object) -> dict[str, str]:
    items = [{"key": key, "value": value} for key, value in pairs.items()]
    return vercel(headers=[{"source": source, "headers": items, **rule}])


def moved(location: str, status: int = 308) -> Expect:
    return Expect(status=status, location=location)


def served(file: str, **headers: str | None) -> Expect:
    return Expect(status=200, file=file, headers=dict(headers))


NOT_FOUND = Expect(status=404, location=None)
REFUSED = Expect(build_error=True)

# The has conditions of superstatic.spec.ts's widest redirect/rewrite/header rule.
WIDE_HAS = [
    {"type": "header", "key": "x-rewrite"},
    {"type": "cookie", "key": "loggedIn", "value": "1"},
    {"type": "host", "value": "vercel.com"},
    {"type": "host", "value": "(?<a>.*)\\.(?<b>.*)"},
    {"type": "header", "key": "host", "value": "(?<c>.*)\\.(?<d>.*)"},
    {"type": "query", "key": "username"},
    {"type": "header", "key": "x-pathname", "value": "(?<pathname>.*)"},
    {"type": "header", "key": "X-Pathname", "value": "(?<another>hello|world)"},
]
WIDE_REQUEST = {"host": "vercel.com", "x-rewrite": "1", "cookie": "loggedIn=1",
                "x-pathname": "hello"}
WIDE_DESTINATION = "/another/:first/:username/:pathname/:another/:host/:a/:b/:c/:d"
AB_HOST = [{"type": "host", "value": "(?<a>.*)\\.(?<b>.*)"}]

CLEAN_URLS = [
    Case("vercel-clean-root-index", "vercel", SUPERSTATIC, vercel(cleanUrls=True),
         moved("/"), path="/index"),
    Case("vercel-clean-sub-index-html", "vercel", SUPERSTATIC, vercel(cleanUrls=True),
         moved("/sub"), path="/sub/index.html", files=("index.html", "sub/index.html")),
    Case("vercel-clean-index-slash", "vercel", SUPERSTATIC, vercel(cleanUrls=True),
         moved("/"), path="/index.html/"),
    Case("vercel-clean-file-html", "vercel", SUPERSTATIC, vercel(cleanUrls=True),
         moved("/sub/file"), path="/sub/file.html", files=("index.html", "sub/file.html")),
    Case("vercel-clean-someindex-kept", "vercel", SUPERSTATIC, vercel(cleanUrls=True),
         served("someindex.html"), path="/someindex", files=("index.html", "someindex.html")),
    Case("vercel-clean-trailing-file", "vercel", SUPERSTATIC,
         vercel(cleanUrls=True, trailingSlash=True), moved("/file/"), path="/file.html",
         files=("index.html", "file.html")),
    Case("vercel-clean-trailing-sub-index", "vercel", SUPERSTATIC,
         vercel(cleanUrls=True, trailingSlash=True), moved("/sub/"), path="/sub/index/",
         files=("index.html", "sub/index.html")),
    Case("vercel-clean-serves-page", "vercel", SUPERSTATIC, vercel(cleanUrls=True),
         served("about.html"), path="/about", files=("index.html", "about.html")),
    # serve-handler: `//host/index` must not become a protocol-relative Location.
    Case("vercel-clean-no-open-redirect", "vercel", SERVE_HANDLER, vercel(cleanUrls=True),
         moved("/haveibeenpwned.com"), path="//haveibeenpwned.com/index",
         files=("index.html", "haveibeenpwned.com/index.html")),
]

TRAILING_SLASH = [
    Case("vercel-slash-adds", "vercel", SUPERSTATIC, vercel(trailingSlash=True),
         moved("/dir/foo/"), path="/dir/foo", files=("index.html", "dir/foo/index.html")),
    Case("vercel-slash-file-kept", "vercel", SUPERSTATIC, vercel(trailingSlash=True),
         served("asset/about.map.js"), path="/asset/about.map.js",
         files=("index.html", "asset/about.map.js")),
    Case("vercel-slash-file-loses-slash", "vercel", SUPERSTATIC, vercel(trailingSlash=True),
         moved("/dir/foo/bar.css"), path="/dir/foo/bar.css/",
         files=("index.html", "dir/foo/bar.css")),
    Case("vercel-slash-well-known", "vercel", SUPERSTATIC, vercel(trailingSlash=True),
         served(".well-known/asdf"), path="/.well-known/asdf",
         files=("index.html", ".well-known/asdf")),
    Case("vercel-slash-root", "vercel", SUPERSTATIC, vercel(trailingSlash=True),
         served("index.html"), path="/"),
    Case("vercel-slash-false-strips", "vercel", SUPERSTATIC, vercel(trailingSlash=False),
         moved("/dir"), path="/dir/", files=("index.html", "dir/index.html")),
    Case("vercel-slash-false-root", "vercel", SUPERSTATIC, vercel(trailingSlash=False),
         served("index.html"), path="/"),
    # serve-handler: trailingSlash runs before redirects, whatever a redirect says.
    Case("vercel-slash-before-redirects", "vercel", SERVE_HANDLER,
         {"vercel.json": json.dumps({"trailingSlash": True, "redirects": [
             {"source": "/face/:path*", "destination": "/testing"}]})},
         moved("/face/mask/"), path="/face/mask"),
    Case("vercel-slash-false-before-redirects", "vercel", SERVE_HANDLER,
         {"vercel.json": json.dumps({"trailingSlash": False, "redirects": [
             {"source": "/face/:path*", "destination": "/testing"}]})},
         moved("/face/mask"), path="/face/mask/"),
    Case("vercel-slash-then-redirect", "vercel", SERVE_HANDLER,
         {"vercel.json": json.dumps({"trailingSlash": True, "redirects": [
             {"source": "/face/:path*/", "destination": "/testing/"}]})},
         moved("/testing/"), path="/face/mask/"),
]

REDIRECTS = [
    Case("vercel-redirect-literal", "vercel", SUPERSTATIC,
         redirect("/some/old/path", "/some/new/path"), moved("/some/new/path"),
         path="/some/old/path"),
    Case("vercel-redirect-literal-no-prefix-match", "vercel", SUPERSTATIC,
         redirect("/some/old/path", "/some/new/path"), NOT_FOUND, path="/some/old/path/more"),
    Case("vercel-redirect-optional-group", "vercel", SUPERSTATIC,
         redirect("/next(\\.js)?", "https://nextjs.org"), moved("https://nextjs.org"),
         path="/next.js"),
    Case("vercel-redirect-optional-group-absent", "vercel", SUPERSTATIC,
         redirect("/next(\\.js)?", "https://nextjs.org"), moved("https://nextjs.org"),
         path="/next"),
    Case("vercel-redirect-escaped-dot", "vercel", SUPERSTATIC,
         redirect("/next(\\.js)?", "https://nextjs.org"), NOT_FOUND, path="/nextAjs"),
    Case("vercel-redirect-status-code", "vercel", SUPERSTATIC,
         redirect("/proxy/(.*)", "https://www.firebase.com", statusCode=302),
         moved("https://www.firebase.com", 302), path="/proxy/dir/sub"),
    Case("vercel-redirect-regex-group", "vercel", SUPERSTATIC,
         redirect("/proxy-regex/([a-zA-Z]{1,})", "https://firebase.com/$1"),
         moved("https://firebase.com/admin"), path="/proxy-regex/admin"),
    Case("vercel-redirect-regex-group-one-segment", "vercel", SUPERSTATIC,
         redirect("/proxy-regex/([a-zA-Z]{1,})", "https://firebase.com/$1"), NOT_FOUND,
         path="/proxy-regex/user/1"),
    Case("vercel-redirect-port", "vercel", SUPERSTATIC,
         redirect("/proxy-port/([a-zA-Z]{1,})", "https://firebase.com:8080/$1"),
         moved("https://firebase.com:8080/anotherAdmin"), path="/proxy-port/anotherAdmin"),
    Case("vercel-redirect-unused-params", "vercel", SUPERSTATIC,
         redirect("/projects/:id/:action", "/projects.html"), moved("/projects.html"),
         path="/projects/two/edit"),
    Case("vercel-redirect-params-need-both", "vercel", SUPERSTATIC,
         redirect("/projects/:id/:action", "/projects.html"), NOT_FOUND, path="/projects/edit"),
    Case("vercel-redirect-segment", "vercel", SUPERSTATIC,
         redirect("/old/:segment/path", "/new/path/:segment"), moved("/new/path/two"),
         path="/old/two/path"),
    Case("vercel-redirect-catchall", "vercel", SUPERSTATIC,
         redirect("/catchall/:hello*", "/catchall/:hello*/"), moved("/catchall/first/second/"),
         path="/catchall/first/second"),
    Case("vercel-redirect-catchall-plus", "vercel", SUPERSTATIC,
         redirect("/another-catch/:hello+", "/another-catch/:hello+/"),
         moved("/another-catch/first/"), path="/another-catch/first"),
    Case("vercel-redirect-plus-needs-one", "vercel", SUPERSTATIC,
         redirect("/another-catch/:hello+", "/another-catch/:hello+/"), NOT_FOUND,
         path="/another-catch"),
    Case("vercel-redirect-lookahead", "vercel", SUPERSTATIC,
         redirect("/feedback/((?!general).*)", "/feedback/general"),
         moved("/feedback/general"), path="/feedback/another"),
    Case("vercel-redirect-lookahead-excludes", "vercel", SUPERSTATIC,
         redirect("/feedback/((?!general).*)", "/feedback/general"), NOT_FOUND,
         path="/feedback/general"),
    Case("vercel-redirect-catchall-matches-bare", "vercel", SUPERSTATIC,
         redirect("/catchme/:id*", "/api/user"), moved("/api/user"), path="/catchme"),
    Case("vercel-redirect-param-in-hash", "vercel", SUPERSTATIC,
         redirect("/hello/:world*", "/something#:world*"), moved("/something#another/world"),
         path="/hello/another/world"),
    Case("vercel-redirect-param-in-url-hash", "vercel", SUPERSTATIC,
         redirect("/external/:id",
                  "https://example.com/?utm_source=google.com#/guides/:id/page?dynamic=code"),
         moved("https://example.com/?utm_source=google.com#/guides/2/page?dynamic=code"),
         path="/external/2"),
    Case("vercel-redirect-optional-param", "vercel", SUPERSTATIC,
         redirect("/optional/:id?", "/api/optional/:id?"), moved("/api/optional/1"),
         path="/optional/1"),
    # The destination compiles to `/api/optional/$1`; an absent group fills in as "".
    Case("vercel-redirect-optional-param-absent", "vercel", SUPERSTATIC,
         redirect("/optional/:id?", "/api/optional/:id?"), moved("/api/optional/"),
         path="/optional"),
    Case("vercel-redirect-optional-no-suffix-match", "vercel", SUPERSTATIC,
         redirect("/optional/:id?", "/api/optional/:id?"), NOT_FOUND, path="/optionally"),
    Case("vercel-redirect-braces", "vercel", SUPERSTATIC,
         redirect("/feature-{:slug}", "/blog-{:slug}"), moved("/blog-first"),
         path="/feature-first"),
    Case("vercel-redirect-braces-no-slash", "vercel", SUPERSTATIC,
         redirect("/feature-{:slug}", "/blog-{:slug}"), NOT_FOUND, path="/feature/first"),
    Case("vercel-redirect-braces-in-query", "vercel", SUPERSTATIC,
         redirect("/hello/:world", "/somewhere?else={:world}"), moved("/somewhere?else=world"),
         path="/hello/world"),
    Case("vercel-redirect-has-host-groups", "vercel", SUPERSTATIC,
         redirect("/hello/:first", "/another/:a/:b", has=AB_HOST, permanent=False),
         moved("/another/vercel/com", 307), path="/hello/world",
         request_headers={"host": "vercel.com"}),
    Case("vercel-redirect-missing-host", "vercel", SUPERSTATIC,
         redirect("/hello/:first", "/another", missing=AB_HOST, permanent=False),
         moved("/another", 307), path="/hello/world", request_headers={"host": "localhost"}),
    Case("vercel-redirect-missing-host-present", "vercel", SUPERSTATIC,
         redirect("/hello/:first", "/another", missing=AB_HOST, permanent=False),
         NOT_FOUND, path="/hello/world", request_headers={"host": "vercel.com"}),
    Case("vercel-redirect-host-capture-in-url", "vercel", SUPERSTATIC,
         redirect("/(.*)", "https://:subdomain.example.com/some-path/end?a=b",
                  has=[{"type": "host", "value": "(?<subdomain>.*)-test.vercel.app"}]),
         moved("https://shop.example.com/some-path/end?a=b"), path="/x",
         request_headers={"host": "shop-test.vercel.app"}),
    Case("vercel-redirect-wide-has", "vercel", SUPERSTATIC,
         redirect("/hello/:first", WIDE_DESTINATION, has=WIDE_HAS, permanent=False),
         moved("/another/world/tim/hello/hello/vercel.com/vercel/com/vercel/com?username=tim",
               307), path="/hello/world?username=tim", request_headers=WIDE_REQUEST),
    Case("vercel-redirect-wide-has-one-missing", "vercel", SUPERSTATIC,
         redirect("/hello/:first", WIDE_DESTINATION, has=WIDE_HAS, permanent=False),
         NOT_FOUND, path="/hello/world", request_headers=WIDE_REQUEST),
    Case("vercel-redirect-has-value-alternatives", "vercel", SUPERSTATIC,
         redirect("/hello/:first", WIDE_DESTINATION, has=WIDE_HAS, permanent=False),
         NOT_FOUND, path="/hello/world?username=tim",
         request_headers={**WIDE_REQUEST, "x-pathname": "other"}),
    Case("vercel-redirect-docs-negative-lookahead", "vercel", DOCS_REDIRECTS,
         redirect("/:path((?!uk/).*)", "/uk/:path*", permanent=False,
                  has=[{"type": "header", "key": "x-vercel-ip-country", "value": "GB"}]),
         moved("/uk/shop/tea", 307), path="/shop/tea",
         request_headers={"x-vercel-ip-country": "GB"}),
    Case("vercel-redirect-docs-negative-lookahead-done", "vercel", DOCS_REDIRECTS,
         redirect("/:path((?!uk/).*)", "/uk/:path*", permanent=False,
                  has=[{"type": "header", "key": "x-vercel-ip-country", "value": "GB"}]),
         NOT_FOUND, path="/uk/shop/tea", request_headers={"x-vercel-ip-country": "GB"}),
    Case("vercel-redirect-permanent-false", "vercel", INDEX_SPEC,
         redirect("/version4", "/api4.py", permanent=False), moved("/api4.py", 307),
         path="/version4"),
    Case("vercel-redirect-permanent-true", "vercel", INDEX_SPEC,
         redirect("/version3", "/api3.py", permanent=True), moved("/api3.py"),
         path="/version3"),
    Case("vercel-redirect-has-query-capture", "vercel", INDEX_SPEC,
         redirect("/redirect", "/:url", has=[{"type": "query", "key": "url",
                                              "value": "(?<url>.*)"}]),
         moved("/docs?url=docs"), path="/redirect?url=docs"),
    Case("vercel-redirect-has-query-key-binds", "vercel", MATCH_HAS,
         redirect("/search", "/find/:term", has=[{"type": "query", "key": "term"}]),
         moved("/find/tea?term=tea"), path="/search?term=tea"),
    Case("vercel-redirect-has-cookie-key-binds", "vercel", MATCH_HAS,
         redirect("/me", "/users/:user", has=[{"type": "cookie", "key": "user"}]),
         moved("/users/ada"), path="/me", request_headers={"cookie": "theme=dark; user=ada"}),
    Case("vercel-redirect-has-empty-value-fails", "vercel", MATCH_HAS,
         redirect("/search", "/find/:term", has=[{"type": "query", "key": "term"}]),
         NOT_FOUND, path="/search?term="),
    Case("vercel-redirect-has-host-binds-host", "vercel", MATCH_HAS,
         redirect("/where", "/on/:host", has=[{"type": "host", "value": "vercel\\.com"}]),
         moved("/on/vercel.com"), path="/where", request_headers={"host": "vercel.com:3000"}),
    Case("vercel-redirect-has-header-case", "vercel", SUPERSTATIC,
         redirect("/h", "/:v", has=[{"type": "header", "key": "X-Mode", "value": "(?<v>a|b)"}]),
         moved("/b"), path="/h", request_headers={"x-mode": "b"}),
    Case("vercel-redirect-has-capture-beats-source", "vercel", SUPERSTATIC,
         redirect("/p/:id", "/q/:id", has=[{"type": "header", "key": "x-id",
                                            "value": "(?<id>.*)"}]),
         moved("/q/from-header"), path="/p/from-path", request_headers={"x-id": "from-header"}),
    Case("vercel-redirect-case-sensitive", "vercel", DEV_SERVER,
         redirect("/About", "/team"), NOT_FOUND, path="/about"),
    Case("vercel-redirect-beats-file", "vercel", SUPERSTATIC,
         redirect("/about", "/team"), moved("/team"), path="/about",
         files=("index.html", "about.html")),
    Case("vercel-redirect-dollar-number", "vercel", SUPERSTATIC,
         redirect("/a/(.*)/(.*)", "/b/$2/$1"), moved("/b/y/x"), path="/a/x/y"),
    Case("vercel-redirect-dot-prefix", "vercel", SUPERSTATIC,
         redirect("/file.:ext", "/files/:ext"), moved("/files/txt"), path="/file.txt"),
    Case("vercel-redirect-braced-optional", "vercel", SUPERSTATIC,
         redirect("/docs{/v:version}?/intro", "/intro/:version"), moved("/intro/2"),
         path="/docs/v2/intro"),
    Case("vercel-redirect-braced-optional-absent", "vercel", SUPERSTATIC,
         redirect("/docs{/v:version}?/intro", "/intro/:version"), moved("/intro/"),
         path="/docs/intro"),
    Case("vercel-redirect-braced-literal", "vercel", SUPERSTATIC,
         redirect("/post{s}?/:id", "/p/:id"), moved("/p/7"), path="/posts/7"),
    Case("vercel-redirect-catchall-root", "vercel", DEV_ROUTER,
         redirect("/:path*", "/maintenance.html"), moved("/maintenance.html"), path="/"),
]

VALIDATION = [
    Case("vercel-refuse-destination-segment", "vercel", INDEX_SPEC,
         redirect("/iforgot/:id", "/:another"), REFUSED, path="/iforgot/1"),
    Case("vercel-refuse-url-destination-segment", "vercel", INDEX_SPEC,
         redirect("/iforgot/:id", "https://example.com/:another"), REFUSED, path="/iforgot/1"),
    Case("vercel-refuse-query-destination-segment", "vercel", INDEX_SPEC,
         redirect("/iforgot/:id", "/api/login?id=123&name=:name"), REFUSED, path="/iforgot/1"),
    Case("vercel-refuse-rewrite-destination-segment", "vercel", INDEX_SPEC,
         rewrite("/iforgot/:id", "/:another"), REFUSED, path="/iforgot/1"),
    Case("vercel-refuse-permanent-and-status", "vercel", INDEX_SPEC,
         redirect("/both", "/api/both", permanent=False, statusCode=302), REFUSED, path="/both"),
    Case("vercel-refuse-bad-pattern", "vercel", INDEX_SPEC,
         redirect("/:?", "/file.html"), REFUSED),
    Case("vercel-refuse-bad-regex", "vercel", INDEX_SPEC,
         rewrite("^/(*.)\\.html$", "/file.html"), REFUSED),
    Case("vercel-refuse-header-bad-pattern", "vercel", INDEX_SPEC,
         header("/:?", {"x-hello": "world"}), REFUSED),
    Case("vercel-refuse-permanent-not-boolean", "vercel", INDEX_SPEC,
         redirect("/foo", "/bar", permanent=301), REFUSED, path="/foo"),
    Case("vercel-refuse-status-not-integer", "vercel", INDEX_SPEC,
         redirect("/foo", "/bar", statusCode="301"), REFUSED, path="/foo"),
    Case("vercel-refuse-status-out-of-range", "vercel", SCHEMAS,
         redirect("/foo", "/bar", statusCode=1000), REFUSED, path="/foo"),
    Case("vercel-redirect-status-301", "vercel", SCHEMAS,
         redirect("/foo", "/bar", statusCode=301), moved("/bar", 301), path="/foo"),
    Case("vercel-redirect-status-303", "vercel", SCHEMAS,
         redirect("/foo", "/bar", statusCode=303), moved("/bar", 303), path="/foo"),
    Case("vercel-redirect-status-non-redirect", "vercel", SCHEMAS,
         redirect("/foo", "/bar", statusCode=200), Expect(status=200), path="/foo",
         differs="a statusCode outside 301/302/303/307/308 sends that status with a Location "
                 "no browser follows; percel refuses the rule at build time, naming it",
         percel=REFUSED),
    Case("vercel-refuse-capturing-group-in-group", "vercel", SUPERSTATIC,
         rewrite("/a/((x))", "/b"), REFUSED),
    Case("vercel-refuse-group-starts-with-question", "vercel", SUPERSTATIC,
         rewrite("/(?:a|b)", "/b"), REFUSED),
    Case("vercel-refuse-bare-star", "vercel", SUPERSTATIC,
         rewrite("/blog/*", "/b"), REFUSED),
    Case("vercel-accept-has-segment", "vercel", INDEX_SPEC,
         redirect("/redirect", "/:url", has=[{"type": "query", "key": "url"}]),
         moved("/x?url=x"), path="/redirect?url=x"),
    Case("vercel-accept-unnamed-in-destination", "vercel", SUPERSTATIC,
         redirect("/proxy/(.*)", "https://www.firebase.com"),
         moved("https://www.firebase.com"), path="/proxy/one"),
]


def when(kind: str, key: str | None, value: object) -> list[dict[str, object]]:
    item: dict[str, object] = {"type": kind, "value": value}
    if key is not None:
        item["key"] = key
    return [item]


# schemas.ts matchableValueSchema: a has/missing value may be an object of operators; `re`'s
# named groups bind as a string value's do (superstatic.ts getStringValueForRegex).
OPERATORS = [
    Case("vercel-has-inc", "vercel", SCHEMAS,
         redirect("/club", "/vip", has=when("header", "x-tier", {"inc": ["gold", "silver"]})),
         moved("/vip"), path="/club", request_headers={"x-tier": "silver"}),
    Case("vercel-has-inc-other", "vercel", SCHEMAS,
         redirect("/club", "/vip", has=when("header", "x-tier", {"inc": ["gold", "silver"]})),
         NOT_FOUND, path="/club", request_headers={"x-tier": "bronze"}),
    Case("vercel-has-ninc", "vercel", SCHEMAS,
         redirect("/club", "/join", has=when("header", "x-tier", {"ninc": ["gold", "silver"]})),
         moved("/join"), path="/club", request_headers={"x-tier": "bronze"}),
    Case("vercel-has-gte", "vercel", SCHEMAS,
         redirect("/drinks", "/bar", has=when("query", "age", {"gte": 18})),
         moved("/bar?age=21"), path="/drinks?age=21"),
    Case("vercel-has-gte-below", "vercel", SCHEMAS,
         redirect("/drinks", "/bar", has=when("query", "age", {"gte": 18})),
         NOT_FOUND, path="/drinks?age=17"),
    Case("vercel-has-lt-not-a-number", "vercel", SCHEMAS,
         redirect("/drinks", "/juice", has=when("query", "age", {"lt": 18})),
         NOT_FOUND, path="/drinks?age=young"),
    Case("vercel-has-eq-number", "vercel", SCHEMAS,
         redirect("/v", "/five", has=when("header", "x-n", {"eq": 5})),
         moved("/five"), path="/v", request_headers={"x-n": "5"}),
    Case("vercel-has-neq", "vercel", SCHEMAS,
         redirect("/app", "/stable", has=when("cookie", "channel", {"neq": "beta"})),
         moved("/stable"), path="/app", request_headers={"cookie": "channel=alpha"}),
    Case("vercel-has-neq-equal", "vercel", SCHEMAS,
         redirect("/app", "/stable", has=when("cookie", "channel", {"neq": "beta"})),
         NOT_FOUND, path="/app", request_headers={"cookie": "channel=beta"}),
    Case("vercel-has-pre-and-suf", "vercel", SCHEMAS,
         header("/(.*)", {"x-seen": "1"}, has=when("header", "x-code", {"pre": "a", "suf": "z"})),
         served("index.html", **{"x-seen": "1"}), path="/", request_headers={"x-code": "abcz"}),
    Case("vercel-has-pre-and-suf-one-fails", "vercel", SCHEMAS,
         header("/(.*)", {"x-seen": "1"}, has=when("header", "x-code", {"pre": "a", "suf": "z"})),
         served("index.html", **{"x-seen": None}), path="/", request_headers={"x-code": "abc"}),
    Case("vercel-has-suf-host", "vercel", SCHEMAS,
         redirect("/", "/tenant", has=when("host", None, {"suf": ".example.com"})),
         moved("/tenant"), path="/", request_headers={"host": "shop.example.com"}),
    Case("vercel-has-re-binds", "vercel", SUPERSTATIC,
         redirect("/docs", "/docs/v:major", has=when("query", "v", {"re": "(?<major>\\d+)\\..*"})),
         moved("/docs/v2?v=2.1"), path="/docs?v=2.1"),
    Case("vercel-missing-eq", "vercel", SCHEMAS,
         redirect("/a", "/b", missing=when("header", "x-skip", {"eq": "1"})),
         NOT_FOUND, path="/a", request_headers={"x-skip": "1"}),
    Case("vercel-refuse-unknown-operator", "vercel", SCHEMAS,
         redirect("/a", "/b", has=when("header", "x-a", {"like": "x"})), REFUSED, path="/a"),
    Case("vercel-refuse-empty-operators", "vercel", SCHEMAS,
         redirect("/a", "/b", has=when("header", "x-a", {})), REFUSED, path="/a"),
]

REWRITES = [
    Case("vercel-rewrite-literal", "vercel", SUPERSTATIC,
         rewrite("/some/old/path", "/some/new/path"), served("some/new/path.html"),
         path="/some/old/path", files=("index.html", "some/new/path.html")),
    Case("vercel-rewrite-query-in-destination", "vercel", SUPERSTATIC,
         rewrite("/users/:id", "/api/user?identifier=:id&version=v2"),
         served("api/user.html"), path="/users/four", files=("index.html", "api/user.html")),
    Case("vercel-rewrite-two-params", "vercel", SUPERSTATIC,
         rewrite("/:file/:id", "/:file/get?identifier=:id"), served("file1/get.html"),
         path="/file1/yep", files=("index.html", "file1/get.html")),
    Case("vercel-rewrite-two-params-not-root", "vercel", SUPERSTATIC,
         rewrite("/:path/:two", "/test?path=:path"), NOT_FOUND, path="/first",
         files=("index.html", "test.html")),
    Case("vercel-rewrite-mixed-groups", "vercel", SUPERSTATIC,
         rewrite("/(.*)-:id(\\d+).html", "/blog/:id"), served("blog/123.html"),
         path="/hello/post-123.html", files=("index.html", "blog/123.html")),
    Case("vercel-rewrite-mixed-groups-no-match", "vercel", SUPERSTATIC,
         rewrite("/(.*)-:id(\\d+).html", "/blog/:id"), NOT_FOUND, path="/hello/post.html",
         files=("index.html", "blog/123.html")),
    Case("vercel-rewrite-braces", "vercel", SUPERSTATIC,
         rewrite("/feature-{:slug}", "/blog-{:slug}"), served("blog-first.html"),
         path="/feature-first", files=("index.html", "blog-first.html")),
    Case("vercel-rewrite-has-host-capture", "vercel", SUPERSTATIC,
         rewrite("/test/:id", "/api/:sub_domain/:id",
                 has=[{"type": "host", "value": "(?<sub_domain>.*)\\.example\\.com"}]),
         served("api/shop/123.html"), path="/test/123",
         request_headers={"host": "shop.example.com"}, files=("index.html", "api/shop/123.html")),
    Case("vercel-rewrite-has-header-captures", "vercel", SUPERSTATIC,
         rewrite("/user/:id", "/api/:user_name/:user_type/:id",
                 has=[{"type": "header", "key": "x-data",
                       "value": "(?<user_name>.*)-(?<user_type>.*)"}]),
         served("api/tim/admin/10.html"), path="/user/10", request_headers={"x-data": "tim-admin"},
         files=("index.html", "api/tim/admin/10.html")),
    Case("vercel-rewrite-has-query-captures", "vercel", SUPERSTATIC,
         rewrite("/item/:id", "/products/:item_id/:category/:id",
                 has=[{"type": "query", "key": "data",
                       "value": "(?<item_id>\\d+)-(?<category>[a-z]+)"}]),
         served("products/42/shoes/5.html"), path="/item/5?data=42-shoes",
         files=("index.html", "products/42/shoes/5.html")),
    Case("vercel-rewrite-has-query-no-match", "vercel", SUPERSTATIC,
         rewrite("/item/:id", "/products/:item_id/:category/:id",
                 has=[{"type": "query", "key": "data",
                       "value": "(?<item_id>\\d+)-(?<category>[a-z]+)"}]),
         NOT_FOUND, path="/item/5?data=x-shoes", files=("index.html", "products/42/shoes/5.html")),
    Case("vercel-rewrite-wide-has", "vercel", SUPERSTATIC,
         rewrite("/hello/:first", WIDE_DESTINATION, has=WIDE_HAS),
         served("another/world/tim/hello/hello/vercel.com/vercel/com/vercel/com.html"),
         path="/hello/world?username=tim", request_headers=WIDE_REQUEST,
         files=("index.html", "another/world/tim/hello/hello/vercel.com/vercel/com/vercel/com.html")),
    Case("vercel-rewrite-file-first", "vercel", SUPERSTATIC,
         rewrite("/:path*", "/index.html"), served("about.html"), path="/about",
         files=("index.html", "about.html")),
    Case("vercel-rewrite-spa", "vercel", SUPERSTATIC,
         rewrite("/:path*", "/index.html"), served("index.html"), path="/deep/link"),
    Case("vercel-rewrite-external", "vercel", SUPERSTATIC,
         rewrite("/proxy/(.*)", "https://www.firebase.com/"), Expect(status=200),
         path="/proxy/one",
         differs="Vercel proxies a rewrite to an external URL; a static host cannot, so percel "
                 "drops the rule with a build warning",
         percel=Expect(status=404, warnings=1)),
    Case("vercel-rewrite-relative-destination", "vercel", DEV_ROUTER,
         rewrite("/face/:id", ":id.json"), served("object.json"), path="/face/object",
         files=("index.html", "object.json")),
    Case("vercel-rewrite-protocol-relative", "vercel", SUPERSTATIC,
         rewrite("/cdn/(.*)", "//cdn.example.com/$1"), Expect(status=200), path="/cdn/a.js",
         differs="Vercel proxies a rewrite to another origin; a static host cannot, so percel "
                 "drops the rule with a build warning",
         percel=Expect(status=404, warnings=1)),
    Case("vercel-rewrite-status-code", "vercel", SUPERSTATIC,
         rewrite("/rewrite-with-status", "/api/hello", statusCode=201),
         Expect(status=201, file="api/hello.html"), path="/rewrite-with-status",
         files=("index.html", "api/hello.html")),
    Case("vercel-rewrite-case-sensitive", "vercel", DEV_SERVER,
         rewrite("/Docs/:path*", "/index.html"), Expect(status=404), path="/docs/a"),
]

HEADERS = [
    Case("vercel-header-param-value-and-key", "vercel", SUPERSTATIC,
         header("/blog/:path*", {"on-blog": ":path*", ":path*": "blog"}),
         served("blog/first-post.html", **{"on-blog": "first-post", "first-post": "blog"}),
         path="/blog/first-post", files=("index.html", "blog/first-post.html")),
    Case("vercel-header-param-in-value", "vercel", SUPERSTATIC,
         header("/like/params/:path", {
             "x-path": ":path", "some:path": "hi", "x-test": "some:value*",
             "x-test-3": ":value?", "x-test-5": "something https:",
             "x-test-6": ":hello(world)", "x-test-8": "hello{1,}", "x-test-9": ":hello{1,2}",
             "content-security-policy": "script-src userscripts.example.com/:path"}),
         served("like/params/first.html", **{
             "x-path": "first", "somefirst": "hi", "x-test": "some:value*",
             "x-test-3": ":value?", "x-test-5": "something https:",
             "x-test-6": ":hello(world)", "x-test-8": "hello{1,}", "x-test-9": ":hello{1,2}",
             "content-security-policy": "script-src userscripts.example.com/first"}),
         path="/like/params/first", files=("index.html", "like/params/first.html")),
    Case("vercel-header-no-match-trailing-slash", "vercel", SUPERSTATIC,
         header("/like/params/:path", {"x-path": ":path"}),
         Expect(headers={"x-path": None}), path="/like/params/"),
    Case("vercel-header-has-host-groups", "vercel", SUPERSTATIC,
         header("/hello/:first", {"x-a": ":a", "x-:b": "b"}, has=AB_HOST),
         served("hello/world.html", **{"x-a": "vercel", "x-com": "b"}),
         path="/hello/world", request_headers={"host": "vercel.com"},
         files=("index.html", "hello/world.html")),
    Case("vercel-header-missing-host", "vercel", SUPERSTATIC,
         header("/hello/:first", {"x-a": "a", "x-b": "b"}, missing=AB_HOST),
         served("hello/world.html", **{"x-a": "a", "x-b": "b"}),
         path="/hello/world", request_headers={"host": "localhost"},
         files=("index.html", "hello/world.html")),
    Case("vercel-header-wide-has", "vercel", SUPERSTATIC,
         header("/hello/:first", {"x-user": ":username", "x-another": ":another",
                                  "x-a": ":a", "x-:b": "b", "x-c": ":c", "x-:d": "d"},
                has=WIDE_HAS),
         served("hello/world.html", **{"x-user": "tim", "x-another": "hello", "x-a": "vercel",
                                       "x-c": "vercel", "x-com": "d"}),
         path="/hello/world?username=tim", request_headers=WIDE_REQUEST,
         files=("index.html", "hello/world.html")),
    Case("vercel-header-query-key", "vercel", SUPERSTATIC,
         header("/(.*)", {"Content-Security-Policy":
                          "frame-ancestors 'self' https://test-app.vercel.app https://:shop;"},
                has=[{"type": "query", "key": "shop"}]),
         served("index.html", **{"content-security-policy":
                                 "frame-ancestors 'self' https://test-app.vercel.app "
                                 "https://my.shop;"}),
         path="/?shop=my.shop"),
    Case("vercel-header-query-key-absent", "vercel", SUPERSTATIC,
         header("/(.*)", {"Content-Security-Policy": "frame-ancestors https://:shop;"},
                has=[{"type": "query", "key": "shop"}]),
         served("index.html", **{"content-security-policy": None}), path="/"),
    Case("vercel-header-no-params-literal", "vercel", SUPERSTATIC,
         header("/(.*)", {"x-note": "a:b :c"}), served("index.html", **{"x-note": "a:b :c"}),
         path="/"),
    Case("vercel-header-catchall-root", "vercel", DEV_ROUTER,
         header("/:path*", {"x-frame-options": "DENY"}),
         served("index.html", **{"x-frame-options": "DENY"}), path="/"),
    Case("vercel-header-source-without-slash", "vercel", DEV_ROUTER,
         header("404.html", {"Cache-Control": "max-age=300"}),
         served("404.html", **{"cache-control": "max-age=300"}), path="/404.html",
         files=("index.html", "404.html")),
    Case("vercel-header-fonts", "vercel", SUPERSTATIC,
         header("/(.*)\\.(eot|otf|ttf|ttc|woff|font\\.css)", {"Access-Control-Allow-Origin": "*"}),
         served("another/font.ttf", **{"access-control-allow-origin": "*"}),
         path="/another/font.ttf", files=("index.html", "another/font.ttf")),
    Case("vercel-header-fonts-other", "vercel", SUPERSTATIC,
         header("/(.*)\\.(eot|otf|ttf|ttc|woff|font\\.css)", {"Access-Control-Allow-Origin": "*"}),
         served("dir/arial.font-css", **{"access-control-allow-origin": None}),
         path="/dir/arial.font-css", files=("index.html", "dir/arial.font-css")),
    Case("vercel-header-later-overrides", "vercel", SUPERSTATIC,
         {"vercel.json": json.dumps({"headers": [
             {"source": "/(.*)", "headers": [{"key": "x-a", "value": "1"}]},
             {"source": "/about", "headers": [{"key": "X-A", "value": "2"}]}]})},
         served("about.html", **{"x-a": "2"}), path="/about", files=("index.html", "about.html")),
]

CASES: list[Case] = [*CLEAN_URLS, *TRAILING_SLASH, *REDIRECTS, *VALIDATION, *OPERATORS, *REWRITES,
                     *HEADERS]
