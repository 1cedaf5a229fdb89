"""What build time hands to request time: the output manifest's shape and shared constants.

The producers (the output scan and the config compiler, at build time) and the consumer (the
resolver, at request time) both import this module, so neither imports the other.
"""
from __future__ import annotations

import re
from typing import Literal, NotRequired, TypedDict

# Version of the source and output manifests' layout.
MANIFEST_VERSION = 1
# Version of the compiled site config inside an output manifest.
CONFIG_VERSION = 1
# Config files in the output that are never served (Netlify, Cloudflare Pages).
CONFIG_FILES = ("_redirects", "_headers")
# The statuses a redirect rule may use. Vercel: `permanent` true -> 308, false -> 307; default 308.
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Framing and routing headers a rule may not set: the handler owns them. Content-Type is not
# among them: Vercel, Netlify and Cloudflare Pages let a rule set it, and sites need that for
# extensionless files (`/.well-known/apple-app-site-association` must be application/json).
# Checked at build time, and again at request time for a vercel.json header name that is a
# template (`x-:b`).
RESERVED_HEADERS = frozenset({
    "content-length", "content-encoding", "content-range", "transfer-encoding", "connection",
    "location", "etag", "accept-ranges", "upgrade", "trailer", "keep-alive"})
# A header name a rule may set (RFC 9110 §5.6.2 field-name), checked with RESERVED_HEADERS at
# both times. Use fullmatch: `$` would let a trailing "\n" through.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Where Netlify and Cloudflare Pages read `_redirects`/`_headers` differently, the one followed
# (percel.json "dialect"; docs/DECISIONS.md#dialects).
Dialect = Literal["netlify", "cloudflare"]
DIALECTS: tuple[Dialect, ...] = ("netlify", "cloudflare")
# Cloudflare Pages' HTML handling modes (percel.json "html_handling"): which address of a page
# is canonical, and whether the others redirect to it.
HtmlHandling = Literal["auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"]
HTML_HANDLING_MODES: tuple[HtmlHandling, ...] = (
    "auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none")


# --- the output manifest (`deployments/<id>.json`) -------------------------------------------
# Written by storage.manifest.scan_output and pipeline.siteconfig at build time; read by the
# request handler. TypedDicts describe the JSON as it is: nothing is converted on the way in.

class Variant(TypedDict):
    """A precompressed copy of a file: its own blob."""
    sha256: str
    size: int


class PackRef(TypedDict):
    """Where a packed file's bytes are: `size` bytes at `offset` in the blob `sha256`, a pack of
    small files checked segment by segment when it was stored (docs/DECISIONS.md#packs)."""
    sha256: str
    offset: int


class FileEntry(TypedDict):
    sha256: str
    size: int
    type: str                                  # media type, decided at upload time
    pack: NotRequired[PackRef]                 # stored inside a pack, not as blobs/<sha256>
    encodings: NotRequired[dict[str, Variant]]  # "br" / "gzip", kept when they save >= 5%


class Condition(TypedDict):
    """Vercel `has` / `missing`; `value` is a Python regex matched against the whole value,
    its named groups binding names a destination or header may use (`$name`)."""
    type: Literal["header", "cookie", "host", "query"]
    key: str | None
    value: str | None
    # vercel.json's numeric operators (gt, gte, lt, lte) with their operands; absent when none.
    compare: NotRequired[list[tuple[str, float]]]


class PatternRule(TypedDict):
    regex: str              # a Python regex compiled from the rule's source
    names: list[str]        # the source's parameter names, in group order


class ConditionalRule(PatternRule):
    has: list[Condition]
    missing: list[Condition]


class RedirectRule(ConditionalRule):
    """vercel.json `redirects`. In vercel.json rules, `destination` and header names and
    values are templates: `$1` is a source group, `$name` a value a `has` item binds."""
    destination: str
    status: int


class RewriteRule(ConditionalRule):
    """vercel.json `rewrites` (internal destinations only)."""
    destination: str
    status: NotRequired[int]    # statusCode: the status the destination is served with


class HeaderRule(ConditionalRule):
    """vercel.json `headers`: [name, value] pairs."""
    headers: list[list[str]]


class NetlifyRedirectRule(PatternRule):
    """A `_redirects` line or netlify.toml [[redirects]] table; status 200 is a rewrite, `force`
    (the `!`) shadows files."""
    query: dict[str, str]
    destination: str
    status: int
    force: bool


class NetlifyHeaderRule(PatternRule):
    """A `_headers` block or netlify.toml [[headers]] table; `detach` holds the lower-case
    names of `! Name` lines."""
    headers: list[list[str]]
    detach: list[str]


class SiteConfig(TypedDict):
    """The compiled routing config (pipeline.siteconfig.empty_config / compile_config)."""
    version: int
    clean_urls: bool
    trailing_slash: bool | None
    spa: bool
    dialect: NotRequired[Dialect]                # absent in older manifests: "netlify"
    html_handling: NotRequired[HtmlHandling]     # absent in older manifests: "none"
    redirects: list[RedirectRule]
    rewrites: list[RewriteRule]
    headers: list[HeaderRule]
    netlify_redirects: list[NetlifyRedirectRule]
    netlify_headers: list[NetlifyHeaderRule]
    hidden: list[str]           # manifest keys never served
    warnings: list[str]


class OutputManifest(TypedDict):
    version: int
    id: str
    files: dict[str, FileEntry]
    # Absent or null in a manifest written before configs existed: a plain site.
    config: NotRequired[SiteConfig | None]
