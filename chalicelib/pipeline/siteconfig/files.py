"""Reading a config file the build made: only inside its tree, within a size cap, as UTF-8;
and the rule lines of a line-based one (`_redirects`, `_headers`), a line either platform
cannot read skipped with a warning."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from chalicelib import paths
from chalicelib.pipeline.siteconfig.errors import RestSkipped, SiteConfigError
from chalicelib.pipeline.siteconfig.limits import MAX_FILE_BYTES, MAX_LINE
from chalicelib.pipeline.siteconfig.shape import JsonObject


def read_text(path: Path, tree: Path) -> str | None:
    """The file's text, None when absent; `tree` is the directory it must resolve inside.

    The build made these files and may have made them symlinks, while the runner reads them
    as itself, outside the sandbox: `_headers -> /proc/self/environ` put the runner's whole
    environment (AWS_SECRET_ACCESS_KEY) in the build's error message. So, as in
    manifest.scan_output, a link is followed only when it stays inside the tree.
    """
    if not path.is_file():
        return None
    real = paths.resolve_inside(path, Path(tree).resolve())
    if real is None:
        raise SiteConfigError(f"{path.name}: a symlink to a file outside the {tree.name}/ "
                              "directory; not read")
    if real.stat().st_size > MAX_FILE_BYTES:
        raise SiteConfigError(f"{path.name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        # Bytes decoded as they are: the platforms split lines on "\n" only, so a lone "\r"
        # stays inside its line (and a header value holding it is refused, not split in two).
        return real.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SiteConfigError(f"{path.name}: not valid UTF-8 ({error.reason})") from None


def read_json_object(path: Path, tree: Path) -> JsonObject | None:
    """The file's top-level JSON object, None when absent (read as `read_text` does)."""
    text = read_text(path, tree)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SiteConfigError(f"{path.name}: invalid JSON at line {error.lineno}: {error.msg}") from None
    if not isinstance(data, dict):
        raise SiteConfigError(f"{path.name}: the top level must be a JSON object")
    return data


def read_rule_lines(text: str, file: str, warnings: list[str],
                    read: Callable[[str, str], None]) -> None:
    """Hand `read` every line that is not blank or a comment, stripped, with where it is
    (`_headers line 3`). A line longer than MAX_LINE, or one `read` refuses with
    SiteConfigError, is skipped with a warning; RestSkipped skips the rest of the file too."""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{file} line {number}"
        if len(line) > MAX_LINE:
            warnings.append(f"{where}: longer than {MAX_LINE} characters; line skipped")
            continue
        try:
            read(line, where)
        except RestSkipped as cap:
            warnings.append(str(cap))
            return
        except SiteConfigError as unreadable:
            warnings.append(f"{unreadable}; line skipped")
