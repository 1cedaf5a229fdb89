"""The vercel.json dialect: cleanUrls, trailingSlash, redirects, rewrites, headers, has/missing.

https://vercel.com/docs/project-configuration. Unknown keys are ignored, as the build only
needs the routing ones; legacy `routes` is reported as a warning, not emulated.
"""
from __future__ import annotations

import re

from chalicelib.pipeline.siteconfig import path_to_regexp
from chalicelib.pipeline.siteconfig import vercel_templates as templates
from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.headers import header_pair
from chalicelib.pipeline.siteconfig.patterns import vercel_regex, vercel_tokens
from chalicelib.pipeline.siteconfig.rules import compile_rules
from chalicelib.pipeline.siteconfig.shape import JsonObject
from chalicelib.pipeline.siteconfig.vercel_conditions import bound_names, compile_conditions
from chalicelib.schema import (
    REDIRECT_CODES,
    ConditionalRule,
    HeaderRule,
    RedirectRule,
    RewriteRule,
    SiteConfig,
)

FILE = "vercel.json"
# A destination on another origin: a scheme (`https:`) or a protocol-relative `//host`.
_EXTERNAL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|//)")


def apply_vercel(config: SiteConfig, data: JsonObject) -> None:
    """Fill `config` from vercel.json's parsed object."""
    clean_urls = _switch(data, "cleanUrls")
    if clean_urls is not None:
        config["clean_urls"] = clean_urls
    trailing_slash = _switch(data, "trailingSlash")
    if trailing_slash is not None:
        config["trailing_slash"] = trailing_slash
    if "routes" in data:
        config["warnings"].append("vercel.json: legacy `routes` is not supported and was ignored")
    config["redirects"] = compile_rules(data, "redirects", _vercel_redirect, config["warnings"], file=FILE)
    config["rewrites"] = compile_rules(data, "rewrites", _vercel_rewrite, config["warnings"], file=FILE)
    config["headers"] = compile_rules(data, "headers", _vercel_header, config["warnings"], file=FILE)


def _switch(data: JsonObject, key: str) -> bool | None:
    """A true/false key's value, None when absent."""
    value = data.get(key)
    if key in data and not isinstance(value, bool):
        raise SiteConfigError(f"vercel.json: {key} must be true or false")
    return value if isinstance(value, bool) else None


def _string_field(rule: JsonObject, name: str, where: str) -> str:
    value = rule.get(name)
    if not isinstance(value, str) or not value:
        raise SiteConfigError(f"{where}: {name} must be a non-empty string")
    return value


class _Source:
    """A rule's source and conditions, compiled, with the references its templates may use."""

    def __init__(self, rule: JsonObject, where: str):
        source = _string_field(rule, "source", where)
        tokens = vercel_tokens(source, where)
        self.keys = path_to_regexp.keys(tokens)
        has = compile_conditions(rule, "has", where)
        self.has_names = bound_names(rule)
        self.refs = templates.references(self.keys, self.has_names)
        self.compiled: ConditionalRule = {
            "regex": vercel_regex(tokens, source, where),
            "names": [key.name for key in self.keys],
            "has": has, "missing": compile_conditions(rule, "missing", where)}

    def destination(self, rule: JsonObject, where: str, redirect: bool) -> str:
        """The destination as a `$`-reference template; every `:name` it uses must be
        bound by the source or a `has` condition, or Vercel refuses the deploy."""
        destination = _string_field(rule, "destination", where)
        known = set(self.refs) | ({templates.UNNAMED} if not all(k.named for k in self.keys) else set())
        unknown = sorted(templates.destination_names(destination) - known)
        if unknown:
            raise SiteConfigError(f"{where}: destination {destination!r} uses \":{unknown[0]}\", "
                                  "which is not a parameter of the source or a has condition")
        named = any(key.named for key in self.keys)
        if redirect and not ((":" in destination and named) or self.has_names):
            return destination   # routing-utils leaves such a Location exactly as written
        return templates.compile_destination(destination, self.refs)


def _vercel_redirect(rule: JsonObject, where: str, warnings: list[str]) -> RedirectRule:
    source = _Source(rule, where)
    destination = source.destination(rule, where, redirect=True)
    permanent = rule.get("permanent")
    if permanent is not None and not isinstance(permanent, bool):
        raise SiteConfigError(f"{where}: permanent must be true or false")
    if permanent is not None and "statusCode" in rule:
        # routing-utils checkRedirect: "cannot define both `permanent` and `statusCode`".
        raise SiteConfigError(f"{where}: cannot define both permanent and statusCode")
    status = _status(rule, where, 308 if permanent in (None, True) else 307)
    if status not in REDIRECT_CODES:
        # Vercel would send that status with a Location no browser follows
        # (docs/DECISIONS.md#vercel-json).
        raise SiteConfigError(f"{where}: statusCode {status} is not a redirect; "
                              "use one of 301, 302, 303, 307, 308")
    return {**source.compiled, "destination": destination, "status": status}


def _status(rule: JsonObject, where: str, default: int) -> int:
    """statusCode: an integer from 100 to 999 (routing-utils schemas.ts)."""
    status = rule.get("statusCode", default)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise SiteConfigError(f"{where}: statusCode must be an integer from 100 to 999")
    return status


def _vercel_rewrite(rule: JsonObject, where: str, warnings: list[str]) -> RewriteRule | None:
    source = _Source(rule, where)
    destination = source.destination(rule, where, redirect=False)
    if _EXTERNAL.match(destination):
        # Vercel proxies external rewrites; a static host cannot, so the rule is dropped loudly.
        warnings.append(f"{where}: rewrites to external URLs are not supported; rule ignored")
        return None
    if not destination.startswith("/"):
        destination = "/" + destination   # as `vercel dev`'s router reads `page.html`
    compiled: RewriteRule = {**source.compiled, "destination": destination}
    if "statusCode" in rule:
        compiled["status"] = _status(rule, where, 200)
    return compiled


def _vercel_header(rule: JsonObject, where: str, warnings: list[str]) -> HeaderRule:
    source = _Source(rule, where)
    items = rule.get("headers")
    if not isinstance(items, list) or not items:
        raise SiteConfigError(f"{where}: headers must be a non-empty array of {{key, value}}")
    # routing-utils convertHeaders substitutes only when the rule binds a name.
    refs = source.refs if any(k.named for k in source.keys) or source.has_names else {}
    pairs = []
    for position, item in enumerate(items):
        spot = f"{where}.headers[{position}]"
        if not isinstance(item, dict):
            raise SiteConfigError(f"{spot} must be an object with key and value")
        key, value = _string_field(item, "key", spot), item.get("value")
        if isinstance(value, str):
            value = templates.compile_header(value, refs)
        pairs.append(header_pair(templates.compile_header(key, refs), value, spot))
    return {**source.compiled, "headers": pairs}
