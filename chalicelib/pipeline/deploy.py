"""The upload service: a deploy request in, a queued build out.

Order matters: clone and upload first, then submit the record and the job (one Redis
transaction, in lifecycle.py). A failure before that leaves no record and no job.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
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
from chalicelib.pipeline import integrity, lifecycle, uploads
from chalicelib.pipeline.clone import CloneLimits, clone, forget_file_times
from chalicelib.pipeline.validation import (
    DeployRequest,
    parse_deploy_request,
)
from chalicelib.schema import MANIFEST_VERSION
from chalicelib.state import logs
from chalicelib.state.records import IllegalTransition, PublicRecord, State, public_view
from chalicelib.state.secrets import FIELD as ENV_FIELD
from chalicelib.state.secrets import SecretsUnavailable
from chalicelib.storage import git_archive, manifest

# What a deploy refused for want of a clone slot is told to wait (seconds): clones of ordinary
# repositories end within seconds; a slot held by a slow one frees at CLONE_TIMEOUT at the latest.
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


def run(ctx: Context, request: DeployRequest, origin: Origin | None = None,
        uploader: str = "") -> dict[str, str]:
    """Clone (or take an upload of `uploader`'s), upload and queue a checked request (for a
    project when `origin` is given)."""
    if request.upload_id:
        return _create(ctx, request, origin, uploader)
    if not ctx.clone_slots.acquire(blocking=False):
        raise Busy(f"this API process is already running {ctx.settings.max_concurrent_clones} "
                   "clones; try again later", retry_after=CLONE_RETRY_AFTER)
    try:
        return _create(ctx, request, origin, uploader)
    finally:
        ctx.clone_slots.release()


def _create(ctx: Context, request: DeployRequest, origin: Origin | None,
            uploader: str) -> dict[str, str]:
    # Before the clone: a refusal must cost nothing.
    sealed_env = origin.sealed_env if origin else seal_env(ctx, request.env)
    deployment_id = ids.new_id()
    workdir = Path(tempfile.mkdtemp(prefix="percel-clone-"))
    try:
        commit = ""
        blobs: dict[str, Path | bytes] = {}
        if request.upload_id:
            document, restamped = uploads.source_of(ctx, request.upload_id, uploader)
        else:
            commit = clone(request.repo_url, request.ref, workdir / "repo", _limits(ctx),
                           request.pin)
            document, blobs = _source(manifest.scan_source(workdir / "repo"), workdir)
            _, restamped = ctx.store.put_blobs(blobs)
        ctx.store.put_json(keys.source_manifest(deployment_id), document)
        # Now that the manifest protects them, check no reused old blob was swept meanwhile.
        if ctx.store.ensure_blobs(restamped, blobs):
            raise ServiceUnavailable("the source upload could not be completed; try again")
        record = _record(ctx, deployment_id, request, commit, sealed_env)
        if request.upload_id:
            # Whose uploads may share a dependency cache (build_runner/build.py cache_scope).
            record["uploader"] = uploader
        if origin is not None:
            # The creation order within the project, taken as late as possible: of two
            # deployments of a branch, the one recorded last is the newer (state/projects.py).
            record.update(origin.fields(ctx.projects.next_seq(origin.project)))
        lifecycle.submit(ctx, record)
    except BaseException:
        # Nothing half-done: a source without a record would only wait for the GC.
        with contextlib.suppress(Exception):
            ctx.store.delete([keys.source_manifest(deployment_id)])
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"id": deployment_id, "status": State.QUEUED.value,
            "url": ctx.settings.site_url(deployment_id),
            "status_url": f"/api/deployments/{deployment_id}"}


def _source(tree: manifest.Tree, workdir: Path) -> tuple[dict[str, Any], dict[str, Path | bytes]]:
    """The source manifest and the blobs it names: the clone's files, one blob each, and its
    `.git` directory packed into one more (the runner restores a git work tree from it;
    docs/DECISIONS.md#git-checkout)."""
    document: dict[str, Any] = {"version": MANIFEST_VERSION, "files": tree.files}
    blobs: dict[str, Path | bytes] = dict(tree.blobs)
    packed = workdir / "git.tar"
    forget_file_times(workdir / "repo")
    if git_archive.pack(workdir / "repo", packed):
        digest = manifest.sha256_file(packed)
        blobs[digest] = packed
        document["git"] = {"sha256": digest, "size": packed.stat().st_size}
    return document, blobs


def _limits(ctx: Context) -> CloneLimits:
    s = ctx.settings
    return CloneLimits(timeout=s.clone_timeout, max_files=s.max_repo_files,
                       max_bytes=s.max_repo_bytes)


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
    """Stop a queued or building deployment; a running build is killed by its runner."""
    get_deployment(ctx, deployment_id)
    try:
        lifecycle.cancel(ctx, deployment_id)
    except IllegalTransition as refused:
        raise Conflict(f"deployment {deployment_id} is {refused.current}; only queued or "
                       "building deployments can be cancelled") from None
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
    done = State(view["status"]) not in (State.QUEUED, State.BUILDING) and not lines
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
