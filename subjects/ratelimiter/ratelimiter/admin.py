"""The management API, mounted at /admin. Everything here reads or writes Redis directly
(nothing is cached in a node), so every node answers the same and an observer can hold the
answers against Redis itself.

    GET    /admin/nodes                  every registered node, Up or Down, with last seen
    DELETE /admin/nodes/{id}             forget a Down node (409 while it is Up)
    GET    /admin/counters?limit=        keys with a live window, with their counts
    GET    /admin/counters/{key}         one key's count (0 when idle)
    DELETE /admin/counters/{key}         reset a key: forget its window
    GET    /admin/limits?cursor=&count=  the default and a page of per-key overrides
    GET    /admin/limits/{key}           the limit in force for a key, and where it comes from
    PUT    /admin/limits/{key}           set a per-key override {limit, window_ms}
    DELETE /admin/limits/{key}           drop the override (the default applies again)
    GET    /admin/default-limit          the default in force
    PUT    /admin/default-limit          set the shared default for all nodes
    DELETE /admin/default-limit          drop it (each node's RL_DEFAULT_* applies)
    GET    /admin/blocked?limit=         keys currently refusing, with when they free up

Keys go in the path percent-encoded (`/` included: quote(key, safe="")).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ratelimiter import idempotency
from ratelimiter.bodies import parse_body, parse_query, path_key
from ratelimiter.errors import ApiError
from ratelimiter.limiter import CounterState, LimitSource, LimitSpec
from ratelimiter.models import (
    BlockedView,
    CounterView,
    EffectiveLimit,
    LimitBody,
    ListQuery,
    NodeView,
    OverridesPage,
    ResetResult,
    ScanQuery,
)
from ratelimiter.service import service_of


def _json(model: BaseModel | Sequence[BaseModel], status: int = 200) -> Response:
    if not isinstance(model, BaseModel):
        return JSONResponse([m.model_dump(mode="json") for m in model], status)
    return JSONResponse(model.model_dump(mode="json"), status)


def _counter_view(state: CounterState) -> CounterView:
    return CounterView(
        key=state.key,
        count=state.count,
        limit=state.limit,
        window_ms=state.window_ms,
        remaining=state.remaining,
        source=state.source,
        oldest_us=state.oldest_us,
        now_us=state.now_us,
        redis_key=state.redis_key,
    )


async def list_nodes(request: Request) -> Response:
    records = await service_of(request).registry.nodes()
    return _json(
        [
            NodeView(
                node_id=r.node_id,
                address=r.address,
                state=r.state,
                down_reason=r.down_reason,
                last_seen_ms=r.last_seen_ms,
                last_seen_age_s=None
                if r.last_seen_ms is None
                else round((r.now_ms - r.last_seen_ms) / 1000, 3),
                started_ms=r.started_ms,
                stopped_ms=r.stopped_ms,
            )
            for r in records
        ]
    )


async def forget_node(request: Request) -> Response:
    registry = service_of(request).registry
    node_id = request.path_params["node_id"]
    if await registry.is_alive(node_id):
        raise ApiError(409, "node_up", f"node {node_id} is Up; only a Down node can be forgotten")
    if not await registry.forget(node_id):
        raise ApiError(404, "not_found", f"no node {node_id} in the registry")
    return JSONResponse({"node_id": node_id, "forgotten": True})


async def list_counters(request: Request) -> Response:
    query = parse_query(request, ListQuery)
    limiter = service_of(request).limiter
    states = await limiter.inspect(await limiter.active_keys(query.limit))
    return _json([_counter_view(s) for s in states])


async def get_counter(request: Request) -> Response:
    (state,) = await service_of(request).limiter.inspect([path_key(request)])
    return _json(_counter_view(state))


async def reset_counter(request: Request) -> Response:
    key = path_key(request)
    service = service_of(request)
    limiter = service.limiter
    idem = idempotency.key_of(request)
    if idem is not None:
        earlier = await idempotency.recall(limiter.redis, limiter.keys.prefix, idem)
        if earlier is not None:  # done before: answer as then, change nothing
            return Response(
                earlier, media_type="application/json", headers={idempotency.REPLAYED: "true"}
            )
    dropped = await limiter.reset(key)
    service.metrics.admin_changes["reset_counter"].inc()
    answer = ResetResult(key=key, dropped=dropped).model_dump_json()
    if idem is not None:
        await idempotency.remember(limiter.redis, limiter.keys.prefix, idem, answer)
    return Response(answer, media_type="application/json")


async def _default(request: Request) -> EffectiveLimit:
    limiter = service_of(request).limiter
    shared = await limiter.shared_default()
    if shared is not None:
        return EffectiveLimit(
            key=None, limit=shared.limit, window_ms=shared.window_ms, source=LimitSource.DEFAULT
        )
    node = limiter.default
    return EffectiveLimit(
        key=None, limit=node.limit, window_ms=node.window_ms, source=LimitSource.NODE_DEFAULT
    )


async def list_limits(request: Request) -> Response:
    query = parse_query(request, ScanQuery)
    next_cursor, found = await service_of(request).limiter.overrides(query.cursor, query.count)
    page = OverridesPage(
        default=await _default(request),
        overrides=[
            EffectiveLimit(key=k, limit=s.limit, window_ms=s.window_ms, source=LimitSource.OVERRIDE)
            for k, s in sorted(found.items())
        ],
        next_cursor=next_cursor,
    )
    return _json(page)


async def get_limit(request: Request) -> Response:
    key = path_key(request)
    override = await service_of(request).limiter.get_override(key)
    if override is None:
        default = await _default(request)
        return _json(default.model_copy(update={"key": key}))
    return _json(
        EffectiveLimit(
            key=key, limit=override.limit, window_ms=override.window_ms, source=LimitSource.OVERRIDE
        )
    )


async def put_limit(request: Request) -> Response:
    service = service_of(request)
    key = path_key(request)
    body = await parse_body(request, LimitBody, service.settings.max_body_bytes)
    await service.limiter.put_override(key, LimitSpec(body.limit, body.window_ms))
    service.metrics.admin_changes["put_limit"].inc()
    return _json(
        EffectiveLimit(
            key=key, limit=body.limit, window_ms=body.window_ms, source=LimitSource.OVERRIDE
        )
    )


async def delete_limit(request: Request) -> Response:
    key = path_key(request)
    service = service_of(request)
    if not await service.limiter.delete_override(key):
        raise ApiError(404, "not_found", f"no per-key limit for {key!r}")
    service.metrics.admin_changes["delete_limit"].inc()
    return JSONResponse({"key": key, "deleted": True})


async def get_default(request: Request) -> Response:
    return _json(await _default(request))


async def put_default(request: Request) -> Response:
    service = service_of(request)
    body = await parse_body(request, LimitBody, service.settings.max_body_bytes)
    await service.limiter.put_shared_default(LimitSpec(body.limit, body.window_ms))
    service.metrics.admin_changes["put_default"].inc()
    return _json(await _default(request))


async def delete_default(request: Request) -> Response:
    service = service_of(request)
    await service.limiter.delete_shared_default()
    service.metrics.admin_changes["delete_default"].inc()
    return _json(await _default(request))


async def list_blocked(request: Request) -> Response:
    query = parse_query(request, ListQuery)
    rows = await service_of(request).limiter.blocked(query.limit)
    return _json(
        [BlockedView(key=b.key, until_ms=b.until_ms, retry_after_ms=b.retry_after_ms) for b in rows]
    )


routes = [
    Route("/nodes", list_nodes),
    Route("/nodes/{node_id}", forget_node, methods=["DELETE"]),
    Route("/counters", list_counters),
    Route("/counters/{key:path}", get_counter, methods=["GET"]),
    Route("/counters/{key:path}", reset_counter, methods=["DELETE"]),
    Route("/limits", list_limits),
    Route("/limits/{key:path}", get_limit, methods=["GET"]),
    Route("/limits/{key:path}", put_limit, methods=["PUT"]),
    Route("/limits/{key:path}", delete_limit, methods=["DELETE"]),
    Route("/default-limit", get_default, methods=["GET"]),
    Route("/default-limit", put_default, methods=["PUT"]),
    Route("/default-limit", delete_default, methods=["DELETE"]),
    Route("/blocked", list_blocked),
]
