"""percel's Chalice app: the upload API, status, the sites, and the scheduled cleanup.

A table of contents: each route parses the request, calls one chalicelib
function and returns. Requests whose Host is `<label>.<ROOT_DOMAIN>` are sites:
a middleware hands them to the request handler before any API route runs, so a
site may have its own /api/... files.
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict
from functools import lru_cache
from urllib.parse import urlencode

from chalice import Chalice, Rate, Response

from chalicelib.pipeline import cleanup, deploy
from chalicelib.context import Context, build_context
from chalicelib.errors import BACKEND_ERRORS, ApiError, BadRequest, NotFound, ServiceUnavailable
from chalicelib.settings import load_settings
from chalicelib.serving.site import SiteServer, site_label

app = Chalice(app_name="percel")
# Every body is bytes, so any file type (woff2, wasm) survives API Gateway's
# base64 round trip in Lambda, not only under `chalice local` (DESIGN.md).
app.api.binary_types = ["*/*"]

# Chalice has no greedy {proxy+} route locally (aws/chalice#2012): one view is
# registered at each depth instead, so every path reaches the middleware.
MAX_PATH_DEPTH = 32


@lru_cache(maxsize=1)
def context() -> Context:
    return build_context()


@lru_cache(maxsize=1)
def sites() -> SiteServer:
    return SiteServer(context())


def json_response(status: int, body) -> Response:
    return Response(body=json.dumps(body).encode(), status_code=status,
                    headers={"Content-Type": "application/json"})


def error_response(error: ApiError) -> Response:
    return json_response(error.status, error.to_json())


@app.middleware("http")
def dispatch_by_host(event, get_response):
    headers = event.headers
    label = site_label(headers.get("host"), context().settings.root_domain)
    if label is not None:
        try:
            return sites().handle(label, event.method, raw_path(event), raw_query(event), headers)
        except BACKEND_ERRORS as error:
            app.log.warning("site %s: backend unavailable: %s", label, error)
            return Response(body=b"Service Unavailable: try again shortly\n", status_code=503,
                            headers={"Content-Type": "text/plain; charset=utf-8",
                                     "Cache-Control": "no-store", "Retry-After": "5"})
    if "accept" not in headers:
        # Chalice answers 400 to a request without Accept when binary_types is */*.
        headers._dict["accept"] = "*/*"
    return get_response(event)


def api(view):
    """Turn our errors into `{"error": {...}}` JSON with their status; never a traceback."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except ApiError as error:
            return error_response(error)
        except BACKEND_ERRORS as error:
            app.log.warning("backend unavailable in %s: %s", view.__name__, error)
            return error_response(ServiceUnavailable(
                "a backend (Redis or the bucket) is unavailable; try again"))
        except Exception:  # noqa: BLE001 - logged, answered as a plain 500
            app.log.exception("unhandled error in %s", view.__name__)
            return json_response(500, {"error": {"code": "internal",
                                                 "message": "internal error"}})
    return wrapper


def raw_path(event) -> str:
    """The path as the client sent it: API Gateway's `path`, or chalice local's context path.

    Both are still percent-encoded, so routing.resolve decodes exactly once (decoded=False).
    REST APIs (Lambda proxy integration, what Chalice deploys) pass `path` with its encoding
    intact; HTTP APIs decode it (live AWS captures: hotsock/voker, vokerhttp/paths_test.go;
    REST path parameters also arrive encoded, aws/chalice#688). Behind an HTTP API this
    would need decoded=True.
    """
    original = event.to_original_event()
    return original.get("path") or event.context.get("path") or "/"


def raw_query(event) -> str:
    params = event.to_original_event().get("multiValueQueryStringParameters") or {}
    return urlencode([(k, v) for k, values in params.items() for v in values])


def body_json(event):
    try:
        return json.loads(event.raw_body or b"null")
    except ValueError:
        raise BadRequest("the body is not valid JSON")


@app.route("/api/health", methods=["GET"])
@api
def health():
    status, body = deploy.health(context())
    return json_response(status, body)


@app.route("/api/deployments", methods=["POST"], content_types=["*/*"])
@api
def create_deployment():
    created = deploy.create_deployment(context(), body_json(app.current_request))
    return json_response(202, created)


@app.route("/api/deployments", methods=["GET"])
@api
def list_deployments():
    limit = (app.current_request.query_params or {}).get("limit")
    return json_response(200, {"deployments": deploy.list_deployments(context(), limit)})


@app.route("/api/deployments/{deployment_id}", methods=["GET"])
@api
def get_deployment(deployment_id):
    return json_response(200, deploy.get_deployment(context(), deployment_id))


@app.route("/api/deployments/{deployment_id}", methods=["DELETE"])
@api
def delete_deployment(deployment_id):
    return json_response(200, deploy.delete_deployment(context(), deployment_id))


@app.route("/api/deployments/{deployment_id}/cancel", methods=["POST"], content_types=["*/*"])
@api
def cancel_deployment(deployment_id):
    return json_response(200, deploy.cancel_deployment(context(), deployment_id))


@app.route("/api/deployments/{deployment_id}/logs", methods=["GET"])
@api
def deployment_logs(deployment_id):
    cursor = (app.current_request.query_params or {}).get("cursor")
    return json_response(200, deploy.read_logs(context(), deployment_id, cursor))


@app.schedule(Rate(load_settings().cleanup_rate_minutes, unit=Rate.MINUTES))
def scheduled_cleanup(event):
    report = cleanup.run_cleanup(context())
    app.log.info("cleanup: %s", json.dumps(asdict(report)))
    return asdict(report)


def not_found(**_params):
    return error_response(NotFound("no such API route"))


for depth in range(MAX_PATH_DEPTH + 1):
    path = "/" + "/".join("{p%d}" % i for i in range(1, depth + 1))
    app.route(path, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
              name=f"catch_all_{depth}")(not_found)
