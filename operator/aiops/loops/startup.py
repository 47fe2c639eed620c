"""Operator-wide settings and shared clients, set once at startup."""

from __future__ import annotations

from typing import Any

import kopf

from aiops.kube import CustomResources, load_api_client
from aiops.loops.runtime import build_runtime


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the ServiceAccount; elsewhere: KUBECONFIG as it is now (the kubernetes
    client's own default is fixed when it is imported, which embedders and tests trip on)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our CRD schemas prune unknown status fields, so kopf keeps its bookkeeping in
    # annotations under our own prefix rather than in status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="aiops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="aiops.dev")
    settings.posting.level = 20  # INFO and above become Events
    settings.watching.server_timeout = 60
    memo.api = CustomResources(load_api_client())
    memo.runtime = build_runtime(memo.api)
