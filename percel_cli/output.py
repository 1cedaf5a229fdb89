"""What the command prints: human text by default, exactly one JSON object with --json."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

# ANSI SGR codes (ECMA-48 8.3.117).
_COLOURS = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1", "cyan": "36"}
_STATUS_COLOURS = {"deployed": "green", "failed": "red", "cancelled": "yellow", "building": "cyan",
                   "queued": "dim", "uploading": "dim"}


def use_colour(stream: TextIO, env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Colour only on a terminal and never when NO_COLOR is set to anything (no-color.org)."""
    return "NO_COLOR" not in env and hasattr(stream, "isatty") and stream.isatty()


class Printer:
    def __init__(self, as_json: bool, out: TextIO | None = None, err: TextIO | None = None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.colour = use_colour(self.out)
        self.err_colour = use_colour(self.err)

    def paint(self, text: str, colour: str, stream: TextIO | None = None) -> str:
        on = self.err_colour if stream is self.err else self.colour
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m" if on else text

    def status(self, status: str | None) -> str:
        return self.paint(status or "-", _STATUS_COLOURS.get(status or "", "bold"))

    def result(self, data: Any, human: str | None = None) -> None:
        """The command's answer: `data` as JSON with --json, else `human` (or `data` as JSON)."""
        if self.as_json:
            self.out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        elif human is not None:
            self.out.write(human + ("" if human.endswith("\n") or not human else "\n"))
        else:
            self.out.write(json.dumps(data, indent=2) + "\n")
        self.out.flush()

    def line(self, text: str) -> None:
        """One line of a command's own output (a log line of `percel logs`), flushed at once."""
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """Progress and remarks: always stderr, so --json stdout stays one object."""
        self.err.write(text + "\n")
        self.err.flush()

    def error(self, text: str) -> None:
        self.err.write(self.paint("error", "red", self.err) + ": " + text + "\n")
        self.err.flush()


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(strip_ansi(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c + " " * (w - len(strip_ansi(c))) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def strip_ansi(text: str) -> str:
    out, skipping = [], False
    for ch in text:
        if ch == "\x1b":
            skipping = True
        elif skipping and ch == "m":
            skipping = False
        elif not skipping:
            out.append(ch)
    return "".join(out)


def human_bytes(size: float) -> str:
    """1,000-based units, as the summary line reads: 340 KB, 1.2 MB."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit in ("bytes", "KB") else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def count(n: int, noun: str) -> str:
    """`1 file`, `1,000 files`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
