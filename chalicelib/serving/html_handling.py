"""Which address of a page is canonical: Cloudflare Pages' four HTML handling modes. Pure.

A page file (`x.html`, `x/index.html`) answers at one address and the others redirect there,
but only when the move is safe: the target is not a file of its own and, looked up without
redirects, serves the same file (so `/both/index.html` is never sent to `/both` when `/both`
is `both.html`). Facts from workers-sdk's asset-config fixture (fixtures/workers-shared-asset-
config/test-cases/html-handling-test-cases.ts); see docs/DECISIONS.md#html-handling for percel's
default and for "none".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Exists = Callable[[str], "str | None"]   # a path -> the manifest key of that exact file


@dataclass(frozen=True)
class Page:
    """Serve `key`, or redirect to `location` (one of the two is set)."""
    key: str | None = None
    location: str | None = None


def html_route(mode: str, path: str, exists: Exists) -> Page | None:
    """What `path` answers under `mode`; None when no file does (the 404 / SPA phase follows)."""
    return _route(mode, path, exists, True)


def _route(mode: str, path: str, exists: Exists, redirect: bool) -> Page | None:
    """`redirect` False: where `path` lands without moving, to check a move's target."""
    if path.endswith("/index") and (key := exists(path)) is not None:
        return Page(key=key)     # a file named `index` is served in every mode
    return _ROUTES[mode](path, _Steps(mode, exists, redirect))


_Step = Callable[[], "Page | None"]


class _Steps:
    """What a mode's table is made of: serve a file, or move to the page's canonical address;
    each deferred until `_first` tries it."""

    def __init__(self, mode: str, exists: Exists, redirect: bool):
        self.mode, self.exists, self.redirect = mode, exists, redirect

    def serve(self, file: str) -> _Step:
        return lambda: _serve(self.exists(file))

    def move(self, file: str, target: str) -> _Step:
        return lambda: self._move(file, target)

    def _move(self, file: str, target: str) -> Page | None:
        """Redirect to `target` when `file` exists, `target` is no file itself, and `target`
        (looked up without redirects) serves that same file."""
        if not self.redirect:
            return None
        key = self.exists(file)
        if key is None or self.exists(target) is not None:
            return None
        landed = _route(self.mode, target, self.exists, False)
        return Page(location=target) if landed is not None and landed.key == key else None


def _serve(key: str | None) -> Page | None:
    return Page(key=key) if key is not None else None


def _first(*steps: _Step) -> Page | None:
    for step in steps:
        found = step()
        if found is not None:
            return found
    return None


def _auto(path: str, s: _Steps) -> Page | None:
    if path.endswith("/index"):
        head = path[:-len("index")]                       # "/x/"
        found = _first(s.move(path + ".html", head), s.move(head[:-1] + ".html", head[:-1]))
    elif path.endswith("/index.html"):
        head = path[:-len("index.html")]
        found = _first(s.move(path, head), s.move(head[:-1] + ".html", head[:-1]))
    elif path.endswith("/"):
        found = _first(s.serve(path + "index.html"), s.move(path[:-1] + ".html", path[:-1]))
    elif path.endswith(".html"):
        stem = path[:-len(".html")]
        found = _first(s.move(path, stem), s.move(stem + "/index.html", stem + "/"))
    else:
        found = None
    return found or _first(s.serve(path), s.serve(path + ".html"),
                           s.move(path + "/index.html", path + "/"))


def _force(path: str, s: _Steps) -> Page | None:
    if path.endswith("/index"):
        head = path[:-len("index")]
        found = _first(s.move(path + ".html", head), s.move(head[:-1] + ".html", head))
    elif path.endswith("/index.html"):
        head = path[:-len("index.html")]
        found = _first(s.move(path, head), s.move(head[:-1] + ".html", head))
    elif path.endswith("/"):
        found = _first(s.serve(path + "index.html"), s.serve(path[:-1] + ".html"))
    elif path.endswith(".html"):
        stem = path[:-len(".html")]
        found = _first(s.move(path, stem + "/"), s.serve(path),
                       s.move(stem + "/index.html", stem + "/"))
    else:
        found = None
    return found or _first(s.serve(path), s.move(path + ".html", path + "/"),
                           s.move(path + "/index.html", path + "/"))


def _drop(path: str, s: _Steps) -> Page | None:
    if path.endswith("/index"):
        stem = path[:-len("/index")]
        found = (s.move("/index.html", "/")() if path == "/index"
                 else _first(s.move(stem + ".html", stem), s.move(path + ".html", stem)))
    elif path.endswith("/index.html"):
        stem = path[:-len("/index.html")]
        found = (s.move(path, "/")() if path == "/index.html"
                 else _first(s.move(path, stem), s.serve(path), s.move(stem + ".html", stem)))
    elif path.endswith("/"):
        stem = path[:-1]
        found = (s.serve("/index.html")() if path == "/"
                 else _first(s.move(stem + ".html", stem), s.move(stem + "/index.html", stem)))
    elif path.endswith(".html"):
        stem = path[:-len(".html")]
        found = _first(s.move(path, stem), s.move(stem + "/index.html", stem))
    else:
        found = None
    return found or _first(s.serve(path), s.serve(path + ".html"), s.serve(path + "/index.html"))


_ROUTES: dict[str, Callable[[str, _Steps], Page | None]] = {
    "auto-trailing-slash": _auto, "force-trailing-slash": _force, "drop-trailing-slash": _drop}
