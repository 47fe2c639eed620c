"""Every entry of the TiKV runbook, from the PD state that breaks its invariant to the runbook
agent's plan and each step through the real policy gate, against the PD stand-in: what runs,
what waits for a person, and what is refused (so the incident escalates)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from aiops.subjects.contract import SubjectPlugin
from aiops.vocabulary import Check, Verdict
from tests.fixtures.pd_standin import PdStandIn, region
from tests.fixtures.tikv_doubles import FakeWorkload, StubPrometheus
from tests.fixtures.tikv_plugin import STATUS, MakePlugin, gate, runbook_plan
from tikv_subject.runbook import RUNBOOK

Setup = Callable[[PdStandIn, StubPrometheus, SubjectPlugin], Awaitable[None]]


async def store_down(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    pd.set_heartbeat_age(2, 25)  # PD: Disconnected


async def no_live_store(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    for sid in (1, 2, 3):
        pd.set_heartbeat_age(sid, 60)
    prom.series = {"latency": [], "up": []}


async def high_latency(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    prom.series["latency"] = [({"instance": STATUS[s]}, 0.9 if s == 2 else 0.004) for s in STATUS]


async def low_disk_space(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    pd.stores[3].available = 8 << 30  # of 100 GiB


async def region_health(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    pd.set_region_check("pending-peer", [region(40, pending=(3,))])


async def leader_imbalance(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    for sid, leaders in ((1, 100), (2, 10), (3, 40)):
        pd.stores[sid].leader_count = leaders


async def evict_leader_leftover(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    # The Chaos fault: a scheduler this operator did not add, so to it a person's.
    spec = plugin.fault("leave_evict_leader").params()
    assert (await plugin.inject("leave_evict_leader", spec, "store-2")).ok


async def metrics_missing(pd: PdStandIn, prom: StubPrometheus, plugin: SubjectPlugin) -> None:
    prom.series["up"] = [({"instance": STATUS[s]}, 1.0) for s in (1, 2)]


SETUPS: dict[str, Setup] = {
    "store_down": store_down,
    "no_live_store": no_live_store,
    "high_latency": high_latency,
    "low_disk_space": low_disk_space,
    "region_health": region_health,
    "leader_imbalance": leader_imbalance,
    "evict_leader_leftover": evict_leader_leftover,
    "metrics_missing": metrics_missing,
}

# invariant -> (the plan's steps, the gate's verdict on each under autonomy execute). A step
# that waits runs once a person approves; a refused one makes the incident escalate.
PLANS: dict[str, tuple[list[str], Verdict, Check]] = {
    "store_down": (["restart_store"], Verdict.AWAIT_APPROVAL, Check.APPROVAL),  # high risk
    "high_latency": (["evict_leader"], Verdict.AWAIT_APPROVAL, Check.APPROVAL),  # medium
    # A person's scheduler: remove_evict_leader refuses it (remove_any_evict_leader needs an
    # Approval), so the runbook escalates instead of undoing a person's maintenance.
    "evict_leader_leftover": (["remove_evict_leader"], Verdict.REFUSED, Check.PRECONDITION),
}


def test_every_runbook_entry_is_tested_here() -> None:
    assert set(SETUPS) == {e.invariant for e in RUNBOOK}


@pytest.mark.parametrize("invariant", list(SETUPS))
async def test_the_runbook_plan_through_the_real_gate(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus, invariant: str
) -> None:
    workload = FakeWorkload(pd_standin)
    plugin = make_plugin(pd_standin, workload=workload)
    await SETUPS[invariant](pd_standin, prom, plugin)
    obs = await plugin.observe()
    broken = [
        v
        for v in plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
        if v.invariant == invariant
    ]
    assert broken, f"the setup of {invariant} broke nothing"
    entity = broken[0].entity
    plan = await runbook_plan(plugin, invariant, entity)
    steps, verdict, check = PLANS.get(invariant, ([], Verdict.RUN, Check.AUTONOMY))
    assert [s.action for s in plan.steps] == steps  # none: a diagnosis for a person
    for step in plan.steps:
        for autonomy in ("execute", "propose"):
            d = await gate(plugin, step.action, step.params, autonomy)
            assert (d.verdict, d.check) == (verdict, check), (autonomy, d.reason)
            if verdict is Verdict.REFUSED:
                assert "not added by this operator" in d.reason
        d = await gate(plugin, step.action, step.params, "observe")
        assert (d.verdict, d.check) == (Verdict.REFUSED, Check.AUTONOMY)
        if verdict is Verdict.REFUSED:
            continue
        d = await gate(plugin, step.action, step.params, approved=True)
        assert d.verdict == Verdict.RUN and d.params is not None, d.reason
        result = await plugin.execute(step.action, d.params, f"{invariant}-1")
        assert result.ok, result.message
    if invariant == "store_down":
        assert workload.restarted == ["tikv-1"]
        assert pd_standin.state_name(pd_standin.stores[2], pd_standin.now()) == "Up"
    if invariant == "high_latency":
        assert (await plugin.observe()).metrics["leader_count"]["store-2"] == 0
    if invariant == "evict_leader_leftover":
        assert set(pd_standin.evicted) == {2}  # left alone: a person removes it
        d = await gate(plugin, "remove_any_evict_leader", {"store": entity})
        assert (d.verdict, d.check) == (Verdict.AWAIT_APPROVAL, Check.APPROVAL), d.reason
