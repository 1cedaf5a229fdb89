"""Benchmark: do the apps people actually deploy build and serve on percel, and how much slower
than building them by hand?

Run: `.venv/bin/python bench/realworld.py [--apps vite-react,sveltekit] [--list]`
How to read the table: bench/README.md, "Real-world apps".

For each app (APPS below): scaffold it with its official scaffolder, pinned to an exact version
(every template ships inside the scaffolder's npm package: nothing is fetched from GitHub), write
the lockfile of the package manager it is meant to use, commit it to a git repository, then
- by hand: a copy, the install and build a user would type, no sandbox;
- percel: POST /api/deployments with only its file:// URL, poll until it ends;
- serving: check the site the way a browser and a user would (checks_for).
Cold on both sides: a fresh HOME for the hand build (empty npm / pnpm / yarn caches and an empty
corepack cache) and, on percel, a new repository URL (an empty dependency cache) and a fresh
sandbox home per build. Not cold: this machine's registry proxy, which may cache tarballs; which
side runs first alternates per app. An app that fails is reported, never raised: the script
exits 0 unless the stack itself does not start.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_runner.sandbox.base import tool_path
from build_runner.toolchain import Toolchains
from build_runner.toolchain.registry import Registry
from devstack import services

DEPLOY_TIMEOUT = 1800.0
SCAFFOLD_TIMEOUT = 600.0
# The package managers' own versions, pinned like the scaffolders; corepack fetches them from
# the npm registry. pnpm 12 is the registry's latest; 10.34.8 (the newest 10.x) is there because
# pnpm 12 with a packageManager field fails every frozen install here (bench/README.md).
PNPM = "pnpm@12.21.0"
PNPM_10 = "pnpm@10.34.8"
YARN_CLASSIC = "yarn@1.22.22"
YARN_BERRY = "4.18.1"


# --- the apps ------------------------------------------------------------------------------

@dataclass(frozen=True)
class App:
    name: str
    framework: str
    pm: str                      # npm | pnpm | yarn (classic) | yarn-berry
    scaffolder: str              # the pinned package that writes the app
    command: str                 # the scaffold command, run in an empty folder; writes ./app
    deep_link: str               # a known page, or a route no file answers (see checks_for)
    multi_page: bool = False     # deep_link is a real page of a multi-page site
    output: str = "dist"         # where the hand build writes the site
    change: str = ""             # a config change the framework's docs require for static output
    edit: Callable[[Path], None] | None = None
    pm_field: bool = True        # write package.json's packageManager (pnpm and yarn only)
    pnpm: str = PNPM             # the pnpm that writes the lockfile (and packageManager)
    node: str = ""               # Node.js major the scaffolder and the hand build need; "": the host's


def vite(template: str) -> str:
    return f"npx create-vite@9.3.0 app --template {template} --no-interactive"


def next_export(app: Path) -> None:
    # nextjs.org/docs/app/guides/static-exports: `output: "export"` writes out/.
    config = next(app.glob("next.config.*"))
    text = config.read_text()
    opening = re.search(r"const nextConfig(: NextConfig)? = \{", text)
    if opening is None:
        raise CommandFailed(f"edit {config.name}", 1, "no `const nextConfig = {` to add output: 'export' to")
    config.write_text(text[:opening.end()] + '\n  output: "export",' + text[opening.end():])
    # The pages router's API routes cannot be exported (nextjs.org/docs/pages/guides/static-exports).
    shutil.rmtree(app / "pages" / "api", ignore_errors=True)


def pin_vite(app: Path) -> None:
    """vite 8.4.0 added an optional dependency (napi-windows-process-start-time) that the registry
    reachable here answers 404 for: npm leaves it out of the lockfile, but yarn classic and berry
    refuse to lock. Pinned to 8.3.0 (no such dependency) for the yarn apps only."""
    package_json = app / "package.json"
    package = json.loads(package_json.read_text())
    package["devDependencies"]["vite"] = "8.3.0"
    package["resolutions"] = {"vite": "8.3.0"}
    package_json.write_text(json.dumps(package, indent=2) + "\n")


def prerender_all(app: Path) -> None:
    # svelte.dev/docs/kit/adapter-static: every page must be prerendered.
    (app / "src" / "routes" / "+layout.ts").write_text("export const prerender = true;\n")


PIN_VITE = "package.json: vite pinned to 8.3.0 (this machine's registry lacks a dependency of 8.4.0)"
NEXT = "npx create-next-app@16.4.3 app --yes --skip-install --disable-git --use-npm"

APPS: tuple[App, ...] = (
    App("vite-react", "React (Vite)", "npm", "create-vite@9.3.0", vite("react-ts"), "/some/route"),
    App("vite-vanilla", "vanilla TS (Vite)", "npm", "create-vite@9.3.0", vite("vanilla-ts"), "/some/route"),
    App("vite-vue", "Vue (Vite)", "pnpm", "create-vite@9.3.0", vite("vue-ts"), "/some/route",
        pm_field=False),
    App("vite-svelte", "Svelte (Vite)", "yarn", "create-vite@9.3.0", vite("svelte-ts"), "/some/route",
        change=PIN_VITE, edit=pin_vite),
    App("vite-preact", "Preact (Vite)", "yarn-berry", "create-vite@9.3.0", vite("preact-ts"),
        "/some/route", change=PIN_VITE, edit=pin_vite),
    App("vite-solid", "Solid (Vite)", "pnpm", "create-vite@9.3.0", vite("solid-ts"), "/some/route"),
    App("create-vue", "Vue + Vue Router", "npm", "create-vue@3.24.0",
        "npx create-vue@3.24.0 app --ts --router", "/about"),
    App("sveltekit", "SvelteKit (adapter-static)", "pnpm", "sv@0.17.1",
        'npx sv@0.17.1 create app --template minimal --types ts '
        '--add sveltekit-adapter="adapter:static" --no-install', "/some/route", output="build", pnpm=PNPM_10,
        change="src/routes/+layout.ts: `export const prerender = true` (adapter-static)",
        edit=prerender_all),
    App("docusaurus", "Docusaurus (classic)", "npm", "create-docusaurus@3.10.2",
        "npx create-docusaurus@3.10.2 app classic --javascript --skip-install -p npm",
        "/docs/intro", multi_page=True, output="build"),
    App("nextjs", "Next.js app router (export)", "yarn", "create-next-app@16.4.3", NEXT,
        "/some/route", output="out", change='next.config.ts: `output: "export"`', edit=next_export),
    App("nextjs-pages", "Next.js pages router (export)", "yarn-berry", "create-next-app@16.4.3",
        NEXT + " --no-app --no-tailwind --js", "/some/route", output="out",
        change='next.config.mjs: `output: "export"`; pages/api removed', edit=next_export),
    App("angular", "Angular", "npm", "@angular/cli@21.2.27",
        "npx @angular/cli@21.2.27 new app --defaults --skip-git --skip-install",
        "/some/route", output="dist/app/browser"),
    # engines.node ^22.22.3 || ^24.15.0 || >=26: scaffolded and built by hand on Node 24, the
    # major percel picks for a project that names none. It writes packageManager npm@<its npm>.
    App("angular-22", "Angular 22", "npm", "@angular/cli@22.2.7",
        "npx @angular/cli@22.2.7 new app --defaults --skip-git --skip-install",
        "/some/route", output="dist/app/browser", node="24"),
)

# Tried and left out (reported by --list).
SKIPPED = (
    ("create-astro@5.2.4", "its templates are not in the package: it downloads them from GitHub "
                           "(giget, github:withastro/astro/examples/<template>); on Node 24 here it stops "
                           "with 'Unable to connect to the internet'"),
    ("create-react-router@8.4.0", "engines: node >=22.22.0; its templates come from GitHub "
                                  "(remix-run/react-router-templates) or a path the user supplies"),
    ("create-preact@0.5.3", "prompts only (no flags): fails without a TTY (ERR_TTY_INIT_FAILED)"),
)


# --- shell ------------------------------------------------------------------------------------

class CommandFailed(RuntimeError):
    """A shell command exited non-zero; `line` is the output line that says why."""

    def __init__(self, command: str, code: int, output: str) -> None:
        self.line = error_line(output)
        self.output = output
        super().__init__(f"`{command}` exited {code}: {self.line}")


# Lines that say why a tool failed, strongest first.
CAUSES = (re.compile(r"Error:|ERR_|YN00[0-9]{2}|Failed to|Couldn't find|Missing:"),
          re.compile(r"\berr(or)?\b|failed", re.I))
NOISE = ("npm error a complete log", "info visit", "---")


def error_line(output: str, fallback: bool = True) -> str:
    """The line that names the cause (see CAUSES), else the last line (or "" without fallback)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    lines = [line for line in lines if not line.lower().startswith(NOISE)]
    for pattern in CAUSES:
        at = next((i for i, line in enumerate(lines) if pattern.search(line)), None)
        if at is not None:  # a line ending in ":" is continued on the next one
            cause = " ".join(lines[at:at + 2]) if lines[at].endswith(":") else lines[at]
            return cause[:300]
    return lines[-1][:300] if lines and fallback else ""


def sh(command: str, cwd: Path, env: dict | None = None, timeout: float = SCAFFOLD_TIMEOUT) -> str:
    """Run a shell command; raises CommandFailed when it exits non-zero."""
    try:
        result = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True,
                                timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise CommandFailed(command, -1, f"timed out after {timeout:g} s") from None
    if result.returncode != 0:
        raise CommandFailed(command, result.returncode, result.stdout + "\n" + result.stderr)
    return result.stdout


# The hand builds run pnpm and yarn as a developer here would, through the host's corepack:
# no download prompt (no TTY), no signature check (this machine's registry serves metadata
# without signatures; tarballs are still checked against their sha512), and yarn berry from
# the npm registry. The runner itself uses its own toolchains (docs/DECISIONS.md#toolchains).
COREPACK_ENV = {"COREPACK_ENABLE_DOWNLOAD_PROMPT": "0", "COREPACK_INTEGRITY_KEYS": "0",
                "COREPACK_NPM_REGISTRY": "https://registry.npmjs.org"}
SCAFFOLD_ENV = {"CI": "1", "npm_config_yes": "true", **COREPACK_ENV}


def node_env(app: App, project: Path, cache: Path) -> dict[str, str]:
    """PATH with the Node.js major `app.node` (and the npm the project asks for, or that Node's
    own) first, from the same registry packages percel's runner uses; {} for the host's Node."""
    if not app.node:
        return {}
    chain = Toolchains(Registry(os.environ.get("TOOLCHAIN_REGISTRY_URL", "https://registry.npmjs.org"),
                                cache)).prepare(project, "npm", app.node)
    return {"PATH": tool_path(chain.dirs, os.environ["PATH"])}


def scaffold(app: App, root: Path) -> Path:
    """The app as its scaffolder writes it, plus its lockfile, committed: its repository."""
    where = root / app.name
    where.mkdir(parents=True)
    env = {**SCAFFOLD_ENV, **node_env(app, where, root / "toolchains")}
    sh(app.command, where, env)
    repo = where / "app"
    if app.edit:
        app.edit(repo)
    write_lockfile(app, repo, env)
    sh("git init -q -b main && git add -A && "
       "git -c user.name=bench -c user.email=bench@localhost commit -qm 'scaffolded app'", repo)
    return repo


def set_package_manager(repo: Path, spec: str) -> None:
    package_json = repo / "package.json"
    package = json.loads(package_json.read_text())
    package["packageManager"] = spec
    package_json.write_text(json.dumps(package, indent=2) + "\n")


def write_lockfile(app: App, repo: Path, env: dict[str, str]) -> None:
    """The lockfile a user of that package manager commits; node_modules is never committed."""
    if app.pm == "npm":
        sh("npm install --package-lock-only --no-audit --no-fund", repo, env)
    elif app.pm == "pnpm":
        if app.pm_field:
            set_package_manager(repo, app.pnpm)
        sh(f"npx {app.pnpm} install --lockfile-only", repo, SCAFFOLD_ENV)
    elif app.pm == "yarn":
        set_package_manager(repo, YARN_CLASSIC)
        # yarn classic has no lockfile-only mode: install, then drop node_modules.
        sh(f"npx {YARN_CLASSIC} install --ignore-scripts --non-interactive", repo, SCAFFOLD_ENV)
        shutil.rmtree(repo / "node_modules", ignore_errors=True)
    elif app.pm == "yarn-berry":
        set_package_manager(repo, f"yarn@{YARN_BERRY}")
        # Plug'n'Play breaks these templates' `tsc -b` (measured: "Cannot find type definition
        # file for 'vite/client'"); node_modules is the linker such projects set.
        (repo / ".yarnrc.yml").write_text("nodeLinker: node-modules\n")
        # CI turns on immutable installs, which refuse to write a new lockfile.
        sh(f"npx -p @yarnpkg/cli-dist@{YARN_BERRY} yarn install --mode=update-lockfile", repo,
           {**SCAFFOLD_ENV, "YARN_ENABLE_IMMUTABLE_INSTALLS": "false"})
        # Berry's default .gitignore keeps its cache and install state out of the repository.
        (repo / ".gitignore").open("a").write("\n.yarn/*\n!.yarn/releases\n.pnp.*\n")
    (repo / ".gitignore").open("a").write("\nnode_modules\n")


# --- by hand ----------------------------------------------------------------------------------

def hand_commands(pm: str) -> str:
    """What a user types after cloning, with each tool's frozen-lockfile install."""
    return {
        "npm": "npm ci --no-audit --no-fund && npm run build",
        "pnpm": "corepack pnpm install --frozen-lockfile && corepack pnpm run build",
        "yarn": "corepack yarn install --frozen-lockfile && corepack yarn run build",
        "yarn-berry": "corepack yarn install --immutable && corepack yarn run build",
    }[pm]


def by_hand(app: App, repo: Path, scratch: Path, notes: list[str]) -> tuple[float, Path]:
    """Seconds for install + build in a fresh copy, with a fresh (empty) HOME; the output folder."""
    work, home = scratch / "work", scratch / "home"
    home.mkdir(parents=True)
    sh(f"git clone -q file://{repo} {work}", scratch)
    env = {"HOME": str(home), "CI": "1", **COREPACK_ENV, **node_env(app, work, scratch / "toolchains"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local/share")}
    if app.node:
        notes.append(f"by hand: Node {sh('node --version', work, env).strip()}")
    if app.pm == "pnpm" and not app.pm_field:
        # No packageManager field: a user runs the pnpm they have, the one that wrote the lockfile.
        command = hand_commands("pnpm").replace("corepack pnpm", f"corepack {app.pnpm}")
    else:
        command = hand_commands(app.pm)
    install, build = command.split(" && ")
    started = time.perf_counter()
    try:
        sh(install, work, env, timeout=DEPLOY_TIMEOUT)
    except CommandFailed as refused:
        if app.pm != "npm" or "in sync" not in refused.output:
            raise
        # npm ci refuses a lockfile that lacks an optional dependency the registry did not
        # serve when the lockfile was written; a user runs npm install then. The refusal
        # comes before any download, so the cache is still cold: time the install alone.
        missing = re.search(r"Missing: \S+", refused.output)
        notes.append(f"by hand: `npm ci` refused the lockfile ({missing.group(0) if missing else refused.line}),"
                     " timed `npm install`")
        started = time.perf_counter()
        sh("npm install --no-audit --no-fund", work, env, timeout=DEPLOY_TIMEOUT)
    installed = time.perf_counter()
    sh(build, work, env, timeout=DEPLOY_TIMEOUT)
    done = time.perf_counter()
    notes.append(f"by hand: install {installed - started:.1f} s + build {done - installed:.1f} s")
    return done - started, work / app.output


# --- through percel ---------------------------------------------------------------------------

STEP = re.compile(r"percel: (install|build) finished in ([0-9.]+) s")


def build_log(stack: services.Stack, deployment_id: str) -> list[str]:
    lines, cursor = [], ""
    for _ in range(100):  # pages of up to 1,000 lines, until the log runs dry
        page = services.api(stack.api_url, "GET", f"/api/deployments/{deployment_id}/logs?cursor={cursor}",
                            token=stack.admin_token)
        lines += page["lines"]
        if not page["lines"]:
            break
        cursor = page["cursor"]
    return lines


def step_times(lines: list[str]) -> str:
    """The install and build durations the runner wrote to the build log."""
    steps = [f"{m.group(1)} {float(m.group(2)):.1f} s" for m in map(STEP.search, lines) if m]
    return "percel: " + (" + ".join(steps) or "no step ran")


def deploy(stack: services.Stack, repo: Path) -> tuple[float, dict]:
    """POST -> the final status, in seconds, and the final record."""
    started = time.perf_counter()
    record = services.deploy_and_wait(stack, {"repo_url": f"file://{repo}"}, DEPLOY_TIMEOUT)
    seconds = time.perf_counter() - started
    if record["status"] in ("uploading", "queued", "building"):
        return seconds, {**record, "error": "bench: deploy timed out"}
    return seconds, record


# --- serving checks ---------------------------------------------------------------------------

# <link rel> values that load a file; canonical, alternate, preconnect... name pages or hosts.
ASSET_RELS = {"stylesheet", "icon", "apple-touch-icon", "mask-icon", "manifest", "modulepreload",
              "preload", "prefetch"}


class AssetLinks(HTMLParser):
    """Same-origin paths that index.html loads: script src, link href (of ASSET_RELS), img src."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and not ASSET_RELS & set((found.get("rel") or "").lower().split()):
            return
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        value = found.get(wanted) if wanted else None
        if value and (path := same_origin_path(value)) and path not in self.paths:
            self.paths.append(path)


def same_origin_path(reference: str) -> str | None:
    """The absolute path of a same-origin reference from "/", or None for other origins."""
    parts = urlsplit(reference)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = parts.path if parts.path.startswith("/") else "/" + parts.path.removeprefix("./")
    return None if "/../" in path else path


# Extension -> what its Content-Type must contain.
EXPECTED_TYPES = {".js": "javascript", ".mjs": "javascript", ".css": "text/css",
                  ".svg": "image/svg+xml", ".png": "image/png", ".ico": "icon",
                  ".json": "json", ".webmanifest": "manifest+json", ".woff2": "font/woff2",
                  ".jpg": "image/jpeg", ".webp": "image/webp", ".xml": "xml"}


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes


def fetch(port: int, host: str, path: str) -> Response:
    """GET from the site; a body over MAX_INLINE_BYTES is a 302 to a presigned URL, followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        body = response.read()
        location = response.getheader("Location") or ""
    finally:
        connection.close()
    if response.status == 302 and location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=60) as presigned:
            return Response(presigned.status, presigned.headers.get("Content-Type", ""), presigned.read())
    return Response(response.status, response.getheader("Content-Type") or "", body)


def check_asset(get: Callable[[str], Response], path: str) -> Check:
    response = get(path)
    expected = EXPECTED_TYPES.get(Path(path).suffix.lower())
    fits = (expected in response.content_type) if expected else "text/html" not in response.content_type
    ok = response.status == 200 and fits  # may be empty: Angular's default styles.css is
    return Check(f"asset {path}", ok, f"{response.status} {response.content_type}")


def check_deep_link(app: App, get: Callable[[str], Response], index: bytes,
                    hand_output: Path | None) -> Check:
    """A multi-page site's known page is 200 HTML. An SPA's unknown route answers index.html
    (the SPA fallback, as Cloudflare Pages does for a site without a 404.html) or the
    framework's own 404.html with status 404 (compared with the hand build's, when there is one)."""
    response = get(app.deep_link)
    seen = f"{response.status} {response.content_type}"
    html = "text/html" in response.content_type
    if app.multi_page:
        return Check(f"page {app.deep_link}", response.status == 200 and html, seen)
    if response.status == 200 and html and response.body == index:
        return Check(f"deep link {app.deep_link}", True, seen + " (index.html)")
    page_404 = hand_output / "404.html" if hand_output else None
    if response.status == 404 and html:
        if page_404 is not None and page_404.is_file():
            same = response.body == page_404.read_bytes()
            return Check(f"deep link {app.deep_link}", same, seen + (" (404.html)" if same else " (not 404.html)"))
        return Check(f"deep link {app.deep_link}", hand_output is None,
                     seen + (" (no SPA fallback, no 404.html)" if hand_output else " (unverified 404 page)"))
    return Check(f"deep link {app.deep_link}", False, seen)


def checks_for(app: App, port: int, deployment_id: str, hand_output: Path | None) -> list[Check]:
    host = f"{deployment_id}.localhost:{port}"

    def get(path: str) -> Response:
        return fetch(port, host, path)
    home = get("/")
    checks = [Check("/ is 200 text/html", home.status == 200 and "text/html" in home.content_type,
                    f"{home.status} {home.content_type}")]
    if not checks[0].ok:
        return checks
    links = AssetLinks()
    links.feed(home.body.decode("utf-8", "replace"))
    checks += [check_asset(get, path) for path in links.paths]
    checks.append(check_deep_link(app, get, home.body, hand_output))
    missing = get("/no-such-file.js")
    checks.append(Check("/no-such-file.js is 404", missing.status == 404,
                        f"{missing.status} {missing.content_type}"))
    return checks


# --- one app, the table -------------------------------------------------------------------------

@dataclass
class Result:
    app: App
    deployed: str = "no"
    checks: list[Check] = field(default_factory=list)
    percel: float | None = None
    hand: float | None = None
    deployment_id: str = ""
    notes: list[str] = field(default_factory=list)


def failure(error: str) -> str:
    """The error's first line (percel's one-line reason), then the log line that names the
    cause when the reason alone does not (a failed install's ERR_PNPM_..., a bundler's Error:)."""
    first, _, tail = error.strip().partition("\n")
    cause = error_line(tail, fallback=False)
    return first[:300] + (f" -- {cause}" if cause and cause not in first else "")


def run_app(app: App, root: Path, stack: services.Stack, hand_first: bool) -> Result:
    result = Result(app)
    try:
        repo = scaffold(app, root / "repos")
    except CommandFailed as error:  # a scaffolder that fails is a result, not a crash
        result.deployed = "not scaffolded: " + str(error)
        return result
    hand_output: Path | None = None

    def hand() -> None:
        nonlocal hand_output
        try:
            result.hand, output = by_hand(app, repo, root / "hand" / app.name, result.notes)
            hand_output = output if (output / "index.html").is_file() else None
            if hand_output is None:
                result.notes.append(f"hand build wrote no {app.output}/index.html")
        except CommandFailed as error:
            result.notes.append(f"by hand failed: {error}")

    def percel() -> None:
        seconds, record = deploy(stack, repo)
        if record["status"] == "deployed":
            result.deployed, result.percel = "yes", seconds
            result.notes.append(f"detected {record.get('framework')}")
        else:
            result.deployed = "no: " + failure(record.get("error") or record["status"])
        result.deployment_id = record["id"]
        lines = build_log(stack, record["id"])
        result.notes.append(step_times(lines))
        refused = [line for line in lines if "network access refused" in line]
        if refused:  # the install proxy's refusals: each one is a retry (and a wait) in the tool
            result.notes.append(f"percel: the install proxy refused {len(refused)} connections "
                                f"(first: {refused[0].split('refused: ', 1)[-1]})")
        saved = root / "logs" / f"{app.name}.log"
        saved.parent.mkdir(exist_ok=True)
        saved.write_text("\n".join(lines) + "\n")
        if record["status"] != "deployed":
            result.notes.append(f"build log: {saved} (kept with --keep)")

    result.notes.append("by hand ran first" if hand_first else "percel ran first")
    for step in ((hand, percel) if hand_first else (percel, hand)):
        step()
    if result.deployed == "yes":
        try:
            result.checks = checks_for(app, stack.port, result.deployment_id, hand_output)
        except OSError as error:
            result.notes.append(f"serving checks stopped: {error}")
    return result


def seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def table(results: list[Result]) -> str:
    rows = ["| app | framework | package manager | scaffolder | deployed | served checks | "
            "percel | by hand | ratio |", "|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in results:
        passed = f"{sum(c.ok for c in r.checks)}/{len(r.checks)}" if r.checks else "-"
        ratio = f"{r.percel / r.hand:.2f}" if r.percel and r.hand else "-"
        deployed = r.deployed.replace("|", "\\|")
        rows.append(f"| {r.app.name} | {r.app.framework} | {r.app.pm} | {r.app.scaffolder} | "
                    f"{deployed} | {passed} | {seconds(r.percel)} | {seconds(r.hand)} | {ratio} |")
    return "\n".join(rows)


def details(results: list[Result]) -> str:
    lines = []
    for r in results:
        failed = [f"{c.what} ({c.detail})" for c in r.checks if not c.ok]
        extra = r.notes + ([f"config change: {r.app.change}"] if r.app.change else [])
        extra += ["failed checks: " + "; ".join(failed)] if failed else []
        lines.append(f"- {r.app.name}: " + ("; ".join(extra) or "-"))
    return "\n".join(lines)


def list_apps() -> None:
    for app in APPS:
        print(f"{app.name:14} {app.framework:28} {app.pm:11} {app.scaffolder}"
              + (f"  (Node {app.node})" if app.node else "")
              + (f"  [{app.change}]" if app.change else ""))
    print("\nleft out:")
    for scaffolder, why in SKIPPED:
        print(f"  {scaffolder}: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", help="comma-separated app names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the apps and exit")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    if args.list:
        list_apps()
        return 0
    names = args.apps.split(",") if args.apps else [app.name for app in APPS]
    unknown = set(names) - {app.name for app in APPS}
    if unknown:
        parser.error(f"unknown apps: {', '.join(sorted(unknown))} (see --list)")
    chosen = [app for app in APPS if app.name in names]
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-realworld-"))
    stack = services.start_stack(root / "state", services.free_port(), runners=1,
                                 extra_env={"BUILD_SANDBOX": os.environ.get("BUILD_SANDBOX", "bwrap"),
                                            "WORK_DIR": str(root / "work")})
    results = []
    try:
        for number, app in enumerate(chosen):
            print(f"[{number + 1}/{len(chosen)}] {app.name} ...", flush=True)
            try:
                results.append(run_app(app, root, stack, hand_first=number % 2 == 1))
            except Exception as error:  # the API refused the POST, a check crashed...: report, go on
                results.append(Result(app, deployed=f"bench error: {type(error).__name__}: {error}"))
            r = results[-1]
            print(f"    deployed {r.deployed}; percel {seconds(r.percel)}, by hand {seconds(r.hand)}",
                  flush=True)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nnode {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(table(results))
    print("\n" + details(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
