"""The one confinement rule: a path from a user, a repository or a build stays inside its root.

Shaped like werkzeug's `safe_join`: every check answers the safe path, or None when the input
could name anything outside its base. Callers turn None into their own refusal (a 400 naming
the field, a 404, a skipped file); none of them re-implements the check.

- `safe_relative`: lexical, for strings (a root_dir, an output_dir, a URL path, a link target).
- `resolve_inside`: on the filesystem, symlinks followed, for trees a repository or a build
  made and the runner then reads as itself, outside the sandbox.
- `safe_join`: both, for a user's relative path under a directory on disk.
"""
from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relative(path: str, *, url: bool = False) -> str | None:
    """`path` as a normalised relative POSIX path ('' for the base itself), or None.

    None for an absolute path, a Windows drive or separator, a NUL, or a `..` segment;
    empty and `.` segments are dropped. With `url`, `path` is a decoded URL path after its
    leading `/`: it keeps its shape (`/a//b` is not `/a/b`) and a `.` segment is refused
    too (the caller has already refused control characters and backslashes).
    """
    segments = path.split("/")
    if ".." in segments:
        return None
    if url:
        return None if "." in segments else path
    if "\0" in path or "\\" in path or path.startswith("/") or _DRIVE.match(path):
        return None
    return "/".join(s for s in segments if s not in ("", "."))


def within(path: str, root: str) -> bool:
    """Whether the relative path `path` is `root` or lies under it (lexical)."""
    clean = safe_relative(path)
    return clean is not None and (clean == root or clean.startswith(root + "/"))


def link_stays_inside(link: str, target: str, root: str) -> bool:
    """Whether a symlink at archive path `link` pointing to `target` names something under `root`.

    Lexical: for links inside an archive, before anything exists on disk.
    """
    if posixpath.isabs(target):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    return resolved == root or resolved.startswith(root + "/")


def resolve_inside(path: Path, real_root: Path) -> Path | None:
    """Where `path` leads (symlinks followed), when that is inside `real_root` (already
    resolved); None when it leads out, or round a symlink loop (Python 3.11 raises).
    """
    try:
        resolved = path.resolve()
    except RuntimeError:
        return None
    return resolved if resolved.is_relative_to(real_root) else None


def safe_join(base: Path, relative: str) -> Path | None:
    """`base/relative` resolved, when `relative` is a safe relative path and the result,
    symlinks followed, stays inside `base`; None otherwise."""
    clean = safe_relative(relative.strip())
    if clean is None:
        return None
    return resolve_inside(base / clean, base.resolve())


def tree_bytes(root: Path) -> int:
    """What the files under root hold, links counted as themselves (not their targets). A file
    that disappears while it is walked counts nothing (git renames and deletes as it clones)."""
    total = 0
    for directory, _, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total
