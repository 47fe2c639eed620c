"""`RateLimiterPlugin`: the contract's face of this package (entry point `ratelimiter` in
`aiops.subjects`)."""

from __future__ import annotations

from typing import ClassVar, cast

from pydantic import BaseModel

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import (
    ActionResult,
    ActionSpec,
    FaultSpec,
    Invariant,
    Observation,
    RunbookEntry,
    SubjectPlugin,
    Violation,
    utcnow,
)
from ratelimiter_subject import faults, observation
from ratelimiter_subject.actions import ACTIONS, Runner
from ratelimiter_subject.api import RateLimiterApi
from ratelimiter_subject.config import RateLimiterConfig
from ratelimiter_subject.invariants import INVARIANTS, evaluate
from ratelimiter_subject.redis_truth import RedisTruth
from ratelimiter_subject.runbook import RUNBOOK


class RateLimiterPlugin(SubjectPlugin):
    type_name: ClassVar[str] = "ratelimiter"
    config_model: ClassVar[type[BaseModel]] = RateLimiterConfig
    invariants: ClassVar[tuple[Invariant, ...]] = INVARIANTS
    actions: ClassVar[tuple[ActionSpec, ...]] = ACTIONS
    runbook: ClassVar[tuple[RunbookEntry, ...]] = RUNBOOK
    faults: ClassVar[tuple[FaultSpec, ...]] = faults.FAULTS

    def __init__(self, config: BaseModel, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.cfg = cast(RateLimiterConfig, config)
        timeout = self.cfg.request_timeout_seconds
        self.api = RateLimiterApi(self.cfg.admin_bases(), ctx.http, timeout)
        self.truth = (
            RedisTruth(str(self.cfg.redis_url), self.cfg.key_prefix, timeout)
            if self.cfg.redis_url is not None
            else None
        )
        self.observer = observation.Observer(
            self.cfg, self.api, ctx.http, ctx.prometheus, self.truth
        )
        self.runner = Runner(self.cfg, ctx, self.api, self.observer)
        self.chaos = faults.Faults(self.cfg, ctx, self.api, self.observer, self.truth)

    async def observe(self) -> Observation:
        reads = await self.observer.read()
        return observation.build(reads, utcnow())

    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        return evaluate(obs, invariants)

    async def preconditions(self, action: str, params: BaseModel, obs: Observation) -> list[str]:
        # `obs` may be seconds old; every rule is checked against the limiter as it is now.
        return await self.runner.preconditions(action, params)

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self.runner.execute(action, params, key)

    async def undo(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self.runner.undo(action, params, key)

    async def inject(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        return await self.chaos.inject(fault, params, target)

    async def revert(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        return await self.chaos.revert(fault, params, target)

    async def close(self) -> None:
        if self.truth is not None:
            await self.truth.close()
