"""netlify.toml's [[redirects]] and [[headers]]: the `_redirects` / `_headers` rules, in TOML.

https://docs.netlify.com/manage/routing/redirects/overview/#syntax-for-the-netlify-configuration-file,
https://docs.netlify.com/manage/routing/headers/#syntax-for-the-netlify-configuration-file.
Netlify reads netlify.toml from the base directory (percel's project directory), and applies
the publish directory's `_redirects` and `_headers` before its rules
(https://docs.netlify.com/build/configure-builds/file-based-configuration/): compile_config
appends these after them. Each rule is compiled by netlify.py, as a `_redirects` line or a
`_headers` block would be. Keys that only configure the build ([build], [context.*], ...) are
not ours to read.
"""
from __future__ import annotations

import re
import tomllib

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.headers import header_pair
from chalicelib.pipeline.siteconfig.netlify import (
    URL_SCHEMES,
    add_header,
    forwarding_destination,
    header_block,
    header_rules,
    parse_int,
    redirect_rule,
)
from chalicelib.pipeline.siteconfig.rules import RuleParser, T, compile_rules
from chalicelib.pipeline.siteconfig.shape import HeaderBlock, JsonObject
from chalicelib.schema import NetlifyRedirectRule, SiteConfig

FILE = "netlify.toml"
_REDIRECT_KEYS = frozenset({"from", "to", "status", "force", "query", "conditions", "headers",
                            "signed"})
# Earlier names of [[redirects]] keys Netlify still reads; the current name wins, then the
# earlier of the old ones (netlify/build packages/redirect-parser/src/normalize.js).
_OLD_NAMES = (("origin", "from"), ("destination", "to"), ("params", "query"),
              ("parameters", "query"), ("signing", "signed"), ("sign", "signed"))
_HEADER_KEYS = frozenset({"for", "values"})
# Netlify joins a multi-line value written as `'''max-age=0,\n no-cache'''` into one list.
_LIST_SEPARATOR = re.compile(r"\s*,\s*")



def apply_netlify_toml(config: SiteConfig, text: str) -> None:
    """Append netlify.toml's rules to `config`, after those of `_redirects` and `_headers`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SiteConfigError(f"{FILE}: invalid TOML: {error}") from None
    warnings = config["warnings"]
    config["netlify_redirects"] += _tables(data, "redirects", _redirect, warnings)
    config["netlify_headers"] += header_rules(_tables(data, "headers", _header, warnings))


def _tables(data: JsonObject, key: str, parse: RuleParser[T], warnings: list[str]) -> list[T]:
    return compile_rules(data, key, parse, warnings, file=FILE, lenient=True,
                         array=f"an array of tables ([[{key}]])", item="a table")


def _unknown_keys(table: JsonObject, known: frozenset[str], where: str, warnings: list[str]) -> None:
    """Netlify ignores keys it does not know; a typo (`stauts`) should not pass unnoticed."""
    for key in sorted(set(table) - known):
        warnings.append(f"{where}: unknown key {key!r} ignored")


# --- [[redirects]] -----------------------------------------------------------------------------

def _redirect(table: JsonObject, where: str, warnings: list[str]) -> NetlifyRedirectRule | None:
    table = _current_names(table)
    _unknown_keys(table, _REDIRECT_KEYS, where, warnings)
    source = _string(table, "from", where)
    status = _status(table.get("status", 301), where)    # Netlify's default, as in `_redirects`
    destination = _destination(table, source, status, where)
    force = table.get("force", False)
    if not isinstance(force, bool):
        raise SiteConfigError(f"{where}: force must be true or false")
    query = _string_table(table, "query", where)
    conditions = table.get("conditions", {})
    if not isinstance(conditions, dict):
        raise SiteConfigError(f"{where}: conditions must be a table")
    if conditions:
        # As in `_redirects`: Country, Language, Role and Cookie need what percel does not
        # have (geolocation, Netlify Identity), and applying the rule to everyone is wrong.
        warnings.append(f"{where}: conditions ({', '.join(sorted(conditions))}) are not "
                        "supported; rule ignored")
        return None
    rule = redirect_rule(source, query, destination, status, force, where, warnings)
    if rule is not None:
        _proxy_only(table, where, warnings)
    return rule


def _current_names(table: JsonObject) -> JsonObject:
    renamed = dict(table)
    for old, new in _OLD_NAMES:
        if old in renamed:
            renamed.setdefault(new, renamed.pop(old))
    return renamed


def _status(value: object, where: str) -> int:
    """An integer, or a string starting with one (`"200"`): normalize.js reads it with
    Number.parseInt."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    status = parse_int(value) if isinstance(value, str) else None
    if status is None:
        raise SiteConfigError(f"{where}: status must be a number, not {value!r}")
    return status


def _destination(table: JsonObject, source: str, status: int, where: str) -> str:
    """`to`, which a 2xx rule from `/x/*` may leave out (netlify.forwarding_destination)."""
    forwarding = forwarding_destination(source, status) if "to" not in table else None
    return forwarding or _string(table, "to", where)


def _proxy_only(table: JsonObject, where: str, warnings: list[str]) -> None:
    """`headers` and `signed` are what Netlify sends to a proxied origin: request headers, not
    response headers. percel does not proxy, so on a rule it keeps they change nothing."""
    if _string_table(table, "headers", where):
        warnings.append(f"{where}: headers are request headers for proxied rules; ignored "
                        "(set response headers with [[headers]])")
    if "signed" in table:
        warnings.append(f"{where}: signed applies to proxied rules only; ignored")


def _string(table: JsonObject, key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SiteConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _string_table(table: JsonObject, key: str, where: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise SiteConfigError(f"{where}: {key} must be a table of strings")
    return {str(name): str(item) for name, item in value.items()}


# --- [[headers]] -------------------------------------------------------------------------------

def _header(table: JsonObject, where: str, warnings: list[str]) -> HeaderBlock | None:
    """A rule Netlify cannot read raises (the rule is skipped); one without values is dropped
    silently, as headers-parser/src/normalize.ts does."""
    _unknown_keys(table, _HEADER_KEYS, where, warnings)
    path = _string(table, "for", where)
    values = table.get("values", {})
    if not isinstance(values, dict):
        raise SiteConfigError(f"{where}: values must be a table of header names and values")
    if not values:
        return None
    # Netlify matches `for` segment by segment (headers-parser/src/for_regexp.ts), so
    # `for = "path"` is `/path`.
    block = header_block(path if path.startswith(("/", *URL_SCHEMES)) else "/" + path, where,
                         warnings)
    for name, value in values.items():
        spot = f"{where}.values"
        if not str(name).strip():
            raise SiteConfigError(f"{spot}: a header name is empty")
        add_header(block, header_pair(str(name).strip(), _header_value(value, name, spot), spot))
    return block


def _header_value(value: object, name: str, where: str) -> str:
    """A string (a multi-line one lists values, one per line, ending in commas) or an array of
    strings: both become one comma-separated value, as Netlify sends them."""
    if isinstance(value, str):
        return ", ".join(_LIST_SEPARATOR.split(value.strip()))
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(item.strip() for item in value)
    raise SiteConfigError(f"{where}: the value of {name!r} must be a string or an array of strings")
