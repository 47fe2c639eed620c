"""The real node's parts that need no cluster: its DNS answers, what it says a machine lacks
(a runtime that fails is run for real; runc's check needs root), and the kwok and API server
settings that let a real kubelet sit beside kwok's nodes."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.cluster.dns import AAAA, NXDOMAIN, A, answer
from aiops.cluster.local import AUDIT_POLICY, LocalCluster
from aiops.cluster.node_identity import KUBE_PROXY, kubeconfig_for, kubelet_identity
from aiops.cluster.realnode import missing_prerequisites
from aiops.cluster.runtime_check import runtime_refusal

RECORDS = {
    "rl-redis.ratelimiter.svc.cluster.local": ["10.96.0.12"],
    "rl-ratelimiter-0.rl-ratelimiter-peer.ratelimiter.svc.cluster.local": ["10.244.0.7"],
}


def query(name: str, qtype: int = A, qid: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return (
        struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


def parse(reply: bytes) -> tuple[int, int, list[str]]:
    qid, flags, _qd, ancount, _ns, _ar = struct.unpack("!HHHHHH", reply[:12])
    i = 12
    while reply[i]:
        i += reply[i] + 1
    i += 5
    ips = []
    for _ in range(ancount):
        _ptr, rtype, _cls, _ttl, rdlen = struct.unpack("!HHHIH", reply[i : i + 12])
        assert rtype == A and rdlen == 4
        ips.append(socket.inet_ntoa(reply[i + 12 : i + 16]))
        i += 12 + rdlen
    return qid, flags & 0xF, ips


def test_a_service_and_a_statefulset_pod_resolve() -> None:
    reply = answer(query("rl-redis.ratelimiter.svc.cluster.local", qid=7), RECORDS)
    assert reply is not None
    assert parse(reply) == (7, 0, ["10.96.0.12"])
    # Case does not matter in DNS names.
    reply = answer(
        query("RL-ratelimiter-0.rl-ratelimiter-peer.ratelimiter.svc.cluster.local"), RECORDS
    )
    assert reply is not None and parse(reply)[2] == ["10.244.0.7"]


def test_unknown_names_are_nxdomain_and_known_ones_have_no_ipv6() -> None:
    # What a resolver's search list tries first (ndots:5): must fail fast, not hang.
    reply = answer(query("rl-redis.ratelimiter.svc.ratelimiter.svc.cluster.local"), RECORDS)
    assert reply is not None and parse(reply)[1] == NXDOMAIN
    reply = answer(query("pypi.org"), RECORDS)
    assert reply is not None and parse(reply)[1] == NXDOMAIN
    reply = answer(query("rl-redis.ratelimiter.svc.cluster.local", AAAA), RECORDS)
    assert reply is not None and parse(reply) == (0x1234, 0, [])


def test_a_malformed_packet_gets_no_answer() -> None:
    assert answer(b"\x00\x01", RECORDS) is None
    assert answer(query("x.y")[:-3], RECORDS) is None


def test_a_machine_without_the_runtime_is_told_what_is_missing(tmp_path: Path) -> None:
    line = missing_prerequisites(tmp_path)  # no kubelet there, whatever else the machine has
    assert line is not None
    assert "\n" not in line
    assert "kubelet" in line and "kube-proxy" in line and "hack/setup.sh" in line


def test_kwok_manages_only_its_own_nodes_and_the_api_server_can_reach_a_kubelet(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster("x", state_dir=tmp_path)
    config: dict[str, Any] = cluster._config(tmp_path)
    patches = {p["name"]: p["extraArgs"] for p in config["componentsPatches"]}
    kwok = {a["key"]: a["value"] for a in patches["kwok-controller"]}
    assert kwok == {
        "manage-all-nodes": "false",
        "manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake",
    }
    api = {a["key"]: a["value"] for a in patches["kube-apiserver"]}
    assert api["kubelet-client-certificate"].endswith("/pki/admin.crt")


def test_only_a_real_node_cluster_audits_and_only_workload_service_accounts(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster("x", state_dir=tmp_path)
    assert "kubeAuditPolicy" not in cluster._config(tmp_path)["options"]  # type: ignore[operator]
    policy = tmp_path / "audit-policy.yaml"
    options: Any = cluster._config(tmp_path, policy)["options"]
    assert options["kubeAuditPolicy"] == str(policy)
    # First match wins: the control plane's accounts, then every other ServiceAccount, at
    # Metadata level (no request or response bodies: Secrets never reach the log).
    none, metadata, rest = AUDIT_POLICY["rules"]
    assert none == {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]}
    assert metadata == {"level": "Metadata", "userGroups": ["system:serviceaccounts"]}
    assert rest == {"level": "None"}
    assert cluster.audit_log == cluster.kwok_cluster_dir / "logs" / "audit.log"


def test_a_runtime_that_fails_or_runs_nothing_is_one_line() -> None:
    refused = runtime_refusal("/bin/false")
    assert refused == (
        "this kernel refuses /bin/false, so the real node cannot run pods here: "
        "(no output) (exit 1)"
    )
    # Exit 0 is not enough: the container's own output must come back.
    empty = runtime_refusal("/bin/true")
    assert empty is not None and "exited 0 but ran no container" in empty
    assert runtime_refusal("no-such-runtime") == (
        "the real node needs no-such-runtime: run hack/setup.sh as root"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runc") is None, reason="runc runs containers as root"
)
def test_runc_runs_a_container_on_this_kernel() -> None:
    assert runtime_refusal("runc") is None
    left = [p.name for p in Path(tempfile.gettempdir()).glob("aiops-runtime-check-*")]
    assert left == []  # its bundle and state are gone


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the node's certificates need openssl")
def test_the_nodes_components_get_their_own_client_certificates(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=test-ca", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt")],
        capture_output=True, check=True,
    )  # fmt: skip
    admin = tmp_path / "admin.kubeconfig"
    cluster = {"server": "https://127.0.0.1:6443", "certificate-authority": str(pki / "ca.crt")}
    admin.write_text(yaml.safe_dump({"clusters": [{"name": "x", "cluster": cluster}]}))
    out = tmp_path / "node" / "credentials"
    path = kubeconfig_for(kubelet_identity("n1"), "kubelet", admin, pki, out)
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"] == cluster  # the admin's server and CA
    user = config["users"][0]["user"]
    assert "admin" not in user["client-certificate"]
    crt = subprocess.run(
        ["openssl", "x509", "-in", user["client-certificate"], "-noout", "-subject", "-ext",
         "extendedKeyUsage"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "O = system:nodes, CN = system:node:n1" in crt, crt
    assert "TLS Web Client Authentication" in crt and "Server" not in crt, crt
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki / "ca.crt"), user["client-certificate"]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert oct(Path(user["client-key"]).stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in out.iterdir()) == [
        "kubelet.crt",
        "kubelet.key",
        "kubelet.kubeconfig",
    ]
    # Made once: a second `up` keeps the same credentials.
    assert kubeconfig_for(kubelet_identity("n1"), "kubelet", admin, pki, out) == path
    assert KUBE_PROXY.subject == "/CN=system:kube-proxy"
