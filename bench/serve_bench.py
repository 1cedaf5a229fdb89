"""Benchmark: serving a deployed Vite React site, against nginx and a trivial Chalice view.

Run: `.venv/bin/python bench/serve_bench.py [--duration 5] [--rounds 3]`

In one run it
1. scaffolds the official Vite React template (`npm create vite@latest -- --template react`)
   and builds it once, so every server below serves the very same files;
2. starts the local stack (the processes `make run` starts, on free ports; BUILD_SANDBOX is
   taken from the environment as usual) and deploys those files as a static repository;
3. starts nginx (one worker, sendfile, access log off) on the files on disk, and a trivial
   Chalice app (bench/trivial_chalice) that returns the same bytes from memory, under the same
   launcher as percel (devstack.chalice_local, with the Nagle fix);
4. measures each server with wrk (one thread, keep-alive, 1 and 16 connections, 127.0.0.1
   only) on index.html and the hashed JS bundle, after a warm-up: --rounds runs of --duration
   seconds per cell, the servers interleaved, the medians reported;
5. reads the handler's bucket GETs (X-Percel-Bucket-Reads, local stage only) before and after
   percel's measured windows: every measured request is a cache hit, so the delta must be 0.
It prints a markdown table and the ratios. Needs wrk, nginx, node/npm and git; on Debian as
root it installs wrk and nginx with apt-get when missing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from devstack import services

TRIVIAL_APP = PROJECT / "bench" / "trivial_chalice"
READS_HEADER = "X-Percel-Bucket-Reads"
# wrk prints this line from its done() hook; percentiles are in microseconds.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"bad_status": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Target:
    name: str
    base: str            # http://127.0.0.1:<port>
    host: str | None     # Host header to send (percel's site host), else none


@dataclass
class Result:
    target: str
    path: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float


def sh(command: str, cwd: Path, timeout: int = 900) -> None:
    subprocess.run(command, shell=True, cwd=cwd, check=True, capture_output=True,
                   timeout=timeout, env={**os.environ, "CI": "1", "npm_config_yes": "true"})


def ensure_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if not shutil.which(tool)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=False,
                       capture_output=True)
    missing = [tool for tool in ("wrk", "nginx", "npm", "git") if not shutil.which(tool)]
    if missing:
        sys.exit(f"serve_bench: missing {', '.join(missing)}")


def build_vite_site(root: Path) -> Path:
    """The official template, built once; returns its dist/ directory."""
    sh("npm create --yes vite@latest app -- --template react --no-interactive", root)
    app = root / "app"
    sh("npm install --no-audit --no-fund && npm run build", app)
    return app / "dist"


def deploy_static(stack: services.Stack, dist: Path, scratch: Path) -> str:
    """Commit a copy of dist/ as a plain static repository and deploy it through the API."""
    repo = scratch / "site-repo"
    shutil.copytree(dist, repo)
    sh("git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b "
       "commit -qm site", repo)
    record = services.deploy_and_wait(stack, {"repo_url": f"file://{repo}"}, 300)
    if record["status"] in ("uploading", "queued", "building"):
        sys.exit("serve_bench: the deployment did not finish within 300 s")
    if record["status"] != "deployed":
        sys.exit(f"serve_bench: deployment {record['status']}: {record.get('error')}")
    return record["id"]


def start_trivial(dist: Path, log_dir: Path) -> services.Service:
    port = services.free_port()
    env = {**os.environ, "BENCH_FILES": str(dist), "PYTHONPATH": str(PROJECT)}
    argv = [sys.executable, "-m", "devstack.chalice_local", "--host", "127.0.0.1",
            "--port", str(port)]
    process, log_path = services._spawn(f"trivial-{port}", argv, log_dir, env, cwd=TRIVIAL_APP)
    service = services.Service("trivial", process, f"http://127.0.0.1:{port}", log_path)
    return wait_for(service, 60)


NGINX_CONF = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


def start_nginx(dist: Path, tmp: Path) -> services.Service:
    tmp.mkdir(parents=True)
    port = services.free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=dist))
    process, log_path = services._spawn("nginx", ["nginx", "-p", str(tmp), "-c", str(conf)],
                                        tmp)
    service = services.Service("nginx", process, f"http://127.0.0.1:{port}", log_path)
    return wait_for(service, 10)


def wait_for(service: services.Service, timeout: float) -> services.Service:
    """Up and serving `/`, or stopped (never left running behind a failed bench)."""
    try:
        services.wait_until(lambda: fetch(service.url + "/", None)[0] == 200, timeout,
                            f"{service.name} (log: {service.log_path})")
    except BaseException:
        service.stop()
        raise
    return service


def fetch(url: str, host: str | None) -> tuple[int, dict, bytes]:
    """Status, headers by lowercase name (granian sends names lowercase), body."""
    request = urllib.request.Request(url, headers={"Accept": "*/*", **({"Host": host} if host else {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return (response.status, {name.lower(): value for name, value in response.headers.items()},
                response.read())


def wrk(target: Target, path: str, connections: int, seconds: float, script: Path) -> Result:
    headers = ["-H", "Accept: */*"] + (["-H", f"Host: {target.host}"] if target.host else [])
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
            "-s", str(script), *headers, target.base + path]
    output = subprocess.run(argv, check=True, capture_output=True, text=True,
                            timeout=seconds + 30).stdout
    report = json.loads(re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE).group(1))
    if report["bad_status"] or report["socket_errors"] or not report["requests"]:
        sys.exit(f"serve_bench: {target.name} {path}: errors during the run:\n{output}")
    return Result(target.name, path, connections,
                  rps=report["requests"] / (report["duration_us"] / 1e6),
                  p50_ms=report["p50_us"] / 1000, p99_ms=report["p99_us"] / 1000)


def bucket_reads(target: Target) -> int:
    return int(fetch(target.base + "/", target.host)[1][READS_HEADER.lower()])


def check_same_bytes(targets: list[Target], paths: list[str], dist: Path) -> None:
    """Every server must answer the measured paths with dist's bytes, or the race is unfair."""
    for path in paths:
        expected = (dist / (path.lstrip("/") or "index.html")).read_bytes()
        for target in targets:
            status, _, body = fetch(target.base + path, target.host)
            if status != 200 or body != expected:
                sys.exit(f"serve_bench: {target.name} {path} answered {status} "
                         f"with other bytes")


def measure(targets: list[Target], paths: list[str], seconds: float, rounds: int,
            script: Path) -> tuple[list[Result], int]:
    """Each (path, connections) cell runs the servers back to back, in a rotating order, for
    `rounds` rounds; a cell's figures are the medians. Other load on the machine then hits
    every server alike instead of whichever ran at that moment."""
    for target in targets:
        for path in paths:                       # warm-up: caches and connections
            wrk(target, path, 4, min(2.0, seconds), script)
    percel = next(t for t in targets if t.name == "percel")
    before = bucket_reads(percel)
    runs: dict[tuple[str, str, int], list[Result]] = {}
    for round_ in range(rounds):
        for path in paths:
            for connections in (1, 16):
                shift = round_ % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    result = wrk(target, path, connections, seconds, script)
                    runs.setdefault((target.name, path, connections), []).append(result)
                    print(f"  round {round_ + 1}: {target.name:15} {path:32} c={connections:<2} "
                          f"{result.rps:9.0f} req/s", file=sys.stderr, flush=True)
    reads = bucket_reads(percel) - before
    ordered = [runs[(t.name, p, c)] for t in targets for p in paths for c in (1, 16)]
    return [median_result(cell) for cell in ordered], reads


def median_result(cell: list[Result]) -> Result:
    first = cell[0]
    return Result(first.target, first.path, first.connections,
                  rps=statistics.median(r.rps for r in cell),
                  p50_ms=statistics.median(r.p50_ms for r in cell),
                  p99_ms=statistics.median(r.p99_ms for r in cell))


def table(results: list[Result]) -> str:
    lines = ["| server | path | connections | req/s | p50 ms | p99 ms |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.target} | `{r.path}` | {r.connections} | {r.rps:,.0f} | "
                     f"{r.p50_ms:.2f} | {r.p99_ms:.2f} |")
    return "\n".join(lines)


def ratios(results: list[Result]) -> str:
    by_key = {(r.target, r.path, r.connections): r for r in results}
    lines = ["| path | connections | percel / trivial Chalice | percel / nginx |",
             "|---|---:|---:|---:|"]
    for r in results:
        if r.target != "percel":
            continue
        trivial = by_key[("trivial chalice", r.path, r.connections)]
        nginx = by_key[("nginx", r.path, r.connections)]
        lines.append(f"| `{r.path}` | {r.connections} | {r.rps / trivial.rps:.0%} | "
                     f"{r.rps / nginx.rps:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cell (median kept)")
    args = parser.parse_args()
    ensure_tools()
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-serve-bench-"))
    root.chmod(0o755)   # nginx started as root serves as `nobody`, which must reach dist/
    script = root / "report.lua"
    script.write_text(WRK_REPORT)
    started: list = []
    try:
        print("building the Vite React template...", file=sys.stderr, flush=True)
        dist = build_vite_site(root)
        stack = services.start_stack(root / "state", services.free_port(), runners=1,
                                     extra_env={"WORK_DIR": str(root / "work")})
        started.append(stack)
        deployment_id = deploy_static(stack, dist, root)
        started.append(start_trivial(dist, root / "logs"))
        started.append(start_nginx(dist, root / "nginx"))
        script_name = re.search(r'src="(/assets/[^"]+\.js)"', (dist / "index.html").read_text())
        paths = ["/", script_name.group(1)]
        targets = [Target("percel", stack.api_url, f"{deployment_id}.localhost:{stack.port}"),
                   Target("trivial chalice", started[1].url, None),
                   Target("nginx", started[2].url, None)]
        check_same_bytes(targets, paths, dist)
        load_before = os.getloadavg()[0]
        results, reads = measure(targets, paths, args.duration, args.rounds, script)
        load_after = os.getloadavg()[0]
        sizes = {path: (dist / (path.lstrip("/") or "index.html")).stat().st_size
                 for path in paths}
        print(f"\nwrk -t1, keep-alive, 127.0.0.1; median of {args.rounds} runs of "
              f"{args.duration:g} s per cell; {os.cpu_count()} CPUs, load average "
              f"{load_before:.1f} before and {load_after:.1f} after; sizes: "
              + ", ".join(f"`{p}` {s:,} B" for p, s in sizes.items()) + "\n")
        print(table(results) + "\n")
        print(ratios(results) + "\n")
        print(f"percel bucket reads during its measured windows: {reads}")
    finally:
        for thing in reversed(started):
            thing.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
