"""A counting reverse proxy on loopback, put in front of the S3 endpoint.

Tests that promise "no upload" or "no bucket call" read what reached the endpoint (the
method and path of every request) instead of trusting the code under test to count its
own calls. One thread per connection; the record of calls is bounded.
"""
from __future__ import annotations

import http.client
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones this proxy recomputes.
NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                 "trailer", "upgrade", "expect", "content-length"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str     # the request target, query included
    at: float     # time.monotonic() when it arrived

    @property
    def key(self) -> str:
        """The object key of a path-style request (`/<bucket>/<key>?...` -> `<key>`)."""
        parts = unquote(self.path.split("?", 1)[0]).lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 else ""


class CountingProxy:
    """Forwards every request to `upstream` and remembers it (the newest `keep` of them)."""

    def __init__(self, upstream: str, keep: int = 100_000) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port or 80)
        self._calls: deque[Call] = deque(maxlen=keep)
        self._total = 0
        self._lock = threading.Lock()
        self._hold: tuple[str, str, int] | None = None   # (method, key prefix, requests let through)
        self._held = 0
        self._released = threading.Event()
        self.cut = False   # True: every request's connection is dropped unanswered
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="counting-proxy")

    def __enter__(self) -> "CountingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, method: str, path: str) -> None:
        call = Call(method, path, time.monotonic())
        with self._lock:
            self._calls.append(call)
            self._total += 1
        self._gate(call)

    def hold_after(self, passed: int, method: str, prefix: str) -> None:
        """Let `passed` more `method` requests for keys under `prefix` through, then keep the
        next ones waiting here until release(): a test can stop the bucket mid-upload at a
        known point instead of after a guessed delay."""
        with self._lock:
            self._hold, self._held = (method, prefix, passed), 0
            self._released.clear()

    def held(self) -> int:
        """How many requests are waiting at the hold."""
        with self._lock:
            return self._held

    def release(self) -> None:
        """Forward the held requests (to whatever the upstream is now) and hold no more."""
        with self._lock:
            self._hold = None
        self._released.set()

    def _gate(self, call: "Call") -> None:
        with self._lock:
            if self._hold is None or call.method != self._hold[0] or not call.key.startswith(self._hold[1]):
                return
            method, prefix, passed = self._hold
            if passed > 0:
                self._hold = (method, prefix, passed - 1)
                return
            self._held += 1
        self._released.wait(timeout=300)

    def mark(self) -> int:
        """A point in the stream of calls, for since()."""
        with self._lock:
            return self._total

    def since(self, mark: int) -> list[Call]:
        """Every call that arrived after mark() returned `mark`."""
        with self._lock:
            count = self._total - mark
            if count > len(self._calls):
                raise RuntimeError(f"{count} calls since the mark, only {len(self._calls)} kept")
            return list(self._calls)[len(self._calls) - count:]

    def wait_quiet(self, seconds: float = 1.0, timeout: float = 60.0) -> None:
        """Return once no request has arrived for `seconds` (uploads still in flight end first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                last = self._calls[-1].at if self._calls else 0.0
            if time.monotonic() - last >= seconds:
                return
            time.sleep(0.1)
        raise AssertionError(f"the S3 endpoint never went quiet for {seconds:g} s")


def puts(calls: list[Call], prefix: str) -> list[Call]:
    return [c for c in calls if c.method == "PUT" and c.key.startswith(prefix)]


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

        def _forward(self) -> None:
            proxy.record(self.command, self.path)
            body = self._read_body()
            if proxy.cut:  # the endpoint unreachable, as a dead server's refused connection
                self.close_connection = True
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in NOT_FORWARDED:
                        self.send_header(name, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                upstream.close()

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        def log_message(self, *args) -> None:  # the calls are the record; no stderr noise
            pass

    return Forward
