"""Whose evict-leader scheduler is it, against the PD stand-in: ownership outlives the operator
process (the Incident records the action with its key before it is sent), an interrupted
action removes only its own scheduler, a person's is never removed without an Approval, and
the runbook's plans pass the real policy gate (blast radius names TiKV's target store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops.subjects.contract import ActionRecord, PluginError, SubjectPlugin
from aiops.vocabulary import Check, Outcome, Verdict
from tests.fixtures.pd_standin import PdStandIn
from tests.fixtures.tikv_doubles import FakeWorkload
from tests.fixtures.tikv_plugin import MakePlugin, gate, params, runbook_plan
from tikv_subject.ledger import LEDGER

# The plugin's HTTP client is closed by make_plugin's teardown, on the fixtures' loop: the
# tests run on it too, or their kept-alive connections belong to a loop already closed.
pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "0a1b2c3d-a1"  # as the incident loop makes them: uid prefix and step id


def record(
    action: str,
    store: str,
    key: str = KEY,
    result: Outcome = Outcome.RUNNING,
    started: datetime | None = None,
    **values: Any,
) -> ActionRecord:
    return ActionRecord(
        incident="tikv-high-latency-x1",
        action=action,
        params={"store": store, **values},
        key=key,
        started_at=started or datetime.now(UTC) - timedelta(seconds=5),
        result=result,
    )


def after_a_restart(make_plugin: MakePlugin, pd: PdStandIn, *records: ActionRecord) -> Any:
    """A plugin as a freshly started operator builds it: nothing in its process's memory, the
    Incidents' records readable."""
    plugin: Any = make_plugin(pd)
    for sid in pd.stores:
        LEDGER.release(plugin.cluster, sid)

    async def on_record() -> list[ActionRecord]:
        return list(records)

    plugin.ctx.records = on_record
    return plugin


def leftovers(plugin: SubjectPlugin, obs: Any) -> list[str]:
    violations = plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
    return [v.entity for v in violations if v.invariant == "evict_leader_leftover"]


# -- finding 1: ownership survives the operator --------------------------------------------------


async def test_the_resent_evict_leader_after_a_restart_recognises_its_own_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # The killed operator had sent the POST; its Incident recorded the action Running first.
    pd_standin.evict(1)
    plugin = after_a_restart(make_plugin, pd_standin, record("evict_leader", "store-1"))
    obs = await plugin.observe()
    assert leftovers(plugin, obs) == []  # owned, by the record: not a leftover
    p = params(plugin, "evict_leader", store="store-1")
    assert await plugin.preconditions("evict_leader", p, obs) == []
    posts = len(pd_standin.asked("POST", "/schedulers"))
    result = await plugin.execute("evict_leader", p, KEY)  # sent again, same key
    assert result.ok, result.message
    assert len(pd_standin.asked("POST", "/schedulers")) == posts  # not added twice
    assert (await plugin.undo("evict_leader", p, KEY)).ok
    assert pd_standin.schedulers.count("evict-leader-scheduler") == 0


async def test_a_resent_evict_leader_that_fails_removes_its_own_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.evict(1)
    pd_standin.drains = False  # the leaders never move: the re-sent action times out
    plugin = after_a_restart(make_plugin, pd_standin, record("evict_leader", "store-1"))
    plugin.cfg = plugin.runner.cfg = plugin.cfg.model_copy(update={"wait_timeout_seconds": 0.05})
    result = await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), KEY)
    assert not result.ok and "its evict-leader scheduler was removed" in result.message
    assert pd_standin.evicted == {}


async def test_release_removes_the_interrupted_actions_own_scheduler_and_nothing_else(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.evict(2)  # restart_store's drain, interrupted
    pd_standin.evict(3)  # a person's, added with pd-ctl
    plugin = after_a_restart(make_plugin, pd_standin, record("restart_store", "store-2"))
    p2 = params(plugin, "restart_store", store=2)
    other = await plugin.release("restart_store", p2, "another-key")
    assert other.ok and "left alone" in other.message
    person = await plugin.release("evict_leader", params(plugin, "evict_leader", store=3), KEY)
    assert person.ok and "not this operator's" in person.message
    assert sorted(pd_standin.evicted) == [2, 3]
    released = await plugin.release("restart_store", p2, KEY)
    assert released.ok and "was removed" in released.message
    assert sorted(pd_standin.evicted) == [3]
    again = await plugin.release("restart_store", p2, KEY)  # idempotent
    assert again.ok and "has no evict-leader scheduler" in again.message


# -- finding 3: a person's scheduler --------------------------------------------------------------


async def test_execute_autonomy_never_removes_a_persons_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.evict(3)  # added on purpose by a person: no record of ours
    plugin = after_a_restart(make_plugin, pd_standin)
    obs = await plugin.observe()
    assert leftovers(plugin, obs) == ["store-3"]
    (entry,) = [e for e in plugin.runbook if e.invariant == "evict_leader_leftover"]
    for step in entry.steps:  # the runbook's remedy, through the real gate
        d = await gate(plugin, step.action, {"store": "store-3"})
        assert (d.verdict, d.check) == (Verdict.REFUSED, Check.PRECONDITION), d.reason
        assert "not added by this operator" in d.reason
    with pytest.raises(PluginError, match="not added by this operator"):
        await plugin.execute(
            "remove_evict_leader", params(plugin, "remove_evict_leader", store=3), "k"
        )
    assert sorted(pd_standin.evicted) == [3]
    # Removing anyone's is high risk: it waits for a person under every autonomy.
    for autonomy in ("execute", "propose"):
        d = await gate(plugin, "remove_any_evict_leader", {"store": "store-3"}, autonomy)
        assert d.verdict == Verdict.AWAIT_APPROVAL, (autonomy, d.reason)
    d = await gate(plugin, "remove_any_evict_leader", {"store": 3}, approved=True)
    assert d.verdict == Verdict.RUN and d.params is not None
    assert (await plugin.execute("remove_any_evict_leader", d.params, "k2")).ok
    assert pd_standin.evicted == {}


async def test_our_own_lapsed_scheduler_is_removed_without_a_person(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.evict(1)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    kept = record("evict_leader", "store-1", result=Outcome.SUCCEEDED, started=long_ago)
    plugin = after_a_restart(make_plugin, pd_standin, kept)
    obs = await plugin.observe()
    assert leftovers(plugin, obs) == ["store-1"]  # its keep_for_seconds ran out
    d = await gate(plugin, "remove_evict_leader", {"store": "store-1"})
    assert d.verdict == Verdict.RUN and d.params is not None, d.reason
    assert (await plugin.execute("remove_evict_leader", d.params, "k")).ok
    assert pd_standin.evicted == {}


async def test_unreadable_records_refuse_the_removal(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.evict(1)
    plugin = after_a_restart(make_plugin, pd_standin)

    async def unreadable() -> list[ActionRecord]:
        raise RuntimeError("the API server is not answering")

    plugin.ctx.records = unreadable
    d = await gate(plugin, "remove_evict_leader", {"store": "store-1"})
    assert d.verdict == Verdict.REFUSED and "cannot tell whether" in d.reason
    assert sorted(pd_standin.evicted) == [1]


# -- finding 4: the gate reads the target store ---------------------------------------------------


async def test_the_store_down_plan_passes_the_real_gate(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_heartbeat_age(2, 25)  # PD: Disconnected
    pods = FakeWorkload(pd_standin)  # deleting a store's pod brings the store back
    plugin = make_plugin(pd_standin, workload=pods)
    plan = await runbook_plan(plugin, "store_down", "store-2")
    assert [s.action for s in plan.steps] == ["restart_store"]
    for step in plan.steps:
        d = await gate(plugin, step.action, step.params)
        assert (d.verdict, d.check) == (Verdict.AWAIT_APPROVAL, Check.APPROVAL), d.reason
        d = await gate(plugin, step.action, step.params, approved=True)
        assert d.verdict == Verdict.RUN and d.params is not None, d.reason
        assert (await plugin.execute(step.action, d.params, "k")).ok
    assert pods.restarted == ["tikv-1"]
    # Another store while store-2 is down: one member disrupted at a time.
    pd_standin.set_heartbeat_age(2, 25)
    d = await gate(plugin, "restart_store", {"store": "store-1"}, approved=True)
    assert d.check == Check.BLAST_RADIUS and "store-2 already down" in d.reason
