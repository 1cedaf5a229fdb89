"""`chalice local` with the Nagle fix and a single, truthful Content-Length.

chalice local stalls ~40 ms per keep-alive request because small writes wait
for an ACK (Nagle's algorithm): 22 req/s at one connection, ~2,000 req/s with
TCP_NODELAY (docs/DECISIONS.md#nagle). BaseHTTPRequestHandler sets TCP_NODELAY
when `disable_nagle_algorithm` is true.

chalice local also writes its own Content-Length (len(body)) before the app's
headers, so a response that sets one carries two: strict parsers (wrk, Node's
llhttp) drop it, and on HEAD the two disagree (0 vs the GET's length, which is
the only value RFC 9110 §8.6 allows). Send one: the app's on HEAD, len(body) otherwise.
"""
from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

local.ChaliceRequestHandler.disable_nagle_algorithm = True


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


local.ChaliceRequestHandler._send_http_response_with_body = _send_http_response_with_body  # type: ignore[method-assign]


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
    sys.argv = ["chalice", "local", "--no-autoreload", *sys.argv[1:]]
    sys.exit(main())
