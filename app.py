"""percel's Chalice app: the upload API, status, the sites, and the scheduled cleanup.

A table of contents: each route parses the request, calls one chalicelib
function and returns. Requests whose Host is `<label>.<ROOT_DOMAIN>` are sites:
a middleware hands them to the request handler before any API route runs, so a
site may have its own /api/... files.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache

from chalice import Chalice, Rate, Response

from chalicelib.api import api, body_json, error_response, json_response, principal_of, token_guard
from chalicelib.context import Context, build_context
from chalicelib.dashboard import assets as dashboard
from chalicelib.errors import Forbidden, NotFound
from chalicelib.openapi import document as openapi_document
from chalicelib.pipeline import (
    cleanup,
    deploy,
    deploy_hooks,
    projects,
    sources,
    token_admin,
    webhooks,
)
from chalicelib.serving import gateway
from chalicelib.serving.site import SiteServer
from chalicelib.settings import load_settings

app = Chalice(app_name="percel")
# Every body is bytes, so any file type (woff2, wasm) survives API Gateway's base64 round trip
# in Lambda, not only under `chalice local`: binary_types decides which bodies Chalice encodes.
app.api.binary_types = ["*/*"]

# Chalice has no greedy {proxy+} route locally (aws/chalice#2012): there one view is
# registered at each depth instead, so every path reaches the middleware.
MAX_PATH_DEPTH = 32


@lru_cache(maxsize=1)
def context() -> Context:
    return build_context()


@lru_cache(maxsize=1)
def sites() -> SiteServer:
    return SiteServer(context())


@app.middleware("http")
def dispatch_by_host(event, get_response):
    settings = context().settings
    target = gateway.host_target(event.headers.get("host"), settings.root_domain, settings.api_host,
                                 sites().is_custom_domain)
    if target is None:
        return error_response(NotFound("no site or API at this host"))
    if target != gateway.API:
        return gateway.serve_site(sites(), target, event)
    gateway.default_accept(event)
    return get_response(event)


def site_from_memory(method: str, path: str, query: str, headers: dict) -> Response | None:
    """dispatch_by_host's answer for a site, when this process has it in memory: off Lambda,
    devstack/asgi.py asks this before Chalice's gateway (docs/DECISIONS.md#production-server)."""
    settings = context().settings
    return gateway.cached_site_response(sites(), settings.root_domain, settings.api_host, method,
                                        path, query, headers)


# Runs after dispatch_by_host (Chalice chains middleware in registration order), so sites never
# see it: every /api/* route but health needs a token (docs/DECISIONS.md#tokens).
app.register_middleware(token_guard(context), "http")


@app.route("/api/health", methods=["GET"])
@api
def health():
    status, body = deploy.health(context())
    return json_response(status, body)


@app.route("/api/openapi.json", methods=["GET"])
@api
def openapi():
    return json_response(200, openapi_document())


@app.route("/api/deployments", methods=["POST"], content_types=["*/*"])
@api
def create_deployment():
    request = app.current_request
    created = deploy.create_deployment(context(), body_json(request), principal_of(request).token_id)
    return json_response(202, created)


@app.route("/api/uploads", methods=["POST"], content_types=["*/*"])
@api
def create_upload():
    request = app.current_request
    made = deploy.upload(context(), body_json(request), principal_of(request).token_id)
    return json_response(201, made)


@app.route("/api/deployments", methods=["GET"])
@api
def list_deployments():
    limit = (app.current_request.query_params or {}).get("limit")
    scope = principal_of(app.current_request).projects
    return json_response(200, {"deployments": deploy.list_deployments(context(), limit, scope)})


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


@app.route("/api/tokens", methods=["POST"], content_types=["*/*"])
@api
def create_token():
    return json_response(201, token_admin.create_token(context(), body_json(app.current_request)))


@app.route("/api/tokens", methods=["GET"])
@api
def list_tokens():
    return json_response(200, {"tokens": token_admin.list_tokens(context())})


@app.route("/api/tokens/{token_id}", methods=["DELETE"])
@api
def revoke_token(token_id):
    return json_response(200, token_admin.revoke_token(context(), token_id))


@app.route("/api/projects", methods=["POST"], content_types=["*/*"])
@api
def create_project():
    body = body_json(app.current_request)
    name = body.get("name") if isinstance(body, dict) else None
    if isinstance(name, str) and not principal_of(app.current_request).sees_project(name):
        raise Forbidden("this token is scoped to other projects")
    return json_response(201, projects.create_project(context(), body))


@app.route("/api/projects", methods=["GET"])
@api
def list_projects():
    visible = principal_of(app.current_request).sees_project
    return json_response(200, {"projects": projects.list_projects(context(), visible)})


@app.route("/api/projects/{name}", methods=["GET"])
@api
def get_project(name):
    return json_response(200, projects.get_project(context(), name))


@app.route("/api/projects/{name}", methods=["PATCH"], content_types=["*/*"])
@api
def update_project(name):
    return json_response(200, projects.update_project(context(), name,
                                                      body_json(app.current_request)))


@app.route("/api/projects/{name}", methods=["DELETE"])
@api
def delete_project(name):
    return json_response(200, projects.delete_project(context(), name))


@app.route("/api/projects/{name}/deployments", methods=["POST"], content_types=["*/*"])
@api
def create_project_deployment(name):
    request = app.current_request
    return json_response(202, projects.create_project_deployment(
        context(), name, body_json(request), principal_of(request).token_id))


@app.route("/api/projects/{name}/deployments", methods=["GET"])
@api
def list_project_deployments(name):
    limit = (app.current_request.query_params or {}).get("limit")
    return json_response(200, {"deployments": projects.list_project_deployments(context(), name,
                                                                                limit)})


@app.route("/api/projects/{name}/promote", methods=["POST"], content_types=["*/*"])
@api
def promote(name):
    return json_response(200, projects.promote(context(), name, body_json(app.current_request)))


@app.route("/api/projects/{name}/rollback", methods=["POST"], content_types=["*/*"])
@api
def rollback(name):
    return json_response(200, projects.rollback(context(), name))


@app.route("/api/projects/{name}/domains", methods=["POST"], content_types=["*/*"])
@api
def add_domain(name):
    return json_response(201, projects.add_domain(context(), name, body_json(app.current_request)))


@app.route("/api/projects/{name}/domains/{domain}", methods=["DELETE"])
@api
def remove_domain(name, domain):
    return json_response(200, projects.remove_domain(context(), name, domain))


# Signed by the forge, not by a token: the body is read raw (the signature covers its bytes), and
# GitHub and Gitea may send it form-encoded, hence any content type.
@app.route("/api/webhooks/{forge}", methods=["POST"], content_types=["*/*"])
@api
def forge_webhook(forge):
    request = app.current_request
    status, body = webhooks.receive(context(), forge, dict(request.headers), request.raw_body or b"")
    return json_response(status, body)


@app.route("/api/projects/{name}/hooks", methods=["POST"], content_types=["*/*"])
@api
def create_deploy_hook(name):
    return json_response(201, deploy_hooks.create_hook(context(), name, body_json(app.current_request)))


@app.route("/api/projects/{name}/hooks", methods=["GET"])
@api
def list_deploy_hooks(name):
    return json_response(200, {"hooks": deploy_hooks.list_hooks(context(), name)})


@app.route("/api/projects/{name}/hooks/{hook_id}", methods=["DELETE"])
@api
def delete_deploy_hook(name, hook_id):
    return json_response(200, deploy_hooks.delete_hook(context(), name, hook_id))


# The URL is the credential (no token): whatever the body, it deploys the hook's branch.
@app.route("/api/hooks/{secret}", methods=["POST"], content_types=["*/*"])
@api
def run_deploy_hook(secret):
    return json_response(202, deploy_hooks.trigger(context(), secret))


# The dashboard: open routes (the token guard covers /api/* only) and the page holds no data;
# it signs in with an API token of its own. Sites never reach these: dispatch_by_host runs first.
@app.route("/", methods=["GET"])
def dashboard_shell():
    return dashboard.shell_response(app.current_request.headers.get("if-none-match"))


@app.route("/dashboard/{version}/{name}", methods=["GET"])
def dashboard_asset(version, name):
    return dashboard.asset_response(version, name, app.current_request.headers.get("if-none-match"))


# A git deployment's clone and source upload, outside the request: on AWS the API invokes this
# function asynchronously after each POST (SOURCE_FUNCTION; chalicelib/pipeline/sources.py
# dispatch), and the local stack runs the same chalicelib function in a worker process.
@app.lambda_function(name="source_upload")
def source_upload(event, lambda_context):
    done = sources.upload_next(context(), lambda_context.aws_request_id, wait=1.0)
    return {"deployment_id": done}


@app.schedule(Rate(load_settings().cleanup_rate_minutes, unit=Rate.MINUTES))
def scheduled_cleanup(event):
    report = cleanup.run_cleanup(context())
    app.log.info("cleanup: %s", json.dumps(asdict(report)))
    return asdict(report)


def not_found(**_params):
    return error_response(NotFound("no such API route"))


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# `/` itself, then every deeper path: one greedy `{proxy+}` resource where API Gateway routes
# (the deployed stages set CATCH_ALL_ROUTE=greedy), else one view per depth, which `chalice
# local` and Chalice's test client can route (docs/DECISIONS.md#fixed-depth-routes).
if load_settings().catch_all_route == "greedy":
    CATCH_ALL_PATHS = ["/", "/{proxy+}"]
else:
    CATCH_ALL_PATHS = ["/" + "/".join(f"{{p{i}}}" for i in range(1, depth + 1))
                       for depth in range(MAX_PATH_DEPTH + 1)]
for index, path in enumerate(CATCH_ALL_PATHS):
    # GET / is the dashboard's shell (above); a route may not register a method twice.
    methods = [method for method in ALL_METHODS if path != "/" or method != "GET"]
    app.route(path, methods=methods, name=f"catch_all_{index}")(not_found)
