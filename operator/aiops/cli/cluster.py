"""`aiops cluster up | down | status`."""

from pathlib import Path
from typing import Annotated

import typer

from aiops.cluster import ClusterError, LocalCluster
from aiops.cluster.local import DEFAULT_NAME, DEFAULT_NODES, DEFAULT_PORT
from aiops.cluster.runtime_check import RUNTIME

app = typer.Typer(help="A local Kubernetes control plane (kwokctl binary runtime).")

NameOpt = Annotated[str, typer.Option("--name", help="Cluster name.")]
PortOpt = Annotated[int, typer.Option("--port", help="kube-apiserver port on 127.0.0.1.")]
StateOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="State directory (default: AIOPS_STATE_DIR).")
]


def _fail(err: ClusterError) -> None:
    typer.secho(f"aiops: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def up(
    name: NameOpt = DEFAULT_NAME,
    port: PortOpt = DEFAULT_PORT,
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Simulated nodes.")] = DEFAULT_NODES,
    state_dir: StateOpt = None,
    real_node: Annotated[
        bool,
        typer.Option(
            "--real-node",
            help="Also run a real node on this machine (root; containerd, kubelet, kube-proxy; "
            "tainted aiops.dev/real-node=true:NoSchedule). Build its images first: hack/images.sh.",
        ),
    ] = False,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Image archives for the real node (default: where hack/images.sh writes them).",
        ),
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="The OCI runtime the real node's containerd runs pods with (a command or "
            "path). It must run a container on this kernel: checked before anything starts.",
        ),
    ] = RUNTIME,
) -> None:
    """Start the cluster (idempotent) and print how to use it."""
    try:
        st = LocalCluster(name, port=port, nodes=nodes, state_dir=state_dir).up(
            real_node=real_node, images=images, runtime=runtime
        )
    except ClusterError as err:
        _fail(err)
        return
    typer.echo(f"cluster {st.name!r} is running at {st.server} with nodes: {', '.join(st.nodes)}")
    typer.echo(f"  export KUBECONFIG={st.kubeconfig}")
    typer.echo("  kubectl get nodes")


@app.command()
def down(name: NameOpt = DEFAULT_NAME, state_dir: StateOpt = None) -> None:
    """Stop every process of the cluster and remove its state."""
    try:
        stopped = LocalCluster(name, state_dir=state_dir).down()
    except ClusterError as err:
        _fail(err)
        return
    if stopped:
        typer.echo(f"cluster {name!r} stopped (pids {', '.join(map(str, stopped))})")
    else:
        typer.echo(f"cluster {name!r} is not running")


@app.command()
def status(name: NameOpt = DEFAULT_NAME, state_dir: StateOpt = None) -> None:
    """Say whether the cluster runs, its processes and nodes. Exit 1 unless running."""
    try:
        st = LocalCluster(name, state_dir=state_dir).status()
    except ClusterError as err:
        _fail(err)
        return
    typer.echo(f"cluster {st.name!r}: {st.state}{f' ({st.problem})' if st.problem else ''}")
    if st.state != "absent":
        typer.echo(f"  kubeconfig: {st.kubeconfig}")
        for component, pid in sorted(st.processes.items()):
            typer.echo(f"  {component}: pid {pid}")
        for component in st.dead:
            typer.echo(f"  {component}: not running")
        if st.nodes:
            typer.echo(f"  nodes: {', '.join(st.nodes)}")
    if st.state != "running":
        raise typer.Exit(1)
