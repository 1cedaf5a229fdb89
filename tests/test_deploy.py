"""The upload service against real Redis, the real S3 endpoint and real git repos."""
import dataclasses
import io
import tarfile

import pytest

from chalicelib import keys
from chalicelib.errors import BadRequest, NotFound, ServiceUnavailable, Unprocessable
from chalicelib.pipeline import deploy
from tests.conftest import git, make_repo
from tests.counting_proxy import puts


def nothing_half_done(ctx):
    assert ctx.redis.llen(keys.QUEUE) == 0
    assert ctx.redis.zcard(keys.DEPLOYMENTS_INDEX) == 0
    assert list(ctx.store.list_keys("sources/")) == []


def test_a_deploy_uploads_the_source_and_queues_one_job(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "<h1>hi</h1>", "css/a.css": "p{}"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    deployment_id = created["id"]
    assert created["status"] == "queued" and created["status_url"].endswith(deployment_id)
    assert created["url"] == f"http://{deployment_id}.localhost:8000/"
    assert ctx.redis.lrange(keys.QUEUE, 0, -1) == [deployment_id.encode()]
    source = ctx.store.get_json(keys.source_manifest(deployment_id))
    assert set(source["files"]) == {"index.html", "css/a.css"}
    sha = source["files"]["index.html"]["sha256"]
    assert ctx.store.get_blob(sha) == b"<h1>hi</h1>"
    view = deploy.get_deployment(ctx, deployment_id)
    assert view["status"] == "queued" and view["repo_url"] == url and len(view["commit"]) == 40


def test_ids_are_dns_safe_and_distinct(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    made = {deploy.create_deployment(ctx, {"repo_url": url})["id"] for _ in range(5)}
    assert len(made) == 5
    assert all(len(i) >= 12 and i.isalnum() and i == i.lower() for i in made)


def test_a_redeploy_of_unchanged_files_uploads_no_blob(counted_ctx, s3_calls, tmp_path):
    """Counted at the S3 endpoint: content addressing keeps the bucket's key list equal
    even if every blob were uploaded again. The packed `.git` of the same commit is the
    same bytes too."""
    url = make_repo(tmp_path / "site", {"index.html": "same", "css/a.css": "p{}"})
    mark = s3_calls.mark()
    deploy.create_deployment(counted_ctx, {"repo_url": url})
    assert len(puts(s3_calls.since(mark), "blobs/")) == 3  # two files and the git archive
    mark = s3_calls.mark()
    created = deploy.create_deployment(counted_ctx, {"repo_url": url})
    calls = s3_calls.since(mark)
    assert puts(calls, "blobs/") == [], calls
    assert [c.key for c in puts(calls, "sources/")] == [f"sources/{created['id']}.json"]


@pytest.mark.parametrize("body, error", [
    ({"repo_url": "file:///definitely/not/here"}, Unprocessable),
    ({"repo_url": "https://example.com/x.git", "unknown": 1}, BadRequest),
    ({"nothing": True}, BadRequest),
])
def test_bad_input_leaves_nothing_half_done(ctx, body, error):
    with pytest.raises(error):
        deploy.create_deployment(ctx, body)
    nothing_half_done(ctx)


def test_a_missing_ref_leaves_nothing(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    with pytest.raises(Unprocessable, match="ref 'v9' does not exist"):
        deploy.create_deployment(ctx, {"repo_url": url, "ref": "v9"})
    nothing_half_done(ctx)


def test_unknown_deployment_is_404(ctx):
    with pytest.raises(NotFound):
        deploy.get_deployment(ctx, "aaaaaaaaaaaaaaaa")
    with pytest.raises(NotFound):
        deploy.get_deployment(ctx, "../../etc")


def test_health_reports_each_dependency(ctx):
    status, body = deploy.health(ctx)
    assert status == 200 and body["checks"] == {"redis": "ok", "bucket": "ok"}
    ctx.store.bucket = "no-such-bucket-here"
    status, body = deploy.health(ctx)
    assert status == 503 and body["checks"]["bucket"].startswith("unreachable")


def test_redis_down_at_record_time_leaves_no_source_behind(ctx, tmp_path):
    import redis as redis_lib

    from chalicelib.context import Context
    broken = Context(ctx.settings, redis_lib.Redis(port=1, socket_connect_timeout=1), ctx.store)
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    with pytest.raises(redis_lib.ConnectionError):
        deploy.create_deployment(broken, {"repo_url": url})
    assert list(ctx.store.list_keys("sources/")) == []


def test_listing_is_newest_first_and_bounded(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "x"})
    made = [deploy.create_deployment(ctx, {"repo_url": url})["id"] for _ in range(3)]
    listed = [view["id"] for view in deploy.list_deployments(ctx, "2")]
    assert listed == made[::-1][:2]
    for bad in ("0", "-1", "abc", "201"):
        with pytest.raises(BadRequest) as refused:
            deploy.list_deployments(ctx, bad)
        assert refused.value.field == "limit"


def test_the_clones_git_directory_is_stored_as_one_blob_the_manifest_names(ctx, tmp_path):
    url = make_repo(tmp_path / "site", {"index.html": "<h1>hi</h1>"})
    created = deploy.create_deployment(ctx, {"repo_url": url})
    source = ctx.store.get_json(keys.source_manifest(created["id"]))
    assert not any(path.startswith(".git") for path in source["files"])  # never as files
    data = ctx.store.get_blob(source["git"]["sha256"])
    assert data is not None and len(data) == source["git"]["size"]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        head = archive.extractfile(members[".git/HEAD"]).read()
    assert all(name == ".git" or name.startswith(".git/") for name in members)
    assert all(m.isfile() or m.isdir() for m in members.values())
    assert ".git/shallow" in members and ".git/index" in members and head == b"ref: refs/heads/main\n"
    # The reflogs name the machine that cloned; the sample hooks are git's templates.
    assert not any(n.startswith(".git/logs") or n.endswith(".sample") for n in members)
    view = deploy.get_deployment(ctx, created["id"])
    assert view["commit"] == git("rev-parse", "HEAD", cwd=tmp_path / "site")


def test_clones_beyond_the_limit_are_a_503_with_retry_after_and_leave_nothing(settings, tmp_path):
    """Two clones hang on a server that accepts and never answers; the third deploy is refused
    at once, and deploys work again once the slots are free."""
    import dataclasses
    import json
    import socket
    import threading

    from chalicelib.api import error_response
    from chalicelib.errors import Busy
    from tests.conftest import make_ctx
    ctx = make_ctx(dataclasses.replace(settings, max_concurrent_clones=2, clone_timeout=120))
    held: list[socket.socket] = []
    outcomes: list[BaseException] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/repo.git"

        def deploy_hanging():
            try:
                deploy.create_deployment(ctx, {"repo_url": url})
            except BaseException as error:  # noqa: B036 - recorded for the assertion below
                outcomes.append(error)
        clones = [threading.Thread(target=deploy_hanging, daemon=True) for _ in range(2)]
        for thread in clones:
            thread.start()
        silent.settimeout(60)
        for _ in clones:  # both clones are now in flight, each holding a slot
            held.append(silent.accept()[0])
        with pytest.raises(Busy) as refused:
            deploy.create_deployment(ctx, {"repo_url": make_repo(tmp_path / "site", {"a": "a"})})
        response = error_response(refused.value)
        assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
        assert json.loads(response.body)["error"]["code"] == "busy"
        nothing_half_done(ctx)
        for connection in held:  # the hanging clones fail now and give their slots back
            connection.close()
        for thread in clones:
            thread.join(60)
    assert [type(error) for error in outcomes] == [Unprocessable, Unprocessable]
    assert deploy.create_deployment(ctx, {"repo_url": f"file://{tmp_path / 'site'}"})["status"] == "queued"


def test_the_record_in_redis_holds_no_build_env_value_in_clear(ctx, tmp_path):
    url = make_repo(tmp_path / "repo", {"index.html": "x"})
    secret = "ghp_0123456789abcdefSECRET"
    created = deploy.create_deployment(ctx, {"repo_url": url, "env": {"GH_TOKEN": secret}})
    raw = ctx.redis.hgetall(keys.record(created["id"]))
    stored = b"".join(name + value for name, value in raw.items())
    assert secret.encode() not in stored and b"GH_TOKEN" not in stored
    assert ctx.env_box.open(raw[b"env"].decode()) == {"GH_TOKEN": secret}
    assert "env" not in deploy.get_deployment(ctx, created["id"])


def test_without_a_secret_key_a_deploy_with_env_is_refused_before_anything_is_done(ctx, tmp_path):
    keyless = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, percel_secret_key=""))
    url = make_repo(tmp_path / "repo", {"index.html": "x"})
    with pytest.raises(ServiceUnavailable, match="PERCEL_SECRET_KEY is not set") as refused:
        deploy.create_deployment(keyless, {"repo_url": url, "env": {"GH_TOKEN": "ghp_x1234"}})
    assert refused.value.field == "env"
    nothing_half_done(ctx)
    # Without env the same server still deploys.
    assert deploy.create_deployment(keyless, {"repo_url": url})["status"] == "queued"


def test_health_says_so_when_deployed_sites_have_no_files_in_the_bucket(ctx, tmp_path):
    from chalicelib.serving.site import SiteServer
    from tests.conftest import publish_output
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "index.html").write_text("<p>kept?</p>")
    publish_output(ctx, "wipedwipedwipedw", tmp_path / "out")
    assert deploy.health(ctx)[0] == 200
    ctx.store.delete(key for key, _ in list(ctx.store.list_keys("")))  # the bucket emptied
    status, body = deploy.health(ctx)
    assert status == 503 and body["status"] == "degraded" and body["checks"]["redis"] == "ok"
    assert body["checks"]["bucket"].startswith("1 of 1 deployed deployments checked have no files "
                                               "in the bucket (first: wipedwipedwipedw)")
    response = SiteServer(ctx).handle("wipedwipedwipedw", "GET", "/", "", {})
    assert response.status_code == 503 and b"missing from the bucket" in response.body
