"""One conformance case, and running it through percel the way a deployment would.

A case is what a user of a platform would notice: the config files they bring, the files in
their output, one request, and the response that platform gives. percel either agrees, or it
differs on purpose: then `differs` says why and `percel` says what percel does instead, and
the case checks that. A case whose config the platform refuses expects `build_error`; a line
the platform skips expects `warnings` (percel's count for the whole site config).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from chalicelib.pipeline import siteconfig
from chalicelib.schema import OutputManifest, SiteConfig
from chalicelib.serving.resolve import resolve
from chalicelib.storage import mediatypes

Platform = Literal["netlify", "cloudflare", "vercel"]
# The config files a case may bring, and where compile_config takes each.
CONFIG_ARGUMENTS = {"vercel.json": "vercel", "percel.json": "percel", "_redirects": "redirects",
                    "_headers": "headers", "netlify.toml": "netlify_toml"}


@dataclass(frozen=True)
class Expect:
    """What the visitor sees. Fields left None are not checked."""
    status: int | None = None
    location: str | None = None              # the Location header, exactly
    file: str | None = None                  # the output file whose bytes are sent
    headers: dict[str, str | None] = field(default_factory=dict)  # None: the header is absent
    build_error: bool = False                # the config fails the deploy
    warnings: int | None = None              # how many config warnings the deploy reports


@dataclass(frozen=True)
class Case:
    id: str
    platform: Platform
    origin: str                              # upstream file (repository path) the fact is from
    config: dict[str, str]                   # file name -> text (vercel.json as JSON text)
    expect: Expect
    path: str = "/"                          # request path, query included
    files: tuple[str, ...] = ("index.html",)
    request_headers: dict[str, str] = field(default_factory=dict)
    differs: str | None = None               # why percel differs on purpose ...
    percel: Expect | None = None             # ... and what it does instead

    @property
    def wanted(self) -> Expect:
        return self.percel if self.differs and self.percel is not None else self.expect


@dataclass
class Outcome:
    status: int | None = None
    location: str | None = None
    file: str | None = None
    headers: dict[str, str] = field(default_factory=dict)   # lower-case names
    build_error: str | None = None
    warnings: list[str] = field(default_factory=list)


def with_404_page(cases: list[Case]) -> list[Case]:
    """A Pages site without a top-level 404.html is taken for a single-page app: every path
    no file or rule answers gets index.html with a 200 (cloudflare.py, SPA_DOCS). The cases
    that expect a 404 are about a rule, not about that, so their sites carry the 404.html the
    upstream tests' sites answer with."""
    return [dataclasses.replace(case, files=(*case.files, "404.html"))
            if case.expect.status == 404 and "404.html" not in case.files else case
            for case in cases]


def compile_case(case: Case) -> SiteConfig:
    """The site config a deploy of this case builds (SiteConfigError when the deploy fails)."""
    arguments: dict[str, object] = {}
    for name, text in case.config.items():
        key = CONFIG_ARGUMENTS[name]
        arguments[key] = json.loads(text) if name.endswith(".json") else text
    return siteconfig.compile_config(has_404="404.html" in case.files,  # type: ignore[arg-type]
                                     **arguments)


def manifest_for(case: Case, config: SiteConfig) -> OutputManifest:
    files = {key: {"sha256": hashlib.sha256(key.encode()).hexdigest(), "size": 100,
                   "type": mediatypes.content_type(key)} for key in case.files}
    return {"version": 1, "id": "conformance", "files": files, "config": config}  # type: ignore[typeddict-item]


def run_case(case: Case) -> Outcome:
    """Deploy the case's config over its files and make its request."""
    try:
        config = compile_case(case)
    except siteconfig.SiteConfigError as error:
        return Outcome(build_error=str(error))
    path, _, query = case.path.partition("?")
    headers = {name.lower(): value for name, value in case.request_headers.items()}
    headers.setdefault("host", "site.example.com")
    decision = resolve("GET", path, headers, manifest_for(case, config), query)
    return Outcome(status=decision.status, location=decision.location, file=decision.file,
                   headers={name.lower(): value for name, value in decision.headers},
                   warnings=list(config["warnings"]))


def mismatches(expect: Expect, outcome: Outcome) -> list[str]:
    """What differs between the expectation and the outcome, in words; empty when they agree."""
    if expect.build_error or outcome.build_error:
        if expect.build_error and outcome.build_error:
            return []
        return [f"build error: expected {expect.build_error}, got {outcome.build_error!r}"]
    found = []
    for name in ("status", "location", "file"):
        wanted = getattr(expect, name)
        if wanted is not None and wanted != getattr(outcome, name):
            found.append(f"{name}: expected {wanted!r}, got {getattr(outcome, name)!r}")
    for name, value in expect.headers.items():
        actual = outcome.headers.get(name.lower())
        if actual != value:
            found.append(f"header {name}: expected {value!r}, got {actual!r}")
    if expect.warnings is not None and expect.warnings != len(outcome.warnings):
        found.append(f"warnings: expected {expect.warnings}, got {outcome.warnings!r}")
    return found


def all_cases() -> list[Case]:
    """Every case of every case module in this package (each module's `CASES`), in name order."""
    import importlib
    import pkgutil

    import tests.conformance as package
    cases: list[Case] = []
    for module in sorted(info.name for info in pkgutil.iter_modules(package.__path__)):
        if module not in ("harness", "report"):
            cases.extend(importlib.import_module(f"tests.conformance.{module}").CASES)
    return cases
