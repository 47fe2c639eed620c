"""`aiops eval compare A B`: is A better than B, per fault and overall, and can the trials
tell?

A side is one variant of one run: `RUN[:VARIANT]` in the database given, or `FILE[:VARIANT]`
for another database's latest run (so two branches' runs compare without merging databases).
The variant may be left out when the run has one agent variant. Two variants of one run
compare as `RUN:runbook RUN:anthropic`.

Per fault both sides ran, the win rates are compared on their Wilson intervals and the TTRs of
resolved trials on a bootstrap interval of the difference of medians (`aiops.eval.stats`); a
fault either run's baseline found self-healing gives no credit and takes no side. The overall
call pools the remaining faults: a side wins only when its interval clears the other's;
otherwise "not enough trials", with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiops.eval.stats import (
    Call,
    Interval,
    MedianComparison,
    RateComparison,
    compare_medians,
    compare_rates,
)
from aiops.eval.store import Store, StoreError
from aiops.eval.summary import Summary, summarise


class CompareError(Exception):
    """A side cannot be resolved (no such database, run or variant)."""


@dataclass(frozen=True)
class Side:
    spec: str
    summary: Summary
    variant: str

    @property
    def label(self) -> str:
        return f"{self.summary.run.id}:{self.variant}"


def _split(spec: str) -> tuple[str, str | None]:
    where, sep, variant = spec.rpartition(":")
    if not sep or not where:
        return spec, None
    return where, variant


def resolve(spec: str, db: Path) -> Side:
    """`RUN[:VARIANT]` in `db`, or `FILE[:VARIANT]` (that database's latest run)."""
    where, variant = _split(spec)
    if Path(where).is_file():
        store = Store(Path(where))
        try:
            run = store.latest()
        except StoreError as exc:
            raise CompareError(f"{spec}: {exc}") from exc
    else:
        if not db.is_file():
            raise CompareError(
                f"{spec}: no evaluation database at {db} (and no file named {where!r})"
            )
        store = Store(db)
        try:
            run = store.run(where)
        except StoreError as exc:
            raise CompareError(f"{spec}: {exc}") from exc
    summary = summarise(run, store.trials(run.id))
    if variant is None:
        agents = summary.agent_variants
        if len(agents) != 1:
            raise CompareError(
                f"{spec}: run {run.id} has {len(agents)} agent variants "
                f"({', '.join(agents) or 'none'}); name one as {where}:VARIANT"
            )
        variant = agents[0]
    elif variant not in summary.variants:
        raise CompareError(
            f"{spec}: run {run.id} has no variant {variant!r} "
            f"(variants: {', '.join(summary.variants) or 'none'})"
        )
    return Side(spec, summary, variant)


@dataclass(frozen=True)
class FaultRow:
    fault: str
    rates: RateComparison | None
    ttr: MedianComparison | None
    note: str
    """Why no call was made (self-healing), else empty."""


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    rows: list[FaultRow]
    only_a: list[str]
    only_b: list[str]
    overall_rates: RateComparison | None
    overall_ttr: MedianComparison | None
    verdict: str


def _name(key: str, a: Summary, b: Summary) -> str:
    return a.label(key) if key in a.faults else b.label(key)


def _ttr_words(call: Call) -> str:
    return {Call.A_BETTER: "A faster", Call.B_BETTER: "B faster"}.get(call, call.value)


def _overall_verdict(rates: RateComparison | None, ttr: MedianComparison | None) -> str:
    if rates is None:
        return "Verdict: nothing to compare (no fault that gives credit ran on both sides)."
    won = f"wins {rates.a.fmt()} vs {rates.b.fmt()} (n = {rates.n_a} vs {rates.n_b})"
    if rates.call in (Call.A_BETTER, Call.B_BETTER):
        side = "A" if rates.call is Call.A_BETTER else "B"
        return f"Verdict: {side} is better: {won}."
    if ttr is not None and ttr.call in (Call.A_BETTER, Call.B_BETTER) and ttr.difference:
        side = "A" if ttr.call is Call.A_BETTER else "B"
        d = ttr.difference
        first = (
            "A and B win equally often"
            if rates.call is Call.NO_DIFFERENCE
            else "not enough trials to tell the win rates apart"
        )
        return (
            f"Verdict: {first} ({won}); {side} resolves faster: median TTR A - B = "
            f"{d.value:+.1f} s [{d.low:+.1f}, {d.high:+.1f}]."
        )
    if rates.call is Call.NO_DIFFERENCE:
        return f"Verdict: no difference: {won}; TTR: {ttr.call.value if ttr else 'no values'}."
    return f"Verdict: not enough trials to tell A from B: {won}; {rates.why}."


def compare(a: Side, b: Side) -> Comparison:
    sa, sb = a.summary, b.summary
    healing = set(sa.self_healing) | set(sb.self_healing)
    rows: list[FaultRow] = []
    wins_a = n_a = wins_b = n_b = 0
    ttr_a: list[float] = []
    ttr_b: list[float] = []
    for key in [k for k in sa.faults if k in sb.faults]:
        ca, cb = sa.cell(key, a.variant), sb.cell(key, b.variant)
        name = _name(key, sa, sb)
        if ca is None or cb is None or not ca.counted or not cb.counted:
            a_none, b_none = ca is None or not ca.counted, cb is None or not cb.counted
            side = "either side" if a_none and b_none else f"side {'A' if a_none else 'B'}"
            rows.append(FaultRow(name, None, None, f"no counted trial on {side}"))
            continue
        if key in healing:
            rows.append(
                FaultRow(name, None, None, "self-healing (a baseline healed it): no credit")
            )
            continue
        rows.append(
            FaultRow(
                name,
                compare_rates(ca.wins, ca.counted, cb.wins, cb.counted),
                compare_medians(ca.ttr, cb.ttr),
                "",
            )
        )
        wins_a, n_a, wins_b, n_b = (
            wins_a + ca.wins,
            n_a + ca.counted,
            wins_b + cb.wins,
            n_b + cb.counted,
        )
        ttr_a += ca.ttr
        ttr_b += cb.ttr
    rates = compare_rates(wins_a, n_a, wins_b, n_b) if n_a and n_b else None
    ttr = compare_medians(ttr_a, ttr_b) if rates else None
    return Comparison(
        a,
        b,
        rows,
        only_a=[sa.label(k) for k in sa.faults if k not in sb.faults],
        only_b=[sb.label(k) for k in sb.faults if k not in sa.faults],
        overall_rates=rates,
        overall_ttr=ttr,
        verdict=_overall_verdict(rates, ttr),
    )


def _median(i: Interval | None) -> str:
    return "-" if i is None else f"{i.value:.1f} s"


def _line(name: str, r: RateComparison, t: MedianComparison | None) -> tuple[str, ...]:
    return (
        name,
        f"{r.a.fmt()} n={r.n_a}",
        f"{r.b.fmt()} n={r.n_b}",
        r.call.value,
        _median(t.a if t else None),
        _median(t.b if t else None),
        _ttr_words(t.call) if t else "-",
    )


def text(c: Comparison) -> str:
    """The comparison as plain text: the verdict first, then a line per fault."""
    lines = [c.verdict, f"A = {c.a.label}", f"B = {c.b.label}", ""]
    header = ("fault", "A wins", "B wins", "win rate", "A TTR", "B TTR", "TTR")
    table: list[tuple[str, ...]] = [header]
    for row in c.rows:
        if row.rates is None:
            table.append((row.fault, "", "", row.note, "", "", ""))
        else:
            table.append(_line(row.fault, row.rates, row.ttr))
    if c.overall_rates is not None:
        table.append(_line("overall", c.overall_rates, c.overall_ttr))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    if c.only_a:
        lines.append(f"only in A (not compared): {', '.join(c.only_a)}")
    if c.only_b:
        lines.append(f"only in B (not compared): {', '.join(c.only_b)}")
    return "\n".join(lines)
