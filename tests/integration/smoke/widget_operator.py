"""A tiny kopf operator for the smoke test: it marks every Widget as seen in its status."""

from typing import Any

import kopf


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # KUBECONFIG as the test set it, not as it was when the kubernetes client was imported.
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.create("smoke.aiops.dev", "v1", "widgets")
def widget_created(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = "Seen"
    patch.status["doubled"] = int(spec.get("size", 0)) * 2
