"""Actions against the PD stand-in (PD's own answers: a scheduler created or applied, "scheduler
existed", a removal answered 200 or 404 with a null body, stores Up, Disconnected, Down,
Offline and Tombstone by heartbeat age and node_state): the evict-leader scheduler is removed
on every exit path that does not hand it to its owner, each precondition passes and refuses
against live state, and each action does what it says."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from aiops.subjects.contract import ActionResult, PluginError, SubjectPlugin
from tests.fixtures.pd_standin import PdStandIn, Request, healthy, peer, region
from tests.fixtures.tikv_doubles import FakeWorkload
from tests.fixtures.tikv_plugin import MakePlugin

HALF_AN_HOUR = 31 * 60.0  # past PD's max-store-down-time: Down, not Disconnected


def key() -> str:
    """An idempotency key no other test uses (results are remembered process-wide)."""
    return f"inc-{uuid.uuid4().hex[:8]}/1"


def params(plugin: SubjectPlugin, action: str, **values: Any) -> BaseModel:
    return plugin.action(action).params.model_validate(values)


async def reasons(plugin: SubjectPlugin, action: str, **values: Any) -> list[str]:
    return await plugin.preconditions(
        action, params(plugin, action, **values), await plugin.observe()
    )


def once_added(pd: PdStandIn, then: Callable[[], None]) -> None:
    """Once PD has added an evict-leader scheduler, `then()` changes what PD answers."""

    def after(request: Request, status: int) -> None:
        if request.method == "POST" and request.path.endswith("/schedulers") and status == 200:
            pd.after = None
            then()

    pd.after = after


def writes(pd: PdStandIn) -> list[str]:
    return [f"{r.method} {r.path}" for r in pd.requests if r.method in ("POST", "DELETE")]


@pytest.fixture
def region_12(pd_standin: PdStandIn) -> dict[str, Any]:
    """Region 12: voters on stores 1 (leader), 2 and 3, a learner on store 4."""
    r = region(12)
    r["peers"].append(peer(124, 4, "Learner"))
    pd_standin.regions[12] = r
    return r


# -- evict_leader: every exit path --------------------------------------------------------------


@pytest.mark.parametrize("per_store", [False, True], ids=["pd-4.0+", "pd-before-4.0"])
async def test_evict_leader_drains_and_undo_removes_it_twice_safely(
    make_plugin: MakePlugin, per_store: bool
) -> None:
    # PD 4.0+ runs one evict-leader-scheduler (its removal answers 200 or 404 with a null body);
    # before 4.0, one evict-leader-scheduler-<id> per store ("The scheduler is removed." or
    # 404 "scheduler not found").
    pd = healthy(PdStandIn(per_store_evict=per_store))
    try:
        plugin = make_plugin(pd)
        p = params(plugin, "evict_leader", store="store-1")
        k = key()
        result = await plugin.execute("evict_leader", p, k)
        assert result.ok, result.message
        assert set(pd.evicted) == {1}
        name = "evict-leader-scheduler" + ("-1" if per_store else "")
        assert name in pd.schedulers
        assert (await plugin.observe()).metrics["leader_count"]["store-1"] == 0
        undone = await plugin.undo("evict_leader", p, k)
        assert undone.ok and "removed the evict-leader scheduler of store-1" in undone.message
        assert pd.evicted == {} and name not in pd.schedulers
        again = await plugin.undo("evict_leader", p, k)  # PD answers 404 now
        assert again.ok and "had no evict-leader scheduler" in again.message
    finally:
        pd.close()


async def test_a_second_eviction_is_applied_to_the_running_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    for store in (1, 2):
        assert (
            await plugin.execute("evict_leader", params(plugin, "evict_leader", store=store), key())
        ).ok
    assert sorted(pd_standin.evicted) == [1, 2]
    assert pd_standin.schedulers.count("evict-leader-scheduler") == 1
    assert (
        await plugin.execute(
            "remove_evict_leader", params(plugin, "remove_evict_leader", store=1), key()
        )
    ).ok
    # Removing one store's eviction leaves the other's (and the scheduler) in place.
    assert sorted(pd_standin.evicted) == [2] and "evict-leader-scheduler" in pd_standin.schedulers


def a_person_evicts_after_our_read(pd: PdStandIn, store: int) -> None:
    """A person adds a scheduler for `store` right after the action read PD's schedulers."""

    def after(request: Request, status: int) -> None:
        if request.method == "GET" and request.path == "/pd/api/v1/schedulers":
            pd.after = None
            pd.evict(store)

    pd.after = after


@pytest.mark.parametrize("action", ["evict_leader", "restart_store"])
async def test_a_scheduler_a_person_adds_meanwhile_is_left_alone(
    make_plugin: MakePlugin, action: str
) -> None:
    # PD before 4.0 answers our add "scheduler existed": nothing of ours was added, and the
    # cleanup must not remove the person's.
    pd = healthy(PdStandIn(per_store_evict=True))
    try:
        workload = FakeWorkload(pd)
        plugin = make_plugin(pd, workload=workload)
        a_person_evicts_after_our_read(pd, 1)
        with pytest.raises(PluginError, match=r"did not add a moment ago.*left alone"):
            await plugin.execute(action, params(plugin, action, store=1), key())
        assert (
            set(pd.evicted) == {1}
            and pd.asked("DELETE", "/schedulers/evict-leader-scheduler-1") == []
        )
        assert workload.restarted == []
        # ... and it is a leftover nobody of ours owns: removing it needs a person.
        obs = await plugin.observe()
        found = {
            (v.invariant, v.entity)
            for v in plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
        }
        assert ("evict_leader_leftover", "store-1") in found
        (why,) = await plugin.preconditions(
            "remove_evict_leader", params(plugin, "remove_evict_leader", store=1), obs
        )
        assert "not added by this operator" in why
    finally:
        pd.close()


async def test_before_pd_4_0_a_second_eviction_of_ours_on_a_store_drains_too(
    make_plugin: MakePlugin,
) -> None:
    # PD before 4.0 refuses to add the store's scheduler twice ("scheduler existed"): the
    # first of ours is in place, so the second action waits for the drain like the first.
    pd = healthy(PdStandIn(per_store_evict=True))
    try:
        plugin = make_plugin(pd)
        p = params(plugin, "evict_leader", store=1)
        assert (await plugin.execute("evict_leader", p, key())).ok
        second = await plugin.execute("evict_leader", p, key())
        assert second.ok, second.message
        assert pd.schedulers.count("evict-leader-scheduler-1") == 1
    finally:
        pd.close()


async def test_a_failure_after_the_add_removes_the_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # Once the scheduler is added, every PD stops answering store reads (headers, no body).
    once_added(pd_standin, lambda: pd_standin.answer("/stores", b"", length=4096, hang=True))
    plugin = make_plugin(pd_standin, requestTimeoutSeconds=0.3)
    with pytest.raises(PluginError) as err:
        await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), key())
    assert pd_standin.asked("POST", "/schedulers") == [0]
    assert pd_standin.evicted == {}
    assert "gave no complete answer within 0.3 s" in str(err.value)
    assert "its evict-leader scheduler was removed" in str(err.value)


async def test_leaders_that_never_drain_leave_no_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.drains = False
    plugin = make_plugin(pd_standin, waitTimeoutSeconds=0.05)
    result = await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), key())
    assert not result.ok
    assert "still holds 45 leader(s)" in result.message
    assert pd_standin.evicted == {}


async def test_cancellation_while_draining_removes_the_scheduler(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.drains = False
    plugin = make_plugin(pd_standin, waitTimeoutSeconds=30)
    task = asyncio.create_task(
        plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), key())
    )
    for _ in range(500):  # into the drain wait: the scheduler is there
        if pd_standin.evicted:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    assert set(pd_standin.evicted) == {1}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pd_standin.evicted == {}


async def test_when_removal_fails_too_the_leftover_is_reported(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    def pd_breaks() -> None:  # store reads and scheduler removals fail on every member
        pd_standin.answer("/stores", "upstream connect error", status=503)
        pd_standin.answer("/schedulers/.+", "upstream connect error", status=503)

    once_added(pd_standin, pd_breaks)
    plugin = make_plugin(pd_standin)
    with pytest.raises(PluginError, match="evict_leader_leftover invariant will report it"):
        await plugin.execute("evict_leader", params(plugin, "evict_leader", store=1), key())
    assert pd_standin.asked("DELETE", "/schedulers/evict-leader-scheduler-1") == [0, 1, 2]
    pd_standin.overrides.clear()  # PD recovers; the scheduler is still there, ours and lapsed
    obs = await plugin.observe()
    violations = plugin.evaluate(obs, {i.name: i for i in plugin.invariants})
    assert [(v.invariant, v.entity) for v in violations] == [("evict_leader_leftover", "store-1")]
    # ... and the runbook's remedy clears it without a person: it is this operator's.
    (entry,) = [e for e in plugin.runbook if e.invariant == "evict_leader_leftover"]
    (step,) = entry.steps
    p = params(plugin, step.action, store=violations[0].entity)
    assert await plugin.preconditions(step.action, p, obs) == []
    assert (await plugin.execute(step.action, p, key())).ok
    assert pd_standin.evicted == {}


async def test_a_retried_key_does_not_act_twice(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    p = params(plugin, "evict_leader", store=2)
    k = key()
    first = await plugin.execute("evict_leader", p, k)
    second = await plugin.execute("evict_leader", p, k)
    assert first.ok and second.ok and second.detail["replayed"] is True
    assert len(pd_standin.asked("POST", "/schedulers")) == 1


# -- preconditions against live state ---------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "state"), [(25.0, "Disconnected"), (HALF_AN_HOUR, "Down")], ids=["disconnected", "down"]
)
@pytest.mark.parametrize(
    ("action", "values"),
    [
        ("evict_leader", {"store": 1}),
        ("restart_store", {"store": 3}),
        ("transfer_leader", {"region_id": 12, "to_store": 3}),
    ],
)
async def test_nothing_touches_a_store_while_another_is_down(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
    region_12: dict[str, Any],
    action: str,
    values: dict[str, Any],
    age: float,
    state: str,
) -> None:
    plugin = make_plugin(pd_standin, workload=FakeWorkload(pd_standin))
    assert await reasons(plugin, action, **values) == []
    pd_standin.set_heartbeat_age(2, age)
    found = await reasons(plugin, action, **values)
    assert found == [
        f"store-2 (tikv-1.tikv-peer.tikv.svc:20160) is {state}: no store is touched while "
        "another store is down"
    ]


async def test_the_down_store_itself_may_be_restarted(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_heartbeat_age(2, 25)
    plugin = make_plugin(pd_standin, workload=FakeWorkload(pd_standin))
    assert await reasons(plugin, "restart_store", store="store-2") == []


async def test_leaders_are_not_evicted_from_a_store_that_is_down(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_heartbeat_age(2, HALF_AN_HOUR)
    found = await reasons(make_plugin(pd_standin), "evict_leader", store="store-2")
    assert found == ["store-2 is down (PD reports Down): no leaders to move off it"]


@pytest.mark.parametrize("action", ["evict_leader", "restart_store", "remove_evict_leader"])
async def test_a_tombstone_is_no_store_to_act_on(
    make_plugin: MakePlugin, pd_standin: PdStandIn, action: str
) -> None:
    # Store 9 is a Tombstone (node_state Removed): PD lists it only when asked for it.
    plugin = make_plugin(pd_standin, workload=FakeWorkload(pd_standin))
    found = await reasons(plugin, action, store="store-9")
    if action == "remove_evict_leader":
        assert found == []  # nothing to remove, nothing refused: removing is always safe
    else:
        assert found == [
            "store-9 is not a store of this cluster (PD has store-1, store-2, store-3)"
        ]


async def test_removing_an_eviction_is_allowed_while_a_store_is_down(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_heartbeat_age(2, 25)
    assert await reasons(make_plugin(pd_standin), "remove_evict_leader", store=1) == []


async def test_preconditions_read_pd_now_not_the_observation(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    obs = await plugin.observe()  # all Up here
    pd_standin.set_heartbeat_age(3, 25)
    found = await plugin.preconditions("evict_leader", params(plugin, "evict_leader", store=1), obs)
    assert any(
        r.startswith("store-3 (tikv-2.tikv-peer.tikv.svc:20160) is Disconnected") for r in found
    )


async def test_preconditions_refuse_when_pd_cannot_be_read(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin, workload=FakeWorkload(pd_standin))
    obs = await plugin.observe()
    for member in range(3):
        pd_standin.fail(member, "error")
    (reason,) = await plugin.preconditions(
        "restart_store", params(plugin, "restart_store", store=1), obs
    )
    assert reason.startswith("cannot check the cluster's live state") and "HTTP 500" in reason
    assert "redirect failed" in reason  # PD's own words


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"region_id": 99, "to_store": 2}, "PD knows no region 99"),  # PD: 404 ErrRegionNotFound
        ({"region_id": 12, "to_store": 5}, "store-5 is not a store of this cluster"),
    ],
)
async def test_transfer_leader_checks_the_region_and_target_exist(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
    region_12: dict[str, Any],
    values: dict[str, Any],
    complaint: str,
) -> None:
    found = await reasons(make_plugin(pd_standin), "transfer_leader", **values)
    assert complaint in " ".join(found)


async def test_transfer_leader_needs_an_up_target_holding_a_voter(
    make_plugin: MakePlugin, pd_standin: PdStandIn, region_12: dict[str, Any]
) -> None:
    pd_standin.add_store(4, leader_count=0)
    plugin = make_plugin(pd_standin)
    found = await reasons(plugin, "transfer_leader", region_id=12, to_store=4)  # a learner
    assert found == [
        "store-4 holds no voter of region 12 (its voters are on store-1, store-2, store-3)"
    ]
    pd_standin.set_state(3, "Offline")  # being removed, still heartbeating
    found = await reasons(plugin, "transfer_leader", region_id=12, to_store=3)
    assert found == ["target store-3 is Offline, not Up"]
    pd_standin.evict(2)
    found = await reasons(plugin, "transfer_leader", region_id=12, to_store=2)
    assert found == ["store-2 is evicting leaders: PD would move the leader straight back"]


async def test_transfer_leader_moves_the_leader(
    make_plugin: MakePlugin, pd_standin: PdStandIn, region_12: dict[str, Any]
) -> None:
    plugin = make_plugin(pd_standin)
    assert await reasons(plugin, "transfer_leader", region_id=12, to_store=3) == []
    p = params(plugin, "transfer_leader", region_id=12, to_store="store-3")
    result = await plugin.execute("transfer_leader", p, key())
    assert result.ok, result.message
    assert region_12["leader"]["store_id"] == 3
    again = await plugin.execute("transfer_leader", p, key())  # already there: no new operator
    assert again.ok and len(pd_standin.asked("POST", "/operators")) == 1


@pytest.mark.parametrize("per_store", [False, True], ids=["pd-4.0+", "pd-before-4.0"])
async def test_evict_leader_refuses_a_store_someone_else_evicts(
    make_plugin: MakePlugin, per_store: bool
) -> None:
    pd = healthy(PdStandIn(per_store_evict=per_store))
    try:
        pd.evict(2)  # a person's, with pd-ctl
        plugin = make_plugin(pd)
        found = await reasons(plugin, "evict_leader", store=2)
        assert found == [
            "store-2 already has an evict-leader scheduler this operator did not add; "
            "remove_any_evict_leader (with an Approval) clears it"
        ]
        with pytest.raises(PluginError, match="did not add"):
            await plugin.execute("evict_leader", params(plugin, "evict_leader", store=2), key())
        assert set(pd.evicted) == {2} and pd.asked("POST", "/schedulers") == []
    finally:
        pd.close()


async def test_evict_leader_needs_somewhere_for_the_leaders_to_go(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    for store in (2, 3):  # our own evictions, owned and live
        assert (
            await plugin.execute("evict_leader", params(plugin, "evict_leader", store=store), key())
        ).ok
    found = await reasons(plugin, "evict_leader", store=1)
    assert found == [
        "no other Up store without an evict-leader scheduler could take store-1's leaders"
    ]


async def test_restart_store_refuses_to_cost_a_region_its_quorum(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # Region 40's peer on store-3 is pending; restarting store-1 leaves one healthy voter.
    pd_standin.set_region_check("pending-peer", [region(40, pending=(3,))])
    plugin = make_plugin(pd_standin, workload=FakeWorkload(pd_standin))
    found = await reasons(plugin, "restart_store", store=1)
    assert found == [
        "restarting store-1 would leave 1 region(s) without a quorum of healthy voters (regions 40)"
    ]
    assert await reasons(plugin, "restart_store", store=3) == []  # the lagging one itself


async def test_restart_store_needs_a_workload(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    found = await reasons(make_plugin(pd_standin), "restart_store", store=1)
    assert found == ["the Subject has no workload (spec.workload): nothing can restart a store"]


async def test_restart_store_needs_to_know_the_stores_member(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.add_store(4, host="10.0.0.7", leader_count=0)
    plugin = make_plugin(
        pd_standin,
        workload=FakeWorkload(pd_standin),
        memberPattern=r"^(?P<member>tikv-\d+)\.",
    )
    assert await reasons(plugin, "restart_store", store=1) == []
    (why,) = await reasons(plugin, "restart_store", store=4)
    assert why.startswith("cannot tell which workload member runs store-4 (10.0.0.7:20160)")


# -- restart_store ------------------------------------------------------------------------------


class OrderedWorkload(FakeWorkload):
    """Notes PD's writes when the pod went."""

    def __init__(self, pd: PdStandIn) -> None:
        super().__init__(pd)
        self.writes_before: list[str] = []

    async def restart(self, member: str) -> ActionResult:
        self.writes_before = writes(self.pd)
        return await super().restart(member)


async def test_restart_store_drains_restarts_and_removes_the_eviction(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    workload = OrderedWorkload(pd_standin)
    plugin = make_plugin(pd_standin, workload=workload)
    result = await plugin.execute("restart_store", params(plugin, "restart_store", store=2), key())
    assert result.ok, result.message
    assert workload.restarted == ["tikv-1"]  # the pod, from the store's address
    # Leaders drained before the pod went, the eviction removed after it came back.
    assert workload.writes_before == ["POST /pd/api/v1/schedulers"]
    assert writes(pd_standin) == [
        "POST /pd/api/v1/schedulers",
        "DELETE /pd/api/v1/schedulers/evict-leader-scheduler-2",
    ]
    assert pd_standin.evicted == {}
    assert "its evict-leader scheduler was removed" in result.message


async def test_a_down_store_is_restarted_without_an_eviction(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_heartbeat_age(2, 25)  # Disconnected: its leaders are gone already
    workload = FakeWorkload(pd_standin)
    plugin = make_plugin(pd_standin, workload=workload)
    result = await plugin.execute("restart_store", params(plugin, "restart_store", store=2), key())
    assert result.ok and "store-2 (tikv-1) restarted and Up" in result.message
    assert workload.restarted == ["tikv-1"] and writes(pd_standin) == []


async def test_restart_store_failing_in_the_workload_removes_the_eviction(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    workload = FakeWorkload(pd_standin)
    workload.error = PluginError("no pod 'tikv-1' matches app=tikv in namespace tikv")
    plugin = make_plugin(pd_standin, workload=workload)
    with pytest.raises(PluginError, match=r"no pod 'tikv-1'.*evict-leader scheduler was removed"):
        await plugin.execute("restart_store", params(plugin, "restart_store", store=2), key())
    assert pd_standin.evicted == {}


async def test_restart_store_that_does_not_come_back_says_so(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    workload = FakeWorkload(pd_standin)
    workload.comes_back["tikv-1"] = None  # stays on its old start time
    plugin = make_plugin(pd_standin, workload=workload, restartTimeoutSeconds=0.05)
    result = await plugin.execute("restart_store", params(plugin, "restart_store", store=2), key())
    assert not result.ok
    assert "was not Up again" in result.message
    assert pd_standin.evicted == {}


async def test_workload_members_override_the_address_pattern(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    workload = FakeWorkload(pd_standin)
    workload.comes_back["tikv-node-a"] = "tikv-0"  # the pod that runs store-1's address
    plugin = make_plugin(pd_standin, workload=workload, workloadMembers={"store-1": "tikv-node-a"})
    result = await plugin.execute("restart_store", params(plugin, "restart_store", store=1), key())
    assert result.ok, result.message
    assert workload.restarted == ["tikv-node-a"]
