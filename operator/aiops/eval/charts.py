"""The report's charts, drawn with matplotlib's Agg backend (no display) into PNG bytes.

matplotlib is the optional extra `eval` (`pip install 'aiops[eval]'`; hack/setup.sh installs
it): the operator itself never draws, so its image does without a plotting stack. Each chart
is a `Chart` (file name, title, alt text, PNG); the report writes them beside the Markdown and
embeds them in the HTML as data URIs.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiops.eval.summary import Cell, Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class ChartsUnavailable(Exception):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Chart:
    name: str
    """File name, e.g. `win-rate.png`."""
    title: str
    alt: str
    png: bytes


# Colour-blind-safe (Okabe-Ito); the baseline is grey so the agent's colours stand out.
_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
_BASELINE = "#8c8c8c"


def _figure_factory() -> Callable[..., Figure]:
    try:
        import matplotlib
    except ImportError as exc:
        raise ChartsUnavailable(
            "the report's charts need matplotlib: pip install 'aiops[eval]' "
            "(hack/setup.sh installs it)"
        ) from exc
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure


def _colours(summary: Summary) -> dict[str, str]:
    agents = iter(_PALETTE * (1 + len(summary.variants) // len(_PALETTE)))
    return {v: (_BASELINE if summary.is_baseline(v) else next(agents)) for v in summary.variants}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No Software metadata: the same run draws the same bytes whatever matplotlib made them.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _rows(summary: Summary) -> list[Cell]:
    """Top to bottom: faults in run order, variants as declared within each."""
    return list(reversed(summary.cells))


def _row_labels(summary: Summary, cells: list[Cell]) -> list[str]:
    return [
        f"{summary.label(c.key)}{' *' if c.self_healing_fault else ''} · {c.variant}" for c in cells
    ]


def _height(cells: list[Cell]) -> float:
    return max(2.5, 0.42 * len(cells) + 1.4)


def _legend(ax: Axes, summary: Summary, colours: dict[str, str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[v], label=v) for v in summary.variants]
    # Outside the axes: inside, it covered the last rows' points and counts.
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False
    )


def _distribution(summary: Summary, which: str, Figure: Callable[..., Figure]) -> Chart:
    """TTD or TTR per fault and variant: a box over the trials' points (each point shown)."""
    cells = _rows(summary)
    colours = _colours(summary)
    fig = Figure(figsize=(8, _height(cells)), layout="constrained")
    ax = fig.subplots()
    for y, cell in enumerate(cells):
        values: list[float] = getattr(cell, which)
        if not values:
            ax.text(0.0, y, "  no value", va="center", fontsize=8, color="#666666")
            continue
        box: Any = ax.boxplot(
            [values],
            positions=[y],
            orientation="horizontal",
            widths=0.55,
            patch_artist=True,
            showfliers=False,
            manage_ticks=False,
            medianprops={"color": "#222222"},
        )
        for patch in box["boxes"]:
            patch.set(facecolor=colours[cell.variant], alpha=0.35, edgecolor=colours[cell.variant])
        # Points spread over a fixed pattern (no randomness: the same run, the same picture).
        offsets = [((i % 5) - 2) * 0.06 for i in range(len(values))]
        ax.scatter(values, [y + o for o in offsets], s=14, color=colours[cell.variant], zorder=3)
    ax.set_yticks(range(len(cells)), _row_labels(summary, cells), fontsize=8)
    ax.set_xlim(left=0)
    ax.set_ylim(-0.7, len(cells) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    name = "TTD" if which == "ttd" else "TTR"
    what = "detected" if which == "ttd" else "resolved (baseline: healthy again by itself)"
    ax.set_xlabel(f"seconds from the fault's injection until {what}")
    _legend(ax, summary, colours)
    title = f"{name} per fault and variant"
    return Chart(
        f"{which}.png",
        title,
        f"{name} of each trial, in seconds, per fault and variant; * marks a self-healing fault",
        _png(fig),
    )


def _win_rate(summary: Summary, Figure: Callable[..., Figure]) -> Chart:
    cells = [c for c in _rows(summary) if c.win_rate is not None]
    colours = _colours(summary)
    fig = Figure(figsize=(8, _height(cells)), layout="constrained")
    ax = fig.subplots()
    for y, cell in enumerate(cells):
        rate = cell.win_rate
        assert rate is not None
        ax.barh(
            y,
            rate.value * 100,
            color=colours[cell.variant],
            alpha=0.8,
            hatch="//" if cell.self_healing_fault and not cell.baseline else None,
        )
        ax.errorbar(
            rate.value * 100,
            y,
            capsize=3,
            color="#222222",
            fmt="none",
            xerr=[[(rate.value - rate.low) * 100], [(rate.high - rate.value) * 100]],
        )
        ax.text(101, y, f"{cell.wins}/{cell.counted}", va="center", fontsize=8)
    ax.set_yticks(range(len(cells)), _row_labels(summary, cells), fontsize=8)
    ax.set_xlim(0, 112)
    ax.set_xlabel("win rate, % (bars: 95% Wilson interval; baseline: healed by itself)")
    ax.grid(axis="x", alpha=0.3)
    _legend(ax, summary, colours)
    title = "Win rate with 95% confidence intervals"
    return Chart(
        "win-rate.png",
        title,
        "Win rate per fault and variant with 95% Wilson intervals; hatched: self-healing fault",
        _png(fig),
    )


def _cost(summary: Summary, Figure: Callable[..., Figure]) -> Chart:
    """Cost per resolved incident per agent variant (over the faults that give credit)."""
    variants = summary.agent_variants
    colours = _colours(summary)
    fig = Figure(figsize=(8, max(2.0, 0.5 * len(variants) + 1.2)), layout="constrained")
    ax = fig.subplots()
    for y, variant in enumerate(variants):
        total = summary.total(variant)
        per = total.cost_per_resolved
        ax.barh(y, per or 0.0, color=colours[variant], alpha=0.8)
        text = "nothing resolved" if per is None else f"${per:.4f} ({total.resolved} resolved)"
        ax.text(0, y, "  " + text, va="center", fontsize=8)
    ax.set_yticks(range(len(variants)), variants, fontsize=8)
    ax.set_xlim(left=0)
    ax.set_xlabel("model cost per resolved incident, USD (the runbook backend costs nothing)")
    ax.grid(axis="x", alpha=0.3)
    title = "Cost per resolved incident"
    return Chart(
        "cost.png", title, "Model cost in USD per resolved incident, per agent variant", _png(fig)
    )


def draw(summary: Summary) -> list[Chart]:
    """Every chart of the report, in the order it shows them."""
    Figure = _figure_factory()
    charts = [_win_rate(summary, Figure)]
    charts += [_distribution(summary, which, Figure) for which in ("ttd", "ttr")]
    if summary.agent_variants:
        charts.append(_cost(summary, Figure))
    return charts
