"""The source step of a git deployment (pipeline/sources.py) against real Redis, the real S3
endpoint and real git repositories: what a user sees in the record and the log."""
import dataclasses
import json
import shutil
import time

import pytest

from chalicelib import keys
from chalicelib.pipeline import cleanup, deploy, lifecycle, sources
from chalicelib.pipeline.clone import commit_of
from tests.conftest import commit_all, git, make_ctx, make_repo
from tests.counting_proxy import puts

WORKER = "test-worker"


def log_lines(ctx, deployment_id: str) -> list[str]:
    return ctx.logs.read(deployment_id, None)[0]


def test_a_source_too_large_for_the_limits_ends_failed_with_the_reason(settings, tmp_path):
    ctx = make_ctx(dataclasses.replace(settings, max_repo_files=2))
    url = make_repo(tmp_path / "site", {"a": "1", "b": "2", "c": "3"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    assert created["status"] == "uploading"  # the POST does not clone
    sources.upload_next(ctx, WORKER, wait=0)
    view = deploy.get_deployment(ctx, created["id"])
    assert view["status"] == "failed" and "more than 2 files" in view["error"]
    assert any("more than 2 files" in line for line in log_lines(ctx, created["id"]))
    archived = ctx.store.get_bytes(keys.archived_log(created["id"])).decode()
    assert "the source upload failed: the repository has more than 2 files" in archived
    assert ctx.redis.llen(keys.QUEUE) == 0 and ctx.redis.zcard(keys.SOURCE_PROCESSING) == 0


def test_a_repository_gone_before_its_clone_ends_failed(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    shutil.rmtree(tmp_path / "site")
    sources.upload_next(ctx, WORKER, wait=0)
    view = deploy.get_deployment(ctx, created["id"])
    assert view["status"] == "failed" and "does not exist or cannot be cloned" in view["error"]
    assert list(ctx.store.list_keys("sources/")) == []


def test_an_uploading_deployment_can_be_cancelled_and_is_never_built(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    assert deploy.cancel_deployment(ctx, created["id"])["status"] == "cancelled"
    assert sources.upload_next(ctx, WORKER, wait=0) is None  # its job went with the cancel
    assert ctx.redis.llen(keys.QUEUE) == 0 and list(ctx.store.list_keys("sources/")) == []


def test_a_cancel_during_the_upload_throws_the_upload_away(ctx, tmp_path):
    """The worker holds the job when the cancel lands: its upload ends, nothing is queued."""
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    assert lifecycle.claim_source(ctx, WORKER, 0) == created["id"]
    record = ctx.records.get(created["id"])
    deploy.cancel_deployment(ctx, created["id"])
    sources._upload(ctx, record, 1)  # the clone and upload, as the worker had begun them
    assert not lifecycle.uploaded(ctx, created["id"], record["commit"])
    assert deploy.get_deployment(ctx, created["id"])["status"] == "cancelled"
    assert ctx.redis.llen(keys.QUEUE) == 0


def test_a_worker_that_dies_loses_no_deployment(settings, tmp_path):
    """A worker claims the job and stops renewing: once its lease runs out, the reaper hands
    the job back and another worker uploads it; after MAX_BUILD_ATTEMPTS tries it fails."""
    ctx = make_ctx(dataclasses.replace(settings, job_lease_seconds=1, max_build_attempts=2))
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    assert lifecycle.claim_source(ctx, "dead-worker", 0) == created["id"]
    lifecycle.begin_upload(ctx, created["id"])
    time.sleep(1.2)
    assert lifecycle.reap(ctx).requeued_sources == [created["id"]]
    sources.upload_next(ctx, WORKER, wait=0)
    view = deploy.get_deployment(ctx, created["id"])
    assert view["status"] == "queued", view["error"]
    assert any("(try 2)" in line for line in log_lines(ctx, created["id"]))

    again = deploy.create_deployment(ctx, {"repo_url": url})
    for _ in range(2):
        assert lifecycle.claim_source(ctx, "dead-worker", 0) == again["id"]
        lifecycle.begin_upload(ctx, again["id"])
        time.sleep(1.2)
        lifecycle.reap(ctx)
    view = deploy.get_deployment(ctx, again["id"])
    assert view["status"] == "failed" and "source worker stopped responding 2 times" in view["error"]


def test_a_restarted_worker_takes_back_its_job_at_once(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    assert lifecycle.claim_source(ctx, "sources-0", 0) == created["id"]
    assert lifecycle.reclaim_sources(ctx, "sources-1") == []  # not that worker's
    assert lifecycle.reclaim_sources(ctx, "sources-0") == [created["id"]]
    sources.upload_next(ctx, "sources-0", wait=0)
    assert deploy.get_deployment(ctx, created["id"])["status"] == "queued"


def test_a_commit_already_cloned_is_not_cloned_again(counted_ctx, s3_calls, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "same", "a.css": "p{}"})
    first = deploy.create_deployment(counted_ctx, {"repo_url": url})
    sources.upload_next(counted_ctx, WORKER, wait=0)
    mark = s3_calls.mark()
    second = deploy.create_deployment(counted_ctx, {"repo_url": url, "root_dir": "."})
    sources.upload_next(counted_ctx, WORKER, wait=0)
    assert f"reused from deployment {first['id']}: no clone" in log_lines(counted_ctx, second["id"])[-1]
    assert puts(s3_calls.since(mark), "blobs/") == []
    assert counted_ctx.store.get_json(keys.source_manifest(second["id"])) == \
        counted_ctx.store.get_json(keys.source_manifest(first["id"]))
    assert deploy.get_deployment(counted_ctx, second["id"])["status"] == "queued"
    # Its manifest gone (retention), the next deploy of that commit clones again.
    counted_ctx.store.delete([keys.source_manifest(first["id"]), keys.source_manifest(second["id"])])
    third = deploy.create_deployment(counted_ctx, {"repo_url": url})
    sources.upload_next(counted_ctx, WORKER, wait=0)
    assert any(line.startswith("percel: cloning") for line in log_lines(counted_ctx, third["id"]))
    assert counted_ctx.store.exists(keys.source_manifest(third["id"]))


def test_the_same_commit_by_another_ref_is_cloned_for_that_ref(ctx, tmp_path):
    """The packed `.git` names the branch it was cloned from, so a tag's deploy clones."""
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    git("tag", "v1", cwd=tmp_path / "site")
    deploy.create_deployment(ctx, {"repo_url": url})
    sources.upload_next(ctx, WORKER, wait=0)
    tagged = deploy.create_deployment(ctx, {"repo_url": url, "ref": "v1"})
    sources.upload_next(ctx, WORKER, wait=0)
    assert any(line.startswith("percel: cloning") for line in log_lines(ctx, tagged["id"]))
    assert deploy.get_deployment(ctx, tagged["id"])["commit"] == git("rev-parse", "HEAD",
                                                                     cwd=tmp_path / "site")


def test_a_branch_that_moves_after_the_post_is_built_at_its_new_commit(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "one"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    (tmp_path / "site" / "index.html").write_text("two")
    commit_all(tmp_path / "site")
    sources.upload_next(ctx, WORKER, wait=0)
    view = deploy.get_deployment(ctx, created["id"])
    assert view["status"] == "queued" and view["commit"] == git("rev-parse", "HEAD", cwd=tmp_path / "site")
    assert any("moved to" in line for line in log_lines(ctx, created["id"]))


@pytest.mark.parametrize("ref, expected", [
    (None, "c" * 40),
    ("main", "a" * 40),
    ("v1", "e" * 40),       # an annotated tag: its commit, not the tag object
    ("v2", "f" * 40),       # a lightweight tag
    ("nope", None),
])
def test_ls_remote_listing_to_commit(ref, expected):
    listing = "\n".join([f"{'c' * 40}\tHEAD", f"{'a' * 40}\trefs/heads/main",
                         f"{'b' * 40}\trefs/remotes/x/refs/heads/main", f"{'d' * 40}\trefs/tags/v1",
                         f"{'e' * 40}\trefs/tags/v1^{{}}", f"{'f' * 40}\trefs/tags/v2"])
    assert commit_of(listing, ref) == expected


class RecordingLambda:
    """Stands in for boto3's Lambda client (no AWS here): records each invoke, or fails them."""

    def __init__(self, fail: bool = False):
        self.calls: list[dict] = []
        self.fail = fail

    def invoke(self, **params):
        self.calls.append(params)
        if self.fail:
            raise ConnectionError("lambda endpoint unreachable")
        return {"StatusCode": 202}


def with_function(settings, client: RecordingLambda):
    ctx = make_ctx(dataclasses.replace(settings, source_function="percel-dev-source_upload"))
    ctx.__dict__["lambda_client"] = client  # the cached_property's slot
    return ctx


def test_on_aws_the_post_invokes_the_source_function_asynchronously(settings, tmp_path):
    client = RecordingLambda()
    ctx = with_function(settings, client)
    created = deploy.create_deployment(ctx, {"repo_url": make_repo(tmp_path / "site", {"a": "1"})})
    assert client.calls == [{"FunctionName": "percel-dev-source_upload", "InvocationType": "Event",
                             "Payload": json.dumps({"deployment_id": created["id"]}).encode()}]


def test_a_failed_invoke_keeps_the_deployment_and_cleanup_invokes_again(settings, tmp_path):
    ctx = with_function(settings, RecordingLambda(fail=True))
    created = deploy.create_deployment(ctx, {"repo_url": make_repo(tmp_path / "site", {"a": "1"})})
    assert created["status"] == "uploading"  # the job waits in Redis
    client = ctx.__dict__["lambda_client"] = RecordingLambda()
    assert cleanup.run_cleanup(ctx).dispatched_sources == 1
    assert [call["InvocationType"] for call in client.calls] == ["Event"]
    sources.upload_next(ctx, WORKER, wait=0)  # what that invocation runs
    assert deploy.get_deployment(ctx, created["id"])["status"] == "queued"
