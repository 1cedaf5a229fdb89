"""percel's own media-type table, decided when the output is uploaded.

Full file name first, then the extension, then application/octet-stream.
Text types carry charset=utf-8. Python's mimetypes is not used: it reads the
host's /etc/mime.types, so the answer would differ between machines.
"""
from __future__ import annotations

import posixpath

DEFAULT = "application/octet-stream"

_BY_NAME = {
    "_headers": "text/plain",
    "_redirects": "text/plain",
    "apple-app-site-association": "application/json",
}

_BY_EXTENSION = {
    "html": "text/html", "htm": "text/html",
    "css": "text/css",
    "js": "text/javascript", "mjs": "text/javascript", "cjs": "text/javascript",
    "json": "application/json", "map": "application/json",
    "webmanifest": "application/manifest+json",
    "xml": "application/xml", "rss": "application/rss+xml", "atom": "application/atom+xml",
    "txt": "text/plain", "md": "text/markdown", "csv": "text/csv",
    "svg": "image/svg+xml",
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp", "avif": "image/avif", "ico": "image/x-icon", "bmp": "image/bmp",
    "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
    "eot": "application/vnd.ms-fontobject",
    "wasm": "application/wasm",
    "pdf": "application/pdf", "zip": "application/zip",
    "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg", "ogg": "audio/ogg",
    "wav": "audio/wav",
}

_TEXT_LIKE = ("application/json", "application/xml", "application/manifest+json",
              "image/svg+xml", "application/rss+xml", "application/atom+xml")


def content_type(path: str) -> str:
    """The Content-Type to serve a file at `path` with."""
    name = posixpath.basename(path).lower()
    media = _BY_NAME.get(name)
    if media is None:
        _, dot, extension = name.rpartition(".")
        media = _BY_EXTENSION.get(extension, DEFAULT) if dot else DEFAULT
    if media.startswith("text/") or media in _TEXT_LIKE:
        return f"{media}; charset=utf-8"
    return media


def is_compressible(media: str) -> bool:
    """Worth precompressing: text, and binary formats that are not compressed already."""
    base = media.split(";")[0]
    return base.startswith("text/") or base in _TEXT_LIKE or base in (
        "text/javascript", "application/wasm", "font/ttf", "font/otf", "image/x-icon", "image/bmp",
        "application/vnd.ms-fontobject")
