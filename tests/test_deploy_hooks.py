"""Deploy hooks against a real Redis, the S3 endpoint and a real git repository: a secret URL
deploys its branch, is never shown again, is rate limited, and stops working when revoked.
"""
from __future__ import annotations

import dataclasses
import hashlib

import pytest

from chalicelib import keys
from chalicelib.errors import BadRequest, Conflict, NotFound, TooManyRequests
from chalicelib.pipeline import deploy_hooks, projects
from tests.conftest import git, make_ctx, make_repo
from tests.test_projects import build, served


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "site"
    make_repo(root, {"index.html": "v1"})
    git("branch", "staging", cwd=root)
    return root


@pytest.fixture
def project(ctx, repo) -> str:
    projects.create_project(ctx, {"name": "shop", "repo_url": f"file://{repo}"})
    return "shop"


def secret_of(created: dict) -> str:
    assert created["url"].startswith("/api/hooks/")
    return created["url"].removeprefix("/api/hooks/")


def test_a_hook_deploys_its_branch(ctx, project):
    created = deploy_hooks.create_hook(ctx, project, {"branch": "staging"})
    assert created["branch"] == "staging" and len(secret_of(created)) >= 43
    deployment = deploy_hooks.trigger(ctx, secret_of(created))
    assert (deployment["project"], deployment["branch"], deployment["hook"]) == ("shop", "staging", created["id"])
    assert ctx.records.get(deployment["id"])["trigger"] == f"hook {created['id']}"
    build(ctx, deployment["id"], "staging")
    assert served(ctx, "shop-git-staging") == "200 staging"


def test_hooks_are_listed_without_their_secrets(ctx, project):
    created = deploy_hooks.create_hook(ctx, project, {"branch": "main"})
    listed = deploy_hooks.list_hooks(ctx, project)
    assert listed == [{key: created[key] for key in ("id", "project", "branch", "created_at")}]
    assert secret_of(created) not in repr(listed)
    # Only its digest is stored.
    stored = ctx.redis.hgetall(keys.deploy_hook(created["id"]))
    assert secret_of(created).encode() not in b"".join(stored.values())
    assert stored[b"sha256"] == hashlib.sha256(secret_of(created).encode()).hexdigest().encode()


def test_a_revoked_hook_is_404_from_then_on(ctx, project):
    created = deploy_hooks.create_hook(ctx, project, {"branch": "main"})
    assert deploy_hooks.delete_hook(ctx, project, created["id"])["deleted"] is True
    with pytest.raises(NotFound):
        deploy_hooks.trigger(ctx, secret_of(created))
    assert deploy_hooks.list_hooks(ctx, project) == []
    with pytest.raises(NotFound):
        deploy_hooks.delete_hook(ctx, project, created["id"])
    assert ctx.projects.deployment_ids(project) == []


@pytest.mark.parametrize("secret", ["", "not-a-hook", "x" * 5000])
def test_an_unknown_secret_is_404(ctx, project, secret):
    with pytest.raises(NotFound):
        deploy_hooks.trigger(ctx, secret)


def test_a_hook_is_rate_limited_with_retry_after(settings, project, repo):
    limited = make_ctx(dataclasses.replace(settings, hook_deploys_per_minute=2))
    secret = secret_of(deploy_hooks.create_hook(limited, project, {"branch": "main"}))
    deploy_hooks.trigger(limited, secret)
    deploy_hooks.trigger(limited, secret)
    with pytest.raises(TooManyRequests) as refused:
        deploy_hooks.trigger(limited, secret)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert len(limited.projects.deployment_ids(project)) == 2
    # Another hook has its own count.
    other = secret_of(deploy_hooks.create_hook(limited, project, {"branch": "main"}))
    deploy_hooks.trigger(limited, other)


def test_a_hook_of_a_deleted_project_deploys_nothing_in_its_namesake(ctx, project, repo):
    created = deploy_hooks.create_hook(ctx, project, {"branch": "main"})
    projects.delete_project(ctx, project)
    with pytest.raises(NotFound):
        deploy_hooks.trigger(ctx, secret_of(created))
    projects.create_project(ctx, {"name": "shop", "repo_url": f"file://{repo}"})
    with pytest.raises(NotFound):
        deploy_hooks.trigger(ctx, secret_of(created))
    assert deploy_hooks.list_hooks(ctx, "shop") == []


def test_a_hook_of_one_project_cannot_be_revoked_through_another(ctx, project, repo):
    projects.create_project(ctx, {"name": "blog", "repo_url": f"file://{repo}"})
    created = deploy_hooks.create_hook(ctx, project, {"branch": "main"})
    with pytest.raises(NotFound):
        deploy_hooks.delete_hook(ctx, "blog", created["id"])
    assert deploy_hooks.trigger(ctx, secret_of(created))["project"] == "shop"


@pytest.mark.parametrize("body", [None, {}, {"branch": None}, {"branch": 7}, {"branch": "a..b"},
                                  {"branch": "main", "name": "x"}])
def test_a_bad_hook_request_is_a_400_naming_the_branch(ctx, project, body):
    with pytest.raises(BadRequest) as refused:
        deploy_hooks.create_hook(ctx, project, body)
    assert refused.value.field == "branch"


def test_hooks_of_unknown_projects_are_404(ctx):
    with pytest.raises(NotFound):
        deploy_hooks.create_hook(ctx, "nope", {"branch": "main"})
    with pytest.raises(NotFound):
        deploy_hooks.list_hooks(ctx, "nope")


def test_a_project_has_a_bounded_number_of_hooks(ctx, project):
    for _ in range(deploy_hooks.MAX_HOOKS_PER_PROJECT):
        deploy_hooks.create_hook(ctx, project, {"branch": "main"})
    with pytest.raises(Conflict):
        deploy_hooks.create_hook(ctx, project, {"branch": "main"})
