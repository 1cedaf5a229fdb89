"""`_headers`: a path line opens a block, the `Name: value` lines after it are its headers.

Both platforms tell a path from a header by the line itself, never by its indentation: a line
starting with "/" (Cloudflare: or `scheme://`) is a path, any other line with a colon is a
header (netlify/build packages/headers-parser/src/line_parser.ts; workers-sdk
packages/workers-shared/utils/configuration/parseHeaders.ts). A line either cannot read is
skipped with a warning, and the rest deploys.
"""
from __future__ import annotations

import re

from chalicelib.pipeline.siteconfig import cloudflare
from chalicelib.pipeline.siteconfig.errors import RestSkipped, SiteConfigError
from chalicelib.pipeline.siteconfig.files import read_rule_lines
from chalicelib.pipeline.siteconfig.headers import header_pair
from chalicelib.pipeline.siteconfig.limits import CLOUDFLARE_HEADER_RULES, MAX_RULES
from chalicelib.pipeline.siteconfig.netlify import add_header, header_block, header_rules
from chalicelib.pipeline.siteconfig.shape import HeaderBlock
from chalicelib.schema import Dialect, NetlifyHeaderRule

# A path line: Cloudflare takes any `scheme://` start as one (parseHeaders.ts
# LINE_IS_PROBABLY_A_PATH), so `X-Url:https://a.example` opens a block there; Netlify only "/"
# (line_parser.ts isPathLine), and percel adds http(s):// to drop host rules with a warning.
_PATH_LINE = {"cloudflare": re.compile(r"^(?:\S+://|/)"), "netlify": re.compile(r"^(?:/|https?://)")}


def parse_headers_file(text: str, warnings: list[str],
                       dialect: Dialect = "netlify") -> list[NetlifyHeaderRule]:
    """The blocks of `_headers`; every matching block applies (the resolver merges them).
    `! Name` removes a header another block set (Cloudflare Pages; percel reads it in both
    dialects, docs/DECISIONS.md#dialects)."""
    reader = _HeadersFile(dialect, warnings)
    read_rule_lines(text, "_headers", warnings, reader.line)
    reader.close()
    return header_rules(reader.blocks)


class _HeadersFile:
    """One `_headers` file as a dialect reads it: the blocks kept so far, the open one, and
    whether the open path was refused (then its header lines are skipped without a word, as
    parseHeaders.ts does)."""

    def __init__(self, dialect: Dialect, warnings: list[str]):
        self.cloudflare = dialect == "cloudflare"
        self.path_line = _PATH_LINE[dialect]
        self.cap = CLOUDFLARE_HEADER_RULES if self.cloudflare else MAX_RULES
        self.warnings = warnings
        self.blocks: list[HeaderBlock] = []
        self.current: HeaderBlock | None = None
        self.opened_at = ""
        self.skipping = False   # the current path line was refused: its headers go with it

    def line(self, line: str, where: str) -> None:
        if self.path_line.match(line):
            self._open(line, where)
        elif not self.skipping:
            self._header(line, where)

    def _open(self, path: str, where: str) -> None:
        # Counted before the open block is closed, as parseHeaders.ts does: the cap keeps
        # one block more than its number.
        if len(self.blocks) >= self.cap:
            raise RestSkipped(f"{where}: more than {self.cap} blocks; this line and the rest of "
                              "_headers skipped")
        self.close()
        self.skipping = True
        problem = cloudflare.header_path_problem(path) if self.cloudflare else None
        if problem:
            self.warnings.append(f"{where}: {problem}; block skipped")
            return
        self.current, self.opened_at = header_block(path, where, self.warnings), where
        self.skipping = False

    def _header(self, line: str, where: str) -> None:
        name, colon, value = (part.strip() for part in line.partition(":"))
        if not colon:
            self._detach(line, where)
            return
        if self.cloudflare:
            name = name.lower()   # parseHeaders.ts: names are case-insensitive
        if not name or not value:
            raise SiteConfigError(f"{where}: expected `Name: value`, got {line!r} (no "
                                  f"{'value' if name else 'name'})")
        if self.current is None:
            raise SiteConfigError(f"{where}: a header must follow a path line (a line starting "
                                  "with \"/\")")
        add_header(self.current, header_pair(name, value, where))

    def _detach(self, line: str, where: str) -> None:
        """`! Name`, Cloudflare's way to remove a header; percel also reads `!Name` in the
        Netlify dialect, as it did before the dialects existed."""
        marker = "! " if self.cloudflare else "!"
        if self.current is not None and line.startswith(marker):
            self.current["detach"].append(line[1:].strip().lower())
            return
        raise SiteConfigError(f"{where}: expected `Name: value` or a path starting with \"/\", "
                              f"got {line!r}")

    def close(self) -> None:
        """Keep the open block; Cloudflare reports a block that sets nothing, Netlify drops it
        silently."""
        block, self.current = self.current, None
        if block is None:
            return
        if block["headers"] or block["detach"] or block["regex"] is None:
            self.blocks.append(block)
        elif self.cloudflare:
            self.warnings.append(f"{self.opened_at}: no headers under this path; block skipped")
