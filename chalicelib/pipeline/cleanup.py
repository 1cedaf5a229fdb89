"""The scheduled cleanup: reaping, retention, and mark-and-sweep of unreferenced blobs.

Run by `@app.schedule` in Lambda and by a timer in the local stack, or by hand:
`python -m chalicelib.pipeline.cleanup [--dry-run]` prints what it did (or would do).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from chalicelib import keys
from chalicelib.context import Context, build_context
from chalicelib.pipeline import lifecycle
from chalicelib.state.records import State, seconds_since
from chalicelib.state.records import now as record_stamp
from chalicelib.storage import manifest

DAY = 86400.0


@dataclass
class CleanupReport:
    dry_run: bool
    requeued: list[str] = field(default_factory=list)
    deleted_deployments: list[str] = field(default_factory=list)
    deleted_sources: list[str] = field(default_factory=list)
    purged_records: list[str] = field(default_factory=list)
    swept_blobs: list[str] = field(default_factory=list)
    orphan_manifests: list[str] = field(default_factory=list)
    staged_uploads: list[str] = field(default_factory=list)


def run_cleanup(ctx: Context, dry_run: bool = False, now: float | None = None) -> CleanupReport:
    """Reap, apply retention, sweep; `now` (default the present) dates retention and the
    sweep's ages. Leases are judged against the real clock."""
    now = time.time() if now is None else now
    report = CleanupReport(dry_run)
    report.requeued = lifecycle.reap(ctx, dry_run).requeued
    records = _all_records(ctx)
    apply_retention(ctx, records, now, report)
    sweep(ctx, records, now, report)
    sweep_staged(ctx, now, report)
    return report


def sweep_staged(ctx: Context, now: float, report: CleanupReport) -> None:
    """Delete what clients PUT for uploads that were never deployed (keys.staged_blob): once
    their URLs have expired (UPLOAD_SECONDS) and a grace period has passed, nothing can
    deploy them (a deployment promotes and removes its own)."""
    age = ctx.settings.upload_seconds + ctx.settings.gc_grace_seconds
    old = [key for key, mtime in ctx.store.list_keys(keys.UPLOADS_PREFIX) if now - mtime > age]
    report.staged_uploads.extend(old)
    if old and not report.dry_run:
        ctx.store.delete(old)


def _all_records(ctx: Context) -> dict[str, dict[str, str]]:
    return {record["id"]: record for record in ctx.records.newest(None)}


def age_days(stamp: str | None, now: float) -> float:
    """How many days before `now` a record timestamp lies."""
    return seconds_since(stamp, now) / DAY


def retention_victims(records: dict[str, dict[str, str]], now: float, keep: int,
                      failed_days: float) -> list[str]:
    """Deployments the retention policy removes: all but the newest `keep` deployed ones per
    repository, and failed or cancelled ones older than `failed_days`. Pure."""
    victims = []
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for record in records.values():
        status = record.get("status")
        if status == State.DEPLOYED.value:
            by_repo[record.get("repo_url", "")].append(record)
        elif status in (State.FAILED.value, State.CANCELLED.value) \
                and age_days(record.get("updated_at"), now) > failed_days:
            victims.append(record["id"])
    for deployed in by_repo.values():
        deployed.sort(key=lambda r: (r.get("created_at", ""), r["id"]), reverse=True)
        victims += [r["id"] for r in deployed[keep:]]
    return sorted(victims)


def apply_retention(ctx: Context, records: dict, now: float, report: CleanupReport) -> None:
    """Take down retention's victims, trim old sources, purge long-deleted records."""
    s = ctx.settings
    # Never what a project's address serves, nor its last production deployments (rollback).
    protected = ctx.projects.protected(s.keep_production_rollbacks)
    victims = retention_victims(records, now, s.keep_deployments_per_repo, s.failed_retention_days)
    for deployment_id in [victim for victim in victims if victim not in protected]:
        if report.dry_run or lifecycle.take_down(ctx, deployment_id):
            report.deleted_deployments.append(deployment_id)
            # Deleted now: the steps below must neither trim its source nor purge it at once.
            records[deployment_id] = {**records[deployment_id], "status": State.DELETED.value,
                                      "updated_at": record_stamp(now)}
    for deployment_id, record in records.items():
        status = record.get("status")
        if status == State.DEPLOYED.value and \
                age_days(record.get("updated_at"), now) > s.source_retention_days:
            if ctx.store.exists(keys.source_manifest(deployment_id)):
                report.deleted_sources.append(deployment_id)
                if not report.dry_run:
                    ctx.store.delete([keys.source_manifest(deployment_id)])
        elif status == State.DELETED.value and \
                age_days(record.get("updated_at"), now) > s.deleted_record_days:
            report.purged_records.append(deployment_id)
            if not report.dry_run:
                ctx.store.delete([keys.archived_log(deployment_id)])
                ctx.records.purge(deployment_id)
                if record.get("project"):
                    ctx.projects.forget_deployment(record["project"], deployment_id)


def sweep(ctx: Context, records: dict, now: float, report: CleanupReport) -> None:
    """Mark every blob a live manifest names; sweep old blobs no manifest names.

    The blob listing comes first, so a blob uploaded after it is never a candidate; a
    candidate is re-checked just before deletion, because an upload that reuses an old
    blob refreshes its timestamp (Store.upload_blobs) - an upload in flight is never swept.
    """
    grace = ctx.settings.gc_grace_seconds
    candidates = {k.split("/", 1)[1]: mtime for k, mtime in ctx.store.list_keys(keys.BLOBS_PREFIX)
                  if now - mtime > grace}
    live = _mark(ctx, records, now, report)
    for sha256 in sorted(set(candidates) - live):
        key = keys.blob(sha256)
        if ctx.store.age_seconds(key, now) > grace:
            report.swept_blobs.append(sha256)
            if not report.dry_run:
                # At once, not in one batch at the end: an upload that re-stamps this blob
                # after the re-check would otherwise lose it (seen in tests/test_faults.py).
                ctx.store.delete([key])


def _mark(ctx: Context, records: dict, now: float, report: CleanupReport) -> set[str]:
    live: set[str] = set()
    gone = _deleted_so_far(report) if report.dry_run else set()
    for prefix in ("deployments/", "sources/"):
        for key, mtime in list(ctx.store.list_keys(prefix)):
            deployment_id = key[len(prefix):].removesuffix(".json")
            if key in gone:
                continue  # a real run has deleted it by now
            record = ctx.records.get(deployment_id)  # fresh: it may have changed meanwhile
            # A source manifest is written just before its record: young ones are in flight.
            unowned = record is None and now - mtime > ctx.settings.gc_grace_seconds
            if unowned or (record or {}).get("status") == State.DELETED.value:
                report.orphan_manifests.append(key)  # its deployment is gone
                if not report.dry_run:
                    ctx.store.delete([key])
                continue
            document = ctx.store.get_json(key)
            if document:
                live |= manifest.document_blobs(document)
    return live


def _deleted_so_far(report: CleanupReport) -> set[str]:
    """The manifests retention deleted (or, in a dry run, would have): the dry run's
    mark must skip them too, so that it reports the same blobs a real run sweeps."""
    gone = {keys.source_manifest(d) for d in report.deleted_sources}
    for deployment_id in report.deleted_deployments:
        gone |= {keys.deployment_manifest(deployment_id), keys.source_manifest(deployment_id)}
    return gone


def main() -> None:
    parser = argparse.ArgumentParser(description="Run percel's cleanup once.")
    parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    parser.add_argument("--every", type=float, default=0,
                        help="repeat every N seconds (the local stack's timer)")
    args = parser.parse_args()
    ctx = build_context()
    while True:
        report = run_cleanup(ctx, dry_run=args.dry_run)
        print(json.dumps(asdict(report)), flush=True)
        if not args.every:
            return
        time.sleep(args.every)


if __name__ == "__main__":
    main()
