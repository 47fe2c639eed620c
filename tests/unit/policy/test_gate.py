"""The policy gate decides, never the model: autonomy by risk, strict parameters, budget,
blast radius, preconditions and the switches, each with a reason a person can read."""

from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from aiops.api import Subject
from aiops.policy.gate import GateInput, GateSettings, decide
from aiops.subjects.context import PluginContext
from aiops.subjects.contract import (
    ActionSpec,
    Invariant,
    Member,
    MemberState,
    Observation,
    Risk,
    RunbookEntry,
    SubjectPlugin,
    Violation,
)


class KeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


class NodeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str


class ToyConfig(BaseModel):
    pass


class Toy(SubjectPlugin):
    """A small real plugin for the gate to judge (a test subject, not a stand-in for ours)."""

    type_name = "toy"
    config_model = ToyConfig
    invariants: ClassVar[tuple[Invariant, ...]] = ()
    runbook: ClassVar[tuple[RunbookEntry, ...]] = ()
    actions: ClassVar[tuple[ActionSpec, ...]] = (
        ActionSpec(name="reset", description="", params=KeyParams, risk=Risk.LOW),
        ActionSpec(name="tune", description="", params=KeyParams, risk=Risk.MEDIUM),
        ActionSpec(
            name="restart",
            description="",
            params=NodeParams,
            risk=Risk.HIGH,
            disrupts_member=True,
            member_param="node",
        ),
    )

    async def observe(self) -> Observation:
        return Observation()

    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        return []

    async def preconditions(self, action: str, params: BaseModel, obs: Observation) -> list[str]:
        if getattr(params, "key", "") == "missing":
            return ["key missing does not exist"]
        return []


def facts(autonomy: str = "execute", **kw: Any) -> GateInput:
    subject = Subject.from_k8s(
        {
            "metadata": {"name": "toy", "namespace": "ns"},
            "spec": {"type": "toy", "autonomy": autonomy, **kw.pop("spec", {})},
        }
    )
    members = [Member(name=n, state=s) for n, s in kw.pop("members", {}).items()]
    plugin = Toy(ToyConfig(), PluginContext(subject="ns/toy", prometheus=None, workload=None))
    observation = kw.pop("observation", Observation(members=members))
    return GateInput(subject=subject, plugin=plugin, observation=observation, **kw)


@pytest.mark.parametrize(
    ("autonomy", "action", "verdict"),
    [
        ("execute", "reset", "run"),
        ("execute", "tune", "await-approval"),
        ("execute", "restart", "await-approval"),
        ("propose", "reset", "await-approval"),
        ("propose", "restart", "await-approval"),
        ("observe", "reset", "refused"),
    ],
)
async def test_autonomy_by_risk(autonomy: str, action: str, verdict: str) -> None:
    params = {"node": "n1"} if action == "restart" else {"key": "k"}
    d = await decide(action, params, facts(autonomy))
    assert d.verdict == verdict, d.reason


async def test_an_approval_lets_a_high_risk_action_run() -> None:
    d = await decide("restart", {"node": "n1"}, facts("propose", approved=True))
    assert d.verdict == "run" and "approved" in d.reason


@pytest.mark.parametrize(
    ("action", "params", "reason"),
    [
        ("drop_database", {}, "unknown action 'drop_database' for a toy subject"),
        ("reset", {"key": "k", "subject": "other"}, "reset has no parameter(s) subject"),
        ("reset", {}, "invalid parameters for reset: key: Field required"),
        ("reset", "key=k", "parameters of reset must be an object"),
        ("reset", {"key": "missing"}, "precondition: key missing does not exist"),
        ("kubectl", {"argv": ["delete", "pods", "--all", "-A"]}, "flag -A is not allowed"),
    ],
)
async def test_bad_requests_are_refused_with_the_reason(
    action: str, params: Any, reason: str
) -> None:
    d = await decide(action, params, facts("execute", approved=True))
    assert d.verdict == "refused"
    assert reason in d.reason


async def test_switches_budget_and_blast_radius() -> None:
    d = await decide("reset", {"key": "k"}, facts(actions_stopped=True))
    assert d.verdict == "refused" and "global switch" in d.reason
    d = await decide("reset", {"key": "k"}, facts(spec={"paused": True}))
    assert d.verdict == "refused" and "paused" in d.reason
    d = await decide(
        "reset", {"key": "k"}, facts(executed_in_incident=2), GateSettings(actions_per_incident=2)
    )
    assert d.verdict == "refused" and "budget of 2 actions" in d.reason
    down = {"n1": MemberState.UP, "n2": MemberState.DOWN}
    d = await decide("restart", {"node": "n1"}, facts(approved=True, members=down))
    assert d.verdict == "refused" and "n2 already down" in d.reason
    # Restarting the member that is down is what heals it: allowed.
    d = await decide("restart", {"node": "n2"}, facts(approved=True, members=down))
    assert d.verdict == "run"
    d = await decide(
        "restart", {"node": "n1"}, facts(approved=True, disruptive_running=["inc-1/a1"])
    )
    assert d.verdict == "refused" and "inc-1/a1" in d.reason


@pytest.mark.parametrize(
    ("action", "params", "why"),
    [
        ("restart", {"node": "n1"}, "it disrupts a member"),
        ("reset", {"key": "k"}, "its preconditions cannot be checked"),
        ("tune", {"key": "k"}, "its preconditions cannot be checked"),
        ("kubectl", {"argv": ["annotate", "configmap", "c", "a=b"]}, "it disrupts a member"),
    ],
)
async def test_without_an_observation_nothing_risky_runs(
    action: str, params: dict[str, Any], why: str
) -> None:
    # No observation (the plugin's observe failed or timed out) must not mean "no objection":
    # an approved, low-risk action under execute is still refused, saying why.
    for approved in (False, True):
        d = await decide(action, params, facts("execute", observation=None, approved=approved))
        assert (d.verdict, d.check) == ("refused", "observation"), d.reason
        assert "no observation of the subject" in d.reason and why in d.reason


async def test_an_undo_skips_the_actions_preconditions_and_budget_but_not_the_rest() -> None:
    # The preconditions describe the action, not its reversal; an undo spends no budget.
    d = await decide(
        "tune",
        {"key": "missing"},
        facts("propose", approved=True, undo=True, executed_in_incident=9),
    )
    assert d.verdict == "run", d.reason
    d = await decide("tune", {"key": "k"}, facts(spec={"paused": True}, approved=True, undo=True))
    assert (d.verdict, d.check) == ("refused", "paused")
    d = await decide("tune", {"key": "k"}, facts("observe", approved=True, undo=True))
    assert (d.verdict, d.check) == ("refused", "autonomy")
    down = {"n1": MemberState.UP, "n2": MemberState.DOWN}
    d = await decide("restart", {"node": "n1"}, facts(approved=True, undo=True, members=down))
    assert (d.verdict, d.check) == ("refused", "blast-radius")
    d = await decide("tune", {"key": "k"}, facts("propose", undo=True))
    assert d.verdict == "await-approval"  # undoing a medium-risk action needs its Approval


def test_member_param_must_name_one_of_the_actions_parameters() -> None:
    with pytest.raises(ValueError, match="member_param 'member' is not one of its parameters"):
        ActionSpec(
            name="restart",
            description="",
            params=NodeParams,
            risk=Risk.HIGH,
            disrupts_member=True,
            member_param="member",
        )
    spec = Toy.action("restart")
    assert spec.target_member(NodeParams(node="n2")) == "n2"
    assert Toy.action("reset").target_member(KeyParams(key="k")) is None
