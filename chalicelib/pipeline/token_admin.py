"""The token routes: validate a request, create, list and revoke tokens (docs/DECISIONS.md#tokens)."""
from __future__ import annotations

import re
from typing import Any

from chalicelib.context import Context
from chalicelib.errors import BadRequest, NotFound
from chalicelib.state.tokens import Role

MAX_NAME = 100
MAX_PROJECTS = 100
# Ten years: a longer expiry is a typo for "never", which is what omitting it means.
MAX_EXPIRY_DAYS = 3650
# Project names are host labels (the alias `<project>.<root-domain>`), so a DNS label's shape.
PROJECT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
FIELDS = frozenset({"name", "role", "projects", "expires_in_days"})


def create_token(ctx: Context, body: Any) -> dict[str, Any]:
    """201's body: the token's listing plus `token`, the only time the secret is shown."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}", field=unknown[0])
    token, secret = ctx.tokens.create(_name(body.get("name")), _role(body.get("role")),
                                      _projects(body.get("projects")),
                                      _expiry(body.get("expires_in_days")))
    return {**token.view(), "token": secret}


def list_tokens(ctx: Context) -> list[dict[str, Any]]:
    return [token.view() for token in ctx.tokens.live()]


def revoke_token(ctx: Context, token_id: str) -> dict[str, Any]:
    token = ctx.tokens.get(token_id)
    if token is None or not ctx.tokens.revoke(token_id):
        raise NotFound(f"no token {token_id!r}")
    return {**token.view(), "revoked": True}


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME} characters",
                         field="name")
    return value.strip()


def _role(value: Any) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise BadRequest("role must be one of read, deploy, admin", field="role") from None


def _projects(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PROJECTS or \
            not all(isinstance(name, str) and PROJECT_NAME.match(name) for name in value):
        raise BadRequest(f"projects must be a list of 1 to {MAX_PROJECTS} project names "
                         "(lowercase letters, digits and inner hyphens); omit it for every "
                         "deployment", field="projects")
    return sorted(set(value))


def _expiry(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0 < value <= MAX_EXPIRY_DAYS:
        raise BadRequest(f"expires_in_days must be a number above 0 and at most {MAX_EXPIRY_DAYS}",
                         field="expires_in_days")
    return float(value)
