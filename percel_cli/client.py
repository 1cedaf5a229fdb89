"""The percel API over HTTP, with urllib: one call is one method, path and JSON body."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple

from percel_cli import __version__

# Long enough for a clone that the API runs before it answers (POST /api/deployments); a
# connection that says nothing for this long is reported rather than waited on for ever.
TIMEOUT_SECONDS = 300.0


class ApiError(Exception):
    """The API refused a call, or could not be reached: one line for the user, exit code 2."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.field = status, code, field

    def line(self) -> str:
        where = f" ({self.field})" if self.field else ""
        head = f"{self.status} {self.code}" if self.status else "error"
        return f"{head}: {self}{where}"


class Client(NamedTuple):
    api: str
    token: str | None
    timeout: float = TIMEOUT_SECONDS

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = self.api.rstrip("/") + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", f"percel-cli/{__version__}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _json(response.read(), response.status)
        except urllib.error.HTTPError as exc:
            raise _refusal(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the API at {self.api}: {reason}") from None


def _json(raw: bytes, status: int) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(f"the API answered {status} with a body that is not JSON", status) from None


def _refusal(exc: urllib.error.HTTPError) -> ApiError:
    try:
        error = json.loads(exc.read()).get("error") or {}
    except (ValueError, AttributeError, OSError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    message = str(error.get("message") or exc.reason or "the API refused the call")
    retry = exc.headers.get("Retry-After") if exc.headers else None
    if retry:
        message += f" (retry after {retry} s)"
    return ApiError(message, exc.code, str(error.get("code") or "error"), error.get("field"))
