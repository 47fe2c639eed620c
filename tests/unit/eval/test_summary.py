"""A run summed up: who gets credit for what (self-healing faults, errors, the baseline's own
TTR) and the verdict a person reads first."""

from __future__ import annotations

from pathlib import Path

from aiops.eval.records import TrialOutcome as O
from aiops.eval.report import verdict
from aiops.eval.summary import Summary, summarise
from tests.fixtures.eval_runs import BASELINE, RUNBOOK, Plan, write_run


def summary_of(tmp_path: Path, plans: list[Plan]) -> Summary:
    store = write_run(tmp_path / "eval.sqlite", "r1", plans, [RUNBOOK, BASELINE])
    return summarise(store.run("r1"), store.trials("r1"))


def test_a_fault_the_baseline_heals_gives_the_agent_no_credit(tmp_path: Path) -> None:
    s = summary_of(
        tmp_path,
        [
            # The agent "resolves" latency every time, but the system heals it alone.
            Plan("latency", "runbook", [O.RESOLVED] * 5, ttr=[20.0]),
            # The baseline runs on a twin Subject: it is still latency's baseline.
            Plan(
                "latency",
                "baseline",
                [O.SELF_HEALED] * 3 + [O.TIMEOUT] * 2,
                ttr=[12.0, 14.0],
                subject="eval-test/twin",
            ),
            Plan("kill_node", "runbook", [O.RESOLVED] * 2 + [O.WRONG_FIX] * 3, ttr=[40.0]),
            Plan("kill_node", "baseline", [O.TIMEOUT] * 5),
        ],
    )
    latency = "latency"
    assert s.self_healing == [latency] and s.credited == ["kill_node"]
    runbook = s.total("runbook")
    # Only kill_node counts: 2 of 5, not 7 of 10.
    assert (runbook.wins, runbook.counted, runbook.faults) == (2, 5, 1)
    assert runbook.median_ttr is not None and runbook.median_ttr.value == 40.0
    # The baseline's TTR is the time until healthy by itself, of the trials that healed.
    cell = s.cell(latency, "baseline")
    assert cell is not None and cell.wins == 3 and sorted(cell.ttr) == [12.0, 12.0, 14.0]
    line = verdict(s)
    assert line.startswith("Verdict: runbook resolved 2/5 trials (40% [12%-77%]) on 1 fault")
    assert "Self-healing, no credit: latency" in line


def test_errors_count_in_no_rate_and_timeouts_are_losses(tmp_path: Path) -> None:
    s = summary_of(
        tmp_path,
        [
            Plan("kill_node", "runbook", [O.RESOLVED] * 4 + [O.TIMEOUT] + [O.ERROR] * 2),
            Plan("kill_node", "baseline", [O.TIMEOUT] * 5),
            # A fault the plugin refuses on this stack: every trial an error, on both sides.
            Plan("partition_node", "runbook", [O.ERROR] * 5),
            Plan("partition_node", "baseline", [O.ERROR] * 5),
        ],
    )
    assert s.unrun == ["partition_node"] and s.credited == ["kill_node"]
    assert s.unbaselined == [] and s.enough_trials
    assert "Could not be run (every trial an error): partition_node" in verdict(s)
    assert "on 1 fault that does not heal by itself" in verdict(s)
    cell = s.cell("kill_node", "runbook")
    assert cell is not None
    assert (cell.trials, cell.counted, cell.wins) == (7, 5, 4)
    assert cell.win_rate is not None and cell.win_rate.value == 0.8
    # The timeout was never detected: no TTD for it.
    assert len(cell.ttd) == 4


def test_verdict_says_when_there_are_not_enough_trials(tmp_path: Path) -> None:
    few = summary_of(
        tmp_path,
        [
            Plan("kill_node", "runbook", [O.RESOLVED] * 3),
            Plan("kill_node", "baseline", [O.TIMEOUT] * 3),
        ],
    )
    assert not few.enough_trials
    assert "Fewer than 5 counted trials (kill_node · runbook: 3, kill_node · baseline: 3)" in (
        verdict(few)
    )
    assert "against baseline (0/3 healed alone): not enough trials" in verdict(few)


def test_verdict_against_the_baseline_with_enough_trials(tmp_path: Path) -> None:
    s = summary_of(
        tmp_path,
        [
            Plan("kill_node", "runbook", [O.RESOLVED] * 5),
            Plan("kill_node", "baseline", [O.TIMEOUT] * 5),
        ],
    )
    line = verdict(s)
    assert "better than doing nothing (baseline healed 0/5)" in line
    assert "not enough" not in line and "self-healing" not in line


def test_a_fault_without_baseline_is_named(tmp_path: Path) -> None:
    s = summary_of(tmp_path, [Plan("kill_node", "runbook", [O.RESOLVED] * 5)])
    assert s.unbaselined == ["kill_node"]
    assert "No baseline (may heal alone): kill_node" in verdict(s)
