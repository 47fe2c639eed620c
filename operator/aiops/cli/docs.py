"""`aiops docs`: rewrite the parts of docs/ generated from the code (the state diagrams)."""

from pathlib import Path
from typing import Annotated

import typer

from aiops import docgen


def docs(
    path: Annotated[Path, typer.Option("--docs", help="The docs folder.")] = Path("docs"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when a section is stale.")
    ] = False,
) -> None:
    """Generate the sections of docs/ that come from the code (state diagrams)."""
    if check:
        stale = docgen.stale(path)
        for rel in stale:
            typer.echo(f"stale: {path / rel}", err=True)
        if stale:
            typer.echo("run `aiops docs` to regenerate", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path} is up to date")
        return
    for rel in docgen.write(path):
        typer.echo(f"wrote {path / rel}")
