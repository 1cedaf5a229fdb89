"""The deploy request body: parsed into a DeployRequest or refused with a 400 naming the field."""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import idna

from chalicelib import ids, paths
from chalicelib.addresses import address_refusal, is_loopback
from chalicelib.errors import BadRequest
from chalicelib.pipeline.clone import Pin

# git check-ref-format, simplified: no "..", no leading "-", no control characters.
_REF_RE = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/@+-]{1,200}$")
# A Node.js major, as Vercel's and Netlify's settings take it: "22" or "22.x". Which majors
# a runner provides is the runner's to say (a build asking for another fails with the list).
_NODE_VERSION_RE = re.compile(r"^([1-9][0-9]?)(?:\.x)?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_COMMAND_CHARS = 1_000
MAX_ENV_VARS = 200
MAX_ENV_VALUE_CHARS = 16_384
# Variables a build may not override: they steer the sandbox itself.
RESERVED_ENV = frozenset({"PATH", "HOME", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "HTTP_PROXY",
                          "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                          "LD_PRELOAD", "LD_LIBRARY_PATH"})


@dataclass(frozen=True)
class DeployRequest:
    repo_url: str
    ref: str | None = None
    root_dir: str | None = None
    install_command: str | None = None
    build_command: str | None = None
    output_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    node_version: str | None = None
    # Instead of repo_url: an upload made by POST /api/uploads (pipeline/uploads.py), and
    # whether its files are the site as they are, with no install or build.
    upload_id: str | None = None
    prebuilt: bool = False
    # Build even when an earlier deployment had the same inputs (docs/DECISIONS.md#memoized-builds).
    force: bool = False
    # Not a body field: the address repo_url's host had when it was checked, which the clone
    # connects to (repo_pin); None for file://.
    pin: Pin | None = field(default=None, compare=False)


BODY_FIELDS = frozenset(DeployRequest.__dataclass_fields__) - {"pin"}


Resolver = Callable[[str], list[str]]
_DEFAULT_PORTS = {"https": 443, "http": 80}
# A host name as DNS and curl's resolve list take it once it is ASCII: labels of letters, digits,
# hyphens (and underscores, which some real hosts carry), at most 63 characters, 253 in all
# (RFC 1035 section 2.3.4). Anything else (a "%" curl would decode, a stray delimiter) is refused.
_HOST_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                      r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def _resolve_host(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
    except socket.gaierror:
        raise BadRequest(f"repo_url host {host!r} does not resolve", field="repo_url") from None


def repo_pin(url: str, *, local: bool, resolve: Resolver = _resolve_host) -> Pin | None:
    """The checked address a clone of `url` (as check_repo_url returned it) must connect to, or
    None for file://. Every address the host has must pass: outside the local stage none may be
    loopback, link-local (cloud metadata), private or reserved (chalicelib/addresses.py); in the
    local stage all must be loopback, so 169.254.169.254 is refused there too."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return None
    host = parts.hostname or ""
    found = resolve(host)
    if not found:
        raise BadRequest(f"repo_url host {host!r} does not resolve", field="repo_url")
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        if local and not is_loopback(ip):
            raise BadRequest("in the local stage repo_url must be file:// or point to a loopback "
                             f"address; {host} has {ip}", field="repo_url")
        why = None if local else address_refusal(ip)
        if why:
            raise BadRequest(f"repo_url must point to a public host; {host} has {why}",
                             field="repo_url")
    return Pin(host, parts.port or _DEFAULT_PORTS[parts.scheme], found[0], parts.scheme)


def ascii_host(host: str) -> str:
    """The host as it is looked up, checked, pinned and handed to git: a non-ASCII name converted
    the way curl would convert it, so the name we check is the name git's curl connects to.

    curl converts with libidn2: UTS #46 non-transitional processing over NFC input, falling
    back to transitional processing when that fails (curl lib/idn.c, `IDN2_NFC_INPUT |
    IDN2_NONTRANSITIONAL` then `IDN2_TRANSITIONAL`). The `idna` package's
    `encode(uts46=True, transitional=False)` is the same first step (IDNA 2008 with the UTS #46
    mapping); the stdlib `encodings.idna` is IDNA 2003 and maps "ß" to "ss", a different domain
    than curl and browsers reach. A name only the transitional fallback would take is refused:
    we never give curl a non-ASCII name to convert in its own way. One trailing dot goes, as
    curl drops it too."""
    if ":" in host:  # an IPv6 literal: urlsplit took it from between brackets
        try:
            return str(ipaddress.IPv6Address(host.split("%")[0]))
        except ValueError:
            raise BadRequest("repo_url host is not a valid IPv6 address", field="repo_url") from None
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise BadRequest(f"repo_url host {host!r} is not a valid internationalised domain name",
                             field="repo_url") from None
    name = name.lower()
    if not _HOST_RE.match(name):
        raise BadRequest(f"repo_url host {host!r} is not a valid host name", field="repo_url")
    return name


def check_port(url: str) -> int | None:
    """The URL's port, if it names one: a number from 1 to 65535 (RFC 3986 section 3.2.3 allows
    any digits; TCP has 16 bits), else a 400. urlsplit raises ValueError for the others."""
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise BadRequest("repo_url port must be a number from 1 to 65535", field="repo_url")
    return port


def check_repo_url(url: str, *, local: bool, resolve: Resolver = _resolve_host) -> str:
    """The URL to clone: https to public hosts only, except in the local stage (file://, and
    http(s) to loopback addresses only). Refused with a 400 naming repo_url otherwise."""
    return checked_repo(url, local=local, resolve=resolve)[0]


def checked_repo(url: Any, *, local: bool, resolve: Resolver = _resolve_host) -> tuple[str, Pin | None]:
    """check_repo_url's URL and the pin its one lookup of the host gave (repo_pin)."""
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("repo_url must be a non-empty string", field="repo_url")
    if len(url) > 2048 or any(ord(c) < 32 for c in url):
        raise BadRequest("repo_url is not a valid URL", field="repo_url")
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "Invalid IPv6 URL", or a netloc that NFKC turns into a delimiter
        raise BadRequest("repo_url is not a valid URL", field="repo_url") from None
    allowed = ("https", "http", "file") if local else ("https",)
    if parts.scheme not in allowed:
        raise BadRequest(f"repo_url must use {' or '.join(allowed)}", field="repo_url")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadRequest("file:// repo_url must be an absolute local path", field="repo_url")
        return url.strip(), None
    if not parts.hostname:
        raise BadRequest("repo_url has no host", field="repo_url")
    if parts.username or parts.password:
        raise BadRequest("repo_url must not carry credentials", field="repo_url")
    port = check_port(url.strip())
    netloc = _bracketed(ascii_host(parts.hostname)) + (f":{port}" if port else "")
    checked = parts._replace(netloc=netloc).geturl()
    return checked, repo_pin(checked, local=local, resolve=resolve)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def check_relative_dir(value: Any, name: str) -> str | None:
    """A directory inside the repository: relative, no '..', normalised."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 512:
        raise BadRequest(f"{name} must be a relative path", field=name)
    normal = paths.safe_relative(value.strip())
    if normal is None:
        raise BadRequest(f"{name} must be a relative path inside the repository", field=name)
    return normal or None


def check_command(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_COMMAND_CHARS \
            or "\0" in value:
        raise BadRequest(f"{name} must be a non-empty string of at most {MAX_COMMAND_CHARS} "
                         "characters", field=name)
    return value.strip()


def check_env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_ENV_VARS:
        raise BadRequest(f"env must be an object of at most {MAX_ENV_VARS} string values",
                         field="env")
    for name, val in value.items():
        if not ENV_NAME_RE.match(name) or name in RESERVED_ENV:
            raise BadRequest(f"env name {name!r} is not allowed", field="env")
        if not isinstance(val, str) or len(val) > MAX_ENV_VALUE_CHARS or "\0" in val:
            raise BadRequest(f"env value of {name} must be a string", field="env")
    return dict(value)


def check_node_version(value: Any) -> str | None:
    """A Node.js major ("22" or "22.x"), stored as the major alone."""
    if value is None:
        return None
    match = _NODE_VERSION_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise BadRequest('node_version must be a Node.js major such as "22" or "22.x"',
                         field="node_version")
    return match[1]


def check_ref(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _REF_RE.match(value) or value.endswith((".lock", "/")):
        raise BadRequest("ref must be a branch or tag name", field="ref")
    return value


def parse_deploy_request(body: Any, *, local: bool,
                         resolve: Resolver = _resolve_host) -> DeployRequest:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}", field=unknown[0])
    if "repo_url" not in body and "upload_id" not in body:
        raise BadRequest("repo_url is required (or upload_id)", field="repo_url")
    if "upload_id" in body:
        return _upload_request(body)
    if "prebuilt" in body:
        raise BadRequest("prebuilt applies to an upload_id deployment only", field="prebuilt")
    repo_url, pin = checked_repo(body["repo_url"], local=local, resolve=resolve)
    return DeployRequest(repo_url=repo_url, pin=pin, ref=check_ref(body.get("ref")),
                         **build_options(body))


def _upload_request(body: dict[str, Any]) -> DeployRequest:
    """A deployment of an upload: no repo_url nor ref (there is no git), `prebuilt` maybe."""
    for name in ("repo_url", "ref"):
        if name in body:
            raise BadRequest("send either repo_url (with ref) or upload_id, not both",
                             field=name)
    upload_id = check_upload_id(body["upload_id"])
    options = build_options(body)
    prebuilt = check_prebuilt(body.get("prebuilt"), options)
    return DeployRequest(repo_url="", upload_id=upload_id, prebuilt=prebuilt, **options)


def check_upload_id(value: Any) -> str:
    if not isinstance(value, str) or not ids.is_valid_id(value):
        raise BadRequest("upload_id must be an id returned by POST /api/uploads",
                         field="upload_id")
    return value


def check_prebuilt(value: Any, options: dict[str, Any]) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest("prebuilt must be true or false", field="prebuilt")
    if value and (options.get("install_command") or options.get("build_command")):
        raise BadRequest("a prebuilt upload is neither installed nor built: leave out "
                         "install_command and build_command", field="prebuilt")
    return value


def build_options(body: dict[str, Any]) -> dict[str, Any]:
    """The build options every deploy body may carry, checked."""
    return dict(
        root_dir=check_relative_dir(body.get("root_dir"), "root_dir"),
        install_command=check_command(body.get("install_command"), "install_command"),
        build_command=check_command(body.get("build_command"), "build_command"),
        output_dir=check_relative_dir(body.get("output_dir"), "output_dir"),
        env=check_env(body.get("env")),
        node_version=check_node_version(body.get("node_version")),
        force=check_force(body.get("force")),
    )


def check_force(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest("force must be true or false", field="force")
    return value
