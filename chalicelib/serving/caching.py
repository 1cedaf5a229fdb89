"""Cache-Control for a file response: immutable for content-hashed names, else revalidate."""
from __future__ import annotations

import re
from functools import lru_cache

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"  # Vercel's and Cloudflare Pages' default

# Build output documented as immutable: Next.js `_next/static/`, SvelteKit `_app/immutable/`.
_IMMUTABLE_DIRS = ("_next/static/", "_app/immutable/")
_HEX_HASH = re.compile(r"[.-]([0-9a-f]{8,64})$")          # CRA, Docusaurus, Angular (webpack)
_SHORT_HASH = re.compile(r"[.-]([A-Za-z0-9_-]{8})$")      # Rollup/Vite base64url, esbuild base32
_CAMEL_WORDS = re.compile(r"(?:[A-Z][a-z]+)+")
_DIGIT = re.compile(r"\d")
_HEX_LETTER = re.compile(r"[a-f]")


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
    stem = stem.removesuffix(".chunk")
    hexadecimal = _HEX_HASH.search(stem)
    if hexadecimal and _DIGIT.search(hexadecimal[1]) and _HEX_LETTER.search(hexadecimal[1]):
        return True
    short = _SHORT_HASH.search(stem)
    return short is not None and _looks_random(short[1])


def _looks_random(token: str) -> bool:
    upper = any(c.isupper() for c in token)
    other = any(c.islower() or c.isdigit() for c in token)
    return upper and other and not _CAMEL_WORDS.fullmatch(token)


def cache_control(request_path: str, key: str) -> str:
    """Immutable only when both the URL and the file served are hashed: the URL is what caches key on."""
    if is_content_hashed(key) and is_content_hashed(request_path.lstrip("/")):
        return IMMUTABLE
    return REVALIDATE
