"""A deployment's life: every change of a record's state, and of its job, happens here.

The record (state/records.py) and the job (state/queue.py) move together: a job never
exists without its record, and a record moves before its job is handed out again, so a
runner that claims the job sees it `queued`. The API (deploy.py), cleanup and the build
runner call these functions; none of them runs a transition or a queue command itself.
Side effects (log lines, removing manifests) come after the state is committed.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from chalicelib import keys
from chalicelib.context import Context
from chalicelib.state.records import IllegalTransition, State, warnings_field

log = logging.getLogger("percel.lifecycle")

Clock = Callable[[], float]


# --- submit -----------------------------------------------------------------------------

def submit(ctx: Context, record: dict[str, str | None]) -> None:
    """Record `queued` and job pushed in one MULTI/EXEC: never a job without its record, nor a
    project's deployment outside its project's index. Fields that are None are left out."""
    pipe = ctx.redis.pipeline(transaction=True)
    ctx.records.create(record, pipe)
    if record.get("project"):
        ctx.projects.add_deployment(str(record["project"]), str(record["id"]),
                                    int(str(record["seq"])), pipe)
    ctx.queue.enqueue(str(record["id"]), pipe)
    pipe.execute()


# --- a runner's side ----------------------------------------------------------------------

def claim(ctx: Context, runner_id: str, timeout: float) -> str | None:
    """Wait up to `timeout` seconds for a job and lease it to `runner_id`."""
    return ctx.queue.wait_and_claim(runner_id, timeout)


def start(ctx: Context, deployment_id: str, runner_id: str) -> int | None:
    """Move a claimed job's record `queued -> building`; returns the new attempt.

    None when the record is no longer queued (cancelled, deleted, or the job was
    delivered twice): someone else owns its outcome, so the claim is released.
    """
    try:
        _, attempt = ctx.records.transition(deployment_id, State.BUILDING,
                                            only_from={State.QUEUED})
    except IllegalTransition as refused:
        log.info("skipping %s: %s", deployment_id, refused)
        release(ctx, deployment_id, runner_id)
        return None
    return attempt


def renew(ctx: Context, deployment_id: str, runner_id: str) -> bool:
    """Extend the lease; False when this runner no longer holds the job."""
    return ctx.queue.heartbeat(deployment_id, runner_id)


def cancel_requested(ctx: Context, deployment_id: str) -> bool:
    return ctx.queue.cancel_requested(deployment_id)


def release(ctx: Context, deployment_id: str, runner_id: str) -> bool:
    """The runner is done with the job, whatever its outcome; only the lease's owner may."""
    return ctx.queue.ack(deployment_id, runner_id)


@dataclass(frozen=True)
class Outcome:
    """How a build's ending landed: `state` is where the deployment is now."""
    state: State
    committed: bool
    refused: str = ""  # why not committed: cancelled, deleted or taken over meanwhile


def finish(ctx: Context, deployment_id: str, attempt: int, warnings: Sequence[str] = ()) -> Outcome:
    """`building -> deployed`, fenced by the attempt: a runner whose job was handed to
    another runner cannot overwrite the newer attempt's outcome. A project's deployment moves
    its addresses in the same step (state/projects.py MOVE_ALIASES_LUA). `warnings` (the config
    rules the deploy skipped) are written with the state, so only the attempt that deployed
    sets them."""
    return _end(ctx, deployment_id, attempt, State.DEPLOYED,
                warnings=warnings_field(list(warnings)))


def fail(ctx: Context, deployment_id: str, attempt: int, reason: str,
         tail: Iterable[str] = ()) -> Outcome:
    """`building -> failed` with the reason and the last log lines, fenced like `finish`."""
    return _end(ctx, deployment_id, attempt, State.FAILED, error=failure_message(reason, tail))


def retry_later(ctx: Context, deployment_id: str, attempt: int, runner_id: str, reason: str,
                tail: Iterable[str] = (), now: Clock = time.time) -> Outcome:
    """A build stopped by an outage of ours (the bucket unreachable past boto3's retries):
    `building -> queued`, fenced like `finish`, and handed out again one JOB_LEASE_SECONDS
    later (by the reaper), or `failed` with the reason once it has had MAX_BUILD_ATTEMPTS."""
    if attempt >= ctx.settings.max_build_attempts:
        return fail(ctx, deployment_id, attempt, f"{reason} (attempt {attempt} of "
                    f"{ctx.settings.max_build_attempts}; giving up)", tail)
    try:
        ctx.records.transition(deployment_id, State.QUEUED, only_from={State.BUILDING},
                               attempt=attempt)
    except IllegalTransition as refused:
        return Outcome(State(refused.current) if refused.current else State.QUEUED, False,
                       str(refused))
    ctx.queue.defer(deployment_id, runner_id, now() + ctx.settings.job_lease_seconds)
    return Outcome(State.QUEUED, True)


def failure_message(reason: str, tail: Iterable[str]) -> str:
    """The record's `error`: the reason, then the log lines that led to it."""
    lines = list(tail)
    return reason + ("\n--- last log lines ---\n" + "\n".join(lines) if lines else "")


def _end(ctx: Context, deployment_id: str, attempt: int, state: State,
         **fields: str) -> Outcome:
    try:
        ctx.records.transition(deployment_id, state, only_from={State.BUILDING},
                               attempt=attempt, **fields)
    except IllegalTransition as refused:
        now = State(refused.current) if refused.current else state
        return Outcome(now, False, str(refused))
    return Outcome(state, True)


# --- the API's side -----------------------------------------------------------------------

def cancel(ctx: Context, deployment_id: str) -> None:
    """Stop a queued or building deployment; its runner kills the build.

    Raises IllegalTransition when the deployment is neither queued nor building.
    """
    ctx.records.transition(deployment_id, State.CANCELLED,
                           only_from={State.QUEUED, State.BUILDING},
                           error="cancelled by request")
    _stop_job(ctx, deployment_id)


def delete(ctx: Context, deployment_id: str) -> None:
    """The API's DELETE: take the deployment down and stop its job. Idempotent: when it
    was deleted before (or concurrently), what a late runner may still have written goes."""
    if take_down(ctx, deployment_id):
        _stop_job(ctx, deployment_id)
    else:
        _delete_manifests(ctx, deployment_id)


def take_down(ctx: Context, deployment_id: str) -> bool:
    """Mark a deployment deleted, then remove its manifests (the site answers 410); False
    when its state did not allow it. Used by the API's DELETE and cleanup's retention."""
    try:
        ctx.records.transition(deployment_id, State.DELETED)
    except IllegalTransition:
        return False
    _delete_manifests(ctx, deployment_id)
    return True


def _delete_manifests(ctx: Context, deployment_id: str) -> None:
    ctx.store.delete([keys.deployment_manifest(deployment_id),
                      keys.source_manifest(deployment_id)])


def _stop_job(ctx: Context, deployment_id: str) -> None:
    ctx.queue.remove(deployment_id)
    ctx.queue.request_cancel(deployment_id)


# --- the reaper ---------------------------------------------------------------------------

@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def reap(ctx: Context, dry_run: bool = False, now: Clock = time.time) -> ReapReport:
    """Jobs whose lease ran out before `now()` go back to the queue, or fail after
    MAX_BUILD_ATTEMPTS (rq's StartedJobRegistry.cleanup). Run by every runner now and
    then and by the scheduled cleanup."""
    report = ReapReport()
    for deployment_id in ctx.queue.expired(now()):
        record = ctx.records.get(deployment_id) or {}
        status = record.get("status")
        if dry_run:
            report.requeued.append(deployment_id)
        elif status == State.BUILDING.value:
            _reap_building(ctx, deployment_id, int(record.get("attempt") or 0), report)
        elif status == State.QUEUED.value:
            # Claimed, but the runner died before it started, or a build was put back for
            # later (retry_later): hand it back untouched.
            if ctx.queue.requeue(deployment_id):
                report.requeued.append(deployment_id)
        else:
            ctx.queue.remove(deployment_id)  # finished, cancelled or gone: a stale claim
            report.dropped.append(deployment_id)
    return report


def _reap_building(ctx: Context, deployment_id: str, attempt: int, report: ReapReport) -> None:
    if attempt >= ctx.settings.max_build_attempts:
        reason = f"the build runner stopped responding {attempt} times; giving up"
        if fail(ctx, deployment_id, attempt, reason).committed:
            ctx.queue.remove(deployment_id)
            report.failed.append(deployment_id)
        return
    try:
        ctx.records.transition(deployment_id, State.QUEUED, only_from={State.BUILDING},
                               attempt=attempt)
    except IllegalTransition:
        return  # another reaper, or the runner itself, got there first
    ctx.queue.requeue(deployment_id)
    report.requeued.append(deployment_id)
    ctx.logs.append(deployment_id, f"percel: the runner of attempt {attempt} stopped "
                                   "responding; the build was queued again")
    log.warning("re-queued %s after attempt %d", deployment_id, attempt)
