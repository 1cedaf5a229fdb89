"""Cloning real git repositories, within limits."""
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from chalicelib.errors import TooLarge, Unprocessable
from chalicelib.pipeline.clone import CloneLimits, clone
from tests.conftest import commit_all, git, make_repo

LIMITS = CloneLimits(timeout=30, max_files=100, max_bytes=1_000_000)


def test_shallow_clone_of_a_branch(tmp_path):
    url = make_repo(tmp_path / "origin", {"index.html": "v1"})
    (tmp_path / "origin" / "index.html").write_text("v2")
    commit_all(tmp_path / "origin")
    git("checkout", "-q", "-b", "feature", cwd=tmp_path / "origin")
    (tmp_path / "origin" / "index.html").write_text("feature")
    commit_all(tmp_path / "origin")
    sha = clone(url, "main", tmp_path / "c1", LIMITS)
    assert (tmp_path / "c1" / "index.html").read_text() == "v2"
    assert git("rev-list", "--count", "HEAD", cwd=tmp_path / "c1") == "1"  # depth 1
    assert sha == git("rev-parse", "main", cwd=tmp_path / "origin")
    clone(url, "feature", tmp_path / "c2", LIMITS)
    assert (tmp_path / "c2" / "index.html").read_text() == "feature"


def test_missing_repo_and_missing_ref_say_so(tmp_path):
    with pytest.raises(Unprocessable, match="does not exist or cannot be cloned"):
        clone(f"file://{tmp_path}/nothing", None, tmp_path / "c", LIMITS)
    url = make_repo(tmp_path / "origin", {"a": "a"})
    with pytest.raises(Unprocessable, match="ref 'nope' does not exist"):
        clone(url, "nope", tmp_path / "c2", LIMITS)


def test_too_many_files_and_too_many_bytes_are_refused(tmp_path):
    url = make_repo(tmp_path / "many", {f"f{i}.txt": str(i) for i in range(120)})
    with pytest.raises(TooLarge, match="more than 100 files"):
        clone(url, None, tmp_path / "c1", LIMITS)
    url = make_repo(tmp_path / "big", {"blob.bin": b"x" * 1_500_000})
    with pytest.raises(TooLarge, match="larger than"):
        clone(url, None, tmp_path / "c2", LIMITS)


def test_a_clone_that_hangs_is_stopped_at_the_timeout(tmp_path):
    import socket
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/repo.git"
        # The answer names the 1 s limit: the clone was stopped by it, not by the server.
        with pytest.raises(Unprocessable, match="longer than 1 s"):
            clone(url, None, tmp_path / "c", CloneLimits(timeout=1, max_files=10, max_bytes=10))


def test_a_pinned_clone_connects_to_the_checked_address_only(tmp_path):
    """DNS rebinding: the name is not looked up again; git connects where validation checked."""
    import socket
    import threading

    from chalicelib.pipeline.clone import Pin
    arrived = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def accept():
            connection, _ = listener.accept()
            arrived.append(connection.recv(5))  # the start of a TLS ClientHello
            connection.close()
        waiter = threading.Thread(target=accept, daemon=True)
        waiter.start()
        url = f"https://never-resolves.invalid:{port}/repo.git"
        with pytest.raises(Unprocessable):
            clone(url, None, tmp_path / "c", LIMITS, Pin("never-resolves.invalid", port, "127.0.0.1"))
        waiter.join(5)
    assert arrived and arrived[0][:1] == b"\x16"  # a TLS handshake reached the pinned address


def test_a_pinned_clone_refuses_other_protocols(tmp_path):
    from chalicelib.pipeline.clone import Pin
    url = make_repo(tmp_path / "origin", {"a": "a"})
    with pytest.raises(Unprocessable):
        clone(url, None, tmp_path / "c", LIMITS, Pin("localhost", 443, "127.0.0.1"))


# A remote helper (`git clone hang::x` runs `git-remote-hang` from PATH) that records its pid,
# then starts a grandchild of git through a subshell that exits at once: the grandchild is
# re-parented to init, so walking parent links from git can no longer find it. "holds-stderr"
# keeps git's stderr pipe open (the clone call cannot return while it lives); "detached" closes
# it and would keep running, writing, after the call returned.
_HANGING_HELPER = """#!/bin/sh
echo $$ >> "{pids}"
( sleep 30 {redirect} & echo $! >> "{pids}" )
exec sleep 30
"""


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie is dead (it waits only for its parent to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("redirect", ["", "</dev/null >/dev/null 2>&1"], ids=["holds-stderr", "detached"])
def test_a_clone_that_hangs_in_a_grandchild_leaves_no_process_behind(tmp_path, monkeypatch, redirect):
    bin_dir, pids = tmp_path / "bin", tmp_path / "pids"
    bin_dir.mkdir()
    helper = bin_dir / "git-remote-hang"
    helper.write_text(_HANGING_HELPER.format(pids=pids, redirect=redirect))
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    try:
        with pytest.raises(Unprocessable, match="longer than 1 s"):
            clone("hang::nowhere", None, tmp_path / "c", CloneLimits(timeout=1, max_files=10, max_bytes=10))
        recorded = [int(line) for line in pids.read_text().split()]
        assert len(recorded) == 2  # the helper and its grandchild both started
        deadline = time.monotonic() + 2  # SIGKILL is delivered asynchronously
        while any(_alive(pid) for pid in recorded) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in recorded if _alive(pid)] == []
    finally:  # on failure, end the processes this test started, by their recorded ids
        for pid in [int(line) for line in pids.read_text().split()] if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class DiskWatch:
    """Samples what a clone directory holds, as often as it can, while the clone runs."""

    def __init__(self, root: Path):
        import threading
        self.root, self.peak, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def held(self) -> int:
        total = 0
        for directory, _, names in os.walk(self.root):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(directory, name)).st_size
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.held())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.held())


MiB = 1024 * 1024


@pytest.mark.parametrize("content", ["zeros", "random"])
def test_a_refused_clone_writes_little_more_than_the_limit(tmp_path, content):
    """Zeros: a 64 MiB file packs into about 64 KiB, and used to be checked out in full before
    the 413. Random bytes: the pack itself is over the limit. Either way the disk the refused
    clone used stays within git's own files (GIT_OWN_BYTES) of MAX_REPO_BYTES."""
    from chalicelib.pipeline.clone import GIT_OWN_BYTES
    origin = tmp_path / "origin"
    origin.mkdir()
    with open(origin / "big.bin", "wb") as big:
        for _ in range(64 if content == "zeros" else 8):
            big.write(bytes(MiB) if content == "zeros" else os.urandom(MiB))
    url = make_repo(origin, {"index.html": "hi"})
    limits = CloneLimits(timeout=120, max_files=100, max_bytes=MiB)
    with DiskWatch(tmp_path / "c") as disk, pytest.raises(TooLarge, match="larger than"):
        clone(url, None, tmp_path / "c", limits)
    assert disk.peak <= MiB + GIT_OWN_BYTES, f"{disk.peak} bytes written"
