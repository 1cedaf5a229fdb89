"""Which files of a folder `percel deploy` leaves out: .gitignore, .percelignore and a fixed list.

The pattern syntax is the part of gitignore(5) that real projects use: comments, `!` negation,
a trailing `/` for directories only, a `/` anywhere but the end anchoring the pattern to the
ignore file's folder, `*`, `?`, `[...]`, and `**` as a whole path segment. Pure: no file I/O.
"""
from __future__ import annotations

import re
from fnmatch import translate
from typing import NamedTuple

# The files that hold ignore rules, read in every folder; a folder's rules come after its parents'.
IGNORE_FILES = (".gitignore", ".percelignore")

# Never sent, whatever an ignore file says: version control, dependencies the build installs again,
# and files that usually hold credentials. A `!` rule cannot bring these back: a secret that reaches
# a deployment is public, so the safe default has no opt-out (rename the file if it must be sent).
NEVER_SENT_DIRS = frozenset({".git", ".hg", ".svn", "node_modules"})
NEVER_SENT_FILES = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_dsa*", "id_ecdsa*",
                    "id_ed25519*", ".npmrc", ".netrc", ".pypirc")
# Examples of the env files above hold no values by convention and projects commit them.
SENT_ANYWAY = frozenset({".env.example", ".env.sample", ".env.template"})


class Rule(NamedTuple):
    """One line of an ignore file; `base` is the folder holding it, relative to the deploy root."""
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool
    base: str

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.base:
            if not path.startswith(self.base + "/"):
                return False
            path = path[len(self.base) + 1:]
        return self.regex.match(path) is not None


# NEVER_SENT_FILES as one expression: matched once per file, not once per pattern (fnmatch's
# translation, as fnmatchcase uses it).
_NEVER_SENT_FILE = re.compile("|".join(f"(?:{translate(p)})" for p in NEVER_SENT_FILES))


def never_sent(name: str, is_dir: bool) -> bool:
    """True for a file or folder name on the fixed list."""
    if is_dir:
        return name in NEVER_SENT_DIRS
    return name not in SENT_ANYWAY and _NEVER_SENT_FILE.match(name) is not None


def parse(text: str, base: str = "") -> list[Rule]:
    """The rules of one ignore file's text, in order; blank lines and comments give none."""
    rules = []
    for line in text.splitlines():
        rule = parse_line(line, base)
        if rule is not None:
            rules.append(rule)
    return rules


def parse_line(line: str, base: str = "") -> Rule | None:
    line = _strip_trailing_spaces(line)
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    elif line.startswith(("\\!", "\\#")):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    # A slash at the start or in the middle anchors the pattern to the ignore file's folder;
    # otherwise it matches a name at any depth below it.
    anchored = "/" in line
    body = _translate(line.lstrip("/"))
    regex = re.compile(("" if anchored else "(?:.*/)?") + body + r"\Z", re.DOTALL)
    return Rule(regex, negated, dir_only, base)


def is_ignored(rules: list[Rule], path: str, is_dir: bool) -> bool:
    """Whether `path` (relative to the deploy root, `/`-separated) is ignored: the last rule that
    matches decides, as in git."""
    ignored = False
    for rule in rules:
        if rule.matches(path, is_dir):
            ignored = not rule.negated
    return ignored


def _strip_trailing_spaces(line: str) -> str:
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "  # "foo\ " keeps its escaped space
    return stripped


def _translate(pattern: str) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i) and i + 2 == n and (i == 0 or pattern[i - 1] == "/"):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            cls, i = _char_class(pattern, i)
            out.append(cls)
        elif pattern[i] == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """`[...]` from `start`; an unclosed `[` is a literal bracket, as in fnmatch."""
    end = pattern.find("]", start + 2 if pattern[start + 1:start + 2] in ("!", "^") else start + 1)
    if end < 0:
        return re.escape("["), start + 1
    inner = pattern[start + 1:end]
    if inner[:1] in ("!", "^"):
        inner = "^" + inner[1:]
    return "[" + inner.replace("\\", "\\\\") + "]", end + 1
