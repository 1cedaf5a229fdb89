"""vercel.json destinations and header templates, compiled once at build time into the form
Vercel's proxy receives from routing-utils (vercel/vercel packages/routing-utils/src/
superstatic.ts): `:name` becomes `$1` (a source parameter, by group number) or `$name` (a value
a `has` condition binds), so the request handler only fills references in.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from chalicelib.pipeline.siteconfig.path_to_regexp import (
    Key,
    PatternError,
    compile_template,
    keys,
    parse,
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)(?://([^/]*))?")
_PORT = re.compile(r":\d*$")
# Node's url.format puts "/" as the path of these when it is empty (https://host -> https://host/).
_SLASHED = frozenset({"http:", "https:", "ftp:", "gopher:", "file:", "ws:", "wss:"})
# What Node's querystring.escape leaves as it is (besides letters, digits and "-._~").
_QUERY_SAFE = "!'()*"
UNNAMED = ""   # stands for every unnamed group when checking a destination's parameters


def references(source_keys: list[Key], bound: list[str]) -> dict[str, str]:
    """name -> `$<group>` for the source's named parameters, then `$name` for `has` names,
    which win over a source parameter of the same name."""
    refs = {key.name: f"${number}" for number, key in enumerate(source_keys, start=1)
            if key.named}
    refs.update((name, f"${name}") for name in bound)
    return refs


def destination_names(destination: str) -> set[str]:
    """The parameters a destination's host name, path and query values use (routing-utils
    checkPatternSyntax); an unnamed group counts as UNNAMED. Parts that are not patterns
    stop the search, as there."""
    scheme, _, hostname, _, path, query, _ = _split(destination)
    names: set[str] = set()
    for part in (hostname, path, *(value for _, value in parse_qsl(query))):
        try:
            found = keys(parse(part))
        except PatternError:
            break
        names.update(key.name if key.named else UNNAMED for key in found)
    return names


def compile_destination(destination: str, refs: Mapping[str, str]) -> str:
    """routing-utils replaceSegments: each part of the URL compiled on its own, the query
    re-encoded as Node's querystring does."""
    scheme, userinfo, hostname, port, path, query, fragment = _split(destination)
    authority = "//" if destination[len(scheme):].startswith("//") else ""
    hostname = compile_template(hostname, refs)
    path = compile_template(path, refs)
    fragment = compile_template(fragment, refs)
    pairs: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        pairs.setdefault(name, []).append(compile_template(value, refs))
    search = "&".join(f"{quote(name, safe=_QUERY_SAFE)}={quote(value, safe=_QUERY_SAFE)}"
                      for name, values in pairs.items() for value in values)
    if scheme and authority:
        if not path and scheme.lower() in _SLASHED:
            path = "/"
        elif path and not path.startswith("/"):
            path = "/" + path
        scheme = f"{scheme}{authority}{userinfo}{hostname}{port}"
    url = scheme + path + (f"?{search}" if search else "") + (f"#{fragment}" if fragment else "")
    # url.format escapes "$"; routing-utils turns it back, as the proxy reads "$1" there.
    return url.replace("%24", "$")


def compile_header(text: str, refs: Mapping[str, str]) -> str:
    """A header name or value (routing-utils convertHeaders): only known `:name`s change."""
    return compile_template(text, refs, direct=False) if refs and ":" in text else text


def _split(url: str) -> tuple[str, str, str, str, str, str, str]:
    """(scheme, userinfo@, hostname, :port, path, query, fragment), split as Node's
    url.parse does: the fragment first, then the query."""
    rest, _, fragment = url.partition("#")
    path, _, query = rest.partition("?")
    scheme = userinfo = hostname = port = ""
    found = _SCHEME.match(path)
    if found:
        # `mailto:a@b` has a scheme but no authority: the rest is its path.
        scheme, path = found[1], path[found.end():]
        user, at, host = (found[2] or "").rpartition("@")
        userinfo = user + at
        port_found = _PORT.search(host)
        hostname, port = (host[:port_found.start()], port_found[0]) if port_found else (host, "")
    return scheme, userinfo, hostname, port, path, query, fragment
