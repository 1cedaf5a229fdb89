"""The webhook receiver against a real Redis, the S3 endpoint and real git repositories: a forge's
signed delivery deploys the project of its repository; anything unsigned queues nothing.

What a user notices: which deliveries start a build (and how many), what each answers, that a
redelivery builds nothing twice while a failed delivery can be redelivered, and that deleting a
branch takes its preview address down.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.context import Context
from chalicelib.errors import ApiError, BadRequest, NotFound
from chalicelib.pipeline import projects, webhooks
from tests.conftest import commit_all, git, make_repo
from tests.test_projects import build, served


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "site"
    make_repo(root, {"index.html": "v1"})
    return root


@pytest.fixture
def secret(ctx, repo) -> str:
    """The webhook secret of project "shop", made from `repo`."""
    return projects.create_project(ctx, {"name": "shop", "repo_url": f"file://{repo}"})["webhook_secret"]


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo)


def push(repo: Path, branch: str = "main", after: str | None = None) -> dict[str, Any]:
    """A GitHub push payload for `branch` of the local repository."""
    return {"ref": f"refs/heads/{branch}", "before": "0" * 40, "after": after or head(repo),
            "deleted": after == "0" * 40,
            "repository": {"full_name": "acme/site", "clone_url": f"file://{repo}",
                           "html_url": "https://github.com/acme/site"}}


def pull_request(repo: Path, branch: str, action: str = "opened") -> dict[str, Any]:
    ours = {"full_name": "acme/site"}
    return {"action": action, "number": 4,
            "pull_request": {"head": {"ref": branch, "sha": head(repo), "repo": ours},
                             "base": {"ref": "main", "sha": head(repo), "repo": ours}},
            "repository": {"full_name": "acme/site", "clone_url": f"file://{repo}"}}


def deliver(ctx: Context, event: str, payload: dict[str, Any], secret: str, *, delivery: str = "d-1",
            forge: str = "github") -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
               "X-Hub-Signature-256": f"sha256={signature}"}
    return webhooks.receive(ctx, forge, headers, body)


def queued(ctx: Context) -> list[str]:
    return ctx.projects.deployment_ids("shop")


def test_a_signed_push_deploys_the_pushed_branch(ctx, repo, secret):
    status, body = deliver(ctx, "push", push(repo), secret)
    assert status == 202
    [created] = body["deployments"]
    assert (created["project"], created["branch"], created["target"]) == ("shop", "main", "production")
    record = ctx.records.get(created["id"])
    assert record["status"] == "uploading" and record["commit"] == head(repo)
    assert record["trigger"] == "github push"
    build(ctx, created["id"], "v1")
    assert served(ctx, "shop") == "200 v1"


@pytest.mark.parametrize("wrong", ["another secret", ""])
def test_a_wrongly_signed_push_is_401_and_queues_nothing(ctx, repo, secret, wrong):
    with pytest.raises(ApiError) as refused:
        deliver(ctx, "push", push(repo), wrong)
    assert refused.value.status == 401
    assert queued(ctx) == [] and ctx.queue.depth() == (0, 0)


def test_an_unknown_repository_gets_the_same_answer_as_a_wrong_signature(ctx, repo, secret, tmp_path):
    other = make_repo(tmp_path / "other", {"index.html": "x"})
    answers = []
    for payload, key in ((push(repo), "wrong"), ({**push(repo), "repository": {"clone_url": other}}, secret)):
        with pytest.raises(ApiError) as refused:
            deliver(ctx, "push", payload, key)
        answers.append((refused.value.status, refused.value.to_json()))
    assert answers[0] == answers[1] and answers[0][0] == 401
    assert queued(ctx) == []


def test_a_signature_over_other_bytes_is_refused(ctx, repo, secret):
    body = json.dumps(push(repo)).encode()
    signature = hmac.new(secret.encode(), body + b" ", hashlib.sha256).hexdigest()
    with pytest.raises(ApiError) as refused:
        webhooks.receive(ctx, "github", {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}"},
                         body)
    assert refused.value.status == 401 and queued(ctx) == []


def test_a_redelivery_deploys_once(ctx, repo, secret):
    first = deliver(ctx, "push", push(repo), secret, delivery="abc-1")
    again = deliver(ctx, "push", push(repo), secret, delivery="abc-1")
    assert first[0] == 202
    assert again == (200, {"ignored": "delivery abc-1 was received before", "projects": ["shop"]})
    assert len(queued(ctx)) == 1


def test_a_failed_delivery_can_be_redelivered(ctx, repo, secret):
    # The branch is not in the repository yet, so the clone fails and nothing is queued...
    with pytest.raises(ApiError) as failed:
        deliver(ctx, "push", push(repo, "topic"), secret, delivery="retry-me")
    assert failed.value.status in (400, 422) and queued(ctx) == []
    # ...and once it is, the forge's redelivery of the same delivery deploys it.
    git("branch", "topic", cwd=repo)
    status, body = deliver(ctx, "push", push(repo, "topic"), secret, delivery="retry-me")
    assert status == 202 and body["deployments"][0]["branch"] == "topic"


def test_the_push_and_pull_request_events_of_one_commit_build_it_once(ctx, repo, secret):
    git("checkout", "-q", "-b", "topic", cwd=repo)
    (repo / "index.html").write_text("topic")
    commit_all(repo)
    assert deliver(ctx, "push", push(repo, "topic"), secret, delivery="p1")[0] == 202
    status, body = deliver(ctx, "pull_request", pull_request(repo, "topic", "opened"), secret, delivery="p2")
    assert status == 200 and "already deployed" in body["ignored"]
    assert len(queued(ctx)) == 1
    # A new commit on the branch builds again, whichever event brings it first.
    (repo / "index.html").write_text("topic 2")
    commit_all(repo)
    status, body = deliver(ctx, "pull_request", pull_request(repo, "topic", "synchronize"), secret, delivery="p3")
    assert status == 202 and body["deployments"][0]["target"] == "preview"
    assert ctx.records.get(body["deployments"][0]["id"])["trigger"] == "github pull request #4"
    assert len(queued(ctx)) == 2


def test_a_pull_request_from_a_fork_deploys_nothing(ctx, repo, secret):
    payload = pull_request(repo, "main")
    payload["pull_request"]["head"]["repo"] = {"full_name": "mallory/site"}
    assert deliver(ctx, "pull_request", payload, secret) == (
        200, {"ignored": "pull request from a fork is not deployed", "projects": ["shop"]})
    assert queued(ctx) == []


def test_deleting_a_branch_takes_its_preview_address_down(ctx, repo, secret):
    git("checkout", "-q", "-b", "topic", cwd=repo)
    status, body = deliver(ctx, "push", push(repo, "topic"), secret, delivery="make")
    build(ctx, body["deployments"][0]["id"], "topic")
    assert served(ctx, "shop-git-topic") == "200 topic"
    status, body = deliver(ctx, "push", push(repo, "topic", after="0" * 40), secret, delivery="drop")
    assert (status, body) == (200, {"deleted_branch": "topic", "projects": {"shop": True}})
    assert served(ctx, "shop-git-topic").startswith("404")
    # Pushed again with the same commit, the branch deploys again.
    status, _ = deliver(ctx, "push", push(repo, "topic"), secret, delivery="again")
    assert status == 202


def test_a_tag_push_and_a_ping_build_nothing(ctx, repo, secret):
    tag = {**push(repo), "ref": "refs/tags/v1"}
    assert deliver(ctx, "push", tag, secret) == (200, {"ignored": "tag push", "projects": ["shop"]})
    ping = {"zen": "Design for failure.", "hook_id": 1, "repository": push(repo)["repository"]}
    assert deliver(ctx, "ping", ping, secret) == (200, {"ping": True, "projects": ["shop"]})
    assert queued(ctx) == []


def test_every_project_of_the_repository_whose_secret_verifies_deploys(ctx, repo, secret):
    projects.create_project(ctx, {"name": "shop-staging", "repo_url": f"file://{repo}/"})
    status, body = deliver(ctx, "push", push(repo), secret)
    # The other project has its own secret: this delivery does not prove it.
    assert status == 202 and [d["project"] for d in body["deployments"]] == ["shop"]


def test_a_form_encoded_delivery_is_verified_over_its_raw_bytes(ctx, repo, secret):
    body = urlencode({"payload": json.dumps(push(repo))}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    status, _ = webhooks.receive(ctx, "github", {
        "X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded",
        "X-Hub-Signature-256": f"sha256={signature}"}, body)
    assert status == 202 and len(queued(ctx)) == 1


def test_gitlab_and_gitea_deliveries_deploy_too(ctx, repo, secret):
    gitlab = {"object_kind": "push", "ref": "refs/heads/main", "after": head(repo), "checkout_sha": head(repo),
              "project": {"git_http_url": f"file://{repo}"}}
    status, _ = webhooks.receive(ctx, "gitlab", {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret},
                                 json.dumps(gitlab).encode())
    assert status == 202
    git("checkout", "-q", "-b", "next", cwd=repo)
    gitea = json.dumps(push(repo, "next")).encode()
    signature = hmac.new(secret.encode(), gitea, hashlib.sha256).hexdigest()
    status, _ = webhooks.receive(ctx, "gitea", {"X-Forgejo-Event": "push", "X-Forgejo-Signature": signature},
                                 gitea)
    assert status == 202 and len(queued(ctx)) == 2


def test_a_signed_but_malformed_delivery_is_a_400_naming_the_field(ctx, repo, secret):
    with pytest.raises(BadRequest) as refused:
        deliver(ctx, "push", {**push(repo), "after": "not a commit"}, secret)
    assert refused.value.field == "after" and queued(ctx) == []


def test_an_unknown_forge_is_404(ctx):
    with pytest.raises(NotFound):
        webhooks.receive(ctx, "bitbucket", {}, b"{}")
