"""A deployment's life: every change of a record's state, and of its job, happens here.

The record (state/records.py) and the job (state/queue.py) move together: a job never
exists without its record, and a record moves before its job is handed out again, so a
runner that claims the job sees it `queued`. A git deployment starts `uploading` with a job
in the source queue; its source worker moves it to `queued` and pushes its build job in one
step. The API (deploy.py), the source worker (sources.py), cleanup and the build runner call
these functions; none of them runs a transition or a queue command itself.
Side effects (log lines, removing manifests) come after the state is committed.
"""
from __future__ import annotations

import json
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


def accept(ctx: Context, record: dict[str, str | None]) -> None:
    """Record `uploading` and its source job pushed in one MULTI/EXEC (as `submit`): a source
    worker clones and uploads it, then calls `uploaded`."""
    pipe = ctx.redis.pipeline(transaction=True)
    ctx.records.create(record, pipe, status=State.UPLOADING)
    if record.get("project"):
        ctx.projects.add_deployment(str(record["project"]), str(record["id"]),
                                    int(str(record["seq"])), pipe)
    ctx.source_queue.enqueue(str(record["id"]), pipe)
    pipe.execute()


def dispatch(ctx: Context, deployment_id: str) -> None:
    """Start the source function for a job just queued, when one is set (SOURCE_FUNCTION): an
    asynchronous invoke, InvocationType "Event", which Lambda queues and answers at once
    (docs.aws.amazon.com/lambda/latest/dg/invocation-async.html). Without one, a local worker
    polls the queue. A failed invoke is logged, not raised: the job stays in Redis, and cleanup
    dispatches again for every job still waiting (`dispatch_waiting`)."""
    function = ctx.settings.source_function
    if not function:
        return
    try:
        ctx.lambda_client.invoke(FunctionName=function, InvocationType="Event",
                                 Payload=json.dumps({"deployment_id": deployment_id}).encode())
    except Exception:  # the deployment is recorded and its job kept: cleanup retries
        log.exception("could not invoke %s for %s", function, deployment_id)


def dispatch_waiting(ctx: Context) -> int:
    """One invoke per job waiting in the source queue (cleanup runs it): a job whose invoke
    failed, or that the reaper handed back, is taken by one of them; a surplus invoke finds
    no job and ends."""
    waiting = ctx.source_queue.depth()[0] if ctx.settings.source_function else 0
    for _ in range(waiting):
        dispatch(ctx, "")
    return waiting


# --- a source worker's side ---------------------------------------------------------------

# How often a waiting source worker looks for a job (seconds): the hand-off is on the path from
# POST to deployed, which an unchanged redeploy covers in about half a second (bench/README.md
# "Memoized builds"), and one look is one cheap Redis call.
SOURCE_POLL_SECONDS = 0.05


def claim_source(ctx: Context, worker_id: str, timeout: float) -> str | None:
    """Wait up to `timeout` seconds for a source job and lease it to `worker_id`."""
    return ctx.source_queue.wait_and_claim(worker_id, timeout, poll=SOURCE_POLL_SECONDS)


def begin_upload(ctx: Context, deployment_id: str) -> int:
    """Count one more try at a claimed source job; returns how many there were."""
    return ctx.records.count(deployment_id, "source_attempts")


def renew_source(ctx: Context, deployment_id: str, worker_id: str) -> bool:
    return ctx.source_queue.heartbeat(deployment_id, worker_id)


def release_source(ctx: Context, deployment_id: str, worker_id: str) -> bool:
    return ctx.source_queue.ack(deployment_id, worker_id)


def uploaded(ctx: Context, deployment_id: str, commit: str) -> bool:
    """`uploading -> queued` and the build job pushed, in one script; False when the deployment
    left `uploading` meanwhile (cancelled, deleted, or failed by the reaper)."""
    try:
        ctx.records.transition(deployment_id, State.QUEUED, only_from={State.UPLOADING},
                               push_to=ctx.queue.names.queue, commit=commit)
    except IllegalTransition:
        return False
    return True


def fail_upload(ctx: Context, deployment_id: str, reason: str) -> bool:
    """`uploading -> failed` with the reason, in the record and the log."""
    try:
        ctx.records.transition(deployment_id, State.FAILED, only_from={State.UPLOADING},
                               error=reason)
    except IllegalTransition:
        return False
    ctx.logs.append(deployment_id, f"percel: the source upload failed: {reason}")
    return True


def archive_log(ctx: Context, deployment_id: str) -> None:
    """An ended deployment's log to the bucket (`logs/<id>.txt`); its live stream then expires."""
    lines = ctx.logs.all_lines(deployment_id)
    ctx.store.put_bytes(keys.archived_log(deployment_id), ("\n".join(lines) + "\n").encode(),
                        "text/plain; charset=utf-8")
    ctx.logs.finish(deployment_id)


def reclaim_sources(ctx: Context, worker_id: str) -> list[str]:
    """Hand back the source jobs `worker_id` held in a previous life (it was killed and started
    again under the same name): no one renews those leases, so they need not run out first."""
    return [job for job in ctx.source_queue.held_by(worker_id) if ctx.source_queue.requeue(job)]


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
    """Stop an uploading, queued or building deployment; its runner kills the build, and a
    source worker that is still uploading it throws its upload away.

    Raises IllegalTransition when the deployment is in none of those states.
    """
    ctx.records.transition(deployment_id, State.CANCELLED,
                           only_from={State.UPLOADING, State.QUEUED, State.BUILDING},
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
    ctx.source_queue.remove(deployment_id)
    ctx.queue.remove(deployment_id)
    ctx.queue.request_cancel(deployment_id)


# --- the reaper ---------------------------------------------------------------------------

@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    requeued_sources: list[str] = field(default_factory=list)


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
    if not dry_run:
        _reap_sources(ctx, now(), report)
    return report


def _reap_sources(ctx: Context, now: float, report: ReapReport) -> None:
    """Source jobs whose worker stopped renewing: back to the source queue while the deployment
    is still `uploading`, failed after MAX_BUILD_ATTEMPTS tries, dropped otherwise."""
    for deployment_id in ctx.source_queue.expired(now):
        record = ctx.records.get(deployment_id) or {}
        tries = int(record.get("source_attempts") or 0)
        if record.get("status") != State.UPLOADING.value:
            ctx.source_queue.remove(deployment_id)
            report.dropped.append(deployment_id)
        elif tries >= ctx.settings.max_build_attempts:
            fail_upload(ctx, deployment_id, f"the source worker stopped responding {tries} "
                                             "times; giving up")
            ctx.source_queue.remove(deployment_id)
            report.failed.append(deployment_id)
        elif ctx.source_queue.requeue(deployment_id):
            report.requeued_sources.append(deployment_id)
            log.warning("re-queued the source upload of %s after %d tries", deployment_id, tries)


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
