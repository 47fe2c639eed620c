"""Builds the model agent and its toolbox for the incident loop, from the operator's
environment: ANTHROPIC_BASE_URL (a stand-in server), AIOPS_KUBECTL (the kubectl the read-only
tool runs; default: the first on PATH), KUBECONFIG (outside a pod)."""

from __future__ import annotations

import os
import shutil
from typing import Any

from aiops.agent.anthropic_agent import AnthropicAgent
from aiops.agent.tools import IncidentTools, PreviewFn
from aiops.api import Subject
from aiops.kube import CustomResources
from aiops.redact import Redactor
from aiops.subjects.binding import Bound


def anthropic_agent(subject: Subject, api_key: str, redactor: Redactor) -> AnthropicAgent:
    # Per-subject model and budgets are read from the Subject by the agent itself.
    return AnthropicAgent(
        api_key=api_key,
        base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        redactor=redactor,
    )


def toolbox(
    *, api: CustomResources, bound: Bound, subject: Subject, preview: PreviewFn,
    redactor: Redactor, **_: Any,
) -> IncidentTools:
    return IncidentTools(
        bound.plugin,
        bound.ctx.prometheus,
        api.api_client,
        subject.metadata.namespace or "default",
        os.environ.get("AIOPS_KUBECTL") or shutil.which("kubectl"),
        preview,
        redactor,
        invariants=bound.invariants,
        kubeconfig=os.environ.get("KUBECONFIG") or None,
    )
