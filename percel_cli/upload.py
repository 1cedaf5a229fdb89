"""A folder to an upload: announce every file's hash, then PUT only what the server lacks: each
large file alone, the small ones in the packs the server lays out (docs/DECISIONS.md#packs)."""
from __future__ import annotations

import http.client
import io
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO, Callable, NamedTuple, TextIO

from percel_cli.client import ApiError, Client
from percel_cli.files import LocalFile
from percel_cli.output import count, human_bytes

# Parallel PUTs: enough to hide each request's round trip, few enough not to swamp one endpoint.
PUT_WORKERS = 12
# A PUT is tried this many times in all, waiting BACKOFF_SECONDS * attempt between tries.
PUT_ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
PUT_TIMEOUT_SECONDS = 120.0
# The progress line is redrawn at most this often.
PROGRESS_EVERY_SECONDS = 0.2


class UploadResult(NamedTuple):
    id: str
    files: int
    bytes: int
    sent_files: int
    sent_bytes: int
    seconds: float
    # What POST /api/deployments would have answered, when the upload was deployed at once.
    deployment: dict[str, Any] | None = None

    def summary(self) -> str:
        if not self.sent_files:
            return f"nothing to upload: 0 bytes (all {count(self.files, 'file')} already there)"
        return (f"uploaded {count(self.sent_files, 'file')}, {human_bytes(self.sent_bytes)} in "
                f"{self.seconds:.1f} s ({self.files - self.sent_files:,} already there)")


def upload(client: Client, files: list[LocalFile], progress: TextIO | None,
           deploy: dict[str, Any] | None = None) -> UploadResult:
    """POST the manifest, PUT what is missing; `progress` gets a live line when it is a terminal.
    With `deploy` (build options), the API deploys the upload in the same request when nothing
    is missing: the result's `deployment`."""
    started = time.monotonic()
    body: dict[str, Any] = {"files": [f.manifest_entry() for f in files], "packs": True}
    if deploy is not None:
        body["deploy"] = deploy
    answer = client.post("/api/uploads", body)
    missing = answer.get("missing") or []
    packs = answer.get("packs") or []
    asked = [m.get("sha256") for m in missing] + [h for pack in packs for h in pack.get("files") or []]
    wanted = set(asked)
    by_hash = {f.sha256: Path(f.source) for f in files if f.sha256 in wanted}
    unknown = [sha256 for sha256 in asked if sha256 not in by_hash]
    if unknown:
        raise ApiError(f"the API asked for a blob this folder does not have: {unknown[0]}")
    sizes = {f.sha256: f.size for f in files}
    meter = Meter(len(asked), sum(sizes[h] for h in asked), progress)
    put_all(missing, packs, by_hash, meter)
    meter.finish()
    return UploadResult(str(answer["id"]), len(files), sum(f.size for f in files), len(asked),
                        meter.bytes_done, time.monotonic() - started, answer.get("deployment"))


def put_all(missing: list[dict[str, Any]], packs: list[dict[str, Any]], by_hash: dict[str, Path],
            meter: Meter) -> None:
    from concurrent.futures import ThreadPoolExecutor  # only with something to send
    pool = ThreadPoolExecutor(PUT_WORKERS)
    connections = Connections()
    # The packs first: each is the most bytes of one request.
    work: list[Callable[[], None]] = [
        *(lambda pack=pack: put_pack(pack, by_hash, meter, connections) for pack in packs),
        *(lambda blob=blob: put_blob(blob, by_hash[blob["sha256"]], meter, connections)
          for blob in missing)]
    try:
        for _ in pool.map(lambda job: job(), work):
            pass
    except BaseException:
        # Ctrl-C or a failed PUT: the queued PUTs are dropped rather than waited for.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    connections.close()


class Connections:
    """One kept-alive connection to the bucket per uploading thread: a PUT on an open connection
    skips the TCP (and TLS) handshake that a new connection costs each request. Through a
    proxy (the environment's HTTP(S)_PROXY), urllib sends each request instead."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.opened: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def send(self, url: str, body: BinaryIO, headers: dict[str, str]) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or _proxied(parts):
            request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
            with urllib.request.urlopen(request, timeout=PUT_TIMEOUT_SECONDS) as response:
                response.read()
            return
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            connection = self._connection(parts, fresh)
            try:
                connection.request("PUT", target, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if fresh:
                    raise
                body.seek(0)  # the server closed a kept-alive connection: once more on a new one
                continue
            if response.status >= 300:
                raise urllib.error.HTTPError(url, response.status, response.reason,
                                             response.headers, io.BytesIO(answer))
            return

    def _connection(self, parts: urllib.parse.SplitResult, fresh: bool) -> http.client.HTTPConnection:
        key = (parts.scheme, parts.netloc)
        held = getattr(self.local, "held", {})
        self.local.held = held
        if fresh or key not in held:
            if key in held:
                held[key].close()
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            held[key] = kind(parts.netloc, timeout=PUT_TIMEOUT_SECONDS)
            with self.lock:
                self.opened.append(held[key])
        return held[key]

    def close(self) -> None:
        with self.lock:
            for connection in self.opened:
                connection.close()


def _proxied(parts: urllib.parse.SplitResult) -> bool:
    proxies = urllib.request.getproxies()
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


def put_blob(blob: dict[str, Any], source: Path, meter: Meter, connections: Connections | None = None) -> None:
    """PUT one blob to its presigned URL with exactly the headers the API gave: no token (the URL is
    the credential, and a token sent to the bucket would leak it there). The file is streamed,
    so a large one never sits in memory whole."""
    size = source.stat().st_size
    _put(blob, lambda: open(source, "rb"), size, f"{source.name} ({blob['sha256'][:12]})",
         connections or Connections())
    meter.add(size)


def put_pack(pack: dict[str, Any], by_hash: dict[str, Path], meter: Meter,
             connections: Connections | None = None) -> None:
    """PUT one pack: the small files the API listed, one after the other in its order (each at
    most a few hundred KB, a pack at most a few MB: built in memory)."""
    data = b"".join(by_hash[sha256].read_bytes() for sha256 in pack["files"])
    _put(pack, lambda: io.BytesIO(data), len(data), f"a pack of {len(pack['files'])} files",
         connections or Connections())
    meter.add(len(data), len(pack["files"]))


def _put(target: dict[str, Any], open_body: Callable[[], BinaryIO], size: int, what: str,
         connections: Connections) -> None:
    for attempt in range(1, PUT_ATTEMPTS + 1):
        try:
            with open_body() as body:
                headers = {"Content-Length": str(size),
                           **{name: str(value) for name, value in (target.get("headers") or {}).items()}}
                connections.send(target["url"], body, headers)
            return
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if attempt == PUT_ATTEMPTS or not _worth_retrying(exc):
                raise ApiError(f"could not upload {what}: {_reason(exc)}") from None
            time.sleep(BACKOFF_SECONDS * attempt)


def _worth_retrying(exc: Exception) -> bool:
    """Network errors and 5xx/429 may pass; a 4xx (a bad signature, an expired URL) will not."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in (408, 429)
    return True


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(getattr(exc, "reason", exc))


class Meter:
    """Counts what was sent and redraws one progress line on a terminal."""

    def __init__(self, files: int, total: int, stream: TextIO | None):
        self.files, self.total = files, total
        self.files_done = self.bytes_done = 0
        self.started = self.drawn = time.monotonic()
        self.lock = threading.Lock()
        self.stream = stream if stream is not None and stream.isatty() else None

    def add(self, size: int, files: int = 1) -> None:
        with self.lock:
            self.files_done += files
            self.bytes_done += size
            now = time.monotonic()
            if self.stream and now - self.drawn >= PROGRESS_EVERY_SECONDS:
                self.drawn = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        assert self.stream is not None
        rate = self.bytes_done / max(now - self.started, 1e-6)
        self.stream.write(f"\r\x1b[Kuploading {self.files_done:,}/{self.files:,} files, "
                          f"{human_bytes(self.bytes_done)} of {human_bytes(self.total)} "
                          f"({human_bytes(rate)}/s)")
        self.stream.flush()

    def finish(self) -> None:
        if self.stream and self.files:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
