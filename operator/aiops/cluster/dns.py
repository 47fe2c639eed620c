"""The real node's cluster DNS: A records for Services and StatefulSet pods, from the API.

kwok's clusters have no DNS add-on, and the charts address each other by Service name
(`rl-redis`, `rl-ratelimiter-0.rl-ratelimiter-peer`). This answers, over UDP, what CoreDNS
would for those names and nothing else:

    <service>.<ns>.svc.<domain>                  the ClusterIP (a headless Service: its pods' IPs)
    <hostname>.<subdomain>.<ns>.svc.<domain>     the pod with that spec.hostname and spec.subdomain

Any other name is NXDOMAIN (names outside the cluster domain too: nothing here reaches beyond
the machine). Run by `aiops cluster up --real-node` as
`python -m aiops.cluster.dns --kubeconfig K --listen NODE_IP --node NODE`, with the node's
own credentials (it reads Services and the node's pods, as a kubelet does).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config

TTL_S = 5
REFRESH_S = 1.0
A, AAAA, IN = 1, 28, 1
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3


@dataclass
class Records:
    """Lower-case name (no trailing dot) -> IPv4 addresses, read at `read_at`."""

    names: dict[str, list[str]] = field(default_factory=dict)
    read_at: float = 0.0


def _items(response: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def read_records(api: client.CoreV1Api, domain: str, node: str | None = None) -> Records:
    # Raw JSON (no model objects): a few fields of every pod, once a second. With `node`, only
    # that node's pods: the others (kwok's) have no address anyone can reach, and a node's own
    # credentials may list only its pods.
    on_node = f"spec.nodeName={node}" if node else None
    pods = _items(api.list_pod_for_all_namespaces(field_selector=on_node, _preload_content=False))
    services = _items(api.list_service_for_all_namespaces(_preload_content=False))
    names: dict[str, list[str]] = {}
    for svc in services:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        ip = svc["spec"].get("clusterIP")
        fqdn = f"{name}.{ns}.svc.{domain}"
        if ip and ip != "None":
            names[fqdn] = [ip]
            continue
        selector: dict[str, str] = svc["spec"].get("selector") or {}
        names[fqdn] = [
            p["status"]["podIP"]
            for p in pods
            if p["metadata"]["namespace"] == ns
            and selector
            and p.get("status", {}).get("podIP")
            and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
    for p in pods:
        spec, ip = p.get("spec", {}), p.get("status", {}).get("podIP")
        if spec.get("hostname") and spec.get("subdomain") and ip:
            ns = p["metadata"]["namespace"]
            names[f"{spec['hostname']}.{spec['subdomain']}.{ns}.svc.{domain}"] = [ip]
    return Records({k.lower(): v for k, v in names.items()}, time.monotonic())


def parse_question(packet: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, name, qtype, end of question) of a one-question query, None if malformed."""
    if len(packet) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        return None
    labels, i = [], 12
    while i < len(packet):
        n = packet[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(packet):
            return None
        labels.append(packet[i : i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[i : i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, i + 4


def answer(packet: bytes, lookup: dict[str, list[str]]) -> bytes | None:
    q = parse_question(packet)
    if q is None:
        return None
    qid, flags, name, qtype, end = q
    rd = flags & 0x0100
    ips = lookup.get(name)
    rcode = NXDOMAIN if ips is None else NOERROR
    records = b""
    count = 0
    if ips and qtype == A:
        for ip in ips:
            # The name is a pointer to the question's (offset 12).
            records += struct.pack("!HHHIH", 0xC00C, A, IN, TTL_S, 4)
            records += ipaddress.IPv4Address(ip).packed
            count += 1
    header = struct.pack("!HHHHHH", qid, 0x8080 | rd | rcode, 1, count, 0, 0)
    return header + packet[12:end] + records


def serve(
    api: client.CoreV1Api, listen: str, port: int, domain: str, node: str | None = None
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((listen, port))
    records = Records()
    while True:
        packet, peer = sock.recvfrom(4096)
        if time.monotonic() - records.read_at > REFRESH_S:
            try:
                records = read_records(api, domain, node)
            except Exception as exc:  # the API is down a moment: answer from what was read
                print(f"aiops-dns: reading the API failed: {exc}", file=sys.stderr, flush=True)
                # And try again a refresh later, not on every query.
                records = Records(records.names, time.monotonic())
        reply = answer(packet, records.names)
        if reply is not None:
            sock.sendto(reply, peer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--listen", required=True, help="the node's address")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--domain", default="cluster.local")
    parser.add_argument("--node", help="only this node's pods (the real node's name)")
    args = parser.parse_args(argv)
    config.load_kube_config(config_file=args.kubeconfig)
    serve(client.CoreV1Api(), args.listen, args.port, args.domain, args.node)


if __name__ == "__main__":
    main()
