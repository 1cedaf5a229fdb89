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
    return _ROUTES[mode](path, exists, True)


def _serve(key: str | None) -> Page | None:
    return Page(key=key) if key is not None else None


def _move(mode: str, file: str, target: str, exists: Exists, redirect: bool) -> Page | None:
    """Redirect to `target` when `file` exists, `target` is no file itself, and `target`
    (looked up without redirects) serves that same file."""
    if not redirect:
        return None
    key = exists(file)
    if key is None or exists(target) is not None:
        return None
    landed = _ROUTES[mode](target, exists, False)
    return Page(location=target) if landed is not None and landed.key == key else None


def _first(*pages: Callable[[], Page | None]) -> Page | None:
    for page in pages:
        found = page()
        if found is not None:
            return found
    return None


def _auto(path: str, exists: Exists, redirect: bool) -> Page | None:
    def move(file: str, target: str) -> Callable[[], Page | None]:
        return lambda: _move("auto-trailing-slash", file, target, exists, redirect)

    if path.endswith("/index"):
        head = path[:-len("index")]                       # "/x/"
        if exists(path) is not None:
            return Page(key=exists(path))
        found = _first(move(path + ".html", head), move(head[:-1] + ".html", head[:-1]))
    elif path.endswith("/index.html"):
        head = path[:-len("index.html")]
        found = _first(move(path, head), move(head[:-1] + ".html", head[:-1]))
    elif path.endswith("/"):
        found = _first(lambda: _serve(exists(path + "index.html")),
                       move(path[:-1] + ".html", path[:-1]))
    elif path.endswith(".html"):
        stem = path[:-len(".html")]
        found = _first(move(path, stem), move(stem + "/index.html", stem + "/"))
    else:
        found = None
    return found or _first(lambda: _serve(exists(path)), lambda: _serve(exists(path + ".html")),
                           move(path + "/index.html", path + "/"))


def _force(path: str, exists: Exists, redirect: bool) -> Page | None:
    def move(file: str, target: str) -> Callable[[], Page | None]:
        return lambda: _move("force-trailing-slash", file, target, exists, redirect)

    if path.endswith("/index"):
        head = path[:-len("index")]
        if exists(path) is not None:
            return Page(key=exists(path))
        found = _first(move(path + ".html", head), move(head[:-1] + ".html", head))
    elif path.endswith("/index.html"):
        head = path[:-len("index.html")]
        found = _first(move(path, head), move(head[:-1] + ".html", head))
    elif path.endswith("/"):
        found = _first(lambda: _serve(exists(path + "index.html")),
                       lambda: _serve(exists(path[:-1] + ".html")))
    elif path.endswith(".html"):
        stem = path[:-len(".html")]
        found = _first(move(path, stem + "/"), lambda: _serve(exists(path)),
                       move(stem + "/index.html", stem + "/"))
    else:
        found = None
    return found or _first(lambda: _serve(exists(path)), move(path + ".html", path + "/"),
                           move(path + "/index.html", path + "/"))


def _drop(path: str, exists: Exists, redirect: bool) -> Page | None:
    def move(file: str, target: str) -> Callable[[], Page | None]:
        return lambda: _move("drop-trailing-slash", file, target, exists, redirect)

    if path.endswith("/index"):
        stem = path[:-len("/index")]
        if exists(path) is not None:
            return Page(key=exists(path))
        found = (move("/index.html", "/")() if path == "/index"
                 else _first(move(stem + ".html", stem), move(path + ".html", stem)))
    elif path.endswith("/index.html"):
        stem = path[:-len("/index.html")]
        found = (move(path, "/")() if path == "/index.html"
                 else _first(move(path, stem), lambda: _serve(exists(path)),
                             move(stem + ".html", stem)))
    elif path.endswith("/"):
        stem = path[:-1]
        found = (_serve(exists("/index.html")) if path == "/"
                 else _first(move(stem + ".html", stem), move(stem + "/index.html", stem)))
    elif path.endswith(".html"):
        stem = path[:-len(".html")]
        found = _first(move(path, stem), move(stem + "/index.html", stem))
    else:
        found = None
    return found or _first(lambda: _serve(exists(path)), lambda: _serve(exists(path + ".html")),
                           lambda: _serve(exists(path + "/index.html")))


_ROUTES: dict[str, Callable[[str, Exists, bool], Page | None]] = {
    "auto-trailing-slash": _auto, "force-trailing-slash": _force, "drop-trailing-slash": _drop}
