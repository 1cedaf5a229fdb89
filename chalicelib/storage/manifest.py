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
from typing import Callable, Iterator

from chalicelib import paths
from chalicelib.storage import compress, mediatypes

SYMLINK_MODE = 0o120000
# Names a site never publishes, at any depth, a file or a directory with all it holds: what
# carries secrets or a repository's history (README "Files never published"). The hosted
# platforms leave these out too: Vercel's default ignore list (.git, .gitmodules, .gitignore,
# .env.local, .env.*.local, .hg, .svn, CVS, .DS_Store, ...: vercel/vercel packages/client
# getVercelIgnore, https://vercel.com/docs/deployments/vercel-ignore) and wrangler's for
# Cloudflare Pages uploads (**/.git, **/.DS_Store, **/node_modules); npm never packs .npmrc
# (npm-packlist's defaults). We go further for .env*: every variant of a dotenv file, since a
# committed `.env.production` is as secret as `.env.local`.
_NEVER_PUBLISHED_PREFIXES = (".env", ".git")
_NEVER_PUBLISHED_NAMES = frozenset({".npmrc", ".yarnrc", ".yarnrc.yml", ".netrc", ".hg", ".svn",
                                    "cvs", ".ds_store"})


def never_published(name: str) -> bool:
    """Whether a file or directory called `name` is kept out of every site (case-insensitive:
    a case-insensitive disk would answer `.ENV` for `.env`)."""
    name = name.lower()
    return name.startswith(_NEVER_PUBLISHED_PREFIXES) or name in _NEVER_PUBLISHED_NAMES


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


def walk(root: Path, skip: Callable[[str], bool] = lambda name: False
         ) -> Iterator[tuple[str, Path]]:
    """Yield (posix relative path, absolute path) for every entry that is not a directory,
    leaving out the entries (and directories) whose name `skip` refuses."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not skip(d)
                             and not os.path.islink(os.path.join(directory, d)))
        for name in sorted(filenames):
            if skip(name):
                continue
            absolute = Path(directory, name)
            yield absolute.relative_to(root).as_posix(), absolute
        for name in os.listdir(directory):  # symlinks to directories are listed but not followed
            absolute = Path(directory, name)
            if not skip(name) and absolute.is_symlink() and absolute.is_dir():
                yield absolute.relative_to(root).as_posix(), absolute


def scan_source(root: Path) -> Tree:
    """Describe a cloned repository: path -> sha256, size, mode. `.git/` is never included.

    Symlinks are kept as links (their target is the blob), as git stores them.
    """
    tree = Tree()
    for relative, absolute in walk(root, skip=lambda name: name == ".git"):
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

    Symlinks are followed only when they resolve inside the output directory, and never to
    what `never_published` refuses. That rule is applied here, once: a static repository's
    output is its checkout (a git work tree, chalicelib/storage/git_archive.py), with its
    `.gitmodules` and whatever `.env` was committed.
    """
    tree = Tree()
    real_root = root.resolve()
    for relative, absolute in walk(root, skip=never_published):
        resolved = paths.resolve_inside(absolute, real_root)
        if resolved is None or not resolved.is_file() or _reaches_unpublished(resolved, real_root):
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


def _reaches_unpublished(resolved: Path, real_root: Path) -> bool:
    """A link's target inside the output (`public.txt -> .env`) is kept out like the target."""
    return any(never_published(part) for part in resolved.relative_to(real_root).parts)


def restore_source(files: dict[str, dict], root: Path) -> dict[Path, dict]:
    """Plan the download of a source manifest into root.

    Returns the regular files to fetch (path -> its manifest entry, for Store.download_files);
    entries whose path would escape root are dropped. Symlinks are created after the download.
    """
    targets = {}
    real_root = root.resolve()
    for relative, entry in files.items():
        destination = paths.resolve_inside(root / relative, real_root)
        if destination is None or entry.get("mode") == SYMLINK_MODE:
            continue
        targets[destination] = entry
    return targets


def apply_modes(files: dict[str, dict], root: Path) -> None:
    for relative, entry in files.items():
        path = root / relative
        if entry.get("mode") == 0o755 and path.is_file() and not path.is_symlink():
            path.chmod(0o755)


def stored_blob(entry: dict) -> str:
    """The blob that holds a file's bytes: its own, or the pack it was stored in
    (docs/DECISIONS.md#packs)."""
    pack = entry.get("pack")
    return pack["sha256"] if isinstance(pack, dict) else entry["sha256"]


def with_packs(files: dict[str, dict], packed: dict[str, tuple[str, int]]) -> dict[str, dict]:
    """The files' entries, each whose bytes a pack holds (sha256 -> (pack, offset)) naming
    where (docs/DECISIONS.md#packs)."""
    return {path: {**entry, "pack": {"sha256": packed[entry["sha256"]][0],
                                     "offset": packed[entry["sha256"]][1]}}
            if entry["sha256"] in packed else entry for path, entry in files.items()}


def blob_hashes(files: dict[str, dict]) -> set[str]:
    """Every blob a manifest's files reference, variants and packs included (a packed file's
    own hash names no blob: its pack is what must stay stored)."""
    hashes = set()
    for entry in files.values():
        hashes.add(stored_blob(entry))
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
