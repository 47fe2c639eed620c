"""The fault executors' pure parts (names, manifests, commands, exit codes, parameter models)
and the pods workload's disk fill run end to end with its commands executed by this machine's
sh (the API server's exec is the only stand-in: a local process in place of the pod's)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubernetes import client as k8s
from pydantic import ValidationError

from aiops.subjects.contract import PluginError
from aiops.subjects.faults import netem, netpolicy, podexec
from aiops.subjects.faults.delay import DelayParams
from aiops.subjects.faults.diskfill import FILL_FILE, MIB, FillParams
from aiops.subjects.faults.podexec import ExecResult
from aiops.subjects.faults.toxics import Toxic, toxic_name
from aiops.subjects.workload import PodsWorkload

# -- NetworkPolicy ------------------------------------------------------------------------------


def test_policy_names_are_dns_labels_named_for_the_fault_and_pod() -> None:
    assert netpolicy.policy_name("partition_node", "rl-node-1") == (
        "aiops-chaos-partition-node-rl-node-1"
    )
    long_pod = "ratelimiter-" + "x" * 60
    a = netpolicy.policy_name("partition_node", long_pod)
    b = netpolicy.policy_name("partition_node", long_pod + "y")
    assert len(a) <= 63 and a != b and a.startswith("aiops-chaos-partition-node-ratelimiter-")
    assert netpolicy.policy_name("partition_node", long_pod) == a  # stable: found at revert


def test_policy_selects_the_labelled_pod_and_allows_nothing() -> None:
    m = netpolicy.manifest("aiops-chaos-p-x", "ns", "both")
    assert m["spec"] == {
        "podSelector": {"matchLabels": {netpolicy.LABEL: "aiops-chaos-p-x"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    assert netpolicy.manifest("n", "ns", "egress")["spec"]["policyTypes"] == ["Egress"]


# -- netem --------------------------------------------------------------------------------------


def test_netem_commands() -> None:
    assert netem.add_argv("eth0", DelayParams(latency_ms=100)) == [
        "tc",
        "qdisc",
        "replace",
        "dev",
        "eth0",
        "root",
        "handle",
        "a1c5:",
        "netem",
        "delay",
        "100ms",
    ]
    assert netem.add_argv("eth0", DelayParams(latency_ms=100, jitter_ms=10))[-2:] == [
        "100ms",
        "10ms",
    ]
    assert netem.del_argv("eth0") == [
        "tc",
        "qdisc",
        "del",
        "dev",
        "eth0",
        "root",
        "handle",
        "a1c5:",
    ]
    assert netem.ours("qdisc netem a1c5: root refcnt 2 limit 1000 delay 100ms\n")
    assert not netem.ours("qdisc netem 8001: root refcnt 2 limit 1000 delay 100ms\n")
    assert not netem.ours("qdisc noqueue 0: root refcnt 2\n")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"latency_ms": 10, "jitter_ms": 20}, "jitter_ms (20) must not exceed latency_ms (10)"),
        ({"latency_ms": 0}, "latency_ms\n  Input should be greater than or equal to 1"),
        ({"latency_ms": 60_001}, "latency_ms\n  Input should be less than or equal to 60000"),
    ],
)
def test_delay_params_refused_precisely(params: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        DelayParams.model_validate(params)
    assert message in str(err.value)


# -- exec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "status"),
    [
        ("", (0, "")),
        ('{"metadata":{},"status":"Success"}', (0, "")),
        (
            '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit '
            'code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",'
            '"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
            (3, ""),
        ),
        (
            '{"status":"Failure","message":"container not found (\\"tikv\\")"}',
            (-1, 'container not found ("tikv")'),
        ),
    ],
)
def test_exit_status_from_the_error_channel(channel: str, status: tuple[int, str]) -> None:
    assert podexec.exit_status(channel) == status


# -- toxics -------------------------------------------------------------------------------------


def test_toxics_are_named_for_their_fault() -> None:
    assert toxic_name("redis_cut") == "aiops-chaos-redis_cut"
    with pytest.raises(ValidationError):
        Toxic.model_validate({"name": "x", "type": "explode"})


# -- the pods workload's disk fill, its commands run here ---------------------------------------


class LocalPods(PodsWorkload):
    """A pods workload whose exec runs the command on this machine: the pod's filesystem is a
    temporary directory. Listing pods answers with the one pod `p-0`."""

    def __init__(self) -> None:
        # No shared process namespace: the pause fault refuses before running anything here.
        pod = SimpleNamespace(
            metadata=SimpleNamespace(name="p-0"),
            spec=SimpleNamespace(share_process_namespace=None),
            status=SimpleNamespace(phase="Running"),
        )
        core = SimpleNamespace(
            api_client=k8s.ApiClient(),
            list_namespaced_pod=lambda ns, label_selector: SimpleNamespace(items=[pod]),
        )
        super().__init__("ns", {"app": "x"}, core)
        self.ran: list[list[str]] = []

    async def exec(self, member: str, argv: list[str], container: str | None = None) -> ExecResult:
        self.ran.append(argv)
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, check=False
        )
        return ExecResult(done.returncode, done.stdout, done.stderr)


async def test_pods_fill_runs_clear_df_du_fill_and_unfill_clears(tmp_path: Path) -> None:
    pods = LocalPods()
    params = FillParams(percent=50, capacity_bytes=4 * MIB, max_bytes=4 * MIB)
    done = await pods.fill_disk("p-0", str(tmp_path), params)
    assert done.ok and "in pod ns/p-0: 50% full" in done.message
    assert [argv[0] for argv in pods.ran] == ["sh", "df", "du", "sh"]  # clear, df, du, fill
    size = (tmp_path / FILL_FILE).stat().st_size
    assert 1.9 * MIB <= size <= 2 * MIB  # 50% of 4 MiB less what du saw of the directory
    assert "removed" in (await pods.unfill_disk("p-0", str(tmp_path))).message
    assert "nothing to remove" in (await pods.unfill_disk("p-0", str(tmp_path))).message
    with pytest.raises(PluginError, match=r"no pod 'p-9' matches app=x in namespace ns"):
        await pods.fill_disk("p-9", str(tmp_path), params)


async def test_pods_fill_says_why_a_command_failed(tmp_path: Path) -> None:
    pods = LocalPods()
    with pytest.raises(PluginError, match=r"df in pod ns/p-0 failed \(exit 1\): df: .*absent"):
        await pods.fill_disk("p-0", str(tmp_path / "absent"), FillParams())


async def test_pods_refuse_pause_without_a_shared_process_namespace() -> None:
    pods = LocalPods()
    with pytest.raises(PluginError, match=r"needs spec\.shareProcessNamespace: true.*ignores"):
        await pods.pause("p-0")
    assert pods.ran == []  # refused before any command
    assert "never paused, nothing to resume" in (await pods.resume("p-0")).message
    assert "gone: nothing to resume" in (await pods.resume("p-9")).message
