"""The outcome of a trial, from what its Chaos and its Incident say (pure: no I/O).

In order:
- the Chaos Failed: `error` (nothing was injected);
- an action was undone: `wrong_fix` (it ran, was not verified, and was rolled back);
- no Incident of this fault: `self_healed` when the Chaos saw the Subject broken and then
  healthy by itself before the revert was due, else `timeout` (never detected is never a
  success);
- the Incident did not end in time: `timeout`;
- the Subject healed by itself (the Chaos says `self`) and no action of ours succeeded:
  `self_healed`, whatever the Incident's phase: nobody gets credit for it;
- Resolved: `resolved` when the Subject was seen healthy again, not only once the fault was
  reverted, and the invariant did not break again during the fault; otherwise `wrong_fix` if
  an action ran, else `timeout` (the fault outlasted the agent);
- Escalated: `wrong_fix` if an action ran (and the invariant still broke), else `escalated`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.api import ChaosStatus, Incident
from aiops.eval.records import TrialOutcome
from aiops.vocabulary import ChaosPhase, Outcome, Phase, RecoveredBy


@dataclass(frozen=True)
class Verdict:
    outcome: TrialOutcome
    detail: str


def decide(
    chaos: ChaosStatus,
    incident: Incident | None,
    *,
    ended: bool,
    broke_again: str | None = None,
    waited_s: float = 0.0,
) -> Verdict:
    """`ended`: the Incident reached Resolved or Escalated in time; `broke_again`: another
    Incident of the same invariant linked to this Chaos, opened after this one was resolved."""
    if chaos.phase == ChaosPhase.FAILED:
        return Verdict(TrialOutcome.ERROR, f"the Chaos failed: {chaos.message or 'no reason'}")
    actions = incident.status.executed_actions if incident else []
    ran = [a.action for a in actions if a.result == Outcome.SUCCEEDED]
    undone = [a.action for a in actions if a.undone]
    if undone:
        return Verdict(
            TrialOutcome.WRONG_FIX,
            f"{', '.join(undone)} ran, was not verified and was undone",
        )
    healed_alone = (
        chaos.recovered_by == RecoveredBy.SELF
        and chaos.healthy_at is not None
        # Healthy before the revert was due, checked here too: a Subject seen healthy in the
        # moment between the revert's start and the Chaos recording it is credited `self`.
        and (chaos.ends_at is None or chaos.healthy_at < chaos.ends_at)
    )
    if incident is None:
        if healed_alone:
            return Verdict(
                TrialOutcome.SELF_HEALED,
                "the Subject broke and was healthy again by itself before any Incident",
            )
        seen = "never seen broken" if chaos.broken_at is None else "broken, but no Incident"
        return Verdict(TrialOutcome.TIMEOUT, f"never detected within {waited_s:g} s ({seen})")
    phase = incident.status.phase
    if not ended:
        return Verdict(
            TrialOutcome.TIMEOUT,
            f"Incident {incident.metadata.name} still {phase} after {waited_s:g} s",
        )
    if healed_alone and not ran:
        return Verdict(
            TrialOutcome.SELF_HEALED,
            f"healthy again by itself before the revert (Incident {phase})",
        )
    if phase == Phase.RESOLVED:
        if broke_again:
            return Verdict(
                TrialOutcome.WRONG_FIX,
                f"Resolved, then the invariant broke again (Incident {broke_again})",
            )
        if chaos.healthy_at is None:
            if ran:
                return Verdict(
                    TrialOutcome.WRONG_FIX,
                    f"{', '.join(ran)} ran and the Incident was Resolved, but the Subject was "
                    "not healthy again",
                )
            return Verdict(
                TrialOutcome.TIMEOUT, "Resolved without an action, the Subject not healthy again"
            )
        if chaos.recovered_by == RecoveredBy.REVERT:
            if ran:
                return Verdict(
                    TrialOutcome.WRONG_FIX,
                    f"{', '.join(ran)} ran, but the Subject was healthy only once the fault "
                    "was reverted",
                )
            return Verdict(
                TrialOutcome.TIMEOUT, "Resolved only once the fault was reverted: no fix in time"
            )
        by = ", ".join(ran) if ran else "no action"
        return Verdict(TrialOutcome.RESOLVED, f"Resolved by {by}; Subject healthy again")
    reason = incident.status.escalation_reason or "no reason given"
    if ran:
        return Verdict(
            TrialOutcome.WRONG_FIX,
            f"{', '.join(ran)} ran and the invariant still broke; escalated: {reason}",
        )
    return Verdict(TrialOutcome.ESCALATED, f"escalated: {reason}")
