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
    FileEntry,
    HeaderRule,
    NetlifyHeaderRule,
    NetlifyRedirectRule,
    OutputManifest,
    RedirectRule,
    RewriteRule,
    SiteConfig,
)

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
        "files",
        "headers",
        "hidden",
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
        self.netlify_redirects: tuple[NetlifyRedirectRule, ...] = tuple(
            config.get("netlify_redirects", ()))
        self.netlify_headers: tuple[NetlifyHeaderRule, ...] = tuple(
            config.get("netlify_headers", ()))
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
