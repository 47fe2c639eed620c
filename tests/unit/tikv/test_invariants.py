"""Each invariant fires on the PD/Prometheus state that should fire it, and stays quiet on a
healthy cluster: observe() on contract fixtures, then evaluate() with the plugin's defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aiops.subjects.contract import MemberState, Observation, SubjectPlugin, Violation
from tests.fixtures.tikv_plugin import STATUS, MakePlugin
from tests.unit.tikv.fakepd import FakePd, StubPrometheus


async def breaches(plugin: SubjectPlugin, obs: Observation | None = None) -> list[Violation]:
    obs = obs or await plugin.observe()
    return plugin.evaluate(obs, {i.name: i for i in plugin.invariants})


def found(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.invariant, v.entity) for v in violations}


async def test_a_healthy_cluster_breaks_nothing(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(FakePd())
    obs = await plugin.observe()
    assert [(m.name, m.state) for m in obs.members] == [
        ("store-1", MemberState.UP),
        ("store-2", MemberState.UP),
        ("store-3", MemberState.UP),
    ]
    assert obs.facts["removed_stores"] == ["store-9"]  # a Tombstone is not a member
    assert obs.metrics["grpc_p99_seconds"] == {"store-1": 0.004, "store-2": 0.004, "store-3": 0.004}
    assert await breaches(plugin, obs) == []


@pytest.mark.parametrize(
    ("stores", "checks", "expected"),
    [
        ("stores_disconnected.json", {}, {("store_down", "store-2")}),
        ("stores_down_and_offline.json", {}, {("store_down", "store-3")}),
        ("stores_low_disk.json", {}, {("low_disk_space", "store-3")}),
        (
            "stores_leader_imbalance.json",
            {},
            {("leader_imbalance", "store-1"), ("leader_imbalance", "store-2")},
        ),
        (
            "stores_healthy.json",
            {"down-peer": "regions_down_peer.json"},
            {("region_health", "down-peer")},
        ),
        (
            "stores_healthy.json",
            {"miss-peer": "regions_miss_peer.json"},
            {("region_health", "miss-peer")},
        ),
        (
            "stores_healthy.json",
            {"pending-peer": "regions_pending_peer.json"},
            {("region_health", "pending-peer")},
        ),
    ],
)
async def test_each_pd_invariant_fires_on_its_state(
    make_plugin: MakePlugin,
    prom: StubPrometheus,
    stores: str,
    checks: dict[str, str],
    expected: set[tuple[str, str]],
) -> None:
    # Prometheus has every store that is up in PD (a down store has no scrape either).
    plugin = make_plugin(FakePd(stores=stores, checks=checks))
    obs = await plugin.observe()
    up = [int(m.name.removeprefix("store-")) for m in obs.members if m.state is MemberState.UP]
    prom.series = {
        "latency": [
            ({"instance": STATUS.get(s, f"tikv-{s - 1}.tikv-peer.tikv.svc:20180")}, 0.004)
            for s in up
        ],
        "up": [
            ({"instance": STATUS.get(s, f"tikv-{s - 1}.tikv-peer.tikv.svc:20180")}, 1.0) for s in up
        ],
    }
    assert found(await breaches(plugin)) == expected


async def test_a_store_down_names_its_address_and_state(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(FakePd(stores="stores_disconnected.json"))
    (down,) = [v for v in await breaches(plugin) if v.invariant == "store_down"]
    assert "tikv-1.tikv-peer.tikv.svc:20160" in down.summary
    assert "Disconnected" in down.summary


async def test_an_offline_store_still_serves_and_is_up(make_plugin: MakePlugin) -> None:
    obs = await make_plugin(FakePd(stores="stores_down_and_offline.json")).observe()
    states = {m.name: m.state for m in obs.members}
    assert states == {
        "store-1": MemberState.UP,
        "store-2": MemberState.UP,
        "store-3": MemberState.DOWN,
        "store-4": MemberState.UP,
    }


async def test_region_health_names_the_stores_with_unhealthy_peers(
    make_plugin: MakePlugin,
) -> None:
    plugin = make_plugin(FakePd(checks={"down-peer": "regions_down_peer.json"}))
    (v,) = await breaches(plugin)
    assert v.value == 2
    assert "store-2" in v.summary
    assert any("region 12" in e for e in v.evidence)


async def test_high_latency_fires_for_the_slow_store_only(
    make_plugin: MakePlugin, prom: StubPrometheus
) -> None:
    prom.series["latency"] = [
        ({"instance": STATUS[1]}, 0.004),
        ({"instance": STATUS[2]}, 0.9),
        ({"instance": STATUS[3]}, 0.01),
    ]
    (v,) = await breaches(make_plugin(FakePd()))
    assert (v.invariant, v.entity, v.value) == ("high_latency", "store-2", 0.9)
    assert "900 ms" in v.summary


async def test_latency_series_are_matched_by_pod_label_too(
    make_plugin: MakePlugin, prom: StubPrometheus
) -> None:
    # With storeLabel=pod, a series labelled by the StatefulSet pod finds its store.
    prom.series = {
        "latency": [({"pod": "tikv-1"}, 2.0)],
        "up": [({"pod": f"tikv-{i}"}, 1.0) for i in range(3)],
    }
    plugin = make_plugin(FakePd(), storeLabel="pod")
    assert found(await breaches(plugin)) == {("high_latency", "store-2")}


async def test_metrics_missing_when_the_status_port_is_not_scraped(
    make_plugin: MakePlugin, prom: StubPrometheus
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
    violations = await breaches(make_plugin(FakePd()))
    assert found(violations) == {("metrics_missing", "store-3")}
    (v,) = violations
    assert "tikv-2.tikv-peer.tikv.svc:20180" in v.summary
    assert "instance='10.0.0.7:20180'" in v.evidence[0]


async def test_a_failing_scrape_is_missing_metrics(
    make_plugin: MakePlugin, prom: StubPrometheus
) -> None:
    prom.series["up"] = [
        ({"instance": STATUS[1]}, 1.0),
        ({"instance": STATUS[2]}, 0.0),
        ({"instance": STATUS[3]}, 1.0),
    ]
    (v,) = await breaches(make_plugin(FakePd()))
    assert (v.invariant, v.entity) == ("metrics_missing", "store-2")
    assert "failing" in v.summary


async def test_without_prometheus_latency_is_not_judged_and_says_so(
    make_plugin: MakePlugin,
) -> None:
    plugin = make_plugin(FakePd(), prometheus=False)
    obs = await plugin.observe()
    assert "not configured" in obs.facts["prometheus"]
    assert "grpc_p99_seconds" not in obs.metrics
    assert await breaches(plugin, obs) == []


async def test_an_older_pd_without_status_address_uses_the_status_port(
    make_plugin: MakePlugin,
) -> None:
    # TiKV before status_address: the metrics endpoint is the gRPC host on port 20180.
    obs = await make_plugin(FakePd(stores="stores_old_pd.json")).observe()
    assert [s["status_address"] for s in obs.facts["stores"]] == list(STATUS.values())
    assert obs.metrics["leader_count"]["store-2"] == 0  # omitted by omitempty
    assert obs.metrics["grpc_p99_seconds"]["store-2"] == 0.004


async def test_leader_imbalance_ignores_a_store_that_evicts_on_purpose(
    make_plugin: MakePlugin,
) -> None:
    pd = FakePd(stores="stores_leader_imbalance.json")
    pd.evicted = {2}  # store-2's 10 leaders are being evicted: its emptiness is intended
    pd.drains = False
    found_now = found(await breaches(make_plugin(pd)))
    assert ("leader_imbalance", "store-2") not in found_now
    assert ("evict_leader_leftover", "store-2") in found_now


async def test_leader_imbalance_is_quiet_on_tiny_clusters(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(
        FakePd(stores="stores_leader_imbalance.json"), leaderImbalanceMinLeaders=1000
    )
    assert found(await breaches(plugin)) == set()


@pytest.mark.parametrize("schedulers", ["schedulers_evicting.json", "schedulers_evicting_pd3.json"])
async def test_an_unowned_evict_leader_scheduler_is_a_leftover(
    make_plugin: MakePlugin, schedulers: str
) -> None:
    # Both the one-scheduler form (PD 4.0+) and the per-store form (before) are read.
    pd = FakePd(schedulers=schedulers)
    obs = await make_plugin(pd).observe()
    assert obs.facts["evict_leader"] == [{"store": "store-2", "owner": None, "owned_until": None}]
    (v,) = await breaches(make_plugin(pd), obs)
    assert (v.invariant, v.entity) == ("evict_leader_leftover", "store-2")
    assert "no running action" in v.summary


async def test_an_owned_eviction_is_no_leftover_until_its_time_runs_out(
    make_plugin: MakePlugin,
) -> None:
    pd = FakePd()
    plugin = make_plugin(pd)
    params = plugin.action("evict_leader").params.model_validate({"store": "store-1"})
    assert (await plugin.execute("evict_leader", params, "incident-7/1")).ok
    obs = await plugin.observe()
    assert obs.facts["evict_leader"][0]["owner"] == "incident-7/1"
    assert found(await breaches(plugin, obs)) == set()
    later = obs.model_copy(update={"observed_at": obs.observed_at + timedelta(seconds=901)})
    (v,) = await breaches(plugin, later)
    assert (v.invariant, v.entity) == ("evict_leader_leftover", "store-1")
    assert "lapse" in v.summary


async def test_overrides_change_thresholds(make_plugin: MakePlugin, prom: StubPrometheus) -> None:
    plugin = make_plugin(FakePd())
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


async def test_an_eviction_removed_between_two_reads_is_no_error(make_plugin: MakePlugin) -> None:
    # PD listed the evict-leader scheduler, then its last store was removed before the
    # config read: PD answers 404 there, and there is simply no eviction.
    pd = FakePd(schedulers="schedulers_evicting.json")
    pd.evicted = set()
    pd.other_schedulers.append("evict-leader-scheduler")
    obs = await make_plugin(pd).observe()
    assert obs.facts["evict_leader"] == []
