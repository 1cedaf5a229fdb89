"""Fault tests: real processes, real Redis, the real S3 endpoint (docs/DECISIONS.md#leases).

One stack for the module (redis-server, moto's S3 server, the API (gunicorn), two build
runners), with a 4 s lease and a 1 s reap interval so that recovery takes seconds.
Builds run in the default sandbox; each sleeps briefly so a fault can land mid-build.
Every scenario counts its trials and outcomes as they happen and prints them (`-s` shows
them; bench/RELIABILITY.md records them), and checks that each fault landed where it says
(a runner killed mid-build was building; an S3 outage mid-upload overlapped the upload, seen
at the endpoint through a counting proxy). Losses are asserted to be zero. Fault timings
are random from a fixed seed, printed with the figures; FAULTS_SEED=<n> replays a run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from build_runner.loop import Runner
from build_runner.sandbox import make_sandbox
from chalicelib import keys
from chalicelib.context import Context, build_context
from chalicelib.pipeline import cleanup
from chalicelib.settings import load_settings
from chalicelib.state.records import TERMINAL, State
from chalicelib.storage import manifest
from devstack import services
from tests.conftest import Http, make_repo, running_stack
from tests.counting_proxy import CountingProxy, puts

LEASE = 4
GRACE = 6  # the GC grace every process of this stack uses (runners re-stamp at GRACE / 2)
FIGURES: dict[str, dict[str, int]] = {}
SEED = int(os.environ.get("FAULTS_SEED", "20240611"))
RANDOM = random.Random(SEED)


@pytest.fixture(scope="module")
def s3_calls(tmp_path_factory):
    """moto behind a counting proxy: the faults stack's bucket calls, with arrival times."""
    state = tmp_path_factory.mktemp("faults-s3")
    s3 = services.start_s3(state)
    try:
        with CountingProxy(s3.url) as proxy:
            proxy.s3, proxy.state = s3, state
            yield proxy
    finally:
        proxy.s3.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3_calls, toolchain_dir):
    print(f"\nFAULTS seed {SEED} (replay with FAULTS_SEED={SEED})")
    env = {"JOB_LEASE_SECONDS": str(LEASE), "REAP_INTERVAL": "1", "GC_GRACE_SECONDS": str(GRACE)}
    try:
        # Unsupervised: each scenario kills, stops and starts the processes itself, to test what
        # the leases and the reaper recover without help (tests/test_e2e_heal.py has the help).
        with running_stack(tmp_path_factory.mktemp("faults"), s3_calls.url, toolchain_dir,
                           runners=2, env=env, supervise=False) as running:
            yield running
    finally:
        for name, counts in FIGURES.items():
            print(f"\nFAULTS {name}: " + json.dumps(counts))
        print(f"FAULTS seed {SEED}")
        if os.environ.get("RELIABILITY_FIGURES"):
            with open(os.environ["RELIABILITY_FIGURES"], "a") as out:
                out.write(json.dumps(FIGURES) + "\n")


@pytest.fixture(scope="module")
def ctx(stack) -> Context:
    return build_context(load_settings(stack.env))


@pytest.fixture(scope="module")
def http(stack) -> Http:
    return Http(stack.api_url)


# --- helpers ---------------------------------------------------------------------------

def wait(check, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def deploy(http: Http, repo_url: str, build: str) -> str:
    status, created = http.json("POST", "/api/deployments", {
        "repo_url": repo_url, "build_command": build, "output_dir": "dist"})
    assert status == 202, created
    return created["id"]


def finished(ctx: Context, deployment_id: str, timeout: float = 90) -> State:
    return wait(lambda: (s := ctx.records.status(deployment_id)) in TERMINAL and s, timeout,
                f"{deployment_id} to finish")


def live_runners(stack) -> list[services.Service]:
    return [r for r in stack.runners() if r.process.poll() is None]


def ensure_runners(stack, count: int) -> None:
    while len(live_runners(stack)) < count:
        stack.add_runner()


def missing_blobs(ctx: Context, deployment_id: str) -> list[str]:
    document = ctx.store.get_json(keys.deployment_manifest(deployment_id))
    assert document is not None, f"{deployment_id} is deployed without a manifest"
    return ctx.store.missing_blobs(manifest.blob_hashes(document["files"]))


def serves(http: Http, stack, deployment_id: str, path: str = "/") -> bytes:
    status, _, body = http.request("GET", path, host=f"{deployment_id}.localhost:{stack.port}")
    assert status == 200, (deployment_id, path, status)
    return body


def log_times(ctx: Context, deployment_id: str, needle: str) -> list[float]:
    """When (unix seconds, from the stream ids) each log line containing `needle` was written."""
    entries = ctx.redis.xrange(keys.build_log(deployment_id))
    return [int(entry_id.split(b"-")[0]) / 1000 for entry_id, fields in entries
            if needle in fields[b"l"].decode("utf-8", "replace")]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slow_site(tmp_path: Path, name: str) -> tuple[str, str, bytes]:
    """A repo whose build takes ~3 s; returns (url, build command, the page it serves)."""
    page = f"<h1>{name} {uuid.uuid4().hex}</h1>".encode()
    url = make_repo(tmp_path / name, {"index.html": page})
    return url, "sleep 3 && mkdir -p dist && cp index.html dist/", page


def many_files_build(label: str, count: int, delay: float = 1) -> str:
    """A build that writes `count` small distinct files: enough PUTs to take a few seconds."""
    return (f"sleep {delay:g} && mkdir -p dist && cp index.html dist/ && i=0 && "
            f"while [ $i -lt {count} ]; do echo \"{label} file $i\" > dist/f$i.txt; "
            "i=$((i+1)); done")


# --- kill -9 a runner mid-build ---------------------------------------------------------

def test_a_runner_killed_mid_build_loses_no_deployment(stack, ctx, http, tmp_path):
    ensure_runners(stack, 2)
    trials = deployed = mid_build = 0
    lost = []
    for trial in range(5):
        url, build, page = slow_site(tmp_path, f"kill-{trial}")
        deployment_id = deploy(http, url, build)
        wait(lambda d=deployment_id: log_times(ctx, d, "percel: build: "), 60, "the build to start")
        pid = int(ctx.redis.get(keys.lease_owner(deployment_id)).decode().rsplit("-", 1)[1])
        victim = next(r for r in live_runners(stack) if r.process.pid == pid)
        time.sleep(RANDOM.uniform(0, 2.0))  # somewhere in the 3 s build
        victim.kill()  # SIGKILL: no cleanup, no ack, no last heartbeat
        killed_at = time.time()
        trials += 1
        # It landed mid-build: the build had started, and had not finished, when killed.
        mid_build += not any(t <= killed_at for t in log_times(ctx, deployment_id,
                                                                 "percel: build finished"))
        stack.add_runner()  # keep two runners, as a supervisor would
        if finished(ctx, deployment_id) is State.DEPLOYED and serves(http, stack, deployment_id) == page:
            deployed += 1
        else:
            lost.append(ctx.records.get(deployment_id))
        assert int(ctx.records.get(deployment_id)["attempt"]) >= 2  # it really was taken over
    FIGURES["kill -9 runner mid-build"] = {"trials": trials, "landed mid-build": mid_build,
                                           "deployed": deployed, "lost": len(lost)}
    assert mid_build == trials, f"{trials - mid_build} kills missed the build (seed {SEED})"
    assert lost == [], (lost, f"seed {SEED}")


# --- restart Redis with jobs queued --------------------------------------------------------

@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_jobs_queued_across_a_redis_restart_are_all_built(stack, ctx, http, tmp_path, how):
    for runner in live_runners(stack):
        runner.stop(grace=30)  # SIGTERM: each runner finishes its build, then exits
    jobs = {}
    for index in range(3):
        url = make_repo(tmp_path / f"queued-{index}", {"index.html": f"<p>{how} {index}</p>"})
        jobs[deploy(http, url, "mkdir -p dist && cp index.html dist/")] = f"<p>{how} {index}</p>"
    services.wait_until(lambda: all(ctx.records.status(d) is State.QUEUED for d in jobs), 60,
                        "the source worker")  # each POST answers `uploading`
    assert ctx.queue.depth() == (3, 0)
    if how == "SIGKILL":
        time.sleep(1.5)  # appendfsync everysec: what is a second old is on disk
    restart_redis(stack, how)
    assert ctx.queue.depth() == (3, 0)  # nothing lost while it was down
    ensure_runners(stack, 2)
    ends = {deployment_id: finished(ctx, deployment_id) for deployment_id in jobs}
    deployed = [d for d, state in ends.items()
                if state is State.DEPLOYED and serves(http, stack, d) == jobs[d].encode()]
    FIGURES[f"redis restart ({how}) with 3 jobs queued"] = {
        "trials": len(jobs), "deployed": len(deployed), "lost": len(jobs) - len(deployed)}
    assert len(deployed) == len(jobs), ends


def restart_redis(stack, signal_name: str = "SIGTERM", down: float = 0) -> None:
    old = stack.service("redis")
    port = int(old.url.rsplit(":", 1)[1].split("/")[0])
    old.kill() if signal_name == "SIGKILL" else old.stop()
    stack.services.remove(old)
    time.sleep(down)
    stack.services.insert(0, services.start_redis(stack.state_dir, port))


def test_a_redis_restart_mid_build_loses_nothing(stack, ctx, http, tmp_path):
    ensure_runners(stack, 2)
    sites = [slow_site(tmp_path, f"mid-{n}") for n in range(2)]
    jobs = {deploy(http, url, build): page for url, build, page in sites}
    for deployment_id in jobs:
        wait(lambda d=deployment_id: log_times(ctx, d, "percel: build: "), 60, "the build")
    time.sleep(RANDOM.uniform(0.5, 1.5))
    killed_at = time.time()
    restart_redis(stack, "SIGKILL", down=2)
    ends = {d: finished(ctx, d) for d in jobs}
    # Both builds were still running when Redis died: neither had finished before.
    mid_build = sum(not any(t <= killed_at for t in log_times(ctx, d, "percel: build finished"))
                    for d in jobs)
    deployed = [d for d, state in ends.items()
                if state is State.DEPLOYED and serves(http, stack, d) == jobs[d]]
    FIGURES["redis kill -9 + 2 s down with 2 builds running"] = {
        "trials": len(jobs), "landed mid-build": mid_build, "deployed": len(deployed),
        "lost": len(jobs) - len(deployed), "runners that died": 2 - len(live_runners(stack))}
    assert mid_build == len(jobs), f"Redis died after a build finished (seed {SEED})"
    assert len(deployed) == len(jobs), ends
    assert len(live_runners(stack)) == 2  # the runners rode it out


# --- stop the S3 endpoint during an upload ------------------------------------------------------

def test_an_s3_outage_mid_upload_never_leaves_a_half_deploy(stack, ctx, http, s3_calls, tmp_path):
    ensure_runners(stack, 2)
    outcomes = {"trials": 0, "landed mid-upload": 0, "deployed": 0, "failed cleanly": 0,
                "half deployed": 0}
    for trial, pause in enumerate((2, 4, 6)):
        label = uuid.uuid4().hex
        url = make_repo(tmp_path / f"s3-{trial}", {"index.html": f"<p>{label}</p>"})
        mark = s3_calls.mark()
        deployment_id = deploy(http, url, many_files_build(label, 250))
        wait(lambda d=deployment_id: log_times(ctx, d, "percel: build finished"), 60, "the build")
        wait(lambda m=mark: puts(s3_calls.since(m), "blobs/"), 60, "the upload to start")
        time.sleep(RANDOM.uniform(0, 0.3))
        stopped_at = time.monotonic()
        os.kill(s3_calls.s3.process.pid, signal.SIGSTOP)  # every S3 request now hangs
        try:
            time.sleep(pause)
        finally:
            os.kill(s3_calls.s3.process.pid, signal.SIGCONT)
        state = finished(ctx, deployment_id, timeout=240)
        outcomes["trials"] += 1
        outcomes["landed mid-upload"] += landed_mid_upload(s3_calls.since(mark), deployment_id,
                                                           stopped_at)
        if state is State.DEPLOYED:
            if missing_blobs(ctx, deployment_id):
                outcomes["half deployed"] += 1
            else:
                outcomes["deployed"] += 1
                assert serves(http, stack, deployment_id, "/f249.txt") == \
                    f"{label} file 249\n".encode()
        else:
            record = ctx.records.get(deployment_id)
            assert state is State.FAILED and record["error"], record
            assert not ctx.store.exists(keys.deployment_manifest(deployment_id))
            outcomes["failed cleanly"] += 1
    FIGURES["S3 endpoint stopped (SIGSTOP 2/4/6 s) mid-upload"] = outcomes
    assert outcomes["landed mid-upload"] == outcomes["trials"], (outcomes, f"seed {SEED}")
    assert outcomes["half deployed"] == 0
    assert outcomes["deployed"] + outcomes["failed cleanly"] == outcomes["trials"]


def landed_mid_upload(calls, deployment_id: str, at: float) -> bool:
    """Blobs were already being PUT at `at`, and the output manifest was not yet written."""
    manifest_puts = [c.at for c in puts(calls, keys.deployment_manifest(deployment_id))]
    return any(c.at < at for c in puts(calls, "blobs/")) and all(t > at for t in manifest_puts)


# --- the cleanup runs while a deploy uploads --------------------------------------------------------

def test_cleanup_during_a_deploy_never_deletes_what_it_references(stack, ctx, http, tmp_path):
    """The worst case: the deploy reuses old blobs that a deleted deployment left unreferenced,
    while the GC, with the same short grace as the runners, sweeps in a loop."""
    ensure_runners(stack, 2)
    gc = Context(dataclasses.replace(ctx.settings, gc_grace_seconds=GRACE), ctx.redis, ctx.store)
    label = uuid.uuid4().hex
    url = make_repo(tmp_path / "gc", {"index.html": f"<p>{label}</p>"})
    build = many_files_build(label, 150)
    first = deploy(http, url, build)
    assert finished(ctx, first) is State.DEPLOYED
    assert http.json("DELETE", f"/api/deployments/{first}")[0] == 200
    trials, deployed, lost, swept = 3, 0, [], 0
    for _ in range(trials):
        garbage = uuid.uuid4().bytes
        ctx.store.upload_blobs({sha256_of(garbage): garbage})
        time.sleep(GRACE + 1.5)  # the deleted deployment's blobs and the garbage are now old
        deployment_id = deploy(http, url, build)  # same files: every blob is reused
        stop, runs = threading.Event(), []

        def collect(stop: threading.Event = stop, runs: list = runs) -> None:
            while not stop.is_set():
                runs.append(cleanup.run_cleanup(gc))
        sweeper = threading.Thread(target=collect)
        sweeper.start()
        try:
            state = finished(ctx, deployment_id)
        finally:
            stop.set()
            sweeper.join(60)
        swept += sum(len(r.swept_blobs) for r in runs)
        assert any(sha256_of(garbage) in r.swept_blobs for r in runs)  # the GC was live
        if state is State.DEPLOYED and not missing_blobs(ctx, deployment_id) \
                and serves(http, stack, deployment_id, "/f149.txt") == f"{label} file 149\n".encode():
            deployed += 1
        else:
            lost.append((state, ctx.records.get(deployment_id).get("error")))
        assert http.json("DELETE", f"/api/deployments/{deployment_id}")[0] == 200
    FIGURES["cleanup (grace 6 s) looping during a deploy that reuses old blobs"] = {
        "trials": trials, "deployed": deployed, "lost": len(lost), "blobs swept": swept}
    assert lost == [], lost


# --- a job delivered twice -----------------------------------------------------------------

def test_a_job_pushed_onto_the_queue_twice_is_built_once(stack, ctx, http, tmp_path):
    ensure_runners(stack, 2)
    url, build, page = slow_site(tmp_path, "twice")
    deployment_id = deploy(http, url, build)
    ctx.queue.enqueue(deployment_id)  # a duplicate delivery
    assert finished(ctx, deployment_id) is State.DEPLOYED
    wait(lambda: ctx.queue.depth() == (0, 0), 30, "the duplicate to be dropped or skipped")
    built_once = assert_built_once(ctx, deployment_id)
    assert serves(http, stack, deployment_id) == page
    DELIVERED_TWICE.append(built_once)


DELIVERED_TWICE: list[bool] = []  # one entry per duplicated-delivery trial: built once?


def test_three_runners_processing_one_job_at_once_give_one_result(stack, ctx, http, tmp_path):
    ensure_runners(stack, 2)
    url, build, page = slow_site(tmp_path, "thrice")
    deployment_id = deploy(http, url, build)  # a stack runner claims it from the queue...
    sandbox = make_sandbox(ctx.settings)
    extra = [Runner(ctx, sandbox, runner_id=f"extra-{n}") for n in range(2)]
    results = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.process(deployment_id)))
               for r in extra]  # ...and two more processes get it delivered at the same time
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert finished(ctx, deployment_id) is State.DEPLOYED
    DELIVERED_TWICE.append(assert_built_once(ctx, deployment_id))
    assert serves(http, stack, deployment_id) == page
    FIGURES["job delivered 2-3 times"] = {"trials": len(DELIVERED_TWICE),
                                          "built once": sum(DELIVERED_TWICE), "lost": 0}


def assert_built_once(ctx: Context, deployment_id: str) -> bool:
    record = ctx.records.get(deployment_id)
    assert record["status"] == "deployed" and record["attempt"] == "1"
    lines = wait(lambda: (ctx.store.get_bytes(keys.archived_log(deployment_id)) or b"").decode()
                 .splitlines() or None, 30, "the archived log")
    assert sum(line.startswith("percel: framework") for line in lines) == 1  # one build ran
    assert sum(line.startswith("percel: deployed at") for line in lines) == 1
    assert not any("another attempt already published" in line for line in lines)
    return True


def test_a_build_whose_bucket_goes_away_mid_upload_is_queued_again_and_deploys_once_it_is_back(
        stack, ctx, http, s3_calls, tmp_path):
    """The S3 endpoint unreachable mid-upload for longer than boto3's retries: the build is
    queued again (not failed), and deploys once the endpoint answers again. The outage is cut
    at the proxy, not by killing moto: a restarted moto replays this module's whole recording,
    which can outlast the re-queued job's one-lease delay and make the test's timing, not the
    code, decide the attempt count (the kill and the replay have their own tests above and in
    tests/test_e2e_heal.py)."""
    ensure_runners(stack, 2)
    label = uuid.uuid4().hex
    url = make_repo(tmp_path / "s3-dies", {"index.html": f"<p>{label}</p>"})
    mark = s3_calls.mark()
    deployment_id = deploy(http, url, many_files_build(label, 250))
    # The build sleeps 1 s before it writes its files: the hold is in place before the output's
    # first PUT, lets that one through and stops the next at the proxy, so the endpoint goes
    # away mid-upload on every run, however fast the machine.
    wait(lambda: log_times(ctx, deployment_id, "percel: build: "), 60, "the build to start")
    s3_calls.hold_after(1, "PUT", "blobs/")
    wait(lambda: s3_calls.held(), 60, "the upload to start")
    s3_calls.cut = True  # every request now fails: boto3 retries, then gives up
    killed_at = time.monotonic()
    s3_calls.release()
    try:
        wait(lambda: ctx.records.status(deployment_id) is State.QUEUED, 120,
             "the build to be queued again")
    finally:
        s3_calls.cut = False
    state = finished(ctx, deployment_id, timeout=180)
    record = ctx.records.get(deployment_id)
    lines = ctx.logs.all_lines(deployment_id)
    FIGURES["S3 endpoint unreachable mid-upload, back after the retries"] = {
        "trials": 1, "landed mid-upload": int(landed_mid_upload(s3_calls.since(mark),
                                                                deployment_id, killed_at)),
        "queued again": sum("the build is queued again" in line for line in lines),
        "deployed": int(state is State.DEPLOYED), "failed": int(state is State.FAILED)}
    assert FIGURES["S3 endpoint unreachable mid-upload, back after the retries"]["landed mid-upload"] == 1
    assert state is State.DEPLOYED and record["attempt"] == "2", record
    assert missing_blobs(ctx, deployment_id) == []
    assert serves(http, stack, deployment_id, "/f249.txt") == f"{label} file 249\n".encode()
    wait(lambda: len(live_runners(stack)) == 2, 5, "the runners to be alive")
