"""A pod cut off from its peers by a NetworkPolicy: the partition fault of pods workloads.

The pod is labelled `aiops.dev/chaos-partition=<policy>` and the policy, named for the fault
and the pod, selects that label and allows nothing in the directions it lists: the pod
neither reaches nor is reached by any other pod (nor anything else) while it stands. The
revert deletes the policy and takes the label off; both are found by name, so a revert after
an operator restart, or a second one, needs no memory of the injection.

It takes a network plugin that enforces NetworkPolicy (kind's kindnet does since v0.24,
Calico and Cilium do); on one that does not, the policy is created and changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Literal, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from aiops.subjects.contract import ActionResult, PluginError
from aiops.subjects.faults import PREFIX

LABEL = "aiops.dev/chaos-partition"
Direction = Literal["both", "ingress", "egress"]
_MAX_NAME = 63  # a label value's limit, and the policy's name is the label's value


def policy_name(fault: str, pod: str) -> str:
    """`aiops-chaos-<fault>-<pod>` as a DNS label; a long one is cut and made unique by a
    hash of the whole."""
    name = f"{PREFIX}{fault}-{pod}".lower().replace("_", "-").replace(".", "-")
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: _MAX_NAME - 11].rstrip('-')}-{digest}"


def policy_types(direction: Direction) -> list[str]:
    return {"both": ["Ingress", "Egress"], "ingress": ["Ingress"], "egress": ["Egress"]}[direction]


def manifest(name: str, namespace: str, direction: Direction) -> dict[str, Any]:
    """A policy that selects the labelled pod and allows nothing: listed policy types with
    no rules deny all traffic of those types."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "aiops", LABEL: name},
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL: name}},
            "policyTypes": policy_types(direction),
        },
    }


def _refused(what: str, err: ApiException) -> PluginError:
    return PluginError(f"{what}: HTTP {err.status} {err.reason}")


class Partitions:
    """Partitions of pods in one namespace."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.core = k8s.CoreV1Api(api_client)
        self.net = k8s.NetworkingV1Api(api_client)
        self.namespace = namespace

    async def isolate(self, pod: str, name: str, direction: Direction) -> ActionResult:
        # The client takes a plain dict as well as its model classes.
        body = cast(Any, manifest(name, self.namespace, direction))
        try:
            await asyncio.to_thread(self.net.create_namespaced_network_policy, self.namespace, body)
            made = "created"
        except ApiException as err:
            if err.status != 409:
                raise _refused(f"creating NetworkPolicy {self.namespace}/{name}", err) from err
            await asyncio.to_thread(
                self.net.replace_namespaced_network_policy, name, self.namespace, body
            )
            made = "replaced"
        # The policy first, then the label: until both stand nothing is cut, and a revert
        # removes either whichever of them exists.
        try:
            await asyncio.to_thread(
                self.core.patch_namespaced_pod,
                pod,
                self.namespace,
                {"metadata": {"labels": {LABEL: name}}},
            )
        except ApiException as err:
            raise _refused(
                f"labelling pod {self.namespace}/{pod} for NetworkPolicy {name} ({made})", err
            ) from err
        return ActionResult(
            ok=True,
            message=f"pod {self.namespace}/{pod} cut off "
            f"({' and '.join(policy_types(direction)).lower()}) by "
            f"NetworkPolicy {name} ({made})",
        )

    async def heal(self, pod: str, name: str) -> ActionResult:
        done: list[str] = []
        try:
            await asyncio.to_thread(self.net.delete_namespaced_network_policy, name, self.namespace)
            done.append(f"NetworkPolicy {name} deleted")
        except ApiException as err:
            if err.status != 404:
                raise _refused(f"deleting NetworkPolicy {self.namespace}/{name}", err) from err
            done.append(f"NetworkPolicy {name} was already gone")
        done.append(await self._unlabel(pod, name))
        return ActionResult(ok=True, message=f"pod {self.namespace}/{pod}: " + "; ".join(done))

    async def _unlabel(self, pod: str, name: str) -> str:
        try:
            current = await asyncio.to_thread(self.core.read_namespaced_pod, pod, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return "the pod is gone (its label with it)"
            raise _refused(f"reading pod {self.namespace}/{pod}", err) from err
        labels = (current.metadata.labels if current.metadata else None) or {}
        if labels.get(LABEL) != name:
            return f"no {LABEL}={name} label on it"
        try:
            # A merge patch with null removes the label.
            await asyncio.to_thread(
                self.core.patch_namespaced_pod,
                pod,
                self.namespace,
                {"metadata": {"labels": {LABEL: None}}},
            )
        except ApiException as err:
            if err.status == 404:
                return "the pod is gone (its label with it)"
            raise _refused(f"unlabelling pod {self.namespace}/{pod}", err) from err
        return f"label {LABEL} removed"
