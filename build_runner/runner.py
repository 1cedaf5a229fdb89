"""One build runner: claim a job, build it in the sandbox, publish the output.

A deployment becomes `deployed` only after every blob of its output manifest is
in the bucket and the manifest itself is written; any failure before that ends
in `failed` with the reason and the tail of the log.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import redis

from build_runner import depcache, frameworks
from build_runner.sandbox import Sandbox
from chalicelib import keys, paths
from chalicelib.pipeline import reaper, siteconfig
from chalicelib.state import logs
from chalicelib.storage import manifest
from chalicelib.context import Context
from chalicelib.state.records import IllegalTransition, State

log = logging.getLogger("percel.runner")


class BuildFailed(Exception):
    """A build that ends in `failed`; the message is what the user reads."""


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


class Redactor:
    """Hides the values of the user's build env in every log line (issue 4)."""

    def __init__(self, secrets: dict[str, str]):
        # Short values ("1", "true") would shred the log and are no secret.
        self.values = sorted((v for v in secrets.values() if len(v) >= 4), key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for value in self.values:
            line = line.replace(value, "***")
        return line


class Runner:
    def __init__(self, ctx: Context, sandbox: Sandbox, runner_id: str | None = None):
        self.ctx = ctx
        self.sandbox = sandbox
        self.runner_id = runner_id or f"{socket.gethostname()}-{os.getpid()}"
        self.stop = threading.Event()
        # node_modules kept on this runner's own disk between builds: a rename, not an
        # extraction (depcache.py). One folder per runner name, never shared.
        name = ctx.settings.runner_name or self.runner_id
        self.local_cache = Path(ctx.settings.work_dir) / "depcache" / name

    # --- the loop -------------------------------------------------------------
    def run_forever(self, poll_timeout: float = 2.0) -> None:
        log.info("runner %s waiting for jobs (sandbox: %s)", self.runner_id, self.sandbox.name)
        next_reap = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() >= next_reap:
                    self._reap()
                    next_reap = time.monotonic() + self.ctx.settings.reap_interval
                deployment_id = self.ctx.queue.wait_and_claim(self.runner_id, poll_timeout)
                if deployment_id:
                    self.process(deployment_id)
            except Exception:  # noqa: BLE001 - see below
                # A Redis or bucket outage must not end the runner (a 2 s Redis restart
                # killed every runner in tests/test_faults.py). A job whose bookkeeping
                # failed keeps its lease, which lapses; the reaper hands the job out again.
                log.exception("runner loop failed; retrying in 1 s")
                self.stop.wait(1.0)

    def _reap(self) -> None:
        try:
            reaper.reap(self.ctx)
        except Exception:  # noqa: BLE001 - a reaper hiccup must not stop the runner
            log.exception("reaper failed")

    def process(self, deployment_id: str) -> State | None:
        """Build one claimed job; returns the state it ended in (None: not ours to build)."""
        try:
            _, attempt = self.ctx.records.transition(deployment_id, State.BUILDING,
                                                     only_from={State.QUEUED})
        except IllegalTransition as refused:
            # Cancelled, deleted, or delivered twice: someone else owns its outcome.
            log.info("skipping %s: %s", deployment_id, refused)
            self.ctx.queue.ack(deployment_id, self.runner_id)
            return None
        done, cancel = threading.Event(), threading.Event()
        threading.Thread(target=self._watch, args=(deployment_id, done, cancel),
                         daemon=True).start()
        try:
            return self._build_and_publish(deployment_id, attempt, cancel)
        finally:
            done.set()
            self._archive_log(deployment_id)
            self.ctx.queue.ack(deployment_id, self.runner_id)

    def _watch(self, deployment_id: str, done: threading.Event, cancel: threading.Event) -> None:
        """Renew the lease every third of it; notice a cancel within a second."""
        interval = max(1.0, self.ctx.settings.job_lease_seconds / 3)
        next_beat = time.monotonic() + interval
        while not done.wait(1.0):
            try:
                if self.ctx.queue.cancel_requested(deployment_id):
                    cancel.set()
                if time.monotonic() >= next_beat:
                    self.ctx.queue.heartbeat(deployment_id, self.runner_id)
                    next_beat = time.monotonic() + interval
            except Exception:  # noqa: BLE001 - Redis blips: try again next second
                log.warning("heartbeat for %s failed", deployment_id, exc_info=True)

    # --- one build --------------------------------------------------------------
    def _build_and_publish(self, deployment_id: str, attempt: int,
                           cancel: threading.Event) -> State:
        record = self.ctx.records.get(deployment_id) or {}
        job = Job(deployment_id, attempt, record, json.loads(record.get("options") or "{}"),
                  Path(self.ctx.settings.work_dir) / self.runner_id / deployment_id, cancel)
        tail: deque[str] = deque(maxlen=self.ctx.settings.error_log_tail)
        say = self._logger(job, tail)
        try:
            project, output, plan = self._build(job, say)
            self._publish(job, project, output, plan, say)
        except BuildFailed as failure:
            return self._fail(job, str(failure), tail, say)
        except Exception as error:  # noqa: BLE001 - the record must never stay `building`
            log.exception("build %s crashed", deployment_id)
            return self._fail(job, f"internal error: {type(error).__name__}: {error}", tail, say)
        finally:
            shutil.rmtree(job.workdir, ignore_errors=True)
        return self._finish(job, State.DEPLOYED, say)

    def _logger(self, job: Job, tail: deque):
        redact = Redactor(job.env)

        def say(line: str) -> None:
            line = redact(line)
            tail.append(line[:logs.MAX_LINE_CHARS])  # bounds the record's error field
            try:
                self.ctx.logs.append(job.deployment_id, line)
            except redis.RedisError:  # live logs are best effort: a blip must not fail a build
                log.debug("log line for %s not stored", job.deployment_id, exc_info=True)
        return say

    def _build(self, job: Job, say) -> tuple[Path, Path, frameworks.BuildPlan]:
        """Download, install, build; returns the project directory, its output and the plan."""
        source = job.workdir / "src"
        self._download_source(job.deployment_id, source)
        project = _project_dir(source, job.record.get("root_dir"))
        try:
            plan = frameworks.detect(project, frameworks.Overrides(
                install_command=job.options.get("install_command"),
                build_command=job.options.get("build_command"),
                output_dir=job.options.get("output_dir")))
        except frameworks.UnsupportedProject as unsupported:
            raise BuildFailed(str(unsupported))
        self.ctx.records.set_fields(job.deployment_id, framework=plan.framework)
        say(f"percel: framework {plan.framework}, package manager {plan.package_manager or '-'}")
        deadline = time.monotonic() + self.ctx.settings.build_timeout
        (job.workdir / "home").mkdir(parents=True, exist_ok=True)
        # Vercel sets CI=1 for builds; corepack needs its settings for pnpm/yarn (frameworks.py).
        env = {**job.env, "CI": "1"}
        if plan.install_command and "corepack" in plan.install_command:
            env.update(frameworks.COREPACK_ENV)
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
        try:
            output = frameworks.find_output(project, plan)
        except (frameworks.OutputNotFound, ValueError) as missing:
            raise BuildFailed(str(missing))
        if cache_key:
            depcache.stash(cache_key, project, self.local_cache)
        return project, output, plan

    def _restore_dependencies(self, job: Job, project: Path, plan: frameworks.BuildPlan,
                              say) -> str | None:
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

    def _save_dependencies(self, key: str | None, project: Path, say) -> None:
        if key and depcache.save(self.ctx.store, key, project,
                                 self.ctx.settings.dep_cache_max_bytes):
            say(f"percel: dependency cache saved ({key[:12]})")

    def _step(self, job: Job, name: str, command: str, project: Path, env: dict[str, str],
              network: bool, timeout: float, say) -> None:
        say(f"percel: {name}: {command}")
        started = time.monotonic()
        result = self.sandbox.run(command, workdir=project, home=job.workdir / "home", env=env,
                                  network=network, timeout=max(1.0, timeout), on_line=say,
                                  cancel=job.cancel)
        say(f"percel: {name} finished in {time.monotonic() - started:.1f} s "
            f"(exit {result.exit_code})")
        if result.reason or result.exit_code != 0:
            why = result.reason or f"exited with code {result.exit_code}"
            raise BuildFailed(f"{name} command `{command}` failed: {why}")

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

    def _publish(self, job: Job, project: Path, output: Path, plan: frameworks.BuildPlan,
                 say) -> None:
        _check_output_limits(output, self.ctx.settings.max_output_files,
                             self.ctx.settings.max_output_bytes)
        tree = manifest.scan_output(output)
        try:
            config = siteconfig.build_site_config(output, project, plan.spa)
        except ValueError as invalid:
            raise BuildFailed(str(invalid))
        written = self.ctx.store.upload_blobs(tree.blobs)
        # Written at most once (a conditional PUT): if a job delivered twice races here,
        # the first complete output wins and the other is discarded, never mixed.
        first = self.ctx.store.put_json_once(keys.deployment_manifest(job.deployment_id), {
            "version": manifest.MANIFEST_VERSION, "id": job.deployment_id,
            "files": tree.files, "config": config})
        # Read the manifest back and check every blob it names (issue 5): a sweep that
        # marked before the manifest existed can still delete a blob this upload reused
        # (between its age re-check and its delete); every later sweep sees the manifest.
        published = self.ctx.store.get_json(keys.deployment_manifest(job.deployment_id))
        if published is None:
            raise BuildFailed("the deployment was deleted while it was being published")
        self._ensure_stored(manifest.blob_hashes(published["files"]), tree)
        if not first:
            say("percel: another attempt already published this deployment; keeping that one")
        say(f"percel: uploaded {len(tree.files)} files ({written} new blobs, "
            f"{tree.total_size} bytes) from {output.name}/")

    def _ensure_stored(self, hashes: set[str], tree: manifest.Tree) -> None:
        """Every one of these blobs is in the bucket: upload again what vanished, or fail."""
        missing = self.ctx.store.ensure_blobs(hashes, tree.blobs)
        if missing:
            raise BuildFailed(f"{len(missing)} blobs of the output are missing from the bucket")

    # --- endings ------------------------------------------------------------------
    def _fail(self, job: Job, message: str, tail: deque, say) -> State:
        say(f"percel: build failed: {message}")
        error = Redactor(job.env)(message) + (
            "\n--- last log lines ---\n" + "\n".join(tail) if tail else "")
        return self._finish(job, State.FAILED, say, error=error)

    def _finish(self, job: Job, state: State, say, **fields: str) -> State:
        deployment_id = job.deployment_id
        try:
            self.ctx.records.transition(deployment_id, state, only_from={State.BUILDING},
                                        attempt=job.attempt, **fields)
        except IllegalTransition as refused:
            say(f"percel: result discarded: {refused}")  # cancelled or deleted meanwhile
            return State(refused.current) if refused.current else state
        if state is State.DEPLOYED:
            say(f"percel: deployed at {self.ctx.settings.site_url(deployment_id)}")
        return state

    def _archive_log(self, deployment_id: str) -> None:
        lines = self.ctx.logs.all_lines(deployment_id)
        self.ctx.store.put_bytes(keys.archived_log(deployment_id),
                                 ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8")
        self.ctx.logs.finish(deployment_id)


def _project_dir(source: Path, root_dir: str | None) -> Path:
    try:
        return frameworks.project_root(source, root_dir)
    except ValueError as bad:
        raise BuildFailed(str(bad))


def cache_scope(repo_url: str, plan: frameworks.BuildPlan, env: dict[str, str]) -> str:
    """Which deployments may share a node_modules: the same repository, commands and env.

    The bucket copy is saved after the install step and the local tier stashed after the
    build, so whatever the request's install_command, build_command or env (NODE_OPTIONS,
    npm_config_*) did to node_modules is in them. With the repository URL alone, anyone
    could deploy someone else's public repo with `build_command: "vite build && echo
    '<payload>' >> node_modules/vite/bin/vite.js"` and the repo's next honest build ran it.
    """
    return json.dumps([repo_url, plan.install_command, plan.build_command, env], sort_keys=True)


def _check_output_limits(output: Path, max_files: int, max_bytes: int) -> None:
    """Fail a build whose output is too big before scan_output reads all of it into memory.

    A build can write millions of small files (measured: scan_output takes 4.3 s and 97 MB
    per 100,000) or gigabytes in files under the size limit. The walk is lazy (scandir) and
    stops at the first limit crossed; sizes count what scan_output would read, so links
    out of the output (never uploaded) count nothing.
    """
    real_root = output.resolve()
    entries = total = 0
    folders = [output]
    while folders:
        with os.scandir(folders.pop()) as listing:
            for entry in listing:
                entries += 1
                if entries > max_files:
                    raise BuildFailed(f"the build output has more than {max_files} files and "
                                      "folders (MAX_OUTPUT_FILES)")
                if entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))
                    continue
                total += _output_file_size(Path(entry.path), real_root)
                if total > max_bytes:
                    raise BuildFailed(f"the build output is larger than {max_bytes} bytes "
                                      "(MAX_OUTPUT_BYTES)")


def _output_file_size(path: Path, real_root: Path) -> int:
    if not path.is_symlink():
        return path.lstat().st_size
    resolved = paths.resolve_inside(path, real_root)
    return resolved.stat().st_size if resolved is not None and resolved.is_file() else 0


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


@functools.lru_cache(maxsize=1)
def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        return "none"
