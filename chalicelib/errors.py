"""The HTTP-facing error vocabulary: each error carries its status and a stable code."""
from __future__ import annotations

import redis
from botocore.exceptions import BotoCoreError, ClientError

# Failures of Redis or the bucket: the API answers 503, never a traceback.
BACKEND_ERRORS = (redis.RedisError, BotoCoreError, ClientError)


class ApiError(Exception):
    status = 400
    code = "bad_request"
    headers: dict[str, str] = {}  # sent with the JSON error

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


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "repository_too_large"


class Unprocessable(ApiError):
    status, code = 422, "unprocessable"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


class Busy(ServiceUnavailable):
    """Refused for now, not broken: the response says when to try again (RFC 9110 section 10.2.3)."""
    code = "busy"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}
