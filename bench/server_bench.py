"""Benchmark: percel's API servers off Lambda, granian vs gunicorn vs `chalice local`, against nginx.

Run: `.venv/bin/python bench/server_bench.py [--duration 5] [--rounds 1] [--workers N --threads T]`

In one run it
1. writes a site shaped like the Vite React template's build (bench/serve_bench.py builds the
   real one with npm; this needs no registry): index.html of 453 B and a hashed JS bundle of
   222,447 B, and deploys it through the local stack (SERVER=granian, devstack/asgi.py);
2. starts, on the same Redis and bucket, the other API servers: gunicorn (devstack/wsgi.py) and
   `chalice local` (devstack/chalice_local.py); the trivial Chalice view (bench/trivial_chalice)
   under granian and under gunicorn; and nginx on the files on disk (bench/serve_bench.py's
   configuration);
3. measures each with wrk at 16 connections (one thread, keep-alive, 127.0.0.1) on both paths,
   after a warm-up, and prints the table and the ratios to nginx and to the trivial view under
   the same server.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import serve_bench  # noqa: E402
from serve_bench import Target  # noqa: E402

from devstack import services  # noqa: E402

BUNDLE = "/assets/index-DSXtc1GT.js"
INDEX_HTML = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" type="image/svg+xml" href="/vite.svg" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>Vite + React</title>
    <script type="module" crossorigin src="/assets/index-DSXtc1GT.js"></script>
    <link rel="stylesheet" crossorigin href="/assets/index-n_ryQ3BS.css">
  </head>
  <body>
    <div id="root"></div>
  </body>
</html>
"""


def write_site(dist: Path) -> Path:
    """index.html and a 222,447-byte bundle of minified-looking JavaScript (fixed seed)."""
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX_HTML.ljust(452) + "\n")
    words = ["function", "return", "const", "let", "=>", "{", "}", "(", ")", ";", "e", "t", "n",
             "r", "o", "useState", "createElement", "null", "0", "1", "!", "&&", "||", "."]
    rng = random.Random(1)
    text = "".join(rng.choice(words) for _ in range(120_000))[:222_447]
    (dist / BUNDLE.lstrip("/")).write_text(text)
    return dist


def start_server(name: str, argv: list[str], env: dict, log_dir: Path, cwd: Path = PROJECT,
                 ready: str = "/api/health") -> services.Service:
    port = services.free_port()
    argv = [part.replace("{port}", str(port)) for part in argv]
    process, log_path = services._spawn(f"{name}-{port}", argv, log_dir, env, cwd=cwd)
    service = services.Service(name, process, f"http://127.0.0.1:{port}", log_path)
    try:
        services.wait_until(lambda: serve_bench.fetch(service.url + ready, None)[0] == 200, 60,
                            f"{name} (log: {log_path})")
    except BaseException:
        service.stop()
        raise
    return service


def server_argv(server: str) -> list[str]:
    """services.server_argv with the port left for start_server to fill in."""
    mark = "65535"
    return [part.replace(mark, "{port}") if part.split(":")[-1] == mark else part
            for part in services.server_argv(server, int(mark))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=1, help="runs per cell (median kept)")
    parser.add_argument("--workers", help="WEB_WORKERS for the granian and gunicorn servers")
    parser.add_argument("--threads", help="WEB_THREADS for the granian and gunicorn servers")
    parser.add_argument("--worker-class", help="WEB_WORKER_CLASS for the gunicorn servers (sync)")
    parser.add_argument("--only", help="comma-separated server names to measure")
    args = parser.parse_args()
    serve_bench.ensure_tools()
    os.environ.update(services.LOCAL_AWS)
    sizing = {name: value for name, value in
              (("WEB_WORKERS", args.workers), ("WEB_THREADS", args.threads),
               ("WEB_WORKER_CLASS", args.worker_class)) if value}
    root = Path(tempfile.mkdtemp(prefix="percel-server-bench-"))
    root.chmod(0o755)   # nginx started as root serves as `nobody`, which must reach dist/
    script = root / "report.lua"
    script.write_text(serve_bench.WRK_REPORT)
    started: list = []
    try:
        dist = write_site(root / "dist")
        stack = services.start_stack(root / "state", services.free_port(), runners=1,
                                     extra_env={"WORK_DIR": str(root / "work"), "SERVER": "granian",
                                                **sizing})
        started.append(stack)
        deployment_id = serve_bench.deploy_static(stack, dist, root)
        logs = root / "logs"
        others = {}
        for server in ("gunicorn", "chalice"):
            others[server] = start_server(server, server_argv(server), stack.env, logs)
            started.append(others[server])
        trivial_env = {**os.environ, **sizing, "BENCH_FILES": str(dist), "PYTHONPATH": str(PROJECT)}
        trivial = {}
        for server in ("granian", "gunicorn"):
            trivial[server] = start_server(f"trivial-{server}", server_argv(server), trivial_env,
                                           logs, cwd=serve_bench.TRIVIAL_APP, ready="/")
            started.append(trivial[server])
        nginx = serve_bench.start_nginx(dist, root / "nginx")
        started.append(nginx)
        site = f"{deployment_id}.localhost"
        targets = [Target("percel", stack.api_url, site),   # measure() reads its bucket counter
                   Target("percel gunicorn", others["gunicorn"].url, site),
                   Target("percel chalice local", others["chalice"].url, site),
                   Target("trivial granian", trivial["granian"].url, None),
                   Target("trivial gunicorn", trivial["gunicorn"].url, None),
                   Target("nginx", nginx.url, None)]
        if args.only:
            keep = {"percel", *args.only.split(",")}
            targets = [t for t in targets if t.name in keep]
        paths = ["/", BUNDLE]
        serve_bench.check_same_bytes(targets, paths, dist)
        results = measure(targets, paths, args.duration, args.rounds, script)
        print(f"\nwrk -t1 -c16, keep-alive, 127.0.0.1; {args.rounds} x {args.duration:g} s per "
              f"cell; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; granian and "
              f"gunicorn {sizing or 'defaults (WEB_WORKERS, WEB_THREADS)'}; percel is granian\n")
        print(serve_bench.table(results) + "\n")
        print(ratios(results))
    finally:
        for thing in reversed(started):
            thing.stop()
        shutil.rmtree(root, ignore_errors=True)


def measure(targets, paths, seconds, rounds, script):
    """serve_bench's rotation, at 16 connections only."""
    for target in targets:
        for path in paths:
            serve_bench.wrk(target, path, 4, min(2.0, seconds), script)
    cells: dict = {}
    for round_ in range(rounds):
        for path in paths:
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                result = serve_bench.wrk(target, path, 16, seconds, script)
                cells.setdefault((target.name, path), []).append(result)
                print(f"  {target.name:22} {path:28} {result.rps:9.0f} req/s", file=sys.stderr,
                      flush=True)
    return [serve_bench.median_result(cells[(t.name, p)]) for t in targets for p in paths]


def same_server_trivial(target: str) -> str:
    """The trivial view under the server `target` runs on (percel's own is granian)."""
    return "trivial gunicorn" if target.endswith("gunicorn") else "trivial granian"


def ratios(results) -> str:
    by_key = {(r.target, r.path): r for r in results}
    lines = ["| server | path | / nginx | / trivial view under the same server |",
             "|---|---|---:|---:|"]
    for r in results:
        nginx = by_key.get(("nginx", r.path))
        trivial = by_key.get((same_server_trivial(r.target), r.path))
        lines.append(f"| {r.target} | `{r.path}` | "
                     f"{f'{r.rps / nginx.rps:.2f}x' if nginx else '-'} | "
                     f"{f'{r.rps / trivial.rps:.2f}x' if trivial else '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
