"""End to end: a forge's webhook and a deploy hook, as the forge, a CI job and the site's visitor
see them through the whole stack (no API token on either).

The flows that build use the session stack; the deploy hook's rate limit gets a stack of its own
with no runner and a small limit.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import Http, counted_s3, git, make_repo, running_stack, site_host


def signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(base: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """A POST as a forge sends it: raw bytes, its own headers, no API token."""
    request = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def push_payload(repo: Path, branch: str, after: str | None = None) -> dict:
    return {"ref": f"refs/heads/{branch}", "after": after or git("rev-parse", branch, cwd=repo),
            "deleted": after == "0" * 40,
            "repository": {"full_name": "acme/site", "clone_url": f"file://{repo}"}}


def deliver(stack, secret: str, payload: dict, delivery: str, event: str = "push") -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    return post(stack.api_url, "/api/webhooks/github", body, {
        "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signed(secret, body)})


def make_project(http: Http, name: str, repo: Path) -> str:
    status, created = http.json("POST", "/api/projects", {"name": name, "repo_url": f"file://{repo}"})
    assert status == 201, created
    return created["webhook_secret"]


def deployments(http: Http, name: str) -> list[dict]:
    status, listed = http.json("GET", f"/api/projects/{name}/deployments")
    assert status == 200, listed
    return listed["deployments"]


def page(http: Http, stack, label: str) -> tuple[int, bytes]:
    status, _, raw = http.request("GET", "/", host=site_host(stack, label))
    return status, raw


def served_eventually(http: Http, stack, label: str, expected: bytes, timeout: float = 30) -> None:
    """Project addresses are cached by each handler for ALIAS_CACHE_SECONDS: poll briefly."""
    deadline = time.monotonic() + timeout
    while page(http, stack, label) != (200, expected):
        assert time.monotonic() < deadline, page(http, stack, label)
        time.sleep(0.3)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "site"
    make_repo(root, {"index.html": "<p>main</p>"})
    return root


def test_a_signed_push_deploys_and_its_site_is_served(stack, http, repo):
    secret = make_project(http, "hooked", repo)
    status, body = deliver(stack, secret, push_payload(repo, "main"), "e2e-push-1")
    assert status == 202, body
    [created] = body["deployments"]
    assert http.wait_for(created["id"], 300)["status"] == "deployed"
    served_eventually(http, stack, "hooked", b"<p>main</p>")


def test_an_unsigned_or_wrongly_signed_push_is_401_and_deploys_nothing(stack, http, repo):
    secret = make_project(http, "unsigned", repo)
    body = json.dumps(push_payload(repo, "main")).encode()
    for headers in ({}, {"X-Hub-Signature-256": signed("not the secret", body)},
                    {"X-Hub-Signature-256": signed(secret, body + b"\n")}):
        status, answer = post(stack.api_url, "/api/webhooks/github", body,
                              {"Content-Type": "application/json", "X-GitHub-Event": "push", **headers})
        assert status == 401 and answer["error"]["code"] == "bad_signature"
    assert deployments(http, "unsigned") == []


def test_a_redelivery_deploys_once(stack, http, repo):
    secret = make_project(http, "redelivered", repo)
    first = deliver(stack, secret, push_payload(repo, "main"), "e2e-redelivery")
    again = deliver(stack, secret, push_payload(repo, "main"), "e2e-redelivery")
    assert first[0] == 202 and again[0] == 200 and "received before" in again[1]["ignored"]
    assert len(deployments(http, "redelivered")) == 1


def test_a_form_encoded_push_deploys(stack, http, repo):
    secret = make_project(http, "formed", repo)
    body = urlencode({"payload": json.dumps(push_payload(repo, "main"))}).encode()
    status, answer = post(stack.api_url, "/api/webhooks/github", body, {
        "Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "push",
        "X-Hub-Signature-256": signed(secret, body)})
    assert status == 202, answer
    assert len(deployments(http, "formed")) == 1


def test_deleting_a_branch_takes_its_preview_address_down(stack, http, repo):
    secret = make_project(http, "pruned", repo)
    git("checkout", "-q", "-b", "topic", cwd=repo)
    (repo / "index.html").write_text("<p>topic</p>")
    git("commit", "-qam", "topic", cwd=repo)
    status, body = deliver(stack, secret, push_payload(repo, "topic"), "e2e-topic")
    assert status == 202, body
    assert http.wait_for(body["deployments"][0]["id"], 300)["status"] == "deployed"
    served_eventually(http, stack, "pruned-git-topic", b"<p>topic</p>")
    status, body = deliver(stack, secret, push_payload(repo, "topic", "0" * 40), "e2e-topic-gone")
    assert (status, body) == (200, {"deleted_branch": "topic", "projects": {"pruned": True}})
    deadline = time.monotonic() + 30
    while page(http, stack, "pruned-git-topic")[0] != 404:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_a_deploy_hook_deploys_without_a_token_and_a_revoked_one_is_404(stack, http, repo):
    make_project(http, "cms", repo)
    status, hook = http.json("POST", "/api/projects/cms/hooks", {"branch": "main"})
    assert status == 201, hook
    status, listed = http.json("GET", "/api/projects/cms/hooks")
    assert status == 200 and [h["id"] for h in listed["hooks"]] == [hook["id"]]
    assert "url" not in listed["hooks"][0]
    status, created = post(stack.api_url, hook["url"], b"", {})
    assert status == 202 and created["branch"] == "main", created
    assert http.wait_for(created["id"], 300)["status"] == "deployed"
    served_eventually(http, stack, "cms", b"<p>main</p>")
    assert http.json("DELETE", f"/api/projects/cms/hooks/{hook['id']}")[0] == 200
    status, answer = post(stack.api_url, hook["url"], b"", {})
    assert status == 404 and answer["error"]["code"] == "not_found"
    assert len(deployments(http, "cms")) == 1


def test_hooks_are_made_only_with_an_admin_token(stack, http, repo):
    make_project(http, "guarded", repo)
    anonymous = Http(stack.api_url, token=None)
    assert anonymous.json("POST", "/api/projects/guarded/hooks", {"branch": "main"})[0] == 401
    status, made = http.json("POST", "/api/tokens", {"name": "deployer", "role": "deploy"})
    assert status == 201
    deployer = Http(stack.api_url, token=made["token"])
    assert deployer.json("POST", "/api/projects/guarded/hooks", {"branch": "main"})[0] == 403
    assert http.json("GET", "/api/projects/guarded/hooks") == (200, {"hooks": []})


@pytest.fixture(scope="module")
def limited(tmp_path_factory, toolchain_dir):
    """A stack with no runner (deployments stay queued) and one hook deployment a minute."""
    state = tmp_path_factory.mktemp("hook-limits")
    with counted_s3(state / "s3") as s3, \
            running_stack(state / "stack", s3.url, toolchain_dir, runners=0,
                          env={"HOOK_DEPLOYS_PER_MINUTE": "1"}) as running:
        yield running


def test_a_deploy_hook_is_rate_limited_with_retry_after(limited, tmp_path):
    admin = Http(limited.api_url)
    url = make_repo(tmp_path / "repo", {"index.html": "x"})
    assert admin.json("POST", "/api/projects", {"name": "busy", "repo_url": url})[0] == 201
    _, hook = admin.json("POST", "/api/projects/busy/hooks", {"branch": "main"})
    assert post(limited.api_url, hook["url"], b"", {})[0] == 202
    request = urllib.request.Request(limited.api_url + hook["url"], data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 429 and 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert len(deployments(admin, "busy")) == 1
