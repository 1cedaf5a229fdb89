"""The files of a folder to deploy: walked with the ignore rules, then hashed."""
from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from percel_cli import ignore

# Read in chunks so a large file never sits in memory whole while it is hashed.
CHUNK = 1 << 20
# Hashing threads: hashlib releases the GIL on large buffers, and reads overlap.
HASH_WORKERS = 8
# The two modes sent, as git keeps them: executable or not; nothing else about a file's mode travels.
EXECUTABLE, REGULAR = 0o755, 0o644


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative to the deploy root, `/`-separated
    source: Path  # where to read it (a symlink's target inside the root)
    size: int
    mode: int
    sha256: str = ""

    def manifest_entry(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "mode": self.mode}


@dataclass
class Walk:
    files: list[LocalFile]
    skipped: list[str]  # what was left out and why, for a warning: symlinks leaving the root


def collect(root: Path) -> Walk:
    """Every file below `root` that would be sent, sorted by path, not yet hashed."""
    root = root.resolve()
    walk = Walk([], [])
    _walk_dir(root, root, "", _read_rules(root, ""), walk)
    walk.files.sort(key=lambda f: f.path)
    return walk


def hashed(files: list[LocalFile], workers: int = HASH_WORKERS) -> list[LocalFile]:
    with ThreadPoolExecutor(workers) as pool:
        digests = list(pool.map(lambda f: sha256_of(f.source), files))
    return [LocalFile(f.path, f.source, f.size, f.mode, d) for f, d in zip(files, digests, strict=True)]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk_dir(root: Path, folder: Path, rel: str, rules: list[ignore.Rule], walk: Walk) -> None:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = f"{rel}/{entry.name}" if rel else entry.name
        target = _inside(root, Path(entry.path), walk, path)
        if target is None:
            continue
        is_dir = target.is_dir()
        if ignore.never_sent(entry.name, is_dir) or ignore.is_ignored(rules, path, is_dir):
            continue
        if is_dir:
            # A symlinked folder is not followed: it could loop, and its files are sent from
            # where they really are when that is inside the root.
            if not entry.is_symlink():
                _walk_dir(root, Path(entry.path), path, rules + _read_rules(Path(entry.path), path), walk)
        elif target.is_file():
            for_mode = target.stat()
            mode = EXECUTABLE if for_mode.st_mode & stat.S_IXUSR else REGULAR
            walk.files.append(LocalFile(path, target, for_mode.st_size, mode))


def _inside(root: Path, path: Path, walk: Walk, rel: str) -> Path | None:
    """`path`, or a symlink's target when it stays inside `root`; None (and a note) otherwise."""
    if not path.is_symlink():
        return path
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

