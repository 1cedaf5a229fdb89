"""A config file's list of rules under one key (vercel.json's arrays, netlify.toml's tables),
each compiled by its dialect, within MAX_RULES."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chalicelib.pipeline.siteconfig.errors import SiteConfigError
from chalicelib.pipeline.siteconfig.limits import MAX_RULES
from chalicelib.pipeline.siteconfig.shape import JsonObject

T = TypeVar("T")
# (rule, where, warnings) -> the compiled rule, or None when the rule is dropped with a warning.
RuleParser = Callable[[JsonObject, str, list[str]], "T | None"]


def compile_rules(data: JsonObject, key: str, parse: RuleParser[T], warnings: list[str], *,
                  file: str, array: str = "an array", item: str = "an object") -> list[T]:
    """`data[key]` as compiled rules; `array` and `item` name the file's own syntax in errors."""
    rules = data.get(key, [])
    if not isinstance(rules, list):
        raise SiteConfigError(f"{file}: {key} must be {array}")
    if len(rules) > MAX_RULES:
        raise SiteConfigError(f"{file}: {key} has {len(rules)} rules; the limit is {MAX_RULES}")
    compiled: list[T] = []
    for index, rule in enumerate(rules):
        where = f"{file}: {key}[{index}]"
        if not isinstance(rule, dict):
            raise SiteConfigError(f"{where} must be {item}")
        parsed = parse(rule, where, warnings)
        if parsed is not None:
            compiled.append(parsed)
    return compiled
