"""Chalice / API Gateway glue for sites: the raw path and query out of an event, the
missing-Accept default, and the 503 a site answers when Redis or the bucket is down."""
from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode

from chalice.app import Request, Response

from chalicelib.errors import BACKEND_ERRORS
from chalicelib.serving.request import host_name
from chalicelib.serving.site import SiteServer, plain_response, site_label

log = logging.getLogger("percel.site")
RETRY_AFTER_SECONDS = "5"


API = "api"


def host_target(host: str | None, root_domain: str, api_host: str,
                is_custom_domain: Callable[[str], bool] = lambda _: False) -> str | None:
    """Who answers a Host: API, a site's label or custom domain, or None (nobody: 404).

    Without api_host (the local stage) every Host that is neither a site nor a project's
    custom domain gets the API. With it, the API answers there only, checked first so api_host
    may sit under root_domain.
    """
    if api_host and host and host_name(host) == host_name(api_host):
        return API
    label = site_label(host, root_domain)
    if label is not None:
        return label
    if host and is_custom_domain(host_name(host)):
        return host_name(host)
    return None if api_host else API


def serve_site(server: SiteServer, label: str, event: Request) -> Response:
    """A site's response to this event; a 503 (plain, retry soon) when a backend is down.

    Every answer says nosniff: a browser must not run a site's text file as script or
    style because it looks like one (https://fetch.spec.whatwg.org/#x-content-type-options-header).
    """
    try:
        response = server.handle(label, event.method, raw_path(event), raw_query(event),
                                 event.headers)
    except BACKEND_ERRORS as error:
        log.warning("site %s: backend unavailable: %s", label, error)
        response = plain_response(503, "Service Unavailable: try again shortly\n",
                                  {"Retry-After": RETRY_AFTER_SECONDS})
    for name in [name for name in response.headers if name.lower() == "x-content-type-options"]:
        del response.headers[name]
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def raw_path(event: Request) -> str:
    """The path as the client sent it: API Gateway's `path`, or chalice local's context path.

    Both are still percent-encoded, so the resolver decodes exactly once (decoded=False).
    REST APIs (Lambda proxy integration, what Chalice deploys) pass `path` with its encoding
    intact; HTTP APIs decode it (live AWS captures: hotsock/voker, vokerhttp/paths_test.go;
    REST path parameters also arrive encoded, aws/chalice#688). Behind an HTTP API this
    would need decoded=True.
    """
    original = event.to_original_event()
    path: str = original.get("path") or event.context.get("path") or "/"
    return path


def raw_query(event: Request) -> str:
    """The query string again, from API Gateway's multi-value parameters."""
    params = event.to_original_event().get("multiValueQueryStringParameters") or {}
    return urlencode([(name, value) for name, values in params.items() for value in values])


def default_accept(event: Request) -> None:
    """Chalice answers 400 to a request without Accept when binary_types is */*: assume */*."""
    if "accept" not in event.headers:
        event.headers._dict["accept"] = "*/*"
