"""The shape of the manifest's "config", as the request handler reads it."""
from __future__ import annotations

from typing import NotRequired, TypedDict

from chalicelib.schema import CONFIG_VERSION

# One compiled rule: {"regex", "names", ...}; the keys per list are in the package docstring.
Rule = dict[str, object]
# A parsed JSON object from a config file, not yet validated.
JsonObject = dict[str, object]


class HeaderBlock(TypedDict):
    """A `_headers` path block; a block percel ignores has no regex (and no names)."""
    regex: str | None
    names: NotRequired[list[str]]
    headers: list[list[str]]
    detach: list[str]


class SiteConfig(TypedDict):
    version: int
    clean_urls: bool
    trailing_slash: bool | None
    spa: bool
    redirects: list[Rule]
    rewrites: list[Rule]
    headers: list[Rule]
    netlify_redirects: list[Rule]
    netlify_headers: list[HeaderBlock]
    hidden: list[str]
    warnings: list[str]


def empty_config() -> SiteConfig:
    """The config of a site with no config files and no SPA fallback."""
    return {"version": CONFIG_VERSION, "clean_urls": False, "trailing_slash": None, "spa": False,
            "redirects": [], "rewrites": [], "headers": [],
            "netlify_redirects": [], "netlify_headers": [], "hidden": [], "warnings": []}
