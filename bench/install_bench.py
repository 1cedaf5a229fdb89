"""Install speed in the sandbox against the same install by hand, per package manager.

Run: `.venv/bin/python bench/install_bench.py [--rounds 3] [--pm npm,pnpm,yarn,berry]
      [--network public,registries] [--state cold,warm] [--build] [--keep DIR]`
Results (and how to read them) go to bench/BUILD.md, section (c).

The app: a Docusaurus classic site (create-docusaurus, pinned in tests/conftest.py's
SCAFFOLDERS), about 1,200 packages. One variant per package manager, each with a lockfile
made once, by hand, with that package manager from the runner's toolchain (VARIANTS):
  npm    package-lock.json (`npm install --package-lock-only`)
  pnpm   pnpm-lock.yaml (`pnpm install --lockfile-only`), packageManager pnpm@<10.x>
  yarn   classic yarn.lock (`yarn install`), packageManager yarn@<1.x>
  berry  yarn.lock (`yarn install --mode=update-lockfile`), packageManager yarn@<4.x>,
         .yarnrc.yml `nodeLinker: node-modules` (bench/realworld.py's berry apps do the same)
Every run uses the runner's own pieces: frameworks.detect for the install and build
commands (package_managers.install_command), Toolchains.prepare for Node.js and the
package manager, and `tools=` for both sides, so both run the same binaries:
  sandbox  build_runner.sandbox.bwrap.BwrapSandbox, BUILD_NETWORK=public and =registries;
  by hand  build_runner.sandbox.plain.NoneSandbox: the same commands, env and fresh HOME
           (and yarn 1's cache in that HOME, see yarn_cache).
The by-hand runs have no network mode; each round runs the three sides in a rotating order
and both sandbox modes are compared with the same by-hand runs.
  cold: every run starts with an empty HOME (no npm cache, pnpm store or yarn cache);
  warm: every run starts with a copy of one HOME filled by a by-hand install of the same
        variant (~/.npm; ~/.local/share/pnpm/store and ~/.cache/pnpm; ~/.cache/yarn;
        ~/.yarn/berry/cache).
Medians of `--rounds`; the ratio is sandbox / by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.build_bench import make_backends, run_steps, sh  # noqa: E402
from build_runner import frameworks  # noqa: E402
from build_runner.sandbox.base import tool_path  # noqa: E402
from build_runner.toolchain import Toolchains  # noqa: E402
from chalicelib.settings import load_settings  # noqa: E402
from devstack import services  # noqa: E402
from tests.conftest import SCAFFOLDERS  # noqa: E402

ENV = {"CI": "1"}  # what environment.build_env gives every build (PERCEL_* aside)
SIDES = ("sandbox public", "by hand", "sandbox registries")
PNPM_PROGRESS = re.compile(r"reused (\d+), downloaded (\d+)")
# Output lines worth keeping per run: what the package manager says about the network.
NOTABLE = re.compile(r"network access refused|ETIMEDOUT|ECONNRESET|EAI_AGAIN|ENOTFOUND|retry|"
                     r"trouble with your network|no internet connection|timed out|WARN.*fetch",
                     re.IGNORECASE)


def toolchains() -> Toolchains:
    return Toolchains.from_settings(load_settings(dict(os.environ)))


def yarn_cache(home: Path) -> dict[str, str]:
    """yarn 1's cache where a user other than root keeps it: in HOME.

    As root, yarn 1 ignores HOME and keeps its cache in /usr/local/share/.cache/yarn
    (yarn's src/util/user-home-dir.js), one for every run on the host. The bench runs as
    root, so its by-hand yarn runs were all warm whatever HOME held, and the warm HOME they
    filled had no yarn cache for the sandbox (uid 1000, ~/.cache/yarn) to use.
    """
    return {"YARN_CACHE_FOLDER": str(home / ".cache" / "yarn")}


def in_home(home: Path) -> dict[str, str]:
    """npm, pnpm and yarn berry keep their caches under HOME as root too (berry: ~/.yarn/berry,
    @yarnpkg/core folderUtils, os.homedir()); nothing to add."""
    return {}


@dataclass(frozen=True)
class Variant:
    """One copy of the app: the runner's package manager, the major its packageManager pins
    (None: the npm bundled with Node.js), and how its lockfile is made once by hand."""
    pm: str
    major: str | None
    lockfile: str
    lock: str  # run in a scratch copy; only the lockfile is kept
    cache: Callable[[Path], dict[str, str]] = in_home  # by hand: env that keeps the cache in HOME
    files: tuple[tuple[str, str], ...] = ()  # written into the copy before the lockfile


VARIANTS = {
    "npm": Variant("npm", None, "package-lock.json", "npm install --package-lock-only --no-audit --no-fund"),
    "pnpm": Variant("pnpm", "10", "pnpm-lock.yaml", "pnpm install --lockfile-only"),
    # yarn 1 cannot import a lockfileVersion 3 package-lock.json ("source file(s) corrupted")
    # and has no lockfile-only mode: a full install, of which only yarn.lock is kept.
    "yarn": Variant("yarn", "1", "yarn.lock", "yarn install --ignore-scripts --non-interactive", yarn_cache),
    # CI=1 makes berry's installs immutable, which refuses to write a lockfile. Plug'n'Play
    # (berry's default linker) is not measured: the runner's projects set node-modules.
    "berry": Variant("yarn", "4", "yarn.lock",
                     "YARN_ENABLE_IMMUTABLE_INSTALLS=false yarn install --mode=update-lockfile",
                     files=((".yarnrc.yml", "nodeLinker: node-modules\n"),)),
}


class ByHand:
    """The plain backend with the variant's cache env: its cold runs start cold, its warm HOME
    holds the cache."""

    name = "none"

    def __init__(self, plain, cache: Callable[[Path], dict[str, str]]) -> None:
        self._plain, self._cache = plain, cache

    def run(self, command: str, *, home: Path, env: dict[str, str], **kwargs):
        return self._plain.run(command, home=home, env={**env, **self._cache(home)}, **kwargs)


def by_hand(command: str, cwd: Path, tools: tuple[Path, ...], home: Path, variant: Variant) -> None:
    """A command run by hand with the toolchain's tools first on PATH and a scratch HOME."""
    sh(command, cwd, env={"PATH": tool_path(tools, os.environ["PATH"]), "HOME": str(home),
                          **variant.cache(home)})


def set_package_manager(app: Path, value: str | None) -> None:
    path = app / "package.json"
    package = json.loads(path.read_text())
    if value is None:
        package.pop("packageManager", None)
    else:
        package["packageManager"] = value
    path.write_text(json.dumps(package, indent=2) + "\n")


def pinned_tool(app: Path, pm: str, wanted: str) -> tuple[Path, ...]:
    """Pin packageManager to the exact release the runner picks for `pm@wanted`; its toolchain."""
    set_package_manager(app, f"{pm}@{wanted}")
    chain = toolchains().prepare(app, pm, None)
    tool = next(t for t in chain.tools if t.name == pm)
    set_package_manager(app, f"{pm}@{tool.version}")
    return toolchains().prepare(app, pm, None).dirs


def scaffold(root: Path, names: list[str]) -> dict[str, Path]:
    """The Docusaurus site, once per variant, each with its own lockfile; a copy already
    in `root` with its lockfile is kept."""
    root.mkdir(parents=True, exist_ok=True)
    base = root / "docs"
    if not base.is_dir():
        sh(f"npx {SCAFFOLDERS['create-docusaurus']} docs classic --javascript --skip-install -p npm", root)
        for name in ("package-lock.json", "yarn.lock", "pnpm-lock.yaml"):
            (base / name).unlink(missing_ok=True)
        # @docusaurus/faster (Rspack, SWC) depends on every platform's binary package, and the
        # registry this machine reaches lacks some of them (@swc/html-win32-arm64-msvc): npm
        # and pnpm skip them, yarn 1 refuses to resolve. Without it the site builds with webpack.
        package = json.loads((base / "package.json").read_text())
        package["dependencies"].pop("@docusaurus/faster", None)
        (base / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    apps = {}
    for name in names:
        variant, app = VARIANTS[name], root / name
        apps[name] = app
        if (app / variant.lockfile).is_file():
            continue
        shutil.rmtree(app, ignore_errors=True)
        shutil.copytree(base, app)
        for file, text in variant.files:
            (app / file).write_text(text)
        if variant.major is None:
            tools = toolchains().prepare(app, variant.pm, None).dirs
        else:
            tools = pinned_tool(app, variant.pm, variant.major)
        home, scratch = root / f"home-{name}", root / f"scratch-{name}"
        home.mkdir()
        shutil.copytree(app, scratch)
        by_hand(variant.lock, scratch, tools, home, variant)
        shutil.copyfile(scratch / variant.lockfile, app / variant.lockfile)
        shutil.rmtree(scratch)
        shutil.rmtree(home)
    return apps


def describe(app: Path) -> str:
    plan = frameworks.detect(app)
    chain = toolchains().prepare(app, plan.package_manager, None)
    return f"`{plan.install_command}` then `{plan.build_command}`; {chain.describe()}"


def fill_home(app: Path, tools: tuple[Path, ...], work: Path, backend) -> Path:
    """A HOME filled by one install by hand: the warm runs' starting point."""
    run_steps(backend, app, work, None, tools=tools, env=ENV, build=False, keep=True)
    shutil.rmtree(work / "src")
    home = work / "home"
    if not any(home.iterdir()):  # what yarn 1 as root did before yarn_cache()
        raise RuntimeError(f"the by-hand install left {home} empty: its cache went elsewhere")
    return home


def notes(lines: list[str], work: Path) -> dict:
    """What the run's output and leftovers say: pnpm's reuse counts, network trouble, a store
    pnpm put in the project instead of HOME."""
    found: dict = {}
    progress = [m for m in map(PNPM_PROGRESS.search, lines) if m]
    if progress:
        found["pnpm reused/downloaded"] = f"{progress[-1][1]}/{progress[-1][2]}"
    trouble = [line.strip()[:160] for line in lines if NOTABLE.search(line)]
    if trouble:
        found["network"] = f"{len(trouble)} lines, first: {trouble[0]}"
    stores = [str(p.relative_to(work)) for p in (work / "src").glob(".pnpm-store")]
    if stores:
        found["store in project"] = stores
    return found


def one_run(backend, app: Path, work: Path, tools: tuple[Path, ...], home: Path | None,
            build: bool) -> dict:
    lines: list[str] = []
    try:
        times = run_steps(backend, app, work, None, home_from=home, tools=tools, env=ENV,
                          build=build, lines=lines, keep=True)
        times.update(notes(lines, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return times


def measure(apps: dict[str, Path], pms: list[str], networks: list[str], states: list[str],
            rounds: int, build: bool, root: Path, log: Path) -> dict:
    direct = make_backends()["direct"]
    backends = {"by hand": None, **{f"sandbox {n}": make_backends(n)["sandbox"] for n in networks}}
    sides = [s for s in SIDES if s in backends]
    results: dict = {}
    for pm in pms:
        app = apps[pm]
        plain = backends["by hand"] = ByHand(direct, VARIANTS[pm].cache)
        plan = frameworks.detect(app)
        tools = toolchains().prepare(app, plan.package_manager, None).dirs
        for state in states:
            home = fill_home(app, tools, root / f"fill-{pm}", plain) if state == "warm" else None
            rows: dict[str, list[dict]] = {side: [] for side in sides}
            for round_ in range(rounds):
                shift = round_ % len(sides)
                for side in sides[shift:] + sides[:shift]:
                    row = one_run(backends[side], app, root / f"{pm}-{state}-{side}-{round_}".replace(" ", "-"),
                                  tools, home, build)
                    rows[side].append(row)
                    extra = {k: v for k, v in row.items() if k not in ("install", "build", "total")}
                    print(f"  {pm} {state} round {round_ + 1} {side}: install {row['install']:.1f} s"
                          + (f", build {row['build']:.1f} s" if build else "")
                          + (f" {extra}" if extra else ""), flush=True)
            results[f"{pm} {state}"] = rows
            if home is not None:
                shutil.rmtree(home.parent, ignore_errors=True)
            log.write_text(json.dumps(results, indent=1))
    return results


def med(rows: list[dict], field: str) -> float:
    return statistics.median(row[field] for row in rows)


def report(results: dict, build: bool) -> None:
    fields = ["install"] + (["build"] if build else [])
    for field in fields:
        print(f"\n{field}, medians (sandbox / by hand)")
        sides = next(iter(results.values())).keys()
        modes = [s for s in sides if s != "by hand"]
        print("| package manager | caches | by hand | " + " | ".join(f"{m} | ratio" for m in modes) + " |")
        print("|---|---|---:|" + "---:|---:|" * len(modes))
        for key, rows in results.items():
            pm, state = key.split(" ")
            hand = med(rows["by hand"], field)
            cells = [f"{med(rows[m], field):.1f} s | **{med(rows[m], field) / hand:.2f}**" for m in modes]
            print(f"| {pm} | {state} | {hand:.1f} s | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pm", default="npm,pnpm,yarn", help=f"of {','.join(VARIANTS)}")
    parser.add_argument("--network", default="public,registries")
    parser.add_argument("--state", default="cold,warm")
    parser.add_argument("--build", action="store_true", help="also time the build step")
    parser.add_argument("--keep", type=Path, help="scaffold here once and reuse it on later runs")
    args = parser.parse_args()
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-install-bench-"))
    try:
        pms = args.pm.split(",")
        apps = scaffold(args.keep or root / "apps", pms)
        load = os.getloadavg()
        print(f"{time.strftime('%Y-%m-%d %H:%M')}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        for pm in pms:
            print(f"  {pm}: {describe(apps[pm])}", flush=True)
        results = measure(apps, pms, args.network.split(","), args.state.split(","), args.rounds,
                          args.build, root, Path(tempfile.gettempdir()) / "percel-install-bench.json")
        load = os.getloadavg()
        print(f"done {time.strftime('%H:%M')}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        report(results, args.build)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
