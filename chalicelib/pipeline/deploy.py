"""The upload service: a deploy request in, a deployment recorded out, at once.

A git deployment: resolve the ref (`git ls-remote`), then record it `uploading` with its source
job (one Redis transaction, lifecycle.accept); the clone and source upload run outside the
request (sources.py). A refusal before the transaction leaves no record and no job. An upload's
deployment: its source is checked first, then the record (`queued`) and its build job.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib import ids, keys
from chalicelib.context import Context
from chalicelib.errors import (
    BadRequest,
    Busy,
    Conflict,
    NotFound,
    ServiceUnavailable,
)
from chalicelib.pipeline import integrity, lifecycle, sources, uploads
from chalicelib.pipeline.clone import resolve_ref
from chalicelib.pipeline.validation import (
    DeployRequest,
    parse_deploy_request,
)
from chalicelib.state import logs
from chalicelib.state.records import ACTIVE, IllegalTransition, PublicRecord, State, public_view
from chalicelib.state.secrets import FIELD as ENV_FIELD
from chalicelib.state.secrets import SecretsUnavailable

# What a deploy refused for want of a clone slot is told to wait (seconds): `git ls-remote` of an
# ordinary repository ends within a second; a slot held by a slow one frees at CLONE_TIMEOUT.
CLONE_RETRY_AFTER = 10


@dataclass(frozen=True)
class Origin:
    """A project's deployment: which project (and incarnation of its name), branch and target,
    what started it, and the target's env as the project keeps it, sealed."""
    project: str
    uid: str
    branch: str
    target: str
    trigger: str
    sealed_env: str

    def fields(self, seq: int) -> dict[str, str | None]:
        return {"project": self.project, "project_uid": self.uid, "branch": self.branch,
                "target": self.target, "trigger": self.trigger, "seq": str(seq)}


def create_deployment(ctx: Context, body: Any, token_id: str = "") -> dict[str, str]:
    """POST /api/deployments; `token_id` is the caller's (an upload is deployed only by the
    token that made it)."""
    return run(ctx, parse_deploy_request(body, local=ctx.settings.is_local), uploader=token_id)


def upload(ctx: Context, body: Any, token_id: str) -> dict[str, Any]:
    """POST /api/uploads. With `deploy` (what POST /api/deployments takes, less `upload_id`),
    the upload is also deployed in the same request when the bucket lacks none of its files, and
    the answer's `deployment` is what POST /api/deployments would have answered: an unchanged
    folder deploys in one round trip (docs/DECISIONS.md#uploads). The options are checked before
    anything is kept; when a file is missing, the client sends it and deploys as before."""
    options = body.get("deploy") if isinstance(body, dict) else None
    if options is None:
        return uploads.create_upload(ctx, body, token_id)
    if not isinstance(options, dict) or "upload_id" in options or "repo_url" in options:
        raise BadRequest("deploy must be an object of build options (no upload_id or repo_url)",
                         field="deploy")
    upload_id = ids.new_id()
    request = parse_deploy_request({**options, "upload_id": upload_id}, local=ctx.settings.is_local)
    made = uploads.create_upload(ctx, body, token_id, upload_id)
    if not made["missing"] and not made["packs"]:
        made["deployment"] = run(ctx, request, uploader=token_id)
    return made


def run(ctx: Context, request: DeployRequest, origin: Origin | None = None,
        uploader: str = "") -> dict[str, str]:
    """Record a checked request (for a project when `origin` is given): a git repository's ref
    resolved and its clone left to a source worker; an upload of `uploader`'s checked now."""
    # Before anything is asked of the remote: a refusal must cost nothing.
    sealed_env = origin.sealed_env if origin else seal_env(ctx, request.env)
    if request.upload_id:
        return _create_from_upload(ctx, request, request.upload_id, origin, uploader, sealed_env)
    if not ctx.clone_slots.acquire(blocking=False):
        raise Busy(f"this API process is already running {ctx.settings.max_concurrent_clones} "
                   "git requests; try again later", retry_after=CLONE_RETRY_AFTER)
    try:
        commit = resolve_ref(request.repo_url, request.ref, ctx.settings.clone_timeout, request.pin)
    finally:
        ctx.clone_slots.release()
    deployment_id = ids.new_id()
    record = _record(ctx, deployment_id, request, commit, sealed_env)
    record["pin"] = sources.pin_field(request.pin)
    _add_origin(ctx, record, origin)
    lifecycle.accept(ctx, record)
    lifecycle.dispatch(ctx, deployment_id)
    return _accepted(ctx, deployment_id, State.UPLOADING)


def _create_from_upload(ctx: Context, request: DeployRequest, upload_id: str,
                        origin: Origin | None, uploader: str, sealed_env: str) -> dict[str, str]:
    deployment_id = ids.new_id()
    try:
        document, restamped = uploads.source_of(ctx, upload_id, uploader)
        ctx.store.put_json(keys.source_manifest(deployment_id), document)
        # Now that the manifest protects them, check no reused old blob was swept meanwhile.
        if ctx.store.ensure_blobs(restamped, {}):
            raise ServiceUnavailable("the source upload could not be completed; try again")
        record = _record(ctx, deployment_id, request, "", sealed_env)
        # Whose uploads may share a dependency cache (build_runner/build.py cache_scope).
        record["uploader"] = uploader
        _add_origin(ctx, record, origin)
        lifecycle.submit(ctx, record)
    except BaseException:
        # Nothing half-done: a source without a record would only wait for the GC.
        with contextlib.suppress(Exception):
            ctx.store.delete([keys.source_manifest(deployment_id)])
        raise
    return _accepted(ctx, deployment_id, State.QUEUED)


def _add_origin(ctx: Context, record: dict[str, str | None], origin: Origin | None) -> None:
    if origin is not None:
        # The creation order within the project, taken as late as possible: of two
        # deployments of a branch, the one recorded last is the newer (state/projects.py).
        record.update(origin.fields(ctx.projects.next_seq(origin.project)))


def _accepted(ctx: Context, deployment_id: str, state: State) -> dict[str, str]:
    return {"id": deployment_id, "status": state.value,
            "url": ctx.settings.site_url(deployment_id),
            "status_url": f"/api/deployments/{deployment_id}"}


def seal_env(ctx: Context, env: dict[str, str]) -> str:
    """`env` sealed for Redis (docs/DECISIONS.md#secrets-at-rest); 503 without a key."""
    try:
        return ctx.env_box.seal(env)
    except SecretsUnavailable as missing:
        raise ServiceUnavailable(str(missing), field="env") from None


def _record(ctx: Context, deployment_id: str, request: DeployRequest,
            commit: str, sealed_env: str) -> dict[str, str | None]:
    return {
        "id": deployment_id, "url": ctx.settings.site_url(deployment_id),
        "repo_url": request.repo_url, "ref": request.ref, "commit": commit,
        "root_dir": request.root_dir, "source": "upload" if request.upload_id else "git",
        # Build options travel with the record; the env only sealed, in a field of its own
        # that the public view never shows (docs/DECISIONS.md#secrets-at-rest).
        "options": json.dumps({"install_command": request.install_command,
                               "build_command": request.build_command,
                               "output_dir": request.output_dir,
                               "node_version": request.node_version,
                               **({"prebuilt": True} if request.prebuilt else {}),
                               **({"force": True} if request.force else {})}),
        ENV_FIELD: sealed_env or None,
    }


def get_deployment(ctx: Context, deployment_id: str) -> PublicRecord:
    """The record as the API shows it; 404 for an unknown (or malformed) id."""
    record = ctx.records.get(deployment_id) if ids.is_valid_id(deployment_id) else None
    if record is None:
        raise NotFound(f"no deployment {deployment_id!r}")
    return public_view(record)


MAX_LIST = 200
DEFAULT_LIST = 50


def list_deployments(ctx: Context, limit: str | None = None,
                     scope: tuple[str, ...] | None = None) -> list[PublicRecord]:
    """The newest deployments first; `limit` (1 to MAX_LIST, default DEFAULT_LIST) comes from
    the query string. `scope` is the caller's token's projects (access.Principal.projects):
    None lists every deployment; a tuple, the newest of those projects' deployments, read from
    each project's own index so that other deployments never crowd them out."""
    count = DEFAULT_LIST if limit is None else parse_limit(limit)
    if scope is None:
        return [public_view(record) for record in ctx.records.newest(count)]
    records = [record for name in scope for record in
               map(ctx.records.get, ctx.projects.deployment_ids(name, count))
               if record and record.get("project") == name]
    records.sort(key=lambda r: (r.get("created_at", ""), int(r.get("seq") or 0)), reverse=True)
    return [public_view(record) for record in records[:count]]


def parse_limit(raw: str) -> int:
    # ASCII digits only: str.isdigit() accepts "²", which int() refuses, and int() accepts
    # "١٢" (Arabic-Indic twelve); three digits also keep int() far from its 4,300-digit limit.
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIST:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIST}", field="limit")
    return int(raw)


def cancel_deployment(ctx: Context, deployment_id: str) -> PublicRecord:
    """Stop an uploading, queued or building deployment; a running build is killed by its
    runner."""
    get_deployment(ctx, deployment_id)
    try:
        lifecycle.cancel(ctx, deployment_id)
    except IllegalTransition as refused:
        raise Conflict(f"deployment {deployment_id} is {refused.current}; only uploading, "
                       "queued or building deployments can be cancelled") from None
    return get_deployment(ctx, deployment_id)


def delete_deployment(ctx: Context, deployment_id: str) -> PublicRecord:
    """Take a deployment down: it answers 410 from now on; cleanup sweeps its blobs. Not one
    that a project's address serves: that address would answer 410 (promote another first)."""
    view = get_deployment(ctx, deployment_id)
    serving = ctx.projects.addresses_of(str(view.get("project") or ""), deployment_id)
    if serving:
        raise Conflict(f"deployment {deployment_id} serves {', '.join(serving)}; point "
                       "them at another deployment first")
    lifecycle.delete(ctx, deployment_id)
    return get_deployment(ctx, deployment_id)


def read_logs(ctx: Context, deployment_id: str, cursor: str | None) -> dict[str, Any]:
    """Live log lines after `cursor`; `done` once the build has ended and nothing is left."""
    view = get_deployment(ctx, deployment_id)
    if cursor and not logs.valid_cursor(cursor):
        raise BadRequest("cursor must be one returned by this route", field="cursor")
    lines, next_cursor = ctx.logs.read(deployment_id, cursor)
    done = State(view["status"]) not in ACTIVE and not lines
    return {"lines": lines, "cursor": next_cursor, "done": done}


def health(ctx: Context) -> tuple[int, dict[str, Any]]:
    """Whether Redis and the bucket answer: (200 | 503, report)."""
    checks = {}
    for name, probe in (("redis", ctx.redis.ping), ("bucket", ctx.store.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as error:  # any failure means "unreachable"
            checks[name] = f"unreachable: {type(error).__name__}"
    if checks["redis"] == checks["bucket"] == "ok":
        checks["bucket"] = _outputs_check(ctx)
    ok = all(v == "ok" for v in checks.values())
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "checks": checks}


def _outputs_check(ctx: Context) -> str:
    """"ok", or why the newest deployed deployment has no files (pipeline/integrity.py)."""
    try:
        lost = integrity.lost_outputs_message(*integrity.missing_outputs(
            ctx, integrity.HEALTH_RECORDS, integrity.HEALTH_CHECKS))
    except Exception as error:  # any failure means "unreachable", as above
        return f"unreachable: {type(error).__name__}"
    return lost or "ok"
