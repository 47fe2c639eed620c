"""The run's progress on the terminal: the campaign's bar (trial n of N, elapsed, ETA) and one
line per Subject with its current trial and phase; off a terminal, one plain line per change."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBar

from aiops.eval.records import TrialRecord
from aiops.eval.runner import Progress
from aiops.eval.trial import TrialPlan


def trial_line(plan: TrialPlan, total: int) -> str:
    return (
        f"trial {plan.seq}/{total} {plan.subject} {plan.fault.name} x {plan.variant.name} "
        f"#{plan.trial}"
    )


def result_line(record: TrialRecord) -> str:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    return f"{record.outcome.value}: TTD {s(record.ttd_s)}, TTR {s(record.ttr_s)}; {record.detail}"


class ConsoleProgress(Progress):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live = self.console.is_terminal
        self.bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.total = 0
        self.overall: TaskID | None = None
        self.rows: dict[str, TaskID] = {}
        self.last: dict[str, str] = {}
        self.lock = threading.Lock()

    def start(self, total: int, done: int) -> None:
        self.total = total
        self.overall = self.bar.add_task("campaign", total=total, completed=done)
        self.bar.start()
        if done:
            self.note(f"{done} of {total} trials recorded already: resuming")

    def stop(self) -> None:
        self.bar.stop()

    def phase(self, subject: str, plan: TrialPlan, text: str) -> None:
        line = f"{trial_line(plan, self.total)}: {text}"
        with self.lock:
            if self.last.get(subject) == line:
                return
            self.last[subject] = line
            if not self.live:
                self.console.print(line, soft_wrap=True, highlight=False)
                return
            if subject not in self.rows:
                self.rows[subject] = self.bar.add_task(line, total=None)
            self.bar.update(self.rows[subject], description=line)

    def finished(self, plan: TrialPlan, record: TrialRecord) -> None:
        with self.lock:
            if self.overall is not None:
                self.bar.advance(self.overall)
            self.console.print(
                f"{trial_line(plan, self.total)}: {result_line(record)}",
                soft_wrap=True,
                highlight=False,
            )

    def note(self, text: str) -> None:
        with self.lock:
            self.console.print(text, soft_wrap=True, highlight=False)
