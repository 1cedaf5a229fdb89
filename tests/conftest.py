"""Shared fixtures: real servers on free ports, never the Redis on 6379.

Tiers: unit tests need none of these; functional tests take `redis_url` /
`s3_url` / `ctx`; end-to-end tests take `stack` (the same processes `make run`
starts) and talk HTTP to it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from build_runner.sandbox import SandboxUnavailable, make_sandbox
from build_runner.sandbox.bwrap import bwrap_problem
from chalicelib.context import Context, build_context
from chalicelib.settings import Settings
from chalicelib.state.secrets import new_key
from chalicelib.storage.store import Store
from devstack import localstack, services
from tests.counting_proxy import CountingProxy

# The sandbox the tests' build runners use. "none" must be named (BUILD_SANDBOX=none or
# TEST_BUILD_SANDBOX=none); anything else must work here, or the run stops at once.
TEST_SANDBOX = os.environ.get("TEST_BUILD_SANDBOX") or os.environ.get("BUILD_SANDBOX") or "auto"
# The admin token every test stack and test app accepts (PERCEL_ADMIN_TOKEN), and Http sends.
TEST_ADMIN_TOKEN = "percel-test-admin-token-3f9c2a7e5b1d4c8f"
# Seals the build env of functional tests' deployments (chalicelib/state/secrets.py).
TEST_SECRET_KEY = new_key()
# The S3 endpoint the functional and end-to-end tiers start: moto's server, or LocalStack's S3 with
# S3=localstack (`make test` runs a second pass so: docs/DECISIONS.md#localstack).
TEST_S3 = os.environ.get("S3", "").strip().lower() or "moto"
# How long a runner may take to start (import, sandbox probe) before the stack is refused.
RUNNER_START_SECONDS = 60


# Fixtures that make a test functional (a real local server) or end-to-end (the whole stack).
_FUNCTIONAL = frozenset({"redis_service", "s3_service", "redis_url", "s3_url", "settings", "ctx",
                         "toolchain_dir"})
_END_TO_END = frozenset({"stack", "http", "make_run"})  # make_run: tests/test_localstack.py


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long end-to-end builds (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "needs_bwrap: runs commands in bubblewrap itself")
    config.addinivalue_line("markers", "unit: no server and no build (make test-fast runs these)")
    config.addinivalue_line("markers", "functional: real Redis / S3 / git, no stack")
    config.addinivalue_line("markers", "e2e: the whole stack over HTTP")
    config.addinivalue_line("markers", "localstack: needs LocalStack itself (runs only with S3=localstack)")
    os.environ.update(services.LOCAL_AWS)
    if TEST_S3 not in localstack.EMBEDDED:
        pytest.exit(f"S3 must be one of {', '.join(localstack.EMBEDDED)}, not {TEST_S3!r}",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def sandbox_problem(items) -> str | None:
    """Why the selected tests cannot sandbox builds here, or None.

    Without this, a host lacking bubblewrap or usable cgroups (or root) used to skip the
    sandbox tests silently while the stack's runner exited, so every end-to-end test
    then waited out its deadline.
    """
    if TEST_SANDBOX.strip().lower() == "none":
        return None
    if any(item.get_closest_marker("needs_bwrap") for item in items) and bwrap_problem():
        return f"bubblewrap does not work here: {bwrap_problem()}"
    if any("stack" in getattr(item, "fixturenames", ()) for item in items):
        try:
            make_sandbox(Settings(build_sandbox=TEST_SANDBOX))
        except SandboxUnavailable as exc:
            return str(exc)
    return None


def pytest_collection_modifyitems(session, config, items):
    mark_tiers(items)
    if TEST_S3 != "localstack":
        keep = [item for item in items if not item.get_closest_marker("localstack")]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
    problem = sandbox_problem(items)
    if problem:
        pytest.exit(f"cannot sandbox builds on this host, so the build tests cannot run: {problem}\n"
                    "Set BUILD_SANDBOX=none to run them unsandboxed (development machines only).",
                    returncode=pytest.ExitCode.USAGE_ERROR)
    if TEST_SANDBOX.strip().lower() == "none":
        skip = pytest.mark.skip(reason="BUILD_SANDBOX=none was named: no bubblewrap tests")
        for item in items:
            if item.get_closest_marker("needs_bwrap"):
                item.add_marker(skip)


def mark_tiers(items) -> None:
    """Mark each test with its tier from the fixtures it uses, so `-m unit` needs no bookkeeping."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        tier = "e2e" if used & _END_TO_END else "functional" if used & _FUNCTIONAL else "unit"
        item.add_marker(tier)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def toolchain_dir(tmp_path_factory) -> Path:
    """One toolchain cache (Node.js, npm, pnpm...) for the whole session, the stack's runners
    included: each version is downloaded from the registry once per run."""
    return tmp_path_factory.mktemp("toolchains")


@pytest.fixture(scope="session")
def redis_service(state_dir):
    service = services.start_redis(state_dir)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def s3_service(state_dir):
    service = start_test_s3(state_dir)
    yield service
    service.stop()


def start_test_s3(state: Path) -> services.Service:
    """The S3 endpoint of this run (TEST_S3), its files and log under `state`."""
    return localstack.embedded_s3(TEST_S3)(state)


@pytest.fixture
def redis_url(redis_service) -> str:
    client = redis.Redis.from_url(redis_service.url)
    client.flushdb()
    return redis_service.url


@pytest.fixture
def s3_url(s3_service) -> str:
    return s3_service.url


@pytest.fixture
def s3_calls(s3_service) -> CountingProxy:
    """A counting proxy in front of the S3 endpoint: what reached the endpoint, not what
    the code under test says it did."""
    with CountingProxy(s3_service.url) as proxy:
        yield proxy


_bucket_counter = iter(range(1_000_000))


@pytest.fixture
def settings(redis_url, s3_url, tmp_path, toolchain_dir) -> Settings:
    return Settings(stage="local", redis_url=redis_url, s3_endpoint_url=s3_url,
                    bucket=f"test-{os.getpid()}-{next(_bucket_counter)}",
                    work_dir=str(tmp_path / "work"), toolchain_dir=str(toolchain_dir),
                    site_url_template="http://{id}.localhost:8000/",
                    percel_secret_key=TEST_SECRET_KEY)


@pytest.fixture
def ctx(settings) -> Context:
    return make_ctx(settings)


@pytest.fixture
def counted_ctx(settings, s3_calls) -> Context:
    """`ctx` with every bucket call going through `s3_calls`."""
    return make_ctx(dataclasses.replace(settings, s3_endpoint_url=s3_calls.url))


def make_ctx(settings: Settings) -> Context:
    """The Context the API and the runners build (context.build_context), on the tests' own
    Redis and bucket."""
    made = build_context(settings)
    made.store.ensure_bucket()
    return made


def publish_output(ctx: Context, deployment_id: str, root: Path, vercel: dict | None = None) -> None:
    """What a runner does with a build's output `root`: submit, claim, start, publish, finish.

    `vercel` is the project's vercel.json (the project sits beside the output)."""
    import tempfile

    from build_runner.publish import OutputLimits, publish
    from chalicelib.pipeline import lifecycle
    lifecycle.submit(ctx, {"id": deployment_id, "repo_url": "file:///x"})
    assert lifecycle.claim(ctx, "test-runner", timeout=0) == deployment_id
    attempt = lifecycle.start(ctx, deployment_id, "test-runner")
    with tempfile.TemporaryDirectory(prefix="project-") as project:
        if vercel is not None:
            (Path(project) / "vercel.json").write_text(json.dumps(vercel))
        publish(ctx.store, deployment_id, root, Path(project), spa=False,
                limits=OutputLimits.from_settings(ctx.settings))
    assert lifecycle.finish(ctx, deployment_id, attempt).committed
    lifecycle.release(ctx, deployment_id, "test-runner")


def upload_sources(ctx: Context) -> list[str]:
    """A source worker's part for every waiting git deployment (pipeline/sources.py): clone,
    upload, `uploading -> queued`; the ids it took."""
    from chalicelib.pipeline import sources
    done = []
    while (taken := sources.upload_next(ctx, "test-source-worker", wait=0)) is not None:
        done.append(taken)
    return done


# --- git repositories ----------------------------------------------------------------

def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(root: Path, files: dict[str, str | bytes], branch: str = "main") -> str:
    """A real git repository with one commit of `files`; returns its file:// URL."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    commit_all(root, branch)
    return f"file://{root}"


def commit_all(root: Path, branch: str = "main") -> None:
    if not (root / ".git").exists():
        git("init", "-q", "-b", branch, cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "commit", cwd=root)


# --- the whole stack, over HTTP ---------------------------------------------------------

@contextlib.contextmanager
def counted_s3(state: Path) -> Iterator[CountingProxy]:
    """The tests' S3 endpoint behind a counting proxy: every bucket call a stack makes is seen there."""
    s3 = start_test_s3(state)
    try:
        with CountingProxy(s3.url) as proxy:
            yield proxy
    finally:
        s3.stop()


@pytest.fixture(scope="session")
def stack_s3_calls(tmp_path_factory) -> Iterator[CountingProxy]:
    """The session stack's S3 endpoint: the API, the request handler, the runners and the cleanup."""
    with counted_s3(tmp_path_factory.mktemp("stack-s3")) as proxy:
        yield proxy


@contextlib.contextmanager
def running_stack(state: Path, s3_url: str | None, toolchain_dir: Path, *, runners: int = 1,
                  env: dict[str, str] | None = None, supervise: bool = True,
                  port: int | None = None) -> Iterator[services.Stack]:
    """The processes `make run` starts, on free ports, in the tests' sandbox and toolchain cache;
    refused at once when a runner does not start. Supervised as under `make run` (a service that
    exits is restarted), and every restart is a test failure (`no_unplanned_restarts`) unless
    the test caused it; tests that drive the processes themselves pass supervise=False."""
    running = services.start_stack(state, port or services.free_port(), runners=runners,
                                   s3_url=s3_url, supervise=supervise,
                                   extra_env={"BUILD_SANDBOX": TEST_SANDBOX, "WORK_DIR": str(state / "work"),
                                              "TOOLCHAIN_DIR": str(toolchain_dir),
                                              "PERCEL_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
                                              # One admin token deploys every test's sites: the
                                              # per-token rate limit has tests of its own.
                                              "DEPLOYS_PER_MINUTE": "100000",
                                              # One gunicorn process: the handler's caches and its
                                              # bucket-read counter (X-Percel-Bucket-Reads) are per
                                              # process, and tests count reads across requests.
                                              "WEB_WORKERS": "1",
                                              # The session's toolchain cache is shared and
                                              # filled by the builds that need it; a prefetch per
                                              # runner start would fetch the registry's metadata
                                              # each time (tests/test_toolchain.py tests it).
                                              "TOOLCHAIN_PREFETCH": "0", **(env or {})})
    try:
        wait_for_runners(running)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, stack_s3_calls, toolchain_dir):
    with running_stack(tmp_path_factory.mktemp("stack"), stack_s3_calls.url, toolchain_dir) as running:
        yield running


@pytest.fixture(autouse=True)
def no_unplanned_restarts(request):
    """A service of the test's stack that exits is restarted (as under `make run`), which could
    hide a crash: the test during which one exited fails, naming it, with its log's tail."""
    if "stack" not in request.fixturenames:
        yield
        return
    supervisor = request.getfixturevalue("stack").supervisor
    seen = len(supervisor.restarts) if supervisor else 0
    yield
    planned = {name for mark in request.node.iter_markers("planned_restart") for name in mark.args}
    if supervisor and [r for r in supervisor.restarts[seen:] if r.name not in planned]:
        from devstack.supervisor import describe
        stack = request.getfixturevalue("stack")
        lines = [f"{r.name} exited ({describe(r.status)}) and was restarted:\n"
                 f"{log_tail(stack.service(r.name))}" for r in supervisor.restarts[seen:]
                 if r.name not in planned]
        pytest.fail("\n".join(lines), pytrace=False)


def wait_for_runners(stack, timeout: float = RUNNER_START_SECONDS) -> None:
    """Every runner of `stack` is waiting for jobs, or the stack is refused with the reason."""
    deadline = time.monotonic() + timeout
    for runner in stack.runners():
        while "waiting for jobs" not in runner.log_path.read_text(errors="replace"):
            restarted = stack.supervisor and any(r.name == runner.name for r in stack.supervisor.restarts)
            if runner.process.poll() is not None or restarted or time.monotonic() > deadline:
                pytest.fail(f"{runner.name} did not start:\n{log_tail(runner)}", pytrace=False)
            time.sleep(0.2)


def log_tail(service, lines: int = 15) -> str:
    return "\n".join(service.log_path.read_text(errors="replace").splitlines()[-lines:])


def dead_runners(stack) -> list:
    return [r for r in stack.runners() if r.process.poll() is not None]


class Headers(dict):
    """A response's header fields by name in any case: field names are case-insensitive
    (RFC 9110 §5.1), and servers differ (gunicorn keeps the app's case, granian lowercases them
    as HTTP/2 does). Keys are kept lowercase; a repeated field keeps its last value, as dict()
    of an HTTPMessage does."""

    def __init__(self, fields=()):
        super().__init__((name.lower(), value) for name, value in fields)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class Http:
    """A tiny HTTP client for end-to-end tests: any Host, raw bytes, no redirects followed.
    It sends `token` as a Bearer token (the stack's admin token unless told; None sends none)."""

    def __init__(self, base: str, stack=None, token: str | None = TEST_ADMIN_TOKEN):
        self.base = base
        self.stack = stack  # when given, a wait fails at once if no runner is left
        self.token = token

    def request(self, method: str, path: str, body=None, host: str | None = None,
                headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if host:
            request.add_header("Host", host)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=60) as response:
                return response.status, Headers(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, Headers(error.headers.items()), error.read()

    def json(self, method: str, path: str, body=None, headers: dict | None = None):
        status, _, raw = self.request(method, path, body, headers=headers)
        return status, json.loads(raw)

    def deploy(self, body: dict) -> str:
        status, created = self.json("POST", "/api/deployments", body)
        assert status == 202, created
        return created["id"]

    def deploy_repo(self, repo: Path, framework: str, timeout: float = 600) -> tuple[str, dict]:
        """Commit `repo`, deploy it, wait: it must end deployed with the framework detected."""
        commit_all(repo)
        deployment_id = self.deploy({"repo_url": f"file://{repo}"})
        record = self.wait_for(deployment_id, timeout)
        assert record["status"] == "deployed", record.get("error")
        assert record["framework"] == framework
        return deployment_id, record

    def site(self, deployment_id: str, path: str, headers: dict | None = None):
        """GET a path of a deployed site, by Host, through the same server as the API."""
        port = self.base.rsplit(":", 1)[1]
        return self.request("GET", path, host=f"{deployment_id}.localhost:{port}",
                            headers=headers)

    def wait_for(self, deployment_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, record = self.json("GET", f"/api/deployments/{deployment_id}")
            if record["status"] not in ("uploading", "queued", "building"):
                return record
            self.check_runners()
            time.sleep(0.5)
        raise AssertionError(f"deployment {deployment_id} still {record['status']}")

    def check_runners(self) -> None:
        """Fail now, with the reason, when a runner of a supervised stack has exited (it is
        restarted, which must not hide the crash), or every runner of another stack has."""
        supervisor = self.stack.supervisor if self.stack is not None else None
        crashed = [r for r in supervisor.restarts if r.name.startswith("runner-")] if supervisor else []
        if crashed:
            raise AssertionError(f"{crashed[0].name} exited and was restarted:\n"
                                 f"{log_tail(self.stack.service(crashed[0].name))}")
        if self.stack is not None and self.stack.runners() and \
                len(dead_runners(self.stack)) == len(self.stack.runners()):
            runner = self.stack.runners()[-1]
            raise AssertionError(f"every build runner has exited; {runner.name}:\n"
                                 f"{log_tail(runner)}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="session")
def http(stack) -> Http:
    return Http(stack.api_url, stack)


def site_host(stack, deployment_id: str) -> str:
    return f"{deployment_id}.localhost:{stack.port}"


FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The official scaffolders, pinned: an `@latest` template can change between two runs.
SCAFFOLDERS = {"create-vite": "create-vite@9.3.0", "create-docusaurus": "create-docusaurus@3.10.2",
               "sv": "sv@0.17.1"}


# The apps under tests/fixtures/<name>/: the pinned scaffolder's command, which writes ./app.
PINNED_APPS = {
    "vite-react": f"npx {SCAFFOLDERS['create-vite']} app --template react --no-interactive",
    "vite-vue": f"npx {SCAFFOLDERS['create-vite']} app --template vue --no-interactive",
    "docusaurus": f"npx {SCAFFOLDERS['create-docusaurus']} app classic --javascript --skip-install -p npm",
    # `sv create` runs without prompts only when template, types, add-ons and install are all
    # given (`npx sv create --help`, "Non-interactive usage").
    "sveltekit": f"npx {SCAFFOLDERS['sv']} create app --template minimal --types ts "
                 '--add sveltekit-adapter="adapter:static" --no-install',
}


def pinned_app(root: Path, name: str) -> Path:
    """The app `name` of PINNED_APPS as its pinned scaffolder writes it, with our pinned
    package.json and its package-lock.json from tests/fixtures/<name>/ laid over it (see the
    README there): every run installs the same dependency tree."""
    run(PINNED_APPS[name], root, timeout=300)
    app = root / "app"
    for file in ("package.json", "package-lock.json"):
        shutil.copyfile(FIXTURES / name / file, app / file)
    return app


@pytest.fixture(scope="session")
def vite_react_source(tmp_path_factory) -> Path:
    """The official Vite React template (create-vite 9.3.0), pinned with its lockfile."""
    return pinned_app(tmp_path_factory.mktemp("scaffold"), "vite-react")


SCAFFOLD_ENV = {**os.environ, "npm_config_yes": "true", "CI": "1"}


def run(command: str, cwd: Path, timeout: float = 600) -> None:
    result = subprocess.run(command, shell=True, cwd=cwd, env=SCAFFOLD_ENV, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def local_build(repo: Path) -> None:
    """The same commit built by hand, outside percel, to compare bytes with."""
    run("npm install --no-audit --no-fund && npm run build", repo)


def copy_tree(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("node_modules", ".git"))
    return destination


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (its state in /proc/<pid>/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_entry(store: Store, entry: dict) -> bytes:
    """A manifest entry's bytes, from its own blob or (one ranged GET) its pack, as serving
    reads them; MissingBlob when gone."""
    pack = entry.get("pack")
    if isinstance(pack, dict):
        return store.read_slice(pack["sha256"], int(pack["offset"]), int(entry["size"]))
    return store.read_blob(entry["sha256"])
