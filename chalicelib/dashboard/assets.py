"""The web dashboard's files: the app shell at `/` and its assets at `/dashboard/<version>/<name>`.

The files sit in static/ beside this module (Chalice packages chalicelib/ whole) and are read
once. `version` is a hash of all of them, so an asset URL names exactly one content: assets are
cached as immutable, and the shell, revalidated on every load (no-cache and an ETag), is what
moves a browser to a new version. A request's name is only ever looked up in the table read
at start, never joined to a path, so no name reaches the file system.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from chalice.app import Response

from chalicelib.storage.mediatypes import content_type

STATIC = Path(__file__).resolve().parent / "static"
SHELL = "index.html"
# Where the shell names its assets' directory; replaced by the version when the files are read.
VERSION_MARK = "{{version}}"
VERSION_CHARS = 16

# The page runs only its own scripts and styles and talks only to its own origin: no inline
# code anywhere (https://www.w3.org/TR/CSP3/), so an injected string can never run.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SHELL_CACHE = "no-cache"
# RFC 8246: a versioned URL's bytes never change, so a browser need not even revalidate.
ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Bundle:
    version: str
    shell: bytes
    assets: dict[str, bytes]


def load(root: Path = STATIC) -> Bundle:
    """Every regular file of `root` (no subdirectories, no dotfiles), the shell pointed at them."""
    files = {path.name: path.read_bytes() for path in sorted(root.iterdir())
             if path.is_file() and not path.name.startswith(".")}
    digest = hashlib.sha256()
    for name, body in files.items():
        digest.update(f"{name}\0{len(body)}\0".encode())
        digest.update(body)
    version = digest.hexdigest()[:VERSION_CHARS]
    shell = files.pop(SHELL).replace(VERSION_MARK.encode(), version.encode())
    return Bundle(version, shell, files)


@lru_cache(maxsize=1)
def bundle() -> Bundle:
    return load()


def shell_response(if_none_match: str | None, files: Bundle | None = None) -> Response:
    files = files or bundle()
    return _reply(files.shell, SHELL, f'"{files.version}"', SHELL_CACHE, if_none_match)


def asset_response(version: str, name: str, if_none_match: str | None,
                   files: Bundle | None = None) -> Response:
    """An asset of this version; 404 for another version or an unknown name."""
    files = files or bundle()
    body = files.assets.get(name) if version == files.version else None
    if body is None:
        return Response(body=b"Not Found\n", status_code=404,
                        headers={"Content-Type": "text/plain; charset=utf-8",
                                 "Cache-Control": SHELL_CACHE, **SECURITY_HEADERS})
    return _reply(body, name, f'"{files.version}"', ASSET_CACHE, if_none_match)


def _reply(body: bytes, name: str, etag: str, cache: str, if_none_match: str | None) -> Response:
    headers: dict[str, str | list[str]] = {"ETag": etag, "Cache-Control": cache, **SECURITY_HEADERS}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(body=b"", status_code=304, headers=headers)
    headers["Content-Type"] = content_type(name)
    return Response(body=body, status_code=200, headers=headers)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*`, or any listed tag equal by the weak comparison."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)
