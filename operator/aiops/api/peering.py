"""kopf's peering resources (KopfPeering, ClusterKopfPeering; group kopf.dev), which several
operator replicas use to agree that exactly one of them handles events. They are kopf's, not
ours: the schema is kopf's own (each replica keeps its keep-alive under `status.<identity>`),
generated into crds/ beside ours so that `kubectl apply -f crds/` and the chart install them."""

from typing import Any

from aiops.api.access import LABELS

PEERING_GROUP = "kopf.dev"
NAMESPACED = ("KopfPeering", "kopfpeerings", "kopfpeering")
CLUSTER = ("ClusterKopfPeering", "clusterkopfpeerings", "clusterkopfpeering")


def _crd(kind: str, plural: str, singular: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{PEERING_GROUP}", "labels": LABELS},
        "spec": {
            "scope": scope,
            "group": PEERING_GROUP,
            "names": {"kind": kind, "plural": plural, "singular": singular},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    # No status subresource: kopf patches status through the object itself.
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def peering_crds() -> list[dict[str, Any]]:
    """The namespaced peering (an operator watching namespaces) and the cluster one (-A)."""
    return [_crd(*NAMESPACED, "Namespaced"), _crd(*CLUSTER, "Cluster")]
