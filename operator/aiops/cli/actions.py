"""`aiops actions stop | resume | status`: the global switch. Stopped, the policy gate refuses
every action on every Subject at once (investigations go on); resumed, they are judged as
before. It is the ConfigMap `aiops-switch` in the operator's namespace, so `kubectl` works too.
"""

from __future__ import annotations

from typing import Annotated

import typer
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops.loops.runtime import SWITCH
from aiops.settings import OperatorSettings, WorkstationSettings, env_name

app = typer.Typer(help="Stop or resume every remediation action at once.")
_OPERATOR_NS = OperatorSettings.model_fields["operator_namespace"]  # the operator's setting
OPERATOR_NAMESPACE: str = _OPERATOR_NS.default
NamespaceOpt = Annotated[
    str,
    typer.Option(
        "--namespace", "-n", envvar=env_name(_OPERATOR_NS), help="The operator's namespace."
    ),
]


def _core() -> client.CoreV1Api:
    return client.CoreV1Api(
        config.new_client_from_config(config_file=WorkstationSettings.from_env().kubeconfig)
    )


def _set(namespace: str, value: str) -> None:
    core = _core()
    body = {"metadata": {"name": SWITCH}, "data": {"actions": value}}
    try:
        core.patch_namespaced_config_map(SWITCH, namespace, body)
    except ApiException as err:
        if err.status != 404:
            typer.secho(f"aiops: cannot set the switch: {err.reason}", err=True)
            raise typer.Exit(1) from err
        core.create_namespaced_config_map(namespace, body)  # type: ignore[arg-type]
    typer.echo(f"actions {value} (ConfigMap {namespace}/{SWITCH})")


@app.command()
def stop(namespace: NamespaceOpt = OPERATOR_NAMESPACE) -> None:
    """Refuse every action, on every Subject, from now on."""
    _set(namespace, "stopped")


@app.command()
def resume(namespace: NamespaceOpt = OPERATOR_NAMESPACE) -> None:
    """Let the policy gate judge actions again."""
    _set(namespace, "running")


@app.command()
def status(namespace: NamespaceOpt = OPERATOR_NAMESPACE) -> None:
    """Say whether actions are stopped."""
    try:
        cm = _core().read_namespaced_config_map(SWITCH, namespace)
        value = (cm.data or {}).get("actions", "running")
    except ApiException as err:
        if err.status != 404:
            typer.secho(f"aiops: cannot read the switch: {err.reason}", err=True)
            raise typer.Exit(1) from err
        value = "running"
    typer.echo(f"actions {value}")
