"""A deployment's output manifest made ready to serve, once per deployment.

The handler keeps one CompiledSite per deployment in memory, so a request costs dictionary
lookups, not a manifest download and parse. The config's rules are pulled out with their
defaults once, so the resolver never re-reads the JSON shape on the request path.
"""
from __future__ import annotations

import re

from chalicelib.schema import (
    CONFIG_FILES,
    CONFIG_VERSION,
    Dialect,
    FileEntry,
    HeaderRule,
    HtmlHandling,
    NetlifyHeaderRule,
    NetlifyRedirectRule,
    OutputManifest,
    RedirectRule,
    RewriteRule,
    SiteConfig,
)
from chalicelib.serving.html_handling import Page, html_route
from chalicelib.serving.splat_rules import SplatRule, adapt

# What a compiled site costs in memory, measured with tracemalloc on a parsed 25,000-file
# manifest with 40-character paths: 525 bytes per file, 1,360 with br and gzip variants. The
# figures below round up, so the estimate errs on the large side.
BYTES_PER_FILE = 500           # plus the path's length
BYTES_PER_VARIANT = 420
# A compiled rule (regex source, names, destination, conditions): a generous per-rule figure.
BYTES_PER_RULE = 600
BYTES_PER_SITE = 4096

_ASSET_NAME = re.compile(r"\.[A-Za-z0-9]+$")
# A manifest without a config (null or absent) is a plain site.
_PLAIN: SiteConfig = {
    "version": CONFIG_VERSION, "clean_urls": False, "trailing_slash": None, "spa": False,
    "redirects": [], "rewrites": [], "headers": [], "netlify_redirects": [],
    "netlify_headers": [], "hidden": list(CONFIG_FILES), "warnings": []}


class CompiledSite:
    """Files, the hidden set and the compiled rules of one deployment; never changes."""

    __slots__ = (
        "clean_urls",
        "dialect",
        "files",
        "headers",
        "hidden",
        "html_handling",
        "netlify_headers",
        "netlify_redirects",
        "redirects",
        "rewrites",
        "size_estimate",
        "spa",
        "trailing_slash",
    )

    def __init__(self, manifest: OutputManifest):
        self.files: dict[str, FileEntry] = manifest.get("files") or {}
        config = manifest.get("config") or _PLAIN
        self.hidden = frozenset(config.get("hidden", CONFIG_FILES))
        self.clean_urls = bool(config.get("clean_urls"))
        self.trailing_slash: bool | None = config.get("trailing_slash")
        self.spa = bool(config.get("spa"))
        self.redirects: tuple[RedirectRule, ...] = tuple(config.get("redirects", ()))
        self.rewrites: tuple[RewriteRule, ...] = tuple(config.get("rewrites", ()))
        self.headers: tuple[HeaderRule, ...] = tuple(config.get("headers", ()))
        # Absent in manifests written before them: Netlify's reading, no HTML-handling moves.
        self.dialect: Dialect = config.get("dialect", "netlify")
        self.html_handling: HtmlHandling = config.get("html_handling", "none")
        self.netlify_redirects: tuple[SplatRule[NetlifyRedirectRule], ...] = tuple(
            adapt(rule, self.dialect) for rule in config.get("netlify_redirects", ()))
        self.netlify_headers: tuple[SplatRule[NetlifyHeaderRule], ...] = tuple(
            adapt(rule, self.dialect) for rule in config.get("netlify_headers", ()))
        self.size_estimate = self._estimate()

    def _estimate(self) -> int:
        """Bytes this site holds in memory, roughly: what the handler's cache is bounded by."""
        rules = (len(self.redirects) + len(self.rewrites) + len(self.headers)
                 + len(self.netlify_redirects) + len(self.netlify_headers))
        files = sum(BYTES_PER_FILE + len(key) + BYTES_PER_VARIANT * len(entry.get("encodings") or ())
                    for key, entry in self.files.items())
        return BYTES_PER_SITE + files + BYTES_PER_RULE * rules

    def lookup(self, path: str) -> str | None:
        """The manifest key a path serves: exact, then `.html`, then `/index.html`.

        `/about` serving about.html is Vercel's cleanUrls, and Netlify's and Cloudflare Pages'
        default; percel always does it (without cleanUrls it just isn't redirected to).
        """
        for key in _candidates(path[1:]):
            if key in self.files and key not in self.hidden:
                return key
        return None

    def exists(self, path: str) -> str | None:
        """The manifest key of exactly this path (`/a/b.html` -> `a/b.html`), if served."""
        key = path[1:]
        return key if key and key in self.files and key not in self.hidden else None

    def page(self, path: str) -> Page | None:
        """What the filesystem answers for `path`: a file, or under an HTML handling mode a
        redirect to the page's canonical address (html_handling.py); "none" keeps `lookup`."""
        if self.html_handling == "none":
            key = self.lookup(path)
            return None if key is None else Page(key=key)
        return html_route(self.html_handling, path, self.exists)

    def nearest_404(self, path: str) -> str | None:
        """`/a/b/c` tries a/b/404.html, a/404.html, then 404.html."""
        directories = path.split("/")[1:-1]
        for depth in range(len(directories), -1, -1):
            key = "/".join(directories[:depth] + ["404.html"])
            if key in self.files:
                return key
        return None


def _candidates(relative: str) -> tuple[str, ...]:
    if not relative:
        return ("index.html",)
    if relative.endswith("/"):
        return (relative + "index.html", relative[:-1] + ".html")
    return (relative, relative + ".html", relative + "/index.html")


def looks_like_asset(path: str) -> bool:
    """A last segment with an extension other than .html/.htm is a file request, never a page.

    The "dot rule" of connect-history-api-fallback (used by webpack-dev-server and CRA).
    """
    name = path.rsplit("/", 1)[-1]
    match = _ASSET_NAME.search(name)
    return (match is not None and match.start() > 0
            and match.group().lower() not in (".html", ".htm"))
