"""The files of a folder to deploy: walked with the ignore rules, then hashed."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from percel_cli import ignore

# Read in chunks so a large file never sits in memory whole while it is hashed.
CHUNK = 1 << 20
# Hashing threads: hashlib releases the GIL on large buffers, and reads overlap.
HASH_WORKERS = 8
# The two modes sent, as git keeps them: executable or not; nothing else about a file's mode travels.
EXECUTABLE, REGULAR = 0o755, 0o644
# A hash is remembered only for a file last changed long enough before it was hashed that a
# write in the same tick of the file system's clock, which would leave its stamps as they were,
# is ruled out: 2 s where the clock keeps whole seconds (FAT keeps 2 s, ext3 and HFS+ 1 s), 100 ms
# where it keeps nanoseconds (ext4, XFS, btrfs, APFS), moved on each kernel tick of 1 to 10 ms.
# Which one a file has shows in its ctime, which no tool can set.
COARSE_SETTLED_NS = 2_000_000_000
FINE_SETTLED_NS = 100_000_000


class LocalFile(NamedTuple):
    path: str  # relative to the deploy root, `/`-separated
    # Where to read it (a symlink's target inside the root): a str, as os.scandir gives it, since
    # a Path per file cost ~10 ms of an unchanged redeploy of 1,000 files.
    source: str
    size: int
    mode: int
    sha256: str = ""
    stamp: tuple[int, int, int] = (0, 0, 0)  # mtime_ns, ctime_ns, inode: changed by any write

    def manifest_entry(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "mode": self.mode}


class Walk(NamedTuple):
    files: list[LocalFile]
    skipped: list[str]  # what was left out and why, for a warning: symlinks leaving the root


def collect(root: Path) -> Walk:
    """Every file below `root` that would be sent, sorted by path, not yet hashed."""
    root = root.resolve()
    walk = Walk([], [])
    _walk_dir(root, root, "", _read_rules(root, ""), walk)
    walk.files.sort(key=lambda f: f.path)
    return walk


def hashed(files: list[LocalFile], workers: int = HASH_WORKERS,
           cache: HashCache | None = None) -> list[LocalFile]:
    """The files with their sha256; a `cache` gives those unchanged since it last saw them
    without reading a byte."""
    started = time.time_ns()
    digests = [cache.lookup(f) if cache else None for f in files]
    unknown = [i for i, digest in enumerate(digests) if digest is None]
    if unknown:
        # Imported here: an unchanged folder hashes nothing, and the import is ~7 ms of a
        # redeploy that takes a few tenths of a second (docs/DECISIONS.md#cli).
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:
            for i, digest in zip(unknown, pool.map(lambda i: sha256_of(files[i].source), unknown),
                                 strict=True):
                digests[i] = digest
    done = [LocalFile(f.path, f.source, f.size, f.mode, str(d), f.stamp)
            for f, d in zip(files, digests, strict=True)]
    if cache:
        cache.save(done, started)
    return done


class HashCache:
    """The hashes of one folder's files as last computed, each beside the size, times and inode it
    had then, as git's index keeps them (git-update-index(1), "racy git"): a file whose stamps
    are all the same has not been written since. Kept in the user's cache dir; a lost or broken
    cache costs only the hashing it saved."""

    def __init__(self, root: Path, env: Mapping[str, str] = os.environ):
        base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
        name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:32]
        self.path = Path(base) / "percel" / "hashes" / f"{name}.json"
        try:
            self.entries: dict[str, list] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def lookup(self, file: LocalFile) -> str | None:
        entry = self.entries.get(file.path)
        if isinstance(entry, list) and entry[:4] == [file.size, *file.stamp]:
            return str(entry[4])
        return None

    def save(self, files: list[LocalFile], hashed_at: int) -> None:
        """Keep the hashes of `files`, hashed from `hashed_at` (time.time_ns()) on."""
        entries = {f.path: [f.size, *f.stamp, f.sha256] for f in files if _settled(f.stamp, hashed_at)}
        if entries == self.entries:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            temp.write_text(json.dumps(entries, separators=(",", ":")))
            os.replace(temp, self.path)
        except OSError:
            pass  # a read-only home: hash again next time


def _settled(stamp: tuple[int, int, int], hashed_at: int) -> bool:
    mtime, ctime, _ = stamp
    margin = COARSE_SETTLED_NS if ctime % 1_000_000_000 == 0 else FINE_SETTLED_NS
    return max(mtime, ctime) < hashed_at - margin


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk_dir(root: Path, folder: Path, rel: str, rules: list[ignore.Rule], walk: Walk) -> None:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = f"{rel}/{entry.name}" if rel else entry.name
        linked = entry.is_symlink()
        target = _inside(root, Path(entry.path), walk, path) if linked else None
        if linked and target is None:
            continue
        # A DirEntry answers from the directory listing: no stat call for a plain entry.
        is_dir = target.is_dir() if target else entry.is_dir(follow_symlinks=False)
        if ignore.never_sent(entry.name, is_dir) or ignore.is_ignored(rules, path, is_dir):
            continue
        if is_dir:
            # A symlinked folder is not followed: it could loop, and its files are sent from
            # where they really are when that is inside the root.
            if not linked:
                _walk_dir(root, Path(entry.path), path, rules + _read_rules(Path(entry.path), path), walk)
            continue
        info = target.stat() if target else entry.stat(follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            mode = EXECUTABLE if info.st_mode & stat.S_IXUSR else REGULAR
            walk.files.append(LocalFile(path, str(target) if target else entry.path, info.st_size, mode,
                                        stamp=(info.st_mtime_ns, info.st_ctime_ns, info.st_ino)))


def _inside(root: Path, path: Path, walk: Walk, rel: str) -> Path | None:
    """A symlink's target when it stays inside `root`; None (and a note) otherwise."""
    target = path.resolve()
    if target != root and root not in target.parents:
        walk.skipped.append(f"{rel}: a symlink out of the folder")
        return None
    if not target.exists():
        walk.skipped.append(f"{rel}: a broken symlink")
        return None
    return target


def _read_rules(folder: Path, rel: str) -> list[ignore.Rule]:
    rules: list[ignore.Rule] = []
    for name in ignore.IGNORE_FILES:
        candidate = folder / name
        if candidate.is_file() and not candidate.is_symlink():
            rules += ignore.parse(candidate.read_text(errors="replace"), rel)
    return rules

