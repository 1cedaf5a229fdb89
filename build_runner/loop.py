"""The build runner's loop: claim a job, keep its lease, build and publish it, end it.

A deployment becomes `deployed` only after publish.py has written its manifest and
checked every blob; any failure before that ends in `failed` with the reason and the
tail of the log. Every state change goes through chalicelib/pipeline/lifecycle.py.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections import deque
from pathlib import Path

import redis

from build_runner import memo
from build_runner.build import Builder, Job, Say
from build_runner.errors import INTERNAL_ERROR, BuildFailed, ProjectError, one_line
from build_runner.publish import OutputLimits, publish
from build_runner.redaction import Redactor
from build_runner.sandbox import Sandbox
from build_runner.sandbox.base import MAX_LINE_BYTES
from chalicelib import keys
from chalicelib.context import Context
from chalicelib.pipeline import lifecycle
from chalicelib.state import logs
from chalicelib.state.records import State
from chalicelib.state.secrets import FIELD as ENV_FIELD
from chalicelib.state.secrets import SecretsUnavailable
from chalicelib.storage import manifest
from chalicelib.storage.store import unreachable

log = logging.getLogger("percel.runner")


class Runner:
    def __init__(self, ctx: Context, sandbox: Sandbox, runner_id: str | None = None):
        self.ctx = ctx
        self.sandbox = sandbox
        self.runner_id = runner_id or f"{socket.gethostname()}-{os.getpid()}"
        self.stop = threading.Event()
        name = ctx.settings.runner_name or self.runner_id
        self.builder = Builder(ctx, sandbox, Path(ctx.settings.work_dir) / "depcache" / name)

    def run_forever(self, poll_timeout: float = 2.0) -> None:
        """Claim and build jobs until `stop` is set; reap abandoned jobs every REAP_INTERVAL."""
        log.info("runner %s waiting for jobs (sandbox: %s)", self.runner_id, self.sandbox.name)
        if self.ctx.settings.toolchain_prefetch:
            threading.Thread(target=self._prefetch, name="toolchain-prefetch", daemon=True).start()
        next_reap = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() >= next_reap:
                    self._reap()
                    next_reap = time.monotonic() + self.ctx.settings.reap_interval
                deployment_id = lifecycle.claim(self.ctx, self.runner_id, poll_timeout)
                if deployment_id:
                    self.process(deployment_id)
            except Exception:
                # A Redis or bucket outage must not end the runner (a 2 s Redis restart
                # killed every runner in tests/test_faults.py). A job whose bookkeeping
                # failed keeps its lease, which lapses; the reaper hands the job out again.
                log.exception("runner loop failed; retrying in 1 s")
                self.stop.wait(1.0)

    def _prefetch(self) -> None:
        """The default toolchain, downloaded while no job waits for it (TOOLCHAIN_PREFETCH)."""
        try:
            log.info("toolchain ready: %s", self.builder.toolchains.prefetch())
        except Exception:  # only a head start: the first build downloads what is missing
            log.warning("toolchain prefetch failed", exc_info=True)

    def _reap(self) -> None:
        try:
            lifecycle.reap(self.ctx)
        except Exception:  # a reaper hiccup must not stop the runner
            log.exception("reaper failed")

    def process(self, deployment_id: str) -> State | None:
        """Build one claimed job; returns the state it ended in (None: not ours to build)."""
        attempt = lifecycle.start(self.ctx, deployment_id, self.runner_id)
        if attempt is None:
            return None
        done, cancel = threading.Event(), threading.Event()
        threading.Thread(target=self._watch, args=(deployment_id, done, cancel),
                         daemon=True).start()
        state = None
        try:
            state = self._run(deployment_id, attempt, cancel)
            return state
        finally:
            done.set()
            if state is not State.QUEUED:  # a build put back for later goes on with its log
                self._archive_log(deployment_id)
            lifecycle.release(self.ctx, deployment_id, self.runner_id)

    def _archive_log(self, deployment_id: str) -> None:
        """The build log into the bucket; when the bucket is down, it stays in Redis (live)."""
        try:
            lifecycle.archive_log(self.ctx, deployment_id)
        except Exception as error:
            if not unreachable(error):
                raise
            log.warning("build log of %s not archived: the bucket did not answer", deployment_id)

    def _watch(self, deployment_id: str, done: threading.Event, cancel: threading.Event) -> None:
        """Renew the lease every third of it; notice a cancel within a second."""
        interval = max(1.0, self.ctx.settings.job_lease_seconds / 3)
        next_beat = time.monotonic() + interval
        while not done.wait(1.0):
            try:
                if lifecycle.cancel_requested(self.ctx, deployment_id):
                    cancel.set()
                if time.monotonic() >= next_beat:
                    lifecycle.renew(self.ctx, deployment_id, self.runner_id)
                    next_beat = time.monotonic() + interval
            except Exception:  # Redis blips: try again next second
                log.warning("heartbeat for %s failed", deployment_id, exc_info=True)

    def _run(self, deployment_id: str, attempt: int, cancel: threading.Event) -> State:
        record = self.ctx.records.get(deployment_id) or {}
        options = json.loads(record.get("options") or "{}")
        job = Job(deployment_id, attempt, record, options,
                  Path(self.ctx.settings.work_dir) / self.runner_id / deployment_id, cancel)
        try:
            job.env = self._env(record, options)
        except SecretsUnavailable as unopened:
            return self._fail(job, str(unopened), _RedactedLog(self.ctx, job))
        say = _RedactedLog(self.ctx, job)
        try:
            return self._build(job, say)
        finally:
            say.flush()

    def _build(self, job: Job, say: _RedactedLog) -> State:
        # The memo only saves work: when Redis or the bucket fails it, the job builds, and the
        # build meets the outage where it fails cleanly (tests/test_faults.py).
        inputs, reused = None, None
        try:
            inputs = self._inputs(job)
            reused = self._reuse(job, inputs, say) if inputs is not None else None
        except Exception:
            log.warning("build memo of %s unavailable; building", job.deployment_id, exc_info=True)
        if reused is not None:
            return self._finish(job, say, reused)
        state = self._build_and_publish(job, say)
        if inputs is not None and state is State.DEPLOYED:
            with contextlib.suppress(Exception):
                self.ctx.memo.put(inputs, job.deployment_id)
        return state

    def _inputs(self, job: Job) -> str | None:
        """The digest of this build's inputs (build_runner/memo.py); None to build anyway."""
        if self.ctx.settings.memo_seconds <= 0:
            return None
        job.source_manifest = self.ctx.store.get_json(keys.source_manifest(job.deployment_id))
        return memo.inputs_key(self.ctx.settings, self.builder.sandbox.name, job.record,
                               job.options, job.env, job.source_manifest or {})

    def _reuse(self, job: Job, inputs: str, say: Say) -> list[str] | None:
        """Publish the output of the deployment built from the same inputs, if it is still
        deployed and every blob of it is in the bucket; returns its config warnings. None: build."""
        earlier = self.ctx.memo.get(inputs)
        record = self.ctx.records.get(earlier) if earlier and earlier != job.deployment_id else None
        if not record or record.get("status") != State.DEPLOYED.value:
            return None
        body = self.ctx.store.get_bytes(keys.deployment_manifest(earlier or ""))
        if body is None:
            return None
        if not self.ctx.store.put_manifest_of_stored(keys.deployment_manifest(job.deployment_id), body,
                                                     manifest.document_blobs(json.loads(body))):
            return None
        self.ctx.records.set_fields(job.deployment_id, framework=record.get("framework") or "")
        say(f"percel: the inputs of this build equal those of deployment {earlier}: its output "
            "is reused; nothing was built or uploaded (\"force\": true builds again)")
        warnings: list[str] = json.loads(record.get("warnings") or "[]")
        return warnings

    def _build_and_publish(self, job: Job, say: _RedactedLog) -> State:
        # The job's folder (the source, the private HOME with npm's cache: thousands of files)
        # is removed after the ending is recorded: its removal was 0.7-0.9 s of every Vite
        # deploy's wait (bench/README.md, "Deploy overhead").
        try:
            return self._build_publish_end(job, say)
        finally:
            shutil.rmtree(job.workdir, ignore_errors=True)

    def _build_publish_end(self, job: Job, say: _RedactedLog) -> State:
        try:
            built = self.builder.build(job, say)
            warnings = publish(self.ctx.store, job.deployment_id, built.output, built.project,
                               spa=built.plan.spa,
                               limits=OutputLimits.from_settings(self.ctx.settings), say=say)
        except (ProjectError, BuildFailed) as failure:
            return self._fail(job, str(failure), say)
        except Exception as error:  # the record must never stay `building`, nor blame the user
            if unreachable(error):
                log.warning("build %s: the bucket did not answer", job.deployment_id, exc_info=True)
                return self._retry_later(job, error, say)
            log.exception("build %s failed inside the runner", job.deployment_id)
            return self._fail(job, INTERNAL_ERROR, say)
        return self._finish(job, say, warnings)

    def _env(self, record: dict[str, str], options: dict) -> dict[str, str]:
        """The build env: sealed in the record, or, for a record written before env was sealed,
        in clear in its options, built as it was (docs/DECISIONS.md#secrets-at-rest)."""
        if record.get(ENV_FIELD):
            return self.ctx.env_box.open(record[ENV_FIELD])
        return options.get("env") or {}

    # --- endings: the state first, then the log lines ------------------------------------
    def _fail(self, job: Job, reason: str, say: _RedactedLog) -> State:
        reason = say.redactor(reason)
        say.flush()  # a held last line belongs in the failure's tail
        outcome = lifecycle.fail(self.ctx, job.deployment_id, job.attempt, reason, say.tail)
        say(f"percel: build failed: {reason}")
        return self._report(outcome, say)

    def _retry_later(self, job: Job, error: Exception, say: _RedactedLog) -> State:
        """The bucket stayed unreachable past boto3's retries: not the user's fault, and likely
        over soon. Queued again one lease later, up to MAX_BUILD_ATTEMPTS (lifecycle.retry_later)."""
        reason = say.redactor(f"the bucket did not answer ({type(error).__name__}: "
                              f"{one_line(str(error))})")
        say.flush()
        outcome = lifecycle.retry_later(self.ctx, job.deployment_id, job.attempt, self.runner_id,
                                        reason, say.tail)
        if outcome.committed and outcome.state is State.QUEUED:
            say(f"percel: {reason}; the build is queued again, to start in "
                f"{self.ctx.settings.job_lease_seconds} s (attempt {job.attempt} of "
                f"{self.ctx.settings.max_build_attempts} ended)")
        elif outcome.committed:
            say(f"percel: build failed: {reason}; giving up after {job.attempt} attempts")
        return self._report(outcome, say)

    def _finish(self, job: Job, say: Say, warnings: list[str]) -> State:
        outcome = lifecycle.finish(self.ctx, job.deployment_id, job.attempt, warnings)
        if outcome.committed:
            say(f"percel: deployed at {self.ctx.settings.site_url(job.deployment_id)}")
        return self._report(outcome, say)

    @staticmethod
    def _report(outcome: lifecycle.Outcome, say: Say) -> State:
        if not outcome.committed:
            say(f"percel: result discarded: {outcome.refused}")  # cancelled or deleted meanwhile
        return outcome.state


class _RedactedLog:
    """The build's `say`: each line redacted, kept in the failure tail and appended to the live
    log. A line cut at MAX_LINE_BYTES waits for its continuation (redaction.py); flush() at the end."""

    def __init__(self, ctx: Context, job: Job):
        self.ctx, self.job = ctx, job
        self.tail: deque[str] = deque(maxlen=ctx.settings.error_log_tail)
        self.redactor = Redactor(job.env, cut_bytes=MAX_LINE_BYTES)

    def __call__(self, line: str) -> None:
        for ready in self.redactor.feed(line):
            self._emit(ready)

    def flush(self) -> None:
        for ready in self.redactor.flush():
            self._emit(ready)

    def _emit(self, line: str) -> None:
        self.tail.append(line[:logs.MAX_LINE_CHARS])  # bounds the record's error field
        try:
            self.ctx.logs.append(self.job.deployment_id, line)
        except redis.RedisError:  # live logs are best effort: a blip must not fail a build
            log.debug("log line for %s not stored", self.job.deployment_id, exc_info=True)
