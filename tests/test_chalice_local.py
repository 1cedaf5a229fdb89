"""The API servers `make run` can start (SERVER=granian, devstack/asgi.py; SERVER=gunicorn,
devstack/wsgi.py; SERVER=chalice, devstack/chalice_local.py), over a real socket: a client can
neither make any of them read an unbounded body nor hold a thread by stalling."""
import http.client
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from devstack import services
from tests.conftest import TEST_ADMIN_TOKEN, alive, publish_output

BODY_CAP = 1000
READ_TIMEOUT = 1.0


@pytest.fixture(params=services.SERVERS)
def server(request, redis_url, s3_url, tmp_path):
    port = services.free_port()
    env = services.stack_env(redis_url, s3_url, port, {
        "MAX_REQUEST_BODY_BYTES": str(BODY_CAP), "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
        "PERCEL_BUCKET": "local-server-test", "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN})
    services.ensure_bucket(env)
    api = services.start_api(env, port, tmp_path / "logs", server=request.param)
    api.server = request.param
    yield port, api
    api.stop()


def exchange(port: int, head: bytes, body: bytes = b"", wait: float = 30) -> bytes:
    """Send `head` and `body`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(head + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def answer(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def status_of(raw: bytes) -> int:
    return int(raw.split(b"\r\n", 1)[0].split()[1])


def post(length: int | str) -> bytes:
    return (f"POST /api/deployments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
            f"\r\nAuthorization: Bearer {TEST_ADMIN_TOKEN}"
            f"\r\nContent-Length: {length}\r\n\r\n").encode()


def test_a_body_over_the_cap_is_a_413_before_it_is_sent(server):
    port, _ = server
    # Nothing of the announced 100 MB is sent: the answer must come from the headers alone.
    status, body = answer(exchange(port, post(100 * 1024 * 1024)))
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert "MAX_REQUEST_BODY_BYTES" in body["error"]["message"]


def test_a_body_under_the_cap_still_reaches_the_api(server):
    port, _ = server
    payload = json.dumps({"repo_url": 5}).encode()
    raw = exchange(port, post(len(payload)).replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n"),
                   payload)
    status, body = answer(raw)
    assert status == 400 and body["error"]["field"] == "repo_url"


@pytest.mark.parametrize("length", ["abc", "-1", "9" * 5000])
def test_a_malformed_content_length_is_a_400(server, length):
    port, api = server
    raw = exchange(port, post(length))
    assert status_of(raw) == 400   # gunicorn's or granian's own refusal, before the app
    if api.server == "chalice":
        assert answer(raw)[1]["error"]["code"] == "bad_request"
    assert "Traceback" not in api.log_path.read_text()


def test_a_chunked_body_is_refused_with_411_not_read_as_the_next_request(server):
    port, api = server
    if api.server != "chalice":
        pytest.skip(f"{api.server} reads chunked bodies: see the next test")
    head = (b"POST /api/deployments HTTP/1.1\r\nHost: localhost\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    status, body = answer(exchange(port, head, b"5\r\nhello\r\n0\r\n\r\n"))
    assert status == 411 and body["error"]["code"] == "length_required"


def test_a_chunked_body_over_the_cap_is_a_413_and_one_under_reaches_the_api(server):
    port, api = server
    if api.server == "chalice":
        pytest.skip("chalice local refuses chunked bodies with 411: see the previous test")
    head = (b"POST /api/deployments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TEST_ADMIN_TOKEN.encode() + b"\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    payload = json.dumps({"repo_url": 5}).encode()
    status, body = answer(exchange(port, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)))
    assert status == 400 and body["error"]["field"] == "repo_url"
    big = b"x" * (BODY_CAP + 1)
    status, body = answer(exchange(port, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)))
    assert status == 413 and body["error"]["code"] == "body_too_large"


def test_a_client_that_stalls_mid_body_gets_a_408_and_is_let_go(server):
    """Announce 100 bytes, send one: the server answers and closes instead of waiting forever."""
    port, api = server
    status, body = answer(exchange(port, post(100), b"{"))   # held forever: recv times out
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert "Traceback" not in api.log_path.read_text()


def test_a_client_that_sends_half_a_request_line_is_disconnected(server):
    port, _ = server
    assert exchange(port, b"GET /api/hea") == b""


# --- a site through each server --------------------------------------------------------------

MEGABYTE = bytes(range(256)) * 4096
SITE_ID = "serverbinaryabcd"


@pytest.fixture(params=services.SERVERS)
def site_server(request, ctx, tmp_path):
    root = tmp_path / "out"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "big.bin").write_bytes(MEGABYTE)
    publish_output(ctx, SITE_ID, root)
    port = services.free_port()
    env = services.stack_env(ctx.settings.redis_url, ctx.settings.s3_endpoint_url, port, {
        "PERCEL_BUCKET": ctx.settings.bucket, "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN})
    api = services.start_api(env, port, tmp_path / "logs", server=request.param)
    yield port
    api.stop()


def get(port: int, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Host": f"{SITE_ID}.localhost:{port}"})
    return connection.getresponse()


def test_a_megabyte_of_every_byte_value_arrives_byte_for_byte(site_server):
    response = get(site_server, "/docs/big.bin")
    assert response.status == 200 and response.read() == MEGABYTE
    assert response.getheader("Content-Length") == str(len(MEGABYTE))


def test_an_encoded_slash_reaches_the_app_encoded_and_is_refused(site_server):
    """A server that decoded the path would serve /docs/big.bin here (docs/CONFORMANCE.md)."""
    assert get(site_server, "/docs%2Fbig.bin").status == 400
    assert get(site_server, "/docs/big.bin").status == 200


# --- a server killed -----------------------------------------------------------------------------

def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:   # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found



@pytest.mark.parametrize("name", ["granian", "gunicorn"])
def test_the_workers_of_a_server_killed_with_sigkill_stop_serving(name, redis_url, s3_url, tmp_path):
    """Else they would go on answering on the port beside the server started again."""
    port = services.free_port()
    env = services.stack_env(redis_url, s3_url, port, {
        "PERCEL_BUCKET": "local-server-test", "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "WEB_WORKERS": "2"})
    services.ensure_bucket(env)
    api = services.start_api(env, port, tmp_path / "logs", server=name)
    workers: set[int] = set()
    try:
        workers = children(api.process.pid)
        assert len(workers) == 2
        api.process.send_signal(signal.SIGKILL)
        api.process.wait()
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in workers)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        api.stop()
        for pid in workers:   # what a failing run left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
