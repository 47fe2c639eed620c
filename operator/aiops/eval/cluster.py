"""The run's view of the API server: aiops objects by namespace, and the Secret an anthropic
variant's key goes into. Synchronous (the runner polls; parallel Subjects use threads)."""

from __future__ import annotations

import base64
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api import GROUP, VERSION

LABEL_RUN = "aiops.dev/eval-run"
LABEL_TRIAL = "aiops.dev/eval-trial"


class EvalApi:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def list(self, plural: str, namespace: str, labels: str | None = None) -> list[dict[str, Any]]:
        out = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, label_selector=labels or ""
            ),
        )
        return list(out.get("items", []))

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body),
        )

    def delete(self, plural: str, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as err:
            if err.status != 404:
                raise

    def patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch (the client sends a dict as one; None removes a field)."""
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch)

    def secret_keys(self, namespace: str, name: str) -> set[str] | None:
        """The keys of a Secret, or None when there is none (its values are not read)."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return set((secret.data or {}).keys())

    def put_secret(self, namespace: str, name: str, key: str, value: str) -> None:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/part-of": "aiops"}),
            data={key: base64.b64encode(value.encode()).decode()},
        )
        try:
            self.core.create_namespaced_secret(namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise
            self.core.replace_namespaced_secret(name, namespace, body)
