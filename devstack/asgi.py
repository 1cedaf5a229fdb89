"""The Chalice app as an ASGI application, for granian to serve off Lambda
(docs/DECISIONS.md#production-server).

The same request path as devstack/wsgi.py (Chalice's local gateway, bodies never base64-encoded,
the client's address as sourceIp, 405/408/413 answered here), with granian's HTTP/1 server in
front. ASGI, not granian's WSGI interface, because only ASGI hands over what the app needs
exactly as the client sent it:

- the request target still percent-encoded (`raw_path`): granian's WSGI PATH_INFO is decoded
  and it has no RAW_URI, so `/a%2Fb` would reach the app as `/a/b`, which percel must refuse
  (chalicelib/serving/request.py);
- the request's own headers (`headers`): granian's WSGI environ starts from a copy of the
  server's os.environ, so a variable such as HTTP_PROXY would look like a request header;
- the body as chunks (`receive`), so that a body that stalls for REQUEST_READ_TIMEOUT is a 408
  after which the connection is closed; granian's WSGI `wsgi.input.read` has no deadline.

The app itself is synchronous (Redis, the bucket, git ls-remote): each request runs on one of
`threads` threads per process, never on the event loop, so a slow call holds one thread, not
every connection of the process. One exception: a site's GET or HEAD that this process can
answer from memory alone (its alias, manifest and file cached, its deletion checked lately) is
answered on the loop by `from_memory`, with the answer the app would give, and without Chalice's
gateway (docs/DECISIONS.md#production-server).
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from chalice.app import Chalice, Response
from chalice.config import Config
from chalice.local import LocalGatewayException

from devstack import wsgi
from devstack.wsgi import (
    ROUTED_METHODS,
    DirectGateway,
    Refused,
    announced_length,
    refusal,
    response_headers,
    too_large,
)

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
# (method, raw path, raw query, headers) -> the app's answer from memory, or None
FromMemory = Callable[[str, str, str, dict], Response | None]
log = logging.getLogger("percel.server")


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names lowercased; a repeated field joined with ", " (RFC 9110 §5.3), as a WSGI
    server folds them into one environ key."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def request_path(scope: dict) -> str:
    """The path as the client sent it, still percent-encoded."""
    return (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1") or "/"


def request_target(scope: dict) -> str:
    path, query = request_path(scope), scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def read_body(headers: dict[str, str], receive: Receive, limit: int,
                    timeout: float) -> bytes | None:
    """The request body, at most `limit` bytes: 413 before reading when Content-Length
    announces more, or as soon as a chunked body passes it; 408 when no bytes come for
    `timeout` s."""
    raw_length = announced_length(headers.get("content-length", ""), limit)
    if not raw_length and "chunked" not in headers.get("transfer-encoding", "").lower():
        return None
    chunks, size = [], 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except asyncio.TimeoutError:   # RFC 9110 §15.5.9: the server closes after a 408
            raise Refused(408, "request_timeout", "the request body did not arrive in time",
                          {"Connection": "close"}) from None
        if message["type"] == "http.disconnect":
            raise Refused(400, "bad_request", "the client went away before its body arrived")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) or None


class AppThreads:
    """`count` threads that run calls handed over by the event loop and hand each result back.

    What loop.run_in_executor does, without concurrent.futures' Future and its chaining to an
    asyncio Future: measured in process at 16 calls in flight, 13 us of CPU per call here
    against 93 us through run_in_executor (bench/README.md, "production-server").
    """

    def __init__(self, count: int, name: str = "percel-app"):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
                        for index in range(count)]
        for thread in self.threads:
            thread.start()

    def run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.jobs.put((loop, future, function, args))
        return future

    def shutdown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            loop, future, function, args = job
            try:
                result = function(*args)
            except BaseException as error:  # noqa: BLE001 (handed to the awaiting request)
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ChaliceASGI:
    """An ASGI application answering with a Chalice app, as API Gateway would, minus base64."""

    def __init__(self, app: Chalice, config: Config, max_body_bytes: int, read_timeout: float,
                 threads: int, memory: FromMemory | None = None):
        self.gateway = DirectGateway(wsgi.thread_safe(app), config)
        self.max_body_bytes, self.read_timeout = max_body_bytes, read_timeout
        self.threads = AppThreads(threads)
        self.memory = memory

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":   # websockets: no route takes them
            return
        method = scope["method"].upper()
        request = request_headers(scope["headers"])
        response = self.from_memory(method, scope, request)
        if response is None:
            response = await self.respond(method, scope, request, receive)
        body = response.get("body") or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = [(name.encode("latin-1"), value.encode("latin-1"))
                   for name, value in response_headers(response, method, body)]
        await send({"type": "http.response.start", "status": response["statusCode"],
                    "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def from_memory(self, method: str, scope: dict, headers: dict) -> dict | None:
        """The app's answer without a thread or the gateway, when `memory` has one: never for a
        request with a body, or a path that no catch-all route takes (the gateway refuses
        those before the app runs)."""
        if self.memory is None or "content-length" in headers or "transfer-encoding" in headers:
            return None
        path = request_path(scope)
        if not self.gateway.routes.catches(path):
            return None
        try:
            response = self.memory(method, path, scope.get("query_string", b"").decode("latin-1"),
                                   headers)
        except Exception:   # noqa: BLE001 (the full path answers, with Chalice's error handling)
            log.debug("answering from memory failed; the app answers", exc_info=True)
            return None
        return None if response is None else response.to_dict()

    async def respond(self, method: str, scope: dict, headers: dict, receive: Receive) -> dict:
        try:
            if method not in ROUTED_METHODS:   # RFC 9110 §15.5.6, as devstack/chalice_local.py
                raise Refused(405, "method_not_allowed", "method not allowed",
                              {"Allow": ", ".join(ROUTED_METHODS)})
            body = await read_body(headers, receive, self.max_body_bytes, self.read_timeout)
            client = scope.get("client") or ("", 0)
            return await self.threads.run(self.handle, method, request_target(scope), headers,
                                          body, client[0])
        except Refused as refused:
            return refusal(refused)

    def handle(self, method: str, target: str, headers: dict, body: bytes | None,
               source_ip: str) -> dict:
        try:
            return self.gateway.handle(method, target, headers, body, source_ip)
        except LocalGatewayException as error:
            return {"statusCode": error.CODE, "headers": dict(error.headers), "body": error.body}

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.threads.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def make_application() -> ChaliceASGI:
    import os

    import app as module
    from chalicelib.settings import load_settings
    settings = load_settings()
    # bench/trivial_chalice's app, served by the same launcher, has no sites.
    memory = getattr(module, "site_from_memory", None)
    return ChaliceASGI(module.app, wsgi.chalice_config(), settings.max_request_body_bytes,
                       settings.request_read_timeout, int(os.environ.get("WEB_THREADS") or 4),
                       memory)
