"""`make_sandbox`: the backend named by BUILD_SANDBOX, or for `auto` the strongest that works here.

- bwrap: bubblewrap namespaces + cgroup v1 or v2 limits + an allow-list proxy for the
  install step (bwrap.py). The default here and inside the runner image.
- docker / podman: a throwaway container per command (containers.py).
- none: a plain subprocess, for development only; refused unless named explicitly (plain.py).
"""
from __future__ import annotations

import logging

from build_runner.sandbox.base import Sandbox, SandboxUnavailable
from build_runner.sandbox.bwrap import BwrapSandbox, bwrap_problem
from build_runner.sandbox.containers import ContainerSandbox, engine_answers
from build_runner.sandbox.plain import NoneSandbox
from build_runner.sandbox.public_network import public_network_problem
from chalicelib.settings import Settings

NETWORK_MODES = ("public", "registries")


def make_sandbox(settings: Settings, *, log: logging.Logger | None = None) -> Sandbox:
    """The backend named by settings.build_sandbox; "auto" picks the strongest that works here."""
    log = log or logging.getLogger(__name__)
    if settings.build_network not in NETWORK_MODES:
        raise SandboxUnavailable(f"unknown BUILD_NETWORK={settings.build_network!r}: use public or registries")
    choice = settings.build_sandbox.strip().lower()
    if choice == "none":
        log.warning("BUILD_SANDBOX=none: builds run WITHOUT isolation; never use this with untrusted repositories")
        return NoneSandbox(log)
    if choice == "auto":
        return _auto(settings, log)
    if choice == "bwrap":
        problem = bwrap_problem() or _public_problem(settings)
        if problem:
            raise SandboxUnavailable(f"BUILD_SANDBOX=bwrap but bubblewrap does not work here: {problem}")
        return BwrapSandbox(settings, log=log)
    if choice in ("docker", "podman"):
        if not engine_answers(choice):
            raise SandboxUnavailable(f"BUILD_SANDBOX={choice} but `{choice} info` fails: "
                                     f"is {choice} installed and its engine running?")
        return ContainerSandbox(settings, engine=choice, log=log)
    raise SandboxUnavailable(f"unknown BUILD_SANDBOX={settings.build_sandbox!r}: "
                             "use auto, bwrap, docker, podman or none")


def _public_problem(settings: Settings) -> str | None:
    """Why bwrap cannot give builds BUILD_NETWORK=public here; the runner refuses rather than
    silently falling back to a different network."""
    problem = public_network_problem() if settings.build_network == "public" else None
    return f"BUILD_NETWORK=public needs {problem}" if problem else None


def _auto(settings: Settings, log: logging.Logger) -> Sandbox:
    problem = bwrap_problem()
    if problem is None:
        network_problem = _public_problem(settings)
        if network_problem:  # bwrap works: a container would only hide the missing package
            raise SandboxUnavailable(f"{network_problem}; install it or set BUILD_NETWORK=registries")
        return BwrapSandbox(settings, log=log)
    for engine in ("podman", "docker"):
        if engine_answers(engine):
            log.info("bubblewrap unusable (%s); using %s", problem, engine)
            return ContainerSandbox(settings, engine=engine, log=log)
    raise SandboxUnavailable(
        "BUILD_SANDBOX=auto found no sandbox: bubblewrap does not work here "
        f"({problem}) and neither podman nor docker answers. Install bubblewrap (see "
        "build_runner/README.md for the privileges it needs in a container) or set "
        "BUILD_SANDBOX=none to run builds unisolated, on a development machine only.")
