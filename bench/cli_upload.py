"""Benchmark: `percel deploy` of a 1,000-file folder against `aws s3 sync` of the same folder to
the same S3 endpoint, first upload and unchanged re-upload.

Run: `.venv/bin/python bench/cli_upload.py [--rounds 5] [--files 1000] [--s3 moto|localstack]` (needs
the AWS CLI: `pip install awscli` if `aws` is not on PATH; `--s3 localstack` needs `make localstack`).

Each round writes a fresh folder (new random bytes, the same sizes), so each side's first upload
really is one: percel's bucket holds no blob of it, and `aws s3 sync` goes to a fresh prefix.
Then each side uploads the unchanged folder again. The two sides alternate which goes first.
percel is timed as `percel deploy DIR --prebuilt --no-wait`: walk, hash, POST /api/uploads, the
PUTs, and POST /api/deployments (which checks every staged blob); the publish that follows is
waited for outside the timing. The figures are medians, printed as one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack import localstack, services

PERCEL = Path(sys.executable).parent / "percel"
# Sizes of a static site's files: many small pages and chunks, a few larger assets.
SIZES = (300, 1_000, 2_000, 4_000, 8_000, 16_000, 64_000)
WEIGHTS = (20, 25, 20, 15, 10, 8, 2)


def aws_command() -> str:
    found = shutil.which("aws") or ("/root/.pyenv/shims/aws" if Path("/root/.pyenv/shims/aws").exists() else None)
    if not found:
        raise SystemExit("the AWS CLI is missing: `pip install awscli` (v1) or install v2, then run again")
    return found


def aws_version(aws: str) -> str:
    result = subprocess.run([aws, "--version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).strip()


def write_folder(root: Path, files: int, seed: int) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        size = rng.choices(SIZES, WEIGHTS)[0]
        path = root / f"section-{i % 20:02d}" / f"page-{i:04d}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        total += size
    return total


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])}... exited {result.returncode}:\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def percel_deploy(folder: Path, env: dict[str, str], stack: services.Stack) -> float:
    seconds, out = timed([str(PERCEL), "deploy", str(folder), "--prebuilt", "--no-wait", "--json"], env)
    deployment_id = json.loads(out)["id"]
    wait_deployed(stack, deployment_id)
    return seconds


def wait_deployed(stack: services.Stack, deployment_id: str) -> None:
    while True:
        record = services.api(stack.api_url, "GET", f"/api/deployments/{deployment_id}", token=stack.admin_token)
        if record["status"] not in ("uploading", "queued", "building"):
            assert record["status"] == "deployed", record
            return
        time.sleep(0.2)


def s3_sync(folder: Path, target: str, aws: str, endpoint: str, env: dict[str, str]) -> float:
    return timed([aws, "s3", "sync", str(folder), target, "--endpoint-url", endpoint, "--only-show-errors"],
                 env)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--s3", choices=localstack.EMBEDDED, default="moto",
                        help="the S3 endpoint both sides use: moto's server (make run's default) or "
                             "LocalStack's S3, which checks signed checksums as S3 and R2 do")
    args = parser.parse_args()
    aws = aws_command()
    os.environ.update(services.LOCAL_AWS)
    root = Path(tempfile.mkdtemp(prefix="percel-cli-bench-"))
    stack = services.start_stack(root / "state", services.free_port(), runners=1,
                                 embedded_s3=localstack.embedded_s3(args.s3),
                                 # Uploads count against the per-token limit; --rounds 20 would pass it.
                                 extra_env={"WORK_DIR": str(root / "work"), "DEPLOYS_PER_MINUTE": "100000"})
    endpoint, bucket = stack.env["AWS_ENDPOINT_URL_S3"], stack.env.get("PERCEL_BUCKET", "percel")
    env = {**os.environ, "PERCEL_API": stack.api_url, "PERCEL_TOKEN": stack.admin_token, "NO_COLOR": "1",
           "XDG_CONFIG_HOME": str(root / "config"), "AWS_DEFAULT_REGION": "us-east-1"}
    # This checkout's percel_cli, whatever checkout the editable install points at, run as an
    # installed command runs: from compiled bytecode (pip compiles what it installs). With
    # PYTHONDONTWRITEBYTECODE set, as in some shells, every run compiled the CLI again: starting
    # Python and importing percel_cli.main took 0.18 s against 0.11 s from bytecode (measured),
    # a fifth to a third of an unchanged redeploy.
    checkout = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "percel_cli")], check=True)
    percel_env = {**env, "PYTHONPATH": str(checkout)}
    percel_env.pop("PYTHONDONTWRITEBYTECODE", None)
    figures: dict[str, list[float]] = {"percel_first": [], "percel_unchanged": [], "s3_sync_first": [],
                                       "s3_sync_unchanged": []}
    try:
        for round_ in range(args.rounds):
            folder = root / f"site-{round_}"
            total = write_folder(folder, args.files, seed=round_)
            target = f"s3://{bucket}/bench-cli-upload/{os.getpid()}-{round_}/"
            sides = [("percel", lambda f=folder: percel_deploy(f, percel_env, stack)),
                     ("s3_sync", lambda f=folder, t=target: s3_sync(f, t, aws, endpoint, env))]
            for name, run in (sides if round_ % 2 == 0 else sides[::-1]):
                figures[f"{name}_first"].append(run())
                figures[f"{name}_unchanged"].append(run())
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()),
                  file=sys.stderr, flush=True)
            shutil.rmtree(folder)
        print(json.dumps({"files": args.files, "bytes": total, "rounds": args.rounds, "s3": args.s3,
                          "aws": aws_version(aws),
                          "median_seconds": {k: round(statistics.median(v), 3)
                                                       for k, v in figures.items()}}, indent=2))
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
