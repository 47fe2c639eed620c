"""A run's trials summed up per fault and variant: the numbers the report prints and draws and
`aiops eval compare` weighs, computed once here so that every view says the same.

The rules, which the report's notes repeat:
- A trial of an agent variant is a *win* when its outcome is `resolved` (the operator's own
  Incident Resolved and the Subject healthy again). A trial of a baseline variant (the agent
  does not act) succeeds when the system `self_healed`.
- Trials that could not be run as planned (`error`) count in no rate: they say nothing about
  the operator.
- A fault is *self-healing* when the baseline healed it by itself in at least half of its
  trials. The agent gets no credit for it: it is left out of the agent's overall win rate,
  and its rows say so.
- TTD is the Incident's detection and TTR its resolution, both from the Chaos' injection; for
  a baseline trial that healed by itself, TTR is the time until the Subject was healthy again.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from aiops.eval.records import RunRecord, TrialOutcome, TrialRecord
from aiops.eval.stats import MIN_TRIALS, Interval, bootstrap_median, wilson

SELF_HEALING_SHARE = 0.5
"""The share of baseline trials that must heal by themselves for a fault to be self-healing."""


@dataclass
class Cell:
    """The trials of one fault under one variant, summed up."""

    key: str
    """The campaign's fault entry (its trials pooled over the Subjects the variant ran on)."""
    variant: str
    baseline: bool
    outcomes: dict[TrialOutcome, int] = field(default_factory=dict)
    ttd: list[float] = field(default_factory=list)
    ttr: list[float] = field(default_factory=list)
    actions: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    self_healing_fault: bool = False

    def count(self, outcome: TrialOutcome) -> int:
        return self.outcomes.get(outcome, 0)

    @property
    def trials(self) -> int:
        return sum(self.outcomes.values())

    @property
    def counted(self) -> int:
        """Trials that count in a rate (all but `error`)."""
        return self.trials - self.count(TrialOutcome.ERROR)

    @property
    def wins(self) -> int:
        return self.count(TrialOutcome.SELF_HEALED if self.baseline else TrialOutcome.RESOLVED)

    @property
    def win_rate(self) -> Interval | None:
        return wilson(self.wins, self.counted) if self.counted else None

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def cost_per_resolved(self) -> float | None:
        resolved = self.count(TrialOutcome.RESOLVED)
        return self.cost_usd / resolved if resolved else None


@dataclass
class VariantTotal:
    """One variant over every fault that gives it credit (not self-healing ones)."""

    variant: str
    baseline: bool
    wins: int = 0
    counted: int = 0
    ttd: list[float] = field(default_factory=list)
    ttr: list[float] = field(default_factory=list)
    cost_usd: float = 0.0
    resolved: int = 0
    faults: int = 0

    @property
    def win_rate(self) -> Interval | None:
        return wilson(self.wins, self.counted) if self.counted else None

    @property
    def median_ttd(self) -> Interval | None:
        return bootstrap_median(self.ttd) if self.ttd else None

    @property
    def median_ttr(self) -> Interval | None:
        return bootstrap_median(self.ttr) if self.ttr else None

    @property
    def cost_per_resolved(self) -> float | None:
        return self.cost_usd / self.resolved if self.resolved else None


@dataclass
class Summary:
    """A run summed up: cells in a stable order (faults as first run, variants as declared)."""

    run: RunRecord
    cells: list[Cell]
    faults: list[str]
    variants: list[str]
    self_healing: list[str]
    unbaselined: list[str]
    """Faults no baseline trial was counted for: nobody can say whether they heal alone."""
    unrun: list[str]
    """Faults every trial of which was an `error` (could not be run): they measure nothing."""

    def cell(self, key: str, variant: str) -> Cell | None:
        return next((c for c in self.cells if c.key == key and c.variant == variant), None)

    def label(self, key: str) -> str:
        """How the report names a fault (its campaign entry's name)."""
        return key

    def is_baseline(self, variant: str) -> bool:
        return any(c.baseline for c in self.cells if c.variant == variant)

    @property
    def agent_variants(self) -> list[str]:
        return [v for v in self.variants if not self.is_baseline(v)]

    @property
    def baseline_variants(self) -> list[str]:
        return [v for v in self.variants if self.is_baseline(v)]

    @property
    def credited(self) -> list[str]:
        """The faults an agent gets credit for: all but the self-healing and unrun ones."""
        return [k for k in self.faults if k not in self.self_healing and k not in self.unrun]

    def total(self, variant: str, over: Collection[str] | None = None) -> VariantTotal:
        """The variant pooled over `over` (default: the credited faults for an agent variant,
        every fault that ran for a baseline)."""
        baseline = self.is_baseline(variant)
        if over is None:
            over = [k for k in self.faults if k not in self.unrun] if baseline else self.credited
        total = VariantTotal(variant, baseline)
        for cell in self.cells:
            if cell.variant != variant or cell.key not in over:
                continue
            total.faults += 1
            total.wins += cell.wins
            total.counted += cell.counted
            total.ttd += cell.ttd
            total.ttr += cell.ttr
            total.cost_usd += cell.cost_usd
            total.resolved += cell.count(TrialOutcome.RESOLVED)
        return total

    @property
    def min_trials(self) -> int:
        """The fewest counted trials of any cell of a fault that ran: below `MIN_TRIALS`
        nothing can be ranked."""
        return min((c.counted for c in self.cells if c.key not in self.unrun), default=0)

    @property
    def enough_trials(self) -> bool:
        return self.min_trials >= MIN_TRIALS

    @property
    def short_cells(self) -> list[Cell]:
        """The cells of faults that ran with fewer than `MIN_TRIALS` counted trials."""
        return [c for c in self.cells if c.key not in self.unrun and c.counted < MIN_TRIALS]


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def summarise(run: RunRecord, trials: Sequence[TrialRecord]) -> Summary:
    """Sums up `trials` (one run's) per fault and variant. A fault is the campaign's entry,
    whichever Subject a trial ran on: a baseline may run on a twin Subject of its own, and it
    is still the baseline of the same fault."""
    cells: dict[tuple[str, str], Cell] = {}
    for t in trials:
        key = t.fault
        cell = cells.setdefault((key, t.variant), Cell(key, t.variant, t.baseline))
        cell.outcomes[t.outcome] = cell.outcomes.get(t.outcome, 0) + 1
        # Usage counts for every trial (an error trial's tokens were paid for too)...
        cell.actions += len(t.actions)
        cell.tokens_in += t.tokens_in
        cell.tokens_out += t.tokens_out
        cell.cost_usd += t.cost_usd
        if t.outcome is TrialOutcome.ERROR:
            continue  # ...but what an error trial timed is not the operator's doing
        if t.ttd_s is not None:
            cell.ttd.append(t.ttd_s)
        if t.outcome is TrialOutcome.RESOLVED and t.ttr_s is not None:
            cell.ttr.append(t.ttr_s)
        elif t.baseline and t.outcome is TrialOutcome.SELF_HEALED and t.healthy_s is not None:
            cell.ttr.append(t.healthy_s)

    faults = list(dict.fromkeys(t.fault for t in trials))
    declared = [v.name for v in run.variants]
    variants = _ordered(
        [*(v for v in declared if any(k[1] == v for k in cells)), *(k[1] for k in cells)]
    )

    self_healing: list[str] = []
    unbaselined: list[str] = []
    unrun = [k for k in faults if not any(c.counted for c in cells.values() if c.key == k)]
    for key in (k for k in faults if k not in unrun):
        base = [c for c in cells.values() if c.key == key and c.baseline and c.counted]
        healed = sum(c.wins for c in base)
        counted = sum(c.counted for c in base)
        if not counted:
            unbaselined.append(key)
        elif healed >= SELF_HEALING_SHARE * counted:
            self_healing.append(key)
    for cell in cells.values():
        cell.self_healing_fault = cell.key in self_healing

    ordered = [
        cells[(key, variant)] for key in faults for variant in variants if (key, variant) in cells
    ]
    return Summary(run, ordered, faults, variants, self_healing, unbaselined, unrun)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None
