"""`aiops audit show|verify`: read an incident's audit log, and check the hash chains.

`verify` also checks the end of each log against the audit head its Incident's status
recorded (`status.auditHead`), read from the API server when it can be reached (KUBECONFIG,
like kubectl), or given with `--head SEQ:HASH`: a hash chain alone cannot show records cut
from its end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from aiops.audit import AuditError, AuditLog, log_path, verify
from aiops.audit.files import read_lines
from aiops.audit.record import AuditRecord, parse_line
from aiops.audit.verify import Head
from aiops.cli.printable import printable
from aiops.settings import WorkstationSettings

app = typer.Typer(help="Read and check incident audit logs.", no_args_is_help=True)

Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="The incident's namespace (default: default)."),
]
AuditDir = Annotated[
    Path | None,
    typer.Option(
        "--audit-dir",
        help="Where the logs are (default: $AIOPS_AUDIT_DIR, else ~/.local/state/aiops/audit).",
    ),
]
SUMMARY_WIDTH = 110


@app.command()
def show(
    incident: Annotated[str, typer.Argument(help="NAME, or NAMESPACE/NAME.")],
    namespace: Namespace = None,
    audit_dir: AuditDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stored records, one JSON line each.")
    ] = False,
) -> None:
    """Print an incident's audit log: time, seq, kind and a one-line summary per record."""
    root = audit_dir or WorkstationSettings.from_env().audit_dir
    ns, name = _target(incident, namespace)
    path = _path(root, ns, name)
    if not path.is_file():
        typer.echo(f"aiops: no audit log for {ns}/{name} under {root}", err=True)
        raise typer.Exit(1)
    lines, rest = read_lines(path)
    damaged = 0
    if not as_json:
        typer.echo(f"{ns}/{name}: {len(lines)} records in {path}")
    for number, line in enumerate(lines, 1):
        try:
            record = parse_line(line)
        except AuditError as err:
            damaged += 1
            typer.echo(f"line {number}: {err}", err=True)
            continue
        typer.echo(line.decode("utf-8") if as_json else _render(record))
    if rest:
        damaged += 1
        typer.echo(f"line {len(lines) + 1}: incomplete ({len(rest)} bytes, no newline)", err=True)
    if damaged:
        typer.echo(
            f"{damaged} lines hold no record: see `aiops audit verify {ns}/{name}`", err=True
        )


@app.command("verify")
def verify_command(
    incident: Annotated[
        str | None, typer.Argument(help="NAME or NAMESPACE/NAME; every log when left out.")
    ] = None,
    namespace: Namespace = None,
    audit_dir: AuditDir = None,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            help="SEQ:HASH the log must hold (the Incident's status.auditHead"
            "), for one incident; instead of reading it from the API server.",
        ),
    ] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster/--no-cluster",
            help="Read each Incident's audit head from the "
            "API server (KUBECONFIG) to check the end of its log.",
        ),
    ] = True,
) -> None:
    """Check hash chains, and each log's end against its Incident's audit head: exit 1, with a
    line per problem, when any log was altered."""
    root = audit_dir or WorkstationSettings.from_env().audit_dir
    given = None
    if head is not None:
        if incident is None:
            typer.echo("aiops: --head needs the INCIDENT it belongs to", err=True)
            raise typer.Exit(2)
        try:
            given = Head.parse(head)
        except ValueError as err:
            typer.echo(f"aiops: --head: {err}", err=True)
            raise typer.Exit(2) from err
    if incident is not None:
        ns, name = _target(incident, namespace)
        if not _path(root, ns, name).is_file():
            typer.echo(f"aiops: no audit log for {ns}/{name} under {root}", err=True)
            raise typer.Exit(1)
        targets = [(ns, name)]
    elif root.is_dir():
        targets = [t for t in AuditLog(root).incidents() if namespace in (None, t[0])]
    else:
        targets = []
    heads: dict[tuple[str, str], Head | None] | None = None  # None: nothing to compare with
    if given is not None:
        heads = {targets[0]: given}
    elif cluster and targets:
        heads, why = _heads_from_cluster(targets)
        if why:
            typer.echo(
                f"note: the ends of the logs were not checked against their Incidents: "
                f"{why} (pass --head SEQ:HASH, or --no-cluster)"
            )
    problems = records = 0
    for ns, name in targets:
        known = heads.get((ns, name)) if heads is not None else None
        result = verify(_path(root, ns, name), incident=f"{ns}/{name}", head=known)
        if heads is not None and known is None:
            result.notes.append(
                "its Incident has recorded no audit head: the end of the log was not checked"
                if (ns, name) in heads
                else "no Incident of this name (deleted?): the end of the log was not checked"
            )
        records += result.records
        problems += len(result.problems)
        for problem in result.problems:
            typer.echo(f"{ns}/{name}: {problem}")
        for note in result.notes:
            typer.echo(f"{ns}/{name}: note: {note}")
    verdict = f"{problems} problems" if problems else "every chain intact"
    typer.echo(f"verified {len(targets)} logs, {records} records under {root}: {verdict}")
    if problems:
        raise typer.Exit(1)


def _heads_from_cluster(
    targets: list[tuple[str, str]],
) -> tuple[dict[tuple[str, str], Head | None] | None, str]:
    """The audit head of each target's Incident (None where it has none yet; absent where
    there is no such Incident), or why the API server could not tell."""
    from kubernetes import client, config  # only this path talks to the API server
    from kubernetes.client.exceptions import ApiException

    from aiops.api import GROUP, VERSION, Incident

    settings = client.Configuration()
    try:
        config.load_kube_config(
            config_file=WorkstationSettings.from_env().kubeconfig, client_configuration=settings
        )
    except Exception as err:  # no kubeconfig, or a broken one
        return None, f"no API server configured ({err})"
    settings.retries = 0  # an unreachable server is said at once, not after minutes
    api = client.CustomObjectsApi(client.ApiClient(settings))
    heads: dict[tuple[str, str], Head | None] = {}
    for ns in sorted({ns for ns, _ in targets}):
        try:
            listed = cast(
                dict[str, Any],
                api.list_namespaced_custom_object(
                    GROUP, VERSION, ns, Incident.PLURAL, _request_timeout=10
                ),
            )
        except ApiException as err:
            return None, (
                f"the API server refused to list incidents in {ns}: {err.status} {err.reason}"
            )
        except Exception as err:
            return None, f"the API server could not be reached ({type(err).__name__}: {err})"
        for obj in listed["items"]:
            recorded = (obj.get("status") or {}).get("auditHead")
            heads[(ns, obj["metadata"]["name"])] = (
                Head.model_validate(recorded) if isinstance(recorded, dict) else None
            )
    return heads, ""


def _target(incident: str, namespace: str | None) -> tuple[str, str]:
    ns, slash, name = incident.rpartition("/")
    if not slash:
        return namespace or "default", incident
    if namespace is not None and namespace != ns:
        typer.echo(f"aiops: {incident} is not in namespace {namespace}", err=True)
        raise typer.Exit(2)
    return ns, name


def _path(root: Path, namespace: str, name: str) -> Path:
    # Built without AuditLog(root): that would create the root, and reading must not write.
    try:
        return log_path(root, namespace, name)
    except AuditError as err:
        typer.echo(f"aiops: {err}", err=True)
        raise typer.Exit(2) from err


def _render(record: AuditRecord) -> str:
    when = record.time.strftime("%Y-%m-%d %H:%M:%S")
    # The data holds what the model wrote and what pods logged: shown, never acted on.
    return printable(f"{when}  {record.seq:>4}  {record.kind:<16} {summarize(record.data)}")


def summarize(data: dict[str, Any], width: int = SUMMARY_WIDTH) -> str:
    """One line for a record's data: a phase change as `from → to`, then its message or
    summary if it has one, else its fields as key=value."""
    parts = []
    if "from" in data and "to" in data:
        parts.append(f"{data['from']} → {data['to']}")
    text = next((data[k] for k in ("message", "summary") if isinstance(data.get(k), str)), None)
    if text is not None:
        parts.append(text)
    else:
        parts.extend(f"{k}={_brief(v)}" for k, v in data.items() if k not in ("from", "to"))
    line = " ".join(" ".join(parts).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return f"{{{len(value)} fields}}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if isinstance(value, str) and value and " " not in value:
        return value
    return json.dumps(value, ensure_ascii=False)
