"""A build's toolchain: the Node.js, npm and package manager its project asks for.

`Toolchains.prepare` picks the versions (node.py for Node, package_managers.version_request
for the package manager), resolves them against the npm registry's metadata and installs
them into the runner's toolchain cache (registry.py). The sandbox mounts each tool's
directory read-only and puts its `bin/` first on PATH, so `node`, `npm`, `npx`, `pnpm`,
`yarn` and `bun` in a build are these. Corepack is not used: docs/DECISIONS.md#toolchains.
"""
from __future__ import annotations

import logging
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from build_runner.errors import ProjectError
from build_runner.package_managers import VersionRequest, version_request
from build_runner.project import Project
from build_runner.toolchain.node import NPM_MAJORS, NodeRequest, choose_node
from build_runner.toolchain.registry import Lease, Registry, Release, ToolDownloadFailed
from build_runner.toolchain.semver import newest as newest_allowed
from build_runner.toolchain.semver import parse_range, parse_version
from chalicelib.settings import Settings

log = logging.getLogger("percel.toolchain")

__all__ = ["Tool", "Toolchain", "Toolchains", "UnknownToolVersion", "ToolDownloadFailed"]

Say = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


class UnknownToolVersion(ProjectError):
    """The project asks for a package manager version the registry does not have, or one
    that cannot run on the build's Node.js."""


@dataclass(frozen=True)
class Tool:
    name: str  # the command users know: node, npm, pnpm, yarn, bun
    version: str
    # Its cache entry, held until Toolchain.release(): the cache is never pruned under a build.
    lease: Lease = field(repr=False, compare=False)
    source: str = ""

    @property
    def path(self) -> Path:
        """Its cache directory; commands in path/bin."""
        return self.lease.path


@dataclass(frozen=True)
class Toolchain:
    tools: tuple[Tool, ...]  # PATH order: the first one's commands win

    def release(self) -> None:
        """The build has ended: its tools may be pruned from the cache again."""
        for tool in self.tools:
            tool.lease.release()

    @property
    def dirs(self) -> tuple[Path, ...]:
        return tuple(tool.path for tool in self.tools)

    @property
    def node_version(self) -> str:
        return next(tool.version for tool in self.tools if tool.name == "node")

    def describe(self) -> str:
        """For the build log: `node 22.23.5 (from .nvmrc), npm 10.9.9, pnpm 10.33.0 (...)`."""
        return ", ".join(f"{t.name} {t.version}" + (f" (from {t.source})" if t.source else "")
                         for t in reversed(self.tools))

    def cache_tag(self) -> str:
        """What the dependency cache key takes from the toolchain: every tool and version."""
        return " ".join(f"{t.name}@{t.version}" for t in reversed(self.tools))


def _arch() -> str:
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            return " avx2" in info.read()
    except OSError:
        return False


class Toolchains:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @classmethod
    def from_settings(cls, settings: Settings) -> Toolchains:
        cache = settings.toolchain_dir or str(Path(settings.work_dir) / "toolchains")
        return cls(Registry(settings.toolchain_registry_url, Path(cache),
                            max_bytes=settings.toolchain_max_mb * 1024 * 1024))

    def prepare(self, project_dir: Path, package_manager: str | None, node_option: str | None,
                search: tuple[Path, ...] = (), say: Say = _quiet) -> Toolchain:
        """Install (or find in the cache) every tool the build needs, each under a lease the
        caller releases when the build has ended (`Toolchain.release`); raises ProjectError for
        a version the project asks for that cannot be had, ToolDownloadFailed for the registry.
        `say` hears about each download (the build log)."""
        project = Project.load(project_dir)
        tools: list[Tool] = []  # PATH order; every lease taken so far is released if one fails
        try:
            node_request = choose_node(project, node_option, search)
            node = self._node(node_request, say)
            tools.append(node)
            npm = version_request(project, "npm")
            if not npm.version:
                npm = VersionRequest("npm", str(NPM_MAJORS[node_request.major]), "")
            tools.insert(0, self._tool("npm", "npm", npm, node, say))
            if package_manager in ("pnpm", "yarn", "bun"):
                tools.insert(0, self._package_manager(project, package_manager, node, say))
        except BaseException:
            Toolchain(tuple(tools)).release()
            raise
        return Toolchain(tuple(tools))

    def prefetch(self) -> str:
        """Install the toolchain of a project that asks for nothing (the default LTS Node.js
        and its npm) ahead of any build, and keep the registry's metadata for it; returns
        what it holds, for the log."""
        with tempfile.TemporaryDirectory(prefix="percel-prefetch-") as empty:
            toolchain = self.prepare(Path(empty), None, None)
        toolchain.release()
        return toolchain.describe()

    def _node(self, request: NodeRequest, say: Say) -> Tool:
        name = f"node-linux-{_arch()}"
        release = self._resolve(name, str(request.major), f"Node.js {request.major}")
        return Tool("node", release.version, self.registry.acquire(release, say=say), request.source)

    def _package_manager(self, project: Project, pm: str, node: Tool, say: Say) -> Tool:
        request = version_request(project, pm)
        if pm == "pnpm":
            return self._tool("pnpm", "pnpm", request, node, say)
        if pm == "yarn":
            classic = request.version.lstrip("=v^~").startswith(("1.", "0.")) or request.version == "1"
            return self._tool("yarn", "yarn" if classic else "@yarnpkg/cli-dist", request, node, say)
        # bun's own package picks the binary in a postinstall script; take the binary package
        # directly (the baseline build for CPUs without AVX2, as bun's installer does).
        package = f"@oven/bun-linux-{_arch()}" + ("-baseline" if _arch() == "x64" and not _has_avx2() else "")
        return self._tool("bun", package, request, node, say, {"bun": "bin/bun", "bunx": "bin/bun"})

    def _tool(self, command: str, package: str, request: VersionRequest, node: Tool, say: Say,
              bins: dict[str, str] | None = None) -> Tool:
        what = f"{command} {request.version!r}" + (f" (from {request.source})" if request.source else "")
        release = self._resolve(package, request.version, what)
        _check_engines(command, release, request, node)
        return Tool(command, release.version, self.registry.acquire(release, bins, request.digest, say),
                    request.source)

    def _resolve(self, package: str, wanted: str, what: str) -> Release:
        """The release of `package` that `wanted` (exact or a range) names."""
        exact = wanted.lstrip("=v") if parse_version(wanted.lstrip("=v")) else None
        cached = self.registry.cached_release(package, exact) if exact else None
        if cached is not None:  # an exact version already here needs no metadata
            return cached
        try:
            allowed = parse_range(wanted)
        except ValueError:
            raise UnknownToolVersion(f"{what} is not a version or range") from None
        try:
            versions = list(self.registry.versions(package))
        except ToolDownloadFailed:
            fallback = newest_allowed(self.registry.cached_versions(package), allowed)
            release = self.registry.cached_release(package, fallback) if fallback else None
            if release is None:
                raise
            log.warning("registry unreachable; using the cached %s@%s", package, fallback)
            return release
        version = newest_allowed(versions, allowed)
        release = self.registry.release(package, version) if version else None
        if release is None:
            raise UnknownToolVersion(f"{what}: the registry has no release of {package} that matches")
        return release


def _check_engines(command: str, release: Release, request: VersionRequest, node: Tool) -> None:
    """Refuse early, in words, a package manager that would refuse this Node.js itself."""
    node_version = parse_version(node.version)
    if not release.engines_node or node_version is None:
        return
    try:
        engines = parse_range(release.engines_node)
    except ValueError:
        return
    if not engines.allows(node_version):
        source = f" (from {request.source})" if request.source else ""
        raise UnknownToolVersion(
            f"{command} {release.version}{source} needs Node.js {release.engines_node}, but this build "
            f"uses Node.js {node.version} (from {node.source}); set .nvmrc or the node_version build option")
