"""The evaluation database: SQLite (stdlib `sqlite3`), one file, so reports re-run without
re-running trials and a crashed run resumes from what it holds.

Schema (every time is ISO 8601 with `+00:00`, UTC; every duration is seconds as REAL):

| table | column | type | meaning |
| --- | --- | --- | --- |
| runs | id | TEXT PK | the run id (`eval-YYYYmmdd-HHMMSS-xxxx`); labels its Chaos objects |
| runs | name | TEXT | the campaign's name |
| runs | campaign_text | TEXT | the campaign file, verbatim |
| runs | campaign_sha256 | TEXT | its sha256 (a resume refuses a changed file) |
| runs | started_at, finished_at | TEXT | finished_at NULL while running or after a crash |
| runs | planned | INTEGER | trials in the plan |
| runs | variants_json | TEXT | JSON list of `VariantInfo` |
| runs | settings_json | TEXT | JSON object: the campaign's timings as run |
| trials | run_id | TEXT | → runs.id |
| trials | seq | INTEGER | position in the plan, 1..planned |
| trials | subject, fault, variant, trial | TEXT, INTEGER | the key (unique per run) |
| trials | plugin_fault | TEXT | the plugin's fault the Chaos injected |
| trials | baseline | INTEGER | 1 when the variant is a baseline (the agent does not act) |
| trials | outcome | TEXT | resolved, escalated, timeout, wrong_fix, self_healed, error |
| trials | detail | TEXT | why, in words |
| trials | chaos, injected_at, recovered_by | TEXT | the Chaos, its injectedAt, its recoveredBy |
| trials | incident, incident_uid, incident_phase, invariant | TEXT | the trial's own Incident |
| trials | audit_seq, audit_hash | INTEGER, TEXT | the Incident's status.auditHead at the end |
| trials | ttd_s, ttr_s, healthy_s | REAL | detectedAt, resolvedAt, healthy again, - injectedAt |
| trials | approval_s | REAL | time in AwaitingApproval |
| trials | actions_json | TEXT | JSON list of `ActionRecord` (action, risk, result, undone, ...) |
| trials | proposed, refused | INTEGER | steps proposed; steps the gate refused |
| trials | tool_calls | INTEGER | tool calls in the audit log (NULL: not readable) |
| trials | model_turns, tokens_in, tokens_out | INTEGER | the agent's usage |
| trials | cost_usd | REAL | its cost |
| trials | started_at, finished_at | TEXT | the trial's own span |

Read with `Store(path).runs()`, `.run(id)`, `.latest()`, `.trials(id)`; each returns the
models of `aiops.eval.records`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from aiops.eval.records import ActionRecord, RunRecord, TrialRecord, VariantInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    campaign_text TEXT NOT NULL,
    campaign_sha256 TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    planned INTEGER NOT NULL,
    variants_json TEXT NOT NULL,
    settings_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    subject TEXT NOT NULL,
    fault TEXT NOT NULL,
    plugin_fault TEXT NOT NULL,
    variant TEXT NOT NULL,
    baseline INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    chaos TEXT,
    injected_at TEXT,
    recovered_by TEXT,
    incident TEXT,
    incident_uid TEXT,
    incident_phase TEXT,
    invariant TEXT,
    audit_seq INTEGER,
    audit_hash TEXT,
    ttd_s REAL,
    ttr_s REAL,
    healthy_s REAL,
    approval_s REAL NOT NULL,
    actions_json TEXT NOT NULL,
    proposed INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    tool_calls INTEGER,
    model_turns INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, subject, fault, variant, trial)
);
"""

_JSON_COLUMNS = {"actions": "actions_json"}
TRIAL_COLUMNS: tuple[str, ...] = tuple(
    _JSON_COLUMNS.get(name, name) for name in TrialRecord.model_fields
)


class StoreError(Exception):
    """The database cannot be used as asked (no such run, a changed campaign)."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class Store:
    """One evaluation database file; each call opens its own connection (the runner's
    parallel subjects write from threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            with db:  # one transaction: committed on success, rolled back on error
                yield db

    # -- writing ------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.name,
                    run.campaign_text,
                    run.campaign_sha256,
                    _iso(run.started_at),
                    _iso(run.finished_at),
                    run.planned,
                    json.dumps([v.model_dump(mode="json") for v in run.variants]),
                    json.dumps(run.settings),
                ),
            )

    def finish_run(self, run_id: str, at: datetime) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (_iso(at), run_id))

    def add_trial(self, trial: TrialRecord) -> None:
        """Records a finished trial; a trial already recorded under the same key is kept
        (a resumed run never records one twice)."""
        row = trial.model_dump(mode="json")
        row["actions"] = json.dumps(row["actions"])
        row["baseline"] = int(row["baseline"])
        values = [row[name] for name in TrialRecord.model_fields]
        marks = ", ".join("?" for _ in TRIAL_COLUMNS)
        with self._db() as db:
            db.execute(
                f"INSERT OR IGNORE INTO trials ({', '.join(TRIAL_COLUMNS)}) VALUES ({marks})",
                values,
            )

    # -- reading ------------------------------------------------------------------------

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY started_at, id").fetchall()
        return [_run(r) for r in rows]

    def run(self, run_id: str) -> RunRecord:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            known = ", ".join(r.id for r in self.runs()) or "none"
            raise StoreError(f"no run {run_id!r} in {self.path} (runs: {known})")
        return _run(row)

    def latest(self) -> RunRecord:
        runs = self.runs()
        if not runs:
            raise StoreError(f"no run in {self.path}")
        return runs[-1]

    def trials(self, run_id: str) -> list[TrialRecord]:
        """The run's recorded trials, in plan order."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM trials WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [_trial(r) for r in rows]

    def done(self, run_id: str) -> set[tuple[str, str, str, int]]:
        """The keys (subject, fault, variant, trial) of the run's recorded trials."""
        with self._db() as db:
            rows = db.execute(
                "SELECT subject, fault, variant, trial FROM trials WHERE run_id = ?", (run_id,)
            ).fetchall()
        return {(r[0], r[1], r[2], int(r[3])) for r in rows}


def _run(row: sqlite3.Row) -> RunRecord:
    data: dict[str, Any] = dict(row)
    data["variants"] = [VariantInfo(**v) for v in json.loads(data.pop("variants_json"))]
    data["settings"] = json.loads(data.pop("settings_json"))
    return RunRecord.model_validate(data)


def _trial(row: sqlite3.Row) -> TrialRecord:
    data: dict[str, Any] = dict(row)
    data["actions"] = [ActionRecord(**a) for a in json.loads(data.pop("actions_json"))]
    data["baseline"] = bool(data["baseline"])
    return TrialRecord.model_validate(data)
