"""A thin async layer over the official `kubernetes` client for our custom resources.

The client is synchronous; calls run in a worker thread so kopf's event loop never blocks.
Every method takes and returns plain dicts (the API's models convert at the edges).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops.api import GROUP, VERSION


def load_api_client() -> client.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: KUBECONFIG or ~/.kube/config."""
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        # Read KUBECONFIG now: the client's own default was fixed when it was imported.
        return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def is_conflict(err: Exception) -> bool:
    return isinstance(err, ApiException) and err.status == 409


def is_not_found(err: Exception) -> bool:
    return isinstance(err, ApiException) and err.status == 404


class CustomResources:
    """get/list/create/patch of aiops.dev objects, and the status subresource."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await _call(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
        )
        return result

    async def list(
        self, plural: str, namespace: str, label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        out = await _call(
            self.custom.list_namespaced_custom_object,
            GROUP, VERSION, namespace, plural,
            label_selector=label_selector, field_selector=field_selector,
        )
        return list(out.get("items", []))

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await _call(
            self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body
        )
        return result

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of `.status` (lists are replaced whole, maps merged)."""
        result: dict[str, Any] = await _call(
            self.custom.patch_namespaced_custom_object_status,
            GROUP, VERSION, namespace, plural, name, {"status": status},
        )
        return result
