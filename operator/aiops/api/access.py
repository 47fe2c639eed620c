"""Who may do what with the API: ClusterRoles, and the Approval admission policy.

Separation of duties is enforced by the API server, not by our code: the operator's role
cannot create, update or patch Approvals, and a ValidatingAdmissionPolicy admits an Approval
only when spec.approvedBy is the user making the request. These objects are generated into
crds/ next to the CRDs, from the same names.
"""

from typing import Any

from aiops.api import GROUP, KINDS, Approval, Chaos, Incident, Subject

OPERATOR_ROLE = "aiops-operator"
SRE_ROLE = "aiops-sre"
VIEWER_ROLE = "aiops-viewer"
APPROVAL_POLICY = "aiops-approval-separation-of-duties"

READ = ["get", "list", "watch"]
LABELS = {"app.kubernetes.io/part-of": "aiops"}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _cluster_role(
    name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {**LABELS, **(labels or {})}},
        "rules": rules,
    }


def operator_role() -> dict[str, Any]:
    """The operator's ServiceAccount: everything its loops need, and no way to approve."""
    watched = [Subject.PLURAL, Incident.PLURAL, Chaos.PLURAL]
    # Exactly the verbs the operator's code and kopf call (the real-node e2e test compares this
    # with the API server's audit log of a run): kopf and `aiops.kube` only ever PATCH, never
    # PUT (update), and nothing watches what the agent's tools only list and read.
    return _cluster_role(
        OPERATOR_ROLE,
        [
            # patch: finalizers and kopf's annotations; no delete, people delete.
            _rule([GROUP], watched, [*READ, "patch"]),
            # The subject loop opens Incidents.
            _rule([GROUP], [Incident.PLURAL], ["create"]),
            _rule([GROUP], [f"{k.PLURAL}/status" for k in KINDS], ["patch"]),
            # Read-only, listed by incident: approving is a person's job (approval_policy()).
            _rule([GROUP], [Approval.PLURAL], ["list"]),
            # kopf and the loops post Events (core v1); the agent's tools read them.
            _rule([""], ["events"], ["get", "list", "create"]),
            # The agent's read-only tools (never secrets: see aiops.agent.tools).
            _rule([""], ["services", "configmaps"], ["get", "list"]),
            # Observation of pods workloads, pod-kill faults and restart actions; patch: the
            # label a partition fault puts on its pod (and takes off at the revert).
            _rule([""], ["pods"], ["get", "list", "delete", "patch"]),
            _rule([""], ["pods/log"], ["get"]),
            # Faults run inside a member's pod (a disk filled, netem delay): a websocket exec
            # needs get and, since Kubernetes 1.35, create. exec reaches every pod the role is
            # bound for: bind it in the subjects' namespaces only.
            _rule([""], ["pods/exec"], ["get", "create"]),
            # The partition fault: a NetworkPolicy it creates (replaces one left by a crash)
            # and its revert deletes.
            _rule(
                ["networking.k8s.io"], ["networkpolicies"], ["get", "create", "update", "delete"]
            ),
            _rule(["apps"], ["statefulsets", "deployments"], ["get", "list"]),
            # spec.agent.apiKeySecretRef; bind this role per namespace to narrow it.
            _rule([""], ["secrets"], ["get"]),
            # kopf: cluster-wide namespace watching and noticing API changes (cluster mode;
            # namespaced mode has the chart's discovery role for them).
            _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
            _rule([""], ["namespaces"], ["list", "watch"]),
            # Peering: aiops.loops.peering creates the object when it is not there yet and
            # patches its keep-alive; kopf lists and watches it.
            _rule(
                ["kopf.dev"],
                ["clusterkopfpeerings", "kopfpeerings"],
                ["list", "watch", "create", "patch"],
            ),
        ],
    )


def sre_role() -> dict[str, Any]:
    """People who run subjects: manage them, file Incidents, inject Chaos, and approve.

    No `*/status`: status is the operator's record of what happened.
    """
    managed = [Subject.PLURAL, Incident.PLURAL, Chaos.PLURAL]
    return _cluster_role(
        SRE_ROLE,
        [
            _rule([GROUP], managed, [*READ, "create", "update", "patch", "delete"]),
            # Approvals are immutable records: create, never edit or delete.
            _rule([GROUP], [Approval.PLURAL], [*READ, "create"]),
        ],
    )


def viewer_role() -> dict[str, Any]:
    """Read-only, aggregated into the built-in `view` role."""
    return _cluster_role(
        VIEWER_ROLE,
        [_rule([GROUP], [k.PLURAL for k in KINDS], READ)],
        labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"},
    )


def approval_policy() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding: an Approval is its requester's own.

    Only the approvals resource matches, not approvals/status, so the operator can still
    record what it did with an Approval.
    """
    api_version = "admissionregistration.k8s.io/v1"
    policy = {
        "apiVersion": api_version,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": APPROVAL_POLICY, "labels": LABELS},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [Approval.PLURAL],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.spec.approvedBy == request.userInfo.username",
                    "messageExpression": (
                        "'spec.approvedBy must be the user making the request: ' + "
                        "request.userInfo.username + ' cannot approve as ' + "
                        "object.spec.approvedBy"
                    ),
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": api_version,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": APPROVAL_POLICY, "labels": LABELS},
        "spec": {"policyName": APPROVAL_POLICY, "validationActions": ["Deny"]},
    }
    return [policy, binding]
