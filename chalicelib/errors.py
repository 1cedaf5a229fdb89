"""The HTTP-facing error vocabulary: each error carries its status and a stable code."""
from __future__ import annotations

import redis
from botocore.exceptions import BotoCoreError, ClientError

# Failures of Redis or the bucket: the API answers 503, never a traceback.
BACKEND_ERRORS = (redis.RedisError, BotoCoreError, ClientError)


class ApiError(Exception):
    status = 400
    code = "bad_request"
    # Response headers the refusal needs (WWW-Authenticate, Retry-After).
    headers: dict[str, str] = {}

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {"error": body}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    """No token, or one we do not know: RFC 6750 §3 asks for a WWW-Authenticate challenge."""
    status, code = 401, "unauthorized"

    def __init__(self, message: str, *, invalid: bool = False):
        super().__init__(message)
        # RFC 6750 §3.1: `invalid_token` when a token was sent; no error code when none was.
        self.headers = {"WWW-Authenticate": 'Bearer realm="percel"' +
                        (', error="invalid_token"' if invalid else "")}


class Forbidden(ApiError):
    """A known token whose role does not allow the request (RFC 6750 §3.1 insufficient_scope)."""
    status, code = 403, "forbidden"
    headers = {"WWW-Authenticate": 'Bearer realm="percel", error="insufficient_scope"'}


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "repository_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "unprocessable"


class RetryLater(ApiError):
    """Refused for now, not for good: Retry-After (RFC 9110 §10.2.3) says in how many seconds
    (at least one) to try again."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after))}


class TooManyRequests(RetryLater):
    """A limit was reached; Retry-After says when the window ends."""
    status, code = 429, "too_many_requests"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


class Busy(RetryLater, ServiceUnavailable):
    """A 503 that is not a fault: too much work at once, so try again after Retry-After."""
    code = "busy"
