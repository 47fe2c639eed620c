"""The aiops API on the real API server: examples, kubectl's views, round trips, pruning,
defaults, field selectors, and who may write what."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api import (
    GROUP,
    KINDS,
    VERSION,
    AgentSpec,
    AgentUsage,
    Approval,
    Condition,
    Detection,
    Diagnosis,
    DryRun,
    Evidence,
    ExecutedAction,
    Incident,
    IncidentSpec,
    IncidentStatus,
    InvariantOverride,
    Member,
    ObjectMeta,
    PendingBreach,
    ProposedAction,
    Resource,
    SecretKeyRef,
    Subject,
    SubjectSpec,
    SubjectStatus,
    TimelineEntry,
    Workload,
)
from aiops.api.common import LabelSelector
from aiops.vocabulary import (
    Autonomy,
    ConditionStatus,
    Health,
    MemberState,
    Outcome,
    Phase,
    Risk,
    Severity,
    Source,
    Verdict,
)
from tests.fixtures.api_ns import EXAMPLES, ApiNamespace

pytestmark = pytest.mark.cluster

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def example(kind: type[Resource]) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{kind.SINGULAR}.yaml").read_text())
    return manifest


def eventually(check: Callable[[], str | None], timeout: float = 30) -> None:
    """Retries `check` (None: done, else what is still wrong) while the API server catches up."""
    deadline = time.monotonic() + timeout
    while (problem := check()) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(problem)
        time.sleep(0.5)


@dataclass
class Objects:
    """The custom objects API in the test namespace, as the operator's code calls it."""

    api: client.CustomObjectsApi
    namespace: str

    def create(
        self, kind: type[Resource], body: dict[str, Any], validation: str = "Strict"
    ) -> None:
        self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.PLURAL, body, field_validation=validation
        )

    def patch_status(self, kind: type[Resource], name: str, status: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, kind.PLURAL, name, {"status": status}
        )

    def get(self, kind: type[Resource], name: str) -> dict[str, Any]:
        obj = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.PLURAL, name
        )
        assert isinstance(obj, dict)
        return obj


def custom(api_ns: ApiNamespace) -> Objects:
    return Objects(client.CustomObjectsApi(api_ns.cluster.api_client()), api_ns.namespace)


def test_examples_apply_and_kubectl_get_aiops_lists_them(api_ns: ApiNamespace) -> None:
    for kind in KINDS:
        # The API server admits an Approval only from its approver.
        user = "alice" if kind is Approval else None
        proc = api_ns.apply(example(kind), as_user=user)
        assert proc.returncode == 0, f"{kind.KIND}: {proc.stderr}"

    proc = api_ns.kubectl("get", "aiops")
    assert proc.returncode == 0, proc.stderr
    # One table per kind, each with its own printer columns.
    tables = [line.split() for line in proc.stdout.splitlines() if line.startswith("NAME")]
    assert ["NAME", "SUBJECT", "INVARIANT", "SEVERITY", "PHASE", "AGE"] in tables
    assert ["NAME", "TYPE", "HEALTH", "OPEN", "INCIDENTS", "AUTONOMY", "AGE"] in tables
    assert ["NAME", "SUBJECT", "FAULT", "TARGET", "PHASE", "TIME", "LEFT", "AGE"] in tables
    assert ["NAME", "INCIDENT", "DECISION", "BY", "AGE"] in tables
    for kind in KINDS:
        assert f"{kind.SINGULAR}.{GROUP}/{example(kind)['metadata']['name']}" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("incident."))
    assert row.split()[1:4] == ["ratelimiter", "node_down", "critical"]


def test_short_names_reach_each_kind(api_ns: ApiNamespace) -> None:
    for kind in KINDS:
        for short in kind.SHORT_NAMES:
            proc = api_ns.kubectl("get", short)
            assert proc.returncode == 0, f"{short}: {proc.stderr}"


def test_kubectl_explain_describes_fields(api_ns: ApiNamespace) -> None:
    expected = {
        "incident.status.phase": "AwaitingApproval",
        "subject.spec.interval": "How often the subject is observed",
        "chaos.spec.target": "Which members (or which key) get the fault",
        "approval.spec.approvedBy": "kubectl auth whoami",
    }

    def described() -> str | None:
        for path, text in expected.items():
            proc = api_ns.kubectl("explain", path)
            if proc.returncode != 0 or text not in proc.stdout:
                return f"kubectl explain {path}: {proc.stdout or proc.stderr}"
        return None

    # The OpenAPI document is republished a moment after a CRD changes.
    eventually(described)


def full_subject(name: str) -> Subject:
    return Subject(
        metadata=ObjectMeta(name=name, labels={"team": "sre"}),
        spec=SubjectSpec(
            type="ratelimiter",
            config={"nodes": ["node-1", "node-2"], "redis": {"url": "redis://127.0.0.1:6379"}},
            workload=Workload(kind="pods", selector=LabelSelector(match_labels={"app": "rl"})),
            interval="15s",
            invariants=[
                InvariantOverride(name="node-down", for_="20s", severity=Severity.CRITICAL)
            ],
            autonomy=Autonomy.EXECUTE,
            agent=AgentSpec(
                backend="anthropic",
                max_turns=8,
                temperature=0.5,
                time_budget="2m",
                api_key_secret_ref=SecretKeyRef(name="anthropic", key="api-key"),
            ),
            observation_grace_period="45s",
        ),
        status=SubjectStatus(
            health=Health.DEGRADED,
            members=[
                Member(name="node-1", state=MemberState.UP),
                Member(name="node-2", state=MemberState.DOWN),
            ],
            conditions=[
                Condition(
                    type="Observing",
                    status=ConditionStatus.TRUE,
                    reason="Observed",
                    last_transition_time=T0,
                )
            ],
            open_incidents=1,
            last_observation_time=T0,
            detection=Detection(
                pending=[
                    PendingBreach(invariant="node-down", entity="node-2", since=T0, last_seen=T0),
                    PendingBreach(invariant="quorum", since=T0, last_seen=T0, incident="inc-1"),
                ]
            ),
            observed_generation=1,
        ),
    )


def full_incident(name: str) -> Incident:
    return Incident(
        metadata=ObjectMeta(name=name),
        spec=IncidentSpec(
            subject="ratelimiter",
            invariant="node-down",
            entity="node-2",
            severity=Severity.CRITICAL,
            summary="node-2 is down.",
            source=Source.SUBJECT_LOOP,
            evidence=[Evidence(kind="observation", text="connection refused", at=T0)],
        ),
        status=IncidentStatus(
            phase=Phase.AWAITING_APPROVAL,
            diagnosis=Diagnosis(
                summary="The node-2 process exited.",
                root_cause="OOM kill",
                confidence=0.8,
                alternatives=["network partition: other nodes reach Redis"],
            ),
            proposed_actions=[
                ProposedAction(
                    id="a1",
                    action="restart-member",
                    params={"member": "node-2", "grace": {"seconds": 5}},
                    risk=Risk.MEDIUM,
                    rationale="The process is gone.",
                    dry_run=DryRun(ok=True, message="would start ratelimiter-node-2"),
                    decision=Verdict.AWAIT_APPROVAL,
                    reason="medium risk under autonomy propose",
                )
            ],
            executed_actions=[
                ExecutedAction(
                    id="a0",
                    action="collect-logs",
                    idempotency_key="inc-1/a0",
                    started_at=T0,
                    finished_at=T0,
                    result=Outcome.SUCCEEDED,
                )
            ],
            detected_at=T0,
            last_seen_at=T0,
            count=3,
            timeline=[TimelineEntry(time=T0, phase=Phase.OPEN, message="opened")],
            agent=AgentUsage(
                backend="anthropic", turns=2, input_tokens=900, output_tokens=120, cost_usd=0.01
            ),
        ),
    )


@pytest.mark.parametrize("build", [full_subject, full_incident], ids=["subject", "incident"])
def test_round_trip_through_the_model_is_equal(
    api_ns: ApiNamespace, build: Callable[[str], Resource]
) -> None:
    sent = build(f"round-trip-{build.__name__.removeprefix('full_')}")
    kind, api = type(sent), custom(api_ns)
    name = sent.metadata.name
    assert name is not None
    api.create(kind, sent.to_k8s(status=False))
    # Status goes through its own subresource, as the operator writes it.
    api.patch_status(kind, name, sent.to_k8s()["status"])

    got = kind.from_k8s(api.get(kind, name))

    assert got.model_dump(include={"spec", "status"}) == sent.model_dump(include={"spec", "status"})
    assert got.metadata.labels == sent.metadata.labels
    assert got.metadata.uid and got.metadata.creation_timestamp


def test_unknown_fields_are_pruned_and_config_is_kept(api_ns: ApiNamespace) -> None:
    api = custom(api_ns)
    body = full_subject("pruned").to_k8s(status=False)
    body["spec"]["autonomyLevel"] = "max"  # a typo
    body["spec"]["agent"]["budget"] = 5
    body["spec"]["config"]["knob"] = {"nested": [1, 2]}  # the plugin's: preserved

    with pytest.raises(ApiException) as strict:
        api.create(Subject, body, validation="Strict")
    assert 'unknown field "spec.autonomyLevel"' in json.loads(str(strict.value.body))["message"]

    api.create(Subject, body, validation="Ignore")
    stored = api.get(Subject, "pruned")
    assert "autonomyLevel" not in stored["spec"]
    assert "budget" not in stored["spec"]["agent"]
    assert stored["spec"]["config"]["knob"] == {"nested": [1, 2]}
    # The model ignores the same fields, so it reads what was stored.
    assert Subject.from_k8s(body).spec == Subject.from_k8s(stored).spec

    api.patch_status(Subject, "pruned", {"health": "Healthy", "mood": "great"})
    assert api.get(Subject, "pruned")["status"] == {"health": "Healthy", "openIncidents": 0}


def test_server_defaults_match_the_model(api_ns: ApiNamespace) -> None:
    proc = api_ns.apply(
        {
            "apiVersion": Subject.API_VERSION,
            "kind": Subject.KIND,
            "metadata": {"name": "defaults"},
            "spec": {"type": "ratelimiter"},
        }
    )
    assert proc.returncode == 0, proc.stderr
    stored = api_ns.get(Subject.PLURAL, "defaults")
    assert stored is not None
    assert stored["spec"] == {
        "type": "ratelimiter",
        "interval": "10s",
        "autonomy": "propose",
        "paused": False,
        "observationGracePeriod": "30s",
        "cooldown": "30s",
    }
    assert Subject.from_k8s(stored).spec == SubjectSpec(type="ratelimiter")


def test_incidents_select_by_subject(api_ns: ApiNamespace) -> None:
    for subject in ("alpha", "beta"):
        incident = Incident(
            metadata=ObjectMeta(name=f"select-{subject}"),
            spec=IncidentSpec(subject=subject, summary="slow"),
        )
        proc = api_ns.apply(incident.to_k8s(status=False))
        assert proc.returncode == 0, proc.stderr
    proc = api_ns.kubectl(
        "get", Incident.PLURAL, "--field-selector", "spec.subject=beta", "-o", "name"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"{Incident.SINGULAR}.{GROUP}/select-beta"]


def test_operator_records_status_but_cannot_approve(api_ns: ApiNamespace) -> None:
    operator = api_ns.operator
    incident = full_incident("operator-writes")
    assert api_ns.apply(incident.to_k8s(status=False), as_user=operator).returncode == 0
    status = {**incident.to_k8s(status=False), "status": {"phase": "Investigating"}}
    proc = api_ns.apply(status, "--server-side", "--subresource=status", as_user=operator)
    assert proc.returncode == 0, proc.stderr

    approval = example(Approval)
    approval["metadata"]["name"] = "operator-reads"
    assert api_ns.apply(approval, as_user="alice").returncode == 0
    # The admission policy guards approvals, not approvals/status: the operator may say what
    # it did with an Approval...
    approval["status"] = {"phase": "Applied"}
    proc = api_ns.apply(approval, "--server-side", "--subresource=status", as_user=operator)
    assert proc.returncode == 0, proc.stderr
    # ...but never approve, whatever name it writes in approvedBy.
    for verb in ("create", "update", "patch", "delete"):
        proc = api_ns.kubectl("auth", "can-i", verb, Approval.PLURAL, as_user=operator)
        assert proc.stdout.strip() == "no", verb


def test_people_cannot_write_status(api_ns: ApiNamespace) -> None:
    for kind in KINDS:
        proc = api_ns.kubectl(
            "auth", "can-i", "patch", kind.PLURAL, "--subresource=status", as_user="bob"
        )
        assert proc.stdout.strip() == "no", kind.PLURAL
    proc = api_ns.kubectl("auth", "can-i", "create", Approval.PLURAL, as_user="bob")
    assert proc.stdout.strip() == "yes"
