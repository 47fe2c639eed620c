"""The evaluation database: what is written is read back as the same models, times in UTC,
and a trial recorded twice (a resumed run) stays one."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from aiops.eval.records import (
    ActionRecord,
    RunRecord,
    TrialOutcome,
    TrialRecord,
    VariantInfo,
)
from aiops.eval.store import TRIAL_COLUMNS, Store, StoreError

PLUS2 = timezone(timedelta(hours=2))


def trial(n: int, outcome: TrialOutcome = TrialOutcome.RESOLVED) -> TrialRecord:
    at = datetime(2026, 1, 1, 12, 0, n, tzinfo=PLUS2)
    return TrialRecord(
        run_id="r1",
        seq=n,
        subject="ns/rl",
        fault="kill_node",
        plugin_fault="kill_node",
        variant="runbook",
        trial=n,
        outcome=outcome,
        ttd_s=1.5,
        actions=[ActionRecord(id="s1", action="restart_node", risk="medium", result="Succeeded")],
        started_at=at,
        finished_at=at + timedelta(seconds=9),
    )


def test_round_trip_in_utc(tmp_path: Path) -> None:
    store = Store(tmp_path / "eval.sqlite")
    started = datetime(2026, 1, 1, 13, 0, tzinfo=PLUS2)
    store.create_run(
        RunRecord(
            id="r1",
            name="c",
            campaign_text="name: c\n",
            campaign_sha256="0" * 64,
            started_at=started,
            planned=2,
            variants=[VariantInfo(name="runbook"), VariantInfo(name="base", baseline=True)],
        )
    )
    store.add_trial(trial(1))
    store.add_trial(trial(1, TrialOutcome.TIMEOUT))  # recorded already: kept as it was
    store.add_trial(trial(2, TrialOutcome.WRONG_FIX))

    run = Store(tmp_path / "eval.sqlite").latest()
    assert run.started_at == started and run.started_at.tzinfo == UTC
    assert [v.name for v in run.variants] == ["runbook", "base"] and run.finished_at is None
    got = store.trials("r1")
    assert got == [trial(1), trial(2, TrialOutcome.WRONG_FIX)]
    assert got[0].started_at.tzinfo == UTC and got[0].actions_by(risk="medium") == 1
    assert store.done("r1") == {
        ("ns/rl", "kill_node", "runbook", 1),
        ("ns/rl", "kill_node", "runbook", 2),
    }
    store.finish_run("r1", datetime(2026, 1, 1, 11, 30, tzinfo=UTC))
    assert store.run("r1").finished_at == datetime(2026, 1, 1, 11, 30, tzinfo=UTC)


def test_unknown_run_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no run 'nope'.*runs: none"):
        Store(tmp_path / "eval.sqlite").run("nope")


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        trial(1).model_copy(update={}).model_validate(
            {**trial(1).model_dump(), "started_at": datetime(2026, 1, 1)}
        )


def test_every_field_has_a_column() -> None:
    assert len(TRIAL_COLUMNS) == len(TrialRecord.model_fields)
