"""`aiops eval report` and `aiops eval compare`: read a finished (or interrupted) run from the
evaluation database; nothing here touches a cluster. Registered on the `aiops eval` app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiops.eval.charts import ChartsUnavailable
from aiops.eval.compare import CompareError, compare, resolve, text
from aiops.eval.store import Store, StoreError
from aiops.eval.summary import summarise

DEFAULT_DB = Path("aiops-eval.sqlite")  # the same default as `aiops eval run`

DbOption = Annotated[
    Path,
    typer.Option("--db", help="The evaluation database `aiops eval run` wrote.", show_default=True),
]


def _die(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"aiops: {message}", err=True)
    return typer.Exit(code)


def report(
    run: Annotated[
        str, typer.Argument(help="The run id, or 'latest' for the newest run in the database.")
    ] = "latest",
    db: DbOption = DEFAULT_DB,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for report.md, report.html and the PNG charts "
            "(default: eval-report-RUN).",
        ),
    ] = None,
) -> None:
    """Write RUN's report: Markdown with PNG charts, and one self-contained HTML page."""
    # Imported here: `aiops --help` must not pay for the report's modules.
    from aiops.eval.report import write

    if not db.is_file():
        raise _die(f"no evaluation database at {db} (see --db)")
    store = Store(db)
    try:
        record = store.latest() if run == "latest" else store.run(run)
    except StoreError as exc:
        raise _die(str(exc)) from exc
    trials = store.trials(record.id)
    if not trials:
        raise _die(f"run {record.id} recorded no trial yet: nothing to report")
    target = out if out is not None else Path(f"eval-report-{record.id}")
    try:
        written = write(summarise(record, trials), trials, target)
    except ChartsUnavailable as exc:
        raise _die(str(exc)) from exc
    typer.echo(f"{written.markdown}\n{written.html}")


def compare_cmd(
    a: Annotated[str, typer.Argument(help="RUN[:VARIANT] in --db, or DB_FILE[:VARIANT].")],
    b: Annotated[str, typer.Argument(help="RUN[:VARIANT] in --db, or DB_FILE[:VARIANT].")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Is A better than B? Per fault and overall, with 95% intervals.

    Says "not enough trials" when the trials cannot tell. The variant may be left out when a run
    has one agent variant."""
    try:
        comparison = compare(resolve(a, db), resolve(b, db))
    except CompareError as exc:
        raise _die(str(exc), 2) from exc
    typer.echo(text(comparison))
