"""The API's contract: one OpenAPI 3.1 document (spec.openapis.org/oas/v3.1.0), built here and
served at GET /api/openapi.json. The limits it states are the validators' own constants, so
the document cannot drift from what the API checks; tests/test_e2e_openapi.py runs
schemathesis against the live stack with it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib import ids
from chalicelib.pipeline import deploy, deploy_hooks, forges, projects, token_admin, uploads
from chalicelib.pipeline.validation import (
    ENV_NAME_RE,
    MAX_COMMAND_CHARS,
    MAX_ENV_VALUE_CHARS,
    MAX_ENV_VARS,
)
from chalicelib.state.records import State
from chalicelib.state.tokens import Role

VERSION = "1.0.0"
JSON = "application/json"

# What each error status means across the API; an operation lists those it can answer.
ERRORS = {
    400: "The request is malformed; `field` names the part at fault.",
    401: "No valid bearer token (`WWW-Authenticate: Bearer`); for a webhook, no project of its "
         "repository whose webhook secret verifies it.",
    403: "The token's role does not allow this operation.",
    404: "No such resource, or one outside the token's scope.",
    409: "The resource's state does not allow this operation.",
    413: "The repository (or upload) is over a size or file-count limit.",
    415: "A mutating request whose body is not application/json.",
    422: "The request is well-formed but cannot be carried out (e.g. a ref that does not exist).",
    429: "Too many requests; `Retry-After` says when to try again.",
    503: "A backend (Redis, the bucket) is unavailable, or a limit of concurrent work is reached.",
}
AUTHED = (401, 403, 429, 503)
ROLES = {"enum": [role.value for role in Role]}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ENV = {"type": "object", "maxProperties": MAX_ENV_VARS,
       "propertyNames": {"pattern": ENV_NAME_RE.pattern},
       "additionalProperties": {"type": "string", "maxLength": MAX_ENV_VALUE_CHARS}}
COMMAND = {"type": "string", "minLength": 1, "maxLength": MAX_COMMAND_CHARS}
NODE_VERSION = {"type": "string", "pattern": "^[1-9][0-9]?(\\.x)?$"}
UPLOAD_ID = {"type": "string", "pattern": ids.ID_PATTERN, "description": "the `id` of POST "
             "/api/uploads, by the same token, within its `expires_at`"}
PREBUILT = {"type": "boolean", "description": "the upload is the site as it is: no install, no "
            "build (output_dir, if given, is the part published)"}
FORCE = {"type": "boolean", "description": "build even when an earlier deployed deployment had "
         "the same inputs (otherwise its output is reused: docs/DECISIONS.md#memoized-builds)"}


def _only_one(first: str, second: str, *with_second: str) -> list[dict[str, Any]]:
    """JSON Schema for "exactly one of `first` and `second`", the fields in `with_second`
    allowed with `second` only."""
    def none_of(*names: str) -> dict[str, Any]:
        return {"not": {"anyOf": [{"required": [name]} for name in names]}}
    return [{"required": [first], **none_of(second, *with_second)},
            {"required": [second], **none_of(first)}]


def _project_settings(nullable: bool) -> dict[str, Any]:
    """A project's settings as a create or change body takes them; null clears one (PATCH)."""
    def maybe(schema: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [schema, {"type": "null"}]} if nullable else schema
    return {
        "repo_url": {"type": "string", "description": "as for POST /api/deployments"},
        "production_branch": maybe({"type": "string", "description": f"default "
                                    f"{projects.DEFAULT_BRANCH!r}; its deployments are production"}),
        "root_dir": maybe({"type": "string"}),
        "install_command": maybe(COMMAND), "build_command": maybe(COMMAND),
        "output_dir": maybe({"type": "string"}), "node_version": maybe(NODE_VERSION),
        "env": {"type": "object", "additionalProperties": False,
                "properties": {target: {"anyOf": [ENV, {"type": "null"}]}
                               for target in projects.TARGETS},
                "description": "each target's build env, replaced whole when given; stored "
                               "encrypted, never returned (only the names are)"},
    }


PROJECT_NAME = {
    "type": "string", "maxLength": projects.MAX_NAME, "pattern": token_admin.PROJECT_NAME.pattern,
    "not": {"anyOf": [{"pattern": ids.ID_PATTERN}, {"pattern": projects.BRANCH_MARK},
                      {"pattern": projects.BRANCH_MARK[:-1] + "$"}]},
    "description": "a DNS label, never one shaped like a deployment id, holding "
                   f"{projects.BRANCH_MARK!r} or ending in {projects.BRANCH_MARK[:-1]!r}; the "
                   "production address is <name>.<root-domain>",
}

def _project_view(**extra: Any) -> dict[str, Any]:
    """GET /api/projects/{name}'s body, with the `extra` fields an answer adds to it."""
    return {
        "type": "object", "additionalProperties": False,
        "required": ["name", "url", *projects.SETTINGS, "env", "production_deployment",
                     "auto_promote", "branches", "preview_urls", "domains", "created_at",
                     "updated_at", *extra],
        "properties": {
            "name": {"type": "string"},
            "url": {"type": "string", "description": "the production address"},
            "repo_url": {"type": "string"}, "production_branch": {"type": "string"},
            **{name: _nullable("string") for name in (
                "root_dir", "install_command", "build_command", "output_dir", "node_version")},
            "env": {"type": "object", "required": list(projects.TARGETS),
                    "additionalProperties": False,
                    "properties": {target: {"type": "array", "items": {"type": "string"}}
                                   for target in projects.TARGETS},
                    "description": "each target's env names; the values are never returned"},
            "production_deployment": _nullable("string", description="what the production "
                                               "address serves"),
            "auto_promote": {"type": "boolean", "description": "whether a new production "
                             "deployment takes the production address (off after a rollback)"},
            "branches": {"type": "object", "additionalProperties": {"type": "string"},
                         "description": "branch -> the deployment its preview address serves"},
            "preview_urls": {"type": "object", "additionalProperties": {"type": "string"},
                             "description": "branch -> its address <name>-git-<slug>"},
            "domains": {"type": "object", "additionalProperties": _nullable("string"),
                        "description": "custom domain -> its branch, null for production"},
            "created_at": _nullable("string"), "updated_at": _nullable("string"),
            **extra,
        },
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "field": {"type": "string"}}}},
    },
    "Health": {
        "type": "object", "required": ["status", "checks"],
        "properties": {"status": {"enum": ["ok", "degraded"]},
                       "checks": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
    "DeployRequest": {
        "type": "object", "additionalProperties": False,
        "description": "a repository (repo_url) or an upload (upload_id), not both",
        "oneOf": _only_one("repo_url", "upload_id", "prebuilt"),
        "properties": {
            "repo_url": {"type": "string", "description": "https:// to a public host (file:// "
                         "and loopback too in the local stage)"},
            "ref": {"type": "string", "description": "branch or tag; default: the default branch"},
            "upload_id": UPLOAD_ID,
            "prebuilt": PREBUILT,
            "force": FORCE,
            "root_dir": {"type": "string", "description": "the project's folder in the repository"},
            "install_command": COMMAND,
            "build_command": COMMAND,
            "output_dir": {"type": "string"},
            "env": {**ENV, "description": "build env; stored encrypted, never returned, masked "
                                          "in logs"},
            "node_version": NODE_VERSION,
        },
    },
    "DeployAccepted": {
        "type": "object", "required": ["id", "status", "url", "status_url"],
        "properties": {"id": {"type": "string"}, "status": {"enum": [State.UPLOADING.value, State.QUEUED.value],
                                                 "description": "uploading: a git repository, "
                                                 "cloned after the answer; queued: an upload"},
                       "url": {"type": "string"}, "status_url": {"type": "string"}},
    },
    "Deployment": {
        "type": "object",
        "required": ["id", "status", "url", "repo_url", "ref", "commit", "framework",
                     "node_version", "created_at", "updated_at", "error", "attempt", "warnings",
                     "project", "branch", "target", "source"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"}, "status": {"enum": [state.value for state in State]},
            **{name: _nullable("string") for name in (
                "url", "repo_url", "ref", "commit", "framework", "node_version", "created_at",
                "updated_at", "error")},
            "attempt": {"type": "integer", "minimum": 0},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "project": _nullable("string", description="the project it was deployed for"),
            "branch": _nullable("string", description="the project's branch it built"),
            "target": {"enum": [*projects.TARGETS, None],
                       "description": "production (the production branch) or preview; null "
                                      "outside a project"},
            "source": {"enum": ["git", "upload", None],
                       "description": "what was built: a repository or an upload; null for "
                                      "deployments made before it was recorded"},
        },
    },
    "UploadRequest": {
        "type": "object", "required": ["files"], "additionalProperties": False,
        "properties": {"files": {
            "type": "array", "minItems": 1,
            "description": "every file of the folder (at most MAX_REPO_FILES files and "
                           "MAX_REPO_BYTES bytes, else 413); no path twice, none in .git/",
            "items": {
                "type": "object", "required": ["path", "sha256", "size"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "minLength": 1, "maxLength": uploads.MAX_PATH_CHARS,
                             "description": "relative, `/`-separated"},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "size": {"type": "integer", "minimum": 0},
                    "mode": {"type": "integer", "minimum": 0, "description": "st_mode; only "
                             "the executable bits count (0o755, else 0o644)"}}}},
            "packs": {"type": "boolean", "description": "true: the client sends the small "
                      "files the bucket lacks in the packs the answer lays out "
                      "(docs/DECISIONS.md#packs); else each missing blob alone"},
            "deploy": {"type": "object", "description": "build options as POST "
                       "/api/deployments takes them, without upload_id or repo_url (checked "
                       "first: a 400 keeps nothing): when the bucket lacks none of the files, "
                       "the upload is deployed in this request and the answer's `deployment` "
                       "is POST /api/deployments' answer"}},
    },
    "UploadCreated": {
        "type": "object",
        "required": ["id", "files", "bytes", "missing", "missing_bytes", "expires_at"],
        "properties": {
            "id": {"type": "string"}, "files": {"type": "integer"}, "bytes": {"type": "integer"},
            "missing": {"type": "array", "description": "each blob the bucket lacks, once: PUT "
                        "its bytes to `url` with exactly `headers`", "items": {
                            "type": "object", "required": ["sha256", "size", "url", "headers"],
                            "properties": {"sha256": {"type": "string"},
                                           "size": {"type": "integer"},
                                           "url": {"type": "string"},
                                           "headers": {"type": "object", "additionalProperties":
                                                       {"type": "string"}}}}},
            "packs": {"type": "array", "description": "with \"packs\": true, the small files "
                      "the bucket lacks, in packs: PUT the bytes of `files` (sha256s), one "
                      "after the other in that order, to `url` with exactly `headers`", "items": {
                          "type": "object", "required": ["files", "size", "url", "headers"],
                          "properties": {"files": {"type": "array", "items": {"type": "string"}},
                                         "size": {"type": "integer"},
                                         "url": {"type": "string"},
                                         "headers": {"type": "object", "additionalProperties":
                                                     {"type": "string"}}}}},
            "missing_bytes": {"type": "integer"},
            "expires_at": {"type": "string", "description": "UTC, YYYY-MM-DDTHH:MM:SSZ: the "
                           "URLs and the upload itself end then"},
            "deployment": {**_ref("DeployAccepted"), "description": "with `deploy` and "
                           "nothing missing: the deployment made of this upload"}},
    },
    "DeploymentList": {
        "type": "object", "required": ["deployments"],
        "properties": {"deployments": {"type": "array", "items": _ref("Deployment")}},
    },
    "Logs": {
        "type": "object", "required": ["lines", "cursor", "done"],
        "properties": {"lines": {"type": "array", "items": {"type": "string"}},
                       "cursor": _nullable("string"), "done": {"type": "boolean"}},
    },
    "TokenRequest": {
        "type": "object", "required": ["name", "role"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": token_admin.MAX_NAME},
                       "role": ROLES,
                       "projects": {"type": "array", "minItems": 1, "maxItems": token_admin.MAX_PROJECTS,
                                    "items": {"type": "string",
                                              "pattern": token_admin.PROJECT_NAME.pattern}},
                       "expires_in_days": {"type": "number", "exclusiveMinimum": 0,
                                           "maximum": token_admin.MAX_EXPIRY_DAYS}},
    },
    "Token": {
        "type": "object", "required": ["id", "name", "role", "projects", "expires_at", "created_at"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "role": ROLES,
                       "projects": _nullable("array", items={"type": "string"}),
                       "expires_at": _nullable("string"), "created_at": {"type": "string"}},
    },
    "TokenCreated": {"allOf": [_ref("Token"), {
        "type": "object", "required": ["token"],
        "properties": {"token": {"type": "string", "description": "shown once; only a hash is kept"}}}]},
    "TokenRevoked": {"allOf": [_ref("Token"), {
        "type": "object", "required": ["revoked"], "properties": {"revoked": {"const": True}}}]},
    "ProjectRequest": {
        "type": "object", "required": ["name", "repo_url"], "additionalProperties": False,
        "properties": {"name": PROJECT_NAME, **_project_settings(nullable=False)},
    },
    "ProjectPatch": {
        "type": "object", "additionalProperties": False,
        "properties": _project_settings(nullable=True),
        "description": "the settings to change; a project is never renamed, repo_url never "
                       "removed, a null production_branch is the default again",
    },
    "Project": _project_view(),
    "ProjectCreated": _project_view(webhook_secret={"type": "string", "description": "shown once"}),
    "ProjectDeleted": _project_view(deleted={"const": True}),
    "ProjectList": {
        "type": "object", "required": ["projects"],
        "properties": {"projects": {"type": "array", "items": _ref("Project")}},
    },
    "ProjectDeployRequest": {
        "type": "object", "additionalProperties": False,
        "description": "a branch of the repository (ref), or an upload (upload_id)",
        "anyOf": [{"not": {"anyOf": [{"required": [name]} for name in sorted(projects.UPLOAD_FIELDS)]}},
                  {"required": ["upload_id"], "not": {"required": ["ref"]}}],
        "properties": {"ref": {"type": "string", "description": "the branch to deploy; default: "
                               "the production branch"},
                       "force": FORCE,
                       "upload_id": UPLOAD_ID, "prebuilt": PREBUILT,
                       "target": {"enum": list(projects.TARGETS), "description": "an upload's "
                                  "target; default preview"},
                       "branch": {"type": "string", "description": "an upload's branch: the "
                                  "production branch for production; default for a preview: "
                                  f"{projects.UPLOAD_BRANCH}"}},
    },
    "ProjectDeployAccepted": {"allOf": [_ref("DeployAccepted"), {
        "type": "object", "required": ["project", "branch", "target"],
        "properties": {"project": {"type": "string"}, "branch": {"type": "string"},
                       "target": {"enum": list(projects.TARGETS)}}}]},
    "PromoteRequest": {
        "type": "object", "required": ["deployment_id"], "additionalProperties": False,
        "properties": {"deployment_id": {"type": "string", "description": "a deployed "
                                         "deployment of this project"}},
    },
    "DomainRequest": {
        "type": "object", "required": ["domain"], "additionalProperties": False,
        "properties": {"domain": {"type": "string", "maxLength": 253,
                                  "description": "a host name outside the root domain"},
                       "branch": {"type": "string", "description": "serve this branch's "
                                  "preview; default: production"}},
    },
    "TokenList": {
        "type": "object", "required": ["tokens"],
        "properties": {"tokens": {"type": "array", "items": {"allOf": [
            _ref("Token"), {"not": {"required": ["token"]}}]}}},
    },
}

# Forge webhooks and deploy hooks (pipeline/webhooks.py, pipeline/deploy_hooks.py).
SCHEMAS.update({
    "ProjectDeployAccepted": {"allOf": [_ref("DeployAccepted"), {
        "type": "object", "required": ["project", "branch", "target"],
        "properties": {"project": {"type": "string"}, "branch": {"type": "string"},
                       "target": {"enum": ["production", "preview"]}}}]},
    "WebhookAnswer": {
        "description": "`ping`, a branch deleted, or nothing to do (`ignored` says why)",
        "type": "object",
        "properties": {"ping": {"const": True}, "ignored": {"type": "string"},
                       "deleted_branch": {"type": "string"},
                       "projects": {"oneOf": [{"type": "array", "items": {"type": "string"}},
                                              {"type": "object", "additionalProperties": {"type": "boolean"}}]}},
    },
    "WebhookDeployments": {
        "type": "object", "required": ["deployments"],
        "properties": {"deployments": {"type": "array", "items": _ref("ProjectDeployAccepted")}},
    },
    "DeployHookRequest": {
        "type": "object", "required": ["branch"], "additionalProperties": False,
        "properties": {"branch": {"type": "string", "minLength": 1, "maxLength": 200}},
    },
    "DeployHook": {
        "type": "object", "required": ["id", "project", "branch", "created_at"],
        "properties": {"id": {"type": "string"}, "project": {"type": "string"},
                       "branch": {"type": "string"}, "created_at": {"type": "string"}},
    },
    "DeployHookCreated": {"allOf": [_ref("DeployHook"), {
        "type": "object", "required": ["url"],
        "properties": {"url": {"type": "string", "description": "POST here to deploy; holds the "
                                                                  "secret, shown once"}}}]},
    "DeployHookDeleted": {"allOf": [_ref("DeployHook"), {
        "type": "object", "required": ["deleted"], "properties": {"deleted": {"const": True}}}]},
    "DeployHookList": {
        "type": "object", "required": ["hooks"],
        "properties": {"hooks": {"type": "array", "items": {"allOf": [
            _ref("DeployHook"), {"not": {"required": ["url"]}}]}}},
    },
    "HookDeployAccepted": {"allOf": [_ref("ProjectDeployAccepted"), {
        "type": "object", "required": ["hook"], "properties": {"hook": {"type": "string"}}}]},
})


def _body(schema: str) -> dict[str, Any]:
    return {"content": {JSON: {"schema": _ref(schema)}}}


def _operation(summary: str, ok: int, ok_schema: str | None, errors: tuple[int, ...],
               body: str | None = None, public: bool = False,
               parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": "OK", **(_body(ok_schema) if ok_schema else {})}}
    for status in sorted(set(errors) | (set() if public else set(AUTHED))):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if public:
        operation["security"] = []
    if body:
        operation["requestBody"] = {"required": True, **_body(body)}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string", **schema}}


ID = {"name": "deployment_id", "in": "path", "required": True, "schema": {"type": "string"}}
TOKEN_ID = {"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}
PROJECT = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
HOOK_ID = {"name": "hook_id", "in": "path", "required": True, "schema": {"type": "string"}}
DOMAIN = {"name": "domain", "in": "path", "required": True, "schema": {"type": "string"}}
LIMIT = _query("limit", f"1 to {deploy.MAX_LIST}, default {deploy.DEFAULT_LIST}", pattern="^[0-9]+$")


def _paths() -> dict[str, Any]:
    health = _operation("Whether Redis and the bucket answer, and the bucket holds the newest "
                        "deployed deployment's files", 200, "Health", (), public=True)
    health["responses"]["503"] = {"description": "A backend does not answer, or deployed files are "
                                  "missing from the bucket", **_body("Health")}
    return {
        "/api/health": {"get": health},
        "/api/openapi.json": {"get": {
            "summary": "This document", "security": [],
            "responses": {"200": {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}}}},
        "/api/deployments": {
            "post": _operation("Deploy a repository (clone, upload, queue its build) or an "
                               "upload whose blobs are all sent", 202, "DeployAccepted",
                               (400, 404, 413, 415, 422), body="DeployRequest"),
            "get": _operation("Deployments, newest first", 200, "DeploymentList", (400,),
                              parameters=[LIMIT]),
        },
        "/api/deployments/{deployment_id}": {
            "parameters": [ID],
            "get": _operation("One deployment", 200, "Deployment", (404,)),
            "delete": _operation("Take a deployment down (its site answers 410)", 200,
                                 "Deployment", (404, 409)),
        },
        "/api/deployments/{deployment_id}/cancel": {
            "parameters": [ID],
            "post": _operation("Stop an uploading, queued or building deployment", 200, "Deployment",
                               (404, 409, 415)),
        },
        "/api/deployments/{deployment_id}/logs": {
            "parameters": [ID],
            "get": _operation("Build log lines after `cursor`", 200, "Logs", (400, 404),
                              parameters=[_query("cursor", "the `cursor` of the previous answer")]),
        },
        "/api/tokens": {
            "post": _operation("Create a token (admin); the secret is in this answer only", 201,
                               "TokenCreated", (400, 415, 422), body="TokenRequest"),
            "get": _operation("Tokens, without their secrets (admin)", 200, "TokenList", ()),
        },
        "/api/tokens/{token_id}": {
            "parameters": [TOKEN_ID],
            "delete": _operation("Revoke a token (admin): refused from the next request on", 200,
                                 "TokenRevoked", (404,)),
        },
        "/api/uploads": {
            "post": _operation("List a folder's files; get a presigned PUT URL for each blob "
                               "the bucket lacks (with `deploy`, and none lacking: deploy it "
                               "too)", 201, "UploadCreated", (400, 404, 413, 415, 422),
                               body="UploadRequest"),
        },
        **_project_paths(),
        **_hook_paths(),
    }


def _project_paths() -> dict[str, Any]:
    return {
        "/api/projects": {
            "post": _operation("Create a project (admin); its webhook secret is in this answer "
                               "only", 201, "ProjectCreated", (400, 409, 415), body="ProjectRequest"),
            "get": _operation("Projects, oldest first", 200, "ProjectList", ()),
        },
        "/api/projects/{name}": {
            "parameters": [PROJECT],
            "get": _operation("One project: settings, addresses and what they serve", 200,
                              "Project", (404,)),
            "patch": _operation("Change a project's settings (admin); the next deployment uses "
                                "them", 200, "Project", (400, 404, 415), body="ProjectPatch"),
            "delete": _operation("Delete a project (admin): its addresses stop answering, its "
                                 "deployments are taken down", 200, "ProjectDeleted", (404,)),
        },
        "/api/projects/{name}/deployments": {
            "parameters": [PROJECT],
            "post": _operation("Deploy a branch of the project: production for the production "
                               "branch, a preview otherwise", 202, "ProjectDeployAccepted",
                               (400, 404, 413, 415, 422), body="ProjectDeployRequest"),
            "get": _operation("The project's deployments, newest first", 200, "DeploymentList",
                              (400, 404), parameters=[LIMIT]),
        },
        "/api/projects/{name}/promote": {
            "parameters": [PROJECT],
            "post": _operation("Point production at a deployed deployment of the project, "
                               "without a build", 200, "Project", (400, 404, 409, 415),
                               body="PromoteRequest"),
        },
        "/api/projects/{name}/rollback": {
            "parameters": [PROJECT],
            "post": _operation("Point production at the deployment that served it before; new "
                               "production deployments then wait for a promote", 200, "Project",
                               (404, 409, 415)),
        },
        "/api/projects/{name}/domains": {
            "parameters": [PROJECT],
            "post": _operation("Serve the project (or a branch) at a custom domain (admin)", 201,
                               "Project", (400, 404, 409, 415), body="DomainRequest"),
        },
        "/api/projects/{name}/domains/{domain}": {
            "parameters": [PROJECT, DOMAIN],
            "delete": _operation("Stop serving a custom domain (admin)", 200, "Project", (404,)),
        },
    }


def _hook_paths() -> dict[str, Any]:
    webhook = _operation("A forge's webhook (GitHub, GitLab, Gitea/Forgejo), signed with a project's "
                         "webhook secret instead of a token", 200, "WebhookAnswer", (400, 401, 404, 503),
                         public=True)
    webhook["responses"]["202"] = {"description": "Deployments queued", **_body("WebhookDeployments")}
    webhook["requestBody"] = {"required": True, "content": {
        JSON: {"schema": {"type": "object"}},
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {"payload": {"type": "string"}}}}}}
    webhook["parameters"] = [{"name": "forge", "in": "path", "required": True,
                              "schema": {"type": "string", "enum": list(forges.FORGES)}}]
    run_hook = _operation("Deploy a deploy hook's branch; the URL is the credential", 202,
                          "HookDeployAccepted", (400, 404, 413, 422, 429, 503), public=True)
    run_hook["parameters"] = [{"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "/api/webhooks/{forge}": {"post": webhook},
        "/api/hooks/{secret}": {"post": run_hook},
        "/api/projects/{name}/hooks": {
            "parameters": [PROJECT],
            "post": _operation(f"Make a deploy hook (admin; at most {deploy_hooks.MAX_HOOKS_PER_PROJECT} "
                               "a project); its URL is in this answer only", 201, "DeployHookCreated",
                               (400, 404, 409, 415), body="DeployHookRequest"),
            "get": _operation("A project's deploy hooks, without their URLs", 200, "DeployHookList", (404,)),
        },
        "/api/projects/{name}/hooks/{hook_id}": {
            "parameters": [PROJECT, HOOK_ID],
            "delete": _operation("Revoke a deploy hook (admin): its URL answers 404 from then on", 200,
                                 "DeployHookDeleted", (404,)),
        },
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every API route."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "percel", "version": VERSION,
                 "description": "Deploy a git repository as a static site. Every route but "
                                "health and this document needs `Authorization: Bearer <token>`."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API token (RFC 6750)"}},
            "schemas": SCHEMAS,
            "responses": {f"E{status}": {"description": text, **_body("Error")}
                          for status, text in ERRORS.items()},
        },
    }
