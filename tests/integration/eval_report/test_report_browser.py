"""The evaluation report as a person sees it: `aiops eval report` run as a command on a
database written by the real store, the HTML page opened in headless Chromium. It renders with
the verdict first, every chart loads (from the page itself: nothing is fetched), and every
number of its tables is the one the database holds, counted here with SQL."""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from selenium import webdriver

from aiops.eval.records import TrialOutcome as O
from aiops.eval.records import VariantInfo
from aiops.eval.stats import wilson
from tests.fixtures.eval_runs import BASELINE, RUNBOOK, Plan, write_run

CLAUDE = VariantInfo(name="claude", backend="anthropic", model="claude-x")
PLANS = [
    Plan("kill_node", "runbook", [O.RESOLVED] * 4 + [O.WRONG_FIX], ttd=[3.2, 4.1], ttr=[31, 35]),
    Plan(
        "kill_node",
        "claude",
        [O.RESOLVED, O.ESCALATED, O.RESOLVED, O.ERROR, O.RESOLVED],
        ttd=[3.9],
        ttr=[22, 48, 26],
        tokens=(1200, 340),
        cost=0.0123,
    ),
    Plan("kill_node", "baseline", [O.TIMEOUT] * 5),
    Plan("latency", "runbook", [O.RESOLVED] * 3 + [O.TIMEOUT] * 2, ttd=[6.5, 7.0, 9.1]),
    Plan("latency", "claude", [O.RESOLVED] * 5, tokens=(900, 200), cost=0.0091),
    Plan("latency", "baseline", [O.SELF_HEALED] * 4 + [O.TIMEOUT], ttr=[12.5, 14.0]),
    Plan("ghost_limit", "runbook", [O.ESCALATED] * 2 + [O.WRONG_FIX] * 3, actions=2),
    Plan(
        "ghost_limit", "claude", [O.RESOLVED] * 2 + [O.ESCALATED] * 3, tokens=(2000, 500), cost=0.02
    ),
    Plan("ghost_limit", "baseline", [O.TIMEOUT] * 4 + [O.SELF_HEALED], ttr=[40.0]),
]


def expected_from_sql(db: Path, run_id: str) -> dict[tuple[str, str], dict[str, str]]:
    """Each (fault, variant) row's numbers, from the trials table (not from aiops.eval)."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT fault, variant, baseline, outcome, ttd_s, ttr_s, healthy_s, actions_json, "
        "tokens_in + tokens_out, cost_usd FROM trials WHERE run_id = ?",
        (run_id,),
    ).fetchall()
    con.close()
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        groups[(row[0], row[1])].append(row)
    expected = {}
    for key, trials in groups.items():
        baseline = bool(trials[0][2])
        counted = [t for t in trials if t[3] != "error"]
        win = "self_healed" if baseline else "resolved"
        wins = sum(t[3] == win for t in counted)
        ttd = [t[4] for t in counted if t[4] is not None]
        ttr = [t[6] if baseline else t[5] for t in counted if t[3] == win]
        expected[key] = {
            "trials": str(len(trials)),
            **{o.value: str(sum(t[3] == o.value for t in trials)) for o in O},
            "win-rate": wilson(wins, len(counted)).fmt(),
            "median-ttd": f"{statistics.median(ttd):.1f} s" if ttd else "-",
            "median-ttr": f"{statistics.median(ttr):.1f} s" if ttr else "-",
            "actions": str(sum(len(json.loads(t[7])) for t in trials)),
            "tokens": str(sum(t[8] for t in trials)),
            "cost": f"${sum(t[9] for t in trials):.4f}",
        }
    return expected


READ_TABLE = """
return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).map(tr => ({
  fault: tr.dataset.fault, variant: tr.dataset.variant,
  cells: Object.fromEntries(Array.from(tr.cells).map(td => [td.dataset.field, td.innerText]))
}));
"""


def test_report_in_headless_chromium(tmp_path: Path, chromium: webdriver.Chrome) -> None:
    db = tmp_path / "eval.sqlite"
    write_run(db, "eval-browser", PLANS, [RUNBOOK, CLAUDE, BASELINE])
    out = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiops.cli.main",
            "eval",
            "report",
            "eval-browser",
            "--db",
            str(db),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    chromium.get((out / "report.html").as_uri())
    assert chromium.execute_script("return document.readyState") == "complete"
    assert chromium.title == "Evaluation: ratelimiter-faults"
    # The verdict is the first thing on the page, and it is visible.
    first = chromium.execute_script(
        "const e = document.body.firstElementChild; "
        "return [e.id, e.innerText, e.getBoundingClientRect().top, e.offsetHeight];"
    )
    assert first[0] == "verdict" and first[2] < 50 and first[3] > 0
    # latency healed alone in 4 of 5 baseline trials: no credit. runbook: 4/5 + 0/5 on the rest.
    assert first[1].startswith("Verdict: runbook resolved 4/10 trials (40% [17%-69%]) on 2 ")
    assert "claude resolved 5/9 trials" in first[1]
    assert "Self-healing, no credit: latency" in first[1]

    images = chromium.execute_script(
        "return Array.from(document.images).map(i => "
        "({src: i.src.slice(0, 22), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,"
        "  shown: i.getBoundingClientRect().width}));"
    )
    assert len(images) == 4
    for image in images:
        assert image == {**image, "src": "data:image/png;base64,", "complete": True}
        assert image["w"] > 300 and image["h"] > 100 and image["shown"] > 300
    # Nothing came from outside the page: no file, no network.
    assert chromium.execute_script("return performance.getEntriesByType('resource').length") == 0

    shown = chromium.execute_script(READ_TABLE, "#cells")
    expected = expected_from_sql(db, "eval-browser")
    assert len(shown) == len(expected) == 9
    for row in shown:
        want = expected[(row["fault"], row["variant"])]
        got = row["cells"]
        assert {k: got[k] for k in want if k != "win-rate"} == {
            k: v for k, v in want.items() if k != "win-rate"
        }, row
        # A self-healing fault's agent rows say they earn nothing.
        assert got["win-rate"].startswith(want["win-rate"]), row
        assert got["win-rate"].endswith("no credit") == (
            row["fault"] == "latency" and row["variant"] != "baseline"
        )

    headline = {r["variant"]: r["cells"] for r in chromium.execute_script(READ_TABLE, "#headline")}
    assert list(headline) == ["runbook", "claude", "baseline"]
    assert headline["runbook"]["trials"] == "10" and headline["claude"]["trials"] == "9"
    # claude: 12 trials paid for over kill_node and ghost_limit (5 + 5 trials, 3 + 2 resolved).
    assert headline["claude"]["cost-per-resolved"] == f"${(5 * 0.0123 + 5 * 0.02) / 5:.4f}"
    assert headline["runbook"]["cost-per-resolved"] == "$0.0000"
    assert chromium.find_element("id", "self-healing").text == "latency"
