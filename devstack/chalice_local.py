"""`chalice local` with the Nagle fix, a single truthful Content-Length, and bounded reads.

chalice local stalls ~40 ms per keep-alive request because small writes wait
for an ACK (Nagle's algorithm): 22 req/s at one connection, ~2,000 req/s with
TCP_NODELAY (docs/DECISIONS.md#nagle). BaseHTTPRequestHandler sets TCP_NODELAY
when `disable_nagle_algorithm` is true.

chalice local also writes its own Content-Length (len(body)) before the app's
headers, so a response that sets one carries two: strict parsers (wrk, Node's
llhttp) drop it, and on HEAD the two disagree (0 vs the GET's length, which is
the only value RFC 9110 §8.6 allows). Send one: the app's on HEAD, len(body) otherwise.

chalice local reads any announced body into memory and waits forever for it. Here a
socket timeout (StreamRequestHandler.timeout) ends a request that stalls, and a body over
MAX_REQUEST_BODY_BYTES is refused with 413 before a byte of it is read.
"""
from __future__ import annotations

import contextlib
import json
import re
import sys

from chalice import local
from chalice.cli import main

from chalicelib.settings import load_settings

Handler = local.ChaliceRequestHandler
_chalice_parse_payload = Handler._parse_payload
_chalice_generic_handle = Handler._generic_handle


class Refused(Exception):
    """A request the server answers itself, without the app, and then closes."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def body_length(headers, limit: int) -> int:
    """The body's announced length, or Refused: chalice local reads Content-Length only."""
    if "transfer-encoding" in headers:   # RFC 9112 §6.3: a server may require a length (411)
        raise Refused(411, "length_required", "send the body with a Content-Length")
    raw = headers.get("content-length", "0").strip()
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        raise Refused(400, "bad_request", "Content-Length is not a number")
    if int(raw) > limit:
        raise Refused(413, "body_too_large",
                      f"the request body is larger than {limit} bytes (MAX_REQUEST_BODY_BYTES)")
    return int(raw)


def _parse_payload(self):
    body_length(self.headers, self.max_body_bytes)
    try:
        return _chalice_parse_payload(self)
    except TimeoutError:   # RFC 9110 §15.5.9: the server closes the connection after a 408
        raise Refused(408, "request_timeout", "the request body did not arrive in time") from None


def _generic_handle(self) -> None:
    try:
        _chalice_generic_handle(self)
    except Refused as refused:
        self.close_connection = True   # the unread body must not be parsed as the next request
        body = {"error": {"code": refused.code, "message": refused.message}}
        with contextlib.suppress(OSError):   # the client may be gone already
            self._send_http_response_with_body(refused.status, {"Connection": "close"},
                                               json.dumps(body).encode())


def _send_http_response_with_body(self, code, headers, body) -> None:
    """chalice.local's method of the same name, with one Content-Length."""
    if not isinstance(body, bytes):
        body = body.encode("utf-8")
    names = [name for name in headers if name.lower() == "content-length"]
    declared = [str(headers.pop(name)) for name in names]
    self.send_response(code)
    length = declared[0] if declared and self.command == "HEAD" else str(len(body))
    self.send_header("Content-Length", length)
    self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
    self._send_headers(headers)
    self.wfile.write(body)


def bound(settings=None) -> None:
    """Patch chalice local's handler: TCP_NODELAY, one Content-Length, read timeout, body cap."""
    settings = settings or load_settings()
    Handler.disable_nagle_algorithm = True
    Handler.timeout = settings.request_read_timeout
    Handler.max_body_bytes = settings.max_request_body_bytes
    Handler._send_http_response_with_body = _send_http_response_with_body  # type: ignore[method-assign]
    Handler._parse_payload = _parse_payload  # type: ignore[method-assign]
    Handler._generic_handle = _generic_handle  # type: ignore[method-assign]
    for method in ("GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS"):
        setattr(Handler, f"do_{method}", _generic_handle)



def _refuse_method(self) -> None:
    """405 with Allow (RFC 9110 §15.5.6) for the methods no route takes. http.server answers
    them 501 with an HTML page; RFC 9110 §15.6.2 allows 501 for a method the server does not
    recognise, but a 5xx reads as a server fault to clients, monitors and schemathesis (which
    sent TRACE and QUERY), and no method is recognised here but the routed ones."""
    body = b'{"error": {"code": "method_not_allowed", "message": "method not allowed"}}'
    self.send_response(405)
    self.send_header("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)


def _any_other_method(self, name: str):
    """http.server looks a request's method up as `do_<METHOD>`; the unrouted ones land here."""
    if name.startswith("do_"):
        return lambda: _refuse_method(self)
    raise AttributeError(name)


local.ChaliceRequestHandler.__getattr__ = _any_other_method  # type: ignore[attr-defined]

if __name__ == "__main__":
    bound()
    sys.argv = ["chalice", "local", "--no-autoreload", *sys.argv[1:]]
    sys.exit(main())
