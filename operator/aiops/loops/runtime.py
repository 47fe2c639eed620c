"""The incident loop's `Runtime` (what every incident shares) and `LoopSettings`, and how the
operator builds them from its settings (`aiops.settings.OperatorSettings`): where the audit log
lives, which agent investigates a Subject, the global action switch, and the loop's timing."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kubernetes import client as k8s

from aiops.agent.runbook_agent import RunbookAgent
from aiops.api import Subject
from aiops.kube import CustomResources, is_not_found
from aiops.loops import loglines
from aiops.loops.checkpoint import FileCheckpoint
from aiops.loops.transitions import TransitionHub
from aiops.policy.gate import GateSettings
from aiops.redact import Redactor
from aiops.settings import OperatorSettings

SWITCH = "aiops-switch"


@dataclass(frozen=True)
class LoopSettings:
    approval_timeout: timedelta = timedelta(minutes=30)
    verify_timeout: timedelta = timedelta(seconds=60)
    verify_interval: float = 1.0
    action_timeout: float = 120.0
    kubectl: str = "kubectl"  # the binary the kubectl action runs (AIOPS_KUBECTL)
    max_concurrent_sessions: int = 8  # investigations at once (AIOPS_MAX_CONCURRENT_SESSIONS)
    gate: GateSettings = field(default_factory=GateSettings)


AgentFactory = Callable[[Subject], Awaitable[Any]]  # -> an Agent, or raises ValueError
ToolsFactory = Callable[..., Any]  # -> a Toolbox
Audit = Callable[[str, str, str, dict[str, Any]], Awaitable[Any]]  # ns, name, kind, data


@dataclass
class Runtime:
    """What every incident shares: clients, settings, and the agent and tool factories."""

    api: CustomResources
    audit: Audit
    agent_for: AgentFactory
    tools_for: ToolsFactory
    checkpoint_for: Callable[[str, str], Any]
    actions_stopped: Callable[[], Awaitable[bool]]
    settings: LoopSettings = field(default_factory=LoopSettings)
    # The operator's one redactor (its API keys registered): every string written into an
    # Incident's status or an Event goes through it.
    redactor: Redactor = field(default_factory=Redactor)
    # One per Subject (namespace/name). An incident checks the Subject's cooldown and blast
    # radius and records its action as Running under it, so two incidents of one Subject
    # never both pass those checks before either has recorded its action.
    subject_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Phase changes of Incidents and Chaos, for logs, notifications and metrics to follow.
    transitions: TransitionHub = field(default_factory=TransitionHub)
    # Bounds the investigations running at once (settings.max_concurrent_sessions): each holds
    # the model's conversation, and a flood of Incidents must not become a flood of sessions.
    sessions: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = asyncio.Semaphore(self.settings.max_concurrent_sessions)

    def subject_lock(self, namespace: str, subject: str) -> asyncio.Lock:
        return self.subject_locks.setdefault(f"{namespace}/{subject}", asyncio.Lock())


def loop_settings(settings: OperatorSettings) -> LoopSettings:
    return LoopSettings(
        approval_timeout=settings.approval_timeout,
        verify_timeout=settings.verify_timeout,
        gate=GateSettings(actions_per_incident=settings.actions_per_incident),
        kubectl=settings.kubectl_binary,
        max_concurrent_sessions=settings.max_concurrent_sessions,
    )


def build_runtime(api: CustomResources, settings: OperatorSettings) -> Runtime:
    from aiops.audit import AuditLog  # the audit package is the only writer of logs

    root = settings.audit_dir
    # One redactor for the audit log, Incident status and Events; every API key the operator
    # loads is registered in it, so a key of any shape is masked wherever it would be written.
    redactor = Redactor()
    redactor.register(settings.api_key or "")  # before anything is written
    log = AuditLog(root, redactor)
    core = k8s.CoreV1Api(api.api_client)
    operator_ns = settings.operator_namespace

    async def audit(namespace: str, name: str, kind: str, data: dict[str, Any]) -> Any:
        appended = await log.aappend(namespace, name, kind, data)
        loglines.audited(namespace, name, kind, data)  # decisions and actions: logged too
        return appended

    async def actions_stopped() -> bool:
        try:
            cm = await asyncio.to_thread(core.read_namespaced_config_map, SWITCH, operator_ns)
        except Exception as err:
            return not is_not_found(err)  # cannot tell: fail safe, no action runs
        return bool((cm.data or {}).get("actions", "").strip().lower() == "stopped")

    async def api_key_for(subject: Subject) -> str | None:
        ref = subject.spec.agent.api_key_secret_ref if subject.spec.agent else None
        if ref is None:
            key = settings.api_key
            if key:
                redactor.register(key)
            return key
        secret = await asyncio.to_thread(
            core.read_namespaced_secret, ref.name, subject.metadata.namespace or "default"
        )
        raw = (secret.data or {}).get(ref.key)
        if raw is None:
            raise ValueError(f"Secret {ref.name} has no key {ref.key}")
        key = base64.b64decode(raw).decode().strip()
        redactor.register(key)
        return key

    async def agent_for(subject: Subject) -> Any:
        backend = subject.spec.agent.backend if subject.spec.agent else "auto"
        if backend == "runbook":
            return RunbookAgent()
        key = await api_key_for(subject)
        if key is None:
            if backend == "anthropic":
                raise ValueError("agent backend anthropic, but no API key is configured")
            return RunbookAgent()
        from aiops.agent.factory import anthropic_agent

        return anthropic_agent(subject, key, redactor, settings)

    def tools_for(**kwargs: Any) -> Any:
        from aiops.agent.factory import toolbox

        return toolbox(api=api, redactor=redactor, settings=settings, **kwargs)

    def checkpoint_for(namespace: str, name: str) -> FileCheckpoint:
        return FileCheckpoint(root / namespace / f"{name}.checkpoint.json")

    return Runtime(
        api=api,
        audit=audit,
        agent_for=agent_for,
        tools_for=tools_for,
        checkpoint_for=checkpoint_for,
        actions_stopped=actions_stopped,
        settings=loop_settings(settings),
        redactor=redactor,
    )


def runtime_of(memo: Any) -> Runtime:
    """The Runtime the `configure` startup handler put in kopf's memo, for the other startup
    handlers. Not there yet: kopf runs the caller again soon. Never coming, because the
    settings were refused: a PermanentError, so that kopf stops at start instead of retrying
    the caller forever (kopf ends the startup only when every handler has finished)."""
    import kopf

    runtime = getattr(memo, "runtime", None)
    if runtime is not None:
        return runtime
    refused = getattr(memo, "settings_refused", None)
    if refused:
        raise kopf.PermanentError(f"not started: {refused}")
    raise kopf.TemporaryError("waiting for the operator's runtime", delay=0.5)
