"""`aiops docs`: rewrite the parts of docs/ generated from the code (the state diagrams)."""

from pathlib import Path
from typing import Annotated

import typer

from aiops import docgen
from aiops.cli.generated import write_or_check


def docs(
    path: Annotated[Path, typer.Option("--docs", help="The docs folder.")] = Path("docs"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when a section is stale.")
    ] = False,
) -> None:
    """Generate the sections of docs/ that come from the code (state diagrams)."""
    write_or_check(path, docgen.stale, docgen.write, "aiops docs", check)
