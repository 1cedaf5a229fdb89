"""The reaper against a real Redis and the real S3 endpoint (moto server).

A lease of 0 seconds expires the moment it is taken, so no test sleeps for a lease.
"""
import dataclasses
import threading
from pathlib import Path

import pytest

from build_runner.runner import Runner
from build_runner.sandbox import RunResult
from chalicelib import ids, keys
from chalicelib.pipeline import deploy, reaper
from chalicelib.context import Context
from chalicelib.state.records import IllegalTransition, State
from tests.conftest import make_repo


def with_settings(ctx: Context, **changes) -> Context:
    """The same Redis and bucket, other settings (Context caches its queue per settings)."""
    return Context(dataclasses.replace(ctx.settings, **changes), ctx.redis, ctx.store)


@pytest.fixture
def dead(ctx) -> Context:
    """Every claim taken through this context has already expired."""
    return with_settings(ctx, job_lease_seconds=0, max_build_attempts=2)


def queued(ctx: Context) -> str:
    deployment_id = ids.new_id()
    ctx.records.create({"id": deployment_id, "repo_url": "file:///repo"})
    ctx.queue.enqueue(deployment_id)
    return deployment_id


def claim_and_start(ctx: Context, runner_id: str) -> tuple[str, int]:
    deployment_id = ctx.queue.claim(runner_id)
    _, attempt = ctx.records.transition(deployment_id, State.BUILDING, only_from={State.QUEUED})
    return deployment_id, attempt


def test_an_expired_building_job_is_queued_again_for_another_runner(dead):
    deployment_id = queued(dead)
    claim_and_start(dead, "runner-a")
    report = reaper.reap(dead)
    assert report.requeued == [deployment_id]
    assert dead.records.status(deployment_id) is State.QUEUED
    assert dead.queue.depth() == (1, 0)
    assert any("stopped responding" in line for line in dead.logs.all_lines(deployment_id))
    # Another runner picks it up as attempt 2.
    assert claim_and_start(dead, "runner-b") == (deployment_id, 2)


def test_a_job_whose_runners_keep_dying_fails_with_the_reason(dead):
    deployment_id = queued(dead)
    claim_and_start(dead, "runner-a")
    reaper.reap(dead)
    claim_and_start(dead, "runner-b")
    report = reaper.reap(dead)  # attempt 2 of max_build_attempts=2
    assert report.failed == [deployment_id] and report.requeued == []
    record = dead.records.get(deployment_id)
    assert record["status"] == "failed"
    assert "stopped responding 2 times" in record["error"]
    assert dead.queue.depth() == (0, 0)  # not queued a third time


def test_a_claim_whose_runner_died_before_starting_goes_back_untouched(dead):
    deployment_id = queued(dead)
    assert dead.queue.claim("runner-a") == deployment_id
    assert reaper.reap(dead).requeued == [deployment_id]
    record = dead.records.get(deployment_id)
    assert record["status"] == "queued" and int(record.get("attempt") or 0) == 0
    assert dead.queue.depth() == (1, 0)


def test_a_stale_claim_of_a_finished_job_is_dropped(dead):
    deployment_id = queued(dead)
    _, attempt = claim_and_start(dead, "runner-a")
    # The runner committed its result and died before its ack.
    dead.records.transition(deployment_id, State.DEPLOYED, attempt=attempt)
    report = reaper.reap(dead)
    assert report.dropped == [deployment_id] and report.requeued == []
    assert dead.records.status(deployment_id) is State.DEPLOYED
    assert dead.queue.depth() == (0, 0)
    assert not dead.redis.exists(keys.lease_owner(deployment_id))


def test_a_live_lease_is_left_alone(ctx):
    live = with_settings(ctx, job_lease_seconds=60)
    deployment_id = queued(live)
    claim_and_start(live, "runner-a")
    assert reaper.reap(live) == reaper.ReapReport()
    assert live.records.status(deployment_id) is State.BUILDING
    assert live.queue.depth() == (0, 1)
    assert live.queue.heartbeat(deployment_id, "runner-a")


def test_a_dry_run_reaps_nothing(dead):
    deployment_id = queued(dead)
    claim_and_start(dead, "runner-a")
    assert reaper.reap(dead, dry_run=True).requeued == [deployment_id]
    assert dead.records.status(deployment_id) is State.BUILDING
    assert dead.queue.depth() == (0, 1)


class GatedSandbox:
    """Builds by writing dist/index.html naming its runner, once `gate` opens."""
    name = "gated"

    def __init__(self, label: str, gate: threading.Event):
        self.label, self.gate = label, gate
        self.started = threading.Event()

    def run(self, command, *, workdir: Path, home, env, network, timeout, on_line, cancel=None):
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
        assert reaper.reap(dead).requeued == [deployment_id]
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
    reaper.reap(dead)
    _, second = claim_and_start(dead, "runner-b")
    with pytest.raises(IllegalTransition):
        dead.records.transition(deployment_id, State.FAILED, only_from={State.BUILDING},
                                attempt=first, error="late")
    assert dead.records.status(deployment_id) is State.BUILDING
    assert dead.queue.ack(deployment_id, "runner-a") is False  # nor drop b's claim
    assert dead.queue.depth() == (0, 1)
    dead.records.transition(deployment_id, State.DEPLOYED, attempt=second)
