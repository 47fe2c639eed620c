"""The aiops API (group aiops.dev, version v1alpha1): pydantic models, the single source.

`aiops crds` generates crds/ from these models (see `aiops.api.crdgen`); a test fails when
crds/ is stale. Code that talks to the API server uses the models and the names here:

    incident = Incident.from_k8s(body)
    api.create_namespaced_custom_object(GROUP, VERSION, ns, Incident.PLURAL, incident.to_k8s())
"""

from aiops.api.approval import Approval, ApprovalSpec, ApprovalStatus
from aiops.api.chaos import Chaos, ChaosSpec, ChaosStatus, ChaosTarget
from aiops.api.common import (
    API_VERSION,
    CATEGORY,
    GROUP,
    VERSION,
    Condition,
    LabelSelector,
    ObjectMeta,
    OwnerReference,
    Resource,
)
from aiops.api.durations import format_duration, to_timedelta
from aiops.api.incident import (
    AgentUsage,
    Diagnosis,
    DryRun,
    Evidence,
    ExecutedAction,
    Incident,
    IncidentSpec,
    IncidentStatus,
    ProposedAction,
    TimelineEntry,
)
from aiops.api.subject import (
    AgentSpec,
    Detection,
    InvariantOverride,
    Member,
    PendingBreach,
    PrometheusRef,
    SecretKeyRef,
    Subject,
    SubjectSpec,
    SubjectStatus,
    SupervisorWorkload,
    Workload,
)

KINDS: tuple[type[Resource], ...] = (Subject, Incident, Approval, Chaos)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "VERSION",
    "AgentSpec",
    "AgentUsage",
    "Approval",
    "ApprovalSpec",
    "ApprovalStatus",
    "Chaos",
    "ChaosSpec",
    "ChaosStatus",
    "ChaosTarget",
    "Condition",
    "Detection",
    "Diagnosis",
    "DryRun",
    "Evidence",
    "ExecutedAction",
    "Incident",
    "IncidentSpec",
    "IncidentStatus",
    "InvariantOverride",
    "LabelSelector",
    "Member",
    "ObjectMeta",
    "OwnerReference",
    "PendingBreach",
    "PrometheusRef",
    "ProposedAction",
    "Resource",
    "SecretKeyRef",
    "Subject",
    "SubjectSpec",
    "SubjectStatus",
    "SupervisorWorkload",
    "TimelineEntry",
    "Workload",
    "format_duration",
    "to_timedelta",
]
