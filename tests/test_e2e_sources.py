"""End to end: POST /api/deployments answers before the clone, and the source worker's part
(clone + source upload, pipeline/sources.py) survives being killed, over HTTP against the stack
`make run` starts (API, runner, source worker, Redis, S3)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import redis

from chalicelib import keys
from chalicelib.settings import load_settings
from chalicelib.storage.store import Store, make_s3_client
from devstack import services
from tests.conftest import Http, git, make_repo

# Enough files that the clone, scan and upload of the source take seconds (each a PUT to the
# endpoint): a worker killed as it begins is killed mid-upload.
MANY_FILES = 2000


@pytest.fixture(scope="module")
def db(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["REDIS_URL"])


@pytest.fixture(scope="module")
def store(stack) -> Store:
    settings = load_settings(stack.env)
    return Store(make_s3_client(settings), settings.bucket)


def many_files(root: Path, marker: str) -> str:
    """A repository of MANY_FILES small files, every one unique to this test run."""
    files = {f"pages/{n:04d}.txt": f"{marker} {n}" for n in range(MANY_FILES)}
    return make_repo(root, {"index.html": f"<h1>{marker}</h1>", **files})


def wait_for_status(http: Http, deployment_id: str, wanted: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = http.json("GET", f"/api/deployments/{deployment_id}")[1]
        if record["status"] in wanted:
            return record
        time.sleep(0.1)
    raise AssertionError(f"{deployment_id} never reached {wanted}: {record}")


def wait_for_line(http: Http, deployment_id: str, prefix: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(line.startswith(prefix) for line in log_lines(http, deployment_id)):
        assert time.monotonic() < deadline, f"{deployment_id} never logged {prefix!r}"
        time.sleep(0.05)


def log_lines(http: Http, deployment_id: str) -> list[str]:
    return http.json("GET", f"/api/deployments/{deployment_id}/logs")[1]["lines"]


def test_the_post_answers_uploading_with_the_commit_and_the_deployment_is_built(http, tmp_path):
    page = f"<h1>async {tmp_path.name}</h1>".encode()  # bytes of its own in the shared bucket
    url = make_repo(tmp_path / "site", {"index.html": page})
    status, created = http.json("POST", "/api/deployments", {"repo_url": url})
    assert status == 202 and created["status"] == "uploading", created
    record = http.json("GET", f"/api/deployments/{created['id']}")[1]
    assert record["commit"] == git("rev-parse", "HEAD", cwd=tmp_path / "site")
    assert record["status"] in ("uploading", "queued", "building", "deployed")
    done = http.wait_for(created["id"], timeout=180)
    assert done["status"] == "deployed", done["error"]
    assert http.site(created["id"], "/")[2] == page
    assert any(line.startswith("percel: cloning") for line in log_lines(http, created["id"]))


@pytest.mark.parametrize("body, message", [
    ({"repo_url": "file:///no/such/repository"}, "does not exist or cannot be cloned"),
    ({"ref": "no-such-branch"}, "ref 'no-such-branch' does not exist"),
], ids=["missing-repository", "missing-ref"])
def test_a_missing_repository_or_ref_is_422_with_no_record_and_no_job(http, db, tmp_path, body, message):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    before = db.zcard(keys.DEPLOYMENTS_INDEX)
    status, answer = http.json("POST", "/api/deployments", {"repo_url": url, **body})
    assert status == 422 and message in answer["error"]["message"], answer
    assert db.zcard(keys.DEPLOYMENTS_INDEX) == before
    assert db.llen(keys.SOURCE_QUEUE) == 0 and db.llen(keys.QUEUE) == 0


def test_a_repository_gone_before_its_clone_ends_failed_with_the_reason(http, stack, tmp_path):
    """The source worker is stopped, so the repository can vanish between the POST and the
    clone: the deployment ends failed, saying why, in the record and the log."""
    worker = stack.service("sources-0")
    worker.stop()
    try:
        url = make_repo(tmp_path / "site", {"index.html": "x"})
        deployment_id = http.deploy({"repo_url": url})
        shutil.rmtree(tmp_path / "site")
    finally:
        restart_worker(stack, worker)
    record = wait_for_status(http, deployment_id, {"failed", "deployed"})
    assert record["status"] == "failed"
    assert "does not exist or cannot be cloned" in record["error"], record
    assert any("the source upload failed" in line for line in log_lines(http, deployment_id))


@pytest.mark.planned_restart("sources-0")
def test_a_source_worker_killed_mid_upload_loses_no_deployment(http, stack, store, tmp_path):
    url = many_files(tmp_path / "big", "killed")
    deployment_id = http.deploy({"repo_url": url})
    wait_for_line(http, deployment_id, "percel: cloning")
    worker = stack.service("sources-0")
    worker.kill()  # SIGKILL: no bookkeeping of its own
    record = http.json("GET", f"/api/deployments/{deployment_id}")[1]
    assert record["status"] == "uploading"  # killed before it finished
    assert not store.exists(keys.source_manifest(deployment_id))
    # The stack's supervisor starts it again (as `make run` does), under the same name.
    done = http.wait_for(deployment_id, timeout=300)
    assert done["status"] == "deployed", done["error"]
    assert http.site(deployment_id, "/pages/1999.txt")[2] == b"killed 1999"
    assert any("(try 2)" in line for line in log_lines(http, deployment_id))


def test_a_deployment_cancelled_while_uploading_is_never_built(http, stack, store, tmp_path):
    url = many_files(tmp_path / "big", "cancelled")
    deployment_id = http.deploy({"repo_url": url})
    wait_for_line(http, deployment_id, "percel: cloning")  # the worker holds it now
    status, record = http.json("POST", f"/api/deployments/{deployment_id}/cancel")
    assert status == 200 and record["status"] == "cancelled", record
    worker = stack.service("sources-0")
    services.wait_until(lambda: f"source of {deployment_id} done" in worker.log_path.read_text(),
                        120, "the source worker's end of the upload")
    assert http.json("GET", f"/api/deployments/{deployment_id}")[1]["status"] == "cancelled"
    assert not store.exists(keys.source_manifest(deployment_id))
    assert not any(line.startswith("percel: framework") for line in log_lines(http, deployment_id))
    assert http.site(deployment_id, "/")[0] != 200


def restart_worker(stack, old: services.Service) -> None:
    """Start the source worker again under the same name, in the old one's place."""
    new = services.start_source_worker(stack.env, stack.state_dir / "logs")
    stack.services[stack.services.index(old)] = new
