"""Every tunable of percel, read from the environment in one place.

Each setting has a default and a one-line reason; the README's settings table
mirrors this file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping


@dataclass(frozen=True)
class Settings:
    # Where we run. Only the "local" stage accepts file:// and loopback repo URLs.
    stage: str = "prod"
    # Sites live at <id>.<root_domain>; any other Host gets the API unless api_host is set.
    root_domain: str = "localhost"
    # The API's host name; set, the API answers only there and other hosts 404. Empty (the
    # local stage): any Host that is not a site gets the API.
    api_host: str = ""
    # How a deployment's URL is shown to users ({id} and {root_domain} are filled in).
    site_url_template: str = "https://{id}.{root_domain}/"
    # S3-compatible bucket holding blobs, manifests and caches.
    bucket: str = "percel"
    # Explicit S3 endpoint (LocalStack, MinIO, moto, R2); unset, AWS_ENDPOINT_URL or LOCALSTACK_HOST
    # name it (`conventional_s3_endpoint`); empty means AWS itself.
    s3_endpoint_url: str = ""
    # The AWS region (Lambda sets AWS_DEFAULT_REGION); also the bucket's unless s3_region is set.
    aws_region: str = "us-east-1"
    # The bucket's region, when it is not the AWS region: "auto" for R2, which signs with it
    # (docs/DECISIONS.md#r2-compatibility); moto refuses "auto", R2 also takes us-east-1.
    s3_region: str = ""
    # Keys for the bucket alone (an R2 API token's); empty: boto3's own chain, e.g. the Lambda's
    # role. Percel's own names: Lambda reserves AWS_ACCESS_KEY_ID for the role's keys.
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    # Redis holding records, the queue, leases and logs.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A clone that takes longer is abandoned (seconds).
    clone_timeout: float = 60.0
    # Clones one API process runs at once; more are refused with 503 + Retry-After: each holds a
    # thread and a git process group for up to CLONE_TIMEOUT (30 trickling clones held 61 threads).
    max_concurrent_clones: int = 4
    # The Lambda function that clones and uploads a git deployment's source, invoked asynchronously
    # after each POST (Chalice names `@app.lambda_function(name="source_upload")` percel-<stage>-
    # source_upload); empty: a local source worker polls the queue (docs/DECISIONS.md#async-upload).
    source_function: str = ""
    # A repository with more files than this is refused (Cloudflare Pages allows 20,000 per site).
    max_repo_files: int = 20_000
    # A repository bigger than this, in bytes, is refused.
    max_repo_bytes: int = 512 * 1024 * 1024
    # How long an upload (POST /api/uploads) can be deployed and its presigned PUT URLs work
    # (seconds): long enough to send MAX_REPO_BYTES over a slow link, short enough that a
    # listed file set is not kept for days (docs/DECISIONS.md#uploads).
    upload_seconds: int = 3600
    # Parallel uploads per tree: S3 PUTs are latency-bound, not CPU-bound.
    upload_workers: int = 16
    # Wall-clock limit for install + build (Vercel allows 45 minutes; we default lower).
    build_timeout: float = 900.0
    # Limit for the install step alone.
    install_timeout: float = 600.0
    # How many log lines the failure message keeps.
    error_log_tail: int = 30
    # How long a claimed job's lease lasts without a heartbeat (seconds).
    job_lease_seconds: int = 60
    # Where the build runner keeps its work directories.
    work_dir: str = "/tmp/percel-builds"
    # A stable name for this runner (its local dependency cache folder); default host-pid.
    runner_name: str = ""
    # Build sandbox backend: auto, bwrap, docker, podman or none.
    build_sandbox: str = "auto"
    # Memory one build may use (cgroup / --memory): a runaway build must not starve the host.
    # yarn 4's install of create-next-app 16.4.3 (pages router) peaks at ~2.5 GiB in the sandbox,
    # its /tmp tmpfs included (bench/README.md, "Memory"): killed at 2048, passes at 2560.
    # AWS Amplify's default build instance has 8 GiB (its BuildComputeType STANDARD_8GB).
    build_memory_mb: int = 4096
    # Processes + threads one build may have: stops fork bombs; real installs/builds use far fewer.
    build_max_pids: int = 1024
    # Largest file a build may write (RLIMIT_FSIZE): one runaway file must not fill the disk.
    build_max_file_mb: int = 1024
    # Files and folders a build's output may hold (Cloudflare Pages serves 20,000 files per site):
    # the scan, the upload and every request handler's cached manifest grow with it.
    max_output_files: int = 25_000
    # Bytes a build's output may hold: scan_output keeps it and its br/gzip variants in memory.
    max_output_bytes: int = 512 * 1024 * 1024
    # Size of the build's private /tmp (a tmpfs, so it also counts against memory).
    build_tmp_mb: int = 512
    # CPUs one container build may use (docker/podman --cpus); 2 = this machine's cores.
    build_cpus: float = 2.0
    # Image for docker/podman builds: Node LTS on Debian slim.
    build_image: str = "node:22-bookworm-slim"
    # What builds reach: "public" (install and build: the internet, never our private networks)
    # or "registries" (install: only BUILD_REGISTRY_HOSTS through the proxy; build: nothing).
    build_network: str = "public"
    # docker/podman network for BUILD_NETWORK=public, one the operator filters like the bwrap
    # sandbox (build_runner/README.md); empty: containers keep --network none and the proxy.
    build_container_network: str = ""
    # Hosts the install step may reach through the allow-list proxy (comma-separated, port 443).
    build_registry_hosts: str = "registry.npmjs.org,registry.yarnpkg.com"
    # Non-public CIDRs builds may still reach, in both network modes (a registry mirror on a private network).
    build_proxy_allow_cidrs: str = ""
    # npm registry the runner downloads Node.js, npm, pnpm, yarn and bun from (integrity-checked).
    toolchain_registry_url: str = "https://registry.npmjs.org"
    # Where the runner keeps unpacked toolchains, shared by its builds; empty = <WORK_DIR>/toolchains.
    toolchain_dir: str = ""
    # Bound of the toolchain cache: least recently used entries no build uses are removed past it.
    # Node's four supported majors with their npm take ~0.85 GB unpacked (187-189 MB per Node.js
    # release, 19 MB per npm, measured); 2 GB also holds a major's next patch release and bun.
    toolchain_max_mb: int = 2048
    # 1: a runner downloads the default toolchain (the current LTS Node.js and its npm) when it
    # starts, as the hosted platforms' build images ship Node preinstalled, so its first build
    # does not wait for it (bench/README.md, "Deploy overhead"); 0: only when a build asks.
    toolchain_prefetch: int = 1
    # node_modules larger than this (bytes) is not cached: the tarball is built in memory.
    dep_cache_max_bytes: int = 1024 ** 3
    # A job whose runner died, or whose bucket did not answer, this many times is failed instead
    # of re-queued again.
    max_build_attempts: int = 3
    # How often each runner looks for abandoned jobs (seconds).
    reap_interval: float = 15.0
    # How often the scheduled cleanup runs (minutes; the local stack runs it on a timer).
    cleanup_rate_minutes: int = 60
    # Retention: the newest N deployed deployments of each repository are kept.
    keep_deployments_per_repo: int = 10
    # Retention: the newest N past production deployments of each project stay as rollback
    # targets (beyond what its addresses serve, which is never removed).
    keep_production_rollbacks: int = 5
    # Seconds a request handler may serve a project address's previous deployment after the
    # address moved (promote, rollback, a new deployment): each handler caches the lookup this long.
    alias_cache_seconds: float = 1.0
    # How long a deployed build's inputs are remembered, so that a deployment with the same inputs
    # reuses its output instead of building (docs/DECISIONS.md#memoized-builds); it also bounds
    # how long a Node.js major ("22") resolved then is taken to mean the same release. 0: never.
    memo_seconds: int = 86400
    # Retention: failed and cancelled deployments are deleted after this many days.
    failed_retention_days: float = 7.0
    # Retention: a deployment's uploaded source is deleted this long after a successful build.
    source_retention_days: float = 3.0
    # Deleted deployments answer 410 for this long; then their record is forgotten.
    deleted_record_days: float = 30.0
    # Unreferenced blobs younger than this are never swept: an upload may still be in flight.
    gc_grace_seconds: int = 7200
    # The first admin API token (docs/DECISIONS.md#tokens); empty: only tokens made through the API
    # work, so none at all until one exists. `make run` generates one when it is unset.
    admin_token: str = field(default="", repr=False)
    # Deployments (and folder uploads) one token may create per minute: each one clones and uploads
    # a repository, or keeps a file list in Redis.
    deploys_per_minute: int = 30
    # Deployments one deploy hook may start per minute: its URL is a bearer secret that may leak
    # into a CI log, and each deployment clones and uploads the repository.
    hook_deploys_per_minute: int = 10
    # Failed authentications one client address may make per minute before it gets 429s.
    auth_failures_per_minute: int = 20
    # Bodies larger than this are redirected to a presigned URL (Lambda's 6 MB base64 limit).
    max_inline_bytes: int = 4 * 1024 * 1024
    # Largest request body the local server reads (413 beyond, unread): the API takes small JSON.
    max_request_body_bytes: int = 1024 * 1024
    # Seconds the local server waits for the next bytes of a request (or an idle keep-alive).
    request_read_timeout: float = 30.0
    # Fernet keys sealing build env values in Redis, comma-separated, the first seals
    # (docs/DECISIONS.md#secrets-at-rest); empty: deployments with env are refused. Not in repr.
    percel_secret_key: str = field(default="", repr=False)
    # How app.py catches paths no API route names: "depths" (a view at each depth up to 32, what
    # `chalice local` and Chalice's test client can route) or "greedy" (one `/{proxy+}` resource,
    # API Gateway only; the deployed stages set it: docs/DECISIONS.md#fixed-depth-routes).
    catch_all_route: str = "depths"

    def __post_init__(self) -> None:
        if self.catch_all_route not in ("depths", "greedy"):
            raise ValueError(f"CATCH_ALL_ROUTE must be depths or greedy, not {self.catch_all_route!r}")
        if self.s3_region == "auto" and not self.s3_endpoint_url:
            raise ValueError("PERCEL_S3_REGION=auto (R2) needs PERCEL_S3_ENDPOINT, R2's account endpoint")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError("PERCEL_S3_ACCESS_KEY_ID and PERCEL_S3_SECRET_ACCESS_KEY go together")

    @property
    def is_local(self) -> bool:
        return self.stage == "local"

    def site_url(self, deployment_id: str) -> str:
        return self.site_url_template.format(id=deployment_id, root_domain=self.root_domain)


# Environment variable -> field name. Standard AWS/Redis names are kept where they exist; where
# two names set one field, the later one here wins.
_ENV_NAMES = {
    "AWS_ENDPOINT_URL_S3": "s3_endpoint_url",
    "AWS_DEFAULT_REGION": "aws_region",
    "PERCEL_BUCKET": "bucket",
    "PERCEL_ADMIN_TOKEN": "admin_token",
    # The bucket's own names, which Lambda lets a function have (it reserves AWS_*).
    "PERCEL_S3_ENDPOINT": "s3_endpoint_url",
    "PERCEL_S3_REGION": "s3_region",
    "PERCEL_S3_ACCESS_KEY_ID": "s3_access_key_id",
    "PERCEL_S3_SECRET_ACCESS_KEY": "s3_secret_access_key",
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment: field `clone_timeout` is read from CLONE_TIMEOUT."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    names = {f.name.upper(): f.name for f in fields(Settings)}
    names.update(_ENV_NAMES)
    types = {f.name: f.type for f in fields(Settings)}
    for env_name, field_name in names.items():
        raw = environ.get(env_name)
        kind = types[field_name]
        if raw is None or (raw == "" and kind != "str"):
            continue
        values[field_name] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
    if not values.get("s3_endpoint_url"):
        values["s3_endpoint_url"] = conventional_s3_endpoint(environ)
    return Settings(**values)


def conventional_s3_endpoint(environ: Mapping[str, str]) -> str:
    """The S3 endpoint that other tools' variables name, for when percel's own is unset; "" if none.

    AWS_ENDPOINT_URL first: the AWS SDKs' endpoint for every service, which a service's own
    variable (AWS_ENDPOINT_URL_S3) overrides (docs.aws.amazon.com/sdkref/latest/guide/
    feature-ss-endpoints.html). Then LOCALSTACK_HOST, `<host>[:<port>]`, parsed by localstack-client
    as LocalStack's own tools do: port 4566 unless given, https when USE_SSL is 1 or true.
    """
    url = environ.get("AWS_ENDPOINT_URL", "").strip()
    host = environ.get("LOCALSTACK_HOST", "").strip()
    if url or not host:
        return url
    try:
        from localstack_client.config import parse_localstack_host
    except ImportError as exc:  # a development tool: requirements-dev.txt, not shipped to Lambda
        raise RuntimeError("LOCALSTACK_HOST is set but localstack-client is not installed "
                           "(requirements-dev.txt)") from exc
    try:
        name, port = parse_localstack_host(host)
    except RuntimeError as exc:
        raise ValueError(f"LOCALSTACK_HOST must be <host>[:<port>], not {host!r}") from exc
    scheme = "https" if environ.get("USE_SSL", "").strip().lower() in ("1", "true") else "http"
    return f"{scheme}://{name}:{port}"
