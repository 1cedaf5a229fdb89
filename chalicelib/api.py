"""The API's plumbing: JSON responses, our errors as `{"error": {...}}`, the request body,
and the token check every `/api/*` request passes (docs/DECISIONS.md#tokens)."""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.access import ApiCall, Principal, guard
from chalicelib.context import Context
from chalicelib.errors import BACKEND_ERRORS, ApiError, BadRequest, ServiceUnavailable

# The app's own logger (Chalice's app.log is logging.getLogger(app_name)).
log = logging.getLogger("percel")

View = Callable[..., Response]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(body=json.dumps(body).encode(), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(error: ApiError) -> Response:
    return json_response(error.status, error.to_json(), error.headers)


def api(view: View) -> View:
    """Turn our errors into `{"error": {...}}` JSON with their status; never a traceback."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except ApiError as error:
            return error_response(error)
        except BACKEND_ERRORS as error:
            log.warning("backend unavailable in %s: %s", view.__name__, error)
            return error_response(ServiceUnavailable(
                "a backend (Redis or the bucket) is unavailable; try again"))
        except Exception:   # logged, answered as a plain 500
            log.exception("unhandled error in %s", view.__name__)
            return json_response(500, {"error": {"code": "internal",
                                                 "message": "internal error"}})
    return wrapper


def body_json(event: Request) -> Any:
    try:
        body = json.loads(event.raw_body or b"null")
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    except RecursionError:  # json's C decoder recurses once per `[` or `{`
        raise BadRequest("the body's JSON is nested too deeply") from None
    _check_text(body)
    return body


def _check_text(body: Any) -> None:
    """JSON may escape a lone UTF-16 surrogate (`"\\ud800"`), which json.loads keeps but no
    UTF-8 encoder (Redis's client, the bucket's) accepts: refused here, for every route, before
    anything is written (RFC 8259 §8.2 leaves such strings' behaviour unpredictable)."""
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise BadRequest("the body's strings must be Unicode text: an unpaired surrogate escape "
                         "such as \\ud800 is not") from None


# Where the guard leaves the caller's token on the request, for the views that filter by scope.
_PRINCIPAL = "percel_principal"


def token_guard(context: Callable[[], Context]) -> Callable[[Request, Callable[[Request], Response]],
                                                           Response]:
    """An http middleware that runs `access.guard` before any view: every refusal (401, 403,
    404, 415, 429) is answered here, in one place, as JSON."""
    @api
    def middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
        call = ApiCall(method=event.method.upper(), template=event.path,
                       params=event.uri_params or {}, headers=event.headers,
                       address=(event.context.get("identity") or {}).get("sourceIp") or "",
                       has_body=bool(event.raw_body))
        event.context[_PRINCIPAL] = guard(context(), call)
        return get_response(event)
    return middleware


def principal_of(event: Request) -> Principal:
    """The token the guard accepted for this request (only routes that need one have it)."""
    principal = event.context.get(_PRINCIPAL)
    assert isinstance(principal, Principal), "route is not guarded by token_guard"
    return principal
