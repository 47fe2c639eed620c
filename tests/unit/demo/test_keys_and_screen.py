"""The demo's pieces that need no cluster: keys read from a terminal's bytes, the sparkline,
the too-small screen, and an audit record as the timeline says it."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from aiops.audit.record import AuditRecord
from aiops.demo.terminal import parse
from aiops.demo.view import MIN_HEIGHT, MIN_WIDTH, sparkline, timeline_text, too_small


def test_keys_from_bytes() -> None:
    assert parse(b" \r\naArRqQ\x03") == [
        "space",
        "enter",
        "enter",
        "a",
        "a",
        "r",
        "r",
        "q",
        "q",
        "ctrl-c",
    ]
    assert parse(b"\x1b[C\x1bOC") == ["right", "right"]  # normal and application cursor mode
    # Other sequences (←, F5, a mouse report) are skipped whole, not read as letters.
    assert parse(b"\x1b[D\x1b[15~x\x1b[<0;10;5Mq") == ["q"]


def test_sparkline_scales_to_the_largest_value_and_keeps_the_newest() -> None:
    assert sparkline([0, 0, 0], 10) == "▁▁▁"
    assert sparkline([0, 5, 10], 10) == "▁▅█"
    assert sparkline([10, 0, 0, 5], 3) == "▁▁█"  # the newest 3, scaled among themselves
    assert len(sparkline([1.0] * 50, 20)) == 20


def test_a_small_terminal_gets_the_minimum_size_and_nothing_else() -> None:
    console = Console(width=70, height=20, record=True, color_system=None)
    console.print(too_small(70, 20))
    text = console.export_text()
    assert f"at least {MIN_WIDTH}x{MIN_HEIGHT}" in text and "this one is 70x20" in text
    assert "│" not in text


def _record(kind: str, data: dict[str, object]) -> AuditRecord:
    return AuditRecord(
        seq=3,
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        incident="d/i",
        kind=kind,
        data=data,
        prev="0" * 64,
        hash="0" * 64,
    )


def test_audit_records_in_words() -> None:
    assert (
        timeline_text(
            _record(
                "phase", {"from": "Open", "to": "Investigating", "message": "investigation started"}
            )
        ).plain
        == "03:04:05 phase            Open → Investigating: investigation started"
    )
    gate = timeline_text(
        _record(
            "policy.decision",
            {
                "phase": "plan",
                "id": "a1",
                "action": "restart_node",
                "verdict": "await-approval",
                "reason": "high-risk action under autonomy propose: needs an Approval",
            },
        )
    ).plain
    assert "gate (plan): a1 restart_node → await-approval: high-risk" in gate
    done = timeline_text(
        _record(
            "action.finished",
            {
                "id": "a1",
                "action": "restart_node",
                "params": {"node": "rl-node-2"},
                "result": "Succeeded",
                "message": "restarted",
            },
        )
    ).plain
    assert 'finished a1 restart_node {"node": "rl-node-2"}: Succeeded restarted' in done
    assert (
        "verified: the invariant holds" in timeline_text(_record("verify", {"holds": True})).plain
    )


def test_what_others_wrote_is_shown_never_acted_on() -> None:
    """A model's diagnosis or a tool's output can hold escape sequences: on the demo's screen
    they would clear it or redraw the plan a person is about to approve."""
    from aiops.demo.sources import clean

    text = timeline_text(
        _record(
            "agent.result",
            {"outcome": "plan", "diagnosis": {"summary": "fine\x1b[2J\x1b[Hall good\u202e"}},
        )
    ).plain
    assert "\x1b" not in text and "\u202e" not in text
    assert "fine\\x1b[2J\\x1b[Hall good\\u202e" in text
    obj = clean({"status": {"diagnosis": {"summary": "a\rb"}, "count": 3, "items": ["\x1b"]}})
    assert obj == {"status": {"diagnosis": {"summary": "a\\rb"}, "count": 3, "items": ["\\x1b"]}}
