"""devstack/wsgi.py: the Chalice app as WSGI, called as gunicorn calls it.

The first tests use a small Chalice app and no I/O; the rest serve a published site with the
real app against the test Redis and S3 endpoint. No body may pass through base64 on the way.
"""
import base64
import io
import json
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from chalice import Chalice, Response
from chalice.local import RouteMatcher

import app as percel_app
from devstack import wsgi
from tests.conftest import TEST_ADMIN_TOKEN, publish_output

ALL_BYTES = bytes(range(256)) * 4 + b"wOF2"
LIMIT = 4096


def small_app() -> Chalice:
    app = Chalice(app_name="wsgi-test")
    app.api.binary_types = ["*/*"]

    @app.route("/font", methods=["GET"])
    def font():
        return Response(ALL_BYTES, headers={"Content-Type": "font/woff2"})

    @app.route("/echo", methods=["POST", "PUT"], content_types=["*/*"])
    def echo():
        body = app.current_request.raw_body
        return Response(body, headers={"Content-Type": "application/octet-stream",
                                       "X-Length": str(len(body))})

    @app.route("/seen/{name}", methods=["GET"])
    def seen(name):
        request = app.current_request
        return {"path": request.context["path"], "name": name,
                "ip": request.context["identity"]["sourceIp"],
                "query": request.to_original_event()["multiValueQueryStringParameters"],
                "host": request.headers.get("host")}

    return app


def call(application, method="GET", target="/", headers=None, body=b"", remote="192.0.2.7",
         length=True):
    """One request as gunicorn hands it over: RAW_URI as sent, PATH_INFO decoded."""
    path, _, query = target.partition("?")
    environ = {"REQUEST_METHOD": method, "RAW_URI": target, "QUERY_STRING": query,
               "PATH_INFO": path, "REMOTE_ADDR": remote, "wsgi.input": io.BytesIO(body)}
    if body and length:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, response_headers):
        started["status"], started["headers"] = status, response_headers

    chunks = list(application(environ, start_response))
    return int(started["status"].split()[0]), started["headers"], b"".join(chunks)


def header(headers, name):
    values = [value for key, value in headers if key.lower() == name.lower()]
    assert len(values) <= 1, f"{name} sent {len(values)} times"
    return values[0] if values else None


@pytest.fixture
def no_base64(monkeypatch):
    """Every base64 call Chalice could make on a body fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a body went through base64")
    for name in ("b64encode", "b64decode"):
        monkeypatch.setattr(base64, name, refuse)


@pytest.fixture
def small():
    return wsgi.ChaliceWSGI(small_app(), wsgi.chalice_config(), LIMIT)


def test_a_binary_body_arrives_byte_for_byte_without_base64(small, no_base64):
    status, headers, body = call(small, "GET", "/font", {"Accept": "*/*"})
    assert (status, body) == (200, ALL_BYTES)
    assert header(headers, "Content-Type") == "font/woff2"
    assert header(headers, "Content-Length") == str(len(ALL_BYTES))


def test_a_binary_request_body_reaches_the_view_as_sent(small, no_base64):
    status, headers, body = call(small, "POST", "/echo", {"Content-Type": "*/*", "Accept": "*/*"},
                                 ALL_BYTES)
    assert (status, body, header(headers, "X-Length")) == (200, ALL_BYTES, str(len(ALL_BYTES)))


def test_a_body_over_the_cap_is_a_413_and_the_view_never_runs(small):
    status, _, body = call(small, "POST", "/echo", {"Content-Type": "*/*"}, b"x" * (LIMIT + 1))
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"


def test_a_chunked_body_is_read_up_to_the_cap_and_no_further(small):
    chunked = {"Content-Type": "*/*", "Accept": "*/*", "Transfer-Encoding": "chunked"}
    status, _, body = call(small, "POST", "/echo", chunked, b"x" * LIMIT, length=False)
    assert (status, len(body)) == (200, LIMIT)
    status, _, _ = call(small, "POST", "/echo", chunked, b"x" * (LIMIT + 1), length=False)
    assert status == 413


def test_a_malformed_content_length_is_a_400_not_a_traceback(small):
    environ_length = {"Content-Type": "*/*", "Content-Length": "-1"}
    status, _, body = call(small, "POST", "/echo", environ_length, b"x", length=False)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "BREW"])
def test_a_method_no_route_takes_is_a_405_with_allow(small, method):
    status, headers, _ = call(small, method, "/font")
    assert status == 405 and "GET" in header(headers, "Allow")


def test_query_multi_values_host_and_client_address_reach_the_view(small):
    status, _, body = call(small, "GET", "/seen/x?tag=a&tag=b&empty=", {"Host": "api.example", "Accept": "*/*"})
    seen = json.loads(body)
    assert status == 200
    assert seen["query"] == {"tag": ["a", "b"], "empty": [""]}
    assert (seen["host"], seen["ip"]) == ("api.example", "192.0.2.7")


def test_a_percent_encoded_path_reaches_the_app_encoded_once(small):
    _, _, body = call(small, "GET", "/seen/a%2Fb%20c", {"Accept": "*/*"})
    seen = json.loads(body)
    assert seen["path"] == "/seen/a%2Fb%20c" and seen["name"] == "a%2Fb%20c"


# --- the percel app, serving a published site ---------------------------------------

PAGE = b"<h1>home</h1>" * 100
MEGABYTE = bytes(range(256)) * 4096


def percel_settings(ctx, monkeypatch) -> None:
    """app.py's settings pointed at the tests' Redis and bucket (ROOT_DOMAIN percel.test), its
    context and site caches emptied (empty them again after the test)."""
    for name, value in {"REDIS_URL": ctx.settings.redis_url, "STAGE": "local",
                        "AWS_ENDPOINT_URL_S3": ctx.settings.s3_endpoint_url,
                        "PERCEL_BUCKET": ctx.settings.bucket, "ROOT_DOMAIN": "percel.test",
                        "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN}.items():
        monkeypatch.setenv(name, value)
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()


def output_folder(root: Path, files: dict[str, bytes]) -> Path:
    """A build output at `root` holding `files` (relative path -> bytes)."""
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def percel(ctx, tmp_path, monkeypatch):
    percel_settings(ctx, monkeypatch)
    root = output_folder(tmp_path / "out", {"index.html": PAGE, "fonts/all.woff2": ALL_BYTES,
                                            "big.bin": MEGABYTE})
    publish_output(ctx, "wsgiadapterabcde", root)
    yield wsgi.ChaliceWSGI(percel_app.app, wsgi.chalice_config(), 1024 * 1024)
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()


SITE = {"Host": "wsgiadapterabcde.percel.test"}


def test_a_site_file_with_every_byte_value_is_served_intact(percel, no_base64):
    status, headers, body = call(percel, "GET", "/fonts/all.woff2", SITE)
    assert (status, body) == (200, ALL_BYTES)
    assert header(headers, "Content-Length") == str(len(ALL_BYTES))


def test_a_megabyte_is_a_megabyte_at_every_step(percel, no_base64):
    status, headers, body = call(percel, "GET", "/big.bin", SITE)
    assert status == 200 and len(body) == len(MEGABYTE) == int(header(headers, "Content-Length"))
    assert body == MEGABYTE


def test_head_has_the_gets_length_and_no_body(percel):
    _, get_headers, _ = call(percel, "GET", "/", SITE)
    status, headers, body = call(percel, "HEAD", "/", SITE)
    assert status == 200 and body == b""
    assert header(headers, "Content-Length") == header(get_headers, "Content-Length") == str(len(PAGE))


def test_range_is_206_with_the_slice(percel):
    status, headers, body = call(percel, "GET", "/fonts/all.woff2", {**SITE, "Range": "bytes=10-19"})
    assert (status, body) == (206, ALL_BYTES[10:20])
    assert header(headers, "Content-Range") == f"bytes 10-19/{len(ALL_BYTES)}"


def test_a_matching_etag_is_304_without_a_body(percel):
    _, headers, _ = call(percel, "GET", "/", SITE)
    status, _, body = call(percel, "GET", "/", {**SITE, "If-None-Match": header(headers, "ETag")})
    assert (status, body) == (304, b"")


def test_host_chooses_between_the_site_and_the_api(percel):
    site_status, _, site_body = call(percel, "GET", "/", SITE)
    api_status, _, api_body = call(percel, "GET", "/api/health", {"Host": "percel.test"})
    assert (site_status, site_body) == (200, PAGE)
    assert api_status == 200 and json.loads(api_body)["status"] == "ok"
    status, _, _ = call(percel, "GET", "/api/health", SITE)
    assert status == 404   # a site has no /api/health


# --- route matching ----------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/", "/index.html", "/assets/index-DSXtc1GT.js", "/a/b/c/d/e/f/g/h", "/a/", "/a//b",
    "/api/health", "/api/health/", "/api/deployments", "/api/deployments/k3x/logs?cursor=5",
    "/api/deployments/k3x/nope", "/api/projects/p/aliases/x", "/dashboard/v1/app.js",
    "/seen/a%2Fb?x=1&x=2&y=", "/" + "/".join(["p"] * 33), "",
])
def test_the_split_route_matcher_matches_as_chalices_does(url):
    """Same route, same captured parameters (with what a route that failed part-way captured),
    same query, or the same refusal, for percel's routes and the small app's."""
    for app in (percel_app.app, small_app()):
        ours, theirs = wsgi.SplitRouteMatcher(list(app.routes)), RouteMatcher(list(app.routes))
        try:
            expected = theirs.match_route(url)
        except ValueError:
            with pytest.raises(ValueError):
                ours.match_route(url)
            continue
        assert ours.match_route(url) == expected
