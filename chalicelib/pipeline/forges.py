"""Git forges' webhooks, without I/O: is a delivery signed, which delivery is it, what does it ask for.

Three dialects: GitHub, GitLab, and Gitea (whose fork Forgejo sends the same payloads under its own
header names). Everything here is a pure function of the request's headers and body, so each
forge's documented payload shapes are table-tested (tests/test_forges.py) without a server.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from chalicelib.errors import BadRequest
from chalicelib.pipeline.validation import check_ref

FORGES = ("github", "gitlab", "gitea")

# ping: answer and do nothing; deploy: build `branch` at `commit`; delete_branch: drop the branch's
# alias; ignore: nothing to do, for `reason`.
Kind = Literal["ping", "deploy", "delete_branch", "ignore"]
# A commit id: SHA-1, or SHA-256 for repositories in git's newer object format.
_COMMIT_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# Forges write an all-zero commit as "after" when a push deleted the ref.
_ZERO_RE = re.compile(r"^0+$")
# An event or action name as it may appear in a reason: the forges' own names are short words.
_NAME_RE = re.compile(r"^[A-Za-z0-9 _.-]{1,64}$")
MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class Event:
    """What a delivery asks for. `repo_urls` are the payload's repository addresses in
    `normalize_repo_url` form, each once; `reason` says in a few words what happened (for an
    ignored delivery: why it is ignored)."""
    kind: Kind
    repo_urls: tuple[str, ...] = ()
    branch: str | None = None
    commit: str | None = None
    preview: bool = False
    reason: str = ""


def _check_forge(forge: str) -> None:
    if forge not in FORGES:
        raise ValueError(f"unknown forge {forge!r}")


# --- Signatures ---------------------------------------------------------------------------------

def verify(forge: str, headers: Mapping[str, str], raw_body: bytes, secret: str) -> bool:
    """Whether the delivery carries proof of `secret`. An empty secret proves nothing."""
    _check_forge(forge)
    if not secret:
        return False
    if forge == "gitlab":
        # GitLab sends the secret itself, not a signature of the body:
        # https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook
        return _same(headers.get("x-gitlab-token", ""), secret)
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if forge == "github":
        # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        return _same(_after_prefix(headers.get("x-hub-signature-256")), expected)
    # Gitea and Forgejo send the bare hex digest, Forgejo under its own name too, and both add
    # GitHub's header: https://forgejo.org/docs/latest/user/webhooks/ . The first header present
    # is the one checked, so a wrong signature is never rescued by another header.
    for name in ("x-forgejo-signature", "x-gitea-signature"):
        if name in headers:
            return _same(headers[name], expected)
    return _same(_after_prefix(headers.get("x-hub-signature-256")), expected)


def _after_prefix(value: str | None) -> str:
    return value[len("sha256="):] if value and value.startswith("sha256=") else ""


def _same(given: str, expected: str) -> bool:
    """Constant-time equality; an empty or absent value never matches. Bytes, because
    compare_digest refuses str with non-ASCII characters, which a header may hold."""
    return bool(given) and hmac.compare_digest(given.strip().encode(), expected.encode())


# --- Deliveries -------------------------------------------------------------------------------

def delivery_id(forge: str, headers: Mapping[str, str]) -> str | None:
    """The id a forge gives a delivery and keeps when it delivers it again, or None.

    GitHub keeps X-GitHub-Delivery on a redelivery:
    https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers .
    GitLab's Idempotency-Key (GitLab 17.4 and later) is the header documented to stay the same
    across retries; older GitLab sends only X-Gitlab-Event-UUID, so that is the fallback:
    https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers .
    """
    _check_forge(forge)
    names = {"github": ("x-github-delivery",),
             "gitlab": ("idempotency-key", "x-gitlab-event-uuid"),
             "gitea": ("x-forgejo-delivery", "x-gitea-delivery")}[forge]
    for name in names:
        value = (headers.get(name) or "").strip()
        if value:
            return value
    return None


def load_payload(headers: Mapping[str, str], raw_body: bytes) -> Any:
    """The delivery's JSON, from a JSON body or from the `payload` field of a form body (GitHub's
    and Gitea's "application/x-www-form-urlencoded" content type), else a 400."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the webhook body is not UTF-8") from None
    if media_type == "application/x-www-form-urlencoded":
        fields = parse_qs(text, keep_blank_values=True)
        if len(fields.get("payload", ())) != 1:
            raise BadRequest("a form webhook body must carry one `payload` field")
        text = fields["payload"][0]
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequest("the webhook payload is not valid JSON") from None
    except RecursionError:  # json's C decoder recurses once per `[` or `{`
        raise BadRequest("the webhook payload's JSON is nested too deeply") from None


# --- Events -----------------------------------------------------------------------------------

def parse(forge: str, headers: Mapping[str, str], payload: Any) -> Event:
    """What the delivery asks for, or a 400 naming the payload field that is missing or mistyped."""
    _check_forge(forge)
    if not isinstance(payload, dict):
        raise BadRequest("the webhook payload must be a JSON object")
    urls = repo_urls(forge, payload)
    if forge == "github":
        return _github(_event_name(headers, "X-GitHub-Event"), payload, urls)
    if forge == "gitlab":
        return _gitlab(_event_name(headers, "X-Gitlab-Event"), payload, urls)
    return _gitea(_event_name(headers, "X-Forgejo-Event", "X-Gitea-Event"), payload, urls)


def _event_name(headers: Mapping[str, str], *names: str) -> str:
    """The event header's value; `names` as the forge spells them, looked up in lower case."""
    for name in names:
        if headers.get(name.lower()):
            return headers[name.lower()].strip()
    raise BadRequest(f"the webhook has no {names[-1]} header")


def _github(event: str, payload: dict[str, Any], urls: tuple[str, ...]) -> Event:
    # Payload shapes: https://docs.github.com/en/webhooks/webhook-events-and-payloads
    if event == "ping":
        return Event("ping", urls, reason="ping")
    if event == "push":
        return _push(payload, urls, deleted=_get(payload, "deleted", bool, optional=True) is True)
    if event == "pull_request":
        return _pull_request(payload, urls, ("opened", "synchronize", "reopened"))
    if event == "delete":
        return _delete_event(payload, urls)
    return Event("ignore", urls, reason=f"{_shown(event)} events are not deployed")


def _gitea(event: str, payload: dict[str, Any], urls: tuple[str, ...]) -> Event:
    # Payload shapes: https://docs.gitea.com/usage/webhooks and
    # https://forgejo.org/docs/latest/user/webhooks/ ; Gitea spells GitHub's "synchronize"
    # "synchronized". Gitea has no ping: its "Test Delivery" sends a push of the latest commit.
    if event == "push":
        return _push(payload, urls, deleted=False)
    if event == "pull_request":
        return _pull_request(payload, urls, ("opened", "synchronized", "reopened"))
    if event == "delete":
        return _delete_event(payload, urls)
    return Event("ignore", urls, reason=f"{_shown(event)} events are not deployed")


def _gitlab(event: str, payload: dict[str, Any], urls: tuple[str, ...]) -> Event:
    # Payload shapes: https://docs.gitlab.com/user/project/integrations/webhook_events/
    if event == "Push Hook":
        ref = _get(payload, "ref", str)
        after = _get(payload, "after", str)
        branch = _branch_of(ref, "ref")
        if branch is None:
            return Event("ignore", urls, reason=_not_a_branch(ref))
        if _ZERO_RE.match(after):
            return Event("delete_branch", urls, branch=branch, reason="branch deleted")
        commit = _get(payload, "checkout_sha", str, optional=True) or after
        return Event("deploy", urls, branch=branch, commit=_commit(commit, "checkout_sha"), reason="push")
    if event == "Tag Push Hook":
        return Event("ignore", urls, reason="tag push")
    if event == "Merge Request Hook":
        return _merge_request(payload, urls)
    return Event("ignore", urls, reason=f"{_shown(event)} events are not deployed")


def _merge_request(payload: dict[str, Any], urls: tuple[str, ...]) -> Event:
    action = _get(payload, "object_attributes.action", str, optional=True) or ""
    if action not in ("open", "update", "reopen"):
        return Event("ignore", urls, reason=f"action {_shown(action or 'none')}")
    # An "update" with no `oldrev` changed the title, labels or the like, not the code.
    if action == "update" and _get(payload, "object_attributes.oldrev", str, optional=True) is None:
        return Event("ignore", urls, reason="merge request update without new commits")
    source = _get(payload, "object_attributes.source_project_id", int)
    target = _get(payload, "object_attributes.target_project_id", int)
    if source != target:
        return Event("ignore", urls, reason="merge request from a fork is not deployed")
    branch = _branch(_get(payload, "object_attributes.source_branch", str), "object_attributes.source_branch")
    commit = _commit(_get(payload, "object_attributes.last_commit.id", str), "object_attributes.last_commit.id")
    number = _get(payload, "object_attributes.iid", int, optional=True)
    return Event("deploy", urls, branch=branch, commit=commit, preview=True,
                 reason=f"merge request !{number}" if number is not None else "merge request")


def _push(payload: dict[str, Any], urls: tuple[str, ...], *, deleted: bool) -> Event:
    """GitHub's and Gitea's push: one shape (Gitea copied GitHub's)."""
    _get(payload, "repository", dict)
    ref = _get(payload, "ref", str)
    branch = _branch_of(ref, "ref")
    if branch is None:
        return Event("ignore", urls, reason=_not_a_branch(ref))
    after = _get(payload, "after", str)
    if deleted or _ZERO_RE.match(after):
        return Event("delete_branch", urls, branch=branch, reason="branch deleted")
    return Event("deploy", urls, branch=branch, commit=_commit(after, "after"), reason="push")


def _pull_request(payload: dict[str, Any], urls: tuple[str, ...], deploying: tuple[str, ...]) -> Event:
    """GitHub's and Gitea's pull_request: the head branch of a pull request within the repository."""
    _get(payload, "repository", dict)
    action = _get(payload, "action", str)
    if action not in deploying:
        return Event("ignore", urls, reason=f"action {_shown(action)}")
    # The head repository is null once a fork is deleted: still not this repository.
    head_repo = _get(payload, "pull_request.head.repo.full_name", str, optional=True)
    base_repo = _get(payload, "pull_request.base.repo.full_name", str)
    if head_repo is None or head_repo.lower() != base_repo.lower():
        return Event("ignore", urls, reason="pull request from a fork is not deployed")
    branch = _branch(_get(payload, "pull_request.head.ref", str), "pull_request.head.ref")
    commit = _commit(_get(payload, "pull_request.head.sha", str), "pull_request.head.sha")
    number = _get(payload, "number", int, optional=True)
    return Event("deploy", urls, branch=branch, commit=commit, preview=True,
                 reason=f"pull request #{number}" if number is not None else "pull request")


def _delete_event(payload: dict[str, Any], urls: tuple[str, ...]) -> Event:
    """The `delete` event of GitHub and Gitea: `ref` is the short name, `ref_type` branch or tag."""
    _get(payload, "repository", dict)
    if _get(payload, "ref_type", str) != "branch":
        return Event("ignore", urls, reason="tag deleted")
    return Event("delete_branch", urls, branch=_branch(_get(payload, "ref", str), "ref"),
                 reason="branch deleted")


def _shown(name: str) -> str:
    """A forge-given name as it may appear in a reason: short and plain, else a placeholder."""
    return name if _NAME_RE.match(name) else "unrecognised"


# --- Fields -----------------------------------------------------------------------------------

_KIND_NAMES = {str: "a string", dict: "an object", bool: "true or false", int: "an integer"}


def _get(payload: dict[str, Any], path: str, kind: type, *, optional: bool = False) -> Any:
    """The payload's value at a dotted path, of type `kind`; absent or null is None when
    `optional`, else a 400 naming the path, as is a value of another type."""
    value: Any = payload
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if value is None:
            break
        if not isinstance(value, dict):
            above = ".".join(parts[:depth])
            raise BadRequest(f"the payload's {above} must be an object", field=above)
        value = value.get(part)
    if value is None:
        if optional:
            return None
        raise BadRequest(f"the payload has no {path}", field=path)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRequest(f"the payload's {path} must be {_KIND_NAMES[kind]}", field=path)
    return value


def _branch_of(ref: str, field: str) -> str | None:
    """The branch a full ref names, or None for any other ref (tags, notes, ...)."""
    if not ref.startswith("refs/heads/"):
        return None
    return _branch(ref[len("refs/heads/"):], field)


def _not_a_branch(ref: str) -> str:
    return "tag push" if ref.startswith("refs/tags/") else "the pushed ref is not a branch"


def _branch(name: str, field: str) -> str:
    try:
        checked = check_ref(name)
    except BadRequest:
        raise BadRequest(f"the payload's {field} is not a branch name percel accepts", field=field) from None
    assert checked is not None
    return checked


def _commit(sha: str, field: str) -> str:
    if not _COMMIT_RE.match(sha.lower()):
        raise BadRequest(f"the payload's {field} is not a commit id", field=field)
    return sha.lower()


# Where each forge's payload names the repository. GitHub's and Gitea's `repository.url` is an
# API address in most GitHub events (harmless: it matches no project), the web address in push
# events. GitLab's merge request `source` is left out: when it differs from the target it is a
# fork, which must not pick a project.
_HUB_URL_FIELDS = {"repository": ("clone_url", "html_url", "ssh_url", "git_url", "url")}
_GITLAB_URL_FIELDS = {"project": ("git_http_url", "git_ssh_url", "web_url", "http_url"),
                      "repository": ("url", "homepage", "git_http_url", "git_ssh_url"),
                      "object_attributes.target": ("git_http_url", "git_ssh_url", "web_url", "http_url")}


def repo_urls(forge: str, payload: Any) -> tuple[str, ...]:
    """Every repository address the payload names, in `normalize_repo_url` form, each once. Never
    a refusal: the receiver needs these to find the secret before it trusts (and so checks) the
    rest of the payload; a value that is no address is skipped, as it can match no project."""
    _check_forge(forge)
    found: list[str] = []
    for where, fields in (_GITLAB_URL_FIELDS if forge == "gitlab" else _HUB_URL_FIELDS).items():
        place = payload
        for part in where.split("."):
            place = place.get(part) if isinstance(place, dict) else None
        for name in fields if isinstance(place, dict) else ():
            value = place.get(name)
            if isinstance(value, str) and 0 < len(value) <= MAX_URL_CHARS:
                found.append(normalize_repo_url(value))
    return tuple(dict.fromkeys(url for url in found if url))


# --- Repository addresses ---------------------------------------------------------------------

# scp-like syntax, `[user@]host:path`, which git reads as ssh when there is no "://" and the part
# before the first colon has no slash (git-clone(1), "GIT URLS").
_SCP_RE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.+)$")


def normalize_repo_url(url: str) -> str:
    """One comparable form of a repository address, or "" for something that is no address.

    `https://Host/Owner/Repo.git`, `git@host:owner/repo.git`, `ssh://git@host:2222/owner/repo`
    and `git://host/owner/repo` all become `host/owner/repo`: scheme, user, port, query, a
    trailing `/` and `.git` dropped, all lower-case. A forge serves one repository over HTTP and
    SSH on different ports, so ports cannot tell repositories apart. Paths are compared without
    case because GitHub, GitLab and Gitea all route owner and repository names case-insensitively
    (a project created as `Owner/Repo` answers at `owner/repo`). Lumping together two
    repositories that differ only in case (on a plain git server) costs nothing: a webhook still
    has to verify with the project's own secret.

    `file://` addresses (the local stage's) become the resolved path, `.git` kept: a bare
    repository's directory is named that way, and filesystem paths are case-sensitive.
    """
    url = url.strip()
    if url.startswith("file://"):
        path = unquote(urlsplit(url).path)
        return os.path.realpath(path) if path.startswith("/") else ""
    if "://" in url:
        try:
            parts = urlsplit(url)
            host, path = parts.hostname or "", parts.path
        except ValueError:
            return ""
    else:
        scp = _SCP_RE.match(url)
        if not scp:
            return ""
        host, path = scp["host"].lower(), scp["path"]
    path = unquote(path).strip("/").lower()
    while path.endswith(".git"):
        path = path[:-len(".git")].rstrip("/")
    host = host.rstrip(".").lower()
    return f"{host}/{path}" if host and path else ""
