"""The Chalice app as a WSGI application, for gunicorn to serve off Lambda (docs/DECISIONS.md#production-server).

Requests go through Chalice's own local gateway (chalice.local.LocalGateway: route matching,
authorizers, CORS preflight), as under `chalice local`, with four differences:

- bodies are never base64-encoded: the app's Response becomes bytes as they are, where
  Chalice's Lambda handler would encode every binary_types body (app.api.binary_types is */*)
  and chalice local would decode it again, ~1.33x the bytes and two passes over each;
- sourceIp is the client's address (REMOTE_ADDR), not 127.0.0.1, for the auth-failure limiter;
- a body over MAX_REQUEST_BODY_BYTES is a 413 before a byte is read, a body that stalls for
  REQUEST_READ_TIMEOUT a 408 (devstack/gunicorn_worker.py), and a method no route takes a 405,
  as under devstack/chalice_local.py;
- the path reaches the app as the client sent it (gunicorn's RAW_URI), still percent-encoded,
  in the event's requestContext.path where chalicelib/serving/gateway.py raw_path reads it.

On Lambda nothing here runs: app.py's handler is Chalice.__call__, which encodes as API
Gateway needs.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from chalice.app import Chalice, RestAPIEventHandler
from chalice.compat import parse_qs, urlparse
from chalice.config import Config
from chalice.local import (
    LambdaContext,
    LambdaEventConverter,
    LocalChalice,
    LocalGateway,
    LocalGatewayException,
    MatchResult,
    RouteMatcher,
)

ROUTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PROJECT = Path(__file__).resolve().parent.parent
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Refused(Exception):
    """A request answered here, without the app."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class UnencodedHandler(RestAPIEventHandler):
    """Chalice's REST handler, answering with the Response's body unencoded.

    RestAPIEventHandler.__call__ ends in `response.to_dict(self.api.binary_types)`, which
    base64-encodes a binary_types body for API Gateway; to_dict() without binary_types only
    serialises (JSON for a non-string body), everything else is the same code path.
    """

    def __call__(self, event: Any, context: Any) -> dict:
        def wrapped_event(request: Any) -> Any:
            return self._main_rest_api_handler(event, context)

        final_handler = self._build_middleware_handlers(
            [self._global_error_handler] + list(self._middleware_handlers),
            original_handler=wrapped_event)
        response = final_handler(self.current_request)
        return response.to_dict()


class UnencodedApp:
    """The app as LocalGateway sees it: the same routes and authorizers, called as
    Chalice.__call__ does, through UnencodedHandler."""

    def __init__(self, app: Chalice):
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __call__(self, event: dict, context: Any) -> dict:
        app = self._app
        app.lambda_context = context
        handler = UnencodedHandler(app.routes, app.api, app.log, app.debug,
                                   middleware_handlers=app._get_middleware_handlers("http"))
        app.current_request = handler.create_request_object(event, context)
        return handler(event, context)


class SplitRouteMatcher(RouteMatcher):
    """chalice.local's RouteMatcher with each route split once, not on every request.

    RouteMatcher.match_route splits all of the app's routes on every call (54 routes here: about
    10 us for `/` and 36 us for a two-segment path, in process under load). This tries the same
    routes, of the path's length only (the others can never match), in the same sorted order, and
    fills `captured` the same way, including what a route that failed part-way captured
    (tests/test_wsgi.py compares the two).
    """

    def __init__(self, route_urls: list[str]):
        super().__init__(route_urls)
        self._by_length: dict[int, list[tuple[str, list[tuple[bool, str]]]]] = {}
        for route_url in self.route_urls:
            parts = [(part.startswith("{") and part.endswith("}"), part)
                     for part in route_url.split("/")]
            parts = [(is_param, part[1:-1] if is_param else part) for is_param, part in parts]
            self._by_length.setdefault(len(parts), []).append((route_url, parts))
        # Path lengths at which a route of parameters only takes every path.
        self._always = {length for length, routes in self._by_length.items()
                        if any(all(is_param for is_param, _ in parts[1:]) for _, parts in routes)}

    @staticmethod
    def _split(url: str) -> tuple[list[str], str]:
        parsed_url = urlparse(url)
        path = parsed_url.path
        if path != "/" and path.endswith("/"):   # as API Gateway and RouteMatcher do
            path = path[:-1]
        return path.split("/"), parsed_url.query

    def catches(self, url: str) -> bool:
        """True when a route of parameters only (a catch-all) has the path's length, so that
        match_route finds a route for `url` without trying; false says nothing."""
        return len(self._split(url)[0]) in self._always

    def match_route(self, url: str) -> MatchResult:
        parts, query = self._split(url)
        query_params = parse_qs(query, keep_blank_values=True)
        captured: dict[str, str] = {}
        for route_url, route_parts in self._by_length.get(len(parts), ()):
            for part, (is_param, name) in zip(parts, route_parts, strict=True):
                if is_param:
                    captured[name] = part
                    continue
                if part != name:
                    break
            else:
                return MatchResult(route_url, captured, query_params)
        raise ValueError("No matching route found for: %s" % url)


class DirectGateway(LocalGateway):
    """LocalGateway over UnencodedApp, with the client's address as the event's sourceIp."""

    def __init__(self, app: Chalice, config: Config):
        super().__init__(UnencodedApp(app), config)  # type: ignore[arg-type]
        self.routes = SplitRouteMatcher(list(app.routes))
        self.event_converter = LambdaEventConverter(self.routes, app.api.binary_types)
        self._client = threading.local()
        # LocalGateway reads these from the config on every request (~10% of the adapter's time
        # in process); they do not change while the server runs.
        timeout = config.lambda_timeout or self.MAX_LAMBDA_EXECUTION_TIME
        self._context_args = (config.function_name, config.lambda_memory_size, timeout * 1000)

    def _generate_lambda_context(self) -> LambdaContext:
        return LambdaContext(*self._context_args)

    def handle(self, method: str, path: str, headers: dict, body: bytes | None,
               source_ip: str) -> dict:
        self._client.address = source_ip
        return self.handle_request(method, path, headers, body)

    def _generate_lambda_event(self, method: str, path: str, headers: dict,
                               body: bytes | None) -> dict:
        # The converter base64-encodes a body whose Content-Type is a binary type; the body is
        # set here instead, as bytes, which Chalice's Request.raw_body takes as they are.
        event = super()._generate_lambda_event(method, path, headers, None)
        event["body"], event["isBase64Encoded"] = body, False
        event["requestContext"]["identity"]["sourceIp"] = self._client.address
        return event


def thread_safe(app: Chalice) -> Chalice:
    """app.current_request per thread (gthread workers serve requests concurrently), the
    way `chalice local` makes it (chalice.local.create_local_server)."""
    if not isinstance(app, LocalChalice):
        app.__class__ = type("ThreadLocal" + type(app).__name__, (LocalChalice, type(app)), {})
    return app


def request_target(environ: dict) -> str:
    """The path and query as the client sent them, still percent-encoded."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:   # origin-form ("/a//b?q") as is; absolute-form ("http://host/a") from its path
        path = raw.split("?", 1)[0] if raw.startswith("/") else urlsplit(raw).path or "/"
    else:   # a server without the raw target: re-encode what it decoded (PEP 3333: latin-1)
        path = quote(environ.get("PATH_INFO", "").encode("latin-1")) or "/"
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def request_headers(environ: dict) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def read_body(environ: dict, limit: int) -> bytes | None:
    """The request body, at most `limit` bytes (413 before reading when it announces more,
    408 when the server's socket times out)."""
    raw_length = announced_length(environ.get("CONTENT_LENGTH") or "", limit)
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not raw_length and not chunked:
        return None
    try:   # each read waits at most REQUEST_READ_TIMEOUT: devstack/gunicorn_worker.py
        body = environ["wsgi.input"].read(int(raw_length) if raw_length else limit + 1)
    except TimeoutError:   # RFC 9110 §15.5.9: the server closes the connection after a 408
        raise Refused(408, "request_timeout", "the request body did not arrive in time") from None
    if len(body) > limit:
        raise too_large(limit)
    return body or None


def announced_length(header: str, limit: int) -> str:
    """The Content-Length header, stripped ("" when absent): 400 when it is no number (gunicorn
    and granian refuse these themselves, before the app), 413 when it announces more than
    `limit` bytes, before a byte of the body is read."""
    raw_length = header.strip()
    if raw_length and not raw_length.isdigit():
        raise Refused(400, "bad_request", "Content-Length is not a number")
    if raw_length and int(raw_length) > limit:
        raise too_large(limit)
    return raw_length


def too_large(limit: int) -> Refused:
    return Refused(413, "body_too_large",
                   f"the request body is larger than {limit} bytes (MAX_REQUEST_BODY_BYTES)")


def refusal(refused: Refused) -> dict:
    body = json.dumps({"error": {"code": refused.code, "message": refused.message}}).encode()
    return {"statusCode": refused.status, "body": body,
            "headers": {"Content-Type": "application/json", **refused.headers}}


def response_headers(response: dict, method: str, body: bytes) -> list[tuple[str, str]]:
    """Chalice's single and multi-value headers, Content-Type defaulting to JSON as API Gateway
    does, and one Content-Length: the app's on HEAD (RFC 9110 §8.6), len(body) otherwise."""
    headers: list[tuple[str, str]] = []
    declared = None
    merged = {**(response.get("headers") or {}), **(response.get("multiValueHeaders") or {})}
    for name, value in merged.items():
        if name.lower() == "content-length":
            declared = str(value)
            continue
        values = value if isinstance(value, list) else [value]
        headers.extend((name, str(one)) for one in values)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    status = response["statusCode"]
    if method == "HEAD" or status == 304:
        if declared is not None:
            headers.append(("Content-Length", declared))
    elif status != 204 and status >= 200:
        headers.append(("Content-Length", str(len(body))))
    return headers


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


class ChaliceWSGI:
    """A WSGI application answering with a Chalice app, as API Gateway would, minus base64."""

    def __init__(self, app: Chalice, config: Config, max_body_bytes: int):
        self.gateway = DirectGateway(thread_safe(app), config)
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        response = self.respond(method, environ)
        body = response.get("body") or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        start_response(status_line(response["statusCode"]), response_headers(response, method, body))
        return [] if method == "HEAD" else [body]

    def respond(self, method: str, environ: dict) -> dict:
        try:
            if method not in ROUTED_METHODS:   # RFC 9110 §15.5.6, as devstack/chalice_local.py
                raise Refused(405, "method_not_allowed", "method not allowed",
                              {"Allow": ", ".join(ROUTED_METHODS)})
            body = read_body(environ, self.max_body_bytes)
            return self.gateway.handle(method, request_target(environ), request_headers(environ),
                                       body, environ.get("REMOTE_ADDR") or "")
        except Refused as refused:
            return refusal(refused)
        except LocalGatewayException as error:
            return {"statusCode": error.CODE, "headers": dict(error.headers), "body": error.body}


def chalice_config(stage: str = "local") -> Config:
    """The stage's settings from .chalice/config.json, as `chalice local --stage` reads them."""
    on_disk = json.loads((PROJECT / ".chalice" / "config.json").read_text())
    return Config.create(chalice_stage=stage, app_name=on_disk["app_name"],
                         config_from_disk=on_disk, project_dir=str(PROJECT))


def make_application() -> ChaliceWSGI:
    from app import app
    from chalicelib.settings import load_settings
    return ChaliceWSGI(app, chalice_config(), load_settings().max_request_body_bytes)
