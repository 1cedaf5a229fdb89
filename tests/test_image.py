"""The runner image's recipe (build_runner/Dockerfile, .dockerignore), checked offline.

No container engine runs on the development machine, so the image is never built here:
these tests read the Dockerfile as docker would (continuation lines joined, comments
dropped) and walk the repository as the build context would be sent.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path

from build_runner.sandbox import base, bwrap, public_network

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "build_runner" / "Dockerfile"
# Every Debian package the image installs, and the path in our code that uses it: a package
# nobody uses, or a tool the code calls that the image lacks, fails here.
PACKAGE_USES = {
    "tini": "/usr/bin/tini",  # the ENTRYPOINT
    "bubblewrap": bwrap.BWRAP,
    "util-linux": bwrap.PRLIMIT,
    "slirp4netns": public_network.SLIRP4NETNS,
    "nftables": public_network.NFT,
    "iproute2": public_network.IP,
    "ca-certificates": base.CA_BUNDLE,
    "git": "/usr/bin/git",  # builds get a git work tree (docs/ARCHITECTURE.md, the build world)
}
# Folders that must never reach the build context: each is large or private.
NEVER_SENT = (".venv", ".git", ".state", "node_modules", "tests", "bench", ".pytest_cache", "__pycache__")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    joined, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in joined]


STEPS = instructions(DOCKERFILE.read_text())


def arguments(name: str) -> list[str]:
    return [args for instruction, args in STEPS if instruction == name]


def test_every_base_image_is_pinned_to_an_exact_version_or_digest():
    bases = [args.split()[0] for args in arguments("FROM")]
    assert bases
    for image in bases:
        _, _, tag = image.partition(":")
        assert "@sha256:" in image or re.match(r"\d+\.\d+\.\d+-", tag), f"{image} is not pinned"


def test_an_init_is_pid_1_and_the_runner_its_child():
    (entrypoint,) = arguments("ENTRYPOINT")
    (command,) = arguments("CMD")
    assert json.loads(entrypoint) == ["/usr/bin/tini", "--"]
    assert json.loads(command) == ["python", "-m", "build_runner"]


def test_the_image_installs_exactly_the_packages_the_runner_uses():
    installs = [args for args in arguments("RUN") if "apt-get install" in args]
    assert len(installs) == 1
    command = installs[0].split("apt-get install", 1)[1].split("&&")[0]
    assert "--no-install-recommends" in command
    packages = {word for word in command.split() if not word.startswith("-")}
    assert packages == set(PACKAGE_USES)
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]


def dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").strip("/")))
    return patterns


def ignored(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    verdict = False
    for negated, pattern in patterns:
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, pattern) and prefix.count("/") == pattern.count("/")
                      for prefix in prefixes)
        if hit:
            verdict = not negated
    return verdict


def build_context() -> list[str]:
    """The files `docker build .` would send from this checkout."""
    patterns, sent = dockerignore_patterns(), []
    for folder, dirs, files in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else relative + "/"
        # An ignored folder is still walked when a later "!" pattern names something inside it.
        dirs[:] = [d for d in dirs if not ignored(prefix + d, patterns)
                   or any(negated and pattern.startswith(prefix + d + "/") for negated, pattern in patterns)]
        sent += [prefix + name for name in files if not ignored(prefix + name, patterns)]
    return sent


def test_the_build_context_holds_what_the_image_copies_and_nothing_big():
    context = build_context()
    copied = [args.split()[0].rstrip("/") for args in arguments("COPY") if not args.startswith("--from")]
    assert copied == ["requirements.txt", "chalicelib", "build_runner"]
    for source in copied:
        assert any(path == source or path.startswith(source + "/") for path in context), source
    assert "build_runner/Dockerfile" in context and "build_runner/sandbox/forward.js" in context
    for path in context:
        assert not set(path.split("/")) & set(NEVER_SENT), path
    size = sum((ROOT / path).stat().st_size for path in context)
    assert size < 5 * 1024 * 1024, f"build context of {size} bytes"
