"""The Chalice app through chalice.test.Client: the same event path Lambda takes.

Binary bodies go through Response.to_dict(binary_types) and base64, as in
Lambda, so a woff2 or wasm file that would break there breaks here too.
"""
import json
import os
import re
from types import SimpleNamespace

import pytest
from chalice.test import Client

import app as percel_app
from chalicelib import keys
from chalicelib.state.records import State
from tests.conftest import TEST_ADMIN_TOKEN, make_repo, publish_output

WASM = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 8
WOFF2 = b"wOF2" + bytes(reversed(range(256))) * 8


class TokenHttp:
    """chalice.test's HTTP client, sending the admin token with every request."""

    def __init__(self, http):
        self._http = http

    def request(self, method, path, headers=None, body=b""):
        headers = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}", **(headers or {})}
        return self._http.request(method, path, headers=headers, body=body)

    def __getattr__(self, method):
        return lambda path, **kwargs: self.request(method.upper(), path, **kwargs)


@pytest.fixture
def client(ctx, monkeypatch):
    for name, value in {"REDIS_URL": ctx.settings.redis_url, "STAGE": "local",
                        "AWS_ENDPOINT_URL_S3": ctx.settings.s3_endpoint_url,
                        "PERCEL_BUCKET": ctx.settings.bucket, "ROOT_DOMAIN": "percel.test",
                        "SITE_URL_TEMPLATE": "http://{id}.percel.test/",
                        "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN}.items():
        monkeypatch.setenv(name, value)
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()
    with Client(percel_app.app, stage_name="local") as test_client:
        yield SimpleNamespace(http=TokenHttp(test_client.http), events=test_client.events,
                              lambda_=test_client.lambda_)
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()


@pytest.fixture
def site(ctx, tmp_path):
    root = tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>" * 40)
    (root / "sub" / "index.html").write_text("<h1>sub</h1>")
    (root / "app.wasm").write_bytes(WASM)
    (root / "font.woff2").write_bytes(WOFF2)
    (root / "404.html").write_text("<h1>lost</h1>")
    publish_output(ctx, "abcdefghijklmnop", root)
    return "abcdefghijklmnop.percel.test"


def test_health(client):
    response = client.http.get("/api/health")
    assert response.status_code == 200 and response.json_body["status"] == "ok"


def test_no_accept_header_is_fine_for_the_api(client):
    response = client.http.get("/api/deployments/aaaaaaaaaaaaaaaa", headers={})
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "not_found"


def test_bad_json_is_a_400_naming_the_problem(client):
    response = client.http.post("/api/deployments", body=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json_body["error"]["message"]
    response = client.http.post("/api/deployments", body=json.dumps({"repo_url": 5}).encode(),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json_body["error"]["field"] == "repo_url"


def test_deploy_then_status(client, ctx, tmp_path):
    url = make_repo(tmp_path / "r", {"index.html": "x"})
    response = client.http.post("/api/deployments", body=json.dumps({"repo_url": url}).encode(),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 202
    created = response.json_body
    assert created["url"] == f"http://{created['id']}.percel.test/"
    status = client.http.get(created["status_url"]).json_body
    assert status["status"] == "uploading" and status["repo_url"] == url
    # The source function, as Lambda runs it after the API's asynchronous invoke.
    invoked = client.lambda_.invoke("source_upload", {"deployment_id": created["id"]})
    assert invoked.payload == {"deployment_id": created["id"]}
    assert client.http.get(created["status_url"]).json_body["status"] == "queued"


def test_unknown_api_path_is_json_404(client):
    response = client.http.get("/api/nothing/here")
    assert response.status_code == 404 and "error" in response.json_body


def test_binary_files_survive_the_lambda_encoding(client, site):
    for path, body, media in (("/app.wasm", WASM, "application/wasm"),
                              ("/font.woff2", WOFF2, "font/woff2")):
        response = client.http.get(path, headers={"Host": site})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == media
        assert response.body == body


def test_index_directories_and_404_page(client, site):
    assert client.http.get("/", headers={"Host": site}).body == b"<h1>home</h1>" * 40
    assert client.http.get("/sub/", headers={"Host": site}).body == b"<h1>sub</h1>"
    missing = client.http.get("/nope/deeper/x", headers={"Host": site})
    assert missing.status_code == 404 and missing.body == b"<h1>lost</h1>"


def test_site_paths_under_api_belong_to_the_site(client, site):
    response = client.http.get("/api/health", headers={"Host": site})
    assert response.status_code == 404 and response.body == b"<h1>lost</h1>"


def test_head_sends_no_body_and_the_same_headers(client, site):
    get = client.http.get("/", headers={"Host": site})
    head = client.http.head("/", headers={"Host": site})
    assert head.status_code == 200 and head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


def test_a_redirect_says_where_in_plain_text(client, ctx, tmp_path):
    root = tmp_path / "moved"
    root.mkdir()
    (root / "index.html").write_text("home")
    (root / "_redirects").write_text("/old /new?x=1 301\n")
    publish_output(ctx, "movedmovedmovedm", root)
    host = {"Host": "movedmovedmovedm.percel.test"}
    response = client.http.get("/old", headers=host)
    assert response.status_code == 301 and response.headers["Location"] == "/new?x=1"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == b"Redirecting to /new?x=1\n"
    assert response.headers["Content-Length"] == str(len(response.body))
    head = client.http.head("/old", headers=host)
    assert head.status_code == 301 and head.body == b""
    assert head.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert head.headers["Content-Length"] == response.headers["Content-Length"]


def test_etag_and_304(client, site):
    first = client.http.get("/", headers={"Host": site})
    again = client.http.get("/", headers={"Host": site, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.body == b""


def test_unknown_and_undeployed_sites_are_404(client, ctx):
    assert client.http.get("/", headers={"Host": "zzzzzzzzzzzzzzzz.percel.test"}).status_code == 404
    ctx.records.create({"id": "qqqqqqqqqqqqqqqq", "repo_url": "file:///x"})
    assert client.http.get("/", headers={"Host": "qqqqqqqqqqqqqqqq.percel.test:8443"}) \
        .status_code == 404


def test_a_deleted_deployment_answers_410(client, ctx, site):
    assert client.http.get("/", headers={"Host": site}).status_code == 200
    ctx.records.transition("abcdefghijklmnop", State.DELETED)
    ctx.store.delete([keys.deployment_manifest("abcdefghijklmnop")])
    percel_app.sites.cache_clear()
    assert client.http.get("/", headers={"Host": site}).status_code == 410


def test_large_files_redirect_to_a_presigned_url(client, ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_INLINE_BYTES", "1000")
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()
    root = tmp_path / "big"
    root.mkdir()
    payload = os.urandom(5000)
    (root / "video.mp4").write_bytes(payload)
    publish_output(ctx, "bigbigbigbigbigb", root)
    response = client.http.get("/video.mp4", headers={"Host": "bigbigbigbigbigb.percel.test"})
    assert response.status_code == 302
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == f"Redirecting to {response.headers['Location']}\n".encode()
    assert response.headers["Content-Length"] == str(len(response.body))
    import urllib.request
    assert urllib.request.urlopen(response.headers["Location"]).read() == payload
    # A range of a big file goes to the bucket too, which answers the Range itself: serving
    # it inline meant downloading the whole file into the handler for every seek.
    reads = percel_app.sites().bucket_reads
    ranged = client.http.get("/video.mp4", headers={"Host": "bigbigbigbigbigb.percel.test",
                                                    "Range": "bytes=100-199"})
    assert ranged.status_code == 302 and percel_app.sites().bucket_reads == reads
    request = urllib.request.Request(ranged.headers["Location"], headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(request) as part:
        assert part.status == 206 and part.read() == payload[100:200]


def test_an_unreachable_redis_is_a_json_503(client, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    percel_app.context.cache_clear()
    response = client.http.get("/api/deployments")
    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "unavailable"


def test_a_site_whose_bucket_is_unreachable_answers_503(client, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()
    response = client.http.get("/", headers={"Host": "abcdefghijklmnop.percel.test"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def test_a_bug_in_the_handler_is_a_logged_500(client, site, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise KeyError("sha256")
    monkeypatch.setattr("chalicelib.serving.site.resolve", broken)
    response = client.http.get("/", headers={"Host": site})
    assert response.status_code == 500 and b"missing" not in response.body
    assert any(record.exc_info and record.exc_info[0] is KeyError for record in caplog.records)


def test_the_scheduled_cleanup_hands_an_abandoned_job_back(client, ctx):
    """Invoked as Lambda's schedule invokes it: a job whose runner stopped renewing its lease
    goes back on the queue, for another runner to build."""
    import dataclasses

    from chalicelib.context import Context
    expired = Context(dataclasses.replace(ctx.settings, job_lease_seconds=0), ctx.redis, ctx.store)
    deployment_id = "abandonedjob0001"
    expired.records.create({"id": deployment_id, "repo_url": "file:///repo"})
    expired.queue.enqueue(deployment_id)
    assert expired.queue.claim("runner-that-died") == deployment_id
    expired.records.transition(deployment_id, State.BUILDING)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                            detail={}, resources=["arn:aws:events:rule/cleanup"])
    result = client.lambda_.invoke("scheduled_cleanup", event)
    assert result.payload["requeued"] == [deployment_id]
    assert ctx.records.status(deployment_id) is State.QUEUED
    assert ctx.queue.depth() == (1, 0)
    status = client.http.get(f"/api/deployments/{deployment_id}")
    assert json.loads(status.body)["status"] == "queued"


def assert_no_traceback(caplog):
    assert not [record for record in caplog.records if record.exc_info], caplog.text


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "/api/deployments", b"[" * 100_000, None),             # RecursionError in json
    ("GET", "/api/deployments?limit=%C2%B2", None, "limit"),         # "²".isdigit(), int() refuses
    ("GET", "/api/deployments?limit=%D9%A1%D9%A2", None, "limit"),   # int() reads "١٢" as 12
    ("GET", "/api/deployments?limit=" + "1" * 5000, None, "limit"),  # past int()'s 4,300 digits
    # json.loads keeps a lone surrogate, which Redis's client cannot encode
    ("POST", "/api/projects", b'{"name": "a", "repo_url": "file:///r", "output_dir": "\\ud800"}',
     None),
    ("POST", "/api/tokens", b'{"name": "\\udfff", "role": "read"}', None),
])
def test_hostile_inputs_are_a_json_400_not_a_500(client, caplog, method, path, body, field):
    response = client.http.request(method, path, body=body or b"",
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.body
    assert response.json_body["error"]["code"] == "bad_request"
    assert response.json_body["error"].get("field") == field
    assert_no_traceback(caplog)


@pytest.mark.parametrize("cursor", ["abc", "1-2-3", "99999999999999999999999", "%C2%B2"])
def test_an_invalid_log_cursor_is_a_400_not_a_retryable_503(client, ctx, caplog, cursor):
    ctx.records.create({"id": "cursorcursorcurs", "repo_url": "file:///x"})
    response = client.http.get(f"/api/deployments/cursorcursorcurs/logs?cursor={cursor}")
    assert response.status_code == 400, response.body
    assert response.json_body["error"]["field"] == "cursor"
    assert client.http.get("/api/deployments/cursorcursorcurs/logs?cursor=0-0").status_code == 200
    assert_no_traceback(caplog)


def test_a_range_with_thousands_of_digits_is_416_not_500(client, site, caplog):
    """RFC 9110 §14.1.1 puts no bound on a position's digits, so this range is valid and starts
    past the end of the file: 416 with the length (§15.5.17, §14.4)."""
    response = client.http.get("/", headers={"Host": site, "Range": "bytes=" + "9" * 5000 + "-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(b'<h1>home</h1>' * 40)}"
    to_the_end = client.http.get("/", headers={"Host": site, "Range": "bytes=5-" + "9" * 5000})
    assert to_the_end.status_code == 206 and to_the_end.body == (b"<h1>home</h1>" * 40)[5:]
    assert_no_traceback(caplog)


SECRETS = {".env": "API_KEY=hunter2", ".env.production": "DB=postgres://u:p@h/db",
           ".gitmodules": '[submodule "x"]\n\turl = https://token@example.com/x.git',
           ".git/config": "[remote]", ".github/workflows/ci.yml": "secrets: x",
           ".npmrc": "//registry.npmjs.org/:_authToken=npm_secret", "sub/.env": "NESTED=1",
           ".DS_Store": "mac", ".ENV.local": "CASE=1"}


def test_secret_bearing_files_are_never_published(client, ctx, tmp_path):
    """A static repository's output is its checkout: what it commits by mistake stays private."""
    root = tmp_path / "static"
    for name, content in {**SECRETS, "index.html": "home", ".well-known/security.txt": "c"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    (root / "notes.txt").symlink_to(".env")   # a link does not publish what it points at
    publish_output(ctx, "secretsecretsecr", root)
    files = ctx.store.get_json(keys.deployment_manifest("secretsecretsecr"))["files"]
    assert sorted(files) == [".well-known/security.txt", "index.html"]
    host = {"Host": "secretsecretsecr.percel.test"}
    for name in [*SECRETS, "notes.txt"]:
        response = client.http.get(f"/{name}", headers=host)
        assert response.status_code == 404, name
        assert b"hunter2" not in response.body and b"secret" not in response.body
    assert client.http.get("/.well-known/security.txt", headers=host).body == b"c"


def test_with_api_host_set_the_api_answers_only_there(client, site, monkeypatch):
    monkeypatch.setenv("API_HOST", "api.percel.test")
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()
    health = client.http.get("/api/health", headers={"Host": "API.percel.test:443"})
    assert health.status_code == 200 and health.json_body["status"] == "ok"
    for host in ("percel.test", "localhost", "evil.example", "127.0.0.1:8000"):
        elsewhere = client.http.get("/api/deployments", headers={"Host": host})
        assert elsewhere.status_code == 404, host
        assert elsewhere.json_body["error"]["code"] == "not_found"
    assert client.http.get("/api/health", headers={"Host": site}).body == b"<h1>lost</h1>"
    assert client.http.get("/", headers={"Host": site}).status_code == 200


def test_without_api_host_any_host_that_is_not_a_site_gets_the_api(client):
    for host in ("localhost:8000", "127.0.0.1", "anything.example"):
        assert client.http.get("/api/health", headers={"Host": host}).status_code == 200, host


def test_every_site_answer_says_nosniff(client, site, monkeypatch):
    """A text file must not run as script or style in a browser that sniffs its type."""
    for path in ("/", "/nope", "/app.wasm"):
        response = client.http.get(path, headers={"Host": site})
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")   # the 503 says it too
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    percel_app.context.cache_clear()
    percel_app.sites.cache_clear()
    down = client.http.get("/", headers={"Host": site})
    assert down.status_code == 503 and down.headers["X-Content-Type-Options"] == "nosniff"


def test_the_dashboard_is_served_on_the_api_host_and_sites_keep_their_root(client, site):
    shell = client.http.get("/", headers={"Host": "localhost:8000"})
    assert shell.status_code == 200 and b"<title>percel</title>" in shell.body
    assert shell.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert shell.headers["Cache-Control"] == "no-cache"
    version = re.search(rb"/dashboard/([0-9a-f]{16})/app\.js", shell.body).group(1).decode()
    script = client.http.get(f"/dashboard/{version}/app.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in script.headers["Cache-Control"]
    assert client.http.get(f"/dashboard/{version}/..%2Fassets.py").status_code == 404
    assert client.http.get(f"/dashboard/{version}/nope.js").status_code == 404
    assert client.http.get("/", headers={"Host": site}).body == b"<h1>home</h1>" * 40
    assert client.http.post("/", headers={"Host": "localhost"}).status_code == 404
