"""The local control plane: a real kube-apiserver, etcd, controller-manager and scheduler with
kwok's simulated nodes, run by kwokctl's binary runtime from binaries built in hack/tools."""

from aiops.cluster.errors import ClusterError
from aiops.cluster.local import ClusterStatus, LocalCluster

__all__ = ["ClusterError", "ClusterStatus", "LocalCluster"]
