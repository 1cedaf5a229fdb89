"""percel.json: percel's own switches.

- `spa`: true|false, the SPA fallback to /index.html;
- `dialect`: "netlify"|"cloudflare", whose reading of `_redirects`/`_headers` applies where the
  two platforms differ (docs/DECISIONS.md#dialects);
- `html_handling`: one of Cloudflare Pages' four modes (schema.HTML_HANDLING_MODES).

vercel.json's schema refuses unknown top-level keys, so percel's own switches live in their own file.
"""
from __future__ import annotations

from typing import cast

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.shape import JsonObject
from chalicelib.schema import DIALECTS, HTML_HANDLING_MODES, Dialect, HtmlHandling, SiteConfig

KEYS = ("spa", "dialect", "html_handling")


def apply_percel(config: SiteConfig, data: JsonObject) -> None:
    """Fill `config` from percel.json's parsed object."""
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SiteConfigError(f"percel.json: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    if "spa" in data:
        spa = data["spa"]
        if not isinstance(spa, bool):
            raise SiteConfigError("percel.json: \"spa\" must be true or false")
        config["spa"] = spa
    if "dialect" in data:
        config["dialect"] = cast(Dialect, _choice(data, "dialect", DIALECTS))
    if "html_handling" in data:
        config["html_handling"] = cast(HtmlHandling, _choice(data, "html_handling", HTML_HANDLING_MODES))


def _choice(data: JsonObject, key: str, allowed: tuple[str, ...]) -> str:
    value = data[key]
    if value not in allowed:
        raise SiteConfigError(f"percel.json: \"{key}\" must be one of "
                              + ", ".join(f'"{choice}"' for choice in allowed))
    return cast(str, value)
