"""`aiops eval compare A B`: a side wins only when the trials show it, a self-healing fault
takes no side, and a side that does not exist is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiops.cli.eval_report import compare_cmd
from aiops.eval.compare import CompareError, Comparison, compare, resolve, text
from aiops.eval.records import TrialOutcome as O
from aiops.eval.records import VariantInfo
from aiops.eval.stats import Call
from tests.fixtures.eval_runs import BASELINE, RUNBOOK, Plan, write_run

CLAUDE = VariantInfo(name="claude", backend="anthropic", model="claude-x")


def two_variants(db: Path, n: int, claude: list[O], runbook: list[O]) -> None:
    write_run(
        db,
        "r1",
        [
            Plan("kill_node", "runbook", runbook * n, ttr=[50.0, 52.0, 55.0]),
            Plan("kill_node", "claude", claude * n, ttr=[20.0, 21.0, 24.0]),
            Plan("kill_node", "baseline", [O.TIMEOUT] * n),
            Plan("latency", "runbook", [O.RESOLVED] * n),
            Plan("latency", "claude", [O.RESOLVED] * n),
            Plan("latency", "baseline", [O.SELF_HEALED] * n),
        ],
        [RUNBOOK, CLAUDE, BASELINE],
    )


def run_compare(db: Path, a: str, b: str) -> Comparison:
    return compare(resolve(a, db), resolve(b, db))


def test_a_clear_win_on_enough_trials(tmp_path: Path) -> None:
    db = tmp_path / "eval.sqlite"
    two_variants(db, 6, claude=[O.RESOLVED], runbook=[O.ESCALATED])
    c = run_compare(db, "r1:claude", "r1:runbook")
    assert c.verdict.startswith("Verdict: A is better: wins 100% [61%-100%] vs 0% [0%-39%]")
    kill, latency = c.rows
    assert kill.rates is not None and kill.rates.call is Call.A_BETTER
    # The system heals latency alone: neither side gets credit for it.
    assert latency.rates is None and "self-healing" in latency.note
    assert c.overall_rates is not None and c.overall_rates.n_a == 6


def test_too_few_trials_say_so(tmp_path: Path) -> None:
    db = tmp_path / "eval.sqlite"
    two_variants(db, 3, claude=[O.RESOLVED], runbook=[O.ESCALATED])
    c = run_compare(db, "r1:claude", "r1:runbook")
    assert c.verdict.startswith("Verdict: not enough trials to tell A from B")
    assert "fewer than 5 trials" in c.verdict


def test_equal_wins_and_faster_resolution(tmp_path: Path) -> None:
    db = tmp_path / "eval.sqlite"
    two_variants(db, 6, claude=[O.RESOLVED], runbook=[O.RESOLVED])
    c = run_compare(db, "r1:claude", "r1:runbook")
    assert c.verdict.startswith("Verdict: A and B win equally often")
    assert "A resolves faster: median TTR A - B = -31.0 s" in c.verdict
    assert "A faster" in text(c)


def test_runs_in_two_databases(tmp_path: Path) -> None:
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    plans = [Plan("kill_node", "baseline", [O.TIMEOUT] * 5)]
    write_run(
        old, "before", [Plan("kill_node", "runbook", [O.TIMEOUT] * 5), *plans], [RUNBOOK, BASELINE]
    )
    write_run(
        new, "after", [Plan("kill_node", "runbook", [O.RESOLVED] * 5), *plans], [RUNBOOK, BASELINE]
    )
    # A file names its latest run; the one agent variant needs no name.
    c = compare(resolve(str(new), tmp_path / "none.sqlite"), resolve(str(old), tmp_path))
    assert (c.a.label, c.b.label) == ("after:runbook", "before:runbook")
    assert c.overall_rates is not None and c.overall_rates.call is Call.A_BETTER


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "no run 'nope'"),
        ("r1:gpt", "run r1 has no variant 'gpt' (variants: runbook, claude, baseline)"),
        ("r1", "run r1 has 2 agent variants (runbook, claude); name one as r1:VARIANT"),
    ],
)
def test_a_side_that_does_not_exist_is_named(tmp_path: Path, spec: str, message: str) -> None:
    db = tmp_path / "eval.sqlite"
    two_variants(db, 1, claude=[O.RESOLVED], runbook=[O.RESOLVED])
    with pytest.raises(CompareError, match=re.escape(message)):
        resolve(spec, db)


def test_cli_without_a_database_fails_clearly(tmp_path: Path) -> None:
    import typer

    app = typer.Typer()
    app.command()(compare_cmd)
    missing = tmp_path / "missing.sqlite"
    result = CliRunner().invoke(app, ["r1", "r2", "--db", str(missing)])
    assert result.exit_code == 2
    assert f"no evaluation database at {missing}" in result.output
    assert not missing.exists()  # reading never creates a database
