"""What `chalice deploy` would ship: the package, its CloudFormation template, its stages' settings
and IAM policies, and the packaged code answering API Gateway events where no git exists.

The deployed stages (`prod`: R2 + Upstash; `vpc`: S3 + ElastiCache in a VPC) are described in
docs/PRODUCTION.md.
"""
import ast
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest

from chalicelib import ids, keys
from chalicelib.settings import _ENV_NAMES, Settings, load_settings
from devstack import services
from tests.conftest import TEST_ADMIN_TOKEN, git, make_repo, publish_output

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHALICE = json.loads((PROJECT / ".chalice" / "config.json").read_text())
DEPLOYED = ("prod", "vpc")
# CloudFormation refuses a template larger than 1 MB (its quotas page: "Template body size in
# an Amazon S3 object").
CLOUDFORMATION_TEMPLATE_LIMIT = 1_000_000
# Lambda's limits on a function's environment: 4 KB in all, and names it keeps for itself
# (the Lambda developer guide, "Defined runtime environment variables").
LAMBDA_ENV_LIMIT = 4096
LAMBDA_RESERVED = ("AWS_", "LAMBDA_", "_HANDLER", "_X_AMZN_TRACE_ID", "TZ")
# Settings only the build runner or the local servers read; a Lambda function never does.
NOT_READ_IN_LAMBDA = {
    "work_dir", "runner_name", "build_sandbox", "build_memory_mb", "build_max_pids", "build_max_file_mb",
    "build_tmp_mb", "build_cpus", "build_image", "build_network", "build_container_network",
    "build_registry_hosts", "build_proxy_allow_cidrs", "toolchain_registry_url", "toolchain_dir",
    "toolchain_max_mb", "toolchain_prefetch", "dep_cache_max_bytes", "build_timeout", "install_timeout",
    "error_log_tail",
    "max_output_files", "max_output_bytes", "reap_interval", "max_request_body_bytes",
    "request_read_timeout",
    # Lambda sets AWS_DEFAULT_REGION itself; the bucket's region is PERCEL_S3_REGION.
    "aws_region",
}
# The IAM action each S3 call of chalicelib/storage/store.py needs (the S3 API reference's
# "Permissions" of each operation). Presigned URLs need what the presigned operation needs.
S3_ACTIONS = {
    "get_object": {"s3:GetObject"}, "head_object": {"s3:GetObject"}, "put_object": {"s3:PutObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"}, "delete_objects": {"s3:DeleteObject"},
    "head_bucket": {"s3:ListBucket"}, "get_paginator": {"s3:ListBucket"},  # list_objects_v2
    "list_objects_v2": {"s3:ListBucket"},
    "generate_presigned_url": {"s3:GetObject", "s3:PutObject"},
    # Only the local stack creates its bucket (devstack/services.py); docs/PRODUCTION.md makes it.
    "create_bucket": set(),
}


def env_name(field_name: str) -> str:
    return {v: k for k, v in _ENV_NAMES.items()}.get(field_name, field_name.upper())


def stage_env(stage: str) -> dict[str, str]:
    return CHALICE["stages"][stage]["environment_variables"]


def policy(stage: str) -> dict:
    return json.loads((PROJECT / ".chalice" / CHALICE["stages"][stage]["iam_policy_file"]).read_text())


@pytest.fixture(scope="session")
def packages(tmp_path_factory) -> dict[str, Path]:
    """`chalice package` of each deployed stage, once a session (Chalice keeps the Lambda wheels
    it downloads in .chalice/deployments, so every run after the first takes seconds)."""
    out = tmp_path_factory.mktemp("packages")
    for stage in DEPLOYED:
        result = subprocess.run([str(BIN / "chalice"), "package", "--stage", stage, str(out / stage)],
                                cwd=PROJECT, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
        assert result.returncode == 0, result.stderr[-2000:]
    return {stage: out / stage for stage in DEPLOYED}


def template(packages, stage: str) -> dict:
    return json.loads((packages[stage] / "sam.json").read_text())


def test_chalice_package_holds_the_app_its_native_wheels_and_the_schedule(packages):
    names = zipfile.ZipFile(packages["prod"] / "deployment.zip").namelist()
    for required in ("app.py", "chalicelib/serving/site.py", "chalicelib/serving/resolve.py", "git/__init__.py",
                     "chalicelib/dashboard/static/index.html", "chalicelib/dashboard/static/app.js",
                     "redis/__init__.py", "boto3/__init__.py"):
        assert required in names, required
    # Native extensions built for Lambda's Linux, not only the pure-Python parts.
    assert any(n.startswith("_brotli.") and n.endswith(".so") for n in names)
    assert any(n.startswith("regex/_regex.") and n.endswith(".so") for n in names)
    assert not any(n.startswith(("tests/", "build_runner/", "devstack/", ".venv/")) for n in names)
    kinds = {resource["Type"] for resource in template(packages, "prod")["Resources"].values()}
    assert "AWS::Serverless::Function" in kinds and "AWS::Serverless::Api" in kinds
    assert any("Cleanup" in name for name in template(packages, "prod")["Resources"])  # the @app.schedule
    # The source function (@app.lambda_function): its own timeout, and the API told its name.
    for stage in DEPLOYED:
        functions = [r["Properties"] for r in template(packages, stage)["Resources"].values()
                     if r["Type"] == "AWS::Serverless::Function"]
        [source] = [f for f in functions if f["Handler"] == "app.source_upload"]
        assert source["Timeout"] == 900
        assert all(f["Environment"]["Variables"]["SOURCE_FUNCTION"] == f"percel-{stage}-source_upload"
                   for f in functions)


def test_the_packaged_templates_are_cfn_lint_clean(packages):
    result = subprocess.run([str(BIN / "cfn-lint"), *(str(packages[s] / "sam.json") for s in DEPLOYED)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout == "", result.stdout[-4000:]


def test_the_deployed_api_catches_every_path_with_one_greedy_resource(packages):
    """API Gateway's `{proxy+}` replaces the 32 fixed-depth catch-alls `chalice local` needs,
    which made the template 986,860 bytes, near CloudFormation's limit."""
    for stage in DEPLOYED:
        sam = packages[stage] / "sam.json"
        api = next(r for r in template(packages, stage)["Resources"].values()
                   if r["Type"] == "AWS::Serverless::Api")
        paths = api["Properties"]["DefinitionBody"]["paths"]
        assert set(paths["/{proxy+}"]) == {"get", "head", "post", "put", "patch", "delete", "options"}
        assert "/{p1}" not in paths and not any("{p2}" in path for path in paths)
        assert "/api/health" in paths and "/dashboard/{version}/{name}" in paths
        assert sam.stat().st_size < CLOUDFORMATION_TEMPLATE_LIMIT / 10


def test_every_deployed_stage_sets_each_setting_its_functions_read_and_lambda_accepts_them():
    read = {env_name(f.name) for f in fields(Settings) if f.name not in NOT_READ_IN_LAMBDA}
    for stage in DEPLOYED:
        env = stage_env(stage)
        # GitPython refuses to import without a git binary unless told to stay quiet, and Lambda's
        # Python runtime has none: the API would not even start.
        assert set(env) == read | {"GIT_PYTHON_REFRESH"}, stage
        assert env["GIT_PYTHON_REFRESH"] == "quiet"
        assert not [name for name in env if name.startswith(LAMBDA_RESERVED)]
        assert sum(len(name) + len(value) for name, value in env.items()) < LAMBDA_ENV_LIMIT
        settings = load_settings(env)  # every value parses as its setting's type
        assert not settings.is_local and settings.catch_all_route == "greedy"
        # No secret in git: the operator fills these in (docs/PRODUCTION.md, step 5).
        assert settings.admin_token == settings.percel_secret_key == settings.s3_secret_access_key == ""


def store_s3_calls() -> set[str]:
    """The boto3 S3 operations chalicelib/storage/store.py calls (`self.s3.<operation>(...)`)."""
    tree = ast.parse((PROJECT / "chalicelib" / "storage" / "store.py").read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "s3"}


def test_each_stage_policy_grants_what_the_store_calls_on_its_bucket_alone():
    """Chalice's policy generation reads app.py only and cannot see the store's calls: the
    policies are written by hand (autogen_policy false) and checked against the store here."""
    calls = store_s3_calls()
    assert calls <= set(S3_ACTIONS), f"an S3 call with no IAM action listed: {calls - set(S3_ACTIONS)}"
    needed = set().union(*(S3_ACTIONS[call] for call in calls))
    for stage in DEPLOYED:
        config, statements = CHALICE["stages"][stage], policy(stage)["Statement"]
        assert config["autogen_policy"] is False
        granted = {action: statement["Resource"] for statement in statements
                   for action in statement["Action"]}
        assert not any(action.endswith("*") for action in granted)
        logs = granted["logs:PutLogEvents"]
        assert all(f"/aws/lambda/percel-{stage}" in arn for arn in logs)
        # The API invokes the source function (pipeline/sources.py), and no other.
        assert granted["lambda:InvokeFunction"] == [f"arn:aws:lambda:*:*:function:percel-{stage}-source_upload"]
        in_vpc = bool(config.get("subnet_ids")) and bool(config.get("security_group_ids"))
        assert ("ec2:CreateNetworkInterface" in granted) == in_vpc, stage
        if stage_env(stage)["PERCEL_S3_ENDPOINT"]:  # R2: its own keys, no IAM permission at all
            assert not [action for action in granted if action.startswith("s3:")]
            continue
        bucket = stage_env(stage)["PERCEL_BUCKET"]
        assert {action for action in granted if action.startswith("s3:")} == needed
        for action in needed:
            resource = granted[action]
            assert resource in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"), (action, resource)


def test_the_wheel_is_the_percel_command_alone_and_installs_with_no_dependency(tmp_path):
    """pyproject.toml builds percel_cli only (not the Chalice app), with no runtime dependency:
    it installs offline into a bare virtualenv and runs there."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
                    "-w", str(tmp_path / "dist"), str(PROJECT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("percel-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("percel-")} == {"percel_cli"}
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist" not in metadata and "Requires-Python: >=3.11" in metadata
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    result = subprocess.run([str(venv / "bin" / "percel"), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("percel ")


# --- the package itself, as Lambda runs it -------------------------------------------------

def api_gateway_event(method: str, path: str, host: str, resource: str | None = None,
                      body: bytes | None = None, headers: dict | None = None) -> dict:
    """A REST API's Lambda proxy event (what Chalice deploys), behind a custom domain (no stage
    in the path). binaryMediaTypes is */*, so API Gateway hands every body over base64-encoded."""
    headers = {"Host": host, "Accept": "*/*", "User-Agent": "test", **(headers or {})}
    resource = resource or ("/" if path == "/" else "/{proxy+}")  # `{proxy+}` matches no `/`
    params = {"proxy": path.lstrip("/")} if resource == "/{proxy+}" else None
    return {
        "resource": resource, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": params, "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": path, "stage": "api",
                           "requestId": "r", "identity": {"sourceIp": "203.0.113.9"}},
        "body": base64.b64encode(body).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


class PackagedLambda:
    """The unpacked deployment.zip in a bare interpreter with the stage's environment."""

    def __init__(self, root: Path, env: dict[str, str], handler: str = "app.app"):
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(PROJECT / "tests" / "lambda_runtime.py"), str(root), handler],
            cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()[-3000:]
        self.started = json.loads(line)
        self.logged: list[str] = []

    def call(self, event: dict):
        """The handler's answer; the lines it logs before it (Lambda sends a function's stdout to
        its log) are kept in `logged`."""
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            assert line, self.process.stderr.read()[-3000:]
            if line.startswith(("{", "[", "null")):
                return json.loads(line)
            self.logged.append(line)

    def invoke(self, event: dict) -> tuple[int, dict, bytes]:
        """An API Gateway event's answer: status, headers (lower-case names), decoded body."""
        answer = self.call(event)
        body = answer["body"].encode()
        headers = {name.lower(): value for name, value in answer["headers"].items()}
        return answer["statusCode"], headers, base64.b64decode(body) if answer["isBase64Encoded"] else body

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


def unpacked_prod(packages, ctx, tmp_path: Path, handler: str = "app.app", **settings: str) -> "PackagedLambda":
    """The prod stage's package, unpacked, run with the stage's settings but this machine's Redis
    and S3 endpoint, Lambda's own variables (the role's keys, which the bucket must not get), and
    a PATH with nothing on it: Lambda's Python runtime has no git."""
    root = tmp_path / "task"
    if not root.exists():
        zipfile.ZipFile(packages["prod"] / "deployment.zip").extractall(root)
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    s = ctx.settings
    env = {**stage_env("prod"),
           "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_LAMBDA_FUNCTION_NAME": "percel-prod",
           "AWS_ACCESS_KEY_ID": "ASIAROLEKEYNOTFORR2", "AWS_SECRET_ACCESS_KEY": "role-secret",
           "AWS_SESSION_TOKEN": "role-session", "LAMBDA_TASK_ROOT": str(root), "PATH": str(empty),
           "LANG": "C.UTF-8",
           # This machine's services in place of R2 (moto refuses R2's "auto") and Upstash.
           "PERCEL_S3_ENDPOINT": s.s3_endpoint_url, "PERCEL_S3_REGION": "us-east-1",
           "PERCEL_S3_ACCESS_KEY_ID": services.LOCAL_AWS["AWS_ACCESS_KEY_ID"],
           "PERCEL_S3_SECRET_ACCESS_KEY": services.LOCAL_AWS["AWS_SECRET_ACCESS_KEY"],
           "PERCEL_BUCKET": s.bucket, "REDIS_URL": s.redis_url, "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
           **settings}
    return PackagedLambda(root, env, handler)


@pytest.fixture
def packaged_prod(packages, ctx, tmp_path):
    function = unpacked_prod(packages, ctx, tmp_path)
    yield function
    function.close()


API = "api.percel.example"


def test_the_packaged_zip_starts_without_git_and_answers_health_sites_and_unknown_paths(packaged_prod, ctx,
                                                                                        tmp_path):
    started = packaged_prod.started
    assert started["git"] is None and started["app_file"].startswith(str(tmp_path / "task"))
    assert not any("site-packages" in entry for entry in started["sys_path"])
    status, _, body = packaged_prod.invoke(api_gateway_event("GET", "/api/health", API, resource="/api/health"))
    assert status == 200 and json.loads(body) == {"status": "ok", "checks": {"redis": "ok", "bucket": "ok"}}

    deployment_id = ids.new_id()
    site = tmp_path / "out"
    deep = "/".join(f"d{i}" for i in range(40))  # deeper than chalice local's 32 routes reach
    for path, text in {"index.html": "<h1>on lambda</h1>", f"{deep}/page.html": "deep"}.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
    publish_output(ctx, deployment_id, site)
    host = f"{deployment_id}.percel-sites.example"
    status, headers, body = packaged_prod.invoke(api_gateway_event("GET", "/", host))
    assert (status, body) == (200, b"<h1>on lambda</h1>") and headers["content-type"].startswith("text/html")
    status, _, body = packaged_prod.invoke(api_gateway_event("GET", f"/{deep}/page", host))
    assert (status, body) == (200, b"deep")
    status, _, body = packaged_prod.invoke(api_gateway_event("GET", "/no/such/file", host))
    assert status == 404

    status, _, body = packaged_prod.invoke(api_gateway_event(
        "GET", "/api/no/such/route", API, headers={"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}))
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_the_packaged_zip_takes_a_folder_deploy_through_presigned_uploads(packaged_prod):
    """A deploy request that needs no git: the folder's file list, a PUT of each missing blob to
    its presigned URL, then the deployment."""
    files = {"index.html": b"<h1>uploaded " + os.urandom(8).hex().encode() + b"</h1>"}
    listing = {"files": [{"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                          "mode": 0o100644} for path, data in files.items()]}
    token = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}", "Content-Type": "application/json"}
    status, _, body = packaged_prod.invoke(api_gateway_event(
        "POST", "/api/uploads", API, resource="/api/uploads", body=json.dumps(listing).encode(), headers=token))
    assert status == 201, body
    made = json.loads(body)
    (missing,) = made["missing"]
    put = urllib.request.Request(missing["url"], data=files["index.html"], method="PUT",
                                 headers=missing["headers"])
    with urllib.request.urlopen(put, timeout=10) as answer:
        assert answer.status == 200
    status, _, body = packaged_prod.invoke(api_gateway_event(
        "POST", "/api/deployments", API, resource="/api/deployments",
        body=json.dumps({"upload_id": made["id"]}).encode(), headers=token))
    assert status == 202, body
    created = json.loads(body)
    assert created["status"] == "queued" and created["url"] == f"https://{created['id']}.percel-sites.example/"


def test_the_packaged_zip_deploys_a_git_repository_without_git(packages, ctx, tmp_path):
    """A git deploy where no git exists: the API resolves the ref and answers 202, then the
    packaged `source_upload` function clones with dulwich (docs/DECISIONS.md#gitless), and the
    deployment is queued with the repository's files and its `.git` in the source manifest.
    The local stage's settings: the one that accepts a file:// repository (no public https
    host is reachable here); no SOURCE_FUNCTION, so the job waits in Redis for the function."""
    marker = os.urandom(8).hex()
    origin = tmp_path / "site"
    url = make_repo(origin, {"index.html": f"<h1>{marker}</h1>", "src/app.js": "1"})
    commit = git("rev-parse", "HEAD", cwd=origin)
    local = {"STAGE": "local", "SOURCE_FUNCTION": ""}
    token = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}", "Content-Type": "application/json"}
    api = unpacked_prod(packages, ctx, tmp_path, **local)
    try:
        assert api.started["git"] is None
        status, _, body = api.invoke(api_gateway_event(
            "POST", "/api/deployments", API, resource="/api/deployments",
            body=json.dumps({"repo_url": url, "ref": "main"}).encode(), headers=token))
        assert status == 202, body
        created = json.loads(body)
        assert created["status"] == "uploading"
        missing = api.invoke(api_gateway_event(
            "POST", "/api/deployments", API, resource="/api/deployments",
            body=json.dumps({"repo_url": url, "ref": "nope"}).encode(), headers=token))
        assert missing[0] == 422 and "ref 'nope' does not exist" in json.loads(missing[2])["error"]["message"]
    finally:
        api.close()
    worker = unpacked_prod(packages, ctx, tmp_path, "app.source_upload", **local)
    try:
        answer = worker.call({"deployment_id": created["id"]})
    finally:
        worker.close()
    record = ctx.records.get(created["id"])
    assert answer == {"deployment_id": created["id"]}, (record, worker.logged)
    assert record["status"] == "queued" and record["commit"] == commit, "".join(worker.logged)[-3000:]
    manifest = json.loads(ctx.store.get_bytes(keys.source_manifest(created["id"])))
    assert set(manifest["files"]) == {"index.html", "src/app.js"} and manifest["git"]["size"] > 0
    html = ctx.store.get_bytes(keys.blob(manifest["files"]["index.html"]["sha256"]))
    assert html == f"<h1>{marker}</h1>".encode()


def test_the_packaged_cleanup_function_runs_on_its_schedule_event_without_git(packages, ctx, tmp_path):
    """The second function of the package: the scheduled cleanup sweeps a blob no manifest names."""
    orphan = b"no manifest names this " + os.urandom(8).hex().encode()
    digest = hashlib.sha256(orphan).hexdigest()
    ctx.store.upload_blobs({digest: orphan})
    time.sleep(1.1)  # the bucket dates objects to the second; the grace below is 0 s
    function = unpacked_prod(packages, ctx, tmp_path, "app.scheduled_cleanup", GC_GRACE_SECONDS="0")
    try:
        report = function.call({"version": "0", "id": "e", "detail-type": "Scheduled Event",
                                "source": "aws.events", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
                                "region": "eu-west-1", "resources": [], "detail": {}})
    finally:
        function.close()
    assert report["dry_run"] is False and digest in " ".join(report["swept_blobs"])
    assert not ctx.store.exists(keys.blob(digest))
