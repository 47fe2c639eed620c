"""Actions read a store's state as PD defines it (pkg/response/store.go, pkg/core/store.go):
an Offline (Removing) store takes no leaders and is not restarted, and one that has gone silent
is down although PD still calls it Offline. Against the PD stand-in; preconditions read it live."""

from __future__ import annotations

from aiops.subjects.contract import SubjectPlugin
from tests.fixtures.pd_standin import PdStandIn
from tests.fixtures.tikv_doubles import FakeWorkload
from tests.fixtures.tikv_plugin import MakePlugin


async def reasons(plugin: SubjectPlugin, action: str, store: str) -> list[str]:
    params = plugin.action(action).params.model_validate({"store": store})
    return await plugin.preconditions(action, params, await plugin.observe())


async def test_offline_stores_take_no_leaders(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    plugin = make_plugin(pd_standin)
    assert await reasons(plugin, "evict_leader", "store-1") == []
    for sid in (2, 3):
        pd_standin.set_state(sid, "Offline")  # being removed, still heartbeating
    (why,) = await reasons(plugin, "evict_leader", "store-1")
    assert "no other Up store" in why
    (why,) = await reasons(plugin, "evict_leader", "store-2")
    assert "store-2 is being removed" in why


async def test_a_store_being_removed_is_not_restarted(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_state(3, "Offline")
    plugin = make_plugin(pd_standin, workload=FakeWorkload(pd_standin))
    assert await reasons(plugin, "restart_store", "store-2") == []
    (why,) = await reasons(plugin, "restart_store", "store-3")
    assert "store-3 is being removed (PD reports Offline" in why
    pd_standin.set_heartbeat_age(3, 120)  # and now dead as well
    assert any(
        "store-3 is being removed" in r for r in await reasons(plugin, "restart_store", "store-3")
    )


async def test_a_silent_offline_store_counts_as_down(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.add_store(4, state="Offline", heartbeat_age=300)
    (why,) = await reasons(make_plugin(pd_standin), "evict_leader", "store-1")
    assert why.startswith("store-4 (tikv-3.tikv-peer.tikv.svc:20160) is down (PD reports Offline")
    assert "no store is touched while another store is down" in why
