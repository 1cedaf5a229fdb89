"""Shallow clones with GitPython, bounded by time, file count and size."""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import git

from chalicelib.errors import TooLarge, Unprocessable

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


def clone(url: str, ref: str | None, destination: Path, limits: CloneLimits,
          pin: Pin | None = None) -> str:
    """Clone `ref` (default branch when None) at depth 1 into destination; return the commit sha."""
    command = ["git", *git_options(pin), "clone", "--depth", "1",
               "--single-branch", "--no-tags", "--no-recurse-submodules", "--quiet"]
    if ref:
        command += ["--branch", ref]
    command += ["--", url, str(destination)]
    try:
        _run_bounded(command, destination.parent, limits.timeout)
    except subprocess.TimeoutExpired:
        raise _timed_out(limits) from None
    except git.GitCommandError as error:
        raise _explain(error, url, ref, limits) from None
    commit = git.Repo(str(destination)).head.commit.hexsha
    check_size(destination, limits)
    return commit


def forget_file_times(repo: Path) -> None:
    """Rebuild the clone's index from HEAD alone, without the stat data (times, inodes) the
    checkout recorded: the packed `.git` is then the same bytes for every clone of one commit,
    and a redeploy stores no new blob (chalicelib/storage/git_archive.py). Git compares
    contents the first time a build's `git status` meets the missing stat data, and finds
    the tree clean."""
    git.Repo(str(repo)).git.read_tree("HEAD", env={**os.environ, **_GIT_ENV})


def _run_bounded(command: list[str], cwd: Path, timeout: float) -> None:
    """Run git in a session of its own; at the deadline SIGKILL the whole process group.

    Git.execute's kill_after_timeout signals the processes it finds through parent links: in
    GitPython 3.1 git's direct children only, so git-remote-https and fetch-pack survived
    (gitpython-developers/GitPython#895); 3.2 walks further, but a helper re-parented to init or
    started during the walk is still missed. Such a process keeps writing into the clone and
    holds git's stderr pipe, so the call returns only when it ends (measured with the hanging
    remote helper in tests/test_clone.py: 30 s past a 1 s deadline). Every process git starts
    stays in its process group unless it leaves on purpose, so one killpg reaches them all.
    """
    handle = git.Git(str(cwd)).execute(command, as_process=True, env={**os.environ, **_GIT_ENV},
                                       start_new_session=True)
    try:
        _, stderr = handle.communicate(timeout=timeout)  # AutoInterrupt passes through to Popen
    except subprocess.TimeoutExpired:
        # git is not reaped yet (communicate reaps only after the pipes close), so its pid
        # still names this group and no other.
        os.killpg(handle.pid, signal.SIGKILL)
        handle.communicate()
        raise
    handle.wait(stderr=stderr)  # GitCommandError (credentials redacted) when git failed


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
    files = total = 0
    for directory, dirnames, filenames in os.walk(root):
        if ".git" in dirnames and Path(directory) == root:
            dirnames.remove(".git")
        files += len(filenames)
        total += sum(os.lstat(os.path.join(directory, name)).st_size for name in filenames)
        if files > limits.max_files:
            raise TooLarge(f"the repository has more than {limits.max_files} files")
        if total > limits.max_bytes:
            raise TooLarge(f"the repository is larger than {limits.max_bytes} bytes")
