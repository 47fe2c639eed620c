"""Entry point of the `aiops` console script; each command group lives in its own module."""

import typer

from aiops.cli import (
    actions,
    approvals,
    audit,
    chaos,
    cluster,
    crds,
    docs,
    operator,
    postmortem,
    up,
)
from aiops.cli import eval as eval_cli
from aiops.demo import cli as demo

app = typer.Typer(
    name="aiops",
    help="An AI operator for distributed systems.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(cluster.app, name="cluster")
app.command("crds")(crds.crds)
app.command("docs")(docs.docs)
app.add_typer(operator.app, name="operator")
app.command("approve")(approvals.approve)
app.command("reject")(approvals.reject)
app.add_typer(audit.app, name="audit")
app.command("postmortem")(postmortem.postmortem)
app.add_typer(actions.app, name="actions")
app.add_typer(chaos.app, name="chaos")
app.command("up")(up.up)
app.command("down")(up.down)
app.command("status")(up.status)
app.add_typer(demo.app, name="demo")
app.add_typer(eval_cli.app, name="eval")


if __name__ == "__main__":
    app()
