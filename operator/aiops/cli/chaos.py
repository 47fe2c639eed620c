"""`aiops chaos run FILE [--wait] | list | stop NAME`: Chaos from the command line.

`run` creates the Chaos in FILE and, with `--wait`, follows it on one live line (phase, time
left, the Subject's health, the incidents it opened) until the fault is reverted and the
Subject's recovery is known; then prints what happened, with TTD and TTR per linked incident
(`detectedAt` and `resolvedAt` minus the Chaos' `injectedAt`). `stop` deletes the Chaos, which
reverts the fault at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aiops.api import GROUP, VERSION, Chaos, Incident, Subject, format_duration, to_timedelta
from aiops.settings import WorkstationSettings
from aiops.subjects.contract import utcnow
from aiops.vocabulary import ACTIVE_TARGETS, ChaosPhase, ConditionStatus, ConditionType

app = typer.Typer(help="Inject faults as Chaos resources, and follow them.", no_args_is_help=True)

NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="The namespace (default: the file's, else the kubeconfig context's).",
    ),
]
POLL = 0.5
EXIT_FAILED, EXIT_NOT_RECOVERED, EXIT_TIMEOUT = 1, 2, 3


def _die(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"aiops: {message}", err=True)
    return typer.Exit(code)


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(
        config.new_client_from_config(config_file=WorkstationSettings.from_env().kubeconfig)
    )


def _context_namespace() -> str:
    try:
        kubeconfig = WorkstationSettings.from_env().kubeconfig
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


@dataclass
class Api:
    custom: client.CustomObjectsApi
    namespace: str

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj = cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                ),
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj

    def list(self, plural: str) -> list[dict[str, Any]]:
        out = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural),
        )
        return list(out.get("items", []))


def _load(file: Path) -> dict[str, Any]:
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
    except (OSError, yaml.YAMLError) as err:
        raise _die(f"cannot read {file}: {err}") from err
    if len(docs) != 1:
        raise _die(f"{file} must hold one Chaos, found {len(docs)} documents")
    try:
        Chaos.from_k8s(docs[0])  # the model's checks first: a clear message before the server
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise _die(f"{file} is not a valid Chaos: {problems}") from err
    return dict(docs[0])


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="A Chaos manifest (YAML).")],
    namespace: NamespaceOpt = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Follow it until reverted and the Subject's recovery is known.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait at most (default: the duration plus 10 minutes)."),
    ] = None,
) -> None:
    """Create the Chaos in FILE; with --wait, follow it live. Exit 1 when it Failed, 2 when
    the Subject was not healthy again, 3 on timeout."""
    body = _load(file)
    ns = namespace or body.get("metadata", {}).get("namespace") or _context_namespace()
    body.setdefault("metadata", {})["namespace"] = ns
    api = Api(_custom(), ns)
    name = body["metadata"].get("name", "")
    try:
        api.custom.create_namespaced_custom_object(GROUP, VERSION, ns, Chaos.PLURAL, body)
    except ApiException as err:
        if err.status == 409:
            raise _die(
                f"Chaos {ns}/{name} exists: `aiops chaos stop {name} -n {ns}` ends it "
                "(and reverts it); then run again"
            ) from err
        raise _die(f"the API server refused the Chaos: {_reason(err)}") from err
    typer.echo(f"chaos {ns}/{name} created")
    if not wait:
        return
    chaos = Chaos.from_k8s(body)
    limit = (
        timeout
        if timeout is not None
        else (to_timedelta(chaos.spec.duration).total_seconds() + 600)
    )
    raise typer.Exit(follow(api, name, limit))


def follow(api: Api, name: str, limit: float) -> int:
    """Follows Chaos `name` until it is settled; returns the exit code."""
    console = Console(stderr=False)
    deadline = time.monotonic() + limit
    last = ""
    obj: dict[str, Any] | None = None
    live = (
        Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    )
    try:
        if live is not None:
            live.start()
        while time.monotonic() < deadline:
            obj = api.get(Chaos.PLURAL, name)
            if obj is None:
                typer.echo(f"chaos {name} was deleted")
                return EXIT_FAILED
            line = progress_line(api, obj)
            if live is not None:
                live.update(line, refresh=True)
            elif line != last:
                typer.echo(line)  # not a terminal: one plain line per change, never wrapped
            last = line
            code = settled(obj)
            if code is not None:
                break
            time.sleep(POLL)
        else:
            code = EXIT_TIMEOUT
    finally:
        if live is not None:
            live.stop()
    if obj is not None:
        typer.echo(summary(api, obj))
    if code == EXIT_TIMEOUT:
        typer.echo(
            f"timed out after {limit:.0f} s; the Chaos goes on "
            f"(`aiops chaos stop {name}` ends it now)"
        )
    return code


def settled(obj: dict[str, Any]) -> int | None:
    """The exit code once the Chaos is done, else None."""
    st = Chaos.from_k8s(obj).status
    active = any(t.state in ACTIVE_TARGETS for t in st.targets)
    if st.phase == ChaosPhase.FAILED and not active:
        return EXIT_FAILED
    if st.phase == ChaosPhase.RECOVERED:
        for c in st.conditions:
            if c.type == ConditionType.SUBJECT_RECOVERED and c.status != ConditionStatus.UNKNOWN:
                return 0 if c.status == ConditionStatus.TRUE else EXIT_NOT_RECOVERED
    return None


def _left(ends: datetime | None) -> str:
    if ends is None:
        return ""
    seconds = max(0, int((ends - utcnow()).total_seconds() + 0.999))
    return f"{format_duration(timedelta(seconds=seconds))} left"


def progress_line(api: Api, obj: dict[str, Any]) -> str:
    chaos = Chaos.from_k8s(obj)
    st = chaos.status
    parts = [f"{chaos.metadata.name}", st.phase or ChaosPhase.PENDING]
    if st.phase == ChaosPhase.INJECTED:
        parts.append(_left(st.ends_at))
    elif st.waiting_for:
        parts.append(f"waiting for {st.waiting_for}")
    subject = api.get(Subject.PLURAL, chaos.spec.subject)
    health = ((subject or {}).get("status") or {}).get("health") or "?"
    parts.append(f"subject {chaos.spec.subject} {health}")
    incidents = []
    for inc_name in st.incidents:
        inc = api.get(Incident.PLURAL, inc_name) or {}
        incidents.append(f"{inc_name} ({(inc.get('status') or {}).get('phase') or '?'})")
    parts.append(f"incidents: {', '.join(incidents) or 'none'}")
    if st.recovered_by:
        parts.append(f"recovered by {st.recovered_by}")
    return " | ".join(p for p in parts if p)


def summary(api: Api, obj: dict[str, Any]) -> str:
    chaos = Chaos.from_k8s(obj)
    st = chaos.status
    lines = [f"{chaos.metadata.name}: {st.phase or ChaosPhase.PENDING}: {st.message or ''}"]
    for inc_name in st.incidents:
        inc_obj = api.get(Incident.PLURAL, inc_name)
        if inc_obj is None or st.injected_at is None:
            continue
        ist = Incident.from_k8s(inc_obj).status
        ttd = _secs(ist.detected_at, st.injected_at)
        ttr = _secs(ist.resolved_at, st.injected_at)
        lines.append(f"  incident {inc_name}: {ist.phase}; TTD {ttd}; TTR {ttr}")
    return "\n".join(lines)


def _secs(later: datetime | None, start: datetime) -> str:
    return "-" if later is None else f"{(later - start).total_seconds():.2f} s"


@app.command("list")
def list_(namespace: NamespaceOpt = None) -> None:
    """The Chaos of a namespace: subject, fault, targets, phase, time left, recovered by."""
    api = Api(_custom(), namespace or _context_namespace())
    try:
        items = api.list(Chaos.PLURAL)
    except ApiException as err:
        raise _die(f"cannot list Chaos in {api.namespace}: {_reason(err)}") from err
    table = Table(box=None, pad_edge=False)
    for column in (
        "NAME",
        "SUBJECT",
        "FAULT",
        "TARGET",
        "PHASE",
        "LEFT",
        "RECOVERED BY",
        "MESSAGE",
    ):
        table.add_column(column, overflow="fold" if column == "MESSAGE" else "ellipsis")
    for obj in sorted(items, key=lambda o: o["metadata"]["name"]):
        try:
            c = Chaos.from_k8s(obj)
        except ValidationError:
            table.add_row(obj["metadata"]["name"], "?", "?", "", "invalid", "", "", "")
            continue
        st = c.status
        table.add_row(
            c.metadata.name or "",
            c.spec.subject,
            c.spec.fault,
            ",".join(t.name for t in st.targets),
            st.phase or ChaosPhase.PENDING,
            _left(st.ends_at).removesuffix(" left") if st.phase == ChaosPhase.INJECTED else "",
            st.recovered_by or "",
            (st.message or "")[:120],
        )
    Console().print(table)


@app.command()
def stop(
    name: Annotated[str, typer.Argument(help="The Chaos to end now.")],
    namespace: NamespaceOpt = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the revert (0: do not wait).")
    ] = 60,
) -> None:
    """Delete the Chaos: the operator reverts the fault first, then lets the object go."""
    api = Api(_custom(), namespace or _context_namespace())
    try:
        api.custom.delete_namespaced_custom_object(
            GROUP, VERSION, api.namespace, Chaos.PLURAL, name
        )
    except ApiException as err:
        if err.status == 404:
            raise _die(f"no Chaos {api.namespace}/{name}") from err
        raise _die(f"cannot delete Chaos {api.namespace}/{name}: {_reason(err)}") from err
    typer.echo(f"chaos {api.namespace}/{name} deleted; the operator reverts it")
    deadline = time.monotonic() + wait
    last = ""
    while time.monotonic() < deadline:
        obj = api.get(Chaos.PLURAL, name)
        if obj is None:
            typer.echo(f"chaos {api.namespace}/{name} reverted and gone")
            return
        message = (obj.get("status") or {}).get("message") or ""
        if message != last:
            typer.echo(f"  {message}")
            last = message
        time.sleep(POLL)
    if wait > 0:
        raise _die(
            f"chaos {name} is still there after {wait:.0f} s: its revert has not "
            f"succeeded yet (status: {last or 'no message'})",
            EXIT_TIMEOUT,
        )


def _reason(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except Exception:
        return str(err.reason)
