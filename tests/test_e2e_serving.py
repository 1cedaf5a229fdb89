"""End to end: static sites deployed over HTTP, then browsed over HTTP as a user's browser would.

Three plain static repos (no npm, so they deploy in seconds) cover the routing rules users
rely on on Vercel, Netlify and Cloudflare Pages: a vercel.json site, a Netlify-format site
(_redirects / _headers / netlify.toml) and a SPA. Every request goes through the API server
`make run` starts (gunicorn over devstack/wsgi.py). The local stage reports the handler's bucket GETs so far in
X-Percel-Bucket-Reads: warm requests must not move it (docs/DECISIONS.md#content-addressed).
"""
from __future__ import annotations

import gzip
import json
import re
import socket

import brotli
import pytest

from tests.conftest import commit_all, copy_tree, make_repo, site_host

READS = "X-Percel-Bucket-Reads"
REVALIDATE = "public, max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"
HASHED_JS = "assets/index-B7xQ9zKp.js"
SCRIPT = b"console.log('hello from a hashed bundle');\n" * 100
DATA = bytes(range(256)) * 16

VERCEL_SITE = {
    "index.html": "<h1>vercel home</h1>",
    "about.html": "<h1>about us</h1>",
    "blog/index.html": "<h1>blog</h1>",
    "blog/hello.html": "<h1>hello post</h1>",
    "docs/guide.html": "<h1>the guide</h1>",
    "docs/real.html": "<h1>a real page</h1>",
    "404.html": "<h1>custom not found</h1>",
    HASHED_JS: SCRIPT,
    "styles/site.css": "body { color: #333; margin: 0 auto; }\n" * 40,
    "data/blob.bin": DATA,
    "data/cold.bin": DATA[::-1],      # requested by one test only: its first GET is a cache miss
    ".well-known/apple-app-site-association": '{"applinks": {"details": []}}',
    "vercel.json": json.dumps({
        "cleanUrls": True,
        "redirects": [{"source": "/old-blog/:slug", "destination": "/blog/:slug",
                       "permanent": False},
                      {"source": "/menu", "destination": "/café#today"},
                      {"source": "/split", "destination": "/about\r\nSet-Cookie: session=evil"}],
        "rewrites": [{"source": "/docs/:page", "destination": "/docs/guide.html"}],
        "headers": [
            {"source": "/(.*)", "headers": [{"key": "X-Frame-Options", "value": "DENY"}]},
            {"source": "/assets/(.*)", "headers": [{"key": "X-Asset", "value": "yes"}]},
            {"source": "/docs/(.*)",
             "headers": [{"key": "Cache-Control", "value": "public, max-age=60"}]},
            {"source": "/.well-known/apple-app-site-association",
             "headers": [{"key": "Content-Type", "value": "application/pkcs7-mime"}]}]}),
}

NETLIFY_SITE = {
    "index.html": "<h1>netlify home</h1>",
    "blog/first.html": "<h1>first post</h1>",
    "app/index.html": "<h1>the app shell</h1>",
    "forced.html": "<h1>never seen: a forced rule shadows me</h1>",
    "shadowed.html": "<h1>shadowed file wins</h1>",
    HASHED_JS: SCRIPT,
    "_redirects": "\n".join([
        "# Netlify format: from to [status][!]",
        "/home            /                 301",
        "/news/*          /blog/:splat      302",
        "/posts/:year/:slug  /blog/:slug",
        "/app/*           /app/index.html   200",
        "/forced.html     /index.html       200!",
        "/shadowed        /index.html       301",
    ]) + "\n",
    "_headers": "\n".join([
        "/*",
        "  X-Robots-Tag: nosnippet",
        "/assets/*",
        "  X-Robots-Tag: noindex",
        "  Access-Control-Allow-Origin: *",
    ]) + "\n",
    "netlify.toml": "\n".join([
        "[build]",
        '  publish = "."',
        "[[redirects]]",                   # shadowed: `_redirects` rules come first
        '  from = "/home"',
        '  to = "/blog/first"',
        "[[redirects]]",
        '  from = "/toml-news/*"',
        '  to = "/blog/:splat"',
        "  status = 308",
        "[[headers]]",
        '  for = "/blog/*"',
        "  [headers.values]",
        '  X-Toml = "yes"',
    ]) + "\n",
}

SPA_SITE = {
    "index.html": '<div id="root"></div><script src="/assets/index-B7xQ9zKp.js"></script>',
    HASHED_JS: SCRIPT,
    "percel.json": json.dumps({"spa": True}),
}


def deploy_all(http, tmp_path_factory, sites: dict[str, dict]) -> dict[str, str]:
    """Queue every site first, then wait: the runner builds them back to back."""
    ids = {}
    for name, files in sites.items():
        url = make_repo(tmp_path_factory.mktemp(name), files)
        status, created = http.json("POST", "/api/deployments", {"repo_url": url})
        assert status == 202, created
        ids[name] = created["id"]
    for name, deployment_id in ids.items():
        record = http.wait_for(deployment_id, timeout=180)
        assert record["status"] == "deployed", (name, record.get("error"))
    return ids


@pytest.fixture(scope="module")
def sites(http, tmp_path_factory) -> dict[str, str]:
    return deploy_all(http, tmp_path_factory,
                      {"vercel": VERCEL_SITE, "netlify": NETLIFY_SITE, "spa": SPA_SITE})


@pytest.fixture(scope="module")
def browse(http, stack, sites):
    """browse(site, path, method="GET", **headers) -> (status, headers, body)."""
    def request(site: str, path: str, method: str = "GET", **headers: str):
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return http.request(method, path, host=site_host(stack, sites[site]), headers=named)
    return request


# --- vercel.json -----------------------------------------------------------------------------

def test_clean_urls_serve_pages_and_redirect_html_names(browse):
    status, headers, body = browse("vercel", "/about")
    assert (status, body) == (200, b"<h1>about us</h1>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert browse("vercel", "/blog")[2] == b"<h1>blog</h1>"
    for path, clean in (("/about.html", "/about"), ("/blog/index.html", "/blog"),
                        ("/blog/index", "/blog"), ("/index.html", "/")):
        status, headers, _ = browse("vercel", path)
        assert (status, headers["Location"]) == (308, clean), path


def test_redirect_with_a_param_keeps_the_query(browse):
    status, headers, body = browse("vercel", "/old-blog/hello?ref=mail")
    assert status == 307 and headers["Location"] == "/blog/hello?ref=mail"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"Redirecting to /blog/hello?ref=mail\n"
    assert browse("vercel", "/blog/hello")[2] == b"<h1>hello post</h1>"


def test_redirect_locations_are_encoded_and_never_split(stack, sites):
    # A CR/LF in a destination used to end the Location line and set a cookie on the visitor;
    # a non-ASCII one made the server drop the connection without an answer.
    host = site_host(stack, sites["vercel"])
    for path, location in (("/split", b"/about%0D%0ASet-Cookie:%20session=evil"),
                           ("/menu?x=1", b"/caf%C3%A9?x=1#today")):
        raw = raw_exchange(stack.port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                                       "Accept: */*\r\nConnection: close\r\n\r\n")
        head = raw.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 308"), (path, head)
        assert re.findall(rb"(?im)^location: *([^\r\n]*)", head) == [location]
        assert not re.search(rb"(?im)^set-cookie", head)


def test_a_header_rule_sets_the_content_type_of_get_head_and_304(browse):
    path = "/.well-known/apple-app-site-association"
    status, headers, body = browse("vercel", path)
    assert status == 200 and body == VERCEL_SITE[path[1:]].encode()
    assert headers["Content-Type"] == "application/pkcs7-mime"
    assert browse("vercel", path, "HEAD")[1]["Content-Type"] == "application/pkcs7-mime"
    status, headers, _ = browse("vercel", path, if_none_match=headers["ETag"])
    assert status == 304 and headers["Content-Type"] == "application/pkcs7-mime"


def test_the_host_header_in_any_case_or_fully_qualified_selects_the_site(stack, sites):
    host = site_host(stack, sites["vercel"])
    name, port = host.rsplit(":", 1)
    for variant in (host.upper(), f"{name}.:{port}"):
        raw = raw_exchange(stack.port, f"GET /about HTTP/1.1\r\nHost: {variant}\r\n"
                                       "Accept: */*\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"<h1>about us</h1>"), variant
    # X-Forwarded-Host is the client's to set: it never selects a site.
    raw = raw_exchange(stack.port, f"GET /about HTTP/1.1\r\nHost: localhost:{port}\r\n"
                                   f"X-Forwarded-Host: {host}\r\nAccept: */*\r\n"
                                   "Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404") and b"about us" not in raw


def test_rewrite_applies_only_when_no_file_matches(browse):
    status, headers, body = browse("vercel", "/docs/anything")
    assert (status, body) == (200, b"<h1>the guide</h1>") and "Location" not in headers
    assert browse("vercel", "/docs/real")[2] == b"<h1>a real page</h1>"


def test_header_rules_merge_and_can_override_cache_control(browse):
    _, headers, _ = browse("vercel", "/" + HASHED_JS)
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Asset"] == "yes"
    assert headers["Cache-Control"] == IMMUTABLE
    _, headers, _ = browse("vercel", "/docs/real")
    assert headers["Cache-Control"] == "public, max-age=60" and headers["X-Frame-Options"] == "DENY"


def test_custom_404_page_with_status_404(browse):
    status, headers, body = browse("vercel", "/no/such/page")
    assert (status, body) == (404, b"<h1>custom not found</h1>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Frame-Options"] == "DENY"      # header rules apply to the 404 page too


def test_config_files_are_not_served(browse):
    assert browse("vercel", "/vercel.json")[0] == 404
    assert browse("spa", "/percel.json")[0] == 404


# --- HTTP: caching, validators, ranges, encodings, HEAD -----------------------------------------

def test_cache_control_immutable_for_hashed_assets_only(browse):
    assert browse("vercel", "/" + HASHED_JS)[1]["Cache-Control"] == IMMUTABLE
    for path in ("/", "/about", "/styles/site.css", "/data/blob.bin"):
        assert browse("vercel", path)[1]["Cache-Control"] == REVALIDATE, path


def test_etag_gives_304_without_a_body(browse):
    status, headers, _ = browse("vercel", "/styles/site.css")
    etag = headers["ETag"]
    assert status == 200 and re.fullmatch(r'"[0-9a-f]{32}"', etag)
    status, headers, body = browse("vercel", "/styles/site.css", if_none_match=etag)
    assert (status, body) == (304, b"")
    assert headers["ETag"] == etag and headers["Cache-Control"] == REVALIDATE
    # The file's own type, not the `application/json` a front end adds when it is absent.
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert browse("vercel", "/styles/site.css", if_none_match='"other"')[0] == 200


def test_single_range_is_206_and_unsatisfiable_is_416(browse):
    status, headers, body = browse("vercel", "/data/blob.bin", range="bytes=100-199")
    assert status == 206 and body == DATA[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    status, _, body = browse("vercel", "/data/blob.bin", range="bytes=-10")
    assert status == 206 and body == DATA[-10:]
    status, headers, _ = browse("vercel", "/data/blob.bin", range=f"bytes={len(DATA)}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_br_and_gzip_by_accept_encoding_with_vary(browse):
    css = VERCEL_SITE["styles/site.css"].encode()
    status, headers, body = browse("vercel", "/styles/site.css", accept_encoding="gzip, br")
    assert status == 200 and headers["Content-Encoding"] == "br"
    assert brotli.decompress(body) == css and headers["Vary"] == "Accept-Encoding"
    status, headers, body = browse("vercel", "/styles/site.css", accept_encoding="gzip")
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == css
    status, headers, body = browse("vercel", "/styles/site.css", accept_encoding="identity")
    assert "Content-Encoding" not in headers and body == css
    assert headers["Vary"] == "Accept-Encoding"


def test_head_has_the_headers_and_no_body(stack, sites):
    # urllib would not notice a body sent after a HEAD response; read the raw bytes instead.
    host = site_host(stack, sites["vercel"])
    raw = raw_exchange(stack.port, f"HEAD /styles/site.css HTTP/1.1\r\nHost: {host}\r\n"
                                   "Accept: */*\r\nConnection: close\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and rest == b""
    length = len(VERCEL_SITE["styles/site.css"].encode())
    lengths = re.findall(rb"(?im)^content-length: *(\d+)", head)
    assert lengths == [str(length).encode()]     # the GET's length, once (RFC 9110 §9.3.2)


def test_a_get_carries_one_content_length(stack, sites):
    # Two copies make strict clients (wrk, Node's llhttp) reject the response outright.
    host = site_host(stack, sites["vercel"])
    raw = raw_exchange(stack.port, f"GET /about HTTP/1.1\r\nHost: {host}\r\n"
                                   "Accept: */*\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert re.findall(rb"(?im)^content-length: *(\d+)", head) == [str(len(body)).encode()]
    assert body == b"<h1>about us</h1>"


def raw_exchange(port: int, request: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --- path safety ---------------------------------------------------------------------------

@pytest.mark.parametrize("path, statuses", [
    ("/..%2fvercel.json", {400}),
    ("/%2e%2e/%2e%2e/etc/passwd", {404}),
    ("/../vercel.json", {400, 404}),
    ("/about%00.html", {400}),
    ("/%ff%fe", {400}),
    ("/" + "a" * 2000, {400}),
    ("/docs%5c..%5cvercel.json", {400}),
])
def test_unsafe_paths_are_refused_without_touching_storage(browse, path, statuses):
    before = int(browse("vercel", "/")[1][READS])
    status, headers, _ = browse("vercel", path)
    assert status in statuses, (path, status)
    assert int(headers[READS]) == before


# --- _redirects / _headers (Netlify, Cloudflare Pages) -------------------------------------------

def test_netlify_redirects_statuses_and_splats(browse):
    assert browse("netlify", "/home")[:2][0] == 301
    assert browse("netlify", "/home")[1]["Location"] == "/"
    status, headers, _ = browse("netlify", "/news/first")
    assert (status, headers["Location"]) == (302, "/blog/first")
    status, headers, _ = browse("netlify", "/posts/2024/first")
    assert (status, headers["Location"]) == (301, "/blog/first")


def test_netlify_200_rewrite_serves_the_target_in_place(browse):
    status, headers, body = browse("netlify", "/app/settings/profile")
    assert (status, body) == (200, b"<h1>the app shell</h1>") and "Location" not in headers


def test_netlify_force_shadows_a_file_and_plain_rules_do_not(browse):
    assert browse("netlify", "/forced.html")[2] == b"<h1>netlify home</h1>"
    status, _, body = browse("netlify", "/shadowed")
    assert (status, body) == (200, b"<h1>shadowed file wins</h1>")


def test_a_page_has_one_address_by_default(browse):
    """No vercel.json cleanUrls/trailingSlash: Cloudflare Pages' auto-trailing-slash
    (docs/DECISIONS.md#html-handling); the other addresses of a page redirect to it."""
    status, headers, _ = browse("netlify", "/shadowed.html?ref=1")
    assert (status, headers["Location"]) == (308, "/shadowed?ref=1")
    status, headers, _ = browse("netlify", "/blog/first/")
    assert (status, headers["Location"]) == (308, "/blog/first")
    status, headers, _ = browse("netlify", "/app")
    assert (status, headers["Location"]) == (308, "/app/")
    assert browse("netlify", "/app/")[2] == b"<h1>the app shell</h1>"
    assert browse("netlify", "/index.html")[1]["Location"] == "/"


def test_netlify_headers_of_every_matching_block_apply_and_a_later_value_wins(browse):
    """Netlify merges the matching blocks into one set, a later block's value of a name
    replacing an earlier one (docs/DECISIONS.md#dialects; Cloudflare would join them)."""
    _, headers, _ = browse("netlify", "/" + HASHED_JS)
    assert headers["X-Robots-Tag"] == "noindex"
    assert headers["Access-Control-Allow-Origin"] == "*"
    _, headers, _ = browse("netlify", "/")
    assert headers["X-Robots-Tag"] == "nosnippet" and "Access-Control-Allow-Origin" not in headers


def test_netlify_config_files_are_not_served(browse):
    assert browse("netlify", "/_redirects")[0] == 404
    assert browse("netlify", "/_headers")[0] == 404
    assert browse("netlify", "/netlify.toml")[0] == 404


def test_netlify_toml_rules_apply_after_the_files_rules(browse):
    assert browse("netlify", "/home")[1]["Location"] == "/"
    status, headers, body = browse("netlify", "/toml-news/first")
    assert (status, headers["Location"]) == (308, "/blog/first")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"Redirecting to /blog/first\n"
    status, head, body = browse("netlify", "/toml-news/first", "HEAD")
    assert (status, body, head["Content-Length"]) == (308, b"", headers["Content-Length"])
    _, headers, _ = browse("netlify", "/blog/first")
    assert headers["X-Toml"] == "yes" and headers["X-Robots-Tag"] == "nosnippet"


# --- SPA mode --------------------------------------------------------------------------------

def test_spa_deep_links_serve_index_html(browse):
    index = SPA_SITE["index.html"].encode()
    for path in ("/", "/dashboard", "/users/42/settings", "/deep/link/"):
        status, headers, body = browse("spa", path)
        assert (status, body) == (200, index), path
        assert headers["Cache-Control"] == REVALIDATE


def test_spa_never_answers_a_missing_asset_with_html(browse):
    for path in ("/assets/x.js", "/assets/index-Old12345.js", "/favicon.ico", "/logo.png"):
        status, headers, _ = browse("spa", path)
        assert status == 404, path
        assert not headers["Content-Type"].startswith("text/html")
    status, _, body = browse("spa", "/" + HASHED_JS)
    assert (status, body) == (200, SCRIPT)


# --- the handler's caches ------------------------------------------------------------------

def test_warm_requests_make_no_bucket_call(browse, stack_s3_calls):
    """Checked twice: by the handler's own counter and at the S3 endpoint itself."""
    for path in ("/", "/about", "/" + HASHED_JS, "/no/such/page"):
        browse("vercel", path)
    _, headers, _ = browse("vercel", "/styles/site.css")
    before = headers[READS]
    etag = headers["ETag"]
    stack_s3_calls.wait_quiet()  # a runner may still be archiving the last build's log
    mark = stack_s3_calls.mark()
    checks = [
        browse("vercel", "/about"),                                    # cache hit
        browse("vercel", "/" + HASHED_JS),                             # cache hit
        browse("vercel", "/styles/site.css", if_none_match=etag),      # 304
        browse("vercel", "/about.html"),                               # cleanUrls redirect
        browse("vercel", "/old-blog/x"),                               # redirect rule
        browse("vercel", "/data/cold.bin", "HEAD"),                    # HEAD of a cold file
        browse("vercel", "/no/such/page", if_none_match=etag),         # 404 page, already cached
        browse("vercel", "/data/cold.bin"),                            # cold file: 1 read
    ]
    assert [c[0] for c in checks] == [200, 200, 304, 308, 307, 200, 404, 200]
    assert [c[1][READS] for c in checks[:-1]] == [before] * 7
    assert int(checks[-1][1][READS]) == int(before) + 1
    calls = stack_s3_calls.since(mark)
    assert [(c.method, c.key.split("/")[0]) for c in calls] == [("GET", "blobs")], calls


@pytest.mark.slow
def test_vite_hashed_assets_are_immutable_and_html_revalidates(http, stack, vite_react_source,
                                                               tmp_path):
    repo = copy_tree(vite_react_source, tmp_path / "vite-react")
    commit_all(repo)
    status, created = http.json("POST", "/api/deployments", {"repo_url": f"file://{repo}"})
    assert status == 202
    record = http.wait_for(created["id"])
    assert record["status"] == "deployed", record.get("error")
    host = site_host(stack, created["id"])
    status, headers, index = http.request("GET", "/", host=host)
    assert status == 200 and headers["Cache-Control"] == REVALIDATE
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.decode())
    assert assets
    for asset in assets:
        status, headers, _ = http.request("GET", asset, host=host)
        assert status == 200 and headers["Cache-Control"] == IMMUTABLE, asset
    assert http.request("GET", "/favicon.svg", host=host)[1]["Cache-Control"] == REVALIDATE
