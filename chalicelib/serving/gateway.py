"""Chalice / API Gateway glue for sites: the raw path and query out of an event, the
missing-Accept default, and the 503 a site answers when Redis or the bucket is down."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlencode

from chalice.app import Request, Response

from chalicelib.errors import BACKEND_ERRORS
from chalicelib.serving.request import host_name
from chalicelib.serving.site import NotCached, SiteServer, plain_response, site_label

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
    """A site's response to this event; a 503 (plain, retry soon) when a backend is down."""
    return site_response(server, label, event.method, raw_path(event), raw_query(event),
                         event.headers)


def site_response(server: SiteServer, label: str, method: str, path: str, query: str,
                  headers: Mapping[str, str], cached_only: bool = False) -> Response:
    """A site's response; with `cached_only`, NotCached where it would need a backend.

    Every answer says nosniff: a browser must not run a site's text file as script or
    style because it looks like one (https://fetch.spec.whatwg.org/#x-content-type-options-header).
    """
    try:
        response = server.handle(label, method, path, query, headers, cached_only)
    except BACKEND_ERRORS as error:
        log.warning("site %s: backend unavailable: %s", label, error)
        response = plain_response(503, "Service Unavailable: try again shortly\n",
                                  {"Retry-After": RETRY_AFTER_SECONDS})
    for name in [name for name in response.headers if name.lower() == "x-content-type-options"]:
        del response.headers[name]
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def cached_site_response(server: SiteServer, root_domain: str, api_host: str, method: str,
                         path: str, query_string: str, headers: Mapping[str, str]) -> Response | None:
    """What the app would answer to a site's GET or HEAD, given from memory alone, or None.

    The same answer as through Chalice (dispatch_by_host, then serve_site), without building a
    Lambda event, a Request and the middleware chain for it: an off-Lambda server asks this
    first and takes the full path on None (docs/DECISIONS.md#production-server). None for
    anything else: another method, the API's Host, or a site, alias, manifest, file or
    deletion check that is not in this process's caches. `path` is the raw path as sent;
    `query_string` the raw query, normalised as API Gateway's multi-value parameters are.
    """
    if method not in ("GET", "HEAD"):
        return None
    try:
        label = host_target(headers.get("host"), root_domain, api_host,
                            lambda host: server.is_custom_domain(host, cached_only=True))
        if label is None or label == API:
            return None
        query = urlencode(parse_qs(query_string, keep_blank_values=True), doseq=True) \
            if query_string else ""
        return site_response(server, label, method, path, query, headers, cached_only=True)
    except NotCached:
        return None


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
