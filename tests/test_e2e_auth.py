"""End to end: API tokens, roles, scope, JSON-only writes and the limits, as a client sees them.

Most tests use the session stack (its admin token is PERCEL_ADMIN_TOKEN, tests.conftest);
the limits get a stack of their own with small limits, since a blocked address is blocked for
every test sharing its stack.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import Http, counted_s3, make_repo, running_stack

UNKNOWN = "zzzzzzzzzzzzzzzz"


def lower(headers: dict) -> dict:
    return {name.lower(): value for name, value in headers.items()}


def error(raw: bytes) -> dict:
    return json.loads(raw)["error"]


def token(http: Http, role: str, **extra) -> tuple[str, str]:
    status, made = http.json("POST", "/api/tokens", {"name": f"test {role}", "role": role, **extra})
    assert status == 201, made
    return made["id"], made["token"]


@pytest.fixture(scope="module")
def deployed(http, tmp_path_factory) -> str:
    """A deployed static site, made with the admin token."""
    url = make_repo(tmp_path_factory.mktemp("auth-site") / "site", {"index.html": "<p>hello</p>"})
    deployment_id = http.deploy({"repo_url": url})
    assert http.wait_for(deployment_id, 300)["status"] == "deployed"
    return deployment_id


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/deployments"), ("GET", f"/api/deployments/{UNKNOWN}"),
    ("GET", f"/api/deployments/{UNKNOWN}/logs"), ("POST", "/api/deployments"),
    ("POST", f"/api/deployments/{UNKNOWN}/cancel"), ("DELETE", f"/api/deployments/{UNKNOWN}"),
    ("GET", "/api/tokens"), ("POST", "/api/tokens"), ("GET", "/api/no/such/route"),
])
def test_without_a_token_the_api_answers_401_with_a_bearer_challenge(stack, method, path):
    status, headers, raw = Http(stack.api_url, token=None).request(method, path, {"repo_url": "x"})
    assert status == 401
    assert lower(headers)["www-authenticate"] == 'Bearer realm="percel"'
    assert error(raw)["code"] == "unauthorized"


def test_a_wrong_token_is_401_invalid_token(stack):
    for wrong in ("pcl_aaaaaaaaaaaaaaaa_not-the-secret", "guess"):
        status, headers, raw = Http(stack.api_url, token=wrong).request("GET", "/api/deployments")
        assert status == 401 and 'error="invalid_token"' in lower(headers)["www-authenticate"]
        assert error(raw)["code"] == "unauthorized"


def test_health_and_sites_need_no_token(stack, http, deployed):
    anonymous = Http(stack.api_url, token=None)
    assert anonymous.json("GET", "/api/health")[0] == 200
    status, _, body = anonymous.site(deployed, "/")
    assert status == 200 and body == b"<p>hello</p>"


def test_a_read_token_reads_and_nothing_else(stack, http, deployed):
    _, secret = token(http, "read")
    reader = Http(stack.api_url, token=secret)
    assert reader.json("GET", f"/api/deployments/{deployed}")[1]["status"] == "deployed"
    assert deployed in [d["id"] for d in reader.json("GET", "/api/deployments")[1]["deployments"]]
    assert reader.json("GET", f"/api/deployments/{deployed}/logs")[0] == 200
    for method, path in (("POST", "/api/deployments"), ("DELETE", f"/api/deployments/{deployed}"),
                         ("POST", f"/api/deployments/{deployed}/cancel"), ("GET", "/api/tokens")):
        status, headers, raw = reader.request(method, path, {"repo_url": "file:///x"})
        assert status == 403, (method, path)
        assert error(raw)["code"] == "forbidden"
        assert 'error="insufficient_scope"' in lower(headers)["www-authenticate"]
    assert http.json("GET", f"/api/deployments/{deployed}")[1]["status"] == "deployed"


def test_a_deploy_token_deploys_and_cancels_but_cannot_delete_or_make_tokens(stack, http, tmp_path):
    _, secret = token(http, "deploy")
    deployer = Http(stack.api_url, token=secret)
    url = make_repo(tmp_path / "repo", {"index.html": "<p>x</p>"})
    status, created = deployer.json("POST", "/api/deployments", {"repo_url": url})
    assert status == 202
    assert deployer.json("POST", f"/api/deployments/{created['id']}/cancel")[0] in (200, 409)
    assert deployer.json("DELETE", f"/api/deployments/{created['id']}")[0] == 403
    assert deployer.json("POST", "/api/tokens", {"name": "x", "role": "admin"})[0] == 403


def test_deployments_outside_a_tokens_projects_are_invisible(stack, http, deployed):
    _, secret = token(http, "deploy", projects=["shop"])
    scoped = Http(stack.api_url, token=secret)
    assert scoped.json("GET", "/api/deployments")[1] == {"deployments": []}
    _, unknown = scoped.json("GET", f"/api/deployments/{UNKNOWN}")
    for method, path in (("GET", ""), ("GET", "/logs"), ("POST", "/cancel")):
        status, body = scoped.json(method, f"/api/deployments/{deployed}{path}")
        assert status == 404, path
        assert body["error"]["code"] == unknown["error"]["code"] == "not_found"
    # ...while the admin token still sees it, untouched.
    assert http.json("GET", f"/api/deployments/{deployed}")[1]["status"] == "deployed"


def test_tokens_are_listed_without_secrets_and_a_revoked_one_is_refused_at_once(stack, http):
    token_id, secret = token(http, "read", expires_in_days=7)
    holder = Http(stack.api_url, token=secret)
    assert holder.json("GET", "/api/deployments")[0] == 200
    status, _, raw = http.request("GET", "/api/tokens")
    assert status == 200 and secret.encode() not in raw and secret.split("_")[-1].encode() not in raw
    listed = {t["id"]: t for t in json.loads(raw)["tokens"]}
    assert listed[token_id]["role"] == "read" and listed[token_id]["expires_at"]
    assert "token" not in listed[token_id]

    status, revoked = http.json("DELETE", f"/api/tokens/{token_id}")
    assert status == 200 and revoked["revoked"] is True
    # Every request looks the token up (docs/DECISIONS.md#tokens): the very next one is refused.
    assert holder.json("GET", "/api/deployments")[0] == 401
    assert token_id not in [t["id"] for t in http.json("GET", "/api/tokens")[1]["tokens"]]
    assert http.json("DELETE", f"/api/tokens/{token_id}")[0] == 404


def test_a_bad_token_request_is_a_400_naming_the_field(http):
    for body, field in (({"name": "x", "role": "root"}, "role"), ({"role": "read"}, "name"),
                        ({"name": "x", "role": "read", "projects": "shop"}, "projects"),
                        ({"name": "x", "role": "read", "expires_in_days": 0}, "expires_in_days")):
        status, answer = http.json("POST", "/api/tokens", body)
        assert status == 400 and answer["error"]["field"] == field


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_write_that_is_not_json_is_415_and_changes_nothing(http, tmp_path, content_type):
    url = make_repo(tmp_path / "repo", {"index.html": "x"})

    def created() -> tuple[set[str], set[str]]:
        # Ids only: other tests' deployments on the shared stack move on meanwhile.
        return ({d["id"] for d in http.json("GET", "/api/deployments?limit=200")[1]["deployments"]},
                {t["id"] for t in http.json("GET", "/api/tokens")[1]["tokens"]})
    before = created()
    for path, body in (("/api/deployments", {"repo_url": url}),
                       ("/api/tokens", {"name": "x", "role": "admin"})):
        status, _, raw = http.request("POST", path, body, headers={"Content-Type": content_type})
        assert status == 415 and error(raw)["code"] == "unsupported_media_type"
    assert created() == before


def test_no_cors_and_no_cookies(http):
    origin = {"Origin": "https://evil.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    for method, path, headers in (("GET", "/api/deployments", origin),
                                  ("OPTIONS", "/api/deployments", preflight),
                                  ("GET", "/api/health", origin)):
        _, answer, _ = http.request(method, path, headers=headers)
        names = set(lower(answer))
        # Without Access-Control-Allow-Origin a browser's CORS check fails (Fetch standard), so
        # no other site's script can call the API or read its answers. (Chalice's local gateway answers
        # a preflight with `Access-Control-Allow-Methods: OPTIONS`, which allows nothing.)
        assert "access-control-allow-origin" not in names, (method, path)
        assert "access-control-allow-credentials" not in names
        assert "set-cookie" not in names


# --- limits, on a stack of their own ------------------------------------------------------

LIMITS = {"DEPLOYS_PER_MINUTE": "2", "AUTH_FAILURES_PER_MINUTE": "3"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory, toolchain_dir):
    """A stack with no runner (deployments stay queued) and small limits."""
    state = tmp_path_factory.mktemp("auth-limits")
    with counted_s3(state / "s3") as s3, \
            running_stack(state / "stack", s3.url, toolchain_dir, runners=0, env=LIMITS) as running:
        yield running


def test_deployments_per_token_per_minute_are_limited_with_retry_after(limited, tmp_path):
    admin = Http(limited.api_url)
    url = make_repo(tmp_path / "repo", {"index.html": "x"})
    _, first = token(admin, "deploy")
    _, second = token(admin, "deploy")
    deployer = Http(limited.api_url, token=first)
    assert [deployer.json("POST", "/api/deployments", {"repo_url": url})[0] for _ in range(2)] == [202, 202]
    status, headers, raw = deployer.request("POST", "/api/deployments", {"repo_url": url})
    assert status == 429 and error(raw)["code"] == "too_many_requests"
    assert 1 <= int(lower(headers)["retry-after"]) <= 60
    # The limit is per token; reading is not limited.
    assert Http(limited.api_url, token=second).json("POST", "/api/deployments", {"repo_url": url})[0] == 202
    assert deployer.json("GET", "/api/deployments")[0] == 200


def test_uploads_count_against_the_same_per_token_limit(limited):
    admin = Http(limited.api_url)
    _, secret = token(admin, "deploy")
    uploader = Http(limited.api_url, token=secret)
    body = {"files": [{"path": "index.html", "sha256": "0" * 64, "size": 1}]}
    assert [uploader.json("POST", "/api/uploads", body)[0] for _ in range(2)] == [201, 201]
    status, headers, raw = uploader.request("POST", "/api/uploads", body)
    assert status == 429 and error(raw)["code"] == "too_many_requests"
    assert 1 <= int(lower(headers)["retry-after"]) <= 60


def test_failed_authentications_per_address_are_limited_with_retry_after(limited):
    # Runs last in this module: afterwards the address is refused for a minute.
    guesser = Http(limited.api_url, token="pcl_aaaaaaaaaaaaaaaa_guess")
    assert [guesser.json("GET", "/api/deployments")[0] for _ in range(3)] == [401, 401, 401]
    status, headers, raw = Http(limited.api_url).request("GET", "/api/deployments")
    assert status == 429 and error(raw)["code"] == "too_many_requests"
    assert 1 <= int(lower(headers)["retry-after"]) <= 60
    assert Http(limited.api_url, token=None).json("GET", "/api/health")[0] == 200
