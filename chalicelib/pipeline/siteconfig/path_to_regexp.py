"""vercel.json's pattern language: path-to-regexp 6.1.0, the version vercel/vercel pins in
packages/routing-utils/package.json, re-implemented from its documented grammar.

A source such as `/blog/:slug`, `/docs/:path*`, `/(.*)-:id(\\d+)`, `/feature-{:slug}` or
`/docs{/v:version}?` becomes a Python regex (`parse` + `to_regex`), compiled with the
options routing-utils passes (strict, case-sensitive, delimiter "/"). A destination or header
value becomes a template of `$1` / `$name` references (`compile_template`), the form
routing-utils hands to Vercel's proxy; the request handler only fills the references in.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# path-to-regexp: `.` and `/` before a parameter are its prefix, optional with it.
_PREFIXES = "./"
_NAME = re.compile(r"[0-9A-Za-z_]+")


class PatternError(ValueError):
    """A pattern path-to-regexp refuses; the message names what and where (0-based)."""


@dataclass(frozen=True)
class Key:
    """A parameter: `:name`, an unnamed `(regex)` (named by position), or a `{...}` group."""
    name: str               # "" for a braced group holding only text (`{s}?`)
    named: bool             # written as `:name`; unnamed groups are numbered "0", "1", ...
    prefix: str
    suffix: str
    pattern: str            # "" for a text-only braced group: it captures nothing
    modifier: str           # "", "?", "*" or "+"


Token = str | Key
_Lexeme = tuple[str, int, str]   # (kind, index, value)


def parse(source: str, delimiter: str = "/") -> list[Token]:
    """The tokens of a pattern: literal text and parameters, or PatternError."""
    return _Parser(_lex(source), f"[^{re.escape(delimiter)}]+?").run()


def to_regex(tokens: list[Token]) -> str:
    """The regex body (no anchors) matching what the tokens describe, one group per key
    that has a pattern, in order."""
    return "".join(re.escape(token) if isinstance(token, str) else _key_regex(token)
                   for token in tokens)


def keys(tokens: list[Token]) -> list[Key]:
    """The capturing keys, in group order."""
    return [token for token in tokens if isinstance(token, Key) and token.pattern]


def compile_template(template: str, refs: Mapping[str, str], direct: bool = True) -> str:
    """Replace each `:name` (with its `?`, `*`, `+`) that `refs` knows by its reference.

    Like routing-utils' safelyCompile: first as path-to-regexp's compile() would (braced
    groups and `:name(regex)` are resolved, an unknown optional parameter disappears), and if
    that fails, or `direct` is False, by replacing only the known names and keeping every
    other character as written.
    """
    if not template:
        return template
    if direct:
        try:
            return _compile_direct(template, refs)
        except PatternError:
            pass
    return _compile_safely(template, refs)


def js_named_groups(regex: str) -> str:
    """JavaScript's `(?<name>...)` as Python's `(?P<name>...)` (lookbehinds untouched)."""
    return _JS_GROUP.sub(r"(?P<\1>", regex)


_JS_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z_][A-Za-z0-9_]*)>")


def _key_regex(key: Key) -> str:
    prefix, suffix = re.escape(key.prefix), re.escape(key.suffix)
    if not key.pattern:
        return f"(?:{prefix}{suffix}){key.modifier}"
    # A named JavaScript group inside a parameter's regex would shift the group numbers the
    # names are zipped with; path-to-regexp's keys never include it, so it groups only.
    pattern = _JS_GROUP.sub("(?:", key.pattern)
    if not (prefix or suffix):
        return f"({pattern}){key.modifier}"
    if key.modifier in ("+", "*"):
        repeated = f"(?:{prefix}((?:{pattern})(?:{suffix}{prefix}(?:{pattern}))*){suffix})"
        return repeated + ("?" if key.modifier == "*" else "")
    return f"(?:{prefix}({pattern}){suffix}){key.modifier}"


# --- lexer --------------------------------------------------------------------------------

def _lex(text: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "*+?":
            lexemes.append(("MODIFIER", index, char))
        elif char == "\\":
            if index + 1 >= len(text):
                raise PatternError(f"a backslash at {index} escapes nothing")
            lexemes.append(("ESCAPED_CHAR", index, text[index + 1]))
            index += 1
        elif char in "{}":
            lexemes.append(("OPEN" if char == "{" else "CLOSE", index, char))
        elif char == ":":
            name = _NAME.match(text, index + 1)
            if name is None:
                raise PatternError(f"missing parameter name at {index}")
            lexemes.append(("NAME", index, name.group()))
            index = name.end() - 1
        elif char == "(":
            pattern, end = _lex_group(text, index)
            lexemes.append(("PATTERN", index, pattern))
            index = end - 1
        else:
            lexemes.append(("CHAR", index, char))
        index += 1
    lexemes.append(("END", index, ""))
    return lexemes


def _lex_group(text: str, start: int) -> tuple[str, int]:
    """`(regex)` from start: its inside and the index after it. Only non-capturing groups
    may nest, and the group itself must capture."""
    depth, index = 1, start + 1
    if text[index:index + 1] == "?":
        raise PatternError(f"a group cannot start with \"?\" at {index}")
    inside: list[str] = []
    while index < len(text):
        char = text[index]
        if char == "\\":
            inside.append(text[index:index + 2])
            index += 2
            continue
        if char == ")":
            depth -= 1
            if depth == 0:
                index += 1
                break
        elif char == "(":
            depth += 1
            if text[index + 1:index + 2] != "?":
                raise PatternError(f"capturing groups are not allowed at {index}; use (?:...)")
        inside.append(char)
        index += 1
    if depth:
        raise PatternError(f"unbalanced parenthesis at {start}")
    if not inside:
        raise PatternError(f"missing pattern at {start}")
    return "".join(inside), index


# --- parser -------------------------------------------------------------------------------

class _Parser:
    def __init__(self, lexemes: list[_Lexeme], default: str):
        self.lexemes, self.default, self.at, self.unnamed = lexemes, default, 0, 0

    def take(self, kind: str) -> str | None:
        lexeme = self.lexemes[self.at]
        if lexeme[0] != kind:
            return None
        self.at += 1
        return lexeme[2]

    def must(self, kind: str) -> None:
        if self.take(kind) is None:
            found, index, value = self.lexemes[self.at]
            if found == "MODIFIER":
                raise PatternError(f"{value!r} at {index} must follow a parameter; "
                                   "write /:path* or /(.*)")
            raise PatternError(f"unexpected {found.lower().replace('_', ' ')} at {index}, "
                               f"expected {kind.lower()}")

    def text(self) -> str:
        out = ""
        while (value := self.take("CHAR") or self.take("ESCAPED_CHAR")) is not None:
            out += value
        return out

    def number(self) -> str:
        self.unnamed += 1
        return str(self.unnamed - 1)

    def run(self) -> list[Token]:
        tokens: list[Token] = []
        path = ""
        while self.at < len(self.lexemes):
            char, name, pattern = self.take("CHAR"), self.take("NAME"), self.take("PATTERN")
            if name or pattern:
                prefix = char or ""
                if prefix not in _PREFIXES:
                    path, prefix = path + prefix, ""
                if path:
                    tokens.append(path)
                    path = ""
                tokens.append(Key(name or self.number(), bool(name), prefix, "",
                                  pattern or self.default, self.take("MODIFIER") or ""))
                continue
            value = char or self.take("ESCAPED_CHAR")
            if value:
                path += value
                continue
            if path:
                tokens.append(path)
                path = ""
            if self.take("OPEN") is not None:
                tokens.append(self.braced())
                continue
            self.must("END")
        return tokens

    def braced(self) -> Key:
        prefix = self.text()
        name, pattern = self.take("NAME") or "", self.take("PATTERN") or ""
        suffix = self.text()
        self.must("CLOSE")
        label = name or (self.number() if pattern else "")
        return Key(label, bool(name), prefix, suffix,
                   self.default if name and not pattern else pattern,
                   self.take("MODIFIER") or "")


# --- templates ----------------------------------------------------------------------------

def _compile_direct(template: str, refs: Mapping[str, str]) -> str:
    out = []
    for token in _Parser(_lex(template), "[^/#?]+?").run():
        if isinstance(token, str):
            out.append(token)
            continue
        value = refs.get(token.name) if token.named else None
        if value is not None:
            out.append(token.prefix + value + token.suffix)
        elif token.modifier not in ("?", "*"):
            raise PatternError(f"no value for {token.name!r}")
    return "".join(out)


def _compile_safely(template: str, refs: Mapping[str, str]) -> str:
    if not refs:
        return _unescape(template)
    names = "|".join(re.escape(name) for name in sorted(refs, key=len, reverse=True))
    known = re.compile(rf":({names})(?!\w)[*?+]?")
    out, last = [], 0
    for found in known.finditer(template):
        out.append(_unescape(template[last:found.start()]))
        out.append(refs[found[1]])
        last = found.end()
    out.append(_unescape(template[last:]))
    return "".join(out)


def _unescape(text: str) -> str:
    """path-to-regexp reads `\\x` as a literal x."""
    return re.sub(r"\\(.)", r"\1", text)
