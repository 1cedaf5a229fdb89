"""The scheduled cleanup against a real Redis and the real S3 endpoint (moto server).

Ages are simulated by passing `now=` in the future, never by sleeping, except where
a real LastModified must move (moto stamps it to the second).
"""
import dataclasses
import hashlib
import subprocess
import sys
import time

from chalicelib import ids, keys
from chalicelib.context import Context
from chalicelib.pipeline import cleanup
from chalicelib.state.records import State
from chalicelib.storage.store import Store
from tests.conftest import read_entry

DAY = 86400


def with_settings(ctx: Context, **changes) -> Context:
    return Context(dataclasses.replace(ctx.settings, **changes), ctx.redis, ctx.store)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deployment(ctx: Context, status: State = State.DEPLOYED, repo: str = "file:///repo",
               created_at: str | None = None, files: dict[str, bytes] | None = None) -> str:
    """A record in `status` with its source and (when deployed) output manifest and blobs."""
    deployment_id = ids.new_id()
    files = files or {"index.html": f"<p>{deployment_id}</p>".encode()}
    entries = {path: {"sha256": sha(data), "size": len(data)} for path, data in files.items()}
    ctx.store.upload_blobs({sha(data): data for data in files.values()})
    ctx.store.put_json(keys.source_manifest(deployment_id), {"version": 1, "files": entries})
    if status is State.DEPLOYED:
        ctx.store.put_json(keys.deployment_manifest(deployment_id),
                           {"version": 1, "id": deployment_id, "files": entries, "config": {}})
    ctx.records.create({"id": deployment_id, "repo_url": repo})
    if created_at:
        ctx.records.set_fields(deployment_id, created_at=created_at)
    path = {State.QUEUED: [], State.BUILDING: [State.BUILDING],
            State.DEPLOYED: [State.BUILDING, State.DEPLOYED],
            State.FAILED: [State.BUILDING, State.FAILED], State.CANCELLED: [State.CANCELLED],
            State.DELETED: [State.DELETED]}[status]
    for step in path:
        ctx.records.transition(deployment_id, step)
    return deployment_id


def has_manifest(ctx: Context, deployment_id: str) -> bool:
    return ctx.store.exists(keys.deployment_manifest(deployment_id))


def test_retention_keeps_the_newest_deployments_of_each_repository(ctx):
    ctx = with_settings(ctx, keep_deployments_per_repo=2)
    site = [deployment(ctx, created_at=f"2026-11-0{day}T00:00:00Z") for day in (1, 2, 3, 4)]
    other = deployment(ctx, repo="file:///other", created_at="2026-10-01T00:00:00Z")
    report = cleanup.run_cleanup(ctx)
    assert sorted(report.deleted_deployments) == sorted(site[:2])
    for old in site[:2]:
        assert ctx.records.status(old) is State.DELETED and not has_manifest(ctx, old)
    for kept in site[2:] + [other]:
        assert ctx.records.status(kept) is State.DEPLOYED and has_manifest(ctx, kept)


def test_failed_and_cancelled_deployments_go_after_the_retention_period(ctx):
    failed = deployment(ctx, State.FAILED)
    cancelled = deployment(ctx, State.CANCELLED)
    building = deployment(ctx, State.BUILDING)
    days = ctx.settings.failed_retention_days
    early = cleanup.run_cleanup(ctx, now=time.time() + (days - 1) * DAY)
    assert early.deleted_deployments == []
    late = cleanup.run_cleanup(ctx, now=time.time() + (days + 1) * DAY)
    assert sorted(late.deleted_deployments) == sorted([failed, cancelled])
    assert ctx.records.status(failed) is State.DELETED
    assert not ctx.store.exists(keys.source_manifest(failed))
    assert ctx.records.status(building) is State.BUILDING  # a build in progress is never touched
    assert ctx.store.exists(keys.source_manifest(building))


def test_sources_are_deleted_some_days_after_a_successful_build(ctx):
    deployed = deployment(ctx)
    queued = deployment(ctx, State.QUEUED)
    days = ctx.settings.source_retention_days
    assert cleanup.run_cleanup(ctx, now=time.time() + (days - 1) * DAY).deleted_sources == []
    report = cleanup.run_cleanup(ctx, now=time.time() + (days + 1) * DAY)
    assert report.deleted_sources == [deployed]
    assert not ctx.store.exists(keys.source_manifest(deployed))
    assert has_manifest(ctx, deployed)  # the site is still served
    assert ctx.records.status(deployed) is State.DEPLOYED
    assert ctx.store.exists(keys.source_manifest(queued))  # its build still needs it


def test_a_deployment_deleted_by_retention_still_answers_410_for_the_period(ctx):
    ctx = with_settings(ctx, keep_deployments_per_repo=1)
    old = deployment(ctx, created_at="2026-01-01T00:00:00Z")
    new = deployment(ctx)
    later = time.time() + (ctx.settings.deleted_record_days + 5) * DAY
    report = cleanup.run_cleanup(ctx, now=later)
    assert report.deleted_deployments == [old] and report.purged_records == []
    assert ctx.records.status(old) is State.DELETED  # the record stays, for the 410
    assert report.deleted_sources == [new]  # `old`'s source went with the deployment


def test_deleted_records_are_forgotten_after_their_period(ctx):
    deleted = deployment(ctx, State.DELETED)
    ctx.store.put_bytes(keys.archived_log(deleted), b"log")
    days = ctx.settings.deleted_record_days
    assert cleanup.run_cleanup(ctx, now=time.time() + (days - 1) * DAY).purged_records == []
    assert ctx.records.status(deleted) is State.DELETED  # still answers 410
    report = cleanup.run_cleanup(ctx, now=time.time() + (days + 1) * DAY)
    assert report.purged_records == [deleted]
    assert ctx.records.get(deleted) is None
    assert deleted not in ctx.records.list_ids()
    assert not ctx.store.exists(keys.archived_log(deleted))


def test_gc_sweeps_old_unreferenced_blobs_and_nothing_a_manifest_names(ctx):
    served = deployment(ctx, files={"index.html": b"served", "a.js": b"shared"})
    building = deployment(ctx, State.BUILDING, files={"index.html": b"source only"})
    garbage = [b"garbage 1", b"garbage 2"]
    ctx.store.upload_blobs({sha(data): data for data in garbage})
    # Three hours on: every blob is past the two-hour grace, no retention period is.
    report = cleanup.run_cleanup(ctx, now=time.time() + 3 * 3600)
    assert sorted(report.swept_blobs) == sorted(sha(data) for data in garbage)
    for data in garbage:
        assert not ctx.store.exists(keys.blob(sha(data)))
    for data in (b"served", b"shared", b"source only"):
        assert ctx.store.get_blob(sha(data)) == data
    assert ctx.records.status(served) is State.DEPLOYED
    assert ctx.records.status(building) is State.BUILDING


def test_gc_keeps_the_git_archive_a_live_source_names_and_sweeps_an_orphaned_one(ctx):
    live, orphaned = b"a live source's .git as a tar", b"a .git tar whose source is gone"
    ctx.store.upload_blobs({sha(live): live, sha(orphaned): orphaned})
    building = deployment(ctx, State.BUILDING, files={"index.html": b"source"})
    ctx.store.put_json(keys.source_manifest(building), {
        "version": 1, "files": {"index.html": {"sha256": sha(b"source"), "size": 6}},
        "git": {"sha256": sha(live), "size": len(live)}})
    report = cleanup.run_cleanup(ctx, now=time.time() + 3 * 3600)
    assert report.swept_blobs == [sha(orphaned)]
    assert ctx.store.get_blob(sha(live)) == live and ctx.store.get_blob(sha(b"source")) == b"source"
    assert not ctx.store.exists(keys.blob(sha(orphaned)))


def test_gc_never_sweeps_a_young_blob(ctx):
    young = b"uploaded a moment ago, its manifest not written yet"
    ctx.store.upload_blobs({sha(young): young})
    report = cleanup.run_cleanup(ctx)
    assert report.swept_blobs == []
    assert ctx.store.get_blob(sha(young)) == young


def test_the_blobs_of_a_deleted_deployment_are_swept_with_its_manifests(ctx):
    kept = deployment(ctx, files={"index.html": b"kept", "shared.css": b"shared"})
    gone = deployment(ctx, files={"index.html": b"gone", "shared.css": b"shared"})
    # Deleted, but its manifests stayed behind (the bucket call failed, say).
    ctx.records.transition(gone, State.DELETED)
    report = cleanup.run_cleanup(ctx, now=time.time() + 3 * 3600)
    assert sorted(report.orphan_manifests) == sorted(
        [keys.deployment_manifest(gone), keys.source_manifest(gone)])
    assert not has_manifest(ctx, gone)
    assert report.swept_blobs == [sha(b"gone")]
    assert ctx.store.get_blob(sha(b"shared")) == b"shared"
    assert ctx.store.get_blob(sha(b"kept")) == b"kept" and has_manifest(ctx, kept)


def test_a_manifest_without_a_record_is_an_orphan_only_once_it_is_old(ctx):
    in_flight = ids.new_id()  # the upload service writes the source manifest, then the record
    ctx.store.put_json(keys.source_manifest(in_flight), {"version": 1, "files": {}})
    assert cleanup.run_cleanup(ctx).orphan_manifests == []
    assert ctx.store.exists(keys.source_manifest(in_flight))
    report = cleanup.run_cleanup(ctx, now=time.time() + 3 * 3600)
    assert report.orphan_manifests == [keys.source_manifest(in_flight)]
    assert not ctx.store.exists(keys.source_manifest(in_flight))


def test_dry_run_reports_the_same_and_deletes_nothing(ctx):
    ctx = with_settings(ctx, keep_deployments_per_repo=1)
    old = deployment(ctx, created_at="2026-01-01T00:00:00Z", files={"index.html": b"old"})
    new = deployment(ctx, files={"index.html": b"new"})
    failed = deployment(ctx, State.FAILED)
    ctx.store.upload_blobs({sha(b"garbage"): b"garbage"})
    later = time.time() + 8 * DAY
    before = sorted(ctx.store.list_keys(""))
    dry = cleanup.run_cleanup(ctx, dry_run=True, now=later)
    assert sorted(ctx.store.list_keys("")) == before
    assert ctx.records.status(old) is State.DEPLOYED and ctx.records.status(failed) is State.FAILED
    assert sorted(dry.deleted_deployments) == sorted([old, failed])
    assert dry.deleted_sources == [new]
    assert sha(b"garbage") in dry.swept_blobs
    assert sha(b"old") in dry.swept_blobs  # once `old` is deleted, its blobs are garbage
    real = cleanup.run_cleanup(ctx, now=later)
    assert dataclasses.replace(real, dry_run=True) == dry
    assert ctx.records.status(old) is State.DELETED and not ctx.store.exists(keys.blob(sha(b"old")))
    assert ctx.store.get_blob(sha(b"new")) == b"new"


def test_reusing_an_old_blob_restamps_it_so_an_upload_in_flight_keeps_it(ctx):
    """moto moves LastModified on a CopyObject onto itself with MetadataDirective=REPLACE
    (checked here), which is how Store.upload_blobs protects a reused blob from the GC."""
    short = with_settings(ctx, gc_grace_seconds=2)
    store = Store(ctx.store.s3, ctx.settings.bucket, refresh_after=1)
    data = b"a blob an old, deleted deployment left behind"
    store.upload_blobs({sha(data): data})
    time.sleep(3.1)  # LastModified has one-second resolution
    assert cleanup.run_cleanup(short, dry_run=True).swept_blobs == [sha(data)]
    # A new deploy of the same file reuses the blob: nothing is written, the stamp moves.
    assert store.upload_blobs({sha(data): data}) == 0
    assert store.age_seconds(keys.blob(sha(data))) < short.settings.gc_grace_seconds
    assert cleanup.run_cleanup(short).swept_blobs == []
    assert store.get_blob(sha(data)) == data


def test_a_blob_swept_between_the_check_and_the_restamp_is_written_again(ctx):
    store = Store(ctx.store.s3, ctx.settings.bucket, refresh_after=0)
    data = b"an old blob the GC deletes while a deploy reuses it"
    store.upload_blobs({sha(data): data})
    head = store._last_modified

    def head_then_swept(key):
        stamp = head(key)
        ctx.store.delete([key])  # the GC's delete lands right after the HEAD
        return stamp
    store._last_modified = head_then_swept
    assert store.upload_blobs({sha(data): data}) == 1
    assert ctx.store.get_blob(sha(data)) == data


def packed(ctx: Context, files: dict[str, bytes]) -> tuple[str, dict[str, dict]]:
    """A checked pack of these files, as an upload stores it, and manifest entries naming it."""
    offsets, at = {}, 0
    for data in files.values():
        offsets[sha(data)] = at
        at += len(data)
    pack = ctx.store.put_pack(b"".join(files.values()), offsets)
    return pack, {path: {"sha256": sha(data), "size": len(data),
                         "pack": {"sha256": pack, "offset": offsets[sha(data)]}}
                  for path, data in files.items()}


def test_a_pack_lives_while_a_manifest_names_a_file_in_it(ctx):
    kept, entries = packed(ctx, {"a.html": b"<p>kept a</p>", "b.html": b"<p>kept b</p>"})
    orphan, _ = packed(ctx, {"c.html": b"<p>no manifest names me</p>"})
    deployment_id = deployment(ctx)
    ctx.store.put_json(keys.deployment_manifest(deployment_id),
                       {"version": 1, "id": deployment_id, "files": entries, "config": {}})
    later = time.time() + ctx.settings.gc_grace_seconds + 1
    assert cleanup.run_cleanup(ctx, now=later).swept_blobs == [orphan]
    assert ctx.store.exists(keys.blob(kept)) and not ctx.store.exists(keys.blob(orphan))
    assert read_entry(ctx.store, entries["b.html"]) == b"<p>kept b</p>"


def test_reusing_an_old_pack_restamps_it_so_an_upload_in_flight_keeps_it(ctx):
    short = with_settings(ctx, gc_grace_seconds=2)
    store = Store(ctx.store.s3, ctx.settings.bucket, refresh_after=1, packed=ctx.store.packed)
    data = b"<p>an old pack's file</p>" + ids.new_id().encode()
    pack, entries = packed(ctx, {"a.html": data})
    time.sleep(3.1)  # LastModified has one-second resolution
    assert cleanup.run_cleanup(short, dry_run=True).swept_blobs == [pack]
    # A new upload of the same file finds it in the pack, which is re-stamped, not re-sent.
    found, missing, restamped = store.keep_files([entries["a.html"]["sha256"]])
    assert (found, missing, restamped) == ({entries["a.html"]["sha256"]: (pack, 0)}, [], [pack])
    assert cleanup.run_cleanup(short).swept_blobs == []
    assert read_entry(store, entries["a.html"]) == data


def test_cleanup_imports_no_git():
    """The scheduled cleanup runs in Lambda, whose Python runtime has no git binary:
    it must not import the upload service (and through it GitPython)."""
    probe = "import chalicelib.pipeline.cleanup, sys; print('git' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
