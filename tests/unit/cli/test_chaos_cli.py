"""`aiops chaos run --wait`'s follower, on canned API answers: the live line on a terminal,
plain lines elsewhere, the closing story with TTD and TTR, and the exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from rich.console import Console

from aiops.cli import chaos as cli

NOW = "2030-01-01T12:00:00Z"


def chaos(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "c1"},
        "spec": {"subject": "rl", "fault": "kill_node", "target": {"member": "n1"}},
        "status": {"phase": phase, **status},
    }


class Canned:
    """Api.get over a scripted sequence of Chaos states; Subjects and Incidents fixed."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states: Iterator[dict[str, Any]] = iter(states)
        self.last: dict[str, Any] | None = None

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        if plural == "chaos":
            self.last = next(self.states, self.last)
            return self.last
        if plural == "subjects":
            return {"status": {"health": "Degraded"}}
        return {
            "metadata": {"name": name},
            "spec": {"subject": "rl", "summary": "s"},
            "status": {
                "phase": "Resolved",
                "detectedAt": "2030-01-01T12:00:06Z",
                "resolvedAt": "2030-01-01T12:00:09Z",
            },
        }


SETTLED = [
    {"type": "SubjectRecovered", "status": "True", "reason": "Operator", "lastTransitionTime": NOW}
]
STATES = [
    chaos("Pending"),
    chaos(
        "Injected",
        injectedAt=NOW,
        endsAt="2999-01-01T00:00:00Z",
        incidents=["inc-1"],
        targets=[{"name": "n1", "state": "Injected"}],
    ),
    chaos(
        "Recovered",
        injectedAt=NOW,
        recoveredAt=NOW,
        incidents=["inc-1"],
        recoveredBy="operator",
        message="kill_node on n1: the story",
        conditions=SETTLED,
        targets=[{"name": "n1", "state": "Reverted"}],
    ),
]


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "POLL", 0.01)


def test_off_a_terminal_one_plain_line_per_change_then_the_story(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.follow(cast(Any, Canned(STATES)), "c1", limit=10)
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "c1 | Pending | subject rl Degraded | incidents: none"
    assert out[1].startswith("c1 | Injected | ") and " left | " in out[1]
    assert "incidents: inc-1 (Resolved)" in out[1]
    assert out[2].endswith("| recovered by operator")
    assert out[3] == "c1: Recovered: kill_node on n1: the story"
    assert out[4] == "  incident inc-1: Resolved; TTD 6.00 s; TTR 9.00 s"


def test_on_a_terminal_the_line_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    assert cli.follow(cast(Any, Canned(STATES)), "c1", limit=10) == 0


@pytest.mark.parametrize(
    ("last", "code"),
    [
        (chaos("Failed", message="nothing injected: no"), cli.EXIT_FAILED),
        (
            chaos(
                "Recovered", conditions=[{**SETTLED[0], "status": "False", "reason": "StillBroken"}]
            ),
            cli.EXIT_NOT_RECOVERED,
        ),
        (chaos("Injected", endsAt="2999-01-01T00:00:00Z"), cli.EXIT_TIMEOUT),
    ],
)
def test_exit_codes(last: dict[str, Any], code: int) -> None:
    assert cli.follow(cast(Any, Canned([last])), "c1", limit=0.3) == code
