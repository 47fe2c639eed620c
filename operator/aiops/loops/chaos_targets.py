"""What a Chaos hits: its target resolved against the Subject, and who already holds it.

Resolution follows the fault's `FaultTarget`: a member is checked against a fresh observation
(or, named by a selector, found among the pods of a pods workload); a key passes through as
written; a subject-wide fault has the Subject itself as its one target. The holder rule: at
most one active fault per (subject, fault, target); a Chaos whose target is held waits.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from aiops.api import Chaos, Subject
from aiops.api.chaos import ChaosTarget
from aiops.subjects.binding import Bound
from aiops.subjects.contract import FaultSpec, FaultTarget
from aiops.vocabulary import ACTIVE_TARGETS, Reason

OBSERVE_TIMEOUT = 30.0


class TargetProblem(Exception):
    """The target cannot be resolved; `reason` is a CamelCase word for the condition/Event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Candidates:
    """The names a target may resolve to; `pick_one` when mode one chooses among them."""

    names: tuple[str, ...]
    pick_one: bool = False


async def candidates(
    fault: FaultSpec,
    target: ChaosTarget | None,
    subject: Subject,
    bound: Bound,
    api_client: Any,
) -> Candidates:
    """Raises `TargetProblem` with a precise reason when the target suits neither the fault
    nor the Subject."""
    name = subject.metadata.name or ""
    if fault.target is FaultTarget.SUBJECT:
        return Candidates((name,))
    if target is None:
        what = "a key (target.member)" if fault.target is FaultTarget.KEY else "a member"
        raise TargetProblem("NoTarget", f"fault {fault.name} needs a target: {what}")
    if fault.target is FaultTarget.KEY:
        if target.member is None:
            raise TargetProblem(
                "BadTarget",
                f"fault {fault.name} works on a key of the subject's data: name "
                "the key in target.member (a selector selects members)",
            )
        return Candidates((target.member,))
    if target.member is not None:
        members = await _observed_members(bound)
        if target.member not in members:
            raise TargetProblem(
                "TargetNotFound",
                f"Subject {name} has no member {target.member} (members: "
                f"{', '.join(sorted(members)) or 'none'})",
            )
        return Candidates((target.member,))
    assert target.selector is not None  # the model's rule: member or selector
    pods = await _selected_pods(subject, dict(target.selector.match_labels), api_client)
    return Candidates(tuple(pods), pick_one=target.mode == "one")


async def _observed_members(bound: Bound) -> set[str]:
    try:
        obs = await asyncio.wait_for(bound.plugin.observe(), timeout=OBSERVE_TIMEOUT)
    except Exception as err:  # fail closed: a member we cannot see is not a target
        detail = "timed out" if isinstance(err, TimeoutError) else f"{type(err).__name__}: {err}"
        raise TargetProblem(
            Reason.OBSERVATION_FAILED,
            f"cannot check the target against the subject's members: observation failed ({detail})",
        ) from err
    return {m.name for m in obs.members}


async def _selected_pods(subject: Subject, labels: dict[str, str], api_client: Any) -> list[str]:
    workload = subject.spec.workload
    if workload is None or workload.kind != "pods" or workload.selector is None:
        raise TargetProblem(
            "BadTarget",
            "a selector selects pods, and this Subject's workload is not pods: "
            "name the member in target.member",
        )
    namespace = workload.namespace or subject.metadata.namespace or "default"
    # Both: the workload's selector confines the choice to the subject's own pods.
    merged = {**labels, **dict(workload.selector.match_labels)}
    selector = ",".join(f"{k}={v}" for k, v in sorted(merged.items()))
    core = k8s.CoreV1Api(api_client)
    pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=selector)
    names = sorted(
        str(p.metadata.name)
        for p in pods.items
        if p.metadata is not None and p.metadata.deletion_timestamp is None
    )
    if not names:
        raise TargetProblem(
            "TargetNotFound", f"no pod of the subject matches {selector} in namespace {namespace}"
        )
    return names


def held_targets(others: Iterable[Chaos], me: str, fault: str) -> dict[str, str]:
    """Target name -> the Chaos holding it with the same fault (the other Chaos of the same
    Subject, as listed just now)."""
    held: dict[str, str] = {}
    for other in others:
        if other.metadata.name == me or other.spec.fault != fault:
            continue
        for t in other.status.targets:
            if t.state in ACTIVE_TARGETS:  # it may still carry the fault: it holds the target
                held.setdefault(t.name, other.metadata.name or "")
    return held


@dataclass(frozen=True)
class Choice:
    """Either the targets to inject, or the Chaos to wait for (and the target it holds)."""

    targets: tuple[str, ...] = ()
    holder: str = ""
    held: str = ""


def choose(found: Candidates, held: dict[str, str], rng: random.Random | None = None) -> Choice:
    """Mode one picks at random among the free candidates; every other target needs all of
    its candidates free."""
    free = [n for n in found.names if n not in held]
    if found.pick_one:
        if free:
            return Choice(targets=((rng or random.SystemRandom()).choice(free),))
        first = found.names[0]
        return Choice(holder=held[first], held=first)
    taken = [n for n in found.names if n in held]
    if taken:
        return Choice(holder=held[taken[0]], held=taken[0])
    return Choice(targets=found.names)
