"""The helpers plugins build on (aiops.subjects.checks, .dispatch, .memo.once, .config): what
a plugin author relies on them to refuse, order and remember."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from aiops.subjects.checks import below, evaluate_rules, members_down, over_threshold
from aiops.subjects.config import PluginConfig
from aiops.subjects.context import PluginContext
from aiops.subjects.contract import (
    ActionResult,
    ActionSpec,
    FaultSpec,
    Frozen,
    Invariant,
    Member,
    MemberState,
    Observation,
    PluginError,
    Risk,
    Severity,
    Violation,
)
from aiops.subjects.dispatch import Dispatch, DispatchingPlugin
from aiops.subjects.memo import BoundedMemo, once


class Node(Frozen):
    node: str


class Other(Frozen):
    pass


RESTART = ActionSpec(name="restart", description="", params=Node, risk=Risk.HIGH)
SET = ActionSpec(name="set", description="", params=Other, risk=Risk.LOW, reversible=True)
STOP = FaultSpec(name="stop", description="", params=Other)
INV = Invariant(name="slow", description="", severity=Severity.WARNING, threshold=0.5)


async def ok(params: Any, arg: str) -> ActionResult:
    return ActionResult(ok=True, message=f"{type(params).__name__} {arg}")


def test_dispatch_refuses_a_declared_action_without_a_method_and_a_method_for_nothing() -> None:
    with pytest.raises(PluginError, match="declared without one: set") as err:
        Dispatch("demo", "action", [RESTART, SET], {"restart": ok, "reboot": ok})
    assert "a method for nothing declared: reboot" in str(err.value)


def test_dispatch_calls_the_method_only_with_the_specs_own_params() -> None:
    run = Dispatch("demo", "action", [RESTART], {"restart": ok})
    assert asyncio.run(run("restart", Node(node="n1"), "k")).message == "Node k"
    with pytest.raises(PluginError, match="demo has no action 'restart' taking Other"):
        asyncio.run(run("restart", Other(), "k"))
    with pytest.raises(PluginError, match="demo has no action 'melt' taking Node"):
        asyncio.run(run("melt", Node(node="n1"), "k"))


class Plugin(DispatchingPlugin):
    type_name = "demo"
    config_model = PluginConfig
    invariants = ()
    actions = (RESTART, SET)
    faults: ClassVar[tuple[FaultSpec, ...]] = (STOP,)
    runbook = ()

    async def observe(self) -> Observation:
        return Observation()

    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        return []

    async def act_restart(self, p: Node, key: str) -> ActionResult:
        return ActionResult(ok=True, message=f"restarted {p.node} ({key})")

    async def act_set(self, p: Other, key: str) -> ActionResult:
        return ActionResult(ok=True, message="set")

    async def undo_set(self, p: Other, key: str) -> ActionResult:
        return ActionResult(ok=True, message="unset")

    async def inject_stop(self, p: Other, target: str) -> ActionResult:
        return ActionResult(ok=True, message=f"stopped {target}")

    async def revert_stop(self, p: Other, target: str) -> ActionResult:
        return ActionResult(ok=True, message=f"started {target}")


def ctx() -> PluginContext:
    return PluginContext("test/demo", prometheus=None, workload=None)


def test_a_dispatching_plugin_runs_its_methods_by_name() -> None:
    p = Plugin(PluginConfig(), ctx())

    async def scenario() -> list[str]:
        return [
            (await p.execute("restart", Node(node="n1"), "inc/1")).message,
            (await p.undo("set", Other(), "inc/2")).message,
            (await p.inject("stop", Other(), "n2")).message,
            (await p.revert("stop", Other(), "n2")).message,
        ]

    assert asyncio.run(scenario()) == ["restarted n1 (inc/1)", "unset", "stopped n2", "started n2"]
    with pytest.raises(PluginError, match="demo has no reversible action 'restart'"):
        asyncio.run(p.undo("restart", Node(node="n1"), "inc/1"))


def test_a_dispatching_plugin_missing_a_method_cannot_be_built() -> None:
    class Broken(Plugin):
        faults = (STOP, FaultSpec(name="cut", description="", params=Other))

    with pytest.raises(
        PluginError, match="fault needs exactly one method; declared without one: cut"
    ):
        Broken(PluginConfig(), ctx())


def obs(*down: str, **metric: float) -> Observation:
    members = [Member(name=n, state=MemberState.DOWN, message="gone") for n in down]
    return Observation(
        members=[Member(name="up", state=MemberState.UP), *members], metrics={"m": metric}
    )


def test_members_down_one_violation_per_down_member_in_observed_order() -> None:
    found = members_down(obs("b", "a"), INV, lambda m: f"{m.name} down", lambda m: m.message)
    assert [(v.entity, v.summary, v.evidence) for v in found] == [
        ("b", "b down", ["gone"]),
        ("a", "a down", ["gone"]),
    ]


def test_over_threshold_sorted_by_entity_with_the_subjects_threshold_or_the_default() -> None:
    def summary(entity: str, value: float, limit: float) -> str:
        return f"{entity} {value} > {limit}"

    o = obs(z=0.9, a=0.6, m=0.4)
    assert [v.summary for v in over_threshold(o, INV, "m", default=9, summary=summary)] == [
        "a 0.6 > 0.5",
        "z 0.9 > 0.5",
    ]
    untuned = INV.model_copy(update={"threshold": None})
    low = over_threshold(o, untuned, "m", default=0.5, summary=summary, breached=below)
    assert [(v.entity, v.value) for v in low] == [("m", 0.4)]


def test_evaluate_rules_runs_the_rule_of_each_given_invariant_only() -> None:
    seen: list[str] = []

    def rule(o: Observation, inv: Invariant) -> list[Violation]:
        seen.append(inv.name)
        return []

    other = INV.model_copy(update={"name": "core_only"})
    evaluate_rules(obs(), {"slow": INV, "core_only": other}, {"slow": rule, "unused": rule})
    assert seen == ["slow"]


def test_once_replays_a_success_and_runs_again_after_a_failure() -> None:
    memo: BoundedMemo[ActionResult] = BoundedMemo()
    calls: list[bool] = []

    async def act(result: bool) -> ActionResult:
        calls.append(result)
        return ActionResult(ok=result, message="done")

    async def scenario() -> list[ActionResult]:
        return [
            await once(memo, ("s", "k1"), lambda: act(False)),
            await once(memo, ("s", "k1"), lambda: act(True)),
            await once(memo, ("s", "k1"), lambda: act(True)),
        ]

    first, second, third = asyncio.run(scenario())
    assert calls == [False, True]
    assert not first.ok and second.ok and third.detail == {"replayed": True}


def test_a_plugin_config_takes_camel_case_and_refuses_unknown_fields() -> None:
    class Config(PluginConfig):
        request_timeout_seconds: float = 1.0

    assert Config.model_validate({"requestTimeoutSeconds": 2}).request_timeout_seconds == 2
    with pytest.raises(ValidationError, match="requestTimeoutSecond"):
        Config.model_validate({"requestTimeoutSecond": 2})
    with pytest.raises(ValidationError, match="frozen"):
        Config().request_timeout_seconds = 3  # type: ignore[misc]
