"""A request as the resolver sees it: the path decoded once and checked safe."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qs, quote, unquote

from chalicelib import paths

MAX_PATH = 1024

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SEPARATOR = re.compile(r"%(?:2[fF]|5[cC]|00)")   # "/", "\" and NUL hidden in a segment
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_PORT = re.compile(r":\d{0,5}$")
# What a WHATWG URL parser leaves as it is in a path, besides letters, digits and "-._": space,
# `"#<>?`{}`, "%" and non-ASCII are percent-encoded.
_URL_PATH_SAFE = "/!$&'()*+,;=:@~[]|^\\"


@dataclass
class Request:
    method: str
    path: str                      # decoded once, checked safe
    query: str                     # raw query string, without "?"
    headers: Mapping[str, str]     # lower-case names

    @cached_property
    def netlify_path(self) -> str:
        """Netlify and Cloudflare Pages match rules on the path without its trailing slash."""
        return self.path.rstrip("/") or "/"

    @cached_property
    def encoded_path(self) -> str:
        """`path` as a WHATWG URL parser holds it (the decoded path's own "%" encoded too)."""
        return quote(self.path, safe=_URL_PATH_SAFE)

    @cached_property
    def encoded_netlify_path(self) -> str:
        return quote(self.netlify_path, safe=_URL_PATH_SAFE)

    @cached_property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    @cached_property
    def cookies(self) -> dict[str, str]:
        """Cookie pairs as the `cookie` package Next.js uses reads them: the first of a name
        wins, surrounding quotes go and percent-escapes are decoded."""
        found: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, equals, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not equals or name in found:
                continue
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[name] = unquote(value) if "%" in value else value
        return found


def check_path(raw: str, decoded: bool = False) -> str | int:
    """Percent-decode once; return the safe path or the status to refuse it with.

    Malformed input is a 400; a `.`/`..` segment is a 404, as werkzeug's safe_join resolves
    such a path to None. Nothing here touches storage.
    """
    if len(raw) > MAX_PATH or not raw.startswith("/"):
        return 400
    if not decoded:
        if _BAD_ESCAPE.search(raw) or _ENCODED_SEPARATOR.search(raw):
            return 400
        try:
            raw = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return 400
    if _CONTROL.search(raw):
        return 400
    if paths.safe_relative(raw[1:], url=True) is None:
        return 404
    return raw


def host_name(host: str) -> str:
    """A Host header's name: lower-cased, without its port, then without the trailing dot
    of a fully qualified name (`abc.example.com.:8443`, RFC 1034 §3.1)."""
    return _PORT.sub("", host.strip().lower()).rstrip(".")
