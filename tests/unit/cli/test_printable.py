"""What `aiops approve` and `aiops audit show` print of text the model wrote: escape sequences,
carriage returns and bidirectional overrides are shown as escapes, never acted on by the
terminal, so a rationale cannot redraw the step a person approves."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from aiops.api import ProposedAction
from aiops.audit.record import AuditRecord
from aiops.cli.approvals import _describe
from aiops.cli.audit import _render
from aiops.cli.printable import printable

# Up three lines, clear it, back to its start, and write a harmless step over the real one.
REDRAW = (
    "routine cleanup\x1b[3A\x1b[2K\ra1  annotate  risk low\x1b[1B\x1b[2K\r"
    '    params:  {"note": "harmless"}\u202e'
)


def acted_on(text: str) -> list[str]:
    """Characters of `text` a terminal would act on rather than show (newlines aside)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def test_controls_are_escaped_and_text_is_kept() -> None:
    assert printable("a\x1b[2K\rb") == "a\\x1b[2K\\rb"
    assert printable("x\u202ey\u200bz") == "x\\u202ey\\u200bz"
    assert printable("c1\x9b31m") == "c1\\x9b31m"
    assert printable("tab\tand\nline") == "tab\\tand\\nline"
    assert printable("ünïcode, 中文, no\u00a0break, 🙂") == "ünïcode, 中文, no\u00a0break, 🙂"


def test_a_rationale_cannot_redraw_the_step_a_person_approves() -> None:
    argv = [
        "patch",
        "deployment",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"serviceAccountName":"admin"}}}}',
    ]
    step = ProposedAction.model_validate(
        {
            "id": "a1",
            "action": "kubectl",
            "params": {"argv": argv},
            "risk": "high",
            "rationale": REDRAW,
            "decision": "await-approval",
            "reason": "high-risk action\x1b[8m (hidden)",
            "dryRun": {"ok": True, "message": "ok\r"},
        }
    )
    shown = _describe(step)
    assert acted_on(shown) == []
    lines = shown.splitlines()
    assert lines[0] == "a1  kubectl  risk high"
    assert "serviceAccountName" in lines[1]  # the real params, still there to read
    assert "\\x1b[3A" in lines[-1] and "\\u202e" in lines[-1]  # the attempt, visible


def test_audit_show_prints_no_control_character() -> None:
    record = AuditRecord(
        seq=3,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        incident="inc-1",
        kind="agent.result",
        data={"summary": REDRAW},
        prev="0" * 64,
        hash="1" * 64,
    )
    line = _render(record)
    assert acted_on(line) == []
    assert "routine cleanup\\x1b[3A" in line
