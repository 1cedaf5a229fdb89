"""The vercel.json dialect: cleanUrls, trailingSlash, redirects, rewrites, headers, has/missing.

https://vercel.com/docs/project-configuration. Unknown keys are ignored, as the build only
needs the routing ones; legacy `routes` is reported as a warning, not emulated.
"""
from __future__ import annotations

from typing import cast

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.headers import header_pair
from chalicelib.pipeline.siteconfig.patterns import (
    check_cost,
    check_regex,
    vercel_pattern,
)
from chalicelib.pipeline.siteconfig.rules import compile_rules
from chalicelib.pipeline.siteconfig.shape import JsonObject
from chalicelib.schema import (
    REDIRECT_CODES,
    Condition,
    ConditionalRule,
    HeaderRule,
    RedirectRule,
    RewriteRule,
    SiteConfig,
)

FILE = "vercel.json"
_HAS_TYPES = frozenset({"header", "cookie", "host", "query"})



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


def _vercel_source(rule: JsonObject, where: str) -> ConditionalRule:
    source = _string_field(rule, "source", where)
    if not source.startswith("/"):
        raise SiteConfigError(f"{where}: source {source!r} must start with \"/\"")
    regex, names = vercel_pattern(source, where)
    check_cost(regex, where, source)
    return {"regex": regex, "names": names, "has": _conditions(rule, "has", where),
            "missing": _conditions(rule, "missing", where)}


def _vercel_redirect(rule: JsonObject, where: str, warnings: list[str]) -> RedirectRule:
    source = _vercel_source(rule, where)
    destination = _string_field(rule, "destination", where)
    permanent = rule.get("permanent", True)
    if not isinstance(permanent, bool):
        raise SiteConfigError(f"{where}: permanent must be true or false")
    status = rule.get("statusCode", 308 if permanent else 307)  # Vercel: statusCode wins
    if status not in REDIRECT_CODES or isinstance(status, bool):
        raise SiteConfigError(f"{where}: statusCode must be one of 301, 302, 303, 307, 308")
    return {**source, "destination": destination, "status": cast(int, status)}


def _vercel_rewrite(rule: JsonObject, where: str, warnings: list[str]) -> RewriteRule | None:
    source = _vercel_source(rule, where)
    destination = _string_field(rule, "destination", where)
    if not destination.startswith("/"):
        # Vercel proxies external rewrites; a static host cannot, so the rule is dropped loudly.
        warnings.append(f"{where}: rewrites to external URLs are not supported; rule ignored")
        return None
    return {**source, "destination": destination}


def _vercel_header(rule: JsonObject, where: str, warnings: list[str]) -> HeaderRule:
    source = _vercel_source(rule, where)
    items = rule.get("headers")
    if not isinstance(items, list) or not items:
        raise SiteConfigError(f"{where}: headers must be a non-empty array of {{key, value}}")
    pairs = []
    for position, item in enumerate(items):
        spot = f"{where}.headers[{position}]"
        if not isinstance(item, dict):
            raise SiteConfigError(f"{spot} must be an object with key and value")
        pairs.append(header_pair(_string_field(item, "key", spot), item.get("value"), spot))
    return {**source, "headers": pairs}


def _conditions(rule: JsonObject, field: str, where: str) -> list[Condition]:
    """Vercel `has` / `missing`: header, cookie, host or query, with an optional value regex."""
    items = rule.get(field, [])
    if not isinstance(items, list):
        raise SiteConfigError(f"{where}: {field} must be an array")
    conditions: list[Condition] = []
    for position, item in enumerate(items):
        spot = f"{where}.{field}[{position}]"
        if not isinstance(item, dict) or item.get("type") not in _HAS_TYPES:
            raise SiteConfigError(f"{spot}: type must be one of header, cookie, host, query")
        key, value = item.get("key"), item.get("value")
        if item["type"] != "host" and not isinstance(key, str):
            raise SiteConfigError(f"{spot}: key must be a string")
        if value is not None:
            check_regex(value, spot)
        conditions.append(cast(Condition, {"type": item["type"], "key": key, "value": value}))
    return conditions
