"""End to end: a folder deployed without git, as a CLI does it over HTTP: list the files, PUT the
missing blobs to the presigned URLs (straight to the bucket), deploy the upload, visit the site."""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request

from tests.conftest import Http, make_repo
from tests.test_e2e_builds import live_log
from tests.test_uploads import listing


def upload(http, files: dict[str, bytes]) -> dict:
    """POST /api/uploads, then PUT each missing blob with exactly the headers it names."""
    status, made = http.json("POST", "/api/uploads", listing(files))
    assert status == 201, made
    by_hash = {hashlib.sha256(data).hexdigest(): data for data in files.values()}
    for item in made["missing"]:
        put = urllib.request.Request(item["url"], data=by_hash[item["sha256"]], method="PUT",
                                     headers=item["headers"])
        with urllib.request.urlopen(put, timeout=30) as answer:
            assert answer.status == 200
    return made


def deployed(http, body: dict) -> tuple[str, dict]:
    status, created = http.json("POST", "/api/deployments", body)
    assert status == 202, created
    record = http.wait_for(created["id"], timeout=300)
    assert record["status"] == "deployed", record.get("error")
    return created["id"], record


def test_a_static_folder_is_uploaded_deployed_and_served(http):
    # Bytes no other test of the session's stack (whose bucket it shares) has sent.
    nonce = os.urandom(8).hex().encode()
    files = {"index.html": b"<h1>from a folder</h1>" + nonce, "css/site.css": b"h1{color:red}/*" + nonce + b"*/"}
    made = upload(http, files)
    assert len(made["missing"]) == 2
    deployment_id, record = deployed(http, {"upload_id": made["id"]})
    assert record["source"] == "upload" and record["repo_url"] is None
    assert record["framework"] == "static"
    assert http.site(deployment_id, "/")[2] == files["index.html"]
    assert http.site(deployment_id, "/css/site.css")[2] == files["css/site.css"]
    # The same folder again: nothing to send.
    status, again = http.json("POST", "/api/uploads", listing(files))
    assert status == 201 and again["missing"] == [], again


def test_a_prebuilt_upload_is_published_as_it_is_with_its_redirects(http):
    files = {"index.html": b"<h1>prebuilt</h1>", "_redirects": b"/old /index.html 301\n",
             # Were it built, this would fail: a prebuilt upload runs nothing.
             "package.json": json.dumps({"scripts": {"build": "exit 1"}}).encode()}
    made = upload(http, files)
    deployment_id, record = deployed(http, {"upload_id": made["id"], "prebuilt": True})
    assert record["framework"] == "prebuilt"
    assert "percel: prebuilt: no install or build" in live_log(http, deployment_id)
    assert http.site(deployment_id, "/")[2] == files["index.html"]
    status, headers, _ = http.site(deployment_id, "/old")
    assert status == 301 and headers["Location"].endswith("/index.html")


def test_an_uploaded_project_is_built_in_the_sandbox(http):
    # No package.json: a Node toolchain would come from the npm registry, and this test stays on
    # loopback. The build command runs in the sandbox all the same.
    files = {"index.html": b"<h1>built from an upload</h1>", "build.sh": b"mkdir -p dist\n"}
    made = upload(http, files)
    deployment_id, _ = deployed(http, {"upload_id": made["id"], "output_dir": "dist",
                                       "build_command": "sh build.sh && cp index.html dist/"})
    assert http.site(deployment_id, "/")[2] == files["index.html"]
    assert http.site(deployment_id, "/build.sh")[0] == 404  # the output is dist/ only


def test_a_lying_put_is_refused_and_another_tokens_upload_is_not_found(http):
    files = {"index.html": b"<h1>the real page</h1>"}
    status, made = http.json("POST", "/api/uploads", listing(files))
    [item] = made["missing"]
    lie = urllib.request.Request(item["url"], data=b"<h1>poison</h1>", method="PUT",
                                 headers=item["headers"])
    # moto stores it and percel's hash check refuses the deployment; LocalStack, AWS and R2
    # refuse the PUT itself (the signed x-amz-checksum-sha256), so the blob is still missing.
    reason = "do not hash to the sha256"
    try:
        urllib.request.urlopen(lie, timeout=30).close()
    except urllib.error.HTTPError as refused:
        assert refused.code == 400
        reason = "still missing from the bucket"
    status, answer = http.json("POST", "/api/deployments", {"upload_id": made["id"]})
    assert status == 422 and reason in answer["error"]["message"], answer

    # A deploy token's upload: deployable by that token only.
    status, made = http.json("POST", "/api/tokens", {"name": "uploader", "role": "deploy"})
    assert status == 201, made
    uploader = Http(http.base, http.stack, token=made["token"])
    mine = upload(uploader, files)
    status, answer = http.json("POST", "/api/deployments", {"upload_id": mine["id"]})
    assert status == 404, answer
    deployment_id, _ = deployed(uploader, {"upload_id": mine["id"]})
    assert http.site(deployment_id, "/")[2] == files["index.html"]


def test_a_project_serves_an_uploaded_production_deployment_at_its_address(http, stack, tmp_path):
    make_repo(tmp_path / "repo", {"index.html": "from git"})
    status, made = http.json("POST", "/api/projects", {"name": "folder-site",
                                                       "repo_url": f"file://{tmp_path / 'repo'}"})
    assert status == 201, made
    files = {"index.html": b"<h1>uploaded to production</h1>"}
    body = {"upload_id": upload(http, files)["id"], "prebuilt": True, "target": "production"}
    status, created = http.json("POST", "/api/projects/folder-site/deployments", body)
    assert status == 202 and created["branch"] == "main", created
    assert http.wait_for(created["id"], timeout=300)["status"] == "deployed"
    status, _, page = http.request("GET", "/", host=f"folder-site.localhost:{stack.port}")
    assert (status, page) == (200, files["index.html"])
