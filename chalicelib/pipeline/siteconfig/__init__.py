"""A site's routing config, parsed once at build time into the output manifest's "config".

Sources (all optional):
- `vercel.json` in the project directory: cleanUrls, trailingSlash, redirects, rewrites, headers
  (https://vercel.com/docs/project-configuration). Unknown keys are ignored, as the build only
  needs the routing ones; legacy `routes` is reported as a warning, not emulated.
- `_redirects` and `_headers` in the output directory, in the Netlify / Cloudflare Pages format
  (https://docs.netlify.com/routing/redirects/, https://docs.netlify.com/routing/headers/).
- `percel.json` in the project directory: `{"spa": true|false}` switches the SPA fallback.
  vercel.json's schema refuses unknown top-level keys, so percel's own switch lives in its own file.

Every source pattern is compiled here to a Python regex string, so the request handler
(chalicelib/serving/routing.py) only matches. A file that cannot be understood raises SiteConfigError,
whose message names the file and the rule; the build runner fails the build with it.

The returned dict (JSON-serialisable) has this shape (see `empty_config`):
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

import json
import re
from pathlib import Path

from chalicelib import paths, safe_regex
from chalicelib.schema import CONFIG_FILES, CONFIG_VERSION, REDIRECT_CODES

# Vercel caps redirects, rewrites and headers at 2,048 each (vercel.json schema); we apply the
# same cap to each list, _redirects and _headers included.
MAX_RULES = 2048
# Cloudflare Pages refuses _redirects lines longer than 1,000 characters.
MAX_LINE = 1000
# Framing and routing headers a rule may not set: the handler owns them. Content-Type is not
# among them: Vercel, Netlify and Cloudflare Pages let a rule set it, and sites need that for
# extensionless files (`/.well-known/apple-app-site-association` must be application/json).
RESERVED_HEADERS = frozenset({
    "content-length", "content-encoding", "content-range", "transfer-encoding", "connection",
    "location", "etag", "accept-ranges", "upgrade", "trailer", "keep-alive"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 §5.6.2 field-name
# RFC 9110 §5.5 field value: visible ASCII, SP and HTAB (obs-text is obsolete). CR/LF would
# inject headers; other controls and non-ASCII make the server drop the response (measured:
# `X-Note: 日本` closed every connection to the page without an answer).
_FIELD_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
_HAS_TYPES = frozenset({"header", "cookie", "host", "query"})
# The runner reads these files into memory outside the sandbox; 2,048 rules of 1,000
# characters fit in 2 MiB, so a bigger config file is a build trying to exhaust the runner.
MAX_FILE_BYTES = 4 * 1024 * 1024


class SiteConfigError(ValueError):
    """A config file the build cannot use; the message names the file and the rule."""


def empty_config() -> dict:
    return {"version": CONFIG_VERSION, "clean_urls": False, "trailing_slash": None, "spa": False,
            "redirects": [], "rewrites": [], "headers": [],
            "netlify_redirects": [], "netlify_headers": [], "hidden": [], "warnings": []}


def build_site_config(output_dir: Path, project_dir: Path, spa_default: bool) -> dict:
    """Read vercel.json, percel.json, _redirects and _headers into the manifest's "config"."""
    return compile_config(
        vercel=_read_json_object(project_dir / "vercel.json", project_dir),
        percel=_read_json_object(project_dir / "percel.json", project_dir),
        redirects=_read_text(output_dir / "_redirects", output_dir),
        headers=_read_text(output_dir / "_headers", output_dir),
        spa_default=spa_default and not (output_dir / "404.html").is_file(),
        hidden=_hidden_files(output_dir, project_dir))


def compile_config(vercel: dict | None = None, percel: dict | None = None,
                   redirects: str | None = None, headers: str | None = None,
                   spa_default: bool = False, hidden: list[str] | None = None) -> dict:
    """The pure part of build_site_config: parsed sources in, config dict out.

    spa_default: the framework is a single-page app and its output has no 404.html.
    """
    config = empty_config()
    if vercel is not None:
        _apply_vercel(config, vercel)
    config["spa"] = spa_default
    if percel is not None:
        _apply_percel(config, percel)
    if redirects is not None:
        config["netlify_redirects"] = parse_redirects_file(redirects, config["warnings"])
    if headers is not None:
        config["netlify_headers"] = parse_headers_file(headers, config["warnings"])
    config["hidden"] = list(hidden if hidden is not None else CONFIG_FILES)
    return config


def _hidden_files(output_dir: Path, project_dir: Path) -> list[str]:
    """Config files are not content: Netlify and Cloudflare Pages never serve _redirects/_headers.

    A plain static repo is its own output, so its vercel.json/percel.json would be public too.
    """
    hidden = list(CONFIG_FILES)
    if output_dir.resolve() == project_dir.resolve():
        hidden += ["vercel.json", "percel.json"]
    return hidden


# --- reading files --------------------------------------------------------------------------

def _read_text(path: Path, tree: Path) -> str | None:
    """The file's text, None when absent; `tree` is the directory it must resolve inside.

    The build made these files and may have made them symlinks, while the runner reads them
    as itself, outside the sandbox: `_headers -> /proc/self/environ` put the runner's whole
    environment (AWS_SECRET_ACCESS_KEY) in the build's error message. So, as in
    manifest.scan_output, a link is followed only when it stays inside the tree.
    """
    if not path.is_file():
        return None
    real = paths.resolve_inside(path, Path(tree).resolve())
    if real is None:
        raise SiteConfigError(f"{path.name}: a symlink to a file outside the {tree.name}/ "
                              "directory; not read")
    if real.stat().st_size > MAX_FILE_BYTES:
        raise SiteConfigError(f"{path.name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return real.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SiteConfigError(f"{path.name}: not valid UTF-8 ({error.reason})") from None


def _read_json_object(path: Path, tree: Path) -> dict | None:
    text = _read_text(path, tree)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SiteConfigError(f"{path.name}: invalid JSON at line {error.lineno}: {error.msg}") from None
    if not isinstance(data, dict):
        raise SiteConfigError(f"{path.name}: the top level must be a JSON object")
    return data


def _apply_percel(config: dict, data: dict) -> None:
    unknown = sorted(set(data) - {"spa"})
    if unknown:
        raise SiteConfigError(f"percel.json: unknown key {unknown[0]!r} (only \"spa\" is supported)")
    if "spa" in data:
        if not isinstance(data["spa"], bool):
            raise SiteConfigError("percel.json: \"spa\" must be true or false")
        config["spa"] = data["spa"]


# --- vercel.json ----------------------------------------------------------------------------

def _apply_vercel(config: dict, data: dict) -> None:
    for key, slot in (("cleanUrls", "clean_urls"), ("trailingSlash", "trailing_slash")):
        if key in data:
            if not isinstance(data[key], bool):
                raise SiteConfigError(f"vercel.json: {key} must be true or false")
            config[slot] = data[key]
    if "routes" in data:
        config["warnings"].append("vercel.json: legacy `routes` is not supported and was ignored")
    config["redirects"] = _vercel_rules(data, "redirects", _vercel_redirect, config["warnings"])
    config["rewrites"] = _vercel_rules(data, "rewrites", _vercel_rewrite, config["warnings"])
    config["headers"] = _vercel_rules(data, "headers", _vercel_header, config["warnings"])


def _vercel_rules(data: dict, key: str, parse, warnings: list[str]) -> list[dict]:
    rules = data.get(key, [])
    if not isinstance(rules, list):
        raise SiteConfigError(f"vercel.json: {key} must be an array")
    if len(rules) > MAX_RULES:
        raise SiteConfigError(f"vercel.json: {key} has {len(rules)} rules; the limit is {MAX_RULES}")
    compiled = []
    for index, rule in enumerate(rules):
        where = f"vercel.json: {key}[{index}]"
        if not isinstance(rule, dict):
            raise SiteConfigError(f"{where} must be an object")
        parsed = parse(rule, where, warnings)
        if parsed is not None:
            compiled.append(parsed)
    return compiled


def _string_field(rule: dict, name: str, where: str) -> str:
    value = rule.get(name)
    if not isinstance(value, str) or not value:
        raise SiteConfigError(f"{where}: {name} must be a non-empty string")
    return value


def _vercel_source(rule: dict, where: str) -> dict:
    source = _string_field(rule, "source", where)
    if not source.startswith("/"):
        raise SiteConfigError(f"{where}: source {source!r} must start with \"/\"")
    regex, names = vercel_pattern(source, where)
    _check_cost(regex, where, source)
    return {"regex": regex, "names": names, "has": _conditions(rule, "has", where),
            "missing": _conditions(rule, "missing", where)}


def _vercel_redirect(rule: dict, where: str, warnings: list[str]) -> dict:
    compiled = _vercel_source(rule, where)
    compiled["destination"] = _string_field(rule, "destination", where)
    permanent = rule.get("permanent", True)
    if not isinstance(permanent, bool):
        raise SiteConfigError(f"{where}: permanent must be true or false")
    status = rule.get("statusCode", 308 if permanent else 307)  # Vercel: statusCode wins
    if status not in REDIRECT_CODES or isinstance(status, bool):
        raise SiteConfigError(f"{where}: statusCode must be one of 301, 302, 303, 307, 308")
    compiled["status"] = status
    return compiled


def _vercel_rewrite(rule: dict, where: str, warnings: list[str]) -> dict | None:
    compiled = _vercel_source(rule, where)
    destination = _string_field(rule, "destination", where)
    if not destination.startswith("/"):
        # Vercel proxies external rewrites; a static host cannot, so the rule is dropped loudly.
        warnings.append(f"{where}: rewrites to external URLs are not supported; rule ignored")
        return None
    compiled["destination"] = destination
    return compiled


def _vercel_header(rule: dict, where: str, warnings: list[str]) -> dict:
    compiled = _vercel_source(rule, where)
    items = rule.get("headers")
    if not isinstance(items, list) or not items:
        raise SiteConfigError(f"{where}: headers must be a non-empty array of {{key, value}}")
    pairs = []
    for position, item in enumerate(items):
        spot = f"{where}.headers[{position}]"
        if not isinstance(item, dict):
            raise SiteConfigError(f"{spot} must be an object with key and value")
        pairs.append(_header_pair(_string_field(item, "key", spot), item.get("value"), spot))
    compiled["headers"] = pairs
    return compiled


def _header_pair(name: str, value, where: str) -> list[str]:
    if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
        raise SiteConfigError(f"{where}: the value of {name!r} must be a single-line string "
                              "of printable ASCII characters")
    if not _TOKEN.fullmatch(name):   # fullmatch: `$` would let a trailing "\n" through
        raise SiteConfigError(f"{where}: {name!r} is not a valid header name")
    if name.lower() in RESERVED_HEADERS:
        raise SiteConfigError(f"{where}: header {name!r} is set by the server and cannot be overridden")
    return [name, value.strip()]


def _conditions(rule: dict, field: str, where: str) -> list[dict]:
    """Vercel `has` / `missing`: header, cookie, host or query, with an optional value regex."""
    items = rule.get(field, [])
    if not isinstance(items, list):
        raise SiteConfigError(f"{where}: {field} must be an array")
    conditions = []
    for position, item in enumerate(items):
        spot = f"{where}.{field}[{position}]"
        if not isinstance(item, dict) or item.get("type") not in _HAS_TYPES:
            raise SiteConfigError(f"{spot}: type must be one of header, cookie, host, query")
        key, value = item.get("key"), item.get("value")
        if item["type"] != "host" and not isinstance(key, str):
            raise SiteConfigError(f"{spot}: key must be a string")
        if value is not None:
            _check_regex(value, spot)
        conditions.append({"type": item["type"], "key": key, "value": value})
    return conditions


def _check_regex(value, where: str) -> None:
    if not isinstance(value, str):
        raise SiteConfigError(f"{where}: value must be a string")
    try:
        re.compile(value)
    except re.error as error:
        raise SiteConfigError(f"{where}: invalid regular expression {value!r}: {error}") from None
    _check_cost(value, where, value)


def _check_cost(regex: str, where: str, shown: str) -> str:
    """Refuse a pattern that backtracks catastrophically (see chalicelib/safe_regex.py)."""
    if safe_regex.too_slow(regex):
        raise SiteConfigError(f"{where}: {shown!r} is too expensive to match (its regular "
                              "expression backtracks catastrophically); simplify it")
    return regex


# --- Vercel source patterns (path-to-regexp style, as in vercel routing-utils) ---------------

_PARAM = re.compile(r":([A-Za-z0-9_]+)")
_DEFAULT_SEGMENT = "[^/#?]+?"


def vercel_pattern(source: str, where: str = "pattern") -> tuple[str, list[str]]:
    """Compile a path-to-regexp source (`/blog/:slug`, `/:path*`, `/(.*)`) to an anchored regex.

    Like path-to-regexp with {strict: true, sensitive: true}, which Vercel's routing-utils uses:
    no optional trailing slash, case-sensitive. Unnamed groups are named "0", "1", ...
    A `/` before a parameter is its prefix, optional together with `?` and `*` parameters.
    """
    parts: list[str] = []
    names: list[str] = []
    index = 0
    while index < len(source):
        index = _pattern_token(source, index, parts, names, where)
    body = "".join(parts)
    if re.fullmatch(body, ""):
        body = f"(?:{body}|/)"   # `/:path*` is the catch-all: it matches the root `/` as well
    return "^" + body + "$", names


def _pattern_token(source: str, index: int, parts: list[str], names: list[str], where: str) -> int:
    char = source[index]
    if char == "\\" and index + 1 < len(source):
        parts.append(re.escape(source[index + 1]))
        return index + 2
    name_match = _PARAM.match(source, index) if char == ":" else None
    if name_match or char == "(":
        name = name_match.group(1) if name_match else str(sum(n.isdigit() for n in names))
        index = name_match.end() if name_match else index
        pattern, index = _group_pattern(source, index, where)
        modifier = source[index] if index < len(source) and source[index] in "?*+" else ""
        prefix = parts.pop() if parts and parts[-1] == "/" else ""
        parts.append(_param_regex(prefix, pattern, modifier))
        names.append(name)
        return index + len(modifier)
    if char in "{}":
        raise SiteConfigError(f"{where}: {{...}} groups in source patterns are not supported")
    if char in "*+?":  # path-to-regexp: a modifier must follow a parameter
        raise SiteConfigError(f"{where}: {char!r} must follow a parameter in {source!r}; "
                              "write /:path* or /(.*)")
    parts.append("/" if char == "/" else re.escape(char))
    return index + 1


def _group_pattern(source: str, index: int, where: str) -> tuple[str, int]:
    """Read an optional `(regex)` at index; path-to-regexp refuses capturing groups inside it."""
    if index >= len(source) or source[index] != "(":
        return _DEFAULT_SEGMENT, index
    depth, end = 0, index
    while end < len(source):
        if source[end] == "\\":
            end += 2
            continue
        depth += {"(": 1, ")": -1}.get(source[end], 0)
        if depth == 0:
            break
        end += 1
    if depth != 0:
        raise SiteConfigError(f"{where}: unbalanced parenthesis in {source!r}")
    pattern = source[index + 1:end]
    if re.search(r"(?<!\\)\((?!\?)", pattern):
        raise SiteConfigError(f"{where}: capturing groups are not allowed inside ({pattern}); use (?:...)")
    _check_regex(pattern, where)
    return pattern, end + 1


def _param_regex(prefix: str, pattern: str, modifier: str) -> str:
    prefix = re.escape(prefix) if prefix else ""
    if modifier in ("+", "*"):
        body = f"{prefix}((?:{pattern})(?:{prefix}(?:{pattern}))*)"
        return body if modifier == "+" else f"(?:{body})?"
    if modifier == "?":
        return f"(?:{prefix}({pattern}))?"
    return f"{prefix}({pattern})"


# --- Netlify / Cloudflare Pages patterns ------------------------------------------------------

def splat_pattern(source: str) -> tuple[str, list[str]]:
    """Compile a `_redirects`/`_headers` path: `*` is the splat, `:name` a whole segment.

    A trailing slash is not significant (Netlify normalises URLs before matching), and
    `/news/*` also matches `/news` itself; the resolver strips the request's trailing slash.
    """
    body = source.rstrip("/") or "/"
    names: list[str] = []
    parts: list[str] = []
    if body.endswith("/*"):
        body, tail = body[:-2], "(?:/(.*))?"
    else:
        tail = ""
    for segment in body.split("/")[1:] if body != "/" else []:
        parts.append("/" + _splat_segment(segment, names))
    if tail:
        names.append("splat")
    regex = "".join(parts) + tail
    return "^" + (regex or "/") + "$", names


def _splat_segment(segment: str, names: list[str]) -> str:
    if segment.startswith(":") and re.fullmatch(r":[A-Za-z_][A-Za-z0-9_]*", segment):
        names.append(segment[1:])
        return "([^/]+)"
    pieces = segment.split("*")
    for _ in pieces[1:]:
        names.append("splat")  # Cloudflare Pages allows a splat inside a segment too
    return "(.*)".join(re.escape(piece) for piece in pieces)


# --- _redirects ------------------------------------------------------------------------------

_STATUS = re.compile(r"^(\d{3})(!?)$")
_CONDITION_KEYS = ("country=", "language=", "role=", "cookie=")


def parse_redirects_file(text: str, warnings: list[str]) -> list[dict]:
    """Parse `_redirects`: `from [query=:param ...] to [status][!] [Condition=...]`, first match wins."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"_redirects line {number}"
        if len(line) > MAX_LINE:
            raise SiteConfigError(f"{where}: longer than {MAX_LINE} characters")
        rule = _redirect_line(line.split(), where, warnings)
        if rule is not None:
            rules.append(rule)
        if len(rules) > MAX_RULES:
            raise SiteConfigError(f"_redirects: more than {MAX_RULES} rules")
    return rules


def _redirect_line(tokens: list[str], where: str, warnings: list[str]) -> dict | None:
    source, rest = tokens[0], tokens[1:]
    if not source.startswith("/"):
        warnings.append(f"{where}: only path rules are supported (not {source!r}); rule ignored")
        return None
    query, rest = _leading_query(rest)
    if not rest:
        raise SiteConfigError(f"{where}: expected `from to [status]`, got only {source!r}")
    destination, rest = rest[0], rest[1:]
    status, force, rest = _status_token(rest, where)
    if rest and any(token.lower().startswith(_CONDITION_KEYS) for token in rest):
        warnings.append(f"{where}: Country/Language/Role/Cookie conditions are not supported; rule ignored")
        return None
    if rest:
        raise SiteConfigError(f"{where}: unexpected {' '.join(rest)!r} after the status")
    if status not in REDIRECT_CODES and not destination.startswith("/"):
        warnings.append(f"{where}: proxying to {destination!r} is not supported; rule ignored")
        return None
    regex, names = splat_pattern(source)
    _check_cost(regex, where, source)
    return {"regex": regex, "names": names, "query": query, "destination": destination,
            "status": status, "force": force}


def _leading_query(tokens: list[str]) -> tuple[dict, list[str]]:
    """Netlify query matching: `key=value` tokens between `from` and `to`."""
    query = {}
    while tokens and "=" in tokens[0] and not tokens[0].startswith(("/", "http://", "https://")):
        key, _, value = tokens[0].partition("=")
        query[key] = value
        tokens = tokens[1:]
    return query, tokens


def _status_token(tokens: list[str], where: str) -> tuple[int, bool, list[str]]:
    if not tokens:
        return 301, False, tokens  # Netlify's default status
    match = _STATUS.match(tokens[0])
    if not match:
        if tokens[0] == "!":
            return 301, True, tokens[1:]
        if "=" in tokens[0]:
            return 301, False, tokens
        raise SiteConfigError(f"{where}: {tokens[0]!r} is not a status code")
    status = int(match.group(1))
    if not (200 <= status <= 599) or (300 <= status < 400 and status not in REDIRECT_CODES):
        raise SiteConfigError(f"{where}: unsupported status {status}")
    return status, bool(match.group(2)), tokens[1:]


# --- _headers --------------------------------------------------------------------------------

def parse_headers_file(text: str, warnings: list[str]) -> list[dict]:
    """Parse `_headers`: a path line, then indented `Name: value` lines (`! Name` detaches, as on
    Cloudflare Pages). Every matching block applies; the resolver merges them."""
    rules: list[dict] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"_headers line {number}"
        if raw[0] not in " \t":
            rules.append(_header_block(line, where, warnings))
            if len(rules) > MAX_RULES:
                raise SiteConfigError(f"_headers: more than {MAX_RULES} rules")
        elif not rules:
            raise SiteConfigError(f"{where}: a header line must follow a path line")
        else:
            _header_line(rules[-1], line, where)
    return [rule for rule in rules if rule["regex"] is not None]


def _header_block(line: str, where: str, warnings: list[str]) -> dict:
    if line.startswith(("http://", "https://")):
        # Cloudflare Pages allows host-specific blocks; percel serves one host per site.
        warnings.append(f"{where}: host-specific rules are not supported; block ignored")
        return {"regex": None, "headers": [], "detach": []}
    if not line.startswith("/"):
        raise SiteConfigError(f"{where}: {line!r} is not a path (paths start with \"/\"; "
                              "header lines must be indented)")
    regex, names = splat_pattern(line)
    _check_cost(regex, where, line)
    return {"regex": regex, "names": names, "headers": [], "detach": []}


def _header_line(rule: dict, line: str, where: str) -> None:
    if line.startswith("!"):
        rule["detach"].append(line[1:].strip().lower())
        return
    name, colon, value = line.partition(":")
    if not colon:
        raise SiteConfigError(f"{where}: expected `Name: value`, got {line!r}")
    rule["headers"].append(_header_pair(name.strip(), value, where))
