"""Framework detection, table-tested on fixture projects shaped like real scaffolds.

The package.json / config shapes come from apps scaffolded on this machine with
create-vite 9, create-next-app 16, create-docusaurus 3.10, sv create (SvelteKit 2),
@angular/cli 20 and a hand-written Astro 5 app (create-astro needs GitHub).
Measured here (npm 11, Node 20, 2 vCPU, registry through the proxy; install, build, output):
  vite react/vue/svelte  3-4 s, 0.7-0.9 s, dist/       next 16 (output: 'export')  16 s, 4.4 s, out/
  docusaurus 3.10        37-46 s, 7 s, build/          astro 5                     14 s, 1.9 s, dist/
  sveltekit (static)     3.7 s, 3.6 s, build/          angular 20                  26 s, 5.7 s, dist/ng-app/browser/
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from build_runner import frameworks
from build_runner.errors import ProjectError
from build_runner.frameworks import (
    BuildPlan,
    InvalidOutputDir,
    InvalidRootDir,
    OutputNotFound,
    Overrides,
    detect,
    find_output,
    project_root,
)
from build_runner.package_managers import NPM_CI, NPM_INSTALL
from build_runner.project import UnsupportedProject
from tests.conftest import SCAFFOLDERS, pinned_app


def make(root: Path, files: dict[str, str | dict]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if isinstance(content, dict) else content)
    return root


def package(deps: dict | None = None, dev: dict | None = None, scripts: dict | None = None, **extra) -> dict:
    body = {"name": "app", "private": True, "scripts": {"build": "x"} if scripts is None else scripts}
    if deps:
        body["dependencies"] = deps
    if dev:
        body["devDependencies"] = dev
    body.update(extra)
    return body


def npm_lock(pkg: dict) -> dict:
    """A lockfileVersion 3 root entry as npm writes it."""
    root = {k: pkg[k] for k in ("dependencies", "devDependencies") if k in pkg}
    return {"name": "app", "lockfileVersion": 3, "packages": {"": {"name": "app", **root}}}


VITE_REACT = package({"react": "^19.3.1", "react-dom": "^19.3.1"},
                     {"@vitejs/plugin-react": "^6.1.2", "vite": "^8.3.4"}, {"build": "vite build"})
SVELTEKIT_VITE_CONFIG = """import adapter from '@sveltejs/adapter-static';
import { sveltekit } from '@sveltejs/kit/vite';
export default defineConfig({ plugins: [ sveltekit({ adapter: adapter() }) ] });
"""
ANGULAR_20 = {"projects": {"ng-app": {"projectType": "application", "architect": {"build": {
    "builder": "@angular/build:application", "options": {"browser": "src/main.ts"}}}}}}


@pytest.mark.parametrize("files, framework, output_dirs, spa", [
    ({"package.json": VITE_REACT}, "vite", ("dist",), False),
    ({"package.json": package({"next": "16.4.3", "react": "19.3.0"}, scripts={"build": "next build"}),
      "next.config.ts": "const nextConfig = { output: 'export' };"}, "nextjs", ("out",), False),
    ({"package.json": package({"@docusaurus/core": "3.10.2", "@docusaurus/preset-classic": "3.10.2",
                               "react": "^19.0.0"})}, "docusaurus", ("build",), False),
    ({"package.json": package({"astro": "^5.9.4"})}, "astro", ("dist",), False),
    ({"package.json": package(dev={"@sveltejs/adapter-static": "^3.0.10", "@sveltejs/kit": "^2.63.0",
                                   "vite": "^8.0.16"}),
      "vite.config.ts": SVELTEKIT_VITE_CONFIG}, "sveltekit", ("build",), False),
    ({"package.json": package({"@angular/core": "^20.3.0"}, {"@angular/cli": "^20.3.41"}),
      "angular.json": ANGULAR_20}, "angular", ("dist/ng-app/browser", "dist/ng-app", "dist"), True),
    ({"package.json": package({"react": "^18", "react-scripts": "5.0.1"})}, "create-react-app", ("build",), True),
    ({"package.json": package({"vue": "^3"}, {"@vue/cli-service": "~5.0.0"})}, "vue-cli", ("dist",), True),
    ({"package.json": package({"gatsby": "^5", "react": "^18"})}, "gatsby", ("public",), False),
    ({"package.json": package(dev={"@11ty/eleventy": "^3.0.0"})}, "eleventy", ("_site",), False),
    ({"package.json": package({"left-pad": "1"})}, "node", ("dist", "build", "out", "public"), False),
    ({"index.html": "<h1>hi</h1>"}, "static", ("public", "."), False),
])
def test_table_picks_framework_output_and_spa(tmp_path, files, framework, output_dirs, spa):
    plan = detect(make(tmp_path, files))
    assert (plan.framework, plan.output_dirs, plan.spa) == (framework, output_dirs, spa)


def test_vite_out_dir_is_read_from_its_config(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT,
                    "vite.config.ts": "export default defineConfig({\n  build: {\n    outDir: 'www',\n  },\n})"})
    assert detect(tmp_path).output_dirs == ("www", "dist")


def test_vite_out_dir_leaving_the_project_is_ignored(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT, "vite.config.js": "export default { build: { outDir: '../../etc' } }"})
    assert detect(tmp_path).output_dirs == ("dist",)


def test_computed_vite_out_dir_is_not_trusted(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT, "vite.config.js": "export default { build: { outDir: `${x}/out` } }"})
    assert detect(tmp_path).output_dirs == ("dist",)


def test_astro_out_dir_and_sveltekit_pages_are_read(tmp_path):
    astro = make(tmp_path / "a", {"package.json": package({"astro": "^5"}),
                                  "astro.config.mjs": "export default defineConfig({ outDir: './site' });"})
    kit = make(tmp_path / "k", {"package.json": package(dev={"@sveltejs/kit": "^2", "vite": "^8"}),
                                "svelte.config.js": "adapter: adapter({ pages: 'public_html', assets: 'x' })"})
    assert detect(astro).output_dirs == ("site", "dist")
    assert detect(kit).output_dirs == ("public_html", "build")


@pytest.mark.parametrize("build, output, expected", [
    ("@angular-devkit/build-angular:browser", "dist/legacy", ("dist/legacy", "dist/legacy/browser", "dist")),
    ("@angular-devkit/build-angular:application", {"base": "out", "browser": ""}, ("out", "out/browser", "dist")),
    ("@angular/build:application", "dist/site", ("dist/site/browser", "dist/site", "dist")),
])
def test_angular_output_path_follows_the_builder(tmp_path, build, output, expected):
    workspace = {"defaultProject": "web", "projects": {"lib": {"projectType": "library"}, "web": {
        "architect": {"build": {"builder": build, "options": {"outputPath": output}}}}}}
    make(tmp_path, {"package.json": package(dev={"@angular/cli": "^17"}), "angular.json": workspace})
    assert detect(tmp_path).output_dirs == expected


def test_meta_frameworks_win_over_the_vite_and_react_they_depend_on(tmp_path):
    kit = make(tmp_path / "kit", {"package.json": package(dev={"vite": "^8", "@sveltejs/kit": "^2"})})
    astro = make(tmp_path / "astro", {"package.json": package({"astro": "^5", "vite": "^6", "react": "^19"})})
    assert detect(kit).framework == "sveltekit"
    assert detect(astro).framework == "astro"


def test_plain_static_prefers_public_when_it_has_an_index(tmp_path):
    make(tmp_path, {"index.html": "root", "public/index.html": "public"})
    plan = detect(tmp_path)
    assert (plan.install_command, plan.build_command, plan.package_manager) == (None, None, None)
    assert find_output(tmp_path, plan) == (tmp_path / "public").resolve()
    (tmp_path / "public" / "index.html").unlink()
    assert find_output(tmp_path, plan) == tmp_path.resolve()


def test_package_json_without_build_script_builds_nothing(tmp_path):
    make(tmp_path, {"package.json": package({"left-pad": "1"}, scripts={"start": "serve"}), "index.html": "x"})
    plan = detect(tmp_path)
    assert (plan.framework, plan.install_command, plan.build_command) == ("static", None, None)


def test_known_framework_without_build_script_runs_its_own_cli(tmp_path):
    make(tmp_path, {"package.json": package(dev={"vite": "^8"}, scripts={})})
    assert detect(tmp_path).build_command == "npm exec --no -- vite build"


@pytest.mark.parametrize("lockfile, manager, install, build", [
    ("package-lock.json", "npm", NPM_CI, "npm run build"),
    ("npm-shrinkwrap.json", "npm", NPM_CI, "npm run build"),
    ("pnpm-lock.yaml", "pnpm", "pnpm install --frozen-lockfile", "pnpm run build"),
    ("yarn.lock", "yarn", "yarn install --frozen-lockfile", "yarn run build"),
    (None, "npm", NPM_INSTALL, "npm run build"),
])
def test_package_manager_comes_from_the_lockfile(tmp_path, lockfile, manager, install, build):
    contents = {"package-lock.json": npm_lock(VITE_REACT), "npm-shrinkwrap.json": npm_lock(VITE_REACT),
                "pnpm-lock.yaml": "lockfileVersion: '9.0'\n", "yarn.lock": "# yarn lockfile v1\n"}
    files = {"package.json": VITE_REACT}
    if lockfile:
        files[lockfile] = contents[lockfile]
    plan = detect(make(tmp_path, files))
    assert (plan.package_manager, plan.install_command, plan.build_command) == (manager, install, build)


def test_package_manager_field_without_lockfile_and_as_tie_breaker(tmp_path):
    alone = make(tmp_path / "a", {"package.json": {**VITE_REACT, "packageManager": "pnpm@9.15.0"}})
    both = make(tmp_path / "b", {"package.json": {**VITE_REACT, "packageManager": "yarn@1.22.22"},
                                 "yarn.lock": "", "pnpm-lock.yaml": "lockfileVersion: '9.0'\n"})
    assert detect(alone).install_command == "pnpm install"
    assert detect(both).install_command == "yarn install --frozen-lockfile"


def test_yarn_berry_installs_immutable(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT, "yarn.lock": "__metadata:\n  version: 8\n", ".yarnrc.yml": ""})
    assert detect(tmp_path).install_command == "yarn install --immutable"


def test_out_of_sync_npm_lockfile_falls_back_to_npm_install(tmp_path):
    stale = npm_lock(VITE_REACT)
    stale["packages"][""]["dependencies"] = {"react": "^18.0.0"}
    make(tmp_path, {"package.json": VITE_REACT, "package-lock.json": stale})
    assert detect(tmp_path).install_command == NPM_INSTALL


def test_lockfile_v1_in_sync_by_names(tmp_path):
    names = ["react", "react-dom", "vite", "@vitejs/plugin-react"]
    lock = {"lockfileVersion": 1, "dependencies": {n: {} for n in names}}
    make(tmp_path, {"package.json": VITE_REACT, "package-lock.json": lock})
    assert detect(tmp_path).install_command == NPM_CI


def test_bun_projects_install_with_bun(tmp_path):
    """bun itself comes with the build's toolchain (build_runner/toolchain/)."""
    make(tmp_path, {"package.json": VITE_REACT, "bun.lock": "{}"})
    plan = detect(tmp_path)
    assert (plan.package_manager, plan.install_command, plan.build_command) == \
        ("bun", "bun install --frozen-lockfile", "bun run build")


def test_overrides_win_field_by_field(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT})
    plan = detect(tmp_path, Overrides(build_command="npm run build:prod", output_dir="./web/"))
    assert plan.install_command == NPM_INSTALL
    assert (plan.build_command, plan.output_dirs) == ("npm run build:prod", ("web",))
    assert detect(tmp_path, Overrides(install_command="", build_command="")).build_command is None


@pytest.mark.parametrize("bad", ["/etc", "../x", "a/../../b", "C:\\x"])
def test_output_dir_override_leaving_the_project_is_refused(tmp_path, bad):
    make(tmp_path, {"package.json": VITE_REACT})
    with pytest.raises(InvalidOutputDir, match="output_dir"):
        detect(tmp_path, Overrides(output_dir=bad))


def test_output_override_is_the_only_candidate(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT, "dist/index.html": "x"})
    plan = detect(tmp_path, Overrides(output_dir="site"))
    with pytest.raises(OutputNotFound, match='"site"'):
        find_output(tmp_path, plan)


def test_missing_output_names_every_directory_tried_and_hints_for_next(tmp_path):
    make(tmp_path, {"package.json": package({"next": "16"}), ".next/server/app/index.html": "ssr"})
    with pytest.raises(OutputNotFound) as raised:
        find_output(tmp_path, detect(tmp_path))
    assert 'No Output Directory named "out" found after the Build completed' in str(raised.value)
    assert "output: 'export'" in str(raised.value)
    plan = BuildPlan("node", "npm", None, None, ("dist", "build"), False)
    with pytest.raises(OutputNotFound, match='"dist", "build"'):
        find_output(tmp_path, plan)


def test_missing_output_says_where_an_index_html_was_found_instead(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT, "dist/app.js": "", "site/public/index.html": "x",
                    "node_modules/pkg/index.html": "never shown", ".git/index.html": "nor this"})
    plan = BuildPlan("vite", "npm", None, None, ("dist",), False)
    with pytest.raises(OutputNotFound) as raised:
        find_output(tmp_path, plan)
    message = str(raised.value)
    assert message.endswith('Found instead: "dist" holds no index.html; index.html found in "site/public".')
    assert "\n" not in message


def test_missing_output_lists_the_top_level_directories_when_no_index_html_exists(tmp_path):
    make(tmp_path, {"package.json": VITE_REACT, "src/main.js": "", "lib\nx/a.js": "",
                    "node_modules/x/y.js": ""})
    plan = BuildPlan("vite", "npm", None, None, ("dist",), False)
    with pytest.raises(OutputNotFound) as raised:
        find_output(tmp_path, plan)
    assert str(raised.value).endswith('Found instead: top-level directories: "lib?x", "src".')
    os.symlink("/", tmp_path / "dist")  # a link out is neither followed nor reported as the output
    assert "index.html found" not in frameworks.found_instead(tmp_path, ("dist",))


def test_find_output_skips_a_directory_without_index_and_symlinks_out(tmp_path):
    outside = make(tmp_path / "outside", {"index.html": "secret"})
    project = make(tmp_path / "p", {"build/index.html": "ok", "dist/app.js": ""})
    (project / "out").symlink_to(outside)
    plan = BuildPlan("node", "npm", None, None, ("out", "dist", "build"), False)
    assert find_output(project, plan) == (project / "build").resolve()


def test_invalid_package_json_is_a_clear_refusal(tmp_path):
    make(tmp_path, {"package.json": "{not json"})
    with pytest.raises(UnsupportedProject, match="package.json"):
        detect(tmp_path)


def test_project_root_stays_inside_the_source(tmp_path):
    source = make(tmp_path / "src", {"apps/web/package.json": "{}"})
    (source / "escape").symlink_to(tmp_path)
    assert project_root(source, None) == source
    assert project_root(source, "apps/web/") == (source / "apps" / "web").resolve()
    for bad in ("../", "/etc", "apps/../../x", "escape"):
        with pytest.raises(InvalidRootDir, match="inside the repository"):
            project_root(source, bad)
    with pytest.raises(InvalidRootDir, match="not a directory"):
        project_root(source, "apps/missing")


def test_every_refusal_of_the_project_is_a_project_error_not_a_value_error():
    """The runner shows a ProjectError's message as the user's fault; a ValueError from a
    bug must not pass for one."""
    for error in (OutputNotFound, UnsupportedProject, InvalidRootDir, InvalidOutputDir):
        assert issubclass(error, ProjectError) and not issubclass(error, ValueError)


# --- real scaffolds (network: the npm registry) -------------------------------------

def _run(command: str, cwd: Path) -> None:
    env = {**os.environ, "npm_config_yes": "true", "CI": "1"}
    result = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def _install_build_find(project: Path) -> tuple[BuildPlan, Path]:
    plan = detect(project)
    for command in (plan.install_command, plan.build_command):
        if command:
            _run(command, project)
    return plan, find_output(project, plan)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="needs node and npm")
def test_real_scaffolded_apps_build_and_their_output_is_found(tmp_path):
    _run(f"npx {SCAFFOLDERS['create-vite']} vite-app --template react-ts --no-interactive", tmp_path)
    plan, output = _install_build_find(tmp_path / "vite-app")
    assert (plan.framework, output.name) == ("vite", "dist")
    assert "<div id=\"root\">" in (output / "index.html").read_text()

    # Pinned with its lockfile (tests/fixtures/docusaurus/), which lacks other platforms'
    # @swc/html-* packages: detection picks `npm install`, as the runner does.
    (tmp_path / "docs").mkdir()
    plan, output = _install_build_find(pinned_app(tmp_path / "docs", "docusaurus"))
    assert (plan.framework, output.name) == ("docusaurus", "build")
    assert (output / "docs" / "intro" / "index.html").is_file()


# --- prebuilt uploads ------------------------------------------------------------------------

def test_a_prebuilt_output_is_the_project_or_its_output_dir_and_never_leaves_it(tmp_path):
    (tmp_path / "site" / "dist").mkdir(parents=True)
    (tmp_path / "site" / "out-link").symlink_to(tmp_path)
    project = tmp_path / "site"
    assert frameworks.prebuilt_output(project, None) == project.resolve()
    assert frameworks.prebuilt_output(project, "dist/") == (project / "dist").resolve()
    for outside in ("../", "/etc", "out-link"):
        with pytest.raises(frameworks.InvalidOutputDir):
            frameworks.prebuilt_output(project, outside)
    with pytest.raises(frameworks.OutputNotFound, match="not a directory"):
        frameworks.prebuilt_output(project, "missing")
