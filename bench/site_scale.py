"""Benchmark: does a site's size change what a request costs? A 20,000-file site vs a 10-file one.

Run: `.venv/bin/python bench/site_scale.py [--files 20000] [--requests 20000] [--rounds 5]
                                           [--duration 5] [--no-http]`

In one run it
1. starts Redis and moto's S3 server (the local stack's, devstack/services.py) and publishes two
   sites the way a runner does (blobs, then `deployments/<id>.json`, then the record): `small`
   with 10 files and `large` with --files files. Every entry has br and gzip variants, as a
   built site's HTML and JS do, so the large manifest is ~7.6 MB of JSON; only the blobs the
   bench requests are uploaded (requests carry no Accept-Encoding, so only identity blobs);
2. in process: calls SiteServer.handle directly, `hot` (one URL repeated) and `spread` (the
   same 1,000 URLs over the whole site, cycled), after a warm-up pass over every measured URL;
   --rounds rounds of --requests requests per cell, the sites interleaved, the medians kept;
3. over HTTP (unless --no-http): starts the API under `chalice local` (devstack.chalice_local)
   and measures the same cells with wrk (one thread, 1 connection, keep-alive; the spread cell
   cycles the 1,000 URLs from a Lua script);
4. counts the bucket requests made during the measured windows at the S3 client's transport
   (a botocore `before-send` hook: one per HTTP request sent to the S3 endpoint, retries
   included) in process, and by the handler's counter (X-Percel-Bucket-Reads) over HTTP.
It prints markdown tables: microseconds (in process) or req/s (HTTP) per cell, and the ratio
large / small. Needs wrk for step 3 (on Debian as root it installs it with apt-get).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from chalicelib import keys
from chalicelib.context import Context, build_context
from chalicelib.serving.site import BUCKET_READS_HEADER, SiteServer
from chalicelib.settings import load_settings
from chalicelib.state.records import State
from devstack import services

SPREAD = 1000          # distinct URLs in the spread cells
SITES = {"small": "smallsitesmallsi", "large": "largesitelargesi"}
WRK_SCRIPT = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class Site:
    name: str
    deployment_id: str
    hot: list[str]       # one URL
    spread: list[str]    # SPREAD URLs over the whole site (all of them for the small one)


def page(number: int) -> bytes:
    return (f"<!doctype html><title>page {number}</title>"
            f"<h1>Page {number}</h1>{'<p>lorem ipsum</p>' * 20}").encode()


def key_of(number: int) -> str:
    return f"docs/section-{number % 200:03d}/page-{number:06d}.html"


def publish(ctx: Context, deployment_id: str, count: int, served: set[int]) -> None:
    """The output manifest of `count` pages; blobs only for the pages the bench requests."""
    files, blobs = {}, {}
    for number in range(count):
        body = page(number)
        digest = hashlib.sha256(body).hexdigest()
        files[key_of(number)] = {
            "sha256": digest, "size": len(body), "type": "text/html; charset=utf-8",
            "encodings": {"br": {"sha256": hashlib.sha256(b"br" + body).hexdigest(), "size": 90},
                          "gzip": {"sha256": hashlib.sha256(b"gz" + body).hexdigest(), "size": 110}}}
        if number in served:
            blobs[digest] = body
    ctx.store.upload_blobs(blobs)
    manifest = {"version": 1, "id": deployment_id, "files": files, "config": None}
    ctx.store.put_json(keys.deployment_manifest(deployment_id), manifest)
    ctx.records.create({"id": deployment_id, "repo_url": "file:///bench"})
    ctx.records.transition(deployment_id, State.BUILDING)
    ctx.records.transition(deployment_id, State.DEPLOYED)
    print(f"  published {deployment_id}: {count:,} files, manifest "
          f"{len(json.dumps(manifest)):,} B of JSON", file=sys.stderr, flush=True)


def make_sites(ctx: Context, files: int) -> list[Site]:
    step = max(1, files // SPREAD)
    large = [n * step for n in range(min(SPREAD, files))]
    publish(ctx, SITES["small"], 10, set(range(10)))
    publish(ctx, SITES["large"], files, set(large))
    small_paths = ["/" + key_of(n)[: -len(".html")] for n in range(10)]
    large_paths = ["/" + key_of(n)[: -len(".html")] for n in large]
    return [Site("small", SITES["small"], small_paths[:1], small_paths),
            Site("large", SITES["large"], large_paths[len(large_paths) // 2:][:1], large_paths)]


# --- in process ------------------------------------------------------------------------------

class S3Requests:
    """Counts HTTP requests the S3 client sends to the endpoint (retries included)."""

    def __init__(self, client) -> None:
        self.count = 0
        client.meta.events.register("before-send.s3", self._sent)

    def _sent(self, **_kwargs) -> None:
        self.count += 1


def time_requests(server: SiteServer, site: Site, paths: list[str], requests: int) -> float:
    """Microseconds per SiteServer.handle call, cycling `paths`."""
    headers = {"host": f"{site.deployment_id}.localhost", "accept": "*/*"}
    order = [paths[i % len(paths)] for i in range(requests)]
    started = time.perf_counter()
    for path in order:
        response = server.handle(site.deployment_id, "GET", path, "", headers)
        if response.status_code != 200:
            sys.exit(f"site_scale: {site.name} {path} answered {response.status_code}")
    return (time.perf_counter() - started) / requests * 1e6


def in_process(ctx: Context, sites: list[Site], requests: int, rounds: int) -> tuple[dict, int, int]:
    server = SiteServer(ctx)
    counter = S3Requests(ctx.store.s3)
    for site in sites:                                  # warm-up: every measured URL once
        time_requests(server, site, site.spread + site.hot, len(site.spread) + 1)
    before, handler_before = counter.count, server.bucket_reads
    figures = interleaved(sites, rounds, lambda site, paths: time_requests(server, site, paths, requests))
    return figures, counter.count - before, server.bucket_reads - handler_before


# --- over HTTP -------------------------------------------------------------------------------

def ensure_wrk() -> bool:
    if not shutil.which("wrk") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    return shutil.which("wrk") is not None


def wrk(base: str, host: str, paths: list[str], seconds: float, scratch: Path) -> float:
    listing = scratch / f"paths-{len(paths)}-{abs(hash(tuple(paths)))}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = scratch / (listing.stem + ".lua")
    script.write_text(WRK_SCRIPT % listing)
    argv = ["wrk", "-t1", "-c1", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(script),
            "-H", f"Host: {host}", "-H", "Accept: */*", base + paths[0]]
    output = subprocess.run(argv, check=True, capture_output=True, text=True,
                            timeout=seconds + 30).stdout
    found = re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE)
    report = json.loads(found.group(1)) if found else {"errors": 1}
    if report["errors"] or not report.get("requests"):
        sys.exit(f"site_scale: wrk {host}: errors during the run:\n{output}")
    return float(report["requests"]) / (report["duration_us"] / 1e6)


def handler_reads(base: str, host: str, path: str) -> int:
    request = urllib.request.Request(base + path, headers={"Host": host, "Accept": "*/*"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.headers[BUCKET_READS_HEADER])


def over_http(env: dict, sites: list[Site], seconds: float, rounds: int,
              scratch: Path) -> tuple[dict, int]:
    port = services.free_port()
    api = services.start_api(env, port, scratch / "logs")
    try:
        hosts = {site.name: f"{site.deployment_id}.localhost:{port}" for site in sites}
        for site in sites:                              # warm-up
            for path in site.spread + site.hot:
                handler_reads(api.url, hosts[site.name], path)
        before = handler_reads(api.url, hosts["small"], sites[0].hot[0])
        figures = interleaved(sites, rounds,
                              lambda site, paths: wrk(api.url, hosts[site.name], paths, seconds, scratch))
        reads = handler_reads(api.url, hosts["small"], sites[0].hot[0]) - before
    finally:
        api.stop()
    return figures, reads


def interleaved(sites: list[Site], rounds: int, measure: Callable[[Site, list[str]], float]
                ) -> dict[tuple[str, str], float]:
    """Median of `measure(site, paths)` per (site, cell), the cells and the sites' order
    alternating round by round so neither site always runs on a warmer machine."""
    runs: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds):
        for cell in ("hot", "spread"):
            for site in sites[round_ % 2:] + sites[:round_ % 2]:
                paths = site.hot if cell == "hot" else site.spread
                runs.setdefault((site.name, cell), []).append(measure(site, paths))
    return {key: statistics.median(values) for key, values in runs.items()}


def report(title: str, unit: str, figures: dict, files: int, lower_is_better: bool) -> str:
    lines = [f"**{title}**", "", f"| cell | 10 files | {files:,} files | {files:,} / 10 (time) |",
             "|---|---:|---:|---:|"]
    for cell in ("hot", "spread"):
        small, large = figures[("small", cell)], figures[("large", cell)]
        ratio = large / small if lower_is_better else small / large
        lines.append(f"| {cell} | {small:,.1f} {unit} | {large:,.1f} {unit} | {ratio:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20_000, help="per in-process run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--no-http", action="store_true", help="in process only")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="percel-site-scale-"))
    started: list[services.Service] = []
    try:
        os.environ.setdefault("BUILD_PROXY_ALLOW_CIDRS", "")   # no registry look-up: no builds
        started.append(services.start_redis(scratch))
        started.append(services.start_s3(scratch))
        env = services.stack_env(started[0].url, started[1].url, 0, {"WORK_DIR": str(scratch / "w")})
        os.environ.update(services.LOCAL_AWS)
        services.ensure_bucket(env)
        ctx = build_context(load_settings(env))
        sites = make_sites(ctx, args.files)
        figures, s3_requests, handler = in_process(ctx, sites, args.requests, args.rounds)
        print(f"\nin process (SiteServer.handle), median of {args.rounds} runs of "
              f"{args.requests:,} requests; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}\n")
        print(report("microseconds per request", "us", figures, args.files, True))
        print(f"\nS3 requests sent during the measured runs (botocore before-send): "
              f"{s3_requests}; handler counter: {handler}")
        if not args.no_http:
            if not ensure_wrk():
                sys.exit("site_scale: wrk is missing (or pass --no-http)")
            rates, reads = over_http(env, sites, args.duration, args.rounds, scratch)
            print(f"\nover HTTP (chalice local, wrk -t1 -c1, keep-alive), median of "
                  f"{args.rounds} runs of {args.duration:g} s\n")
            print(report("requests per second", "req/s", rates, args.files, False))
            print(f"\nbucket reads during the measured runs (X-Percel-Bucket-Reads): {reads}")
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
