"""Cloning real git repositories, within limits, with the git binary and with dulwich (the client
used where no git binary exists, as on Lambda: docs/DECISIONS.md#gitless)."""
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from chalicelib.errors import TooLarge, Unprocessable
from chalicelib.pipeline.clone import CloneLimits, Pin, clone, forget_file_times, resolve_ref, use_dulwich
from chalicelib.storage import git_archive
from tests.conftest import commit_all, git, make_repo

LIMITS = CloneLimits(timeout=30, max_files=100, max_bytes=1_000_000)


@pytest.fixture(autouse=True, params=["git", "dulwich"])
def client(request, monkeypatch):
    """Every test here runs with each client: GIT_CLIENT=dulwich forces dulwich, as a PATH
    without git does."""
    if request.param == "dulwich":
        monkeypatch.setenv("GIT_CLIENT", "dulwich")
    else:
        monkeypatch.delenv("GIT_CLIENT", raising=False)
    assert use_dulwich() == (request.param == "dulwich")
    return request.param


def test_without_a_git_binary_on_path_dulwich_is_used(monkeypatch, tmp_path):
    monkeypatch.delenv("GIT_CLIENT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert use_dulwich()


def test_resolve_ref_names_the_commit_of_a_branch_a_tag_and_the_default_branch(tmp_path):
    origin = tmp_path / "origin"
    url = make_repo(origin, {"index.html": "v1"})
    first = git("rev-parse", "HEAD", cwd=origin)
    git("tag", "-a", "-m", "release", "v1", cwd=origin)
    (origin / "index.html").write_text("v2")
    commit_all(origin)
    second = git("rev-parse", "HEAD", cwd=origin)
    assert resolve_ref(url, None, 30) == second
    assert resolve_ref(url, "main", 30) == second
    assert resolve_ref(url, "v1", 30) == first  # the annotated tag, peeled to its commit
    with pytest.raises(Unprocessable, match="ref 'nope' does not exist in"):
        resolve_ref(url, "nope", 30)
    with pytest.raises(Unprocessable, match="does not exist or cannot be cloned"):
        resolve_ref(f"file://{tmp_path}/nothing", None, 30)
    git("init", "-q", str(tmp_path / "empty"), cwd=tmp_path)
    with pytest.raises(Unprocessable, match="has no commits"):
        resolve_ref(f"file://{tmp_path}/empty", None, 30)


def test_the_clone_is_a_repository_git_reads_clean_and_packs_the_same_bytes_twice(tmp_path, client):
    """What the build runner gets: a shallow work tree its own git finds clean and whole, and,
    with the index rebuilt without file times, the same `.git` archive for each clone of a commit.
    With dulwich, a file:// clone's pack is made by dulwich itself, whose object order varies
    from run to run: there the index and refs are the same bytes, the pack holds the same objects
    (docs/DECISIONS.md#gitless)."""
    origin = tmp_path / "origin"
    url = make_repo(origin, {"index.html": "hi", "src/app.js": "x", "run.sh": "#!/bin/sh\n"})
    (origin / "run.sh").chmod(0o755)
    commit_all(origin)
    archives = []
    for name in ("c1", "c2"):
        clone(url, "main", tmp_path / name, LIMITS)
        forget_file_times(tmp_path / name)
        git_archive.pack(tmp_path / name, tmp_path / f"{name}.tar")  # before git status refreshes the index
        archives.append((tmp_path / f"{name}.tar").read_bytes())
        git("fsck", "--no-progress", cwd=tmp_path / name)
        assert git("status", "--porcelain", cwd=tmp_path / name) == ""
        assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=tmp_path / name) == "main"
        assert git("rev-list", "--count", "HEAD", cwd=tmp_path / name) == "1"
        assert os.access(tmp_path / name / "run.sh", os.X_OK)
        time.sleep(1.1)  # a second clone with other file times
    if client == "git":
        assert archives[0] == archives[1]
    else:
        assert _without_pack(archives[0]) == _without_pack(archives[1])


def _without_pack(archive: bytes) -> dict[str, bytes]:
    """An archived `.git`'s files, the pack's contents left out (its name says which objects)."""
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {member.name: b"" if member.name.endswith((".pack", ".idx")) else tar.extractfile(member).read()
                for member in tar.getmembers() if member.isfile()}


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
    git("tag", "-a", "-m", "release", "v1", "main", cwd=tmp_path / "origin")
    assert clone(url, "v1", tmp_path / "c3", LIMITS) == sha  # a tag: detached at its commit
    assert (tmp_path / "c3" / "index.html").read_text() == "v2"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c3") == sha


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
def test_a_clone_that_hangs_in_a_grandchild_leaves_no_process_behind(tmp_path, monkeypatch, redirect, client):
    if client == "dulwich":
        pytest.skip("git's remote helpers (`hang::`): dulwich runs no helper, its child is killed with its group")
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


def test_a_pinned_clone_follows_no_redirect(tmp_path):
    """The first answer redirects to another repository on the same host: neither client asks
    for it (a redirect could lead anywhere validation never checked)."""
    import http.server
    import threading

    asked = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            asked.append(self.path)
            self.send_response(302)
            self.send_header("Location", self.path.replace("/repo.git", "/elsewhere.git"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        pin = Pin("127.0.0.1", port, "127.0.0.1", scheme="http")
        url = f"http://127.0.0.1:{port}/repo.git"
        with pytest.raises(Unprocessable, match="cannot be cloned"):
            resolve_ref(url, None, 30, pin)
        with pytest.raises(Unprocessable, match="cannot be cloned"):
            clone(url, None, tmp_path / "c", LIMITS, pin)
    finally:
        server.shutdown()
        server.server_close()
    assert asked and not any("elsewhere" in path for path in asked)



def test_a_pinned_clone_over_smart_http(tmp_path):
    """The network path end to end: git's smart HTTP protocol (served here by dulwich's WSGI
    server), the URL's name answered by the pin alone, a shallow clone of the branch."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from dulwich.repo import Repo
    from dulwich.server import DictBackend
    from dulwich.web import make_wsgi_chain

    class Quiet(WSGIRequestHandler):
        def log_message(self, *_):
            pass
    origin = tmp_path / "origin"
    make_repo(origin, {"index.html": "over http"})
    server = make_server("127.0.0.1", 0, make_wsgi_chain(DictBackend({"/repo.git": Repo(str(origin))})),
                         handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        url = f"http://pinned.invalid:{port}/repo.git"  # a name only the pin resolves
        pin = Pin("pinned.invalid", port, "127.0.0.1", scheme="http")
        commit = resolve_ref(url, "main", 30, pin)
        assert commit == git("rev-parse", "HEAD", cwd=origin)
        assert clone(url, "main", tmp_path / "c", LIMITS, pin) == commit
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "c" / "index.html").read_text() == "over http"
    assert git("rev-list", "--count", "HEAD", cwd=tmp_path / "c") == "1"
