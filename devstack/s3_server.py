"""moto's S3 server with its bucket kept on disk: `python -m devstack.s3_server --dir D --port P`.

moto keeps every object in memory. Its recorder (moto_api/_internal/recorder: enabled by
MOTO_ENABLE_RECORDING, written to MOTO_RECORDER_FILEPATH) appends each request it receives to a
JSON-lines file; replaying those requests into a fresh server rebuilds the bucket. This entry
point replays `D/recording.jsonl` into moto's own WSGI app *before* the port opens, then serves
with recording on (docs/DECISIONS.md#embedded-bucket). Replaying through moto's HTTP route
instead (`POST /moto-api/recorder/replay-recording`) pauses recording for every request while it
runs, so a runner's upload arriving meanwhile would be served and never recorded.

Before replaying, the file is compacted: reads (GET, HEAD) change nothing and are dropped, and so
is a line a kill -9 cut short (it was never answered, so no client relied on it); while it
serves, only such requests are recorded (record_writes_only).
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

# Requests that change nothing: kept out of the replay (they are most of a site's traffic).
READS = frozenset({"GET", "HEAD", "OPTIONS"})
RECORDING = "recording.jsonl"


def compact(path: Path) -> list[dict[str, Any]]:
    """The recording's state-changing requests, in order; the file is rewritten with only
    those (atomically: a crash leaves the old file or the new one)."""
    if not path.exists():
        return []
    kept, lines = [], []
    with path.open("rb") as recording:
        for raw in recording:
            try:
                entry = json.loads(raw)
            except ValueError:  # a line cut short by a kill: never answered
                continue
            if entry.get("method") not in READS:
                kept.append(entry)
                lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
    partial = path.with_suffix(".tmp")
    with partial.open("wb") as out:
        out.writelines(lines)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return kept


def replay(app: Any, entries: list[dict[str, Any]]) -> int:
    """Send each recorded request to `app` in-process; returns how many were answered 2xx."""
    import base64
    from urllib.parse import urlsplit

    from werkzeug.test import Client
    client = Client(app)
    answered = 0
    for entry in entries:
        url = urlsplit(entry["url"])
        body = entry.get("body") or b""
        if entry.get("body_encoded"):
            body = base64.b64decode(body)
        headers = {k: v for k, v in (entry.get("headers") or {}).items()
                   if k.lower() not in ("transfer-encoding", "content-length")}
        response = client.open(url.path, method=entry["method"], query_string=url.query,
                               headers=headers, data=body)
        answered += 200 <= response.status_code < 300
        response.close()
    return answered


def record_writes_only(recorder: Any) -> None:
    """Record only requests that change state, one at a time. moto's recorder writes every
    request (reads too, so the file would grow with a site's traffic) from whichever server
    thread serves it, with no lock: two large PUTs at once could interleave their lines."""
    record, lock = recorder._record_request, threading.Lock()

    def record_write(request: Any, body: bytes | None = None) -> None:
        if request.method in READS:
            return
        with lock:
            record(request, body)
    recorder._record_request = record_write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="where the recording is kept")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    recording = args.dir / RECORDING
    # moto's recorder reads these when it is imported (moto_api/__init__.py builds it).
    os.environ["MOTO_ENABLE_RECORDING"] = "1"
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_api import recorder
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import run_simple

    app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    started = time.monotonic()
    entries = compact(recording)
    recorder.stop_recording()  # the replayed requests are in the file already
    answered = replay(app, entries)
    record_writes_only(recorder)
    recorder.start_recording()
    print(f"devstack s3: replayed {len(entries)} recorded requests from {recording} "
          f"({answered} answered 2xx) in {time.monotonic() - started:.2f} s", flush=True)
    run_simple(args.host, args.port, app, threaded=True, request_handler=werkzeug_app.MotoRequestHandler)


if __name__ == "__main__":
    main()
