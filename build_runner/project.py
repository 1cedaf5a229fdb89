"""Reading a user's project: its package.json and config files, never running anything.

Config files are read as text, not evaluated: only plain string literals are
trusted (`string_option`), so a config that computes a value falls back to the
framework's default.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from build_runner.errors import ProjectError


class UnsupportedProject(ProjectError):
    """The project cannot be built as it is: its package.json cannot be read."""


@dataclass(frozen=True)
class Project:
    root: Path
    package: dict | None  # parsed package.json, None when absent

    @classmethod
    def load(cls, root: Path) -> Project:
        """The project at root; raises UnsupportedProject when package.json is not valid JSON."""
        return cls(Path(root), _load_package(Path(root)))

    @property
    def deps(self) -> frozenset[str]:
        if self.package is None:
            return frozenset()
        names: set[str] = set()
        for field in ("dependencies", "devDependencies"):
            section = self.package.get(field)
            if isinstance(section, dict):
                names.update(section)
        return frozenset(names)

    @property
    def scripts(self) -> dict:
        scripts = (self.package or {}).get("scripts")
        return scripts if isinstance(scripts, dict) else {}

    def has(self, *names: str) -> bool:
        return any((self.root / name).is_file() for name in names)

    def read(self, name: str) -> str | None:
        path = self.root / name
        try:
            return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        except OSError:
            return None


def _load_package(root: Path) -> dict | None:
    path = root / "package.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnsupportedProject(f"package.json is not valid JSON: {error}") from None
    return data if isinstance(data, dict) else {}


def config_text(project: Project, stem: str) -> str | None:
    """The first of <stem>.{js,mjs,cjs,ts,mts,cts} that exists."""
    for ext in ("js", "mjs", "cjs", "ts", "mts", "cts"):
        text = project.read(f"{stem}.{ext}")
        if text is not None:
            return text
    return None


def string_option(text: str | None, pattern: str) -> str | None:
    """A string literal assigned in a config file; only plain literals are trusted."""
    if not text:
        return None
    match = re.search(pattern, text)
    return match.group(1) if match else None
