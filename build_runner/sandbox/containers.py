"""The docker and podman backends: one throwaway container per command.

Both engines take the same `run` flags, so one class builds the command line for
either. The container gets a read-only root, uid 1000, no capabilities,
no-new-privileges, memory/pids/CPU/file-size limits, a bounded tmpfs /tmp and only
the work directory and home as writable bind mounts.

Network: `--network none` unless BUILD_NETWORK=public names a network in
BUILD_CONTAINER_NETWORK. With none, the install step reaches the same allow-list proxy as
the bwrap backend (network.py) through its UNIX socket mounted into the container. An
engine's own bridge reaches the host's private networks and 169.254.169.254 (cloud
metadata), which a build must never reach, so public mode uses only a network the operator
named, having filtered it as the bwrap sandbox filters its own (build_runner/README.md);
without one, containers keep the registries behaviour and the runner says so at start.

Secrets: build env values are passed as `-e NAME` (value taken from the CLI's own
environment, docs.docker.com/reference/cli/docker/container/run/#env), never in argv,
where any local user could read them from /proc/<pid>/cmdline.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from build_runner.sandbox.base import (
    CA_BUNDLE,
    SANDBOX_GID,
    SANDBOX_PATH,
    SANDBOX_UID,
    Cancel,
    MiB,
    OnLine,
    RunResult,
    base_env,
    exited,
    kill_group,
    serialized,
    spawn,
    stopped,
    supervise,
    tool_path,
)
from build_runner.sandbox.network import (
    FORWARDER,
    FORWARDER_MOUNT,
    SOCKET_DIR,
    AllowListProxy,
    InstallNetwork,
    forwarder_argv,
    proxy_env,
)
from chalicelib.settings import Settings

# The container's exit statuses that say what happened: 128 + SIGKILL (ours, or the OOM
# killer's) and 128 + SIGXFSZ (the fsize ulimit). Any other status is the command's own.
EXIT_KILLED = 128 + signal.SIGKILL
CONTAINER_SIGNALS = frozenset({EXIT_KILLED, 128 + signal.SIGXFSZ})


def engine_answers(engine: str) -> bool:
    """True when `engine` is installed and its daemon/runtime answers `info`."""
    if not shutil.which(engine):
        return False
    try:
        return subprocess.run([engine, "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class ContainerSandbox:
    def __init__(self, settings: Settings, *, engine: str, log: logging.Logger | None = None) -> None:
        self.name = engine
        self._engine = engine
        self._settings = settings
        self._log = log or logging.getLogger(__name__)
        self._network = InstallNetwork(settings)
        # BUILD_NETWORK=public: both steps join the operator's filtered network, if named.
        self._public_network = settings.build_container_network if settings.build_network == "public" else ""
        if settings.build_network == "public" and not self._public_network:
            self._log.warning("BUILD_NETWORK=public needs BUILD_CONTAINER_NETWORK with %s (a network filtered "
                              "as build_runner/README.md describes); builds get the registries network", engine)

    def run(self, command: str, *, workdir: Path, home: Path, env: dict[str, str], network: bool,
            timeout: float, on_line: OnLine, cancel: Cancel | None = None,
            tools: Sequence[Path] = ()) -> RunResult:
        on_line = serialized(on_line)
        container = f"percel-build-{uuid.uuid4().hex[:12]}"
        private = Path(tempfile.mkdtemp(prefix="percel-sandbox-"))
        try:
            give_to_build_user(workdir, home)
            with contextlib.ExitStack() as stack:
                use_proxy = network and not self._public_network
                if use_proxy:
                    stack.enter_context(self._proxy(private, on_line))
                argv = self.argv(command, workdir=workdir, home=home, env=env,
                                 network_dir=private / "net" if use_proxy else None, name=container,
                                 tools=tools)
                proc = spawn(argv, cwd=workdir, env=cli_env(env))

                def stop() -> None:
                    # Killing the CLI does not stop the container: kill it by name.
                    self._engine_quiet("kill", container)
                    kill_group(proc.pid)
                timed_out = supervise(proc, on_line, timeout, cancel, stop)
                oom = self._engine_output("inspect", "--format", "{{.State.OOMKilled}}", container) == "true"
                self._engine_quiet("rm", "--force", container)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        if timed_out:
            return stopped(timeout, cancel)
        # State.OOMKilled: the OOM killer's SIGKILL took the build, whatever status the CLI relayed.
        return exited(EXIT_KILLED if oom else proc.returncode, signals=CONTAINER_SIGNALS,
                      limit=f"out of memory (limit {self._settings.build_memory_mb} MiB)" if oom else None,
                      file_limit_mb=self._settings.build_max_file_mb)

    def argv(self, command: str, *, workdir: Path, home: Path, env: dict[str, str],
             network_dir: Path | None = None, name: str = "percel-build",
             tools: Sequence[Path] = ()) -> list[str]:
        """The engine command line; `env` is the user's build env, whose values stay out of it."""
        s = self._settings
        argv = [self._engine, "run", "--name", name, "--init",
                "--read-only", "--user", f"{SANDBOX_UID}:{SANDBOX_GID}",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--memory", f"{s.build_memory_mb}m", "--memory-swap", f"{s.build_memory_mb}m",
                "--pids-limit", str(s.build_max_pids), "--cpus", f"{s.build_cpus:g}",
                "--ulimit", f"fsize={s.build_max_file_mb * MiB}:{s.build_max_file_mb * MiB}",
                "--network", self._public_network or "none",
                "--tmpfs", f"/tmp:rw,nosuid,nodev,size={s.build_tmp_mb}m",
                "--volume", f"{workdir}:{workdir}:rw", "--volume", f"{home}:{home}:rw",
                "--workdir", str(workdir)]
        if os.path.exists(CA_BUNDLE):  # the host's trust, e.g. a TLS-intercepting egress proxy's CA
            argv += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
        for tool in tools:
            argv += ["--volume", f"{tool}:{tool}:ro"]
        argv += env_flags(env, network=network_dir is not None, home=home, path=tool_path(tools))
        if network_dir is None:
            return argv + [s.build_image, "sh", "-c", command]
        return argv + ["--volume", f"{network_dir}:{SOCKET_DIR}:ro",
                       "--volume", f"{FORWARDER}:{FORWARDER_MOUNT}:ro",
                       s.build_image, *forwarder_argv(command)]

    def _proxy(self, private: Path, on_line: OnLine) -> AllowListProxy:
        proxy = self._network.proxy(private / "net", on_line)
        # uid 1000 in the container is not the socket's owner; connect() needs write permission.
        os.chmod(proxy.path, 0o666)
        return proxy

    def _engine_quiet(self, *args: str) -> None:
        self._engine_output(*args)

    def _engine_output(self, *args: str) -> str:
        try:
            done = subprocess.run([self._engine, *args], capture_output=True, text=True, timeout=30,
                                  env=_engine_env())
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()


ENGINE_ENV = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH",
              "DOCKER_TLS_VERIFY", "CONTAINER_HOST", "CONTAINERS_CONF", "XDG_RUNTIME_DIR")


def _engine_env() -> dict[str, str]:
    """What the engine CLI itself needs from the runner's environment (never passed into the build)."""
    return {key: os.environ[key] for key in ENGINE_ENV if key in os.environ}


def cli_env(user_env: dict[str, str]) -> dict[str, str]:
    """The engine CLI's environment: its own settings, plus the user's values for `--env NAME`.

    A user variable named like an engine setting (DOCKER_HOST, HOME) must not steer the
    CLI itself; env_flags passes those with their value in argv instead.
    """
    return {**{k: v for k, v in user_env.items() if k not in ENGINE_ENV}, **_engine_env()}


def env_flags(user_env: dict[str, str], *, network: bool, home: Path, path: str = SANDBOX_PATH) -> list[str]:
    """--env flags: the sandbox's own variables with values (nothing secret in them), the
    user's by name only so their values never appear in argv (/proc/<pid>/cmdline)."""
    own = base_env(str(home), {}, path=path)
    if network:
        own.update(proxy_env())
    flags: list[str] = []
    for key in sorted(user_env):
        if key in own:
            continue
        flags += ["--env", f"{key}={user_env[key]}" if key in ENGINE_ENV else key]
    for key, value in sorted(own.items()):
        flags += ["--env", f"{key}={value}"]
    return flags


def give_to_build_user(*roots: Path) -> None:
    """The container runs as uid 1000 while the runner (root) created the tree: hand it over."""
    for root in roots:
        for path in [root, *root.rglob("*")]:
            try:
                if path.lstat().st_uid != SANDBOX_UID:
                    os.lchown(path, SANDBOX_UID, SANDBOX_GID)
            except FileNotFoundError:
                pass
