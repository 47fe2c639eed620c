"""`aiops demo ratelimiter | tikv`: the live demo on the system `aiops up` brought up."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from aiops.cluster.local import DEFAULT_NAME, default_state_dir
from aiops.settings import WorkstationSettings
from aiops.vocabulary import Autonomy

app = typer.Typer(
    help="The live demo: a fault, followed from detection to a verified fix.", no_args_is_help=True
)

NameOpt = Annotated[str, typer.Option("--name", help="The system `aiops up` started.")]
AutoOpt = Annotated[
    bool,
    typer.Option(
        "--auto",
        help="Run unattended: each chapter moves on by itself, and under autonomy "
        "propose the plan is approved as the current kubectl user.",
    ),
]
AutonomyOpt = Annotated[
    str,
    typer.Option(
        "--autonomy", help="observe | propose | execute: how much the operator may do alone."
    ),
]
FaultOpt = Annotated[
    str | None,
    typer.Option(
        "--fault", help="The fault (a Chaos); `aiops demo ratelimiter --fault help` lists them."
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param", help="A fault parameter KEY=VALUE (VALUE as JSON, else a string); repeatable."
    ),
]
DurationOpt = Annotated[
    str, typer.Option("--duration", help="How long the fault lasts unless the demo ends it first.")
]
DwellOpt = Annotated[
    float,
    typer.Option("--dwell", help="With --auto: seconds each chapter stays on screen at least."),
]
CountdownOpt = Annotated[float, typer.Option("--countdown", help="Seconds before the fault.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds after the fault before the demo gives up.")
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="State directory (default: AIOPS_STATE_DIR, else ~/.local/state/aiops)."
    ),
]


def _die(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"aiops demo: {message}", err=True)
    return typer.Exit(code)


def _params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise _die(f"--param {item!r}: say KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command()
def ratelimiter(
    name: NameOpt = DEFAULT_NAME,
    auto: AutoOpt = False,
    autonomy: AutonomyOpt = "propose",
    fault: FaultOpt = None,
    param: ParamOpt = None,
    duration: DurationOpt = "1m",
    dwell: DwellOpt = 2.0,
    countdown: CountdownOpt = 3.0,
    timeout: TimeoutOpt = 300.0,
    state_dir: StateOpt = None,
) -> None:
    """The rate limiter demo on the local system: baseline, load, a fault, detection,
    diagnosis, approval, remediation, verification, summary. Exit 0 when the incident was
    Resolved, 1 when not, 130 when quit early."""
    from aiops.demo.stories import RateLimiterStory

    _demo(
        RateLimiterStory(),
        name,
        state_dir,
        auto=auto,
        autonomy=autonomy,
        fault=fault,
        params=_params(param),
        duration=duration,
        dwell=dwell,
        countdown=countdown,
        timeout=timeout,
    )


@app.command()
def tikv(
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Where the TiKV Subject is.")
    ] = "tikv",
    name: NameOpt = DEFAULT_NAME,
    auto: AutoOpt = False,
    autonomy: AutonomyOpt = "propose",
    fault: FaultOpt = None,
    duration: DurationOpt = "2m",
    dwell: DwellOpt = 2.0,
    timeout: TimeoutOpt = 600.0,
    state_dir: StateOpt = None,
) -> None:
    """The TiKV demo (a store killed) on a cluster with TiKV: the kind path
    (hack/kind-up.sh). KUBECONFIG must point at that cluster."""
    from aiops.localsystem import load_record

    record = load_record(name, state_dir or default_state_dir())
    kubeconfig = WorkstationSettings.from_env().kubeconfig
    if (
        not kubeconfig
        or (record is not None and Path(kubeconfig) == record.kubeconfig)
        or not _has_tikv(Path(kubeconfig), namespace)
    ):
        raise _die(
            "TiKV needs real pods, and the local path only simulates them (kwok): run "
            "hack/kind-up.sh (Docker), then KUBECONFIG=.work/kind/aiops.kubeconfig "
            "aiops demo tikv; here, run aiops demo ratelimiter"
        )
    from aiops.demo.stories import TikvStory

    _demo(
        TikvStory(),
        name,
        state_dir,
        auto=auto,
        autonomy=autonomy,
        fault=fault,
        params={},
        duration=duration,
        dwell=dwell,
        countdown=3.0,
        timeout=timeout,
        kubeconfig=Path(kubeconfig),
        namespace=namespace,
    )


def _has_tikv(kubeconfig: Path, namespace: str) -> bool:
    """A TiKV Subject in `namespace` of that cluster (the kind path installs one)."""
    from kubernetes import client, config

    from aiops.api import GROUP, VERSION

    try:
        custom = client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))
        items = cast(
            dict[str, Any],
            custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "subjects", _request_timeout=10
            ),
        )["items"]
    except Exception:
        return False
    return any(s.get("spec", {}).get("type") == "tikv" for s in items)


def _demo(
    story: Any,
    name: str,
    state_dir: Path | None,
    *,
    auto: bool,
    autonomy: str,
    fault: str | None,
    params: dict[str, Any],
    duration: str,
    dwell: float,
    countdown: float,
    timeout: float,
    kubeconfig: Path | None = None,
    namespace: str | None = None,
) -> None:
    from kubernetes import config
    from kubernetes.client.exceptions import ApiException
    from pydantic import ValidationError
    from rich.console import Console

    from aiops.api import GROUP, VERSION
    from aiops.demo.director import Director, Settings
    from aiops.demo.run import run, start_sources, wait_synced
    from aiops.demo.sources import Store
    from aiops.localsystem import load_record
    from aiops.localsystem.operator_proc import alive

    if autonomy not in tuple(Autonomy):
        raise _die(f"--autonomy {autonomy!r}: say observe, propose or execute")
    faults = story.faults
    fault = fault or story.default_fault
    if fault not in faults:
        listing = "\n".join(f"  {n:<18} {f.description}" for n, f in faults.items())
        raise _die(
            f"{story.subject_type} has no fault {fault!r}; its faults:\n{listing}"
            if fault != "help"
            else f"the {story.subject_type} faults:\n{listing}"
        )
    params = {**story.params(fault), **params}
    try:
        faults[fault].params.model_validate(params)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise _die(f"--param for {fault}: {problems}") from err
    audit_dir: Path | None = None
    agent = wanted = WorkstationSettings.from_env().agent  # the record's, when it has one
    if kubeconfig is None:
        record = load_record(name, state_dir or default_state_dir())
        if record is None:
            raise _die(
                f"the local system{'' if name == DEFAULT_NAME else ' ' + name} is not "
                "up: run 'aiops up' first (hack/demo.sh does both)"
            )
        if not alive(record.operator):
            raise _die(
                "the operator of the local system is not running: 'aiops up' starts it again"
            )
        assert record.operator is not None
        kubeconfig, namespace = record.kubeconfig, record.layout.namespace
        audit_dir, agent = record.layout.audit_dir, record.operator.agent
        if agent == "runbook" and wanted == "anthropic":
            typer.secho(
                "aiops demo: ANTHROPIC_API_KEY is set, but the operator was started "
                "without it and investigates with the runbook: run 'aiops up' again "
                "to restart it with the key",
                err=True,
            )
    assert namespace is not None
    api = config.new_client_from_config(config_file=str(kubeconfig))
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    subjects = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "subjects")
    )["items"]
    subject = next((s for s in subjects if s["spec"].get("type") == story.subject_type), None)
    if subject is None:
        raise _die(
            f"no {story.subject_type} Subject in namespace {namespace}: 'aiops up' "
            "creates the rate limiter's"
        )
    settings = Settings(
        namespace=namespace,
        subject=subject["metadata"]["name"],
        fault=fault,
        params=params,
        duration=duration,
        autonomy=autonomy,
        auto=auto,
        dwell=dwell,
        countdown=countdown,
        timeout=timeout,
        kubeconfig=str(kubeconfig),
        agent=agent,
    )
    store = Store()
    director_box: list[Director] = []

    def incidents() -> list[str]:
        inc = director_box[0].incident() if director_box else None
        return [inc["metadata"]["name"]] if inc else []

    prometheus = (subject["spec"].get("prometheus") or {}).get("url")
    stop = start_sources(store, api, settings, story, audit_dir, prometheus, incidents)
    try:
        if not wait_synced(store):
            raise _die("the API server did not answer the demo's watches within 15 s", 1)
        console = Console()
        if not auto and not (console.is_terminal and os.isatty(0)):
            typer.echo("aiops demo: not a terminal: running unattended, as with --auto")
            settings = dataclasses.replace(settings, auto=True)
        director = Director(settings, store, api, story)
        director_box.append(director)
        try:
            code = run(director, console)
        except ApiException as err:
            raise _die(f"the API server refused: {err.status} {err.reason}", 1) from err
    finally:
        stop.set()
    raise typer.Exit(code)
