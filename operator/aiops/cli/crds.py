"""`aiops crds`: write crds/ (CRDs, Approval admission policy, roles) from the API models."""

from pathlib import Path
from typing import Annotated

import typer

from aiops.api import crdgen


def crds(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write; rbac/ goes below it.")
    ] = Path("crds"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the folder is stale.")
    ] = False,
) -> None:
    """Generate the CustomResourceDefinitions and access objects from the pydantic models."""
    if check:
        stale = crdgen.stale(out)
        for rel in stale:
            typer.echo(f"stale: {out / rel}", err=True)
        if stale:
            typer.echo("run `aiops crds` to regenerate", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    changed = crdgen.write(out)
    for rel in changed:
        typer.echo(f"wrote {out / rel}")
    if not changed:
        typer.echo(f"{out} is up to date")
