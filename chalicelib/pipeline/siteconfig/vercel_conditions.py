"""vercel.json `has` / `missing` items, compiled once at build time.

An item names a header, cookie, host or query parameter and may give a `value`: a JavaScript
regex, or an object of operators (vercel/vercel packages/routing-utils/src/schemas.ts
matchableValueSchema: eq, neq, inc, ninc, pre, suf, re, gt, gte, lt, lte). Everything but the
numeric comparisons becomes one Python regex matched against the whole value; `gt`..`lte` are
kept as (operator, number) pairs.
"""
from __future__ import annotations

import re
from typing import cast

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.path_to_regexp import js_named_groups
from chalicelib.pipeline.siteconfig.patterns import check_regex
from chalicelib.pipeline.siteconfig.shape import JsonObject
from chalicelib.schema import Condition

HAS_TYPES = frozenset({"header", "cookie", "host", "query"})
NUMERIC = ("gt", "gte", "lt", "lte")
_TEXT = ("eq", "neq", "inc", "ninc", "pre", "suf", "re")
# A JavaScript named group: what a value binds (ECMA-262 GroupName, as routing-utils'
# namedGroupsRegex finds it).
_NAMED_GROUP = re.compile(r"\(\?<([a-zA-Z][a-zA-Z0-9_]*)>")
_ANY = "(?s:.*)"


def compile_conditions(rule: JsonObject, field: str, where: str) -> list[Condition]:
    items = rule.get(field, [])
    if not isinstance(items, list):
        raise SiteConfigError(f"{where}: {field} must be an array")
    return [_condition(item, f"{where}.{field}[{position}]") for position, item in enumerate(items)]


def bound_names(rule: JsonObject) -> list[str]:
    """The names a rule's `has` items bind (routing-utils collectHasSegments): a key given
    without a value binds that key; a value's (or its `re`'s) named groups bind their names,
    and a host item with such a regex binds `host`."""
    names: dict[str, None] = {}
    items = rule.get("has")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        value, key = item.get("value"), item.get("key")
        if not value and isinstance(key, str):
            names[key] = None
        regex = value.get("re") if isinstance(value, dict) else value
        if isinstance(regex, str) and regex:
            names.update(dict.fromkeys(_NAMED_GROUP.findall(regex)))
            if item.get("type") == "host":
                names["host"] = None
    return list(names)


def _condition(item: object, spot: str) -> Condition:
    if not isinstance(item, dict) or item.get("type") not in HAS_TYPES:
        raise SiteConfigError(f"{spot}: type must be one of header, cookie, host, query")
    key, value = item.get("key"), item.get("value")
    if item["type"] != "host" and not isinstance(key, str):
        raise SiteConfigError(f"{spot}: key must be a string")
    if item["type"] == "host" and value is None:
        raise SiteConfigError(f"{spot}: a host condition needs a value")
    condition = cast(Condition, {"type": item["type"], "key": key, "value": None})
    if isinstance(value, dict):
        condition["value"], compare = _operators(value, spot)
        if compare:
            condition["compare"] = compare
    elif value is not None:
        condition["value"] = _regex(value, spot)
    return condition


def _regex(value: object, spot: str) -> str:
    if not isinstance(value, str):
        raise SiteConfigError(f"{spot}: value must be a string or an object of operators")
    regex = js_named_groups(value)
    check_regex(regex, spot)
    return regex


def _operators(value: dict[str, object], spot: str) -> tuple[str, list[tuple[str, float]]]:
    unknown = sorted(set(value) - set(_TEXT) - set(NUMERIC))
    if unknown or not value:
        raise SiteConfigError(f"{spot}: value operators are {', '.join(_TEXT + NUMERIC)}"
                              + (f"; not {unknown[0]!r}" if unknown else ""))
    parts = [_text_operator(name, value[name], spot) for name in _TEXT if name in value]
    compare = []
    for name in NUMERIC:
        if name in value:
            number = value[name]
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise SiteConfigError(f"{spot}: value.{name} must be a number")
            compare.append((name, float(number)))
    if not parts:
        return _ANY, compare
    if len(parts) == 1:
        return parts[0], compare
    return "".join(rf"(?=(?:{part})\Z)" for part in parts) + _ANY, compare


def _text_operator(name: str, operand: object, spot: str) -> str:
    if name == "re":
        return _regex(operand, spot)
    if name in ("inc", "ninc"):
        if not isinstance(operand, list) or not all(isinstance(v, str) for v in operand):
            raise SiteConfigError(f"{spot}: value.{name} must be an array of strings")
        either = "|".join(re.escape(v) for v in operand) or "(?!)"
        return f"(?:{either})" if name == "inc" else rf"(?!(?:{either})\Z){_ANY}"
    if name == "eq" and isinstance(operand, int | float) and not isinstance(operand, bool):
        operand = _js_number(operand)
    if not isinstance(operand, str):
        raise SiteConfigError(f"{spot}: value.{name} must be a string")
    text = re.escape(operand)
    return {"eq": text, "neq": rf"(?!{text}\Z){_ANY}", "pre": text + _ANY,
            "suf": _ANY + text}[name]


def _js_number(number: float) -> str:
    """A number as JavaScript's String() writes it: 5, not 5.0."""
    return str(int(number)) if float(number).is_integer() else repr(number)
