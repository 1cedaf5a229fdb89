"""Framework detection: which install, build and output directory a project needs.

Pure: reads files of the project, runs nothing. One ordered table, first match
wins, the way Vercel's presets work (vercel/vercel packages/frameworks/src/
frameworks.ts: an ordered list whose detectors match a dependency in
package.json, a config file or file content). The rows, the commands and the
output directories below were checked against apps scaffolded from npm on this
machine (figures in tests/test_frameworks.py's docstring).
"""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from build_runner.errors import ProjectError
from chalicelib import paths

# Environment every build step needs when it runs corepack (pnpm, yarn), measured here:
# - no interactive "download pnpm?" prompt (a build has no TTY to answer it);
# - the npm registry reachable here serves package metadata without signatures, so
#   corepack's signature check fails ("No compatible signature found"); the tarball
#   is still checked against the registry's sha512 over TLS;
# - yarn >= 2 is fetched from the npm registry (@yarnpkg/cli-dist) instead of
#   repo.yarnpkg.com, so the install proxy allows one registry only.
COREPACK_ENV = {
    "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
    "COREPACK_INTEGRITY_KEYS": "0",
    "COREPACK_NPM_REGISTRY": "https://registry.npmjs.org",
}

# `npm ci` deletes node_modules first; depcache swaps it for an install that reuses it.
NPM_CI = "npm ci --no-audit --no-fund"
NPM_INSTALL = "npm install --no-audit --no-fund"

# Lockfile -> package manager, in the order we prefer when several are present.
LOCKFILES: tuple[tuple[str, str], ...] = (
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lock", "bun"),
    ("bun.lockb", "bun"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
)


@dataclass(frozen=True)
class Overrides:
    install_command: str | None = None
    build_command: str | None = None
    output_dir: str | None = None


@dataclass(frozen=True)
class BuildPlan:
    framework: str
    package_manager: str | None
    install_command: str | None
    build_command: str | None
    output_dirs: tuple[str, ...]
    spa: bool


class OutputNotFound(ProjectError):
    """The build finished but no candidate output directory holds an index.html."""


class UnsupportedProject(ProjectError):
    """The project needs a tool the runner does not have (e.g. bun), or its package.json
    cannot be read."""


class InvalidRootDir(ProjectError):
    """root_dir leaves the repository or is not a directory in it."""


class InvalidOutputDir(ProjectError):
    """The output_dir override leaves the project."""


# --- reading the project ------------------------------------------------------

@dataclass(frozen=True)
class _Project:
    root: Path
    package: dict | None  # parsed package.json, None when absent

    @property
    def deps(self) -> frozenset[str]:
        if self.package is None:
            return frozenset()
        names: set[str] = set()
        for field in ("dependencies", "devDependencies"):
            section = self.package.get(field)
            if isinstance(section, dict):
                names.update(section)
        return frozenset(names)

    @property
    def scripts(self) -> dict:
        scripts = (self.package or {}).get("scripts")
        return scripts if isinstance(scripts, dict) else {}

    def has(self, *names: str) -> bool:
        return any((self.root / name).is_file() for name in names)

    def read(self, name: str) -> str | None:
        path = self.root / name
        try:
            return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        except OSError:
            return None


def _load_package(root: Path) -> dict | None:
    path = root / "package.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnsupportedProject(f"package.json is not valid JSON: {error}") from None
    return data if isinstance(data, dict) else {}


def _config_text(project: _Project, stem: str) -> str | None:
    """The first of <stem>.{js,mjs,cjs,ts,mts,cts} that exists."""
    for ext in ("js", "mjs", "cjs", "ts", "mts", "cts"):
        text = project.read(f"{stem}.{ext}")
        if text is not None:
            return text
    return None


def _string_option(text: str | None, pattern: str) -> str | None:
    """A string literal assigned in a config file; only plain literals are trusted."""
    if not text:
        return None
    match = re.search(pattern, text)
    return match.group(1) if match else None


_QUOTED = r"""\s*:\s*['"`]([^'"`$\n]+)['"`]"""


# --- output directories per framework ----------------------------------------

def _vite_dirs(project: _Project) -> tuple[str, ...]:
    # build: { outDir: 'x' } with no nested object before outDir (vitejs.dev/config/build-options).
    out_dir = _string_option(_config_text(project, "vite.config"), r"build\s*:\s*\{[^{}]*?\boutDir" + _QUOTED)
    return _dedupe((out_dir, "dist"))


def _astro_dirs(project: _Project) -> tuple[str, ...]:
    # Top-level outDir (docs.astro.build/en/reference/configuration-reference/#outdir).
    return _dedupe((_string_option(_config_text(project, "astro.config"), r"\boutDir" + _QUOTED), "dist"))


def _sveltekit_dirs(project: _Project) -> tuple[str, ...]:
    # adapter-static writes to `pages` (default "build"); newer scaffolds (sv create) put
    # the adapter in vite.config.ts instead of svelte.config.js.
    text = (_config_text(project, "svelte.config") or "") + (_config_text(project, "vite.config") or "")
    return _dedupe((_string_option(text, r"\bpages" + _QUOTED), "build"))


def _angular_dirs(project: _Project) -> tuple[str, ...]:
    """dist/<project>/browser for the application builder (Angular 17+), else outputPath.

    angular.io/guide/build: the `application` builder writes browser files to
    <outputPath>/browser; the older `browser` builder writes to outputPath itself.
    """
    try:
        workspace = json.loads(project.read("angular.json") or "{}")
    except ValueError:
        workspace = {}
    projects = workspace.get("projects") if isinstance(workspace, dict) else None
    if not isinstance(projects, dict) or not projects:
        return ("dist",)
    name = workspace.get("defaultProject")
    if name not in projects:
        apps = [n for n, p in projects.items() if isinstance(p, dict) and p.get("projectType") == "application"]
        name = (apps or list(projects))[0]
    build = ((projects.get(name) or {}).get("architect") or {}).get("build") or {}
    builder = str(build.get("builder", ""))
    output = (build.get("options") or {}).get("outputPath")
    base, browser = f"dist/{name}", "browser"
    if isinstance(output, str):
        base = output
    elif isinstance(output, dict):
        base = str(output.get("base") or base)
        browser = str(output.get("browser", browser))
    application = not builder.endswith((":browser", ":browser-esbuild"))
    first = f"{base}/{browser}" if application and browser else base
    return _dedupe((first, base, f"{base}/browser", "dist"))


def _static_dirs(project: _Project) -> tuple[str, ...]:
    return ("public", ".")


def _fixed(*dirs: str) -> Callable[[_Project], tuple[str, ...]]:
    return lambda project: dirs


def _dedupe(dirs: tuple[str | None, ...]) -> tuple[str, ...]:
    seen: list[str] = []
    for item in dirs:
        if not item:
            continue
        clean = _clean_relative(item)
        if clean is not None and clean not in seen:
            seen.append(clean)
    return tuple(seen)


# --- the table ----------------------------------------------------------------

@dataclass(frozen=True)
class _Framework:
    slug: str
    matches: Callable[[_Project], bool]
    output_dirs: Callable[[_Project], tuple[str, ...]]
    # The framework's own build when package.json has no "build" script (as Vercel's presets).
    default_build: str | None
    # SPA fallback per Vercel's presets: CRA, Vue CLI and Angular route every unknown
    # path to /index.html; Vite, Next, Gatsby, Docusaurus... serve a 404 instead.
    spa: bool


def _dep(*names: str) -> Callable[[_Project], bool]:
    return lambda project: any(name in project.deps for name in names)


# Order matters: meta-frameworks that use Vite or React come before Vite and CRA.
FRAMEWORKS: tuple[_Framework, ...] = (
    _Framework("nextjs", _dep("next"), _fixed("out"), "next build", False),
    _Framework("gatsby", _dep("gatsby"), _fixed("public"), "gatsby build", False),
    _Framework("docusaurus", _dep("@docusaurus/core"), _fixed("build"), "docusaurus build", False),
    _Framework("astro", _dep("astro"), _astro_dirs, "astro build", False),
    _Framework("sveltekit", _dep("@sveltejs/kit"), _sveltekit_dirs, "vite build", False),
    _Framework("angular", lambda p: "@angular/cli" in p.deps or p.has("angular.json"),
               _angular_dirs, "ng build", True),
    _Framework("eleventy", _dep("@11ty/eleventy"), _fixed("_site"), "eleventy", False),
    _Framework("create-react-app", _dep("react-scripts"), _fixed("build"), "react-scripts build", True),
    _Framework("vue-cli", _dep("@vue/cli-service"), _fixed("dist"), "vue-cli-service build", True),
    _Framework("vite", lambda p: "vite" in p.deps or _config_text(p, "vite.config") is not None,
               _vite_dirs, "vite build", False),
)

# A package.json with a build script but no known framework: the usual output folders.
_NODE_DIRS = ("dist", "build", "out", "public")

# Shown when the output is missing, for the two frameworks that only export static
# files when configured to (nextjs.org/docs/app/guides/static-exports, svelte.dev/docs/kit/adapter-static).
_HINTS = {
    "nextjs": "Next.js writes a static site only with `output: 'export'` in next.config.",
    "sveltekit": "SvelteKit writes a static site only with @sveltejs/adapter-static and prerendered pages.",
}


# --- package managers -----------------------------------------------------------

def _package_manager(project: _Project) -> str:
    """From the lockfile; the packageManager field breaks ties or stands in for a lockfile."""
    field = str((project.package or {}).get("packageManager", "")).split("@")[0]
    found = [pm for name, pm in LOCKFILES if project.has(name)]
    if field in found or (not found and field in ("npm", "pnpm", "yarn", "bun")):
        return field
    return found[0] if found else "npm"


def _npm_lock_in_sync(project: _Project) -> bool:
    """Cheap version of npm ci's check: the lockfile's root entry lists package.json's deps.

    npm ci refuses a lockfile whose root dependencies differ from package.json
    (docs.npmjs.com/cli/commands/npm-ci); then `npm install` is the only way through.
    """
    text = project.read("npm-shrinkwrap.json") or project.read("package-lock.json")
    try:
        lock = json.loads(text or "")
    except ValueError:
        return False
    if not isinstance(lock, dict):
        return False
    package = project.package or {}
    fields = ("dependencies", "devDependencies", "optionalDependencies")
    entries = lock.get("packages")
    if isinstance(entries, dict) and isinstance(entries.get(""), dict):  # lockfileVersion 2 and 3
        root = entries[""]
        return all((root.get(f) or {}) == (package.get(f) or {}) for f in fields) and _lock_resolves(entries)
    locked = lock.get("dependencies") or {}  # lockfileVersion 1: names only
    return all(name in locked for f in fields for name in (package.get(f) or {}))


def _lock_resolves(entries: dict) -> bool:
    """Every locked package's (optional) dependencies resolve to another locked entry.

    Measured: a create-docusaurus lockfile written by npm 11 lacks the other
    platforms' optional @swc/html-* packages and `npm ci` refuses it ("Missing:
    @swc/html-darwin-arm64@ from lock file", npm/cli#4828). Node resolution:
    look in <entry>/node_modules, then each parent's, then the root's.
    """
    for path, entry in entries.items():
        if not path or not isinstance(entry, dict) or entry.get("link"):
            continue
        for field in ("dependencies", "optionalDependencies"):
            for name in entry.get(field) or {}:
                if not _resolves(entries, path, name):
                    return False
    return True


def _resolves(entries: dict, path: str, name: str) -> bool:
    base = path
    while True:
        if f"{base}/node_modules/{name}" in entries:
            return True
        cut = base.rfind("/node_modules/")
        if cut < 0:
            return f"node_modules/{name}" in entries
        base = base[:cut]


def _pnpm(project: _Project) -> str:
    """`corepack pnpm`, pinned to the major that wrote the lockfile unless packageManager says.

    Vercel picks pnpm by lockfileVersion the same way (vercel.com/docs/package-managers).
    """
    if str((project.package or {}).get("packageManager", "")).startswith("pnpm@"):
        return "corepack pnpm"
    version = _string_option(project.read("pnpm-lock.yaml"), r"lockfileVersion:\s*'?([0-9.]+)")
    major = {"5.3": "6", "5.4": "7", "6.0": "8", "6.1": "8", "7.0": "9", "9.0": "9"}.get(version or "")
    return f"corepack pnpm@{major}" if major else "corepack pnpm"


def _yarn_berry(project: _Project) -> bool:
    field = str((project.package or {}).get("packageManager", ""))
    if field.startswith("yarn@"):
        return not field.startswith("yarn@1.")
    return project.has(".yarnrc.yml") or "__metadata:" in (project.read("yarn.lock") or "")[:2000]


def _install_command(project: _Project, pm: str) -> str:
    locked = {name for name, owner in LOCKFILES if owner == pm and project.has(name)}
    if pm == "npm":
        return NPM_CI if locked and _npm_lock_in_sync(project) else NPM_INSTALL
    if pm == "pnpm":
        return f"{_pnpm(project)} install" + (" --frozen-lockfile" if locked else "")
    if pm == "yarn":
        frozen = " --immutable" if _yarn_berry(project) else " --frozen-lockfile"
        return "corepack yarn install" + (frozen if locked else "")
    return "bun install" + (" --frozen-lockfile" if locked else "")


def _run_script(project: _Project, pm: str, script: str) -> str:
    return {"npm": f"npm run {script}", "pnpm": f"{_pnpm(project)} run {script}",
            "yarn": f"corepack yarn run {script}", "bun": f"bun run {script}"}[pm]


def _exec(project: _Project, pm: str, command: str) -> str:
    """Run a binary from node_modules/.bin, never downloading one (`npm exec --no`)."""
    return {"npm": f"npm exec --no -- {command}", "pnpm": f"{_pnpm(project)} exec {command}",
            "yarn": f"corepack yarn run {command}", "bun": f"bun x --no-install {command}"}[pm]


# --- public API -------------------------------------------------------------------

def detect(project_dir: Path, overrides: Overrides = Overrides()) -> BuildPlan:
    """The build plan for a project directory; overrides win field by field.

    An empty-string override means "skip this step" (no install, no build).
    Raises InvalidOutputDir for an output_dir override that leaves the project, and
    UnsupportedProject when the plan needs bun and no bun binary is installed.
    """
    project = _Project(Path(project_dir), _load_package(Path(project_dir)))
    plan = _detected_plan(project)
    plan = _apply_overrides(plan, overrides)
    uses_bun = any(cmd and cmd.split()[0] == "bun" for cmd in (plan.install_command, plan.build_command))
    if uses_bun and shutil.which("bun") is None:
        raise UnsupportedProject(
            "this project uses bun (bun.lock / packageManager) but the build image has no bun binary; "
            "commit a package-lock.json or set install_command and build_command")
    return plan


def _detected_plan(project: _Project) -> BuildPlan:
    if project.package is None:
        return BuildPlan("static", None, None, None, _static_dirs(project), False)
    pm = _package_manager(project)
    row = next((f for f in FRAMEWORKS if f.matches(project)), None)
    if "build" in project.scripts:
        build = _run_script(project, pm, "build")
    elif row is not None and row.default_build:
        build = _exec(project, pm, row.default_build)
    else:
        build = None
    if row is None:
        slug, dirs = ("node", _NODE_DIRS) if build else ("static", _static_dirs(project))
        return BuildPlan(slug, pm, _install_command(project, pm) if build else None, build, dirs, False)
    return BuildPlan(row.slug, pm, _install_command(project, pm), build, row.output_dirs(project), row.spa)


def _apply_overrides(plan: BuildPlan, overrides: Overrides) -> BuildPlan:
    changes: dict = {}
    if overrides.install_command is not None:
        changes["install_command"] = overrides.install_command.strip() or None
    if overrides.build_command is not None:
        changes["build_command"] = overrides.build_command.strip() or None
    if overrides.output_dir is not None:
        clean = _clean_relative(overrides.output_dir)
        if clean is None:
            raise InvalidOutputDir(f"output_dir {overrides.output_dir!r} must be a relative path inside the project")
        changes["output_dirs"] = (clean,)
    return replace(plan, **changes)


def _clean_relative(path: str) -> str | None:
    """A normalised relative path ('.' for the project itself), or None if it leaves it."""
    clean = paths.safe_relative(path.strip())
    return None if clean is None else clean or "."


def find_output(project_dir: Path, plan: BuildPlan) -> Path:
    """The first candidate output directory that holds an index.html.

    Raises OutputNotFound, naming the directories tried, when none does.
    """
    for candidate in plan.output_dirs:
        path = paths.safe_join(Path(project_dir), candidate)
        if path is not None and (path / "index.html").is_file():
            return path
    tried = ", ".join(f'"{d}"' for d in plan.output_dirs)
    message = (f"No Output Directory named {tried} found after the Build completed "
               "(a directory counts when it holds an index.html).")
    hint = _HINTS.get(plan.framework)
    raise OutputNotFound(f"{message} {hint}" if hint else message)


def project_root(source_dir: Path, root_dir: str | None) -> Path:
    """The directory to build: root_dir inside the checked-out source (Vercel's "Root Directory").

    Raises InvalidRootDir for absolute paths, `..`, symlinks that lead outside the source
    and a path that is not a directory.
    """
    if root_dir is None or not root_dir.strip():
        return Path(source_dir)
    path = paths.safe_join(Path(source_dir), root_dir)
    if path is None:
        raise InvalidRootDir(f"root_dir {root_dir!r} must be a relative path inside the repository")
    if not path.is_dir():
        raise InvalidRootDir(f"root_dir {root_dir!r} is not a directory in the repository")
    return path
