"""The packed `.git` (chalicelib/storage/git_archive.py): what goes in, and what unpacking refuses."""
from __future__ import annotations

import io
import tarfile

import pytest

from chalicelib.storage import git_archive


def archive(*members: tuple[str, bytes | None, bytes]) -> bytes:
    """A tar of (name, data or None for a directory, type) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                info.linkname = (data or b"").decode()
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_packed_git_directory_unpacks_into_a_work_tree(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "hooks").mkdir()
    (repo / ".git" / "hooks" / "pre-commit.sample").write_text("#!/bin/sh\n")
    (repo / ".git" / "logs").mkdir()
    (repo / ".git" / "logs" / "HEAD").write_text("0000 1111 root <root@api-host> clone\n")
    assert git_archive.pack(repo, tmp_path / "git.tar")
    work = tmp_path / "work"
    work.mkdir()
    git_archive.unpack((tmp_path / "git.tar").read_bytes(), work)
    assert (work / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (work / ".git" / "hooks").is_dir() and not (work / ".git" / "hooks" / "pre-commit.sample").exists()
    assert not (work / ".git" / "logs").exists()
    assert sorted(p.name for p in work.iterdir()) == [".git"]  # no scratch directory left


def test_no_git_directory_packs_nothing(tmp_path):
    assert not git_archive.pack(tmp_path, tmp_path / "git.tar")


@pytest.mark.parametrize("members", [
    [(".git", None, tarfile.DIRTYPE), ("index.html", b"x", tarfile.REGTYPE)],
    [(".git/../../escape", b"x", tarfile.REGTYPE)],
    [("/etc/passwd", b"x", tarfile.REGTYPE)],
    [(".git/hooks/pre-commit", b"/bin/sh", tarfile.SYMTYPE)],
    [(".git/config", b"/etc/passwd", tarfile.LNKTYPE)],
    [(".gitx/config", b"x", tarfile.REGTYPE)],
], ids=["outside", "dotdot", "absolute", "symlink", "hardlink", "lookalike"])
def test_unpacking_refuses_anything_but_files_and_folders_under_dot_git(tmp_path, members):
    with pytest.raises(git_archive.UnsafeGitArchive):
        git_archive.unpack(archive(*members), tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_existing_git_entry_is_never_written_through(tmp_path):
    elsewhere, work = tmp_path / "elsewhere", tmp_path / "work"
    elsewhere.mkdir()
    work.mkdir()
    (work / ".git").symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        git_archive.unpack(archive((".git/HEAD", b"ref: refs/heads/main\n", tarfile.REGTYPE)), work)
    assert list(elsewhere.iterdir()) == []
