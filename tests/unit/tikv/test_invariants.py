"""Each invariant fires on the PD/Prometheus state that should fire it, and stays quiet on a
healthy cluster: observe() against the PD stand-in (PD's shapes and semantics on real
sockets), then evaluate() with the plugin's defaults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from aiops.subjects.contract import MemberState, Observation, SubjectPlugin, Violation
from tests.fixtures.pd_standin import FIXTURES_PD, PdStandIn, region
from tests.fixtures.tikv_doubles import StubPrometheus
from tests.fixtures.tikv_plugin import STATUS, MakePlugin


async def breaches(plugin: SubjectPlugin, obs: Observation | None = None) -> list[Violation]:
    obs = obs or await plugin.observe()
    return plugin.evaluate(obs, {i.name: i for i in plugin.invariants})


def found(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.invariant, v.entity) for v in violations}


def scraped(prom: StubPrometheus, obs: Observation) -> None:
    """Prometheus has every store that heartbeats (a dead store has no scrape either)."""
    alive = [
        int(m.name.removeprefix("store-"))
        for m in obs.members
        if m.state in (MemberState.UP, MemberState.DEGRADED)
    ]
    where = {s: STATUS.get(s, f"tikv-{s - 1}.tikv-peer.tikv.svc:20180") for s in alive}
    prom.series = {
        "latency": [({"instance": w}, 0.004) for w in where.values()],
        "up": [({"instance": w}, 1.0) for w in where.values()],
    }


async def test_a_healthy_cluster_breaks_nothing(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    obs = await plugin.observe()
    assert [(m.name, m.state) for m in obs.members] == [
        ("store-1", MemberState.UP),
        ("store-2", MemberState.UP),
        ("store-3", MemberState.UP),
    ]
    # PD leaves Tombstones out of /stores unless asked: the plugin asks.
    assert obs.facts["removed_stores"] == ["store-9"]
    assert obs.metrics["grpc_p99_seconds"] == {"store-1": 0.004, "store-2": 0.004, "store-3": 0.004}
    assert obs.metrics["disk_available_ratio"]["store-1"] == 0.6  # "60GiB" of "100GiB"
    assert await breaches(plugin, obs) == []


def disconnected(pd: PdStandIn) -> None:
    pd.set_heartbeat_age(2, 25)


def down_past_max_store_down_time(pd: PdStandIn) -> None:
    pd.set_heartbeat_age(3, 31 * 60)


def offline_and_dead(pd: PdStandIn) -> None:
    pd.add_store(4, state="Offline", heartbeat_age=300, leader_count=5)


def low_disk(pd: PdStandIn) -> None:
    pd.stores[3].available = int(8.5 * (1 << 30))


def imbalance(pd: PdStandIn) -> None:
    for sid, leaders in ((1, 100), (2, 10), (3, 40)):
        pd.stores[sid].leader_count = leaders


def check(name: str, *regions: dict[str, object]) -> Callable[[PdStandIn], None]:
    return lambda pd: pd.set_region_check(name, list(regions))


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (disconnected, {("store_down", "store-2")}),
        (down_past_max_store_down_time, {("store_down", "store-3")}),
        (offline_and_dead, {("store_down", "store-4")}),
        (low_disk, {("low_disk_space", "store-3")}),
        (imbalance, {("leader_imbalance", "store-1"), ("leader_imbalance", "store-2")}),
        (check("down-peer", region(12, down=(2,))), {("region_health", "down-peer")}),
        (check("miss-peer", region(13, (1, 2))), {("region_health", "miss-peer")}),
        (check("pending-peer", region(14, pending=(3,))), {("region_health", "pending-peer")}),
    ],
    ids=lambda x: getattr(x, "__name__", None),
)
async def test_each_pd_invariant_fires_on_its_state(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
    prom: StubPrometheus,
    setup: Callable[[PdStandIn], None],
    expected: set[tuple[str, str]],
) -> None:
    setup(pd_standin)
    plugin = make_plugin(pd_standin)
    scraped(prom, await plugin.observe())
    assert found(await breaches(plugin)) == expected


async def test_a_store_down_names_its_address_and_state(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    disconnected(pd_standin)
    (down,) = [v for v in await breaches(make_plugin(pd_standin)) if v.invariant == "store_down"]
    assert "tikv-1.tikv-peer.tikv.svc:20160" in down.summary
    assert "Disconnected" in down.summary
    assert down.severity == "warning"  # as PD's alert rules rate it; Down is critical
    down_past_max_store_down_time(pd_standin)
    severities = {
        v.entity: v.severity
        for v in await breaches(make_plugin(pd_standin))
        if v.invariant == "store_down"
    }
    assert severities == {"store-2": "warning", "store-3": "critical"}


async def test_an_offline_store_is_degraded_while_it_heartbeats_and_down_once_silent(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # PD never renames an Offline store by its heartbeat's age: the plugin judges it.
    pd_standin.add_store(4, state="Offline", leader_count=5)
    plugin = make_plugin(pd_standin)
    obs = await plugin.observe()
    members = {m.name: m for m in obs.members}
    assert members["store-4"].state is MemberState.DEGRADED
    assert "being removed" in members["store-4"].message
    assert obs.metrics["store_up"]["store-4"] == 1.0
    assert "store_down" not in {v.invariant for v in await breaches(plugin, obs)}

    pd_standin.set_heartbeat_age(4, 90)
    obs = await plugin.observe()
    assert {m.name: m.state for m in obs.members}["store-4"] is MemberState.DOWN
    (down,) = [v for v in await breaches(plugin, obs) if v.invariant == "store_down"]
    assert down.entity == "store-4"
    assert "Offline (being removed) and has had no heartbeat since" in down.summary


async def test_a_removed_store_by_node_state_is_no_member(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.add_store(5, state="Tombstone", heartbeat_age=86400)
    obs = await make_plugin(pd_standin).observe()
    assert "store-5" not in {m.name for m in obs.members}
    assert obs.facts["removed_stores"] == ["store-5", "store-9"]


@pytest.mark.parametrize("what", ["no stores at all", "only tombstones", "every store down"])
async def test_no_live_store_is_not_healthy(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus, what: str
) -> None:
    if what == "no stores at all":
        pd_standin.stores.clear()  # PD answers {"count":0,"stores":[]}
    elif what == "only tombstones":
        for sid in (1, 2, 3):
            pd_standin.set_state(sid, "Tombstone")
    else:
        for sid in (1, 2, 3):
            pd_standin.set_heartbeat_age(sid, 60)
    prom.series = {"latency": [], "up": []}
    violations = await breaches(make_plugin(pd_standin))
    (none,) = [v for v in violations if v.invariant == "no_live_store"]
    assert none.entity == "cluster"
    assert none.severity == "critical"
    assert "no store that heartbeats" in none.summary


async def test_region_health_names_the_stores_with_unhealthy_peers(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_region_check("down-peer", [region(12, down=(2,)), region(20, down=(2,))])
    (v,) = await breaches(make_plugin(pd_standin))
    assert v.value == 2
    assert "store-2" in v.summary
    assert any("region 12" in e for e in v.evidence)


async def test_high_latency_fires_for_the_slow_store_only(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    prom.series["latency"] = [
        ({"instance": STATUS[1]}, 0.004),
        ({"instance": STATUS[2]}, 0.9),
        ({"instance": STATUS[3]}, 0.01),
    ]
    (v,) = await breaches(make_plugin(pd_standin))
    assert (v.invariant, v.entity, v.value) == ("high_latency", "store-2", 0.9)
    assert "900 ms" in v.summary


async def test_latency_series_are_matched_by_pod_label_too(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    # With storeLabel=pod, a series labelled by the StatefulSet pod finds its store.
    prom.series = {
        "latency": [({"pod": "tikv-1"}, 2.0)],
        "up": [({"pod": f"tikv-{i}"}, 1.0) for i in range(3)],
    }
    plugin = make_plugin(pd_standin, storeLabel="pod")
    assert found(await breaches(plugin)) == {("high_latency", "store-2")}


async def test_metrics_missing_when_the_status_port_is_not_scraped(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    # Store 3 is scraped on a host Prometheus names differently; stores 1-2 are fine.
    prom.series = {
        "latency": [({"instance": STATUS[1]}, 0.004), ({"instance": STATUS[2]}, 0.004)],
        "up": [
            ({"instance": STATUS[1]}, 1.0),
            ({"instance": STATUS[2]}, 1.0),
            ({"instance": "10.0.0.7:20180"}, 1.0),
        ],
    }
    violations = await breaches(make_plugin(pd_standin))
    assert found(violations) == {("metrics_missing", "store-3")}
    (v,) = violations
    assert "tikv-2.tikv-peer.tikv.svc:20180" in v.summary
    assert "instance='10.0.0.7:20180'" in v.evidence[0]


async def test_a_failing_scrape_is_missing_metrics(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    prom.series["up"] = [
        ({"instance": STATUS[1]}, 1.0),
        ({"instance": STATUS[2]}, 0.0),
        ({"instance": STATUS[3]}, 1.0),
    ]
    (v,) = await breaches(make_plugin(pd_standin))
    assert (v.invariant, v.entity) == ("metrics_missing", "store-2")
    assert "failing" in v.summary


async def test_without_prometheus_latency_is_not_judged_and_says_so(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin, prometheus=False)
    obs = await plugin.observe()
    assert "not configured" in obs.facts["prometheus"]
    assert "grpc_p99_seconds" not in obs.metrics
    assert await breaches(plugin, obs) == []


async def test_an_older_pd_without_status_address_uses_the_status_port(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # TiKV before status_address, and PD omitting zero fields: the metrics endpoint is the
    # gRPC host on port 20180.
    pd_standin.answer("/stores", (FIXTURES_PD / "stores_old_pd.json").read_bytes())
    obs = await make_plugin(pd_standin).observe()
    assert [s["status_address"] for s in obs.facts["stores"]] == list(STATUS.values())
    assert obs.metrics["leader_count"]["store-2"] == 0  # omitted by omitempty
    assert obs.metrics["grpc_p99_seconds"]["store-2"] == 0.004


async def test_leader_imbalance_ignores_a_store_that_evicts_on_purpose(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    imbalance(pd_standin)
    pd_standin.evict(2)  # store-2's 10 leaders are being evicted: its emptiness is intended
    pd_standin.drains = False
    found_now = found(await breaches(make_plugin(pd_standin)))
    assert ("leader_imbalance", "store-2") not in found_now
    assert ("evict_leader_leftover", "store-2") in found_now


async def test_leader_imbalance_is_quiet_on_tiny_clusters(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    imbalance(pd_standin)
    plugin = make_plugin(pd_standin, leaderImbalanceMinLeaders=1000)
    assert found(await breaches(plugin)) == set()


@pytest.mark.parametrize("per_store", [False, True], ids=["pd-4.0+", "pd-3"])
async def test_an_unowned_evict_leader_scheduler_is_a_leftover(
    make_plugin: MakePlugin, pd_standin: PdStandIn, per_store: bool
) -> None:
    # Both the one-scheduler form (PD 4.0+) and the per-store form (before) are read.
    pd_standin.per_store_evict = per_store
    pd_standin.evict(2)
    plugin = make_plugin(pd_standin)
    obs = await plugin.observe()
    assert obs.facts["evict_leader"] == [{"store": "store-2", "owner": None, "owned_until": None}]
    (v,) = await breaches(plugin, obs)
    assert (v.invariant, v.entity) == ("evict_leader_leftover", "store-2")
    assert "no running action" in v.summary


async def test_an_owned_eviction_is_no_leftover_until_its_time_runs_out(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    params = plugin.action("evict_leader").params.model_validate({"store": "store-1"})
    assert (await plugin.execute("evict_leader", params, "incident-7/1")).ok
    obs = await plugin.observe()
    assert obs.facts["evict_leader"][0]["owner"] == "incident-7/1"
    assert found(await breaches(plugin, obs)) == set()
    later = obs.model_copy(update={"observed_at": obs.observed_at + timedelta(seconds=901)})
    (v,) = await breaches(plugin, later)
    assert (v.invariant, v.entity) == ("evict_leader_leftover", "store-1")
    assert "lapse" in v.summary


async def test_overrides_change_thresholds(make_plugin: MakePlugin, pd_standin: PdStandIn) -> None:
    plugin = make_plugin(pd_standin)
    obs = await plugin.observe()
    invariants = {i.name: i for i in plugin.invariants}
    invariants["high_latency"] = invariants["high_latency"].model_copy(update={"threshold": 0.001})
    assert found(plugin.evaluate(obs, invariants)) == {
        ("high_latency", "store-1"),
        ("high_latency", "store-2"),
        ("high_latency", "store-3"),
    }
    del invariants["high_latency"]  # disabled by the Subject
    assert plugin.evaluate(obs, invariants) == []


async def test_an_eviction_removed_between_two_reads_is_no_error(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # PD listed the evict-leader scheduler, then its last store was removed before the
    # config read: the config handler is gone (Go's 404 page) and there is no eviction.
    pd_standin.other_schedulers.append("evict-leader-scheduler")
    obs = await make_plugin(pd_standin).observe()
    assert obs.facts["evict_leader"] == []


@pytest.mark.parametrize("skew_hours", [-1, 1])
async def test_an_offline_stores_silence_is_judged_on_pds_clock(
    make_plugin: MakePlugin, pd_standin: PdStandIn, skew_hours: int
) -> None:
    # PD's clock an hour off ours: its heartbeat times are on its clock, and so is the age.
    pd_standin.clock_skew = timedelta(hours=skew_hours)
    pd_standin.add_store(4, state="Offline")
    plugin = make_plugin(pd_standin)
    obs = await plugin.observe()
    assert {m.name: m.state for m in obs.members}["store-4"] is MemberState.DEGRADED
    pd_standin.set_heartbeat_age(4, 40)
    obs = await plugin.observe()
    assert {m.name: m.state for m in obs.members}["store-4"] is MemberState.DOWN
