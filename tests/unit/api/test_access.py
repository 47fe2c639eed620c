"""Separation of duties as crds/ ships it: the operator cannot approve; people cannot write
status; the admission policy ties an Approval to its requester."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.api import GROUP, KINDS, Approval, Incident
from aiops.api.access import APPROVAL_POLICY

CRDS = Path(__file__).resolve().parents[3] / "crds"
WRITE = ("create", "update", "patch", "delete", "deletecollection")


def role(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CRDS / "rbac" / f"{name}.yaml").read_text())
    return loaded


def allows(role: dict[str, Any], verb: str, resource: str, group: str = GROUP) -> bool:
    """RBAC's own matching, wildcards included: any rule that covers the request grants it."""
    return any(
        group in r["apiGroups"] or "*" in r["apiGroups"]
        for r in role["rules"]
        if (verb in r["verbs"] or "*" in r["verbs"])
        and (
            resource in r["resources"]
            or "*" in r["resources"]
            or (resource.endswith("/status") and "*/status" in r["resources"])
        )
    )


def test_the_evaluator_sees_wildcards() -> None:
    wild = {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    assert allows(wild, "create", "approvals")
    assert not allows({"rules": []}, "get", "approvals")


@pytest.mark.parametrize("verb", WRITE)
def test_operator_cannot_write_approvals(verb: str) -> None:
    assert not allows(role("aiops-operator"), verb, Approval.PLURAL)


def test_operator_reads_approvals_and_runs_the_loops() -> None:
    operator = role("aiops-operator")
    # The incident loop lists an incident's Approvals; nothing gets or watches one.
    assert allows(operator, "list", Approval.PLURAL)
    for verb in ("get", "watch"):
        assert not allows(operator, verb, Approval.PLURAL)
    assert allows(operator, "create", Incident.PLURAL)
    for kind in KINDS:
        assert allows(operator, "patch", f"{kind.PLURAL}/status")
    assert allows(operator, "create", "events", group="")
    assert allows(operator, "delete", "pods", group="")
    # kopf and aiops.kube patch, never update (PUT): the role grants what the code calls.
    for kind in KINDS:
        for resource in (kind.PLURAL, f"{kind.PLURAL}/status"):
            assert not allows(operator, "update", resource), resource


def test_operator_drives_chaos_and_its_fault_executors() -> None:
    operator = role("aiops-operator")
    assert allows(operator, "patch", "chaos")  # kopf's finalizer: the revert before deletion
    assert allows(operator, "patch", "chaos/status")
    assert not allows(operator, "delete", "chaos")  # people end a Chaos, not the operator
    for verb in ("create", "delete"):
        assert allows(operator, verb, "networkpolicies", group="networking.k8s.io")
    assert allows(operator, "create", "pods/exec", group="")
    assert allows(operator, "patch", "pods", group="")


def test_people_approve_but_never_write_status() -> None:
    sre = role("aiops-sre")
    assert allows(sre, "create", Approval.PLURAL)
    for verb in ("update", "patch", "delete"):
        assert not allows(sre, verb, Approval.PLURAL), verb
    for kind in KINDS:
        for verb in WRITE:
            assert not allows(sre, verb, f"{kind.PLURAL}/status")
    for kind in (k for k in KINDS if k is not Approval):
        assert allows(sre, "create", kind.PLURAL)


def test_viewer_is_read_only() -> None:
    viewer = role("aiops-viewer")
    for kind in KINDS:
        assert allows(viewer, "list", kind.PLURAL)
        assert not any(allows(viewer, verb, kind.PLURAL) for verb in WRITE)


def test_admission_policy_ties_approvals_to_their_requester() -> None:
    policy, binding = yaml.safe_load_all((CRDS / "approval-admission-policy.yaml").read_text())
    assert policy["kind"] == "ValidatingAdmissionPolicy"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [GROUP]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    # approvals only: approvals/status stays writable for the operator's bookkeeping.
    assert rule["resources"] == [Approval.PLURAL]
    (validation,) = policy["spec"]["validations"]
    assert validation["expression"] == "object.spec.approvedBy == request.userInfo.username"
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"] == {"policyName": APPROVAL_POLICY, "validationActions": ["Deny"]}
