"""Who may call which API route: tokens, roles, scope, the content-type rule and the limits.

`guard` is the one check every `/api/*` request passes before its view (docs/DECISIONS.md#tokens).
The rules (which routes are open, which role a route needs, what a token sees) are pure
functions of the request, so they are table-tested without a server.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib import ids, keys
from chalicelib.context import Context
from chalicelib.errors import Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType
from chalicelib.state.tokens import Role, same_secret

# Routes anyone may call. A forge's webhook proves itself with the project's webhook secret
# (pipeline/webhooks.py) and a deploy hook's URL holds its own secret (pipeline/deploy_hooks.py).
OPEN_ROUTES = frozenset({"/api/health", "/api/openapi.json", "/api/webhooks/{forge}", "/api/hooks/{secret}"})
# Routes that start a build: each counts against the token's deployments per minute.
CREATES = frozenset({("POST", "/api/deployments"), ("POST", "/api/projects/{name}/deployments")})
# Routes the per-token rate limit counts: builds, and uploads (each keeps a file list of up to
# MAX_REPO_FILES in Redis for UPLOAD_SECONDS, so they too must not be made without bound).
RATED = CREATES | {("POST", "/api/uploads")}
# What a deploy token may change beyond reading; anything else that changes state needs admin
# (creating, changing and deleting projects, their domains and hooks). An upload only lists
# files and hands out URLs to the bucket; deploying it is what counts as a deployment.
DEPLOY_ROUTES = CREATES | {("POST", "/api/uploads"),
                           ("POST", "/api/deployments/{deployment_id}/cancel"),
                           ("POST", "/api/projects/{name}/promote"),
                           ("POST", "/api/projects/{name}/rollback")}
READ_METHODS = frozenset({"GET", "HEAD"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# RFC 6750 §2.1: the scheme is case-insensitive, then one or more spaces, then a b64token.
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)$")
# The id rate limits count the PERCEL_ADMIN_TOKEN token under (never a generated id: those are
# letters and digits only).
ADMIN_FROM_SETTINGS = "settings-admin"
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    # None: every deployment; otherwise only deployments of these projects.
    projects: tuple[str, ...] | None

    def sees(self, record: Mapping[str, str]) -> bool:
        """Whether this token may see a deployment: the one scope rule. An unscoped token sees
        all; a project-scoped one only its projects' deployments."""
        return self.sees_project(record.get("project"))

    def sees_project(self, name: str | None) -> bool:
        return self.projects is None or name in self.projects


@dataclass(frozen=True)
class ApiCall:
    """The parts of a request the guard looks at. `template` is the matched route, e.g.
    /api/deployments/{deployment_id}; unknown paths arrive on the fixed-depth catch-all
    /{p1}/{p2}... (docs/DECISIONS.md#fixed-depth-routes)."""
    method: str
    template: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    address: str
    has_body: bool


def needs_token(call: ApiCall) -> bool:
    if call.template in OPEN_ROUTES:
        return False
    return call.template.startswith("/api/") or call.params.get("p1") == "api"


def required_role(method: str, template: str) -> Role:
    if template.startswith("/api/tokens"):
        return Role.ADMIN
    if method in READ_METHODS or not template.startswith("/api/"):
        return Role.READ    # reads, and unknown paths (they answer 404 to any token)
    return Role.DEPLOY if (method, template) in DEPLOY_ROUTES else Role.ADMIN


def bearer(header: str | None) -> str | None:
    match = _BEARER.match(header.strip()) if header else None
    return match.group(1) if match else None


def is_json(content_type: str | None) -> bool:
    """`application/json`, parameters (charset) allowed. A browser can send text/plain,
    multipart/form-data or urlencoded across sites without asking (the Fetch standard's
    CORS-safelisted request headers); JSON it cannot, so refusing the rest stops cross-site writes."""
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def guard(ctx: Context, call: ApiCall) -> Principal | None:
    """The token behind `call`, or None for an open route; raises the refusal otherwise:
    429 (too many failed logins), 401, 415, 403, 404 (out of scope), 429 (deployments)."""
    if not needs_token(call):
        return None
    principal = authenticate(ctx, call.headers.get("authorization"), call.address)
    if (call.method in BODY_METHODS or call.has_body) and not is_json(call.headers.get("content-type")):
        raise UnsupportedMediaType("the API accepts only application/json bodies")
    if not principal.role.allows(required_role(call.method, call.template)):
        raise Forbidden(f"a {principal.role.value} token cannot do this")
    deployment_id = call.params.get("deployment_id")
    if deployment_id is not None:
        check_visible(ctx, principal, deployment_id)
    project = call.params.get("name")
    if project is not None and call.template.startswith("/api/projects/") \
            and not principal.sees_project(project):
        raise NotFound(f"no project {project!r}")
    if (call.method, call.template) in RATED:
        check_deploy_rate(ctx, principal)
    return principal


def authenticate(ctx: Context, header: str | None, address: str) -> Principal:
    failures_key = keys.auth_failures(address)
    failures, retry_after = ctx.limits.count(failures_key)
    if failures >= ctx.settings.auth_failures_per_minute:
        raise TooManyRequests("too many failed authentications from this address",
                              retry_after=retry_after)
    token = bearer(header)
    if token is None:
        raise Unauthorized("send an API token: Authorization: Bearer <token>")
    admin = ctx.settings.admin_token
    if admin and same_secret(token, admin):
        return Principal(ADMIN_FROM_SETTINGS, Role.ADMIN, None)
    found = ctx.tokens.verify(token)
    if found is None:
        ctx.limits.hit(failures_key, WINDOW_SECONDS)
        raise Unauthorized("the token is unknown, revoked or expired", invalid=True)
    return Principal(found.id, found.role, found.projects)


def check_visible(ctx: Context, principal: Principal, deployment_id: str) -> None:
    """404, as for an unknown id, when the deployment is outside the token's scope."""
    record = ctx.records.get(deployment_id) if ids.is_valid_id(deployment_id) else None
    if record is not None and not principal.sees(record):
        raise NotFound(f"no deployment {deployment_id!r}")


def check_deploy_rate(ctx: Context, principal: Principal) -> None:
    count, retry_after = ctx.limits.hit(keys.deploy_rate(principal.token_id), WINDOW_SECONDS)
    if count > ctx.settings.deploys_per_minute:
        raise TooManyRequests(f"at most {ctx.settings.deploys_per_minute} deployments and uploads "
                              "per minute per token", retry_after=retry_after)
