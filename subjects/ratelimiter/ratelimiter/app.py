"""The HTTP service: POST /check, /health, /live, /metrics, and the admin API under /admin."""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ratelimiter import __version__, admin
from ratelimiter.bodies import parse_body
from ratelimiter.config import Settings
from ratelimiter.errors import (
    REDIS_ERRORS,
    ApiError,
    api_error_handler,
    http_error_handler,
    internal_error_handler,
    redis_unavailable,
)
from ratelimiter.limiter import Decision
from ratelimiter.models import CheckRequest
from ratelimiter.service import Service, service_of


async def check(request: Request) -> Response:
    service = service_of(request)
    started = time.perf_counter()
    req = await parse_body(request, CheckRequest, service.settings.max_body_bytes)
    try:
        decision = await service.limiter.check(req.key)
    except REDIS_ERRORS as exc:
        service.redis_failed("check", exc)
        service.metrics.checks["error"].inc()
        service.metrics.check_seconds.observe(time.perf_counter() - started)
        raise redis_unavailable(exc) from None
    service.redis_succeeded()
    response = _decision_response(decision, service.node_id)
    service.metrics.checks["allowed" if decision.allowed else "blocked"].inc()
    service.metrics.check_seconds.observe(time.perf_counter() - started)
    return response


def _decision_response(d: Decision, node_id: str) -> Response:
    reset_ms = d.reset_ms
    headers = {
        "X-RateLimit-Limit": str(d.limit),
        "X-RateLimit-Remaining": str(d.remaining),
        # Seconds, rounded up, as in the IETF RateLimit drafts: never earlier than the truth.
        "X-RateLimit-Reset": str(-(-reset_ms // 1000)),
    }
    if not d.allowed:
        # Whole seconds per RFC 9110, at least 1; the body carries the exact milliseconds.
        headers["Retry-After"] = str(max(1, -(-reset_ms // 1000)))
    body = {
        "allowed": d.allowed,
        "key": d.key,
        "limit": d.limit,
        "remaining": d.remaining,
        "window_ms": d.window_ms,
        "reset_ms": reset_ms,
        "retry_after_ms": d.retry_after_ms,
        "source": d.source.value,
        "node_id": node_id,
        # Redis time of the decision; one clock for all nodes.
        "decided_at_us": d.now_us,
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        200 if d.allowed else 429,
        headers,
        media_type="application/json",
    )


async def redis_error_handler(request: Request, exc: Exception) -> Response:
    """A Redis failure in an admin call: counted, and answered 503 like a failed check."""
    service_of(request).redis_failed("admin", exc)
    return await api_error_handler(request, redis_unavailable(exc))


async def health(request: Request) -> Response:
    """Readiness: 200 only when this node can reach Redis now (a live PING, not a cache)."""
    service = service_of(request)
    redis: dict[str, object]
    started = time.perf_counter()
    try:
        await service.redis.ping()
    except REDIS_ERRORS as exc:
        service.redis_failed("health", exc)
        redis = {"ok": False, "error": str(exc) or type(exc).__name__}
    else:
        service.redis_succeeded()
        redis = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
    ok = bool(redis["ok"])
    body = {
        "status": "ok" if ok else "unavailable",
        "node_id": service.node_id,
        "version": __version__,
        "redis": redis,
        "registered": service.registered,
    }
    return JSONResponse(body, 200 if ok else 503)


async def live(request: Request) -> Response:
    """Liveness: the process serves. Redis being down is not a reason to restart a node."""
    return JSONResponse({"status": "ok", "node_id": service_of(request).node_id})


async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(service_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


async def index(request: Request) -> Response:
    service = service_of(request)
    return JSONResponse(
        {
            "service": "ratelimiter",
            "version": __version__,
            "node_id": service.node_id,
            "endpoints": ["POST /check", "GET /health", "GET /live", "GET /metrics", "/admin/*"],
        }
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        # Everything alive now (modules, app, clients) lives as long as the process: move it
        # out of the collector's sight, so the collections that run under load only walk
        # young objects (a full walk of the startup heap stalls the loop for milliseconds).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/check", check, methods=["POST"]),
            Route("/health", health),
            Route("/live", live),
            Route("/metrics", metrics),
            Mount("/admin", routes=admin.routes),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            **dict.fromkeys(REDIS_ERRORS, redis_error_handler),
            Exception: internal_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.service = service
    return app
