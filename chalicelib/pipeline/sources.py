"""A git deployment's source step, outside the request: clone, upload, queue the build.

POST /api/deployments resolves the ref (clone.resolve_ref), records the deployment `uploading`
with a job in the source queue (lifecycle.accept) and calls `lifecycle.dispatch`. `upload_next`
takes one source job and does the rest. It is what the `source_upload` Lambda function runs
(app.py), invoked asynchronously by `lifecycle.dispatch` on AWS, and what `python -m
chalicelib.pipeline.sources` runs in a loop in the local stack (docs/DECISIONS.md#async-upload).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chalicelib import keys
from chalicelib.context import Context, build_context
from chalicelib.errors import ApiError, ServiceUnavailable
from chalicelib.pipeline import lifecycle
from chalicelib.pipeline.clone import CloneLimits, Pin, clone, forget_file_times
from chalicelib.schema import MANIFEST_VERSION
from chalicelib.state.records import State
from chalicelib.storage import git_archive, manifest

log = logging.getLogger("percel.sources")

# Where a deployment whose source was just uploaded may be without a build reading that source.
UNBUILT = frozenset({State.CANCELLED, State.DELETED, State.FAILED})
# How often the local worker reaps abandoned jobs (both queues), as a build runner does.
REAP_SECONDS = 30.0


def upload_next(ctx: Context, worker_id: str, wait: float) -> str | None:
    """Take the oldest source job (waiting up to `wait` s) and do it; its id, or None."""
    deployment_id = lifecycle.claim_source(ctx, worker_id, wait)
    if deployment_id:
        upload_source(ctx, deployment_id, worker_id)
    return deployment_id


def upload_source(ctx: Context, deployment_id: str, worker_id: str) -> None:
    """Clone (or reuse a clone of the same commit) and upload a claimed job's source, then
    `uploading -> queued` with its build job; a refusal ends it `failed` with the reason."""
    lease = _Lease(ctx, deployment_id, worker_id)
    try:
        record = ctx.records.get(deployment_id)
        if not record or record.get("status") != State.UPLOADING.value:
            return  # cancelled or deleted while it waited
        tries = lifecycle.begin_upload(ctx, deployment_id)
        try:
            commit = _upload(ctx, record, tries)
        except ApiError as refused:
            _fail(ctx, deployment_id, refused.message)
            return
        except Exception:
            log.exception("source upload of %s failed", deployment_id)
            _fail(ctx, deployment_id, "internal error in the source worker")
            return
        if not lifecycle.uploaded(ctx, deployment_id, commit) and \
                ctx.records.status(deployment_id) in UNBUILT:
            # Cancelled, deleted or failed meanwhile: nothing will build this source. (Queued
            # or later: a worker that took the job over when this one's lease ran out got
            # there first, and its build reads this same manifest.)
            ctx.store.delete([keys.source_manifest(deployment_id)])
    finally:
        lease.stop()
        lifecycle.release_source(ctx, deployment_id, worker_id)


def _fail(ctx: Context, deployment_id: str, reason: str) -> None:
    if lifecycle.fail_upload(ctx, deployment_id, reason):
        lifecycle.archive_log(ctx, deployment_id)


def _upload(ctx: Context, record: dict[str, str], tries: int) -> str:
    """The source uploaded (or reused); returns the commit it holds."""
    deployment_id, repo_url = record["id"], record["repo_url"]
    ref, commit = record.get("ref") or None, record.get("commit", "")
    note = f" (try {tries})" if tries > 1 else ""
    reused = _reuse(ctx, deployment_id, repo_url, ref, commit)
    if reused:
        ctx.logs.append(deployment_id, f"percel: source of {commit[:12]} reused from deployment "
                                       f"{reused}: no clone{note}")
        return commit
    ctx.logs.append(deployment_id, f"percel: cloning {repo_url} at {commit[:12]}{note}")
    workdir = Path(tempfile.mkdtemp(prefix="percel-clone-"))
    try:
        cloned = clone(repo_url, ref, workdir / "repo", limits(ctx), pin_of(record))
        document, blobs = source_document(manifest.scan_source(workdir / "repo"), workdir)
        written, restamped = ctx.store.put_blobs(blobs)
        ctx.store.put_json(keys.source_manifest(deployment_id), document)
        # Now that the manifest protects them, check no reused old blob was swept meanwhile.
        if ctx.store.ensure_blobs(restamped, blobs):
            raise ServiceUnavailable("the source upload could not be completed")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ctx.logs.append(deployment_id, f"percel: source uploaded: {len(document['files'])} files, "
                                   f"{written} new blobs")
    if cloned != commit:
        # The branch moved between the POST and the clone: the record names what is built.
        ctx.logs.append(deployment_id, f"percel: {ref or 'the default branch'} moved to "
                                       f"{cloned[:12]} since the deploy was requested")
    else:
        ctx.source_memo.put(repo_url, ref or "", commit, deployment_id)
    return cloned


def _reuse(ctx: Context, deployment_id: str, repo_url: str, ref: str | None,
           commit: str) -> str | None:
    """Copy the source manifest of an earlier clone of this URL, ref and commit, if that
    manifest and every blob it names are still stored; the earlier deployment's id, or None.
    The ref is part of the key because the packed `.git` names the branch it was cloned from."""
    if not commit or ctx.settings.memo_seconds <= 0:
        return None
    earlier = ctx.source_memo.get(repo_url, ref or "", commit)
    body = ctx.store.get_bytes(keys.source_manifest(earlier)) if earlier else None
    if body is None:
        return None
    # False when a blob is gone (swept, or a sweep won the race): clone after all.
    if not ctx.store.put_manifest_of_stored(keys.source_manifest(deployment_id), body,
                                            manifest.document_blobs(json.loads(body))):
        return None
    return earlier


def source_document(tree: manifest.Tree, workdir: Path) -> tuple[dict[str, Any],
                                                                 dict[str, Path | bytes]]:
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


def limits(ctx: Context) -> CloneLimits:
    s = ctx.settings
    return CloneLimits(timeout=s.clone_timeout, max_files=s.max_repo_files,
                       max_bytes=s.max_repo_bytes)


def pin_field(pin: Pin | None) -> str | None:
    """The record's `pin`: the address the request checked, which the clone connects to."""
    return json.dumps(asdict(pin)) if pin else None


def pin_of(record: dict[str, str]) -> Pin | None:
    return Pin(**json.loads(record["pin"])) if record.get("pin") else None


class _Lease:
    """Renews a source job's lease every third of its length until stopped."""

    def __init__(self, ctx: Context, deployment_id: str, worker_id: str):
        self._stop = threading.Event()
        every = ctx.source_queue.lease_seconds / 3

        def renew() -> None:
            while not self._stop.wait(every):
                if not lifecycle.renew_source(ctx, deployment_id, worker_id):
                    return

        self._thread = threading.Thread(target=renew, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_worker(ctx: Context, worker_id: str, stop: threading.Event) -> None:
    """The local stack's source worker: take back what this worker held before a restart,
    then take jobs until `stop` is set, reaping abandoned ones every REAP_SECONDS."""
    for deployment_id in lifecycle.reclaim_sources(ctx, worker_id):
        log.info("took back %s, held by %s before it restarted", deployment_id, worker_id)
    log.info("source worker %s waiting for jobs", worker_id)
    next_reap = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_reap:
                lifecycle.reap(ctx)
                next_reap = time.monotonic() + REAP_SECONDS
            done = upload_next(ctx, worker_id, wait=1.0)
        except Exception:  # Redis away: try again, as a runner does
            log.exception("source worker %s could not take a job", worker_id)
            stop.wait(1.0)
            continue
        if done:
            log.info("source of %s done", done)


def main() -> None:
    argparse.ArgumentParser(description="Run one source worker (clone + source upload) until "
                                        "SIGTERM.").parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sources %(levelname)s %(message)s")
    ctx = build_context()
    # A stable name (RUNNER_NAME) lets a restarted worker take back its jobs at once.
    worker_id = ctx.settings.runner_name or f"{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack stops its services with SIGTERM
    run_worker(ctx, worker_id, stop)


if __name__ == "__main__":
    main()
