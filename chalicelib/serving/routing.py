"""The request handler's pure logic: (request, output manifest) -> Decision. No I/O.

The adapter (chalicelib/serving/site.py) calls `resolve` and then does what the Decision says: send the
status and headers, and fetch `body` (a blob, maybe a byte range of it) or send `inline`.

Order of evaluation (Vercel's, https://vercel.com/docs/project-configuration, then the Netlify
rules at the point Netlify applies them):
  1. method (GET/HEAD) and path safety;
  2. cleanUrls redirect, trailingSlash redirect, vercel.json redirects;
  3. `_redirects` rules: first match wins; a rule does not shadow an existing file unless forced
     with `!` (https://docs.netlify.com/routing/redirects/rewrites-proxies/#shadowing);
  4. headers (vercel.json `headers`, then `_headers`), matched on the request path;
  5. the filesystem: exact file, `<path>.html`, `<path>/index.html`;
  6. vercel.json rewrites (only when no file matched);
  7. SPA fallback to /index.html (never for asset-like paths), then the nearest 404.html.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Mapping
from urllib.parse import parse_qs, parse_qsl, quote, unquote, unquote_plus

from chalicelib import paths, safe_regex
from chalicelib.storage import mediatypes
from chalicelib.schema import CONFIG_FILES, REDIRECT_CODES
from chalicelib.serving.http_rules import not_modified, parse_range, pick_encoding

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"  # Vercel's and Cloudflare Pages' default
MAX_PATH = 1024
ALLOWED_METHODS = "GET, HEAD"
# RFC 9110 §15.4.5: a 304 carries only these (Date is the server's business), plus the
# Content-Type a 200 would have sent. §15.4.5 lets a 304 omit it, but API Gateway (and chalice
# local) then add `application/json` (aws/aws-sam-cli#1218), and a cache updates its stored
# headers from a 304 (RFC 9111 §4.3.4): the page would turn JSON.
NOT_MODIFIED_FIELDS = frozenset({"etag", "cache-control", "vary", "date", "content-location", "expires",
                                 "content-type"})
_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            416: "Range Not Satisfiable"}
# Characters kept as they are when a decoded path goes back into a Location (RFC 3986 pchar).
_PATH_SAFE = "/!$&'()*+,;=:@~"
# What a finished Location keeps as it is: RFC 3986 reserved and unreserved characters, and "%"
# (escapes already made). The rest is percent-encoded: a CR or LF from a config destination
# would start a new header (response splitting), and a field value outside ASCII is not sent
# at all (http.server fails on it; RFC 9110 §5.5 makes non-ASCII obsolete in fields).
_LOCATION_SAFE = "!#$%&'()*+,/:;=?@[]~"


@dataclass(frozen=True)
class BlobRef:
    """What body to send: the blob `blobs/<sha256>`, whole or an inclusive byte range of it."""
    sha256: str
    size: int                              # the whole blob's size
    range: tuple[int, int] | None = None   # (first, last), inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.size if self.range is None else self.range[1] - self.range[0] + 1


@dataclass
class Decision:
    """The response to send. `headers` include Content-Length (also on HEAD, RFC 9110 §9.3.2)."""
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: BlobRef | None = None        # fetch and send this; None on HEAD, 304, 416, redirects
    inline: bytes = b""                # a small generated body (plain 404, 400, 405)
    location: str | None = None        # set on redirects (also in headers)
    file: str | None = None            # the manifest key served, for logs and tests

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((value for key, value in self.headers if key.lower() == lower), None)


@dataclass
class _Request:
    method: str
    path: str                      # decoded once, checked safe
    query: str                     # raw query string, without "?"
    headers: Mapping[str, str]     # lower-case names

    @cached_property
    def netlify_path(self) -> str:
        """Netlify and Cloudflare Pages match rules on the path without its trailing slash."""
        return self.path.rstrip("/") or "/"

    @cached_property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


class _Site:
    __slots__ = ("files", "config", "hidden")

    def __init__(self, manifest: dict):
        self.files: dict = manifest.get("files") or {}
        self.config: dict = manifest.get("config") or {}
        self.hidden = frozenset(self.config.get("hidden", CONFIG_FILES))


def resolve(method: str, path: str, headers: Mapping[str, str], manifest: dict,
            query: str = "", *, decoded: bool = False) -> Decision:
    """Decide the response to a request for a site.

    path: the request path as received, still percent-encoded, without the query string
          (pass decoded=True only if the front end already decoded it once; it is then
          checked but not decoded again).
    query: the raw query string without "?", used for redirects and query-matching rules.
    headers: request headers with lower-case names.
    manifest: the output manifest ({"files": ..., "config": ...}, see chalicelib/pipeline/siteconfig.py).
    """
    if method not in ("GET", "HEAD"):
        return plain(405, method, [("Allow", ALLOWED_METHODS)])
    safe = check_path(path, decoded)
    if isinstance(safe, int):
        return plain(safe, method)
    return _route(_Request(method, safe, query, headers), _Site(manifest))


def _route(req: _Request, site: _Site) -> Decision:
    redirect = _redirect_phase(req, site)
    if redirect is not None:
        return redirect
    key = lookup(site, req.path)
    hit = _netlify_match(req, site, shadowed=key is not None)
    extra = _rule_headers(req, site)
    if hit is not None:
        decision = _apply_netlify(req, site, hit, extra)
        if decision is not None:
            return decision
    if key is not None:
        return _serve(req, site, key, 200, extra)
    return _rewrite_phase(req, site, extra) or _fallback(req, site, extra)


# --- path safety ---------------------------------------------------------------------------

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SEPARATOR = re.compile(r"%(?:2[fF]|5[cC]|00)")   # "/", "\" and NUL hidden in a segment
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def check_path(raw: str, decoded: bool = False) -> str | int:
    """Percent-decode once; return the safe path or the status to refuse it with.

    Malformed input is a 400; a `.`/`..` segment is a 404, as werkzeug's safe_join resolving
    to None (CONVENTIONS.md §7). Nothing here touches storage.
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


# --- the filesystem ------------------------------------------------------------------------

def lookup(site: _Site, path: str) -> str | None:
    """The manifest key a path serves: exact, then `.html`, then `/index.html`.

    `/about` serving about.html is Vercel's cleanUrls, and Netlify's and Cloudflare Pages'
    default; percel always does it (without cleanUrls it just isn't redirected to).
    """
    relative = path[1:]
    if not relative:
        candidates: tuple[str, ...] = ("index.html",)
    elif relative.endswith("/"):
        candidates = (relative + "index.html", relative[:-1] + ".html")
    else:
        candidates = (relative, relative + ".html", relative + "/index.html")
    for key in candidates:
        if key in site.files and key not in site.hidden:
            return key
    return None


_ASSET_NAME = re.compile(r"\.[A-Za-z0-9]+$")


def looks_like_asset(path: str) -> bool:
    """A last segment with an extension other than .html/.htm is a file request, never a page.

    The "dot rule" of connect-history-api-fallback (used by webpack-dev-server and CRA).
    """
    name = path.rsplit("/", 1)[-1]
    match = _ASSET_NAME.search(name)
    return bool(match) and match.start() > 0 and match.group().lower() not in (".html", ".htm")


# --- content-hashed names ------------------------------------------------------------------

# Build output documented as immutable: Next.js `_next/static/`, SvelteKit `_app/immutable/`.
_IMMUTABLE_DIRS = ("_next/static/", "_app/immutable/")
_HEX_HASH = re.compile(r"[.-]([0-9a-f]{8,64})$")          # CRA, Docusaurus, Angular (webpack)
_SHORT_HASH = re.compile(r"[.-]([A-Za-z0-9_-]{8})$")      # Rollup/Vite base64url, esbuild base32
_CAMEL_WORDS = re.compile(r"(?:[A-Z][a-z]+)+")


@lru_cache(maxsize=16384)   # pure and called on every file response
def is_content_hashed(key: str) -> bool:
    """Conservative: a name is hashed when its last token before the extension looks random.

    A miss costs a revalidation; a false hit would pin a changed file in caches for a year,
    so words, dates and sizes (Settings, DarkMode, 20240101, 1024x1024) never qualify.
    """
    if key.startswith(_IMMUTABLE_DIRS):
        return True
    stem, dot, extension = key.rsplit("/", 1)[-1].rpartition(".")
    if not dot or not stem or extension.lower() in ("html", "htm"):
        return False
    stem = stem[:-6] if stem.endswith(".chunk") else stem
    hexadecimal = _HEX_HASH.search(stem)
    if hexadecimal and re.search(r"\d", hexadecimal[1]) and re.search(r"[a-f]", hexadecimal[1]):
        return True
    short = _SHORT_HASH.search(stem)
    return bool(short) and _looks_random(short[1])


def _looks_random(token: str) -> bool:
    upper = any(c.isupper() for c in token)
    other = any(c.islower() or c.isdigit() for c in token)
    return upper and other and not _CAMEL_WORDS.fullmatch(token)


def cache_control(request_path: str, key: str) -> str:
    """Immutable only when both the URL and the file served are hashed: the URL is what caches key on."""
    if is_content_hashed(key) and is_content_hashed(request_path.lstrip("/")):
        return IMMUTABLE
    return REVALIDATE


# --- patterns, conditions, substitution ----------------------------------------------------

def _match(rule: dict, path: str) -> dict[str, str] | None:
    """Match a compiled rule; the values by name, plus "$1".. by position."""
    found = safe_regex.match(rule["regex"], path)
    if found is None:
        return None
    groups = [value or "" for value in found.groups()]
    values = {f"${number}": value for number, value in enumerate(groups, start=1)}
    values.update(zip(rule.get("names", ()), groups))
    return values


def _conditions_hold(rule: dict, req: _Request) -> bool:
    """Vercel `has` / `missing` (https://vercel.com/docs/project-configuration#redirects)."""
    return (all(_condition(item, req) for item in rule.get("has", ()))
            and not any(_condition(item, req) for item in rule.get("missing", ())))


def _condition(item: dict, req: _Request) -> bool:
    actual = _condition_value(item, req)
    if actual is None:
        return False
    return item.get("value") is None or safe_regex.match(item["value"], actual, full=True) is not None


def _condition_value(item: dict, req: _Request) -> str | None:
    kind, key = item["type"], (item.get("key") or "")
    if kind == "header":
        return req.headers.get(key.lower())
    if kind == "host":
        # Host names are case-insensitive (RFC 9110 §4.2.3); Next.js matchHas lower-cases too.
        return host_name(req.headers.get("host", "")) or None
    if kind == "query":
        return req.params.get(key, [None])[0]
    return _cookies(req.headers.get("cookie", "")).get(key)


def host_name(host: str) -> str:
    """A Host header's name: lower-cased, without its port, then without the trailing dot
    of a fully qualified name (`abc.example.com.:8443`, RFC 1034 §3.1)."""
    return re.sub(r":\d{0,5}$", "", host.strip().lower()).rstrip(".")


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in header.split(";") if "=" in part)
    return {name: value for name, _, value in pairs}


# `:path*` / `:path+` in a destination are the parameter itself (path-to-regexp compile).
_REFERENCE = re.compile(r"\$(\d+)|[:$]([A-Za-z_][A-Za-z0-9_]*)[*+]?")


def substitute(template: str, values: dict[str, str], encode: bool) -> str:
    """Fill `:name`, `$name` and `$1` in a destination; unknown references stay as written.

    Values are percent-encoded for a Location (encode=True) and kept raw for a rewrite.
    """
    def fill(ref: re.Match) -> str:
        name = f"${ref[1]}" if ref[1] else ref[2]
        if name not in values:
            return ref[0]
        return quote(values[name], safe=_PATH_SAFE) if encode else values[name]
    return _REFERENCE.sub(fill, template)


# --- redirects -----------------------------------------------------------------------------

_CLEAN_INDEX = re.compile(r"^/(?:(.+)/)?index(?:\.html)?/?$")
_CLEAN_HTML = re.compile(r"^/(.*)\.html/?$")
_SLASHLESS_PAGE = re.compile(r"^/((?:[^/]+/)*[^/.]+)$")
_SLASHED_FILE = re.compile(r"^/((?:[^/]+/)*[^/]+\.\w+)/$")


def _redirect_phase(req: _Request, site: _Site) -> Decision | None:
    config = site.config
    target = _clean_urls_target(req.path, config) or _slash_target(req.path, config)
    if target is not None:
        return redirect(req, quote(target, safe=_PATH_SAFE), 308)
    for rule in config.get("redirects", ()):
        values = _match(rule, req.path)
        if values is not None and _conditions_hold(rule, req):
            destination = substitute(rule["destination"], values, True)
            return redirect(req, destination, rule["status"], merge_query=True)
    return None


def _clean_urls_target(path: str, config: dict) -> str | None:
    """cleanUrls: `/x/index(.html)` -> `/x`, `/x.html` -> `/x` (Vercel routing-utils, 308)."""
    if not config.get("clean_urls"):
        return None
    found = _CLEAN_INDEX.match(path) or _CLEAN_HTML.match(path)
    if found is None:
        return None
    clean = "/" + (found[1] or "")
    return clean + "/" if config.get("trailing_slash") and clean != "/" else clean


def _slash_target(path: str, config: dict) -> str | None:
    """trailingSlash: true adds a slash to pages (not files, not /.well-known); false removes it."""
    setting = config.get("trailing_slash")
    if setting is True and not (path + "/").startswith("/.well-known/"):
        if _SLASHLESS_PAGE.match(path):
            return path + "/"
        if _SLASHED_FILE.match(path):
            return path[:-1]
    if setting is False and path != "/" and path.endswith("/"):
        return path[:-1]
    return None


def redirect(req: _Request, destination: str, status: int, merge_query: bool = False) -> Decision:
    """A redirect that carries the request's query (Vercel, Netlify), percent-encoded for a header."""
    if destination.startswith("/"):
        # `//evil.example` would be a protocol-relative URL: an open redirect.
        destination = "/" + destination.lstrip("/\\")
    destination = quote(_with_query(destination, req.query, merge_query), safe=_LOCATION_SAFE)
    headers = [("Location", destination), ("Cache-Control", REVALIDATE), ("Content-Length", "0")]
    return Decision(status, headers, location=destination)


def _with_query(destination: str, query: str, merge: bool) -> str:
    """Put the request's query before the destination's #fragment (RFC 3986 §3.5).

    A destination with a query of its own keeps it; with merge (vercel.json redirects) the
    request's other parameters follow it: `/?baz=10` -> `/lol/?path=foo&baz=10`
    (https://vercel.com/guides/how-do-i-perform-vercel-redirects-based-on-query-strings; a
    parameter both name takes the destination's value, as in Next.js prepareDestination).
    """
    if not query:
        return destination
    base, hash_mark, fragment = destination.partition("#")
    path, question, own = base.partition("?")
    if question and not merge:
        return destination
    named = {name for name, _ in parse_qsl(own, keep_blank_values=True)}
    kept = [pair for pair in query.split("&") if unquote_plus(pair.partition("=")[0]) not in named]
    joined = "&".join(part for part in (own, *kept) if part)
    return f"{path}?{joined}{hash_mark}{fragment}" if joined else f"{path}{hash_mark}{fragment}"


# --- _redirects (Netlify / Cloudflare Pages) -----------------------------------------------

def _netlify_match(req: _Request, site: _Site, shadowed: bool) -> tuple[dict, dict] | None:
    """First matching rule; when a file exists only forced (`!`) rules may apply (shadowing)."""
    path = req.netlify_path
    for rule in site.config.get("netlify_redirects", ()):
        if shadowed and not rule.get("force"):
            continue
        values = _match(rule, path)
        if values is None:
            continue
        bound = _query_values(rule.get("query") or {}, req)
        if bound is not None:
            values.update(bound)
            return rule, values
    return None


def _query_values(wanted: dict[str, str], req: _Request) -> dict[str, str] | None:
    """Netlify query matching: every listed parameter must be present; `:name` binds its value."""
    bound = {}
    for name, expected in wanted.items():
        actual = req.params.get(name)
        if actual is None:
            return None
        if expected.startswith(":"):
            bound[expected[1:]] = actual[0]
        elif expected and actual[0] != expected:
            return None
    return bound


def _apply_netlify(req: _Request, site: _Site, hit: tuple[dict, dict],
                   extra: list[tuple[str, str]]) -> Decision | None:
    rule, values = hit
    if rule["status"] in REDIRECT_CODES:
        return redirect(req, substitute(rule["destination"], values, True), rule["status"])
    target = substitute(rule["destination"], values, False).split("?", 1)[0]
    key = lookup(site, target)
    if key is None or (rule["status"] == 200 and _html_for_asset(req.path, key)):
        return None
    return _serve(req, site, key, rule["status"], extra)


def _html_for_asset(request_path: str, key: str) -> bool:
    """A rewrite must not answer a missing script or image with HTML (issue 3, SPA fallback)."""
    return looks_like_asset(request_path) and key.endswith((".html", ".htm"))


# --- headers rules -------------------------------------------------------------------------

def _rule_headers(req: _Request, site: _Site) -> list[tuple[str, str]]:
    """vercel.json headers (a later rule overrides a name), then `_headers` (values of one name
    from several blocks are joined with ", ", as Netlify and Cloudflare Pages do; `! Name`
    detaches)."""
    merged: dict[str, tuple[str, str]] = {}
    for rule in site.config.get("headers", ()):
        if _match(rule, req.path) is not None and _conditions_hold(rule, req):
            merged.update((name.lower(), (name, value)) for name, value in rule["headers"])
    _merge_netlify_headers(req, site, merged)
    return list(merged.values())


def _merge_netlify_headers(req: _Request, site: _Site, merged: dict) -> None:
    path = req.netlify_path
    joined: set[str] = set()
    detached: set[str] = set()
    for rule in site.config.get("netlify_headers", ()):
        if _match(rule, path) is None:
            continue
        detached.update(rule.get("detach", ()))
        for name, value in rule["headers"]:
            lower = name.lower()
            if lower in joined:
                value = f"{merged[lower][1]}, {value}"
            merged[lower] = (name, value)
            joined.add(lower)
    for lower in detached:
        merged.pop(lower, None)


# --- rewrites and fallbacks ----------------------------------------------------------------

def _rewrite_phase(req: _Request, site: _Site, extra: list[tuple[str, str]]) -> Decision | None:
    """vercel.json rewrites, only reached when no file matched. Like Vercel's `check: true`,
    a destination that is not a file carries on to the next rule with the rewritten path."""
    path = req.path
    for rule in site.config.get("rewrites", ()):
        values = _match(rule, path)
        if values is None or not _conditions_hold(rule, req):
            continue
        path = substitute(rule["destination"], values, False).split("?", 1)[0]
        key = lookup(site, path)
        if key is not None and not _html_for_asset(req.path, key):
            return _serve(req, site, key, 200, extra)
    return None


def _fallback(req: _Request, site: _Site, extra: list[tuple[str, str]]) -> Decision:
    """SPA fallback for page-like paths, else the nearest 404.html (Cloudflare Pages), else plain."""
    if site.config.get("spa") and not looks_like_asset(req.path) and "index.html" in site.files:
        return _serve(req, site, "index.html", 200, extra)
    key = nearest_404(site.files, req.path)
    if key is not None:
        return _serve(req, site, key, 404, extra)
    return plain(404, req.method, extra)


def nearest_404(files: Mapping[str, dict], path: str) -> str | None:
    """`/a/b/c` tries a/b/404.html, a/404.html, then 404.html."""
    directories = path.split("/")[1:-1]
    for depth in range(len(directories), -1, -1):
        key = "/".join(directories[:depth] + ["404.html"])
        if key in files:
            return key
    return None


def plain(status: int, method: str, extra: list[tuple[str, str]] | tuple = ()) -> Decision:
    body = f"{status} {_REASONS.get(status, '')}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", REVALIDATE)]
    headers = _override(headers, list(extra))
    headers.append(("Content-Length", str(len(body))))
    return Decision(status, headers, inline=b"" if method == "HEAD" else body)


# --- serving a file: encodings, ETag, 304, Range -------------------------------------------

def _serve(req: _Request, site: _Site, key: str, status: int,
           extra: list[tuple[str, str]]) -> Decision:
    entry = site.files[key]
    byte_range = _requested_range(req, entry) if status == 200 else None
    encoding = None if byte_range is not None else pick_encoding(req.headers.get("accept-encoding"), entry)
    variant = entry["encodings"][encoding] if encoding else entry
    etag = f'"{variant["sha256"][:32]}"'   # one ETag per variant: each variant is its own blob
    headers = _override(_file_headers(req.path, key, entry, status, encoding, etag), extra)
    if status == 200 and not_modified(req.headers.get("if-none-match"), etag):
        return Decision(304, [h for h in headers if h[0].lower() in NOT_MODIFIED_FIELDS], file=key)
    if byte_range == "unsatisfiable":
        headers += [("Content-Range", f"bytes */{entry['size']}"), ("Content-Length", "0")]
        return Decision(416, headers, file=key)
    body = BlobRef(variant["sha256"], variant["size"], byte_range)
    if byte_range is not None:
        status = 206
        headers.append(("Content-Range", f"bytes {byte_range[0]}-{byte_range[1]}/{entry['size']}"))
    headers.append(("Content-Length", str(body.length)))
    return Decision(status, headers, body=None if req.method == "HEAD" else body, file=key)


def _file_headers(request_path: str, key: str, entry: dict, status: int,
                  encoding: str | None, etag: str) -> list[tuple[str, str]]:
    media = entry.get("type", mediatypes.DEFAULT)
    policy = cache_control(request_path, key) if status == 200 else REVALIDATE
    headers = [("Content-Type", media), ("ETag", etag), ("Cache-Control", policy)]
    if status == 200:
        headers.append(("Accept-Ranges", "bytes"))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    if entry.get("encodings") or mediatypes.is_compressible(media):
        headers.append(("Vary", "Accept-Encoding"))   # RFC 9110 §12.5.5
    return headers


def _override(headers: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Rule headers replace defaults of the same name (e.g. Cache-Control) and add the rest."""
    if not extra:
        return headers
    names = {name.lower() for name, _ in extra}
    return [h for h in headers if h[0].lower() not in names] + list(extra)


def _requested_range(req: _Request, entry: dict) -> tuple[int, int] | str | None:
    """Ranges are of the identity encoding; If-Range needs a strong match (RFC 9110 §13.1.5)."""
    header = req.headers.get("range")
    if not header:
        return None
    if_range = req.headers.get("if-range")
    if if_range is not None and if_range.strip() != f'"{entry["sha256"][:32]}"':
        return None   # a stale validator, or a date: we have no Last-Modified to compare with
    return parse_range(header, entry["size"])
