"""A thin async layer over the official `kubernetes` client for our custom resources.

The client is synchronous; calls run in a worker thread so kopf's event loop never blocks.
Every method takes and returns plain dicts (the API's models convert at the edges).

The threads are a pool of their own (`API_THREADS`), with as many connections: asyncio's
default pool has min(32, CPUs + 4) threads (6 on a 2-CPU machine) and the client as many
connections as 5 per CPU, so the API calls of 1,000 Subjects queued behind 6 threads and their
throughput was 6 / the API server's latency, far below what the subject loop asks for
(docs/scale.md). A call waits on the network, not the CPU: more threads cost little.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops.api import GROUP, VERSION

log = logging.getLogger(__name__)

API_THREADS = 32
"""Threads (and connections) for API calls: at ~0.3 s a call on a busy API server, ~100 calls/s,
the subject loop's 2 per cycle of 1,000 Subjects every 30 s with room for incidents."""
_POOL = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="aiops-api")


def load_api_client(kubeconfig: str | None) -> client.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: `kubeconfig` (the settings' KUBECONFIG), or
    ~/.kube/config when None."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        # Passed explicitly: the client's own default was fixed when it was imported.
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = API_THREADS  # one connection per API thread
    return client.ApiClient(configuration)


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # As asyncio.to_thread, in the API pool: the caller's context (its log names) goes along.
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)


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
            GROUP,
            VERSION,
            namespace,
            plural,
            label_selector=label_selector,
            field_selector=field_selector,
        )
        return list(out.get("items", []))

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await _call(
            self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body
        )
        return result

    async def patch(
        self, plural: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of the object (its metadata, say; status has `patch_status`)."""
        result: dict[str, Any] = await _call(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body,
        )
        return result

    async def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event on `obj`, posted now and awaited (not queued), so that it exists once the
        caller goes on. Events are auxiliary: a failure is logged, never raised."""
        meta = obj["metadata"]
        now = datetime.now(UTC).isoformat()
        body = {
            "metadata": {"generateName": f"{meta['name'][:200]}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": obj.get("kind", ""),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "aiops"},
            "reportingComponent": "aiops",
            # The pod's name in a pod (its hostname), the machine's elsewhere.
            "reportingInstance": socket.gethostname()[:128] or "aiops",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await _call(self.core.create_namespaced_event, meta["namespace"], body)
        except Exception as err:  # an Event is a courtesy: a lost one never fails the step
            log.warning(
                "could not post Event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], err
            )

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of `.status` (lists are replaced whole, maps merged)."""
        result: dict[str, Any] = await _call(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
        )
        return result
