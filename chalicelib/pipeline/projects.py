"""Projects: a repository with settings, a production address, a preview address per branch,
promote and instant rollback, custom domains (docs/DECISIONS.md#aliases).

Deployments stay immutable at `<id>.<ROOT_DOMAIN>`; a project's addresses are pointers at them
(chalicelib/state/projects.py), moved when a deployment of the project is deployed (in the
record's own transition script: state/projects.py MOVE_ALIASES_LUA), by promote and by rollback.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

from chalicelib import ids
from chalicelib.context import Context
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.pipeline import deploy, lifecycle
from chalicelib.pipeline.token_admin import PROJECT_NAME
from chalicelib.pipeline.validation import (
    DeployRequest,
    ascii_host,
    check_command,
    check_env,
    check_force,
    check_node_version,
    check_prebuilt,
    check_ref,
    check_relative_dir,
    check_upload_id,
    checked_repo,
)
from chalicelib.state.projects import PRODUCTION
from chalicelib.state.records import PublicRecord, State, public_view
from chalicelib.state.records import now as record_stamp

# `<name>-git-<slug>` must stay one DNS label (63 characters, RFC 1035 §2.3.4) with room for
# at least a character of slug and a 6-character hash: 63 - len("-git-x-abcdef").
MAX_NAME = 50
BRANCH_MARK = "-git-"
HASH_CHARS = 6
LABEL_MAX = 63
TARGETS = ("production", "preview")
SETTINGS = ("repo_url", "production_branch", "root_dir", "install_command", "build_command",
            "output_dir", "node_version")
BODY_FIELDS = frozenset({"name", *SETTINGS, "env"})
DEFAULT_BRANCH = "main"
# A domain: at least two labels of letters, digits and inner hyphens (RFC 1123 §2.1), 253 at most.
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                     r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LIST = 200


# --- names and labels --------------------------------------------------------------------

def check_name(value: Any, ctx: Context) -> str:
    """A project name: a DNS label of at most MAX_NAME characters that can never be mistaken
    for a deployment id, a branch alias or the API's host."""
    if not isinstance(value, str) or len(value) > MAX_NAME or not PROJECT_NAME.match(value):
        raise BadRequest(f"name must be 1 to {MAX_NAME} lowercase letters, digits and inner "
                         "hyphens", field="name")
    if ids.is_valid_id(value):
        raise BadRequest("name must not look like a deployment id (16 letters and digits "
                         "starting with a letter): add a hyphen", field="name")
    # Not ending in "-git" either: project "a-git"'s branch "x" and project "a"'s branch
    # "git-x" would both be a-git-git-x.
    if BRANCH_MARK in value or value.endswith(BRANCH_MARK[:-1]):
        raise BadRequest(f"name must not contain {BRANCH_MARK!r} nor end in "
                         f"{BRANCH_MARK[:-1]!r}: those mark branch addresses", field="name")
    api_host = ctx.settings.api_host.lower()
    if api_host and api_host == f"{value}.{ctx.settings.root_domain.lower()}":
        raise BadRequest("that name is the API's own address", field="name")
    return value


def branch_label(name: str, branch: str) -> str:
    """`<name>-git-<slug>`: the branch lower-cased, every run of other characters a `-`; when
    that is too long for a DNS label, the slug is cut and a short hash of the branch added so
    two long branches do not share it (Vercel's preview URLs behave alike:
    https://vercel.com/docs/deployments/generated-urls#truncation)."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-") or "branch"
    label = f"{name}{BRANCH_MARK}{slug}"
    if len(label) <= LABEL_MAX:
        return label
    digest = hashlib.sha256(branch.encode()).hexdigest()[:HASH_CHARS]
    room = LABEL_MAX - len(name) - len(BRANCH_MARK) - 1 - HASH_CHARS
    return f"{name}{BRANCH_MARK}{slug[:room].rstrip('-')}-{digest}"


def check_domain(value: Any, ctx: Context) -> str:
    """A custom domain: a full host name outside ROOT_DOMAIN (those are percel's) and not the
    API's host; IDNs become their ASCII form, as a Host header carries them."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("domain must be a host name such as www.example.com", field="domain")
    try:
        domain = ascii_host(value.strip().rstrip(".").lower())
    except BadRequest:
        raise BadRequest("domain must be a host name such as www.example.com",
                         field="domain") from None
    if not _DOMAIN.match(domain) or _is_address(domain):
        raise BadRequest("domain must be a host name such as www.example.com", field="domain")
    root = ctx.settings.root_domain.lower()
    if domain == root or domain.endswith("." + root):
        raise BadRequest(f"names under {root} are percel's own addresses", field="domain")
    if domain == ctx.settings.api_host.lower():
        raise BadRequest("that domain is the API's own address", field="domain")
    return domain


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- settings ------------------------------------------------------------------------------

def _settings(ctx: Context, body: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The project hash's fields a body sets, and those it clears (null)."""
    fields: dict[str, str] = {}
    cleared: list[str] = []
    checks: dict[str, Callable[[Any], str | None]] = {
        "repo_url": lambda v: checked_repo(v, local=ctx.settings.is_local)[0],
        "production_branch": lambda v: check_ref(v) or DEFAULT_BRANCH,
        "root_dir": lambda v: check_relative_dir(v, "root_dir"),
        "install_command": lambda v: check_command(v, "install_command"),
        "build_command": lambda v: check_command(v, "build_command"),
        "output_dir": lambda v: check_relative_dir(v, "output_dir"),
        "node_version": check_node_version,
    }
    for name, check in checks.items():
        if name in body:
            value = check(body[name])
            if value is None:
                cleared.append(name)
            else:
                fields[name] = value
    if "env" in body:
        fields.update(_env_fields(ctx, body["env"]))
    return fields, tuple(cleared)


def _env_fields(ctx: Context, value: Any) -> dict[str, str]:
    """`env`: {"production": {...}, "preview": {...}}; each target given replaces that
    target's env. Values are sealed (docs/DECISIONS.md#secrets-at-rest); names kept in clear."""
    if not isinstance(value, dict) or set(value) - set(TARGETS):
        raise BadRequest('env must be an object {"production": {...}, "preview": {...}}',
                         field="env")
    fields = {}
    for target in TARGETS:
        if target in value:
            env = check_env(value[target])
            fields[f"env_{target}"] = deploy.seal_env(ctx, env)
            fields[f"env_names_{target}"] = json.dumps(sorted(env))
    return fields


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}", field=unknown[0])
    return body


# --- the project routes ---------------------------------------------------------------------

def create_project(ctx: Context, body: Any) -> dict[str, Any]:
    """201's body: the project, and its webhook secret (the only time it is shown)."""
    body = _object(body)
    name = check_name(body.get("name"), ctx)
    if "repo_url" not in body:
        raise BadRequest("repo_url is required", field="repo_url")
    fields, _ = _settings(ctx, body)
    fields.setdefault("production_branch", DEFAULT_BRANCH)
    webhook_secret = secrets.token_hex(32)
    fields["webhook_secret"] = deploy.seal_env(ctx, {"secret": webhook_secret})
    if not ctx.projects.create(name, fields):
        raise Conflict(f"a project named {name!r} exists")
    return {**get_project(ctx, name), "webhook_secret": webhook_secret}


def update_project(ctx: Context, name: str, body: Any) -> dict[str, Any]:
    _project(ctx, name)
    body = _object(body)
    if "name" in body:
        raise BadRequest("a project cannot be renamed", field="name")
    fields, cleared = _settings(ctx, body)
    if "production_branch" in cleared:
        fields["production_branch"], cleared = DEFAULT_BRANCH, tuple(
            c for c in cleared if c != "production_branch")
    if "repo_url" in cleared:
        raise BadRequest("repo_url cannot be removed", field="repo_url")
    ctx.projects.update(name, fields, cleared)
    return get_project(ctx, name)


def delete_project(ctx: Context, name: str) -> dict[str, Any]:
    """Its addresses and domains stop answering at once; its deployments are taken down
    (410) and swept by cleanup, as when each is deleted."""
    view = get_project(ctx, name)
    for deployment_id in ctx.projects.delete(name):
        lifecycle.delete(ctx, deployment_id)
    return {**view, "deleted": True}


def get_project(ctx: Context, name: str) -> dict[str, Any]:
    project = _project(ctx, name)
    branches = ctx.projects.branches(name)
    settings = ctx.settings
    return {
        "name": name, "url": settings.site_url(name),
        **{field: project.get(field) for field in SETTINGS},
        "env": {target: json.loads(project.get(f"env_names_{target}") or "[]")
                for target in TARGETS},
        "production_deployment": project.get("production") or None,
        "auto_promote": project.get("auto_promote") == "1",
        "branches": {branch: pointer.deployment_id for branch, pointer in branches.items()},
        "preview_urls": {branch: settings.site_url(branch_label(name, branch))
                         for branch in branches},
        "domains": {domain: branch or None for domain, branch in ctx.projects.domains(name).items()},
        "created_at": _stamp(project.get("created_at")),
        "updated_at": _stamp(project.get("updated_at")),
    }


def _stamp(value: str | None) -> str | None:
    return record_stamp(float(value)) if value else None


def list_projects(ctx: Context, visible: Callable[[str], bool]) -> list[dict[str, Any]]:
    return [get_project(ctx, name) for name in ctx.projects.names() if visible(name)]


def _project(ctx: Context, name: str) -> dict[str, str]:
    project = ctx.projects.get(name) if PROJECT_NAME.match(name or "") else None
    if project is None:
        raise NotFound(f"no project {name!r}")
    return project


# --- deploying a project ----------------------------------------------------------------------

def create_project_deployment(ctx: Context, name: str, body: Any,
                              token_id: str = "") -> dict[str, Any]:
    """POST /api/projects/{name}/deployments {"ref"?}: the production branch when omitted. Or
    {"upload_id", ...}: an upload of `token_id`'s (deploy_upload)."""
    if body is None:
        body = {}
    if isinstance(body, dict) and "upload_id" in body:
        return deploy_upload(ctx, name, body, token_id)
    if not isinstance(body, dict) or set(body) - {"ref", "force"}:
        raise BadRequest("the body must be a JSON object with at most a `ref` and `force`, or "
                         "an `upload_id`")
    project = _project(ctx, name)
    ref = check_ref(body.get("ref")) or project["production_branch"]
    return deploy_branch(ctx, name, ref, trigger="api", force=check_force(body.get("force")))


def deploy_branch(ctx: Context, name: str, branch: str, *, commit: str | None = None,
                  trigger: str = "api", force: bool = False) -> dict[str, Any]:
    """Deploy the head of `branch` with the project's settings and its target's env: the
    production target for the production branch, preview otherwise. (`commit`, from a push
    webhook, is what the forge said the head is; the clone takes the head it finds.)"""
    project = _project(ctx, name)
    repo_url, pin = checked_repo(project["repo_url"], local=ctx.settings.is_local)
    request = DeployRequest(repo_url=repo_url, pin=pin, ref=branch, force=force,
                            **_build_settings(project))
    return _deploy(ctx, name, project, branch, request, trigger)


def _build_settings(project: dict[str, str]) -> dict[str, Any]:
    """The project's settings a build takes, as DeployRequest fields."""
    return {name: project.get(name) for name in SETTINGS if name not in ("repo_url",
                                                                         "production_branch")}


# The branch an upload's preview is filed under when the body names none: its address is
# `<name>-git-upload`, so the newest preview upload is always at one address.
UPLOAD_BRANCH = "upload"
UPLOAD_FIELDS = frozenset({"upload_id", "prebuilt", "target", "branch", "force"})


def deploy_upload(ctx: Context, name: str, body: dict[str, Any], token_id: str) -> dict[str, Any]:
    """Deploy an upload (pipeline/uploads.py) with the project's settings and the target's env:
    `target` preview (default) under `branch` (default UPLOAD_BRANCH), or production, which is
    the production branch. A prebuilt upload is the site as it is: the project's root_dir,
    commands and output_dir are for builds, so none of them applies."""
    unknown = sorted(set(body) - UPLOAD_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} for an upload's deployment",
                         field=unknown[0])
    project = _project(ctx, name)
    target = body.get("target", "preview")
    if target not in TARGETS:
        raise BadRequest("target must be production or preview", field="target")
    production = project["production_branch"]
    branch = check_ref(body.get("branch")) or (production if target == "production"
                                               else UPLOAD_BRANCH)
    if (branch == production) != (target == "production"):
        raise BadRequest(f"the production target is the production branch ({production}); a "
                         "preview is any other branch", field="branch")
    upload_id = check_upload_id(body["upload_id"])
    prebuilt = check_prebuilt(body.get("prebuilt"), {})
    request = DeployRequest(repo_url="", upload_id=upload_id, prebuilt=prebuilt,
                            force=check_force(body.get("force")))
    if not prebuilt:
        request = dataclasses.replace(request, **_build_settings(project))
    return _deploy(ctx, name, project, branch, request, "api", uploader=token_id)


def _deploy(ctx: Context, name: str, project: dict[str, str], branch: str,
            request: DeployRequest, trigger: str, uploader: str = "") -> dict[str, Any]:
    target = "production" if branch == project["production_branch"] else "preview"
    origin = deploy.Origin(project=name, uid=project["uid"], branch=branch, target=target,
                           trigger=trigger, sealed_env=project.get(f"env_{target}") or "")
    created = deploy.run(ctx, request, origin, uploader=uploader)
    ctx.projects.add_branch_route(name, branch, branch_label(name, branch))
    return {**created, "project": name, "branch": branch, "target": target}


def list_project_deployments(ctx: Context, name: str, limit: str | None) -> list[PublicRecord]:
    _project(ctx, name)
    count = deploy.DEFAULT_LIST if limit is None else deploy.parse_limit(limit)
    records = (ctx.records.get(i) for i in ctx.projects.deployment_ids(name, count))
    return [public_view(record) for record in records if record]


# --- promote and rollback ------------------------------------------------------------------------

def promote(ctx: Context, name: str, body: Any) -> dict[str, Any]:
    """Point production at any deployed deployment of the project, without a rebuild.
    auto_promote stays on only when it is the project's newest production deployment."""
    if not isinstance(body, dict) or set(body) != {"deployment_id"}:
        raise BadRequest("the body must be {\"deployment_id\": ...}", field="deployment_id")
    project = _project(ctx, name)
    record = _own_deployed(ctx, name, body["deployment_id"])
    newest = _newest_production(ctx, name)
    resume = newest is not None and newest["id"] == record["id"]
    ctx.projects.point_production(name, project["uid"], record["id"], int(record.get("seq") or 0),
                                  auto_promote=resume, remember=True)
    return get_project(ctx, name)


def rollback(ctx: Context, name: str) -> dict[str, Any]:
    """Point production at the deployment that served it before the current one (and on, each
    time), with no rebuild; new production deployments then wait for a promote (as on Vercel:
    https://vercel.com/docs/instant-rollback)."""
    project = _project(ctx, name)
    current = project.get("production")
    history = ctx.projects.history(name)
    start = history.index(current) + 1 if current in history else 0
    for candidate in history[start:]:
        record = ctx.records.get(candidate)
        if record and record.get("status") == State.DEPLOYED.value and candidate != current:
            ctx.projects.point_production(name, project["uid"], candidate,
                                          int(record.get("seq") or 0),
                                          auto_promote=False, remember=False)
            return get_project(ctx, name)
    raise Conflict(f"project {name} has no earlier production deployment to roll back to")


def _own_deployed(ctx: Context, name: str, deployment_id: Any) -> dict[str, str]:
    record = ctx.records.get(deployment_id) \
        if isinstance(deployment_id, str) and ids.is_valid_id(deployment_id) else None
    if record is None or record.get("project") != name:
        raise NotFound(f"project {name} has no deployment {deployment_id!r}")
    if record.get("status") != State.DEPLOYED.value:
        raise Conflict(f"deployment {deployment_id} is {record.get('status')}; only a deployed "
                       "deployment can serve production")
    return record


def _newest_production(ctx: Context, name: str) -> dict[str, str] | None:
    """The newest deployed production deployment of the project (among its MAX_LIST newest)."""
    for deployment_id in ctx.projects.deployment_ids(name, MAX_LIST):
        record = ctx.records.get(deployment_id)
        if record and record.get("target") == "production" \
                and record.get("status") == State.DEPLOYED.value:
            return record
    return None


# --- domains and branches ------------------------------------------------------------------------

def add_domain(ctx: Context, name: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not set(body) <= {"domain", "branch"} or "domain" not in body:
        raise BadRequest('the body must be {"domain": ..., "branch"?: ...}', field="domain")
    _project(ctx, name)
    domain = check_domain(body["domain"], ctx)
    branch = check_ref(body.get("branch")) or PRODUCTION
    holder = ctx.projects.add_domain(name, domain, branch)
    if holder is not None:
        raise Conflict(f"{domain} already serves another project", field="domain")
    return get_project(ctx, name)


def remove_domain(ctx: Context, name: str, domain: str) -> dict[str, Any]:
    _project(ctx, name)
    if not ctx.projects.remove_domain(name, domain.lower()):
        raise NotFound(f"project {name} has no domain {domain!r}")
    return get_project(ctx, name)


def delete_branch(ctx: Context, name: str, branch: str) -> bool:
    """The branch is gone from the repository: its preview address stops answering."""
    _project(ctx, name)
    return ctx.projects.remove_branch(name, branch, branch_label(name, branch))
