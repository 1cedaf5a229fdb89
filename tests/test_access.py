"""The guard's pure rules: which routes need a token, which role each needs, what a token sees."""
import pytest

from chalicelib.access import ApiCall, Principal, bearer, is_json, needs_token, required_role
from chalicelib.state.tokens import Role


def call(template: str, **params: str) -> ApiCall:
    return ApiCall("GET", template, params, {}, "127.0.0.1", False)


@pytest.mark.parametrize("template, params, needed", [
    ("/api/health", {}, False),
    ("/api/deployments", {}, True),
    ("/api/deployments/{deployment_id}/logs", {"deployment_id": "x"}, True),
    ("/api/tokens/{token_id}", {"token_id": "x"}, True),
    ("/{p1}/{p2}", {"p1": "api", "p2": "nothing"}, True),   # an unknown API path
    ("/{p1}", {"p1": "api"}, True),
    ("/{p1}", {"p1": "favicon.ico"}, False),                # not the API: a plain 404
    ("/", {}, False),
])
def test_every_api_path_but_health_needs_a_token(template, params, needed):
    assert needs_token(call(template, **params)) is needed


@pytest.mark.parametrize("method, template, role", [
    ("GET", "/api/deployments", Role.READ),
    ("GET", "/api/deployments/{deployment_id}/logs", Role.READ),
    ("POST", "/api/deployments", Role.DEPLOY),
    ("POST", "/api/deployments/{deployment_id}/cancel", Role.DEPLOY),
    ("DELETE", "/api/deployments/{deployment_id}", Role.ADMIN),
    ("GET", "/api/tokens", Role.ADMIN),
    ("POST", "/api/tokens", Role.ADMIN),
    ("DELETE", "/api/tokens/{token_id}", Role.ADMIN),
    ("PUT", "/api/deployments/{deployment_id}", Role.ADMIN),   # a future write: admin until told
    ("POST", "/{p1}/{p2}", Role.READ),                          # unknown path: a 404 for anyone
])
def test_the_role_each_route_needs(method, template, role):
    assert required_role(method, template) is role


@pytest.mark.parametrize("header, token", [
    ("Bearer abc.DEF-1_2~3+4/5=", "abc.DEF-1_2~3+4/5="),
    ("bearer  abc", "abc"),             # RFC 6750 §2.1: any case, one or more spaces
    ("Basic dXNlcjpwYXNz", None),
    ("Bearer", None),
    ("Bearer a b", None),
    ("", None),
    (None, None),
])
def test_bearer_tokens_are_read_as_rfc_6750_writes_them(header, token):
    assert bearer(header) == token


@pytest.mark.parametrize("content_type, accepted", [
    ("application/json", True), ("Application/JSON; charset=utf-8", True),
    ("text/plain", False), ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False), ("", False), (None, False),
])
def test_only_json_bodies_are_accepted(content_type, accepted):
    assert is_json(content_type) is accepted


def test_an_unscoped_token_sees_every_deployment_a_scoped_one_only_its_projects():
    everything = Principal("t", Role.READ, None)
    shop = Principal("t", Role.READ, ("shop",))
    assert everything.sees({"id": "a"}) and everything.sees({"id": "a", "project": "blog"})
    assert not shop.sees({"id": "a"})                       # today's deployments have no project
    assert shop.sees({"id": "a", "project": "shop"}) and not shop.sees({"project": "blog"})
