"""A site's routing config, parsed once at build time into the output manifest's "config".

Sources (all optional), one module per dialect:
- `vercel.json` in the project directory (vercel.py).
- `_redirects` and `_headers` in the output directory (redirects_file.py, headers_file.py),
  read as Netlify does (netlify.py) or, with percel.json `"dialect": "cloudflare"`, as
  Cloudflare Pages does (cloudflare.py); docs/DECISIONS.md#dialects.
- `netlify.toml` in the project directory: its [[redirects]] and [[headers]], compiled as
  `_redirects` lines and `_headers` blocks and applied after them (netlify_toml.py).
- `percel.json` in the project directory: percel's switches (percel.py).
Shared by the dialects: reading files inside their tree (files.py), rule paths compiled to
regexes and probed for cost (patterns.py), header validation (headers.py), caps (limits.py).

Bad lines never sink a deploy: a `_redirects` line, `_headers` line or block, or netlify.toml
rule that cannot be read is skipped, with a warning in "warnings" naming the file and the line
(or rule), as both platforms skip and report them. SiteConfigError, whose message names the
file, is raised only for a file that cannot be read as a whole (not UTF-8, too large, a link
out of its tree, invalid JSON or TOML) and for vercel.json and percel.json, which Vercel and
percel validate whole; the build runner fails the build with it.

The returned dict (JSON-serialisable) has this shape (see `empty_config` and shape.py):
    {"version": 1, "clean_urls": bool, "trailing_slash": bool | None, "spa": bool,
     "redirects": [{"regex", "names", "destination", "status", "has", "missing"}],
     "rewrites":  [{"regex", "names", "destination", "has", "missing"}],
     "headers":   [{"regex", "names", "headers": [[name, value]], "has", "missing"}],
     "netlify_redirects": [{"regex", "names", "query": {param: value}, "destination",
                            "status", "force"}],
     "netlify_headers":   [{"regex", "names", "headers": [[name, value]], "detach": [name]}],
     "hidden": [manifest keys never served], "warnings": [str]}
"has"/"missing" items are {"type": header|cookie|host|query, "key": str|None, "value": regex|None}.
"""
from __future__ import annotations

from pathlib import Path

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.files import read_json_object, read_text
from chalicelib.pipeline.siteconfig.headers_file import parse_headers_file
from chalicelib.pipeline.siteconfig.limits import MAX_FILE_BYTES, MAX_LINE, MAX_RULES
from chalicelib.pipeline.siteconfig.netlify_toml import apply_netlify_toml
from chalicelib.pipeline.siteconfig.patterns import splat_pattern, vercel_pattern
from chalicelib.pipeline.siteconfig.percel import apply_percel
from chalicelib.pipeline.siteconfig.redirects_file import parse_redirects_file
from chalicelib.pipeline.siteconfig.shape import JsonObject, empty_config
from chalicelib.pipeline.siteconfig.vercel import apply_vercel
from chalicelib.schema import CONFIG_FILES, SiteConfig

__all__ = [
    "MAX_FILE_BYTES", "MAX_LINE", "MAX_RULES", "SiteConfig", "SiteConfigError",
    "build_site_config", "compile_config", "empty_config", "parse_headers_file", "parse_redirects_file",
    "splat_pattern", "vercel_pattern"]


def build_site_config(output_dir: Path, project_dir: Path, spa_default: bool) -> SiteConfig:
    """Read vercel.json, percel.json, netlify.toml (project), _redirects and _headers (output)
    into the manifest's "config"."""
    return compile_config(
        vercel=read_json_object(project_dir / "vercel.json", project_dir),
        percel=read_json_object(project_dir / "percel.json", project_dir),
        redirects=read_text(output_dir / "_redirects", output_dir),
        headers=read_text(output_dir / "_headers", output_dir),
        netlify_toml=read_text(project_dir / "netlify.toml", project_dir),
        spa_default=spa_default, has_404=(output_dir / "404.html").is_file(),
        hidden=_hidden_files(output_dir, project_dir))


def compile_config(vercel: JsonObject | None = None, percel: JsonObject | None = None,
                   redirects: str | None = None, headers: str | None = None,
                   netlify_toml: str | None = None, spa_default: bool = False,
                   hidden: list[str] | None = None, has_404: bool = False) -> SiteConfig:
    """The pure part of build_site_config: parsed sources in, config dict out.

    spa_default: the framework is a single-page app. has_404: the output has a top-level
    404.html, which turns the SPA fallback off unless percel.json turns it on.
    """
    config = empty_config()
    if vercel is not None:
        apply_vercel(config, vercel)
    config["spa"] = spa_default and not has_404
    if percel is not None:
        apply_percel(config, percel)
    if config.get("dialect") == "cloudflare" and not has_404 and "spa" not in (percel or {}):
        # Cloudflare Pages takes a site without a top-level 404.html for a single-page app
        # (developers.cloudflare.com/pages/configuration/serving-pages/, "Single-page
        # application (SPA) rendering"; workers-sdk pages-shared asset-server/handler.ts).
        config["spa"] = True
    _html_handling_default(config, vercel, percel)
    dialect = config.get("dialect", "netlify")
    if redirects is not None:
        config["netlify_redirects"] = parse_redirects_file(
            redirects, config["warnings"], dialect, config.get("html_handling", "none"))
    if headers is not None:
        config["netlify_headers"] = parse_headers_file(headers, config["warnings"], dialect)
    if netlify_toml is not None:
        apply_netlify_toml(config, netlify_toml)   # after the files: Netlify's order
    config["hidden"] = list(hidden if hidden is not None else CONFIG_FILES)
    return config


def _html_handling_default(config: SiteConfig, vercel: JsonObject | None,
                           percel: JsonObject | None) -> None:
    """auto-trailing-slash unless the site brings a vercel.json: then Vercel's rules decide a
    page's address, as they did on Vercel (docs/DECISIONS.md#html-handling). A mode next to
    cleanUrls / trailingSlash would redirect in circles (trailingSlash: false against
    force-trailing-slash), so that is refused."""
    vercel_decides = vercel is not None and ("cleanUrls" in vercel or "trailingSlash" in vercel)
    if percel is None or "html_handling" not in percel:
        config["html_handling"] = "none" if vercel is not None else "auto-trailing-slash"
    elif vercel_decides and config.get("html_handling") != "none":
        raise SiteConfigError("percel.json: \"html_handling\" and vercel.json's cleanUrls / "
                              "trailingSlash both decide a page's address; keep one (or set "
                              "\"html_handling\": \"none\")")


def _hidden_files(output_dir: Path, project_dir: Path) -> list[str]:
    """Config files are not content: Netlify and Cloudflare Pages never serve _redirects/_headers.

    A plain static repo is its own output, so its vercel.json/percel.json/netlify.toml would
    be public too.
    """
    hidden = list(CONFIG_FILES)
    if output_dir.resolve() == project_dir.resolve():
        hidden += ["vercel.json", "percel.json", "netlify.toml"]
    return hidden
