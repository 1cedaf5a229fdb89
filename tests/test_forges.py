"""Forge webhooks read as each forge sends them: signatures, redeliveries, and what a delivery deploys.

The payloads under tests/fixtures/forges/ are shaped like the examples in each forge's webhook
documentation (field names from there, values made up), trimmed to the fields that matter.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import BadRequest
from chalicelib.pipeline.forges import (
    FORGES,
    Event,
    delivery_id,
    load_payload,
    normalize_repo_url,
    parse,
    repo_urls,
    verify,
)

PAYLOADS = Path(__file__).resolve().parent / "fixtures" / "forges"
SECRET = "whsec-5f1e0c9a"
SITE = "github.com/acme/site"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A fixture payload with dotted paths replaced (a value of DROP removes the key)."""
    data = json.loads((PAYLOADS / f"{name}.json").read_text())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node[part]
        if value is DROP:
            del node[last]
        else:
            node[last] = value
    return data


DROP = object()


def hub_signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- Signatures -----------------------------------------------------------------------------------

BODY = json.dumps(payload("github_push")).encode()


@pytest.mark.parametrize("forge, headers", [
    ("github", {"x-hub-signature-256": "sha256=" + hub_signature(BODY)}),
    ("gitea", {"x-gitea-signature": hub_signature(BODY)}),
    ("gitea", {"x-forgejo-signature": hub_signature(BODY), "x-gitea-signature": hub_signature(BODY)}),
    ("gitea", {"x-hub-signature-256": "sha256=" + hub_signature(BODY)}),
    ("gitlab", {"x-gitlab-token": SECRET}),
])
def test_a_delivery_signed_with_the_secret_verifies(forge, headers):
    assert verify(forge, headers, BODY, SECRET)


@pytest.mark.parametrize("forge, headers", [
    ("github", {}),
    ("github", {"x-hub-signature-256": hub_signature(BODY)}),  # no "sha256=" prefix
    ("github", {"x-hub-signature-256": "sha256=" + hub_signature(BODY, "another secret")}),
    ("github", {"x-hub-signature-256": "sha256=" + hub_signature(BODY + b" ")}),
    ("github", {"x-hub-signature-256": "sha256="}),
    ("github", {"x-hub-signature-256": "sha256=é" + hub_signature(BODY)[1:]}),
    ("github", {"x-gitea-signature": hub_signature(BODY)}),  # another forge's header
    ("gitea", {}),
    ("gitea", {"x-gitea-signature": "sha256=" + hub_signature(BODY)}),
    ("gitea", {"x-gitea-signature": hub_signature(BODY, "another secret")}),
    # A wrong Forgejo signature is not rescued by a right Gitea one.
    ("gitea", {"x-forgejo-signature": "0" * 64, "x-gitea-signature": hub_signature(BODY)}),
    ("gitlab", {}),
    ("gitlab", {"x-gitlab-token": SECRET + "x"}),
    ("gitlab", {"x-gitlab-token": SECRET[:-1]}),
    ("gitlab", {"x-gitlab-token": ""}),
    ("gitlab", {"x-gitlab-token": "ünïcode"}),
    ("gitlab", {"x-hub-signature-256": "sha256=" + hub_signature(BODY)}),
])
def test_a_missing_or_wrong_signature_does_not_verify(forge, headers):
    assert not verify(forge, headers, BODY, SECRET)


@pytest.mark.parametrize("forge, headers", [
    ("github", {"x-hub-signature-256": "sha256=" + hub_signature(BODY, "")}),
    ("gitlab", {"x-gitlab-token": ""}),
])
def test_an_empty_secret_never_verifies(forge, headers):
    assert not verify(forge, headers, BODY, "")


def test_an_unknown_forge_is_a_programming_error():
    with pytest.raises(ValueError):
        verify("bitbucket", {}, BODY, SECRET)


# --- Deliveries -----------------------------------------------------------------------------------

@pytest.mark.parametrize("forge, headers, expected", [
    ("github", {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
     "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ("gitea", {"x-gitea-delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
     "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
    ("gitea", {"x-forgejo-delivery": "a1", "x-gitea-delivery": "a1"}, "a1"),
    ("gitlab", {"x-gitlab-event-uuid": "13792a34-cac6-4fda-95a8-c58e00a3954e"},
     "13792a34-cac6-4fda-95a8-c58e00a3954e"),
    # The key GitLab keeps across retries wins over the per-request UUID.
    ("gitlab", {"x-gitlab-event-uuid": "per-request", "idempotency-key": "same-on-retry"}, "same-on-retry"),
    ("github", {}, None),
    ("github", {"x-github-delivery": "  "}, None),
    ("gitlab", {"x-github-delivery": "wrong forge"}, None),
])
def test_the_delivery_id_is_the_one_kept_on_redelivery(forge, headers, expected):
    assert delivery_id(forge, headers) == expected


# --- Bodies ---------------------------------------------------------------------------------------

def test_a_form_body_carries_the_json_in_its_payload_field():
    from urllib.parse import urlencode
    body = urlencode({"payload": json.dumps({"zen": "a & b = c"})}).encode()
    assert load_payload({"content-type": "application/x-www-form-urlencoded"}, body) == {"zen": "a & b = c"}


@pytest.mark.parametrize("content_type, body, message", [
    ("application/json", b"{not json", "not valid JSON"),
    ("application/json", b"\xff\xfe", "not UTF-8"),
    ("application/x-www-form-urlencoded", b"other=1", "payload"),
    ("application/x-www-form-urlencoded", b"payload=1&payload=2", "payload"),
    ("application/x-www-form-urlencoded", b"payload=%7Bnope", "not valid JSON"),
    ("application/json", b"[" * 200_000, "nested too deeply"),
])
def test_an_unreadable_body_is_a_400(content_type, body, message):
    with pytest.raises(BadRequest, match=message):
        load_payload({"content-type": content_type}, body)


# --- Events: GitHub -------------------------------------------------------------------------------

GITHUB_URLS = ("github.com/acme/site",)
GITLAB_URLS = ("gitlab.example.com/acme/site",)
GITEA_URLS = ("git.example.org/acme/site",)
# Outside push events GitHub's `repository.url` is its API address: named, and matching no project.
GITHUB_API_URLS = GITHUB_URLS + ("api.github.com/repos/acme/site",)


def github(event: str, data: dict[str, Any]) -> Event:
    return parse("github", {"x-github-event": event}, data)


def test_github_push_to_a_branch_deploys_its_head():
    event = github("push", payload("github_push"))
    assert event == Event("deploy", GITHUB_URLS, branch="main",
                          commit="0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", preview=False, reason="push")


def test_github_push_names_the_repository_by_every_address():
    event = github("push", payload("github_push", repository__url="https://api.github.com/repos/acme/site"))
    assert event.repo_urls == ("github.com/acme/site", "api.github.com/repos/acme/site")


def test_github_push_keeps_slashes_in_branch_names():
    event = github("push", payload("github_push", ref="refs/heads/feature/new-nav"))
    assert (event.kind, event.branch) == ("deploy", "feature/new-nav")


@pytest.mark.parametrize("changes", [
    {"deleted": True, "after": "0" * 40},
    {"after": "0" * 40},  # a forge that leaves out `deleted`
])
def test_github_push_deleting_a_branch_drops_it(changes):
    event = github("push", payload("github_push", ref="refs/heads/old-feature", **changes))
    assert event == Event("delete_branch", GITHUB_URLS, branch="old-feature", reason="branch deleted")


@pytest.mark.parametrize("ref, reason", [
    ("refs/tags/v1.0.0", "tag push"),
    ("refs/notes/commits", "the pushed ref is not a branch"),
])
def test_github_push_of_another_ref_is_ignored(ref, reason):
    event = github("push", payload("github_push", ref=ref))
    assert (event.kind, event.reason, event.repo_urls) == ("ignore", reason, GITHUB_URLS)


def test_github_ping_is_answered():
    event = github("ping", payload("github_ping"))
    assert (event.kind, event.repo_urls) == ("ping", GITHUB_API_URLS)


def test_github_ping_of_an_organisation_hook_names_no_repository():
    assert github("ping", payload("github_ping", repository=DROP)) == Event("ping", (), reason="ping")


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_github_pull_request_deploys_a_preview_of_its_head(action):
    event = github("pull_request", payload("github_pull_request", action=action))
    assert event == Event("deploy", GITHUB_API_URLS, branch="landing",
                          commit="c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc", preview=True, reason="pull request #7")


@pytest.mark.parametrize("action", ["closed", "edited", "labeled", "assigned"])
def test_github_pull_request_actions_that_change_no_code_are_ignored(action):
    event = github("pull_request", payload("github_pull_request", action=action))
    assert (event.kind, event.reason) == ("ignore", f"action {action}")


def test_github_pull_request_from_a_fork_is_not_deployed():
    data = payload("github_pull_request")
    data["pull_request"]["head"]["repo"]["full_name"] = "mallory/site"
    event = github("pull_request", data)
    assert (event.kind, event.reason) == ("ignore", "pull request from a fork is not deployed")
    assert event.branch is None


def test_github_pull_request_whose_fork_was_deleted_is_not_deployed():
    data = payload("github_pull_request")
    data["pull_request"]["head"]["repo"] = None
    assert github("pull_request", data).kind == "ignore"


def test_github_delete_event_of_a_branch_drops_it():
    data = {"ref": "landing", "ref_type": "branch", "repository": payload("github_push")["repository"]}
    assert github("delete", data) == Event("delete_branch", GITHUB_URLS, branch="landing", reason="branch deleted")


def test_github_delete_event_of_a_tag_is_ignored():
    data = {"ref": "v1", "ref_type": "tag", "repository": payload("github_push")["repository"]}
    assert github("delete", data).kind == "ignore"


@pytest.mark.parametrize("event, reason", [
    ("issues", "issues events are not deployed"),
    ("workflow_run", "workflow_run events are not deployed"),
    ("<script>\n", "unrecognised events are not deployed"),
])
def test_github_other_events_are_ignored(event, reason):
    parsed = github(event, payload("github_push"))
    assert (parsed.kind, parsed.reason) == ("ignore", reason)


# --- Events: GitLab -------------------------------------------------------------------------------

def gitlab(event: str, data: dict[str, Any]) -> Event:
    return parse("gitlab", {"x-gitlab-event": event}, data)


def test_gitlab_push_deploys_the_checked_out_commit():
    event = gitlab("Push Hook", payload("gitlab_push"))
    assert event == Event("deploy", GITLAB_URLS, branch="main", commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                          reason="push")


def test_gitlab_push_deleting_a_branch_drops_it():
    event = gitlab("Push Hook", payload("gitlab_push", ref="refs/heads/old", after="0" * 40, checkout_sha=None))
    assert event == Event("delete_branch", GITLAB_URLS, branch="old", reason="branch deleted")


def test_gitlab_tag_push_is_ignored():
    event = gitlab("Tag Push Hook", payload("gitlab_push", ref="refs/tags/v1.0.0"))
    assert (event.kind, event.reason) == ("ignore", "tag push")


@pytest.mark.parametrize("changes", [
    {"object_attributes__action": "open"},
    {"object_attributes__action": "reopen"},
    {"object_attributes__action": "update", "object_attributes__oldrev": "95790bf891e76fee5e1747ab589903a6a1f80f22"},
])
def test_gitlab_merge_request_deploys_a_preview_of_its_source_branch(changes):
    event = gitlab("Merge Request Hook", payload("gitlab_merge_request", **changes))
    assert event == Event("deploy", GITLAB_URLS, branch="landing", commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                          preview=True, reason="merge request !3")


@pytest.mark.parametrize("changes, reason", [
    ({"object_attributes__action": "update"}, "merge request update without new commits"),
    ({"object_attributes__action": "close"}, "action close"),
    ({"object_attributes__action": "merge"}, "action merge"),
    ({"object_attributes__action": "approved"}, "action approved"),
    ({"object_attributes__action": DROP}, "action none"),
    ({"object_attributes__source_project_id": 4242}, "merge request from a fork is not deployed"),
])
def test_gitlab_merge_requests_that_must_not_deploy_are_ignored(changes, reason):
    event = gitlab("Merge Request Hook", payload("gitlab_merge_request", **changes))
    assert (event.kind, event.reason, event.branch) == ("ignore", reason, None)


def test_gitlab_other_hooks_are_ignored():
    event = gitlab("Pipeline Hook", {"object_kind": "pipeline"})
    assert (event.kind, event.reason) == ("ignore", "Pipeline Hook events are not deployed")


# --- Events: Gitea and Forgejo --------------------------------------------------------------------

@pytest.mark.parametrize("header", ["x-gitea-event", "x-forgejo-event"])
def test_gitea_push_deploys_its_head(header):
    event = parse("gitea", {header: "push"}, payload("gitea_push"))
    assert event == Event("deploy", GITEA_URLS, branch="develop", commit="bffeb74224043ba2feb48d137756c8a9331c449a",
                          reason="push")


def gitea(event: str, data: dict[str, Any]) -> Event:
    return parse("gitea", {"x-gitea-event": event}, data)


@pytest.mark.parametrize("action", ["opened", "synchronized", "reopened"])
def test_gitea_pull_request_deploys_a_preview_of_its_head(action):
    event = gitea("pull_request", payload("gitea_pull_request", action=action))
    assert event == Event("deploy", GITEA_URLS, branch="dark-mode", commit="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                          preview=True, reason="pull request #12")


def test_gitea_pull_request_from_a_fork_is_not_deployed():
    data = payload("gitea_pull_request")
    data["pull_request"]["head"]["repo"]["full_name"] = "mallory/site"
    assert gitea("pull_request", data).reason == "pull request from a fork is not deployed"


def test_gitea_closed_pull_request_is_ignored():
    assert gitea("pull_request", payload("gitea_pull_request", action="closed")).reason == "action closed"


def test_gitea_branch_deletion_drops_the_branch():
    assert gitea("delete", payload("gitea_delete")) == Event("delete_branch", GITEA_URLS, branch="dark-mode",
                                                             reason="branch deleted")


def test_gitea_tag_deletion_and_creation_are_ignored():
    assert gitea("delete", payload("gitea_delete", ref_type="tag")).kind == "ignore"
    assert gitea("create", payload("gitea_delete")).kind == "ignore"


# --- Malformed payloads ---------------------------------------------------------------------------

@pytest.mark.parametrize("forge, event, data, field", [
    ("github", "push", payload("github_push", ref=DROP), "ref"),
    ("github", "push", payload("github_push", ref=42), "ref"),
    ("github", "push", payload("github_push", after=None), "after"),
    ("github", "push", payload("github_push", after="not-a-sha"), "after"),
    ("github", "push", payload("github_push", after="0d1a26e"), "after"),
    ("github", "push", payload("github_push", deleted="yes"), "deleted"),
    ("github", "push", payload("github_push", repository=DROP), "repository"),
    ("github", "push", payload("github_push", repository=["acme/site"]), "repository"),
    ("github", "push", payload("github_push", ref="refs/heads/--upload-pack=x"), "ref"),
    ("github", "push", payload("github_push", ref="refs/heads/a..b"), "ref"),
    ("github", "push", payload("github_push", ref="refs/heads/" + "b" * 300), "ref"),
    ("github", "pull_request", payload("github_pull_request", action=7), "action"),
    ("github", "pull_request", payload("github_pull_request", pull_request="7"), "pull_request"),
    ("github", "pull_request", payload("github_pull_request", pull_request={}), "pull_request.base.repo.full_name"),
    ("github", "pull_request", payload("github_pull_request", number="7"), "number"),
    ("github", "pull_request", payload("github_pull_request", number=True), "number"),
    ("github", "delete", {"ref": "x", "repository": {}}, "ref_type"),
    ("gitlab", "Push Hook", payload("gitlab_push", checkout_sha=5), "checkout_sha"),
    ("gitlab", "Push Hook", payload("gitlab_push", ref=None), "ref"),
    ("gitlab", "Merge Request Hook", payload("gitlab_merge_request", object_attributes="open"), "object_attributes"),
    ("gitlab", "Merge Request Hook", payload("gitlab_merge_request", object_attributes__source_project_id="15"),
     "object_attributes.source_project_id"),
    ("gitlab", "Merge Request Hook", payload("gitlab_merge_request", object_attributes__last_commit=DROP),
     "object_attributes.last_commit.id"),
    ("gitlab", "Merge Request Hook", payload("gitlab_merge_request", object_attributes__source_branch="-x"),
     "object_attributes.source_branch"),
    ("gitea", "pull_request", payload("gitea_pull_request", pull_request__head__sha=None), "pull_request.head.sha"),
    ("gitea", "delete", payload("gitea_delete", ref="a b"), "ref"),
])
def test_a_malformed_payload_is_a_400_naming_the_field(forge, event, data, field):
    header = {"github": "x-github-event", "gitlab": "x-gitlab-event", "gitea": "x-gitea-event"}[forge]
    with pytest.raises(BadRequest) as refused:
        parse(forge, {header: event}, data)
    assert refused.value.field == field
    assert field in refused.value.message


@pytest.mark.parametrize("forge, headers, data, message", [
    ("github", {}, payload("github_push"), "X-GitHub-Event"),
    ("gitlab", {}, payload("gitlab_push"), "X-Gitlab-Event"),
    ("gitea", {"x-github-event": "push"}, payload("gitea_push"), "X-Gitea-Event"),
    ("github", {"x-github-event": "push"}, ["not", "an", "object"], "JSON object"),
    ("gitlab", {"x-gitlab-event": "Push Hook"}, "push", "JSON object"),
])
def test_a_delivery_without_its_event_is_a_400(forge, headers, data, message):
    with pytest.raises(BadRequest, match=message):
        parse(forge, headers, data)


@pytest.mark.parametrize("data", [None, [], "push", {"repository": "acme/site"}, {"project": [1]},
                                  {"repository": {"clone_url": ["x"]}}, {"object_attributes": {"target": 5}}])
def test_reading_the_repository_before_the_signature_never_refuses(data):
    # The receiver reads these before it knows the delivery is genuine: no 400 may leak from here.
    for forge in FORGES:
        assert repo_urls(forge, data) == ()


def test_a_gitlab_merge_request_names_its_target_never_its_source():
    data = payload("gitlab_merge_request", object_attributes__source_project_id=99)
    data["object_attributes"]["source"]["git_http_url"] = "https://gitlab.example.com/mallory/site.git"
    assert repo_urls("gitlab", data) == GITLAB_URLS


def test_repository_addresses_of_the_wrong_type_are_skipped():
    data = payload("github_push")
    data["repository"].update(clone_url=7, html_url="x" * 5000, ssh_url=None, git_url="", url="not a url")
    assert github("push", data).repo_urls == ()


# --- Repository addresses -------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://github.com/acme/site",
    "https://github.com/acme/site.git",
    "https://GitHub.com/Acme/Site.git",
    "https://github.com/acme/site/",
    "https://github.com./acme/site.git/",
    "http://github.com:80/acme/site",
    "https://token:x-oauth@github.com/acme/site.git",
    "git@github.com:acme/site.git",
    "github.com:acme/site",
    "ssh://git@github.com/acme/site.git",
    "ssh://git@github.com:22/acme/site",
    "git://github.com/acme/site.git",
    "  https://github.com/acme/site  ",
    "https://github.com/acme/site?tab=readme#top",
])
def test_every_address_of_a_repository_normalizes_alike(url):
    assert normalize_repo_url(url) == SITE


@pytest.mark.parametrize("url", [
    "https://github.com/acme/site-docs",
    "https://github.com/acme/site/tree/main",
    "https://gitlab.com/acme/site",
    "https://github.com/other/site",
])
def test_other_repositories_stay_apart(url):
    assert normalize_repo_url(url) != SITE


@pytest.mark.parametrize("url", ["", "not a url", "https://", "https://github.com", "https://[::1/x", "file://rel"])
def test_what_is_no_address_normalizes_to_nothing(url):
    assert normalize_repo_url(url) == ""


def test_a_gitlab_subgroup_path_is_kept_whole():
    assert normalize_repo_url("git@gitlab.com:acme/web/site.git") == "gitlab.com/acme/web/site"


def test_a_local_repository_normalizes_to_its_resolved_path(tmp_path):
    repo = tmp_path / "Site"
    repo.mkdir()
    (tmp_path / "link").symlink_to(repo)
    resolved = str(repo.resolve())
    assert normalize_repo_url(f"file://{repo}") == resolved
    assert normalize_repo_url(f"file://{repo}/") == resolved
    assert normalize_repo_url(f"file://{tmp_path}/link") == resolved
    assert normalize_repo_url(f"file://{tmp_path}/./Site") == resolved
    # Filesystem paths are case-sensitive: no lower-casing.
    assert normalize_repo_url(f"file://{tmp_path}/site") != resolved


def test_payload_addresses_are_compared_in_normal_form(tmp_path):
    data = payload("gitea_push")
    data["repository"]["clone_url"] = f"file://{tmp_path}/"
    event = gitea("push", data)
    assert event.repo_urls == (str(tmp_path.resolve()), "git.example.org/acme/site")

