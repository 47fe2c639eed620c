"""The Chaos driver's steps against an in-memory API and a plugin that records its calls: what
the integration tests cannot cause on demand (a fault failing on its second of three targets,
an operator stopped between claiming a target and recording it, an instant fault)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel

from aiops.loops import chaos_driver
from aiops.loops.chaos_driver import KOPF_FINALIZER, ChaosDriver, ChaosRuntime
from aiops.loops.chaos_targets import Candidates
from aiops.subjects.binding import Bound
from aiops.subjects.contract import (
    INSTANT,
    ActionResult,
    FaultSpec,
    Invariant,
    Observation,
    PluginError,
    SubjectPlugin,
    Violation,
    utcnow,
)

NS = "ns"


class FakeApi:
    """get/list/patch_status/post_event over dicts, as CustomResources does over the server."""

    api_client = None

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[tuple[str, str, str]] = []

    def put(self, plural: str, obj: dict[str, Any]) -> None:
        self.objects[(plural, obj["metadata"]["name"])] = obj

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        if (plural, name) not in self.objects:
            raise ApiException(status=404)
        return copy.deepcopy(self.objects[(plural, name)])

    async def list(
        self, plural: str, namespace: str, label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (p, _), o in self.objects.items() if p == plural]

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        obj = self.objects[(plural, name)]
        merged = {**obj.get("status", {}), **status}
        obj["status"] = {k: v for k, v in merged.items() if v is not None}
        return copy.deepcopy(obj)

    async def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))


class Params(BaseModel):
    pass


class Recorder(SubjectPlugin):
    type_name: ClassVar[str] = "fake"
    config_model: ClassVar[type[BaseModel]] = Params
    invariants: ClassVar[tuple[Invariant, ...]] = ()
    actions = ()
    runbook = ()
    faults: ClassVar[tuple[FaultSpec, ...]] = (
        FaultSpec(name="break", description="breaks a member", params=Params),
        FaultSpec(name="poke", description="over as soon as made", params=Params),
    )

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.revert_fails = False

    async def observe(self) -> Observation:
        return Observation()

    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        return []

    async def inject(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        self.calls.append(("inject", target))
        if target == "bad":
            raise PluginError(f"{target} refused the fault")
        return ActionResult(
            ok=True, message=f"broke {target}", detail={INSTANT: True} if fault == "poke" else {}
        )

    async def revert(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        self.calls.append(("revert", target))
        if self.revert_fails:
            raise PluginError(f"{target} unreachable")
        return ActionResult(ok=True, message=f"mended {target}")


class Ctx:
    async def aclose(self) -> None:
        return None


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeApi, Recorder, ChaosDriver]:
    api, plugin = FakeApi(), Recorder()
    api.put(
        "subjects",
        {
            "metadata": {"name": "s", "namespace": NS, "uid": "u", "generation": 1},
            "spec": {"type": "fake", "interval": "1s"},
        },
    )
    monkeypatch.setattr(chaos_driver, "bind", lambda subject, client: Bound(1, plugin, Ctx(), {}))  # type: ignore[arg-type]

    async def found(*_: Any) -> Candidates:
        return Candidates(("a", "bad", "c"))

    monkeypatch.setattr(chaos_driver, "candidates", found)

    async def running() -> bool:
        return False

    rt = ChaosRuntime(api=api, actions_stopped=running)  # type: ignore[arg-type]
    return api, plugin, ChaosDriver(rt, NS, "c1")


def put_chaos(api: FakeApi, fault: str = "break", **status: Any) -> None:
    api.put(
        "chaos",
        {
            "metadata": {
                "name": "c1",
                "namespace": NS,
                "finalizers": [KOPF_FINALIZER],
                "generation": 1,
                "uid": "c",
            },
            "spec": {"subject": "s", "fault": fault, "duration": "30s"},
            "status": status,
        },
    )


def status(api: FakeApi) -> dict[str, Any]:
    return dict(api.objects[("chaos", "c1")]["status"])


def condition(api: FakeApi, type_: str) -> dict[str, Any]:
    return next(c for c in status(api)["conditions"] if c["type"] == type_)


async def test_a_fault_failing_on_one_target_reverts_those_it_reached(
    world: tuple[FakeApi, Recorder, ChaosDriver],
) -> None:
    api, plugin, driver = world
    put_chaos(api)
    assert await driver.step() is None
    assert plugin.calls == [
        ("inject", "a"),
        ("inject", "bad"),
        ("revert", "a"),
        ("revert", "bad"),
    ]  # c was never asked
    st = status(api)
    assert st["phase"] == "Failed"
    assert [(t["name"], t["state"]) for t in st["targets"]] == [
        ("a", "Reverted"),
        ("bad", "Reverted"),
    ]
    assert "injecting break into bad failed: bad refused the fault" in st["message"]
    assert "reverted what it reached (a, bad): nothing is left injected" in st["message"]
    assert condition(api, "AllInjected")["reason"] == "InjectionFailed"
    assert condition(api, "AllRecovered")["status"] == "True"
    assert [r for _, r, _ in api.events] == ["Failed"]


async def test_a_rollback_whose_revert_fails_is_retried_until_nothing_is_left(
    world: tuple[FakeApi, Recorder, ChaosDriver],
) -> None:
    api, plugin, driver = world
    plugin.revert_fails = True
    put_chaos(api)
    delay = await driver.step()
    assert delay == 2.0  # backoff
    st = status(api)
    assert st["phase"] == "Failed"
    assert {t["state"] for t in st["targets"]} == {"RevertFailed"}
    assert condition(api, "AllRecovered")["reason"] == "RevertFailed"
    plugin.revert_fails = False
    assert await driver.step() is None
    assert {t["state"] for t in status(api)["targets"]} == {"Reverted"}
    assert condition(api, "AllRecovered")["status"] == "True"


async def test_a_target_claimed_before_a_crash_is_reverted_and_injected_again(
    world: tuple[FakeApi, Recorder, ChaosDriver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, plugin, driver = world

    async def one(*_: Any) -> Candidates:
        return Candidates(("a",))

    monkeypatch.setattr(chaos_driver, "candidates", one)
    put_chaos(api, phase="Pending", targets=[{"name": "a", "state": "Injecting"}])
    assert await driver.step() == 0
    assert plugin.calls == [("revert", "a")]
    assert status(api)["phase"] == "Pending" and not status(api).get("targets")
    assert await driver.step() == 0
    assert plugin.calls[-1] == ("inject", "a")
    st = status(api)
    assert st["phase"] == "Injected"
    assert st["endsAt"] and st["injectedAt"]


async def test_an_instant_fault_recovers_at_once(
    world: tuple[FakeApi, Recorder, ChaosDriver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, plugin, driver = world

    async def one(*_: Any) -> Candidates:
        return Candidates(("p",))

    monkeypatch.setattr(chaos_driver, "candidates", one)
    put_chaos(api, fault="poke")
    await driver.step()
    st = status(api)
    assert st["phase"] == "Recovered" and st["recoveredAt"] == st["injectedAt"]
    assert st["targets"] == [{**st["targets"][0], "state": "Reverted", "instant": True}]
    assert ("revert", "p") not in plugin.calls  # nothing to revert
    assert condition(api, "AllRecovered")["reason"] == "Instant"


async def test_nothing_is_injected_before_the_finalizer_is_there(
    world: tuple[FakeApi, Recorder, ChaosDriver],
) -> None:
    api, plugin, driver = world
    put_chaos(api)
    api.objects[("chaos", "c1")]["metadata"]["finalizers"] = []
    assert await driver.step() == 0.5
    assert plugin.calls == [] and not status(api)


async def test_the_end_of_the_duration_reverts_and_a_failed_revert_says_so(
    world: tuple[FakeApi, Recorder, ChaosDriver],
) -> None:
    api, plugin, driver = world
    past = (utcnow() - timedelta(seconds=1)).isoformat()
    put_chaos(
        api,
        phase="Injected",
        injectedAt=past,
        endsAt=past,
        targets=[{"name": "a", "state": "Injected"}],
    )
    plugin.revert_fails = True
    assert await driver.step() == 2.0
    st = status(api)
    assert st["phase"] == "Injected" and "retrying in 2 s" in st["message"]
    assert "a: a unreachable" in st["message"]
    plugin.revert_fails = False
    assert await driver.step() == 0
    assert status(api)["phase"] == "Recovered"
    assert [r for _, r, _ in api.events] == ["RevertFailed", "Recovered"]
