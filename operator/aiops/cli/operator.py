"""`aiops operator run`: the operator itself (kopf), in one namespace, several, or all."""

from typing import Annotated

import typer

app = typer.Typer(help="Run the operator.")


@app.command()
def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch these namespaces.")
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch the whole cluster.")
    ] = False,
    peering: Annotated[
        str | None,
        typer.Option(help="kopf peering name, for several replicas (default: standalone)."),
    ] = None,
    liveness: Annotated[
        str | None,
        typer.Option(help="Serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the subject, incident and chaos loops until interrupted."""
    import kopf  # imported here so that other commands start fast

    from aiops import handlers  # noqa: F401 - registers the handlers

    if not namespace and not all_namespaces:
        typer.secho("aiops: say --namespace NS (repeatable) or --all-namespaces", err=True)
        raise typer.Exit(2)
    kopf.configure(verbose=verbose)
    kopf.run(
        clusterwide=all_namespaces,
        namespaces=namespace or [],
        standalone=peering is None,
        peering_name=peering,
        liveness_endpoint=liveness,
    )
