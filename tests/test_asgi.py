"""devstack/asgi.py: the Chalice app as ASGI, called as granian calls it, without a socket.

The same small Chalice app as tests/test_wsgi.py; no body may pass through base64 on the way.
Over a real socket, through granian: tests/test_chalice_local.py.
"""
import asyncio
import json

import pytest

import app as percel_app
from devstack import asgi, wsgi
from tests.conftest import publish_output
from tests.test_wsgi import (  # noqa: F401 (no_base64: a fixture)
    ALL_BYTES,
    LIMIT,
    no_base64,
    output_folder,
    percel_settings,
    small_app,
)

READ_TIMEOUT = 0.2


@pytest.fixture(scope="module")
def small():
    application = asgi.ChaliceASGI(small_app(), wsgi.chalice_config(), LIMIT, READ_TIMEOUT, 2)
    yield application
    application.threads.shutdown()


def call(application, method="GET", target="/", headers=None, chunks=(), client="192.0.2.7",
         stall=False):
    """One request as granian hands it over: raw_path as sent, path decoded, the body in
    `chunks` (then, with `stall`, a client that sends nothing more)."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "method": method, "path": path.replace("%2F", "/"),
             "raw_path": path.encode(), "query_string": query.encode(),
             "headers": [(name.lower().encode(), value.encode())
                         for name, value in (headers or [])],
             "client": (client, 50000)}
    pending = list(chunks)
    sent: list[dict] = []
    received = []

    async def receive():
        if pending:
            chunk = pending.pop(0)
            received.append(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or stall}
        if stall:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start, body = sent
    response_headers = [(name.decode(), value.decode()) for name, value in start["headers"]]
    return start["status"], response_headers, body["body"], received


def header(headers, name):
    values = [value for key, value in headers if key.lower() == name.lower()]
    assert len(values) <= 1, f"{name} sent {len(values)} times"
    return values[0] if values else None


ACCEPT = [("Accept", "*/*")]


@pytest.mark.usefixtures("no_base64")
def test_a_binary_body_arrives_byte_for_byte_without_base64(small):
    status, headers, body, _ = call(small, "GET", "/font", ACCEPT)
    assert (status, body) == (200, ALL_BYTES)
    assert header(headers, "Content-Type") == "font/woff2"
    assert header(headers, "Content-Length") == str(len(ALL_BYTES))


@pytest.mark.usefixtures("no_base64")
def test_a_binary_request_body_in_chunks_reaches_the_view_as_sent(small):
    headers = [("Content-Type", "*/*"), ("Content-Length", str(len(ALL_BYTES))), *ACCEPT]
    status, response, body, _ = call(small, "POST", "/echo", headers,
                                     [ALL_BYTES[:100], ALL_BYTES[100:]])
    assert (status, body, header(response, "X-Length")) == (200, ALL_BYTES, str(len(ALL_BYTES)))


def test_a_body_announced_over_the_cap_is_a_413_before_a_byte_is_read(small):
    headers = [("Content-Type", "*/*"), ("Content-Length", str(LIMIT + 1))]
    status, _, body, received = call(small, "POST", "/echo", headers, [b"x" * (LIMIT + 1)])
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    assert received == []


def test_a_chunked_body_is_read_up_to_the_cap_and_no_further(small):
    chunked = [("Content-Type", "*/*"), ("Transfer-Encoding", "chunked"), *ACCEPT]
    status, _, body, _ = call(small, "POST", "/echo", chunked, [b"x" * (LIMIT // 2)] * 2)
    assert (status, len(body)) == (200, LIMIT)
    status, _, _, received = call(small, "POST", "/echo", chunked,
                                  [b"x" * LIMIT, b"x", b"never read"])
    assert status == 413 and received == [b"x" * LIMIT, b"x"]


def test_a_body_that_stalls_is_a_408_that_closes_the_connection(small):
    headers = [("Content-Type", "*/*"), ("Content-Length", "100")]
    status, response, body, _ = call(small, "POST", "/echo", headers, [b"{"], stall=True)
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
    assert header(response, "Connection") == "close"


def test_a_malformed_content_length_is_a_400_not_a_traceback(small):
    status, _, body, _ = call(small, "POST", "/echo", [("Content-Length", "-1")], [b"x"])
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "BREW"])
def test_a_method_no_route_takes_is_a_405_with_allow(small, method):
    status, headers, _, _ = call(small, method, "/font")
    assert status == 405 and "GET" in header(headers, "Allow")


def test_query_repeated_headers_and_client_address_reach_the_view(small):
    headers = [("Host", "api.example"), *ACCEPT, ("X-Tag", "a"), ("X-Tag", "b")]
    status, _, body, _ = call(small, "GET", "/seen/x?tag=a&tag=b&empty=", headers)
    seen = json.loads(body)
    assert status == 200
    assert seen["query"] == {"tag": ["a", "b"], "empty": [""]}
    assert (seen["host"], seen["ip"]) == ("api.example", "192.0.2.7")
    assert asgi.request_headers([(b"X-Tag", b"a"), (b"x-tag", b"b")]) == {"x-tag": "a, b"}


def test_a_percent_encoded_path_reaches_the_app_encoded_once(small):
    """raw_path, not the decoded path: an encoded "/" must stay one (percel refuses it)."""
    _, _, body, _ = call(small, "GET", "/seen/a%2Fb%20c", ACCEPT)
    seen = json.loads(body)
    assert seen["path"] == "/seen/a%2Fb%20c" and seen["name"] == "a%2Fb%20c"



# --- the percel app: a site's cached answers given on the event loop ---------------------

FAST_SITE = "asgimemoryabcdef"
PAGE = b"<h1>home</h1>\n" * 40


@pytest.fixture
def percel_pair(ctx, tmp_path, monkeypatch):
    """The percel app twice: with its answers from memory, and (the reference) without."""
    percel_settings(ctx, monkeypatch)
    root = output_folder(tmp_path / "out", {"index.html": PAGE, "about.html": b"<h1>about</h1>",
                                            "fonts/all.woff2": ALL_BYTES})
    publish_output(ctx, FAST_SITE, root, vercel={
        "cleanUrls": True, "redirects": [{"source": "/old/:slug", "destination": "/new/:slug"}],
        "headers": [{"source": "/fonts/(.*)", "headers": [{"key": "X-Font", "value": "yes"}]}]})
    config = wsgi.chalice_config()
    fast = asgi.ChaliceASGI(percel_app.app, config, LIMIT, READ_TIMEOUT, 2,
                            percel_app.site_from_memory)
    full = asgi.ChaliceASGI(percel_app.app, config, LIMIT, READ_TIMEOUT, 2)
    yield fast, full
    for application in (fast, full):
        application.threads.shutdown()
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()


def gateway_calls(monkeypatch) -> list[str]:
    """The targets that went through Chalice's gateway, from now on."""
    calls: list[str] = []
    handle = wsgi.DirectGateway.handle

    def counted(self, method, target, *args):
        calls.append(target)
        return handle(self, method, target, *args)

    monkeypatch.setattr(wsgi.DirectGateway, "handle", counted)
    return calls


SITE_HOST = [("Host", f"{FAST_SITE}.percel.test")]
SAME_ANSWER = [
    ("GET", "/", []), ("HEAD", "/", []), ("GET", "/about", []), ("GET", "/about.html", []),
    ("GET", "/fonts/all.woff2", []), ("GET", "/fonts/all.woff2", [("Range", "bytes=10-19")]),
    ("GET", "/fonts/all.woff2", [("Range", "bytes=9999-")]), ("GET", "/old/x?b=2&a=1&a=", []),
    ("GET", "/nope", []), ("GET", "/a%2Fb", []), ("GET", "/%zz", []), ("GET", "/about/", []),
    ("GET", "/", [("Accept-Encoding", "gzip, br")]), ("GET", "/?q=%20x+y", []),
    ("GET", "/" + "/".join(["p"] * 33), []),   # deeper than every route: the gateway's 403
]


@pytest.mark.parametrize(("method", "target", "extra"), SAME_ANSWER)
def test_a_site_answers_from_memory_exactly_as_through_the_gateway(percel_pair, monkeypatch,
                                                                  method, target, extra):
    fast, full = percel_pair
    call(full, "GET", "/", SITE_HOST)   # alias, manifest and index.html cached for both
    call(fast, method, target, SITE_HOST + extra)
    calls = gateway_calls(monkeypatch)
    expected = call(full, method, target, SITE_HOST + extra)
    answered = call(fast, method, target, SITE_HOST + extra)
    def seen(answer):   # what a client sees, but the request id the gateway draws anew
        status, headers, body, _ = answer
        return status, [(k, v) for k, v in headers if k.lower() != "x-amzn-requestid"], body

    assert seen(answered) == seen(expected)
    # Every site answer is given from memory once its parts are cached; a path no route takes
    # is refused by the gateway, before the app.
    assert calls == ([target, target] if expected[0] == 403 else [target])


def test_an_etag_from_memory_is_a_304_from_memory(percel_pair, monkeypatch):
    fast, _ = percel_pair
    _, headers, _, _ = call(fast, "GET", "/", SITE_HOST)
    calls = gateway_calls(monkeypatch)
    status, _, body, _ = call(fast, "GET", "/", SITE_HOST + [("If-None-Match", header(headers, "ETag"))])
    assert (status, body, calls) == (304, b"", [])


def test_what_memory_lacks_goes_through_the_gateway_and_is_then_cached(percel_pair, monkeypatch):
    fast, _ = percel_pair
    calls = gateway_calls(monkeypatch)
    assert call(fast, "GET", "/", SITE_HOST)[2] == PAGE             # manifest and page: fetched
    assert call(fast, "GET", "/fonts/all.woff2", SITE_HOST)[2] == ALL_BYTES   # a new file
    assert call(fast, "GET", "/fonts/all.woff2", SITE_HOST)[2] == ALL_BYTES   # now in memory
    assert call(fast, "GET", "/", SITE_HOST)[2] == PAGE
    assert calls == ["/", "/fonts/all.woff2"]


def test_the_api_a_body_and_other_methods_always_reach_the_app(percel_pair, monkeypatch):
    fast, _ = percel_pair
    call(fast, "GET", "/", SITE_HOST)
    calls = gateway_calls(monkeypatch)
    status, _, body, _ = call(fast, "GET", "/api/health", [("Host", "percel.test"), *ACCEPT])
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert call(fast, "POST", "/", SITE_HOST)[0] == 405
    assert call(fast, "GET", "/", SITE_HOST + [("Content-Length", "1")], [b"x"])[2] == PAGE
    assert calls == ["/api/health", "/", "/"]
    # The site's own answer (a 404: it has no such file), from memory.
    assert call(fast, "GET", "/api/health", SITE_HOST)[0] == 404
    assert calls == ["/api/health", "/", "/"]


def test_a_deleted_site_is_gone_from_memory_within_the_recheck(percel_pair, ctx, monkeypatch):
    """The deletion re-check (RECHECK_SECONDS) is a Redis read: it takes the full path."""
    from chalicelib.pipeline import deploy
    from chalicelib.serving import site as site_module
    fast, _ = percel_pair
    assert call(fast, "GET", "/", SITE_HOST)[0] == 200
    deploy.delete_deployment(ctx, FAST_SITE)
    monkeypatch.setattr(site_module, "RECHECK_SECONDS", 0.0)
    assert call(fast, "GET", "/", SITE_HOST)[0] == 410
