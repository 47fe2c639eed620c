"""`aiops eval report`: the verdict comes first, the HTML page stands alone, and the same run
makes the same files."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from aiops.cli.eval_report import report
from aiops.eval.records import TrialOutcome as O
from tests.fixtures.eval_runs import BASELINE, RUNBOOK, Plan, write_run

PLANS = [
    Plan("kill_node", "runbook", [O.RESOLVED] * 4 + [O.WRONG_FIX], ttr=[31.0, 35.0]),
    Plan("kill_node", "baseline", [O.TIMEOUT] * 5),
    Plan("latency", "runbook", [O.RESOLVED] * 5),
    Plan("latency", "baseline", [O.SELF_HEALED] * 5, ttr=[9.0]),
]


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(report)
    return app


def test_report_files_verdict_first_and_self_contained(tmp_path: Path) -> None:
    db = tmp_path / "eval.sqlite"
    write_run(db, "r1", PLANS, [RUNBOOK, BASELINE])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli(), ["r1", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "cost.png",
        "report.html",
        "report.md",
        "ttd.png",
        "ttr.png",
        "win-rate.png",
    ]

    md = (out / "report.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "# Evaluation: ratelimiter-faults"
    assert lines[2].startswith("**Verdict: runbook resolved 4/5 trials (80% [38%-96%]) on 1 ")
    assert "Self-healing, no credit: latency" in lines[2]
    for png in ("win-rate.png", "ttd.png", "ttr.png", "cost.png"):
        assert f"]({png})" in md
        assert (out / png).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    page = (out / "report.html").read_text()
    assert re.search(r"<body><p id=\"verdict\">Verdict: runbook resolved 4/5", page)
    # One file: no script, no stylesheet link, nothing fetched; every image is a data URI.
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"(src|href)=\"(?!data:image/png;base64,)", page)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 4

    # The same run, the same report, byte for byte (seeded bootstrap, no timestamps).
    again = tmp_path / "again"
    assert (
        CliRunner().invoke(cli(), ["latest", "--db", str(db), "--out", str(again)]).exit_code == 0
    )
    for name in ("report.md", "report.html", "win-rate.png", "ttr.png"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_report_errors_name_what_is_missing(tmp_path: Path) -> None:
    db = tmp_path / "eval.sqlite"
    missing = CliRunner().invoke(cli(), ["r1", "--db", str(db)])
    assert missing.exit_code == 1 and f"no evaluation database at {db}" in missing.output
    assert not db.exists()
    write_run(db, "r1", PLANS[:1], [RUNBOOK])
    unknown = CliRunner().invoke(cli(), ["r9", "--db", str(db)])
    assert (
        unknown.exit_code == 1 and "no run 'r9'" in unknown.output and "runs: r1" in unknown.output
    )
