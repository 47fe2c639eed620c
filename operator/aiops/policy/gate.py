"""The policy gate: Subject autonomy by action risk, plus the checks that make a yes safe.

Order of checks (the first that fails decides, with its reason):
1. the global switch and `Subject.spec.paused` stop everything;
2. the action exists (the plugin's or the core's) and its parameters validate — unknown
   parameters are refused, not ignored;
3. autonomy `observe` never mutates;
4. the actions-per-incident budget (not for an undo: it takes an action back);
5. no observation, no risk: without a fresh observation the gate refuses an action that
   disrupts a member and every plugin action (each has preconditions, which need one);
6. blast radius: an action that disrupts a member waits for no other member to be down and no
   other disruptive action to be running on the subject (its own target, named by the spec's
   `member_param`, is not "another");
7. the plugin's preconditions, against a fresh observation (not for an undo: they describe
   the action, not its reversal);
8. autonomy by risk: `execute` runs low-risk actions now; everything else waits for an Approval
   (or runs, when one approving this action exists).
A model's words never reach this code except as the action name and parameters, which are
validated like any other input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from aiops.actions import action_names, find_action, is_core
from aiops.api import Subject
from aiops.subjects.contract import (
    ActionSpec,
    FaultSpec,
    Observation,
    Risk,
    SubjectPlugin,
)
from aiops.vocabulary import Autonomy, Check, Verdict


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    spec: ActionSpec | None = None
    params: BaseModel | None = None
    check: Check | None = None  # the one that refused, or approval/autonomy for a yes or a wait

    def as_dict(self) -> dict[str, Any]:
        return {"decision": self.verdict, "reason": self.reason}


@dataclass(frozen=True)
class GateSettings:
    actions_per_incident: int = 5


@dataclass
class GateInput:
    """The live facts a decision needs; the loop gathers them just before asking."""

    subject: Subject
    plugin: SubjectPlugin
    observation: Observation | None
    actions_stopped: bool = False  # the global switch
    executed_in_incident: int = 0
    disruptive_running: list[str] = field(default_factory=list)  # "incident/action" elsewhere
    approved: bool = False  # a live Approval approves this very step (the loop checks it)
    undo: bool = False  # judging the reversal of an action that ran, not the action


def validate_params(spec: ActionSpec | FaultSpec, raw: Any) -> BaseModel:
    """Validates strictly: a parameter the action (or the Chaos fault) does not define is an
    error."""
    if not isinstance(raw, dict):
        raise ValueError(f"parameters of {spec.name} must be an object, got {type(raw).__name__}")
    known = set(spec.params.model_fields) | {
        f.alias for f in spec.params.model_fields.values() if f.alias
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"{spec.name} has no parameter(s) {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(spec.params.model_fields)) or 'none'})"
        )
    try:
        return spec.params.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(f"invalid parameters for {spec.name}: {problems}") from err


async def decide(
    action: str, raw_params: Any, facts: GateInput, settings: GateSettings | None = None
) -> Decision:
    settings = settings or GateSettings()
    subject = facts.subject
    if facts.actions_stopped:
        return Decision(
            Verdict.REFUSED,
            "actions are stopped operator-wide (the global switch)",
            check=Check.SWITCH,
        )
    if subject.spec.paused:
        return Decision(
            Verdict.REFUSED, f"Subject {subject.metadata.name} is paused", check=Check.PAUSED
        )
    spec = find_action(facts.plugin, action)
    if spec is None:
        known = action_names(facts.plugin)
        return Decision(
            Verdict.REFUSED,
            f"unknown action {action!r} for a {subject.spec.type} subject "
            f"(known: {', '.join(known)})",
            check=Check.ACTION,
        )
    try:
        params = validate_params(spec, raw_params)
    except ValueError as err:
        return Decision(Verdict.REFUSED, str(err), spec, check=Check.PARAMS)
    if subject.spec.autonomy == Autonomy.OBSERVE:
        return Decision(
            Verdict.REFUSED,
            "autonomy is observe: the operator proposes nothing it runs",
            spec,
            params,
            Check.AUTONOMY,
        )
    if not facts.undo and facts.executed_in_incident >= settings.actions_per_incident:
        return Decision(
            Verdict.REFUSED,
            f"the budget of {settings.actions_per_incident} actions per incident is spent",
            spec,
            params,
            Check.BUDGET,
        )
    has_preconditions = not is_core(spec.name) and not facts.undo
    if facts.observation is None and (spec.disrupts_member or has_preconditions):
        needs = (
            "it disrupts a member, and the blast radius cannot be checked"
            if spec.disrupts_member
            else "its preconditions cannot be checked"
        )
        return Decision(
            Verdict.REFUSED,
            f"no observation of the subject: {spec.name} does not run blind ({needs}); "
            "it can be proposed again once the subject can be observed",
            spec,
            params,
            Check.OBSERVATION,
        )
    if spec.disrupts_member:
        if facts.disruptive_running:
            return Decision(
                Verdict.REFUSED,
                "blast radius: another disruptive action is running on this subject "
                f"({', '.join(facts.disruptive_running)})",
                spec,
                params,
                Check.BLAST_RADIUS,
            )
        assert facts.observation is not None  # refused above
        down = [m.name for m in facts.observation.down_members()]
        # The action's own target is not "another" member down: restarting the down member
        # is the remedy. The spec names which parameter that is (`member_param`).
        target = spec.target_member(params)
        others = [m for m in down if m != target]
        if others:
            return Decision(
                Verdict.REFUSED,
                f"blast radius: member(s) {', '.join(others)} already down; one member "
                "disrupted at a time",
                spec,
                params,
                Check.BLAST_RADIUS,
            )
    if has_preconditions:
        assert facts.observation is not None  # refused above
        try:
            reasons = await facts.plugin.preconditions(spec.name, params, facts.observation)
        except Exception as err:  # cannot check = cannot run
            reasons = [f"preconditions could not be checked: {err}"]
        if reasons:
            return Decision(
                Verdict.REFUSED,
                "precondition: " + "; ".join(reasons),
                spec,
                params,
                Check.PRECONDITION,
            )
    if facts.approved:
        return Decision(Verdict.RUN, "approved by a person", spec, params, Check.APPROVAL)
    if subject.spec.autonomy == Autonomy.EXECUTE and spec.risk is Risk.LOW:
        return Decision(
            Verdict.RUN, "autonomy execute allows low-risk actions", spec, params, Check.AUTONOMY
        )
    return Decision(
        Verdict.AWAIT_APPROVAL,
        f"{spec.risk.value}-risk action under autonomy {subject.spec.autonomy}: needs an Approval",
        spec,
        params,
        Check.APPROVAL,
    )
