"""A clone's `.git` directory as one archive, so a build can run in a git work tree.

The upload service packs the `.git` of its depth-1 clone into a tar (one content-addressed
blob, named by the source manifest's `git` entry); the build runner unpacks it into the
downloaded source, which makes the build directory a shallow checkout of the deployed commit
(docs/DECISIONS.md#git-checkout). The source files themselves still travel one blob per file;
`.git/` is never uploaded as files.

Only directories and regular files are packed: a clone holds nothing else under `.git`, and an
archive without links cannot write outside its root. Unpacking checks every member before
anything is written, the way build_runner/depcache.py treats its archives.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

from chalicelib import paths
from chalicelib.storage import archives

GIT_DIR = ".git"


class UnsafeGitArchive(Exception):
    """An archive member that is not a plain file or directory under `.git/`."""


def _skipped(inside: str) -> bool:
    """Left out: git's sample hooks (templates nobody runs) and the reflogs, which name the
    user and host that made the clone (the upload service's machine)."""
    return inside == "logs" or inside.startswith("logs/") or \
        (inside.startswith("hooks/") and inside.endswith(".sample"))


def _keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if not (info.isfile() or info.isdir()) or _skipped(info.name[len(GIT_DIR) + 1:]):
        return None
    # Same commit, same bytes (with the clone's index rebuilt without file times,
    # pipeline/clone.py forget_file_times): a redeploy re-uses the stored blob.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def pack(repo_root: Path, destination: Path) -> bool:
    """Write `repo_root/.git` as a tar to `destination`; False when there is no `.git` directory."""
    git_dir = Path(repo_root) / GIT_DIR
    if git_dir.is_symlink() or not git_dir.is_dir():
        return False
    with tarfile.open(destination, mode="w") as archive:
        archive.add(git_dir, arcname=GIT_DIR, filter=_keep)
    return True


def check_member(info: tarfile.TarInfo) -> None:
    if not paths.within(info.name, GIT_DIR):
        raise UnsafeGitArchive(f"git archive member {info.name!r} is outside .git")
    if not (info.isfile() or info.isdir()):
        raise UnsafeGitArchive(f"git archive member {info.name!r} is not a file or directory")


def unpack(data: bytes, work_tree: Path) -> None:
    """Put the archived `.git` into `work_tree`, all or nothing (archives.extract_checked).

    Raises UnsafeGitArchive, tarfile.TarError, FileExistsError (the work tree already has a
    `.git`) or FileNotFoundError (the archive has none).
    """
    work_tree = Path(work_tree)
    target = work_tree / GIT_DIR
    if target.exists() or target.is_symlink():
        raise FileExistsError(f"{target} already exists")
    if not archives.extract_checked(data, work_tree, GIT_DIR, check_member):
        raise FileNotFoundError(f"the git archive holds no {GIT_DIR} directory")
