"""The lifecycle (submit, start, finish, fail, cancel, take down, reap) against a real
Redis and the real S3 endpoint (moto server).

Leases are judged by an injected clock: `reap(ctx, now=after_lease(ctx))` looks at the
leases as they will be once every claim taken so far has run out, so no test sleeps.
"""
import dataclasses
import threading
import time
from pathlib import Path

import pytest

from build_runner.loop import Runner
from build_runner.sandbox import RunResult
from chalicelib import ids, keys
from chalicelib.context import Context
from chalicelib.pipeline import deploy, lifecycle
from chalicelib.state.records import IllegalTransition, State
from tests.conftest import make_repo


def with_settings(ctx: Context, **changes) -> Context:
    """The same Redis and bucket, other settings (Context caches its queue per settings)."""
    return Context(dataclasses.replace(ctx.settings, **changes), ctx.redis, ctx.store)


@pytest.fixture
def dead(ctx) -> Context:
    """Runners presumed dead after two attempts; leases of a minute, reaped by the clock."""
    return with_settings(ctx, job_lease_seconds=60, max_build_attempts=2)


def after_lease(ctx: Context) -> lifecycle.Clock:
    """A clock that reads just past the end of every lease taken until it is read."""
    return lambda: time.time() + ctx.settings.job_lease_seconds + 1


def reap(ctx: Context, **kwargs) -> lifecycle.ReapReport:
    """The reaper, once every claim taken so far has expired."""
    return lifecycle.reap(ctx, now=after_lease(ctx), **kwargs)


def queued(ctx: Context) -> str:
    deployment_id = ids.new_id()
    lifecycle.submit(ctx, {"id": deployment_id, "repo_url": "file:///repo"})
    return deployment_id


def claim_and_start(ctx: Context, runner_id: str) -> tuple[str, int]:
    deployment_id = lifecycle.claim(ctx, runner_id, timeout=0)
    return deployment_id, lifecycle.start(ctx, deployment_id, runner_id)


def test_an_expired_building_job_is_queued_again_for_another_runner(dead):
    deployment_id = queued(dead)
    claim_and_start(dead, "runner-a")
    report = reap(dead)
    assert report.requeued == [deployment_id]
    assert dead.records.status(deployment_id) is State.QUEUED
    assert dead.queue.depth() == (1, 0)
    assert any("stopped responding" in line for line in dead.logs.all_lines(deployment_id))
    # Another runner picks it up as attempt 2.
    assert claim_and_start(dead, "runner-b") == (deployment_id, 2)


def test_a_job_whose_runners_keep_dying_fails_with_the_reason(dead):
    deployment_id = queued(dead)
    claim_and_start(dead, "runner-a")
    reap(dead)
    claim_and_start(dead, "runner-b")
    report = reap(dead)  # attempt 2 of max_build_attempts=2
    assert report.failed == [deployment_id] and report.requeued == []
    record = dead.records.get(deployment_id)
    assert record["status"] == "failed"
    assert "stopped responding 2 times" in record["error"]
    assert dead.queue.depth() == (0, 0)  # not queued a third time


def test_a_claim_whose_runner_died_before_starting_goes_back_untouched(dead):
    deployment_id = queued(dead)
    assert dead.queue.claim("runner-a") == deployment_id
    assert reap(dead).requeued == [deployment_id]
    record = dead.records.get(deployment_id)
    assert record["status"] == "queued" and int(record.get("attempt") or 0) == 0
    assert dead.queue.depth() == (1, 0)


def test_a_stale_claim_of_a_finished_job_is_dropped(dead):
    deployment_id = queued(dead)
    _, attempt = claim_and_start(dead, "runner-a")
    # The runner committed its result and died before its ack.
    assert lifecycle.finish(dead, deployment_id, attempt).committed
    report = reap(dead)
    assert report.dropped == [deployment_id] and report.requeued == []
    assert dead.records.status(deployment_id) is State.DEPLOYED
    assert dead.queue.depth() == (0, 0)
    assert not dead.redis.exists(keys.lease_owner(deployment_id))


def test_a_live_lease_is_left_alone(ctx):
    live = with_settings(ctx, job_lease_seconds=60)
    deployment_id = queued(live)
    claim_and_start(live, "runner-a")
    assert lifecycle.reap(live) == lifecycle.ReapReport()  # the real clock: not yet expired
    assert live.records.status(deployment_id) is State.BUILDING
    assert live.queue.depth() == (0, 1)
    assert live.queue.heartbeat(deployment_id, "runner-a")


def test_a_dry_run_reaps_nothing(dead):
    deployment_id = queued(dead)
    claim_and_start(dead, "runner-a")
    assert reap(dead, dry_run=True).requeued == [deployment_id]
    assert dead.records.status(deployment_id) is State.BUILDING
    assert dead.queue.depth() == (0, 1)


class GatedSandbox:
    """Builds by writing dist/index.html naming its runner, once `gate` opens."""
    name = "gated"

    def __init__(self, label: str, gate: threading.Event):
        self.label, self.gate = label, gate
        self.started = threading.Event()

    def run(self, command, *, workdir: Path, home, env, network, timeout, on_line, cancel=None, tools=()):
        self.started.set()
        assert self.gate.wait(30), "the test never opened the gate"
        (workdir / "dist").mkdir(exist_ok=True)
        (workdir / "dist" / "index.html").write_text(f"built by {self.label}")
        return RunResult(0, False, None)


def test_a_runner_presumed_dead_cannot_overwrite_the_attempt_that_took_over(dead, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": "source"})
    deployment_id = deploy.create_deployment(dead, {"repo_url": url, "build_command": "build-it",
                                                    "output_dir": "dist"})["id"]
    slow_gate, fast_gate = threading.Event(), threading.Event()
    slow = Runner(dead, GatedSandbox("slow", slow_gate), runner_id="slow")
    fast = Runner(dead, GatedSandbox("fast", fast_gate), runner_id="fast")
    assert dead.queue.claim("slow") == deployment_id
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(slow=slow.process(deployment_id)))
    thread.start()
    try:
        assert slow.sandbox.started.wait(30)
        # The slow runner stalls past its lease: the reaper hands the job to the fast one.
        assert reap(dead).requeued == [deployment_id]
        assert dead.queue.claim("fast") == deployment_id
        fast_gate.set()
        assert fast.process(deployment_id) is State.DEPLOYED
    finally:
        slow_gate.set()
        thread.join(30)
    assert outcome["slow"] is State.DEPLOYED  # it reports the state it found, not its own
    record = dead.records.get(deployment_id)
    assert record["status"] == "deployed" and record["attempt"] == "2"
    document = dead.store.get_json(keys.deployment_manifest(deployment_id))
    sha = document["files"]["index.html"]["sha256"]
    assert dead.store.get_blob(sha) == b"built by fast"
    lines = dead.logs.all_lines(deployment_id)
    assert sum("percel: deployed at" in line for line in lines) == 1
    assert any("result discarded" in line for line in lines)
    assert dead.queue.depth() == (0, 0)


def test_a_stale_attempt_cannot_fail_a_deployment_either(dead):
    deployment_id = queued(dead)
    _, first = claim_and_start(dead, "runner-a")
    reap(dead)
    _, second = claim_and_start(dead, "runner-b")
    with pytest.raises(IllegalTransition):
        dead.records.transition(deployment_id, State.FAILED, only_from={State.BUILDING},
                                attempt=first, error="late")
    late = lifecycle.fail(dead, deployment_id, first, "late")
    assert not late.committed and late.state is State.BUILDING and "building" in late.refused
    assert dead.records.status(deployment_id) is State.BUILDING
    assert lifecycle.release(dead, deployment_id, "runner-a") is False  # nor drop b's claim
    assert dead.queue.depth() == (0, 1)
    assert lifecycle.finish(dead, deployment_id, second) == lifecycle.Outcome(State.DEPLOYED, True)


def test_a_claim_whose_record_moved_on_is_released_not_started(ctx):
    deployment_id = queued(ctx)
    lifecycle.cancel(ctx, deployment_id)
    ctx.queue.enqueue(deployment_id)  # a late duplicate delivery
    assert lifecycle.claim(ctx, "runner-a", timeout=0) == deployment_id
    assert lifecycle.start(ctx, deployment_id, "runner-a") is None
    assert ctx.queue.depth() == (0, 0)
    assert ctx.records.status(deployment_id) is State.CANCELLED


def test_cancel_stops_the_job_and_refuses_a_finished_deployment(ctx):
    deployment_id = queued(ctx)
    lifecycle.cancel(ctx, deployment_id)
    record = ctx.records.get(deployment_id)
    assert record["status"] == "cancelled" and record["error"] == "cancelled by request"
    assert ctx.queue.depth() == (0, 0) and lifecycle.cancel_requested(ctx, deployment_id)
    with pytest.raises(IllegalTransition):
        lifecycle.cancel(ctx, deployment_id)


def test_take_down_deletes_the_record_then_its_manifests_once(ctx):
    deployment_id = queued(ctx)
    ctx.store.put_json(keys.source_manifest(deployment_id), {"version": 1, "files": {}})
    assert lifecycle.take_down(ctx, deployment_id) is True
    assert ctx.records.status(deployment_id) is State.DELETED
    assert not ctx.store.exists(keys.source_manifest(deployment_id))
    assert lifecycle.take_down(ctx, deployment_id) is False  # deleted is final
    ctx.store.put_json(keys.deployment_manifest(deployment_id), {"late": "runner"})
    lifecycle.delete(ctx, deployment_id)  # the API's DELETE again: what a late runner wrote goes
    assert not ctx.store.exists(keys.deployment_manifest(deployment_id))


def test_the_failure_message_holds_the_reason_then_the_tail():
    assert lifecycle.failure_message("boom", []) == "boom"
    assert lifecycle.failure_message("boom", ["a", "b"]) == "boom\n--- last log lines ---\na\nb"


# --- the bucket unreachable during a build ---------------------------------------------------

def offline(ctx: Context) -> Context:
    """`ctx` with a bucket endpoint that refuses connections, and boto3 told to try once (the
    stack's client spends five attempts first, which only takes longer)."""
    import boto3
    from botocore.config import Config

    from chalicelib.storage.store import Store
    from devstack.services import free_port
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    return Context(ctx.settings, ctx.redis, Store(client, ctx.settings.bucket))


def submitted(ctx: Context, tmp_path: Path) -> str:
    url = make_repo(tmp_path / "repo", {"index.html": "source"})
    return deploy.create_deployment(ctx, {"repo_url": url, "build_command": "build-it",
                                          "output_dir": "dist"})["id"]


def build_once(ctx: Context, deployment_id: str, runner_id: str) -> State | None:
    gate = threading.Event()
    gate.set()
    assert ctx.queue.claim(runner_id) == deployment_id
    return Runner(ctx, GatedSandbox(runner_id, gate), runner_id=runner_id).process(deployment_id)


def test_a_build_that_cannot_reach_the_bucket_is_queued_again_and_deploys_once_it_is_back(dead, tmp_path):
    deployment_id = submitted(dead, tmp_path)
    assert build_once(offline(dead), deployment_id, "runner-a") is State.QUEUED
    record = dead.records.get(deployment_id)
    assert record["status"] == "queued" and record["attempt"] == "1" and not record.get("error")
    lines = dead.logs.all_lines(deployment_id)
    assert any("the bucket did not answer (EndpointConnectionError" in line and "queued again" in line
               for line in lines), lines
    assert lifecycle.reap(dead).requeued == []       # held back for one lease...
    assert dead.queue.claim("runner-b") is None
    assert reap(dead).requeued == [deployment_id]    # ...then handed out again
    assert build_once(dead, deployment_id, "runner-b") is State.DEPLOYED
    assert dead.records.get(deployment_id)["attempt"] == "2"
    assert dead.queue.depth() == (0, 0)


def test_a_bucket_down_for_every_attempt_fails_the_build_with_that_reason(dead, tmp_path):
    deployment_id = submitted(dead, tmp_path)          # max_build_attempts=2
    assert build_once(offline(dead), deployment_id, "runner-a") is State.QUEUED
    reap(dead)
    assert build_once(offline(dead), deployment_id, "runner-b") is State.FAILED
    record = dead.records.get(deployment_id)
    assert record["error"].startswith("the bucket did not answer (EndpointConnectionError")
    assert "(attempt 2 of 2; giving up)" in record["error"].splitlines()[0]
    assert dead.queue.depth() == (0, 0)
    assert not dead.store.exists(keys.deployment_manifest(deployment_id))
