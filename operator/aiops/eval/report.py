"""`aiops eval report RUN`: a run as Markdown (`report.md` + its PNG charts) and as one
self-contained HTML page (`report.html`: the charts embedded as data URIs, the style inline, no
script, nothing fetched), both read from the evaluation database, so a report is re-made at
any time without re-running a trial.

Both start with the verdict line, then the per-variant headline, the faults that heal by
themselves, the table per fault and variant, the charts, every trial, and the rules. Every
number of the HTML tables carries `data-field` (rows: `data-fault`, `data-variant`), which the
browser test reads to check them against the database.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from aiops.eval.charts import Chart, draw
from aiops.eval.records import TrialOutcome, TrialRecord
from aiops.eval.stats import MIN_TRIALS, Interval, compare_rates
from aiops.eval.summary import (
    SELF_HEALING_SHARE,
    Summary,
    VariantTotal,
    median,
)

OUTCOME_COLUMNS: tuple[tuple[TrialOutcome, str], ...] = (
    (TrialOutcome.RESOLVED, "resolved"),
    (TrialOutcome.ESCALATED, "escalated"),
    (TrialOutcome.TIMEOUT, "timeout"),
    (TrialOutcome.WRONG_FIX, "wrong fix"),
    (TrialOutcome.SELF_HEALED, "self-healed"),
    (TrialOutcome.ERROR, "error"),
)


# -- formatting ---------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def rate(interval: Interval | None) -> str:
    return "-" if interval is None else interval.fmt()


def median_ci(interval: Interval | None) -> str:
    if interval is None:
        return "-"
    return f"{interval.value:.1f} s [{interval.low:.1f}-{interval.high:.1f}]"


def usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


# -- the tables, once for both formats ------------------------------------------------------


def _variant_label(variant: str, baseline: bool) -> str:
    return f"{variant} (baseline)" if baseline and "baseline" not in variant else variant


@dataclass
class Table:
    """Columns (`data-field` name, header) and rows (row attributes, display strings)."""

    id: str
    columns: list[tuple[str, str]]
    rows: list[tuple[dict[str, str], list[str]]] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        return [f for f, _ in self.columns]

    @property
    def headers(self) -> list[str]:
        return [h for _, h in self.columns]


def headline_table(summary: Summary) -> Table:
    table = Table(
        "headline",
        [
            ("variant", "variant"),
            ("faults", "faults credited"),
            ("trials", "trials"),
            ("win-rate", "win rate [95% CI]"),
            ("median-ttd", "median TTD [95% CI]"),
            ("median-ttr", "median TTR [95% CI]"),
            ("cost-per-resolved", "cost per resolved"),
        ],
    )
    for variant in summary.variants:
        t = summary.total(variant)
        name = _variant_label(variant, t.baseline)
        table.rows.append(
            (
                {"data-variant": variant},
                [
                    name,
                    str(t.faults),
                    str(t.counted),
                    rate(t.win_rate),
                    median_ci(t.median_ttd),
                    median_ci(t.median_ttr),
                    "-" if t.baseline else usd(t.cost_per_resolved),
                ],
            )
        )
    return table


def cells_table(summary: Summary) -> Table:
    table = Table(
        "cells",
        [
            ("fault", "fault"),
            ("variant", "variant"),
            ("trials", "trials"),
            *((o.value, header) for o, header in OUTCOME_COLUMNS),
            ("win-rate", "win rate [95% CI]"),
            ("median-ttd", "median TTD"),
            ("median-ttr", "median TTR"),
            ("actions", "actions"),
            ("tokens", "tokens"),
            ("cost", "cost"),
        ],
    )
    for cell in summary.cells:
        fault = summary.label(cell.key) + (" (self-healing)" if cell.self_healing_fault else "")
        variant = _variant_label(cell.variant, cell.baseline)
        win = rate(cell.win_rate)
        if cell.self_healing_fault and not cell.baseline:
            win += " no credit"
        table.rows.append(
            (
                {"data-fault": summary.label(cell.key), "data-variant": cell.variant},
                [
                    fault,
                    variant,
                    str(cell.trials),
                    *(str(cell.count(o)) for o, _ in OUTCOME_COLUMNS),
                    win,
                    seconds(median(cell.ttd)),
                    seconds(median(cell.ttr)),
                    str(cell.actions),
                    str(cell.tokens),
                    usd(cell.cost_usd),
                ],
            )
        )
    return table


def trials_table(summary: Summary, trials: list[TrialRecord]) -> Table:
    table = Table(
        "trials",
        [
            ("seq", "#"),
            ("fault", "fault"),
            ("variant", "variant"),
            ("trial", "trial"),
            ("outcome", "outcome"),
            ("ttd", "TTD"),
            ("ttr", "TTR"),
            ("steps", "actions"),
            ("incident", "incident"),
            ("detail", "why"),
        ],
    )
    for t in trials:
        actions = ", ".join(
            f"{a.action} {a.result}{' undone' if a.undone else ''}" for a in t.actions
        )
        ttr = t.ttr_s if t.outcome is TrialOutcome.RESOLVED else None
        table.rows.append(
            (
                {"data-seq": str(t.seq)},
                [
                    str(t.seq),
                    summary.label(t.fault),
                    t.variant,
                    str(t.trial),
                    t.outcome.value,
                    seconds(t.ttd_s),
                    seconds(ttr),
                    actions or "-",
                    t.incident or "-",
                    t.detail or "-",
                ],
            )
        )
    return table


# -- the verdict ---------------------------------------------------------------------------


def _labels(summary: Summary, keys: list[str]) -> str:
    return ", ".join(summary.label(k) for k in keys)


def _against_baseline(summary: Summary, total: VariantTotal) -> str:
    baselines = summary.baseline_variants
    if not baselines or not total.counted:
        return ""
    base = summary.total(baselines[0], over=summary.credited)
    if not base.counted:
        return ""
    call = compare_rates(total.wins, total.counted, base.wins, base.counted)
    if call.call.value == "A better":
        return f"; better than doing nothing ({baselines[0]} healed {base.wins}/{base.counted})"
    if call.call.value == "B better":
        return f"; worse than doing nothing ({baselines[0]} healed {base.wins}/{base.counted})"
    return f"; against {baselines[0]} ({base.wins}/{base.counted} healed alone): {call.call.value}"


def verdict(summary: Summary) -> str:
    """One line a person reads first: each agent variant's record on the faults it gets credit
    for, against the baseline, the self-healing faults, and whether the trials were enough."""
    parts: list[str] = []
    credited = len(summary.credited)
    faults = (
        "1 fault that does not heal by itself"
        if credited == 1
        else f"{credited} faults that do not heal by themselves"
    )
    for variant in summary.agent_variants:
        total = summary.total(variant)
        if not total.counted:
            parts.append(f"{variant}: no trial counted")
            continue
        ttr = total.median_ttr
        parts.append(
            f"{variant} resolved {total.wins}/{total.counted} trials "
            f"({rate(total.win_rate)}) on {faults}, "
            f"median TTR {seconds(ttr.value if ttr else None)}" + _against_baseline(summary, total)
        )
    if not summary.agent_variants:
        parts.append("No agent variant in this run (baseline only)")
    if summary.self_healing:
        parts.append(f"Self-healing, no credit: {_labels(summary, summary.self_healing)}")
    if summary.unrun:
        parts.append(f"Could not be run (every trial an error): {_labels(summary, summary.unrun)}")
    if summary.unbaselined:
        parts.append(f"No baseline (may heal alone): {_labels(summary, summary.unbaselined)}")
    short = summary.short_cells
    if short:
        named = ", ".join(f"{summary.label(c.key)} · {c.variant}: {c.counted}" for c in short[:3])
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        parts.append(
            f"Fewer than {MIN_TRIALS} counted trials ({named}{more}): not enough trials to "
            "rank there"
        )
    return "Verdict: " + ". ".join(parts) + "."


RULES = [
    "Win: for an agent variant, the trial's own Incident was Resolved and the Subject was "
    "healthy again (`resolved`); for a baseline (the agent does not act), the system healed "
    "by itself (`self_healed`).",
    "Wrong fix: an action ran and the invariant still broke, or an action was undone. "
    "Timeout: the fault was never detected, or its Incident did not end in time; never a win.",
    "`error` trials (the trial could not be run as planned) count in no rate; a fault whose "
    "every trial was an error is named as not run and counts nowhere.",
    f"A fault is self-healing when the baseline healed it by itself in at least "
    f"{SELF_HEALING_SHARE:.0%} of its trials; the agent gets no credit for it (it is left out "
    "of the agent's overall numbers).",
    "TTD and TTR are seconds from the Chaos' injection to the Incident's detection and "
    "resolution; a baseline's TTR is the time until the Subject was healthy again by itself.",
    "Intervals are 95%: Wilson score intervals on rates, a seeded percentile bootstrap "
    f"(2000 resamples) on medians. With fewer than {MIN_TRIALS} trials no comparison takes "
    "sides.",
]


# -- rendering -----------------------------------------------------------------------------


@dataclass
class Report:
    title: str
    verdict: str
    facts: list[tuple[str, str]]
    headline: Table
    self_healing: list[str]
    cells: Table
    charts: list[Chart]
    trials: Table


def _subjects(trials: list[TrialRecord]) -> str:
    """Which Subjects each variant ran on (a baseline may have a twin of its own)."""
    by_variant: dict[str, dict[str, None]] = {}
    for t in trials:
        by_variant.setdefault(t.variant, {})[t.subject] = None
    return "; ".join(f"{v}: {', '.join(subjects)}" for v, subjects in by_variant.items())


def build(summary: Summary, trials: list[TrialRecord]) -> Report:
    run = summary.run
    finished = run.finished_at.isoformat() if run.finished_at else "not finished (interrupted?)"
    facts = [
        ("run", run.id),
        ("campaign", f"{run.name} (sha256 {run.campaign_sha256[:12]})"),
        ("started", run.started_at.isoformat()),
        ("finished", finished),
        ("trials", f"{len(trials)} recorded of {run.planned} planned"),
        ("subjects", _subjects(trials)),
        (
            "variants",
            ", ".join(
                f"{v.name} ({'agent off' if v.baseline else v.backend.value}"
                f"{', ' + v.model if v.model else ''}, autonomy {v.autonomy})"
                for v in run.variants
            ),
        ),
    ]
    return Report(
        title=f"Evaluation: {run.name}",
        verdict=verdict(summary),
        facts=facts,
        headline=headline_table(summary),
        self_healing=[summary.label(k) for k in summary.self_healing],
        cells=cells_table(summary),
        charts=draw(summary),
        trials=trials_table(summary, trials),
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    lines = [
        "| " + " | ".join(table.headers) + " |",
        "|" + "|".join(" --- " for _ in table.headers) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for _, row in table.rows]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    out = [f"# {report.title}", "", f"**{report.verdict}**", ""]
    out += [f"- {name}: {value}" for name, value in report.facts]
    out += ["", "## Per variant", "", _md_table(report.headline), ""]
    out += ["## Self-healing faults", ""]
    out += [", ".join(report.self_healing) or "None: the baseline healed no fault by itself.", ""]
    out += ["## Per fault and variant", "", _md_table(report.cells), ""]
    out += ["## Charts", ""]
    out += [f"![{c.alt}]({c.name})\n" for c in report.charts]
    out += ["## Rules", ""] + [f"- {r}" for r in RULES] + [""]
    out += ["## Trials", "", _md_table(report.trials), ""]
    return "\n".join(out)


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
#verdict { font-size: 1.15em; font-weight: 600; background: #eef5fb; border-left: 5px solid #0072B2;
           padding: .6em .9em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td { font-variant-numeric: tabular-nums; white-space: nowrap; }
td[data-field=detail], td[data-field=steps] { white-space: normal; }
td[data-field=trials], td[data-field=faults], td[data-field=seq], td[data-field=trial],
td[data-field=actions], td[data-field=tokens], td[data-field=cost], td[data-field^=median],
td[data-field^=win], td[data-field^=cost], td[data-field=ttd], td[data-field=ttr],
td[data-field=resolved], td[data-field=escalated], td[data-field=timeout],
td[data-field=wrong_fix], td[data-field=self_healed], td[data-field=error] { text-align: right; }
figure { margin: 1em 0; } figcaption { font-weight: 600; }
img { max-width: 100%; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
"""


def _html_table(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in table.headers)
    rows = []
    for attrs, cells in table.rows:
        attr = "".join(f' {k}="{e(v)}"' for k, v in attrs.items())
        tds = "".join(
            f'<td data-field="{e(f)}">{e(c)}</td>' for f, c in zip(table.fields, cells, strict=True)
        )
        rows.append(f"<tr{attr}>{tds}</tr>")
    return (
        f'<table id="{e(table.id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def page(report: Report) -> str:
    """The HTML page: one file, nothing outside it."""
    e = html.escape
    facts = "".join(f"<dt>{e(n)}</dt><dd>{e(v)}</dd>" for n, v in report.facts)
    charts = "".join(
        f'<figure><figcaption>{e(c.title)}</figcaption><img alt="{e(c.alt)}" '
        f'src="data:image/png;base64,{base64.b64encode(c.png).decode()}"></figure>'
        for c in report.charts
    )
    healing = e(", ".join(report.self_healing) or "None: the baseline healed no fault by itself.")
    rules = "".join(f"<li>{e(r)}</li>" for r in RULES)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>"
        f'<p id="verdict">{e(report.verdict)}</p>'
        f'<h1>{e(report.title)}</h1><dl class="facts">{facts}</dl>'
        f"<h2>Per variant</h2>{_html_table(report.headline)}"
        f'<h2>Self-healing faults</h2><p id="self-healing">{healing}</p>'
        f"<h2>Per fault and variant</h2>{_html_table(report.cells)}"
        f"<h2>Charts</h2>{charts}"
        f"<h2>Rules</h2><ul>{rules}</ul>"
        f"<h2>Trials</h2>{_html_table(report.trials)}"
        "</body></html>\n"
    )


@dataclass(frozen=True)
class Written:
    markdown: Path
    html: Path
    charts: list[Path]


def write(summary: Summary, trials: list[TrialRecord], out: Path) -> Written:
    """Writes `report.md`, its PNGs and `report.html` into `out` (created if missing)."""
    report = build(summary, trials)
    out.mkdir(parents=True, exist_ok=True)
    charts = []
    for chart in report.charts:
        path = out / chart.name
        path.write_bytes(chart.png)
        charts.append(path)
    md, page_path = out / "report.md", out / "report.html"
    md.write_text(markdown(report), encoding="utf-8")
    page_path.write_text(page(report), encoding="utf-8")
    return Written(md, page_path, charts)
