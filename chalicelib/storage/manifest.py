"""Manifests: a tree of files described as path -> blob hash.

A source manifest records what the upload service cloned; an output manifest
records what a build produced, with the media type and precompressed variants
decided here, once, at upload time.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from chalicelib import paths
from chalicelib.storage import compress, mediatypes

SYMLINK_MODE = 0o120000
# Directories an output scan never enters, at any depth.
NEVER_PUBLISHED = frozenset({".git"})


@dataclass
class Tree:
    """A scanned directory: the manifest's `files` and the blob contents to upload."""
    files: dict[str, dict] = field(default_factory=dict)
    blobs: dict[str, Path | bytes] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        return sum(entry["size"] for entry in self.files.values())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def walk(root: Path, skip_dirs: frozenset[str] = frozenset()) -> Iterator[tuple[str, Path]]:
    """Yield (posix relative path, absolute path) for every entry that is not a directory."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs
                             and not os.path.islink(os.path.join(directory, d)))
        for name in sorted(filenames):
            absolute = Path(directory, name)
            yield absolute.relative_to(root).as_posix(), absolute
        for name in os.listdir(directory):  # symlinks to directories are listed but not followed
            absolute = Path(directory, name)
            if absolute.is_symlink() and absolute.is_dir():
                yield absolute.relative_to(root).as_posix(), absolute


def scan_source(root: Path) -> Tree:
    """Describe a cloned repository: path -> sha256, size, mode. `.git/` is never included.

    Symlinks are kept as links (their target is the blob), as git stores them.
    """
    tree = Tree()
    for relative, absolute in walk(root, skip_dirs=frozenset({".git"})):
        info = absolute.lstat()
        if stat.S_ISLNK(info.st_mode):
            data = os.readlink(absolute).encode()
            digest = sha256_bytes(data)
            tree.blobs[digest] = data
            tree.files[relative] = {"sha256": digest, "size": len(data), "mode": SYMLINK_MODE}
        elif stat.S_ISREG(info.st_mode):
            digest = sha256_file(absolute)
            tree.blobs[digest] = absolute
            tree.files[relative] = {"sha256": digest, "size": info.st_size,
                                    "mode": 0o755 if info.st_mode & 0o111 else 0o644}
    return tree


def scan_output(root: Path) -> Tree:
    """Describe a build's output: path -> sha256, size, type, and br/gzip variants.

    Symlinks are followed only when they resolve inside the output directory. A `.git`
    directory is never part of a site: a static repository's output is its checkout, which
    the build runner makes a git work tree (chalicelib/storage/git_archive.py).
    """
    tree = Tree()
    real_root = root.resolve()
    for relative, absolute in walk(root, skip_dirs=NEVER_PUBLISHED):
        resolved = paths.resolve_inside(absolute, real_root)
        if resolved is None or not resolved.is_file():
            continue
        data = resolved.read_bytes()
        digest = sha256_bytes(data)
        media = mediatypes.content_type(relative)
        entry = {"sha256": digest, "size": len(data), "type": media}
        variants = compress.variants(data, digest) if mediatypes.is_compressible(media) else {}
        if variants:
            encodings: dict[str, dict[str, object]] = {}
            for encoding, packed in variants.items():
                packed_digest = sha256_bytes(packed)
                tree.blobs[packed_digest] = packed
                encodings[encoding] = {"sha256": packed_digest, "size": len(packed)}
            entry["encodings"] = encodings
        tree.blobs[digest] = data
        tree.files[relative] = entry
    return tree


def restore_source(files: dict[str, dict], root: Path) -> dict[Path, str]:
    """Plan the download of a source manifest into root.

    Returns the regular files to fetch (path -> sha256); entries whose path would
    escape root are dropped. Symlinks are created after the download by `link_source`.
    """
    targets = {}
    real_root = root.resolve()
    for relative, entry in files.items():
        destination = paths.resolve_inside(root / relative, real_root)
        if destination is None or entry.get("mode") == SYMLINK_MODE:
            continue
        targets[destination] = entry["sha256"]
    return targets


def apply_modes(files: dict[str, dict], root: Path) -> None:
    for relative, entry in files.items():
        path = root / relative
        if entry.get("mode") == 0o755 and path.is_file() and not path.is_symlink():
            path.chmod(0o755)


def blob_hashes(files: dict[str, dict]) -> set[str]:
    """Every blob a manifest's files reference, variants included."""
    hashes = set()
    for entry in files.values():
        hashes.add(entry["sha256"])
        for variant in entry.get("encodings", {}).values():
            hashes.add(variant["sha256"])
    return hashes


def document_blobs(document: dict) -> set[str]:
    """Every blob a source or output manifest references: its files' blobs (variants
    included) and a source manifest's git archive (`{"git": {"sha256", "size"}}`)."""
    hashes = blob_hashes(document.get("files", {}))
    git = document.get("git")
    if isinstance(git, dict) and isinstance(git.get("sha256"), str):
        hashes.add(git["sha256"])
    return hashes
