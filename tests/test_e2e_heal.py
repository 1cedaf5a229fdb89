"""The local stack heals and keeps its data (devstack/supervisor.py, devstack/s3_server.py).

One supervised stack as `make run RUNNERS=2` starts it (its own redis-server and embedded S3
server on its own state folder), with a 4 s lease and a 1 s reap interval so that a build whose
runner was killed is taken over in seconds. Each fault is a kill -9 from outside, as a crash or
the OOM killer would deliver it; the supervisor's restarts are read from `stack.supervisor`.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from chalicelib import keys
from devstack import services
from tests.conftest import Http, alive, make_repo, running_stack

LEASE = 4
COPY = "mkdir -p dist && cp *.html dist/"


@pytest.fixture(scope="module")
def healing(tmp_path_factory, toolchain_dir):
    env = {"JOB_LEASE_SECONDS": str(LEASE), "REAP_INTERVAL": "1"}
    with running_stack(tmp_path_factory.mktemp("heal"), None, toolchain_dir, runners=2,
                       env=env) as running:
        yield running


@pytest.fixture(scope="module")
def http(healing) -> Http:
    return Http(healing.api_url)


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # the service is still coming back
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def site(tmp_path: Path, http: Http, build: str = COPY) -> tuple[str, dict[str, bytes]]:
    """Deploy a two-page site whose bytes no other test has; returns its id and its pages."""
    pages = {name: f"<p>{name} {uuid.uuid4().hex}</p>".encode() for name in ("index", "other")}
    url = make_repo(tmp_path / uuid.uuid4().hex, {f"{name}.html": body for name, body in pages.items()})
    return http.deploy({"repo_url": url, "build_command": build, "output_dir": "dist"}), pages


def deployed(http: Http, deployment_id: str, timeout: float = 120) -> dict:
    record = http.wait_for(deployment_id, timeout)
    assert record["status"] == "deployed", record.get("error")
    return record


def page(http: Http, stack, deployment_id: str, path: str = "/") -> bytes:
    status, _, body = http.request("GET", path, host=f"{deployment_id}.localhost:{stack.port}")
    assert status == 200, (deployment_id, path, status, body[:200])
    return body


def kill_9(stack, name: str) -> int:
    """SIGKILL the service's process; returns how many restarts the supervisor had noted."""
    seen = len(stack.supervisor.restarts)
    os.kill(stack.service(name).process.pid, signal.SIGKILL)
    return seen


def restarted(stack, name: str, seen: int) -> None:
    """The supervisor noted `name`'s SIGKILL and its new process is running."""
    wait(lambda: any(r.name == name and r.status == -signal.SIGKILL
                     for r in stack.supervisor.restarts[seen:]), 10, f"{name}'s exit to be noted")
    wait(lambda: stack.service(name).process.poll() is None, 30, f"{name} to run again")


def healthy(http: Http) -> bool:
    return http.json("GET", "/api/health")[0] == 200


def test_a_runner_killed_mid_build_is_restarted_and_the_deployment_ends_deployed(healing, http, tmp_path):
    deployment_id, pages = site(tmp_path, http, "sleep 3 && " + COPY)
    client = redis.Redis.from_url(healing.env["REDIS_URL"])
    owner = wait(lambda: client.get(keys.lease_owner(deployment_id)), 60, "a runner to claim the build")
    pid = int(owner.decode().rsplit("-", 1)[1])
    victim = next(r for r in healing.runners() if r.process.pid == pid)
    time.sleep(1)  # inside the 3 s build
    seen = kill_9(healing, victim.name)
    assert healthy(http)                                   # the API stays up meanwhile
    record = deployed(http, deployment_id)
    assert record["attempt"] >= 2                          # the other runner took it over
    assert page(http, healing, deployment_id) == pages["index"]
    restarted(healing, victim.name, seen)
    assert all(r.process.poll() is None for r in healing.runners()) and len(healing.runners()) == 2


def test_redis_killed_is_restarted_with_its_data_and_the_stack_serves_again(healing, http, tmp_path):
    before, pages = site(tmp_path, http)
    deployed(http, before)
    time.sleep(1.5)  # appendfsync everysec: what is a second old is on disk
    restarted(healing, "redis", kill_9(healing, "redis"))
    wait(lambda: healthy(http), 30, "the API to reach Redis again")
    assert page(http, healing, before, "/other") == pages["other"]
    after, more = site(tmp_path, http)                     # and deploys still work
    deployed(http, after)
    assert page(http, healing, after) == more["index"]


def test_the_s3_server_killed_is_restarted_with_its_bucket(healing, http, tmp_path):
    before, pages = site(tmp_path, http)
    deployed(http, before)
    restarted(healing, "s3", kill_9(healing, "s3"))
    wait(lambda: healthy(http), 60, "the API to reach the bucket again")
    # A page no handler has cached yet: read from the restarted server's bucket.
    assert page(http, healing, before, "/other") == pages["other"]
    after, more = site(tmp_path, http)
    deployed(http, after)
    assert page(http, healing, after) == more["index"]


def test_the_api_killed_is_restarted(healing, http):
    seen = kill_9(healing, "api")
    restarted(healing, "api", seen)
    wait(lambda: healthy(http), 60, "the API to answer again")


def test_a_site_deployed_before_a_stop_is_served_after_a_start_on_the_same_state_folder(
        tmp_path, toolchain_dir):
    state = tmp_path / "state"
    with running_stack(state, None, toolchain_dir) as first:
        http = Http(first.api_url)
        deployment_id, pages = site(tmp_path, http)
        deployed(http, deployment_id)
    with running_stack(state, None, toolchain_dir, runners=0) as again:
        http = Http(again.api_url)
        assert again.lost_outputs == "" and healthy(http)
        assert page(http, again, deployment_id) == pages["index"]
        assert page(http, again, deployment_id, "/other") == pages["other"]
    shutil.rmtree(state / "s3")                            # the bucket lost, Redis kept
    with running_stack(state, None, toolchain_dir, runners=0) as wiped:
        http = Http(wiped.api_url)
        assert f"(first: {deployment_id})" in wiped.lost_outputs
        status, health = http.json("GET", "/api/health")
        assert status == 503 and health["status"] == "degraded"
        assert "have no files in the bucket" in health["checks"]["bucket"]
        status, _, body = http.request("GET", "/", host=f"{deployment_id}.localhost:{wiped.port}")
        assert status == 503 and b"missing from the bucket" in body
        log = (state / "logs" / f"api-{wiped.port}.log").read_text()
        assert f"deployment {deployment_id} is recorded as deployed" in log


def test_only_a_signal_to_the_stack_stops_make_run(tmp_path):
    """`python -m devstack` (what `make run` runs) keeps running when a runner dies and
    stops every process it started on SIGTERM."""
    import subprocess
    import sys
    port = services.free_port()
    # No build runs here: the runner only has to start, so it skips the sandbox probe.
    env = {**os.environ, "PORT": str(port), "RUNNERS": "1", "STATE_DIR": str(tmp_path),
           "BUILD_SANDBOX": "none"}
    stack = subprocess.Popen([sys.executable, "-m", "devstack"], env=env, cwd=services.PROJECT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
             .status == 200, 120, "make run to serve")
        runner = wait(lambda: children(stack.pid, "build_runner"), 30, "the runner")[0]
        os.kill(runner, signal.SIGKILL)
        wait(lambda: (found := children(stack.pid, "build_runner")) and found[0] != runner, 30,
             "a new runner")
        assert stack.poll() is None
        everyone = children(stack.pid, "")
        stack.send_signal(signal.SIGTERM)
        output, _ = stack.communicate(timeout=60)
    finally:
        if stack.poll() is None:
            stack.kill()
    assert "runner-0 exited (killed by SIGKILL)" in output and "stopping percel" in output
    wait(lambda: not any(alive(pid) for pid in everyone), 10, "every process to have stopped")


def children(parent: int, needle: str) -> list[int]:
    """Pids of `parent`'s children whose command line contains `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) \
                    == parent and needle in (entry / "cmdline").read_text().replace("\0", " "):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found

