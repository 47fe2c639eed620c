"""`aiops operator run`: the operator itself (kopf), in one namespace, several, or all; and
`aiops operator settings`, the table of its settings.

The settings options of `run` are made from `aiops.settings.OperatorSettings`, one per field
(its flag, its environment variable, its meaning and default), so the command, the model and
docs/settings.md cannot disagree.
"""

import inspect
import os
import socket
from typing import Annotated

import typer

from aiops import settings as model

app = typer.Typer(help="Run the operator.")

ENV_ONLY = ", ".join(
    model.env_name(f) for f in model.OperatorSettings.model_fields.values() if not model.is_flag(f)
)


def _settings_options() -> list[inspect.Parameter]:
    """One `--flag` per setting that may be a flag, each read from its variable when not
    given; typer shows both, and the model parses and checks the text."""
    params = []
    for name, f in model.OperatorSettings.model_fields.items():
        if not model.is_flag(f):
            continue
        option = typer.Option(
            model.flag_name(name),
            envvar=model.env_name(f),
            show_envvar=True,
            help=f"{f.description} Default: {model.shown_default(f)}.",
            show_default=False,
            metavar=model.metavar(f),
            rich_help_panel="Settings",
        )
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[str | None, option],
            )
        )
    return params


def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch these namespaces.")
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch the whole cluster.")
    ] = False,
    peering: Annotated[
        str | None,
        typer.Option(
            help="Run as one of several replicas: the kopf peering object's name; one "
            "replica is active, the others take over when it dies (default: standalone)."
        ),
    ] = None,
    liveness: Annotated[
        str | None,
        typer.Option(help="Serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    **flags: str | None,
) -> None:
    """Run the subject, incident and chaos loops until interrupted."""
    if not namespace and not all_namespaces:
        typer.secho("aiops: say --namespace NS (repeatable) or --all-namespaces", err=True)
        raise typer.Exit(2)
    # The flags win over the environment (typer has already read each flag's variable
    # when the flag was not given); the model checks every value before kopf starts.
    fields = model.OperatorSettings.model_fields
    given = {model.env_name(fields[k]): v for k, v in flags.items() if v is not None}
    try:
        settings = model.OperatorSettings.from_env(overrides=given)
    except model.SettingsError as err:
        typer.secho(f"aiops: bad settings: {err}", err=True)
        raise typer.Exit(2) from None
    if settings.metrics_port is not None:
        # Bound before kopf starts, so that a port in use stops the start with one line.
        from aiops import metrics

        try:
            metrics.serve(settings.metrics_address, settings.metrics_port)
        except metrics.MetricsServerError as err:
            typer.secho(f"aiops: {err}", err=True)
            raise typer.Exit(2) from None

    import kopf  # imported here so that other commands start fast

    from aiops import handlers, logs  # noqa: F401 - registers the handlers
    from aiops.loops.peering import PeeringPlan

    # Unique per process: the host (in a pod, the pod's name) and the pid.
    identity = f"{socket.gethostname()}-{os.getpid()}"
    memo = kopf.Memo(settings=settings)  # the startup handlers build the loops from it
    if peering is not None:
        memo.peering = PeeringPlan(peering, identity, tuple(namespace or ()), all_namespaces)
    logs.configure(settings.log_format, verbose)  # kopf's logging, as text or JSON lines
    kopf.run(
        clusterwide=all_namespaces,
        namespaces=namespace or [],
        standalone=peering is None,
        peering_name=peering,
        identity=identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        liveness_endpoint=liveness,
        memo=memo,
    )


# typer reads the signature: the fixed options above, then one option per setting.
_fixed = [
    p
    for p in inspect.signature(run).parameters.values()
    if p.kind is not inspect.Parameter.VAR_KEYWORD
]
run.__signature__ = inspect.Signature(_fixed + _settings_options())  # type: ignore[attr-defined]
app.command(
    epilog=f"From the environment only: {ENV_ONLY}. Every setting: docs/settings.md "
    "(`aiops operator settings`).",
)(run)


def settings() -> None:
    """Print every setting (variable, flag, default, bounds, meaning) as a Markdown table: the
    one in docs/settings.md (`aiops docs` writes it there)."""
    typer.echo(model.markdown(), nl=False)


app.command("settings")(settings)
