"""`aiops postmortem INCIDENT`: a Markdown postmortem draft from the Incident's status (read from
the API server, KUBECONFIG like kubectl) and its audit log (verified first), printed, written to
a file, or stored as a ConfigMap beside the Incident."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast

import typer
from pydantic import ValidationError

from aiops.api import GROUP, VERSION, Chaos, Incident
from aiops.audit import AuditError, verify
from aiops.audit.files import read_lines
from aiops.audit.record import AuditRecord, parse_line
from aiops.audit.verify import Head, VerifyResult
from aiops.cli.audit import AuditDir, Namespace, _path, _target
from aiops.redact import Redactor
from aiops.settings import WorkstationSettings

CONFIGMAP_KEY = "postmortem.md"
CONFIGMAP_LIMIT = 1_000_000  # bytes: a ConfigMap holds at most 1 MiB


def configmap_name(incident: str) -> str:
    return f"postmortem-{incident}"


def postmortem(
    incident: Annotated[str, typer.Argument(help="NAME, or NAMESPACE/NAME.")],
    namespace: Namespace = None,
    audit_dir: AuditDir = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown here instead of stdout.")
    ] = None,
    configmap: Annotated[
        bool,
        typer.Option(
            "--configmap",
            help=f"Also store it in the ConfigMap postmortem-NAME (key {CONFIGMAP_KEY}) in "
            "the Incident's namespace, labelled aiops.dev/incident=NAME.",
        ),
    ] = False,
) -> None:
    """Write a postmortem draft of an Incident: summary, impact window, timeline with TTD and
    TTR, diagnosis and alternatives, every action with its gate decisions, approver and
    verification, what the agent read, and cost. Everything in it is redacted."""
    from aiops.postmortem import Sources, render

    root = audit_dir or WorkstationSettings.from_env().audit_dir
    ns, name = _target(incident, namespace)
    path = _path(root, ns, name)
    custom, core = _clients()
    obj = _get(
        lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, Incident.PLURAL, name),
        f"Incident {ns}/{name}",
    )
    if obj is None:
        _fail(f"no Incident {ns}/{name}")
    try:
        inc = Incident.model_validate(obj)
    except ValidationError as err:
        _fail(f"Incident {ns}/{name} does not match the API: {err.error_count()} errors")
    chaos = None
    if inc.status.chaos:
        ref = inc.status.chaos
        chaos = _get(
            lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, Chaos.PLURAL, ref),
            f"Chaos {ns}/{ref}",
        )  # None when it was deleted since: faultAt in status still times the incident
    records, verification = _read_log(path, f"{ns}/{name}", inc.status.audit_head)
    src = Sources(
        incident=inc,
        records=records,
        verification=verification,
        log=f"{ns}/{name}.jsonl under the audit directory",
        chaos=chaos,
        generated_at=datetime.now(UTC),
    )
    text = render(src, Redactor())
    if out is not None:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
    elif not configmap:
        sys.stdout.write(text)
    if configmap:
        _store(core, ns, name, text)
        typer.echo(f"stored in ConfigMap {ns}/{configmap_name(name)}", err=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"aiops: {message}", err=True)
    raise typer.Exit(1)


def _clients() -> tuple[Any, Any]:
    from kubernetes import client

    from aiops.kube import load_api_client

    try:
        # In the operator's pod (`kubectl exec`, where the audit volume is), its
        # ServiceAccount; elsewhere KUBECONFIG, like kubectl.
        api = load_api_client(WorkstationSettings.from_env().kubeconfig)
    except Exception as err:  # no kubeconfig, or a broken one
        _fail(f"no API server configured ({err})")
    api.configuration.retries = 0  # an unreachable server is said at once, not after minutes
    return client.CustomObjectsApi(api), client.CoreV1Api(api)


def _get(call: Any, what: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return cast(dict[str, Any], call())
    except ApiException as err:
        if err.status == 404:
            return None
        _fail(f"the API server refused to read {what}: {err.status} {err.reason}")
    except Exception as err:
        _fail(f"the API server could not be reached ({type(err).__name__}: {err})")


def _read_log(
    path: Path, incident: str, head: Any
) -> tuple[list[AuditRecord], VerifyResult | None]:
    """The log's readable records and its verification; ([], None) when there is no log."""
    if not path.is_file():
        return [], None
    given = Head(seq=head.seq, hash=head.hash) if head is not None else None
    result = verify(path, incident=incident, head=given)
    lines, _torn = read_lines(path)
    records = []
    for line in lines:
        try:
            records.append(parse_line(line))
        except AuditError:
            continue  # counted among the verification's problems, which the draft states
    return records, result


def _store(core: Any, ns: str, name: str, text: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    if len(text.encode()) > CONFIGMAP_LIMIT:
        _fail(f"the postmortem is {len(text.encode())} bytes, more than a ConfigMap holds")
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=configmap_name(name),
            namespace=ns,
            labels={"app.kubernetes.io/part-of": "aiops", "aiops.dev/incident": name},
        ),
        data={CONFIGMAP_KEY: text},
    )
    try:
        try:
            core.create_namespaced_config_map(ns, body)
        except ApiException as err:
            if err.status != 409:
                raise
            core.replace_namespaced_config_map(configmap_name(name), ns, body)
    except ApiException as err:
        _fail(f"cannot store ConfigMap {ns}/{configmap_name(name)}: {err.status} {err.reason}")
