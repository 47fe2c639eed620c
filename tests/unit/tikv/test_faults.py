"""The TiKV plugin's faults. Member faults, written for pods: each resolves the store to its
pod through PD (the stand-in), hands the workload exactly what it must do (or runs exactly these
commands in the pod), and its revert undoes that, twice in a row too. The workload is the pods
API's stand-in; `tc` is answered as a pod's iproute2 answers it. leave_evict_leader acts on PD."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aiops.subjects.contract import INSTANT, PluginError, SubjectPlugin
from aiops.subjects.faults import netem
from aiops.subjects.faults.podexec import ExecResult
from tests.fixtures.pd_standin import PdStandIn
from tests.fixtures.tikv_doubles import FakeWorkload
from tests.fixtures.tikv_plugin import MakePlugin


def setup(
    make_plugin: MakePlugin, pd: PdStandIn, **config: Any
) -> tuple[FakeWorkload, SubjectPlugin]:
    workload = FakeWorkload(pd)
    return workload, make_plugin(pd, workload=workload, **config)


async def test_kill_store_is_instant_on_pods_and_its_revert_a_no_op(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    workload, plugin = setup(make_plugin, pd_standin)
    no = plugin.fault("kill_store").params()
    done = await plugin.inject("kill_store", no, "store-3")
    assert done.detail == {INSTANT: True} and workload.killed == ["tikv-2"]
    again = await plugin.revert("kill_store", no, "store-3")
    assert again.ok and "managed by its controller" in again.message
    with pytest.raises(PluginError, match="not a store"):  # a pod's name is no store
        await plugin.inject("kill_store", no, "tikv-2")
    assert workload.killed == ["tikv-2"]


async def test_store_latency_runs_netem_in_the_pod_and_revert_deletes_only_ours(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    workload, plugin = setup(make_plugin, pd_standin, storeContainer="tikv", networkDevice="eth1")
    spec = plugin.fault("store_latency").params(latency_ms=150, jitter_ms=20)
    done = await plugin.inject("store_latency", spec, "store-2")
    assert done.ok and "150 ms ± 20 ms" in done.message
    assert workload.execs == [
        (
            "tikv-1",
            [
                "tc",
                "qdisc",
                "replace",
                "dev",
                "eth1",
                "root",
                "handle",
                netem.HANDLE,
                "netem",
                "delay",
                "150ms",
                "20ms",
            ],
            "tikv",
        )
    ]
    assert "netem a1c5: root" in workload.qdisc["tikv-1"]
    for _ in range(2):
        undone = await plugin.revert("store_latency", spec, "store-2")
        assert undone.ok
    assert "tikv-1" not in workload.qdisc
    # show, del; then show alone: the second revert found nothing of ours to delete.
    assert [argv[2] for _, argv, _ in workload.execs[1:]] == ["show", "del", "show"]
    assert "nothing to remove" in undone.message


async def test_store_latency_revert_leaves_a_qdisc_that_is_not_ours(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    workload, plugin = setup(make_plugin, pd_standin)
    workload.qdisc["tikv-0"] = "qdisc netem 8001: root refcnt 2 limit 1000 delay 5ms"
    spec = plugin.fault("store_latency").params()
    undone = await plugin.revert("store_latency", spec, "store-1")
    assert "nothing to remove" in undone.message
    assert workload.qdisc["tikv-0"].startswith("qdisc netem 8001:")


async def test_store_latency_says_why_when_tc_fails(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    workload, plugin = setup(make_plugin, pd_standin, networkDevice="eth0")

    async def no_tc(member: str, argv: list[str], container: str | None = None) -> ExecResult:
        return ExecResult(1, "", "RTNETLINK answers: Operation not permitted")

    workload.exec = no_tc  # type: ignore[method-assign]
    spec = plugin.fault("store_latency").params()
    with pytest.raises(
        PluginError,
        match="tc qdisc replace in tikv-2 failed \\(exit 1\\): "
        "RTNETLINK answers: Operation not permitted",
    ):
        await plugin.inject("store_latency", spec, "store-3")


async def test_fill_store_disk_fills_the_stores_data_dir_in_its_container(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    workload, plugin = setup(
        make_plugin, pd_standin, dataDir="/data/{member}", storeContainer="tikv"
    )
    spec = plugin.fault("fill_store_disk").params(percent=95)
    assert (await plugin.inject("fill_store_disk", spec, "store-1")).ok
    assert workload.fills == {"tikv-0": ("/data/tikv-0", spec, "tikv")}
    assert (await plugin.revert("fill_store_disk", spec, "store-1")).ok
    undone = await plugin.revert("fill_store_disk", spec, "store-1")
    assert workload.fills == {} and "nothing to remove" in undone.message


async def test_pause_and_partition_go_to_the_stores_member(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    workload, plugin = setup(make_plugin, pd_standin)
    no = plugin.fault("pause_store").params()
    await plugin.inject("pause_store", no, "store-2")
    assert workload.paused == {"tikv-1"}
    await plugin.revert("pause_store", no, "store-2")
    assert workload.paused == set()
    cut = plugin.fault("partition_store").params(direction="ingress")
    await plugin.inject("partition_store", cut, "store-2")
    assert workload.policies == {"aiops-chaos-partition-store-tikv-1": ("tikv-1", "ingress")}
    await plugin.revert("partition_store", cut, "store-2")
    assert workload.policies == {}


@pytest.mark.parametrize(
    ("fault", "params", "message"),
    [
        ("store_latency", {"latency_ms": 0}, "greater than or equal to 1"),
        (
            "store_latency",
            {"latency_ms": 10, "jitter_ms": 11},
            "jitter_ms (11) must not exceed latency_ms (10)",
        ),
        ("store_latency", {"delay": 5}, "Extra inputs are not permitted"),
        ("fill_store_disk", {"percent": 100}, "less than or equal to 99"),
        ("fill_store_disk", {"max_bytes": 0}, "greater than or equal to 1"),
        ("partition_store", {"direction": "sideways"}, "'both', 'ingress' or 'egress'"),
    ],
)
def test_bad_params_are_refused_precisely(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
    fault: str,
    params: dict[str, object],
    message: str,
) -> None:
    _, plugin = setup(make_plugin, pd_standin)
    with pytest.raises(ValidationError, match=message.replace("(", "\\(").replace(")", "\\)")):
        plugin.fault(fault).params.model_validate(params)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dataDir": "var/lib/tikv"}, "an absolute path of plain names"),
        ({"dataDir": "/var/../etc"}, "an absolute path of plain names"),
        ({"dataDir": "/data/$(reboot)"}, "an absolute path of plain names"),
        ({"networkDevice": "eth0; reboot"}, "should match pattern"),
        ({"storeContainer": "TiKV"}, "should match pattern"),
    ],
)
def test_bad_fault_config_is_refused(
    make_plugin: MakePlugin, pd_standin: PdStandIn, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        setup(make_plugin, pd_standin, **config)


async def test_member_faults_need_a_workload(
    make_plugin: MakePlugin,
    pd_standin: PdStandIn,
) -> None:
    plugin = make_plugin(pd_standin)
    spec = plugin.fault("fill_store_disk").params()
    with pytest.raises(PluginError, match=r"no workload .* cannot run fill_store_disk"):
        await plugin.inject("fill_store_disk", spec, "store-1")


async def test_leave_evict_leader_leaves_one_the_operator_did_not_add_and_revert_removes_it(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    _, plugin = setup(make_plugin, pd_standin)
    no = plugin.fault("leave_evict_leader").params()
    assert (await plugin.inject("leave_evict_leader", no, "store-2")).ok
    assert set(pd_standin.evicted) == {2}
    violations = plugin.evaluate(await plugin.observe(), {i.name: i for i in plugin.invariants})
    assert {(v.invariant, v.entity) for v in violations} == {("evict_leader_leftover", "store-2")}
    assert (await plugin.revert("leave_evict_leader", no, "store-2")).ok
    assert (await plugin.revert("leave_evict_leader", no, "store-2")).ok  # twice is fine
    assert "evict-leader-scheduler" not in pd_standin.schedulers
