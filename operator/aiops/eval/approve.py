"""A variant with `approve: true` approves, as the kubeconfig's user, every step of its trial's
Incident that waits for an Approval: the same Approval a person's `aiops approve --yes` makes
(steps by id, each with its digest, `approvedBy` checked by the API server's admission
policy), made in-process so that time in approval is the loop's, not a process start's."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from aiops.api import Approval, Incident
from aiops.api.approval import step_digest
from aiops.eval.cluster import EvalApi
from aiops.vocabulary import ApprovalDecision, Verdict


def whoami(api_client: client.ApiClient) -> str:
    review: Any = client.AuthenticationV1Api(api_client).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},  # type: ignore[arg-type]
    )
    return str(review.status.user_info.username)


def approve_waiting(api: EvalApi, user: str, incident: Incident, reason: str) -> list[str]:
    """Approves the steps waiting for approval; returns their ids ([] when none waits)."""
    waiting = [p for p in incident.status.proposed_actions if p.decision == Verdict.AWAIT_APPROVAL]
    if not waiting:
        return []
    uid = incident.metadata.uid or ""
    name = incident.metadata.name or ""
    body = {
        "apiVersion": Approval.API_VERSION,
        "kind": Approval.KIND,
        "metadata": {"generateName": f"{name[:200]}-eval-"},
        "spec": {
            "incident": name,
            "incidentUid": uid,
            "actions": [p.id for p in waiting],
            "decision": ApprovalDecision.APPROVE.value,
            "approvedBy": user,
            "digests": {p.id: step_digest(uid, p.id, p.action, p.params) for p in waiting},
            "reason": reason,
        },
    }
    api.create(Approval.PLURAL, incident.metadata.namespace or "default", body)
    return [p.id for p in waiting]
