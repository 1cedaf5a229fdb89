"""Build-time shapes of the config compiler; the compiled config itself is schema.SiteConfig."""
from __future__ import annotations

from typing import NotRequired, TypedDict

from chalicelib.schema import CONFIG_VERSION, SiteConfig

# A parsed JSON object from a config file, not yet validated.
JsonObject = dict[str, object]


class HeaderBlock(TypedDict):
    """A `_headers` path block; a block percel ignores has no regex (and no names)."""
    regex: str | None
    names: NotRequired[list[str]]
    headers: list[list[str]]
    detach: list[str]


def empty_config() -> SiteConfig:
    """The config of a site with no config files and no SPA fallback."""
    return {"version": CONFIG_VERSION, "clean_urls": False, "trailing_slash": None, "spa": False,
            "dialect": "netlify", "html_handling": "none",
            "redirects": [], "rewrites": [], "headers": [],
            "netlify_redirects": [], "netlify_headers": [], "hidden": [], "warnings": []}
