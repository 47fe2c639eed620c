"""What a notification says: a `Notice` per transition a person acts on, and its payload,
Slack-compatible (an incoming webhook's `text` and `blocks`) or generic JSON.

Every text comes from the transition (what the operator wrote into status, redacted there) and
goes through the operator's Redactor again here: a payload never carries a secret.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from aiops.loops.transitions import Transition
from aiops.redact import Redactor, truncate
from aiops.vocabulary import ChaosPhase, Phase

TEXT_MAX = 2900  # a Slack section's text is at most 3000 characters


class NoticeKind(StrEnum):
    OPENED = "opened"
    APPROVAL_NEEDED = "approval-needed"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    CHAOS_INJECTED = "chaos-injected"
    CHAOS_RECOVERED = "chaos-recovered"


def notice_kind(t: Transition) -> NoticeKind | None:
    """The notice a transition makes, or None (most phase changes tell a person nothing)."""
    if t.kind == "Incident":
        if t.from_phase == Phase.OPEN:
            return NoticeKind.OPENED  # the loop takes it up: Open is left at once, and once
        by_phase: dict[str, NoticeKind] = {
            Phase.AWAITING_APPROVAL: NoticeKind.APPROVAL_NEEDED,
            Phase.RESOLVED: NoticeKind.RESOLVED,
            Phase.ESCALATED: NoticeKind.ESCALATED,
        }
        return by_phase.get(t.to_phase)
    by_chaos_phase: dict[str, NoticeKind] = {
        ChaosPhase.INJECTED: NoticeKind.CHAOS_INJECTED,
        ChaosPhase.RECOVERED: NoticeKind.CHAOS_RECOVERED,
    }
    return by_chaos_phase.get(t.to_phase)


def notices(t: Transition) -> list[NoticeKind]:
    """The notices of `t`: an Incident escalated straight from Open is opened and escalated;
    an instant fault goes from Pending to Recovered, injected and recovered at once."""
    kind = notice_kind(t)
    if kind is None:
        return []
    if t.kind == "Incident" and kind == NoticeKind.OPENED and t.to_phase == Phase.ESCALATED:
        return [NoticeKind.OPENED, NoticeKind.ESCALATED]
    if kind == NoticeKind.CHAOS_RECOVERED and t.from_phase in (None, ChaosPhase.PENDING):
        return [NoticeKind.CHAOS_INJECTED, NoticeKind.CHAOS_RECOVERED]
    return [kind]


_TITLES = {
    NoticeKind.OPENED: "Incident opened",
    NoticeKind.APPROVAL_NEEDED: "Approval needed",
    NoticeKind.RESOLVED: "Incident resolved",
    NoticeKind.ESCALATED: "Incident escalated: a person must act",
    NoticeKind.CHAOS_INJECTED: "Chaos injected",
    NoticeKind.CHAOS_RECOVERED: "Chaos recovered",
}


def generic(kind: NoticeKind, t: Transition, redactor: Redactor) -> dict[str, Any]:
    """The generic JSON payload: the notice, the object, and the transition's facts."""
    body: dict[str, Any] = {
        "notice": str(kind),
        "title": _TITLES[kind],
        "kind": t.kind,
        "namespace": t.namespace,
        "name": t.name,
        "uid": t.uid,
        "subject": t.subject,
        "from": t.from_phase,
        "to": t.to_phase,
        "reason": t.reason,
        "time": t.time.isoformat(),
    }
    if t.kind == "Incident":
        body |= {"invariant": t.invariant, "entity": t.entity}
        if kind == NoticeKind.APPROVAL_NEEDED:
            body["plan"] = [s.model_dump(mode="json") for s in t.plan]
            body["approve"] = t.approval_command
        if kind in (NoticeKind.RESOLVED, NoticeKind.ESCALATED):
            body["outcome"] = t.outcome
    else:
        body |= {"fault": t.fault, "targets": list(t.targets), "outcome": t.outcome}
    redacted: dict[str, Any] = redactor.redact(body)
    return redacted


def slack(kind: NoticeKind, t: Transition, redactor: Redactor) -> dict[str, Any]:
    """An incoming webhook's payload: `text` (the fallback every client shows) and `blocks`."""
    g = generic(kind, t, redactor)
    what = f"{t.kind} {t.namespace}/{t.name}"
    head = f"*{g['title']}*: {what} (Subject {t.subject})"
    lines = [head]
    if t.kind == "Incident" and t.invariant:
        lines.append(f"Invariant `{t.invariant}` on `{t.entity or '-'}`")
    if t.kind == "Chaos":
        lines.append(f"Fault `{t.fault}` on {', '.join(g['targets']) or '-'}")
    lines.append(str(g["reason"]))
    blocks: list[dict[str, Any]] = [_section(truncate("\n".join(lines), TEXT_MAX))]
    if kind == NoticeKind.APPROVAL_NEEDED:
        plan = "\n".join(
            f"• `{s['id']}` {s['action']} {json.dumps(s['params'], sort_keys=True)} "
            f"(risk {s.get('risk') or '?'}: {s.get('decision') or '?'}, {s.get('reason') or ''})"
            for s in g.get("plan") or []
        )
        blocks.append(_section(truncate(f"*Plan*\n{plan or '-'}", TEXT_MAX)))
        if g.get("approve"):
            blocks.append(_section(f"Approve with:\n```{g['approve']}```"))
    if kind in (NoticeKind.RESOLVED, NoticeKind.ESCALATED) and g.get("outcome"):
        blocks.append(_section(truncate(f"*Outcome*: {g['outcome']}", TEXT_MAX)))
    text = truncate(" ".join(lines[:1] + ([f"— {g['approve']}"] if g.get("approve") else [])), 500)
    return {"text": text.replace("*", ""), "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def payload(fmt: str, kind: NoticeKind, t: Transition, redactor: Redactor) -> dict[str, Any]:
    return slack(kind, t, redactor) if fmt == "slack" else generic(kind, t, redactor)
