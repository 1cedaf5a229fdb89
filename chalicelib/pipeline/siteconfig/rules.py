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
                  file: str, array: str = "an array", item: str = "an object",
                  lenient: bool = False) -> list[T]:
    """`data[key]` as compiled rules; `array` and `item` name the file's own syntax in errors.

    lenient: a rule that cannot be read, a list that is not one, and the rules past MAX_RULES
    are skipped with a warning instead of failing the build (netlify.toml, where Netlify's
    parser reports them and deploys the rest: netlify/build packages/redirect-parser/src/
    normalize.js and results.js).
    """
    rules = data.get(key, [])
    if not isinstance(rules, list):
        _refuse(SiteConfigError(f"{file}: {key} must be {array}"), lenient, warnings)
        return []
    if len(rules) > MAX_RULES:
        _refuse(SiteConfigError(f"{file}: {key} has {len(rules)} rules; the limit is {MAX_RULES}"),
                lenient, warnings, "; the rest skipped")
        rules = rules[:MAX_RULES]
    compiled: list[T] = []
    for index, rule in enumerate(rules):
        where = f"{file}: {key}[{index}]"
        try:
            if not isinstance(rule, dict):
                raise SiteConfigError(f"{where} must be {item}")
            parsed = parse(rule, where, warnings)
        except SiteConfigError as error:
            _refuse(error, lenient, warnings, "; rule skipped")
            continue
        if parsed is not None:
            compiled.append(parsed)
    return compiled


def _refuse(error: SiteConfigError, lenient: bool, warnings: list[str], skipped: str = "") -> None:
    """The build's error, or when lenient a warning saying what was skipped."""
    if not lenient:
        raise error
    warnings.append(f"{error}{skipped}")
