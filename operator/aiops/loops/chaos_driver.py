"""Drives one Chaos: Pending → Injected → Recovered | Failed, then watches what became of the
Subject it broke.

Each `step()` reads the Chaos fresh, does one thing, writes the outcome into its status, and
says how long to wait. Every fact a revert needs is in the spec (subject, fault, params) and in
status (the targets, each claimed as `Injecting` *before* the plugin is asked, `Injected` once
it answered), so an operator killed at any point reverts on time after a restart: a target
found `Injecting` is reverted (reverts are idempotent) and the injection starts over.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from aiops.api import Chaos, Incident, Subject
from aiops.api.chaos import ChaosStatus, TargetRecord
from aiops.api.durations import format_duration, to_timedelta
from aiops.clock import elapsed_since
from aiops.conditions import set_condition
from aiops.crashpoints import crashpoint
from aiops.kube import CustomResources, is_not_found
from aiops.loops.chaos_link import LABEL_CHAOS
from aiops.loops.chaos_targets import (
    Choice,
    TargetProblem,
    candidates,
    choose,
    held_targets,
)
from aiops.loops.transitions import TransitionHub, chaos_transition
from aiops.policy.gate import validate_params
from aiops.subjects.binding import Bound, SubjectProblem, bind
from aiops.subjects.contract import INSTANT, FaultSpec, PluginError, utcnow
from aiops.vocabulary import (
    ACTIVE_TARGETS,
    ChaosPhase,
    ConditionStatus,
    ConditionType,
    EventType,
    Health,
    Outcome,
    Reason,
    RecoveredBy,
    TargetState,
)

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
"""kopf's finalizer (its default, which the operator keeps): on a Chaos it guarantees that the
delete handler reverts before the object goes. Nothing is injected before it is there."""

# The Subject's conditions that say it turned broken, and healthy again.
_BROKEN = (
    (ConditionType.DEGRADED, ConditionStatus.TRUE),
    (ConditionType.READY, ConditionStatus.FALSE),
)
_HEALTHY = (
    (ConditionType.DEGRADED, ConditionStatus.FALSE),
    (ConditionType.READY, ConditionStatus.TRUE),
)
WAIT_TICK = 2.0  # while another Chaos holds the target
TIME_LEFT_STEP = 5  # seconds: timeLeft is written in steps, not at every tick


@dataclass(frozen=True)
class ChaosSettings:
    """`max_duration`: the longest fault this operator injects; `settle_timeout`: how long
    after the revert the Chaos watches for the Subject to be healthy again before it says it
    is not. The operator takes both from its settings (AIOPS_CHAOS_MAX_DURATION,
    AIOPS_CHAOS_SETTLE_TIMEOUT in `aiops.settings`); the rest are the loop's own pace."""

    max_duration: timedelta = timedelta(hours=1)
    settle_timeout: timedelta = timedelta(minutes=5)
    tick: float = 1.0
    call_timeout: float = 60.0
    backoff_max: float = 60.0


@dataclass
class ChaosRuntime:
    """What every Chaos shares: the API, the global switch, settings, and the locks."""

    api: CustomResources
    actions_stopped: Callable[[], Awaitable[bool]]
    settings: ChaosSettings = field(default_factory=ChaosSettings)
    rng: random.Random = field(default_factory=random.SystemRandom)
    # The holder check and the claim in status happen under one lock, so two Chaos never
    # both see a target free (one operator serves a namespace: kopf's peering).
    claim_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Per Chaos: the daemon's steps and the delete handler's revert never overlap.
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    transitions: TransitionHub = field(default_factory=TransitionHub)  # told of phase changes

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault(f"{namespace}/{name}", asyncio.Lock())

    def backoff(self, attempt: int) -> float:
        return float(min(2 ** max(attempt, 1), self.settings.backoff_max))


def updated(status: ChaosStatus, **changes: Any) -> ChaosStatus:
    """A new status with `changes`, validated by the model (so no write can be invalid)."""
    return ChaosStatus.model_validate({**dict(status), **changes})


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(err: BaseException, timeout: float) -> str:
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout:.0f} s"
    if isinstance(err, PluginError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _at(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "?"


@dataclass
class ChaosDriver:
    rt: ChaosRuntime
    namespace: str
    name: str
    _bound: Bound | None = None
    _bound_for: tuple[str, int] | None = None
    _revert_attempts: int = 0

    # -- plumbing -------------------------------------------------------------------------

    @property
    def api(self) -> CustomResources:
        return self.rt.api

    async def _get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.api.get(plural, self.namespace, name)
        except Exception as err:
            if is_not_found(err):
                return None
            raise

    async def _subject(self, name: str) -> Subject | None:
        obj = await self._get(Subject.PLURAL, name)
        return None if obj is None else Subject.from_k8s(obj)

    async def _plugin(self, subject: Subject) -> Bound:
        key = (subject.metadata.uid or "", subject.metadata.generation or 0)
        if self._bound is None or self._bound_for != key:
            await self.close()
            self._bound, self._bound_for = bind(subject, self.api.api_client), key
        return self._bound

    async def close(self) -> None:
        if self._bound is not None:
            bound, self._bound = self._bound, None
            await bound.close()

    async def _write(self, obj: dict[str, Any], status: ChaosStatus) -> None:
        # The whole status, nulls included: a merge patch then clears what is no longer set.
        body = status.model_dump(mode="json", by_alias=True)
        body["observedGeneration"] = obj["metadata"].get("generation")
        before = (obj.get("status") or {}).get("phase")
        result = await self.api.patch_status(Chaos.PLURAL, self.namespace, self.name, body)
        obj["status"] = result.get("status", body)
        if status.phase is not None and status.phase != before:
            self.rt.transitions.publish(chaos_transition(obj, obj["status"], before))

    async def _event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        await self.api.post_event(obj, type_, reason, message)

    def _conditions(
        self, status: ChaosStatus, now: datetime, **conds: tuple[bool | None, str, str]
    ) -> list[Any]:
        """The conditions with each of `conds` set: its name is a `ConditionType`."""
        out = list(status.conditions)
        for type_, (value, reason, message) in conds.items():
            out = set_condition(out, ConditionType(type_), value, reason, message, now)
        return out

    # -- the state machine ----------------------------------------------------------------

    async def step(self) -> float | None:
        """One step. Returns the delay before the next, or None when nothing is left to do."""
        obj = await self._get(Chaos.PLURAL, self.name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None  # deleted: the delete handler reverts
        chaos = Chaos.from_k8s(obj)
        st = chaos.status
        now = utcnow()
        phase = st.phase or ChaosPhase.PENDING
        active = any(t.state in ACTIVE_TARGETS for t in st.targets)
        if phase == ChaosPhase.PENDING:
            # Targets claimed but never recorded Injected: the operator stopped mid-injection.
            return await (self._resume_injection if active else self._try_inject)(obj, chaos)
        if active:
            if phase == ChaosPhase.INJECTED and st.ends_at is not None:
                left = self._left(st, st.ends_at)
                if left > timedelta(0):
                    return await self._hold(obj, chaos, left)
            return await self._revert(obj, chaos)
        if phase == ChaosPhase.RECOVERED:
            return await self._settle(obj, chaos, now)
        return None

    # -- injection ------------------------------------------------------------------------

    async def _fail(self, obj: dict[str, Any], chaos: Chaos, reason: str, message: str) -> None:
        now = utcnow()
        message = _clip(f"nothing injected: {message}")
        status = updated(
            chaos.status,
            phase=ChaosPhase.FAILED,
            message=message,
            waiting_for=None,
            conditions=self._conditions(
                chaos.status,
                now,
                AllInjected=(False, reason, message),
                AllRecovered=(True, "NothingInjected", "nothing was injected"),
            ),
        )
        await self._write(obj, status)
        await self._event(obj, EventType.WARNING, Reason.FAILED, message)

    async def _try_inject(self, obj: dict[str, Any], chaos: Chaos) -> float | None:
        if KOPF_FINALIZER not in obj["metadata"].get("finalizers", []):
            return 0.5  # kopf adds it in this same moment: no fault before its guarantee
        spec, settings = chaos.spec, self.rt.settings
        if to_timedelta(spec.duration) > settings.max_duration:
            await self._fail(
                obj,
                chaos,
                "DurationTooLong",
                (
                    f"duration {spec.duration} is over this operator's maximum of "
                    f"{format_duration(settings.max_duration)} (AIOPS_CHAOS_MAX_DURATION)"
                ),
            )
            return None
        subject = await self._subject(spec.subject)
        if subject is None:
            await self._fail(
                obj,
                chaos,
                "SubjectNotFound",
                f"Subject {spec.subject} does not exist in namespace {self.namespace}",
            )
            return None
        if subject.spec.paused:
            await self._fail(
                obj,
                chaos,
                "SubjectPaused",
                f"Subject {spec.subject} is paused (spec.paused): no fault is "
                "injected into a paused subject",
            )
            return None
        try:
            bound = await self._plugin(subject)
        except SubjectProblem as problem:
            await self._fail(
                obj,
                chaos,
                problem.reason,
                f"Subject {spec.subject} cannot be served: {problem.message}",
            )
            return None
        plugin_cls = type(bound.plugin)
        try:
            fault = plugin_cls.fault(spec.fault)
        except PluginError:
            known = ", ".join(f.name for f in plugin_cls.faults) or "none"
            await self._fail(
                obj,
                chaos,
                "UnknownFault",
                f"a {subject.spec.type} subject has no fault {spec.fault} (its faults: {known})",
            )
            return None
        try:
            params = validate_params(fault, dict(spec.params))
        except ValueError as err:
            await self._fail(obj, chaos, "InvalidParams", str(err))
            return None
        try:
            found = await candidates(fault, spec.target, subject, bound, self.api.api_client)
        except TargetProblem as problem:
            await self._fail(obj, chaos, problem.reason, problem.message)
            return None
        if await self.rt.actions_stopped():
            await self._fail(
                obj,
                chaos,
                "ActionsStopped",
                "actions are stopped operator-wide (the global switch, `aiops "
                "actions stop`): no fault is injected",
            )
            return None
        async with self.rt.claim_lock:
            others = await self.api.list(
                Chaos.PLURAL, self.namespace, field_selector=f"spec.subject={spec.subject}"
            )
            choice = choose(found, held_targets(_valid(others), self.name, fault.name), self.rt.rng)
            if choice.holder:
                return await self._wait(obj, chaos, fault, choice)
            status = updated(
                chaos.status,
                phase=ChaosPhase.PENDING,
                waiting_for=None,
                targets=[TargetRecord(name=t, state=TargetState.INJECTING) for t in choice.targets],
                message=_clip(f"injecting {fault.name} into {', '.join(choice.targets)}"),
            )
            await self._write(obj, status)
        crashpoint("chaos-claimed")
        return await self._inject(obj, chaos, status, bound, fault, params)

    async def _wait(
        self, obj: dict[str, Any], chaos: Chaos, fault: FaultSpec, choice: Choice
    ) -> float:
        message = (
            f"waiting: Chaos {choice.holder} holds {fault.name} on {choice.held}; this "
            "one is injected once that one is reverted"
        )
        if chaos.status.waiting_for != choice.holder or chaos.status.phase != ChaosPhase.PENDING:
            now = utcnow()
            status = updated(
                chaos.status,
                phase=ChaosPhase.PENDING,
                waiting_for=choice.holder,
                message=message,
                conditions=self._conditions(
                    chaos.status, now, AllInjected=(False, "TargetHeld", message)
                ),
            )
            await self._write(obj, status)
            await self._event(obj, EventType.NORMAL, "Waiting", message)
        return WAIT_TICK

    async def _inject(
        self,
        obj: dict[str, Any],
        chaos: Chaos,
        status: ChaosStatus,
        bound: Bound,
        fault: FaultSpec,
        params: BaseModel,
    ) -> float | None:
        timeout = self.rt.settings.call_timeout
        # Claimed targets stay claimed (Injecting) until the plugin answered for each.
        records = {t.name: t for t in status.targets}
        order = list(records)
        for i, name in enumerate(order):
            try:
                result = await asyncio.wait_for(
                    bound.plugin.inject(fault.name, params, name), timeout=timeout
                )
                problem = None if result.ok else result.message
            except Exception as err:  # whatever the plugin raised is this target's failure,
                problem = _describe(err, timeout)  # said in status and rolled back; not a crash
            now = utcnow()
            if problem is not None:
                # It may be half made: reverted with the others (reverts are idempotent).
                records[name] = TargetRecord(name=name, state=TargetState.INJECTED, message=problem)
                for untried in order[i + 1 :]:
                    del records[untried]  # never asked: nothing to revert there
                status = updated(status, targets=list(records.values()))
                return await self._roll_back(
                    obj,
                    chaos,
                    status,
                    bound,
                    fault,
                    params,
                    f"injecting {fault.name} into {name} failed: {problem}",
                )
            instant = bool(result.detail.get(INSTANT))
            records[name] = TargetRecord(
                name=name,
                state=TargetState.REVERTED if instant else TargetState.INJECTED,
                injected_at=now,
                reverted_at=now if instant else None,
                instant=instant,
                message=_clip(result.message),
            )
            status = updated(status, targets=list(records.values()))
            await self._write(obj, status)  # each target's fact is durable before the next
        now = utcnow()
        first = min(t.injected_at or now for t in records.values())
        where = ", ".join(records)
        watching = (None, "Watching", "watching the subject")
        if all(t.instant for t in records.values()):
            message = (
                f"{fault.name} made on {where} at {_at(first)}; it was over as soon as "
                "made (nothing to revert); watching the subject"
            )
            over = max(t.reverted_at or now for t in records.values())
            status = updated(
                status,
                phase=ChaosPhase.RECOVERED,
                injected_at=first,
                recovered_at=over,
                ends_at=None,
                time_left=None,
                message=message,
                conditions=self._conditions(
                    status,
                    now,
                    AllInjected=(True, Reason.INJECTED, message),
                    AllRecovered=(True, "Instant", "an instant fault: over as soon as made"),
                    SubjectRecovered=watching,
                ),
            )
            await self._write(obj, status)
            await self._event(obj, EventType.NORMAL, Reason.INJECTED, message)
            await self._event(obj, EventType.NORMAL, Reason.RECOVERED, message)
            return self.rt.settings.tick
        ends = first + to_timedelta(chaos.spec.duration)
        elapsed_since(self._clock_key, first)  # its time left runs on the monotonic clock now
        message = (
            f"{fault.name} injected into {where} at {_at(first)}; reverted at "
            f"{_at(ends)} ({chaos.spec.duration})"
        )
        status = updated(
            status,
            phase=ChaosPhase.INJECTED,
            injected_at=first,
            ends_at=ends,
            time_left=_time_left(ends - now),
            message=message,
            conditions=self._conditions(
                status,
                now,
                AllInjected=(True, Reason.INJECTED, message),
                AllRecovered=(False, Reason.INJECTED, "the fault is active"),
                SubjectRecovered=watching,
            ),
        )
        await self._write(obj, status)
        await self._event(obj, EventType.NORMAL, Reason.INJECTED, message)
        return 0

    async def _roll_back(
        self,
        obj: dict[str, Any],
        chaos: Chaos,
        status: ChaosStatus,
        bound: Bound,
        fault: FaultSpec,
        params: BaseModel,
        why: str,
    ) -> float | None:
        status, failures = await self._revert_targets(status, bound, fault, params)
        now = utcnow()
        if failures:
            message = _clip(
                f"{why}; reverting what it reached failed (retrying): {'; '.join(failures)}"
            )
            recovered: tuple[bool | None, str, str] = (False, Reason.REVERT_FAILED, message)
        else:
            reached = [t.name for t in status.targets]
            message = _clip(
                f"{why}; reverted what it reached ({', '.join(reached)}): nothing is left injected"
            )
            recovered = (True, Reason.ROLLED_BACK, message)
        status = updated(
            status,
            phase=ChaosPhase.FAILED,
            message=message,
            recovered_at=None if failures else now,
            conditions=self._conditions(
                status, now, AllInjected=(False, "InjectionFailed", message), AllRecovered=recovered
            ),
        )
        await self._write(obj, status)
        await self._event(obj, EventType.WARNING, Reason.FAILED, message)
        if failures:
            await self._event(obj, EventType.WARNING, Reason.REVERT_FAILED, message)
            self._revert_attempts += 1
            return self.rt.backoff(self._revert_attempts)
        return None

    async def _resume_injection(self, obj: dict[str, Any], chaos: Chaos) -> float | None:
        """The operator stopped between claiming a target and recording the plugin's answer:
        the fault may be there or not. Revert everything claimed, then start over."""
        reverted = await self._revert(obj, chaos, restart=True)
        if reverted is not None:
            return reverted  # the revert failed: retried after its backoff
        return 0

    # -- holding, reverting ---------------------------------------------------------------

    def _left(self, st: ChaosStatus, ends_at: datetime) -> timedelta:
        """Time left of the fault, on the monotonic clock once this process has seen it (the
        wall clock is read once, `aiops.clock`): a clock stepped forward must not revert it
        early, nor one stepped back hold it injected past its end."""
        anchor = st.injected_at or ends_at
        return (ends_at - anchor) - elapsed_since(self._clock_key, anchor)

    @property
    def _clock_key(self) -> str:
        return f"chaos/{self.namespace}/{self.name}"

    async def _hold(self, obj: dict[str, Any], chaos: Chaos, left: timedelta) -> float:
        status = await self._watch_subject(obj, chaos, chaos.status)
        status = updated(status, time_left=_time_left(left))
        if status != chaos.status:
            await self._write(obj, status)
        return max(0.0, min(self.rt.settings.tick, left.total_seconds()))

    async def _revert(
        self,
        obj: dict[str, Any],
        chaos: Chaos,
        restart: bool = False,
    ) -> float | None:
        """Revert every target that may carry the fault. `restart`: after a crash mid-
        injection, go back to Pending instead of Recovered."""
        spec = chaos.spec
        status = chaos.status
        failures: list[str]
        try:
            bound, fault, params = await self._revertible(chaos)
        except PluginError as err:
            failures = [str(err)]
            status = updated(
                status,
                targets=[
                    t.model_copy(
                        update={"state": TargetState.REVERT_FAILED, "message": str(err)[:4000]}
                    )
                    if t.state in ACTIVE_TARGETS
                    else t
                    for t in status.targets
                ],
            )
        else:
            status, failures = await self._revert_targets(status, bound, fault, params)
        now = utcnow()
        if failures:
            self._revert_attempts += 1
            delay = self.rt.backoff(self._revert_attempts)
            message = _clip(
                f"reverting {spec.fault} failed (retrying in {delay:.0f} s): {'; '.join(failures)}"
            )
            status = updated(
                status,
                message=message,
                conditions=self._conditions(
                    status, now, AllRecovered=(False, Reason.REVERT_FAILED, message)
                ),
            )
            await self._write(obj, status)
            await self._event(obj, EventType.WARNING, Reason.REVERT_FAILED, message)
            return delay
        self._revert_attempts = 0
        if restart:
            message = (
                "the operator restarted while injecting: what it had claimed was "
                "reverted; injecting again"
            )
            status = updated(status, phase=ChaosPhase.PENDING, targets=[], message=message)
            await self._write(obj, status)
            await self._event(obj, EventType.NORMAL, "Restarted", message)
            return None
        where = ", ".join(t.name for t in status.targets)
        if status.phase == ChaosPhase.FAILED:
            message = _clip(f"{status.message or 'failed'}; since reverted on {where}")
            rolled_back = (True, Reason.ROLLED_BACK, message)
            status = updated(
                status,
                recovered_at=now,
                message=message,
                conditions=self._conditions(status, now, AllRecovered=rolled_back),
            )
            await self._write(obj, status)
            await self._event(obj, EventType.NORMAL, Reason.REVERTED, message)
            return None
        message = f"{spec.fault} reverted on {where} at {_at(now)}; watching the subject"
        status = updated(
            status,
            phase=ChaosPhase.RECOVERED,
            recovered_at=now,
            time_left=None,
            message=message,
            conditions=self._conditions(status, now, AllRecovered=(True, Reason.REVERTED, message)),
        )
        await self._write(obj, status)
        await self._event(obj, EventType.NORMAL, Reason.RECOVERED, message)
        return 0

    async def _revertible(self, chaos: Chaos) -> tuple[Bound, FaultSpec, BaseModel]:
        """The plugin, fault and params to revert with; PluginError says why not."""
        subject = await self._subject(chaos.spec.subject)
        if subject is None:
            raise PluginError(
                f"Subject {chaos.spec.subject} does not exist: there is nothing to revert the "
                "fault through; recreate it (or remove the finalizer by hand to give up)"
            )
        try:
            bound = await self._plugin(subject)
            fault = type(bound.plugin).fault(chaos.spec.fault)
            params = validate_params(fault, dict(chaos.spec.params))
        except (SubjectProblem, ValueError) as err:
            raise PluginError(f"cannot revert through Subject {chaos.spec.subject}: {err}") from err
        return bound, fault, params

    async def _revert_targets(
        self,
        status: ChaosStatus,
        bound: Bound,
        fault: FaultSpec,
        params: BaseModel,
    ) -> tuple[ChaosStatus, list[str]]:
        timeout = self.rt.settings.call_timeout
        failures: list[str] = []
        records = []
        for t in status.targets:
            if t.state not in ACTIVE_TARGETS:
                records.append(t)
                continue
            try:
                result = await asyncio.wait_for(
                    bound.plugin.revert(fault.name, params, t.name), timeout=timeout
                )
                problem = None if result.ok else result.message
                said = result.message
            except Exception as err:  # a revert that raised failed: said in status, retried
                problem = said = _describe(err, timeout)
            if problem is None:
                records.append(
                    t.model_copy(
                        update={
                            "state": TargetState.REVERTED,
                            "reverted_at": utcnow(),
                            "message": _clip(said),
                        }
                    )
                )
            else:
                failures.append(f"{t.name}: {problem}")
                records.append(
                    t.model_copy(
                        update={"state": TargetState.REVERT_FAILED, "message": _clip(problem)}
                    )
                )
        return updated(status, targets=records), failures

    async def revert_for_deletion(self) -> str | None:
        """The Chaos is being deleted: revert whatever may carry the fault, now. Returns why
        it failed (the finalizer stays, kopf retries), or None."""
        obj = await self._get(Chaos.PLURAL, self.name)
        if obj is None:
            return None
        chaos = Chaos.from_k8s(obj)
        if not any(t.state in ACTIVE_TARGETS for t in chaos.status.targets):
            return None
        phase = chaos.status.phase
        delay = await self._revert(obj, chaos)
        if delay is not None:
            return str((obj.get("status") or {}).get("message") or "the revert failed")
        if phase != ChaosPhase.FAILED:
            after = Chaos.from_k8s(obj).status
            message = _clip(
                f"deleted while {(phase or ChaosPhase.PENDING).lower()}: "
                f"{after.message or 'reverted'}"
            )
            await self._write(obj, updated(after, message=message))
        return None

    # -- what became of the subject -------------------------------------------------------

    async def _settle(self, obj: dict[str, Any], chaos: Chaos, now: datetime) -> float | None:
        status = chaos.status
        done = next(
            (
                c
                for c in status.conditions
                if c.type == ConditionType.SUBJECT_RECOVERED and c.status != ConditionStatus.UNKNOWN
            ),
            None,
        )
        if done is not None:
            return None
        status = await self._watch_subject(obj, chaos, status)
        subject = await self._subject(chaos.spec.subject)
        recovered_at = status.recovered_at or now
        verdict: tuple[bool, str, str] | None = None
        if status.healthy_at is not None:
            by = status.recovered_by or RecoveredBy.SELF
            verdict = (True, by.capitalize(), _story(chaos, status))
        elif subject is not None and status.broken_at is None:
            interval = to_timedelta(subject.spec.interval)
            quiet = max(2 * interval, timedelta(seconds=2))
            seen = subject.status.last_observation_time
            if (
                subject.status.health == Health.HEALTHY
                and seen is not None
                and seen >= recovered_at + quiet
            ):
                verdict = (True, "NeverBroken", _story(chaos, status))
        if verdict is None and now >= recovered_at + self.rt.settings.settle_timeout:
            verdict = (False, "StillBroken", _story(chaos, status, gave_up=True))
        if verdict is None:
            if status != chaos.status:
                await self._write(obj, status)
            return self.rt.settings.tick
        ok, reason, message = verdict
        status = updated(
            status,
            message=message,
            conditions=self._conditions(status, now, SubjectRecovered=(ok, reason, message)),
        )
        await self._write(obj, status)
        await self._event(
            obj,
            EventType.NORMAL if ok else EventType.WARNING,
            "SubjectRecovered" if ok else "SubjectNotRecovered",
            message,
        )
        return None

    async def _watch_subject(
        self, obj: dict[str, Any], chaos: Chaos, status: ChaosStatus
    ) -> ChaosStatus:
        """The Subject's health as the subject loop last wrote it: when it was first broken
        after the injection, when healthy again after that, and what brought it back."""
        injected = status.injected_at
        subject = await self._subject(chaos.spec.subject)
        linked = await self.api.list(
            Incident.PLURAL, self.namespace, label_selector=f"{LABEL_CHAOS}={self.name}"
        )
        incidents = [Incident.from_k8s(o) for o in linked if _is_incident(o)]
        names = sorted(i.metadata.name or "" for i in incidents)[:32]
        if names != status.incidents:
            status = updated(status, incidents=names)
        if subject is None or injected is None or status.healthy_at is not None:
            return status
        sst = subject.status
        seen = sst.last_observation_time
        if seen is None or seen <= injected or sst.health in (None, Health.PAUSED):
            return status
        if sst.health != Health.HEALTHY:
            if status.broken_at is None:
                since = _since(sst.conditions, _BROKEN, min)
                broken = since if since is not None and since > injected else seen
                status = updated(status, broken_at=broken)
                await self._event(
                    obj,
                    EventType.NORMAL,
                    "SubjectBroken",
                    f"Subject {chaos.spec.subject} observed {sst.health} at {_at(broken)}",
                )
            return status
        if status.broken_at is None:
            return status
        since = _since(sst.conditions, _HEALTHY, max)
        healthy = since if since is not None and since > status.broken_at else seen
        credit = _credit(chaos, status, incidents, healthy)
        if credit is None:
            return status  # an action is still running: who healed it is not known yet
        by, incident = credit
        status = updated(status, healthy_at=healthy, recovered_by=by, incident=incident)
        await self._event(obj, EventType.NORMAL, "SubjectHealthy", _story(chaos, status))
        return status


def _valid(items: list[dict[str, Any]]) -> list[Chaos]:
    out = []
    for obj in items:
        try:
            out.append(Chaos.from_k8s(obj))
        except ValidationError:
            continue  # not of this operator's API: it holds nothing we know of
    return out


def _is_incident(obj: dict[str, Any]) -> bool:
    try:
        Incident.from_k8s(obj)
    except ValidationError:
        return False
    return True


def _time_left(left: timedelta) -> str:
    seconds = max(0, math.ceil(left.total_seconds() / TIME_LEFT_STEP) * TIME_LEFT_STEP)
    return format_duration(timedelta(seconds=seconds))


def _since(
    conditions: list[Any], wanted: tuple[tuple[str, str], ...], pick: Callable[..., datetime]
) -> datetime | None:
    times = [c.last_transition_time for c in conditions if (c.type, c.status) in wanted]
    return pick(times) if times else None


def _credit(
    chaos: Chaos,
    status: ChaosStatus,
    incidents: list[Incident],
    healthy: datetime,
) -> tuple[RecoveredBy, str | None] | None:
    """What brought the subject back at `healthy`: ("operator", incident) when an action of
    a linked Incident started before it and succeeded, ("revert", None) when the revert was due
    first, else ("self", None). None while a linked action is still running.

    An action counts when it *started* before `healthy`, whenever it finished: a restart
    waits for the member to serve, so the subject is seen healthy a moment before the call
    that healed it returns."""
    injected = status.injected_at or healthy
    for inc in sorted(incidents, key=lambda i: i.metadata.name or ""):
        for a in inc.status.executed_actions:
            if a.started_at < injected or a.started_at > healthy:
                continue
            if a.result == Outcome.RUNNING:
                return None
            if a.result == Outcome.SUCCEEDED:
                return RecoveredBy.OPERATOR, inc.metadata.name
    held = any(not t.instant for t in status.targets)
    # From the moment the revert is due: a process started by it serves (and is seen healthy)
    # before the call that started it returns.
    reverted = status.ends_at or status.recovered_at
    if held and status.recovered_at is not None and reverted and healthy >= reverted:
        return RecoveredBy.REVERT, None
    return RecoveredBy.SELF, None


def _story(chaos: Chaos, status: ChaosStatus, gave_up: bool = False) -> str:
    """The Chaos in one sentence: what was done, what the subject did, what brought it back."""
    where = ", ".join(t.name for t in status.targets) or chaos.spec.subject
    parts = [f"{chaos.spec.fault} on {where}: injected {_at(status.injected_at)}"]
    if status.broken_at is not None:
        parts.append(f"subject broken {_at(status.broken_at)}")
    if status.healthy_at is not None:
        by = {
            None: "",
            RecoveredBy.OPERATOR: f"by the operator (Incident {status.incident})",
            RecoveredBy.SELF: "by itself, before the revert",
            RecoveredBy.REVERT: "after the revert",
        }[status.recovered_by]
        parts.append(f"healthy again {_at(status.healthy_at)} {by}".strip())
    if status.recovered_at is not None and not all(t.instant for t in status.targets):
        parts.append(f"reverted {_at(status.recovered_at)}")
    if status.broken_at is None and status.healthy_at is None:
        parts.append(
            "the subject was never observed broken: no invariant caught this fault"
            if not gave_up
            else "the subject was never observed after the fault"
        )
    elif gave_up and status.healthy_at is None:
        parts.append("still not healthy when the Chaos stopped watching")
    return _clip("; ".join(parts))
