"""Dependency cache: node_modules as a tarball in the bucket under cache/<key>.

The key hashes what decides the installed tree (lockfile, package manager,
node version, platform), so a repeat build of an unchanged app restores
node_modules and its install step has little left to do.
Archives are untrusted on the way back in: GNU tar unpacks them in a sandbox where only a
scratch folder is writable, and the tree is checked before it is moved into place (or, where
that sandbox cannot run, each member is checked before it is written); a refused archive
leaves nothing behind (chalicelib/storage/archives.py).
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import platform as _platform
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from build_runner.frameworks import BuildPlan
from build_runner.package_managers import LOCKFILES, NPM_CI
from build_runner.sandbox import bwrap
from chalicelib import keys, paths
from chalicelib.paths import tree_bytes
from chalicelib.storage import archives

log = logging.getLogger(__name__)

# Bump when the archive layout changes, so old entries are simply never hit again.
CACHE_FORMAT = "node_modules.tar/v1"
# gzip level 1 against an uncompressed tar, measured for a Vite React app's
# node_modules (see tests/test_depcache.py's module docstring for the figures).
COMPRESS_LEVEL = 0
# With a restored node_modules, `npm ci` would delete it first
# (docs.npmjs.com/cli/commands/npm-ci); `npm install` keeps what matches the lockfile.
NPM_REUSE = "npm install --prefer-offline --no-audit --no-fund"
DEFAULT_MAX_BYTES = 1024 ** 3
_ROOT = "node_modules"


class UnsafeArchive(Exception):
    """A cached archive holds a member that would escape node_modules: `restore` treats it
    as a miss; it is never the user's project that is at fault."""


def current_platform() -> str:
    """OS, CPU and libc: native addons built for glibc do not load on musl, and vice versa."""
    libc, version = _platform.libc_ver()
    return f"{_platform.system().lower()}-{_platform.machine()}-{libc or 'unknown'}{version}"


def _lockfile(project_dir: Path, package_manager: str | None) -> Path | None:
    for name, owner in LOCKFILES:
        path = Path(project_dir) / name
        if owner == package_manager and path.is_file():
            return path
    return None


def cache_key(project_dir: Path, plan: BuildPlan, node_version: str, platform: str, scope: str = "") -> str | None:
    """sha256 of (format, package manager, node version, platform, scope, lockfile); None without a lockfile.

    `scope` keeps tenants apart: a cache is code that the next build runs, so two
    projects that share a lockfile must not share a node_modules written by the
    other's install scripts. Pass the repository URL (or the owner).
    """
    lockfile = _lockfile(project_dir, plan.package_manager)
    if lockfile is None:
        return None
    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, plan.package_manager or "", node_version, platform, scope):
        digest.update(part.encode() + b"\0")
    digest.update(lockfile.read_bytes())
    return digest.hexdigest()


def install_command_for(plan: BuildPlan, cache_restored: bool) -> str | None:
    """The install command to run, given whether node_modules came from the cache."""
    if cache_restored and plan.install_command == NPM_CI:
        return NPM_REUSE
    return plan.install_command


# --- saving --------------------------------------------------------------------------

def _keep_member(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Drop what restore would refuse (links out of node_modules, devices, fifos)."""
    if info.issym() and not paths.link_stays_inside(info.name, info.linkname, _ROOT):
        return None
    if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_node_modules(project_dir: Path, compresslevel: int = COMPRESS_LEVEL) -> bytes:
    """node_modules as a tar (gzip at `compresslevel`, or plain when it is 0)."""
    buffer = io.BytesIO()
    archive = (tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=compresslevel) if compresslevel
               else tarfile.open(fileobj=buffer, mode="w"))
    with archive:
        archive.add(Path(project_dir) / _ROOT, arcname=_ROOT, filter=_keep_member)
    return buffer.getvalue()


def save(store, key: str, project_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bool:
    """Upload node_modules under cache/<key> unless it is already there or too big.

    Call it right after the install step, so the archive holds what the install
    produced and not the build's own leftovers. Returns whether it uploaded.
    """
    modules = Path(project_dir) / _ROOT
    if modules.is_symlink() or not modules.is_dir():
        return False
    if store.exists(keys.build_cache(key)):
        return False
    size = tree_bytes(modules)
    if size > max_bytes:
        log.info("dependency cache skipped: node_modules is %d bytes, over dep_cache_max_bytes=%d", size, max_bytes)
        return False
    store.put_bytes(keys.build_cache(key), pack_node_modules(project_dir))
    return True


# --- restoring -----------------------------------------------------------------------

def _check_member(info: tarfile.TarInfo) -> None:
    name = info.name
    if not paths.within(name, _ROOT):
        raise UnsafeArchive(f"cache archive member {name!r} is outside node_modules")
    if info.issym() and not paths.link_stays_inside(name, info.linkname, _ROOT):
        raise UnsafeArchive(f"cache archive link {name!r} -> {info.linkname!r} points outside node_modules")
    if info.islnk() and not paths.within(info.linkname, _ROOT):
        raise UnsafeArchive(f"cache archive hard link {name!r} -> {info.linkname!r} points outside node_modules")
    if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        raise UnsafeArchive(f"cache archive member {name!r} is a device or fifo")


def unpack_node_modules(data: bytes | BinaryIO, project_dir: Path) -> None:
    """Extract an archive made by pack_node_modules (bytes, or a stream such as the bucket's
    response) into project_dir/node_modules, all or nothing: by GNU tar in a sandbox, the tree
    checked before it is moved into place, or, where that sandbox cannot run, each member
    checked in Python before it is written (archives.extract_contained, extract_stream)."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    if contained_tar_available():
        try:
            archives.extract_contained(stream, Path(project_dir), _ROOT, contained_tar)
        except archives.UnsafeTree as error:
            raise UnsafeArchive(f"cache archive refused: {error}") from None
        return
    archives.extract_stream(stream, Path(project_dir), _ROOT, _check_member)


TAR = "/usr/bin/tar"


def contained_tar(scratch: Path) -> list[str]:
    """GNU tar unpacking standard input into `scratch`, as the builds' sandbox runs a build:
    its own namespaces, no capabilities, no network, the system's programs read-only, and
    `scratch` the one folder it can write (build_runner/sandbox/bwrap.py)."""
    return [bwrap.BWRAP, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *bwrap.system_mounts(), "--dev", "/dev", "--bind", str(scratch), str(scratch),
            "--", TAR, "--extract", "--file=-", f"--directory={scratch}", "--no-same-owner",
            "--no-same-permissions", "--warning=no-timestamp"]


@functools.lru_cache(maxsize=1)
def contained_tar_available() -> bool:
    """Whether contained_tar runs here: bubblewrap and GNU tar present and working."""
    try:
        done = subprocess.run([*contained_tar(Path(tempfile.gettempdir())), "--version"],
                              capture_output=True, text=True, timeout=20, env={})
    except (OSError, subprocess.TimeoutExpired):
        return False
    found = done.returncode == 0 and "GNU tar" in done.stdout
    if not found:
        log.info("dependency caches unpack in Python: bwrap or GNU tar unavailable (%s)",
                 done.stderr.strip()[:200])
    return found


def restore(store, key: str, project_dir: Path, local_dir: Path | None = None) -> bool:
    """Put the cached node_modules in place; False on a miss or a refused archive.

    With `local_dir` (the runner's own disk), a tree stashed there by an earlier
    build is moved in first: a rename costs nothing, while extracting is bound by
    file creation (measured: Next.js app, 23,000 files, 450 MB: `tar -x` 10 s,
    our extraction 9-10 s, `npm ci` from a warm registry 15 s; a Docusaurus site's
    36,000 files: docs/DECISIONS.md#depcache-stream).
    A repository that ships its own node_modules (or a link named so) is left
    alone: extracting through someone else's symlink is how caches escape.
    """
    target = Path(project_dir) / _ROOT
    if target.exists() or target.is_symlink():
        return False
    if local_dir is not None and _take_local(Path(local_dir), key, target):
        return True
    # Unpacked as it downloads, files written by several threads: for a big tree, file
    # creation is most of a restore (docs/DECISIONS.md#depcache-stream).
    with store.open_stream(keys.build_cache(key)) as stream:
        if stream is None:
            return False
        try:
            unpack_node_modules(stream, project_dir)
        except (UnsafeArchive, tarfile.TarError, EOFError, OSError) as error:
            log.warning("dependency cache %s not restored: %s", key, error)
            return False
    return target.is_dir()


# --- the runner's local tier -----------------------------------------------------------

def _take_local(local_dir: Path, key: str, target: Path) -> bool:
    entry = local_dir / key / _ROOT
    try:
        entry.rename(target)  # atomic: of two runners wanting it, one wins, the other reads the bucket
    except OSError:
        return False
    shutil.rmtree(local_dir / key, ignore_errors=True)
    return True


def stash(key: str, project_dir: Path, local_dir: Path, keep: int = 3) -> bool:
    """After the build, move node_modules to the runner's local tier for the next build.

    Same filesystem only (a rename); entries beyond the `keep` newest are deleted.
    The moved tree holds what the build added (e.g. node_modules/.cache), which the
    next build of the same key may reuse; `npm install` then repairs any drift from
    the lockfile.
    """
    source = Path(project_dir) / _ROOT
    if source.is_symlink() or not source.is_dir():
        return False
    local_dir = Path(local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".stash-", dir=local_dir))
    try:
        source.rename(staging / _ROOT)
        shutil.rmtree(local_dir / key, ignore_errors=True)
        staging.rename(local_dir / key)
    except OSError as error:
        log.info("dependency cache %s not stashed locally: %s", key, error)
        shutil.rmtree(staging, ignore_errors=True)
        return False
    _prune(local_dir, keep)
    return True


def _prune(local_dir: Path, keep: int) -> None:
    entries = sorted((p for p in local_dir.iterdir() if not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
