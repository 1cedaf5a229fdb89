"""Deploying a folder without git (pipeline/uploads.py): the file list, the presigned PUTs to
the real S3 endpoint, and the deployment made from them."""
import base64
import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from chalicelib import keys
from chalicelib.errors import BadRequest, NotFound, TooLarge, Unprocessable
from chalicelib.pipeline import cleanup, deploy, projects, uploads
from chalicelib.storage import packs
from tests.conftest import make_repo, read_entry

SITE = {"index.html": b"<h1>up</h1>", "css/a.css": b"p{}", "bin/run.sh": b"#!/bin/sh\n",
        "copy.html": b"<h1>up</h1>"}


def listing(files: dict[str, bytes], executable: tuple[str, ...] = ()) -> dict:
    return {"files": [{"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                       "mode": 0o100755 if path in executable else 0o100644}
                      for path, data in files.items()]}


def put(item: dict, data: bytes) -> int:
    """What a client does with one `missing` entry: PUT the bytes with exactly its headers."""
    request = urllib.request.Request(item["url"], data=data, method="PUT", headers=item["headers"])
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def send_missing(made: dict, files: dict[str, bytes]) -> None:
    by_hash = {hashlib.sha256(data).hexdigest(): data for data in files.values()}
    for item in made["missing"]:
        assert put(item, by_hash[item["sha256"]]) == 200


def test_missing_lists_each_absent_blob_once_with_a_sigv4_url(ctx):
    stored = hashlib.sha256(b"p{}").hexdigest()
    ctx.store.upload_blobs({stored: b"p{}"})
    made = uploads.create_upload(ctx, listing(SITE), "token-a")
    assert made["files"] == 4 and made["bytes"] == sum(map(len, SITE.values()))
    # index.html and copy.html share a blob; css/a.css is already stored.
    wanted = {hashlib.sha256(SITE[p]).hexdigest() for p in ("index.html", "bin/run.sh")}
    assert sorted(i["sha256"] for i in made["missing"]) == sorted(wanted)
    assert made["missing_bytes"] == len(SITE["index.html"]) + len(SITE["bin/run.sh"])
    item = made["missing"][0]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(item["url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "x-amz-checksum-sha256" in query["X-Amz-SignedHeaders"][0].split(";")
    digest = base64.b64encode(bytes.fromhex(item["sha256"])).decode()
    assert item["headers"]["x-amz-checksum-sha256"] == digest
    # Staged, unless the bucket itself refuses lying bytes (then straight to blobs/).
    where = f"/blobs/{item['sha256']}?" if ctx.store.checks_signed_checksums() else f"/uploads/{made['id']}/"
    assert where in item["url"]
    assert made["expires_at"].endswith("Z") and len(made["expires_at"]) == 20


def test_a_deployed_upload_becomes_a_source_and_the_same_tree_again_needs_nothing(ctx):
    made = uploads.create_upload(ctx, listing(SITE, executable=("bin/run.sh",)), "token-a")
    send_missing(made, SITE)
    created = deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    source = ctx.store.get_json(keys.source_manifest(created["id"]))
    assert set(source["files"]) == set(SITE) and "git" not in source
    assert source["files"]["bin/run.sh"]["mode"] == 0o755
    assert source["files"]["index.html"]["mode"] == 0o644
    assert ctx.store.get_blob(source["files"]["index.html"]["sha256"]) == SITE["index.html"]
    assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []  # promoted, staging removed
    view = deploy.get_deployment(ctx, created["id"])
    assert view["source"] == "upload" and view["repo_url"] is None and view["status"] == "queued"
    again = uploads.create_upload(ctx, listing(SITE), "token-a")
    assert again["missing"] == [] and again["missing_bytes"] == 0


def test_an_unchanged_folder_again_asks_the_bucket_nothing_but_its_source_manifest(counted_ctx,
                                                                                  s3_calls):
    files = {f"page-{i}.html": b"<p>%d</p>" % i for i in range(40)}
    made = uploads.create_upload(counted_ctx, listing(files), "token-a")
    send_missing(made, files)
    deploy.create_deployment(counted_ctx, {"upload_id": made["id"]}, "token-a")
    mark = s3_calls.mark()
    again = uploads.create_upload(counted_ctx, listing(files), "token-a")
    created = deploy.create_deployment(counted_ctx, {"upload_id": again["id"]}, "token-a")
    calls = s3_calls.since(mark)
    # Every blob was seen stored moments ago: Redis remembers it (docs/DECISIONS.md#blob-stamps).
    assert again["missing"] == []
    assert [(c.method, c.key) for c in calls] == [("PUT", keys.source_manifest(created["id"]))]


def test_an_unchanged_folder_with_deploy_options_deploys_in_the_one_request(counted_ctx, s3_calls):
    files = {f"page-{i}.html": b"<p>%d</p>" % i for i in range(40)}
    first = deploy.upload(counted_ctx, {**listing(files), "deploy": {"prebuilt": True}}, "token-a")
    assert "deployment" not in first and len(first["missing"]) == 40   # files to send first
    send_missing(first, files)
    deploy.create_deployment(counted_ctx, {"upload_id": first["id"], "prebuilt": True}, "token-a")
    mark = s3_calls.mark()
    again = deploy.upload(counted_ctx, {**listing(files), "deploy": {"prebuilt": True}}, "token-a")
    made = again["deployment"]
    assert again["missing"] == [] and made["status"] == "queued"
    assert deploy.get_deployment(counted_ctx, made["id"])["source"] == "upload"
    assert json.loads(counted_ctx.records.get(made["id"])["options"])["prebuilt"] is True
    source = counted_ctx.store.get_json(keys.source_manifest(made["id"]))
    assert set(source["files"]) == set(files)
    # The same bucket calls as the two requests made apart: the source manifest, once.
    assert [(c.method, c.key) for c in s3_calls.since(mark)][:1] == \
        [("PUT", keys.source_manifest(made["id"]))]


@pytest.mark.parametrize("options, field", [
    ({"build_command": 5}, "build_command"), ({"upload_id": "x" * 16}, "deploy"),
    ({"repo_url": "https://example.com/r.git"}, "deploy"), ("fast", "deploy"),
    ({"prebuilt": True, "install_command": "npm ci"}, "prebuilt"),
])
def test_bad_deploy_options_are_a_400_before_anything_is_kept(ctx, options, field):
    before = set(ctx.redis.scan_iter("percel:upload:*"))
    with pytest.raises(BadRequest) as refused:
        deploy.upload(ctx, {**listing(SITE), "deploy": options}, "token-a")
    assert refused.value.field == field
    assert set(ctx.redis.scan_iter("percel:upload:*")) == before


def test_a_put_whose_bytes_lie_never_becomes_the_blob(ctx):
    files = {"index.html": b"<h1>honest</h1>"}
    made = uploads.create_upload(ctx, listing(files), "token-a")
    [item] = made["missing"]
    # An endpoint that checks the signed x-amz-checksum-sha256 refuses the PUT (LocalStack, AWS,
    # R2: 400); moto stores it, and then percel's own hash check refuses the deployment.
    status = put(item, b"<script>poison</script>")
    assert status in (200, 400)
    reason = "still missing from the bucket" if status == 400 else "do not hash to the sha256"
    with pytest.raises(Unprocessable, match=reason):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert not ctx.store.exists(keys.blob(item["sha256"]))
    assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []
    assert ctx.redis.llen(keys.QUEUE) == 0
    # The same URL, now with the file's own bytes: the deployment goes ahead.
    assert put(item, files["index.html"]) == 200
    created = deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert ctx.store.get_blob(item["sha256"]) == files["index.html"]
    assert ctx.redis.lrange(keys.QUEUE, 0, -1) == [created["id"].encode()]


def test_urls_name_blobs_only_where_the_bucket_itself_refuses_bytes_that_lie(ctx):
    # Asked of the tests' endpoint itself: does a PUT of other bytes to a signed URL fail?
    files = {"index.html": b"<h1>where does this go</h1>" + os.urandom(8).hex().encode()}
    made = uploads.create_upload(ctx, listing(files), "token-a")
    [item] = made["missing"]
    refused = put(item, b"not these bytes") >= 400
    assert ctx.store.checks_signed_checksums() is refused
    key = urllib.parse.unquote(urllib.parse.urlsplit(item["url"]).path).split("/", 2)[2]
    assert key == (keys.blob(item["sha256"]) if refused else keys.staged_blob(made["id"], item["sha256"]))
    assert put(item, files["index.html"]) == 200
    deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert ctx.store.get_blob(item["sha256"]) == files["index.html"]


def test_blobs_not_sent_yet_are_counted(ctx):
    made = uploads.create_upload(ctx, listing(SITE), "token-a")
    put(made["missing"][0], {hashlib.sha256(d).hexdigest(): d for d in SITE.values()}
        [made["missing"][0]["sha256"]])
    with pytest.raises(Unprocessable, match="2 of the upload's 3 blobs are still missing"):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert ctx.redis.llen(keys.QUEUE) == 0


def test_another_tokens_upload_is_not_found(ctx):
    made = uploads.create_upload(ctx, listing(SITE), "token-a")
    send_missing(made, SITE)
    with pytest.raises(NotFound):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-b")
    with pytest.raises(NotFound):
        deploy.create_deployment(ctx, {"upload_id": "a" * 16}, "token-a")


SHA = "0" * 64


@pytest.mark.parametrize("body, says", [
    ({}, "files"),
    ({"files": []}, "non-empty"),
    ({"files": [{"path": "/etc/passwd", "sha256": SHA, "size": 1}]}, "relative path"),
    ({"files": [{"path": "a/../../x", "sha256": SHA, "size": 1}]}, "relative path"),
    ({"files": [{"path": "", "sha256": SHA, "size": 1}]}, "relative path"),
    ({"files": [{"path": "a\nb", "sha256": SHA, "size": 1}]}, "relative path"),
    ({"files": [{"path": ".git/config", "sha256": SHA, "size": 1}]}, ".git/"),
    ({"files": [{"path": "sub/.GIT/HEAD", "sha256": SHA, "size": 1}]}, ".git/"),
    ({"files": [{"path": "a", "sha256": "A" * 64, "size": 1}]}, "lowercase hex"),
    ({"files": [{"path": "a", "sha256": "abc", "size": 1}]}, "lowercase hex"),
    ({"files": [{"path": "a", "sha256": SHA, "size": -1}]}, "non-negative"),
    ({"files": [{"path": "a", "sha256": SHA, "size": True}]}, "non-negative"),
    ({"files": [{"path": "a", "sha256": SHA, "size": 1, "mode": "755"}]}, "mode"),
    ({"files": [{"path": "a", "sha256": SHA, "size": 1, "owner": "me"}]}, "an object"),
    ({"files": [{"path": "a", "sha256": SHA, "size": 1}, {"path": "./a", "sha256": SHA, "size": 1}]},
     "listed twice"),
    ({"files": [{"path": "a", "sha256": SHA, "size": 1}, {"path": "a/b", "sha256": SHA, "size": 1}]},
     "as a file and as a directory"),
    ({"files": [{"path": "a", "sha256": SHA, "size": 1}, {"path": "b", "sha256": SHA, "size": 2}]},
     "differs"),
])
def test_a_bad_file_list_is_a_400_naming_files(body, says):
    with pytest.raises(BadRequest, match=says) as refused:
        uploads.parse_files(body, max_files=10, max_bytes=100)
    assert refused.value.field == "files"


def test_an_upload_over_the_repository_limits_is_a_413():
    one = {"path": "a", "sha256": SHA, "size": 60}
    with pytest.raises(TooLarge, match="more than 1 files"):
        uploads.parse_files({"files": [one, {**one, "path": "b"}]}, max_files=1, max_bytes=1000)
    with pytest.raises(TooLarge, match="larger than 100 bytes"):
        uploads.parse_files({"files": [one, {**one, "path": "b"}]}, max_files=10, max_bytes=100)


@pytest.mark.parametrize("body, field", [
    ({"upload_id": "a" * 16, "repo_url": "file:///x"}, "repo_url"),
    ({"upload_id": "a" * 16, "ref": "main"}, "ref"),
    ({"upload_id": "not an id"}, "upload_id"),
    ({"upload_id": "a" * 16, "prebuilt": "yes"}, "prebuilt"),
    ({"upload_id": "a" * 16, "prebuilt": True, "build_command": "make"}, "prebuilt"),
    ({"repo_url": "file:///x", "prebuilt": True}, "prebuilt"),
])
def test_a_deploy_body_names_exactly_one_source(ctx, body, field):
    with pytest.raises(BadRequest) as refused:
        deploy.create_deployment(ctx, body, "token-a")
    assert refused.value.field == field


# --- a project's deployment of an upload ------------------------------------------------------

@pytest.fixture
def shop(ctx, tmp_path) -> str:
    make_repo(tmp_path / "repo", {"index.html": "from git"})
    projects.create_project(ctx, {"name": "shop", "repo_url": f"file://{tmp_path / 'repo'}",
                                  "build_command": "make site", "output_dir": "dist"})
    return "shop"


def sent(ctx, files: dict[str, bytes], token: str = "token-a") -> str:
    made = uploads.create_upload(ctx, listing(files), token)
    send_missing(made, files)
    return made["id"]


def test_a_project_deploys_an_upload_as_a_preview_by_default(ctx, shop):
    created = projects.create_project_deployment(ctx, shop, {"upload_id": sent(ctx, SITE)},
                                                 "token-a")
    assert (created["target"], created["branch"]) == ("preview", projects.UPLOAD_BRANCH)
    record = ctx.records.get(created["id"])
    assert record["project"] == shop and record["source"] == "upload"
    options = json.loads(record["options"])
    assert options["build_command"] == "make site" and options["output_dir"] == "dist"


def test_a_prebuilt_production_upload_takes_none_of_the_projects_build_settings(ctx, shop):
    body = {"upload_id": sent(ctx, SITE), "prebuilt": True, "target": "production"}
    created = projects.create_project_deployment(ctx, shop, body, "token-a")
    assert (created["target"], created["branch"]) == ("production", "main")
    options = json.loads(ctx.records.get(created["id"])["options"])
    assert options == {"install_command": None, "build_command": None, "output_dir": None,
                       "node_version": None, "prebuilt": True}


@pytest.mark.parametrize("extra, field", [
    ({"target": "staging"}, "target"),
    ({"target": "production", "branch": "feature"}, "branch"),
    ({"branch": "main"}, "branch"),   # the production branch is production's
    ({"ref": "main"}, "ref"),
    ({"prebuilt": 1}, "prebuilt"),
])
def test_a_project_upload_body_is_checked(ctx, shop, extra, field):
    with pytest.raises(BadRequest) as refused:
        projects.create_project_deployment(ctx, shop, {"upload_id": "a" * 16, **extra}, "token-a")
    assert refused.value.field == field


def test_a_project_cannot_deploy_another_tokens_upload(ctx, shop):
    with pytest.raises(NotFound):
        projects.create_project_deployment(ctx, shop, {"upload_id": sent(ctx, SITE)}, "token-b")


def test_cleanup_removes_staged_blobs_no_deployment_took_once_nothing_can_use_them(ctx):
    made = uploads.create_upload(ctx, listing({"index.html": b"never deployed"}), "token-a")
    send_missing(made, {"index.html": b"never deployed"})
    if ctx.store.checks_signed_checksums():
        # Straight to blobs/ (the bucket checked the bytes): a blob no manifest names, swept
        # like any other once older than the grace period.
        sha256 = made["missing"][0]["sha256"]
        assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []
        assert cleanup.run_cleanup(ctx).swept_blobs == []
        later = time.time() + ctx.settings.gc_grace_seconds + 1
        assert sha256 in cleanup.run_cleanup(ctx, now=later).swept_blobs
        assert not ctx.store.exists(keys.blob(sha256))
        return
    staged = [key for key, _ in ctx.store.list_keys(keys.UPLOADS_PREFIX)]
    assert len(staged) == 1
    soon = time.time() + ctx.settings.upload_seconds
    assert cleanup.run_cleanup(ctx, now=soon).staged_uploads == []
    later = soon + ctx.settings.gc_grace_seconds + 1
    assert cleanup.run_cleanup(ctx, dry_run=True, now=later).staged_uploads == staged
    assert cleanup.run_cleanup(ctx, now=later).staged_uploads == staged
    assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []


def test_an_upload_lives_upload_seconds_then_is_not_found(ctx):
    made = uploads.create_upload(ctx, listing(SITE), "token-a")
    assert 0 < ctx.redis.ttl(keys.upload(made["id"])) <= ctx.settings.upload_seconds
    send_missing(made, SITE)
    ctx.redis.delete(keys.upload(made["id"]))  # what the TTL does at expires_at
    with pytest.raises(NotFound, match="unknown, expired"):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")


# --- packs (docs/DECISIONS.md#packs) ----------------------------------------------------------

def pages(count: int, tag: str) -> dict[str, bytes]:
    """`count` small files with bytes no other test sends (the tests share one Redis)."""
    nonce = os.urandom(8).hex()
    return {f"section-{i % 4}/page-{i}.html": f"<p>{tag} {i} {nonce}</p>".encode() * (i + 1)
            for i in range(count)}


def with_packs(files: dict[str, bytes], executable: tuple[str, ...] = ()) -> dict:
    return {**listing(files, executable), "packs": True}


def send_packs(made: dict, files: dict[str, bytes], lie: bytes | None = None) -> None:
    """What a client does with each of `packs`: PUT its files' bytes one after the other."""
    by_hash = {hashlib.sha256(data).hexdigest(): data for data in files.values()}
    for pack in made["packs"]:
        body = b"".join(by_hash[h] for h in pack["files"])
        assert len(body) == pack["size"]
        if lie is not None:  # the same length, other bytes in the last file
            body = body[:-len(lie)] + lie
        assert put(pack, body) == 200


def test_small_files_go_up_in_one_pack_and_are_read_back_from_it(ctx):
    files = {**pages(60, "packed"), "big.bin": os.urandom(packs.PACK_FILE_BYTES + 1)}
    made = uploads.create_upload(ctx, with_packs(files, executable=("section-0/page-0.html",)),
                                 "token-a")
    big = hashlib.sha256(files["big.bin"]).hexdigest()
    assert [item["sha256"] for item in made["missing"]] == [big]  # a large file goes alone
    [pack] = made["packs"]
    small = [hashlib.sha256(data).hexdigest() for path, data in files.items() if path != "big.bin"]
    assert pack["files"] == small  # in the listed order
    assert made["missing_bytes"] == sum(map(len, files.values()))
    send_missing(made, files)
    send_packs(made, files)
    created = deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    source = ctx.store.get_json(keys.source_manifest(created["id"]))["files"]
    assert "pack" not in source["big.bin"] and source["section-0/page-0.html"]["mode"] == 0o755
    [stored] = {entry["pack"]["sha256"] for path, entry in source.items() if path != "big.bin"}
    assert ctx.store.get_blob(stored) == b"".join(files[path] for path in files if path != "big.bin")
    for path, data in files.items():
        assert read_entry(ctx.store, source[path]) == data
    assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []  # the staged pack is gone
    # Files already in a stored pack are asked for again by no one.
    again = uploads.create_upload(ctx, with_packs(files), "token-a")
    assert (again["missing"], again["packs"], again["missing_bytes"]) == ([], [], 0)
    # Nor by a client that sends no packs.
    assert uploads.create_upload(ctx, listing(files), "token-a")["missing"] == []


def test_a_pack_with_a_lying_file_is_refused_and_stores_nothing(ctx):
    files = pages(5, "lying")
    made = uploads.create_upload(ctx, with_packs(files), "token-a")
    blobs_before = sorted(ctx.store.list_keys(keys.BLOBS_PREFIX))
    send_packs(made, files, lie=b"<script>x</script>")
    with pytest.raises(Unprocessable, match="1 file.s. in the upload's packs do not hash"):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert sorted(ctx.store.list_keys(keys.BLOBS_PREFIX)) == blobs_before
    assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []
    assert ctx.redis.llen(keys.QUEUE) == 0
    assert uploads.create_upload(ctx, with_packs(files), "token-a")["packs"]  # still missing
    # The same URL with the files' own bytes: the deployment goes ahead.
    send_packs(made, files)
    created = deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    source = ctx.store.get_json(keys.source_manifest(created["id"]))["files"]
    assert {path: read_entry(ctx.store, entry) for path, entry in source.items()} == files


def test_a_pack_longer_than_its_files_is_refused_unread(ctx):
    files = pages(3, "long")
    made = uploads.create_upload(ctx, with_packs(files), "token-a")
    [pack] = made["packs"]
    assert put(pack, b"".join(files.values()) + b"and more") == 200
    with pytest.raises(Unprocessable, match="3 file.s. in the upload's packs do not hash"):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert list(ctx.store.list_keys(keys.UPLOADS_PREFIX)) == []


def test_a_pack_not_sent_leaves_its_files_missing(ctx):
    files = pages(4, "unsent")
    made = uploads.create_upload(ctx, with_packs(files), "token-a")
    with pytest.raises(Unprocessable, match="4 of the upload's 4 blobs are still missing"):
        deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    assert ctx.redis.llen(keys.QUEUE) == 0


def test_a_lost_pack_index_only_means_sending_the_files_again(ctx):
    files = pages(4, "forgotten")
    made = uploads.create_upload(ctx, with_packs(files), "token-a")
    send_packs(made, files)
    deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    ctx.redis.delete(*[keys.packed_file(h) for h in made["packs"][0]["files"]])
    again = uploads.create_upload(ctx, with_packs(files), "token-a")
    assert [len(pack["files"]) for pack in again["packs"]] == [4]


def test_a_swept_pack_is_never_used_and_its_files_are_asked_for_again(ctx):
    files = pages(4, "swept")
    made = uploads.create_upload(ctx, with_packs(files), "token-a")
    send_packs(made, files)
    created = deploy.create_deployment(ctx, {"upload_id": made["id"]}, "token-a")
    [pack] = {entry["pack"]["sha256"]
              for entry in ctx.store.get_json(keys.source_manifest(created["id"]))["files"].values()}
    ctx.store.s3.delete_object(Bucket=ctx.settings.bucket, Key=keys.blob(pack))  # not via the Store
    ctx.redis.delete(keys.blob_stamp(pack))  # as a sweep's delete leaves no stamp behind
    again = uploads.create_upload(ctx, with_packs(files), "token-a")
    assert [len(p["files"]) for p in again["packs"]] == [4]


def test_packs_must_be_a_boolean():
    with pytest.raises(BadRequest, match="packs must be true or false") as refused:
        uploads.parse_files({"files": [{"path": "a", "sha256": SHA, "size": 1}], "packs": "yes"},
                            max_files=10, max_bytes=100)
    assert refused.value.field == "packs"


def test_a_packed_folder_takes_two_puts_and_unchanged_again_asks_the_bucket_nothing(counted_ctx,
                                                                                  s3_calls):
    files = pages(200, "counted")
    mark = s3_calls.mark()
    made = uploads.create_upload(counted_ctx, with_packs(files), "token-a")
    send_packs(made, files)
    deploy.create_deployment(counted_ctx, {"upload_id": made["id"]}, "token-a")
    puts = [c.key for c in s3_calls.since(mark) if c.method == "PUT"]
    # The client's pack, the API's checked copy of it, the source manifest (and, once per
    # Store, the checksum probe's two PUTs): not one PUT per file.
    assert len([key for key in puts if "checksum-probe" not in key]) == 3, puts
    mark = s3_calls.mark()
    again = uploads.create_upload(counted_ctx, with_packs(files), "token-a")
    created = deploy.create_deployment(counted_ctx, {"upload_id": again["id"]}, "token-a")
    assert again["missing"] == [] and again["packs"] == []
    # The pack was seen stored moments ago and Redis knows which files it holds.
    calls = s3_calls.since(mark)
    assert [(c.method, c.key) for c in calls] == [("PUT", keys.source_manifest(created["id"]))]
