"""Errors as JSON: every failure a client can cause or meet gets a status, a stable code and
a message that says what to fix. No handler ever lets a traceback reach the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("ratelimiter")

# What a Redis call can raise when Redis is down, slow or refusing: redis-py's own errors,
# plus the raw socket and timeout errors that can escape it while (re)connecting.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details or []


def error_response(
    status: int,
    error: str,
    message: str,
    details: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": error, "message": message, "details": details or []}
    return Response(json.dumps(body), status, headers, media_type="application/json")


def invalid(exc: ValidationError, what: str) -> ApiError:
    """A 400 listing each problem as `field: message`."""
    details = []
    malformed = False
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] in ("json_invalid", "json_type"):
            malformed = True
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        details.append(f"{loc}: {msg}" if loc else msg)
    if malformed:
        return ApiError(400, "malformed_json", f"{what} is not valid JSON", details)
    return ApiError(400, "invalid_request", f"invalid {what}: " + "; ".join(details), details)


def redis_unavailable(exc: BaseException) -> ApiError:
    # Name the failure class and message, never a traceback: enough to tell a timeout from
    # a refused connection from a server-side error such as OOM.
    reason = str(exc) or type(exc).__name__
    return ApiError(503, "redis_unavailable", f"Redis is unavailable: {reason}")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return error_response(exc.status, exc.error, exc.message, exc.details, headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {
        404: f"no such endpoint: {request.method} {request.url.path}",
        405: f"method {request.method} not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return error_response(
        exc.status_code, codes.get(exc.status_code, "http_error"), message, headers=exc.headers
    )


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    # A bug: log it with the traceback for us, answer the client without one.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; see the node's log")
