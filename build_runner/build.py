"""One build: download the source, detect the framework, restore the dependency cache,
install and build in the sandbox, and find the output directory.

Problems in the user's project surface as ProjectError (raised by frameworks.py) or
BuildFailed (a step that failed or was cancelled, a source that is gone).
"""
from __future__ import annotations

import functools
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from build_runner import depcache, environment, frameworks
from build_runner.errors import BuildFailed, refusal_note
from build_runner.sandbox import Sandbox
from build_runner.toolchain import Toolchain, Toolchains
from build_runner.toolchain.node import VERSION_FILES
from chalicelib import keys, paths
from chalicelib.context import Context
from chalicelib.storage import git_archive, manifest

Say = Callable[[str], None]


@dataclass
class Job:
    deployment_id: str
    attempt: int
    record: dict[str, str]
    options: dict
    workdir: Path
    cancel: threading.Event
    # The user's build env, opened from the record by the loop (chalicelib/state/secrets.py).
    env: dict[str, str] = field(default_factory=dict)
    # The source manifest, once read (the loop reads it for the build memo); None: not yet.
    source_manifest: dict[str, Any] | None = None


@dataclass(frozen=True)
class Built:
    project: Path
    output: Path
    plan: frameworks.BuildPlan


class Builder:
    def __init__(self, ctx: Context, sandbox: Sandbox, local_cache: Path,
                 toolchains: Toolchains | None = None):
        self.ctx = ctx
        self.sandbox = sandbox
        # Node.js and package managers from the registry, cached on this host (toolchain/).
        self.toolchains = toolchains or Toolchains.from_settings(ctx.settings)
        # node_modules kept on this runner's own disk between builds: a rename, not an
        # extraction (depcache.py). One folder per runner name, never shared.
        self.local_cache = local_cache

    def build(self, job: Job, say: Say) -> Built:
        """Download, install, build; returns the project directory, its output and the plan."""
        source = job.workdir / "src"
        self._download_source(job, source)
        project = frameworks.project_root(source, job.record.get("root_dir"))
        if job.options.get("prebuilt"):
            return self._prebuilt(job, project, say)
        plan = frameworks.detect(project, frameworks.Overrides(
            install_command=job.options.get("install_command"),
            build_command=job.options.get("build_command"),
            output_dir=job.options.get("output_dir")))
        self.ctx.records.set_fields(job.deployment_id, framework=plan.framework)
        say(f"percel: framework {plan.framework}, package manager {plan.package_manager or '-'}")
        # Our downloads are not the build's: its clock starts once the toolchain is ready.
        toolchain = self._toolchain(job, source, project, plan, say)
        try:
            return self._install_and_build(job, source, project, plan, toolchain, say)
        finally:
            if toolchain:
                toolchain.release()  # its tools may be pruned from the cache from now on

    def _prebuilt(self, job: Job, project: Path, say: Say) -> Built:
        """An upload that is its own output: published as it is (docs/DECISIONS.md#uploads)."""
        output = frameworks.prebuilt_output(project, job.options.get("output_dir"))
        self.ctx.records.set_fields(job.deployment_id, framework=frameworks.PREBUILT.framework)
        say("percel: prebuilt: no install or build")
        return Built(project, output, frameworks.PREBUILT)

    def _install_and_build(self, job: Job, source: Path, project: Path, plan: frameworks.BuildPlan,
                           toolchain: Toolchain | None, say: Say) -> Built:
        deadline = time.monotonic() + self.ctx.settings.build_timeout
        (job.workdir / "home").mkdir(parents=True, exist_ok=True)
        # CI=1, PERCEL_* and VERCEL_* (environment.py).
        env = environment.build_env(job.env, self._deployment(job, source), plan.framework)
        cache_key = self._restore_dependencies(job, project, plan, toolchain, say)
        install = depcache.install_command_for(plan, cache_key is not None and
                                               (project / "node_modules").is_dir())
        tools = toolchain.dirs if toolchain else ()
        if install:
            self._step(job, "install", install, project, env, True,
                       min(self.ctx.settings.install_timeout, deadline - time.monotonic()), say, tools)
            self._save_dependencies(cache_key, project, say)
        if plan.build_command:
            self._step(job, "build", plan.build_command, project, env, False,
                       deadline - time.monotonic(), say, tools)
        output = frameworks.find_output(project, plan)
        if cache_key:
            depcache.stash(cache_key, project, self.local_cache)
        return Built(project, output, plan)

    def _toolchain(self, job: Job, source: Path, project: Path, plan: frameworks.BuildPlan,
                   say: Say) -> Toolchain | None:
        """Node.js and the package manager for a Node project (package.json, a version file or
        the node_version option); None for a build with nothing to run or no sign of Node."""
        option = job.options.get("node_version")
        search = _parents_up_to(project, source)
        if not (plan.install_command or plan.build_command) or not (
                option or (project / "package.json").is_file()
                or any((d / name).is_file() for d in (project, *search) for name in VERSION_FILES)):
            return None
        toolchain = self.toolchains.prepare(project, plan.package_manager, option, search, say)
        self.ctx.records.set_fields(job.deployment_id, node_version=toolchain.node_version)
        say(f"percel: toolchain: {toolchain.describe()}")
        return toolchain

    def _restore_dependencies(self, job: Job, project: Path, plan: frameworks.BuildPlan,
                              toolchain: Toolchain | None, say: Say) -> str | None:
        """Put a cached node_modules in place; returns the cache key (None: not cacheable)."""
        if not plan.install_command:
            return None
        versions = toolchain.cache_tag() if toolchain else node_version()
        key = depcache.cache_key(project, plan, versions, depcache.current_platform(),
                                 scope=cache_scope(_origin(job.record), plan, job.env))
        started = time.monotonic()
        if key and depcache.restore(self.ctx.store, key, project, self.local_cache):
            say(f"percel: dependency cache hit ({key[:12]}), restored in {time.monotonic() - started:.1f} s")
        elif key:
            say(f"percel: dependency cache miss ({key[:12]})")
        return key

    def _save_dependencies(self, key: str | None, project: Path, say: Say) -> None:
        if key and depcache.save(self.ctx.store, key, project,
                                 self.ctx.settings.dep_cache_max_bytes):
            say(f"percel: dependency cache saved ({key[:12]})")

    def _step(self, job: Job, name: str, command: str, project: Path, env: dict[str, str],
              network: bool, timeout: float, say: Say, tools: tuple[Path, ...] = ()) -> None:
        say(f"percel: {name}: {command}")
        started = time.monotonic()
        refusals: list[str] = []

        def on_line(line: str) -> None:
            note = refusal_note(line) if not refusals else None
            if note:
                refusals.append(note)  # the first one: what stopped the install, most often
            say(line)
        result = self.sandbox.run(command, workdir=project, home=job.workdir / "home", env=env,
                                  network=network, timeout=max(1.0, timeout), on_line=on_line,
                                  cancel=job.cancel, tools=tools)
        say(f"percel: {name} finished in {time.monotonic() - started:.1f} s "
            f"(exit {result.exit_code})")
        if result.reason or result.exit_code != 0:
            why = result.reason or f"exited with code {result.exit_code}"
            raise BuildFailed("; ".join([f"{name} command `{command}` failed: {why}", *refusals]))

    def _deployment(self, job: Job, source: Path) -> environment.Deployment:
        ref = job.record.get("ref") or _checked_out_branch(source) or ""
        return environment.Deployment(job.deployment_id, self.ctx.settings.site_url(job.deployment_id),
                                      job.record.get("repo_url", ""), job.record.get("commit", ""), ref,
                                      job.record.get("target") or environment.VERCEL_ENV)

    def _download_source(self, job: Job, source: Path) -> None:
        document = job.source_manifest
        if document is None:
            document = self.ctx.store.get_json(keys.source_manifest(job.deployment_id))
        if document is None:
            raise BuildFailed("the uploaded source is missing (it may have been cleaned up)")
        source.mkdir(parents=True, exist_ok=True)
        files = document["files"]
        self.ctx.store.download_files(manifest.restore_source(files, source))
        _restore_links(source, {relative: self.ctx.store.get_blob(entry["sha256"])
                                for relative, entry in files.items()
                                if entry.get("mode") == manifest.SYMLINK_MODE})
        manifest.apply_modes(files, source)
        self._restore_git(document.get("git"), source)

    def _restore_git(self, entry: dict | None, source: Path) -> None:
        """Make the source a git work tree of the deployed commit: unpack the clone's `.git`
        (chalicelib/storage/git_archive.py). A source uploaded before `.git` was kept has no
        entry and builds as a plain tree."""
        if not entry:
            return
        data = self.ctx.store.get_blob(entry["sha256"])
        if data is None:
            raise BuildFailed("the uploaded source is missing (it may have been cleaned up)")
        git_archive.unpack(data, source)


def cache_scope(repo_url: str, plan: frameworks.BuildPlan, env: dict[str, str]) -> str:
    """Which deployments may share a node_modules: the same repository, commands and env.

    The bucket copy is saved after the install step and the local tier stashed after the
    build, so whatever the request's install_command, build_command or env (NODE_OPTIONS,
    npm_config_*) did to node_modules is in them. With the repository URL alone, anyone
    could deploy someone else's public repo with `build_command: "vite build && echo
    '<payload>' >> node_modules/vite/bin/vite.js"` and the repo's next honest build ran it.
    """
    return json.dumps([repo_url, plan.install_command, plan.build_command, env], sort_keys=True)


def _origin(record: dict[str, str]) -> str:
    """Where a deployment's source came from, for cache_scope: its repository, or for an
    upload the token that made it (anyone can upload any files; only that token's own uploads
    may share what its builds left in node_modules)."""
    if record.get("source") == "upload":
        return f"upload:{record.get('uploader', '')}"
    return record.get("repo_url", "")


def _restore_links(root: Path, links: dict[str, bytes | None]) -> None:
    """Recreate the source's symlinks, then drop every one that ends up leading out of the tree.

    Checking each link as it is made is not enough: a later link changes what an earlier one
    means. `a -> d/d/../../etc/passwd` resolves inside while `d` is missing and to the host's
    /etc/passwd once `d -> .` exists; the runner itself (frameworks.detect, outside the
    sandbox) then reads through it. A removal can change other links, hence the loop.
    """
    for relative, target in links.items():
        _restore_link(root, relative, target)
    real_root = root.resolve()
    changed = True
    while changed:
        changed = False
        for relative in links:
            link = root / relative
            if link.is_symlink() and paths.resolve_inside(link, real_root) is None:
                link.unlink()  # leads out, or round a loop: nothing a build needs
                changed = True


def _restore_link(root: Path, relative: str, target: bytes | None) -> None:
    """Recreate a symlink from the source, but only one that stays inside the tree."""
    if target is None:
        return
    link = root / relative
    inside = paths.resolve_inside(link.parent / target.decode(), root.resolve()) is not None
    if inside and not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target.decode())


def _checked_out_branch(source: Path) -> str | None:
    """The branch the restored checkout is on (the default branch when no ref was asked)."""
    try:
        return environment.branch_of((source / git_archive.GIT_DIR / "HEAD").read_text())
    except (OSError, UnicodeDecodeError):
        return None


def _parents_up_to(project: Path, source: Path) -> tuple[Path, ...]:
    """The directories above a root_dir project, up to the repository root."""
    project, source = project.resolve(), source.resolve()
    return tuple(p for p in project.parents if p == source or p.is_relative_to(source))


@functools.lru_cache(maxsize=1)
def node_version() -> str:
    """`node --version` on this runner ("none" without node): the cache key of a build
    without a toolchain (no sign of Node in the project)."""
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False,
                              timeout=10).stdout.strip()
    except OSError:
        return "none"
