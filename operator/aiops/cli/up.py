"""`aiops up | down | status`: the whole local system (aiops.localsystem), with one line per
step: what is being built or started, what it is doing now, and how long it took."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from aiops.cluster import ClusterError
from aiops.cluster.local import DEFAULT_NAME, DEFAULT_PORT, default_state_dir
from aiops.localsystem import Layout, LocalSystemError
from aiops.localsystem.layout import DEFAULT_NAMESPACE, DEFAULT_STACK_PORT

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
NameOpt = Annotated[str, typer.Option("--name", help="The system's (and its cluster's) name.")]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="State directory (default: AIOPS_STATE_DIR, else ~/.local/state/aiops)."
    ),
]


@dataclass
class _Line:
    title: str
    detail: str = ""
    started: float = 0.0
    seconds: float | None = None
    failed: bool = False


class _StepView:
    def __init__(self, line: _Line, changed: Callable[[], None]) -> None:
        self._line, self._changed = line, changed

    def detail(self, text: str) -> None:
        self._line.detail = text
        self._changed()


class LiveReporter:
    """Steps as a live table on a terminal: a spinner and the running time on the current
    step, ✓ and its time on finished ones, ✗ and the error on a failed one."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lines: list[_Line] = []
        self.live = Live(
            console=console, refresh_per_second=8, get_renderable=self._render, transient=False
        )

    def _render(self) -> Group:
        rows = []
        for line in self.lines:
            took = line.seconds if line.seconds is not None else time.monotonic() - line.started
            if line.failed:
                mark, style = "✗", "bold red"
            elif line.seconds is None:
                mark, style = SPINNER[int(time.monotonic() * 10) % len(SPINNER)], "bold cyan"
            else:
                mark, style = "✓", "bold green"
            rows.append(
                Text.assemble(
                    (mark, style),
                    " ",
                    (f"{line.title:<54.54}", "bold"),
                    f"{took:6.1f} s  ",
                    (line.detail, "dim" if line.seconds is not None else ""),
                    no_wrap=True,
                    overflow="ellipsis",
                )
            )
        return Group(*rows)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[_StepView]:
        line = _Line(title, started=time.monotonic())
        self.lines.append(line)
        try:
            yield _StepView(line, lambda: None)
        except BaseException:
            line.failed = True
            raise
        finally:
            line.seconds = time.monotonic() - line.started

    def __enter__(self) -> LiveReporter:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.refresh()
        self.live.stop()


class PlainReporter:
    """Steps as plain lines, for logs and CI: a line when a step starts, one per new detail,
    and one when it ends with its time."""

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[_StepView]:
        line = _Line(title, started=time.monotonic())
        typer.echo(f"==> {title}")
        shown: dict[str, Any] = {"text": "", "at": 0.0}

        def changed() -> None:
            # The cold Go build reports each of hundreds of packages: a progress line every
            # 5 s is enough in a log; any other detail is printed as it comes.
            now = time.monotonic()
            progress = "packages compiled" in line.detail
            if line.detail != shown["text"] and (not progress or now - shown["at"] >= 5):
                typer.echo(f"    {line.detail}")
                shown.update(text=line.detail, at=now)

        try:
            yield _StepView(line, changed)
        except BaseException:
            typer.echo(f"    failed after {time.monotonic() - line.started:.1f} s")
            raise
        typer.echo(f"    done in {time.monotonic() - line.started:.1f} s")

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _reporter() -> LiveReporter | PlainReporter:
    console = Console()
    return LiveReporter(console) if console.is_terminal else PlainReporter()


def _layout(name: str, state_dir: Path | None, **ports: int) -> Layout:
    return Layout(name=name, state_dir=state_dir or default_state_dir(), **ports)


def _fail(err: Exception) -> typer.Exit:
    typer.secho(f"aiops: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def up(
    name: NameOpt = DEFAULT_NAME,
    port: Annotated[
        int,
        typer.Option(
            "--port", help="kube-apiserver port on 127.0.0.1 (the cluster uses 6 from here)."
        ),
    ] = DEFAULT_PORT,
    stack_port: Annotated[
        int,
        typer.Option(
            "--stack-port",
            help="First port of the rate limiter stack (10 from here, and the "
            "operator's health endpoint after them).",
        ),
    ] = DEFAULT_STACK_PORT,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace", "-n", help="Where the operator, the Subject and the demo live."
        ),
    ] = DEFAULT_NAMESPACE,
    state_dir: StateOpt = None,
) -> None:
    """Bring up the whole local system (idempotent): control plane, aiops API, rate limiter
    stack, operator and the example Subject."""
    layout = _layout(name, state_dir, cluster_port=port, stack_port=stack_port)
    layout = layout.model_copy(update={"namespace": namespace})
    from aiops.localsystem.system import LocalSystem, PreflightError

    started = time.monotonic()
    try:
        with _reporter() as report:
            record = LocalSystem(layout).up(report)
    except (LocalSystemError, ClusterError) as err:
        typer.secho(f"aiops: {err}", fg=typer.colors.RED, err=True)
        if not isinstance(err, PreflightError):
            typer.secho(
                "aiops: what did start is still up: fix the above and run 'aiops up' "
                f"again (or 'aiops down{_name_opt(name)}' to stop it)",
                err=True,
            )
        raise typer.Exit(1) from err
    typer.echo(f"the local system is up in {time.monotonic() - started:.1f} s")
    typer.echo(f"  export KUBECONFIG={record.kubeconfig}")
    typer.echo(
        f"  aiops demo ratelimiter{_name_opt(name)}      the demo; "
        f"aiops status{_name_opt(name)}; aiops down{_name_opt(name)}"
    )


def _name_opt(name: str) -> str:
    return "" if name == DEFAULT_NAME else f" --name {name}"


def down(name: NameOpt = DEFAULT_NAME, state_dir: StateOpt = None) -> None:
    """Stop the operator, the stack and the cluster; leaves no process and no port behind
    (audit logs stay)."""
    from aiops.localsystem.system import LocalSystem

    try:
        system = LocalSystem.existing(_layout(name, state_dir))
        with PlainReporter() as report:
            system.down(report)
    except (LocalSystemError, ClusterError) as err:
        raise _fail(err) from err
    typer.echo("the local system is down")


def status(
    name: NameOpt = DEFAULT_NAME,
    state_dir: StateOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """Each component with its pid, address and health. Exit 0 when all are healthy, 1 when
    something is down or unhealthy, 3 when the system is not up."""
    from aiops.localsystem.system import LocalSystem

    try:
        system = LocalSystem.existing(_layout(name, state_dir))
        components = system.status()
    except (LocalSystemError, ClusterError) as err:
        raise _fail(err) from err
    absent = all(
        c.state == "absent"
        for c in components
        if c.name in ("control plane", "rate limiter stack", "operator")
    )
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in components], indent=2))
    else:
        table = Table(box=None, pad_edge=False)
        for column in ("COMPONENT", "STATE", "PID", "ADDRESS", "HEALTH", "DETAIL"):
            table.add_column(column, overflow="fold")
        for c in components:
            health = {True: "[green]healthy[/]", False: "[red]unhealthy[/]", None: "-"}[c.healthy]
            table.add_row(c.name, c.state, str(c.pid or "-"), c.address or "-", health, c.detail)
        Console(width=200 if not Console().is_terminal else None).print(table)
    if absent:
        typer.echo(
            f"the local system{_name_opt(name) and ' ' + name} is not up: "
            f"'aiops up{_name_opt(name)}' starts it",
            err=True,
        )
        raise typer.Exit(3)
    if any(c.healthy is False for c in components):
        raise typer.Exit(1)
