"""The benchmark's baseline: a Chalice view that returns bytes from memory, nothing else.

bench/serve_bench.py serves it with the same launcher as percel (devstack.chalice_local,
with the Nagle fix) and the same `binary_types`, so the difference between the two is
percel's own work: Host dispatch, routing, the manifest and blob caches, header building.
BENCH_FILES names the directory whose files are loaded at import.
"""
import mimetypes
import os
from pathlib import Path

from chalice import Chalice, Response

app = Chalice(app_name="trivial-bench")
app.api.binary_types = ["*/*"]   # as percel's app.py: every body is bytes

ROOT = Path(os.environ["BENCH_FILES"])
FILES = {path.relative_to(ROOT).as_posix(): path.read_bytes()
         for path in ROOT.rglob("*") if path.is_file()}


def send(name: str) -> Response:
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(body=FILES[name], status_code=200, headers={"Content-Type": media})


@app.route("/", methods=["GET"])
def index():
    return send("index.html")


@app.route("/assets/{name}", methods=["GET"])
def asset(name):
    return send("assets/" + name)
