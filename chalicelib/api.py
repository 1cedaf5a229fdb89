"""The API's plumbing: JSON responses, our errors as `{"error": {...}}`, the request body."""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import BACKEND_ERRORS, ApiError, BadRequest, ServiceUnavailable

# The app's own logger (Chalice's app.log is logging.getLogger(app_name)).
log = logging.getLogger("percel")

View = Callable[..., Response]


def json_response(status: int, body: Any) -> Response:
    return Response(body=json.dumps(body).encode(), status_code=status,
                    headers={"Content-Type": "application/json"})


def error_response(error: ApiError) -> Response:
    response = json_response(error.status, error.to_json())
    response.headers.update(error.headers)
    return response


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
        return json.loads(event.raw_body or b"null")
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
