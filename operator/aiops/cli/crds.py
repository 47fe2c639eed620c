"""`aiops crds`: write crds/ (CRDs, Approval admission policy, roles) from the API models."""

from pathlib import Path
from typing import Annotated

import typer

from aiops.api import crdgen
from aiops.cli.generated import write_or_check


def crds(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write; rbac/ goes below it.")
    ] = Path("crds"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the folder is stale.")
    ] = False,
) -> None:
    """Generate the CustomResourceDefinitions and access objects from the pydantic models."""
    write_or_check(out, crdgen.stale, crdgen.write, "aiops crds", check)
