"""Benchmark the build runner: cold vs warm builds, and the sandbox's overhead.

Run: `.venv/bin/python bench/build_bench.py [--rounds 3] [--sandbox-rounds 5] [--docusaurus]`
Results (and how to read them) go to bench/BUILD.md.

(a) cold vs warm, through the local stack (the processes `make run` starts, BUILD_SANDBOX=bwrap):
    a create-vite react app with a committed package-lock.json. Each round pushes a fresh
    copy of the repository (a new repo URL = a new cache scope, so the dependency cache is
    empty: cold), then deploys the same URL again (warm: node_modules comes back from the
    runner's local tier by a rename), then once more with the local tier moved aside (warm
    from the bucket: what another runner sees). Timed from POST to `deployed`; the install
    and build step durations are read from the build log. `--docusaurus` adds a bigger app.
(b) the sandbox's overhead: the same install (`npm ci`) + build (`npm run build`) of the
    same app, run by build_runner.sandbox.bwrap.BwrapSandbox and by plain subprocesses
    (build_runner.sandbox.plain.NoneSandbox: same commands, same clean env, same private HOME),
    alternating which goes first, with an equal npm cache state on both sides: empty
    ("cold npm cache", the registry is fetched through the install proxy or directly) and
    pre-filled ("warm npm cache", a copy of one filled cache per run, with
    npm_config_prefer_offline so the copy is used: see run_steps). Plus the fixed cost
    of one sandboxed `true` with and without the install network.
Medians throughout: this machine has 2 cores shared with other work.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_runner import frameworks
from build_runner.sandbox import NoneSandbox, make_sandbox
from chalicelib.settings import load_settings
from devstack import services

STEP = re.compile(r"percel: (install|build) finished in ([0-9.]+) s")
RESTORE = re.compile(r"percel: dependency cache hit .*restored in ([0-9.]+) s")
DEPLOY_TIMEOUT = 1800.0


def sh(command: str, cwd: Path, env: dict | None = None, timeout: float = 900) -> None:
    subprocess.run(command, shell=True, cwd=cwd, check=True, capture_output=True, timeout=timeout,
                   env={**os.environ, "npm_config_yes": "true", "CI": "1", **(env or {})})


def commit(repo: Path) -> None:
    sh("git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm app",
       repo)


# --- apps ------------------------------------------------------------------------------

def scaffold_vite(root: Path) -> Path:
    sh("npm create vite@latest vite-react -- --template react --no-interactive", root)
    app = root / "vite-react"
    sh("npm install --package-lock-only --no-audit --no-fund", app)
    return app


def scaffold_docusaurus(root: Path) -> Path:
    sh("npx create-docusaurus@latest docs classic --javascript --skip-install -p npm", root)
    app = root / "docs"
    sh("npm install --package-lock-only --no-audit --no-fund", app)
    return app


def fresh_repo(app: Path, where: Path) -> Path:
    shutil.copytree(app, where, ignore=shutil.ignore_patterns("node_modules", ".git"))
    commit(where)
    return where


# --- (a) through the stack -----------------------------------------------------------------

def timed_deploy(stack: services.Stack, repo: Path) -> dict:
    """POST -> `deployed` seconds, plus the step durations and cache verdict from the log."""
    started = time.perf_counter()
    # "force": the same commit again would reuse the first deployment's output (the build memo,
    # docs/DECISIONS.md#memoized-builds) and never reach the dependency cache.
    record = services.deploy_and_wait(stack, {"repo_url": f"file://{repo}", "force": True},
                                      DEPLOY_TIMEOUT, poll=0.1)
    seconds = time.perf_counter() - started
    deployment_id = record["id"]
    if record["status"] in ("uploading", "queued", "building"):
        raise RuntimeError(f"{deployment_id} still {record['status']} after {DEPLOY_TIMEOUT:g} s")
    if record["status"] != "deployed":
        raise RuntimeError(f"{deployment_id} ended {record['status']}: {record.get('error')}")
    lines = services.api(stack.api_url, "GET", f"/api/deployments/{deployment_id}/logs?cursor=",
                         token=stack.admin_token)["lines"]
    steps = {m.group(1): float(m.group(2)) for m in map(STEP.search, lines) if m}
    cache = next((w for line in lines for w in ("hit", "miss") if f"dependency cache {w}" in line), "-")
    restored = next((float(m.group(1)) for m in map(RESTORE.search, lines) if m), 0.0)
    return {"total": seconds, "install": steps.get("install", 0.0), "build": steps.get("build", 0.0),
            "restore": restored, "cache": cache}


def cold_vs_warm(app: Path, root: Path, rounds: int) -> dict[str, list[dict]]:
    state = root / "state"
    stack = services.start_stack(state, services.free_port(), runners=1, extra_env={
        "BUILD_SANDBOX": "bwrap", "WORK_DIR": str(state / "work")})
    results: dict[str, list[dict]] = {"cold": [], "warm (local tier)": [], "warm (bucket)": []}
    try:
        # The first request after start-up pays for imports and client set-up (measured: ~3 s
        # more from POST to the runner's first log line): not a property of cold caches.
        warm_up = root / "warm-up"
        warm_up.mkdir(parents=True)
        (warm_up / "index.html").write_text("<h1>warm-up</h1>")
        commit(warm_up)
        timed_deploy(stack, warm_up)
        for round_ in range(rounds):
            repo = fresh_repo(app, root / "repos" / f"{app.name}-{round_}")
            results["cold"].append(timed_deploy(stack, repo))
            results["warm (local tier)"].append(timed_deploy(stack, repo))
            # Another runner has no local copy: it restores from the bucket's cache/<key>. The
            # local tier is moved aside, not deleted, until that build is done: deleting its
            # 36,000 files just before slowed the restore's file creation on this disk 3-8x
            # (docs/DECISIONS.md#depcache-stream), which another runner would not pay.
            aside = root / f"depcache-aside-{round_}"
            (state / "work" / "depcache").rename(aside)
            results["warm (bucket)"].append(timed_deploy(stack, repo))
            shutil.rmtree(aside, ignore_errors=True)
            print(f"  {app.name} round {round_ + 1}: " + ", ".join(
                f"{kind} {rows[-1]['total']:.1f} s (restore {rows[-1]['restore']:.1f} s, "
                f"install {rows[-1]['install']:.1f} s, build {rows[-1]['build']:.1f} s, "
                f"cache {rows[-1]['cache']})" for kind, rows in results.items()), flush=True)
    finally:
        stack.stop()
    return results


# --- (b) sandbox vs direct ------------------------------------------------------------------

def make_backends(network: str | None = None) -> dict:
    """{"sandbox": the bwrap backend, "direct": the plain `none` backend}; `network` sets
    BUILD_NETWORK (default: the environment's, else the settings' default, public)."""
    env = {**os.environ, "BUILD_SANDBOX": "bwrap",
           "BUILD_PROXY_ALLOW_CIDRS": os.environ.get("BUILD_PROXY_ALLOW_CIDRS")
           or services.registry_allowance(), **({"BUILD_NETWORK": network} if network else {})}
    quiet = logging.getLogger("bench.quiet")
    quiet.setLevel(logging.ERROR)
    return {"sandbox": make_sandbox(load_settings(env), log=quiet), "direct": NoneSandbox(quiet)}


def run_steps(backend, app: Path, work: Path, npm_cache: Path | None, *, home_from: Path | None = None,
              tools: tuple[Path, ...] = (), env: dict[str, str] | None = None, build: bool = True,
              lines: list[str] | None = None, keep: bool = False) -> dict:
    """Install + build of a fresh copy of `app` in `work`; seconds per step.

    The private HOME starts empty, or with `npm_cache` as ~/.npm, or as a copy of the
    whole `home_from` (a filled pnpm store or yarn cache lives elsewhere under HOME).
    `tools`: the toolchain directories, passed to the backend as the runner does.
    `lines` collects the output; `keep` leaves `work` in place for the caller to inspect.
    """
    project, home = work / "src", work / "home"
    shutil.copytree(app, project, ignore=shutil.ignore_patterns("node_modules", ".git"))
    if home_from is not None:
        shutil.copytree(home_from, home, symlinks=True)
    else:
        home.mkdir(parents=True)
    if npm_cache is not None:
        shutil.copytree(npm_cache, home / ".npm", symlinks=True)
    plan = frameworks.detect(project)
    # A filled npm cache alone does not keep npm off the network here: every entry comes back
    # "cache updated" through this machine's TLS-intercepting proxy, so the warm runs also
    # prefer the cache (what the runner's own warm install does, depcache.NPM_REUSE).
    if env is None:
        env = {"CI": "1", **({"npm_config_prefer_offline": "true"} if npm_cache else {})}
    lines = [] if lines is None else lines
    times = {}
    steps = [("install", plan.install_command, True)] + ([("build", plan.build_command, False)] if build else [])
    for name, command, network in steps:
        started = time.perf_counter()
        result = backend.run(command, workdir=project, home=home, env=env, network=network,
                             timeout=900, on_line=lines.append, tools=tools)
        times[name] = time.perf_counter() - started
        if not result.ok:
            raise RuntimeError(f"{backend.name} {name} failed ({result.reason}):\n" + "\n".join(lines[-30:]))
    times["total"] = sum(times.values())
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return times


def sandbox_overhead(app: Path, root: Path, rounds: int, warm_cache: bool) -> dict[str, list[dict]]:
    backends = make_backends()
    cache = None
    if warm_cache:
        # Filled once; every run gets its own copy as ~/.npm (npm's default cache).
        cache = root / "npm-cache"
        project = root / "fill" / "src"
        shutil.copytree(app, project, ignore=shutil.ignore_patterns("node_modules", ".git"))
        sh(f"npm ci --no-audit --no-fund --cache {cache}", project)
        shutil.rmtree(root / "fill")
    results: dict[str, list[dict]] = {"sandbox": [], "direct": []}
    for round_ in range(rounds):
        order = ("sandbox", "direct") if round_ % 2 == 0 else ("direct", "sandbox")
        for name in order:
            results[name].append(run_steps(backends[name], app, root / f"{name}-{round_}", cache))
        print(f"  {'warm' if warm_cache else 'cold'} npm cache, round {round_ + 1}: " + ", ".join(
            f"{n} {results[n][-1]['install']:.1f} + {results[n][-1]['build']:.1f} s" for n in order),
            flush=True)
    return results


def fixed_cost(root: Path, rounds: int = 10) -> dict[str, float]:
    """Median seconds of one sandboxed `true`: namespaces, cgroups, mounts (and the proxy)."""
    backends = make_backends()
    out = {}
    for network in (False, True):
        samples = []
        for _ in range(rounds):
            work = root / "noop"
            (work / "src").mkdir(parents=True, exist_ok=True)
            (work / "home").mkdir(exist_ok=True)
            for name in ("sandbox", "direct"):
                started = time.perf_counter()
                backends[name].run("true", workdir=work / "src", home=work / "home", env={},
                                   network=network, timeout=60, on_line=lambda line: None)
                samples.append((name, time.perf_counter() - started))
        for name in ("sandbox", "direct"):
            out[f"{name}, network={network}"] = statistics.median(s for n, s in samples if n == name)
    return out


# --- report ----------------------------------------------------------------------------------

def med(rows: list[dict], field: str) -> float:
    return statistics.median(row[field] for row in rows)


def report_cold_warm(name: str, results: dict[str, list[dict]]) -> None:
    cold = med(results["cold"], "total")
    print(f"\n{name}: POST -> deployed, medians of {len(results['cold'])} rounds")
    print("| build | POST->deployed | restore | install step | build step | cache | vs cold |")
    print("|---|---|---|---|---|---|---|")
    for kind, rows in results.items():
        total = med(rows, "total")
        caches = "/".join(sorted({row["cache"] for row in rows}))
        print(f"| {kind} | {total:.1f} s | {med(rows, 'restore'):.1f} s | {med(rows, 'install'):.1f} s "
              f"| {med(rows, 'build'):.1f} s "
              f"| {caches} | {100 * total / cold:.0f}% |")


def report_overhead(label: str, results: dict[str, list[dict]]) -> None:
    print(f"\nsandbox vs direct, {label}, medians of {len(results['sandbox'])} rounds")
    print("| run | install | build | install+build |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        print(f"| {name} | {med(rows, 'install'):.2f} s | {med(rows, 'build'):.2f} s | "
              f"{med(rows, 'total'):.2f} s |")
    over = {f: med(results["sandbox"], f) / med(results["direct"], f) - 1 for f in ("install", "build", "total")}
    print("| overhead | " + " | ".join(f"{100 * over[f]:+.1f}%" for f in ("install", "build", "total")) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold/warm rounds through the stack")
    parser.add_argument("--sandbox-rounds", type=int, default=5, help="sandbox vs direct rounds")
    parser.add_argument("--docusaurus", action="store_true", help="also cold/warm a Docusaurus site")
    parser.add_argument("--skip", choices=("stack", "sandbox", "vite"), action="append", default=[],
                        help="leave a part out; `vite` (with --docusaurus) keeps only the Docusaurus "
                             "cold/warm rounds, and the sandbox part needs the vite app")
    args = parser.parse_args()
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-build-bench-"))
    try:
        if "vite" in args.skip and "sandbox" not in args.skip:
            args.skip.append("sandbox")
        apps = [] if "vite" in args.skip else [scaffold_vite(root)]
        if args.docusaurus:
            apps.append(scaffold_docusaurus(root))
        if "stack" not in args.skip:
            for app in apps:
                print(f"(a) cold vs warm: {app.name}", flush=True)
                report_cold_warm(app.name, cold_vs_warm(app, root / f"a-{app.name}", args.rounds))
        if "sandbox" not in args.skip:
            print("\n(b) sandbox overhead: vite-react", flush=True)
            for name, seconds in fixed_cost(root / "b-noop").items():
                print(f"  one `true`, {name}: {1000 * seconds:.0f} ms")
            for warm in (True, False):
                results = sandbox_overhead(apps[0], root / f"b-{warm}", args.sandbox_rounds, warm)
                report_overhead("warm npm cache" if warm else "cold npm cache", results)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
