"""`TikvPlugin`: the contract's face of this package (entry point `tikv` in `aiops.subjects`)."""

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
    PluginError,
    RunbookEntry,
    SubjectPlugin,
    Violation,
    utcnow,
)
from tikv_subject import faults, observation
from tikv_subject.actions import ACTIONS, Runner
from tikv_subject.config import TikvConfig
from tikv_subject.invariants import INVARIANTS, evaluate
from tikv_subject.ledger import LEDGER
from tikv_subject.pd import PdClient
from tikv_subject.queries import build
from tikv_subject.runbook import RUNBOOK


class TikvPlugin(SubjectPlugin):
    type_name: ClassVar[str] = "tikv"
    config_model: ClassVar[type[BaseModel]] = TikvConfig
    invariants: ClassVar[tuple[Invariant, ...]] = INVARIANTS
    actions: ClassVar[tuple[ActionSpec, ...]] = ACTIONS
    runbook: ClassVar[tuple[RunbookEntry, ...]] = RUNBOOK
    faults: ClassVar[tuple[FaultSpec, ...]] = faults.FAULTS

    def __init__(self, config: BaseModel, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.cfg = cast(TikvConfig, config)
        urls = [str(u) for u in self.cfg.pd_urls]
        self.pd = PdClient(urls, ctx.http, self.cfg.request_timeout_seconds)
        self.queries = build(self.cfg)
        # Identifies the cluster in the process-wide ledgers: any of its PD URLs reaches it.
        self.cluster = " ".join(sorted(u.rstrip("/") for u in urls))
        self.runner = Runner(self.cfg, ctx, self.pd, self.cluster)
        self.chaos = faults.Faults(self.runner, ctx)

    async def observe(self) -> Observation:
        reads = await observation.read(self.pd, self.ctx.prometheus, self.queries)
        try:
            owners = await self.runner.owners(reads.evicted)
        except PluginError:
            # Records unreadable: every eviction the process itself does not own is reported
            # as a leftover; removing one checks ownership again and refuses while unsure.
            owners = {sid: LEDGER.owner(self.cluster, sid) for sid in reads.evicted}
        return observation.build(reads, self.cfg, owners, utcnow())

    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        return evaluate(obs, invariants, self.cfg.leader_imbalance_min_leaders)

    async def preconditions(self, action: str, params: BaseModel, obs: Observation) -> list[str]:
        # `obs` may be seconds old; every rule is checked against PD as it is now.
        return await self.runner.preconditions(action, params)

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self.runner.execute(action, params, key)

    async def undo(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self.runner.undo(action, params)

    async def release(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self.runner.release(action, params, key)

    async def inject(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        return await self.chaos.inject(fault, params, target)

    async def revert(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        return await self.chaos.revert(fault, params, target)
