"""The remediations, their live preconditions, and how each runs.

Safety rules kept here, not left to callers:
- No node is restarted while another node is down: a second one gone is an outage.
- A key must exist (something counts it, or a limit is on record for it) before it is
  reset or re-limited: an action on a mistyped key would do nothing and report success.
- update_limit remembers the limit it replaced, so undo puts exactly that back.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import (
    ActionResult,
    ActionSpec,
    Frozen,
    MemberState,
    PluginError,
    Risk,
)
from aiops.subjects.dispatch import Dispatch
from aiops.subjects.memo import BoundedMemo, once
from ratelimiter_subject.api import RateLimiterApi, probe
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.observation import Observer

RESET_COUNTER = "reset_counter"
UPDATE_LIMIT = "update_limit"
RESTART_NODE = "restart_node"

# The service's own bounds on keys and limits (ratelimiter.config), restated at this boundary
# so a bad parameter is refused before anything is sent.
RateKey = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
]
NodeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class Params(Frozen):
    """Action parameters: immutable, and unknown fields are a mistake worth reporting."""


class KeyParams(Params):
    key: RateKey = Field(description="The rate-limited key, as clients send it.")


class LimitParams(KeyParams):
    limit: int = Field(ge=1, le=1_000_000_000, description="Requests allowed per window.")
    window_ms: int = Field(ge=1, le=86_400_000, description="The sliding window, in ms.")


class NodeParams(Params):
    node: NodeName = Field(description="The node id (its registry name).")


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name=RESET_COUNTER,
        description="Forget a key's sliding-window log (the admin API's reset): its clients "
        "get a full window again at once. Clears counts no request made (drift).",
        params=KeyParams,
        risk=Risk.LOW,
        retry_safe=True,
    ),
    ActionSpec(
        name=UPDATE_LIMIT,
        description="Set a key's per-key limit through the admin API, in the form every node "
        "enforces; undo puts back the limit it replaced (or removes the per-key limit when "
        "there was none).",
        params=LimitParams,
        risk=Risk.MEDIUM,
        reversible=True,
        retry_safe=True,
    ),
    ActionSpec(
        name=RESTART_NODE,
        description="Restart a node's process through the Subject's workload (delete its pod; "
        "supervisord: stop and start) and wait until it serves and reaches Redis again.",
        params=NodeParams,
        risk=Risk.HIGH,
        disrupts_member=True,
        member_param="node",
    ),
)

# Process-wide, keyed by (limiter, idempotency key): successful results, so a retried call
# answers from here instead of acting twice, and the limits update_limit replaced, for undo.
# Both are lost when the operator restarts; undo then says so instead of guessing.
_DONE: BoundedMemo[ActionResult] = BoundedMemo()
_REPLACED: BoundedMemo[tuple[int, int] | None] = BoundedMemo()


# The shape the service takes in its Idempotency-Key header.
_SERVICE_KEY = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.:]{0,127}$")


def service_key(key: str) -> str:
    """The core's idempotency key as the service accepts it: as it is when it fits, else a
    digest of it (the same key always maps to the same digest, which is all that matters)."""
    if _SERVICE_KEY.match(key):
        return key
    return "aiops-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class Runner:
    """Preconditions and execution against one rate limiter."""

    def __init__(
        self, cfg: RateLimiterConfig, ctx: PluginContext, api: RateLimiterApi, observer: Observer
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.api = api
        self.observer = observer
        self.limiter = " ".join(cfg.admin_bases())
        self._run = Dispatch(
            "ratelimiter",
            "action",
            ACTIONS,
            {
                RESET_COUNTER: self._reset_counter,
                UPDATE_LIMIT: self._update_limit,
                RESTART_NODE: lambda p, _key: self._restart_node(p.node),
            },
        )

    # -- preconditions -----------------------------------------------------------------------

    async def preconditions(self, action: str, params: BaseModel) -> list[str]:
        try:
            if action in (RESET_COUNTER, UPDATE_LIMIT) and isinstance(params, KeyParams):
                return await self._key_reasons(action, params.key)
            if action == RESTART_NODE and isinstance(params, NodeParams):
                return await self._restart_reasons(params.node)
        except PluginError as err:
            return [f"cannot check the rate limiter's live state: {err}"]
        return [f"ratelimiter has no action {action!r} taking {type(params).__name__}"]

    async def _key_reasons(self, action: str, key: str) -> list[str]:
        counter, limit = await asyncio.gather(self.api.counter(key), self.api.limit(key))
        if counter.count > 0:
            return []
        if action == RESET_COUNTER:
            return [f"key {key!r} has nothing counted in its window: there is nothing to reset"]
        if limit.source == "override":
            return []
        return [
            f"no key {key!r}: nothing counts it and no per-key limit is on record for it "
            f"(a mistyped key?)"
        ]

    async def _restart_reasons(self, node: str) -> list[str]:
        reasons = []
        if self.ctx.workload is None:
            reasons.append(
                "the Subject has no workload (spec.workload): nothing can restart a node"
            )
        members = await self.observer.members()
        names = [m.name for m in members]
        if node not in names:
            reasons.append(
                f"{node} is not a node of this rate limiter (known: {', '.join(names) or 'none'})"
            )
        for m in members:
            if m.name != node and m.state is MemberState.DOWN:
                reasons.append(
                    f"node {m.name} is down ({m.message}): no node is restarted while "
                    f"another node is down"
                )
        return reasons

    # -- execution ---------------------------------------------------------------------------

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await once(_DONE, (self.limiter, key), lambda: self._run(action, params, key))

    async def _reset_counter(self, p: KeyParams, key: str) -> ActionResult:
        dropped = await self.api.reset(p.key, idempotency_key=service_key(key))
        return ActionResult(
            ok=True,
            message=f"reset key {p.key!r}: {dropped} request(s) forgotten",
            detail={"dropped": dropped},
        )

    async def _update_limit(self, p: LimitParams, key: str) -> ActionResult:
        before = await self.api.limit(p.key)
        replaced = (before.limit, before.window_ms) if before.source == "override" else None
        # Remembered before the write: if the write lands and its answer is lost, undo still
        # knows what to put back.
        _REPLACED.remember((self.limiter, key), replaced)
        await self.api.put_limit(p.key, p.limit, p.window_ms)
        was = (
            f"{replaced[0]} per {replaced[1]} ms"
            if replaced
            else f"no per-key limit ({before.limit} per {before.window_ms} ms, {before.source})"
        )
        return ActionResult(
            ok=True,
            message=f"key {p.key!r} now limited to {p.limit} per {p.window_ms} ms (was {was})",
            detail={
                "previous": {"limit": replaced[0], "window_ms": replaced[1]} if replaced else None
            },
        )

    async def _restart_node(self, node: str) -> ActionResult:
        workload = self.ctx.workload
        if workload is None:
            raise PluginError("the Subject has no workload (spec.workload): cannot restart")
        address = (await self.observer.nodes()).addresses.get(node)
        if address is None:
            raise PluginError(f"{node} is not a node of this rate limiter")
        try:
            await workload.restart(node)
        except PluginError as err:
            raise PluginError(f"restart_node {node} failed: {err}") from err
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.restart_timeout_seconds
        while True:
            h = await probe(self.ctx.http, address, self.cfg.request_timeout_seconds)
            if h.redis_ok and h.node_id in (None, node):
                return ActionResult(
                    ok=True, message=f"node {node} restarted, serving and reaching Redis"
                )
            if loop.time() >= deadline:
                return ActionResult(
                    ok=False,
                    message=f"node {node} was restarted but does not serve with Redis after "
                    f"{self.cfg.restart_timeout_seconds:.0f} s: {h.problem}",
                )
            await asyncio.sleep(0.5)

    async def undo(self, action: str, params: BaseModel, key: str) -> ActionResult:
        if action != UPDATE_LIMIT or not isinstance(params, LimitParams):
            raise PluginError(f"ratelimiter cannot undo {action!r}")
        memo = (self.limiter, key)
        if memo not in _REPLACED:
            raise PluginError(
                f"no record of the limit update_limit replaced on key {params.key!r} (the "
                f"operator restarted since?); set the limit wanted with update_limit"
            )
        replaced = _REPLACED[memo]
        if replaced is None:
            removed = await self.api.delete_limit(params.key)
            message = (
                f"removed key {params.key!r}'s per-key limit: the default applies again"
                if removed
                else f"key {params.key!r} had no per-key limit left"
            )
        else:
            await self.api.put_limit(params.key, *replaced)
            message = f"key {params.key!r} limited to {replaced[0]} per {replaced[1]} ms again"
        _REPLACED.pop(memo)
        _DONE.pop(memo)  # the action may run again after its undo
        return ActionResult(ok=True, message=message)
