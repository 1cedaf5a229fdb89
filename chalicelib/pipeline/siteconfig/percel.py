"""percel.json: `{"spa": true|false}` switches the SPA fallback.

vercel.json's schema refuses unknown top-level keys, so percel's own switch lives in its own file.
"""
from __future__ import annotations

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.shape import JsonObject
from chalicelib.schema import SiteConfig


def apply_percel(config: SiteConfig, data: JsonObject) -> None:
    """Fill `config` from percel.json's parsed object."""
    unknown = sorted(set(data) - {"spa"})
    if unknown:
        raise SiteConfigError(f"percel.json: unknown key {unknown[0]!r} (only \"spa\" is supported)")
    if "spa" in data:
        spa = data["spa"]
        if not isinstance(spa, bool):
            raise SiteConfigError("percel.json: \"spa\" must be true or false")
        config["spa"] = spa
