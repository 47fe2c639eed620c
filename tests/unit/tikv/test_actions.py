"""Actions against FakePd: the evict-leader scheduler is removed on every exit path that does
not hand it to its owner, preconditions read live state, and faults do what they say."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from aiops.subjects.contract import PluginError, SubjectPlugin
from tests.fixtures.tikv_plugin import MakePlugin
from tests.unit.tikv.fakepd import FakePd, FakeWorkload


def params(plugin: SubjectPlugin, action: str, **values: Any) -> BaseModel:
    return plugin.action(action).params.model_validate(values)


async def reasons(plugin: SubjectPlugin, action: str, **values: Any) -> list[str]:
    return await plugin.preconditions(
        action, params(plugin, action, **values), await plugin.observe()
    )


def fail_after_add(pd: FakePd, answer: httpx.Response | None = None) -> None:
    """Once the evict-leader scheduler is added, PD stops answering store reads."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if pd.evicted and request.url.path.endswith("/stores"):
            if answer is not None:
                return answer
            raise httpx.ReadTimeout("timed out", request=request)
        return None

    pd.fault = fault


# -- evict_leader: every exit path --------------------------------------------------------------


async def test_evict_leader_drains_and_undo_removes_it_twice_safely(
    make_plugin: MakePlugin,
) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    p = params(plugin, "evict_leader", store="store-1")
    result = await plugin.execute("evict_leader", p, "inc-1/evict")
    assert result.ok, result.message
    assert pd.evicted == {1}
    assert (await plugin.observe()).metrics["leader_count"]["store-1"] == 0
    assert (await plugin.undo("evict_leader", p, "inc-1/evict")).ok
    assert pd.evicted == set()
    again = await plugin.undo("evict_leader", p, "inc-1/evict")
    assert again.ok and "had no evict-leader scheduler" in again.message


async def test_a_failure_after_the_add_removes_the_scheduler(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    fail_after_add(pd)
    plugin = make_plugin(pd)
    with pytest.raises(PluginError) as err:
        await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), "k1")
    assert "POST /pd/api/v1/schedulers" in pd.requests
    assert pd.evicted == set()
    assert "ReadTimeout" in str(err.value)
    assert "its evict-leader scheduler was removed" in str(err.value)


async def test_leaders_that_never_drain_leave_no_scheduler(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.drains = False
    plugin = make_plugin(pd, waitTimeoutSeconds=0.05)
    result = await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), "k1")
    assert not result.ok
    assert "still holds 40 leader(s)" in result.message
    assert pd.evicted == set()


async def test_cancellation_while_draining_removes_the_scheduler(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.drains = False
    added = asyncio.Event()

    def notice(request: httpx.Request) -> None:
        if request.method == "POST":
            added.set()

    pd.fault = notice
    plugin = make_plugin(pd, waitTimeoutSeconds=30)
    task = asyncio.create_task(
        plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), "k1")
    )
    await asyncio.wait_for(added.wait(), timeout=10)
    await asyncio.sleep(0.05)  # into the drain wait
    assert pd.evicted == {1}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pd.evicted == set()


async def test_when_removal_fails_too_the_leftover_is_reported(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    down = httpx.Response(503, text="upstream connect error")

    def fault(request: httpx.Request) -> httpx.Response | None:
        if pd.evicted and request.url.path.endswith("/stores"):
            return down
        if request.method == "DELETE":
            return down
        return None

    pd.fault = fault
    plugin = make_plugin(pd)
    with pytest.raises(PluginError, match="evict_leader_leftover invariant will report it"):
        await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), "k1")
    pd.fault = None  # PD recovers; the scheduler is still there and nobody owns it
    obs = await plugin.observe()
    violations = plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
    assert [(v.invariant, v.entity) for v in violations] == [("evict_leader_leftover", "store-1")]
    # ... and the runbook's remedy clears it.
    (entry,) = [e for e in plugin.runbook if e.invariant == "evict_leader_leftover"]
    (step,) = entry.steps
    p = params(plugin, step.action, store=violations[0].entity)
    assert await plugin.preconditions(step.action, p, obs) == []
    assert (await plugin.execute(step.action, p, "k2")).ok
    assert pd.evicted == set()


async def test_a_retried_key_does_not_act_twice(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    p = params(plugin, "evict_leader", store=2)
    first = await plugin.execute("evict_leader", p, "inc-9/1")
    second = await plugin.execute("evict_leader", p, "inc-9/1")
    assert first.ok and second.ok and second.detail["replayed"] is True
    assert pd.requests.count("POST /pd/api/v1/schedulers") == 1


# -- preconditions against live state ---------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "values"),
    [
        ("evict_leader", {"store": 1}),
        ("restart_store", {"store": 3}),
        ("transfer_leader", {"region_id": 12, "to_store": 3}),
    ],
)
async def test_nothing_touches_a_store_while_another_is_down(
    make_plugin: MakePlugin, action: str, values: dict[str, Any]
) -> None:
    pd = FakePd(stores="stores_disconnected.json")
    plugin = make_plugin(pd, workload=FakeWorkload(pd))
    found = await reasons(plugin, action, **values)
    assert any(
        r.startswith("store-2 (tikv-1.tikv-peer.tikv.svc:20160) is Disconnected") for r in found
    ), found


async def test_the_down_store_itself_may_be_restarted(make_plugin: MakePlugin) -> None:
    pd = FakePd(stores="stores_disconnected.json")
    plugin = make_plugin(pd, workload=FakeWorkload(pd))
    assert await reasons(plugin, "restart_store", store="store-2") == []


async def test_removing_an_eviction_is_allowed_while_a_store_is_down(
    make_plugin: MakePlugin,
) -> None:
    plugin = make_plugin(FakePd(stores="stores_disconnected.json"))
    assert await reasons(plugin, "remove_evict_leader", store=1) == []


async def test_preconditions_read_pd_now_not_the_observation(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    obs = await plugin.observe()  # all Up here
    pd.store(3)["store"]["state_name"] = "Disconnected"
    found = await plugin.preconditions("evict_leader", params(plugin, "evict_leader", store=1), obs)
    assert any("store-3" in r for r in found)


async def test_preconditions_refuse_when_pd_cannot_be_read(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    obs = await plugin.observe()
    pd.fault = lambda r: httpx.Response(500, text="etcd unavailable")
    (reason,) = await plugin.preconditions(
        "restart_store", params(plugin, "restart_store", store=1), obs
    )
    assert reason.startswith("cannot check the cluster's live state") and "HTTP 500" in reason


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"region_id": 99, "to_store": 2}, "PD knows no region 99"),
        ({"region_id": 12, "to_store": 4}, "store-4 is not a store of this cluster"),
    ],
)
async def test_transfer_leader_checks_the_region_and_target_exist(
    make_plugin: MakePlugin, values: dict[str, Any], complaint: str
) -> None:
    assert complaint in " ".join(await reasons(make_plugin(FakePd()), "transfer_leader", **values))


async def test_transfer_leader_needs_an_up_target_holding_a_voter(
    make_plugin: MakePlugin,
) -> None:
    pd = FakePd()
    pd.regions[12]["peers"] = [p for p in pd.regions[12]["peers"] if p["store_id"] != 2]
    plugin = make_plugin(pd)
    found = await reasons(plugin, "transfer_leader", region_id=12, to_store=2)
    assert found == ["store-2 holds no voter of region 12 (its voters are on store-1, store-3)"]
    pd.store(3)["store"]["state_name"] = "Offline"
    found = await reasons(plugin, "transfer_leader", region_id=12, to_store=3)
    assert found == ["target store-3 is Offline, not Up"]


async def test_transfer_leader_moves_the_leader(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    assert await reasons(plugin, "transfer_leader", region_id=12, to_store=3) == []
    p = params(plugin, "transfer_leader", region_id=12, to_store="store-3")
    result = await plugin.execute("transfer_leader", p, "k1")
    assert result.ok, result.message
    assert pd.regions[12]["leader"]["store_id"] == 3
    again = await plugin.execute("transfer_leader", p, "k2")  # already there: no new operator
    assert again.ok and pd.requests.count("POST /pd/api/v1/operators") == 1


async def test_evict_leader_refuses_a_store_someone_else_evicts(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(FakePd(schedulers="schedulers_evicting.json"))
    found = await reasons(plugin, "evict_leader", store=2)
    assert found == [
        "store-2 already has an evict-leader scheduler this operator did not add; "
        "remove_any_evict_leader (with an Approval) clears it"
    ]
    with pytest.raises(PluginError, match="did not add"):
        await plugin.execute("evict_leader", params(plugin, "evict_leader", store=2), "k1")


async def test_evict_leader_needs_somewhere_for_the_leaders_to_go(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    for store in (2, 3):  # our own evictions, owned and live
        assert (
            await plugin.execute(
                "evict_leader", params(plugin, "evict_leader", store=store), f"k{store}"
            )
        ).ok
    found = await reasons(plugin, "evict_leader", store=1)
    assert found == [
        "no other Up store without an evict-leader scheduler could take store-1's leaders"
    ]


async def test_restart_store_refuses_to_cost_a_region_its_quorum(make_plugin: MakePlugin) -> None:
    # Region 40's peer on store-3 is pending; restarting store-1 leaves one healthy voter.
    pd = FakePd(checks={"pending-peer": "regions_pending_peer.json"})
    plugin = make_plugin(pd, workload=FakeWorkload(pd))
    found = await reasons(plugin, "restart_store", store=1)
    assert found == [
        "restarting store-1 would leave 1 region(s) without a quorum of healthy voters (regions 40)"
    ]
    assert await reasons(plugin, "restart_store", store=3) == []  # the lagging one itself


async def test_restart_store_needs_a_workload(make_plugin: MakePlugin) -> None:
    found = await reasons(make_plugin(FakePd()), "restart_store", store=1)
    assert found == ["the Subject has no workload (spec.workload): nothing can restart a store"]


# -- restart_store ------------------------------------------------------------------------------


async def test_restart_store_drains_restarts_and_removes_the_eviction(
    make_plugin: MakePlugin,
) -> None:
    pd = FakePd()
    workload = FakeWorkload(pd)
    plugin = make_plugin(pd, workload=workload)
    result = await plugin.execute("restart_store", params(plugin, "restart_store", store=2), "k")
    assert result.ok, result.message
    assert workload.restarted == ["tikv-1"]  # the pod, from the store's address
    # Leaders drained before the pod went, the eviction removed after it came back.
    order = [r for r in pd.requests if r.startswith(("POST", "DELETE", "RESTART"))]
    assert order == [
        "POST /pd/api/v1/schedulers",
        "RESTART tikv-1",
        "DELETE /pd/api/v1/schedulers/evict-leader-scheduler-2",
    ]
    assert pd.evicted == set()
    assert "its evict-leader scheduler was removed" in result.message


async def test_restart_store_failing_in_the_workload_removes_the_eviction(
    make_plugin: MakePlugin,
) -> None:
    pd = FakePd()
    workload = FakeWorkload(pd)
    workload.error = PluginError("no pod 'tikv-1' matches app=tikv in namespace tikv")
    plugin = make_plugin(pd, workload=workload)
    with pytest.raises(PluginError, match=r"no pod 'tikv-1'.*evict-leader scheduler was removed"):
        await plugin.execute("restart_store", params(plugin, "restart_store", store=2), "k")
    assert pd.evicted == set()


async def test_restart_store_that_does_not_come_back_says_so(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    workload = FakeWorkload(pd)
    pd.restarted = lambda member: None  # type: ignore[method-assign]  # stays on the old start
    plugin = make_plugin(pd, workload=workload, restartTimeoutSeconds=0.05)
    result = await plugin.execute("restart_store", params(plugin, "restart_store", store=2), "k")
    assert not result.ok
    assert "was not Up again" in result.message
    assert pd.evicted == set()


async def test_workload_members_override_the_address_pattern(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    workload = FakeWorkload(pd)
    pd.restarted = lambda member: pd.store(1)["status"].update(  # type: ignore[method-assign]
        start_ts="2026-03-02T12:00:00Z"
    )
    plugin = make_plugin(pd, workload=workload, workloadMembers={"store-1": "tikv-node-a"})
    assert (await plugin.execute("restart_store", params(plugin, "restart_store", store=1), "k")).ok
    assert workload.restarted == ["tikv-node-a"]


# -- faults -------------------------------------------------------------------------------------


async def test_leave_evict_leader_fault_is_noticed_and_reverted(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    no = plugin.fault("leave_evict_leader").params()
    assert (await plugin.inject("leave_evict_leader", no, "store-3")).ok
    obs = await plugin.observe()
    violations = plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
    assert [(v.invariant, v.entity) for v in violations] == [("evict_leader_leftover", "store-3")]
    assert (await plugin.revert("leave_evict_leader", no, "store-3")).ok
    assert pd.evicted == set()


async def test_kill_store_fault_stops_the_member(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    workload = FakeWorkload(pd)
    plugin = make_plugin(pd, workload=workload)
    no = plugin.fault("kill_store").params()
    assert (await plugin.inject("kill_store", no, "store-3")).ok
    assert workload.killed == ["tikv-2"]
    with pytest.raises(PluginError, match="not a store"):
        await plugin.inject("kill_store", no, "tikv-2")
