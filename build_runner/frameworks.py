"""Framework detection: which install, build and output directory a project needs.

Pure: reads files of the project, runs nothing. One ordered table, first match
wins, the way Vercel's presets work (vercel/vercel packages/frameworks/src/
frameworks.ts: an ordered list whose detectors match a dependency in
package.json, a config file or file content). The rows, the commands and the
output directories below were checked against apps scaffolded from npm on this
machine (figures in tests/test_frameworks.py's docstring). Reading the project
lives in project.py, the package manager and its commands in package_managers.py.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from build_runner.errors import ProjectError
from build_runner.package_managers import exec_command, install_command, package_manager, run_script
from build_runner.project import Project, config_text, string_option
from chalicelib import paths


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


class InvalidRootDir(ProjectError):
    """root_dir leaves the repository or is not a directory in it."""


class InvalidOutputDir(ProjectError):
    """The output_dir override leaves the project."""


_QUOTED = r"""\s*:\s*['"`]([^'"`$\n]+)['"`]"""


# --- output directories per framework ----------------------------------------

def _vite_dirs(project: Project) -> tuple[str, ...]:
    # build: { outDir: 'x' } with no nested object before outDir (vitejs.dev/config/build-options).
    out_dir = string_option(config_text(project, "vite.config"), r"build\s*:\s*\{[^{}]*?\boutDir" + _QUOTED)
    return _dedupe((out_dir, "dist"))


def _astro_dirs(project: Project) -> tuple[str, ...]:
    # Top-level outDir (docs.astro.build/en/reference/configuration-reference/#outdir).
    return _dedupe((string_option(config_text(project, "astro.config"), r"\boutDir" + _QUOTED), "dist"))


def _sveltekit_dirs(project: Project) -> tuple[str, ...]:
    # adapter-static writes to `pages` (default "build"); newer scaffolds (sv create) put
    # the adapter in vite.config.ts instead of svelte.config.js.
    text = (config_text(project, "svelte.config") or "") + (config_text(project, "vite.config") or "")
    return _dedupe((string_option(text, r"\bpages" + _QUOTED), "build"))


def _angular_dirs(project: Project) -> tuple[str, ...]:
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


def _static_dirs(project: Project) -> tuple[str, ...]:
    return ("public", ".")


def _fixed(*dirs: str) -> Callable[[Project], tuple[str, ...]]:
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
    matches: Callable[[Project], bool]
    output_dirs: Callable[[Project], tuple[str, ...]]
    # The framework's own build when package.json has no "build" script (as Vercel's presets).
    default_build: str | None
    # SPA fallback per Vercel's presets: CRA, Vue CLI and Angular route every unknown
    # path to /index.html; Vite, Next, Gatsby, Docusaurus... serve a 404 instead.
    spa: bool


def _dep(*names: str) -> Callable[[Project], bool]:
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
    _Framework("vite", lambda p: "vite" in p.deps or config_text(p, "vite.config") is not None,
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


# --- public API -------------------------------------------------------------------

def detect(project_dir: Path, overrides: Overrides = Overrides()) -> BuildPlan:
    """The build plan for a project directory; overrides win field by field.

    An empty-string override means "skip this step" (no install, no build).
    Raises InvalidOutputDir for an output_dir override that leaves the project. The
    package manager itself (pnpm, yarn, bun) comes with the build's toolchain (toolchain/).
    """
    project = Project.load(Path(project_dir))
    return _apply_overrides(_detected_plan(project), overrides)


def _detected_plan(project: Project) -> BuildPlan:
    if project.package is None:
        return BuildPlan("static", None, None, None, _static_dirs(project), False)
    pm = package_manager(project)
    row = next((f for f in FRAMEWORKS if f.matches(project)), None)
    if "build" in project.scripts:
        build = run_script(project, pm, "build")
    elif row is not None and row.default_build:
        build = exec_command(project, pm, row.default_build)
    else:
        build = None
    if row is None:
        slug, dirs = ("node", _NODE_DIRS) if build else ("static", _static_dirs(project))
        return BuildPlan(slug, pm, install_command(project, pm) if build else None, build, dirs, False)
    return BuildPlan(row.slug, pm, install_command(project, pm), build, row.output_dirs(project), row.spa)


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


# The plan of a prebuilt upload (POST /api/deployments {"prebuilt": true}): nothing to install
# or build, no SPA fallback unless the site's own config asks for one.
PREBUILT = BuildPlan("prebuilt", None, None, None, (".",), False)


def prebuilt_output(project_dir: Path, output_dir: str | None) -> Path:
    """A prebuilt upload's output: `output_dir` inside the project, else the project itself.
    No index.html is required: the client said this tree is the site."""
    clean = _clean_relative(output_dir or ".")
    path = paths.safe_join(Path(project_dir), clean) if clean is not None else None
    if path is None:
        raise InvalidOutputDir(f"output_dir {output_dir!r} must be a relative path inside the project")
    if not path.is_dir():
        raise OutputNotFound(f"output_dir {output_dir!r} is not a directory of the upload")
    return path


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
               "(a directory counts when it holds an index.html). "
               + found_instead(Path(project_dir), plan.output_dirs))
    hint = _HINTS.get(plan.framework)
    raise OutputNotFound(f"{message} {hint}" if hint else message)


# How far found_instead looks: the build made this tree and the runner walks it outside the
# sandbox, so the walk is bounded in depth and in directories read, and follows no links.
_LOOK_DEPTH = 3
_LOOK_DIRS = 2000
_SHOW = 5
_COUNT = 20
_NOT_OUTPUT = frozenset({"node_modules", ".git"})


def found_instead(project_dir: Path, tried: tuple[str, ...]) -> str:
    """One sentence on what the build left, for a missing output: tried directories that exist
    without an index.html, else directories that hold one, else the top-level directories."""
    parts = [("the project directory" if d == "." else f'"{_shown(d)}"') + " holds no index.html"
             for d in tried if (path := paths.safe_join(project_dir, d)) is not None and path.is_dir()]
    with_index = _dirs_with_index(project_dir)
    if with_index:
        parts.append("index.html found in " + _listed(with_index))
    elif not parts:
        top = sorted(e.name for e in _subdirs(project_dir))
        parts.append("top-level directories: " + _listed(top) if top else
                     "the project has no directories")
    return "Found instead: " + "; ".join(parts) + "."


def _dirs_with_index(root: Path) -> list[str]:
    found: list[str] = []
    queue, read = [(root, 0)], 0
    while queue and read < _LOOK_DIRS and len(found) < _COUNT:
        folder, depth = queue.pop(0)
        read += 1
        if folder != root and (folder / "index.html").is_file() and \
                not (folder / "index.html").is_symlink():
            found.append(folder.relative_to(root).as_posix())
        if depth < _LOOK_DEPTH:
            queue += [(Path(e.path), depth + 1) for e in _subdirs(folder)]
    return found


def _subdirs(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as listing:
            return sorted((e for e in listing if e.is_dir(follow_symlinks=False)
                           and e.name not in _NOT_OUTPUT), key=lambda e: e.name)
    except OSError:
        return []


def _listed(names: list[str]) -> str:
    shown = ", ".join(f'"{_shown(n)}"' for n in names[:_SHOW])
    return shown + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def _shown(name: str) -> str:
    """A build-made name in the one-line reason: no control characters, bounded length."""
    clean = "".join(c if c.isprintable() else "?" for c in name)
    return clean if len(clean) <= 80 else clean[:77] + "..."


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
