"""A plugin instance bound to one generation of a Subject's spec: the plugin class found by
type, its config validated, the invariants with overrides applied, and its context (Prometheus,
workload). The subject loop and the incident loop both bind through here."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client as k8s
from pydantic import ValidationError

from aiops.api import GROUP, VERSION, Incident, Subject
from aiops.subjects import registry
from aiops.subjects.context import PluginContext, Records, no_records
from aiops.subjects.contract import ActionRecord, Invariant, SubjectPlugin
from aiops.subjects.detection import effective_invariants
from aiops.subjects.metrics import Prometheus
from aiops.subjects.workload import PodsWorkload, SupervisorWorkload, Workload


class SubjectProblem(Exception):
    """The Subject cannot be served as specified; `reason` goes into its Ready condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Bound:
    generation: int
    plugin: SubjectPlugin
    ctx: PluginContext
    invariants: dict[str, Invariant]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.plugin.close()
        await self.ctx.aclose()


def bind(subject: Subject, api_client: Any) -> Bound:
    """Raises `SubjectProblem` with a precise reason and message."""
    spec = subject.spec
    namespace = subject.metadata.namespace or "default"
    try:
        plugin_cls = registry.load(spec.type)
    except registry.UnknownSubjectType as err:
        raise SubjectProblem("UnknownType", str(err)) from err
    except Exception as err:  # a plugin that fails to import is that plugin's problem
        raise SubjectProblem("PluginBroken", f"plugin {spec.type!r} failed to load: {err}") from err
    try:
        config = registry.validate_config(plugin_cls, dict(spec.config))
    except registry.InvalidConfig as err:
        raise SubjectProblem("InvalidConfig", str(err)) from err
    try:
        invariants = effective_invariants(plugin_cls.invariants, list(spec.invariants))
    except ValueError as err:
        raise SubjectProblem("InvalidInvariants", str(err)) from err
    ctx = PluginContext(
        subject=f"{namespace}/{subject.metadata.name}",
        prometheus=Prometheus(spec.prometheus.url) if spec.prometheus else None,
        workload=workload_of(subject, api_client),
        records=records_of(subject, api_client),
    )
    try:
        plugin = plugin_cls(config, ctx)
    except Exception as err:  # e.g. an action declared without its method (subjects.dispatch)
        # A constructor cannot await, so ctx.http has opened nothing yet: nothing to close.
        message = f"plugin {spec.type!r} failed to start: {err}"
        raise SubjectProblem("PluginBroken", message) from err
    return Bound(subject.metadata.generation or 0, plugin, ctx, invariants)


def records_of(subject: Subject, api_client: Any) -> Records:
    """The Subject's actions on record: every executedActions entry of its Incidents."""
    if api_client is None:
        return no_records
    custom = k8s.CustomObjectsApi(api_client)
    namespace = subject.metadata.namespace or "default"
    selector = f"spec.subject={subject.metadata.name}"

    async def records() -> list[ActionRecord]:
        listed = cast(
            dict[str, Any],
            await asyncio.to_thread(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                Incident.PLURAL,
                field_selector=selector,
                _request_timeout=10,
            ),
        )
        out = []
        for obj in listed.get("items", []):
            try:
                incident = Incident.from_k8s(obj)
            except ValidationError:  # not one this operator wrote: it records nothing of ours
                continue
            for a in incident.status.executed_actions:
                out.append(
                    ActionRecord(
                        incident=incident.metadata.name,
                        action=a.action,
                        params=dict(a.params),
                        key=a.idempotency_key,
                        started_at=a.started_at,
                        result=a.result,
                        undone=a.undone,
                        message=a.message or "",
                    )
                )
        return out

    return records


def workload_of(subject: Subject, api_client: Any) -> Workload | None:
    w = subject.spec.workload
    if w is None:
        return None
    if w.kind == "supervisor" and w.supervisor is not None:
        return SupervisorWorkload(w.supervisor.url, dict(w.supervisor.programs))
    if w.kind == "pods" and w.selector is not None:
        return PodsWorkload(
            pods_namespace(subject), dict(w.selector.match_labels), k8s.CoreV1Api(api_client)
        )
    return None


def pods_namespace(subject: Subject) -> str:
    """The namespace of a pods workload: the Subject's own. Whoever may create a Subject in
    one namespace must not get the operator to delete pods in another (the operator's role
    reaches every namespace it watches), so `spec.workload.namespace` may only repeat it;
    CEL cannot see an object's namespace, so this is checked here, when the Subject binds."""
    own = subject.metadata.namespace or "default"
    w = subject.spec.workload
    if w is not None and w.namespace not in (None, own):
        raise SubjectProblem(
            "WorkloadNamespace",
            f"spec.workload.namespace is {w.namespace}, not the Subject's own namespace {own}: "
            f"a Subject acts only on pods in its own namespace; create the Subject in "
            f"{w.namespace} instead",
        )
    return own
