"""Projects and their addresses against a real Redis and the real S3 endpoint: a real git
repository is cloned and uploaded by the project's deploy, a runner's part (claim, publish,
finish) is played by the test, and a SiteServer answers for the project's addresses.

What a user notices: which deployment `<name>`, `<name>-git-<branch>` and a custom domain
serve after deploys, promote and rollback; that a late older build never takes an address back;
and that retention keeps what an address serves and the rollback targets.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from build_runner.publish import OutputLimits, publish
from chalicelib.context import Context
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.pipeline import cleanup, deploy, lifecycle, projects
from chalicelib.serving.site import SiteServer
from chalicelib.state.records import State
from tests.conftest import commit_all, git, make_repo, upload_sources


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    make_repo(root, {"index.html": "v1"})
    return root


@pytest.fixture
def project(ctx, repo) -> str:
    projects.create_project(ctx, {"name": "shop", "repo_url": f"file://{repo}"})
    return "shop"


def build(ctx: Context, deployment_id: str, html: str) -> None:
    """A runner's part for one queued deployment: claim it, publish `html` as its index.html
    and finish (the deployment's aliases move here). A git deployment's source step first."""
    upload_sources(ctx)
    assert lifecycle.claim(ctx, "test-runner", timeout=0) == deployment_id
    attempt = lifecycle.start(ctx, deployment_id, "test-runner")
    assert attempt is not None
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as src:
        (Path(out) / "index.html").write_text(html)
        publish(ctx.store, deployment_id, Path(out), Path(src), spa=False,
                limits=OutputLimits.from_settings(ctx.settings))
    assert lifecycle.finish(ctx, deployment_id, attempt).committed
    lifecycle.release(ctx, deployment_id, "test-runner")


def served(ctx: Context, label: str) -> str:
    """What a fresh request handler answers at `/` of a label or domain."""
    response = SiteServer(ctx).handle(label, "GET", "/", "", {"accept": "*/*"})
    return f"{response.status_code} {response.body.decode()}"


def deploy_and_build(ctx: Context, name: str, html: str, ref: str | None = None) -> str:
    created = projects.create_project_deployment(ctx, name, {"ref": ref} if ref else None)
    build(ctx, created["id"], html)
    return created["id"]


def test_production_address_follows_each_production_deployment(ctx, project):
    assert served(ctx, "shop") == "404 Not Found: no such site\n"
    first = deploy_and_build(ctx, project, "v1")
    assert served(ctx, "shop") == "200 v1"
    second = deploy_and_build(ctx, project, "v2")
    assert served(ctx, "shop") == "200 v2"
    assert served(ctx, first) == "200 v1"   # the immutable address stays
    view = projects.get_project(ctx, project)
    assert view["production_deployment"] == second
    assert view["branches"] == {"main": second}
    assert ctx.records.get(second)["target"] == "production"


def test_a_branch_gets_a_preview_address_and_leaves_production_alone(ctx, project, repo):
    production = deploy_and_build(ctx, project, "prod")
    git("checkout", "-q", "-b", "Feature/Login_Page", cwd=repo)
    (repo / "index.html").write_text("feature")
    commit_all(repo)
    preview = deploy_and_build(ctx, project, "feature", ref="Feature/Login_Page")
    assert ctx.records.get(preview)["target"] == "preview"
    assert served(ctx, "shop-git-feature-login-page") == "200 feature"
    assert served(ctx, "shop") == "200 prod"
    view = projects.get_project(ctx, project)
    assert view["production_deployment"] == production
    assert view["preview_urls"]["Feature/Login_Page"] == \
        ctx.settings.site_url("shop-git-feature-login-page")


def test_an_older_build_finishing_late_does_not_take_the_addresses_back(ctx, project):
    older = projects.create_project_deployment(ctx, project, None)["id"]
    newer = projects.create_project_deployment(ctx, project, None)["id"]
    upload_sources(ctx)
    # The newer one is claimed first by a second runner and finishes first.
    ctx.queue.remove(older)
    build(ctx, newer, "new")
    ctx.queue.enqueue(older)
    build(ctx, older, "old")
    assert served(ctx, "shop") == "200 new"
    assert served(ctx, "shop-git-main") == "200 new"
    assert projects.get_project(ctx, project)["production_deployment"] == newer


def test_rollback_and_promote_move_production_without_a_build(ctx, project):
    v1 = deploy_and_build(ctx, project, "v1")
    v2 = deploy_and_build(ctx, project, "v2")
    view = projects.rollback(ctx, project)
    assert view["production_deployment"] == v1 and view["auto_promote"] is False
    assert served(ctx, "shop") == "200 v1"
    # While auto_promote is off, a new production deployment does not take the address.
    v3 = deploy_and_build(ctx, project, "v3")
    assert served(ctx, "shop") == "200 v1"
    assert projects.get_project(ctx, project)["branches"]["main"] == v3
    # Promoting an older one keeps it off; promoting the newest turns it back on.
    assert projects.promote(ctx, project, {"deployment_id": v2})["auto_promote"] is False
    assert served(ctx, "shop") == "200 v2"
    assert projects.promote(ctx, project, {"deployment_id": v3})["auto_promote"] is True
    v4 = deploy_and_build(ctx, project, "v4")
    assert projects.get_project(ctx, project)["production_deployment"] == v4
    # Rollback walks back through what served production: v3, then v2.
    assert projects.rollback(ctx, project)["production_deployment"] == v3
    assert projects.rollback(ctx, project)["production_deployment"] == v2
    assert ctx.queue.depth() == (0, 0)   # no build was queued by any of it


def test_rollback_without_an_earlier_production_deployment_is_a_conflict(ctx, project):
    with pytest.raises(Conflict):
        projects.rollback(ctx, project)
    deploy_and_build(ctx, project, "v1")
    with pytest.raises(Conflict):
        projects.rollback(ctx, project)
    assert served(ctx, "shop") == "200 v1"


def test_promote_refuses_a_deployment_of_another_project_or_not_deployed(ctx, project, repo):
    projects.create_project(ctx, {"name": "other", "repo_url": f"file://{repo}"})
    foreign = deploy_and_build(ctx, "other", "other")
    with pytest.raises(NotFound):
        projects.promote(ctx, project, {"deployment_id": foreign})
    pending = projects.create_project_deployment(ctx, project, None)["id"]
    with pytest.raises(Conflict):
        projects.promote(ctx, project, {"deployment_id": pending})
    assert served(ctx, "shop") == "404 Not Found: no such site\n"


def test_a_custom_domain_serves_production_or_its_branch(ctx, project, repo):
    deploy_and_build(ctx, project, "prod")
    git("checkout", "-q", "-b", "staging", cwd=repo)
    deploy_and_build(ctx, project, "staging", ref="staging")
    projects.add_domain(ctx, project, {"domain": "WWW.Example.com."})
    projects.add_domain(ctx, project, {"domain": "staging.example.com", "branch": "staging"})
    assert served(ctx, "www.example.com") == "200 prod"
    assert served(ctx, "staging.example.com") == "200 staging"
    projects.create_project(ctx, {"name": "other", "repo_url": f"file://{repo}"})
    with pytest.raises(Conflict):
        projects.add_domain(ctx, "other", {"domain": "www.example.com"})
    projects.remove_domain(ctx, project, "www.example.com")
    assert served(ctx, "www.example.com") == "404 Not Found: no such site\n"


@pytest.mark.parametrize("domain", ["localhost", "shop.localhost", "127.0.0.1", "example",
                                    "-bad.example.com", "a..b.com", "x" * 250 + ".com"])
def test_a_domain_that_is_not_a_public_host_name_is_refused(ctx, project, domain):
    with pytest.raises(BadRequest):
        projects.add_domain(ctx, project, {"domain": domain})


def test_deleting_a_project_silences_its_addresses_and_takes_its_deployments_down(ctx, project):
    only = deploy_and_build(ctx, project, "v1")
    projects.add_domain(ctx, project, {"domain": "www.example.com"})
    projects.delete_project(ctx, project)
    for address in ("shop", "shop-git-main", "www.example.com"):
        assert served(ctx, address) == "404 Not Found: no such site\n"
    assert ctx.records.status(only) is State.DELETED
    with pytest.raises(NotFound):
        projects.get_project(ctx, project)


def test_a_deployment_an_address_serves_cannot_be_deleted(ctx, project):
    v1 = deploy_and_build(ctx, project, "v1")
    with pytest.raises(Conflict):
        deploy.delete_deployment(ctx, v1)
    assert served(ctx, "shop") == "200 v1"


def test_deleting_a_branch_removes_its_preview_address(ctx, project, repo):
    git("checkout", "-q", "-b", "topic", cwd=repo)
    deploy_and_build(ctx, project, "topic", ref="topic")
    assert served(ctx, "shop-git-topic") == "200 topic"
    assert projects.delete_branch(ctx, project, "topic")
    assert served(ctx, "shop-git-topic") == "404 Not Found: no such site\n"


def test_retention_keeps_what_addresses_serve_and_the_rollback_targets(ctx, project):
    # Per repository, retention would keep none: only the project protects them.
    keep = dataclasses.replace(ctx.settings, keep_deployments_per_repo=0,
                               keep_production_rollbacks=2)
    strict = Context(keep, ctx.redis, ctx.store)
    made = [deploy_and_build(strict, project, f"v{n}") for n in range(1, 5)]
    projects.rollback(strict, project)    # production: v3
    report = cleanup.run_cleanup(strict)
    # v4 (newest, the branch's address), v3 (production) and the last two production
    # deployments kept for rollback (v4, v3) stay; v1 and v2 go.
    assert sorted(report.deleted_deployments) == sorted(made[:2])
    assert served(strict, "shop") == "200 v3"
    assert served(strict, "shop-git-main") == "200 v4"


@pytest.mark.parametrize("name", ["abcdefghijklmnop", "shop-git-x", "Shop", "-shop", "a" * 51, "",
                                  "shop_1"])
def test_names_that_could_be_mistaken_for_other_addresses_are_refused(ctx, name, repo):
    with pytest.raises(BadRequest):
        projects.create_project(ctx, {"name": name, "repo_url": f"file://{repo}"})
    assert ctx.projects.names() == []


def test_no_two_projects_share_a_branch_address(ctx, project, repo):
    """`<name>-git-<slug>` is one project's only: "shop-git" would share "shop"'s
    shop-git-git-x (its branch "x", shop's branch "git-x")."""
    with pytest.raises(BadRequest):
        projects.create_project(ctx, {"name": "shop-git", "repo_url": f"file://{repo}"})
    assert projects.branch_label("shop", "git-x") == "shop-git-git-x"


def test_a_taken_name_is_a_conflict_and_the_secret_is_shown_once(ctx, project, repo):
    with pytest.raises(Conflict):
        projects.create_project(ctx, {"name": project, "repo_url": f"file://{repo}"})
    assert "webhook_secret" not in projects.get_project(ctx, project)
    assert len(ctx.projects.webhook_secret(project)) == 64


def test_env_values_are_never_shown_and_reach_only_their_target(ctx, repo):
    projects.create_project(ctx, {"name": "app", "repo_url": f"file://{repo}",
                                  "env": {"production": {"API": "https://api.example.com"},
                                          "preview": {"API": "https://staging.example.com"}}})
    view = projects.get_project(ctx, "app")
    assert view["env"] == {"production": ["API"], "preview": ["API"]}
    assert "example.com" not in str(view)
    production = projects.create_project_deployment(ctx, "app", None)["id"]
    opened = ctx.env_box.open(ctx.records.get(production)["env"])
    assert opened == {"API": "https://api.example.com"}


@pytest.mark.parametrize("branch, label", [
    ("main", "shop-git-main"),
    ("Feature/Login_Page", "shop-git-feature-login-page"),
    ("dependabot/npm_and_yarn/vite-5.4.1", "shop-git-dependabot-npm-and-yarn-vite-5-4-1"),
])
def test_branch_labels_are_slugs(branch, label):
    assert projects.branch_label("shop", branch) == label


def test_a_long_branch_label_is_cut_with_a_hash_and_stays_a_dns_label():
    one = projects.branch_label("a" * 30, "feature/" + "x" * 80)
    two = projects.branch_label("a" * 30, "feature/" + "x" * 81)
    assert len(one) == len(two) == 63 and one != two
    assert one.startswith("a" * 30 + "-git-feature-xxx")
    longest = projects.branch_label("a" * projects.MAX_NAME, "b" * 200)
    assert len(longest) <= 63 and longest.startswith("a" * projects.MAX_NAME + "-git-b-")


def test_patch_changes_settings_for_the_next_deployment_and_null_clears_one(ctx, project):
    view = projects.update_project(ctx, project, {"build_command": "npm run export",
                                                  "root_dir": "site", "production_branch": "prod",
                                                  "env": {"preview": {"TOKEN": "s3cret"}}})
    assert (view["build_command"], view["root_dir"], view["production_branch"]) == \
        ("npm run export", "site", "prod")
    assert view["env"] == {"production": [], "preview": ["TOKEN"]}
    view = projects.update_project(ctx, project, {"root_dir": None, "production_branch": None})
    assert (view["root_dir"], view["production_branch"]) == (None, "main")
    assert view["build_command"] == "npm run export"
    created = projects.create_project_deployment(ctx, project, None)
    options = ctx.records.get(created["id"])
    assert '"build_command": "npm run export"' in options["options"]
    for bad in ({"name": "other"}, {"repo_url": None}, {"env": {"staging": {}}}):
        with pytest.raises(BadRequest):
            projects.update_project(ctx, project, bad)
