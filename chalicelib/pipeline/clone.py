"""Shallow clones with GitPython, bounded by time, file count and size; and the commit a ref
names, asked of the remote (`git ls-remote`) under the same pin, options and time limit.

Where no `git` binary exists (Lambda), or GIT_CLIENT=dulwich asks for it, the same steps run
through dulwich in a child process (chalicelib/pipeline/gitless.py, docs/DECISIONS.md#gitless),
bounded the same way."""
from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from chalicelib.errors import TooLarge, Unprocessable
from chalicelib.paths import tree_bytes

# Never prompt, never run LFS filters, never read the host's git config: the
# clone must behave the same on every machine and stay non-interactive.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_LFS_SKIP_SMUDGE": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
}


@dataclass(frozen=True)
class CloneLimits:
    timeout: float
    max_files: int
    max_bytes: int


@dataclass(frozen=True)
class Pin:
    """Connect to this checked address only: the name is not resolved again at clone time,
    so a host that answered with a public address for validation cannot rebind to a private
    one for the clone (DNS rebinding)."""
    host: str
    port: int
    address: str
    scheme: str = "https"


def use_dulwich() -> bool:
    """dulwich where there is no git binary on PATH, or where GIT_CLIENT=dulwich asks for it."""
    return os.environ.get("GIT_CLIENT") == "dulwich" or shutil.which("git") is None


# The child finds this package and dulwich where this process found them: its sys.path is this
# process's, given on the command line (on Lambda the task root is on sys.path but not in
# PYTHONPATH, and an isolated interpreter would ignore PYTHONPATH anyway).
_BOOT = ("import json, runpy, sys; sys.path[:0] = json.loads(sys.argv.pop(1)); "
         "runpy.run_module('chalicelib.pipeline.gitless', run_name='__main__', alter_sys=True)")


def _gitless(pin: Pin | None, file_limit: int | None = None) -> list[str]:
    """The dulwich child's command line, up to its subcommand."""
    command = [sys.executable, *(["-S"] if sys.flags.no_site else []), "-c", _BOOT,
               json.dumps([os.path.abspath(entry) for entry in sys.path])]
    if file_limit is not None:
        command += ["--fsize", str(file_limit), "--memory", str(GITLESS_MEMORY + 2 * file_limit)]
    if pin is not None:
        command += ["--pin", pin.host, str(pin.port), pin.address, pin.scheme]
    return command


def _child_env() -> dict[str, str]:
    return {**os.environ, **_GIT_ENV}


def git_options(pin: Pin | None) -> list[str]:
    """`-c` options for the clone. With a pin: the pin's scheme only (https; http to loopback in
    the local stage), no redirects (a redirect could lead to a host we never checked), and curl
    told where the host lives (git >= 2.37)."""
    options = ["-c", "protocol.ext.allow=never"]
    if pin is not None:
        address = f"[{pin.address}]" if ":" in pin.address else pin.address
        options += ["-c", "protocol.allow=never", "-c", f"protocol.{pin.scheme}.allow=always",
                    "-c", "http.followRedirects=false",
                    "-c", f"http.curloptResolve={pin.host}:{pin.port}:{address}"]
    return options


def resolve_ref(url: str, ref: str | None, timeout: float, pin: Pin | None = None) -> str:
    """The commit `ref` (a branch, else a tag, as `git clone --branch` picks; the default branch
    when None) names in the repository at `url`: `git ls-remote` with the clone's options and pin,
    its process group SIGKILLed at `timeout`. 422 for a repository that cannot be read, a ref it
    lacks, or an empty repository."""
    if use_dulwich():
        command = [*_gitless(pin), "ls-remote", url]
    else:
        # `v1` alone does not match the peeled line `refs/tags/v1^{}` an annotated tag adds.
        patterns = [ref, f"{ref}^{{}}"] if ref else ["HEAD"]
        command = ["git", *git_options(pin), "ls-remote", "--", url, *patterns]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=_child_env(),
                               start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the remote helper too (see _run_bounded)
        process.communicate()
        raise Unprocessable(f"asking {url} for its commits took longer than {timeout:g} s") from None
    if process.returncode != 0:
        raise Unprocessable(f"repository {url} does not exist or cannot be cloned")
    found = commit_of(out.decode(errors="replace"), ref)
    if found is None:
        raise Unprocessable(f"ref {ref!r} does not exist in {url}" if ref
                            else f"repository {url} has no commits")
    return found


def commit_of(listing: str, ref: str | None) -> str | None:
    """From ls-remote's "<sha>\t<name>" lines: the branch `ref`, else the tag `ref` (peeled to
    its commit when annotated), else None; HEAD when `ref` is None."""
    names = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if len(sha) in (40, 64) and name:
            names[name] = sha
    if ref is None:
        return names.get("HEAD")
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in names:
            return names[name]
    return None


def clone(url: str, ref: str | None, destination: Path, limits: CloneLimits,
          pin: Pin | None = None) -> str:
    """Clone `ref` (default branch when None) at depth 1 into destination; return the commit sha.

    The limits hold while git writes, not only afterwards (docs/DECISIONS.md#clone-limits): the
    transfer is stopped once the clone holds more than max_bytes, and the files are checked out
    only after the commit's tree has been measured, so a small pack that expands into a huge
    checkout is refused before it is written."""
    dulwich = use_dulwich()
    if dulwich:
        command = [*_gitless(pin, _file_limit(limits)), "clone", url, str(destination), ref or ""]
        checkout = [*_gitless(None, _file_limit(limits)), "checkout"]
    else:
        command = ["git", *git_options(pin), "clone", "--depth", "1", "--single-branch", "--no-tags",
                   "--no-recurse-submodules", "--no-checkout", "--quiet"]
        if ref:
            command += ["--branch", ref]
        command += ["--", url, str(destination)]
        checkout = ["git", "checkout", "--quiet", "--force"]
    deadline = time.monotonic() + limits.timeout
    try:
        _run_bounded(command, destination.parent, limits, deadline,
                     (destination, limits.max_bytes + GIT_OWN_BYTES))
        check_tree(destination, limits, deadline - time.monotonic())
        # The checkout may add max_bytes to what the transfer left in .git.
        budget = tree_bytes(destination) + limits.max_bytes
        _run_bounded(checkout, destination, limits, deadline, (destination, budget))
    except subprocess.TimeoutExpired:
        raise _timed_out(limits) from None
    except git.GitCommandError as error:
        raise _explain(error, url, ref, limits) from None
    commit = _head(destination, dulwich)
    check_size(destination, limits)
    return commit


def _head(repo: Path, dulwich: bool) -> str:
    if dulwich:
        from chalicelib.pipeline import gitless
        return gitless.head(repo)
    return git.Repo(str(repo)).head.commit.hexsha


def check_tree(repo: Path, limits: CloneLimits, timeout: float) -> None:
    """Refuse a commit whose tree holds too many files or bytes, from git's own listing of it
    (`ls-tree -r -l`: one line per file with its size), before a byte of it is checked out."""
    if use_dulwich():  # the blobs are read to be measured: in a child, bounded in time
        listed = subprocess.run([*_gitless(None), "ls-tree"], cwd=repo, env=_child_env(),
                                capture_output=True, timeout=max(timeout, 0.1), check=False)
        if listed.returncode != 0:
            raise Unprocessable("the cloned commit cannot be read")
        listing = listed.stdout
    else:
        listing = git.Repo(str(repo)).git.ls_tree("-r", "-l", "-z", "HEAD", env={**os.environ, **_GIT_ENV},
                                                  stdout_as_string=False)
    files = total = 0
    for entry in filter(None, listing.split(b"\0")):  # "<mode> <type> <sha> <size>\t<path>"
        size = entry.split(b"\t", 1)[0].split()[3]
        files += 1
        total += int(size) if size.isdigit() else 0  # "-" for a submodule, never checked out
    _check_totals(files, total, limits)


def forget_file_times(repo: Path) -> None:
    """Rebuild the clone's index from HEAD alone, without the stat data (times, inodes) the
    checkout recorded: the packed `.git` is then the same bytes for every clone of one commit,
    and a redeploy stores no new blob (chalicelib/storage/git_archive.py). Git compares
    contents the first time a build's `git status` meets the missing stat data, and finds
    the tree clean."""
    if use_dulwich():
        from chalicelib.pipeline import gitless
        gitless.forget_file_times(repo)
        return
    git.Repo(str(repo)).git.read_tree("HEAD", env={**os.environ, **_GIT_ENV})


def _run_bounded(command: list[str], cwd: Path, limits: CloneLimits, deadline: float,
                 watch: tuple[Path, int]) -> None:
    """Run git in a session of its own, and SIGKILL the whole process group at the deadline or
    as soon as the watched directory holds more than its budget of bytes (TooLarge).

    Git.execute's kill_after_timeout signals the processes it finds through parent links: in
    GitPython 3.1 git's direct children only, so git-remote-https and fetch-pack survived
    (gitpython-developers/GitPython#895); 3.2 walks further, but a helper re-parented to init or
    started during the walk is still missed. Such a process keeps writing into the clone and
    holds git's stderr pipe, so the call returns only when it ends (measured with the hanging
    remote helper in tests/test_clone.py: 30 s past a 1 s deadline). Every process git starts
    stays in its process group unless it leaves on purpose, so one killpg reaches them all.

    Git has no limit of its own for what a fetch receives (receive.maxInputSize bounds pushes
    only), so the size is watched from here: every WATCH_SECONDS, and by the kernel for each
    file (RLIMIT_FSIZE: no file, the pack included, grows past max_bytes, so a pack arriving
    faster than we look cannot run past the limit between two looks).
    """
    # restore_signals=False: git inherits Python's SIG_IGN for SIGXFSZ (and SIGPIPE, which git
    # handles itself), so a write past RLIMIT_FSIZE fails with EFBIG, "File too large", that
    # git reports, instead of killing index-pack without a word ("invalid index-pack output").
    file_limit = _file_limit(limits)
    handle = git.Git(str(cwd)).execute(_with_file_limit(command, file_limit), as_process=True,
                                       env=_child_env(),
                                       start_new_session=True, restore_signals=False)
    _limit_file_size(handle.pid, file_limit)
    watched, budget = watch
    streams: list[bytes] = []
    reader = threading.Thread(target=lambda: streams.extend(handle.communicate()), daemon=True)
    reader.start()  # communicate() drains git's pipes; AutoInterrupt passes it through to Popen
    while reader.is_alive():
        reader.join(WATCH_SECONDS)
        if reader.is_alive() and time.monotonic() > deadline:
            _kill(handle, reader)
            raise subprocess.TimeoutExpired(command, limits.timeout)
        if reader.is_alive() and tree_bytes(watched) > budget:
            _kill(handle, reader)
            raise _too_large(limits)
    try:
        handle.wait(stderr=streams[1] if len(streams) > 1 else b"")  # GitCommandError (credentials redacted)
    except git.GitCommandError as error:
        if tree_bytes(watched) > budget or "File too large" in str(error.stderr or ""):
            raise _too_large(limits) from None  # EFBIG: RLIMIT_FSIZE stopped a writer
        raise


# What git writes beside the repository's objects, allowed on top of max_bytes while it fetches:
# config, refs, sample hooks (23 KB with git 2.39's templates), the shallow file, a pack's .idx
# (28 bytes an object plus 1 KB: about 560 KB for 20,000 files).
GIT_OWN_BYTES = 1024 * 1024
# The address space a dulwich child may use beyond twice the byte limit: the interpreter and
# dulwich (about 40 MB of mappings), malloc's arenas and the pack index. A file:// fetch of
# a 256 MiB blob peaked at 538 MiB of resident memory without a limit (docs/DECISIONS.md#gitless).
GITLESS_MEMORY = 256 * 1024 * 1024
# How often a running clone's size is looked at. Between two looks git can write at most what
# the disk or the network takes in this time, and never more than max_bytes into one file.
WATCH_SECONDS = 0.05


def _file_limit(limits: CloneLimits) -> int:
    return max(limits.max_bytes, GIT_OWN_BYTES)


def _with_file_limit(command: list[str], max_bytes: int) -> list[str]:
    """`command` started under RLIMIT_FSIZE from its first instruction: util-linux's prlimit(1)
    sets the limit, then execs git in the same process (so the pid, the session and the ignored
    SIGXFSZ stay git's). Setting it from here after the start raced with git: on a loaded machine
    git had already started index-pack without the limit, and a refused 8 MiB clone wrote 4 MB
    against a 1 MiB limit (tests/test_clone.py)."""
    prlimit = shutil.which("prlimit")
    return [prlimit, f"--fsize={max_bytes}", "--", *command] if prlimit else command


def _limit_file_size(pid: int, max_bytes: int) -> None:
    """Set RLIMIT_FSIZE on git right after it started, where prlimit(1) is missing (then the
    processes that write the pack, started by git later, inherit it unless they started first)."""
    with contextlib.suppress(OSError, ValueError):  # gone already, or a limit the host forbids
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def _kill(handle: Any, reader: threading.Thread) -> None:
    # git is not reaped yet (communicate reaps only after the pipes close), so its pid
    # still names this group and no other.
    os.killpg(handle.pid, signal.SIGKILL)
    reader.join()


def _timed_out(limits: CloneLimits) -> Unprocessable:
    return Unprocessable(f"cloning took longer than {limits.timeout:g} s and was stopped")


def _explain(error: git.GitCommandError, url: str, ref: str | None,
             limits: CloneLimits) -> Unprocessable:
    stderr = str(error.stderr or "")
    if error.status in (-9, 9) or "kill" in stderr.lower() or "Timeout" in stderr:
        return _timed_out(limits)
    if ref and ("not found in upstream" in stderr or "Remote branch" in stderr):
        return Unprocessable(f"ref {ref!r} does not exist in {url}")
    return Unprocessable(f"repository {url} does not exist or cannot be cloned")


def check_size(root: Path, limits: CloneLimits) -> None:
    """The checked-out files, counted and measured as they are on disk."""
    files = total = 0
    for directory, dirnames, filenames in os.walk(root):
        if ".git" in dirnames and Path(directory) == root:
            dirnames.remove(".git")
        files += len(filenames)
        total += sum(os.lstat(os.path.join(directory, name)).st_size for name in filenames)
        _check_totals(files, total, limits)


def _check_totals(files: int, total: int, limits: CloneLimits) -> None:
    if files > limits.max_files:
        raise TooLarge(f"the repository has more than {limits.max_files} files")
    if total > limits.max_bytes:
        raise _too_large(limits)


def _too_large(limits: CloneLimits) -> TooLarge:
    return TooLarge(f"the repository is larger than {limits.max_bytes} bytes")
