"""End to end: the limits and promises the README makes, over HTTP, on a stack with small limits.

One stack for the module (the processes `make run` starts, one runner) whose limits are
set through the environment, as an operator would set them: a repository over
MAX_REPO_FILES / MAX_REPO_BYTES, an output over MAX_OUTPUT_FILES / MAX_OUTPUT_BYTES, a
build past BUILD_TIMEOUT or an install past INSTALL_TIMEOUT. Its S3 endpoint sits behind
a counting proxy, so "nothing was uploaded" is checked where the bucket is. BUILD_MEMORY_MB
is low enough for a test to exceed it quickly and high enough for npm itself.
"""
from __future__ import annotations

import json
import re
import time

import pytest
import redis

from chalicelib import keys
from devstack import services
from tests.conftest import Http, counted_s3, make_repo, running_stack

LIMITS = {"MAX_REPO_FILES": "30", "MAX_REPO_BYTES": "100000", "MAX_OUTPUT_FILES": "40",
          "MAX_OUTPUT_BYTES": "100000", "BUILD_TIMEOUT": "20", "INSTALL_TIMEOUT": "4",
          "BUILD_MEMORY_MB": "512"}
SECRET = "tok-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def s3_calls(tmp_path_factory):
    with counted_s3(tmp_path_factory.mktemp("limits-s3")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3_calls, toolchain_dir):
    with running_stack(tmp_path_factory.mktemp("limits"), s3_calls.url, toolchain_dir,
                       env=LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def http(stack) -> Http:
    return Http(stack.api_url, stack)


@pytest.fixture(scope="module")
def db(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["REDIS_URL"])


def package(build: str) -> str:
    return '{"name": "limits", "version": "1.0.0", "scripts": {"build": "%s"}}' % build


def deployments_listed(http: Http) -> int:
    return len(http.json("GET", "/api/deployments?limit=200")[1]["deployments"])


# --- a repository over the limits: failed with the limit, nothing uploaded, no build ---------

@pytest.mark.parametrize("files, limit", [
    ({f"page-{n}.html": f"<p>{n}</p>" for n in range(31)}, "more than 30 files"),
    ({"index.html": "<p>x</p>", "video.bin": bytes(150_000)}, "larger than 100000 bytes"),
], ids=["MAX_REPO_FILES", "MAX_REPO_BYTES"])
def test_an_oversized_repository_ends_failed_with_the_limit_and_uploads_nothing(
        http, db, s3_calls, tmp_path, files, limit):
    """The POST answers before the clone (202 `uploading`); the source worker's clone meets the
    limit, and the deployment ends failed saying which."""
    url = make_repo(tmp_path / "big", files)
    mark = s3_calls.mark()
    status, body = http.json("POST", "/api/deployments", {"repo_url": url})
    assert status == 202 and body["status"] == "uploading", body
    record = http.wait_for(body["id"], timeout=120)
    assert record["status"] == "failed" and limit in record["error"], record
    uploads = [c.key for c in s3_calls.since(mark) if c.method == "PUT"]
    assert uploads == [f"logs/{body['id']}.txt"]  # its log; no blob and no source manifest
    assert db.llen(keys.QUEUE) == 0 and db.zscore(keys.PROCESSING, body["id"]) is None  # no build


def test_a_repository_just_under_the_limits_is_accepted(http, tmp_path):
    """The other side of the limit: 30 files is allowed, so the failure above is the limit's."""
    url = make_repo(tmp_path / "fits", {f"page-{n}.html": f"<p>{n}</p>" for n in range(29)}
                    | {"index.html": "<p>fits</p>"})
    deployment_id = http.deploy({"repo_url": url})
    assert http.wait_for(deployment_id, timeout=120)["status"] == "deployed"


# --- an output over the limits fails the build ------------------------------------------------

@pytest.mark.parametrize("build, error", [
    ("mkdir -p dist && echo ok > dist/index.html && for i in $(seq 60); do echo $i > dist/$i; done",
     "the build output has more than 40 files and folders (MAX_OUTPUT_FILES)"),
    ("mkdir -p dist && head -c 150000 /dev/zero > dist/big.bin && echo ok > dist/index.html",
     "the build output is larger than 100000 bytes (MAX_OUTPUT_BYTES)"),
], ids=["MAX_OUTPUT_FILES", "MAX_OUTPUT_BYTES"])
def test_an_output_over_the_limits_fails_the_build_with_a_clear_error(http, tmp_path, build, error):
    url = make_repo(tmp_path / "out", {"package.json": package(build)})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=180)
    assert record["status"] == "failed" and record["error"].startswith(error), record
    assert http.site(deployment_id, "/")[0] == 404


# --- BUILD_TIMEOUT and INSTALL_TIMEOUT come from the environment ----------------------------------

def test_build_timeout_from_the_environment_kills_a_sleeping_build(http, tmp_path):
    url = make_repo(tmp_path / "sleepy", {"package.json": package("echo napping && sleep 300")})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=240)
    assert record["status"] == "failed", record
    # BUILD_TIMEOUT=20 from the environment (the whole job's budget; the build step gets what the
    # install left of it), not the default 900 s, stopped the 300 s sleep.
    stopped = re.search(r"build command `npm run build` failed: timed out after ([0-9.]+) s",
                        record["error"])
    assert stopped and float(stopped[1]) <= 20, record


def test_install_timeout_from_the_environment_kills_a_sleeping_install(http, tmp_path):
    url = make_repo(tmp_path / "slow-install", {"package.json": package("echo built")})
    deployment_id = http.deploy({"repo_url": url, "install_command": "sleep 300"})
    record = http.wait_for(deployment_id, timeout=240)
    assert record["status"] == "failed", record
    assert record["error"].startswith("install command `sleep 300` failed: timed out after 4 s")


def test_a_build_past_build_memory_mb_fails_saying_it_ran_out_of_memory(http, tmp_path):
    # Buffer.alloc(size, 1) writes every page, so the memory is really used.
    hungry = "node -e 'const kept = []; for (;;) kept.push(Buffer.alloc(64 * 1024 * 1024, 1))'"
    url = make_repo(tmp_path / "hungry", {"package.json": package(hungry)})
    deployment_id = http.deploy({"repo_url": url})
    record = http.wait_for(deployment_id, timeout=240)
    assert record["status"] == "failed", record
    assert record["error"].splitlines()[0] == \
        "build command `npm run build` failed: out of memory (limit 512 MiB)", record


# --- the build env: redacted from the error, never returned by the API ----------------------------

def test_build_env_values_are_redacted_from_the_error_and_never_returned(http, tmp_path):
    # The command itself names the value, so the failure message quotes it unless redacted.
    build = f'echo "using $DEPLOY_TOKEN" && test "$DEPLOY_TOKEN" != {SECRET} || exit 7'
    url = make_repo(tmp_path / "leaky", {"index.html": "<p>x</p>"})
    status, created, raw_created = post(http, {"repo_url": url, "build_command": build,
                                               "env": {"DEPLOY_TOKEN": SECRET}})
    assert status == 202 and SECRET.encode() not in raw_created
    deployment_id = created["id"]
    record = http.wait_for(deployment_id, timeout=120)
    assert record["status"] == "failed"
    assert "exited with code 7" in record["error"] and "using ***" in record["error"], record
    assert "!= ***" in record["error"]  # the quoted command, redacted
    for path in (f"/api/deployments/{deployment_id}", "/api/deployments",
                 "/api/deployments?limit=200", f"/api/deployments/{deployment_id}/logs",
                 f"/api/deployments/{deployment_id}/logs?cursor=0"):
        status, _, raw = http.request("GET", path)
        assert status == 200, path
        assert SECRET.encode() not in raw, path


def post(http: Http, body: dict) -> tuple[int, dict, bytes]:
    status, _, raw = http.request("POST", "/api/deployments", body)
    return status, json.loads(raw), raw


# --- cancelling a deployment that is still queued ----------------------------------------------

def test_cancelling_a_queued_deployment_means_it_is_never_built(http, db, tmp_path):
    busy = http.deploy({"repo_url": make_repo(tmp_path / "busy", {
        "package.json": package("echo occupying-the-runner && sleep 300")})})
    wait_for_line(http, busy, "occupying-the-runner")  # the only runner is taken
    waiting_page = "<p>never built</p>"
    waiting = http.deploy({"repo_url": make_repo(tmp_path / "waiting",
                                                 {"index.html": waiting_page})})
    services.wait_until(lambda: http.json("GET", f"/api/deployments/{waiting}")[1]["status"] == "queued",
                        60, "the source upload")
    status, record = http.json("POST", f"/api/deployments/{waiting}/cancel")
    assert status == 200 and record["status"] == "cancelled"
    assert http.json("POST", f"/api/deployments/{busy}/cancel")[0] == 200  # free the runner
    # Once the runner has built something queued after it, it has been past `waiting`.
    later = http.deploy({"repo_url": make_repo(tmp_path / "later", {"index.html": "<p>l</p>"})})
    assert http.wait_for(later, timeout=120)["status"] == "deployed"
    assert http.json("GET", f"/api/deployments/{waiting}")[1]["status"] == "cancelled"
    lines = http.json("GET", f"/api/deployments/{waiting}/logs")[1]["lines"]
    assert not any(line.startswith("percel: framework") for line in lines), lines
    assert http.site(waiting, "/")[2] != waiting_page.encode()
    assert db.llen(keys.QUEUE) == 0


def wait_for_line(http: Http, deployment_id: str, needle: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = http.json("GET", f"/api/deployments/{deployment_id}/logs")[1]["lines"]
        if any(needle in line for line in lines):
            return
        http.check_runners()
        time.sleep(0.3)
    raise AssertionError(f"{deployment_id} never logged {needle!r}")
