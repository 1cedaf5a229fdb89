"""What keeping the embedded bucket costs at start-up (devstack/s3_server.py).

Run: `.venv/bin/python bench/embedded_bucket.py [--files 1000] [--rounds 3]`
Results go to bench/README.md.

One embedded S3 server (the one `make run` starts) on a fresh state folder: the bucket made,
then `--files` distinct files of 2-6 KiB published as a build publishes them (Store.upload_blobs:
a HEAD, then a PUT, per blob) plus their deployment manifest, then every file read once (reads
are not recorded). The server is then killed (SIGKILL) and started again on the same folder,
`--rounds` times; each start is timed from the spawn to its first answer, the moment the stack's
other processes could use it, and checked to hold every file. An empty state folder's start is
the baseline. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402

from chalicelib import keys  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from chalicelib.storage.store import Store, make_s3_client  # noqa: E402
from devstack import services  # noqa: E402


def timed_start(state: Path, port: int | None = None) -> tuple[services.Service, float]:
    began = time.monotonic()
    s3 = services.start_s3(state, port)
    return s3, time.monotonic() - began


def store_for(url: str) -> Store:
    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench")
    return Store(make_s3_client(Settings(s3_endpoint_url=url), session), "percel")


def publish(store: Store, count: int) -> dict[str, bytes]:
    files = {}
    for index in range(count):
        body = (f"file {index} ".encode() * 700)[: 2048 + (index * 37) % 4096]
        files[hashlib.sha256(body).hexdigest()] = body
    store.ensure_bucket()
    store.upload_blobs(dict(files))
    store.put_json(keys.deployment_manifest("benchbenchbenchb"),
                   {"files": {f"f{i}.txt": {"sha256": h} for i, h in enumerate(files)}})
    for sha256 in files:
        store.get_blob(sha256)
    return files


def replay_seconds(log: Path) -> float:
    found = re.findall(r"in ([0-9.]+) s$", log.read_text(), re.M)
    return float(found[-1]) if found else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(services.LOCAL_AWS)
    with tempfile.TemporaryDirectory(prefix="bench-bucket-") as folder:
        empty, baseline = timed_start(Path(folder) / "empty")
        empty.stop()
        state = Path(folder) / "state"
        s3, _ = timed_start(state)
        port = int(s3.url.rsplit(":", 1)[1])
        began = time.monotonic()
        files = publish(store_for(s3.url), args.files)
        publish_seconds = time.monotonic() - began
        starts, replays = [], []
        for _ in range(args.rounds):
            s3.kill()
            s3, seconds = timed_start(state, port)
            starts.append(seconds)
            replays.append(replay_seconds(s3.log_path))
            store = store_for(s3.url)
            assert store.missing_blobs(files) == [], "a start lost files"
        s3.stop()
        recording = state / "s3" / "recording.jsonl"
        print(json.dumps({
            "files": args.files, "bytes": sum(map(len, files.values())),
            "recording": {"requests": sum(1 for _ in recording.open()),
                          "MB": round(recording.stat().st_size / 1e6, 2)},
            "publish_s": round(publish_seconds, 2),
            "start_empty_s": round(baseline, 2),
            "start_kept_s": {"median": round(statistics.median(starts), 2),
                             "max": round(max(starts), 2)},
            "replay_s_median": round(statistics.median(replays), 2),
            "load_average": os.getloadavg()[0]}, indent=1))


if __name__ == "__main__":
    main()
