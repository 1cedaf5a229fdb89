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
from dataclasses import dataclass
from pathlib import Path

from build_runner import depcache, environment, frameworks, package_managers
from build_runner.errors import BuildFailed, refusal_note
from build_runner.sandbox import Sandbox
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

    @property
    def env(self) -> dict[str, str]:
        return self.options.get("env") or {}


@dataclass(frozen=True)
class Built:
    project: Path
    output: Path
    plan: frameworks.BuildPlan


class Builder:
    def __init__(self, ctx: Context, sandbox: Sandbox, local_cache: Path):
        self.ctx = ctx
        self.sandbox = sandbox
        # node_modules kept on this runner's own disk between builds: a rename, not an
        # extraction (depcache.py). One folder per runner name, never shared.
        self.local_cache = local_cache

    def build(self, job: Job, say: Say) -> Built:
        """Download, install, build; returns the project directory, its output and the plan."""
        source = job.workdir / "src"
        self._download_source(job.deployment_id, source)
        project = frameworks.project_root(source, job.record.get("root_dir"))
        plan = frameworks.detect(project, frameworks.Overrides(
            install_command=job.options.get("install_command"),
            build_command=job.options.get("build_command"),
            output_dir=job.options.get("output_dir")))
        self.ctx.records.set_fields(job.deployment_id, framework=plan.framework)
        say(f"percel: framework {plan.framework}, package manager {plan.package_manager or '-'}")
        deadline = time.monotonic() + self.ctx.settings.build_timeout
        (job.workdir / "home").mkdir(parents=True, exist_ok=True)
        # CI=1, PERCEL_* and VERCEL_* (environment.py); corepack needs its settings for
        # pnpm/yarn (package_managers.py).
        env = environment.build_env(job.env, self._deployment(job, source), plan.framework)
        if plan.install_command and "corepack" in plan.install_command:
            env.update(package_managers.COREPACK_ENV)
        cache_key = self._restore_dependencies(job, project, plan, say)
        install = depcache.install_command_for(plan, cache_key is not None and
                                               (project / "node_modules").is_dir())
        if install:
            self._step(job, "install", install, project, env, True,
                       min(self.ctx.settings.install_timeout, deadline - time.monotonic()), say)
            self._save_dependencies(cache_key, project, say)
        if plan.build_command:
            self._step(job, "build", plan.build_command, project, env, False,
                       deadline - time.monotonic(), say)
        output = frameworks.find_output(project, plan)
        if cache_key:
            depcache.stash(cache_key, project, self.local_cache)
        return Built(project, output, plan)

    def _restore_dependencies(self, job: Job, project: Path, plan: frameworks.BuildPlan,
                              say: Say) -> str | None:
        """Put a cached node_modules in place; returns the cache key (None: not cacheable)."""
        if not plan.install_command:
            return None
        key = depcache.cache_key(project, plan, node_version(), depcache.current_platform(),
                                 scope=cache_scope(job.record.get("repo_url", ""), plan, job.env))
        if key and depcache.restore(self.ctx.store, key, project, self.local_cache):
            say(f"percel: dependency cache hit ({key[:12]})")
        elif key:
            say(f"percel: dependency cache miss ({key[:12]})")
        return key

    def _save_dependencies(self, key: str | None, project: Path, say: Say) -> None:
        if key and depcache.save(self.ctx.store, key, project,
                                 self.ctx.settings.dep_cache_max_bytes):
            say(f"percel: dependency cache saved ({key[:12]})")

    def _step(self, job: Job, name: str, command: str, project: Path, env: dict[str, str],
              network: bool, timeout: float, say: Say) -> None:
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
                                  cancel=job.cancel)
        say(f"percel: {name} finished in {time.monotonic() - started:.1f} s "
            f"(exit {result.exit_code})")
        if result.reason or result.exit_code != 0:
            why = result.reason or f"exited with code {result.exit_code}"
            raise BuildFailed("; ".join([f"{name} command `{command}` failed: {why}", *refusals]))

    def _deployment(self, job: Job, source: Path) -> environment.Deployment:
        ref = job.record.get("ref") or _checked_out_branch(source) or ""
        return environment.Deployment(job.deployment_id, self.ctx.settings.site_url(job.deployment_id),
                                      job.record.get("repo_url", ""), job.record.get("commit", ""), ref)

    def _download_source(self, deployment_id: str, source: Path) -> None:
        document = self.ctx.store.get_json(keys.source_manifest(deployment_id))
        if document is None:
            raise BuildFailed("the uploaded source is missing (it may have been cleaned up)")
        source.mkdir(parents=True, exist_ok=True)
        files = document["files"]
        self.ctx.store.download_blobs(manifest.restore_source(files, source))
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


@functools.lru_cache(maxsize=1)
def node_version() -> str:
    """`node --version` on this runner ("none" without node): part of the cache key."""
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False,
                              timeout=10).stdout.strip()
    except OSError:
        return "none"
