"""Cloudflare Pages' reading of `_redirects` and `_headers` (percel.json `"dialect": "cloudflare"`).

Cloudflare's parsers: cloudflare/workers-sdk packages/workers-shared/utils/configuration/
parseRedirects.ts, parseHeaders.ts, validateURL.ts and constants.ts;
https://developers.cloudflare.com/pages/configuration/redirects/. A function here raises
SiteConfigError for a line Cloudflare skips; the file's reader skips it with a warning.
"""
from __future__ import annotations

import re

from chalicelib.pipeline.siteconfig.errors import RestSkipped, SiteConfigError
from chalicelib.pipeline.siteconfig.limits import (
    CLOUDFLARE_DYNAMIC_REDIRECTS,
    CLOUDFLARE_STATIC_REDIRECTS,
)
from chalicelib.pipeline.siteconfig.netlify import compiled_redirect
from chalicelib.schema import HtmlHandling, NetlifyRedirectRule

# constants.ts PERMITTED_STATUS_CODES: no 4xx, so no custom-404 rules.
STATUSES = frozenset({200, 301, 302, 303, 307, 308})
DEFAULT_STATUS = 302
_INLINE_COMMENT = re.compile(r"\s+#.*$")           # not a #fragment: it follows whitespace
_HTTPS = re.compile(r"^https://+(?P<host>[^/]+)/?(?P<path>.*)")  # validateURL.ts URL_REGEX
_PORT = re.compile(r".*:\d+$")
_PLACEHOLDER = re.compile(r":[A-Za-z]\w*")
_TO_INDEX = re.compile(r"/index(?:\.html)?$")


class CloudflareRedirects:
    """One `_redirects` file read as Cloudflare does: line by line, remembering the sources
    seen and counting static and dynamic rules against their caps."""

    def __init__(self, html_handling: HtmlHandling):
        self.html_handling = html_handling
        self.seen: set[str] = set()
        self.static = self.dynamic = 0

    def rule(self, line: str, where: str) -> NetlifyRedirectRule:
        """`from to [status]`, an inline comment cut off."""
        tokens = _INLINE_COMMENT.sub("", line).split()
        if not 2 <= len(tokens) <= 3:
            raise SiteConfigError(f"{where}: expected `from to [status]` (2 or 3 tokens), got "
                                  f"{len(tokens)}")
        source = _source(tokens[0], where)
        self._count(source, where)
        destination = _destination(tokens[1], where)
        status = _status(tokens[2] if len(tokens) == 3 else str(DEFAULT_STATUS), where)
        if self._loops(source, destination):
            raise SiteConfigError(f"{where}: {source} to {destination} would redirect in a loop "
                                  "(the page is served without /index or .html)")
        if source in self.seen:
            raise SiteConfigError(f"{where}: a rule for {source} came before")
        self.seen.add(source)
        if status == 200 and destination.startswith("https://"):
            raise SiteConfigError(f"{where}: a 200 rule can only rewrite to a path here, not to "
                                  f"{destination}")
        # force: Cloudflare applies every rule before it looks for a file
        # (packages/workers-shared/asset-worker/src/handler.ts calls handleRedirects first).
        return compiled_redirect(source, {}, destination, status, True, where)

    def _count(self, source: str, where: str) -> None:
        """Static rules count until the first dynamic one; from then on every rule is dynamic,
        and past the dynamic cap the rest of the file is skipped (parseRedirects.ts)."""
        if not self.dynamic and "*" not in source and not _PLACEHOLDER.search(source):
            self.static += 1
            if self.static > CLOUDFLARE_STATIC_REDIRECTS:
                raise SiteConfigError(f"{where}: more than {CLOUDFLARE_STATIC_REDIRECTS} static rules")
            return
        self.dynamic += 1
        if self.dynamic > CLOUDFLARE_DYNAMIC_REDIRECTS:
            raise RestSkipped(f"{where}: more than {CLOUDFLARE_DYNAMIC_REDIRECTS} dynamic rules; "
                              "this line and the rest of _redirects skipped")

    def _loops(self, source: str, destination: str) -> bool:
        """`/* /index.html`, or `/ /index` while HTML handling strips /index again."""
        if destination.startswith("https://") or not _TO_INDEX.search(destination):
            return False
        return source.endswith("/*") or (source.endswith("/") and self.html_handling != "none")


def _source(token: str, where: str) -> str:
    """A relative path only; a missing leading "/" is added, a query or #fragment dropped."""
    if _HTTPS.match(token):
        raise SiteConfigError(f"{where}: the source must be a path, not the URL {token}")
    path = token if token.startswith("/") else "/" + token
    return re.split(r"[?#]", path, maxsplit=1)[0]


def _destination(token: str, where: str) -> str:
    """A path, or an https:// URL (given "/" when it has no path); http:// is refused."""
    url = _HTTPS.match(token)
    if url:
        return f"https://{url['host']}/{url['path']}"
    if token.startswith("/"):
        return token
    raise SiteConfigError(f'{where}: the destination must start with "/" or "https://", not '
                          f"{token!r}")


def _status(token: str, where: str) -> int:
    status = int(token) if token.isdigit() else None
    if status is None or status not in STATUSES:
        raise SiteConfigError(f"{where}: status {token!r} is not one of "
                              f"{', '.join(map(str, sorted(STATUSES)))}")
    return status


def header_path_problem(path: str) -> str | None:
    """Why Cloudflare skips a `_headers` path line (and its headers), None when it does not:
    http:// and ports are refused (validateURL.ts); at most one `*`, and not with `:splat`,
    since `*` becomes `:splat` (parseHeaders.ts validateNoMultipleWildcards)."""
    url = _HTTPS.match(path)
    if not path.startswith("/") and url is None:
        return 'a path starts with "/", a URL with "https://"'
    if url and _PORT.match(url["host"]):
        return f"a URL with a port is not supported ({path})"
    wildcards = path.count("*")
    if wildcards > 1:
        return f"only one * per path; name the other segments (:name) in {path}"
    if wildcards and re.search(r":splat(?!\w)", path):
        return f"* and :splat cannot be combined (* is :splat) in {path}"
    return None
