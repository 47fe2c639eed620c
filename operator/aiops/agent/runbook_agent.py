"""The deterministic agent: the plugin's runbook, applied to the incident's invariant.

The default when no model is configured, and the baseline the model is evaluated against. A
person-filed incident names no invariant: the runbook agent observes the subject and takes the
runbook of the first broken invariant it finds, or escalates when everything holds.
"""

from __future__ import annotations

from typing import Any

from aiops.agent.base import AgentResult, DiagnosisResult, Investigation, PlanStep, Usage
from aiops.subjects.contract import RunbookEntry
from aiops.subjects.detection import OBSERVATION_FAILED


def _fill(value: Any, entity: str) -> Any:
    if isinstance(value, str):
        return value.replace("{entity}", entity)
    if isinstance(value, dict):
        return {k: _fill(v, entity) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, entity) for v in value]
    return value


# The core's own invariant, the same for every subject: nothing safe to do but watch for the
# subject to answer again (verification), then hand over to a person.
OBSERVATION_FAILED_ENTRY = RunbookEntry(
    invariant=OBSERVATION_FAILED,
    diagnosis="The subject cannot be observed: its endpoints are down, unreachable, or answer "
    "something the plugin cannot read",
    likely_causes=[
        "the subject's API endpoint is down or its address changed",
        "the network between the operator and the subject is broken",
        "Prometheus is down or answers garbage",
        "the Subject's config points at the wrong place",
    ],
    steps=[],
)


class RunbookAgent:
    name = "runbook"

    async def investigate(self, inv: Investigation) -> AgentResult:
        usage = Usage(backend="runbook")
        invariant = inv.incident.spec.invariant
        entity = inv.incident.spec.entity or ""
        if not invariant:
            broken = inv.violations
            await inv.audit(
                "note",
                {
                    "runbook": "matching the symptom to broken invariants",
                    "broken": [v.model_dump(mode="json") for v in broken],
                },
            )
            if not broken:
                return AgentResult(
                    outcome="escalate",
                    diagnosis=DiagnosisResult(
                        summary="Every invariant holds now; the runbook has nothing for the "
                        f"reported symptom: {inv.incident.spec.summary}",
                    ),
                    escalation_reason="no broken invariant matches the reported symptom",
                    usage=usage,
                )
            invariant, entity = broken[0].invariant, broken[0].entity
        entry = next((e for e in inv.plugin.runbook if e.invariant == invariant), None)
        if entry is None and invariant == OBSERVATION_FAILED:
            entry = OBSERVATION_FAILED_ENTRY
        if entry is None:
            return AgentResult(
                outcome="escalate",
                diagnosis=DiagnosisResult(summary=f"No runbook entry for {invariant}."),
                escalation_reason=f"the {inv.plugin.type_name} runbook has no entry for "
                f"{invariant}",
                usage=usage,
            )
        return self._plan(entry, entity, usage)

    def _plan(self, entry: RunbookEntry, entity: str, usage: Usage) -> AgentResult:
        subject = entity or "the subject"
        steps = [
            PlanStep(
                action=s.action,
                params=_fill(dict(s.params), entity),
                rationale=s.rationale or f"runbook step for {entry.invariant}",
            )
            for s in entry.steps
        ]
        return AgentResult(
            outcome="plan",
            diagnosis=DiagnosisResult(
                summary=f"{entry.diagnosis} ({subject})",
                root_cause=entry.likely_causes[0] if entry.likely_causes else None,
                confidence=None,
                alternatives=list(entry.likely_causes[1:]),
            ),
            steps=steps,
            usage=usage,
        )
