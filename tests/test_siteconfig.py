"""Build-time parsing of vercel.json, percel.json, netlify.toml, _redirects and _headers
(chalicelib/pipeline/siteconfig/)."""
from __future__ import annotations

import json
import re

import pytest

from chalicelib.pipeline import siteconfig
from chalicelib.pipeline.siteconfig import SiteConfigError, build_site_config, compile_config
from chalicelib.serving.resolve import resolve


def write(directory, name, text):
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text if isinstance(text, str) else json.dumps(text), encoding="utf-8")


@pytest.fixture
def dirs(tmp_path):
    project, output = tmp_path / "project", tmp_path / "project" / "dist"
    output.mkdir(parents=True)
    write(output, "index.html", "<h1>hi</h1>")
    return project, output


# --- the SPA switch ---------------------------------------------------------------------------

@pytest.mark.parametrize("spa_default,has_404,percel,expected", [
    (True, False, None, True),           # an SPA framework without 404.html falls back
    (True, True, None, False),           # a 404.html means the user chose a static 404 page
    (False, False, None, False),         # not an SPA framework
    (False, False, {"spa": True}, True),  # percel.json switches it on
    (True, False, {"spa": False}, False),  # ... and off
    (True, True, {"spa": True}, True),
    (True, False, {}, True),
])
def test_spa_decision(dirs, spa_default, has_404, percel, expected):
    project, output = dirs
    if has_404:
        write(output, "404.html", "gone")
    if percel is not None:
        write(project, "percel.json", percel)
    assert build_site_config(output, project, spa_default)["spa"] is expected


def test_no_config_files_give_the_defaults(dirs):
    project, output = dirs
    config = build_site_config(output, project, spa_default=False)
    # A site deployed now gets Cloudflare Pages' default HTML handling
    # (docs/DECISIONS.md#html-handling); empty_config stays what old manifests mean.
    assert config == {**siteconfig.empty_config(), "hidden": ["_redirects", "_headers"],
                      "html_handling": "auto-trailing-slash"}


def test_config_is_json_serialisable_and_drives_the_resolver(dirs):
    project, output = dirs
    write(project, "vercel.json", {"cleanUrls": True, "framework": "vite", "buildCommand": "x",
                                   "redirects": [{"source": "/old", "destination": "/"}]})
    write(output, "about.html", "about")
    write(output, "_redirects", "/legacy/*  /about  302\n")
    write(output, "_headers", "/*\n  X-Robots-Tag: noindex\n")
    config = json.loads(json.dumps(build_site_config(output, project, spa_default=False)))
    files = {name: {"sha256": "0" * 64, "size": 1, "type": "text/html; charset=utf-8"}
             for name in ("index.html", "about.html", "_redirects", "_headers")}
    site = {"files": files, "config": config}
    assert resolve("GET", "/about.html", {}, site).location == "/about"
    assert resolve("GET", "/old", {}, site).status == 308
    assert resolve("GET", "/legacy/x", {}, site).location == "/about"
    assert resolve("GET", "/about", {}, site).header("X-Robots-Tag") == "noindex"
    assert resolve("GET", "/_redirects", {}, site).status == 404


def test_a_plain_static_repo_hides_its_config_files(tmp_path):
    write(tmp_path, "index.html", "hi")
    write(tmp_path, "vercel.json", {"cleanUrls": True})
    config = build_site_config(tmp_path, tmp_path, spa_default=False)
    assert {"vercel.json", "percel.json", "_redirects", "_headers"} <= set(config["hidden"])


# --- invalid files: clear errors naming the file and the rule ----------------------------------

@pytest.mark.parametrize("name,text,message", [
    ("vercel.json", "{\"cleanUrls\": true,,}", r"vercel\.json: invalid JSON at line 1"),
    ("vercel.json", "[]", r"vercel\.json: the top level must be a JSON object"),
    ("vercel.json", {"cleanUrls": "yes"}, r"vercel\.json: cleanUrls must be true or false"),
    ("vercel.json", {"trailingSlash": 1}, r"vercel\.json: trailingSlash must be true or false"),
    ("vercel.json", {"redirects": {}}, r"vercel\.json: redirects must be an array"),
    ("vercel.json", {"redirects": ["/a"]}, r"redirects\[0\] must be an object"),
    ("vercel.json", {"redirects": [{"source": "/:?", "destination": "/"}]},
     r"redirects\[0\]: invalid source pattern '/:\?': missing parameter name at 1"),
    ("vercel.json", {"redirects": [{"source": "/a"}]}, r"redirects\[0\]: destination must be a non-empty string"),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/", "statusCode": 200}]},
     r"redirects\[0\]: statusCode 200 is not a redirect"),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/", "statusCode": 1000}]},
     r"redirects\[0\]: statusCode must be an integer from 100 to 999"),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/", "permanent": False,
                                    "statusCode": 302}]},
     r"redirects\[0\]: cannot define both permanent and statusCode"),
    ("vercel.json", {"redirects": [{"source": "/a/:id", "destination": "/b/:other"}]},
     r"redirects\[0\]: destination '/b/:other' uses \":other\", which is not a parameter"),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/", "permanent": "no"}]},
     r"redirects\[0\]: permanent must be true or false"),
    ("vercel.json", {"rewrites": [{"source": "/a/(\\d+", "destination": "/"}]},
     r"rewrites\[0\]: invalid source pattern .* unbalanced"),
    ("vercel.json", {"rewrites": [{"source": "/a/((x))", "destination": "/"}]},
     r"rewrites\[0\]: invalid source pattern .* capturing groups are not allowed"),
    ("vercel.json", {"rewrites": [{"source": "/a/*", "destination": "/"}]},
     r"rewrites\[0\]: .*'\*' at 3 must follow a parameter"),
    ("vercel.json", {"rewrites": [{"source": "/(?:a)", "destination": "/"}]},
     r"rewrites\[0\]: .*a group cannot start with \"\?\""),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/", "has": [{"type": "host"}]}]},
     r"redirects\[0\]\.has\[0\]: a host condition needs a value"),
    ("vercel.json", {"rewrites": [{"source": "/a/([)", "destination": "/"}]}, r"invalid regular expression"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": []}]}, r"headers\[0\]: headers must be a non-empty"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "Content-Length", "value": "1"}]}]},
     r"headers\[0\]\.headers\[0\]: header 'Content-Length' is set by the server"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "Bad Name", "value": "1"}]}]},
     r"'Bad Name' is not a valid header name"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "X-A", "value": "a\nb"}]}]},
     r"must be a single-line string"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "X-A", "value": "a\r\nSet-Cookie: x=1"}]}]},
     r"must be a single-line string"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "X-A", "value": "a\x0bb"}]}]},
     r"must be a single-line string of printable ASCII"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "X-Note", "value": "日本"}]}]},
     r"must be a single-line string of printable ASCII"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "X-A\r\nX-B", "value": "1"}]}]},
     r"is not a valid header name"),
    ("vercel.json", {"headers": [{"source": "/(.*)", "headers": [{"key": "X-A\n", "value": "1"}]}]},
     r"is not a valid header name"),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/", "has": [{"type": "ip"}]}]},
     r"redirects\[0\]\.has\[0\]: type must be one of"),
    ("vercel.json", {"redirects": [{"source": "/a", "destination": "/",
                                    "has": [{"type": "query", "key": "q", "value": "("}]}]},
     r"has\[0\]: invalid regular expression"),
    ("percel.json", {"spa": "yes"}, r"percel\.json: \"spa\" must be true or false"),
    ("percel.json", {"spa": True, "mode": "x"}, r"percel\.json: unknown key 'mode'"),
    ("dist/_redirects", b"\xff\xfe".decode("latin-1"), None),  # replaced below with raw bytes
])
def test_invalid_files_raise_a_clear_error(dirs, name, text, message):
    project, output = dirs
    if message is None:
        (output / "_redirects").write_bytes(b"/a /b\n\xff\xfe\n")
        message = r"_redirects: not valid UTF-8"
    else:
        write(project, name, text)
    with pytest.raises(SiteConfigError, match=message):
        build_site_config(output, project, spa_default=True)
    assert issubclass(SiteConfigError, ValueError)


@pytest.mark.parametrize("name,text,message", [
    ("_redirects", "/a\n", r"_redirects line 1: no destination after '/a'; line skipped"),
    ("_redirects", "# c\n\n/a /b abc\n", r"_redirects line 3: 'abc' is not a status code; line skipped"),
    ("_redirects", "/a /b 399\n", r"_redirects line 1: unsupported status 399"),
    ("_redirects", "/a /b 301 extra\n", r"_redirects line 1: conditions \(extra\) are not supported"),
    ("_redirects", "/a 200\n", r"_redirects line 1: no destination; only a 2xx rule whose path ends in /\*"),
    ("_redirects", "/a/* 301\n", r"_redirects line 1: no destination"),
    ("_redirects", "/x?y 301\n", r"_redirects line 1: no destination"),
    ("_redirects", "/a /b !\n", r"_redirects line 1: '!' is not a status code"),
    ("_redirects", "/a b\n", r'_redirects line 1: the destination must start with "/"'),
    ("_redirects", "/a /" + "b" * 2000 + "\n", r"_redirects line 1: longer than 2000 characters; line skipped"),
    ("_headers", "  X-A: 1\n", r"_headers line 1: a header must follow a path line"),
    ("_headers", "X-A: 1\n", r"_headers line 1: a header must follow a path line"),
    ("_headers", "/*\n  X-A 1\n", r"_headers line 2: expected `Name: value`"),
    ("_headers", "/*\n  X-A:\n", r"_headers line 2: expected `Name: value`, got 'X-A:' \(no value\)"),
    ("_headers", "/*\n  : 1\n", r"\(no name\)"),
    ("_headers", "/*\n  Content-Encoding: br\n", r"_headers line 2: header 'Content-Encoding' is set"),
    ("_headers", "/*\n  X-Note: café\n", r"_headers line 2: the value of 'X-Note' must be a single-line"),
    ("_headers", "/*\n  X-A: a\rSet-Cookie: x=1\n", r"_headers line 2: the value of 'X-A' must be"),
])
def test_lines_the_platforms_cannot_read_are_skipped_with_a_warning(dirs, name, text, message):
    """Bad lines never sink a deploy: the line is skipped, the warning names the file and the
    line, the rest of the file applies."""
    project, output = dirs
    write(output, name, text + ("/ok /fine\n" if name == "_redirects" else "/ok\n  X-Ok: 1\n"))
    config = build_site_config(output, project, spa_default=False)
    assert len(config["warnings"]) == 1 and re.search(message, config["warnings"][0]), config["warnings"]
    key = "netlify_redirects" if name == "_redirects" else "netlify_headers"
    assert len(config[key]) == 1 and re.match(r"\^/ok", config[key][0]["regex"])


def test_rule_caps_are_vercels_2048(dirs):
    project, output = dirs
    rule = {"source": "/a", "destination": "/b"}
    write(project, "vercel.json", {"redirects": [rule] * 2048})
    assert len(build_site_config(output, project, False)["redirects"]) == 2048
    write(project, "vercel.json", {"rewrites": [rule] * 2049})
    with pytest.raises(SiteConfigError, match=r"rewrites has 2049 rules; the limit is 2048"):
        build_site_config(output, project, False)
    write(project, "vercel.json", {})
    write(output, "_redirects", "/a /b\n" * 2050)
    config = build_site_config(output, project, False)
    assert len(config["netlify_redirects"]) == 2048
    assert config["warnings"] == ["_redirects line 2049: more than 2048 rules; this line and the "
                                  "rest of _redirects skipped"]


def test_utf8_bom_is_accepted(dirs):
    project, output = dirs
    (project / "vercel.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"cleanUrls": True}).encode())
    assert build_site_config(output, project, False)["clean_urls"] is True


@pytest.mark.parametrize("name", ["dist/_headers", "dist/_redirects", "vercel.json", "percel.json",
                                  "netlify.toml"])
def test_config_symlinks_out_of_the_tree_are_not_read(dirs, tmp_path, name):
    """A build can make _headers a link to /proc/self/environ; the runner reads it outside the
    sandbox, and the parse error used to quote the runner's environment, AWS secret included."""
    project, output = dirs
    secret = tmp_path / "runner-secret"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2-secret\n")
    (project / name).symlink_to(secret)
    with pytest.raises(SiteConfigError, match=r"a symlink to a file outside") as refused:
        build_site_config(output, project, spa_default=False)
    assert "hunter2" not in str(refused.value)


def test_config_symlinks_inside_the_tree_still_work(dirs):
    project, output = dirs
    write(output, "rules/headers.txt", "/*\n  X-Frame-Options: DENY\n")
    (output / "_headers").symlink_to("rules/headers.txt")
    config = build_site_config(output, project, spa_default=False)
    assert config["netlify_headers"][0]["headers"] == [["X-Frame-Options", "DENY"]]


def test_oversized_config_file_is_refused_before_reading(dirs):
    project, output = dirs
    (output / "_redirects").write_bytes(b"#" * (siteconfig.MAX_FILE_BYTES + 1))
    with pytest.raises(SiteConfigError, match=r"_redirects: larger than 4 MiB"):
        build_site_config(output, project, spa_default=False)


# --- vercel.json -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule,status", [
    ({}, 308),
    ({"permanent": True}, 308),
    ({"permanent": False}, 307),
    ({"statusCode": 302}, 302),
])
def test_redirect_status(rule, status):
    config = compile_config(vercel={"redirects": [{"source": "/a", "destination": "/b", **rule}]})
    assert config["redirects"][0]["status"] == status


def test_unsupported_vercel_features_become_warnings():
    config = compile_config(vercel={
        "routes": [{"src": "/a"}],
        "rewrites": [{"source": "/api/(.*)", "destination": "https://api.example.com/$1"},
                     {"source": "/x", "destination": "/y"}]})
    assert config["rewrites"][0]["destination"] == "/y" and len(config["rewrites"]) == 1
    assert any("routes" in warning for warning in config["warnings"])
    assert any("rewrites[0]" in warning and "external" in warning for warning in config["warnings"])


def test_has_and_missing_are_kept():
    config = compile_config(vercel={"headers": [{
        "source": "/(.*)", "headers": [{"key": "X-A", "value": " 1 "}],
        "has": [{"type": "host", "value": "a\\.example\\.com"}],
        "missing": [{"type": "header", "key": "x-skip"}]}]})
    rule = config["headers"][0]
    assert rule["headers"] == [["X-A", "1"]]
    assert rule["has"] == [{"type": "host", "key": None, "value": "a\\.example\\.com"}]
    assert rule["missing"] == [{"type": "header", "key": "x-skip", "value": None}]


PATTERNS = [
    ("/blog/:slug", "/blog/hello", {"slug": "hello"}),
    ("/blog/:slug", "/blog/a/b", None),
    ("/blog/:slug", "/blog/a/", None),            # strict: the trailing slash counts
    ("/blog/:slug", "/Blog/a", None),             # case-sensitive
    ("/:path*", "/", {"path": None}),
    ("/:path*", "/a/b/c", {"path": "a/b/c"}),
    ("/docs/:path*", "/docs", {"path": None}),
    ("/docs/:path+", "/docs", None),
    ("/docs/:path+", "/docs/a/b", {"path": "a/b"}),
    ("/post/:id?", "/post", {"id": None}),
    ("/post/:id?", "/post/7", {"id": "7"}),
    ("/a/:id(\\d+)", "/a/12", {"id": "12"}),
    ("/a/:id(\\d+)", "/a/x", None),
    ("/(.*)", "/anything/at/all", {"0": "anything/at/all"}),
    ("/old/(.*)/:x", "/old/a/b/c", {"0": "a/b", "x": "c"}),
    ("/file.html", "/fileXhtml", None),           # a dot is literal
    ("/a\\:b", "/a:b", {}),                       # an escaped colon is literal
    ("/(foo|bar)/:x", "/bar/1", {"0": "bar", "x": "1"}),
    # path-to-regexp 6.1.0 braces and prefixes (routing-utils superstatic.spec.ts)
    ("/feature-{:slug}", "/feature-first", {"slug": "first"}),
    ("/feature-{:slug}", "/feature/first", None),
    ("/docs{/v:version}?", "/docs", {"version": None}),
    ("/docs{/v:version}?", "/docs/v2", {"version": "2"}),
    ("/post{s}?/:id", "/posts/7", {"id": "7"}),
    ("/file.:ext", "/file.txt", {"ext": "txt"}),
    ("/file.:ext?", "/file", {"ext": None}),
    ("/(.*)-:id(\\d+).html", "/hello/post-123.html", {"0": "hello/post", "id": "123"}),
    ("/:path((?!uk/).*)", "/uk/a", None),
    ("404.html", "/404.html", {}),                # `vercel dev` also tries the path without "/"
]


@pytest.mark.parametrize("source,path,expected", PATTERNS)
def test_vercel_pattern(source, path, expected):
    regex, names = siteconfig.vercel_pattern(source)
    found = re.match(regex, path)
    if expected is None:
        assert found is None
    else:
        assert found is not None and dict(zip(names, found.groups(), strict=True)) == expected


def vercel_rule(kind: str, rule: dict) -> dict:
    return compile_config(vercel={kind: [rule]})[kind][0]


# Destinations as routing-utils compiles them (superstatic.spec.ts convertRedirects).
AB_HOST = [{"type": "host", "value": "(?<a>.*)\\.(?<b>.*)"}]
DESTINATIONS = [
    ("/optional/:id?", "/api/optional/:id?", [], "/api/optional/$1"),
    ("/feature-{:slug}", "/blog-{:slug}", [], "/blog-$1"),
    ("/hello/:world", "/somewhere?else={:world}", [], "/somewhere?else=$1"),
    ("/hello/:world*", "/something#:world*", [], "/something#$1"),
    ("/old/:segment/path", "/new/path/:segment", [], "/new/path/$1"),
    ("/hello/:first", "/another/:a/:b", AB_HOST, "/another/$a/$b"),
    ("/(.*)", "https://:subdomain.example.com/some-path/end?a=b",
     [{"type": "host", "value": "(?<subdomain>.*)-test.vercel.app"}],
     "https://$subdomain.example.com/some-path/end?a=b"),
    ("/external/:id", "https://example.com/?utm_source=google.com#/guides/:id/page?dynamic=code", [],
     "https://example.com/?utm_source=google.com#/guides/$1/page?dynamic=code"),
    ("/proxy/(.*)", "https://www.firebase.com", [], "https://www.firebase.com"),
    ("/proxy-port/([a-z]+)", "https://firebase.com:8080/$1", [], "https://firebase.com:8080/$1"),
    ("/projects/:id/:action", "/projects.html", [], "/projects.html"),
    ("/redirect", "/:url", [{"type": "query", "key": "url"}], "/$url"),
    ("/mail/:id", "mailto:team@example.com", [], "mailto:team@example.com"),   # no authority
    ("/t/:id", "https://example.com", [{"type": "query", "key": "q"}], "https://example.com/"),
]


@pytest.mark.parametrize("source,destination,has,expected", DESTINATIONS)
def test_destinations_compile_to_references(source, destination, has, expected):
    rule = vercel_rule("redirects", {"source": source, "destination": destination, "has": has})
    assert rule["destination"] == expected


def test_header_names_and_values_compile_to_references():
    """superstatic.spec.ts convertHeaders: only names the rule binds change."""
    rule = vercel_rule("headers", {"source": "/like/:path", "has": AB_HOST, "headers": [
        {"key": "x-path", "value": ":path"}, {"key": "some:path", "value": "hi"},
        {"key": "x-:b", "value": ":a"}, {"key": "x-test", "value": "some:value* :value? https:"}]})
    assert rule["headers"] == [["x-path", "$1"], ["some$1", "hi"], ["x-$b", "$a"],
                               ["x-test", "some:value* :value? https:"]]
    plain = vercel_rule("headers", {"source": "/(.*)", "headers": [{"key": "x-a", "value": ":a"}]})
    assert plain["headers"] == [["x-a", ":a"]]


def test_javascript_named_groups_become_pythons():
    rule = vercel_rule("rewrites", {"source": "/a", "destination": "/b", "has": [
        {"type": "header", "key": "x-data", "value": "(?<user>.*)-(?<=x)(?<!y)"}]})
    assert rule["has"][0]["value"] == "(?P<user>.*)-(?<=x)(?<!y)"


def test_has_operators_compile_to_one_regex_and_comparisons():
    rule = vercel_rule("redirects", {"source": "/a", "destination": "/b/:v", "has": [
        {"type": "query", "key": "q", "value": {"pre": "a.", "re": "(?<v>.*)", "gte": 2}}]})
    condition = rule["has"][0]
    assert re.fullmatch(condition["value"], "a.5") and not re.fullmatch(condition["value"], "ab5")
    assert condition["compare"] == [("gte", 2.0)]
    assert rule["destination"] == "/b/$v"


def test_rewrite_status_code_is_kept():
    rule = vercel_rule("rewrites", {"source": "/a", "destination": "/b", "statusCode": 201})
    assert rule["status"] == 201


# --- _redirects and _headers -------------------------------------------------------------------

def test_redirects_file_rules():
    warnings: list[str] = []
    rules = siteconfig.parse_redirects_file("""\
# comment

/a            /b
/c            /d            302
/e            /f            200!
/g            /h            !
/i /j 301 # moved; see the changelog
/k            /l#top        302
/store id=:id tag=x /p/:id  301
/blog/*       https://blog.example.com/:splat  301
/api/*        https://api.example.com/:splat   200
https://old.example.com/*  https://new.example.com/:splat  301!
/fr/*         /fr/index.html 200 Country=fr
/en/*         /en/404.html  404
""", warnings)
    assert [(r["destination"], r["status"], r["force"]) for r in rules] == [
        ("/b", 301, False), ("/d", 302, False), ("/f", 200, True), ("/j", 301, False),
        ("/l#top", 302, False), ("/p/:id", 301, False),
        ("https://blog.example.com/:splat", 301, False), ("/en/404.html", 404, False)]
    assert rules[5]["query"] == {"id": ":id", "tag": "x"}
    # `!` alone is not a status (Netlify's line_parser.js), proxy, domain-level rule, country
    assert len(warnings) == 4 and "line 6: '!' is not a status code" in warnings[0]


def test_a_2xx_splat_rule_may_leave_out_its_destination():
    """Netlify's forwarding rule: `/admin/* 200` serves the path itself, and being the first
    match it keeps those paths out of a later catch-all."""
    config = compile_config(redirects="/admin/*  200\n/*  /index.html  200\n")
    rule = config["netlify_redirects"][0]
    assert (rule["destination"], rule["status"], rule["force"]) == ("/admin/:splat", 200, False)
    files = {name: {"sha256": "0" * 64, "size": 1, "type": "text/html; charset=utf-8"}
             for name in ("index.html", "admin/users.html")}
    site = {"files": files, "config": config}
    assert resolve("GET", "/admin/users", {}, site).file == "admin/users.html"
    assert resolve("GET", "/admin/missing", {}, site).status == 404
    assert resolve("GET", "/elsewhere", {}, site).file == "index.html"


@pytest.mark.parametrize("source,path,expected", [
    ("/news/*", "/news/a/b", {"splat": "a/b"}),
    ("/news/*", "/news", {"splat": None}),
    ("/news/*", "/newsroom", None),
    ("/*", "/", {"splat": ""}),
    ("/*", "/x/y", {"splat": "x/y"}),
    ("/blog/:year/:month/", "/blog/2024/05", {"year": "2024", "month": "05"}),
    ("/blog/:year", "/blog/2024/05", None),
    ("/", "/", {}),
    ("/a.html", "/aXhtml", None),
    ("/img/*.png", "/img/a/b.png", {"splat": "a/b"}),   # Cloudflare Pages: a splat inside a segment
    ("/some%20page", "/some page", {}),                 # matched decoded, as requests are
    ("/caf%C3%A9/*", "/café/menu", {"splat": "menu"}),
    ("/a%2Fb", "/a/b", None),                           # an encoded "/" stays encoded
    ("/a%2Ab", "/a*b", {}),                             # an encoded "*" is no splat
    ("/a%2Ab", "/axb", None),
])
def test_splat_pattern(source, path, expected):
    regex, names = siteconfig.splat_pattern(source)
    found = re.match(regex, path)
    if expected is None:
        assert found is None
    else:
        assert found is not None and dict(zip(names, found.groups(), strict=True)) == expected


def test_headers_file_blocks():
    warnings: list[str] = []
    rules = siteconfig.parse_headers_file("""\
# security
/*
  X-Frame-Options: DENY
  Content-Security-Policy: default-src 'self'; img-src *

/assets/*
\tCache-Control: public, max-age=60
  ! X-Frame-Options
https://:project.pages.dev/*
  X-Robots-Tag: noindex
""", warnings)
    assert [rule["headers"] for rule in rules] == [
        [["X-Frame-Options", "DENY"], ["Content-Security-Policy", "default-src 'self'; img-src *"]],
        [["Cache-Control", "public, max-age=60"]]]
    assert rules[1]["detach"] == ["x-frame-options"]
    assert len(warnings) == 1 and "host-specific" in warnings[0]


def test_the_dialect_decides_how_redirects_are_read():
    """docs/DECISIONS.md#dialects: the same line is a 301 on Netlify, a 302 applied before
    files on Cloudflare Pages; a Netlify-only line is skipped with a warning on Cloudflare."""
    text = "/a /b\n/c id=:id /d 301!\n"
    netlify = compile_config(redirects=text)
    assert [(r["status"], r["force"]) for r in netlify["netlify_redirects"]] == [(301, False), (301, True)]
    assert netlify["warnings"] == [] and netlify["dialect"] == "netlify"
    cloudflare = compile_config(percel={"dialect": "cloudflare"}, redirects=text)
    assert [(r["status"], r["force"]) for r in cloudflare["netlify_redirects"]] == [(302, True)]
    assert cloudflare["dialect"] == "cloudflare"
    assert cloudflare["warnings"] == ["_redirects line 2: expected `from to [status]` (2 or 3 "
                                      "tokens), got 4; line skipped"]


# --- netlify.toml ----------------------------------------------------------------------------

def toml_redirect(body: str) -> tuple[list, list[str]]:
    config = compile_config(netlify_toml="[[redirects]]\n" + body)
    return config["netlify_redirects"], config["warnings"]


@pytest.mark.parametrize("body,expected", [
    # (destination, status, force, query) of the one rule kept
    ('from = "/a"\nto = "/b"', ("/b", 301, False, {})),                 # Netlify's default 301
    ('from = "/a"\nto = "/b"\nstatus = 302', ("/b", 302, False, {})),
    ('from = "/a"\nto = "/b"\nstatus = 200\nforce = true', ("/b", 200, True, {})),
    ('from = "/a"\nto = "/b"\nforce = false', ("/b", 301, False, {})),
    ('from = "/*"\nto = "/index.html"\nstatus = 200', ("/index.html", 200, False, {})),
    ('from = "/en/*"\nto = "/en/404.html"\nstatus = 404', ("/en/404.html", 404, False, {})),
    ('from = "/store"\nto = "/p/:id"\nquery = {id = ":id", tag = "x"}',
     ("/p/:id", 301, False, {"id": ":id", "tag": "x"})),
    ('from = "/app/*"\nstatus = 200', ("/app/:splat", 200, False, {})),  # forwarding: no `to`
    ('from = " /a "\nto = " /b "', ("/b", 301, False, {})),
    ('from = "/a"\nto = "/b"\nconditions = {}', ("/b", 301, False, {})),  # no condition at all
])
def test_netlify_toml_redirect_fields(body, expected):
    rules, warnings = toml_redirect(body)
    assert [(r["destination"], r["status"], r["force"], r["query"]) for r in rules] == [expected]
    assert warnings == []


@pytest.mark.parametrize("body,kept,warning", [
    ('from = "/fr/*"\nto = "/fr/:splat"\nstatus = 200\nconditions = {Country = ["FR"]}', False,
     r"redirects\[0\]: conditions \(Country\) are not supported; rule ignored"),
    ('from = "/a"\nto = "/b"\nconditions = {Role = ["admin"], Language = ["en"]}', False,
     r"conditions \(Language, Role\)"),
    ('from = "/api/*"\nto = "https://api.example.com/:splat"\nstatus = 200', False,
     r"redirects\[0\]: proxying to 'https://api.example.com/:splat' is not supported"),
    ('from = "https://old.example.com/*"\nto = "https://new.example.com/:splat"', False,
     r"only path rules are supported"),
    ('from = "/a"\nto = "/b"\nheaders = {X-From = "Netlify"}', True,
     r"redirects\[0\]: headers are request headers for proxied rules; ignored"),
    ('from = "/a"\nto = "/b"\nsigned = "API_SIGNATURE_TOKEN"', True, r"signed applies to proxied rules only"),
    ('from = "/a"\nto = "/b"\nstauts = 302', True, r"redirects\[0\]: unknown key 'stauts' ignored"),
])
def test_netlify_toml_unsupported_redirects_become_warnings(body, kept, warning):
    rules, warnings = toml_redirect(body)
    assert len(rules) == int(kept)
    assert len(warnings) == 1 and re.search(warning, warnings[0]), warnings


def test_netlify_toml_headers():
    config = compile_config(netlify_toml='''\
[build]
command = "npm run build"
publish = "dist"

[[headers]]
for = "/*"
[headers.values]
X-Frame-Options = "DENY"
cache-control = \'\'\'
  max-age=0,
  no-cache,
  must-revalidate\'\'\'

[[headers]]
for = "/assets/*"
  [headers.values]
  Link = ["</a.css>; rel=preload", " </b.js>; rel=preload "]

[[headers]]
for = "https://example.com/*"
values = {X-Robots-Tag = "noindex"}

[[headers]]
for = "/empty"
''')
    assert [rule["headers"] for rule in config["netlify_headers"]] == [
        [["X-Frame-Options", "DENY"], ["cache-control", "max-age=0, no-cache, must-revalidate"]],
        [["Link", "</a.css>; rel=preload, </b.js>; rel=preload"]]]
    assert all(rule["detach"] == [] for rule in config["netlify_headers"])
    # A rule without values is dropped silently, as Netlify does (headers-parser normalize.ts).
    assert len(config["warnings"]) == 1
    assert "headers[2]: host-specific rules are not supported" in config["warnings"][0]


def test_netlify_toml_only_its_routing_keys_are_read():
    config = compile_config(netlify_toml='[build]\nbase = "site"\n[context.production]\ncommand = "x"\n')
    assert config == compile_config()


def test_netlify_toml_rules_follow_the_files_rules():
    """Netlify processes `_redirects` before netlify.toml, and `_headers` before [[headers]]."""
    config = compile_config(
        redirects="/a /from-file 302\n",
        headers="/*\n  X-Source: file\n",
        netlify_toml='[[redirects]]\nfrom = "/a"\nto = "/from-toml"\n'
                     '[[redirects]]\nfrom = "/b"\nto = "/from-toml"\n'
                     '[[headers]]\nfor = "/*"\nvalues = {X-Source = "toml", X-Toml = "yes"}\n')
    assert [rule["destination"] for rule in config["netlify_redirects"]] == [
        "/from-file", "/from-toml", "/from-toml"]
    files = {key: {"sha256": "0" * 64, "size": 1, "type": "text/html; charset=utf-8"}
             for key in ("index.html",)}
    site = {"files": files, "config": config}
    assert resolve("GET", "/a", {}, site).location == "/from-file"    # the file's rule wins
    assert resolve("GET", "/b", {}, site).location == "/from-toml"
    served = resolve("GET", "/", {}, site)
    # netlify.toml's value of a name wins (netlify/build packages/headers-parser/src/merge.ts)
    assert served.header("X-Source") == "toml"
    assert served.header("X-Toml") == "yes"


def test_netlify_toml_vue_spa_fallback_and_headers_drive_the_resolver(dirs):
    """A Vue app keeps its SPA fallback in netlify.toml: deep links get index.html, a missing
    hashed bundle still gets a 404, and [[headers]] apply."""
    project, output = dirs
    write(output, "assets/index-B1a2c3D4.js", "js")
    write(project, "netlify.toml", '''\
[build]
  command = "npm run build"
  publish = "dist"

[[redirects]]
  from = "/*"
  to = "/index.html"
  status = 200

[[headers]]
  for = "/*"
  [headers.values]
    X-Frame-Options = "DENY"
''')
    config = json.loads(json.dumps(build_site_config(output, project, spa_default=False)))
    assert config["spa"] is False and config["warnings"] == []
    files = {name: {"sha256": "0" * 64, "size": 1, "type": "text/html; charset=utf-8"}
             for name in ("index.html", "assets/index-B1a2c3D4.js")}
    site = {"files": files, "config": config}
    deep = resolve("GET", "/users/42/settings", {}, site)
    assert (deep.status, deep.file) == (200, "index.html")
    assert deep.header("X-Frame-Options") == "DENY"
    asset = resolve("GET", "/assets/index-B1a2c3D4.js", {}, site)
    assert (asset.status, asset.file, asset.header("X-Frame-Options")) == (
        200, "assets/index-B1a2c3D4.js", "DENY")
    assert resolve("GET", "/assets/index-OLDHASH1.js", {}, site).status == 404


def test_netlify_toml_is_read_from_the_project_directory_not_the_output(dirs):
    project, output = dirs
    write(output, "netlify.toml", '[[redirects]]\nfrom = "/out"\nto = "/"\n')
    assert build_site_config(output, project, False)["netlify_redirects"] == []
    write(project, "netlify.toml", '[[redirects]]\nfrom = "/project"\nto = "/"\n')
    assert build_site_config(output, project, False)["netlify_redirects"][0]["regex"] == "^/project$"


def test_a_plain_static_repo_hides_its_netlify_toml(tmp_path):
    write(tmp_path, "index.html", "hi")
    write(tmp_path, "netlify.toml", '[[headers]]\nfor = "/*"\nvalues = {X-A = "1"}\n')
    config = build_site_config(tmp_path, tmp_path, spa_default=False)
    assert "netlify.toml" in config["hidden"]
    files = {name: {"sha256": "0" * 64, "size": 1, "type": "text/plain"}
             for name in ("index.html", "netlify.toml")}
    assert resolve("GET", "/netlify.toml", {}, {"files": files, "config": config}).status == 404


@pytest.mark.parametrize("text", ["[[redirects]\nfrom = '/a'\n", "[[redirects]]\nfrom = '/a'\nfrom = '/b'\n"])
def test_invalid_toml_fails_the_build(dirs, text):
    """A netlify.toml that is not TOML cannot be read at all; Netlify's build stops too."""
    project, output = dirs
    write(project, "netlify.toml", text)
    with pytest.raises(SiteConfigError, match=r"netlify\.toml: invalid TOML"):
        build_site_config(output, project, spa_default=True)


@pytest.mark.parametrize("text,message", [
    ('redirects = "/a /b"\n', r"netlify\.toml: redirects must be an array of tables \(\[\[redirects\]\]\)"),
    ('redirects = ["/a"]\n', r"netlify\.toml: redirects\[0\] must be a table; rule skipped"),
    ("[redirects]\nfrom = '/a'\n", r"redirects must be an array of tables"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\n[[redirects]]\nto = '/c'\n",
     r"netlify\.toml: redirects\[1\]: from must be a non-empty string; rule skipped"),
    ("[[redirects]]\nfrom = '/a'\n", r"redirects\[0\]: to must be a non-empty string"),
    ("[[redirects]]\nfrom = '/a/*'\nstatus = 301\n", r"redirects\[0\]: to must be"),  # forwarding is 2xx only
    ("[[redirects]]\nfrom = '/a'\nto = ''\n", r"redirects\[0\]: to must be a non-empty string"),
    ("[[redirects]]\nfrom = 5\nto = '/b'\n", r"redirects\[0\]: from must be a non-empty string"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nstatus = 'soon'\n", r"redirects\[0\]: status must be a number"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nstatus = true\n", r"redirects\[0\]: status must be a number"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nstatus = 399\n", r"redirects\[0\]: unsupported status 399"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nstatus = 700\n", r"redirects\[0\]: unsupported status 700"),
    ("[[redirects]]\nfrom = '/.netlify/functions/x'\nto = '/b'\n", r"/\.netlify are Netlify's own"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nforce = 'yes'\n", r"redirects\[0\]: force must be true or false"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nquery = 'id=:id'\n", r"redirects\[0\]: query must be a table of strings"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nquery = {id = 1}\n", r"query must be a table of strings"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nconditions = ['US']\n", r"redirects\[0\]: conditions must be a table"),
    ("[[redirects]]\nfrom = '/a'\nto = '/b'\nheaders = ['X-A: 1']\n", r"redirects\[0\]: headers must be a table"),
    ('headers = {for = "/*"}\n', r"netlify\.toml: headers must be an array of tables"),
    ("[[headers]]\nvalues = {X-A = '1'}\n", r"netlify\.toml: headers\[0\]: for must be a non-empty string"),
    ("[[headers]]\nfor = '/*'\nvalues = 'X-A: 1'\n", r"headers\[0\]: values must be a table"),
    ("[[headers]]\nfor = '/*'\nvalues = {X-A = 1}\n",
     r"headers\[0\]\.values: the value of 'X-A' must be a string or an array of strings"),
    ("[[headers]]\nfor = '/*'\nvalues = {X-A = ['a', 2]}\n", r"must be a string or an array of strings"),
    ("[[headers]]\nfor = '/*'\nvalues = {'' = '1'}\n", r"headers\[0\]\.values: a header name is empty"),
    ("[[headers]]\nfor = '/*'\nvalues = {Content-Length = '1'}\n",
     r"headers\[0\]\.values: header 'Content-Length' is set by the server"),
    ("[[headers]]\nfor = '/*'\nvalues = {'Bad Name' = '1'}\n", r"'Bad Name' is not a valid header name"),
    ("[[headers]]\nfor = '/*'\n[headers.values]\nX-A = \'\'\'\nline one\nline two\'\'\'\n",
     r"headers\[0\]\.values: the value of 'X-A' must be a single-line string"),
    ("[[headers]]\nfor = '/*'\nvalues = {X-Note = 'café'}\n", r"printable ASCII"),
])
def test_netlify_toml_rules_netlify_reports_are_skipped_with_a_warning(dirs, text, message):
    """As Netlify's parsers report a rule they cannot read and deploy the others
    (redirect-parser/tests/netlify-config-parser.test.ts), percel skips it with a warning."""
    project, output = dirs
    tables = text.startswith("[[")   # then a good rule after the bad one still applies
    write(project, "netlify.toml", text + ("[[redirects]]\nfrom = '/ok'\nto = '/fine'\n" if tables else ""))
    config = build_site_config(output, project, spa_default=False)
    assert len(config["warnings"]) == 1 and re.search(message, config["warnings"][0]), config["warnings"]
    destinations = [rule["destination"] for rule in config["netlify_redirects"]]
    assert destinations in (["/fine"], ["/b", "/fine"]) if tables else destinations == []
    assert config["netlify_headers"] == []


@pytest.mark.parametrize("body,expected", [
    ("origin = '/a'\nto = '/b'", ("/b", 301)),
    ("from = '/a'\ndestination = '/b'", ("/b", 301)),
    ("from = '/a'\nto = '/b'\nstatus = '302'", ("/b", 302)),
    ("from = '/(a+)+b'\nto = '/b'", ("/b", 301)),   # a splat path is escaped: cheap and valid
])
def test_netlify_toml_old_key_names_and_string_statuses(body, expected):
    """normalize.js still reads origin/destination and parses a status written as a string."""
    rules, warnings = toml_redirect(body)
    assert [(rule["destination"], rule["status"]) for rule in rules] == [expected] and warnings == []


def test_netlify_toml_rule_caps(dirs):
    project, output = dirs
    write(project, "netlify.toml", "[[redirects]]\nfrom = '/a'\nto = '/b'\n" * 2048)
    assert len(build_site_config(output, project, False)["netlify_redirects"]) == 2048
    write(project, "netlify.toml", "[[headers]]\nfor = '/a'\nvalues = {X-A = '1'}\n" * 2049)
    config = build_site_config(output, project, False)
    assert len(config["netlify_headers"]) == 2048
    assert config["warnings"] == ["netlify.toml: headers has 2049 rules; the limit is 2048; the "
                                  "rest skipped"]


def test_html_handling_default_follows_vercel_switches():
    """auto-trailing-slash unless vercel.json's cleanUrls/trailingSlash decide; both deciding is
    refused, since trailingSlash: false against force-trailing-slash redirects in circles."""
    assert compile_config()["html_handling"] == "auto-trailing-slash"
    assert compile_config(vercel={"cleanUrls": True})["html_handling"] == "none"
    assert compile_config(vercel={"trailingSlash": False})["html_handling"] == "none"
    assert compile_config(percel={"html_handling": "drop-trailing-slash"})["html_handling"] == \
        "drop-trailing-slash"
    assert compile_config(vercel={"cleanUrls": True},
                          percel={"html_handling": "none"})["html_handling"] == "none"
    with pytest.raises(SiteConfigError, match="html_handling"):
        compile_config(vercel={"trailingSlash": False},
                       percel={"html_handling": "force-trailing-slash"})
