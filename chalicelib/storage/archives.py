"""Unpacking a tar that percel made (a node_modules cache, a clone's `.git`) into a tree.

The archives come from our own bucket, but a bucket can be written by others: every member is
checked before it is written, and the tree is built in a scratch directory that is moved into
place only once the whole archive was read and every link was found to stay inside.

Three ways in: `extract_checked` for a small archive held in memory (a clone's `.git`), through
tarfile with Python's "data" filter (PEP 706) as a second line of defence; for a big one read
straight from the bucket's response (a node_modules cache), `extract_contained`, GNU tar in a
sandbox where only a scratch folder is writable, the result checked as a whole before it is
moved into place, or where no such sandbox runs, `extract_stream`, which checks each member in
Python before writing it (docs/DECISIONS.md#depcache-stream).
"""
from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from chalicelib import paths

# File creation, not bandwidth, bounds a node_modules restore: 36,000 files of a Docusaurus
# site took 26-44 s through tarfile on this project's ext4 disk, and the same files written by
# 8-32 threads 1.3-1.7x less (bench/BUILD.md (a)); the kernel overlaps the threads' waits.
WRITERS = 16
# At most this many files read from the stream and not yet written, so a slow disk holds the
# download back instead of the whole archive piling up in memory.
PENDING_FILES = 512
_READ_BUFFER = 1 << 20
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def extract_checked(data: bytes, parent: Path, top: str,
                    check: Callable[[tarfile.TarInfo], None]) -> bool:
    """Put the archive's `top` directory at `parent/top`; False when the archive has none.

    `check` raises for a member it refuses, before anything is written. The archive is
    extracted into a scratch directory beside the target and moved into place, so a refused
    or truncated archive leaves nothing partial behind. Raises tarfile.TarError too.
    """
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        members = archive.getmembers()
        for info in members:
            check(info)
        scratch = Path(tempfile.mkdtemp(prefix=".percel-unpack-", dir=parent))
        try:
            archive.extractall(scratch, members=members, filter="data")
            if not (scratch / top).is_dir():
                return False
            (scratch / top).rename(Path(parent) / top)
            return True
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


class LinkEscapes(tarfile.ExtractError):
    """A link that each member check let through leads out of the tree once the links that
    sit on its path exist too (a lexical check cannot see those)."""


class UnsafeTree(tarfile.ExtractError):
    """What tar wrote reaches out of its tree (a name outside it, a link leading out, a hard
    link shared with a file elsewhere) or holds a device, fifo or set-id file."""


def extract_contained(stream: BinaryIO, parent: Path, top: str,
                      command: Callable[[Path], list[str]]) -> bool:
    """Put the archive read from `stream` at `parent/top`, all or nothing; False when the
    archive has no `top` directory.

    `command(scratch)` is the argv of GNU tar extracting standard input into `scratch`, inside
    a sandbox where nothing else is writable (build_runner/depcache.py). tar is C: a Docusaurus
    tree of 36,000 files took 1.7 s where extract_stream took 19-21 s, most of it in tarfile's
    header parsing (docs/DECISIONS.md#depcache-stream). GNU tar itself refuses member names with
    `..` and makes a link that is absolute or climbs only once every file is written; the
    sandbox bounds what a member could still reach to the scratch folder; and the result is
    checked as a whole before it is moved: `top` alone at the root, no device, fifo or set-id
    file, every symbolic link leading inside `top` once all exist, no hard link shared with a
    file outside `top`. Raises UnsafeTree for these, tarfile.ExtractError when tar fails (a
    truncated or malformed archive), OSError.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".percel-unpack-", dir=parent)).resolve()
    try:
        _run_tar(stream, command(scratch))
        names = os.listdir(scratch)
        if not names:
            return False
        if names != [top] or (scratch / top).is_symlink() or not (scratch / top).is_dir():
            raise UnsafeTree(f"the archive holds {sorted(names)[:3]!r} outside {top}")
        check_tree(scratch / top)
        (scratch / top).rename(Path(parent) / top)
        return True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_tar(stream: BinaryIO, argv: list[str]) -> None:
    # tar's complaints go to a file: a pipe could fill while we are blocked feeding its input.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=errors, env={"LC_ALL": "C"})
        assert process.stdin is not None
        try:
            shutil.copyfileobj(stream, process.stdin, _READ_BUFFER)
        except BrokenPipeError:   # tar stopped reading: its exit code and message say why
            pass
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
        code = process.wait()
        if code != 0:
            errors.seek(0)
            said = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise tarfile.ExtractError(f"tar refused the archive (exit code {code}): "
                                       + "; ".join(said[:3]))


def check_tree(top: Path) -> None:
    """Raise UnsafeTree unless `top` holds only directories, regular files without set-id bits
    and symbolic links that lead inside it, and its hard links are among themselves."""
    real_top = top.resolve()
    links_inside: dict[int, int] = {}
    links_in_all: dict[int, int] = {}
    folders = [str(top)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                mode = info.st_mode
                if stat.S_ISDIR(mode):
                    folders.append(entry.path)
                elif stat.S_ISLNK(mode):
                    if paths.resolve_inside(Path(entry.path), real_top) is None:
                        raise UnsafeTree(f"link {entry.path!r} -> {os.readlink(entry.path)!r} "
                                         "points outside the tree")
                elif not stat.S_ISREG(mode):
                    raise UnsafeTree(f"{entry.path!r} is a device or fifo")
                elif mode & (stat.S_ISUID | stat.S_ISGID):
                    raise UnsafeTree(f"{entry.path!r} is set-id")
                elif info.st_nlink > 1:
                    links_inside[info.st_ino] = links_inside.get(info.st_ino, 0) + 1
                    links_in_all[info.st_ino] = info.st_nlink
    if any(links_in_all[inode] > count for inode, count in links_inside.items()):
        raise UnsafeTree("a hard link in the archive shares a file outside the tree")


def extract_stream(stream: BinaryIO, parent: Path, top: str,
                   check: Callable[[tarfile.TarInfo], None], writers: int = WRITERS) -> bool:
    """Put the archive read from `stream` (a tar, optionally compressed) at `parent/top`, all or
    nothing; False when the archive has no `top` directory.

    `check` raises for a member it refuses, before that member is written; it must refuse
    names outside `top` and links whose target is absolute or outside `top` (as depcache's does).
    Order of writing, so that no write ever follows a link: directories and regular files
    first (no links exist yet; files are opened O_EXCL|O_NOFOLLOW), then hard links, then
    symbolic links, each in a directory that is no link itself; finally every symbolic link is
    resolved and the whole archive refused when one leads out of `top`. Directory mtimes are
    set last: npm trusts node_modules/.package-lock.json only when it is newer than the package
    folders. Raises tarfile.TarError (LinkEscapes among them), OSError, and what `check` raises.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".percel-unpack-", dir=parent)).resolve()
    try:
        tree = _Tree(scratch, writers)
        with tarfile.open(fileobj=stream, mode="r|*", bufsize=_READ_BUFFER) as archive:
            tree.write_all(archive, check)
        tree.link_all(top)
        if not (scratch / top).is_dir() or (scratch / top).is_symlink():
            return False
        (scratch / top).rename(Path(parent) / top)
        return True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Tree:
    """One extraction into `root`: what was written, and the links and times still to set."""

    def __init__(self, root: Path, writers: int):
        self.root = root
        self.writers = writers
        self.made: set[str] = {""}
        self.files: set[str] = set()
        self.dir_times: list[tuple[str, float]] = []
        self.hard: list[tuple[str, str]] = []
        self.soft: list[tuple[str, str]] = []

    def write_all(self, archive: tarfile.TarFile, check: Callable[[tarfile.TarInfo], None]) -> None:
        slots = threading.BoundedSemaphore(PENDING_FILES)
        failures: list[BaseException] = []

        def done(future: Future) -> None:
            slots.release()
            if future.exception() is not None:
                failures.append(future.exception())  # type: ignore[arg-type]
        with ThreadPoolExecutor(self.writers, thread_name_prefix="unpack") as pool:
            for info in archive:
                if failures:
                    break
                check(info)
                name = paths.safe_relative(info.name)
                if not name:
                    raise tarfile.ExtractError(f"archive member {info.name!r} has no usable name")
                if info.isdir():
                    self._dir(name)
                    self.dir_times.append((name, info.mtime))
                elif info.isfile():
                    self._dir(posixpath.dirname(name))
                    source = archive.extractfile(info)
                    data = source.read() if source else b""
                    slots.acquire()
                    self.files.add(name)
                    pool.submit(_write_file, self.root / name, data, info.mode, info.mtime) \
                        .add_done_callback(done)
                elif info.islnk():
                    self.hard.append((name, paths.safe_relative(info.linkname) or ""))
                elif info.issym():
                    self.soft.append((name, info.linkname))
                else:
                    raise tarfile.ExtractError(f"archive member {info.name!r} is no file, directory or link")
        if failures:
            raise failures[0]

    def link_all(self, top: str) -> None:
        for name, target in self.hard:
            if target not in self.files:
                raise tarfile.ExtractError(f"hard link {name!r} -> {target!r}: no such file in the archive")
            self._dir(posixpath.dirname(name))
            os.link(self.root / target, self.root / name, follow_symlinks=False)
        for name, target in self.soft:
            self._dir(posixpath.dirname(name))
            parent = self.root / posixpath.dirname(name)
            if os.path.realpath(parent) != str(parent):
                raise LinkEscapes(f"link {name!r} would be made through another link")
            os.symlink(target, self.root / name)
        real_top = self.root / top
        for name, target in self.soft:
            if paths.resolve_inside(self.root / name, real_top) is None:
                raise LinkEscapes(f"link {name!r} -> {target!r} leads out of {top}")
        for name, mtime in reversed(self.dir_times):
            os.utime(self.root / name, (mtime, mtime), follow_symlinks=False)

    def _dir(self, name: str) -> None:
        if name not in self.made:
            os.makedirs(self.root / name, exist_ok=True)  # no links exist yet: nothing to follow
            self.made.add(name)


def _write_file(path: Path, data: bytes, mode: int, mtime: float) -> None:
    """A new regular file; the mode as the "data" filter leaves it (no set-id bits, no
    group/other write, owner read/write)."""
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, (mode & 0o755) | 0o600)
        os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)
