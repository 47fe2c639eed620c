"""`aiops eval run CAMPAIGN.yaml [--db PATH] [--resume RUN]`: an evaluation campaign.

Every trial injects one fault (a Chaos) into one Subject under one variant of the agent and
records what happened (docs/evaluation.md). The campaign is checked, file and cluster, before
anything is injected; a run killed mid-campaign resumes with `--resume RUN`.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from rich.console import Console
from rich.table import Table
from urllib3.exceptions import HTTPError

from aiops.cli import eval_report
from aiops.eval import campaign as campaign_file
from aiops.eval.cluster import EvalApi
from aiops.eval.store import Store, StoreError
from aiops.settings import WorkstationSettings

app = typer.Typer(
    help="Evaluation campaigns: how well the operator operates.", no_args_is_help=True
)

DEFAULT_DB = Path("aiops-eval.sqlite")
EXIT_INVALID = 2
DbOpt = Annotated[Path, typer.Option("--db", help="The evaluation database (SQLite).")]


def _die(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"aiops: {message}", err=True)
    return typer.Exit(code)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the run reverts its faults before it exits


@app.command()
def run(
    campaign: Annotated[Path, typer.Argument(help="The campaign file (YAML).")],
    db: DbOpt = DEFAULT_DB,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this run: recorded trials are kept.")
    ] = None,
    audit_dir: Annotated[
        Path | None,
        typer.Option(
            "--audit-dir", help="The operator's audit directory, to count tool calls per trial."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Check the campaign (file and cluster), run nothing.")
    ] = False,
) -> None:
    """Run CAMPAIGN: every subject x fault x variant x trial, one trial at a time per Subject."""
    from aiops.eval.preflight import check as preflight
    from aiops.eval.progress import ConsoleProgress
    from aiops.eval.runner import Runner, plan

    try:
        workstation = WorkstationSettings.from_env()
        api_key = workstation.anthropic_api_key
        key = api_key.get_secret_value() if api_key else None
        loaded = campaign_file.load(campaign, key)
    except campaign_file.CampaignError as err:
        raise _die(str(err), EXIT_INVALID) from err
    kubeconfig = workstation.kubeconfig
    try:
        api = EvalApi(config.new_client_from_config(config_file=kubeconfig))
    except (ConfigException, OSError) as err:
        raise _die(f"cannot use the kubeconfig ({kubeconfig or '~/.kube/config'}): {err}") from err
    if check:
        try:
            preflight(loaded, api)
        except campaign_file.CampaignError as err:
            raise _die(str(err), EXIT_INVALID) from err
        except (ApiException, HTTPError) as err:
            raise _die(f"the API server: {err}") from err
        typer.echo(f"{campaign}: valid; {len(plan(loaded))} trials")
        return
    progress = ConsoleProgress()
    runner = Runner(loaded, api, Store(db), audit_dir, progress, api_key=key)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        record = runner.run(resume)
    except campaign_file.CampaignError as err:
        raise _die(str(err), EXIT_INVALID) from err
    except StoreError as err:
        raise _die(str(err)) from err
    except (ApiException, HTTPError) as err:
        raise _die(
            f"the API server failed the run: {err}; resume: aiops eval run {campaign} "
            f"--db {db} --resume {runner.run_id or '<RUN>'}"
        ) from err
    except KeyboardInterrupt:
        progress.stop()
        raise _die(
            f"interrupted; no fault of this run is left injected. Resume: aiops eval run "
            f"{campaign} --db {db} --resume {runner.run_id or '<RUN>'}",
            130,
        ) from None
    finally:
        progress.stop()
        signal.signal(signal.SIGTERM, previous)
    _summary(Store(db), record.id)
    typer.echo(f"run {record.id} recorded in {db}")


def _summary(store: Store, run_id: str) -> None:
    trials = store.trials(run_id)
    counts: Counter[tuple[str, str, str]] = Counter(
        (t.fault, t.variant, t.outcome.value) for t in trials
    )
    outcomes = sorted({k[2] for k in counts})
    table = Table(title=f"run {run_id}: {len(trials)} trials", box=None, pad_edge=False)
    for column in ("fault", "variant", *outcomes):
        table.add_column(column)
    for fault, variant in sorted({(k[0], k[1]) for k in counts}):
        table.add_row(fault, variant, *(str(counts[(fault, variant, o)] or "") for o in outcomes))
    Console().print(table)


# Reading a run back (no cluster): the report and the comparison.
app.command("report")(eval_report.report)
app.command("compare")(eval_report.compare_cmd)
