"""End to end, over HTTP against the real stack (two build runners, the real sandbox): a project
made from a local git repository gets a production address that moves from one deployment to
the next, a preview address per branch, rollback and promote without a build, custom domains,
and an older build finishing late never takes an address back (docs/DECISIONS.md#aliases)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from chalicelib.settings import Settings
from tests.conftest import Http, commit_all, git, make_repo, running_stack

# Builds write their page from build.sh, so each commit says which it is; a commit's build.sh
# may sleep to finish after a younger deployment's build.
BUILD = {"build_command": "sh build.sh", "output_dir": "dist"}
# The documented bound: a request handler re-reads a moved address after this many seconds.
ALIAS_SECONDS = Settings().alias_cache_seconds


def build_script(page: str, sleep: float = 0) -> str:
    return (f"sleep {sleep}\n" if sleep else "") + \
        f"mkdir -p dist && printf '%s' '{page}' > dist/index.html\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3_service, toolchain_dir):
    with running_stack(tmp_path_factory.mktemp("projects"), s3_service.url, toolchain_dir,
                       runners=2) as running:
        yield running


@pytest.fixture(scope="module")
def http(stack) -> Http:
    return Http(stack.api_url, stack)


class Project:
    """A project of the stack, made from its own repository."""

    def __init__(self, http: Http, stack, root: Path, name: str):
        self.http, self.stack, self.root, self.name = http, stack, root, name
        make_repo(root, {"build.sh": build_script("v1")})
        status, body = http.json("POST", "/api/projects",
                                 {"name": name, "repo_url": f"file://{root}", **BUILD})
        assert status == 201, body
        self.view = body

    def commit(self, page: str, sleep: float = 0) -> None:
        (self.root / "build.sh").write_text(build_script(page, sleep))
        commit_all(self.root)

    def deploy(self, ref: str | None = None) -> dict:
        status, created = self.http.json("POST", f"/api/projects/{self.name}/deployments",
                                         {"ref": ref} if ref else None)
        assert status == 202, created
        return created

    def deployed(self, ref: str | None = None) -> str:
        created = self.deploy(ref)
        record = self.http.wait_for(created["id"], timeout=180)
        assert record["status"] == "deployed", record.get("error")
        return created["id"]

    def page(self, label: str | None = None, host: str | None = None) -> tuple[int, str]:
        status, _, body = self.http.request(
            "GET", "/", host=host or f"{label or self.name}.localhost:{self.stack.port}")
        return status, body.decode()

    def get(self) -> dict:
        status, view = self.http.json("GET", f"/api/projects/{self.name}")
        assert status == 200, view
        return view

    def post(self, action: str, body=None) -> dict:
        status, view = self.http.json("POST", f"/api/projects/{self.name}/{action}", body)
        assert status == 200, view
        return view

    def deployment_count(self) -> int:
        return len(self.http.json("GET", f"/api/projects/{self.name}/deployments")[1]["deployments"])


def after_the_alias_cache() -> None:
    time.sleep(ALIAS_SECONDS + 0.1)


def test_production_moves_v1_to_v2_and_rollback_serves_v1_again_without_a_build(
        http, stack, tmp_path):
    project = Project(http, stack, tmp_path / "repo", "site")
    assert project.view["url"] == f"http://site.localhost:{stack.port}/"
    assert len(project.view["webhook_secret"]) == 64
    v1 = project.deployed()
    assert project.page() == (200, "v1")
    project.commit("v2")
    v2 = project.deployed()
    after_the_alias_cache()
    assert project.page() == (200, "v2")
    assert project.page(v1) == (200, "v1")      # each deployment keeps its own address
    built = project.deployment_count()

    view = project.post("rollback")
    assert view["production_deployment"] == v1 and view["auto_promote"] is False
    after_the_alias_cache()
    assert project.page() == (200, "v1")
    assert project.deployment_count() == built   # no build

    # While rolled back, a new production deployment does not take the address...
    project.commit("v3")
    v3 = project.deployed()
    after_the_alias_cache()
    assert project.page() == (200, "v1")
    # ...until the newest is promoted, which turns auto_promote back on.
    assert project.post("promote", {"deployment_id": v3})["auto_promote"] is True
    after_the_alias_cache()
    assert project.page() == (200, "v3")
    assert project.get()["production_deployment"] == v3 != v2


def test_a_branch_gets_its_preview_address_built_as_preview(http, stack, tmp_path):
    project = Project(http, stack, tmp_path / "repo", "docs")
    project.deployed()
    git("checkout", "-q", "-b", "Feature/New_Nav", cwd=project.root)
    (project.root / "build.sh").write_text(
        "mkdir -p dist && printf 'preview %s' \"$VERCEL_ENV\" > dist/index.html\n")
    commit_all(project.root)
    created = project.deploy("Feature/New_Nav")
    assert created["target"] == "preview" and created["branch"] == "Feature/New_Nav"
    assert http.wait_for(created["id"], 180)["status"] == "deployed"
    assert project.page("docs-git-feature-new-nav") == (200, "preview preview")
    assert project.page() == (200, "v1")
    view = project.get()
    assert view["branches"]["Feature/New_Nav"] == created["id"]
    assert view["preview_urls"]["Feature/New_Nav"].startswith("http://docs-git-feature-new-nav.")


def test_an_older_build_finishing_late_does_not_take_the_address_back(http, stack, tmp_path):
    project = Project(http, stack, tmp_path / "repo", "race")
    project.commit("older", sleep=8)
    older = project.deploy()["id"]
    project.commit("newer")
    newer = project.deploy()["id"]
    records = {d: http.wait_for(d, 180) for d in (newer, older)}
    assert all(r["status"] == "deployed" for r in records.values()), records
    # Both ran at once on the two runners; the younger one finished first.
    assert records[older]["updated_at"] >= records[newer]["updated_at"]
    after_the_alias_cache()
    assert project.page() == (200, "newer")
    assert project.page("race-git-main") == (200, "newer")
    assert project.get()["production_deployment"] == newer


def test_a_custom_domain_serves_the_project_and_one_project_holds_it(http, stack, tmp_path):
    project = Project(http, stack, tmp_path / "repo", "brand")
    project.deployed()
    status, view = http.json("POST", "/api/projects/brand/domains", {"domain": "www.brand.test"})
    assert status == 201 and view["domains"] == {"www.brand.test": None}
    assert project.page(host=f"www.brand.test:{stack.port}") == (200, "v1")
    other = Project(http, stack, tmp_path / "other", "other-brand")
    status, error = http.json("POST", "/api/projects/other-brand/domains",
                              {"domain": "www.brand.test"})
    assert status == 409, error
    assert other.page(host=f"www.brand.test:{stack.port}") == (200, "v1")
    status, _ = http.json("DELETE", "/api/projects/brand/domains/www.brand.test")
    assert status == 200
    after_the_alias_cache()
    # The host is nobody's site any more: the local stage's API host answers it (its dashboard).
    assert project.page(host=f"www.brand.test:{stack.port}") != (200, "v1")
    assert project.page()[1] == "v1"


def test_deleting_a_project_stops_its_addresses(http, stack, tmp_path):
    project = Project(http, stack, tmp_path / "repo", "gone")
    only = project.deployed()
    status, error = http.json("DELETE", f"/api/deployments/{only}")
    assert status == 409, error   # production serves it
    status, _ = http.json("DELETE", "/api/projects/gone")
    assert status == 200
    after_the_alias_cache()
    assert project.page()[0] == 404
    assert project.page("gone-git-main")[0] == 404
    assert project.page(only)[0] == 410
    assert http.json("GET", "/api/projects/gone")[0] == 404


def test_bad_project_input_gets_a_clear_error_and_leaves_nothing(http, stack, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": "x"})
    cases = [({"name": "abcdefghijklmnop", "repo_url": url}, 400, "name"),
             ({"name": "ok-name", "repo_url": "ftp://example.com/x"}, 400, "repo_url"),
             ({"name": "ok-name", "repo_url": url, "env": {"staging": {}}}, 400, "env"),
             ({"name": "ok-name", "repo_url": url, "colour": "red"}, 400, "colour")]
    for body, status, field in cases:
        got, error = http.json("POST", "/api/projects", body)
        assert (got, error["error"].get("field")) == (status, field), error
    assert http.json("GET", "/api/projects/ok-name")[0] == 404
    status, error = http.json("POST", "/api/projects/nope/deployments", None)
    assert status == 404, error


def test_a_token_scoped_to_a_project_sees_and_deploys_only_that_project(http, stack, tmp_path):
    mine = Project(http, stack, tmp_path / "mine", "scoped-mine")
    Project(http, stack, tmp_path / "theirs", "scoped-theirs")
    status, made = http.json("POST", "/api/tokens", {"name": "ci", "role": "deploy",
                                                      "projects": ["scoped-mine"]})
    assert status == 201, made
    deployer = Http(stack.api_url, stack, token=made["token"])
    assert [p["name"] for p in deployer.json("GET", "/api/projects")[1]["projects"]] == \
        ["scoped-mine"]
    assert deployer.json("GET", "/api/projects/scoped-theirs")[0] == 404
    assert deployer.json("POST", "/api/projects/scoped-theirs/deployments", None)[0] == 404
    status, created = deployer.json("POST", "/api/projects/scoped-mine/deployments", None)
    assert status == 202, created
    assert [d["id"] for d in deployer.json("GET", "/api/deployments")[1]["deployments"]] == \
        [created["id"]]
    assert deployer.wait_for(created["id"], 180)["status"] == "deployed"
    assert deployer.json("POST", "/api/projects/scoped-mine/rollback", None)[0] == 409
    # Settings, domains and new projects need an admin token; a scoped admin stays in scope.
    assert deployer.json("PATCH", "/api/projects/scoped-mine", {"build_command": "x"})[0] == 403
    status, made = http.json("POST", "/api/tokens", {"name": "ops", "role": "admin",
                                                      "projects": ["scoped-mine"]})
    admin = Http(stack.api_url, stack, token=made["token"])
    status, error = admin.json("POST", "/api/projects", {"name": "scoped-new",
                                                          "repo_url": f"file://{mine.root}"})
    assert status == 403, error
    assert admin.json("DELETE", "/api/projects/scoped-theirs")[0] == 404
