"""The reaper: jobs whose runner stopped heartbeating go back to the queue, or fail.

One function, run by every runner now and then and by the scheduled cleanup
(rq's StartedJobRegistry.cleanup plays this part there). The record moves first
and the job second, so a runner that claims the job sees it `queued`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from chalicelib.context import Context
from chalicelib.state.records import IllegalTransition, State

log = logging.getLogger("percel.reaper")


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def reap(ctx: Context, dry_run: bool = False) -> ReapReport:
    report = ReapReport()
    for deployment_id in ctx.queue.expired():
        record = ctx.records.get(deployment_id) or {}
        status = record.get("status")
        if dry_run:
            report.requeued.append(deployment_id)
        elif status == State.BUILDING.value:
            _reap_building(ctx, deployment_id, int(record.get("attempt") or 0), report)
        elif status == State.QUEUED.value:
            # Claimed, but the runner died before it started: hand it back untouched.
            if ctx.queue.requeue(deployment_id):
                report.requeued.append(deployment_id)
        else:
            ctx.queue.remove(deployment_id)  # finished, cancelled or gone: a stale claim
            report.dropped.append(deployment_id)
    return report


def _reap_building(ctx: Context, deployment_id: str, attempt: int, report: ReapReport) -> None:
    limit = ctx.settings.max_build_attempts
    try:
        if attempt >= limit:
            ctx.records.transition(
                deployment_id, State.FAILED, only_from={State.BUILDING}, attempt=attempt,
                error=f"the build runner stopped responding {attempt} times; giving up")
            ctx.queue.remove(deployment_id)
            report.failed.append(deployment_id)
            return
        ctx.records.transition(deployment_id, State.QUEUED, only_from={State.BUILDING},
                               attempt=attempt)
    except IllegalTransition:
        return  # another reaper, or the runner itself, got there first
    ctx.queue.requeue(deployment_id)
    ctx.logs.append(deployment_id, f"percel: the runner of attempt {attempt} stopped "
                                   "responding; the build was queued again")
    report.requeued.append(deployment_id)
    log.warning("re-queued %s after attempt %d", deployment_id, attempt)
