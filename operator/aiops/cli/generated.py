"""What every command that generates files from the code does: write them, or with `--check`
write nothing and exit 1 naming what is stale (CI runs the check)."""

from collections.abc import Callable
from pathlib import Path

import typer


def write_or_check(
    target: Path,
    stale: Callable[[Path], list[str]],
    write: Callable[[Path], list[str]],
    command: str,
    check: bool,
) -> None:
    """`stale(target)` and `write(target)` return paths relative to `target`."""
    if check:
        outdated = stale(target)
        for rel in outdated:
            typer.echo(f"stale: {target / rel}", err=True)
        if outdated:
            typer.echo(f"run `{command}` to regenerate", err=True)
            raise typer.Exit(1)
        typer.echo(f"{target} is up to date")
        return
    changed = write(target)
    for rel in changed:
        typer.echo(f"wrote {target / rel}")
    if not changed:
        typer.echo(f"{target} is up to date")
