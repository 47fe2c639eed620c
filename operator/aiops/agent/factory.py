"""Builds the model agent and its toolbox for the incident loop, from the operator's settings
(`aiops.settings.OperatorSettings`): the Anthropic base URL, the refusal limits, the kubectl
the read-only tool runs, and the kubeconfig outside a pod."""

from __future__ import annotations

import shutil
from typing import Any

from aiops.agent.anthropic_agent import AgentDefaults, AnthropicAgent
from aiops.agent.tools import IncidentTools, PreviewFn
from aiops.api import Subject
from aiops.kube import CustomResources
from aiops.redact import Redactor
from aiops.settings import OperatorSettings
from aiops.subjects.binding import Bound


def agent_defaults(settings: OperatorSettings) -> AgentDefaults:
    return AgentDefaults(
        max_refused_per_turn=settings.agent_max_refused_per_turn,
        max_refused_per_session=settings.agent_max_refused_per_session,
    )


def anthropic_agent(
    subject: Subject, api_key: str, redactor: Redactor, settings: OperatorSettings
) -> AnthropicAgent:
    # Per-subject model and budgets are read from the Subject by the agent itself.
    return AnthropicAgent(
        api_key=api_key,
        base_url=settings.anthropic_base_url,
        redactor=redactor,
        defaults=agent_defaults(settings),
    )


def toolbox(
    *,
    api: CustomResources,
    bound: Bound,
    subject: Subject,
    preview: PreviewFn,
    redactor: Redactor,
    settings: OperatorSettings,
    **_: Any,
) -> IncidentTools:
    return IncidentTools(
        bound.plugin,
        bound.ctx.prometheus,
        api.api_client,
        subject.metadata.namespace or "default",
        # Without AIOPS_KUBECTL and without kubectl on PATH, the read tool is not offered.
        settings.kubectl or shutil.which("kubectl"),
        preview,
        redactor,
        invariants=bound.invariants,
        kubeconfig=settings.kubeconfig,
    )
