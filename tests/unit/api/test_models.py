"""The models as code uses them: examples, the wire format, strictness, rules, timestamps."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from aiops.api import (
    API_VERSION,
    GROUP,
    KINDS,
    VERSION,
    AgentUsage,
    Approval,
    Chaos,
    Condition,
    Incident,
    Resource,
    Subject,
    SubjectSpec,
)
from aiops.vocabulary import ConditionStatus

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(kind: type[Resource]) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{kind.SINGULAR}.yaml").read_text())
    return manifest


def test_one_example_per_kind() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(k.SINGULAR for k in KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_example_round_trips_through_the_model(kind: type[Resource]) -> None:
    manifest = example(kind)
    model = kind.from_k8s(manifest)
    again = kind.from_k8s(model.to_k8s())
    assert again == model
    # Everything the example says survives, spelled as it was (defaults come on top).
    assert contains(model.to_k8s(status=False), manifest)


def contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)


def test_names_for_api_calls() -> None:
    assert (GROUP, VERSION, API_VERSION) == ("aiops.dev", "v1alpha1", "aiops.dev/v1alpha1")
    assert [k.PLURAL for k in KINDS] == ["subjects", "incidents", "approvals", "chaos"]
    assert Incident.crd_name() == "incidents.aiops.dev"
    assert Incident.API_VERSION == API_VERSION


def test_wire_is_camel_case_and_python_is_snake_case() -> None:
    spec = SubjectSpec(type="tikv", observation_grace_period="1m")
    wire = Subject(spec=spec).to_k8s()
    assert wire["spec"]["observationGracePeriod"] == "1m"
    assert wire["status"]["openIncidents"] == 0
    assert (wire["apiVersion"], wire["kind"]) == (API_VERSION, "Subject")
    override = Subject.from_k8s(
        {"spec": {"type": "tikv", "invariants": [{"name": "store-down", "for": "30s"}]}}
    ).spec.invariants[0]
    assert override.for_ == "30s"
    assert AgentUsage(backend="runbook", cost_usd=0.5).model_dump(by_alias=True)["costUSD"] == 0.5


def test_unset_fields_stay_out_of_the_manifest() -> None:
    manifest = Incident.from_k8s(example(Incident)).to_k8s(status=False)
    assert "status" not in manifest
    # Empty metadata lists would be read as "no finalizers" by an apply.
    assert manifest["metadata"] == {"name": "ratelimiter-node-down-rl-node-2"}


def test_unknown_fields_are_ignored_like_the_api_server_prunes_them() -> None:
    body = example(Chaos)
    body["spec"]["colour"] = "red"
    body["spec"]["target"]["weight"] = 3
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    manifest = Chaos.from_k8s(body).to_k8s()
    assert "colour" not in manifest["spec"]
    assert "weight" not in manifest["spec"]["target"]
    assert "managedFields" not in manifest["metadata"]


def test_free_form_objects_keep_everything() -> None:
    body = example(Chaos)
    body["spec"]["params"] = {"latency": {"ms": 250, "jitter": [1, 2]}}
    assert Chaos.from_k8s(body).to_k8s()["spec"]["params"] == body["spec"]["params"]


def test_reads_kopf_style_mappings() -> None:
    frozen = MappingProxyType(
        {**example(Subject), "spec": MappingProxyType(example(Subject)["spec"])}
    )
    assert Subject.from_k8s(frozen) == Subject.from_k8s(example(Subject))


@pytest.mark.parametrize(
    ("field", "value"),
    [("maxTurns", "12"), ("maxTurns", True), ("temperature", "0.5"), ("maxTurns", 1.5)],
)
def test_types_are_strict_like_the_api_server(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Subject.from_k8s({"spec": {"type": "tikv", "agent": {field: value}}})


def test_integers_are_accepted_for_numbers() -> None:
    spec = Subject.from_k8s({"spec": {"type": "tikv", "agent": {"temperature": 1}}}).spec
    assert spec.agent is not None and spec.agent.temperature == 1.0


def test_wrong_kind_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"expected apiVersion aiops\.dev/v1alpha1 kind Subject"
    ):
        Subject.from_k8s(example(Incident))


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        (
            Chaos,
            {"target": {"member": "n1", "selector": {"matchLabels": {"a": "b"}}}},
            "exactly one of member or selector",
        ),
        (Chaos, {"target": {}}, "exactly one of member or selector"),
        (Chaos, {"target": {"member": "n1", "mode": "all"}}, "mode all needs a selector"),
        (Subject, {"workload": {"kind": "pods"}}, "a pods workload needs selector"),
        (Subject, {"workload": {"kind": "supervisor"}}, "a supervisor workload needs supervisor"),
        (Subject, {"invariants": [{"name": "x"}, {"name": "x"}]}, "duplicate name x"),
        (Incident, {"source": "subject-loop", "invariant": None}, "names its invariant"),
        (Approval, {"actions": []}, "names the action ids it approves"),
        (Approval, {"actions": ["a1", "a2"]}, "carries the digest of each action it approves"),
        (Approval, {"digests": {}}, "carries the digest of each action it approves"),
        (Approval, {"digests": {"a1": "0" * 64, "a9": "0" * 64}}, "names only actions listed"),
    ],
)
def test_cel_rules_have_python_twins(
    kind: type[Resource], change: dict[str, Any], message: str
) -> None:
    body = example(kind)
    body["spec"] = {k: v for k, v in {**body["spec"], **change}.items() if v is not None}
    with pytest.raises(ValidationError, match=message):
        kind.from_k8s(body)


def test_a_rejection_may_cover_every_action() -> None:
    body = example(Approval)
    body["spec"].update(decision="reject", actions=[])
    body["spec"].pop("digests")  # a rejection needs none: rejecting a changed step is safe
    assert Approval.from_k8s(body).spec.actions == []


def test_timestamps_are_utc_and_need_a_zone() -> None:
    when = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    condition = Condition(
        type="Ready", status=ConditionStatus.TRUE, reason="Ok", last_transition_time=when
    )
    assert condition.last_transition_time.tzinfo == UTC
    wire = condition.model_dump(mode="json", by_alias=True)
    assert wire["lastTransitionTime"] == "2030-01-01T10:00:00Z"
    parsed = Condition.model_validate(wire)
    assert parsed == condition
    with pytest.raises(ValidationError, match="timezone"):
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="Ok",
            last_transition_time=datetime(2030, 1, 1),
        )
