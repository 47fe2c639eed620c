"""The PD stand-in answers as PD's source says PD answers: if it drifted, every test built on
it would test the plugin against a PD that does not exist."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.fixtures.pd_standin import API, PdStandIn, go_bytes, go_duration, go_time

# One client: making an httpx client loads a TLS context, a tenth of a second each time.
HTTP = httpx.Client(timeout=5)


def get(standin: PdStandIn, path: str, member: int = 0) -> httpx.Response:
    return HTTP.get(standin.urls[member] + API + path)


def states(standin: PdStandIn, query: str = "") -> dict[int, str]:
    body = get(standin, "/stores" + query).json()
    assert body["count"] == len(body["stores"])
    return {s["store"]["id"]: s["store"]["state_name"] for s in body["stores"]}


def test_go_renderings() -> None:
    assert [go_bytes(n) for n in (0, 1023, 1536 << 20, 100 << 30, 8.5 * (1 << 30))] == [
        "0B",
        "1023B",
        "1.5GiB",
        "100GiB",
        "8.5GiB",
    ]
    assert go_duration(2 * 3600 + 15 * 60 + 30.5) == "2h15m30.5s"
    assert go_duration(42.0) == "42s"
    assert go_time(datetime(2026, 3, 2, 10, 15, 30, 123000, tzinfo=UTC)) == (
        "2026-03-02T10:15:30.123Z"
    )


def test_state_name_follows_heartbeat_age_only_for_up_stores(pd_standin: PdStandIn) -> None:
    pd_standin.add_store(4, state="Offline", heartbeat_age=3600)
    assert states(pd_standin) == {1: "Up", 2: "Up", 3: "Up", 4: "Offline"}  # no Tombstone
    pd_standin.set_heartbeat_age(2, 25)
    pd_standin.set_heartbeat_age(3, 31 * 60)
    assert states(pd_standin, "?state=0&state=1&state=2") == {
        1: "Up",
        2: "Disconnected",
        3: "Down",
        4: "Offline",  # PD never renames a silent Offline store
        9: "Tombstone",
    }
    check = get(pd_standin, "/stores/check?state=down&state=tombstone").json()
    assert sorted(s["store"]["id"] for s in check["stores"]) == [3, 9]
    assert get(pd_standin, "/stores/check?state=gone").status_code == 400


def test_store_meta_is_protobuf_shaped(pd_standin: PdStandIn) -> None:
    pd_standin.add_store(4, state="Offline")
    body = get(pd_standin, "/stores?state=0&state=1&state=2").json()
    meta = {s["store"]["id"]: s["store"] for s in body["stores"]}
    # StoreState Up (0) and NodeState Preparing (0) are omitted, as protobuf's omitempty does.
    assert "state" not in meta[1] and meta[1]["node_state"] == 1
    assert (meta[4]["state"], meta[4]["node_state"]) == (1, 2)
    assert (meta[9]["state"], meta[9]["node_state"]) == (2, 3)
    status = body["stores"][0]["status"]
    assert (status["capacity"], status["available"], status["leader_weight"]) == (
        "100GiB",
        "60GiB",
        1,
    )


def test_evict_leader_scheduler_answers(pd_standin: PdStandIn) -> None:
    url = pd_standin.urls[1] + API
    post = {"name": "evict-leader-scheduler", "store_id": 1}
    assert HTTP.post(url + "/schedulers", json=post).json() == "The scheduler is created."
    again = HTTP.post(url + "/schedulers", json=post).json()
    assert again == "The scheduler has been applied to the store."
    assert pd_standin.schedulers[-1] == "evict-leader-scheduler"
    listed = get(pd_standin, "/scheduler-config/evict-leader-scheduler/list").json()
    assert listed == {"store-id-ranges": {"1": [{"start-key": "", "end-key": ""}]}, "batch": 3}
    gone = HTTP.delete(url + "/schedulers/evict-leader-scheduler-1")
    assert (gone.status_code, gone.json()) == (200, None)
    assert "evict-leader-scheduler" not in pd_standin.schedulers  # went with its last store
    again_gone = HTTP.delete(url + "/schedulers/evict-leader-scheduler-1")
    assert (again_gone.status_code, again_gone.json()) == (404, None)
    listed = get(pd_standin, "/scheduler-config/evict-leader-scheduler/list")
    assert (listed.status_code, listed.text) == (404, "404 page not found\n")
    unknown = HTTP.post(url + "/schedulers", json={**post, "store_id": 42})
    assert unknown.status_code == 400 and "ErrStoreNotFound" in unknown.json()
    existed = HTTP.post(url + "/schedulers", json={"name": "balance-leader-scheduler"})
    assert (existed.status_code, existed.json()) == (
        400,
        "[PD:scheduler:ErrSchedulerExisted]scheduler existed",
    )
    missing = HTTP.delete(url + "/schedulers/no-such-scheduler")
    assert missing.status_code == 404 and "ErrSchedulerNotFound" in missing.json()


def test_pd_before_4_0_runs_one_scheduler_per_store() -> None:
    standin = PdStandIn(1, per_store_evict=True)
    try:
        standin.add_store(1)
        url = standin.urls[0] + API
        post = {"name": "evict-leader-scheduler", "store_id": 1}
        assert HTTP.post(url + "/schedulers", json=post).status_code == 200
        assert "evict-leader-scheduler-1" in standin.schedulers
        assert "scheduler existed" in HTTP.post(url + "/schedulers", json=post).json()
    finally:
        standin.close()


def test_one_member_fails_the_others_answer(pd_standin: PdStandIn) -> None:
    pd_standin.fail(0)
    with pytest.raises(httpx.ConnectError):
        get(pd_standin, "/stores")
    assert get(pd_standin, "/stores", member=1).status_code == 200
    health = get(pd_standin, "/health", member=1).json()
    assert [m["health"] for m in health] == [False, True, True]
    pd_standin.heal(0)
    assert get(pd_standin, "/stores").status_code == 200
    pd_standin.fail(2, "error")
    assert get(pd_standin, "/stores", member=2).status_code == 500
    assert pd_standin.asked("GET", "/stores") == [1, 0, 2]  # the refused one never arrived
