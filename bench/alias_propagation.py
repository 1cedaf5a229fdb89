"""How soon every request handler serves a project's production address after it moves.

Run: `.venv/bin/python bench/alias_propagation.py [--rounds 20] [--handlers 3]`
Results (and how to read them) go to bench/README.md.

It starts the local stack (the processes `make run` starts, on free ports) plus `--handlers - 1`
more API / request handler processes on the same Redis and bucket, as Lambda runs many
handlers side by side; each keeps its own alias cache (ALIAS_CACHE_SECONDS). A project is
made from a local static repository and deployed twice (v1, then v2: production serves v2).
Then each round moves production through the API, by turns a rollback (to v1) and a promote
(of v2), while one thread per handler polls `GET /` with Host `<name>.localhost` every
`--interval` s on a kept-alive connection. Rounds start after a random pause of up to
ALIAS_CACHE_SECONDS + 0.2 s, so a move lands anywhere in each handler's cache period. A round's
figure is the time from the API's 200 to the end of the first poll of its slowest handler that
showed the new deployment's body (negative: a poll sent before the API answered already saw
it). Every poll's body must be v1's or v2's (never anything else: no mix of the two, no error),
and a handler that has shown the new body must never show the old one again in that round.

Prints one JSON object: the rounds' figures (median, p95, max) and the checks.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack import services

PROJECT = "bench"
DEPLOY_TIMEOUT = 300.0
ROUND_TIMEOUT = 15.0   # a round that no handler finishes by then is reported as such
BODIES = {"v1": b"<h1>v1</h1>\n", "v2": b"<h1>v2</h1>\n"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=repo,
                   check=True, capture_output=True)


def commit_index(repo: Path, version: str) -> None:
    """A static site (no package.json: served from the checkout as it is) whose index.html
    says `version`."""
    (repo / "index.html").write_bytes(BODIES[version])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", version)


def deploy(stack: services.Stack) -> str:
    """Deploy the project's production branch and wait for `deployed`; its id."""
    created = services.api(stack.api_url, "POST", f"/api/projects/{PROJECT}/deployments", {},
                           token=stack.admin_token)
    deadline = time.monotonic() + DEPLOY_TIMEOUT
    while True:
        record = services.api(stack.api_url, "GET", f"/api/deployments/{created['id']}",
                              token=stack.admin_token)
        if record["status"] not in ("uploading", "queued", "building"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"deployment {created['id']} still {record['status']}")
        time.sleep(0.2)
    if record["status"] != "deployed":
        raise SystemExit(f"deployment {created['id']} {record['status']}: {record['error']}")
    return str(created["id"])


@dataclass
class Poller:
    """One thread polling one handler's `/` for the project's production address."""
    port: int
    host: str
    interval: float
    # (time the response ended, status, body), appended while `recording` is set
    seen: list[tuple[float, int, bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                connection.request("GET", "/", headers={"Host": self.host, "Accept": "*/*"})
                response = connection.getresponse()
                status, body = response.status, response.read()
            except (OSError, http.client.HTTPException) as error:
                status, body = 0, repr(error).encode()
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            with self.lock:
                self.seen.append((time.monotonic(), status, body))
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def since(self, moment: float) -> list[tuple[float, int, bytes]]:
        with self.lock:
            return [poll for poll in self.seen if poll[0] >= moment]


def first_sight(polls: list[tuple[float, int, bytes]], new: bytes) -> float | None:
    return next((ended for ended, _, body in polls if body == new), None)


def run_rounds(stack: services.Stack, pollers: list[Poller], rounds: int,
               deployments: dict[str, str], pause: random.Random, alias_cache: float) -> dict:
    figures: list[float] = []
    unexpected: list[str] = []
    flip_backs = 0
    timeouts = 0
    polls = 0
    for index in range(rounds):
        rollback = index % 2 == 0        # v2 -> v1 by rollback; v1 -> v2 by promoting v2
        old, new = (BODIES["v2"], BODIES["v1"]) if rollback else (BODIES["v1"], BODIES["v2"])
        time.sleep(pause.uniform(0, alias_cache + 0.2))
        round_start = time.monotonic()
        if rollback:
            answer = services.api(stack.api_url, "POST", f"/api/projects/{PROJECT}/rollback",
                                  token=stack.admin_token)
        else:
            answer = services.api(stack.api_url, "POST", f"/api/projects/{PROJECT}/promote",
                                  {"deployment_id": deployments["v2"]}, token=stack.admin_token)
        answered = time.monotonic()
        assert answer["production_deployment"] == deployments["v1" if rollback else "v2"], answer
        deadline = answered + ROUND_TIMEOUT
        while time.monotonic() < deadline and not all(
                first_sight(p.since(round_start), new) for p in pollers):
            time.sleep(0.05)
        time.sleep(0.1)   # a little more of each handler's polls, for the flip-back check
        slowest = -1e9
        for poller in pollers:
            seen = poller.since(round_start)
            polls += len(seen)
            unexpected += [f"{status} {body[:80]!r}" for _, status, body in seen
                           if status != 200 or body not in (old, new)]
            sight = first_sight(seen, new)
            if sight is None:
                timeouts += 1
                continue
            flip_backs += sum(1 for ended, _, body in seen if ended > sight and body == old)
            slowest = max(slowest, sight - answered)
        if slowest > -1e9:
            figures.append(slowest)
    ordered = sorted(figures)
    return {
        "rounds": rounds, "polls": polls,
        "seconds_until_every_handler_serves_it": {
            "median": round(statistics.median(ordered), 3) if ordered else None,
            "p95": round(ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)], 3) if ordered else None,
            "max": round(ordered[-1], 3) if ordered else None,
            "min": round(ordered[0], 3) if ordered else None,
        },
        "handlers_that_never_saw_it": timeouts,
        "responses_other_than_v1_or_v2": len(unexpected),
        "examples_of_those": unexpected[:5],
        "old_body_after_the_new_one": flip_backs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="rollbacks and promotes, by turns")
    parser.add_argument("--handlers", type=int, default=3, help="API / request handler processes")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between polls")
    parser.add_argument("--seed", type=int, default=1, help="of the pauses between rounds")
    args = parser.parse_args()
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-alias-bench-"))
    stack = None
    extra: list[services.Service] = []
    pollers: list[Poller] = []
    try:
        stack = services.start_stack(root / "state", services.free_port(), runners=1,
                                     extra_env={"WORK_DIR": str(root / "work")})
        ports = [stack.port]
        for _ in range(args.handlers - 1):
            port = services.free_port()
            extra.append(services.start_api(stack.env, port, root / "state" / "logs"))
            ports.append(port)
        repo = root / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        commit_index(repo, "v1")
        services.api(stack.api_url, "POST", "/api/projects",
                     {"name": PROJECT, "repo_url": f"file://{repo}"}, token=stack.admin_token)
        deployments = {"v1": deploy(stack)}
        commit_index(repo, "v2")
        deployments["v2"] = deploy(stack)
        host = f"{PROJECT}.localhost:{stack.port}"
        pollers = [Poller(port, host, args.interval) for port in ports]
        threads = [threading.Thread(target=p.run, daemon=True) for p in pollers]
        for thread in threads:
            thread.start()
        time.sleep(2.5)   # every handler has served v2 and its cache entry has expired once
        alias_cache = float(stack.env.get("ALIAS_CACHE_SECONDS", "1"))
        result = {"handlers": args.handlers, "poll_interval_seconds": args.interval,
                  "alias_cache_seconds": alias_cache, "cpus": os.cpu_count(),
                  "load_average_before": round(os.getloadavg()[0], 2),
                  **run_rounds(stack, pollers, args.rounds, deployments,
                               random.Random(args.seed), alias_cache),
                  "load_average_after": round(os.getloadavg()[0], 2)}
        print(json.dumps(result, indent=2))
    finally:
        for poller in pollers:
            poller.stop.set()
        for service in extra:
            service.stop()
        if stack is not None:
            stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
