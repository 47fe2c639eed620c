"""Reading request bodies and query strings into models, with a size cap."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ratelimiter.config import MAX_KEY_BYTES
from ratelimiter.errors import ApiError, invalid
from ratelimiter.models import RateKey

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refusing more than `cap` bytes before buffering it all (a 10 MB body costs
    the node at most `cap` bytes of memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise _too_large(int(declared), cap)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _too_large(size, cap)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, cap: int) -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"request body is {size}+ bytes; at most {cap} allowed (keys: at most "
        f"{MAX_KEY_BYTES} bytes)",
    )


async def parse_body(request: Request, model: type[M], cap: int) -> M:
    body = await read_body(request, cap)
    if not body:
        raise ApiError(400, "malformed_json", "request body is empty; a JSON object is required")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid(exc, "request body") from None


def parse_query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise invalid(exc, "query") from None


class _KeyModel(BaseModel):
    key: RateKey


def path_key(request: Request) -> str:
    """The `{key}` path parameter, held to the same rules as a key in a check body."""
    try:
        return _KeyModel(key=request.path_params["key"]).key
    except ValidationError as exc:
        raise invalid(exc, "key in path") from None
